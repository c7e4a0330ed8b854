-- The API roles (`anon`, `authenticated`) get exactly what the RLS policies need, nothing more.
--
-- Supabase's default privileges grant ALL on every new table and sequence in `public` to
-- `anon` and `authenticated`. The earlier migrations revoked the writes, but left
-- `authenticated` with REFERENCES and TRIGGER on the five core tables, and both roles with
-- USAGE, SELECT and UPDATE on the identity sequences. With TRIGGER, a direct SQL session as
-- `authenticated` could attach a `pg_temp` trigger function to `processing_jobs` that then
-- ran as `service_role` whenever the worker wrote the table.
--
-- What the policies need (supabase/migrations/20261123170000_core_tables.sql and
-- 20261123220000_analytics.sql):
--   * `authenticated`: SELECT on `documents` and `processing_jobs` (users read their own rows,
--     admins all of them: PostgREST, the SECURITY INVOKER read functions and Realtime) and on
--     the monitoring and analytics tables (admins only, by policy; `analytics_report`,
--     `analytics_event_counts`, `list_alerts`, `queue_health` and `services_overview` read
--     them with the caller's rights).
--   * `anon`: nothing.
--   * Every write goes through service-role functions; the sequences are used only by those.
-- tests/integration/test_privileges.py holds the allowlist, with a reason for each entry.
--
-- Only objects these migrations create and own are touched: each is named, so that the
-- migration runs the same as the NOSUPERUSER `postgres` of `supabase db push`.

revoke all on
  public.documents, public.processing_jobs, public.document_processing_events,
  public.service_health_checks, public.alert_events, public.analytics_rollups,
  public.analytics_histograms, public.analytics_stage_totals, public.analytics_pending,
  public.storage_deletions
  from anon, authenticated;

grant select on
  public.documents, public.processing_jobs, public.document_processing_events,
  public.service_health_checks, public.alert_events, public.analytics_rollups,
  public.analytics_histograms, public.analytics_stage_totals, public.analytics_pending
  to authenticated;

revoke all on sequence
  public.document_processing_events_id_seq, public.service_health_checks_id_seq,
  public.alert_events_id_seq, public.analytics_pending_id_seq, public.storage_deletions_id_seq
  from anon, authenticated;

-- The histogram and stage-timing helpers: called by `fold_analytics` (service) and by
-- `analytics_report`, which runs with the caller's own rights (SECURITY INVOKER), so the
-- admin's `authenticated` role needs them; `anon` does not.
revoke execute on function
  public.analytics_bucket(double precision),
  public.analytics_bucket_value(integer),
  public.analytics_stage_times(jsonb)
  from public, anon;
grant execute on function
  public.analytics_bucket(double precision),
  public.analytics_bucket_value(integer),
  public.analytics_stage_times(jsonb)
  to authenticated, service_role;

-- Objects the migration role creates in `public` later start with no privileges for the API
-- roles: a new table or view is unreachable over the Data API until a migration grants what
-- its policies need. This changes only the migration role's own default privileges (on hosted
-- Supabase that is `postgres`, which may alter its own; the defaults of `supabase_admin` stay
-- as they are) and is the same deny-by-default Supabase now applies to new projects.
-- `service_role` keeps its defaults. Functions are still executable by PUBLIC by PostgreSQL's
-- built-in default, which a per-schema default cannot remove: every function migration
-- revokes it explicitly, and the privilege test fails on any function it forgets.
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on functions from anon, authenticated;

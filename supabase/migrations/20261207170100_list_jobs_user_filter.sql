-- list_jobs names the caller's user for a non-admin caller.
--
-- Before, list_jobs left the choice of rows to the RLS policy
-- (`user_id = auth.uid() or <admin claim>`). An OR between a column and a JWT claim is not an
-- index condition, so the planner could not use processing_jobs_user_created_idx
-- (user_id, created_at desc, id desc) for a user's page: it walked all jobs newest first
-- (processing_jobs_created_at_idx) and filtered each through the policy until the page was
-- full. With 100,000 jobs over 1,000 users that was 51,000 rows read for a user's first 50
-- (docs/benchmarks.md, "Issue 14 SQL changes", has both plans). Now a caller under RLS that is
-- not an admin gets an explicit `user_id = auth.uid()`, which the index answers; the policy
-- still applies on top. The rows are the same: the policy shows such a caller exactly their
-- own jobs (and none without a user id, as `user_id = null` is never true). Admins and the
-- service (which bypasses RLS) see every job, as before, with the same query as before.

create or replace function public.list_jobs(
  status text default null,
  max_rows integer default 50,
  before_created_at timestamptz default null,
  before_id uuid default null
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_out jsonb;
begin
  if pg_catalog.row_security_active('public.processing_jobs')
     and ((select auth.jwt()) -> 'app_metadata' ->> 'role') is distinct from 'admin' then
    -- A user: their own jobs (what the policy shows them), through the user's index.
    select coalesce(jsonb_agg(to_jsonb(j) - '{lease_owner,priority_rank,idempotency_key}'::text[]
                              order by j.created_at desc, j.id desc), '[]'::jsonb)
      into v_out
      from (select *
              from public.processing_jobs j
             where j.user_id = (select auth.uid())
               and (list_jobs.status is null or j.status = list_jobs.status)
               and (list_jobs.before_created_at is null
                    or (j.created_at, j.id) < (list_jobs.before_created_at, list_jobs.before_id))
             order by j.created_at desc, j.id desc
             limit least(greatest(list_jobs.max_rows, 1), 200)) j;
  else
    -- An admin, or the service: every job.
    select coalesce(jsonb_agg(to_jsonb(j) - '{lease_owner,priority_rank,idempotency_key}'::text[]
                              order by j.created_at desc, j.id desc), '[]'::jsonb)
      into v_out
      from (select *
              from public.processing_jobs j
             where (list_jobs.status is null or j.status = list_jobs.status)
               and (list_jobs.before_created_at is null
                    or (j.created_at, j.id) < (list_jobs.before_created_at, list_jobs.before_id))
             order by j.created_at desc, j.id desc
             limit least(greatest(list_jobs.max_rows, 1), 200)) j;
  end if;
  return v_out;
end;
$$;

revoke execute on function public.list_jobs(text, integer, timestamptz, uuid) from public, anon;
grant execute on function public.list_jobs(text, integer, timestamptz, uuid)
  to authenticated, service_role;

-- queue_health without a scan of the jobs' history.
--
-- queue_health (20261123230000_queue_overview.sql) counted every row of processing_jobs on
-- each call, finished ones included: about 45 ms at 100,000 jobs, growing with the history.
-- Its answer needs, per status and priority, how many jobs there are (finished ones too), and
-- how many pending jobs have been attempted before (`retrying`). Those counts are now kept as
-- counters, and the rest comes from the active jobs only, through their partial indexes:
--
-- * `job_status_counts`: signed counts per (status, priority, attempted = attempts > 0).
--   Statement-level triggers with transition tables on processing_jobs append one row per
--   group that a statement changed (inserts +n, deletes -n, updates the difference; an update
--   that changes none of the three, a heartbeat, appends nothing). They only ever insert: no
--   shared row is updated, so concurrent transitions never wait for each other here, and a
--   statement's counts commit or roll back with it. Cascaded deletes (a document or a user
--   deleted) and retention go through the same triggers; TRUNCATE empties the counters.
-- * `fold_job_status_counts()` replaces the rows appended so far by one row per group (their
--   sums). `delete ... returning` as in fold_analytics: a row of a transaction still open is
--   invisible and waits for the next fold, and with two concurrent folds every row is folded
--   exactly once. queue_health folds first when the service calls it (the job_queue probe, on
--   every probe run), so the table stays at about one row per group plus what was appended
--   since the last probe.
-- * queue_health reads the counters (sum per group) and, in the same statement and so the same
--   snapshot, the oldest due pending job (three probes of processing_jobs_claim_idx, one per
--   priority) and the stalled jobs (processing_jobs_lease_idx). A recount in that snapshot
--   gives the same numbers: tests/integration/test_sql_fixes.py checks it under concurrent
--   writers.
--
-- The answer is the same as before for every caller. The counters are global, so they answer
-- only callers that see every job: the service (which bypasses RLS) and admins (whom the policy
-- shows every job). Any other caller under RLS, which sees only its own jobs, gets the old
-- computation restricted to its user, through processing_jobs_user_created_idx.
--
-- queue_health is now VOLATILE (it may fold). It folds only as the service (a role that may
-- execute the fold) and outside a read-only transaction, so a read-only call (PostgREST's GET,
-- a replica) still answers, exactly, only more slowly.
--
-- Counters kept by triggers drift if rows change with triggers disabled (session_replication_role
-- = replica, e.g. a data-only restore): recount then with the backfill statement below after
-- `truncate public.job_status_counts`, in one transaction.

create table if not exists public.job_status_counts (
  id bigint generated always as identity primary key,
  status text not null,
  priority text not null,
  attempted boolean not null,
  n bigint not null
);

alter table public.job_status_counts enable row level security;

-- Admins read the counters through queue_health, with their own rights (as the job rows).
create policy job_status_counts_select_admin on public.job_status_counts
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

-- service_role keeps what the migration role's default privileges give it on every table
-- here; the rows are written only by the definer functions below.
revoke all on public.job_status_counts from anon, authenticated;
grant select on public.job_status_counts to authenticated;
revoke all on sequence public.job_status_counts_id_seq from anon, authenticated;

-- The trigger: append the change in counts of one statement.
create or replace function docflow_private.count_job_statuses()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into public.job_status_counts (status, priority, attempted, n)
    select n.status, n.priority, n.attempts > 0, count(*)
      from new_jobs n
     group by 1, 2, 3;
  elsif tg_op = 'UPDATE' then
    insert into public.job_status_counts (status, priority, attempted, n)
    select d.status, d.priority, d.attempted, sum(d.n)
      from (select n.status, n.priority, n.attempts > 0 as attempted, 1 as n from new_jobs n
            union all
            select o.status, o.priority, o.attempts > 0, -1 from old_jobs o) d
     group by 1, 2, 3
    having sum(d.n) <> 0;
  elsif tg_op = 'DELETE' then
    insert into public.job_status_counts (status, priority, attempted, n)
    select o.status, o.priority, o.attempts > 0, -count(*)
      from old_jobs o
     group by 1, 2, 3;
  elsif tg_op = 'TRUNCATE' then
    truncate public.job_status_counts;
  end if;
  return null;
end;
$$;

revoke all on function docflow_private.count_job_statuses() from public, anon, authenticated;

-- No writer may change processing_jobs between the triggers and the backfill: the first
-- CREATE TRIGGER takes a SHARE ROW EXCLUSIVE lock on the table, which waits for the writers in
-- flight and holds new ones until the migration commits. (Not an explicit LOCK TABLE: the CLI
-- sends a migration as a pipeline, outside a transaction block, where LOCK TABLE is refused.)

-- A trigger with transition tables fires on one event only, hence three (and TRUNCATE, which
-- has none).
drop trigger if exists processing_jobs_count_inserts on public.processing_jobs;
create trigger processing_jobs_count_inserts
  after insert on public.processing_jobs
  referencing new table as new_jobs
  for each statement execute function docflow_private.count_job_statuses();

drop trigger if exists processing_jobs_count_updates on public.processing_jobs;
create trigger processing_jobs_count_updates
  after update on public.processing_jobs
  referencing old table as old_jobs new table as new_jobs
  for each statement execute function docflow_private.count_job_statuses();

drop trigger if exists processing_jobs_count_deletes on public.processing_jobs;
create trigger processing_jobs_count_deletes
  after delete on public.processing_jobs
  referencing old table as old_jobs
  for each statement execute function docflow_private.count_job_statuses();

drop trigger if exists processing_jobs_count_truncate on public.processing_jobs;
create trigger processing_jobs_count_truncate
  after truncate on public.processing_jobs
  for each statement execute function docflow_private.count_job_statuses();

-- Backfill: the jobs there are now.
insert into public.job_status_counts (status, priority, attempted, n)
select j.status, j.priority, j.attempts > 0, count(*)
  from public.processing_jobs j
 group by 1, 2, 3;

-- Fold: one row per group. Returns how many rows were folded.
create or replace function docflow_private.fold_job_status_counts()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_folded integer;
begin
  with moved as (
    delete from public.job_status_counts c
     where c.id <= (select max(m.id) from public.job_status_counts m)
    returning c.status, c.priority, c.attempted, c.n
  ), summed as (
    insert into public.job_status_counts (status, priority, attempted, n)
    select m.status, m.priority, m.attempted, sum(m.n)
      from moved m
     group by 1, 2, 3
    having sum(m.n) <> 0
     order by 1, 2, 3
  )
  select count(*) into v_folded from moved;
  return v_folded;
end;
$$;

revoke all on function docflow_private.fold_job_status_counts() from public, anon, authenticated;
grant execute on function docflow_private.fold_job_status_counts() to service_role;

create or replace function public.queue_health(
  window_seconds integer default 3600,
  degraded_success_rate double precision default 0.9,
  unhealthy_success_rate double precision default 0.7,
  degraded_stalled integer default 0,
  unhealthy_stalled integer default 5,
  degraded_backlog integer default 100,
  degraded_oldest_seconds integer default 600,
  now timestamptz default null
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(queue_health.now, pg_catalog.now());
  v_since timestamptz := v_now - make_interval(secs => queue_health.window_seconds);
  v_service boolean := not pg_catalog.row_security_active('public.processing_jobs');
  v_counts jsonb;
  v_priority jsonb;
  v_counts_by_priority jsonb;
  v_oldest double precision;
  v_stalled integer;
  v_retrying integer;
  v_completed integer;
  v_failed integer;
  v_rate double precision;
  v_pending integer;
  v_reasons text[] := '{}';
  v_health text := 'healthy';
begin
  if v_service or ((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin' then
    -- The caller sees every job: the counters, and the active jobs through their indexes.
    if v_service and pg_catalog.current_setting('transaction_read_only') = 'off'
       and pg_catalog.has_function_privilege('docflow_private.fold_job_status_counts()',
                                             'execute') then
      perform docflow_private.fold_job_status_counts();
    end if;
    with counted as (
      select c.status, c.priority, sum(c.n) as n,
             coalesce(sum(c.n) filter (where c.attempted), 0) as attempted
        from public.job_status_counts c
       group by c.status, c.priority
      having sum(c.n) <> 0
    ), by_status as (
      select g.status, sum(g.n) as n, jsonb_object_agg(g.priority, g.n) as by_priority
        from counted g
       group by g.status
    )
    select coalesce((select jsonb_object_agg(b.status, b.n) from by_status b), '{}'::jsonb),
           coalesce((select jsonb_object_agg(b.status, b.by_priority) from by_status b),
                    '{}'::jsonb),
           coalesce((select b.by_priority from by_status b where b.status = 'pending'),
                    '{}'::jsonb),
           extract(epoch from v_now - (
             select min(o.run_at)
               from (values (0::smallint), (1::smallint), (2::smallint)) r (priority_rank)
               cross join lateral (
                 select j.run_at
                   from public.processing_jobs j
                  where j.status = 'pending' and j.priority_rank = r.priority_rank
                    and j.run_at <= v_now
                  order by j.run_at
                  limit 1) o)),
           (select count(*)
              from public.processing_jobs j
             where j.status = 'processing' and j.lease_expires_at < v_now),
           coalesce((select sum(g.attempted) from counted g where g.status = 'pending'), 0)
      into v_counts, v_counts_by_priority, v_priority, v_oldest, v_stalled, v_retrying;
  else
    -- Any other caller under RLS sees only its own jobs: count them, as before.
    with grouped as (
      select j.status, j.priority, count(*) as n,
             min(j.run_at) filter (where j.status = 'pending' and j.run_at <= v_now) as oldest,
             count(*) filter (where j.status = 'processing' and j.lease_expires_at < v_now)
               as stalled,
             count(*) filter (where j.status = 'pending' and j.attempts > 0) as retrying
        from public.processing_jobs j
       where j.user_id = (select auth.uid())
       group by j.status, j.priority
    ), by_status as (
      select g.status, sum(g.n) as n, jsonb_object_agg(g.priority, g.n) as by_priority
        from grouped g
       group by g.status
    )
    select coalesce((select jsonb_object_agg(b.status, b.n) from by_status b), '{}'::jsonb),
           coalesce((select jsonb_object_agg(b.status, b.by_priority) from by_status b),
                    '{}'::jsonb),
           coalesce((select b.by_priority from by_status b where b.status = 'pending'),
                    '{}'::jsonb),
           extract(epoch from v_now - (select min(g.oldest) from grouped g)),
           coalesce((select sum(g.stalled) from grouped g), 0),
           coalesce((select sum(g.retrying) from grouped g), 0)
      into v_counts, v_counts_by_priority, v_priority, v_oldest, v_stalled, v_retrying;
  end if;
  v_pending := coalesce((v_counts ->> 'pending')::integer, 0);
  select count(*) filter (where e.event_type = 'completed'),
         count(*) filter (where e.event_type = 'failed')
    into v_completed, v_failed
    from public.document_processing_events e
   where e.created_at > v_since and e.created_at <= v_now
     and e.event_type in ('completed', 'failed');
  if v_completed + v_failed > 0 then
    v_rate := v_completed::double precision / (v_completed + v_failed);
  end if;

  if v_rate is not null and v_rate < queue_health.unhealthy_success_rate then
    v_health := 'unhealthy';
    v_reasons := v_reasons || format('success rate %s%% < %s%%', round(v_rate::numeric * 100, 1),
                                     round(queue_health.unhealthy_success_rate::numeric * 100, 1));
  elsif v_rate is not null and v_rate < queue_health.degraded_success_rate then
    v_reasons := v_reasons || format('success rate %s%% < %s%%', round(v_rate::numeric * 100, 1),
                                     round(queue_health.degraded_success_rate::numeric * 100, 1));
  end if;
  if v_stalled > queue_health.unhealthy_stalled then
    v_health := 'unhealthy';
    v_reasons := v_reasons || format('%s stalled jobs > %s', v_stalled, queue_health.unhealthy_stalled);
  elsif v_stalled > queue_health.degraded_stalled then
    v_reasons := v_reasons || format('%s stalled jobs > %s', v_stalled, queue_health.degraded_stalled);
  end if;
  if v_pending > queue_health.degraded_backlog then
    v_reasons := v_reasons || format('%s pending jobs > %s', v_pending, queue_health.degraded_backlog);
  end if;
  if v_oldest is not null and v_oldest > queue_health.degraded_oldest_seconds then
    v_reasons := v_reasons || format('oldest pending job waited %s s > %s s', round(v_oldest::numeric),
                                     queue_health.degraded_oldest_seconds);
  end if;
  if v_health = 'healthy' and array_length(v_reasons, 1) > 0 then
    v_health := 'degraded';
  end if;

  return jsonb_build_object(
    'health', v_health,
    'reasons', to_jsonb(v_reasons),
    'counts', v_counts,
    'counts_by_priority', v_counts_by_priority,
    'pending_by_priority', v_priority,
    'oldest_pending_seconds', v_oldest,
    'stalled', v_stalled,
    'retrying', v_retrying,
    'window_seconds', queue_health.window_seconds,
    'completed', v_completed,
    'failed', v_failed,
    'success_rate', v_rate,
    'at', v_now
  );
end;
$$;

revoke execute on function
  public.queue_health(integer, double precision, double precision, integer, integer, integer,
                      integer, timestamptz)
  from public, anon;
grant execute on function
  public.queue_health(integer, double precision, double precision, integer, integer, integer,
                      integer, timestamptz)
  to authenticated, service_role;

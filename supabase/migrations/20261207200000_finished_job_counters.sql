-- The job counters are kept by the transitions, and only for finished jobs.
--
-- 20261207170300_queue_health_counters.sql kept `job_status_counts` with statement-level
-- triggers (transition tables) on every INSERT, UPDATE and DELETE of processing_jobs. That put a
-- trigger call, two captured copies of the rows and an insert on every claim, completion,
-- heartbeat and enqueue: about 4 % of the queue's throughput at the shipped settings (batch 10,
-- concurrency 4; docs/benchmarks.md). Now:
--
-- * Only finished jobs (`completed`, `failed`, `cancelled`) are counted, per (status,
--   priority). They are the history that grows; the active jobs (`pending`, `processing`) are
--   the live queue, which queue_health counts from the rows themselves.
-- * A job finishes only through these functions, each of which now appends one row per
--   (status, priority) it finished, in the statement that finishes them: complete_rows
--   (complete_jobs, complete_job), fail_jobs (fail_job), recover_stalled_jobs, release_jobs,
--   heartbeat_jobs (cancellation seen at a heartbeat) and cancel_job. Claims, heartbeats,
--   enqueues, uploads, retries and re-analysis start or touch active jobs only: they write no
--   counter row. A finished job never becomes active again (a retry is a new job).
-- * Deletes (retention of finished jobs, and the cascades from a deleted document or user)
--   keep the statement-level DELETE trigger; TRUNCATE still empties the counters.
-- * The INSERT and UPDATE triggers are dropped.
--
-- A finished job's status is written only by the functions above (clients cannot write
-- processing_jobs; the service calls the functions). A direct UPDATE of a finished status by
-- the table's owner or the service bypasses the counters: recount then with the backfill below
-- after `truncate public.job_status_counts`, in one transaction (docs/operations.md,
-- "Reading the queue health").
--
-- queue_health's answer is unchanged; tests/integration/test_sql_fixes.py compares it with a
-- full recount in the same snapshot under concurrent writers of every transition.

-- No writer may change processing_jobs while the counters are rebuilt: the DROP TRIGGER takes
-- an ACCESS EXCLUSIVE lock on the table, which waits for the writers in flight and holds new
-- ones until the migration commits. (Not an explicit LOCK TABLE: the CLI sends a migration as a
-- pipeline, outside a transaction block, where LOCK TABLE is refused.)
drop trigger if exists processing_jobs_count_inserts on public.processing_jobs;
drop trigger if exists processing_jobs_count_updates on public.processing_jobs;

truncate public.job_status_counts;
alter table public.job_status_counts drop column attempted;

-- Backfill: the finished jobs there are now.
insert into public.job_status_counts (status, priority, n)
select j.status, j.priority, count(*)
  from public.processing_jobs j
 where j.status in ('completed', 'failed', 'cancelled')
 group by 1, 2;

-- The DELETE and TRUNCATE triggers (processing_jobs_count_deletes, _truncate) stay.
create or replace function docflow_private.count_job_statuses()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    insert into public.job_status_counts (status, priority, n)
    select o.status, o.priority, -count(*)
      from old_jobs o
     where o.status in ('completed', 'failed', 'cancelled')
     group by 1, 2;
  elsif tg_op = 'TRUNCATE' then
    truncate public.job_status_counts;
  end if;
  return null;
end;
$$;

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
    returning c.status, c.priority, c.n
  ), summed as (
    insert into public.job_status_counts (status, priority, n)
    select m.status, m.priority, sum(m.n)
      from moved m
     group by 1, 2
    having sum(m.n) <> 0
     order by 1, 2
  )
  select count(*) into v_folded from moved;
  return v_folded;
end;
$$;

-- The transitions that finish jobs, each as in 20261123180000_queue_engine.sql plus its
-- `counted` insert (and `priority` in its RETURNING).

create or replace function docflow_private.complete_rows(
  worker_id text, completions jsonb, now timestamptz
)
returns table (
  id uuid, status text, document_id uuid, user_id uuid, attempts integer, duration_ms integer,
  stage text
)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  with input as (
    select x.id, x.attempt, x.result
      from jsonb_to_recordset(complete_rows.completions)
        as x(id uuid, attempt integer, result jsonb)
  ), owned as (
    select j.id, j.cancel_requested_at, i.result
      from public.processing_jobs j
      join input i on i.id = j.id and i.attempt = j.attempts
     where j.status = 'processing' and j.lease_owner = complete_rows.worker_id
     order by j.id
       for update of j
  ), updated as (
    update public.processing_jobs j
       set status = case when o.cancel_requested_at is null then 'completed' else 'cancelled' end,
           result = case when o.cancel_requested_at is null
                         then coalesce(o.result, '{}'::jsonb) else j.result end,
           stage = case when o.cancel_requested_at is null then 'finalizing' else j.stage end,
           progress = case when o.cancel_requested_at is null then 100 else j.progress end,
           lease_owner = null,
           lease_expires_at = null,
           error_code = null,
           error_message = null,
           error_recoverable = null,
           completed_at = complete_rows.now,
           duration_ms = greatest(0, (extract(epoch from complete_rows.now - j.started_at)
                                      * 1000)::integer),
           updated_at = complete_rows.now
      from owned o
     where j.id = o.id
    returning j.id, j.status, j.priority, j.document_id, j.user_id, j.attempts, j.duration_ms,
              j.stage
  ), counted as (
    insert into public.job_status_counts (status, priority, n)
    select u.status, u.priority, count(*) from updated u group by 1, 2
  )
  select u.id, u.status, u.document_id, u.user_id, u.attempts, u.duration_ms, u.stage
    from updated u;
end;
$$;

create or replace function public.fail_jobs(
  worker_id text,
  failures jsonb,
  retry_initial_seconds double precision default 1,
  retry_multiplier double precision default 2,
  retry_max_seconds double precision default 60,
  retry_jitter double precision default 0.1,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(fail_jobs.now, pg_catalog.now());
  v_out jsonb;
begin
  with input as (
    select x.id, x.attempt, x.error_code, left(x.error_message, 2000) as error_message,
           coalesce(x.recoverable, true) as recoverable
      from jsonb_to_recordset(fail_jobs.failures)
        as x(id uuid, attempt integer, error_code text, error_message text, recoverable boolean)
  ), owned as (
    select j.id, i.error_code, i.error_message, i.recoverable,
           case
             when j.cancel_requested_at is not null then 'cancelled'
             when i.recoverable and j.attempts < j.max_attempts then 'pending'
             else 'failed'
           end as next_status,
           greatest(0, least(fail_jobs.retry_max_seconds,
             fail_jobs.retry_initial_seconds * power(fail_jobs.retry_multiplier, j.attempts - 1)
               * (1 + fail_jobs.retry_jitter * (2 * random() - 1)))) as delay
      from public.processing_jobs j
      join input i on i.id = j.id and i.attempt = j.attempts
     where j.status = 'processing' and j.lease_owner = fail_jobs.worker_id
     order by j.id
       for update of j
  ), updated as (
    update public.processing_jobs j
       set status = o.next_status,
           run_at = case when o.next_status = 'pending'
                         then v_now + make_interval(secs => o.delay) else j.run_at end,
           lease_owner = null,
           lease_expires_at = null,
           error_code = o.error_code,
           error_message = o.error_message,
           error_recoverable = o.recoverable,
           completed_at = case when o.next_status = 'pending' then null else v_now end,
           duration_ms = case when o.next_status = 'pending' then j.duration_ms
             else greatest(0, (extract(epoch from v_now - j.started_at) * 1000)::integer) end,
           updated_at = v_now
      from owned o
     where j.id = o.id
    returning j.id, j.status, j.priority, j.document_id, j.user_id, j.attempts, j.duration_ms,
              j.stage, j.run_at, o.error_code, o.error_message, o.recoverable, o.delay
  ), counted as (
    insert into public.job_status_counts (status, priority, n)
    select u.status, u.priority, count(*) from updated u where u.status <> 'pending' group by 1, 2
  ), logged as (
    select docflow_private.log_events(coalesce(jsonb_agg(jsonb_build_object(
             'event_type', case u.status when 'pending' then 'retry_scheduled'
                                         else u.status end,
             'document_id', u.document_id, 'user_id', u.user_id, 'job_id', u.id,
             'duration_ms', case when u.status = 'pending' then null else u.duration_ms end,
             'error_message', u.error_message, 'stage', u.stage, 'created_at', v_now,
             'details', jsonb_build_object(
               'attempt', u.attempts, 'error_code', u.error_code,
               'recoverable', u.recoverable,
               'delay_ms', case when u.status = 'pending' then (u.delay * 1000)::bigint end)
           )), '[]'::jsonb)) as done
      from updated u
  )
  select jsonb_build_object(
           'jobs', coalesce(jsonb_object_agg(u.id, jsonb_build_object(
                     'status', u.status,
                     'run_at', case when u.status = 'pending' then u.run_at end)),
                   '{}'::jsonb))
    into v_out
    from updated u, logged;

  return v_out || jsonb_build_object(
    'lost', coalesce((
      select jsonb_agg(x.id)
        from jsonb_to_recordset(fail_jobs.failures) as x(id uuid)
       where not (v_out -> 'jobs') ? x.id::text
    ), '[]'::jsonb)
  );
end;
$$;

create or replace function public.release_jobs(
  worker_id text,
  jobs jsonb,
  now timestamptz default null
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(release_jobs.now, pg_catalog.now());
  v_count integer;
begin
  with input as (
    select x.id, x.attempt from jsonb_to_recordset(release_jobs.jobs) as x(id uuid, attempt integer)
  ), released as (
    update public.processing_jobs j
       set status = case when j.cancel_requested_at is null then 'pending' else 'cancelled' end,
           attempts = case when j.cancel_requested_at is null then j.attempts - 1
                           else j.attempts end,
           completed_at = case when j.cancel_requested_at is null then null else v_now end,
           duration_ms = case when j.cancel_requested_at is null then j.duration_ms
             else greatest(0, (extract(epoch from v_now - j.started_at) * 1000)::integer) end,
           lease_owner = null,
           lease_expires_at = null,
           updated_at = v_now
      from input i
     where j.id = i.id and j.attempts = i.attempt
       and j.status = 'processing' and j.lease_owner = release_jobs.worker_id
    returning j.id, j.status, j.priority, j.document_id, j.user_id, j.stage, j.duration_ms
  ), counted as (
    insert into public.job_status_counts (status, priority, n)
    select r.status, r.priority, count(*) from released r where r.status <> 'pending' group by 1, 2
  ), logged as (
    select docflow_private.log_events(coalesce(jsonb_agg(jsonb_build_object(
             'event_type', case r.status when 'pending' then 'released' else 'cancelled' end,
             'document_id', r.document_id, 'user_id', r.user_id, 'job_id', r.id,
             'duration_ms', case when r.status = 'cancelled' then r.duration_ms end,
             'stage', r.stage, 'created_at', v_now)), '[]'::jsonb)) as done
      from released r
  )
  select count(*) into v_count from released, logged;
  if v_count > 0 then
    perform pg_notify('docflow_jobs', '');  -- wake listening workers: these are due now
  end if;
  return v_count;
end;
$$;

create or replace function public.recover_stalled_jobs(
  max_jobs integer default 1000,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(recover_stalled_jobs.now, pg_catalog.now());
  v_out jsonb;
begin
  with stalled as (
    select j.id,
           case
             when j.cancel_requested_at is not null then 'cancelled'
             when j.attempts < j.max_attempts then 'pending'
             else 'failed'
           end as next_status
      from public.processing_jobs j
     where j.status = 'processing' and j.lease_expires_at < v_now
     order by j.lease_expires_at
     limit greatest(recover_stalled_jobs.max_jobs, 0)
       for update skip locked
  ), updated as (
    update public.processing_jobs j
       set status = s.next_status,
           lease_owner = null,
           lease_expires_at = null,
           error_code = case when s.next_status = 'cancelled' then j.error_code else 'stalled' end,
           error_message = case when s.next_status = 'cancelled' then j.error_message
                                else 'the worker stopped renewing its lease' end,
           error_recoverable = case when s.next_status = 'cancelled' then j.error_recoverable
                                    else true end,
           completed_at = case when s.next_status = 'pending' then null else v_now end,
           duration_ms = case when s.next_status = 'pending' then j.duration_ms
             else greatest(0, (extract(epoch from v_now - j.started_at) * 1000)::integer) end,
           updated_at = v_now
      from stalled s
     where j.id = s.id
    returning j.id, j.status, j.priority, j.document_id, j.user_id, j.attempts, j.stage,
              j.duration_ms
  ), counted as (
    insert into public.job_status_counts (status, priority, n)
    select u.status, u.priority, count(*) from updated u where u.status <> 'pending' group by 1, 2
  ), logged as (
    select docflow_private.log_events(coalesce(jsonb_agg(jsonb_build_object(
             'event_type', case u.status when 'pending' then 'stalled_recovered'
                                         else u.status end,
             'document_id', u.document_id, 'user_id', u.user_id, 'job_id', u.id,
             'duration_ms', case when u.status = 'pending' then null else u.duration_ms end,
             'error_message', case when u.status = 'failed'
                                   then 'the worker stopped renewing its lease' end,
             'stage', u.stage, 'created_at', v_now,
             'details', jsonb_build_object('attempt', u.attempts))), '[]'::jsonb)) as done
      from updated u
  )
  select jsonb_build_object(
           'recovered', count(*) filter (where u.status = 'pending'),
           'failed', count(*) filter (where u.status = 'failed'),
           'cancelled', count(*) filter (where u.status = 'cancelled'))
    into v_out
    from updated u, logged;
  if (v_out ->> 'recovered')::integer > 0 then
    perform pg_notify('docflow_jobs', '');  -- wake listening workers: these are due now
  end if;
  return v_out;
end;
$$;

create or replace function public.heartbeat_jobs(
  worker_id text,
  jobs jsonb,
  lease_seconds integer default 30,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(heartbeat_jobs.now, pg_catalog.now());
  v_extended jsonb;
  v_cancelled jsonb;
begin
  with input as (
    select x.id, x.attempt, x.stage, x.progress
      from jsonb_to_recordset(heartbeat_jobs.jobs)
        as x(id uuid, attempt integer, stage text, progress integer)
  ), owned as (
    select j.id, j.cancel_requested_at, i.stage, i.progress
      from public.processing_jobs j
      join input i on i.id = j.id and i.attempt = j.attempts
     where j.status = 'processing' and j.lease_owner = heartbeat_jobs.worker_id
     order by j.id
       for update of j
  ), extended as (
    update public.processing_jobs j
       set lease_expires_at = v_now + make_interval(secs => heartbeat_jobs.lease_seconds),
           stage = coalesce(o.stage, j.stage),
           progress = least(100, greatest(0, coalesce(o.progress, j.progress))),
           updated_at = v_now
      from owned o
     where j.id = o.id and o.cancel_requested_at is null
    returning j.id
  ), cancelled as (
    update public.processing_jobs j
       set status = 'cancelled', lease_owner = null, lease_expires_at = null,
           completed_at = v_now,
           duration_ms = greatest(0, (extract(epoch from v_now - j.started_at) * 1000)::integer),
           updated_at = v_now
      from owned o
     where j.id = o.id and o.cancel_requested_at is not null
    returning j.id, j.priority, j.document_id, j.user_id, j.stage, j.duration_ms
  ), counted as (
    insert into public.job_status_counts (status, priority, n)
    select 'cancelled', c.priority, count(*) from cancelled c group by 2
  ), logged as (
    select docflow_private.log_events(coalesce(jsonb_agg(jsonb_build_object(
             'event_type', 'cancelled', 'document_id', c.document_id, 'user_id', c.user_id,
             'job_id', c.id, 'duration_ms', c.duration_ms, 'stage', c.stage,
             'created_at', v_now)), '[]'::jsonb)) as done
      from cancelled c
  )
  select (select coalesce(jsonb_agg(e.id), '[]'::jsonb) from extended e),
         (select coalesce(jsonb_agg(c.id), '[]'::jsonb) from cancelled c, logged)
    into v_extended, v_cancelled;

  return jsonb_build_object(
    'extended', v_extended,
    'cancelled', v_cancelled,
    'lost', coalesce((
      select jsonb_agg(x.id)
        from jsonb_to_recordset(heartbeat_jobs.jobs) as x(id uuid)
       where not v_extended ? x.id::text and not v_cancelled ? x.id::text
    ), '[]'::jsonb)
  );
end;
$$;

create or replace function public.cancel_job(
  job_id uuid,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(cancel_job.now, pg_catalog.now());
  v_job public.processing_jobs;
begin
  select * into v_job from public.processing_jobs j where j.id = cancel_job.job_id for update;
  if not found then
    raise exception 'job not found' using errcode = 'DF404', hint = 'job_not_found';
  end if;
  if v_job.status = 'pending' then
    update public.processing_jobs j
       set status = 'cancelled', cancel_requested_at = v_now, completed_at = v_now,
           updated_at = v_now
     where j.id = v_job.id;
    insert into public.job_status_counts (status, priority, n)
    values ('cancelled', v_job.priority, 1);
    perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
      'event_type', 'cancelled', 'document_id', v_job.document_id, 'user_id', v_job.user_id,
      'job_id', v_job.id, 'created_at', v_now)));
    return jsonb_build_object('id', v_job.id, 'status', 'cancelled', 'cancel_requested', true);
  elsif v_job.status = 'processing' then
    update public.processing_jobs j
       set cancel_requested_at = coalesce(j.cancel_requested_at, v_now), updated_at = v_now
     where j.id = v_job.id;
    return jsonb_build_object('id', v_job.id, 'status', 'processing', 'cancel_requested', true);
  end if;
  raise exception 'a % job cannot be cancelled', v_job.status
    using errcode = 'DF409', hint = 'not_cancellable';
end;
$$;

-- queue_health: as in 20261207170300_queue_health_counters.sql, with the active jobs counted
-- from their rows. Privileges unchanged (create or replace keeps them).
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
    -- The caller sees every job: the counters for the finished ones, and the active jobs.
    if v_service and pg_catalog.current_setting('transaction_read_only') = 'off'
       and pg_catalog.has_function_privilege('docflow_private.fold_job_status_counts()',
                                             'execute') then
      perform docflow_private.fold_job_status_counts();
    end if;
    with counted as (
      -- finished jobs: the counters
      select c.status, c.priority, sum(c.n) as n, 0 as attempted
        from public.job_status_counts c
       group by c.status, c.priority
      having sum(c.n) <> 0
      union all
      -- active jobs: the rows themselves (processing_jobs_one_active_per_document holds them)
      select j.status, j.priority, count(*), count(*) filter (where j.attempts > 0)
        from public.processing_jobs j
       where j.status in ('pending', 'processing')
       group by j.status, j.priority
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

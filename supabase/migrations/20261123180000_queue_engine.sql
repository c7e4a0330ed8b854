-- The full job lifecycle (contract §4): heartbeats, batch complete/fail (fenced), cancel,
-- manual retry, reanalyze, stalled-job recovery, release on shutdown, bulk enqueue, per-user
-- enqueue rate limit, and a NOTIFY that wakes listening workers.
--
-- Conventions (as in 20261123170200_queue_functions.sql): every transition records its
-- lifecycle event in the same transaction through docflow_private.log_events() (guarded);
-- every time-dependent function takes an optional `now`; all are service-only.
-- Errors use SQLSTATE class DF (DF401/404/409/422/429) with the machine code in HINT and
-- JSON in DETAIL (retry_after, in seconds, for DF429).

alter table public.processing_jobs
  add column if not exists cancel_requested_at timestamptz;

alter table public.document_processing_events
  drop constraint if exists document_processing_events_event_type_check;
alter table public.document_processing_events
  add constraint document_processing_events_event_type_check check (event_type in (
    'upload_started', 'enqueued', 'processing_started', 'completed', 'failed',
    'retry_scheduled', 'cancelled', 'stalled_recovered', 'released'
  ));

-- Wake listening workers once per inserting statement (not per row).
create or replace function docflow_private.notify_jobs()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('docflow_jobs', '');
  return null;
end;
$$;

drop trigger if exists processing_jobs_notify on public.processing_jobs;
create trigger processing_jobs_notify
  after insert on public.processing_jobs
  for each statement execute function docflow_private.notify_jobs();

-- Per-user enqueue rate limit: at most `per_minute` jobs created by the user in the last 60 s.
-- The advisory lock serialises one user's enqueues, so the count cannot race (and neither can
-- an Idempotency-Key check that follows it). per_minute <= 0 turns the limit off.
create or replace function docflow_private.enqueue_guard(
  user_id uuid, per_minute integer, now timestamptz
)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
  v_oldest timestamptz;
begin
  perform pg_advisory_xact_lock(hashtextextended('docflow.enqueue:' || enqueue_guard.user_id, 0));
  if enqueue_guard.per_minute is null or enqueue_guard.per_minute <= 0 then
    return;
  end if;
  select count(*), min(j.created_at) into v_count, v_oldest
    from (select j.created_at
            from public.processing_jobs j
           where j.user_id = enqueue_guard.user_id
             and j.created_at > enqueue_guard.now - interval '60 seconds'
             and j.created_at <= enqueue_guard.now
           order by j.created_at desc
           limit enqueue_guard.per_minute) j;
  if v_count >= enqueue_guard.per_minute then
    raise exception 'rate limit: at most % jobs per minute', enqueue_guard.per_minute
      using errcode = 'DF429', hint = 'rate_limited',
            detail = json_build_object('retry_after', greatest(1, ceil(extract(epoch from
              (v_oldest + interval '60 seconds') - enqueue_guard.now))))::text;
  end if;
end;
$$;

-- Does the user exist? SECURITY DEFINER: the auth schema belongs to Supabase Auth and the
-- service role need not read it.
create or replace function docflow_private.user_exists(user_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select 1 from auth.users u where u.id = user_exists.user_id);
$$;

-- Intake, now with the unknown-user check and the rate limit (replaces the skeleton's).
drop function if exists public.create_upload(
  uuid, text, text, bigint, text, text, text, text, integer, jsonb, timestamptz);

create or replace function public.create_upload(
  user_id uuid,
  original_filename text,
  content_type text,
  size_bytes bigint,
  sha256 text,
  storage_path text,
  priority text default 'normal',
  idempotency_key text default null,
  max_attempts integer default 4,
  options jsonb default '{}'::jsonb,
  rate_limit_per_minute integer default 0,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(create_upload.now, pg_catalog.now());
  v_document_id uuid;
  v_job_id uuid;
  v_previous record;
begin
  if not docflow_private.user_exists(create_upload.user_id) then
    raise exception 'unknown user' using errcode = 'DF401', hint = 'unknown_user';
  end if;
  -- Lock first (serialises this user's enqueues), then replay, then count.
  perform pg_advisory_xact_lock(hashtextextended('docflow.enqueue:' || create_upload.user_id, 0));
  if create_upload.idempotency_key is not null then
    select j.id as job_id, j.document_id, j.status, d.sha256
      into v_previous
      from public.processing_jobs j
      join public.documents d on d.id = j.document_id
     where j.user_id = create_upload.user_id
       and j.idempotency_key = create_upload.idempotency_key;
    if found then
      if v_previous.sha256 <> create_upload.sha256 then
        raise exception 'Idempotency-Key was already used for a different file'
          using errcode = 'DF409', hint = 'idempotency_key_reused';
      end if;
      return jsonb_build_object(
        'document_id', v_previous.document_id, 'job_id', v_previous.job_id,
        'status', v_previous.status, 'replayed', true
      );
    end if;
  end if;
  perform docflow_private.enqueue_guard(create_upload.user_id,
                                        create_upload.rate_limit_per_minute, v_now);

  insert into public.documents
    (user_id, original_filename, content_type, size_bytes, sha256, storage_path,
     created_at, updated_at)
  values
    (create_upload.user_id, create_upload.original_filename, create_upload.content_type,
     create_upload.size_bytes, create_upload.sha256, create_upload.storage_path, v_now, v_now)
  returning id into v_document_id;

  insert into public.processing_jobs
    (document_id, user_id, priority, max_attempts, options, source, idempotency_key,
     run_at, created_at, updated_at)
  values
    (v_document_id, create_upload.user_id, create_upload.priority, create_upload.max_attempts,
     coalesce(create_upload.options, '{}'::jsonb), 'upload', create_upload.idempotency_key,
     v_now, v_now, v_now)
  returning id into v_job_id;

  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'upload_started', 'document_id', v_document_id,
    'user_id', create_upload.user_id, 'job_id', v_job_id, 'created_at', v_now,
    'details', jsonb_build_object('size_bytes', create_upload.size_bytes,
                                  'content_type', create_upload.content_type,
                                  'priority', create_upload.priority)
  )));

  return jsonb_build_object(
    'document_id', v_document_id, 'job_id', v_job_id, 'status', 'pending', 'replayed', false
  );
end;
$$;

-- Bulk enqueue for existing documents (benchmarks, backfills): no HTTP rate limit.
-- jobs: [{document_id, priority?, options?, max_attempts?, run_at?}]. Returns the new job ids.
-- A document that already has an active job makes the whole batch fail (DF409), and so does
-- an unknown document (DF404). Bulk jobs count toward their users' enqueue rate-limit window.
create or replace function public.enqueue_jobs(
  jobs jsonb,
  source text default 'reanalyze',
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(enqueue_jobs.now, pg_catalog.now());
  v_ids jsonb;
begin
  with input as (
    select x.document_id, coalesce(x.priority, 'normal') as priority,
           coalesce(x.options, '{}'::jsonb) as options, coalesce(x.max_attempts, 4) as max_attempts,
           coalesce(x.run_at, v_now) as run_at
      from jsonb_to_recordset(enqueue_jobs.jobs)
        as x(document_id uuid, priority text, options jsonb, max_attempts integer,
             run_at timestamptz)
  ), inserted as (
    insert into public.processing_jobs
      (document_id, user_id, priority, options, max_attempts, source, run_at, created_at,
       updated_at)
    select i.document_id, d.user_id, i.priority, i.options, i.max_attempts, enqueue_jobs.source,
           i.run_at, v_now, v_now
      from input i
      join public.documents d on d.id = i.document_id
    returning id, document_id, user_id
  ), logged as (
    select docflow_private.log_events(coalesce(jsonb_agg(jsonb_build_object(
             'event_type', 'enqueued', 'document_id', n.document_id, 'user_id', n.user_id,
             'job_id', n.id, 'created_at', v_now,
             'details', jsonb_build_object('source', enqueue_jobs.source))), '[]'::jsonb))
      from inserted n
  )
  select coalesce(jsonb_agg(n.id), '[]'::jsonb) into v_ids
    from inserted n, logged;
  if jsonb_array_length(v_ids) <> jsonb_array_length(enqueue_jobs.jobs) then
    raise exception 'a document in the batch does not exist'
      using errcode = 'DF404', hint = 'document_not_found';
  end if;
  return v_ids;
exception
  when unique_violation then
    raise exception 'a document in the batch already has an active job'
      using errcode = 'DF409', hint = 'job_active';
end;
$$;

-- Heartbeat: extend the leases of the jobs this worker still owns and record their stage and
-- progress. jobs: [{id, attempt, stage?, progress?}]. A job the worker no longer owns (lease
-- lost to another attempt) is answered in "lost"; a job whose cancellation was requested
-- becomes `cancelled` now and is answered in "cancelled". Either way the worker must stop it.
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
    returning j.id, j.document_id, j.user_id, j.stage, j.duration_ms
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

-- (claim_rows and complete_rows are PL/pgSQL, not SQL, so that their plans are cached.)
-- The hot path (claim, complete) writes its lifecycle events in the same statement as the
-- transition. The guard is a savepoint around the whole call: if the event insert fails (a
-- revoked grant, a CHECK), the transition is done again without events and a WARNING logged,
-- so analytics can never block or fail the queue.

create or replace function docflow_private.claim_rows(
  worker_id text, max_jobs integer, lease_seconds integer, now timestamptz
)
returns table (
  id uuid, document_id uuid, user_id uuid, priority text, priority_rank smallint,
  attempts integer, max_attempts integer, options jsonb, source text, run_at timestamptz,
  created_at timestamptz, lease_expires_at timestamptz
)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  with due as (
    select j.id
      from public.processing_jobs j
     where j.status = 'pending' and j.run_at <= claim_rows.now
     order by j.priority_rank, j.run_at, j.id
     limit greatest(claim_rows.max_jobs, 0)
       for update skip locked
  )
  update public.processing_jobs j
     set status = 'processing',
         attempts = j.attempts + 1,
         lease_owner = claim_rows.worker_id,
         lease_expires_at = claim_rows.now + make_interval(secs => claim_rows.lease_seconds),
         started_at = claim_rows.now,
         stage = null,
         progress = 0,
         updated_at = claim_rows.now
    from due
   where j.id = due.id
  returning j.id, j.document_id, j.user_id, j.priority, j.priority_rank, j.attempts,
            j.max_attempts, j.options, j.source, j.run_at, j.created_at, j.lease_expires_at;
end;
$$;

-- Claim up to max_jobs due jobs: highest priority first, then oldest run_at. Each claimed job
-- gets a lease (owner + expiry) and its attempt number; SKIP LOCKED lets claimers run side by
-- side without waiting on each other.
create or replace function public.claim_jobs(
  worker_id text,
  max_jobs integer default 1,
  lease_seconds integer default 30,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(claim_jobs.now, pg_catalog.now());
  v_jobs jsonb;
begin
  if claim_jobs.worker_id is null or claim_jobs.worker_id = '' then
    raise exception 'worker_id is required' using errcode = 'DF422', hint = 'invalid_worker';
  end if;
  begin
    with claimed as materialized (
      select * from docflow_private.claim_rows(claim_jobs.worker_id, claim_jobs.max_jobs,
                                               claim_jobs.lease_seconds, v_now)
    ), logged as (
      insert into public.document_processing_events
        (document_id, user_id, job_id, event_type, details, created_at)
      select c.document_id, c.user_id, c.id, 'processing_started',
             jsonb_build_object('attempt', c.attempts), v_now
        from claimed c
    )
    select coalesce(jsonb_agg(to_jsonb(c) - 'priority_rank'
                              order by c.priority_rank, c.run_at, c.id), '[]'::jsonb)
      into v_jobs
      from claimed c;
    return v_jobs;
  exception when others then
    raise warning 'docflow: processing_started events not recorded: % (SQLSTATE %)',
      sqlerrm, sqlstate;
  end;
  select coalesce(jsonb_agg(to_jsonb(c) - 'priority_rank'
                            order by c.priority_rank, c.run_at, c.id), '[]'::jsonb)
    into v_jobs
    from docflow_private.claim_rows(claim_jobs.worker_id, claim_jobs.max_jobs,
                                    claim_jobs.lease_seconds, v_now) c;
  return v_jobs;
end;
$$;

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
  )
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
  returning j.id, j.status, j.document_id, j.user_id, j.attempts, j.duration_ms, j.stage;
end;
$$;

-- Complete a batch of attempts. completions: [{id, attempt, result}]. Fenced: only rows still
-- `processing`, leased by this worker, at that attempt. A job whose cancellation was requested
-- ends `cancelled` (the user asked; the result is discarded). Returns the ids per outcome.
create or replace function public.complete_jobs(
  worker_id text,
  completions jsonb,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(complete_jobs.now, pg_catalog.now());
  v_done jsonb;
  v_cancelled jsonb;
begin
  begin
    with finished as materialized (
      select * from docflow_private.complete_rows(complete_jobs.worker_id,
                                                  complete_jobs.completions, v_now)
    ), logged as (
      insert into public.document_processing_events
        (document_id, user_id, job_id, event_type, duration_ms, stage, details, created_at)
      select f.document_id, f.user_id, f.id, f.status, f.duration_ms,
             case when f.status = 'cancelled' then f.stage end,
             jsonb_build_object('attempt', f.attempts), v_now
        from finished f
    )
    select coalesce(jsonb_agg(f.id) filter (where f.status = 'completed'), '[]'::jsonb),
           coalesce(jsonb_agg(f.id) filter (where f.status = 'cancelled'), '[]'::jsonb)
      into v_done, v_cancelled
      from finished f;
  exception when others then
    raise warning 'docflow: completion events not recorded: % (SQLSTATE %)', sqlerrm, sqlstate;
    select coalesce(jsonb_agg(f.id) filter (where f.status = 'completed'), '[]'::jsonb),
           coalesce(jsonb_agg(f.id) filter (where f.status = 'cancelled'), '[]'::jsonb)
      into v_done, v_cancelled
      from docflow_private.complete_rows(complete_jobs.worker_id, complete_jobs.completions,
                                         v_now) f;
  end;
  return jsonb_build_object(
    'completed', v_done,
    'cancelled', v_cancelled,
    'lost', coalesce((
      select jsonb_agg(x.id)
        from jsonb_to_recordset(complete_jobs.completions) as x(id uuid)
       where x.id not in (select f.value::uuid
                            from jsonb_array_elements_text(v_done || v_cancelled) f)
    ), '[]'::jsonb)
  );
end;
$$;

-- Fail a batch of attempts. failures: [{id, attempt, error_code, error_message, recoverable}].
-- Fenced like complete_jobs. A recoverable error with attempts left goes back to pending with
-- run_at = now + min(max, initial * multiplier^(attempt-1) * (1 + jitter * uniform(-1, 1)));
-- anything else fails for good (kept for inspection). Cancellation requested: `cancelled`.
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
    returning j.id, j.status, j.document_id, j.user_id, j.attempts, j.duration_ms, j.stage,
              j.run_at, o.error_code, o.error_message, o.recoverable, o.delay
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

-- The single-job forms used by simple callers and tests: they raise DF409 lease_lost when the
-- attempt is not this worker's any more.
create or replace function public.complete_job(
  job_id uuid,
  worker_id text,
  attempt integer,
  result jsonb default '{}'::jsonb,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_out jsonb;
  v_job public.processing_jobs;
begin
  v_out := public.complete_jobs(complete_job.worker_id, jsonb_build_array(jsonb_build_object(
    'id', complete_job.job_id, 'attempt', complete_job.attempt,
    'result', complete_job.result)), complete_job.now);
  if v_out -> 'lost' ? complete_job.job_id::text then
    raise exception 'job % attempt % is not held by this worker', complete_job.job_id,
      complete_job.attempt using errcode = 'DF409', hint = 'lease_lost';
  end if;
  select * into v_job from public.processing_jobs j where j.id = complete_job.job_id;
  return jsonb_build_object('id', v_job.id, 'status', v_job.status,
                            'duration_ms', v_job.duration_ms);
end;
$$;

create or replace function public.fail_job(
  job_id uuid,
  worker_id text,
  attempt integer,
  error_code text,
  error_message text,
  recoverable boolean default true,
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
  v_out jsonb;
begin
  v_out := public.fail_jobs(
    fail_job.worker_id,
    jsonb_build_array(jsonb_build_object(
      'id', fail_job.job_id, 'attempt', fail_job.attempt, 'error_code', fail_job.error_code,
      'error_message', fail_job.error_message, 'recoverable', fail_job.recoverable)),
    fail_job.retry_initial_seconds, fail_job.retry_multiplier, fail_job.retry_max_seconds,
    fail_job.retry_jitter, fail_job.now);
  if v_out -> 'lost' ? fail_job.job_id::text then
    raise exception 'job % attempt % is not held by this worker', fail_job.job_id,
      fail_job.attempt using errcode = 'DF409', hint = 'lease_lost';
  end if;
  return jsonb_build_object('id', fail_job.job_id) || (v_out -> 'jobs' -> fail_job.job_id::text);
end;
$$;

-- Give jobs back on shutdown: pending again at once (keeping their place in the queue), the
-- attempt not counted.
-- jobs: [{id, attempt}]. Returns how many were released.
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
    returning j.id, j.status, j.document_id, j.user_id, j.stage, j.duration_ms
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

-- Stalled jobs: leases that expired (the worker crashed or hung). Back to pending when
-- attempts remain, failed (`stalled`) when not, cancelled when cancellation was requested.
-- A recovered job keeps its run_at, so it keeps its place at the front of the queue.
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
    returning j.id, j.status, j.document_id, j.user_id, j.attempts, j.stage, j.duration_ms
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

-- Cancel: a pending job is cancelled at once; a processing one is marked and stops at its
-- worker's next heartbeat. Finished jobs cannot be cancelled (DF409 not_cancellable).
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

-- Manual retry of a failed or cancelled job: a new job (source `retry`) for the same document,
-- same priority and options, attempts counted afresh.
create or replace function public.retry_job(
  job_id uuid,
  max_attempts integer default 4,
  rate_limit_per_minute integer default 0,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(retry_job.now, pg_catalog.now());
  v_job public.processing_jobs;
  v_new uuid;
begin
  select * into v_job from public.processing_jobs j where j.id = retry_job.job_id;
  if not found then
    raise exception 'job not found' using errcode = 'DF404', hint = 'job_not_found';
  end if;
  if v_job.status not in ('failed', 'cancelled') then
    raise exception 'only failed or cancelled jobs can be retried (this one is %)', v_job.status
      using errcode = 'DF409', hint = 'not_retryable';
  end if;
  perform docflow_private.enqueue_guard(v_job.user_id, retry_job.rate_limit_per_minute, v_now);
  begin
    insert into public.processing_jobs
      (document_id, user_id, priority, max_attempts, options, source, run_at, created_at,
       updated_at)
    values
      (v_job.document_id, v_job.user_id, v_job.priority, retry_job.max_attempts, v_job.options,
       'retry', v_now, v_now, v_now)
    returning id into v_new;
  exception when unique_violation then
    raise exception 'the document already has an active job'
      using errcode = 'DF409', hint = 'job_active';
  end;
  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'enqueued', 'document_id', v_job.document_id, 'user_id', v_job.user_id,
    'job_id', v_new, 'created_at', v_now,
    'details', jsonb_build_object('source', 'retry', 'retry_of', v_job.id))));
  return jsonb_build_object('job_id', v_new, 'document_id', v_job.document_id,
                            'status', 'pending', 'retry_of', v_job.id);
end;
$$;

-- Reanalyze a document: a new high-priority job, at most once per `min_interval_seconds`
-- (default an hour) per document (DF429 with retry_after), never beside an active job (DF409).
create or replace function public.reanalyze_document(
  document_id uuid,
  max_attempts integer default 4,
  min_interval_seconds integer default 3600,
  rate_limit_per_minute integer default 0,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(reanalyze_document.now, pg_catalog.now());
  v_doc public.documents;
  v_new uuid;
  v_wait double precision;
begin
  select * into v_doc from public.documents d where d.id = reanalyze_document.document_id
     for update;
  if not found then
    raise exception 'document not found' using errcode = 'DF404', hint = 'document_not_found';
  end if;
  v_wait := extract(epoch from (v_doc.last_reanalyzed_at
              + make_interval(secs => reanalyze_document.min_interval_seconds)) - v_now);
  if v_wait > 0 then
    raise exception 'a document can be reanalyzed once per % seconds',
      reanalyze_document.min_interval_seconds
      using errcode = 'DF429', hint = 'reanalyze_too_soon',
            detail = json_build_object('retry_after', ceil(v_wait))::text;
  end if;
  perform docflow_private.enqueue_guard(v_doc.user_id, reanalyze_document.rate_limit_per_minute,
                                        v_now);
  begin
    insert into public.processing_jobs
      (document_id, user_id, priority, max_attempts, source, run_at, created_at, updated_at)
    values
      (v_doc.id, v_doc.user_id, 'high', reanalyze_document.max_attempts, 'reanalyze', v_now,
       v_now, v_now)
    returning id into v_new;
  exception when unique_violation then
    raise exception 'the document already has an active job'
      using errcode = 'DF409', hint = 'job_active';
  end;
  update public.documents d set last_reanalyzed_at = v_now, updated_at = v_now
   where d.id = v_doc.id;
  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'enqueued', 'document_id', v_doc.id, 'user_id', v_doc.user_id,
    'job_id', v_new, 'created_at', v_now,
    'details', jsonb_build_object('source', 'reanalyze'))));
  return jsonb_build_object('job_id', v_new, 'document_id', v_doc.id, 'status', 'pending');
end;
$$;

-- Jobs of the caller (RLS decides which), newest first, keyset-paginated on (created_at, id).
create or replace function public.list_jobs(
  status text default null,
  max_rows integer default 50,
  before_created_at timestamptz default null,
  before_id uuid default null
)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(j) - '{lease_owner,priority_rank,idempotency_key}'::text[]
                            order by j.created_at desc, j.id desc), '[]'::jsonb)
    from (select *
            from public.processing_jobs j
           where (list_jobs.status is null or j.status = list_jobs.status)
             and (list_jobs.before_created_at is null
                  or (j.created_at, j.id) < (list_jobs.before_created_at, list_jobs.before_id))
           order by j.created_at desc, j.id desc
           limit least(greatest(list_jobs.max_rows, 1), 200)) j;
$$;

revoke execute on function
  docflow_private.claim_rows(text, integer, integer, timestamptz),
  docflow_private.complete_rows(text, jsonb, timestamptz),
  docflow_private.notify_jobs(),
  docflow_private.user_exists(uuid),
  docflow_private.enqueue_guard(uuid, integer, timestamptz),
  public.create_upload(uuid, text, text, bigint, text, text, text, text, integer, jsonb, integer,
                       timestamptz),
  public.enqueue_jobs(jsonb, text, timestamptz),
  public.heartbeat_jobs(text, jsonb, integer, timestamptz),
  public.complete_jobs(text, jsonb, timestamptz),
  public.fail_jobs(text, jsonb, double precision, double precision, double precision,
                   double precision, timestamptz),
  public.release_jobs(text, jsonb, timestamptz),
  public.recover_stalled_jobs(integer, timestamptz),
  public.cancel_job(uuid, timestamptz),
  public.retry_job(uuid, integer, integer, timestamptz),
  public.reanalyze_document(uuid, integer, integer, integer, timestamptz)
  from public, anon, authenticated;

grant execute on function
  docflow_private.claim_rows(text, integer, integer, timestamptz),
  docflow_private.complete_rows(text, jsonb, timestamptz),
  docflow_private.user_exists(uuid),
  docflow_private.enqueue_guard(uuid, integer, timestamptz),
  public.create_upload(uuid, text, text, bigint, text, text, text, text, integer, jsonb, integer,
                       timestamptz),
  public.enqueue_jobs(jsonb, text, timestamptz),
  public.heartbeat_jobs(text, jsonb, integer, timestamptz),
  public.complete_jobs(text, jsonb, timestamptz),
  public.fail_jobs(text, jsonb, double precision, double precision, double precision,
                   double precision, timestamptz),
  public.release_jobs(text, jsonb, timestamptz),
  public.recover_stalled_jobs(integer, timestamptz),
  public.cancel_job(uuid, timestamptz),
  public.retry_job(uuid, integer, integer, timestamptz),
  public.reanalyze_document(uuid, integer, integer, integer, timestamptz)
  to service_role;

revoke execute on function public.list_jobs(text, integer, timestamptz, uuid) from public, anon;
grant execute on function public.list_jobs(text, integer, timestamptz, uuid)
  to authenticated, service_role;

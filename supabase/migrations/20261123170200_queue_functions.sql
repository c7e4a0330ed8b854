-- The job queue as SQL functions: upload intake, claim, complete, fail, events.
-- Every transition records its lifecycle event in the same transaction, through
-- docflow_private.log_events(), which swallows (and logs as a WARNING) any failure of the
-- event insert so that analytics can never block or fail a transition.
-- Time-dependent functions take an optional `now` (default now()) so tests are deterministic.
-- All are service-only: `revoke execute ... from public, anon, authenticated`.

create schema if not exists docflow_private;
revoke all on schema docflow_private from public, anon, authenticated;
grant usage on schema docflow_private to service_role;

-- Guarded event insert: events is a JSON array of objects with the event columns.
create or replace function docflow_private.log_events(events jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  insert into public.document_processing_events
    (document_id, user_id, job_id, event_type, duration_ms, error_message, stage, details, created_at)
  select e.document_id, e.user_id, e.job_id, e.event_type, e.duration_ms, e.error_message,
         e.stage, e.details, coalesce(e.created_at, pg_catalog.now())
  from jsonb_to_recordset(events) as e(
    document_id uuid, user_id uuid, job_id uuid, event_type text, duration_ms integer,
    error_message text, stage text, details jsonb, created_at timestamptz
  );
exception when others then
  raise warning 'docflow: % lifecycle event(s) not recorded: % (SQLSTATE %)',
    coalesce(jsonb_array_length(events), 0), sqlerrm, sqlstate;
end;
$$;

-- Intake: the document, its first job and the upload_started event, atomically.
-- An Idempotency-Key seen before for this user replays the first answer when it was for the
-- same bytes (sha256), and is a conflict otherwise.
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

  with due as (
    select j.id
      from public.processing_jobs j
     where j.status = 'pending' and j.run_at <= v_now
     order by j.priority_rank, j.run_at, j.id
     limit greatest(claim_jobs.max_jobs, 0)
       for update skip locked
  ), claimed as (
    update public.processing_jobs j
       set status = 'processing',
           attempts = j.attempts + 1,
           lease_owner = claim_jobs.worker_id,
           lease_expires_at = v_now + make_interval(secs => claim_jobs.lease_seconds),
           started_at = v_now,
           stage = null,
           progress = 0,
           updated_at = v_now
      from due
     where j.id = due.id
    returning j.id, j.document_id, j.user_id, j.priority, j.priority_rank, j.attempts,
              j.max_attempts, j.options, j.source, j.run_at, j.created_at,
              j.lease_expires_at
  )
  select coalesce(
           jsonb_agg(to_jsonb(c) - 'priority_rank' order by c.priority_rank, c.run_at, c.id),
           '[]'::jsonb)
    into v_jobs
    from claimed c;

  if jsonb_array_length(v_jobs) > 0 then
    perform docflow_private.log_events((
      select jsonb_agg(jsonb_build_object(
               'event_type', 'processing_started', 'document_id', x ->> 'document_id',
               'user_id', x ->> 'user_id', 'job_id', x ->> 'id', 'created_at', v_now,
               'details', jsonb_build_object('attempt', x -> 'attempts')))
        from jsonb_array_elements(v_jobs) x
    ));
  end if;
  return v_jobs;
end;
$$;

-- Complete one attempt. Fenced: only the lease holder of that attempt may complete it.
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
  v_now timestamptz := coalesce(complete_job.now, pg_catalog.now());
  v_job public.processing_jobs;
begin
  update public.processing_jobs j
     set status = 'completed',
         result = coalesce(complete_job.result, '{}'::jsonb),
         stage = 'finalizing',
         progress = 100,
         lease_owner = null,
         lease_expires_at = null,
         error_code = null,
         error_message = null,
         error_recoverable = null,
         completed_at = v_now,
         duration_ms = greatest(0, (extract(epoch from v_now - j.started_at) * 1000)::integer),
         updated_at = v_now
   where j.id = complete_job.job_id
     and j.status = 'processing'
     and j.lease_owner = complete_job.worker_id
     and j.attempts = complete_job.attempt
  returning j.* into v_job;

  if not found then
    raise exception 'job % attempt % is not held by this worker', complete_job.job_id,
      complete_job.attempt using errcode = 'DF409', hint = 'lease_lost';
  end if;

  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'completed', 'document_id', v_job.document_id, 'user_id', v_job.user_id,
    'job_id', v_job.id, 'duration_ms', v_job.duration_ms, 'created_at', v_now,
    'details', jsonb_build_object('attempt', v_job.attempts)
  )));

  return jsonb_build_object('id', v_job.id, 'status', v_job.status,
                            'duration_ms', v_job.duration_ms);
end;
$$;

-- Fail one attempt. Fenced like complete_job. A recoverable error with attempts left goes
-- back to pending, run_at pushed by exponential backoff with jitter:
--   delay = min(max, initial * multiplier^(attempt-1)) * (1 + jitter * uniform(-1, 1)).
-- Anything else fails the job for good (it stays for inspection).
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
  v_now timestamptz := coalesce(fail_job.now, pg_catalog.now());
  v_job public.processing_jobs;
  v_delay double precision;
  v_message text := left(fail_job.error_message, 2000);
begin
  select * into v_job
    from public.processing_jobs j
   where j.id = fail_job.job_id
     and j.status = 'processing'
     and j.lease_owner = fail_job.worker_id
     and j.attempts = fail_job.attempt
     for update;

  if not found then
    raise exception 'job % attempt % is not held by this worker', fail_job.job_id,
      fail_job.attempt using errcode = 'DF409', hint = 'lease_lost';
  end if;

  if fail_job.recoverable and v_job.attempts < v_job.max_attempts then
    v_delay := least(fail_job.retry_max_seconds,
                     fail_job.retry_initial_seconds
                       * power(fail_job.retry_multiplier, v_job.attempts - 1))
               * (1 + fail_job.retry_jitter * (2 * random() - 1));
    v_delay := greatest(v_delay, 0);
    update public.processing_jobs j
       set status = 'pending',
           run_at = v_now + make_interval(secs => v_delay),
           lease_owner = null,
           lease_expires_at = null,
           error_code = fail_job.error_code,
           error_message = v_message,
           error_recoverable = true,
           updated_at = v_now
     where j.id = v_job.id;
    perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
      'event_type', 'retry_scheduled', 'document_id', v_job.document_id,
      'user_id', v_job.user_id, 'job_id', v_job.id, 'error_message', v_message,
      'stage', v_job.stage, 'created_at', v_now,
      'details', jsonb_build_object('attempt', v_job.attempts, 'error_code', fail_job.error_code,
                                    'delay_ms', (v_delay * 1000)::bigint)
    )));
    return jsonb_build_object('id', v_job.id, 'status', 'pending',
                              'run_at', v_now + make_interval(secs => v_delay));
  end if;

  update public.processing_jobs j
     set status = 'failed',
         lease_owner = null,
         lease_expires_at = null,
         error_code = fail_job.error_code,
         error_message = v_message,
         error_recoverable = fail_job.recoverable,
         completed_at = v_now,
         duration_ms = greatest(0, (extract(epoch from v_now - j.started_at) * 1000)::integer),
         updated_at = v_now
   where j.id = v_job.id
  returning j.* into v_job;

  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'failed', 'document_id', v_job.document_id, 'user_id', v_job.user_id,
    'job_id', v_job.id, 'duration_ms', v_job.duration_ms, 'error_message', v_message,
    'stage', v_job.stage, 'created_at', v_now,
    'details', jsonb_build_object('attempt', v_job.attempts, 'error_code', fail_job.error_code,
                                  'recoverable', fail_job.recoverable)
  )));
  return jsonb_build_object('id', v_job.id, 'status', 'failed');
end;
$$;

-- Ad-hoc events from Python (shared.events), a JSON array; returns how many were stored.
create or replace function public.record_events(events jsonb)
returns integer
language sql
set search_path = ''
as $$
  with inserted as (
    insert into public.document_processing_events
      (document_id, user_id, job_id, event_type, duration_ms, error_message, stage, details,
       created_at)
    select e.document_id, e.user_id, e.job_id, e.event_type, e.duration_ms, e.error_message,
           e.stage, e.details, coalesce(e.created_at, pg_catalog.now())
      from jsonb_to_recordset(events) as e(
        document_id uuid, user_id uuid, job_id uuid, event_type text, duration_ms integer,
        error_message text, stage text, details jsonb, created_at timestamptz
      )
    returning 1
  )
  select count(*)::integer from inserted;
$$;

revoke execute on function
  docflow_private.log_events(jsonb),
  public.create_upload(uuid, text, text, bigint, text, text, text, text, integer, jsonb, timestamptz),
  public.claim_jobs(text, integer, integer, timestamptz),
  public.complete_job(uuid, text, integer, jsonb, timestamptz),
  public.fail_job(uuid, text, integer, text, text, boolean, double precision, double precision,
                  double precision, double precision, timestamptz),
  public.record_events(jsonb)
  from public, anon, authenticated;

grant execute on function
  docflow_private.log_events(jsonb),
  public.create_upload(uuid, text, text, bigint, text, text, text, text, integer, jsonb, timestamptz),
  public.claim_jobs(text, integer, integer, timestamptz),
  public.complete_job(uuid, text, integer, jsonb, timestamptz),
  public.fail_job(uuid, text, integer, text, text, boolean, double precision, double precision,
                  double precision, double precision, timestamptz),
  public.record_events(jsonb)
  to service_role;

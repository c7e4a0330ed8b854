-- The per-user enqueue limit becomes a token bucket (issue 18). Until now enqueue_guard counted
-- the jobs a user created in the last 60 s, so a data room of 200 files stopped at the 31st.
-- Now every user has a bucket of `burst` tokens (UPLOAD_RATE_BURST), refilled continuously at
-- `per_minute` tokens a minute (UPLOAD_RATE_LIMIT_PER_MINUTE) and never above `burst`; each
-- upload, retry and reanalysis takes one token. A user not seen before starts with a full
-- bucket.
--
-- * The bucket is one row in docflow_private.rate_buckets, read, refilled and debited by a
--   single `insert ... on conflict do update` in the enqueueing transaction, still under the
--   per-user advisory lock. A refusal raises DF429 `rate_limited`, which rolls the debit back
--   with everything else, so a refused request costs no token.
-- * Retry-After (DETAIL `{"retry_after": s}`) is the time until the bucket holds one whole
--   token again, rounded up to whole seconds, at least 1: with 30 a minute, an empty bucket
--   and 0.5 s since it emptied, the bucket holds 0.25 and the next token comes in 1.5 s, so 2.
-- * A clock that goes backwards (an injected `now` before the bucket's `refilled_at`, or a
--   transaction that started before the one that last wrote the bucket committed) counts as no
--   time passing: it neither mints tokens nor takes any but the one it uses, `refilled_at`
--   never moves back, and Retry-After counts from `refilled_at`.
-- * `per_minute` null or <= 0 turns the limit off: no bucket is read or written. A `burst` null
--   or below 1 counts as 1, the smallest bucket an enqueue can draw from (the settings refuse
--   such a value anyway).
-- * A lower `burst` applies at the next enqueue (the level is capped); a higher one fills up at
--   the refill rate.
-- * upload_rate_check answers the same question read-only (no write, no lock), through the same
--   two helpers, so the pre-check and create_upload agree to the bit.
-- * An Idempotency-Key replay still takes no token: create_upload answers it before the guard.
-- * enqueue_jobs (bulk: benchmarks, backfills) stays outside the limiter and takes no token.

create table if not exists docflow_private.rate_buckets (
  user_id uuid primary key references auth.users (id) on delete cascade,
  tokens double precision not null,
  refilled_at timestamptz not null
);

comment on table docflow_private.rate_buckets is
  'Per-user enqueue token buckets: tokens left at refilled_at (refill and cap are computed from '
  'the rate and burst of each call; see docflow_private.rate_bucket_level).';

alter table docflow_private.rate_buckets enable row level security;
revoke all on docflow_private.rate_buckets from public, anon, authenticated;
grant select, insert, update on docflow_private.rate_buckets to service_role;

-- The tokens in a bucket at `now`: what it held at `refilled_at`, plus the refill since then
-- (none when `now` is earlier), capped at `burst` (at least 1).
create or replace function docflow_private.rate_bucket_level(
  tokens double precision,
  refilled_at timestamptz,
  per_minute integer,
  burst integer,
  now timestamptz
)
returns double precision
language sql
immutable
set search_path = ''
as $$
  select least(
    greatest(coalesce(rate_bucket_level.burst, 1), 1)::double precision,
    rate_bucket_level.tokens
      + greatest(0, extract(epoch from rate_bucket_level.now - rate_bucket_level.refilled_at))
        ::double precision * rate_bucket_level.per_minute / 60.0::double precision
  );
$$;

-- Refuses (DF429 `rate_limited`) when taking a token leaves `tokens_left` below 0, the bucket
-- last refilled at `refilled_at`. Retry-After is the time until the refill brings it back to
-- one whole token, rounded up: the missing fraction at the rate, plus how far `refilled_at` is
-- ahead of a clock that went backwards. Both allow 1e-9 of a token (or second) of rounding:
-- the refill is computed in double precision, and 1/30 of a token a second is not exact in
-- binary, so without it an enqueue arriving exactly when its token does (as Retry-After tells
-- the client to) could be refused for 1e-16 of a token, and a wait of exactly 27 s could be
-- rounded up to 28. At most 1e-9 of a token is lent this way per enqueue.
create or replace function docflow_private.rate_bucket_refuse(
  tokens_left double precision,
  refilled_at timestamptz,
  per_minute integer,
  burst integer,
  now timestamptz
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_wait double precision;
begin
  if rate_bucket_refuse.tokens_left >= -1e-9::double precision then
    return;
  end if;
  v_wait := greatest(0, extract(epoch from rate_bucket_refuse.refilled_at
                                          - rate_bucket_refuse.now))::double precision
            - rate_bucket_refuse.tokens_left * 60.0::double precision
              / rate_bucket_refuse.per_minute;
  raise exception 'rate limit reached (burst %, % per minute); next job in % s',
    greatest(coalesce(rate_bucket_refuse.burst, 1), 1), rate_bucket_refuse.per_minute,
    greatest(round(v_wait::numeric, 1), 0.1)
    using errcode = 'DF429', hint = 'rate_limited',
          detail = json_build_object('retry_after',
                                     greatest(1, ceil(v_wait - 1e-9::double precision))::integer
                                    )::text;
end;
$$;

drop function if exists docflow_private.enqueue_guard(uuid, integer, timestamptz);

-- Per-user enqueue rate limit: take one token from the user's bucket (see the header). The
-- advisory lock serialises one user's enqueues, so the bucket cannot race (and neither can an
-- Idempotency-Key check that follows it). per_minute <= 0 turns the limit off.
create or replace function docflow_private.enqueue_guard(
  user_id uuid, per_minute integer, burst integer, now timestamptz
)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(enqueue_guard.now, pg_catalog.now());
  v_left double precision;
  v_refilled_at timestamptz;
begin
  perform pg_advisory_xact_lock(hashtextextended('docflow.enqueue:' || enqueue_guard.user_id, 0));
  if enqueue_guard.per_minute is null or enqueue_guard.per_minute <= 0 then
    return;
  end if;
  insert into docflow_private.rate_buckets as b (user_id, tokens, refilled_at)
  values (enqueue_guard.user_id,
          greatest(coalesce(enqueue_guard.burst, 1), 1)::double precision - 1, v_now)
  on conflict on constraint rate_buckets_pkey do update
    set tokens = docflow_private.rate_bucket_level(b.tokens, b.refilled_at,
                                                   enqueue_guard.per_minute, enqueue_guard.burst,
                                                   v_now) - 1,
        refilled_at = greatest(b.refilled_at, excluded.refilled_at)
  returning b.tokens, b.refilled_at into v_left, v_refilled_at;
  perform docflow_private.rate_bucket_refuse(v_left, v_refilled_at, enqueue_guard.per_minute,
                                             enqueue_guard.burst, v_now);
end;
$$;

-- The intake's pre-check (POST /uploads, before any content is read): what enqueue_guard would
-- answer now, without writing or locking anything. create_upload still enforces the limit; two
-- uploads racing past the pre-check are held to it there. A key the user already used passes
-- (create_upload replays it before the guard).
drop function if exists public.upload_rate_check(uuid, integer, text, timestamptz);

create or replace function public.upload_rate_check(
  user_id uuid,
  rate_limit_per_minute integer default 0,
  rate_burst integer default 200,
  idempotency_key text default null,
  now timestamptz default null
)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(upload_rate_check.now, pg_catalog.now());
  v_level double precision;
  v_refilled_at timestamptz;
begin
  if upload_rate_check.rate_limit_per_minute is null
     or upload_rate_check.rate_limit_per_minute <= 0 then
    return;
  end if;
  if upload_rate_check.idempotency_key is not null and exists (
    select 1
      from public.processing_jobs j
     where j.user_id = upload_rate_check.user_id
       and j.idempotency_key = upload_rate_check.idempotency_key
  ) then
    return;
  end if;
  select docflow_private.rate_bucket_level(b.tokens, b.refilled_at,
                                           upload_rate_check.rate_limit_per_minute,
                                           upload_rate_check.rate_burst, v_now),
         b.refilled_at
    into v_level, v_refilled_at
    from docflow_private.rate_buckets b
   where b.user_id = upload_rate_check.user_id;
  if not found then
    return;  -- a new user's bucket starts full
  end if;
  perform docflow_private.rate_bucket_refuse(v_level - 1, v_refilled_at,
                                             upload_rate_check.rate_limit_per_minute,
                                             upload_rate_check.rate_burst, v_now);
end;
$$;

-- Intake: as in 20261123180000_queue_engine.sql, with the bucket's size passed to the guard.
drop function if exists public.create_upload(
  uuid, text, text, bigint, text, text, text, text, integer, jsonb, integer, timestamptz);

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
  rate_burst integer default 200,
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
                                        create_upload.rate_limit_per_minute,
                                        create_upload.rate_burst, v_now);

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

-- Retry: as in 20261207240000_retry_job_document_lock.sql; the retry draws from the user's
-- bucket.
drop function if exists public.retry_job(uuid, integer, integer, timestamptz);

create or replace function public.retry_job(
  job_id uuid,
  max_attempts integer default 4,
  rate_limit_per_minute integer default 0,
  rate_burst integer default 200,
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
  if found then
    perform 1 from public.documents d where d.id = v_job.document_id for key share;
  end if;
  if not found then
    raise exception 'job not found' using errcode = 'DF404', hint = 'job_not_found';
  end if;
  if v_job.status not in ('failed', 'cancelled') then
    raise exception 'only failed or cancelled jobs can be retried (this one is %)', v_job.status
      using errcode = 'DF409', hint = 'not_retryable';
  end if;
  perform docflow_private.enqueue_guard(v_job.user_id, retry_job.rate_limit_per_minute,
                                        retry_job.rate_burst, v_now);
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

-- Reanalyze: as in 20261207220000_analysis_templates.sql; the reanalysis draws from the
-- document owner's bucket.
drop function if exists public.reanalyze_document(uuid, jsonb, integer, integer, integer,
                                                  timestamptz);

create or replace function public.reanalyze_document(
  document_id uuid,
  options jsonb default '{}'::jsonb,
  max_attempts integer default 4,
  min_interval_seconds integer default 3600,
  rate_limit_per_minute integer default 0,
  rate_burst integer default 200,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(reanalyze_document.now, pg_catalog.now());
  v_options jsonb := coalesce(reanalyze_document.options, '{}'::jsonb);
  v_template text := coalesce(v_options ->> 'template', '');
  v_doc public.documents;
  v_new uuid;
  v_wait double precision;
begin
  if jsonb_typeof(v_options) <> 'object' then
    raise exception 'options must be a JSON object' using errcode = '22023';
  end if;
  select * into v_doc from public.documents d where d.id = reanalyze_document.document_id
     for update;
  if not found then
    raise exception 'document not found' using errcode = 'DF404', hint = 'document_not_found';
  end if;
  v_wait := extract(epoch from ((v_doc.reanalyzed_at_by_template ->> v_template)::timestamptz
              + make_interval(secs => reanalyze_document.min_interval_seconds)) - v_now);
  if v_wait > 0 then
    raise exception 'a document can be reanalyzed once per % seconds with each template',
      reanalyze_document.min_interval_seconds
      using errcode = 'DF429', hint = 'reanalyze_too_soon',
            detail = json_build_object('retry_after', ceil(v_wait))::text;
  end if;
  perform docflow_private.enqueue_guard(v_doc.user_id, reanalyze_document.rate_limit_per_minute,
                                        reanalyze_document.rate_burst, v_now);
  begin
    insert into public.processing_jobs
      (document_id, user_id, priority, max_attempts, options, source, run_at, created_at,
       updated_at)
    values
      (v_doc.id, v_doc.user_id, 'high', reanalyze_document.max_attempts, v_options, 'reanalyze',
       v_now, v_now, v_now)
    returning id into v_new;
  exception when unique_violation then
    raise exception 'the document already has an active job'
      using errcode = 'DF409', hint = 'job_active';
  end;
  update public.documents d
     set last_reanalyzed_at = v_now,
         reanalyzed_at_by_template = d.reanalyzed_at_by_template
                                     || jsonb_build_object(v_template, v_now),
         updated_at = v_now
   where d.id = v_doc.id;
  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'enqueued', 'document_id', v_doc.id, 'user_id', v_doc.user_id,
    'job_id', v_new, 'created_at', v_now,
    'details', jsonb_build_object('source', 'reanalyze', 'template', v_options -> 'template'))));
  return jsonb_build_object('job_id', v_new, 'document_id', v_doc.id, 'status', 'pending');
end;
$$;

comment on function public.enqueue_jobs(jsonb, text, timestamptz) is
  'Bulk enqueue for existing documents (benchmarks, backfills): outside the per-user rate limit, '
  'it takes no token from any bucket.';

revoke execute on function
  docflow_private.rate_bucket_level(double precision, timestamptz, integer, integer,
                                    timestamptz),
  docflow_private.rate_bucket_refuse(double precision, timestamptz, integer, integer,
                                     timestamptz),
  docflow_private.enqueue_guard(uuid, integer, integer, timestamptz),
  public.upload_rate_check(uuid, integer, integer, text, timestamptz),
  public.create_upload(uuid, text, text, bigint, text, text, text, text, integer, jsonb, integer,
                       integer, timestamptz),
  public.retry_job(uuid, integer, integer, integer, timestamptz),
  public.reanalyze_document(uuid, jsonb, integer, integer, integer, integer, timestamptz)
  from public, anon, authenticated;

grant execute on function
  docflow_private.rate_bucket_level(double precision, timestamptz, integer, integer,
                                    timestamptz),
  docflow_private.rate_bucket_refuse(double precision, timestamptz, integer, integer,
                                     timestamptz),
  docflow_private.enqueue_guard(uuid, integer, integer, timestamptz),
  public.upload_rate_check(uuid, integer, integer, text, timestamptz),
  public.create_upload(uuid, text, text, bigint, text, text, text, text, integer, jsonb, integer,
                       integer, timestamptz),
  public.retry_job(uuid, integer, integer, integer, timestamptz),
  public.reanalyze_document(uuid, jsonb, integer, integer, integer, integer, timestamptz)
  to service_role;

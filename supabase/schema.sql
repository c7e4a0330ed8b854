-- docflow's database schema as the migrations in supabase/migrations/ leave it, read back from
-- a freshly migrated database by shared/dev/schema.py. Generated: do not edit. Change the
-- schema with a new migration, then run `python -m shared.dev.schema --write` (`make schema`);
-- tests/integration/test_schema_sql.py fails while this file and the migrations disagree.
-- Supabase's own objects (auth, storage tables, roles) are not here; the policies and the
-- bucket our migrations add to storage are.

-- Schemas -----------------------------------------------------------------------------------------

create schema docflow_private;
grant USAGE on schema docflow_private to service_role;

grant USAGE on schema public to public;

-- Tables ------------------------------------------------------------------------------------------

create table docflow_private.rate_buckets (
  user_id uuid not null,
  tokens double precision not null,
  refilled_at timestamp with time zone not null,
  constraint rate_buckets_pkey PRIMARY KEY (user_id),
  constraint rate_buckets_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE
);
comment on table docflow_private.rate_buckets is 'Per-user enqueue token buckets: tokens left at refilled_at (refill and cap are computed from the rate and burst of each call; see docflow_private.rate_bucket_level).';
alter table docflow_private.rate_buckets enable row level security;
grant INSERT, SELECT, UPDATE on table docflow_private.rate_buckets to service_role;

create table public.alert_events (
  id bigint generated always as identity not null,
  service_name text not null,
  alert_type text not null,
  status text default 'active'::text not null,
  message text not null,
  details jsonb default '{}'::jsonb not null,
  created_at timestamp with time zone default now() not null,
  acknowledged_at timestamp with time zone,
  resolved_at timestamp with time zone,
  notified_at timestamp with time zone,
  notifications integer default 0 not null,
  constraint alert_events_alert_type_check CHECK ((alert_type = ANY (ARRAY['service_down'::text, 'service_degraded'::text, 'recovery'::text]))),
  constraint alert_events_pkey PRIMARY KEY (id),
  constraint alert_events_recovery_is_resolved CHECK (((alert_type <> 'recovery'::text) OR (status = 'resolved'::text))),
  constraint alert_events_service_name_check CHECK (((char_length(service_name) >= 1) AND (char_length(service_name) <= 100))),
  constraint alert_events_status_check CHECK ((status = ANY (ARRAY['active'::text, 'acknowledged'::text, 'resolved'::text])))
);
CREATE INDEX alert_events_created_at_idx ON public.alert_events USING btree (created_at);
CREATE UNIQUE INDEX alert_events_one_open_per_identity ON public.alert_events USING btree (service_name, alert_type) WHERE (status = ANY (ARRAY['active'::text, 'acknowledged'::text]));
CREATE INDEX alert_events_resolved_at_idx ON public.alert_events USING btree (resolved_at) WHERE (status = 'resolved'::text);
CREATE INDEX alert_events_service_status_idx ON public.alert_events USING btree (service_name, status);
CREATE INDEX alert_events_status_idx ON public.alert_events USING btree (status);
alter table public.alert_events enable row level security;
create policy alert_events_select_admin on public.alert_events
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
grant SELECT on table public.alert_events to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.alert_events to service_role;

create table public.analytics_histograms (
  grain integer not null,
  bucket_start timestamp with time zone not null,
  metric text not null,
  idx integer not null,
  n bigint not null,
  total double precision not null,
  constraint analytics_histograms_grain_check CHECK ((grain = ANY (ARRAY[300, 3600, 86400]))),
  constraint analytics_histograms_pkey PRIMARY KEY (grain, bucket_start, metric, idx)
);
alter table public.analytics_histograms enable row level security;
create policy analytics_histograms_select_admin on public.analytics_histograms
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
grant SELECT on table public.analytics_histograms to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.analytics_histograms to service_role;

create table public.analytics_pending (
  id bigint generated always as identity not null,
  created_at timestamp with time zone not null,
  event_type text not null,
  priority text not null,
  content_type text not null,
  duration_ms integer,
  wait_ms double precision,
  stages jsonb,
  constraint analytics_pending_pkey PRIMARY KEY (id)
);
alter table public.analytics_pending enable row level security;
create policy analytics_pending_select_admin on public.analytics_pending
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
grant SELECT on table public.analytics_pending to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.analytics_pending to service_role;

create table public.analytics_rollups (
  grain integer not null,
  bucket_start timestamp with time zone not null,
  event_type text not null,
  priority text not null,
  content_type text not null,
  events bigint not null,
  duration_n bigint not null,
  duration_sum double precision not null,
  constraint analytics_rollups_grain_check CHECK ((grain = ANY (ARRAY[300, 3600, 86400]))),
  constraint analytics_rollups_pkey PRIMARY KEY (grain, bucket_start, event_type, priority, content_type)
);
alter table public.analytics_rollups enable row level security;
create policy analytics_rollups_select_admin on public.analytics_rollups
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
grant SELECT on table public.analytics_rollups to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.analytics_rollups to service_role;

create table public.analytics_stage_totals (
  grain integer not null,
  bucket_start timestamp with time zone not null,
  stage text not null,
  n bigint not null,
  total_ms double precision not null,
  constraint analytics_stage_totals_grain_check CHECK ((grain = ANY (ARRAY[300, 3600, 86400]))),
  constraint analytics_stage_totals_pkey PRIMARY KEY (grain, bucket_start, stage)
);
alter table public.analytics_stage_totals enable row level security;
create policy analytics_stage_totals_select_admin on public.analytics_stage_totals
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
grant SELECT on table public.analytics_stage_totals to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.analytics_stage_totals to service_role;

create table public.document_processing_events (
  id bigint generated always as identity not null,
  document_id uuid,
  user_id uuid,
  job_id uuid,
  event_type text not null,
  duration_ms integer,
  error_message text,
  stage text,
  details jsonb,
  created_at timestamp with time zone default now() not null,
  constraint document_processing_events_duration_ms_check CHECK ((duration_ms >= 0)),
  constraint document_processing_events_event_type_check CHECK ((event_type = ANY (ARRAY['upload_started'::text, 'upload_rejected'::text, 'enqueued'::text, 'processing_started'::text, 'completed'::text, 'failed'::text, 'retry_scheduled'::text, 'cancelled'::text, 'stalled_recovered'::text, 'released'::text]))),
  constraint document_processing_events_pkey PRIMARY KEY (id),
  constraint document_processing_events_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE
);
CREATE INDEX document_processing_events_created_at_idx ON public.document_processing_events USING btree (created_at);
CREATE INDEX document_processing_events_document_idx ON public.document_processing_events USING btree (document_id);
CREATE INDEX document_processing_events_errors_idx ON public.document_processing_events USING btree (created_at) INCLUDE (error_message) WHERE (error_message IS NOT NULL);
CREATE INDEX document_processing_events_type_created_idx ON public.document_processing_events USING btree (event_type, created_at);
CREATE INDEX document_processing_events_user_idx ON public.document_processing_events USING btree (user_id);
alter table public.document_processing_events enable row level security;
create policy document_processing_events_select_admin on public.document_processing_events
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
CREATE TRIGGER document_processing_events_analytics AFTER INSERT ON public.document_processing_events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION docflow_private.record_analytics_facts();
grant SELECT on table public.document_processing_events to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.document_processing_events to service_role;

create table public.documents (
  id uuid default gen_random_uuid() not null,
  user_id uuid not null,
  original_filename text not null,
  content_type text not null,
  size_bytes bigint not null,
  sha256 text not null,
  storage_path text not null,
  text_path text,
  last_reanalyzed_at timestamp with time zone,
  created_at timestamp with time zone default now() not null,
  updated_at timestamp with time zone default now() not null,
  markdown_path text,
  reanalyzed_at_by_template jsonb default '{}'::jsonb not null,
  constraint documents_content_type_check CHECK (((char_length(content_type) >= 1) AND (char_length(content_type) <= 255))),
  constraint documents_original_filename_check CHECK (((char_length(original_filename) >= 1) AND (char_length(original_filename) <= 255))),
  constraint documents_pkey PRIMARY KEY (id),
  constraint documents_sha256_check CHECK ((sha256 ~ '^[0-9a-f]{64}$'::text)),
  constraint documents_size_bytes_check CHECK ((size_bytes > 0)),
  constraint documents_storage_path_key UNIQUE (storage_path),
  constraint documents_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE
);
CREATE INDEX documents_created_at_idx ON public.documents USING btree (created_at);
CREATE INDEX documents_user_created_idx ON public.documents USING btree (user_id, created_at DESC, id DESC);
alter table public.documents enable row level security;
create policy documents_select_own_or_admin on public.documents
  for select to authenticated
  using (((user_id = ( SELECT auth.uid() AS uid)) OR (((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text)));
CREATE TRIGGER documents_queue_files AFTER DELETE ON public.documents REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION docflow_private.queue_document_files();
grant SELECT on table public.documents to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.documents to service_role;

create table public.job_status_counts (
  id bigint generated always as identity not null,
  status text not null,
  priority text not null,
  n bigint not null,
  constraint job_status_counts_pkey PRIMARY KEY (id)
);
alter table public.job_status_counts enable row level security;
create policy job_status_counts_select_admin on public.job_status_counts
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
grant SELECT on table public.job_status_counts to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.job_status_counts to service_role;

create table public.processing_jobs (
  id uuid default gen_random_uuid() not null,
  document_id uuid not null,
  user_id uuid not null,
  status text default 'pending'::text not null,
  priority text default 'normal'::text not null,
  priority_rank smallint generated always as (
CASE priority
    WHEN 'high'::text THEN 0
    WHEN 'normal'::text THEN 1
    ELSE 2
END) stored,
  stage text,
  progress smallint default 0 not null,
  attempts integer default 0 not null,
  max_attempts integer default 4 not null,
  run_at timestamp with time zone default now() not null,
  lease_owner text,
  lease_expires_at timestamp with time zone,
  error_code text,
  error_message text,
  error_recoverable boolean,
  options jsonb default '{}'::jsonb not null,
  result jsonb,
  source text default 'upload'::text not null,
  idempotency_key text,
  created_at timestamp with time zone default now() not null,
  started_at timestamp with time zone,
  completed_at timestamp with time zone,
  duration_ms integer,
  updated_at timestamp with time zone default now() not null,
  cancel_requested_at timestamp with time zone,
  constraint processing_jobs_attempts_bounded CHECK ((attempts <= max_attempts)),
  constraint processing_jobs_attempts_check CHECK ((attempts >= 0)),
  constraint processing_jobs_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.documents(id) ON DELETE CASCADE,
  constraint processing_jobs_duration_ms_check CHECK ((duration_ms >= 0)),
  constraint processing_jobs_idempotency_key_check CHECK (((char_length(idempotency_key) >= 1) AND (char_length(idempotency_key) <= 255))),
  constraint processing_jobs_lease_consistent CHECK (((status = 'processing'::text) = ((lease_owner IS NOT NULL) AND (lease_expires_at IS NOT NULL)))),
  constraint processing_jobs_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
  constraint processing_jobs_pkey PRIMARY KEY (id),
  constraint processing_jobs_priority_check CHECK ((priority = ANY (ARRAY['low'::text, 'normal'::text, 'high'::text]))),
  constraint processing_jobs_progress_check CHECK (((progress >= 0) AND (progress <= 100))),
  constraint processing_jobs_source_check CHECK ((source = ANY (ARRAY['upload'::text, 'reanalyze'::text, 'retry'::text]))),
  constraint processing_jobs_stage_check CHECK ((stage = ANY (ARRAY['validating'::text, 'reading'::text, 'parsing'::text, 'extracting'::text, 'analyzing'::text, 'finalizing'::text]))),
  constraint processing_jobs_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'processing'::text, 'completed'::text, 'failed'::text, 'cancelled'::text]))),
  constraint processing_jobs_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE
);
CREATE INDEX processing_jobs_claim_idx ON public.processing_jobs USING btree (priority_rank, run_at, id) WHERE (status = 'pending'::text);
CREATE INDEX processing_jobs_completed_at_idx ON public.processing_jobs USING btree (completed_at) WHERE (completed_at IS NOT NULL);
CREATE INDEX processing_jobs_created_at_idx ON public.processing_jobs USING btree (created_at);
CREATE INDEX processing_jobs_document_idx ON public.processing_jobs USING btree (document_id, created_at DESC);
CREATE INDEX processing_jobs_lease_idx ON public.processing_jobs USING btree (lease_expires_at) WHERE (status = 'processing'::text);
CREATE UNIQUE INDEX processing_jobs_one_active_per_document ON public.processing_jobs USING btree (document_id) WHERE (status = ANY (ARRAY['pending'::text, 'processing'::text]));
CREATE INDEX processing_jobs_user_created_idx ON public.processing_jobs USING btree (user_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX processing_jobs_user_idempotency_key ON public.processing_jobs USING btree (user_id, idempotency_key) WHERE (idempotency_key IS NOT NULL);
alter table public.processing_jobs enable row level security;
create policy processing_jobs_select_own_or_admin on public.processing_jobs
  for select to authenticated
  using (((user_id = ( SELECT auth.uid() AS uid)) OR (((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text)));
CREATE TRIGGER processing_jobs_count_deletes AFTER DELETE ON public.processing_jobs REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION docflow_private.count_job_statuses();
CREATE TRIGGER processing_jobs_count_truncate AFTER TRUNCATE ON public.processing_jobs FOR EACH STATEMENT EXECUTE FUNCTION docflow_private.count_job_statuses();
CREATE TRIGGER processing_jobs_notify AFTER INSERT ON public.processing_jobs FOR EACH STATEMENT EXECUTE FUNCTION docflow_private.notify_jobs();
grant SELECT on table public.processing_jobs to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.processing_jobs to service_role;

create table public.service_health_checks (
  id bigint generated always as identity not null,
  service_name text not null,
  status text not null,
  latency_ms integer,
  checked_at timestamp with time zone default now() not null,
  error_message text,
  probe_details jsonb default '{}'::jsonb not null,
  created_at timestamp with time zone default now() not null,
  constraint service_health_checks_latency_ms_check CHECK ((latency_ms >= 0)),
  constraint service_health_checks_pkey PRIMARY KEY (id),
  constraint service_health_checks_service_name_check CHECK (((char_length(service_name) >= 1) AND (char_length(service_name) <= 100))),
  constraint service_health_checks_status_check CHECK ((status = ANY (ARRAY['healthy'::text, 'degraded'::text, 'down'::text])))
);
CREATE INDEX service_health_checks_created_at_idx ON public.service_health_checks USING btree (created_at);
CREATE INDEX service_health_checks_service_created_idx ON public.service_health_checks USING btree (service_name, created_at DESC);
alter table public.service_health_checks enable row level security;
create policy service_health_checks_select_admin on public.service_health_checks
  for select to authenticated
  using ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text));
grant SELECT on table public.service_health_checks to authenticated;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.service_health_checks to service_role;

create table public.storage_deletions (
  id bigint generated always as identity not null,
  object_path text not null,
  reason text not null,
  queued_at timestamp with time zone default now() not null,
  constraint storage_deletions_pkey PRIMARY KEY (id)
);
alter table public.storage_deletions enable row level security;
grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on table public.storage_deletions to service_role;

-- Sequences (identity columns) and their grants ---------------------------------------------------

grant SELECT, UPDATE, USAGE on sequence public.alert_events_id_seq to service_role;
grant SELECT, UPDATE, USAGE on sequence public.analytics_pending_id_seq to service_role;
grant SELECT, UPDATE, USAGE on sequence public.document_processing_events_id_seq to service_role;
grant SELECT, UPDATE, USAGE on sequence public.job_status_counts_id_seq to service_role;
grant SELECT, UPDATE, USAGE on sequence public.service_health_checks_id_seq to service_role;
grant SELECT, UPDATE, USAGE on sequence public.storage_deletions_id_seq to service_role;

-- Functions ---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION docflow_private.claim_rows(worker_id text, max_jobs integer, lease_seconds integer, now timestamp with time zone)
 RETURNS TABLE(id uuid, document_id uuid, user_id uuid, priority text, priority_rank smallint, attempts integer, max_attempts integer, options jsonb, source text, run_at timestamp with time zone, created_at timestamp with time zone, lease_expires_at timestamp with time zone)
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function docflow_private.claim_rows(worker_id text, max_jobs integer, lease_seconds integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION docflow_private.complete_rows(worker_id text, completions jsonb, now timestamp with time zone)
 RETURNS TABLE(id uuid, status text, document_id uuid, user_id uuid, attempts integer, duration_ms integer, stage text)
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function docflow_private.complete_rows(worker_id text, completions jsonb, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION docflow_private.count_job_statuses()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION docflow_private.enqueue_guard(user_id uuid, per_minute integer, burst integer, now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function docflow_private.enqueue_guard(user_id uuid, per_minute integer, burst integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION docflow_private.fold_job_status_counts()
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function docflow_private.fold_job_status_counts() to service_role;

CREATE OR REPLACE FUNCTION docflow_private.log_events(events jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function docflow_private.log_events(events jsonb) to service_role;

CREATE OR REPLACE FUNCTION docflow_private.notify_jobs()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  perform pg_notify('docflow_jobs', '');
  return null;
end;
$function$;

CREATE OR REPLACE FUNCTION docflow_private.prune_rollups(keep_days integer, batch_size integer, dry_run boolean, now timestamp with time zone)
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_total bigint := 0;
  v_n bigint;
  v_grain integer;
  v_cutoff timestamptz;
begin
  foreach v_grain in array array[300, 3600, 86400] loop
    v_cutoff := case v_grain
      when 300 then now - interval '2 days'
      when 3600 then now - interval '8 days'
      else case when keep_days is null or keep_days <= 0 then null
                else now - make_interval(days => keep_days) end
    end;
    continue when v_cutoff is null;  -- daily buckets kept forever
    if dry_run then
      select (select count(*) from public.analytics_rollups r
               where r.grain = v_grain and r.bucket_start < v_cutoff)
           + (select count(*) from public.analytics_histograms h
               where h.grain = v_grain and h.bucket_start < v_cutoff)
           + (select count(*) from public.analytics_stage_totals t
               where t.grain = v_grain and t.bucket_start < v_cutoff)
        into v_n;
      v_total := v_total + v_n;
      continue;
    end if;
    delete from public.analytics_rollups r
     where r.ctid = any (array(
       select x.ctid from public.analytics_rollups x
        where x.grain = v_grain and x.bucket_start < v_cutoff limit batch_size));
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    delete from public.analytics_histograms h
     where h.ctid = any (array(
       select x.ctid from public.analytics_histograms x
        where x.grain = v_grain and x.bucket_start < v_cutoff limit batch_size));
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
    delete from public.analytics_stage_totals t
     where t.ctid = any (array(
       select x.ctid from public.analytics_stage_totals x
        where x.grain = v_grain and x.bucket_start < v_cutoff limit batch_size));
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
  end loop;
  return v_total;
end;
$function$;
grant EXECUTE on function docflow_private.prune_rollups(keep_days integer, batch_size integer, dry_run boolean, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION docflow_private.queue_document_files()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  insert into public.storage_deletions (object_path, reason)
  select p.path, 'document_deleted'
    from old_rows o
   cross join lateral (values (o.storage_path), (o.text_path), (o.markdown_path)) as p(path)
   where p.path is not null;
  return null;
end;
$function$;

CREATE OR REPLACE FUNCTION docflow_private.rate_bucket_level(tokens double precision, refilled_at timestamp with time zone, per_minute integer, burst integer, now timestamp with time zone)
 RETURNS double precision
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select least(
    greatest(coalesce(rate_bucket_level.burst, 1), 1)::double precision,
    rate_bucket_level.tokens
      + greatest(0, extract(epoch from rate_bucket_level.now - rate_bucket_level.refilled_at))
        ::double precision * rate_bucket_level.per_minute / 60.0::double precision
  );
$function$;
grant EXECUTE on function docflow_private.rate_bucket_level(tokens double precision, refilled_at timestamp with time zone, per_minute integer, burst integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION docflow_private.rate_bucket_refuse(tokens_left double precision, refilled_at timestamp with time zone, per_minute integer, burst integer, now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function docflow_private.rate_bucket_refuse(tokens_left double precision, refilled_at timestamp with time zone, per_minute integer, burst integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION docflow_private.record_analytics_facts()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  insert into public.analytics_pending
    (created_at, event_type, priority, content_type, duration_ms, wait_ms, stages)
  select e.created_at, e.event_type,
         left(coalesce(e.details ->> 'priority', j.priority, 'unknown'), 50),
         left(coalesce(e.details ->> 'content_type', d.content_type, 'unknown'), 255),
         e.duration_ms,
         case when e.event_type = 'processing_started' and e.details ->> 'attempt' = '1'
                   and j.created_at is not null
              then greatest(0, extract(epoch from e.created_at - j.created_at) * 1000) end,
         case when e.event_type = 'completed' and jsonb_typeof(j.timings) = 'object'
              then j.timings end
    from new_events e
    left join lateral (
      select pj.priority, pj.created_at, pj.result -> 'timings_ms' as timings
        from public.processing_jobs pj
       where pj.id = e.job_id
       limit 1
    ) j on true
    left join lateral (
      select doc.content_type from public.documents doc where doc.id = e.document_id limit 1
    ) d on true;
  return null;
end;
$function$;

CREATE OR REPLACE FUNCTION docflow_private.user_exists(user_id uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select exists (select 1 from auth.users u where u.id = user_exists.user_id);
$function$;
grant EXECUTE on function docflow_private.user_exists(user_id uuid) to service_role;

CREATE OR REPLACE FUNCTION public.acknowledge_alert(alert_id bigint, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_alert public.alert_events;
begin
  select * into v_alert from public.alert_events a where a.id = acknowledge_alert.alert_id
     for update;
  if not found then
    raise exception 'alert not found' using errcode = 'DF404', hint = 'alert_not_found';
  end if;
  if v_alert.alert_type = 'recovery' or v_alert.status = 'resolved' then
    raise exception 'a resolved alert cannot be acknowledged'
      using errcode = 'DF409', hint = 'alert_resolved';
  end if;
  if v_alert.status = 'active' then
    update public.alert_events a
       set status = 'acknowledged',
           acknowledged_at = coalesce(acknowledge_alert.now, pg_catalog.now())
     where a.id = v_alert.id
    returning * into v_alert;
  end if;
  return to_jsonb(v_alert);
end;
$function$;
grant EXECUTE on function public.acknowledge_alert(alert_id bigint, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.analytics_bucket(value double precision)
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO ''
AS $function$
  select case when value is null then null
              when value <= 0.001 then -32768
              else ceil(ln(value) / ln(1.02))::integer end;
$function$;
grant EXECUTE on function public.analytics_bucket(value double precision) to authenticated;
grant EXECUTE on function public.analytics_bucket(value double precision) to service_role;

CREATE OR REPLACE FUNCTION public.analytics_bucket_value(idx integer)
 RETURNS double precision
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO ''
AS $function$
  select case when idx is null then null
              when idx = -32768 then 0::double precision
              else 2 * power(1.02::double precision, idx) / 2.02 end;
$function$;
grant EXECUTE on function public.analytics_bucket_value(idx integer) to authenticated;
grant EXECUTE on function public.analytics_bucket_value(idx integer) to service_role;

CREATE OR REPLACE FUNCTION public.analytics_event_counts(window_seconds integer DEFAULT 86400, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  with bounds as (
    select coalesce(analytics_event_counts.now, pg_catalog.now()) as until
  )
  select jsonb_build_object(
           'since', b.until - make_interval(secs => analytics_event_counts.window_seconds),
           'until', b.until,
           'event_counts', coalesce((
             select jsonb_object_agg(c.event_type, c.n order by c.event_type)
               from (select e.event_type, count(*) as n
                       from public.document_processing_events e
                      where e.created_at > b.until
                              - make_interval(secs => analytics_event_counts.window_seconds)
                        and e.created_at <= b.until
                      group by e.event_type) c
           ), '{}'::jsonb))
    from bounds b;
$function$;
grant EXECUTE on function public.analytics_event_counts(window_seconds integer, now timestamp with time zone) to authenticated;
grant EXECUTE on function public.analytics_event_counts(window_seconds integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.analytics_report(window_name text DEFAULT '24h'::text, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(analytics_report.now, pg_catalog.now());
  v_grain integer;
  v_buckets integer;
  v_width interval;
  v_last timestamptz;
  v_since timestamptz;
  v_report jsonb;
begin
  case analytics_report.window_name
    when '1h' then v_grain := 300; v_buckets := 12;
    when '24h' then v_grain := 3600; v_buckets := 24;
    when '7d' then v_grain := 3600; v_buckets := 168;
    when '30d' then v_grain := 86400; v_buckets := 30;
    else
      raise exception 'window must be one of 1h, 24h, 7d, 30d'
        using errcode = 'DF422', hint = 'invalid_window';
  end case;
  v_width := make_interval(secs => v_grain);
  v_last := date_bin(v_width, v_now, timestamptz '1970-01-01 00:00+00');
  v_since := v_last - v_width * (v_buckets - 1);

  with pending as materialized (
    select date_bin(v_width, p.created_at, timestamptz '1970-01-01 00:00+00') as bucket_start,
           p.*
      from public.analytics_pending p
     where p.created_at >= v_since and p.created_at < v_last + v_width
  ), counts as materialized (
    select r.bucket_start, r.event_type, r.priority, r.content_type, r.events, r.duration_n,
           r.duration_sum
      from public.analytics_rollups r
     where r.grain = v_grain and r.bucket_start >= v_since and r.bucket_start <= v_last
    union all
    select p.bucket_start, p.event_type, p.priority, p.content_type, count(*),
           count(p.duration_ms), coalesce(sum(p.duration_ms), 0)
      from pending p
     group by 1, 2, 3, 4
  ), hist as materialized (
    select h.bucket_start, h.metric, h.idx, h.n, h.total
      from public.analytics_histograms h
     where h.grain = v_grain and h.bucket_start >= v_since and h.bucket_start <= v_last
    union all
    select m.bucket_start, m.metric, public.analytics_bucket(m.value), count(*), sum(m.value)
      from (select p.bucket_start, 'duration' as metric, p.duration_ms::double precision as value
              from pending p
             where p.event_type = 'completed' and p.duration_ms >= 0
            union all
            select p.bucket_start, 'queue_wait', p.wait_ms
              from pending p
             where p.wait_ms >= 0) m
     group by 1, 2, 3
  ), stage_totals as (
    select t.stage, t.n, t.total_ms
      from public.analytics_stage_totals t
     where t.grain = v_grain and t.bucket_start >= v_since and t.bucket_start <= v_last
    union all
    select s.stage, 1, s.ms
      from pending p cross join lateral public.analytics_stage_times(p.stages) s
     where p.stages is not null
  ), merged as (
    select h.metric, h.idx, sum(h.n) as n, sum(h.total) as total
      from hist h
     group by h.metric, h.idx
  ), ranked as (
    select m.metric, m.idx, m.n, m.total,
           sum(m.n) over (partition by m.metric order by m.idx) as cum,
           sum(m.n) over (partition by m.metric) as cnt
      from merged m
  ), metrics as (
    select r.metric, max(r.cnt) as cnt, sum(r.total) as total,
           public.analytics_bucket_value(min(r.idx) filter (where r.cum >= ceil(0.50 * r.cnt)))
             as p50,
           public.analytics_bucket_value(min(r.idx) filter (where r.cum >= ceil(0.95 * r.cnt)))
             as p95,
           public.analytics_bucket_value(min(r.idx) filter (where r.cum >= ceil(0.99 * r.cnt)))
             as p99
      from ranked r
     group by r.metric
  ), series_ranked as (
    select h.bucket_start, h.idx,
           sum(h.n) over (partition by h.bucket_start order by h.idx) as cum,
           sum(h.n) over (partition by h.bucket_start) as cnt
      from hist h
     where h.metric = 'duration'
  ), series_p95 as (
    select s.bucket_start,
           public.analytics_bucket_value(min(s.idx) filter (where s.cum >= ceil(0.95 * s.cnt)))
             as p95
      from series_ranked s
     group by s.bucket_start
  ), series_counts as (
    select c.bucket_start,
           sum(c.events) filter (where c.event_type = 'completed') as completed,
           sum(c.events) filter (where c.event_type = 'failed') as failed
      from counts c
     group by c.bucket_start
  ), totals as (
    select coalesce(sum(c.events) filter (where c.event_type = 'completed'), 0) as completed,
           coalesce(sum(c.events) filter (where c.event_type = 'failed'), 0) as failed,
           coalesce(sum(c.events) filter (where c.event_type in ('upload_started', 'enqueued')), 0)
             as created
      from counts c
  ), errors as (
    select left(e.error_message, 300) as message, count(*) as n
      from public.document_processing_events e
     where e.error_message is not null and e.created_at >= v_since and e.created_at <= v_now
     group by 1
     order by 2 desc, 1
     limit 10
  )
  select jsonb_build_object(
    'window', analytics_report.window_name,
    'since', v_since,
    'until', v_now,
    'bucket_seconds', v_grain,
    'percentile_relative_error', 0.01,
    'event_counts', coalesce((
      select jsonb_object_agg(x.event_type, x.n order by x.event_type)
        from (select c.event_type, sum(c.events) as n from counts c group by 1) x), '{}'::jsonb),
    'jobs', (
      select jsonb_build_object(
        'created', t.created,
        'completed', t.completed,
        'failed', t.failed,
        'success_rate', case when t.completed + t.failed > 0
                             then round(t.completed::numeric / (t.completed + t.failed), 4) end,
        'throughput_per_hour', round(t.completed::numeric
          / greatest(extract(epoch from v_now - v_since), 1) * 3600, 3))
        from totals t),
    'duration_ms', coalesce((
      select jsonb_build_object(
        'count', m.cnt, 'avg', round((m.total / m.cnt)::numeric, 3),
        'p50', round(m.p50::numeric, 3), 'p95', round(m.p95::numeric, 3),
        'p99', round(m.p99::numeric, 3))
        from metrics m where m.metric = 'duration'),
      jsonb_build_object('count', 0, 'avg', null, 'p50', null, 'p95', null, 'p99', null)),
    'queue_wait_ms', coalesce((
      select jsonb_build_object(
        'count', m.cnt, 'avg', round((m.total / m.cnt)::numeric, 3),
        'p95', round(m.p95::numeric, 3))
        from metrics m where m.metric = 'queue_wait'),
      jsonb_build_object('count', 0, 'avg', null, 'p95', null)),
    'by_content_type', coalesce((
      select jsonb_agg(jsonb_build_object(
               'content_type', x.content_type, 'created', x.created,
               'completed', x.completed, 'failed', x.failed)
               order by x.created desc, x.content_type)
        from (select c.content_type,
                     coalesce(sum(c.events) filter (where c.event_type in
                       ('upload_started', 'enqueued')), 0) as created,
                     coalesce(sum(c.events) filter (where c.event_type = 'completed'), 0)
                       as completed,
                     coalesce(sum(c.events) filter (where c.event_type = 'failed'), 0) as failed
                from counts c
               where c.event_type in ('upload_started', 'enqueued', 'completed', 'failed')
               group by c.content_type) x), '[]'::jsonb),
    'by_priority', coalesce((
      select jsonb_agg(jsonb_build_object(
               'priority', x.priority, 'created', x.created,
               'completed', x.completed, 'failed', x.failed)
               order by case x.priority when 'high' then 0 when 'normal' then 1
                                        when 'low' then 2 else 3 end, x.priority)
        from (select c.priority,
                     coalesce(sum(c.events) filter (where c.event_type in
                       ('upload_started', 'enqueued')), 0) as created,
                     coalesce(sum(c.events) filter (where c.event_type = 'completed'), 0)
                       as completed,
                     coalesce(sum(c.events) filter (where c.event_type = 'failed'), 0) as failed
                from counts c
               where c.event_type in ('upload_started', 'enqueued', 'completed', 'failed')
               group by c.priority) x), '[]'::jsonb),
    'series', (
      select jsonb_agg(jsonb_build_object(
               'start', b.start,
               'completed', coalesce(sc.completed, 0),
               'failed', coalesce(sc.failed, 0),
               'p95_ms', round(sp.p95::numeric, 3))
               order by b.start)
        from generate_series(v_since, v_last, v_width) as b(start)
        left join series_counts sc on sc.bucket_start = b.start
        left join series_p95 sp on sp.bucket_start = b.start),
    'top_errors', coalesce((
      select jsonb_agg(jsonb_build_object('message', e.message, 'count', e.n)
                       order by e.n desc, e.message)
        from errors e), '[]'::jsonb),
    'stages', coalesce((
      select jsonb_agg(jsonb_build_object(
               'stage', x.stage, 'count', x.n, 'avg_ms', round((x.total / x.n)::numeric, 3))
               order by case x.stage
                          when 'validating' then 0 when 'reading' then 1 when 'parsing' then 2
                          when 'extracting' then 3 when 'analyzing' then 4
                          when 'finalizing' then 5 else 6 end, x.stage)
        from (select t.stage, sum(t.n) as n, sum(t.total_ms) as total
                from stage_totals t
               group by t.stage) x
       where x.n > 0), '[]'::jsonb)
  ) into v_report;
  return v_report;
end;
$function$;
grant EXECUTE on function public.analytics_report(window_name text, now timestamp with time zone) to authenticated;
grant EXECUTE on function public.analytics_report(window_name text, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.analytics_stage_times(stages jsonb)
 RETURNS TABLE(stage text, ms double precision)
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select left(x.key, 50), round(x.value::numeric, 6)::double precision
    from jsonb_each(case when jsonb_typeof(stages) = 'object' then stages end) x
   where jsonb_typeof(x.value) = 'number'
     and case when jsonb_typeof(x.value) = 'number'
              then x.value::numeric between 0 and 1e12 else false end;
$function$;
grant EXECUTE on function public.analytics_stage_times(stages jsonb) to authenticated;
grant EXECUTE on function public.analytics_stage_times(stages jsonb) to service_role;

CREATE OR REPLACE FUNCTION public.cancel_job(job_id uuid, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.cancel_job(job_id uuid, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.claim_jobs(worker_id text, max_jobs integer DEFAULT 1, lease_seconds integer DEFAULT 30, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(claim_jobs.now, pg_catalog.now());
  v_jobs jsonb;
  v_ids uuid[];
  v_documents uuid[];
  v_users uuid[];
  v_attempts integer[];
begin
  if claim_jobs.worker_id is null or claim_jobs.worker_id = '' then
    raise exception 'worker_id is required' using errcode = 'DF422', hint = 'invalid_worker';
  end if;
  -- The claim: not guarded, its errors are the caller's.
  -- One sort, in the subquery: the aggregates take its rows in that order.
  select coalesce(jsonb_agg(to_jsonb(c) - 'priority_rank'), '[]'::jsonb),
         array_agg(c.id), array_agg(c.document_id), array_agg(c.user_id), array_agg(c.attempts)
    into v_jobs, v_ids, v_documents, v_users, v_attempts
    from (select *
            from docflow_private.claim_rows(claim_jobs.worker_id, claim_jobs.max_jobs,
                                            claim_jobs.lease_seconds, v_now) r
           order by r.priority_rank, r.run_at, r.id) c;
  -- The events: guarded alone, as in log_events.
  if v_ids is not null then
    begin
      insert into public.document_processing_events
        (document_id, user_id, job_id, event_type, details, created_at)
      select e.document_id, e.user_id, e.id, 'processing_started',
             jsonb_build_object('attempt', e.attempt), v_now
        from unnest(v_documents, v_users, v_ids, v_attempts)
          with ordinality as e(document_id, user_id, id, attempt, n)
       order by e.n;
    exception when others then
      raise warning 'docflow: % lifecycle event(s) not recorded: % (SQLSTATE %)',
        pg_catalog.cardinality(v_ids), sqlerrm, sqlstate;
    end;
  end if;
  return v_jobs;
end;
$function$;
grant EXECUTE on function public.claim_jobs(worker_id text, max_jobs integer, lease_seconds integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.complete_job(job_id uuid, worker_id text, attempt integer, result jsonb DEFAULT '{}'::jsonb, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.complete_job(job_id uuid, worker_id text, attempt integer, result jsonb, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.complete_jobs(worker_id text, completions jsonb, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(complete_jobs.now, pg_catalog.now());
  v_done jsonb;
  v_cancelled jsonb;
  v_ids uuid[];
  v_statuses text[];
  v_documents uuid[];
  v_users uuid[];
  v_durations integer[];
  v_stages text[];
  v_attempts integer[];
begin
  -- The completion: not guarded, its errors are the caller's.
  -- One sort, in the subquery: the aggregates take its rows in that order.
  select coalesce(jsonb_agg(f.id) filter (where f.status = 'completed'), '[]'::jsonb),
         coalesce(jsonb_agg(f.id) filter (where f.status = 'cancelled'), '[]'::jsonb),
         array_agg(f.id), array_agg(f.status), array_agg(f.document_id), array_agg(f.user_id),
         array_agg(f.duration_ms), array_agg(f.stage), array_agg(f.attempts)
    into v_done, v_cancelled, v_ids, v_statuses, v_documents, v_users, v_durations, v_stages,
         v_attempts
    from (select *
            from docflow_private.complete_rows(complete_jobs.worker_id, complete_jobs.completions,
                                               v_now) r
           order by r.id) f;
  -- The events: guarded alone, as in log_events.
  if v_ids is not null then
    begin
      insert into public.document_processing_events
        (document_id, user_id, job_id, event_type, duration_ms, stage, details, created_at)
      select e.document_id, e.user_id, e.id, e.status, e.duration_ms,
             case when e.status = 'cancelled' then e.stage end,
             jsonb_build_object('attempt', e.attempt), v_now
        from unnest(v_ids, v_statuses, v_documents, v_users, v_durations, v_stages, v_attempts)
          with ordinality as e(id, status, document_id, user_id, duration_ms, stage, attempt, n)
       order by e.n;
    exception when others then
      raise warning 'docflow: % lifecycle event(s) not recorded: % (SQLSTATE %)',
        pg_catalog.cardinality(v_ids), sqlerrm, sqlstate;
    end;
  end if;
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
$function$;
grant EXECUTE on function public.complete_jobs(worker_id text, completions jsonb, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.create_upload(user_id uuid, original_filename text, content_type text, size_bytes bigint, sha256 text, storage_path text, priority text DEFAULT 'normal'::text, idempotency_key text DEFAULT NULL::text, max_attempts integer DEFAULT 4, options jsonb DEFAULT '{}'::jsonb, rate_limit_per_minute integer DEFAULT 0, rate_burst integer DEFAULT 200, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.create_upload(user_id uuid, original_filename text, content_type text, size_bytes bigint, sha256 text, storage_path text, priority text, idempotency_key text, max_attempts integer, options jsonb, rate_limit_per_minute integer, rate_burst integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.due_notifications(repeat_seconds integer DEFAULT 14400, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  with params as (select coalesce(due_notifications.now, pg_catalog.now()) as at)
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', a.id, 'service_name', a.service_name, 'alert_type', a.alert_type,
           'status', a.status, 'message', a.message, 'details', a.details,
           'created_at', a.created_at,
           'kind', case when a.alert_type = 'recovery' then 'recovered'
                        when a.notified_at is null then 'opened' else 'repeat' end)
           order by a.id), '[]'::jsonb)
    from public.alert_events a, params p
   where (
       a.alert_type = 'recovery' and a.notified_at is null
       and exists (select 1 from public.alert_events o
                    where o.id = (a.details ->> 'recovers')::bigint and o.notifications > 0)
     ) or (
       a.alert_type <> 'recovery' and a.status = 'active'
       and (a.notified_at is null
            or a.notified_at <= p.at - make_interval(secs => due_notifications.repeat_seconds))
       and not (a.alert_type = 'service_degraded' and exists (
         select 1 from public.alert_events d
          where d.service_name = a.service_name and d.alert_type = 'service_down'
            and d.status in ('active', 'acknowledged')))
     );
$function$;
grant EXECUTE on function public.due_notifications(repeat_seconds integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.enqueue_jobs(jobs jsonb, source text DEFAULT 'reanalyze'::text, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
comment on function public.enqueue_jobs(jobs jsonb, source text, now timestamp with time zone) is 'Bulk enqueue for existing documents (benchmarks, backfills): outside the per-user rate limit, it takes no token from any bucket.';
grant EXECUTE on function public.enqueue_jobs(jobs jsonb, source text, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.fail_job(job_id uuid, worker_id text, attempt integer, error_code text, error_message text, recoverable boolean DEFAULT true, retry_initial_seconds double precision DEFAULT 1, retry_multiplier double precision DEFAULT 2, retry_max_seconds double precision DEFAULT 60, retry_jitter double precision DEFAULT 0.1, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.fail_job(job_id uuid, worker_id text, attempt integer, error_code text, error_message text, recoverable boolean, retry_initial_seconds double precision, retry_multiplier double precision, retry_max_seconds double precision, retry_jitter double precision, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.fail_jobs(worker_id text, failures jsonb, retry_initial_seconds double precision DEFAULT 1, retry_multiplier double precision DEFAULT 2, retry_max_seconds double precision DEFAULT 60, retry_jitter double precision DEFAULT 0.1, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.fail_jobs(worker_id text, failures jsonb, retry_initial_seconds double precision, retry_multiplier double precision, retry_max_seconds double precision, retry_jitter double precision, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.fold_analytics()
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_folded integer;
begin
  with facts as (
    delete from public.analytics_pending p
     where p.id <= (select max(q.id) from public.analytics_pending q)
    returning p.*
  ), binned as (
    select g.grain, date_bin(make_interval(secs => g.grain), f.created_at,
                             timestamptz '1970-01-01 00:00+00') as bucket_start, f.*
      from facts f cross join (values (300), (3600), (86400)) as g(grain)
  ), counted as (
    insert into public.analytics_rollups as r
      (grain, bucket_start, event_type, priority, content_type, events, duration_n,
       duration_sum)
    select b.grain, b.bucket_start, b.event_type, b.priority, b.content_type, count(*),
           count(b.duration_ms), coalesce(sum(b.duration_ms), 0)
      from binned b
     group by 1, 2, 3, 4, 5
     order by 1, 2, 3, 4, 5
    on conflict (grain, bucket_start, event_type, priority, content_type) do update
      set events = r.events + excluded.events,
          duration_n = r.duration_n + excluded.duration_n,
          duration_sum = r.duration_sum + excluded.duration_sum
  ), measured as (
    select b.grain, b.bucket_start, m.metric, m.value
      from binned b
      cross join lateral (
        select 'duration' as metric, b.duration_ms::double precision as value
         where b.event_type = 'completed' and b.duration_ms >= 0
        union all
        select 'queue_wait', b.wait_ms where b.wait_ms >= 0
      ) m
  ), histogrammed as (
    insert into public.analytics_histograms as h (grain, bucket_start, metric, idx, n, total)
    select m.grain, m.bucket_start, m.metric, public.analytics_bucket(m.value), count(*),
           sum(m.value)
      from measured m
     group by 1, 2, 3, 4
     order by 1, 2, 3, 4
    on conflict (grain, bucket_start, metric, idx) do update
      set n = h.n + excluded.n, total = h.total + excluded.total
  ), staged as (
    insert into public.analytics_stage_totals as t (grain, bucket_start, stage, n, total_ms)
    select b.grain, b.bucket_start, s.stage, count(*), sum(s.ms)
      from binned b cross join lateral public.analytics_stage_times(b.stages) s
     where b.stages is not null
     group by 1, 2, 3
     order by 1, 2, 3
    on conflict (grain, bucket_start, stage) do update
      set n = t.n + excluded.n, total_ms = t.total_ms + excluded.total_ms
  )
  select count(*) into v_folded from facts;
  return v_folded;
end;
$function$;
grant EXECUTE on function public.fold_analytics() to service_role;

CREATE OR REPLACE FUNCTION public.get_document(document_id uuid)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select to_jsonb(d) || jsonb_build_object('latest_job', (
           select to_jsonb(j) - '{lease_owner,priority_rank,idempotency_key}'::text[]
             from public.processing_jobs j
            where j.document_id = d.id
            order by j.created_at desc, j.id desc
            limit 1))
    from public.documents d
   where d.id = get_document.document_id;
$function$;
grant EXECUTE on function public.get_document(document_id uuid) to authenticated;
grant EXECUTE on function public.get_document(document_id uuid) to service_role;

CREATE OR REPLACE FUNCTION public.get_job(job_id uuid)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select to_jsonb(j) - '{lease_owner,priority_rank,idempotency_key}'::text[]
    from public.processing_jobs j
   where j.id = get_job.job_id;
$function$;
grant EXECUTE on function public.get_job(job_id uuid) to authenticated;
grant EXECUTE on function public.get_job(job_id uuid) to service_role;

CREATE OR REPLACE FUNCTION public.heartbeat_jobs(worker_id text, jobs jsonb, lease_seconds integer DEFAULT 30, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.heartbeat_jobs(worker_id text, jobs jsonb, lease_seconds integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.list_alerts(status text DEFAULT NULL::text, max_rows integer DEFAULT 100)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(to_jsonb(a) order by a.created_at desc, a.id desc), '[]'::jsonb)
    from (select *
            from public.alert_events a
           where list_alerts.status is null or a.status = list_alerts.status
           order by a.created_at desc, a.id desc
           limit least(greatest(list_alerts.max_rows, 1), 500)) a;
$function$;
grant EXECUTE on function public.list_alerts(status text, max_rows integer) to authenticated;
grant EXECUTE on function public.list_alerts(status text, max_rows integer) to service_role;

CREATE OR REPLACE FUNCTION public.list_jobs(status text DEFAULT NULL::text, max_rows integer DEFAULT 50, before_created_at timestamp with time zone DEFAULT NULL::timestamp with time zone, before_id uuid DEFAULT NULL::uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.list_jobs(status text, max_rows integer, before_created_at timestamp with time zone, before_id uuid) to authenticated;
grant EXECUTE on function public.list_jobs(status text, max_rows integer, before_created_at timestamp with time zone, before_id uuid) to service_role;

CREATE OR REPLACE FUNCTION public.mark_notified(alert_ids jsonb, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS integer
 LANGUAGE sql
 SET search_path TO ''
AS $function$
  with updated as (
    update public.alert_events a
       set notified_at = coalesce(mark_notified.now, pg_catalog.now()),
           notifications = a.notifications + 1
     where a.id in (select x::bigint from jsonb_array_elements_text(mark_notified.alert_ids) x)
    returning 1
  )
  select count(*)::integer from updated;
$function$;
grant EXECUTE on function public.mark_notified(alert_ids jsonb, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.ping(now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select jsonb_build_object('now', coalesce(ping.now, pg_catalog.now()));
$function$;
grant EXECUTE on function public.ping(now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.queue_health(window_seconds integer DEFAULT 3600, degraded_success_rate double precision DEFAULT 0.9, unhealthy_success_rate double precision DEFAULT 0.7, degraded_stalled integer DEFAULT 0, unhealthy_stalled integer DEFAULT 5, degraded_backlog integer DEFAULT 100, degraded_oldest_seconds integer DEFAULT 600, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.queue_health(window_seconds integer, degraded_success_rate double precision, unhealthy_success_rate double precision, degraded_stalled integer, unhealthy_stalled integer, degraded_backlog integer, degraded_oldest_seconds integer, now timestamp with time zone) to authenticated;
grant EXECUTE on function public.queue_health(window_seconds integer, degraded_success_rate double precision, unhealthy_success_rate double precision, degraded_stalled integer, unhealthy_stalled integer, degraded_backlog integer, degraded_oldest_seconds integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.reanalyze_document(document_id uuid, options jsonb DEFAULT '{}'::jsonb, max_attempts integer DEFAULT 4, min_interval_seconds integer DEFAULT 3600, rate_limit_per_minute integer DEFAULT 0, rate_burst integer DEFAULT 200, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.reanalyze_document(document_id uuid, options jsonb, max_attempts integer, min_interval_seconds integer, rate_limit_per_minute integer, rate_burst integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.record_events(events jsonb)
 RETURNS integer
 LANGUAGE sql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.record_events(events jsonb) to service_role;

CREATE OR REPLACE FUNCTION public.record_health_check(service_name text, status text, latency_ms integer DEFAULT NULL::integer, error_message text DEFAULT NULL::text, probe_details jsonb DEFAULT '{}'::jsonb, open_after integer DEFAULT 3, resolve_after integer DEFAULT 2, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
#variable_conflict use_column
declare
  v_now timestamptz := coalesce(record_health_check.now, pg_catalog.now());
  v_check bigint;
  v_recent text[];
  v_opened jsonb := '[]'::jsonb;
  v_resolved jsonb := '[]'::jsonb;
  v_id bigint;
  v_alert record;
  v_type text;
begin
  perform pg_advisory_xact_lock(
    hashtextextended('docflow.alerts:' || record_health_check.service_name, 0));

  insert into public.service_health_checks
    (service_name, status, latency_ms, checked_at, error_message, probe_details, created_at)
  values
    (record_health_check.service_name, record_health_check.status,
     record_health_check.latency_ms, v_now, left(record_health_check.error_message, 2000),
     coalesce(record_health_check.probe_details, '{}'::jsonb), v_now)
  returning id into v_check;

  select array_agg(c.status order by c.checked_at desc, c.id desc) into v_recent
    from (select h.status, h.checked_at, h.id
            from public.service_health_checks h
           where h.service_name = record_health_check.service_name
           order by h.checked_at desc, h.id desc
           limit greatest(record_health_check.open_after, record_health_check.resolve_after)) c;

  -- Open.
  v_type := null;
  if coalesce(array_length(v_recent, 1), 0) >= record_health_check.open_after then
    if (select bool_and(x = 'down')
          from unnest(v_recent[1:record_health_check.open_after]) x) then
      v_type := 'service_down';
    elsif (select bool_and(x in ('degraded', 'down'))
             from unnest(v_recent[1:record_health_check.open_after]) x) then
      v_type := 'service_degraded';
    end if;
  end if;
  if v_type is not null then
    insert into public.alert_events (service_name, alert_type, status, message, details, created_at)
    values (record_health_check.service_name, v_type, 'active',
            format('%s is %s', record_health_check.service_name,
                   case v_type when 'service_down' then 'down' else 'degraded' end)
              || coalesce(': ' || left(record_health_check.error_message, 500), ''),
            jsonb_build_object('consecutive_checks', record_health_check.open_after,
                               'latency_ms', record_health_check.latency_ms,
                               'error', record_health_check.error_message),
            v_now)
    on conflict (service_name, alert_type) where status in ('active', 'acknowledged')
    do nothing
    returning id into v_id;
    if v_id is not null then
      v_opened := v_opened || jsonb_build_array(v_id);
    end if;
  end if;

  -- Resolve by recovery.
  if coalesce(array_length(v_recent, 1), 0) >= record_health_check.resolve_after then
    for v_alert in
      select a.id, a.alert_type
        from public.alert_events a
       where a.service_name = record_health_check.service_name
         and a.status in ('active', 'acknowledged')
         and (
           (a.alert_type = 'service_down'
            and (select bool_and(x <> 'down')
                   from unnest(v_recent[1:record_health_check.resolve_after]) x))
           or (a.alert_type = 'service_degraded'
               and (select bool_and(x = 'healthy')
                      from unnest(v_recent[1:record_health_check.resolve_after]) x))
         )
         for update
    loop
      update public.alert_events a
         set status = 'resolved', resolved_at = v_now
       where a.id = v_alert.id;
      insert into public.alert_events
        (service_name, alert_type, status, message, details, created_at, resolved_at)
      values (record_health_check.service_name, 'recovery', 'resolved',
              format('%s recovered', record_health_check.service_name),
              jsonb_build_object('recovers', v_alert.id, 'alert_type', v_alert.alert_type),
              v_now, v_now);
      v_resolved := v_resolved || jsonb_build_array(v_alert.id);
    end loop;
  end if;

  return jsonb_build_object('check_id', v_check, 'opened', v_opened, 'resolved', v_resolved);
end;
$function$;
grant EXECUTE on function public.record_health_check(service_name text, status text, latency_ms integer, error_message text, probe_details jsonb, open_after integer, resolve_after integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.recover_stalled_jobs(max_jobs integer DEFAULT 1000, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.recover_stalled_jobs(max_jobs integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.release_jobs(worker_id text, jobs jsonb, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.release_jobs(worker_id text, jobs jsonb, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.resolve_alert(alert_id bigint, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_alert public.alert_events;
begin
  select * into v_alert from public.alert_events a where a.id = resolve_alert.alert_id
     for update;
  if not found then
    raise exception 'alert not found' using errcode = 'DF404', hint = 'alert_not_found';
  end if;
  if v_alert.status <> 'resolved' then
    update public.alert_events a
       set status = 'resolved', resolved_at = coalesce(resolve_alert.now, pg_catalog.now())
     where a.id = v_alert.id
    returning * into v_alert;
  end if;
  return to_jsonb(v_alert);
end;
$function$;
grant EXECUTE on function public.resolve_alert(alert_id bigint, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.retention_delete(target text, keep_days integer, batch_size integer DEFAULT 5000, dry_run boolean DEFAULT false, now timestamp with time zone DEFAULT NULL::timestamp with time zone, after timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_cutoff timestamptz;
  v_from timestamptz := coalesce(retention_delete.after, '-infinity'::timestamptz);
  v_n bigint;
  v_last timestamptz;
begin
  if batch_size is null or batch_size < 1 or batch_size > 100000 then
    raise exception 'batch_size must be between 1 and 100000'
      using errcode = 'DF422', hint = 'invalid_batch_size';
  end if;
  if target not in ('document_processing_events', 'service_health_checks', 'alert_events',
                    'processing_jobs', 'documents', 'analytics_rollups') then
    raise exception 'unknown retention target'
      using errcode = 'DF422', hint = 'invalid_target';
  end if;
  if target = 'analytics_rollups' then
    return pg_catalog.jsonb_build_object('deleted', docflow_private.prune_rollups(
      keep_days, batch_size, dry_run, coalesce(retention_delete.now, pg_catalog.now())));
  end if;
  if keep_days is null or keep_days <= 0 then
    return pg_catalog.jsonb_build_object('deleted', 0);  -- kept forever
  end if;
  v_cutoff := coalesce(retention_delete.now, pg_catalog.now())
              - make_interval(days => keep_days);

  if dry_run then
    if target = 'document_processing_events' then
      select count(*) into v_n
        from public.document_processing_events e where e.created_at < v_cutoff;
    elsif target = 'service_health_checks' then
      select count(*) into v_n
        from public.service_health_checks c where c.created_at < v_cutoff;
    elsif target = 'alert_events' then
      select count(*) into v_n
        from public.alert_events a where a.status = 'resolved' and a.resolved_at < v_cutoff;
    elsif target = 'processing_jobs' then
      select count(*) into v_n
        from public.processing_jobs j
       where j.completed_at < v_cutoff and j.status in ('completed', 'failed', 'cancelled');
    else
      select count(*) into v_n
        from public.documents d
       where d.created_at < v_cutoff
         and not exists (
           select 1 from public.processing_jobs j
            where j.document_id = d.id
              and not (j.status in ('completed', 'failed', 'cancelled')
                       and j.completed_at < v_cutoff));
    end if;
    return pg_catalog.jsonb_build_object('deleted', v_n);
  end if;

  -- Oldest first through the table's time index, from `after` (the last time the previous
  -- batch of this run deleted), so that a batch does not walk the index entries of the rows
  -- the earlier batches deleted (dead until vacuum).
  if target = 'document_processing_events' then
    with doomed as materialized (
      select x.id from public.document_processing_events x
       where x.created_at < v_cutoff and x.created_at >= v_from
       order by x.created_at limit batch_size
    ), gone as (
      delete from public.document_processing_events e using doomed d where e.id = d.id
      returning e.created_at
    )
    select count(*), max(g.created_at) into v_n, v_last from gone g;
  elsif target = 'service_health_checks' then
    with doomed as materialized (
      select x.id from public.service_health_checks x
       where x.created_at < v_cutoff and x.created_at >= v_from
       order by x.created_at limit batch_size
    ), gone as (
      delete from public.service_health_checks c using doomed d where c.id = d.id
      returning c.created_at
    )
    select count(*), max(g.created_at) into v_n, v_last from gone g;
  elsif target = 'alert_events' then
    with doomed as materialized (
      select x.id from public.alert_events x
       where x.status = 'resolved' and x.resolved_at < v_cutoff and x.resolved_at >= v_from
       order by x.resolved_at limit batch_size
    ), gone as (
      delete from public.alert_events a using doomed d
       where a.id = d.id and a.status = 'resolved'
      returning a.resolved_at
    )
    select count(*), max(g.resolved_at) into v_n, v_last from gone g;
  elsif target = 'processing_jobs' then
    with doomed as materialized (
      select x.id from public.processing_jobs x
       where x.completed_at < v_cutoff and x.completed_at >= v_from
         and x.status in ('completed', 'failed', 'cancelled')
       order by x.completed_at limit batch_size
    ), gone as (
      -- the status is checked again on the locked row: a job retried since stays
      delete from public.processing_jobs j using doomed d
       where j.id = d.id and j.status in ('completed', 'failed', 'cancelled')
      returning j.completed_at
    )
    select count(*), max(g.completed_at) into v_n, v_last from gone g;
  else  -- documents
    with doomed as materialized (
      select x.id, x.updated_at from public.documents x
       where x.created_at < v_cutoff and x.created_at >= v_from
         and not exists (
           select 1 from public.processing_jobs j
            where j.document_id = x.id
              and not (j.status in ('completed', 'failed', 'cancelled')
                       and j.completed_at < v_cutoff))
       order by x.created_at limit batch_size
    ), gone as (
      delete from public.documents o using doomed d
       where o.id = d.id
         -- A row updated since the batch was chosen (a reanalyze queued a job and stamped
         -- the document) is left for the next run: on a row it waited for, PostgreSQL
         -- re-checks this comparison against the new row version, while the NOT EXISTS
         -- below still sees the statement's snapshot and would miss the new job.
         and o.updated_at = d.updated_at
         and not exists (
           select 1 from public.processing_jobs j
            where j.document_id = o.id
              and not (j.status in ('completed', 'failed', 'cancelled')
                       and j.completed_at < v_cutoff))
      returning o.created_at
    )
    select count(*), max(g.created_at) into v_n, v_last from gone g;
  end if;
  return pg_catalog.jsonb_build_object('deleted', v_n, 'last', v_last);
end;
$function$;
grant EXECUTE on function public.retention_delete(target text, keep_days integer, batch_size integer, dry_run boolean, now timestamp with time zone, after timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.retry_job(job_id uuid, max_attempts integer DEFAULT 4, rate_limit_per_minute integer DEFAULT 0, rate_burst integer DEFAULT 200, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.retry_job(job_id uuid, max_attempts integer, rate_limit_per_minute integer, rate_burst integer, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.services_overview(now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  with params as (select coalesce(services_overview.now, pg_catalog.now()) as at),
  latest as (
    select distinct on (h.service_name) h.service_name, h.status, h.latency_ms, h.checked_at,
           h.error_message
      from public.service_health_checks h, params p
     where h.created_at > p.at - interval '24 hours'
     order by h.service_name, h.created_at desc, h.id desc
  ),
  stats as (
    select h.service_name,
           avg((h.status = 'healthy')::integer)::double precision * 100 as uptime_percent,
           percentile_cont(0.95) within group (order by h.latency_ms) as p95_latency_ms,
           count(*) as checks
      from public.service_health_checks h, params p
     where h.created_at > p.at - interval '24 hours'
     group by h.service_name
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'service_name', l.service_name, 'status', l.status, 'latency_ms', l.latency_ms,
           'checked_at', l.checked_at, 'error_message', l.error_message,
           'uptime_percent_24h', round(s.uptime_percent::numeric, 2),
           'p95_latency_ms_24h', s.p95_latency_ms, 'checks_24h', s.checks)
           order by l.service_name), '[]'::jsonb)
    from latest l join stats s using (service_name);
$function$;
grant EXECUTE on function public.services_overview(now timestamp with time zone) to authenticated;
grant EXECUTE on function public.services_overview(now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.set_document_text(document_id uuid, text_path text, markdown_path text DEFAULT NULL::text, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := coalesce(set_document_text.now, pg_catalog.now());
  v_old public.documents;
begin
  select * into v_old from public.documents d
   where d.id = set_document_text.document_id
     for update;
  if not found then
    raise exception 'document not found' using errcode = 'DF404', hint = 'document_not_found';
  end if;
  update public.documents d
     set text_path = set_document_text.text_path,
         markdown_path = set_document_text.markdown_path,
         updated_at = v_now
   where d.id = v_old.id;
  insert into public.storage_deletions (object_path, reason, queued_at)
  select distinct p.path, 'document_text_replaced', v_now
    from (values (v_old.text_path), (v_old.markdown_path)) as p(path)
   where p.path is not null
     and p.path is distinct from set_document_text.text_path
     and p.path is distinct from set_document_text.markdown_path
     and p.path is distinct from v_old.storage_path;
end;
$function$;
grant EXECUTE on function public.set_document_text(document_id uuid, text_path text, markdown_path text, now timestamp with time zone) to service_role;

CREATE OR REPLACE FUNCTION public.storage_deletions_batch(batch_size integer DEFAULT 1000)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_limit integer := greatest(1, least(storage_deletions_batch.batch_size, 10000));
  v_batch jsonb;
begin
  delete from public.storage_deletions q
   using (select s.id, s.object_path
            from public.storage_deletions s
           order by s.id
           limit v_limit) w
   where q.id = w.id
     and (w.object_path in (select d.storage_path from public.documents d)
          or w.object_path in (select d.text_path from public.documents d
                                where d.text_path is not null)
          or w.object_path in (select d.markdown_path from public.documents d
                                where d.markdown_path is not null));
  select coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'path', s.object_path)
                            order by s.id), '[]'::jsonb)
    into v_batch
    from (select q.id, q.object_path from public.storage_deletions q
           order by q.id limit v_limit) s;
  return v_batch;
end;
$function$;
grant EXECUTE on function public.storage_deletions_batch(batch_size integer) to service_role;

CREATE OR REPLACE FUNCTION public.storage_deletions_count()
 RETURNS bigint
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select count(*) from public.storage_deletions;
$function$;
grant EXECUTE on function public.storage_deletions_count() to service_role;

CREATE OR REPLACE FUNCTION public.storage_deletions_done(ids jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_n bigint;
begin
  delete from public.storage_deletions d
   where d.id = any (array(select pg_catalog.jsonb_array_elements_text(ids)::bigint));
  get diagnostics v_n = row_count;
  return v_n;
end;
$function$;
grant EXECUTE on function public.storage_deletions_done(ids jsonb) to service_role;

CREATE OR REPLACE FUNCTION public.upload_rate_check(user_id uuid, rate_limit_per_minute integer DEFAULT 0, rate_burst integer DEFAULT 200, idempotency_key text DEFAULT NULL::text, now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
$function$;
grant EXECUTE on function public.upload_rate_check(user_id uuid, rate_limit_per_minute integer, rate_burst integer, idempotency_key text, now timestamp with time zone) to service_role;

-- Policies on Supabase's storage tables -----------------------------------------------------------

create policy documents_bucket_insert_own on storage.objects
  for insert to authenticated
  with check (((bucket_id = 'documents'::text) AND ((storage.foldername(name))[1] = (( SELECT auth.uid() AS uid))::text)));
create policy documents_bucket_read_own on storage.objects
  for select to authenticated
  using (((bucket_id = 'documents'::text) AND ((storage.foldername(name))[1] = (( SELECT auth.uid() AS uid))::text)));

-- Storage buckets (rows the migrations insert) ----------------------------------------------------

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
  values ('documents', 'documents', false, 209715200, null);

-- Publications ------------------------------------------------------------------------------------

alter publication supabase_realtime add table public.documents;
alter publication supabase_realtime add table public.processing_jobs;

-- Default privileges (each list is the whole default ACL) -----------------------------------------

alter default privileges for role postgres in schema public grant SELECT, UPDATE, USAGE on sequences to service_role;
alter default privileges for role postgres in schema public grant EXECUTE on functions to service_role;
alter default privileges for role postgres in schema public grant DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on tables to service_role;

-- Core tables: documents, processing jobs, processing events, service health checks, alerts.
-- Status columns are text + CHECK (not enums) so that adding a value is a one-line migration.
-- Every table has RLS enabled; all writes go through service-only SQL functions.

create table if not exists public.documents (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  original_filename text not null check (char_length(original_filename) between 1 and 255),
  content_type text not null check (char_length(content_type) between 1 and 255),
  size_bytes bigint not null check (size_bytes > 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  storage_path text not null unique,
  text_path text,
  last_reanalyzed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index if not exists documents_user_created_idx
  on public.documents (user_id, created_at desc, id desc);

create table if not exists public.processing_jobs (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references public.documents (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  status text not null default 'pending'
    check (status in ('pending', 'processing', 'completed', 'failed', 'cancelled')),
  priority text not null default 'normal' check (priority in ('low', 'normal', 'high')),
  -- 0 = high, 1 = normal, 2 = low: the claim index orders by it.
  priority_rank smallint generated always as (
    case priority when 'high' then 0 when 'normal' then 1 else 2 end
  ) stored,
  stage text check (
    stage in ('validating', 'reading', 'parsing', 'extracting', 'analyzing', 'finalizing')
  ),
  progress smallint not null default 0 check (progress between 0 and 100),
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default 4 check (max_attempts between 1 and 100),
  run_at timestamptz not null default now(),
  lease_owner text,
  lease_expires_at timestamptz,
  error_code text,
  error_message text,
  error_recoverable boolean,
  options jsonb not null default '{}'::jsonb,
  result jsonb,
  source text not null default 'upload' check (source in ('upload', 'reanalyze', 'retry')),
  idempotency_key text check (char_length(idempotency_key) between 1 and 255),
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  duration_ms integer check (duration_ms >= 0),
  updated_at timestamptz not null default now(),
  constraint processing_jobs_lease_consistent check (
    (status = 'processing') = (lease_owner is not null and lease_expires_at is not null)
  ),
  constraint processing_jobs_attempts_bounded check (attempts <= max_attempts)
);

-- At most one active job per document, enforced by the database.
create unique index if not exists processing_jobs_one_active_per_document
  on public.processing_jobs (document_id) where status in ('pending', 'processing');
-- The claim: due pending jobs by priority, then oldest run_at. Finished jobs are not in it.
create index if not exists processing_jobs_claim_idx
  on public.processing_jobs (priority_rank, run_at, id) where status = 'pending';
-- The stalled-job sweep: processing jobs by lease expiry.
create index if not exists processing_jobs_lease_idx
  on public.processing_jobs (lease_expires_at) where status = 'processing';
-- A user's job list, newest first (keyset pagination on created_at, id).
create index if not exists processing_jobs_user_created_idx
  on public.processing_jobs (user_id, created_at desc, id desc);
create index if not exists processing_jobs_document_idx
  on public.processing_jobs (document_id, created_at desc);
-- Idempotency keys are unique per user.
create unique index if not exists processing_jobs_user_idempotency_key
  on public.processing_jobs (user_id, idempotency_key) where idempotency_key is not null;
-- Analytics over finished jobs.
create index if not exists processing_jobs_completed_at_idx
  on public.processing_jobs (completed_at) where completed_at is not null;
create index if not exists processing_jobs_created_at_idx
  on public.processing_jobs (created_at);

create table if not exists public.document_processing_events (
  id bigint generated always as identity primary key,
  -- No foreign keys on document_id / job_id: analytics outlive document retention.
  document_id uuid,
  user_id uuid references auth.users (id) on delete cascade,
  job_id uuid,
  event_type text not null check (event_type in (
    'upload_started', 'processing_started', 'completed', 'failed',
    'retry_scheduled', 'cancelled', 'stalled_recovered'
  )),
  duration_ms integer check (duration_ms >= 0),
  error_message text,
  stage text,
  details jsonb,
  created_at timestamptz not null default now()
);

create index if not exists document_processing_events_created_at_idx
  on public.document_processing_events (created_at);
create index if not exists document_processing_events_document_idx
  on public.document_processing_events (document_id);
create index if not exists document_processing_events_type_created_idx
  on public.document_processing_events (event_type, created_at);

create table if not exists public.service_health_checks (
  id bigint generated always as identity primary key,
  service_name text not null check (char_length(service_name) between 1 and 100),
  status text not null check (status in ('healthy', 'degraded', 'down')),
  latency_ms integer check (latency_ms >= 0),
  checked_at timestamptz not null default now(),
  error_message text,
  probe_details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);

create index if not exists service_health_checks_created_at_idx
  on public.service_health_checks (created_at);
create index if not exists service_health_checks_service_created_idx
  on public.service_health_checks (service_name, created_at desc);

create table if not exists public.alert_events (
  id bigint generated always as identity primary key,
  service_name text not null check (char_length(service_name) between 1 and 100),
  alert_type text not null check (alert_type in ('service_down', 'service_degraded', 'recovery')),
  status text not null default 'active' check (status in ('active', 'acknowledged', 'resolved')),
  message text not null,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  acknowledged_at timestamptz,
  resolved_at timestamptz,
  constraint alert_events_recovery_is_resolved check (alert_type <> 'recovery' or status = 'resolved')
);

create index if not exists alert_events_created_at_idx on public.alert_events (created_at);
create index if not exists alert_events_status_idx on public.alert_events (status);
create index if not exists alert_events_service_status_idx
  on public.alert_events (service_name, status);
-- At most one open (active or acknowledged) alert per identity (service, alert type).
create unique index if not exists alert_events_one_open_per_identity
  on public.alert_events (service_name, alert_type) where status in ('active', 'acknowledged');

-- Row level security ------------------------------------------------------------------------
alter table public.documents enable row level security;
alter table public.processing_jobs enable row level security;
alter table public.document_processing_events enable row level security;
alter table public.service_health_checks enable row level security;
alter table public.alert_events enable row level security;

-- Users read their own documents and jobs; admins read all. No write policies: writes go
-- through service-only functions.
create policy documents_select_own_or_admin on public.documents
  for select to authenticated
  using (
    user_id = (select auth.uid())
    or ((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin'
  );

create policy processing_jobs_select_own_or_admin on public.processing_jobs
  for select to authenticated
  using (
    user_id = (select auth.uid())
    or ((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin'
  );

-- Monitoring and analytics tables: admins only.
create policy document_processing_events_select_admin on public.document_processing_events
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy service_health_checks_select_admin on public.service_health_checks
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy alert_events_select_admin on public.alert_events
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

-- Defence in depth: API roles never write these tables directly, whatever the defaults grant.
revoke insert, update, delete, truncate on
  public.documents, public.processing_jobs, public.document_processing_events,
  public.service_health_checks, public.alert_events
  from anon, authenticated;
revoke all on
  public.documents, public.processing_jobs, public.document_processing_events,
  public.service_health_checks, public.alert_events
  from anon;

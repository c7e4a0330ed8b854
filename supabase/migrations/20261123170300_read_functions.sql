-- Read functions for the API. SECURITY INVOKER: they run as the caller, so under a user's
-- token the tables' RLS decides what comes back (another user's job is simply not found).

create or replace function public.get_job(job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select to_jsonb(j) - '{lease_owner,priority_rank,idempotency_key}'::text[]
    from public.processing_jobs j
   where j.id = get_job.job_id;
$$;

create or replace function public.get_document(document_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select to_jsonb(d) || jsonb_build_object('latest_job', (
           select to_jsonb(j) - '{lease_owner,priority_rank,idempotency_key}'::text[]
             from public.processing_jobs j
            where j.document_id = d.id
            order by j.created_at desc, j.id desc
            limit 1))
    from public.documents d
   where d.id = get_document.document_id;
$$;

-- Event counts per type over the window ending at `now`. Admin-only through RLS on the
-- events table; the admin function checks the role too.
create or replace function public.analytics_event_counts(
  window_seconds integer default 86400,
  now timestamptz default null
)
returns jsonb
language sql
stable
set search_path = ''
as $$
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
$$;

revoke execute on function
  public.get_job(uuid),
  public.get_document(uuid),
  public.analytics_event_counts(integer, timestamptz)
  from public, anon;

grant execute on function
  public.get_job(uuid),
  public.get_document(uuid),
  public.analytics_event_counts(integer, timestamptz)
  to authenticated, service_role;

-- Retention (POST /retention, `docflow retention`): expired rows are deleted in batches, one
-- short statement each, so that no statement holds many locks or runs long, and writers (which
-- only insert new rows) never wait. The caller loops within its time budget and the next run
-- resumes where this one stopped: nothing is remembered between runs but the rows themselves.
--
-- * `retention_delete(target, keep_days, batch_size, dry_run, now, after)` deletes at most
--   `batch_size` expired rows of one target, oldest first, and returns
--   `{"deleted": n, "last": <the newest time it deleted>}` (dry run: `{"deleted": <every
--   expired row>}`, nothing deleted). The caller passes `last` back as `after` for its next
--   batch, so that each batch starts where the previous one stopped instead of walking the
--   index entries of the rows already deleted (dead until vacuum). `keep_days <= 0` keeps
--   the target forever.
--     document_processing_events  created_at older than keep_days
--     service_health_checks       created_at older than keep_days
--     alert_events                resolved alerts, resolved_at older than keep_days (active and
--                                 acknowledged alerts are never deleted)
--     processing_jobs             completed, failed and cancelled jobs, completed_at older
--     documents                   documents created before the cutoff whose jobs (if any) are
--                                 all finished before it; their jobs go with them (cascade)
--     analytics_rollups           the analytics rollups (counts, histograms, stage totals):
--                                 daily buckets older than keep_days; 5-minute buckets older
--                                 than 2 days and hourly ones older than 8 days whatever
--                                 keep_days says, since no report reads them past that (the
--                                 1h report reads 5-minute buckets, 24h and 7d hourly ones).
--                                 Returns the rows deleted over the three tables, at most
--                                 batch_size from each table and grain per call.
-- * `storage_deletions`: the stored files of deleted documents (the upload and its extracted
--   text), queued by a trigger whenever a document row goes, however it goes: retention, or a
--   user deleted from auth.users (documents cascade). The next retention run deletes the
--   files from storage and then the queue rows, so a failed storage call is retried.

create index if not exists alert_events_resolved_at_idx
  on public.alert_events (resolved_at) where status = 'resolved';
create index if not exists documents_created_at_idx
  on public.documents (created_at);

create table if not exists public.storage_deletions (
  id bigint generated always as identity primary key,
  object_path text not null,
  reason text not null,
  queued_at timestamptz not null default now()
);

alter table public.storage_deletions enable row level security;
revoke all on public.storage_deletions from anon, authenticated;
grant all on public.storage_deletions to service_role;

-- One insert per deleting statement (a cascade from auth.users included).
create or replace function docflow_private.queue_document_files()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.storage_deletions (object_path, reason)
  select p.path, 'document_deleted'
    from old_rows o
   cross join lateral (values (o.storage_path), (o.text_path)) as p(path)
   where p.path is not null;
  return null;
end;
$$;

revoke execute on function docflow_private.queue_document_files() from public, anon, authenticated;

drop trigger if exists documents_queue_files on public.documents;
create trigger documents_queue_files
  after delete on public.documents
  referencing old table as old_rows
  for each statement execute function docflow_private.queue_document_files();

-- The rollups past the windows that read them (see the header).
create or replace function docflow_private.prune_rollups(
  keep_days integer, batch_size integer, dry_run boolean, now timestamptz
)
returns bigint
language plpgsql
set search_path = ''
as $$
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
$$;

revoke execute on function docflow_private.prune_rollups(integer, integer, boolean, timestamptz)
  from public, anon, authenticated;
grant execute on function docflow_private.prune_rollups(integer, integer, boolean, timestamptz)
  to service_role;

create or replace function public.retention_delete(
  target text,
  keep_days integer,
  batch_size integer default 5000,
  dry_run boolean default false,
  now timestamptz default null,
  after timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
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
      select x.id from public.documents x
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
         -- checked again on the locked row: a job queued since (a reanalyze) keeps it
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
$$;

-- The next files to delete from storage, oldest first: [{"id": 1, "path": "..."}, ...].
create or replace function public.storage_deletions_batch(batch_size integer default 1000)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'path', s.object_path)
                            order by s.id), '[]'::jsonb)
    from (select d.id, d.object_path from public.storage_deletions d
           order by d.id limit greatest(1, least(batch_size, 10000))) s;
$$;

-- Forget queued files once storage has deleted them (`ids`: a JSON array of queue ids);
-- returns how many rows went.
create or replace function public.storage_deletions_done(ids jsonb)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_n bigint;
begin
  delete from public.storage_deletions d
   where d.id = any (array(select pg_catalog.jsonb_array_elements_text(ids)::bigint));
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;

create or replace function public.storage_deletions_count()
returns bigint
language sql
stable
set search_path = ''
as $$
  select count(*) from public.storage_deletions;
$$;

revoke execute on function
  public.retention_delete(text, integer, integer, boolean, timestamptz, timestamptz),
  public.storage_deletions_batch(integer),
  public.storage_deletions_done(jsonb),
  public.storage_deletions_count()
  from public, anon, authenticated;
grant execute on function
  public.retention_delete(text, integer, integer, boolean, timestamptz, timestamptz),
  public.storage_deletions_batch(integer),
  public.storage_deletions_done(jsonb),
  public.storage_deletions_count()
  to service_role;

-- Retention could delete a document whose reanalysis was enqueued a moment before: the
-- delete waited for the document's row lock, and once reanalyze committed, its NOT EXISTS
-- re-check still used the statement's snapshot, so the new job was missed and cascaded away
-- (the user had a 202 for a job that vanished). The delete now also requires the document's
-- `updated_at` to be the one the batch read; reanalyze (and set_document_text) stamp it, so
-- such a document waits for the next run, which sees its active job and keeps it.

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
$$;

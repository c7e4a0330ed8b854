-- fold_analytics() under pg-safeupdate.
--
-- On hosted Supabase, PostgREST's login role loads pg-safeupdate, which refuses any UPDATE or
-- DELETE without a WHERE clause, CTEs included (21000: DELETE requires a WHERE clause). The fold
-- of 20261123220000_analytics.sql deleted with `delete from public.analytics_pending returning
-- *`, so over REST (DB_TRANSPORT=rest) it always failed and the pending facts grew unbounded.
--
-- The delete now names the rows it folds: those up to the highest pending id visible to the
-- statement. The subquery reads the same snapshot as the delete, so this is exactly the set
-- the unqualified delete took, and the concurrency is unchanged:
--   * a fact of a transaction still open is invisible to the snapshot (whatever its id) and
--     stays for the next fold;
--   * two concurrent folds both try to delete the same rows; the second waits on the row
--     locks of the first and, once it commits, skips the rows it deleted, so every fact is
--     folded exactly once;
--   * the upserts into the rollups still go in key order, so concurrent folds cannot deadlock.
-- Everything else is as before.

create or replace function public.fold_analytics()
returns integer
language plpgsql
set search_path = ''
as $$
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
$$;

revoke execute on function public.fold_analytics() from public, anon, authenticated;
grant execute on function public.fold_analytics() to service_role;

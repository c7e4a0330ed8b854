-- Analytics rollups: processing events aggregated off the write path, so that a report over
-- 30 days reads a few thousand rollup rows instead of a million events.
--
-- * `analytics_pending`: the facts of events not folded yet. A statement-level trigger on
--   `document_processing_events` appends one row per event (a plain insert: no upsert, no
--   shared row to lock, so writers never wait for each other). An event's priority and
--   content type come from its own `details` when present, else from its job and document
--   at insert time; a first attempt's `processing_started` carries its queue wait (job created
--   to started); a `completed` event carries its job's per-stage timings.
-- * `fold_analytics()` (service) moves the pending facts into the rollups in one statement
--   (`delete ... returning`, so a fact is folded exactly once even with concurrent folds; facts
--   of transactions still open stay for the next fold). The admin analytics route and the CLI
--   fold before reading, and so does every probe run; the report adds whatever is still
--   pending, so it is exact either way.
-- * `analytics_rollups`: event counts (and duration sums) per grain bucket, event type,
--   priority and content type.
-- * `analytics_histograms`: log-bucketed histograms of durations (completed jobs) and queue
--   waits. A value v > 0.001 ms lands in bucket ceil(ln v / ln 1.02) and is reported as the
--   bucket's midpoint 2·1.02^k / 2.02, so any percentile read from a histogram is within 1 %
--   of the exact nearest-rank value; counts, sums and averages are exact. Values <= 0.001 ms
--   count as 0.
-- * `analytics_stage_totals`: count and total time per pipeline stage, for the average.
-- * Grains: 300 s (the 1h report), 3600 s (24h and 7d) and 86400 s (30d); buckets are aligned
--   to the Unix epoch (UTC).
--
-- Rollups record what happened: deleting raw events later (retention, a deleted user) does not
-- rewrite them.

create table if not exists public.analytics_rollups (
  grain integer not null check (grain in (300, 3600, 86400)),
  bucket_start timestamptz not null,
  event_type text not null,
  priority text not null,
  content_type text not null,
  events bigint not null,
  duration_n bigint not null,
  duration_sum double precision not null,
  primary key (grain, bucket_start, event_type, priority, content_type)
);

create table if not exists public.analytics_histograms (
  grain integer not null check (grain in (300, 3600, 86400)),
  bucket_start timestamptz not null,
  metric text not null,
  idx integer not null,
  n bigint not null,
  total double precision not null,
  primary key (grain, bucket_start, metric, idx)
);

create table if not exists public.analytics_stage_totals (
  grain integer not null check (grain in (300, 3600, 86400)),
  bucket_start timestamptz not null,
  stage text not null,
  n bigint not null,
  total_ms double precision not null,
  primary key (grain, bucket_start, stage)
);

-- The identity key is there for logical replication (a table in a publication needs a replica
-- identity before rows can be deleted from it), not for lookups.
create table if not exists public.analytics_pending (
  id bigint generated always as identity primary key,
  created_at timestamptz not null,
  event_type text not null,
  priority text not null,
  content_type text not null,
  duration_ms integer,
  wait_ms double precision,
  stages jsonb
);

alter table public.analytics_pending enable row level security;
alter table public.analytics_rollups enable row level security;
alter table public.analytics_histograms enable row level security;
alter table public.analytics_stage_totals enable row level security;

create policy analytics_rollups_select_admin on public.analytics_rollups
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');
create policy analytics_histograms_select_admin on public.analytics_histograms
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');
create policy analytics_pending_select_admin on public.analytics_pending
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');
create policy analytics_stage_totals_select_admin on public.analytics_stage_totals
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

revoke all on public.analytics_pending, public.analytics_rollups, public.analytics_histograms,
  public.analytics_stage_totals from anon, authenticated;
grant select on public.analytics_pending, public.analytics_rollups, public.analytics_histograms,
  public.analytics_stage_totals to authenticated;
grant all on public.analytics_pending, public.analytics_rollups, public.analytics_histograms,
  public.analytics_stage_totals to service_role;

-- The most frequent error messages are read from the raw events (exact), through this index.
create index if not exists document_processing_events_errors_idx
  on public.document_processing_events (created_at) include (error_message)
  where error_message is not null;

-- The histogram buckets (public and immutable: clients may bucket values the same way).
create or replace function public.analytics_bucket(value double precision)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when value is null then null
              when value <= 0.001 then -32768
              else ceil(ln(value) / ln(1.02))::integer end;
$$;

create or replace function public.analytics_bucket_value(idx integer)
returns double precision
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when idx is null then null
              when idx = -32768 then 0::double precision
              else 2 * power(1.02::double precision, idx) / 2.02 end;
$$;

-- The trigger: append the facts of a statement's events (nothing else on the write path).
create or replace function docflow_private.record_analytics_facts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
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
         case when e.event_type = 'completed' and jsonb_typeof(j.result -> 'timings_ms') = 'object'
              then j.result -> 'timings_ms' end
    from new_events e
    left join public.processing_jobs j on j.id = e.job_id
    left join public.documents d on d.id = e.document_id;
  return null;
end;
$$;

revoke all on function docflow_private.record_analytics_facts() from public, anon, authenticated;

drop trigger if exists document_processing_events_analytics on public.document_processing_events;
create trigger document_processing_events_analytics
  after insert on public.document_processing_events
  referencing new table as new_events
  for each statement execute function docflow_private.record_analytics_facts();

-- A pending fact's stage timings as (stage, ms) rows; values that are not sane numbers are
-- left out.
create or replace function public.analytics_stage_times(stages jsonb)
returns table (stage text, ms double precision)
language sql
immutable
set search_path = ''
as $$
  select left(x.key, 50), round(x.value::numeric, 6)::double precision
    from jsonb_each(case when jsonb_typeof(stages) = 'object' then stages end) x
   where jsonb_typeof(x.value) = 'number'
     and case when jsonb_typeof(x.value) = 'number'
              then x.value::numeric between 0 and 1e12 else false end;
$$;

-- Fold the pending facts into the rollups (every grain; upserts in key order, so concurrent
-- folds cannot deadlock). Returns how many facts were folded.
create or replace function public.fold_analytics()
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_folded integer;
begin
  with facts as (
    delete from public.analytics_pending returning *
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

-- Backfill: the events recorded before this migration.
insert into public.analytics_pending
  (created_at, event_type, priority, content_type, duration_ms, wait_ms, stages)
select e.created_at, e.event_type,
         left(coalesce(e.details ->> 'priority', j.priority, 'unknown'), 50),
         left(coalesce(e.details ->> 'content_type', d.content_type, 'unknown'), 255),
         e.duration_ms,
         case when e.event_type = 'processing_started' and e.details ->> 'attempt' = '1'
                   and j.created_at is not null
              then greatest(0, extract(epoch from e.created_at - j.created_at) * 1000) end,
         case when e.event_type = 'completed' and jsonb_typeof(j.result -> 'timings_ms') = 'object'
              then j.result -> 'timings_ms' end
    from public.document_processing_events e
    left join public.processing_jobs j on j.id = e.job_id
    left join public.documents d on d.id = e.document_id;
select public.fold_analytics();

-- The analytics report for one window: '1h' (5-minute buckets), '24h' and '7d' (hourly) or
-- '30d' (daily). The window is whole buckets, the newest one partial: it starts at the start
-- of the oldest bucket and ends at `now`. Every figure comes from the rollups plus the facts
-- still pending, except the error messages, which are counted exactly from the events.
create or replace function public.analytics_report(
  window_name text default '24h',
  now timestamptz default null
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
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
$$;

revoke execute on function public.analytics_report(text, timestamptz) from public, anon;
grant execute on function public.analytics_report(text, timestamptz)
  to authenticated, service_role;

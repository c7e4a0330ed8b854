-- Queue health for GET /admin/queue and the job_queue probe: the same answer as before plus
-- `counts_by_priority` ({status: {priority: n}}), computed in one pass over the jobs.
create or replace function public.queue_health(
  window_seconds integer default 3600,
  degraded_success_rate double precision default 0.9,
  unhealthy_success_rate double precision default 0.7,
  degraded_stalled integer default 0,
  unhealthy_stalled integer default 5,
  degraded_backlog integer default 100,
  degraded_oldest_seconds integer default 600,
  now timestamptz default null
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(queue_health.now, pg_catalog.now());
  v_since timestamptz := v_now - make_interval(secs => queue_health.window_seconds);
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
  -- One pass over the jobs for every count.
  with grouped as (
    select j.status, j.priority, count(*) as n,
           min(j.run_at) filter (where j.status = 'pending' and j.run_at <= v_now) as oldest,
           count(*) filter (where j.status = 'processing' and j.lease_expires_at < v_now)
             as stalled,
           count(*) filter (where j.status = 'pending' and j.attempts > 0) as retrying
      from public.processing_jobs j
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
$$;

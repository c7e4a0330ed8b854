-- Monitoring: health checks with an alert state machine, notifications bookkeeping, alert
-- acknowledge/resolve, queue health and a service overview.
--
-- An alert's identity is (service, alert type); the partial unique index of the core migration
-- keeps at most one open (active or acknowledged) alert per identity, and evaluation takes a
-- per-service advisory lock, so concurrent probe runs can never duplicate one.
-- Every function takes an optional `now`, so sequences are tested without sleeping.

alter table public.alert_events add column if not exists notified_at timestamptz;
alter table public.alert_events
  add column if not exists notifications integer not null default 0;

create or replace function public.ping(now timestamptz default null)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('now', coalesce(ping.now, pg_catalog.now()));
$$;

-- Record one check and evaluate the service's alerts:
-- - `service_down` opens after `open_after` consecutive `down` checks;
-- - `service_degraded` opens after `open_after` consecutive checks that are degraded or down
--   (and not all down);
-- - `service_down` resolves after `resolve_after` consecutive checks that are not down,
--   `service_degraded` after `resolve_after` consecutive healthy ones; each resolution by
--   recovery records one `recovery` row (informational, stored as resolved).
create or replace function public.record_health_check(
  service_name text,
  status text,
  latency_ms integer default null,
  error_message text default null,
  probe_details jsonb default '{}'::jsonb,
  open_after integer default 3,
  resolve_after integer default 2,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
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
$$;

-- What to notify now: alerts that opened and were never notified, recoveries of alerts that
-- were notified, and active (unacknowledged) alerts not notified for `repeat_seconds`.
-- A `service_degraded` alert is inhibited while a `service_down` alert of the same service
-- is open.
create or replace function public.due_notifications(
  repeat_seconds integer default 14400,
  now timestamptz default null
)
returns jsonb
language sql
stable
set search_path = ''
as $$
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
$$;

create or replace function public.mark_notified(
  alert_ids jsonb,
  now timestamptz default null
)
returns integer
language sql
set search_path = ''
as $$
  with updated as (
    update public.alert_events a
       set notified_at = coalesce(mark_notified.now, pg_catalog.now()),
           notifications = a.notifications + 1
     where a.id in (select x::bigint from jsonb_array_elements_text(mark_notified.alert_ids) x)
    returning 1
  )
  select count(*)::integer from updated;
$$;

-- Acknowledge: active -> acknowledged (idempotent); a resolved alert or a recovery row -> 409.
create or replace function public.acknowledge_alert(
  alert_id bigint,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
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
$$;

-- Resolve by hand: active or acknowledged -> resolved (idempotent on resolved ones).
create or replace function public.resolve_alert(
  alert_id bigint,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
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
$$;

-- Alerts, newest first (admins only, through RLS).
create or replace function public.list_alerts(
  status text default null,
  max_rows integer default 100
)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(a) order by a.created_at desc, a.id desc), '[]'::jsonb)
    from (select *
            from public.alert_events a
           where list_alerts.status is null or a.status = list_alerts.status
           order by a.created_at desc, a.id desc
           limit least(greatest(list_alerts.max_rows, 1), 500)) a;
$$;

-- Queue health: counts, age of the oldest pending job, stalled jobs, retries, the success rate
-- over the window (completed / (completed + failed) events), and a verdict with its reasons.
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
  select coalesce(jsonb_object_agg(s.status, s.n), '{}'::jsonb) into v_counts
    from (select j.status, count(*) as n from public.processing_jobs j group by j.status) s;
  select coalesce(jsonb_object_agg(p.priority, p.n), '{}'::jsonb) into v_priority
    from (select j.priority, count(*) as n from public.processing_jobs j
           where j.status = 'pending' group by j.priority) p;
  v_pending := coalesce((v_counts ->> 'pending')::integer, 0);
  select extract(epoch from v_now - min(j.run_at)) into v_oldest
    from public.processing_jobs j where j.status = 'pending' and j.run_at <= v_now;
  select count(*) into v_stalled
    from public.processing_jobs j where j.status = 'processing' and j.lease_expires_at < v_now;
  select count(*) into v_retrying
    from public.processing_jobs j where j.status = 'pending' and j.attempts > 0;
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

-- The latest check per service, with uptime (share of healthy checks) and p95 latency over
-- the last 24 hours.
create or replace function public.services_overview(now timestamptz default null)
returns jsonb
language sql
stable
set search_path = ''
as $$
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
$$;

revoke execute on function
  public.record_health_check(text, text, integer, text, jsonb, integer, integer, timestamptz),
  public.due_notifications(integer, timestamptz),
  public.mark_notified(jsonb, timestamptz),
  public.acknowledge_alert(bigint, timestamptz),
  public.resolve_alert(bigint, timestamptz),
  public.ping(timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.record_health_check(text, text, integer, text, jsonb, integer, integer, timestamptz),
  public.due_notifications(integer, timestamptz),
  public.mark_notified(jsonb, timestamptz),
  public.acknowledge_alert(bigint, timestamptz),
  public.resolve_alert(bigint, timestamptz),
  public.ping(timestamptz)
  to service_role;

revoke execute on function
  public.list_alerts(text, integer),
  public.queue_health(integer, double precision, double precision, integer, integer, integer,
                      integer, timestamptz),
  public.services_overview(timestamptz)
  from public, anon;
grant execute on function
  public.list_alerts(text, integer),
  public.queue_health(integer, double precision, double precision, integer, integer, integer,
                      integer, timestamptz),
  public.services_overview(timestamptz)
  to authenticated, service_role;

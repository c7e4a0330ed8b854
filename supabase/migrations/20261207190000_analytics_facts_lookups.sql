-- The analytics facts trigger looks each event's job and document up by primary key.
--
-- It joined the statement's events (a transition table) to processing_jobs and documents, and
-- PL/pgSQL keeps the plan made for a session's first statement. A session whose first events
-- came in a batch kept a hash join that read both tables whole for every later statement,
-- even a single event (10 ms for one upload's event at 22,000 jobs, growing with the tables).
-- LATERAL lookups with LIMIT 1 (which keeps the planner from turning them back into joins)
-- can only be planned as one index probe per event, whatever the first batch was: the cost
-- follows the statement's events, not the tables' size.
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
$$;

revoke all on function docflow_private.record_analytics_facts() from public, anon, authenticated;

-- claim_jobs and complete_jobs guard only their event insert.
--
-- The contract: every transition records its lifecycle event in the same transaction, guarded
-- so that a failing event insert never blocks or fails the transition. claim_jobs and
-- complete_jobs (20261123180000_queue_engine.sql) wrote their events in the same statement as
-- the transition and put the guard, `exception when others`, around the whole statement. So
-- an error of the transition itself (a deadlock, a lock or statement timeout, a constraint)
-- was caught too: logged as "events not recorded" and the transition run a second time,
-- without events. Now the transition runs unguarded, so its errors reach the caller (the
-- worker retries a failed claim or finish as it does for any database error), and its events
-- go through docflow_private.log_events(), the guarded insert every other transition uses:
-- a failing event insert is a WARNING (`docflow: N lifecycle event(s) not recorded`) and the
-- transition commits. A claim or completion that moved no job writes no event and opens no
-- subtransaction at all.
--
-- The answers are unchanged. The events are the same rows as before, inserted in the order
-- of the answer (claim: priority, run_at, id; completion: job id).

create or replace function public.claim_jobs(
  worker_id text,
  max_jobs integer default 1,
  lease_seconds integer default 30,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(claim_jobs.now, pg_catalog.now());
  v_jobs jsonb;
  v_events jsonb;
begin
  if claim_jobs.worker_id is null or claim_jobs.worker_id = '' then
    raise exception 'worker_id is required' using errcode = 'DF422', hint = 'invalid_worker';
  end if;
  -- The claim: not guarded, its errors are the caller's.
  select coalesce(jsonb_agg(to_jsonb(c) - 'priority_rank'
                            order by c.priority_rank, c.run_at, c.id), '[]'::jsonb),
         jsonb_agg(jsonb_build_object(
           'event_type', 'processing_started', 'document_id', c.document_id,
           'user_id', c.user_id, 'job_id', c.id, 'created_at', v_now,
           'details', jsonb_build_object('attempt', c.attempts))
           order by c.priority_rank, c.run_at, c.id)
    into v_jobs, v_events
    from docflow_private.claim_rows(claim_jobs.worker_id, claim_jobs.max_jobs,
                                    claim_jobs.lease_seconds, v_now) c;
  -- The events: guarded inside log_events.
  if v_events is not null then
    perform docflow_private.log_events(v_events);
  end if;
  return v_jobs;
end;
$$;

create or replace function public.complete_jobs(
  worker_id text,
  completions jsonb,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(complete_jobs.now, pg_catalog.now());
  v_done jsonb;
  v_cancelled jsonb;
  v_events jsonb;
begin
  -- The completion: not guarded, its errors are the caller's.
  select coalesce(jsonb_agg(f.id) filter (where f.status = 'completed'), '[]'::jsonb),
         coalesce(jsonb_agg(f.id) filter (where f.status = 'cancelled'), '[]'::jsonb),
         jsonb_agg(jsonb_build_object(
           'event_type', f.status, 'document_id', f.document_id, 'user_id', f.user_id,
           'job_id', f.id, 'duration_ms', f.duration_ms,
           'stage', case when f.status = 'cancelled' then f.stage end, 'created_at', v_now,
           'details', jsonb_build_object('attempt', f.attempts))
           order by f.id)
    into v_done, v_cancelled, v_events
    from docflow_private.complete_rows(complete_jobs.worker_id, complete_jobs.completions,
                                       v_now) f;
  -- The events: guarded inside log_events.
  if v_events is not null then
    perform docflow_private.log_events(v_events);
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
$$;

-- Unchanged privileges (create or replace keeps them; restated for the reader).
revoke execute on function
  public.claim_jobs(text, integer, integer, timestamptz),
  public.complete_jobs(text, jsonb, timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.claim_jobs(text, integer, integer, timestamptz),
  public.complete_jobs(text, jsonb, timestamptz)
  to service_role;

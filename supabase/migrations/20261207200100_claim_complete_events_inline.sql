-- claim_jobs and complete_jobs insert their events directly again, still guarded alone.
--
-- 20261207170200_narrow_event_guard.sql moved the guard from the whole claim (or completion)
-- to its event insert, by building the events as JSON and passing them to
-- docflow_private.log_events(). On the queue's hot path that JSON round trip (build every
-- event as an object, call a function, parse the objects back into rows) cost more than the
-- insert itself: with track_functions = 'pl' at the shipped settings (batch 10), log_events
-- took 377 µs per call against about 200 µs for the same insert inline, about 6 % of the
-- queue's throughput (docs/benchmarks.md). Now each function keeps the rows it moved as arrays
-- and inserts the events from them in its own guarded block: the same rows, in the same order,
-- with the same WARNING when the insert fails, and the transition's own errors still reach the
-- caller. The other transitions, which move one job or an occasional batch, keep log_events.

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
  v_ids uuid[];
  v_documents uuid[];
  v_users uuid[];
  v_attempts integer[];
begin
  if claim_jobs.worker_id is null or claim_jobs.worker_id = '' then
    raise exception 'worker_id is required' using errcode = 'DF422', hint = 'invalid_worker';
  end if;
  -- The claim: not guarded, its errors are the caller's.
  -- One sort, in the subquery: the aggregates take its rows in that order.
  select coalesce(jsonb_agg(to_jsonb(c) - 'priority_rank'), '[]'::jsonb),
         array_agg(c.id), array_agg(c.document_id), array_agg(c.user_id), array_agg(c.attempts)
    into v_jobs, v_ids, v_documents, v_users, v_attempts
    from (select *
            from docflow_private.claim_rows(claim_jobs.worker_id, claim_jobs.max_jobs,
                                            claim_jobs.lease_seconds, v_now) r
           order by r.priority_rank, r.run_at, r.id) c;
  -- The events: guarded alone, as in log_events.
  if v_ids is not null then
    begin
      insert into public.document_processing_events
        (document_id, user_id, job_id, event_type, details, created_at)
      select e.document_id, e.user_id, e.id, 'processing_started',
             jsonb_build_object('attempt', e.attempt), v_now
        from unnest(v_documents, v_users, v_ids, v_attempts)
          with ordinality as e(document_id, user_id, id, attempt, n)
       order by e.n;
    exception when others then
      raise warning 'docflow: % lifecycle event(s) not recorded: % (SQLSTATE %)',
        pg_catalog.cardinality(v_ids), sqlerrm, sqlstate;
    end;
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
  v_ids uuid[];
  v_statuses text[];
  v_documents uuid[];
  v_users uuid[];
  v_durations integer[];
  v_stages text[];
  v_attempts integer[];
begin
  -- The completion: not guarded, its errors are the caller's.
  -- One sort, in the subquery: the aggregates take its rows in that order.
  select coalesce(jsonb_agg(f.id) filter (where f.status = 'completed'), '[]'::jsonb),
         coalesce(jsonb_agg(f.id) filter (where f.status = 'cancelled'), '[]'::jsonb),
         array_agg(f.id), array_agg(f.status), array_agg(f.document_id), array_agg(f.user_id),
         array_agg(f.duration_ms), array_agg(f.stage), array_agg(f.attempts)
    into v_done, v_cancelled, v_ids, v_statuses, v_documents, v_users, v_durations, v_stages,
         v_attempts
    from (select *
            from docflow_private.complete_rows(complete_jobs.worker_id, complete_jobs.completions,
                                               v_now) r
           order by r.id) f;
  -- The events: guarded alone, as in log_events.
  if v_ids is not null then
    begin
      insert into public.document_processing_events
        (document_id, user_id, job_id, event_type, duration_ms, stage, details, created_at)
      select e.document_id, e.user_id, e.id, e.status, e.duration_ms,
             case when e.status = 'cancelled' then e.stage end,
             jsonb_build_object('attempt', e.attempt), v_now
        from unnest(v_ids, v_statuses, v_documents, v_users, v_durations, v_stages, v_attempts)
          with ordinality as e(id, status, document_id, user_id, duration_ms, stage, attempt, n)
       order by e.n;
    exception when others then
      raise warning 'docflow: % lifecycle event(s) not recorded: % (SQLSTATE %)',
        pg_catalog.cardinality(v_ids), sqlerrm, sqlstate;
    end;
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

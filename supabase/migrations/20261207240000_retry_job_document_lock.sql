-- retry_job read the job without a lock, so a document deleted at the same time (retention, a
-- user's deletion) made its insert fail with a raw foreign-key violation (23503), which the
-- HTTP layer answers as a 409 `conflict`. The document's key is now share-locked before the
-- insert: a document already gone means its jobs are gone too (404 `job_not_found`), and a
-- delete that comes later waits for the retry's commit and then removes the new job with the
-- rest. Found by the concurrent-writers counter test.

create or replace function public.retry_job(
  job_id uuid,
  max_attempts integer default 4,
  rate_limit_per_minute integer default 0,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(retry_job.now, pg_catalog.now());
  v_job public.processing_jobs;
  v_new uuid;
begin
  select * into v_job from public.processing_jobs j where j.id = retry_job.job_id;
  if found then
    perform 1 from public.documents d where d.id = v_job.document_id for key share;
  end if;
  if not found then
    raise exception 'job not found' using errcode = 'DF404', hint = 'job_not_found';
  end if;
  if v_job.status not in ('failed', 'cancelled') then
    raise exception 'only failed or cancelled jobs can be retried (this one is %)', v_job.status
      using errcode = 'DF409', hint = 'not_retryable';
  end if;
  perform docflow_private.enqueue_guard(v_job.user_id, retry_job.rate_limit_per_minute, v_now);
  begin
    insert into public.processing_jobs
      (document_id, user_id, priority, max_attempts, options, source, run_at, created_at,
       updated_at)
    values
      (v_job.document_id, v_job.user_id, v_job.priority, retry_job.max_attempts, v_job.options,
       'retry', v_now, v_now, v_now)
    returning id into v_new;
  exception when unique_violation then
    raise exception 'the document already has an active job'
      using errcode = 'DF409', hint = 'job_active';
  end;
  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'enqueued', 'document_id', v_job.document_id, 'user_id', v_job.user_id,
    'job_id', v_new, 'created_at', v_now,
    'details', jsonb_build_object('source', 'retry', 'retry_of', v_job.id))));
  return jsonb_build_object('job_id', v_new, 'document_id', v_job.document_id,
                            'status', 'pending', 'retry_of', v_job.id);
end;
$$;

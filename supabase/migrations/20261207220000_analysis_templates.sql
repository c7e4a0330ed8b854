-- Analysis templates (issue 16). A job's template travels in its `options` (`{"template":
-- name}`), set by the upload and by reanalyze and copied by retry. Reanalyze's once-per-
-- interval limit now applies per document and template, so switching templates is possible:
-- the time of the last reanalysis of each template is kept on the document. A document
-- reanalyzed before this migration has no entry, so its next reanalysis is not limited.

alter table public.documents
  add column if not exists reanalyzed_at_by_template jsonb not null default '{}'::jsonb;

drop function if exists public.reanalyze_document(uuid, integer, integer, integer, timestamptz);

-- Reanalyze a document: a new high-priority job with `options`, at most once per
-- `min_interval_seconds` (default an hour) per document and template (DF429 with
-- retry_after), never beside an active job (DF409).
create or replace function public.reanalyze_document(
  document_id uuid,
  options jsonb default '{}'::jsonb,
  max_attempts integer default 4,
  min_interval_seconds integer default 3600,
  rate_limit_per_minute integer default 0,
  now timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(reanalyze_document.now, pg_catalog.now());
  v_options jsonb := coalesce(reanalyze_document.options, '{}'::jsonb);
  v_template text := coalesce(v_options ->> 'template', '');
  v_doc public.documents;
  v_new uuid;
  v_wait double precision;
begin
  if jsonb_typeof(v_options) <> 'object' then
    raise exception 'options must be a JSON object' using errcode = '22023';
  end if;
  select * into v_doc from public.documents d where d.id = reanalyze_document.document_id
     for update;
  if not found then
    raise exception 'document not found' using errcode = 'DF404', hint = 'document_not_found';
  end if;
  v_wait := extract(epoch from ((v_doc.reanalyzed_at_by_template ->> v_template)::timestamptz
              + make_interval(secs => reanalyze_document.min_interval_seconds)) - v_now);
  if v_wait > 0 then
    raise exception 'a document can be reanalyzed once per % seconds with each template',
      reanalyze_document.min_interval_seconds
      using errcode = 'DF429', hint = 'reanalyze_too_soon',
            detail = json_build_object('retry_after', ceil(v_wait))::text;
  end if;
  perform docflow_private.enqueue_guard(v_doc.user_id, reanalyze_document.rate_limit_per_minute,
                                        v_now);
  begin
    insert into public.processing_jobs
      (document_id, user_id, priority, max_attempts, options, source, run_at, created_at,
       updated_at)
    values
      (v_doc.id, v_doc.user_id, 'high', reanalyze_document.max_attempts, v_options, 'reanalyze',
       v_now, v_now, v_now)
    returning id into v_new;
  exception when unique_violation then
    raise exception 'the document already has an active job'
      using errcode = 'DF409', hint = 'job_active';
  end;
  update public.documents d
     set last_reanalyzed_at = v_now,
         reanalyzed_at_by_template = d.reanalyzed_at_by_template
                                     || jsonb_build_object(v_template, v_now),
         updated_at = v_now
   where d.id = v_doc.id;
  perform docflow_private.log_events(jsonb_build_array(jsonb_build_object(
    'event_type', 'enqueued', 'document_id', v_doc.id, 'user_id', v_doc.user_id,
    'job_id', v_new, 'created_at', v_now,
    'details', jsonb_build_object('source', 'reanalyze', 'template', v_options -> 'template'))));
  return jsonb_build_object('job_id', v_new, 'document_id', v_doc.id, 'status', 'pending');
end;
$$;

revoke execute on function
  public.reanalyze_document(uuid, jsonb, integer, integer, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.reanalyze_document(uuid, jsonb, integer, integer, integer, timestamptz)
  to service_role;

-- Where a document's extracted text is stored (the text itself lives in storage, not in a
-- row). Set by the pipeline when a job finishes extracting; read by GET /documents/{id}/text.

create or replace function public.set_document_text(
  document_id uuid,
  text_path text,
  now timestamptz default null
)
returns void
language plpgsql
set search_path = ''
as $$
begin
  update public.documents d
     set text_path = set_document_text.text_path,
         updated_at = coalesce(set_document_text.now, pg_catalog.now())
   where d.id = set_document_text.document_id;
  if not found then
    raise exception 'document not found' using errcode = 'DF404', hint = 'document_not_found';
  end if;
end;
$$;

revoke execute on function public.set_document_text(uuid, text, timestamptz)
  from public, anon, authenticated;
grant execute on function public.set_document_text(uuid, text, timestamptz) to service_role;

-- A document's Markdown, stored beside its text.
--
-- The pipeline now writes the extraction as GitHub Markdown too (headings, lists, tables, and
-- for paged formats where each page starts), to `<user_id>/text/<document_id>.md`, and records
-- its path here with the text's; GET /documents/{id}/markdown serves it under the same RLS as
-- the text route. Documents processed before this migration have no Markdown (404
-- `markdown_not_ready`) until they are reanalyzed.

alter table public.documents add column if not exists markdown_path text;

-- set_document_text gains the Markdown's path. A new signature, so the old one goes; callers use
-- named arguments, and one that passes no markdown_path (code deployed before this migration)
-- still works.
drop function if exists public.set_document_text(uuid, text, timestamptz);

create or replace function public.set_document_text(
  document_id uuid,
  text_path text,
  markdown_path text default null,
  now timestamptz default null
)
returns void
language plpgsql
set search_path = ''
as $$
begin
  update public.documents d
     set text_path = set_document_text.text_path,
         markdown_path = set_document_text.markdown_path,
         updated_at = coalesce(set_document_text.now, pg_catalog.now())
   where d.id = set_document_text.document_id;
  if not found then
    raise exception 'document not found' using errcode = 'DF404', hint = 'document_not_found';
  end if;
end;
$$;

revoke execute on function public.set_document_text(uuid, text, text, timestamptz)
  from public, anon, authenticated;
grant execute on function public.set_document_text(uuid, text, text, timestamptz) to service_role;

-- A deleted document's files (upload, text, Markdown) are queued for deletion together, so
-- retention and user deletion remove the Markdown too.
create or replace function docflow_private.queue_document_files()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.storage_deletions (object_path, reason)
  select p.path, 'document_deleted'
    from old_rows o
   cross join lateral (values (o.storage_path), (o.text_path), (o.markdown_path)) as p(path)
   where p.path is not null;
  return null;
end;
$$;

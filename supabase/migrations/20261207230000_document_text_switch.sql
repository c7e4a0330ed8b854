-- A document's text and Markdown switch together, and the pair they replace is queued for
-- deletion.
--
-- The pipeline used to overwrite `<user_id>/text/<document_id>.txt` and then `.md` in place, so
-- a reanalyze whose Markdown write failed left the document showing the new text beside the
-- old Markdown. Now a job that replaces a document's text writes both objects under names of
-- its own (`<user_id>/text/<document_id>.<version>.txt` and `.md`; a document's first text
-- keeps the plain names) and calls set_document_text once both are stored: the one update
-- points the document at the new pair, and the objects of the pair it replaces (any path no
-- longer referenced) go into `storage_deletions`, where the next retention run deletes them
-- from storage. A failed write changes nothing the document points at.

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
declare
  v_now timestamptz := coalesce(set_document_text.now, pg_catalog.now());
  v_old public.documents;
begin
  select * into v_old from public.documents d
   where d.id = set_document_text.document_id
     for update;
  if not found then
    raise exception 'document not found' using errcode = 'DF404', hint = 'document_not_found';
  end if;
  update public.documents d
     set text_path = set_document_text.text_path,
         markdown_path = set_document_text.markdown_path,
         updated_at = v_now
   where d.id = v_old.id;
  insert into public.storage_deletions (object_path, reason, queued_at)
  select distinct p.path, 'document_text_replaced', v_now
    from (values (v_old.text_path), (v_old.markdown_path)) as p(path)
   where p.path is not null
     and p.path is distinct from set_document_text.text_path
     and p.path is distinct from set_document_text.markdown_path
     and p.path is distinct from v_old.storage_path;
end;
$$;

revoke execute on function public.set_document_text(uuid, text, text, timestamptz)
  from public, anon, authenticated;
grant execute on function public.set_document_text(uuid, text, text, timestamptz) to service_role;

-- The private bucket holding uploaded files (`<user_id>/<object>`) and extracted text.
-- Uploads go through the uploads function (service role); a user may read and write only
-- objects under their own folder, which the signed-upload flow relies on.

insert into storage.buckets (id, name, public)
values ('documents', 'documents', false)
on conflict (id) do nothing;

create policy documents_bucket_read_own on storage.objects
  for select to authenticated
  using (bucket_id = 'documents' and (storage.foldername(name))[1] = (select auth.uid())::text);

create policy documents_bucket_insert_own on storage.objects
  for insert to authenticated
  with check (
    bucket_id = 'documents' and (storage.foldername(name))[1] = (select auth.uid())::text
  );

-- A queued file that a document points at is never deleted. A stale attempt (one that lost its
-- lease) can still finish its storage writes and switch a document back to names that a newer
-- attempt had queued for deletion; the purge would then delete live text. Each batch now first
-- drops the queue rows of its window whose path a document uses (upload, text or Markdown),
-- then returns the rest. One hashed look-up per column and batch, not per file.

create or replace function public.storage_deletions_batch(batch_size integer default 1000)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_limit integer := greatest(1, least(storage_deletions_batch.batch_size, 10000));
  v_batch jsonb;
begin
  delete from public.storage_deletions q
   using (select s.id, s.object_path
            from public.storage_deletions s
           order by s.id
           limit v_limit) w
   where q.id = w.id
     and (w.object_path in (select d.storage_path from public.documents d)
          or w.object_path in (select d.text_path from public.documents d
                                where d.text_path is not null)
          or w.object_path in (select d.markdown_path from public.documents d
                                where d.markdown_path is not null));
  select coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'path', s.object_path)
                            order by s.id), '[]'::jsonb)
    into v_batch
    from (select q.id, q.object_path from public.storage_deletions q
           order by q.id limit v_limit) s;
  return v_batch;
end;
$$;

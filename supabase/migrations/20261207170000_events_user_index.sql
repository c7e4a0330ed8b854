-- Index the user of each lifecycle event.
--
-- document_processing_events.user_id references auth.users (id) on delete cascade. Deleting
-- a user makes PostgreSQL run `delete from only public.document_processing_events where
-- user_id = $1` for that user, and without an index on user_id that is a sequential scan of
-- the largest table, per deleted user, while the deleting transaction holds its locks.
-- Every other foreign key of these migrations already leads an index
-- (tests/integration/test_sql_fixes.py checks all of them).
--
-- `if not exists`, so that an operator who built the index by hand first (below) can still
-- apply this migration. A migration runs in a transaction, where CREATE INDEX CONCURRENTLY is
-- not allowed, so this plain CREATE INDEX holds a SHARE lock on the table while it builds:
-- inserts of events (every queue transition) wait until it is done. On a large live table,
-- build it beforehand outside a transaction, with the same name, and then push this migration,
-- which finds it and does nothing:
--
--   create index concurrently if not exists document_processing_events_user_idx
--     on public.document_processing_events (user_id);
--
-- (If a concurrent build fails it leaves an INVALID index of that name: drop it and build
-- again before pushing, since `if not exists` would otherwise keep the invalid one.)

create index if not exists document_processing_events_user_idx
  on public.document_processing_events (user_id);

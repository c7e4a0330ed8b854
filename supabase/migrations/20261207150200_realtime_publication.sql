-- Supabase Realtime: publish `processing_jobs` and `documents`, so that a web app can follow its
-- own job's stage and progress with supabase-js `postgres_changes` instead of polling
-- (docs/api.md, "Following a job live"). Realtime applies each table's SELECT policies as the
-- subscriber (`authenticated` with the user's claims), so RLS decides who receives which row:
-- a user gets their own rows, an admin all of them, `anon` nothing (no SELECT privilege).
--
-- Safe to run on any state of the publication:
--   * a table already in it (added from the dashboard, or a publication FOR ALL TABLES) is
--     left alone: `pg_publication_tables` lists it, and adding it again would fail;
--   * a missing publication is created, with the definition Supabase's own init script gives
--     it (`create publication supabase_realtime`: no tables, every operation), owned by the
--     migration role. Hosted projects always have it (owned by `postgres`), and so does the
--     local bootstrap, so this only happens on a bare PostgreSQL; there, publishing is inert
--     until something reads it, and a Realtime server added later finds the tables already in.
-- Adding a table needs ownership of both the publication and the table, which `postgres` has
-- on hosted projects.

do $realtime$
begin
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;

  if not exists (
    select from pg_catalog.pg_publication_tables
     where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'processing_jobs'
  ) then
    alter publication supabase_realtime add table public.processing_jobs;
  end if;

  if not exists (
    select from pg_catalog.pg_publication_tables
     where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'documents'
  ) then
    alter publication supabase_realtime add table public.documents;
  end if;
end
$realtime$;

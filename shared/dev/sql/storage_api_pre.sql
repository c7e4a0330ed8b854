-- Before the real Storage API first runs on a database of the embedded cluster: what Supabase's
-- Postgres image has by then (its storage init script), run as the superuser by
-- shared/dev/storage_api.py on a database created from template0. The Storage API's own
-- migrations, logged in as supabase_storage_admin with DB_INSTALL_ROLES=false, then create the
-- tables and functions in this schema. Idempotent.
--
-- The schema, owned by the Storage API's login (it cannot create schemas in the database).
create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;

-- What supabase_storage_admin creates there is usable by the API roles and `postgres`, as on
-- Supabase (the API switches to anon/authenticated/service_role per request, and the API's
-- migrations grant only storage.buckets and storage.objects themselves).
alter default privileges for role supabase_storage_admin in schema storage
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on sequences to postgres, anon, authenticated, service_role;

-- The Storage API runs each request as the caller's role (`set_config('role', ...)`), which
-- needs membership, as supabase_storage_admin has on Supabase.
grant anon, authenticated, service_role to supabase_storage_admin;


-- docflow local bootstrap: recreates the parts of Supabase's Postgres image that our
-- migrations rely on (roles, auth schema, a minimal storage schema, default grants).
--
-- NOT a migration: Supabase already has all of this. Every statement only creates what is
-- missing and never replaces an existing object, so running it against a `supabase start`
-- database (or a hosted one) changes nothing. Run by `docflow db migrate` before migrations.

-- Roles ---------------------------------------------------------------------------------
-- As supabase/postgres's init scripts leave them: the API roles, the login PostgREST uses,
-- the admins that own `auth` and `storage`, and `postgres` itself, which on a hosted project
-- is a NOSUPERUSER role with BYPASSRLS that runs migrations (`supabase db push`).
do $bootstrap$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin noinherit createrole login;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin noinherit createrole login;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'postgres') then
    create role postgres nosuperuser createdb createrole login replication bypassrls;
  end if;
end
$bootstrap$;

do $bootstrap$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_has_role('authenticator', r, 'member') then
      execute format('grant %I to authenticator', r);
    end if;
    if not pg_has_role('postgres', r, 'member') then
      execute format('grant %I to postgres', r);
    end if;
  end loop;
end
$bootstrap$;

-- Statement timeouts of the API roles, as on hosted projects (PostgREST applies the settings
-- of the role it switches to; so does docflow's direct transport). Only where none is set.
do $bootstrap$
declare
  r record;
begin
  for r in
    select * from (values ('anon', '3s'), ('authenticated', '8s'), ('authenticator', '8s'))
      as t (role_name, timeout)
  loop
    if not exists (
      select from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
       where s.setrole = (select oid from pg_catalog.pg_roles where rolname = r.role_name)
         and c like 'statement\_timeout=%'
    ) then
      execute format('alter role %I set statement_timeout = %L', r.role_name, r.timeout);
    end if;
  end loop;
end
$bootstrap$;

-- auth schema -----------------------------------------------------------------------------
-- Existence is checked first: CREATE ... IF NOT EXISTS still needs the CREATE privilege, which
-- Supabase's migration role does not have on its own schemas.
do $bootstrap$
begin
  if to_regnamespace('auth') is null then
    create schema auth authorization supabase_auth_admin;
  end if;
  if to_regclass('auth.users') is null then
    create table auth.users (
      id uuid primary key,
      email text,
      role text default 'authenticated',
      raw_app_meta_data jsonb default '{}'::jsonb,
      raw_user_meta_data jsonb default '{}'::jsonb,
      created_at timestamptz default now(),
      updated_at timestamptz default now()
    );
    alter table auth.users owner to supabase_auth_admin;
  end if;
end
$bootstrap$;

do $bootstrap$
begin
  if to_regprocedure('auth.uid()') is null then
    execute $fn$
      create function auth.uid() returns uuid language sql stable as $body$
        select coalesce(
          nullif(current_setting('request.jwt.claim.sub', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        )::uuid
      $body$
    $fn$;
    alter function auth.uid() owner to supabase_auth_admin;
  end if;
  if to_regprocedure('auth.role()') is null then
    execute $fn$
      create function auth.role() returns text language sql stable as $body$
        select coalesce(
          nullif(current_setting('request.jwt.claim.role', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
        )::text
      $body$
    $fn$;
    alter function auth.role() owner to supabase_auth_admin;
  end if;
  if to_regprocedure('auth.jwt()') is null then
    execute $fn$
      create function auth.jwt() returns jsonb language sql stable as $body$
        select coalesce(
          nullif(current_setting('request.jwt.claim', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
      $body$
    $fn$;
    alter function auth.jwt() owner to supabase_auth_admin;
  end if;
end
$bootstrap$;


-- storage schema (only what bucket and storage-policy migrations touch) ---------------------
-- A stand-in for when no Storage API made the schema. Where the real Storage API ran its
-- migrations first (shared/dev/storage_api.py, the order of a Supabase project), each block
-- below finds its object and does nothing (tests/integration/test_storage_api_database.py).
do $bootstrap$
begin
  if to_regnamespace('storage') is null then
    create schema storage authorization supabase_storage_admin;
  end if;
end
$bootstrap$;

do $bootstrap$
begin
  if to_regclass('storage.buckets') is null then
    create table storage.buckets (
      id text primary key,
      name text not null unique,
      owner uuid,
      public boolean default false,
      file_size_limit bigint,
      allowed_mime_types text[],
      created_at timestamptz default now(),
      updated_at timestamptz default now()
    );
    alter table storage.buckets enable row level security;
    alter table storage.buckets owner to supabase_storage_admin;
    grant all on storage.buckets to service_role;
    grant select on storage.buckets to anon, authenticated;
  end if;
  if to_regclass('storage.objects') is null then
    create table storage.objects (
      id uuid primary key default gen_random_uuid(),
      bucket_id text references storage.buckets (id),
      name text,
      owner uuid,
      metadata jsonb,
      path_tokens text[] generated always as (string_to_array(name, '/')) stored,
      created_at timestamptz default now(),
      updated_at timestamptz default now(),
      last_accessed_at timestamptz default now(),
      unique (bucket_id, name)
    );
    alter table storage.objects enable row level security;
    alter table storage.objects owner to supabase_storage_admin;
    grant all on storage.objects to service_role;
    grant select, insert, update, delete on storage.objects to authenticated;
  end if;
end
$bootstrap$;

do $bootstrap$
begin
  if to_regprocedure('storage.foldername(text)') is null then
    execute $fn$
      create function storage.foldername(name text) returns text[] language plpgsql as $body$
      declare
        _parts text[];
      begin
        select string_to_array(name, '/') into _parts;
        return _parts[1:array_length(_parts, 1) - 1];
      end
      $body$
    $fn$;
    alter function storage.foldername(text) owner to supabase_storage_admin;
  end if;
end
$bootstrap$;


-- Grants, each only where missing (on Supabase they all exist, and some objects belong to
-- other roles, so an unconditional GRANT could fail there).
do $bootstrap$
declare
  r text;
  s text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    foreach s in array array['public', 'auth', 'storage'] loop
      if not has_schema_privilege(r, s, 'usage') then
        execute format('grant usage on schema %I to %I', s, r);
      end if;
    end loop;
    if not has_function_privilege(r, 'auth.uid()', 'execute') then
      execute format('grant execute on function auth.uid(), auth.role(), auth.jwt() to %I', r);
    end if;
  end loop;
end
$bootstrap$;

-- What Supabase gives the migration role `postgres` on the schemas it does not own: USAGE
-- (no CREATE), and the table grants (ALL on auth's tables; ALL with grant option on the
-- storage tables), which is what lets migrations insert a bucket and reference auth.users.
do $bootstrap$
declare
  t text;
begin
  if not has_schema_privilege('postgres', 'auth', 'usage') then
    grant usage on schema auth to postgres;
  end if;
  if not has_schema_privilege('postgres', 'storage', 'usage') then
    grant usage on schema storage to postgres with grant option;
  end if;
  if not has_table_privilege('postgres', 'auth.users', 'insert, references') then
    grant all on auth.users to postgres;
  end if;
  foreach t in array array['storage.buckets', 'storage.objects'] loop
    if not has_table_privilege('postgres', t, 'insert, update') then
      execute format('grant all on %s to postgres with grant option', t);
    end if;
  end loop;
  if not has_function_privilege('postgres', 'storage.foldername(text)', 'execute') then
    grant execute on function storage.foldername(text) to postgres;
  end if;
end
$bootstrap$;

-- Default privileges, as Supabase's init scripts set them for objects that the migration role
-- (`postgres`) creates in public. Only when postgres has none yet in public: a migration may
-- have narrowed them on purpose.
do $bootstrap$
begin
  if not exists (
    select from pg_catalog.pg_default_acl
     where defaclrole = (select oid from pg_catalog.pg_roles where rolname = 'postgres')
       and defaclnamespace = 'public'::regnamespace
  ) then
    alter default privileges for role postgres in schema public
      grant all on tables to anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      grant all on sequences to anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      grant all on functions to anon, authenticated, service_role;
  end if;
end
$bootstrap$;

-- Realtime's publication, as hosted projects have it (owned by postgres, no tables until a
-- migration adds them).
do $bootstrap$
begin
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
    alter publication supabase_realtime owner to postgres;
  end if;
end
$bootstrap$;

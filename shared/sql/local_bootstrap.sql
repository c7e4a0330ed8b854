-- docflow local bootstrap: recreates the parts of Supabase's Postgres image that our
-- migrations rely on (roles, auth schema, a minimal storage schema, default grants).
--
-- NOT a migration: Supabase already has all of this. Every statement only creates what is
-- missing and never replaces an existing object, so running it against a `supabase start`
-- database (or a hosted one) changes nothing. Run by `docflow db migrate` before migrations.

-- Roles ---------------------------------------------------------------------------------
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
  end loop;
end
$bootstrap$;

-- auth schema -----------------------------------------------------------------------------
-- Existence is checked first: CREATE ... IF NOT EXISTS still needs the CREATE privilege, which
-- Supabase's migration role does not have on its own schemas.
do $bootstrap$
begin
  if to_regnamespace('auth') is null then
    create schema auth;
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
  end if;
end
$bootstrap$;


-- storage schema (only what bucket and storage-policy migrations touch) ---------------------
do $bootstrap$
begin
  if to_regnamespace('storage') is null then
    create schema storage;
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

-- Default privileges, as Supabase sets them for objects the migration role creates in public.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- Realtime's publication, as hosted projects have it (owned by postgres, no tables until a
-- migration adds them).
do $bootstrap$
begin
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$bootstrap$;

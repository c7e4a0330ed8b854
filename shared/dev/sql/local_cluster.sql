-- docflow's embedded cluster only, never a Supabase database: run by `docflow db start` as
-- the superuser when it creates the cluster, in template1 and postgres (so in every database).
--
-- The one documented stand-in for hosted Supabase. There, supautils' policy grants let the
-- NOSUPERUSER `postgres` create, alter and drop policies on the storage tables, which
-- belong to supabase_storage_admin. Without supautils, the migrator sends such a statement
-- here: one policy statement on storage.objects or storage.buckets, run with the owner's
-- rights. Everything else on Supabase-owned tables fails locally as it does on push.
create schema if not exists supautils_standin;
revoke all on schema supautils_standin from public;
grant usage on schema supautils_standin to postgres;

create or replace function supautils_standin.policy_statement(statement text)
returns void
language plpgsql
security definer
set search_path = ''
as $fn$
begin
  if statement !~* '^\s*(create|alter|drop)\s+policy\s+(if\s+exists\s+)?("[^"]+"|[a-z_][a-z0-9_$]*)\s+on\s+storage\.(objects|buckets)\s'
     or position(';' in statement) > 0 then
    raise exception 'only one policy statement on storage.objects or storage.buckets'
      using errcode = '42501';
  end if;
  execute statement;
end
$fn$;

-- Owned by the storage tables' owner, not the superuser: that is all a policy needs, and all a
-- mistake in the check above could reach. Policies name auth.uid() and auth.jwt(), so that
-- owner needs to see `auth` (supautils runs them as the superuser instead).
grant usage on schema auth to supabase_storage_admin;
alter function supautils_standin.policy_statement(text) owner to supabase_storage_admin;
revoke all on function supautils_standin.policy_statement(text) from public;
grant execute on function supautils_standin.policy_statement(text) to postgres;

-- docflow: wake `process_jobs` as soon as jobs are inserted (optional).
--
-- Run once per environment in the SQL editor (or `psql`), after `supabase db push`, with
-- the pg_net extension enabled and two Vault secrets created:
--   docflow_base_url          e.g. https://REGION-PROJECT_ID.cloudfunctions.net
--   docflow_scheduler_secret  the functions' SCHEDULER_SECRET
-- Safe to run again: it replaces the function and the trigger.
--
-- One request per inserting statement (a bulk enqueue of 2,000 jobs sends one), none for a
-- statement that inserts no row. pg_net queues the request in the transaction and sends it
-- after the commit, so the new jobs are visible to `process_jobs`; a rolled-back insert sends
-- nothing. The schedule stays as the safety net. Any failure here (pg_net missing, a Vault
-- secret missing) is a WARNING in the database log and never fails the insert.

create or replace function docflow_private.wake_process_jobs()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_base text;
  v_secret text;
begin
  if not exists (select 1 from inserted_jobs) then
    return null;
  end if;
  begin
    select decrypted_secret into v_base
      from vault.decrypted_secrets where name = 'docflow_base_url';
    select decrypted_secret into v_secret
      from vault.decrypted_secrets where name = 'docflow_scheduler_secret';
    if v_base is null or v_secret is null then
      raise warning 'docflow: wake_process_jobs: a Vault secret is missing (%, %)',
        'docflow_base_url', 'docflow_scheduler_secret';
      return null;
    end if;
    perform net.http_post(
      url := pg_catalog.rtrim(v_base, '/') || '/process_jobs',
      headers := pg_catalog.jsonb_build_object(
        'Content-Type', 'application/json',
        'X-Scheduler-Secret', v_secret),
      body := '{"max_seconds": 50}'::jsonb,
      timeout_milliseconds := 60000
    );
  exception when others then
    raise warning 'docflow: wake_process_jobs failed (%): %; jobs wait for the schedule',
      sqlstate, sqlerrm;
  end;
  return null;
end;
$$;

revoke all on function docflow_private.wake_process_jobs() from public;

drop trigger if exists docflow_wake_process_jobs on public.processing_jobs;
create trigger docflow_wake_process_jobs
  after insert on public.processing_jobs
  referencing new table as inserted_jobs
  for each statement execute function docflow_private.wake_process_jobs();

-- To remove it:
--   drop trigger if exists docflow_wake_process_jobs on public.processing_jobs;
--   drop function if exists docflow_private.wake_process_jobs();

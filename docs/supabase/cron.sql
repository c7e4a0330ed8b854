-- docflow: the schedules on Supabase Cron (pg_cron + pg_net), the alternative to Cloud
-- Scheduler.
--
-- Run in the SQL editor (or `psql`) after `supabase db push`, with the pg_cron and pg_net
-- extensions enabled and two Vault secrets created:
--   docflow_base_url          e.g. https://REGION-PROJECT_ID.cloudfunctions.net
--   docflow_scheduler_secret  the functions' SCHEDULER_SECRET
-- Safe to run again: it unschedules docflow's jobs if they exist, then schedules them anew.
-- The commands read Vault at every run, so a rotated secret needs no new schedule.
--
-- pg_net cannot present an OIDC token: deploy process_jobs, probe_health and retention with
-- --allow-unauthenticated for this, and X-Scheduler-Secret is their only guard.
-- pg_cron's times are UTC (cron.timezone defaults to GMT).
-- Runs: cron.job_run_details. Responses (kept for 6 hours): net._http_response.

begin;

select cron.unschedule(jobname)
  from cron.job
 where jobname in ('docflow-process-jobs', 'docflow-probe-health', 'docflow-retention');

-- Drain due jobs, every minute, within 50 s (keep below process_jobs' --timeout).
select cron.schedule(
  'docflow-process-jobs',
  '* * * * *',
  $cmd$
  select net.http_post(
    url := (select rtrim(decrypted_secret, '/') from vault.decrypted_secrets
             where name = 'docflow_base_url') || '/process_jobs',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'X-Scheduler-Secret', (select decrypted_secret from vault.decrypted_secrets
                              where name = 'docflow_scheduler_secret')),
    body := '{"max_seconds": 50}'::jsonb,
    timeout_milliseconds := 60000
  );
  $cmd$
);

-- Probe the services, every minute. Cloud Scheduler is the better home for this one: when
-- the database is down, Supabase Cron stops too.
select cron.schedule(
  'docflow-probe-health',
  '* * * * *',
  $cmd$
  select net.http_post(
    url := (select rtrim(decrypted_secret, '/') from vault.decrypted_secrets
             where name = 'docflow_base_url') || '/probe_health',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'X-Scheduler-Secret', (select decrypted_secret from vault.decrypted_secrets
                              where name = 'docflow_scheduler_secret')),
    body := '{}'::jsonb,
    timeout_milliseconds := 60000
  );
  $cmd$
);

-- Delete expired rows, daily at 03:17 UTC, within RETENTION_MAX_SECONDS.
select cron.schedule(
  'docflow-retention',
  '17 3 * * *',
  $cmd$
  select net.http_post(
    url := (select rtrim(decrypted_secret, '/') from vault.decrypted_secrets
             where name = 'docflow_base_url') || '/retention',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'X-Scheduler-Secret', (select decrypted_secret from vault.decrypted_secrets
                              where name = 'docflow_scheduler_secret')),
    body := '{"dry_run": false}'::jsonb,
    timeout_milliseconds := 600000
  );
  $cmd$
);

commit;

-- To remove them:
--   select cron.unschedule(jobname) from cron.job
--    where jobname in ('docflow-process-jobs', 'docflow-probe-health', 'docflow-retention');

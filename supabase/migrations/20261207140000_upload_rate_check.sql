-- Upload rate-limit pre-check (POST /uploads): the intake asks this before it reads or sniffs
-- a byte of the file, so that a user already at the limit costs no content work. It only
-- reads: it takes no slot and no lock. The limit itself stays in create_upload
-- (docflow_private.enqueue_guard, under the per-user advisory lock), which counts again; two
-- uploads racing past the pre-check are still held to the limit there.
--
-- The same count as enqueue_guard: at most `rate_limit_per_minute` jobs created by the user
-- in the 60 s up to `now`; `rate_limit_per_minute <= 0` turns it off. An Idempotency-Key the
-- user already used passes, because create_upload answers a replay (or a reused key) before
-- it counts, and a replay is never limited. Refusal: DF429 `rate_limited` with
-- `{"retry_after": seconds}` in DETAIL, as create_upload raises it.

create or replace function public.upload_rate_check(
  user_id uuid,
  rate_limit_per_minute integer default 0,
  idempotency_key text default null,
  now timestamptz default null
)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(upload_rate_check.now, pg_catalog.now());
  v_count integer;
  v_oldest timestamptz;
begin
  if upload_rate_check.rate_limit_per_minute is null
     or upload_rate_check.rate_limit_per_minute <= 0 then
    return;
  end if;
  if upload_rate_check.idempotency_key is not null and exists (
    select 1
      from public.processing_jobs j
     where j.user_id = upload_rate_check.user_id
       and j.idempotency_key = upload_rate_check.idempotency_key
  ) then
    return;
  end if;
  select count(*), min(j.created_at) into v_count, v_oldest
    from (select j.created_at
            from public.processing_jobs j
           where j.user_id = upload_rate_check.user_id
             and j.created_at > v_now - interval '60 seconds'
             and j.created_at <= v_now
           order by j.created_at desc
           limit upload_rate_check.rate_limit_per_minute) j;
  if v_count >= upload_rate_check.rate_limit_per_minute then
    raise exception 'rate limit: at most % jobs per minute', upload_rate_check.rate_limit_per_minute
      using errcode = 'DF429', hint = 'rate_limited',
            detail = json_build_object('retry_after', greatest(1, ceil(extract(epoch from
              (v_oldest + interval '60 seconds') - v_now))))::text;
  end if;
end;
$$;

revoke execute on function public.upload_rate_check(uuid, integer, text, timestamptz)
  from public, anon, authenticated;
grant execute on function public.upload_rate_check(uuid, integer, text, timestamptz)
  to service_role;

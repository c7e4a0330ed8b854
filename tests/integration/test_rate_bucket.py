"""The per-user enqueue limit as a token bucket (`docflow_private.enqueue_guard`): `burst` tokens,
refilled at `rate_limit_per_minute`, one taken by every upload, retry and reanalysis.

Every time is injected (`now=`), so the refill is exact: at 30 a minute a token takes 2 s.
`sql` (superuser) reads the bucket and the rows independently.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import psycopg
import pytest

from shared.platform.client import Database, make_database
from shared.platform.config import get_settings
from shared.platform.errors import RateLimited
from tests.support.factories import create_upload
from tests.support.threads import started_threads
from tests.support.times import at
from tests.support.waiting import wait_until

RATE, BURST = 30, 5  # a token every 2 s, five at once


def upload(db: Database, user, t: float, *, rate: int = RATE, burst: int = BURST, **extra: Any):
    return create_upload(db, user, now=at(t), rate_limit_per_minute=rate, rate_burst=burst, **extra)


def uploads_that_pass(db: Database, user, t: float, *, rate: int = RATE, burst: int = BURST):
    """Upload at `t` until refused: how many passed, and the refusal."""
    passed = 0
    while True:
        try:
            upload(db, user, t, rate=rate, burst=burst)
        except RateLimited as refused:
            return passed, refused
        passed += 1
        assert passed <= 1000, "never refused"


def check(db: Database, user, t: float, *, rate: int = RATE, burst: int = BURST, key=None) -> None:
    db.call(
        "upload_rate_check",
        user_id=user.user_id,
        rate_limit_per_minute=rate,
        rate_burst=burst,
        idempotency_key=key,
        now=at(t),
    )


def bucket(sql: psycopg.Connection, user) -> tuple[float, datetime] | None:
    return sql.execute(
        "select tokens, refilled_at from docflow_private.rate_buckets where user_id = %s",
        (user.user_id,),
    ).fetchone()


def job_count(sql: psycopg.Connection, user) -> int:
    return sql.execute(
        "select count(*) from public.processing_jobs where user_id = %s", (user.user_id,)
    ).fetchone()[0]


# --- burst and refill -----------------------------------------------------------------------


def test_a_new_user_gets_exactly_the_burst_at_one_instant(db, make_user, sql):
    user, other = make_user(), make_user()
    assert bucket(sql, user) is None
    passed, refused = uploads_that_pass(db, user, 0)
    assert passed == BURST
    assert (refused.code, refused.status) == ("rate_limited", 429)
    assert refused.message == "rate limit reached (burst 5, 30 per minute); next job in 2.0 s"
    assert refused.retry_after == 2
    assert job_count(sql, user) == BURST  # the refused upload wrote nothing
    assert bucket(sql, user) == (0.0, at(0))  # and took no token
    # Per user: another user's bucket is full.
    assert uploads_that_pass(db, other, 0)[0] == BURST


def test_the_bucket_refills_at_the_rate_and_never_above_the_burst(db, make_user, sql):
    user = make_user()
    assert uploads_that_pass(db, user, 0)[0] == BURST
    # k tokens after k/30 minutes (2k seconds), for k = 1, 2, 3.
    t = 0.0
    for k in (1, 2, 3):
        t += 2 * k
        assert uploads_that_pass(db, user, t)[0] == k, f"after {2 * k} s"
    # Half a token is no token; the other half comes a second later.
    passed, refused = uploads_that_pass(db, user, t + 1)
    assert (passed, refused.retry_after) == (0, 1)
    assert uploads_that_pass(db, user, t + 2)[0] == 1
    # A day idle fills the bucket to the burst, not beyond.
    assert uploads_that_pass(db, user, t + 86_400)[0] == BURST
    assert bucket(sql, user) == (0.0, at(t + 86_400))


@pytest.mark.parametrize(
    ("rate", "elapsed", "exact"),
    [
        (30, 0.0, 2.0),  # an empty bucket: a whole token at 2 s a token
        (30, 0.5, 1.5),  # 0.25 of a token back: 1.5 s to go
        (30, 1.9, 0.1),  # nearly there: still 1 s, never 0
        (40, 0.0, 1.5),  # 1.5 s a token
        (7, 0.0, 60 / 7),  # 8.57 s
        (1, 59.5, 0.5),
        (1, 0.4, 59.6),
        (2, 3.0, 27.0),  # 0.1 of a token back, which is not exact in binary
    ],
)
def test_retry_after_is_the_time_to_the_next_token_rounded_up(db, make_user, rate, elapsed, exact):
    user = make_user()
    assert uploads_that_pass(db, user, 0, rate=rate, burst=2)[0] == 2
    passed, refused = uploads_that_pass(db, user, elapsed, rate=rate, burst=2)
    assert passed == 0
    expected = max(1, math.ceil(exact))
    assert refused.retry_after == expected
    assert refused.message.endswith(f"next job in {max(round(exact, 1), 0.1):.1f} s")
    # One second before Retry-After is still too early (when that is later than now) ...
    if expected > 1:
        with pytest.raises(RateLimited):
            upload(db, user, elapsed + expected - 1, rate=rate, burst=2)
    # ... and at Retry-After the token is there.
    upload(db, user, elapsed + expected, rate=rate, burst=2)


def test_waiting_exactly_retry_after_gets_in_when_the_refill_is_not_exact_in_binary(
    db, make_user, sql
):
    """20 a minute is a third of a token a second: the bucket holds 0.333... after t = 4, and
    the refill of the next 2 s adds 0.666...; their sum rounds to just under 1 in double
    precision, which must still count as the whole token Retry-After promised."""
    user = make_user()
    assert uploads_that_pass(db, user, 0, rate=20, burst=2)[0] == 2
    upload(db, user, 4, rate=20, burst=2)
    tokens, _ = bucket(sql, user)
    assert 0.33 < tokens < 0.34
    passed, refused = uploads_that_pass(db, user, 4, rate=20, burst=2)
    assert (passed, refused.retry_after) == (0, 2)
    assert uploads_that_pass(db, user, 6, rate=20, burst=2)[0] == 1


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("bucket_exists", [False, True], ids=["new-user", "existing-bucket"])
def test_concurrent_uploads_of_one_user_never_overdraw(
    db, make_user, sql, admin_database_url, bucket_exists
):
    """Eight uploads of one user on eight connections at the same `now`, all in flight at once:
    a transaction holds the row each of them needs (the bucket's, or for a new user the user's,
    which the bucket's first insert references) until every one is waiting on a lock; exactly
    the tokens in the bucket go in. The hold does not depend on the enqueue lock, so a guard
    that read the bucket and wrote it back without serialising would be caught here."""
    user, callers = make_user(), 8
    tokens = BURST
    if bucket_exists:
        upload(db, user, 0)
        tokens -= 1
    settings = get_settings().model_copy(update={"db_pool_min": 0, "db_pool_max": 1})
    clients = [make_database(settings) for _ in range(callers)]

    def one_upload(client: Database) -> str:
        try:
            upload(client, user, 0)
        except RateLimited as refused:
            return f"refused {refused.retry_after}"
        return "accepted"

    def all_waiting() -> bool:
        row = sql.execute(
            "select count(distinct l.pid) from pg_locks l"
            "  join pg_stat_activity a on a.pid = l.pid"
            " where not l.granted and a.datname = current_database()"
        ).fetchone()
        return row is not None and row[0] == callers

    held = (
        "select 1 from docflow_private.rate_buckets where user_id = %s for update"
        if bucket_exists
        else "select 1 from auth.users where id = %s for update"
    )
    try:
        with psycopg.connect(admin_database_url) as holder, started_threads() as start:
            assert holder.execute(held, (user.user_id,)).fetchone() == (1,)
            runners = [start(one_upload, client) for client in clients]
            wait_until(all_waiting, "every upload to wait on a lock")
            holder.rollback()
            results = sorted(runner.join() for runner in runners)
    finally:
        for client in clients:
            client.close()

    assert results == ["accepted"] * tokens + ["refused 2"] * (callers - tokens)
    assert job_count(sql, user) == BURST
    assert bucket(sql, user) == (0.0, at(0))


# --- what draws from the bucket ---------------------------------------------------------------


def test_retries_and_reanalyses_draw_from_the_same_bucket(db, make_user, sql):
    user = make_user()
    limits = {"rate_limit_per_minute": RATE, "rate_burst": 3}
    first = upload(db, user, 0, burst=3)
    db.call("cancel_job", job_id=first["job_id"], now=at(0))
    retried = db.call("retry_job", job_id=first["job_id"], now=at(0), **limits)
    db.call("cancel_job", job_id=retried["job_id"], now=at(0))
    reanalysis = db.call(
        "reanalyze_document",
        document_id=first["document_id"],
        min_interval_seconds=0,
        now=at(0),
        **limits,
    )
    assert bucket(sql, user) == (0.0, at(0))  # upload, retry and reanalysis: three tokens

    with pytest.raises(RateLimited) as refused:
        upload(db, user, 0, burst=3)
    assert refused.value.retry_after == 2
    db.call("cancel_job", job_id=reanalysis["job_id"], now=at(1))
    n = job_count(sql, user)
    for call in (
        lambda t: db.call("retry_job", job_id=retried["job_id"], now=at(t), **limits),
        lambda t: db.call(
            "reanalyze_document",
            document_id=first["document_id"],
            min_interval_seconds=0,
            now=at(t),
            **limits,
        ),
    ):
        with pytest.raises(RateLimited) as refused:
            call(1)
        assert (refused.value.code, refused.value.retry_after) == ("rate_limited", 1)
    assert job_count(sql, user) == n

    # The token of t = 2 goes to a retry; the reanalysis then finds the bucket empty again.
    db.call("retry_job", job_id=retried["job_id"], now=at(2), **limits)
    with pytest.raises(RateLimited):
        db.call(
            "reanalyze_document",
            document_id=first["document_id"],
            min_interval_seconds=0,
            now=at(2),
            **limits,
        )


def test_an_idempotency_replay_and_bulk_enqueue_take_no_token(db, make_user, sql):
    user = make_user()
    first = upload(db, user, 0, burst=2, data=b"same", idempotency_key="k1")
    upload(db, user, 0, burst=2)
    assert bucket(sql, user) == (0.0, at(0))
    for _ in range(3):
        replay = upload(db, user, 0, burst=2, data=b"same", idempotency_key="k1")
        assert replay["replayed"] and replay["job_id"] == first["job_id"]
    db.call("cancel_job", job_id=first["job_id"], now=at(0))
    # enqueue_jobs (benchmarks, backfills) is outside the limiter.
    (bulk,) = db.call(
        "enqueue_jobs", jobs=[{"document_id": first["document_id"]}], source="reanalyze"
    )
    assert bulk
    assert bucket(sql, user) == (0.0, at(0))


# --- off, odd values, clocks ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, -1, None])
def test_a_rate_of_zero_turns_the_limit_off(db, make_user, sql, rate):
    user = make_user()
    for _ in range(BURST + 3):
        upload(db, user, 0, rate=rate, burst=1)
        check(db, user, 0, rate=rate, burst=1)
    assert job_count(sql, user) == BURST + 3
    assert bucket(sql, user) is None  # no bucket is read or written


@pytest.mark.parametrize("burst", [0, -5, None])
def test_a_burst_below_one_counts_as_one(db, make_user, burst):
    user = make_user()
    passed, refused = uploads_that_pass(db, user, 0, burst=burst)
    assert (passed, refused.retry_after) == (1, 2)
    assert "(burst 1," in refused.message
    assert uploads_that_pass(db, user, 2, burst=burst)[0] == 1


def test_a_lower_burst_caps_a_fuller_bucket_at_once(db, make_user, sql):
    user = make_user()
    upload(db, user, 0, burst=10)
    assert bucket(sql, user) == (9.0, at(0))
    assert uploads_that_pass(db, user, 0, burst=3)[0] == 3


def test_a_clock_going_backwards_neither_mints_nor_destroys_tokens(db, make_user, sql):
    user = make_user()
    upload(db, user, 100)
    upload(db, user, 100)
    assert bucket(sql, user) == (3.0, at(100))
    # 60 s earlier: the three tokens left are there, no more, and refilled_at stays.
    passed, refused = uploads_that_pass(db, user, 40)
    assert passed == 3
    assert bucket(sql, user) == (0.0, at(100))
    # The next token comes 2 s after refilled_at, 62 s from this clock's now.
    assert refused.retry_after == 62
    with pytest.raises(RateLimited) as precheck:
        check(db, user, 40)
    assert precheck.value.retry_after == 62
    # Back on the later clock: no time counted twice, none lost.
    passed, refused = uploads_that_pass(db, user, 101)
    assert (passed, refused.retry_after) == (0, 1)
    assert uploads_that_pass(db, user, 102)[0] == 1


# --- the intake's pre-check ------------------------------------------------------------------


def test_the_pre_check_agrees_with_create_upload_and_takes_no_token(db, make_user, sql):
    user = make_user()
    answers = []
    for t in (0, 0, 0, 0, 0, 0, 0.5, 1, 1.5, 2, 2, 3, 9, 9, 9, 9, 9):
        before = bucket(sql, user)
        for _ in range(3):  # asked any number of times, it changes nothing
            try:
                check(db, user, t)
                pre: tuple[Any, ...] = ("pass",)
            except RateLimited as refused:
                pre = (refused.code, refused.retry_after, refused.message)
        assert bucket(sql, user) == before
        try:
            upload(db, user, t)
            real: tuple[Any, ...] = ("pass",)
        except RateLimited as refused:
            real = (refused.code, refused.retry_after, refused.message)
        assert pre == real, f"at {t} s"
        answers.append(real[0])
    # The burst at 0, one token at 2 (3 finds half a token), three and a half at 9.
    assert answers.count("pass") == BURST + 1 + 3

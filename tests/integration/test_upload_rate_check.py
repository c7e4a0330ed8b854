"""`upload_rate_check`: the intake's rate-limit pre-check, asked before any content is read.

It answers what `create_upload` would answer about the user's token bucket, and takes no token.
Times are injected (`now`), as in the other queue tests.
"""

from __future__ import annotations

import pytest

from shared.platform.errors import RateLimited
from tests.support.factories import create_upload
from tests.support.times import at


def check(db, user, *, now, limit: int, burst: int = 3, key: str | None = None) -> None:
    db.call(
        "upload_rate_check",
        user_id=user.user_id,
        rate_limit_per_minute=limit,
        rate_burst=burst,
        idempotency_key=key,
        now=now,
    )


def test_it_refuses_exactly_when_create_upload_would(db, make_user):
    user, other = make_user(), make_user()
    for _ in range(3):  # the burst of 3
        check(db, user, now=at(0), limit=3)
        create_upload(db, user, now=at(0), rate_limit_per_minute=3, rate_burst=3)

    with pytest.raises(RateLimited) as pre:
        check(db, user, now=at(5), limit=3)
    with pytest.raises(RateLimited) as real:
        create_upload(db, user, now=at(5), rate_limit_per_minute=3, rate_burst=3)
    # 3 a minute: a token every 20 s, a quarter of one back after 5 s.
    assert (pre.value.code, pre.value.retry_after) == ("rate_limited", 15)
    assert (real.value.code, real.value.retry_after) == ("rate_limited", 15)
    assert pre.value.message == real.value.message

    check(db, other, now=at(5), limit=3)  # per user
    check(db, user, now=at(5), limit=12)  # refilled faster, it holds a whole token again
    check(db, user, now=at(5), limit=0)  # 0 turns the limit off
    check(db, user, now=at(20), limit=3)  # the token of t = 20
    create_upload(db, user, now=at(20), rate_limit_per_minute=3, rate_burst=3)
    with pytest.raises(RateLimited) as pre:  # and it is gone
        check(db, user, now=at(20), limit=3)
    assert pre.value.retry_after == 20


def test_it_takes_no_token(db, make_user, sql):
    user = make_user()
    create_upload(db, user, now=at(0), rate_limit_per_minute=1, rate_burst=2)
    bucket = "select tokens, refilled_at from docflow_private.rate_buckets where user_id = %s"
    before = sql.execute(bucket, (user.user_id,)).fetchone()
    for t in range(5):
        check(db, user, now=at(t), limit=1, burst=2)
    assert sql.execute(bucket, (user.user_id,)).fetchone() == before
    assert sql.execute("select count(*) from processing_jobs").fetchone() == (1,)
    # The one token left is still there.
    create_upload(db, user, now=at(0), rate_limit_per_minute=1, rate_burst=2)


def test_a_key_already_used_passes_because_create_upload_replays_it(db, make_user):
    user = make_user()
    first = create_upload(
        db,
        user,
        now=at(0),
        idempotency_key="k1",
        data=b"same",
        rate_limit_per_minute=1,
        rate_burst=1,
    )
    check(db, user, now=at(1), limit=1, burst=1, key="k1")
    replay = create_upload(
        db,
        user,
        now=at(1),
        idempotency_key="k1",
        data=b"same",
        rate_limit_per_minute=1,
        rate_burst=1,
    )
    assert replay["replayed"] and replay["job_id"] == first["job_id"]
    with pytest.raises(RateLimited):
        check(db, user, now=at(1), limit=1, burst=1, key="k2")


def test_api_roles_cannot_call_it(sql):
    for role in ("anon", "authenticated"):
        allowed = sql.execute(
            "select has_function_privilege(%s,"
            " 'public.upload_rate_check(uuid, integer, integer, text, timestamptz)', 'execute')",
            (role,),
        ).fetchone()
        assert allowed == (False,), role
    service = sql.execute(
        "select has_function_privilege('service_role',"
        " 'public.upload_rate_check(uuid, integer, integer, text, timestamptz)', 'execute')"
    ).fetchone()
    assert service == (True,)

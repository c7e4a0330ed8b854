"""`upload_rate_check`: the intake's rate-limit pre-check, asked before any content is read.

It answers what `create_upload` would answer about the rate limit, and takes no slot. Times are
injected (`now`), as in the other queue tests.
"""

from __future__ import annotations

import pytest

from shared.platform.errors import RateLimited
from tests.support.factories import create_upload
from tests.support.times import at


def check(db, user, *, now, limit: int, key: str | None = None) -> None:
    db.call(
        "upload_rate_check",
        user_id=user.user_id,
        rate_limit_per_minute=limit,
        idempotency_key=key,
        now=now,
    )


def test_it_refuses_exactly_when_create_upload_would(db, make_user):
    user, other = make_user(), make_user()
    for t in (0, 10, 20):
        check(db, user, now=at(t), limit=3)
        create_upload(db, user, now=at(t), rate_limit_per_minute=3)

    with pytest.raises(RateLimited) as pre:
        check(db, user, now=at(30), limit=3)
    with pytest.raises(RateLimited) as real:
        create_upload(db, user, now=at(30), rate_limit_per_minute=3)
    assert (pre.value.code, pre.value.retry_after) == ("rate_limited", 30)
    assert (real.value.code, real.value.retry_after) == ("rate_limited", 30)

    check(db, other, now=at(30), limit=3)  # per user
    check(db, user, now=at(30), limit=4)  # under a higher limit
    check(db, user, now=at(30), limit=0)  # 0 turns the limit off
    check(db, user, now=at(61), limit=3)  # the upload at 0 has left the window
    create_upload(db, user, now=at(61), rate_limit_per_minute=3)
    with pytest.raises(RateLimited) as pre:  # window now: 10, 20, 61
        check(db, user, now=at(61), limit=3)
    assert pre.value.retry_after == 9


def test_it_takes_no_slot(db, make_user, sql):
    user = make_user()
    for _ in range(5):
        check(db, user, now=at(0), limit=1)
    assert sql.execute("select count(*) from processing_jobs").fetchone() == (0,)
    create_upload(db, user, now=at(0), rate_limit_per_minute=1)  # the one slot is still free


def test_a_key_already_used_passes_because_create_upload_replays_it(db, make_user):
    user = make_user()
    first = create_upload(
        db, user, now=at(0), idempotency_key="k1", data=b"same", rate_limit_per_minute=1
    )
    check(db, user, now=at(1), limit=1, key="k1")
    replay = create_upload(
        db, user, now=at(1), idempotency_key="k1", data=b"same", rate_limit_per_minute=1
    )
    assert replay["replayed"] and replay["job_id"] == first["job_id"]
    with pytest.raises(RateLimited):
        check(db, user, now=at(1), limit=1, key="k2")


def test_api_roles_cannot_call_it(sql):
    for role in ("anon", "authenticated"):
        allowed = sql.execute(
            "select has_function_privilege(%s,"
            " 'public.upload_rate_check(uuid, integer, text, timestamptz)', 'execute')",
            (role,),
        ).fetchone()
        assert allowed == (False,), role
    service = sql.execute(
        "select has_function_privilege('service_role',"
        " 'public.upload_rate_check(uuid, integer, text, timestamptz)', 'execute')"
    ).fetchone()
    assert service == (True,)

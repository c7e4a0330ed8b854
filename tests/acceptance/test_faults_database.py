"""Fault matrix, database rows over HTTP: the connection pool is exhausted at intake.

The pool is small (DB_POOL_MAX=2) with a short DB_CONNECT_TIMEOUT, and every connection in it
is really busy: real calls through the function's own client, each waiting on a table lock that
another session holds (as long queries or a stuck transaction would). An upload then gets no
connection: it must answer 503 `unavailable` with Retry-After instead of hanging, and leave
nothing half-created (no document, no job, no stored object).

No timing assertion: the request runs in a thread that must have returned within a generous
bound (a hang fails the test); the test waits on conditions, never on durations.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from shared.platform import client as client_module
from shared.platform.client import Database, get_db
from shared.platform.storage import get_storage
from tests.support.data import TEXT
from tests.support.env import configure
from tests.support.http import ClientFor, assert_error, post_upload, stored_objects
from tests.support.rows import row_count
from tests.support.threads import Background
from tests.support.users import MakeUser
from tests.support.waiting import PATIENCE, wait_until

POOL_MAX = 2


@pytest.fixture
def small_pool(db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The functions' client, rebuilt with a pool of POOL_MAX connections and a 1 s wait."""
    configure(monkeypatch, DB_POOL_MIN=0, DB_POOL_MAX=POOL_MAX, DB_CONNECT_TIMEOUT=1)
    client_module.reset_db()
    return get_db()


def waiting_on_a_lock(sql: psycopg.Connection) -> int:
    row = sql.execute(
        "select count(*) from pg_stat_activity where datname = current_database()"
        " and application_name = 'docflow' and wait_event_type = 'Lock'"
    ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def every_connection_busy(
    admin_database_url: str, sql: psycopg.Connection, db: Database
) -> Iterator[None]:
    """Inside the block, all POOL_MAX connections of the pool are in use: real calls
    (`get_job`) that wait on a lock of processing_jobs another session holds. Leaving the
    block releases the lock; the calls then return."""
    holders: list[Background] = []
    with psycopg.connect(admin_database_url) as locker, locker.transaction():
        locker.execute("lock table public.processing_jobs in access exclusive mode")
        for _ in range(POOL_MAX):
            job_id = str(uuid.uuid4())
            holders.append(Background(lambda j=job_id: db.call("get_job", job_id=j)))
        wait_until(
            lambda: waiting_on_a_lock(sql) == POOL_MAX,
            f"{POOL_MAX} pooled connections to wait on the lock",
        )
        yield
    for holder in holders:
        assert holder.join() is None  # no such job: they only held a connection


def assert_nothing_created(sql: psycopg.Connection) -> None:
    assert row_count(sql, "documents") == 0
    assert row_count(sql, "processing_jobs") == 0
    assert row_count(sql, "document_processing_events") == 0  # a 503 is not a rejection
    assert stored_objects() == []


def assert_unavailable(response: Any) -> None:
    error = assert_error(response, 503, "unavailable")
    assert error["message"] == "database busy or unreachable"  # no connection from the pool
    assert int(response.headers["Retry-After"]) == error["retry_after"] > 0


def test_an_upload_with_the_pool_exhausted_is_503_with_retry_after_and_creates_nothing(
    client_for: ClientFor,
    make_user: MakeUser,
    small_pool: Database,
    sql: psycopg.Connection,
    admin_database_url: str,
) -> None:
    user = make_user()
    uploads = client_for("uploads")
    with every_connection_busy(admin_database_url, sql, small_pool):
        response = Background(post_upload, uploads, user, TEXT, "report.txt").join()
    assert_unavailable(response)
    assert_nothing_created(sql)

    # Once a connection is free again, the same upload goes through.
    again = post_upload(uploads, user, TEXT, "report.txt")
    assert again.status_code == 202, again.get_data(as_text=True)
    assert row_count(sql, "documents") == row_count(sql, "processing_jobs") == 1
    assert len(stored_objects()) == 1


def test_the_pool_exhausted_between_storing_and_registering_leaves_no_object(
    client_for: ClientFor,
    make_user: MakeUser,
    small_pool: Database,
    sql: psycopg.Connection,
    admin_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worst moment: the object is stored and the rate check passed, then the pool runs
    dry before create_upload gets a connection. The stored object must be deleted again."""
    user = make_user()
    uploads = client_for("uploads")
    storage = get_storage()
    real_put = storage.put
    stored, go_on = threading.Event(), threading.Event()

    def put(name: str, data: bytes, content_type: str, *, overwrite: bool = False) -> None:
        real_put(name, data, content_type, overwrite=overwrite)
        stored.set()
        go_on.wait(PATIENCE)  # the test exhausts the pool meanwhile

    monkeypatch.setattr(storage, "put", put)
    request = Background(post_upload, uploads, user, TEXT, "report.txt")
    try:
        assert stored.wait(PATIENCE), "the upload never stored its object"
        assert len(stored_objects()) == 1
        with every_connection_busy(admin_database_url, sql, small_pool):
            go_on.set()
            response = request.join()
    finally:
        go_on.set()
    assert_unavailable(response)
    assert_nothing_created(sql)

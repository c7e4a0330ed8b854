"""Fault matrix, storage rows: the storage backend fails in the middle of a job or a retention
run, and no document is lost, half-written or left pointing at a mix of old and new text.

- Storage read fails while `reading`: recoverable `storage_unavailable`, retried with the
  queue's backoff, then `failed` with that code after the last attempt. A missing object stays
  `object_missing`, not retried.
- Storage write fails while `finalizing`: recoverable; the document keeps its previous text
  and Markdown (or has none yet), never a mix; the retry completes and switches both.
- Storage delete fails during retention: the `storage_deletions` rows stay; the next run
  deletes the files and then the rows.

Everything is real (PostgreSQL, the migrations, the worker engine, the queue SQL, the
pipeline with its sandbox, the HTTP functions) except the storage boundary. For the local
backend the file system calls it makes fail with the `OSError` a failing disk raises (EIO),
for the objects a test names; for Supabase Storage respx answers the Storage API with a 503.
Time is never waited for: each drain runs one attempt, the backoff is read from the job row
(`run_at - updated_at`, both written by the same `fail_jobs` call with `RETRY_JITTER=0`), and
the clock is moved by moving `run_at` back by that delay.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx

from shared.documents import pipeline
from shared.jobs.worker import DrainReport, Worker
from shared.ops import retention
from shared.platform.client import Database, UserContext
from shared.platform.config import Settings
from shared.platform.storage import (
    LocalStorage,
    Storage,
    SupabaseStorage,
    get_storage,
    storage_client,
)
from tests.support.data import TEXT
from tests.support.env import configure
from tests.support.factories import create_upload
from tests.support.http import ClientFor, assert_error, uploaded
from tests.support.rows import event_counts, job_events, job_row
from tests.support.tokens import api_key, bearer
from tests.support.users import MakeUser

# Backoff 10 s, 20 s, then capped at 25 s; four attempts; no jitter, so the delays are exact.
RETRY = {
    "RETRY_INITIAL_SECONDS": 10,
    "RETRY_MULTIPLIER": 2,
    "RETRY_MAX_SECONDS": 25,
    "RETRY_JITTER": 0,
    "JOB_MAX_ATTEMPTS": 4,
    "REANALYZE_INTERVAL_SECONDS": 0,
}
DELAYS = [10.0, 20.0, 25.0]  # after attempts 1, 2 and 3

V1 = TEXT
V2 = (
    b"Quarterly report for the harbour office, revised. Revenue grew by twelve percent. "
    b"The second crane arrives in June. Staff turnover fell.\n"
    b"A new paragraph about the warehouse lease and the night shift.\n"
)

SUPABASE_URL = "https://proj.supabase.test"
OBJECTS = f"{SUPABASE_URL}/storage/v1/object"


# --- the failing disk -------------------------------------------------------------------------


class Disk:
    """The local backend's file system, with faults: `fail(op, ...)` makes the call `op`
    ("read", "write" or "unlink") raise OSError(EIO) for the objects it names (`names`, or
    every name ending in `suffix`; neither: every object), as a failing disk or a lost
    network mount does; `heal()` ends the faults. Only objects under the storage root are
    affected; `hits` counts the calls that failed."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.failing: dict[str, Callable[[str], bool]] = {}
        self.hits = {"read": 0, "write": 0, "unlink": 0}
        real_read, real_unlink, real_replace = Path.read_bytes, Path.unlink, os.replace

        def read_bytes(path: Path) -> bytes:
            self._check("read", path)
            return real_read(path)

        def unlink(path: Path, missing_ok: bool = False) -> None:
            self._check("unlink", path)
            real_unlink(path, missing_ok=missing_ok)

        def replace(src: Any, dst: Any, **kwargs: Any) -> None:
            self._check("write", Path(dst))
            real_replace(src, dst, **kwargs)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        monkeypatch.setattr(Path, "unlink", unlink)
        monkeypatch.setattr(os, "replace", replace)

    def _check(self, op: str, path: Path) -> None:
        if op not in self.failing or not path.is_relative_to(self.root):
            return
        if self.failing[op](path.relative_to(self.root).as_posix()):
            self.hits[op] += 1
            raise OSError(errno.EIO, "Input/output error")

    def fail(self, op: str, *, names: set[str] | None = None, suffix: str = "") -> None:
        self.failing[op] = lambda name: (names is None or name in names) and name.endswith(suffix)

    def heal(self) -> None:
        self.failing.clear()

    def objects(self, under: str) -> set[str]:
        folder = self.root / under
        return {p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def local(db: Database) -> LocalStorage:
    """The storage the functions use in this test (STORAGE_DIR under tmp_path)."""
    store = get_storage()
    assert isinstance(store, LocalStorage)
    return store


@pytest.fixture
def disk(local: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(local.root, monkeypatch)


@pytest.fixture
def settings(db: Database, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return configure(monkeypatch, **RETRY)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[logging.LogRecord]]]:
    """docflow's log records (what an operator reads; warnings and errors at the tests'
    LOG_LEVEL), captured on the `docflow` logger itself: the functions stop it propagating."""
    logger = logging.getLogger("docflow")
    logger.addHandler(caplog.handler)
    yield lambda: [r for r in caplog.records if r.name.startswith("docflow")]
    logger.removeHandler(caplog.handler)


# --- helpers ----------------------------------------------------------------------------------


def drain(db: Database, settings: Settings, storage: Storage) -> DrainReport:
    """One worker drain: the due jobs, one attempt each (a retry is not due within it)."""
    handler = pipeline.handler(db, storage, settings)
    return Worker(db, settings, handler, concurrency=1, batch_size=1).drain(10, 60)


def counts(report: DrainReport) -> dict[str, int]:
    return {k: v for k, v in report.as_dict().items() if v}


def backoff(sql: psycopg.Connection, job_id: str) -> float:
    """The delay `fail_jobs` gave the retry: run_at minus the time of the failure."""
    row = sql.execute(
        "select extract(epoch from run_at - updated_at)::float8 from public.processing_jobs"
        " where id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return float(row[0])


def let_backoff_pass(sql: psycopg.Connection, job_id: str) -> None:
    """Move the job's clock on: it becomes due as its backoff ends (run_at back to the failure)."""
    sql.execute("update public.processing_jobs set run_at = updated_at where id = %s", (job_id,))


def job_json(client_for: ClientFor, user: UserContext, job_id: str) -> dict[str, Any]:
    response = client_for("jobs").get(f"/jobs/{job_id}", headers=bearer(user))
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def served(client_for: ClientFor, user: UserContext, document_id: str) -> tuple[Any, Any]:
    """What the user gets from the text and Markdown routes: (status, body) of each."""
    http = client_for("jobs")
    out = []
    for kind in ("text", "markdown"):
        response = http.get(f"/documents/{document_id}/{kind}", headers=bearer(user))
        out.append((response.status_code, response.get_data()))
    return out[0], out[1]


def document_paths(sql: psycopg.Connection, document_id: str) -> tuple[Any, Any]:
    row = sql.execute(
        "select text_path, markdown_path from public.documents where id = %s", (document_id,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def queued(sql: psycopg.Connection) -> dict[str, str]:
    """The storage_deletions queue: path -> reason."""
    rows = sql.execute("select object_path, reason from public.storage_deletions").fetchall()
    return {path: reason for path, reason in rows}


def logged(records: list[logging.LogRecord], message: str, field: str) -> list[Any]:
    """The `field` of each record logged with this message (None where it has none)."""
    return [getattr(r, field, None) for r in records if r.getMessage() == message]


def supabase_storage() -> SupabaseStorage:
    client = storage_client(f"{SUPABASE_URL}/storage/v1", api_key("service_role"))
    return SupabaseStorage(client, "documents")


# --- storage read fails while reading -----------------------------------------------------------


def test_a_read_fault_is_retried_with_backoff_then_fails_with_storage_unavailable(
    client_for: ClientFor,
    make_user: MakeUser,
    db: Database,
    sql: psycopg.Connection,
    settings: Settings,
    local: LocalStorage,
    disk: Disk,
    logs: Callable[[], list[logging.LogRecord]],
) -> None:
    user = make_user()
    answer = uploaded(client_for("uploads"), user, V1, "report.txt")
    job_id = str(answer["job_id"])
    disk.fail("read")

    for attempt, delay in enumerate(DELAYS, start=1):
        assert counts(drain(db, settings, local)) == {"claimed": 1, "retried": 1}
        row = job_row(sql, job_id)
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        assert (row["error_code"], row["error_recoverable"]) == ("storage_unavailable", True)
        assert backoff(sql, job_id) == delay
        # Not due before its backoff has passed: a drain now claims nothing.
        assert counts(drain(db, settings, local)) == {}
        let_backoff_pass(sql, job_id)

    assert counts(drain(db, settings, local)) == {"claimed": 1, "failed": 1}
    assert disk.hits["read"] == 4

    # What the user sees.
    job = job_json(client_for, user, job_id)
    assert (job["status"], job["attempts"], job["max_attempts"]) == ("failed", 4, 4)
    assert job["error"] == {
        "code": "storage_unavailable",
        "message": "could not read the stored file; storage is unavailable",
        "recoverable": True,
    }
    assert served(client_for, user, answer["document_id"])[0][0] == 404
    # What the operator sees: one event per attempt with its code and delay, and the logs.
    events = [
        e for e in job_events(sql, job_id) if e["event_type"] in ("retry_scheduled", "failed")
    ]
    assert [(e["event_type"], e["details"]["attempt"]) for e in events] == [
        ("retry_scheduled", 1),
        ("retry_scheduled", 2),
        ("retry_scheduled", 3),
        ("failed", 4),
    ]
    assert {e["details"]["error_code"] for e in events} == {"storage_unavailable"}
    assert [e["details"]["delay_ms"] for e in events[:3]] == [10_000, 20_000, 25_000]
    records = logs()
    assert logged(records, "storage call failed", "op") == ["get"] * 4
    assert set(logged(records, "storage call failed", "errno")) == {errno.EIO}
    assert logged(records, "storage failed during a job", "stage") == ["reading"] * 4
    assert not any(r.getMessage() == "job crashed" for r in records)  # not an internal_error


def test_a_supabase_read_fault_is_retried_and_the_job_completes_once_storage_answers(
    make_user: MakeUser, db: Database, sql: psycopg.Connection, settings: Settings
) -> None:
    user = make_user()
    created = create_upload(db, user, data=V1, filename="report.txt")
    job_id, document_id = str(created["job_id"]), str(created["document_id"])
    upload = sql.execute(
        "select storage_path from public.documents where id = %s", (document_id,)
    ).fetchone()
    assert upload is not None
    remote = supabase_storage()
    with respx.mock(assert_all_mocked=True, assert_all_called=True) as api:
        read = api.get(f"{OBJECTS}/documents/{upload[0]}")
        read.side_effect = [
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            httpx.Response(200, content=V1),
        ]
        written = api.post(url__startswith=f"{OBJECTS}/documents/{user.user_id}/text/")
        written.respond(200, json={"Key": "documents/x", "Id": "x"})

        for attempt, delay in enumerate(DELAYS[:2], start=1):
            assert counts(drain(db, settings, remote)) == {"claimed": 1, "retried": 1}
            row = job_row(sql, job_id)
            assert (row["status"], row["attempts"], row["error_code"]) == (
                "pending",
                attempt,
                "storage_unavailable",
            )
            assert backoff(sql, job_id) == delay
            let_backoff_pass(sql, job_id)
        assert counts(drain(db, settings, remote)) == {"claimed": 1, "completed": 1}

    row = job_row(sql, job_id)
    assert (row["status"], row["attempts"]) == ("completed", 3)
    assert read.call_count == 3
    stored = {str(call.request.url).removeprefix(f"{OBJECTS}/documents/") for call in written.calls}
    assert stored == set(document_paths(sql, document_id))
    assert event_counts(sql, job_id)["retry_scheduled"] == 2


@pytest.mark.parametrize("backend", ["local", "supabase"])
def test_a_missing_object_is_not_retried_it_stays_object_missing(
    make_user: MakeUser,
    db: Database,
    sql: psycopg.Connection,
    settings: Settings,
    local: LocalStorage,
    backend: str,
) -> None:
    user = make_user()
    job_id = str(create_upload(db, user, filename="report.txt")["job_id"])  # nothing stored
    if backend == "local":
        report = drain(db, settings, local)
    else:
        with respx.mock(assert_all_mocked=True) as api:
            api.get(url__startswith=f"{OBJECTS}/documents/").respond(
                404, json={"statusCode": "404", "error": "not_found", "message": "Object not found"}
            )
            report = drain(db, settings, supabase_storage())
    assert counts(report) == {"claimed": 1, "failed": 1}
    row = job_row(sql, job_id)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert (row["error_code"], row["error_recoverable"]) == ("object_missing", False)


# --- storage write fails while finalizing -------------------------------------------------------


def test_a_write_fault_on_a_first_text_leaves_no_text_without_markdown(
    client_for: ClientFor,
    make_user: MakeUser,
    db: Database,
    sql: psycopg.Connection,
    settings: Settings,
    local: LocalStorage,
    disk: Disk,
) -> None:
    user = make_user()
    answer = uploaded(client_for("uploads"), user, V1, "report.txt")
    job_id, document_id = str(answer["job_id"]), str(answer["document_id"])
    markdown = f"{user.user_id}/text/{document_id}.md"
    disk.fail("write", names={markdown})  # the text is stored, then the Markdown write fails

    assert counts(drain(db, settings, local)) == {"claimed": 1, "retried": 1}
    row = job_row(sql, job_id)
    assert (row["status"], row["error_code"], row["error_recoverable"]) == (
        "pending",
        "storage_unavailable",
        True,
    )
    assert backoff(sql, job_id) == DELAYS[0]
    # The document points at nothing yet: no text without its Markdown.
    assert document_paths(sql, document_id) == (None, None)
    (text_status, _), (markdown_status, _) = served(client_for, user, document_id)
    assert (text_status, markdown_status) == (404, 404)
    assert job_json(client_for, user, job_id)["error"]["message"] == (
        "could not store the extracted text; storage is unavailable"
    )

    disk.heal()
    let_backoff_pass(sql, job_id)
    assert counts(drain(db, settings, local)) == {"claimed": 1, "completed": 1}
    assert document_paths(sql, document_id) == (f"{user.user_id}/text/{document_id}.txt", markdown)
    (text_status, text), (markdown_status, md) = served(client_for, user, document_id)
    assert (text_status, markdown_status) == (200, 200)
    assert b"Revenue grew by nine percent" in text and b"Revenue grew by nine percent" in md
    assert disk.objects(f"{user.user_id}/text") == {
        f"{user.user_id}/text/{document_id}.txt",
        markdown,
    }
    assert queued(sql) == {}


def test_a_write_fault_during_reanalyze_keeps_the_old_pair_and_the_retry_switches_both(
    client_for: ClientFor,
    make_user: MakeUser,
    db: Database,
    sql: psycopg.Connection,
    settings: Settings,
    local: LocalStorage,
    disk: Disk,
    logs: Callable[[], list[logging.LogRecord]],
) -> None:
    user = make_user()
    answer = uploaded(client_for("uploads"), user, V1, "report.txt")
    document_id = str(answer["document_id"])
    assert counts(drain(db, settings, local)) == {"claimed": 1, "completed": 1}
    old_pair = document_paths(sql, document_id)
    assert old_pair == (
        f"{user.user_id}/text/{document_id}.txt",
        f"{user.user_id}/text/{document_id}.md",
    )
    old_text, old_md = served(client_for, user, document_id)
    assert old_text[0] == old_md[0] == 200 and b"nine percent" in old_text[1]

    # The stored upload now reads differently, so the reanalysis has new text to store.
    upload = sql.execute(
        "select storage_path from public.documents where id = %s", (document_id,)
    ).fetchone()
    assert upload is not None
    local.put(upload[0], V2, "text/plain", overwrite=True)
    reanalyze = client_for("jobs").post(
        f"/documents/{document_id}/reanalyze", json={}, headers=bearer(user)
    )
    assert reanalyze.status_code == 202, reanalyze.get_data(as_text=True)
    job_id = str(reanalyze.get_json()["job_id"])

    # Every Markdown write fails (the job names its objects itself): the new text is stored
    # first, then its Markdown is not.
    disk.fail("write", suffix=".md")

    assert counts(drain(db, settings, local)) == {"claimed": 1, "retried": 1}
    assert disk.hits["write"] == 1
    row = job_row(sql, job_id)
    assert (row["status"], row["error_code"], row["error_recoverable"]) == (
        "pending",
        "storage_unavailable",
        True,
    )
    # The document still shows the old text with the old Markdown, not a mix.
    assert document_paths(sql, document_id) == old_pair
    assert served(client_for, user, document_id) == (old_text, old_md)
    # The new text this attempt stored under its own name was deleted again.
    assert disk.objects(f"{user.user_id}/text") == set(old_pair)
    assert queued(sql) == {}

    disk.heal()
    let_backoff_pass(sql, job_id)
    assert counts(drain(db, settings, local)) == {"claimed": 1, "completed": 1}
    new_pair = document_paths(sql, document_id)
    text_name, md_name = new_pair
    assert text_name.removesuffix(".txt") == md_name.removesuffix(".md")  # one version
    assert text_name.startswith(f"{user.user_id}/text/{document_id}.") and text_name not in old_pair
    (text_status, text), (md_status, md) = served(client_for, user, document_id)
    assert (text_status, md_status) == (200, 200)
    assert b"twelve percent" in text and b"twelve percent" in md
    assert b"nine percent" not in text and b"nine percent" not in md
    job = job_json(client_for, user, job_id)
    assert (job["status"], job["attempts"]) == ("completed", 2)
    # The replaced pair is queued for deletion; retention removes it, and only it.
    assert queued(sql) == dict.fromkeys(old_pair, "document_text_replaced")
    report = retention.run(db, local, settings)
    assert report["counts"]["stored_files"] == 2
    assert disk.objects(f"{user.user_id}/text") == set(new_pair)
    assert served(client_for, user, document_id) == ((200, text), (200, md))
    # Logs name the stage and the error type, never the document's text.
    records = logs()
    assert logged(records, "storage failed during a job", "stage") == ["finalizing"]
    for record in records:
        line = record.getMessage() + " " + " ".join(repr(v) for v in vars(record).values())
        assert "twelve percent" not in line and "nine percent" not in line


def test_a_supabase_write_fault_on_a_replacement_discards_its_objects_and_the_retry_switches(
    make_user: MakeUser, db: Database, sql: psycopg.Connection, settings: Settings
) -> None:
    """Supabase Storage answers 503 to the Markdown upload of a reanalysis: the objects the
    attempt wrote under its own names are deleted again, the document keeps its pair; the
    retry uploads a new pair and switches to it."""
    user = make_user()
    created = create_upload(db, user, data=V2, filename="report.txt")
    job_id, document_id = str(created["job_id"]), str(created["document_id"])
    old_pair = (f"{user.user_id}/text/{document_id}.txt", f"{user.user_id}/text/{document_id}.md")
    db.call("set_document_text", document_id=document_id, text_path=old_pair[0],
            markdown_path=old_pair[1])  # fmt: skip
    upload = sql.execute(
        "select storage_path from public.documents where id = %s", (document_id,)
    ).fetchone()
    assert upload is not None
    prefix = f"{OBJECTS}/documents/{user.user_id}/text/{document_id}."

    def name(request: httpx.Request) -> str:
        return str(request.url).removeprefix(f"{OBJECTS}/documents/")

    answers = iter([200, 503, 200, 200])  # text, Markdown (fails), then the retry's two
    with respx.mock(assert_all_mocked=True, assert_all_called=True) as api:
        api.get(f"{OBJECTS}/documents/{upload[0]}").respond(200, content=V2)
        writes = api.post(url__startswith=prefix)
        writes.side_effect = lambda request: httpx.Response(next(answers), json={"Key": "k"})
        # As the real server answers: the objects it removed (a write that answered 503 may
        # still have stored its object), so delete_many asks about none of them again.
        removes = api.delete(f"{OBJECTS}/documents")
        removes.side_effect = lambda request: httpx.Response(
            200,
            json=[
                {"name": n} for n in httpx.Response(200, content=request.content).json()["prefixes"]
            ],
        )

        assert counts(drain(db, settings, supabase_storage())) == {"claimed": 1, "retried": 1}
        row = job_row(sql, job_id)
        assert (row["status"], row["error_code"]) == ("pending", "storage_unavailable")
        assert document_paths(sql, document_id) == old_pair
        first_try = [name(call.request) for call in writes.calls]
        assert len(first_try) == 2 and first_try[1].endswith(".md")
        assert not set(first_try) & set(old_pair)
        discarded = httpx.Response(200, content=removes.calls.last.request.content).json()
        assert set(discarded["prefixes"]) == set(first_try)
        assert queued(sql) == {}

        let_backoff_pass(sql, job_id)
        assert counts(drain(db, settings, supabase_storage())) == {"claimed": 1, "completed": 1}
        retried = [name(call.request) for call in writes.calls][2:]
    assert document_paths(sql, document_id) == tuple(retried)
    assert not set(retried) & (set(first_try) | set(old_pair))
    assert queued(sql) == dict.fromkeys(old_pair, "document_text_replaced")


def test_set_document_text_queues_only_what_it_replaces(
    make_user: MakeUser, db: Database, sql: psycopg.Connection
) -> None:
    """The switch itself: the same pair again (a rerun) queues nothing; a new pair queues the
    old one; a path still in use (the upload, or one of the new pair) is never queued."""
    user = make_user()
    document_id = str(create_upload(db, user)["document_id"])
    upload = sql.execute(
        "select storage_path from public.documents where id = %s", (document_id,)
    ).fetchone()
    assert upload is not None

    def switch(text: str | None, markdown: str | None) -> None:
        db.call("set_document_text", document_id=document_id, text_path=text,
                markdown_path=markdown)  # fmt: skip

    switch("u/text/a.txt", "u/text/a.md")
    switch("u/text/a.txt", "u/text/a.md")
    assert queued(sql) == {}
    switch("u/text/b.txt", "u/text/a.md")  # the Markdown stays in use
    assert queued(sql) == {"u/text/a.txt": "document_text_replaced"}
    switch(upload[0], "u/text/c.md")  # never the upload, even were it the text
    assert queued(sql) == {
        "u/text/a.txt": "document_text_replaced",
        "u/text/b.txt": "document_text_replaced",
        "u/text/a.md": "document_text_replaced",
    }
    switch("u/text/d.txt", "u/text/d.md")
    assert set(queued(sql)) == {
        "u/text/a.txt",
        "u/text/b.txt",
        "u/text/a.md",
        "u/text/c.md",
    }


# --- storage delete fails during retention ------------------------------------------------------


def test_a_delete_fault_keeps_the_queue_rows_and_the_next_run_deletes(
    client_for: ClientFor,
    make_user: MakeUser,
    db: Database,
    sql: psycopg.Connection,
    settings: Settings,
    local: LocalStorage,
    disk: Disk,
    logs: Callable[[], list[logging.LogRecord]],
) -> None:
    user = make_user()
    document_id = str(uploaded(client_for("uploads"), user, V1, "report.txt")["document_id"])
    assert counts(drain(db, settings, local)) == {"claimed": 1, "completed": 1}
    files = disk.objects(user.user_id)
    assert len(files) == 3  # the upload, its text and its Markdown
    sql.execute("delete from public.documents where id = %s", (document_id,))
    assert set(queued(sql)) == files

    # One of the three deletes fails: the batch's rows all stay (a file already deleted is
    # no error next time).
    stuck = f"{user.user_id}/text/{document_id}.md"
    disk.fail("unlink", names={stuck})
    first = retention.run(db, local, settings)
    assert (first["finished"], first["counts"]["stored_files"]) == (False, 0)
    assert set(queued(sql)) == files
    assert stuck in disk.objects(user.user_id)
    assert disk.hits["unlink"] == 1
    records = logs()
    assert logged(records, "retention could not delete stored files", "code") == ["unavailable"]
    assert logged(records, "storage call failed", "op") == ["delete"]

    disk.heal()
    second = retention.run(db, local, settings)
    assert (second["finished"], second["counts"]["stored_files"]) == (True, 3)
    assert queued(sql) == {}
    assert disk.objects(user.user_id) == set()


def test_a_supabase_delete_fault_keeps_the_queue_rows_and_the_next_run_deletes(
    make_user: MakeUser, db: Database, sql: psycopg.Connection, settings: Settings
) -> None:
    user = make_user()
    created = create_upload(db, user)
    document_id = str(created["document_id"])
    text, markdown = (
        f"{user.user_id}/text/{document_id}.txt",
        f"{user.user_id}/text/{document_id}.md",
    )
    db.call("set_document_text", document_id=document_id, text_path=text, markdown_path=markdown)
    sql.execute("delete from public.documents where id = %s", (document_id,))
    paths = set(queued(sql))
    assert len(paths) == 3 and {text, markdown} <= paths

    with respx.mock(assert_all_mocked=True, assert_all_called=True) as api:
        remove = api.delete(f"{OBJECTS}/documents")
        remove.side_effect = [
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(200, json=[{"name": p} for p in sorted(paths)]),
        ]
        first = retention.run(db, supabase_storage(), settings)
        assert (first["finished"], first["counts"]["stored_files"]) == (False, 0)
        assert set(queued(sql)) == paths
        second = retention.run(db, supabase_storage(), settings)
    assert (second["finished"], second["counts"]["stored_files"]) == (True, 3)
    assert queued(sql) == {}
    assert remove.call_count == 2
    for call in remove.calls:
        assert set(httpx.Response(200, content=call.request.content).json()["prefixes"]) == paths


def test_a_text_route_read_fault_answers_503_and_nothing_changes(
    client_for: ClientFor,
    make_user: MakeUser,
    db: Database,
    sql: psycopg.Connection,
    settings: Settings,
    local: LocalStorage,
    disk: Disk,
) -> None:
    """The same read fault seen by a user reading a finished document's text: a 503 with
    Retry-After (the contract's `unavailable`), not a 500 or a 404."""
    user = make_user()
    document_id = str(uploaded(client_for("uploads"), user, V1, "report.txt")["document_id"])
    assert counts(drain(db, settings, local)) == {"claimed": 1, "completed": 1}
    disk.fail("read")
    response = client_for("jobs").get(f"/documents/{document_id}/text", headers=bearer(user))
    assert_error(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "5"
    disk.heal()
    assert served(client_for, user, document_id)[0][0] == 200

"""`docflow upload` and `docflow status`: the CLI as a client of the HTTP API.

The one-port app of `docflow serve` runs in a thread on a free port (this test's database and
storage directory), API_URL points at it, and `shared.dev.cli.main([...])` runs as a user would run
the command. Output is not a terminal here, so the CLI prints plain lines, one per file event.
"""

from __future__ import annotations

import _thread
import hashlib
import itertools
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from werkzeug.serving import make_server

from shared.dev import batch, console
from shared.dev.apiclient import ApiClient
from shared.dev.server import create_app
from shared.documents.pipeline import document_worker
from shared.platform.client import Database
from shared.platform.config import get_settings
from tests.support.cli import run_cli
from tests.support.data import SAMPLES
from tests.support.env import configure
from tests.support.net import free_port
from tests.support.users import MakeUser

_ACCEPTED = re.compile(r"^(?P<label>.+?): accepted, job (?P<job>[0-9a-f-]{36})$", re.MULTILINE)


@pytest.fixture(autouse=True)
def quiet_logging() -> Iterator[None]:
    """`cli.main` configures the `docflow` logger (a handler on this test's captured stderr,
    no propagation); put it back afterwards. No werkzeug access log in the output."""
    docflow = logging.getLogger("docflow")
    werkzeug = logging.getLogger("werkzeug")
    saved = (docflow.handlers[:], docflow.level, docflow.propagate, werkzeug.level)
    werkzeug.setLevel(logging.ERROR)
    yield
    docflow.handlers[:], docflow.level, docflow.propagate = saved[0], saved[1], saved[2]
    werkzeug.setLevel(saved[3])


@pytest.fixture
def api_url(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`docflow serve`'s app on a free port, with this test's database; API_URL points at it."""
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    configure(monkeypatch, API_URL=url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        assert not thread.is_alive()


@pytest.fixture
def worker(db: Database, api_url: str) -> Iterator[None]:
    """A long-running worker draining the queue in a thread, stopped and joined afterwards."""
    stop = threading.Event()
    runner = document_worker(db, get_settings(), concurrency=2)
    thread = threading.Thread(target=runner.run_forever, args=(stop,), name="worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the worker did not stop"


def _accepted(out: str) -> dict[str, str]:
    """File name -> job id, from the `<path>: accepted, job <id>` lines."""
    return {Path(m["label"]).name: m["job"] for m in _ACCEPTED.finditer(out)}


# --- upload --wait ---------------------------------------------------------------------------


def test_upload_and_wait_shows_each_event_then_the_summary(
    api_url: str, worker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    user = str(uuid.uuid4())
    code, out, err = run_cli(
        capsys,
        "upload",
        str(SAMPLES / "annual-report.pdf"),
        str(SAMPLES / "quarterly-report.txt"),
        "--priority",
        "high",
        "--wait",
        "--timeout",
        "120",
        "--user",
        user,
    )
    assert code == 0, (out, err)
    jobs = _accepted(out)
    assert set(jobs) == {"annual-report.pdf", "quarterly-report.txt"}
    # The outcome of each job: type, pages, words, summary.
    pdf = re.escape(str(SAMPLES / "annual-report.pdf"))
    txt = re.escape(str(SAMPLES / "quarterly-report.txt"))
    job_pdf, job_txt = jobs["annual-report.pdf"], jobs["quarterly-report.txt"]
    assert re.search(
        rf"^{pdf}: completed \(job {job_pdf}\), application/pdf, \d+ page\(s\), \d+ words$",
        out,
        re.MULTILINE,
    ), out
    assert re.search(
        rf"^{txt}: completed \(job {job_txt}\), text/plain, 1 page\(s\), \d+ words$",
        out,
        re.MULTILINE,
    ), out
    # Then the summary table.
    assert re.search(r"^completed +2$", out, re.MULTILINE), out
    assert re.search(r"^total +2$", out, re.MULTILINE), out
    # Plain lines (not a terminal): one per file event, no bars, no carriage returns, no escape
    # sequences; nothing on stderr.
    assert len(out.splitlines()) == 2 + 2 + 3  # accepted x2, completed x2, the table
    assert "\r" not in out + err and "\x1b" not in out + err
    assert err == ""

    # `docflow status` shows the finished job, as text and as the API's JSON.
    job_id = jobs["annual-report.pdf"]
    code, out, err = run_cli(capsys, "status", job_id, "--user", user)
    assert code == 0, err
    assert f"job        {job_id}" in out
    assert "status     completed" in out
    assert "progress   100%" in out
    assert "priority   high" in out
    assert "type       application/pdf" in out
    assert re.search(r"^pages      \d+$", out, re.MULTILINE)
    assert re.search(r"^words      \d+$", out, re.MULTILINE)

    code, out, err = run_cli(capsys, "status", job_id, "--json", "--user", user)
    assert code == 0, err
    job = json.loads(out)
    assert (job["id"], job["status"], job["progress"]) == (job_id, "completed", 100)
    assert job["result"]["detected_content_type"] == "application/pdf"


def test_a_job_that_fails_prints_its_error_and_exits_1(
    api_url: str, worker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys,
        "upload",
        str(SAMPLES / "bad" / "truncated.pdf"),
        str(SAMPLES / "quarterly-report.txt"),
        "--wait",
        "--user",
        str(uuid.uuid4()),
    )
    assert code == 1, (out, err)
    jobs = _accepted(out)
    bad = str(SAMPLES / "bad" / "truncated.pdf")
    assert f"{bad}: failed (job {jobs['truncated.pdf']}), malformed_document: " in out
    assert (
        f"{SAMPLES / 'quarterly-report.txt'}: completed (job {jobs['quarterly-report.txt']})" in out
    )
    assert re.search(r"^failed +1  malformed_document 1$", out, re.MULTILINE), out
    assert re.search(r"^completed +1$", out, re.MULTILINE), out


def test_waiting_gives_up_at_the_timeout(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # No worker: the job stays pending.
    code, out, _ = run_cli(
        capsys,
        "upload",
        str(SAMPLES / "quarterly-report.txt"),
        "--wait",
        "--timeout",
        "0.2",
        "--user",
        str(uuid.uuid4()),
    )
    assert code == 1
    job_id = _accepted(out)["quarterly-report.txt"]
    assert "stopped waiting after 0.2 s; the jobs still running go on" in out
    assert re.search(r"^running +1$", out, re.MULTILINE), out
    assert f"1 job(s) still running: `docflow status JOB_ID` follows one (e.g. {job_id})" in out


# --- upload without --wait, and status ---------------------------------------------------------


def test_upload_prints_the_job_and_status_shows_it(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    user = str(uuid.uuid4())
    code, out, err = run_cli(
        capsys, "upload", str(SAMPLES / "quarterly-report.txt"), "--user", user
    )
    assert code == 0, err
    job_id = _accepted(out)["quarterly-report.txt"]
    assert re.search(r"^accepted +1$", out, re.MULTILINE), out

    code, out, err = run_cli(capsys, "status", job_id, "--user", user)
    assert code == 0, err
    assert "status     pending" in out
    assert "attempts   0 of 4" in out
    assert "error      -" in out

    code, out, err = run_cli(capsys, "status", job_id, "--json", "--user", user)
    assert code == 0, err
    assert json.loads(out)["status"] == "pending"

    # Another user does not see it: the API's 404, not a traceback.
    code, out, err = run_cli(capsys, "status", job_id, "--user", str(uuid.uuid4()))
    assert code == 1
    assert err == "docflow: 404 job_not_found: job not found\n"


def test_the_progress_callback_follows_the_bytes_sent(
    api_url: str,
    make_user: MakeUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "long-report.txt"
    path.write_text("Revenue grew in every region this quarter, led by services.\n" * 5000)
    size = path.stat().st_size
    assert size > 4 * 64 * 1024
    user = make_user()
    settings = configure(monkeypatch, API_TOKEN=user.token)
    assert settings.api_token is not None
    seen: list[tuple[int, int]] = []
    with ApiClient(settings.api_url, settings.api_token.get_secret_value()) as api:
        answer = api.upload(path, "low", on_progress=lambda sent, total: seen.append((sent, total)))
        job = api.job(answer["job_id"])
    counts = [sent for sent, _ in seen]
    assert counts[0] == 0 and counts[-1] == size
    assert all(a < b for a, b in itertools.pairwise(counts))
    assert len(counts) == 1 + -(-size // (64 * 1024))  # 0, then once per 64 KiB chunk
    assert {total for _, total in seen} == {size}
    assert (job["status"], job["priority"]) == ("pending", "low")
    # The streamed multipart body arrived intact.
    document = httpx.get(
        f"{api_url}/documents/{answer['document_id']}",
        headers={"Authorization": f"Bearer {user.token}"},
    ).json()
    assert document["size_bytes"] == size
    assert document["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert document["original_filename"] == "long-report.txt"


# --- errors: the API's message, exit 1, never a traceback ------------------------------------


def test_an_unsupported_file_is_415_and_the_other_files_still_go(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys,
        "upload",
        str(SAMPLES / "bad" / "image.png"),
        str(SAMPLES / "quarterly-report.txt"),
        "--user",
        str(uuid.uuid4()),
    )
    assert code == 1
    png = SAMPLES / "bad" / "image.png"
    assert f"{png}: refused, 415 extension_not_allowed: " in out
    assert re.search(r"^refused +1  extension_not_allowed 1$", out, re.MULTILINE), out
    assert set(_accepted(out)) == {"quarterly-report.txt"}
    assert "Traceback" not in out + err


def test_an_unknown_job_is_the_apis_404(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    user = str(uuid.uuid4())
    code, out, err = run_cli(capsys, "status", str(uuid.uuid4()), "--user", user)
    assert (code, out) == (1, "")
    assert err == "docflow: 404 job_not_found: job not found\n"
    code, out, err = run_cli(capsys, "status", "not-a-job-id", "--user", user)
    assert (code, err) == (1, "docflow: 404 job_not_found: job not found\n")


def test_a_bad_token_is_the_apis_401(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "status", str(uuid.uuid4()), "--token", "not-a-token")
    assert code == 1
    assert err.startswith("docflow: 401 ")
    assert err.count("\n") == 1
    code, out, err = run_cli(
        capsys, "upload", str(SAMPLES / "quarterly-report.txt"), "--token", "not-a-token"
    )
    assert code == 1
    assert "docflow: 401 " in err
    assert _accepted(out) == {}
    assert "Traceback" not in out + err


def test_an_unreachable_api_is_one_line(
    db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    configure(monkeypatch, API_URL=url)
    user = str(uuid.uuid4())
    for argv in (
        ["status", str(uuid.uuid4()), "--user", user],
        ["upload", str(SAMPLES / "quarterly-report.txt"), "--wait", "--user", user],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 1
        assert "Traceback" not in out + err
        last = err.splitlines()[-1]
        assert last.startswith(f"docflow: cannot reach the docflow API at {url}: "), err
        assert err.endswith("\n")


def test_without_a_token_the_cli_says_how_to_get_one(
    api_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "status", str(uuid.uuid4()))
    assert (code, out) == (1, "")
    assert err == (
        "docflow: no access token: set API_TOKEN, pass --token, or (local development) "
        "--user UUID\n"
    )


def test_a_missing_file_is_reported_without_a_traceback(
    api_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "upload", str(tmp_path / "nope.pdf"), "--user", str(uuid.uuid4())
    )
    assert code == 1
    assert f"{tmp_path / 'nope.pdf'}: skipped, no such file or directory" in out
    assert re.search(r"^skipped +1  missing 1$", out, re.MULTILINE), out
    assert "Traceback" not in out + err


# --- batches: a directory, the rate limit, 503s, scripts, Ctrl-C -------------------------------

_ENDING = re.compile(
    r"^(?P<label>.+?): (?P<outcome>completed|failed|refused|cancelled|skipped)"
    r"(?: \(job (?P<job>[0-9a-f-]{36})\))?(?P<rest>.*)$",
    re.MULTILINE,
)
_TABLE_ROW = re.compile(r"^(?P<outcome>[a-z ]+?) +(?P<files>\d+)(?:  (?P<codes>.+))?$")


def _data_room(root: Path, documents: int) -> Path:
    """`documents` small documents of four kinds (a fifth in a subdirectory), plus an image
    (refused at intake) and a truncated PDF (its job fails)."""
    room = root / "data room"  # a space: labels are whole paths, the parsing must cope
    (room / "minutes").mkdir(parents=True)
    for i in range(documents):
        where = room / "minutes" if i % 5 == 0 else room
        kind = i % 4
        if kind == 0:
            (where / f"memo-{i:03}.txt").write_text(
                f"Memo {i}\n\nRevenue grew {i % 17 + 1} percent in 2025 to EUR {i + 3} million.\n"
            )
        elif kind == 1:
            (where / f"note-{i:03}.md").write_text(f"# Note {i}\n\n- the board met\n- plan {i}\n")
        elif kind == 2:
            (where / f"sales-{i:03}.csv").write_text(f"region,revenue\nnorth,{i}\nsouth,{2 * i}\n")
        else:
            (where / f"page-{i:03}.html").write_text(
                f"<html><body><h1>Page {i}</h1><p>Customers renewed in {i} regions.</p></body>"
                "</html>"
            )
    (room / "scan.png").write_bytes((SAMPLES / "bad" / "image.png").read_bytes())
    (room / "broken.pdf").write_bytes((SAMPLES / "bad" / "truncated.pdf").read_bytes())
    return room


def _summary_table(out: str) -> dict[str, tuple[int, str]]:
    """The summary's rows: outcome -> (files, codes)."""
    lines = out.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("outcome "))
    rows = {}
    for line in lines[start + 1 :]:
        m = _TABLE_ROW.match(line)
        if m is None:
            break
        rows[m["outcome"]] = (int(m["files"]), m["codes"] or "")
    return rows


def test_a_data_room_of_120_files_goes_in_with_one_command(
    api_url: str,
    worker: None,
    sql: psycopg.Connection,
    make_user: MakeUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A burst of 20, then 10 tokens a second: 98 more files cannot go in under 10 s, so the CLI
    # must wait out the limit, however fast or slow the machine sends.
    # LOG_LEVEL: the server runs in this process, and its log of each 429 would share stderr.
    configure(
        monkeypatch, UPLOAD_RATE_BURST=20, UPLOAD_RATE_LIMIT_PER_MINUTE=600, LOG_LEVEL="ERROR"
    )
    user = make_user()
    room = _data_room(tmp_path, 118)
    code, out, err = run_cli(
        capsys, "upload", str(room), "--recursive", "--wait", "--timeout", "300",
        "--token", user.token,
    )  # fmt: skip
    assert code == 1, (out[-3000:], err)  # one file refused, one job failed
    assert err == ""

    # Plain lines only: a line per file event, one per pause, then the table.
    assert "\r" not in out and "\x1b" not in out
    pauses = re.findall(r"^rate limited \(429\): waiting \d+ s before sending more$", out, re.M)
    assert pauses, out[-3000:]
    accepted = _ACCEPTED.findall(out)
    endings = {m["label"]: m for m in _ENDING.finditer(out)}
    table = _summary_table(out)
    assert len(out.splitlines()) == len(accepted) + len(endings) + len(pauses) + 1 + len(table)

    # Every file ended, once: completed, failed with a code, or refused with a reason.
    files = sorted(str(p) for p in room.rglob("*") if p.is_file())
    assert len(files) == 120
    assert sorted(endings) == files
    outcomes = {label: m["outcome"] for label, m in endings.items()}
    assert outcomes.pop(str(room / "scan.png")) == "refused"
    assert endings[str(room / "scan.png")]["rest"].startswith(", 415 extension_not_allowed: ")
    assert outcomes.pop(str(room / "broken.pdf")) == "failed"
    assert endings[str(room / "broken.pdf")]["rest"].startswith(", malformed_document: ")
    assert set(outcomes.values()) == {"completed"}

    # The summary is what the database holds for this user.
    with sql.cursor() as cur:
        by_status = dict(cur.execute(
            "select status, count(*) from public.processing_jobs where user_id = %s "
            "group by status", (user.user_id,),
        ).fetchall())  # fmt: skip
        failed_codes = cur.execute(
            "select error_code from public.processing_jobs where user_id = %s and status = "
            "'failed'", (user.user_id,),
        ).fetchall()  # fmt: skip
    assert table == {
        "completed": (by_status["completed"], ""),
        "failed": (by_status["failed"], f"{failed_codes[0][0]} 1"),
        "refused": (1, "extension_not_allowed 1"),
        "total": (120, ""),
    }
    assert sum(by_status.values()) == len(accepted) == 119
    assert {m["job"] for m in endings.values() if m["job"]} == {job for _, job in accepted}


class _FlakyGateway:
    """A gateway in front of the app that answers the first `failures` uploads 503 (an HTML
    page, no Retry-After), and, when `after_the_app`, only after the app has handled them:
    the job exists, but the client never hears of it."""

    def __init__(self, app: Any, failures: int, *, after_the_app: bool) -> None:
        self.app, self.failures, self.after_the_app = app, failures, after_the_app
        self.answered_503 = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] != "/uploads" or self.answered_503 >= self.failures:
            return self.app(environ, start_response)
        self.answered_503 += 1
        if self.after_the_app:
            for _ in self.app(environ, lambda *a, **k: None):
                pass
        else:
            environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("503 Service Unavailable", [("Content-Type", "text/html")])
        return [b"<html><body>upstream unavailable</body></html>"]


@pytest.mark.parametrize("after_the_app", [False, True], ids=["refused", "lost_answer"])
def test_503_is_retried_with_backoff_and_never_makes_a_second_job(
    after_the_app: bool,
    db: Database,
    sql: psycopg.Connection,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(batch, "BACKOFF_BASE_SECONDS", 0.01)  # the test need not wait 1 s, 2 s
    gateway = _FlakyGateway(create_app(), 2, after_the_app=after_the_app)
    server = make_server("127.0.0.1", 0, gateway, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    user = make_user()
    try:
        configure(monkeypatch, API_URL=f"http://127.0.0.1:{server.server_port}")
        code, out, err = run_cli(
            capsys, "upload", str(SAMPLES / "quarterly-report.txt"), "--token", user.token
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (code, err) == (0, ""), out
    retries = re.findall(r": 503 http_error: .*, retrying in \d+\.\d s$", out, re.MULTILINE)
    assert len(retries) == gateway.answered_503 == 2
    job_id = _accepted(out)["quarterly-report.txt"]
    with sql.cursor() as cur:
        jobs = cur.execute(
            "select id::text from public.processing_jobs where user_id = %s", (user.user_id,)
        ).fetchall()
    assert jobs == [(job_id,)]  # the Idempotency-Key: the retry got the first job back


def test_json_prints_one_object_per_file_and_the_summary_on_stderr(
    api_url: str, worker: None, make_user: MakeUser, capsys: pytest.CaptureFixture[str]
) -> None:
    user = make_user()
    files = [SAMPLES / "annual-report.pdf", SAMPLES / "bad" / "image.png",
             SAMPLES / "bad" / "truncated.pdf"]  # fmt: skip
    code, out, err = run_cli(
        capsys, "upload", *map(str, files), "--wait", "--json", "--token", user.token
    )
    assert code == 1
    records = {r["file"]: r for r in map(json.loads, out.splitlines())}
    assert sorted(records) == sorted(map(str, files))
    pdf, png, bad = (records[str(f)] for f in files)
    assert (pdf["outcome"], pdf["error"]) == ("completed", None)
    assert pdf["result"]["detected_content_type"] == "application/pdf"
    assert pdf["result"]["pages"] >= 1 and pdf["result"]["words"] > 100
    assert (png["outcome"], png["job_id"], png["error"]["code"]) == (
        "refused", None, "extension_not_allowed"
    )  # fmt: skip
    assert (bad["outcome"], bad["error"]["code"]) == ("failed", "malformed_document")
    assert bad["job_id"] and bad["document_id"] and bad["result"] is None
    assert re.search(r"^total +3$", err, re.MULTILINE), err


def test_ctrl_c_stops_sending_prints_the_summary_and_leaves_accepted_jobs_running(
    api_url: str,
    sql: psycopg.Connection,
    make_user: MakeUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C is a KeyboardInterrupt in the main thread (`interrupt_main` raises exactly
    that), here as soon as the first file is accepted. No worker: accepted jobs stay pending."""
    room = _data_room(tmp_path, 12)
    make_view = console.batch_view
    pressed: list[bool] = []  # once: a second Ctrl-C quits at once, without the summary

    def interrupting_view(**kwargs: Any) -> Any:
        view = make_view(**kwargs)
        handle = view.handle

        def handle_then_interrupt(event: batch.Event) -> None:
            handle(event)
            if event.kind == "accepted" and not pressed:
                pressed.append(True)
                _thread.interrupt_main()

        view.handle = handle_then_interrupt  # type: ignore[method-assign]
        return view

    monkeypatch.setattr(console, "batch_view", interrupting_view)
    user = make_user()
    code, out, err = run_cli(
        capsys, "upload", str(room), "-r", "--parallel", "1", "--token", user.token
    )
    assert code == 130
    assert err == "docflow: interrupted: no more files are sent; accepted jobs keep running\n"
    table = _summary_table(out)
    accepted = dict(_ACCEPTED.findall(out))
    assert table["accepted"][0] == len(accepted) >= 1
    assert table["not sent"][0] >= 10
    assert table["total"][0] == 14
    with sql.cursor() as cur:
        jobs = dict(cur.execute(
            "select id::text, status from public.processing_jobs where user_id = %s",
            (user.user_id,),
        ).fetchall())  # fmt: skip
    assert jobs == {job: "pending" for job in accepted.values()}


def test_following_a_batch_reads_each_job_about_once_not_every_round(
    db: Database,
    make_user: MakeUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The running jobs come from the status lists, a request or two a round however large
    the batch; a job is read on its own when it has left them (ended), about once each."""
    reads: list[str] = []
    app = create_app()

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"].startswith("/jobs"):
            reads.append(environ["PATH_INFO"])
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, counting, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    runner = document_worker(db, get_settings(), concurrency=2)
    worker = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    try:
        configure(monkeypatch, API_URL=f"http://127.0.0.1:{server.server_port}")
        room = _data_room(tmp_path, 30)
        worker.start()
        code, out, _ = run_cli(
            capsys, "upload", str(room), "-r", "--wait", "--token", make_user().token
        )
    finally:
        stop.set()
        worker.join(60)
        server.shutdown()
        server.server_close()
    assert code == 1, out  # the image refused, the truncated PDF failed
    assert re.search(r"^completed +30$", out, re.MULTILINE), out
    lists = [path for path in reads if path == "/jobs"]
    singles = [path for path in reads if path != "/jobs"]
    assert lists, reads
    assert len(singles) <= 2 * 31, (len(singles), len(lists))  # 31 jobs, each about once


def test_an_api_that_goes_away_mid_batch_is_waited_for(
    db: Database,
    sql: psycopg.Connection,
    make_user: MakeUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make dev` restarted under a batch: the server that accepted the first file is gone
    (connection refused); the CLI retries with backoff instead of giving up, and when the
    server is back every file goes in, each once. The server stops when the first file is
    accepted and starts again (same port) when the CLI says it is retrying."""
    # Backoff 0.2 s, 0.4 s, ...: seconds of room for the restart (done at the first retry)
    # before the CLI would give up, however loaded the machine.
    monkeypatch.setattr(batch, "BACKOFF_BASE_SECONDS", 0.2)
    port = free_port()
    servers: list[Any] = []

    def serve() -> None:
        server = make_server("127.0.0.1", port, create_app(), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)

    def halt() -> None:
        servers[-1].shutdown()
        servers[-1].server_close()

    serve()
    make_view = console.batch_view
    seen: list[str] = []

    def restarting_view(**kwargs: Any) -> Any:
        view = make_view(**kwargs)
        handle = view.handle

        def handle_and_restart(event: batch.Event) -> None:
            handle(event)
            if event.kind == "accepted" and "accepted" not in seen:
                seen.append("accepted")
                halt()
            elif event.kind == "retrying" and "back" not in seen:
                seen.append("back")
                serve()

        view.handle = handle_and_restart  # type: ignore[method-assign]
        return view

    monkeypatch.setattr(console, "batch_view", restarting_view)
    configure(monkeypatch, API_URL=f"http://127.0.0.1:{port}")
    room = tmp_path / "notes"
    room.mkdir()
    for i in range(4):
        (room / f"note-{i}.txt").write_text(f"Note {i}: the board met and approved plan {i}.\n")
    user = make_user()
    try:
        code, out, err = run_cli(
            capsys, "upload", str(room), "--parallel", "1", "--token", user.token
        )
    finally:
        halt()
    assert (code, err) == (0, ""), out
    assert seen == ["accepted", "back"]
    assert re.search(r": cannot reach the docflow API at .*, retrying in \d+\.\d s$", out, re.M), (
        out
    )
    assert re.search(r"^accepted +4$", out, re.MULTILINE), out
    with sql.cursor() as cur:
        jobs = cur.execute(
            "select count(*) from public.processing_jobs where user_id = %s", (user.user_id,)
        ).fetchone()
    assert jobs == (4,)


def test_an_api_never_reached_stops_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, API_URL=f"http://127.0.0.1:{free_port()}")
    code, out, err = run_cli(
        capsys, "upload", str(SAMPLES / "quarterly-report.txt"), "--user", str(uuid.uuid4())
    )
    assert code == 1
    assert "retrying" not in out
    assert err.startswith("docflow: cannot reach the docflow API at ")


def test_a_503_that_does_not_end_stops_sending_after_the_last_attempt(
    db: Database,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(batch, "BACKOFF_BASE_SECONDS", 0.01)
    gateway = _FlakyGateway(create_app(), 100, after_the_app=False)
    server = make_server("127.0.0.1", 0, gateway, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configure(monkeypatch, API_URL=f"http://127.0.0.1:{server.server_port}")
        code, out, err = run_cli(
            capsys, "upload", str(SAMPLES / "quarterly-report.txt"), "--token", make_user().token
        )
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    assert gateway.answered_503 == batch.UNAVAILABLE_ATTEMPTS
    assert len(re.findall(r"retrying in", out)) == batch.UNAVAILABLE_ATTEMPTS - 1
    assert re.search(r"^not sent +1$", out, re.MULTILINE), out
    assert err.startswith("docflow: 503 http_error: ")

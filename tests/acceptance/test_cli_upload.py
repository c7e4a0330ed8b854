"""`docflow upload` and `docflow status`: the CLI as a client of the HTTP API.

The one-port app of `docflow serve` runs in a thread on a free port (this test's database and
storage directory), API_URL points at it, and `shared.dev.cli.main([...])` runs as a user would run
the command. Output is not a terminal here, so the CLI prints plain lines, one per file event.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

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

_ACCEPTED = re.compile(r"^(?P<label>\S+): accepted, job (?P<job>[0-9a-f-]{36})$", re.MULTILINE)


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

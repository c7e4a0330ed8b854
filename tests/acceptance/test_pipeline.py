"""The document pipeline end to end: every sample format over HTTP, the failure reasons, the
text endpoint, and the worker surviving a hang and a bomb."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
import respx

from shared.documents import pipeline, sandbox
from shared.documents.extract import Extraction
from shared.jobs.worker import Worker
from shared.platform.client import Database
from shared.platform.config import Settings, get_settings
from shared.platform.storage import get_storage
from tests.support import sandbox_targets
from tests.support.data import SAMPLES
from tests.support.env import configure
from tests.support.http import ClientFor, assert_error, post_upload, process_jobs, uploaded
from tests.support.tokens import bearer
from tests.support.users import MakeUser
from tests.support.waiting import wait_until

READABLE = {
    # file: (detected type, extractor, a sentence that must be in the extracted text)
    "annual-report.pdf": (
        "application/pdf",
        "pypdfium2",
        "Fernhill Instruments had its strongest year",
    ),
    "board-minutes.docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
        "The board of Fernhill Instruments met at the Leiden office",
    ),
    "product-faq.html": ("text/html", "html", "Answers to the questions our support team"),
    "sales-q3.csv": ("text/csv", "csv", "region | product | units | revenue_eur | notes"),
    "meeting-notes.md": ("text/markdown", "markdown", "The upload limit stays at 25 MiB"),
    "quarterly-report.txt": ("text/plain", "text", "Revenue grew eleven percent"),
}


def _upload_sample(client_for: ClientFor, user, name: str) -> str:
    path = SAMPLES / name
    return str(uploaded(client_for("uploads"), user, path.read_bytes(), path.name)["job_id"])


def test_every_readable_format_end_to_end(client_for: ClientFor, make_user: MakeUser) -> None:
    user = make_user()
    jobs = {name: _upload_sample(client_for, user, name) for name in READABLE}
    report = process_jobs(client_for("process_jobs")).get_json()
    assert report["completed"] == len(READABLE), report

    http = client_for("jobs")
    for name, job_id in jobs.items():
        content_type, extractor, sentence = READABLE[name]
        job = http.get(f"/jobs/{job_id}", headers=bearer(user)).get_json()
        result = job["result"]
        assert (job["status"], job["progress"], job["stage"]) == ("completed", 100, "finalizing")
        assert result["outcome"] == "ok"
        assert result["detected_content_type"] == content_type
        assert result["extractor"] == extractor
        assert result["summarizer"] == "extractive"
        assert result["summary"] and result["key_points"]
        assert result["words"] > 20 and result["characters"] > result["words"]
        assert result["pages"] >= 1
        assert set(result["timings_ms"]) == {
            "validating",
            "reading",
            "parsing",
            "extracting",
            "analyzing",
            "finalizing",
        }
        # The full text is in storage and served by the text endpoint, not in the job row.
        assert "text" not in result
        text = http.get(f"/documents/{job['document_id']}/text", headers=bearer(user))
        assert text.status_code == 200 and text.mimetype == "text/plain"
        assert sentence in text.get_data(as_text=True)
        assert len(text.get_data(as_text=True)) == result["characters"]

    pdf = http.get(f"/jobs/{jobs['annual-report.pdf']}", headers=bearer(user)).get_json()
    assert (pdf["result"]["pages"], pdf["result"]["title"]) == (4, "Annual Report 2026")
    csv = http.get(f"/jobs/{jobs['sales-q3.csv']}", headers=bearer(user)).get_json()
    assert (csv["result"]["rows"], csv["result"]["columns"]) == (12, 5)


def test_a_scanned_pdf_completes_with_no_text(client_for: ClientFor, make_user: MakeUser):
    user = make_user()
    job_id = _upload_sample(client_for, user, "bad/scanned.pdf")
    assert process_jobs(client_for("process_jobs")).get_json()["completed"] == 1
    result = client_for("jobs").get(f"/jobs/{job_id}", headers=bearer(user)).get_json()["result"]
    assert (result["outcome"], result["pages"], result["words"], result["summary"]) == (
        "no_text",
        2,
        0,
        "",
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [("bad/truncated.pdf", "malformed_document"), ("bad/bomb.docx", "resource_limit")],
)
def test_unreadable_documents_fail_at_once_with_a_reason(
    client_for: ClientFor, make_user: MakeUser, name: str, code: str
) -> None:
    user = make_user()
    job_id = _upload_sample(client_for, user, name)
    report = process_jobs(client_for("process_jobs")).get_json()
    assert (report["failed"], report["retried"]) == (1, 0)
    job = client_for("jobs").get(f"/jobs/{job_id}", headers=bearer(user)).get_json()
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert job["error"]["code"] == code and job["error"]["recoverable"] is False
    text = client_for("jobs").get(f"/documents/{job['document_id']}/text", headers=bearer(user))
    assert_error(text, 404, "text_not_ready")


def test_an_image_is_refused_at_upload(client_for: ClientFor, make_user: MakeUser) -> None:
    response = post_upload(
        client_for("uploads"), make_user(), (SAMPLES / "bad/image.png").read_bytes()
    )
    assert_error(response, 415, "unsupported_content")


def test_another_users_text_is_404(client_for: ClientFor, make_user: MakeUser) -> None:
    owner, stranger = make_user(), make_user()
    job_id = _upload_sample(client_for, owner, "quarterly-report.txt")
    process_jobs(client_for("process_jobs"))
    http = client_for("jobs")
    document_id = http.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()["document_id"]
    assert_error(http.get(f"/documents/{document_id}/text", headers=bearer(stranger)), 404)


def test_the_markdown_is_served_beside_the_text(
    client_for: ClientFor, make_user: MakeUser, sql
) -> None:
    owner, stranger = make_user(), make_user()
    job_id = _upload_sample(client_for, owner, "meeting-notes.md")
    process_jobs(client_for("process_jobs"))
    http = client_for("jobs")
    document_id = http.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()["document_id"]

    response = http.get(f"/documents/{document_id}/markdown", headers=bearer(owner))
    assert response.status_code == 200
    assert response.content_type == "text/markdown; charset=utf-8"
    assert response.get_data() == (SAMPLES / "meeting-notes.md").read_bytes().replace(b"\r", b"")
    assert_error(http.get(f"/documents/{document_id}/markdown", headers=bearer(stranger)), 404)

    # Stored beside the text, its path on the document; a deleted document queues both files.
    paths = sql.execute(
        "select text_path, markdown_path from public.documents where id = %s", (document_id,)
    ).fetchone()
    assert paths == (
        f"{owner.user_id}/text/{document_id}.txt",
        f"{owner.user_id}/text/{document_id}.md",
    )
    sql.execute("delete from public.documents where id = %s", (document_id,))
    queued = {
        row[0]
        for row in sql.execute(
            "select object_path from public.storage_deletions where reason = 'document_deleted'"
        ).fetchall()
    }
    assert set(paths) <= queued


def test_a_document_without_markdown_answers_markdown_not_ready(
    client_for: ClientFor, make_user: MakeUser, sql
) -> None:
    user = make_user()
    job_id = _upload_sample(client_for, user, "quarterly-report.txt")
    http = client_for("jobs")
    document_id = http.get(f"/jobs/{job_id}", headers=bearer(user)).get_json()["document_id"]
    path = f"/documents/{document_id}/markdown"
    assert_error(http.get(path, headers=bearer(user)), 404, "markdown_not_ready")  # not run yet
    # As a document processed before Markdown existed: a text, no Markdown.
    sql.execute(
        "select public.set_document_text(document_id => %s, text_path => %s)",
        (document_id, f"{user.user_id}/text/{document_id}.txt"),
    )
    assert_error(http.get(path, headers=bearer(user)), 404, "markdown_not_ready")


# --- the worker survives -----------------------------------------------------------------


def _hanging_extractor(data: bytes, content_type: str, settings: Settings) -> Extraction:
    """A parser that never returns, run in the real sandbox under the real limits."""
    _, box = pipeline.limits_for(settings)
    return sandbox.run(sandbox_targets.hang, 3600, limits=box)  # type: ignore[return-value]


def _jobs(client_for: ClientFor, user, names: list[str]) -> list[str]:
    return [_upload_sample(client_for, user, name) for name in names]


def _status(client_for: ClientFor, user, job_id: str) -> dict[str, Any]:
    return client_for("jobs").get(f"/jobs/{job_id}", headers=bearer(user)).get_json()


def test_the_worker_survives_a_hang(
    client_for: ClientFor, make_user: MakeUser, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(monkeypatch, EXTRACT_TIMEOUT_SECONDS=1)
    user = make_user()
    hung, fine = _jobs(client_for, user, ["annual-report.pdf", "quarterly-report.txt"])

    calls = threading.local()

    def extractor(data: bytes, content_type: str, s: Settings) -> Extraction:
        calls.n = getattr(calls, "n", 0) + 1
        if content_type == "application/pdf":
            return _hanging_extractor(data, content_type, s)
        return pipeline.sandboxed_extract(data, content_type, s)

    handler = pipeline.handler(db, get_storage(), settings, extractor=extractor)
    # The budget bounds the test: a worker stuck on the hang would exhaust it instead.
    report = Worker(db, settings, handler, concurrency=1, batch_size=1).drain(10, 30)
    assert (report.completed, report.failed) == (1, 1), report
    assert _status(client_for, user, hung)["error"]["code"] == "timeout"
    assert _status(client_for, user, fine)["status"] == "completed"


def test_the_worker_survives_a_bomb_that_gets_past_the_zip_checks(
    client_for: ClientFor, make_user: MakeUser, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loosen the zip limits so python-docx really inflates 200 MB: the memory limit stops it.
    settings = configure(
        monkeypatch,
        DOCX_MAX_UNCOMPRESSED_MB=10000,
        DOCX_MAX_COMPRESSION_RATIO=100000,
        EXTRACT_MEMORY_MB=160,
        EXTRACT_TIMEOUT_SECONDS=30,
    )
    user = make_user()
    bomb, fine = _jobs(client_for, user, ["bad/bomb.docx", "meeting-notes.md"])
    handler = pipeline.handler(db, get_storage(), settings)
    report = Worker(db, settings, handler, concurrency=1, batch_size=1).drain(10, 60)
    assert (report.completed, report.failed) == (1, 1), report
    assert _status(client_for, user, bomb)["error"]["code"] == "resource_limit"
    assert _status(client_for, user, fine)["status"] == "completed"


# --- stages while running, and an LLM summarizer through the queue --------------------------


def test_the_stage_shows_on_the_job_while_it_runs(
    client_for: ClientFor, make_user: MakeUser, db: Database
) -> None:
    settings = get_settings()
    user = make_user()
    [job_id] = _jobs(client_for, user, ["annual-report.pdf"])
    inside, release = threading.Event(), threading.Event()

    def slow_extractor(data: bytes, content_type: str, s: Settings) -> Extraction:
        inside.set()
        release.wait(30)
        return pipeline.sandboxed_extract(data, content_type, s)

    handler = pipeline.handler(db, get_storage(), settings, extractor=slow_extractor)
    worker = Worker(db, settings, handler, concurrency=1)
    thread = threading.Thread(target=worker.drain, args=(10, 60), daemon=True)
    thread.start()
    try:
        assert inside.wait(30)

        # The report is written by the next heartbeat (PROGRESS_WRITE_SECONDS, default 1 s).
        def extracting() -> dict[str, Any] | None:
            job = _status(client_for, user, job_id)
            return job if job["stage"] == "extracting" else None

        job = wait_until(extracting, "the job to show the extracting stage")
        assert (job["status"], job["stage"], job["progress"]) == ("processing", "extracting", 45)
    finally:
        release.set()
        thread.join(60)
    assert _status(client_for, user, job_id)["status"] == "completed"


def test_an_llm_summarizer_through_the_queue(
    client_for: ClientFor, make_user: MakeUser, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary and the analysis both from the provider: a 429 on the first request sends
    the job back to the queue; its usage and cost are the two requests' together; the
    analysis value whose quote is not in the document is unverified."""
    configure(
        monkeypatch,
        SUMMARIZER="openai",
        OPENAI_API_KEY="sk-test-key-never-logged",
        OPENAI_BASE_URL="https://llm.example.test/v1",
        SUMMARIZER_PRICE_INPUT_PER_MTOK="1.0",
        SUMMARIZER_PRICE_OUTPUT_PER_MTOK="2.0",
        RETRY_INITIAL_SECONDS=0,
        RETRY_JITTER=0,
    )
    user = make_user()
    [job_id] = _jobs(client_for, user, ["quarterly-report.txt"])
    summary = {"summary": "Revenue grew; hiring is the risk.", "key_points": ["Revenue +11 %"]}
    fields = {
        "risks": [
            {
                "text": "Two senior engineering roles are still open.",
                "evidence": {"quote": "two senior engineering roles are still open"},
            }
        ],
        "amounts": [  # not in the document
            {"value": 5, "currency": "USD", "scale": "million", "text": "$5 million",
             "evidence": {"quote": "revenue of $5 million"}},
        ],
    }  # fmt: skip

    def reply(content: dict[str, Any], prompt: int, completion: int) -> httpx.Response:
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        message = {"message": {"content": json.dumps(content)}}
        return httpx.Response(200, json={"choices": [message], "usage": usage})

    answers = iter([httpx.Response(429, json={"error": {"type": "rate_limit"}})])

    def answer(request: httpx.Request) -> httpx.Response:
        pending = next(answers, None)
        if pending is not None:
            return pending
        if "response_format" in json.loads(request.content):
            return reply(fields, 900, 120)
        return reply(summary, 400, 50)

    with respx.mock(assert_all_called=True) as mock:
        route = mock.post("https://llm.example.test/v1/chat/completions")
        route.side_effect = answer
        # The 429 is recoverable: the attempt goes back to the queue with backoff (0 s here),
        # and the same drain runs it again.
        report = process_jobs(client_for("process_jobs")).get_json()
        assert (report["retried"], report["completed"], report["claimed"]) == (1, 1, 2), report
    job = _status(client_for, user, job_id)
    assert (job["status"], job["attempts"]) == ("completed", 2)
    request = route.calls[1].request
    assert request.headers["Authorization"] == "Bearer sk-test-key-never-logged"
    assert "Revenue grew eleven percent" in json.loads(request.content)["messages"][-1]["content"]
    result = job["result"]
    assert (result["summary"], result["key_points"]) == (
        "Revenue grew; hiring is the risk.",
        ["Revenue +11 %"],
    )
    assert (result["summarizer"], result["input_tokens"], result["output_tokens"]) == (
        "openai",
        400 + 900,
        50 + 120,
    )
    assert result["requests"] == 2
    assert result["cost_usd"] == pytest.approx(1300 * 1.0 / 1e6 + 170 * 2.0 / 1e6)
    analysis = result["analysis"]
    assert analysis["template"] == "document_brief"
    (risk,) = analysis["fields"]["risks"]
    assert risk["evidence"]["quote"] == "two senior engineering roles are still open"
    assert analysis["fields"]["amounts"] == []
    assert [(u["field"], u["reason"]) for u in analysis["unverified"]] == [
        ("amounts", "quote_not_found")
    ]
    assert "sk-test-key" not in json.dumps(job)

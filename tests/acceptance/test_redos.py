"""No upload can make docflow spend super-linear time on its content (issue 13, ReDoS).

The inputs that made the backtracking sniffer take seconds per request (64 KiB of `[a](`
took 17 s, and held the GIL, so every other request waited) go through the upload route and
through the worker's parsing stage, at 64 KiB and at 5 MiB, named `.txt` and `.md`.

This file carries the suite's wall-clock bounds (AGENTS.md allows exactly this exception): a
denial of service is a timing property. All the inputs together, route and parsing stage,
must take under `BOUND_SECONDS`; with the linear-time sniffer they take a fraction of it
(figures in docs/benchmarks.md, `python bench/redos_bench.py`).

The analysis (`shared.documents.analysis`: the offline rules and the grounding check) reads
the same untrusted text. Its adversarial inputs (runs of separators, currency signs, month
names, legal-form suffixes, percentages, table rows, the sniffer's units, heading and page
marker lines: 1 MiB each) go through `analyze` for both templates. That is the file's second
wall-clock bound, `EXTRACTION_BOUND_SECONDS`, in the same spirit: all of it together must take
under the bound, and no input may be cut short by the extractor's time budget (with linear
patterns it takes about a third of the bound here; `python bench/analysis_bench.py` for the
throughput).

The extractive summarizer (`shared.documents.summarize`) reads the same Markdown. Its adversarial
inputs (all the units above, runs of backticks, `**`, `[`, `![](`, `<http://`, escaped pipes and
CJK full stops, long tokens, wide, ragged and many tables, a table header and a delimiter row
padded with spaces: 1 MiB each, whole and as 16 KB paragraphs that differ, so that the footer
filter keeps them) go through `summarize`, with no database. That is the third bound,
`SUMMARY_BOUND_SECONDS`: with linear scanners it all takes about a third of it here; before,
64 KiB of backticks in paragraphs took 6 s, and a delimiter row after 64 KiB of spaces over 20 s.

The other tests here check the order of the intake: a refused name or type, and a user at the
rate limit, are answered before a byte of the content is read or sniffed. Those need the test
database; the extractor's test does not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.documents import intake, pipeline
from shared.documents import sniff as sniff_module
from shared.documents.analysis import analyze, templates
from shared.documents.extract import Extraction
from shared.documents.summarize.extractive import ExtractiveSummarizer
from shared.jobs.worker import Worker
from shared.platform.client import Database
from shared.platform.config import Settings, get_settings
from shared.platform.storage import get_storage
from tests.support.env import configure
from tests.support.http import (
    ClientFor,
    assert_error,
    multipart_body,
    post_raw,
    post_upload,
    stored_objects,
)
from tests.support.rows import row_count
from tests.support.tokens import bearer
from tests.support.users import MakeUser

UNITS = ("[a](", "[", "<", "a|", "*a", "#")
SIZES = (64 * 1024, 5 * 1024 * 1024)
NAMES = ("adversarial.txt", "adversarial.md")
BOUND_SECONDS = 2.0
# The extractor's inputs: what its patterns look for, repeated (`-\n` is a line per item).
EXTRACTOR_UNITS = (
    "1,1,",
    "1.1.",
    "1 000 ",
    "$$",
    "$1",
    "\u20ac1.",
    "| $1 ",
    "9%",
    "March ",
    "12/12/",
    "Inc. ",
    "Acme Inc. ",
    "Revenue $1m ",
    "-\n",
)
EXTRACTION_BOUND_SECONDS = 30.0
# The summarizer's inputs: code spans, emphasis, links and autolinks that never close.
SUMMARY_UNITS = (
    "`",
    "```",
    "{a}`",
    "**a ",
    "__a ",
    "[",
    "[](",
    "![](",
    "<http://",
    "\\|",
    "\u3002",
)
SUMMARY_BOUND_SECONDS = 30.0


def adversarial(unit: str, size: int) -> bytes:
    return (unit * (size // len(unit) + 1)).encode()[:size]


def post(client: FlaskClient, user: Any, body: tuple[bytes, str], **headers: str) -> Any:
    """A multipart body built ahead (`multipart_body`), so that the timed part is the server's
    work only."""
    return post_raw(client, user, *body, headers=headers)


def parsed_only(data: bytes, content_type: str, settings: Settings) -> Extraction:
    """Stands in for extraction: the parsing stage (the sniffer) is what is measured here, and
    an empty text ends the job without summarizing."""
    return Extraction(text="", extractor="none")


def test_every_adversarial_input_is_answered_and_parsed_within_the_bound(
    client_for: ClientFor, make_user: MakeUser, db: Database, sql
) -> None:
    settings = get_settings()
    users = {name: make_user() for name in NAMES}  # 12 uploads each: under the rate limit
    cases = [(name, unit, size) for name in NAMES for size in SIZES for unit in UNITS]
    bodies = {case: multipart_body(adversarial(case[1], case[2]), case[0]) for case in cases}
    uploads = client_for("uploads")

    route: dict[tuple[str, str, int], float] = {}
    jobs: dict[str, tuple[str, str, int]] = {}
    for case in cases:
        started = time.perf_counter()
        response = post(uploads, users[case[0]], bodies[case])
        route[case] = time.perf_counter() - started
        assert response.status_code == 202, (case, response.get_data(as_text=True))
        jobs[response.get_json()["job_id"]] = case

    handler = pipeline.handler(db, get_storage(), settings, extractor=parsed_only)
    report = Worker(db, settings, handler, concurrency=1, batch_size=4).drain(len(jobs), 120)
    assert report.completed == len(jobs), report
    parsing: dict[tuple[str, str, int], float] = {}
    for job_id, result in sql.execute(
        "select id::text, result from processing_jobs where id = any(%s::uuid[])", (list(jobs),)
    ):
        # Text that is no table and no Markdown: plain, unless the name says Markdown.
        expected = "text/markdown" if jobs[job_id][0].endswith(".md") else "text/plain"
        assert result["detected_content_type"] == expected, (jobs[job_id], result)
        parsing[jobs[job_id]] = result["timings_ms"]["parsing"] / 1000

    total = sum(route.values()) + sum(parsing.values())
    slowest = max(((case, route[case] + parsing[case]) for case in cases), key=lambda item: item[1])
    assert total < BOUND_SECONDS, (
        f"{len(cases)} adversarial uploads took {total:.2f} s (route {sum(route.values()):.2f} s,"
        f" parsing {sum(parsing.values()):.2f} s); slowest {slowest}"
    )


def test_the_extractor_reads_every_adversarial_input_whole_within_the_bound() -> None:
    """1 MiB of each extractor unit, of each sniffer unit and of hostile heading lines through
    `analyze` (the rules and the grounding check, which normalizes and indexes the whole
    document), with both templates. A quadratic pattern shows at this size: 64 KiB of `[`
    took 16 s in the grounding check before its patterns were made linear."""
    size = 1024 * 1024
    headings = ("# a" + " " * 4096 + "x\n", "# " + "#" * 4096 + "\n", "#\n", "# [a](b)\n")
    units = EXTRACTOR_UNITS + UNITS + headings
    timings: dict[tuple[str, str], float] = {}
    for unit in units:
        text = adversarial(unit, size).decode(errors="ignore")
        for template in templates.TEMPLATES:
            started = time.perf_counter()
            analysis = analyze(text, template=template)
            timings[(unit[:12], template)] = time.perf_counter() - started
            truncated = [u for u in analysis.unverified if u["field"] == "_truncated"]
            assert truncated == [], (unit[:12], template)

    total = sum(timings.values())
    slowest = max(timings.items(), key=lambda item: item[1])
    assert total < EXTRACTION_BOUND_SECONDS, (
        f"{len(timings)} adversarial analyses took {total:.2f} s; slowest {slowest}"
    )


def _word(index: int) -> str:
    """A word of letters for each index: lines that differ (the footer filter ignores digits)."""
    word, index = "", index + 26 * 26
    while index:
        index, letter = divmod(index, 26)
        word += chr(97 + letter)
    return word


def _paragraphs(unit: str, size: int) -> str:
    body = unit * (16_000 // len(unit))
    text: list[str] = []
    length = 0
    while length < size:
        text.append(f"Text {_word(len(text))} {body}\n\n")
        length += len(text[-1])
    return "".join(text)[:size]


def _summary_inputs(size: int) -> dict[str, str]:
    units = UNITS + EXTRACTOR_UNITS + SUMMARY_UNITS
    inputs = {f"{unit[:12]!r}": adversarial(unit, size).decode(errors="ignore") for unit in units}
    inputs |= {f"{unit[:12]!r} paragraphs": _paragraphs(unit, size) for unit in units}
    rows = (adversarial("|1|\n", size) + b"|2|\n").decode()
    return inputs | {
        "long tokens": _paragraphs("the cat sat on mats " + "a" * 15_000, size),
        "wide header": "|" + "h|" * 2_000 + "\n|-|\n" + rows,
        "wide row": "|h|\n|-|\n|" + "1|" * (size // 4) + "\n" + rows[: size // 2],
        "many tables": "".join(f"|{_word(i)}|\n|-|\n|1|\n\n" for i in range(size // 12)),
        "bracket header": "|n(" + " " * size + "x|\n|-|\n|1|\n|2|\n",
        "delimiter row": "a|b\n" + " " * size + "-|x\n",
    }


def test_the_summarizer_reads_every_adversarial_input_within_the_bound() -> None:
    """1 MiB of each input through the extractive summarizer's Markdown path (plain text,
    `markdown=None`, is parsed the same way): a quadratic pattern or loop shows at this size
    (see the module docstring)."""
    timings: dict[str, float] = {}
    summarizer = ExtractiveSummarizer()
    for name, text in _summary_inputs(1024 * 1024).items():
        started = time.perf_counter()
        summary = summarizer.summarize(text, markdown=text)
        timings[name] = time.perf_counter() - started
        assert len(summary.summary) <= 600 and len(summary.key_points) <= 5, name

    total = sum(timings.values())
    slowest = max(timings.items(), key=lambda item: item[1])
    assert total < SUMMARY_BOUND_SECONDS, (
        f"{len(timings)} adversarial summaries took {total:.2f} s; slowest {slowest}"
    )


# --- refused before the content is read ------------------------------------------------------


@pytest.fixture
def content_work(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the intake's content work: reading the file (multipart or stored) and sniffing."""
    calls = {"read": 0, "sniff": 0}

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(intake, "read_limited", counting("read", intake.read_limited))
    monkeypatch.setattr(intake, "read_stored", counting("read", intake.read_stored))
    monkeypatch.setattr(sniff_module, "sniff", counting("sniff", sniff_module.sniff))
    return calls


BIG = adversarial("[a](", 5 * 1024 * 1024)


@pytest.mark.parametrize(
    ("filename", "content_type", "code"),
    [
        ("x.exe", "application/octet-stream", "extension_not_allowed"),
        ("report.pdf.exe", "application/octet-stream", "extension_not_allowed"),
        ("notes.md", "image/png", "content_type_mismatch"),
        ("a\u202etxt.exe", "text/plain", "invalid_filename"),
    ],
)
def test_a_refused_name_or_type_costs_no_reading_or_sniffing(
    client_for: ClientFor,
    make_user: MakeUser,
    sql,
    content_work: dict[str, int],
    filename: str,
    content_type: str,
    code: str,
) -> None:
    user = make_user()
    response = post(client_for("uploads"), user, multipart_body(BIG, filename, content_type))
    assert_error(response, 400 if code == "invalid_filename" else 415, code)
    assert content_work == {"read": 0, "sniff": 0}
    assert row_count(sql, "documents") == 0 and stored_objects() == []


def test_a_signed_upload_with_a_refused_name_is_not_read(
    client_for: ClientFor, make_user: MakeUser, content_work: dict[str, int]
) -> None:
    user = make_user()
    get_storage().put(f"{user.user_id}/x.exe", BIG, "application/octet-stream")
    response = client_for("uploads").post(
        "/uploads", json={"storage_path": f"{user.user_id}/x.exe"}, headers=bearer(user)
    )
    assert_error(response, 415, "extension_not_allowed")
    assert content_work == {"read": 0, "sniff": 0}
    assert get_storage().exists(f"{user.user_id}/x.exe")  # the client's object is kept


def test_a_user_at_the_rate_limit_gets_429_before_the_content_is_read(
    client_for: ClientFor,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    sql,
    content_work: dict[str, int],
) -> None:
    configure(monkeypatch, UPLOAD_RATE_LIMIT_PER_MINUTE=1, UPLOAD_RATE_BURST=2)
    user, other = make_user(), make_user()
    uploads = client_for("uploads")
    first = post_upload(uploads, user, b"First document.", headers={"Idempotency-Key": "first"})
    assert first.status_code == 202
    assert post_upload(uploads, user, b"Second document.").status_code == 202
    assert content_work == {"read": 2, "sniff": 2}
    content_work.update(read=0, sniff=0)

    response = post(uploads, user, multipart_body(BIG, "adversarial.md"))
    error = assert_error(response, 429, "rate_limited")
    assert 1 <= error["retry_after"] == int(response.headers["Retry-After"]) <= 60

    get_storage().put(f"{user.user_id}/big.md", BIG, "text/markdown")
    signed = uploads.post(
        "/uploads", json={"storage_path": f"{user.user_id}/big.md"}, headers=bearer(user)
    )
    assert_error(signed, 429, "rate_limited")
    assert content_work == {"read": 0, "sniff": 0}
    assert row_count(sql, "documents") == 2
    assert len(stored_objects()) == 3  # the two uploads, and the client's own object

    # A replay is never limited: the pre-check lets a key already used through.
    replay = post_upload(uploads, user, b"First document.", headers={"Idempotency-Key": "first"})
    assert replay.status_code == 202
    assert replay.get_json()["job_id"] == first.get_json()["job_id"]
    # Another user is not affected.
    assert post(uploads, other, multipart_body(BIG, "adversarial.md")).status_code == 202


def test_a_rate_limited_upload_in_the_race_past_the_pre_check_is_still_refused(
    client_for: ClientFor,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    sql,
) -> None:
    """The pre-check only answers early: create_upload still enforces the limit, for an upload
    that passed the pre-check while another one took the last token."""
    configure(monkeypatch, UPLOAD_RATE_LIMIT_PER_MINUTE=1, UPLOAD_RATE_BURST=1)
    user = make_user()
    uploads = client_for("uploads")
    original = intake.accept_upload

    def another_upload_wins_the_slot(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(intake, "accept_upload", original)
        assert post_upload(uploads, user, b"The other upload.").status_code == 202
        return original(*args, **kwargs)

    monkeypatch.setattr(intake, "accept_upload", another_upload_wins_the_slot)
    response = post_upload(uploads, user, b"This upload.")
    assert_error(response, 429, "rate_limited")
    assert row_count(sql, "documents") == 1
    assert len(stored_objects()) == 1  # this upload's object was deleted again
    assert json.loads(response.get_data())["error"]["retry_after"] >= 1

"""shared.documents.summarize: the extractive summarizer, text splitting, and the LLM summarizers.

The LLM providers are HTTP that leaves the process, so respx answers for Anthropic and
OpenAI: these tests pin what goes on the wire (URL, headers, JSON body), how replies are parsed,
how usage and cost add up, how HTTP failures become JobErrors, and how a long text is split
into map requests and a reduce request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from shared.documents.summarize import (
    AnthropicSummarizer,
    ExtractiveSummarizer,
    OpenAISummarizer,
    SummarizerConfig,
    Summary,
    estimate_tokens,
    make_summarizer,
    parse_reply,
    split_text,
)
from shared.documents.summarize import extractive as summarize_module
from shared.platform.errors import ConfigError, JobError

ANTHROPIC_KEY = "sk-ant-test-0123456789abcdefSECRET"
OPENAI_KEY = "sk-test-openai-0123456789SECRET"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
OPENAI_URL = "https://api.openai.com/v1/chat/completions"

DOCUMENT = (
    "The supplier agreement renews on 1 March unless either party gives notice. "
    "Payment terms are net 30 days from the invoice date. "
    "Late payments accrue interest at two percent per month."
)


def _non_ws(text: str) -> str:
    return "".join(text.split())


# --- estimate_tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 4000, 1000), ("x" * 4001, 1001)],
)
def test_estimate_tokens_is_about_four_characters_a_token(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


# --- split_text -------------------------------------------------------------------------------


def _mixed_text() -> str:
    short_paragraphs = [f"Paragraph {i} is short. It has two sentences." for i in range(30)]
    long_paragraph = " ".join(
        f"Sentence {i} of the long paragraph talks about invoices and contracts." for i in range(60)
    )
    long_sentence = " ".join(f"word{i}" for i in range(400)) + "."
    no_whitespace = "x" * 3000
    return "\n\n".join([*short_paragraphs[:15], long_paragraph, long_sentence, no_whitespace])


@pytest.mark.parametrize("max_tokens", [1, 7, 50, 200, 1000])
def test_split_text_keeps_every_chunk_within_budget(max_tokens: int) -> None:
    chunks = split_text(_mixed_text(), max_tokens)
    assert chunks
    assert all(0 < estimate_tokens(chunk) <= max_tokens for chunk in chunks)
    assert all(chunk == chunk.strip() for chunk in chunks)


@pytest.mark.parametrize("max_tokens", [1, 7, 50, 200, 1000])
def test_split_text_loses_nothing_and_keeps_order(max_tokens: int) -> None:
    text = "  \n" + _mixed_text() + "\n\n  "
    chunks = split_text(text, max_tokens)
    assert _non_ws(" ".join(chunks)) == _non_ws(text)
    assert _non_ws("".join(chunks)) == _non_ws(text)


def test_split_text_prefers_paragraph_then_sentence_boundaries() -> None:
    paragraphs = [f"Paragraph {i} says one thing. And then another thing." for i in range(20)]
    text = "\n\n".join(paragraphs)
    chunks = split_text(text, 40)  # 160 characters: a few paragraphs each
    assert len(chunks) > 1
    for chunk in chunks:
        assert all(p in paragraphs for p in chunk.split("\n\n"))

    long_paragraph = " ".join(f"Sentence number {i} is here." for i in range(50))
    chunks = split_text(long_paragraph, 30)
    assert len(chunks) > 1
    assert all(chunk.endswith(".") for chunk in chunks)  # cut between sentences


def test_split_text_small_empty_and_invalid() -> None:
    assert split_text("  Short text.  ", 100) == ["Short text."]
    assert split_text("", 10) == []
    assert split_text(" \n\t ", 10) == []
    with pytest.raises(ValueError):
        split_text("text", 0)


# --- extractive ---------------------------------------------------------------------------------

RELEVANT = (
    "Quarterly report for the board.\n\n"
    "The weather was pleasant during the offsite.\n"
    "Solar panel revenue grew because solar panel installations doubled.\n"
    "Lunch was served at noon.\n"
    "Customers praised the solar panel installations and the solar revenue.\n"
    "Parking remains limited near the building.\n"
    "Solar revenue now funds new panel installations in three regions.\n"
    "Someone left an umbrella in the lobby."
)


def test_extractive_picks_the_most_relevant_sentences_in_document_order() -> None:
    summarizer = ExtractiveSummarizer(SummarizerConfig(summary_sentences=2, key_points=3))
    result = summarizer.summarize(RELEVANT)
    # The solar sentences share their words: they are the centre of the similarity graph.
    assert result.summary == (
        "Solar panel revenue grew because solar panel installations doubled. "
        "Customers praised the solar panel installations and the solar revenue."
    )
    # The third solar sentence is the best remaining one: a key point.
    assert "Solar revenue now funds new panel installations in three regions." in result.key_points
    assert len(result.key_points) == 3
    assert result.summarizer == "extractive"
    assert result.model is None
    assert (result.input_tokens, result.output_tokens, result.cost_usd, result.requests) == (
        0,
        0,
        0.0,
        0,
    )


def test_extractive_summary_follows_document_order_not_rank() -> None:
    sentences = [
        "The budget forecast covers the next quarter of the year.",
        "Sales keep growing in every region that we serve.",
        "Hiring plans depend on sales growing further this year.",
        "The budget forecast shows sales and hiring growing next quarter.",  # shares the most
    ]
    text = " ".join(sentences)
    config = SummarizerConfig(summary_sentences=1, key_points=0)
    assert ExtractiveSummarizer(config).summarize(text).summary == sentences[3]
    result = ExtractiveSummarizer(SummarizerConfig(summary_sentences=2)).summarize(text)
    # The best sentence ranks first, yet it comes last, as in the document.
    assert result.summary.endswith(" " + sentences[3])
    assert result.summary[: -len(sentences[3]) - 1] in sentences[:3]


def test_extractive_prefers_earlier_sentences_on_ties() -> None:
    tie = (
        "Red apples grow in the northern orchard. "
        "Green pears ripen on the southern hills. "
        "Blue plums dry under the eastern sun."
    )
    config = SummarizerConfig(summary_sentences=1, key_points=0)
    assert ExtractiveSummarizer(config).summarize(tie).summary == (
        "Red apples grow in the northern orchard."
    )


def test_extractive_is_deterministic() -> None:
    text = (RELEVANT + "\n\n") * 20 + _mixed_text()
    first = ExtractiveSummarizer().summarize(text)
    second = ExtractiveSummarizer().summarize(text)
    assert first == second
    assert first.as_result() == make_summarizer(SummarizerConfig()).summarize(text).as_result()


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t  \n"])
def test_extractive_empty_text(text: str) -> None:
    result = ExtractiveSummarizer().summarize(text)
    assert result.summary == ""
    assert result.key_points == []


def test_extractive_key_points_are_distinct_bounded_and_trimmed() -> None:
    long_sentence = "The contract renewal " + " ".join(["terms apply to the contract"] * 80) + "."
    text = "\n\n".join(
        [
            "The contract renewal is due next month.",
            "The contract renewal is due next month.",  # duplicate
            "the contract   renewal is due   next month.",  # same after normalizing
            long_sentence,
            *(
                f"Point {i} is about the contract renewal schedule and its {w} notice."
                for i, w in enumerate(
                    ["first", "second", "third", "fourth", "fifth", "sixth", "last"]
                )
            ),
        ]
    )
    config = SummarizerConfig(summary_sentences=3, key_points=4)
    result = ExtractiveSummarizer(config).summarize(text)
    assert len(result.key_points) == 4
    lowered = [" ".join(p.lower().split()) for p in result.key_points]
    assert len(set(lowered)) == len(lowered)
    assert all(len(p) <= summarize_module.KEY_POINT_MAX_CHARS for p in result.key_points)
    assert len(result.summary) <= summarize_module.SUMMARY_MAX_CHARS
    assert result.summary.lower().count("the contract renewal is due next month.") <= 1
    assert all(p not in result.summary for p in result.key_points)


def test_extractive_short_text_has_a_summary_and_no_repeated_key_point() -> None:
    result = ExtractiveSummarizer().summarize("Only one sentence here about the invoices.")
    assert result.summary == "Only one sentence here about the invoices."
    assert result.key_points == []  # key points never repeat the summary


def test_extractive_handles_unicode_text() -> None:
    text = (
        "Die Rechnung für März ist überfällig. "
        "Überfällige Rechnungen werden gemahnt, die Rechnung für März zuerst. "
        "Le café était très bon. "
        "Счёт за март просрочен, счёт оплачивают сегодня. "
        "東京の会議は来週の月曜日です。大阪の会議も来週の火曜日です。"
    )
    config = SummarizerConfig(summary_sentences=2, key_points=3)
    result = ExtractiveSummarizer(config).summarize(text)
    assert result.summary.startswith("Die Rechnung für März ist überfällig.")
    assert "Überfällige Rechnungen werden gemahnt" in result.summary
    assert 0 < len(result.key_points) <= 3
    assert any("会議" in p for p in result.key_points)  # an uncased script is not a fragment
    json.dumps(result.as_result(), ensure_ascii=False)
    assert ExtractiveSummarizer(config).summarize(text) == result


def test_extractive_ranks_a_bounded_evenly_spread_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(summarize_module, "MAX_CANDIDATES", 10)
    names = [chr(97 + i % 26) + chr(97 + i // 26) for i in range(100)]
    sentences = [f"The invoice for client {name} was paid on time." for name in names]
    first = ExtractiveSummarizer().summarize(" ".join(sentences))
    assert first == ExtractiveSummarizer().summarize(" ".join(sentences))
    assert first.summary
    assert len(first.key_points) == 5
    sample = set(sentences[::10])  # every tenth sentence: the evenly spaced ten
    assert all(p in sample for p in first.key_points)
    assert all(s + "." in sample or s in sample for s in first.summary.split(". "))


def test_extractive_and_split_stay_linear_on_long_whitespace_runs() -> None:
    # A regex with overlapping whitespace quantifiers would be quadratic on these.
    text = (
        "We start the report here. "
        + " " * 300_000
        + "The report ends over there.\n"
        + "\n"
        + " \t" * 100_000
        + "This is the last sentence."
    )
    config = SummarizerConfig(key_points=0)
    result = ExtractiveSummarizer(config).summarize(text)
    assert result.summary == (
        "We start the report here. The report ends over there. This is the last sentence."
    )
    chunks = split_text(text, 10)
    assert _non_ws("".join(chunks)) == _non_ws(text)


def test_extractive_makes_no_http_requests() -> None:
    with respx.mock(assert_all_mocked=True) as router:
        ExtractiveSummarizer().summarize(RELEVANT)
    assert router.calls.call_count == 0


def test_summary_as_result_is_json_ready() -> None:
    summary = Summary(
        summary="s",
        key_points=["a", "b"],
        summarizer="openai",
        model="gpt-4o-mini",
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.000123,
        requests=1,
        chunks=1,
    )
    result = summary.as_result()
    assert result == {
        "summary": "s",
        "key_points": ["a", "b"],
        "summarizer": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.000123,
        "requests": 1,
        "chunks": 1,
    }
    assert json.loads(json.dumps(result)) == result


# --- make_summarizer / configuration ------------------------------------------------------------


def test_make_summarizer_defaults_to_extractive() -> None:
    assert make_summarizer(SummarizerConfig()).name == "extractive"
    assert make_summarizer(SummarizerConfig(kind=" Extractive ")).name == "extractive"


@pytest.mark.parametrize(
    ("kind", "setting"), [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")]
)
def test_llm_summarizers_need_an_api_key(kind: str, setting: str) -> None:
    for key in (None, "", "   "):
        with pytest.raises(ConfigError) as info:
            make_summarizer(SummarizerConfig(kind=kind, api_key=key))
        assert setting in str(info.value)


def test_make_summarizer_rejects_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="unknown summarizer"):
        make_summarizer(SummarizerConfig(kind="bart"))
    with pytest.raises(ConfigError, match="max_input_tokens"):
        make_summarizer(SummarizerConfig(kind="openai", api_key=OPENAI_KEY, max_input_tokens=50))
    with pytest.raises(ConfigError, match="timeout_seconds"):
        make_summarizer(SummarizerConfig(timeout_seconds=0))
    with pytest.raises(ConfigError, match="base URL"):
        make_summarizer(SummarizerConfig(kind="openai", api_key=OPENAI_KEY, base_url="ftp://x"))


# --- LLM fixtures -----------------------------------------------------------------------------


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def anthropic_reply(text: str, input_tokens: int = 100, output_tokens: int = 20) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        },
    )


def openai_reply(
    text: str | None, prompt_tokens: int | None = 100, completion_tokens: int | None = 20
) -> httpx.Response:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if prompt_tokens is not None and completion_tokens is not None:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return httpx.Response(200, json=body)


REPLY_JSON = json.dumps(
    {"summary": "The agreement renews in March.", "key_points": ["Net 30", "2% late interest"]}
)


def _config(kind: str, **overrides: Any) -> SummarizerConfig:
    key = ANTHROPIC_KEY if kind == "anthropic" else OPENAI_KEY
    return SummarizerConfig(kind=kind, api_key=key, **overrides)


def _url(kind: str) -> str:
    return ANTHROPIC_URL if kind == "anthropic" else OPENAI_URL


def _ok(kind: str, text: str, input_tokens: int = 100, output_tokens: int = 20) -> httpx.Response:
    if kind == "anthropic":
        return anthropic_reply(text, input_tokens, output_tokens)
    return openai_reply(text, input_tokens, output_tokens)


def _request_text(kind: str, request: httpx.Request) -> tuple[str, str]:
    """(system prompt, user prompt) of a recorded request."""
    body = json.loads(request.content)
    if kind == "anthropic":
        return body["system"], body["messages"][0]["content"]
    return body["messages"][0]["content"], body["messages"][1]["content"]


def test_the_api_key_stays_out_of_reprs(http: httpx.Client) -> None:
    config = SummarizerConfig(kind="anthropic", api_key=ANTHROPIC_KEY)
    assert ANTHROPIC_KEY not in repr(config)
    assert ANTHROPIC_KEY not in repr(make_summarizer(config, http))


# --- Anthropic --------------------------------------------------------------------------------


def test_anthropic_request_shape_and_reply(router: respx.MockRouter, http: httpx.Client) -> None:
    route = router.post(ANTHROPIC_URL).mock(return_value=anthropic_reply(REPLY_JSON, 1200, 300))
    config = _config(
        "anthropic",
        max_output_tokens=256,
        price_input_per_mtok=3.0,
        price_output_per_mtok=15.0,
        timeout_seconds=12.5,
    )
    result = make_summarizer(config, http).summarize(DOCUMENT, title="contract.txt")

    assert route.call_count == 1
    request = route.calls.last.request
    assert str(request.url) == ANTHROPIC_URL
    assert request.headers["x-api-key"] == ANTHROPIC_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.extensions["timeout"]["read"] == 12.5
    body = json.loads(request.content)
    assert set(body) == {"model", "max_tokens", "system", "messages"}
    assert body["model"] == "claude-3-5-haiku-latest"
    assert body["max_tokens"] == 256
    assert "JSON" in body["system"]
    assert len(body["messages"]) == 1
    assert body["messages"][0]["role"] == "user"
    assert DOCUMENT in body["messages"][0]["content"]
    assert "contract.txt" in body["messages"][0]["content"]

    assert result.summary == "The agreement renews in March."
    assert result.key_points == ["Net 30", "2% late interest"]
    assert result.summarizer == "anthropic"
    assert result.model == "claude-3-5-haiku-latest"
    assert (result.input_tokens, result.output_tokens) == (1200, 300)
    assert result.cost_usd == pytest.approx(1200 * 3.0 / 1e6 + 300 * 15.0 / 1e6)  # 0.0081
    assert (result.requests, result.chunks) == (1, 1)
    assert ANTHROPIC_KEY not in json.dumps(result.as_result())


def test_anthropic_custom_model_and_base_url(router: respx.MockRouter, http: httpx.Client) -> None:
    route = router.post("https://llm-proxy.internal/anthropic/v1/messages").mock(
        return_value=anthropic_reply(REPLY_JSON)
    )
    config = _config(
        "anthropic", model="claude-sonnet-4-5", base_url="https://llm-proxy.internal/anthropic/"
    )
    result = make_summarizer(config, http).summarize(DOCUMENT)
    assert route.call_count == 1
    assert json.loads(route.calls.last.request.content)["model"] == "claude-sonnet-4-5"
    assert result.model == "claude-sonnet-4-5"


def test_anthropic_without_an_injected_client(router: respx.MockRouter) -> None:
    route = router.post(ANTHROPIC_URL).mock(return_value=anthropic_reply(REPLY_JSON))
    result = make_summarizer(_config("anthropic")).summarize(DOCUMENT)
    assert route.call_count == 1
    assert result.summary == "The agreement renews in March."


# --- OpenAI-compatible ----------------------------------------------------------------------------


def test_openai_request_shape_and_reply(router: respx.MockRouter, http: httpx.Client) -> None:
    route = router.post(OPENAI_URL).mock(return_value=openai_reply(REPLY_JSON, 2000, 100))
    config = _config("openai", price_input_per_mtok=3.0, price_output_per_mtok=15.0)
    result = make_summarizer(config, http).summarize(DOCUMENT)

    request = route.calls.last.request
    assert str(request.url) == OPENAI_URL
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert "x-api-key" not in request.headers
    body = json.loads(request.content)
    assert set(body) == {"model", "messages", "max_tokens"}
    assert body["model"] == "gpt-4o-mini"
    assert body["max_tokens"] == 512
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert DOCUMENT in body["messages"][1]["content"]

    assert result.summary == "The agreement renews in March."
    assert result.key_points == ["Net 30", "2% late interest"]
    assert (result.input_tokens, result.output_tokens) == (2000, 100)
    assert result.cost_usd == pytest.approx(0.0075)
    assert result.summarizer == "openai"
    assert result.model == "gpt-4o-mini"


@pytest.mark.parametrize("base_url", ["http://localhost:11434/v1", "http://localhost:11434/v1/"])
def test_openai_compatible_base_url(
    router: respx.MockRouter, http: httpx.Client, base_url: str
) -> None:
    route = router.post("http://localhost:11434/v1/chat/completions").mock(
        return_value=openai_reply(REPLY_JSON)
    )
    config = _config("openai", base_url=base_url, model="llama3.1:8b")
    result = make_summarizer(config, http).summarize(DOCUMENT)
    assert route.call_count == 1
    assert str(route.calls.last.request.url) == "http://localhost:11434/v1/chat/completions"
    assert json.loads(route.calls.last.request.content)["model"] == "llama3.1:8b"
    assert result.model == "llama3.1:8b"


def test_openai_without_usage_estimates_tokens(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    router.post(OPENAI_URL).mock(return_value=openai_reply(REPLY_JSON, None, None))
    result = make_summarizer(_config("openai"), http).summarize(DOCUMENT)
    assert result.input_tokens > estimate_tokens(DOCUMENT)
    assert result.output_tokens == estimate_tokens(REPLY_JSON)


# --- reply parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("reply", "summary", "points"),
    [
        (REPLY_JSON, "The agreement renews in March.", ["Net 30", "2% late interest"]),
        (
            f"```json\n{REPLY_JSON}\n```",
            "The agreement renews in March.",
            ["Net 30", "2% late interest"],
        ),
        (
            f"Here is the summary you asked for:\n{REPLY_JSON}\nLet me know if you need more.",
            "The agreement renews in March.",
            ["Net 30", "2% late interest"],
        ),
        (
            "The agreement renews in March; payment is due in 30 days.",
            "The agreement renews in March; payment is due in 30 days.",
            [],
        ),
        ('{"summary": "Renews in March, net 30 pay', "Renews in March, net 30 pay", []),
    ],
    ids=["json", "fenced", "prose", "plain-text", "truncated-json"],
)
def test_replies_are_parsed_leniently(
    router: respx.MockRouter,
    http: httpx.Client,
    kind: str,
    reply: str,
    summary: str,
    points: list[str],
) -> None:
    if reply.startswith('{"summary": "Renews'):
        reply = '{"summary": "Renews in March, net 30 pay", "key_points": ["Net'  # cut off
    router.post(_url(kind)).mock(return_value=_ok(kind, reply))
    result = make_summarizer(_config(kind), http).summarize(DOCUMENT)
    assert result.summary == summary
    assert result.key_points == points


def test_parse_reply_edge_cases() -> None:
    assert parse_reply('{"summary": "S", "key_points": "- one\\n- two"}') == ("S", ["one", "two"])
    assert parse_reply('{"summary": "S", "key_points": ["a", 3, null, "", " b "]}') == (
        "S",
        ["a", "3", "b"],
    )
    assert parse_reply('{"title": "no summary"}') == ('{"title": "no summary"}', [])
    assert parse_reply("```\nplain fenced text\n```") == ("plain fenced text", [])


def test_key_points_are_capped_at_the_configured_count(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    reply = json.dumps({"summary": "S.", "key_points": [f"p{i}" for i in range(10)]})
    router.post(OPENAI_URL).mock(return_value=openai_reply(reply))
    result = make_summarizer(_config("openai", key_points=3), http).summarize(DOCUMENT)
    assert result.key_points == ["p0", "p1", "p2"]


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_empty_text_sends_no_request(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    route = router.post(_url(kind))
    result = make_summarizer(_config(kind), http).summarize("  \n ")
    assert route.call_count == 0
    assert (result.summary, result.key_points, result.requests) == ("", [], 0)


# --- errors -----------------------------------------------------------------------------------


def _error_body(kind: str, status: int, error_type: str, message: str) -> httpx.Response:
    if kind == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    else:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return httpx.Response(status, json=body)


def _summarize_error(kind: str, http: httpx.Client, text: str = DOCUMENT) -> JobError:
    with pytest.raises(JobError) as info:
        make_summarizer(_config(kind), http).summarize(text)
    return info.value


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("status", "code", "recoverable"),
    [
        (429, "summarizer_rate_limited", True),
        (500, "summarizer_unavailable", True),
        (502, "summarizer_unavailable", True),
        (503, "summarizer_unavailable", True),
        (529, "summarizer_unavailable", True),
        (400, "summarizer_rejected", False),
        (401, "summarizer_rejected", False),
        (403, "summarizer_rejected", False),
        (404, "summarizer_rejected", False),
        (422, "summarizer_rejected", False),
    ],
)
def test_http_errors_map_to_job_errors(
    router: respx.MockRouter,
    http: httpx.Client,
    kind: str,
    status: int,
    code: str,
    recoverable: bool,
) -> None:
    router.post(_url(kind)).mock(
        return_value=_error_body(kind, status, "some_error", "something went wrong")
    )
    error = _summarize_error(kind, http)
    assert error.code == code
    assert error.recoverable is recoverable
    assert f"HTTP {status}" in error.message
    assert "some_error" in error.message
    assert "something went wrong" in error.message
    assert kind in error.message


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["connect-timeout", "read-timeout", "connect-error", "protocol-error"],
)
def test_transport_errors_are_recoverable(
    router: respx.MockRouter, http: httpx.Client, kind: str, exc: Exception
) -> None:
    router.post(_url(kind)).mock(side_effect=exc)
    error = _summarize_error(kind, http)
    assert error.code == "summarizer_unavailable"
    assert error.recoverable is True


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>gateway says hi</html>"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(200, json=[]),
        httpx.Response(200, json={"content": [], "choices": []}),
        httpx.Response(
            200, json={"content": [{"type": "text", "text": "  "}], "choices": [{"message": {}}]}
        ),
        httpx.Response(
            200,
            json={
                "content": [{"type": "tool_use", "id": "x"}],
                "choices": [{"message": {"content": None}}],
            },
        ),
    ],
    ids=["html", "no-content", "list", "empty-lists", "blank-text", "no-text-block"],
)
def test_unusable_200_bodies_are_recoverable_bad_responses(
    router: respx.MockRouter, http: httpx.Client, kind: str, response: httpx.Response
) -> None:
    router.post(_url(kind)).mock(return_value=response)
    error = _summarize_error(kind, http)
    assert error.code == "summarizer_bad_response"
    assert error.recoverable is True


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize("status", [401, 429, 500])
def test_errors_never_contain_the_api_key_or_the_text(
    router: respx.MockRouter, http: httpx.Client, kind: str, status: int
) -> None:
    key = ANTHROPIC_KEY if kind == "anthropic" else OPENAI_KEY
    secret_text = "The secret merger with Globex closes on the fourteenth of June."
    router.post(_url(kind)).mock(
        side_effect=[
            _error_body(kind, status, "authentication_error", f"Incorrect API key: {key}"),
            _error_body(kind, status, "invalid_request_error", f"cannot process: {secret_text}"),
            _error_body(kind, status, "invalid_request_error", "Incorrect key sk-abc***wxyz"),
        ]
    )
    for _ in range(3):
        error = _summarize_error(kind, http, text=secret_text)
        for rendered in (str(error), error.message, repr(error)):
            assert key not in rendered
            assert "secret merger" not in rendered
            assert "sk-abc" not in rendered
        assert f"HTTP {status}" in error.message


def test_rate_limit_mentions_retry_after(router: respx.MockRouter, http: httpx.Client) -> None:
    router.post(OPENAI_URL).mock(
        return_value=httpx.Response(429, headers={"retry-after": "17"}, json={"error": "slow"})
    )
    error = _summarize_error("openai", http)
    assert error.code == "summarizer_rate_limited"
    assert "17s" in error.message


# --- map-reduce -------------------------------------------------------------------------------


def _long_document(paragraphs: int = 40) -> str:
    return "\n\n".join(
        f"Section {i}. The contract for site {i} covers delivery, invoicing and warranty terms. "
        f"Payments for site {i} are due within {i + 10} days of each invoice."
        for i in range(paragraphs)
    )


def _document_part(prompt: str) -> str:
    start = prompt.index("<document_part>\n") + len("<document_part>\n")
    return prompt[start : prompt.index("\n</document_part>")]


def _responder(kind: str, reply_for: Callable[[str, int], str]) -> Callable[..., httpx.Response]:
    """A respx side effect: the reply text from the user prompt; usage from its size."""
    counter = {"n": 0}

    def respond(request: httpx.Request) -> httpx.Response:
        counter["n"] += 1
        system, prompt = _request_text(kind, request)
        input_tokens = estimate_tokens(system) + estimate_tokens(prompt)
        return _ok(kind, reply_for(prompt, counter["n"]), input_tokens, 7)

    return respond


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_long_text_is_mapped_then_reduced(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    def reply_for(prompt: str, n: int) -> str:
        if "<part_summaries>" in prompt:
            return json.dumps({"summary": "Whole document.", "key_points": ["final point"]})
        return json.dumps({"summary": f"Summary {n}.", "key_points": [f"point {n}"]})

    route = router.post(_url(kind)).mock(side_effect=_responder(kind, reply_for))
    config = _config(
        kind,
        max_input_tokens=400,
        max_output_tokens=64,
        price_input_per_mtok=3.0,
        price_output_per_mtok=15.0,
    )
    summarizer = make_summarizer(config, http)
    text = _long_document()
    assert estimate_tokens(text) > config.max_input_tokens
    result = summarizer.summarize(text, title="sites.txt")

    assert isinstance(summarizer, AnthropicSummarizer | OpenAISummarizer)
    expected_chunks = len(split_text(text, summarizer.chunk_budget))
    assert expected_chunks > 1
    assert result.chunks == expected_chunks
    assert route.call_count == expected_chunks + 1  # N map requests + 1 reduce
    assert result.requests == route.call_count

    prompts = [_request_text(kind, call.request) for call in route.calls]
    for system, prompt in prompts:
        assert estimate_tokens(system) + estimate_tokens(prompt) <= config.max_input_tokens
    map_prompts = [prompt for _, prompt in prompts[:-1]]
    for i, prompt in enumerate(map_prompts, 1):
        assert f"part {i} of {expected_chunks}" in prompt
        assert "sites.txt" in prompt
    # Every map request carries its own chunk, and together they carry the whole text, in order.
    assert _non_ws("".join(_document_part(p) for p in map_prompts)) == _non_ws(text)
    reduce_prompt = prompts[-1][1]
    assert "Part 1: Summary 1." in reduce_prompt
    assert f"Part {expected_chunks}: Summary {expected_chunks}." in reduce_prompt
    assert "- point 1" in reduce_prompt

    assert result.summary == "Whole document."
    assert result.key_points == ["final point"]
    expected_input = sum(estimate_tokens(s) + estimate_tokens(p) for s, p in prompts)
    assert result.input_tokens == expected_input
    assert result.output_tokens == 7 * route.call_count
    assert result.cost_usd == pytest.approx(
        expected_input * 3.0 / 1e6 + result.output_tokens * 15.0 / 1e6
    )


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_reduce_recurses_while_partial_summaries_are_over_budget(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    wordy = "This part discusses contracts, invoices, deliveries and warranties at length. " * 3

    def reply_for(prompt: str, n: int) -> str:
        if "<document_part>" in prompt:
            return json.dumps({"summary": f"{n}: {wordy}", "key_points": [wordy[:80]]})
        if "(group " in prompt:
            return json.dumps({"summary": f"Group summary {n}.", "key_points": []})
        return json.dumps({"summary": "Final.", "key_points": ["one", "two"]})

    route = router.post(_url(kind)).mock(side_effect=_responder(kind, reply_for))
    config = _config(kind, max_input_tokens=400, max_output_tokens=64)
    summarizer = make_summarizer(config, http)
    result = summarizer.summarize(_long_document())

    prompts = [_request_text(kind, call.request) for call in route.calls]
    groups = [p for _, p in prompts if "(group " in p]
    assert groups  # an intermediate reduce level happened
    assert route.call_count == result.chunks + len(groups) + 1
    assert result.requests == route.call_count
    for system, prompt in prompts:
        assert estimate_tokens(system) + estimate_tokens(prompt) <= config.max_input_tokens
    assert "Group summary" in prompts[-1][1]
    assert result.summary == "Final."
    assert result.key_points == ["one", "two"]


def test_a_failure_during_map_reduce_propagates(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    router.post(OPENAI_URL).mock(
        side_effect=[openai_reply(REPLY_JSON), httpx.Response(503, json={"error": "overloaded"})]
    )
    summarizer = make_summarizer(_config("openai", max_input_tokens=400), http)
    with pytest.raises(JobError) as info:
        summarizer.summarize(_long_document())
    assert info.value.code == "summarizer_unavailable"
    assert info.value.recoverable is True


def test_parse_reply_survives_a_deeply_nested_reply() -> None:
    deep = '{"summary": "S", "key_points": ' + "[" * 100_000 + "]" * 100_000 + "}"
    summary, points = parse_reply(deep)
    assert points == []
    assert summary  # the salvaged summary or the reply itself, never a RecursionError

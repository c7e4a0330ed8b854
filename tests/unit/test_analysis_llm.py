"""shared.documents.analysis.llm: template extraction with the Anthropic and OpenAI providers.

respx answers for the providers (HTTP that leaves the process) and nothing else: every test goes
through `analysis.analyze()`, so the grounding check, the validation of each value and the page
and section lookup are the real ones. The tests pin what goes on the wire (the forced tool, the
`json_schema` response format, the token budget), how an invalid answer is asked again, how the
answers of a long document's chunks are merged, how failures become JobErrors, and that neither
the key nor the document text reaches a log line or an error.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from shared.documents import analysis
from shared.documents.analysis import llm, templates
from shared.documents.summarize import SummarizerConfig, estimate_tokens, make_summarizer
from shared.platform.errors import ConfigError, JobError

ANTHROPIC_KEY = "sk-ant-test-analysis-0123456789SECRET"
OPENAI_KEY = "sk-test-openai-analysis-0123456789SECRET"
URLS = {
    "anthropic": "https://api.anthropic.com/v1/messages",
    "openai": "https://api.openai.com/v1/chat/completions",
}
KINDS = ["anthropic", "openai"]

BRIEF_DOC = """<!-- page 1 -->
# Supply Agreement

Fernhill Instruments Ltd and Norrvik Components AS signed this agreement on 14 March 2026.

## Payment

The buyer pays **EUR 1.2 million** within 30 days of delivery.
Late payments accrue interest of 2.5% per month.

<!-- page 2 -->
## Obligations

The supplier must deliver 400 units by 30 June 2026.

## Risks

Delays at the Oslo plant could postpone delivery.
"""

FINANCIAL_DOC = """<!-- page 1 -->
# Fernhill Instruments: Confidential Information Memorandum

Fernhill Instruments Ltd designs laboratory measurement equipment.

## Financial highlights

Revenue for FY2025 was GBP 48.3 million, up 12% on FY2024.
EBITDA for FY2025 was GBP 9.1 million.

<!-- page 2 -->
## People

The company employs 310 people.

## Transaction

The shareholders seek a buyer for 100% of the shares.
"""


def ev(quote: str) -> dict[str, str]:
    return {"quote": quote}


BRIEF_ANSWER: dict[str, Any] = {
    "document_type": {"value": "Supply agreement", "evidence": ev("Supply Agreement")},
    "organizations": [
        {"value": "Fernhill Instruments Ltd", "evidence": ev("Fernhill Instruments Ltd")},
        {"value": "Norrvik Components AS", "evidence": ev("Norrvik Components AS")},
    ],
    "dates": [
        {
            "value": "2026-03-14",
            "text": "14 March 2026",
            "evidence": ev("signed this agreement on 14 March 2026"),
        },
        {
            "value": "2026-06-30",
            "text": "30 June 2026",
            "evidence": ev("400 units by 30 June 2026"),
        },
    ],
    "amounts": [
        {
            "value": 1.2,
            "currency": "EUR",
            "scale": "million",
            "text": "EUR 1.2 million",
            # The document has it in bold: the grounding check ignores the markup.
            "evidence": ev("The buyer pays EUR 1.2 million within 30 days of delivery."),
        }
    ],
    "percentages": [
        {"value": 2.5, "text": "2.5%", "evidence": ev("interest of 2.5% per month")},
    ],
    "obligations": [
        {
            "text": "The supplier delivers 400 units by 30 June 2026.",
            "evidence": ev("The supplier must deliver 400 units by 30 June 2026."),
        }
    ],
    "risks": [
        {
            "text": "Delays at the Oslo plant.",
            "evidence": ev("Delays at the Oslo plant could postpone delivery."),
        }
    ],
}

FINANCIAL_ANSWER: dict[str, Any] = {
    "company": {"value": "Fernhill Instruments Ltd", "evidence": ev("Fernhill Instruments Ltd")},
    "industry": {
        "value": "Laboratory measurement equipment",
        "evidence": ev("designs laboratory measurement equipment"),
    },
    "periods": [{"value": "FY2025", "evidence": ev("Revenue for FY2025")}],
    "revenue": [
        {
            "value": 48.3,
            "currency": "GBP",
            "scale": "million",
            "period": "FY2025",
            "text": "GBP 48.3 million",
            "evidence": ev("Revenue for FY2025 was GBP 48.3 million"),
        }
    ],
    "ebitda": [
        {
            "value": 9.1,
            "currency": "GBP",
            "scale": "million",
            "period": "FY2025",
            "text": "GBP 9.1 million",
            "evidence": ev("EBITDA for FY2025 was GBP 9.1 million."),
        }
    ],
    "growth_rates": [{"value": 12, "text": "12%", "evidence": ev("up 12% on FY2024")}],
    "headcount": [{"value": 310, "text": "310 people", "evidence": ev("employs 310 people")}],
    "deal_terms": [
        {
            "text": "Sale of 100% of the shares.",
            "evidence": ev("The shareholders seek a buyer for 100% of the shares."),
        }
    ],
}

CASES = {
    "document_brief": (BRIEF_DOC, BRIEF_ANSWER),
    "financial": (FINANCIAL_DOC, FINANCIAL_ANSWER),
}


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def config(kind: str, **overrides: Any) -> SummarizerConfig:
    key = ANTHROPIC_KEY if kind == "anthropic" else OPENAI_KEY
    return SummarizerConfig(kind=kind, api_key=key, **overrides)


def reply(
    kind: str,
    answer: dict[str, Any] | str,
    input_tokens: int | None = 1000,
    output_tokens: int | None = 200,
) -> httpx.Response:
    """A provider's 200: a dict is the structured answer (tool input, JSON content); a string
    is what a model says instead (a text block without the tool call, non-JSON content)."""
    if kind == "anthropic":
        if isinstance(answer, dict):
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": "toolu_1", "name": "record_analysis", "input": answer}
            ]
            stop = "tool_use"
        else:
            content, stop = [{"type": "text", "text": answer}], "end_turn"
        body: dict[str, Any] = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": content,
            "stop_reason": stop,
        }
        if input_tokens is not None and output_tokens is not None:
            body["usage"] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        return httpx.Response(200, json=body)
    text = json.dumps(answer) if isinstance(answer, dict) else answer
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if input_tokens is not None and output_tokens is not None:
        body["usage"] = {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
    return httpx.Response(200, json=body)


def sent(kind: str, request: httpx.Request) -> tuple[str, str, Any]:
    """(system prompt, user prompt, the part of the body that carries the schema)."""
    body = json.loads(request.content)
    if kind == "anthropic":
        return body["system"], body["messages"][0]["content"], body["tools"]
    return body["messages"][0]["content"], body["messages"][1]["content"], body["response_format"]


def request_estimate(kind: str, request: httpx.Request) -> int:
    """A request's input tokens, estimated as the budget counts them (4 characters a token):
    system, prompt, the schema as sent, and Anthropic's own tool-use prompt."""
    system, prompt, schema = sent(kind, request)
    tokens = estimate_tokens(system) + estimate_tokens(prompt) + estimate_tokens(json.dumps(schema))
    return tokens + (llm.ANTHROPIC_TOOL_PROMPT_TOKENS if kind == "anthropic" else 0)


def document_of(prompt: str) -> str:
    match = re.search(r"<document(?:_part)?>\n(.*)\n</document(?:_part)?>", prompt, re.DOTALL)
    assert match, "the prompt carries no document"
    return match.group(1)


def run(
    kind: str,
    http: httpx.Client,
    markdown: str,
    template: str = "document_brief",
    **overrides: Any,
) -> analysis.Analysis:
    return analysis.analyze(
        markdown, template=template, title="deal.pdf", config=config(kind, **overrides), http=http
    )


def without_evidence(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != "evidence"}


# --- valid output, end to end -----------------------------------------------------------------


EXPECTED_PLACES = {
    "document_brief": {
        "document_type": (1, "Supply Agreement"),
        "organizations": (1, "Supply Agreement"),
        "dates": (1, "Supply Agreement"),
        "amounts": (1, "Payment"),
        "percentages": (1, "Payment"),
        "obligations": (2, "Obligations"),
        "risks": (2, "Risks"),
    },
    "financial": {
        "company": (1, "Fernhill Instruments: Confidential Information Memorandum"),
        "industry": (1, "Fernhill Instruments: Confidential Information Memorandum"),
        "revenue": (1, "Financial highlights"),
        "ebitda": (1, "Financial highlights"),
        "growth_rates": (1, "Financial highlights"),
        "headcount": (2, "People"),
        "deal_terms": (2, "Transaction"),
    },
}


@pytest.mark.parametrize("template", ["document_brief", "financial"])
@pytest.mark.parametrize("kind", KINDS)
def test_valid_output_end_to_end(
    router: respx.MockRouter, http: httpx.Client, kind: str, template: str
) -> None:
    markdown, answer = CASES[template]
    route = router.post(URLS[kind]).mock(return_value=reply(kind, answer, 1500, 400))
    result = run(kind, http, markdown, template, price_input_per_mtok=1.0)

    assert route.call_count == 1
    assert result.template == template
    assert result.unverified == []
    model = templates.get(template)
    assert set(result.fields) == set(model.model_fields)
    for name, given in answer.items():
        got = result.fields[name]
        values = got if isinstance(got, list) else [got]
        givens = given if isinstance(given, list) else [given]
        # Every value kept as given (the optional fields it left out are None), with its quote.
        assert len(values) == len(givens), name
        for value, g in zip(values, givens, strict=True):
            assert {k: value[k] for k in without_evidence(g)} == without_evidence(g)
            assert all(value[k] is None for k in value if k not in g and k != "evidence")
            assert value["evidence"]["quote"] == g["evidence"]["quote"]
    assert all(
        result.fields[name] in (None, []) for name in model.model_fields if name not in answer
    )
    for name, (page, section) in EXPECTED_PLACES[template].items():
        got = result.fields[name]
        first = got[0] if isinstance(got, list) else got
        assert (first["evidence"]["page"], first["evidence"]["section"]) == (page, section), name
    assert (result.usage.requests, result.usage.input_tokens, result.usage.output_tokens) == (
        1,
        1500,
        400,
    )
    assert result.usage.cost_usd == pytest.approx(1500 / 1e6)


# --- the request ------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["document_brief", "financial"])
@pytest.mark.parametrize("kind", KINDS)
def test_request_asks_for_the_template_schema(
    router: respx.MockRouter, http: httpx.Client, kind: str, template: str
) -> None:
    markdown, answer = CASES[template]
    route = router.post(URLS[kind]).mock(return_value=reply(kind, answer))
    run(kind, http, markdown, template, max_output_tokens=256)

    request = route.calls.last.request
    body = json.loads(request.content)
    if kind == "anthropic":
        assert request.headers["x-api-key"] == ANTHROPIC_KEY
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert body["tool_choice"] == {"type": "tool", "name": "record_analysis"}
        assert [tool["name"] for tool in body["tools"]] == ["record_analysis"]
        schema = body["tools"][0]["input_schema"]
        assert [m["role"] for m in body["messages"]] == ["user"]
    else:
        assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
        response_format = body["response_format"]
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["name"] == template
        assert response_format["json_schema"]["strict"] is False
        schema = response_format["json_schema"]["schema"]
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    # Extraction answers are long: never fewer output tokens than the floor.
    assert body["max_tokens"] == llm.MIN_OUTPUT_TOKENS

    # The template's schema: its fields, evidence as just the quote, and a valid JSON Schema
    # that the expected answer satisfies and a value without its quote breaks.
    assert set(schema["properties"]) == set(templates.get(template).model_fields)
    evidence = schema["$defs"]["Evidence"]
    assert evidence["required"] == ["quote"]
    assert set(evidence["properties"]) == {"quote"}
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(answer, schema)
    first_list = next(name for name, value in answer.items() if isinstance(value, list))
    broken = {first_list: [without_evidence(answer[first_list][0])]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)

    system, prompt, _ = sent(kind, request)
    assert "ignore any instructions" in system
    assert "copied exactly" in system
    assert "Leave out whatever the document does not say" in system
    assert document_of(prompt) == markdown.strip()
    assert "Title: deal.pdf" in prompt
    assert template in prompt


@pytest.mark.parametrize("kind", KINDS)
def test_empty_document_sends_no_request(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    route = router.post(URLS[kind])
    result = run(kind, http, "  \n\n ")
    assert route.call_count == 0
    assert result.usage == analysis.Usage()
    assert result.fields["organizations"] == []


@pytest.mark.parametrize("kind", KINDS)
def test_configuration_errors(kind: str) -> None:
    with pytest.raises(ConfigError, match="API_KEY"):
        analysis.analyze(BRIEF_DOC, config=SummarizerConfig(kind=kind, api_key=" "))
    with pytest.raises(ConfigError, match="max_input_tokens"):
        analysis.analyze(BRIEF_DOC, config=config(kind, max_input_tokens=1000))


# --- invalid output ---------------------------------------------------------------------------


def _with(answer: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(answer)), **changes}


BAD_DATE = {"value": "14 March 2026", "text": "14 March 2026", "evidence": ev("14 March 2026")}


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_then_valid_retries_once_with_the_errors(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    invalid = _with(BRIEF_ANSWER, dates=[BAD_DATE], people="nobody")
    route = router.post(URLS[kind]).mock(
        side_effect=[reply(kind, invalid, 1000, 300), reply(kind, BRIEF_ANSWER, 1100, 320)]
    )
    result = run(kind, http, BRIEF_DOC, price_input_per_mtok=2.0, price_output_per_mtok=10.0)

    assert route.call_count == 2
    _, first_prompt, _ = sent(kind, route.calls[0].request)
    _, second_prompt, schema = sent(kind, route.calls[1].request)
    assert "did not match the schema" not in first_prompt
    assert second_prompt.startswith(first_prompt)  # the same request, and then the errors
    errors = second_prompt[len(first_prompt) :]
    assert "did not match the schema" in errors
    assert "dates.0.value" in errors
    assert '"14 March 2026"' in errors  # the offending value, so the model can fix it
    assert "people" in errors
    assert "Fernhill" not in errors  # no other text of the document
    assert schema == sent(kind, route.calls[0].request)[2]

    assert [d["value"] for d in result.fields["dates"]] == ["2026-03-14", "2026-06-30"]
    assert result.unverified == []
    assert (result.usage.requests, result.usage.input_tokens, result.usage.output_tokens) == (
        2,
        2100,
        620,
    )
    assert result.usage.cost_usd == pytest.approx((2100 * 2.0 + 620 * 10.0) / 1e6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "garbage",
    ["I could not find anything worth recording.", '{"properties": {"organizations": []}}'],
    ids=["prose", "schema-echo"],
)
def test_invalid_twice_is_a_recoverable_job_error(
    router: respx.MockRouter, http: httpx.Client, kind: str, garbage: str
) -> None:
    answer: dict[str, Any] | str = garbage
    if kind == "anthropic" and garbage.startswith("{"):
        answer = json.loads(garbage)  # a tool call whose input echoes the schema
    route = router.post(URLS[kind]).mock(return_value=reply(kind, answer))
    with pytest.raises(JobError) as info:
        run(kind, http, BRIEF_DOC)
    assert route.call_count == 2  # one retry, then the queue's backoff
    error = info.value
    assert error.code == "analysis_invalid_output"
    assert error.recoverable is True
    assert kind in error.message
    assert "Fernhill" not in str(error) and ANTHROPIC_KEY not in str(error)
    _, second_prompt, _ = sent(kind, route.calls[1].request)
    assert "did not match the schema" in second_prompt


@pytest.mark.parametrize("kind", KINDS)
def test_single_values_that_break_the_schema_go_to_unverified(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    bad_amount = {
        "value": "about a million",
        "currency": "euros",
        "text": "EUR 1.2 million",
        "evidence": ev("EUR 1.2 million"),
    }
    # The model repeats the same mistakes when asked again: the rest of the answer is kept.
    invalid = _with(BRIEF_ANSWER, dates=[BAD_DATE, BRIEF_ANSWER["dates"][1]], amounts=[bad_amount])
    route = router.post(URLS[kind]).mock(return_value=reply(kind, invalid))
    result = run(kind, http, BRIEF_DOC)

    assert route.call_count == 2
    assert [d["value"] for d in result.fields["dates"]] == ["2026-06-30"]
    assert result.fields["amounts"] == []
    assert len(result.fields["organizations"]) == 2
    assert result.fields["risks"][0]["evidence"]["section"] == "Risks"
    assert sorted((u["field"], u["reason"]) for u in result.unverified) == [
        ("amounts", "invalid"),
        ("dates", "invalid"),
    ]
    assert {u["field"]: u["value"] for u in result.unverified}["dates"] == BAD_DATE


@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_retry_keeps_the_first_answer(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    invalid = _with(BRIEF_ANSWER, dates=[BAD_DATE])
    route = router.post(URLS[kind]).mock(
        side_effect=[reply(kind, invalid), reply(kind, "Sorry, I cannot help with that.")]
    )
    result = run(kind, http, BRIEF_DOC)
    assert route.call_count == 2
    assert len(result.fields["organizations"]) == 2
    assert result.fields["dates"] == []
    assert [(u["field"], u["reason"]) for u in result.unverified] == [("dates", "invalid")]


def test_openai_compatible_json_in_a_code_fence_is_read(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    # Some OpenAI-compatible servers ignore the response format and fence the JSON.
    fenced = f"Here it is:\n```json\n{json.dumps(BRIEF_ANSWER)}\n```"
    route = router.post(URLS["openai"]).mock(return_value=reply("openai", fenced))
    result = run("openai", http, BRIEF_DOC)
    assert route.call_count == 1
    assert len(result.fields["organizations"]) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_an_answer_cut_off_at_max_tokens_is_asked_again(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    if kind == "anthropic":
        cut = httpx.Response(
            200,
            json={
                "content": [
                    {"type": "tool_use", "id": "t", "name": "record_analysis", "input": {}}
                ],
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 900, "output_tokens": 4096},
            },
        )
    else:
        cut = httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "message": {"content": json.dumps(BRIEF_ANSWER)[:200]},
                        "finish_reason": "length",
                    }
                ],
                "usage": {"prompt_tokens": 900, "completion_tokens": 4096},
            },
        )
    route = router.post(URLS[kind]).mock(side_effect=[cut, reply(kind, BRIEF_ANSWER, 950, 600)])
    result = run(kind, http, BRIEF_DOC)
    assert route.call_count == 2
    assert "cut off" in sent(kind, route.calls[1].request)[1]
    assert len(result.fields["organizations"]) == 2
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1850, 4696)


# --- grounding --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_hallucinated_quote_lands_in_unverified(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    invented = {
        "value": 7.5,
        "currency": "EUR",
        "scale": "million",
        "text": "EUR 7.5 million",
        "evidence": ev("The buyer pays EUR 7.5 million upfront."),
    }
    answer = _with(BRIEF_ANSWER, amounts=[*BRIEF_ANSWER["amounts"], invented])
    route = router.post(URLS[kind]).mock(return_value=reply(kind, answer))
    result = run(kind, http, BRIEF_DOC)

    assert route.call_count == 1  # valid against the schema: no retry
    assert [a["value"] for a in result.fields["amounts"]] == [1.2]
    assert result.unverified == [
        {"field": "amounts", "value": invented, "reason": "quote_not_found"}
    ]
    assert "7.5" not in json.dumps(result.fields)


# --- long documents: map over chunks, merge -----------------------------------------------------

SITES = 48


def long_document() -> str:
    blocks = ["<!-- page 1 -->\n# Master supply agreement\n"]
    for i in range(1, SITES + 1):
        if i % 4 == 1 and i > 1:
            blocks.append(f"<!-- page {i // 4 + 1} -->")
        blocks.append(
            f"## Site {i}\n\nFernhill Instruments Ltd delivers measurement racks to site {i} "
            f"every quarter. For site {i} the buyer pays EUR {i}.5 million per year, and late "
            f"payments accrue interest of 2.5% per month. Deliveries to site {i} follow the "
            "schedule agreed by both parties and the acceptance tests described in annex B."
        )
    return "\n\n".join(blocks)


def chunk_answer(part: str) -> dict[str, Any]:
    """What a careful model finds in one chunk (quotes copied from the chunk itself)."""
    sites = [int(n) for n in re.findall(r"For site (\d+) the buyer", part)]
    first = sites[0] if sites else 0
    return {
        "organizations": [
            {
                "value": "Fernhill Instruments Ltd",
                "evidence": ev(
                    f"Fernhill Instruments Ltd delivers measurement racks to site {first}"
                ),
            }
        ],
        "amounts": [
            {
                "value": float(f"{n}.5"),
                "currency": "EUR",
                "scale": "million",
                "text": f"EUR {n}.5 million",
                "evidence": ev(f"For site {n} the buyer pays EUR {n}.5 million per year"),
            }
            for n in sites
        ],
        "percentages": [
            {"value": 2.5, "text": "2.5%", "evidence": ev("interest of 2.5% per month")}
        ],
    }


def responder(
    kind: str, answer_for: Callable[[str, int], dict[str, Any] | str]
) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect: the answer from the document part sent (and the request number);
    the usage reported is the request's own estimate, and 50 output tokens."""
    count = {"n": 0}

    def respond(request: httpx.Request) -> httpx.Response:
        count["n"] += 1
        _, prompt, _ = sent(kind, request)
        return reply(
            kind, answer_for(document_of(prompt), count["n"]), request_estimate(kind, request), 50
        )

    return respond


def _non_ws(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("kind", KINDS)
def test_a_long_document_is_extracted_per_chunk_and_merged(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    def answer_for(part: str, n: int) -> dict[str, Any]:
        answer = chunk_answer(part)
        if n == 1:  # an invented document type first, the real one from the next chunk
            answer["document_type"] = {"value": "Lease", "evidence": ev("This lease agreement")}
        elif n == 2:
            answer["document_type"] = {
                "value": "Supply agreement",
                "evidence": ev("acceptance tests described in annex B"),
            }
        return answer

    route = router.post(URLS[kind]).mock(side_effect=responder(kind, answer_for))
    markdown = long_document()
    cfg = config(kind, max_input_tokens=2600, price_input_per_mtok=3.0, price_output_per_mtok=15.0)
    assert estimate_tokens(markdown) > cfg.max_input_tokens
    result = analysis.analyze(markdown, template="document_brief", config=cfg, http=http)

    calls = route.calls
    parts = [document_of(sent(kind, call.request)[1]) for call in calls]
    assert len(calls) > 2  # one request per chunk, no reduce request
    for i, call in enumerate(calls, 1):
        assert f"part {i} of {len(calls)}" in sent(kind, call.request)[1]
    assert _non_ws("".join(parts)) == _non_ws(markdown)  # together, the whole document, in order

    # Lists merged across chunks; the organization every chunk names is kept once, with the
    # first chunk's evidence; the same percentage in every chunk, once.
    assert [a["value"] for a in result.fields["amounts"]] == [i + 0.5 for i in range(1, SITES + 1)]
    assert [a["evidence"]["section"] for a in result.fields["amounts"]] == [
        f"Site {i}" for i in range(1, SITES + 1)
    ]
    assert [a["evidence"]["page"] for a in result.fields["amounts"]] == [
        (i - 1) // 4 + 1 for i in range(1, SITES + 1)
    ]
    organizations = result.fields["organizations"]
    assert len(organizations) == 1
    assert organizations[0]["evidence"]["quote"] == (
        "Fernhill Instruments Ltd delivers measurement racks to site 1"
    )
    assert (organizations[0]["evidence"]["page"], organizations[0]["evidence"]["section"]) == (
        1,
        "Site 1",
    )
    assert len(result.fields["percentages"]) == 1
    # A single field: the first grounded value of the chunks, the invented one unverified.
    assert result.fields["document_type"]["value"] == "Supply agreement"
    assert [(u["field"], u["reason"]) for u in result.unverified] == [
        ("document_type", "quote_not_found")
    ]

    # Usage and cost: every request summed.
    estimates = [request_estimate(kind, call.request) for call in calls]
    assert result.usage.requests == len(calls)
    assert result.usage.input_tokens == sum(estimates)
    assert result.usage.output_tokens == 50 * len(calls)
    assert result.usage.cost_usd == pytest.approx(
        (sum(estimates) * 3.0 + 50 * len(calls) * 15.0) / 1e6
    )


@pytest.mark.parametrize("kind", KINDS)
def test_merge_keeps_the_first_grounded_duplicate_and_reports_a_repeated_one_once(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    invented = {"value": "Globex", "evidence": ev("Globex will buy the racks")}
    undated = {"value": "next spring", "text": "someday", "evidence": ev("every quarter")}

    def answer_for(part: str, n: int) -> dict[str, Any]:
        sites = re.findall(r"For site (\d+) the buyer", part)
        # The same company in every chunk: an invented quote in the first chunk (asked twice,
        # since the dates are invalid), real ones in the others.
        first_chunk = sites[0] == "1"
        quote = (
            "Globex signs for" if first_chunk else f"delivers measurement racks to site {sites[0]}"
        )
        return {
            "organizations": [{"value": "Fernhill Instruments Ltd", "evidence": ev(quote)}],
            "people": [invented],  # the same invention in every chunk
            "dates": [undated],  # the same invalid value in every chunk
        }

    route = router.post(URLS[kind]).mock(side_effect=responder(kind, answer_for))
    result = analysis.analyze(
        long_document(), config=config(kind, max_input_tokens=2600), http=http
    )

    assert route.call_count > 2
    organizations = result.fields["organizations"]
    assert [o["value"] for o in organizations] == ["Fernhill Instruments Ltd"]
    second_prompt = sent(kind, route.calls[2].request)[1]  # after chunk 1 and its retry
    assert "part 2 of" in second_prompt
    second_part = document_of(second_prompt)
    first_site = re.findall(r"For site (\d+) the buyer", second_part)[0]
    assert organizations[0]["evidence"]["section"] == f"Site {first_site}"
    assert sorted((u["field"], u["reason"]) for u in result.unverified) == [
        ("dates", "invalid"),
        ("organizations", "quote_not_found"),
        ("people", "quote_not_found"),
    ]


def test_merge_of_chunk_answers() -> None:
    a = {"value": "Fernhill Instruments Ltd", "evidence": ev("Fernhill  Instruments **Ltd**")}
    a_again = {"value": "Fernhill Instruments Ltd", "evidence": ev("fernhill instruments ltd")}
    a_elsewhere = {"value": "Fernhill Instruments Ltd", "evidence": ev("Fernhill (the supplier)")}
    b = {"value": "Norrvik Components AS", "evidence": ev("Norrvik Components AS")}
    title_1 = {"value": "Supply agreement", "evidence": ev("Supply Agreement")}
    title_2 = {"value": "Master agreement", "evidence": ev("Master agreement")}
    merged = llm.merge(
        "document_brief",
        [
            {"organizations": [a, b], "title": None},
            {"organizations": [a_again, a_elsewhere], "title": title_1, "unknown": [1]},
            {"organizations": a, "title": title_2, "people": None},
        ],
    )
    # The same value with the same quote (once normalized) once; with another quote, kept for
    # finalize() to choose the first grounded one.
    assert merged["organizations"] == [a, b, a_elsewhere]
    assert merged["title"] == [title_1, title_2]  # candidates, in chunk order
    assert "document_type" not in merged  # no chunk gave one
    assert merged["people"] == []
    assert "unknown" not in merged


@pytest.mark.parametrize("kind", KINDS)
def test_every_request_stays_within_the_token_budget(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    def answer_for(part: str, n: int) -> dict[str, Any] | str:
        # Every chunk answered badly first (the longest errors that fit), then well.
        if n % 2:
            bad = [
                {"value": f"day {i}", "text": "x" * 300, "evidence": {"quote": ""}}
                for i in range(40)
            ]
            return {**chunk_answer(part), "dates": bad}
        return chunk_answer(part)

    route = router.post(URLS[kind]).mock(side_effect=responder(kind, answer_for))
    cfg = config(kind, max_input_tokens=2600)
    result = analysis.analyze(long_document() * 2, config=cfg, http=http, title="t" * 5000)

    estimates = [request_estimate(kind, call.request) for call in route.calls]
    retries = [sent(kind, call.request)[1] for call in route.calls[1::2]]
    assert len(estimates) > 4
    assert all("did not match the schema" in prompt for prompt in retries)
    assert max(estimates) <= cfg.max_input_tokens
    assert max(estimates) > cfg.max_input_tokens * 0.6  # the budget is used, not wasted
    assert result.fields["dates"] == []
    assert len(result.fields["amounts"]) == SITES


@pytest.mark.parametrize("kind", KINDS)
def test_usage_is_estimated_when_the_provider_reports_none(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    route = router.post(URLS[kind]).mock(return_value=reply(kind, BRIEF_ANSWER, None, None))
    result = run(kind, http, BRIEF_DOC, price_input_per_mtok=1.0)
    assert result.usage.requests == 1
    assert result.usage.input_tokens == request_estimate(kind, route.calls.last.request)
    assert result.usage.output_tokens == estimate_tokens(json.dumps(BRIEF_ANSWER))
    assert result.usage.cost_usd == pytest.approx(result.usage.input_tokens / 1e6)


# --- HTTP failures ----------------------------------------------------------------------------


def error_body(kind: str, status: int, error_type: str, message: str) -> httpx.Response:
    if kind == "anthropic":
        return httpx.Response(
            status, json={"type": "error", "error": {"type": error_type, "message": message}}
        )
    return httpx.Response(status, json={"error": {"message": message, "type": error_type}})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "code", "recoverable"),
    [
        (429, "summarizer_rate_limited", True),
        (500, "summarizer_unavailable", True),
        (503, "summarizer_unavailable", True),
        (529, "summarizer_unavailable", True),
        (400, "summarizer_rejected", False),
        (401, "summarizer_rejected", False),
        (404, "summarizer_rejected", False),
    ],
)
def test_http_errors_are_mapped_like_the_summarizers(
    router: respx.MockRouter,
    http: httpx.Client,
    kind: str,
    status: int,
    code: str,
    recoverable: bool,
) -> None:
    route = router.post(URLS[kind]).mock(
        return_value=error_body(kind, status, "some_error", "something went wrong")
    )
    with pytest.raises(JobError) as info:
        run(kind, http, BRIEF_DOC)
    assert route.call_count == 1  # an HTTP failure is the queue's to retry, not the extractor's
    assert info.value.code == code
    assert info.value.recoverable is recoverable
    assert f"HTTP {status}" in info.value.message
    assert "something went wrong" in info.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_a_failure_on_a_later_chunk_fails_the_analysis(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    router.post(URLS[kind]).mock(
        side_effect=[
            reply(kind, BRIEF_ANSWER),
            httpx.Response(503, json={"error": "overloaded"}),
        ]
    )
    with pytest.raises(JobError) as info:
        analysis.analyze(long_document(), config=config(kind, max_input_tokens=2600), http=http)
    assert (info.value.code, info.value.recoverable) == ("summarizer_unavailable", True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
        httpx.Response(200, text="<html>proxy says hi</html>"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(200, json={"content": None, "choices": [{"message": {"content": None}}]}),
    ],
    ids=["timeout", "connect", "html", "no-reply", "empty-reply"],
)
def test_transport_failures_and_unusable_bodies_are_recoverable(
    router: respx.MockRouter, http: httpx.Client, kind: str, failure: Any
) -> None:
    route = router.post(URLS[kind])
    if isinstance(failure, Exception):
        route.mock(side_effect=failure)
    else:
        route.mock(return_value=failure)
    with pytest.raises(JobError) as info:
        run(kind, http, BRIEF_DOC)
    assert info.value.recoverable is True
    assert info.value.code in ("summarizer_unavailable", "summarizer_bad_response")


# --- no key and no document text in logs or errors ----------------------------------------------

SECRET = "The secret merger with Globex closes on the fourteenth of June."


@pytest.fixture
def records(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], list[logging.LogRecord]]:
    # shared.platform.log.configure() stops "docflow" propagating to the root, where caplog listens.
    monkeypatch.setattr(logging.getLogger("docflow"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="docflow")
    return lambda: [r for r in caplog.records if r.name.startswith("docflow")]


def _rendered(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + " ".join(repr(v) for v in vars(record).values())


@pytest.mark.parametrize("kind", KINDS)
def test_no_key_or_document_text_in_logs_or_errors(
    router: respx.MockRouter,
    http: httpx.Client,
    kind: str,
    records: Callable[[], list[logging.LogRecord]],
) -> None:
    key = ANTHROPIC_KEY if kind == "anthropic" else OPENAI_KEY
    markdown = f"# Project Falcon\n\n{SECRET}\n"
    answer = {
        "organizations": [{"value": "Globex", "evidence": ev(SECRET)}],
        "risks": [{"text": SECRET, "evidence": ev("closes on the fourteenth of June")}],
    }
    route = router.post(URLS[kind]).mock(
        side_effect=[
            reply(kind, {"dates": [{"value": SECRET, "text": SECRET, "evidence": ev(SECRET)}]}),
            reply(kind, answer),  # a retry, then success
            error_body(kind, 401, "authentication_error", f"Incorrect API key: {key}"),
            error_body(kind, 400, "invalid_request_error", f"cannot process: {SECRET}"),
            error_body(kind, 429, "rate_limit_error", "Incorrect key sk-abc***wxyz"),
            reply(kind, f"Here is what I found: {SECRET}"),
            reply(kind, f"Here is what I found: {SECRET}"),
        ]
    )
    result = analysis.analyze(markdown, config=config(kind), http=http)
    assert result.fields["organizations"][0]["value"] == "Globex"
    errors = []
    for _ in range(4):
        with pytest.raises(JobError) as info:
            analysis.analyze(markdown, config=config(kind), http=http)
        errors.append(info.value)
    assert route.call_count == 7
    assert [e.code for e in errors] == [
        "summarizer_rejected",
        "summarizer_rejected",
        "summarizer_rate_limited",
        "analysis_invalid_output",
    ]

    logged = records()
    assert any(r.getMessage() == "analysis request" for r in logged)
    assert any(r.getMessage() == "analysis request failed" for r in logged)
    texts = [_rendered(r) for r in logged] + [f"{e} {e.message} {e!r}" for e in errors]
    for text in texts:
        assert key not in text
        assert "secret merger" not in text
        assert "fourteenth of June" not in text
        assert "sk-abc" not in text
    assert "Project Falcon" not in " ".join(texts)


# --- the summarizers take the Markdown too ----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_llm_summarizers_accept_markdown_and_read_the_text(
    router: respx.MockRouter, http: httpx.Client, kind: str
) -> None:
    summary = json.dumps({"summary": "An agreement.", "key_points": ["EUR 1.2 million"]})
    if kind == "anthropic":
        response = httpx.Response(
            200,
            json={
                "content": [{"type": "text", "text": summary}],
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
        )
    else:
        response = httpx.Response(200, json={"choices": [{"message": {"content": summary}}]})
    route = router.post(URLS[kind]).mock(return_value=response)
    text = "The buyer pays EUR 1.2 million within 30 days of delivery."
    result = make_summarizer(config(kind), http).summarize(
        text, title="a.pdf", markdown="<!-- page 1 -->\n# Payment\n\n**" + text + "**"
    )
    body = route.calls.last.request.content.decode()
    assert text in body
    assert "<!-- page 1 -->" not in body
    assert result.summary == "An agreement."

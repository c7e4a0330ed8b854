"""The gate every extracted value passes (`analysis.finalize`): a value is kept only when it is
valid, its quote is in the document and the quote says that value; whatever is rejected is kept
in `unverified` as JSON that PostgreSQL's jsonb takes."""

from __future__ import annotations

import json
from typing import Any

from shared.documents.analysis import analyze, finalize
from shared.documents.analysis.evidence import Locator

DOCUMENT = "# Results\n\nRevenue was $5 million in 2025. The deal was signed on 3 March 2026."


def run(field: str, item: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    fields, unverified = finalize("document_brief", {field: [item]}, Locator(DOCUMENT))
    json.dumps(unverified, allow_nan=False)  # what jsonb accepts
    return fields[field], unverified


def amount(value: float, text: str, quote: str, scale: str | None = "million") -> dict[str, Any]:
    return {"value": value, "currency": "USD", "scale": scale, "text": text,
            "evidence": {"quote": quote}}  # fmt: skip


def test_a_value_its_quote_states_is_kept() -> None:
    kept, unverified = run("amounts", amount(5, "$5 million", "Revenue was $5 million"))
    assert [(a["value"], a["scale"]) for a in kept] == [(5.0, "million")] and unverified == []
    kept, _ = run("dates", {"value": "2026-03-03", "text": "3 March 2026",
                            "evidence": {"quote": "signed on 3 March 2026"}})  # fmt: skip
    assert [d["value"] for d in kept] == ["2026-03-03"]


def test_a_real_quote_beside_an_invented_value_is_unverified() -> None:
    for field, item in (
        ("amounts", amount(42, "$42 billion", "Revenue was", "billion")),  # text not in quote
        ("amounts", amount(42, "$5 million", "Revenue was $5 million")),  # not the number
        ("amounts", amount(5, "$5 million", "Revenue was $5 million", "billion")),  # not the scale
        ("dates", {"value": "2031-09-09", "text": "9 September 2031",
                   "evidence": {"quote": "signed"}}),
        ("dates", {"value": "2026-03-04", "text": "3 March 2026",
                   "evidence": {"quote": "3 March 2026"}}),
        ("percentages", {"value": 14, "text": "5 million", "evidence": {"quote": "$5 million"}}),
    ):  # fmt: skip
        kept, unverified = run(field, item)
        assert kept == [], item
        assert [u["reason"] for u in unverified] == ["value_not_in_quote"], item


def test_an_impossible_date_is_invalid() -> None:
    kept, unverified = run("dates", {"value": "2026-13-45", "text": "3 March 2026",
                                     "evidence": {"quote": "3 March 2026"}})  # fmt: skip
    assert kept == [] and [u["reason"] for u in unverified] == ["invalid"]


def test_infinite_or_huge_values_never_reach_the_result() -> None:
    kept, unverified = run("amounts", amount(float("inf"), "$5 million", "$5 million"))
    assert kept == [] and unverified[0]["value"]["value"] is None
    kept, unverified = run("amounts", amount(5, "x" * 50_000, "$5 million"))
    assert kept == [] and len(unverified[0]["value"]["text"]) == 1000


def test_a_number_too_long_for_a_float_is_no_amount() -> None:
    """400 nines overflow to inf: before, that reached the job result and PostgreSQL refused
    the completion (jsonb has no Infinity), so the worker retried it for ever."""
    result = analyze("We paid $" + "9" * 400 + " to them.").as_result()
    text = json.dumps(result, allow_nan=False)
    assert "Infinity" not in text and result["fields"]["amounts"] == []


def test_a_quote_must_not_be_a_piece_of_a_longer_number() -> None:
    """A figure is not found inside a longer one: 5% in 25%, $10 in $102, $10.5 or $10k.
    A whole match elsewhere is found."""
    locator = Locator("Growth was 25% and costs $102, $10.5 or $10k.")
    for quote in ("5%", "$10", "5% and", "$1"):
        assert locator.find(quote) is None, quote
    assert Locator("Growth was 25%; margin 5%.").find("5%") is not None
    fields, unverified = finalize(
        "document_brief",
        {"percentages": [{"value": 5, "text": "5%", "evidence": {"quote": "5%"}}]},
        Locator("Growth was 25%."),
    )
    assert fields["percentages"] == [] and unverified[0]["reason"] == "quote_not_found"


def test_a_number_that_reads_two_ways_matches_either_reading() -> None:
    """`EUR 1.500` is fifteen hundred euros written the continental way, or one and a half:
    an extractor's value is what the quote says when it is either; anything else is not."""
    text = "# Rent\n\nThe rent is EUR 1.500 a month."

    def gate(value: float) -> list[str]:
        item = {"value": value, "currency": "EUR", "scale": None, "text": "EUR 1.500",
                "evidence": {"quote": "The rent is EUR 1.500 a month"}}  # fmt: skip
        _, unverified = finalize("document_brief", {"amounts": [item]}, Locator(text))
        return [u["reason"] for u in unverified]

    assert gate(1500) == [] and gate(1.5) == []
    assert gate(15) == ["value_not_in_quote"] and gate(150) == ["value_not_in_quote"]


def test_a_quote_stays_within_one_table_row() -> None:
    """A row's cells are one line, the rows apart: an LLM that quotes `$5 million | EBITDA`
    across two rows (revenue's figure beside the next row's label) has no evidence."""
    text = (
        "# Results\n\n| Item | 2025 |\n|---|---|\n"
        "| Revenue | $5 million |\n| EBITDA | $1 million |\n"
    )
    locator = Locator(text)
    assert locator.find("| Revenue | $5 million |") == (None, "Results")
    assert locator.find("Revenue $5 million") == (None, "Results")
    assert locator.find("$5 million | EBITDA") is None
    assert locator.find("$5 million EBITDA") is None
    assert locator.find("--- ---") is None  # the delimiter row is no text

    metric = {"metric": "EBITDA", "value": 5, "currency": "USD", "scale": "million",
              "text": "$5 million", "evidence": {"quote": "$5 million | EBITDA"}}  # fmt: skip
    fields, unverified = finalize("financial", {"ebitda": [metric]}, locator)
    assert fields["ebitda"] == [] and [u["reason"] for u in unverified] == ["quote_not_found"]

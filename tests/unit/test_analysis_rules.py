"""The offline extractor (shared/documents/analysis/rules.py, dates.py, amounts.py).

Each form it reads, what it must not read (bare years, quarters, versions, numbers without a
currency), the ambiguous dates it sends to `unverified`, the time budget, and the grounding of
every quote (evidence.Locator), alone and through analyze() for both templates.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.documents.analysis import amounts, analyze, rules, templates
from shared.documents.analysis.evidence import Locator


def brief(markdown: str, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return rules.extract(
        markdown,
        template="document_brief",
        title=kwargs.get("title"),
        author=kwargs.get("author"),
        **{k: v for k, v in kwargs.items() if k == "budget_seconds"},
    )


def financial(markdown: str, **kwargs: Any) -> dict[str, Any]:
    raw, _ = rules.extract(
        markdown, template="financial", title=kwargs.get("title"), author=kwargs.get("author")
    )
    return raw


def date_values(markdown: str) -> list[tuple[str, str]]:
    return [(d["text"], d["value"]) for d in brief(markdown)[0]["dates"]]


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "written", "iso"),
    [
        ("Signed on 14 March 2026 in Oslo.", "14 March 2026", "2026-03-14"),
        ("Signed on March 14, 2026 in Oslo.", "March 14, 2026", "2026-03-14"),
        ("Signed on the 14th of March 2026.", "14th of March 2026", "2026-03-14"),
        ("Signed on Mar. 14, 2026 in Oslo.", "Mar. 14, 2026", "2026-03-14"),
        ("Signed on 14-Mar-2026 in Oslo.", "14-Mar-2026", "2026-03-14"),
        ("Signed on 2026-03-14 in Oslo.", "2026-03-14", "2026-03-14"),
        ("Signed on 14.03.2026 in Oslo.", "14.03.2026", "2026-03-14"),
        ("Signed on 14/03/2026 in Oslo.", "14/03/2026", "2026-03-14"),
        ("Signed on 3/14/2026 in Oslo.", "3/14/2026", "2026-03-14"),
        ("Signed on 05/05/2026 in Oslo.", "05/05/2026", "2026-05-05"),
        ("Signed on 29 February 2028 (a leap year).", "29 February 2028", "2028-02-29"),
        ("Launch in March 2026.", "March 2026", "2026-03"),
        ("Launch in Sept. 2026.", "Sept. 2026", "2026-09"),
        ("LAUNCH IN MARCH 2026.", "MARCH 2026", "2026-03"),
    ],
)
def test_each_date_form_is_read_to_iso(sentence: str, written: str, iso: str) -> None:
    assert date_values(sentence) == [(written, iso)]


def test_a_range_within_a_month_gives_both_ends() -> None:
    assert date_values("The fair runs 1-3 March 2026.") == [
        ("1-3 March 2026", "2026-03-01"),
        ("1-3 March 2026", "2026-03-03"),
    ]
    assert date_values("The fair runs March 1-3, 2026.") == [
        ("March 1-3, 2026", "2026-03-01"),
        ("March 1-3, 2026", "2026-03-03"),
    ]


def test_an_ambiguous_numeric_date_goes_to_unverified_never_to_fields() -> None:
    raw, unverified = brief("The meeting is on 03/04/2026 at the office.")
    assert raw["dates"] == []
    assert unverified == [
        {
            "field": "dates",
            "value": {
                "text": "03/04/2026",
                "readings": ["2026-04-03", "2026-03-04"],
                "evidence": {"quote": "03/04/2026"},
            },
            "reason": "ambiguous_date",
        }
    ]
    analysis = analyze("The meeting is on 03/04/2026 at the office.")
    assert analysis.fields["dates"] == []
    assert [u["reason"] for u in analysis.unverified] == ["ambiguous_date"]


@pytest.mark.parametrize(
    ("text", "readings"),
    [
        ("Due on 14/03/26 as agreed.", ["2026-03-14"]),
        ("Shipped 12/01/24.", ["2024-01-12", "2024-12-01"]),
    ],
)
def test_a_two_digit_year_is_unverified_with_its_readings(text: str, readings: list[str]) -> None:
    """The century of 14/03/26 is a guess: never a date in the fields."""
    raw, unverified = brief(text)
    assert raw["dates"] == []
    assert [(u["reason"], sorted(u["value"]["readings"])) for u in unverified] == [
        ("ambiguous_date", readings)
    ]


@pytest.mark.parametrize(
    "text",
    ["Version 3.4.26 ships.", "Code 12-01-24 applies."],
)
def test_a_two_digit_year_with_dots_or_dashes_is_not_read(text: str) -> None:
    raw, unverified = brief(text)
    assert (raw["dates"], unverified) == ([], [])


@pytest.mark.parametrize(
    "text",
    [
        "It happened on 31 February 2026.",
        "It happened on 30/02/2026.",
        "It happened on 2026-02-30.",
        "It happened on 29 February 2027.",
        "It happened on 2026-13-01.",
        "It happened on 32.01.2026.",
    ],
)
def test_dates_not_in_the_calendar_are_rejected(text: str) -> None:
    raw, unverified = brief(text)
    assert raw["dates"] == [] and unverified == []


@pytest.mark.parametrize(
    "text",
    [
        "Founded in 2026 and listed in 1999.",
        "Results for Q3 2026 and FY2025.",
        "The call starts at 10:30 on Monday.",
        "Upgrade to version 1.2.3 or 2.10.2026.1 now.",
        "The server at 10.1.12.2026 answered.",
        "Due on 14 March, every year.",
        "We march 2026 soldiers.",
    ],
)
def test_bare_years_quarters_times_versions_and_yearless_dates_are_not_dates(text: str) -> None:
    raw, unverified = brief(text)
    assert raw["dates"] == [] and unverified == []


# --- amounts -------------------------------------------------------------------------------------


def amount_values(text: str) -> list[tuple[str, float, str | None, str | None]]:
    return [(a["text"], a["value"], a["currency"], a["scale"]) for a in brief(text)[0]["amounts"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Revenue was $4.2 million.", ("$4.2 million", 4.2, "USD", "million")),
        ("Revenue was €1.5bn.", ("€1.5bn", 1.5, "EUR", "billion")),
        ("Revenue was £850k.", ("£850k", 850.0, "GBP", "thousand")),
        ("Revenue was ¥500 thousand.", ("¥500 thousand", 500.0, "JPY", "thousand")),
        ("Revenue was US$3.9m.", ("US$3.9m", 3.9, "USD", "million")),
        ("Revenue was A$12 mn.", ("A$12 mn", 12.0, "AUD", "million")),
        ("Revenue was C$7 tn.", ("C$7 tn", 7.0, "CAD", "trillion")),
        ("Revenue was NZ$2 trillion.", ("NZ$2 trillion", 2.0, "NZD", "trillion")),
        ("Revenue was HK$1,000.", ("HK$1,000", 1000.0, "HKD", None)),
        ("Revenue was S$2.5B.", ("S$2.5B", 2.5, "SGD", "billion")),
        ("Revenue was $3MM.", ("$3MM", 3.0, "USD", "million")),
        ("Revenue was $3 M.", ("$3 M", 3.0, "USD", "million")),
        ("Revenue was $0.5b.", ("$0.5b", 0.5, "USD", "billion")),
        ("Revenue was $7K.", ("$7K", 7.0, "USD", "thousand")),
        ("Revenue was kr 500.", ("kr 500", 500.0, None, None)),
        ("Revenue was 500 kr.", ("500 kr", 500.0, None, None)),
        ("Revenue was USD 5.", ("USD 5", 5.0, "USD", None)),
        ("Revenue was 5 USD.", ("5 USD", 5.0, "USD", None)),
        ("Revenue was NOK 12.5 million.", ("NOK 12.5 million", 12.5, "NOK", "million")),
        ("Revenue was 12.5 million NOK.", ("12.5 million NOK", 12.5, "NOK", "million")),
        ("Revenue was 3 million dollars.", ("3 million dollars", 3.0, "USD", "million")),
        (
            "Revenue was 3 million Australian dollars.",
            ("3 million Australian dollars", 3.0, "AUD", "million"),
        ),
        ("Revenue was 10 euros.", ("10 euros", 10.0, "EUR", None)),
        ("Revenue was 20 pounds sterling.", ("20 pounds sterling", 20.0, "GBP", None)),
        ("Revenue was 900 yen.", ("900 yen", 900.0, "JPY", None)),
        ("Revenue was 4 billion kroner.", ("4 billion kroner", 4.0, None, "billion")),
        ("Revenue was $1,234,567.89.", ("$1,234,567.89", 1234567.89, "USD", None)),
        ("Revenue was 1 234 567 SEK.", ("1 234 567 SEK", 1234567.0, "SEK", None)),
        ("Revenue was €1.234.567,89.", ("€1.234.567,89", 1234567.89, "EUR", None)),
        ("Revenue was 1.234,56 €.", ("1.234,56 €", 1234.56, "EUR", None)),
        ("The loss was -$5m.", ("-$5m", -5.0, "USD", "million")),
        ("| Write-off | ($1,200) |", ("($1,200)", -1200.0, "USD", None)),
    ],
)
def test_amounts_with_each_marker_and_scale(
    text: str, expected: tuple[str, float, str | None, str | None]
) -> None:
    assert amount_values(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # continental currencies: a lone dot with three digits after it groups thousands
        ("Rent is EUR 1.500 a month.", ("EUR 1.500", 1500.0, "EUR", None)),
        ("Rent is 12.345 €.", ("12.345 €", 12345.0, "EUR", None)),
        ("Rent is kr 1.500.", ("kr 1.500", 1500.0, None, None)),
        # ... but not with a scale word, nor in currencies written the English way
        ("Debt is EUR 1.500 million.", ("EUR 1.500 million", 1.5, "EUR", "million")),
        ("Fuel cost $3.499 a gallon.", ("$3.499", 3.499, "USD", None)),
        ("A fee of £1.250 applies.", ("£1.250", 1.25, "GBP", None)),
        # a leading zero never starts a thousands group: 0,500 is a half
        ("The levy is €0,500 per unit.", ("€0,500", 0.5, "EUR", None)),
        ("The levy is 0,500 EUR per unit.", ("0,500 EUR", 0.5, "EUR", None)),
        # a unit is no scale: twelve euros a square metre, not twelve million
        ("Rent is €12 m² a month.", ("€12", 12.0, "EUR", None)),
        ("Storage is $3 m³ a day.", ("$3", 3.0, "USD", None)),
    ],
)
def test_separators_read_as_the_currency_writes_them(
    text: str, expected: tuple[str, float, str | None, str | None]
) -> None:
    assert amount_values(text) == [expected]


@pytest.mark.parametrize(
    ("written", "readings"),
    [
        ("1.500", {1.5, 1500.0}),
        ("1,500", {1.5, 1500.0}),
        ("0,500", {0.5}),
        ("12.5", {12.5}),
        ("1,234,567", {1234567.0}),
        ("1.234,56", {1234.56}),
        ("1,1,1", set()),
    ],
)
def test_every_reading_of_a_written_number(written: str, readings: set[float]) -> None:
    assert amounts.readings(written) == readings


def test_a_range_shares_the_scale_written_after_it() -> None:
    assert amount_values("Guidance is $1.2-1.5 million.") == [
        ("$1.2-1.5 million", 1.2, "USD", "million"),
        ("$1.2-1.5 million", 1.5, "USD", "million"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "We sold 4,200 units for 12.5 each in 2025.",
        "Revenue rose to 4.2 million.",
        "Table 3 shows 1,234,567 rows.",
        "Weigh 5 pounds of flour.",
        "A parenthetical (1,200) is no amount without a currency.",
        "Nominee $2(PER) must be confirmed by $1(ORG).",
        "Values 1,1,1 USD are malformed.",
    ],
)
def test_numbers_without_a_currency_marker_are_not_amounts(text: str) -> None:
    assert amount_values(text) == []


def test_an_amount_has_its_sentence_or_row_as_context() -> None:
    raw, _ = brief(
        "Costs were flat. Revenue reached $4.2m in 2025. Margins held.\n\n"
        "| Item | Value |\n|---|---|\n| Rent | €1,200 |"
    )
    contexts = [a["context"] for a in raw["amounts"]]
    assert contexts == ["Revenue reached $4.2m in 2025.", "Rent | €1,200"]


# --- percentages ---------------------------------------------------------------------------------


def test_percentages_with_sign_and_words() -> None:
    raw, _ = brief(
        "Sales grew 12%, margins fell -3.5 percent, churn was 4 per cent and tax 22,5 %. "
        "Guidance is 5-10% and the rate rose 2 percentage points (2pp)."
    )
    assert [(p["text"], p["value"]) for p in raw["percentages"]] == [
        ("12%", 12.0),
        ("-3.5 percent", -3.5),
        ("4 per cent", 4.0),
        ("22,5 %", 22.5),
        ("10%", 10.0),
    ]


# --- organizations, title, type ------------------------------------------------------------------


def test_organizations_by_legal_form_suffix() -> None:
    raw, _ = brief(
        "The Acme Holdings Inc. board met Globex GmbH, Equinor ASA, Nestlé S.A. and "
        "Procter & Gamble Co. on Monday. Yesterday Initech Ltd said no. Acme Holdings Inc. "
        "agreed. In March Umbrella Pty Ltd joined. KNOWN AS THE BUYER."
    )
    assert [o["value"] for o in raw["organizations"]] == [
        "Acme Holdings Inc.",
        "Globex GmbH",
        "Equinor ASA",
        "Nestlé S.A.",
        "Procter & Gamble Co.",
        "Yesterday Initech Ltd",
        "Umbrella Pty Ltd",
    ]


def test_a_suffix_inside_a_word_is_no_organization() -> None:
    raw, _ = brief("The Annual AGM Includes Incentives. Our Company Inclusive of costs.")
    assert raw["organizations"] == []


def test_organizations_from_metadata_and_title() -> None:
    markdown = "# Fernhill Instruments - Annual Report 2026\n\nFernhill Instruments AS grew."
    raw, _ = brief(markdown, author="Jane Smith")
    assert raw["title"] == {
        "value": "Fernhill Instruments - Annual Report 2026",
        "evidence": {"quote": "Fernhill Instruments - Annual Report 2026"},
    }
    assert raw["document_type"] == {
        "value": "annual report",
        "evidence": {"quote": "Annual Report"},
    }
    assert [o["value"] for o in raw["organizations"]] == ["Fernhill Instruments AS"]
    assert financial(markdown)["company"]["value"] == "Fernhill Instruments AS"


def test_a_heading_on_every_page_is_not_the_title() -> None:
    """One level-1 heading is the title; one per page titles the pages, and the metadata
    title (in the text) wins over a heading."""
    assert brief("# Annual Report\n\nText.")[0]["title"]["value"] == "Annual Report"
    pages = "<!-- page 1 -->\n# Page 1: Overview\n\nA.\n<!-- page 2 -->\n# Page 2: Results\n\nB."
    assert brief(pages)[0]["title"] is None
    raw, _ = brief("# Overview\n\nThe Annual Report 2026 follows.", title="Annual Report 2026")
    assert raw["title"]["value"] == "Annual Report 2026"


def test_metadata_title_only_when_it_is_in_the_text() -> None:
    assert brief("Plain text.", title="Board Minutes")[0]["title"] is None
    raw, _ = brief("Board Minutes\n\nPlain text.", title="Board Minutes")
    assert raw["title"]["value"] == "Board Minutes"
    assert raw["document_type"]["value"] == "minutes"


@pytest.mark.parametrize(
    ("heading", "kind"),
    [
        ("# Invoice #1234", "invoice"),
        ("# Master Services Agreement", "agreement"),
        ("# Minutes of the Board Meeting, 14 March 2026", "minutes"),
        ("# Confidential Information Memorandum", "confidential information memorandum"),
        ("# Privacy Policy", "policy"),
        ("# FAQ", "FAQ"),
        ("# Contract management best practices", None),
        ("# Product sync, 14 November", None),
    ],
)
def test_document_type_from_the_title(heading: str, kind: str | None) -> None:
    found = brief(heading + "\n\nText.")[0]["document_type"]
    assert (found and found["value"]) == kind


# --- statements ----------------------------------------------------------------------------------


def test_obligations_and_risks_come_from_labeled_places_only() -> None:
    raw, _ = brief(
        "# Notes\n\nWe discussed risk appetite at length.\n\n"
        "## Action items\n\n- Send the draft to legal by Friday\n- Book the venue\n\n"
        "## Risks\n\n- Supplier delays could push the launch.\n\n"
        "## Terms\n\nThe supplier must deliver the goods within 30 days. Must we? Yes.\n"
    )
    assert [o["text"] for o in raw["obligations"]] == [
        "Send the draft to legal by Friday",
        "Book the venue",
        "The supplier must deliver the goods within 30 days.",
    ]
    assert [r["text"] for r in raw["risks"]] == ["Supplier delays could push the launch."]


def test_statements_are_capped() -> None:
    items = "\n".join(f"- Item number {i} must be done soon" for i in range(100))
    raw, _ = brief("## Next steps\n\n" + items)
    assert len(raw["obligations"]) == rules.MAX_STATEMENTS


# --- financial -----------------------------------------------------------------------------------

REPORT = """# Northwind AS - Annual Report 2025

Northwind AS operates in the marine instrumentation industry and has 1,250 employees.
Revenue was NOK 812 million in FY2025, up 12% on the year. EBITDA was NOK 140 million for
the year ended 31 December 2025. Net income was NOK 61 million in FY2025, while costs of
NOK 20 million were written off. Sales and marketing expenses were NOK 40 million in FY2025.

| NOK | FY2025 | FY2024 |
|---|---|---|
| Revenue | NOK 812m | NOK 725m |
| EBITDA margin | 17% | 15% |

## Deal terms

- The seller offers 100% of the shares for cash.

## Key risks

- Currency exposure to the euro.
"""


def test_financial_figures_with_period_and_currency() -> None:
    raw = financial(REPORT)
    assert raw["company"]["value"] == "Northwind AS"
    assert raw["industry"]["value"] == "marine instrumentation"
    assert [p["value"] for p in raw["periods"]] == [
        "FY2025",
        "year ended 31 December 2025",
        "FY2024",
    ]
    assert [(m["value"], m["currency"], m["scale"], m["period"]) for m in raw["revenue"]] == [
        (812.0, "NOK", "million", "FY2025"),
        (812.0, "NOK", "million", "FY2025"),
        (725.0, "NOK", "million", "FY2024"),
    ]
    assert [(m["value"], m["period"]) for m in raw["ebitda"]] == [
        (140.0, "year ended 31 December 2025")
    ]
    assert [(m["value"], m["period"]) for m in raw["net_income"]] == [(61.0, "FY2025")]
    assert [g["value"] for g in raw["growth_rates"]] == [12.0]
    assert [(c["value"], c["text"]) for c in raw["headcount"]] == [(1250, "1,250 employees")]
    assert [d["text"] for d in raw["deal_terms"]] == [
        "The seller offers 100% of the shares for cash."
    ]
    assert [r["text"] for r in raw["risks"]] == ["Currency exposure to the euro."]


def test_industry_and_headcount_are_not_guessed() -> None:
    raw = financial("In the same industry, 2025 employees is a year. We met 40 people.")
    assert raw["industry"] is None
    assert [c["value"] for c in raw["headcount"]] == [40]


# --- budget, caps, grounding ---------------------------------------------------------------------


def test_a_budget_of_zero_stops_early_and_says_so() -> None:
    raw, unverified = brief("Signed on 14 March 2026 for $5m.\n\n" * 100, budget_seconds=0)
    assert raw["dates"] == [] and raw["amounts"] == []
    assert unverified == [
        {"field": "_truncated", "value": {"reason": "time_budget"}, "reason": "time_budget"}
    ]


def test_values_per_field_are_capped() -> None:
    text = " ".join(f"${i}" for i in range(1, 2000))
    assert len(brief(text)[0]["amounts"]) == rules.MAX_VALUES


def test_every_quote_is_found_in_the_document() -> None:
    markdown = (
        REPORT
        + "\n<!-- page 2 -->\n\nSee [the **annual** filing](https://example.com/2025/03/04) of "
        "Globex Corp. dated 14\nMarch 2026, for **$4.2 million** and *12.5%* growth.\n"
    )
    for template in templates.TEMPLATES:
        raw, _ = rules.extract(markdown, template=template, title=None, author=None)
        locator = Locator(markdown)
        quotes = [
            value["evidence"]["quote"]
            for field in raw.values()
            for value in (field if isinstance(field, list) else [field])
            if value is not None
        ]
        assert len(quotes) > 10
        assert [q for q in quotes if not locator.contains(q)] == []


@pytest.mark.parametrize("template", list(templates.TEMPLATES))
def test_both_templates_through_analyze(template: str) -> None:
    analysis = analyze(REPORT + "\nSigned 14 March 2026 and 03/04/2026.\n", template=template)
    assert analysis.template == template
    assert set(analysis.fields) == set(templates.get(template).model_fields)
    # everything extracted was valid and grounded: only the ambiguous date is unverified
    expected = ["ambiguous_date"] if template == "document_brief" else []
    assert [u["reason"] for u in analysis.unverified] == expected
    filled = [
        value
        for value in analysis.fields.values()
        for value in (value if isinstance(value, list) else [value])
        if value is not None
    ]
    assert filled and all(value["evidence"]["quote"] for value in filled)
    if template == "document_brief":
        assert analysis.fields["dates"][-1]["value"] == "2026-03-14"
        assert analysis.fields["amounts"][0]["evidence"]["section"] is not None
    else:
        assert analysis.fields["revenue"][0]["value"] == 812.0


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("The range is between €12m - €15m this year.", [12.0, 15.0]),
        ("Revenue - $5 million for the year.", [5.0]),
        ("The purchase price (USD 5 million) was paid.", [5.0]),
        ("The fee ($250) is due.", [250.0]),
        ("| Loss | ($1,200) |", [-1200.0]),
        ("A refund of -$84.00 was made.", [-84.0]),
    ],
)
def test_a_minus_or_parentheses_make_an_amount_negative_only_as_a_sign(
    text: str, values: list[float]
) -> None:
    """A spaced dash is a range or an aside, and parentheses in prose an aside; only a minus
    that touches the amount, or parentheses in a table row (accounting), make it negative."""
    raw, _ = brief(text)
    assert [a["value"] for a in raw["amounts"]] == values


def test_a_spaced_dash_between_percentages_is_a_range() -> None:
    raw, _ = brief("Sales rose 5% - 10% and margins fell -3% this year.")
    assert [p["value"] for p in raw["percentages"]] == [5.0, 10.0, -3.0]

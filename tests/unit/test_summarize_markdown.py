"""The extractive summarizer on Markdown: what never becomes a key point, section coverage, and
tabular documents described with figures computed here, from the same cells.

Each document is written in the test, the way the extractors write Markdown: PDF pages with
`<!-- page N -->` markers and a footer per page, a table of contents with dot leaders, a README
with badges, code fences and HTML, GFM tables with escaped pipes.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter

import pytest

from shared.documents.summarize import ExtractiveSummarizer, SummarizerConfig, Summary
from shared.documents.summarize import candidates as candidates_module
from shared.documents.summarize import extractive as extractive_module

PROSE = [
    "Fernhill Instruments grew revenue by twelve percent in the year to December.",
    "The growth came mostly from the new laboratory sensors sold to hospitals.",
    "Operating costs rose more slowly than revenue because the factory was automated.",
    "The board proposes a dividend of forty cents per share for the full year.",
    "Export sales to Asia doubled after the distribution agreement with a Singapore partner.",
    "The company hired sixty engineers to speed up the development of the sensor range.",
    "Cash reserves cover more than two years of planned investment in new products.",
    "The main risk remains the dependence on a single supplier of sensor chips.",
]


def _summarize(markdown: str, **config: int) -> Summary:
    return ExtractiveSummarizer(SummarizerConfig(**config)).summarize(
        "plain text is not read when Markdown is given", markdown=markdown
    )


def _shown(result: Summary) -> list[str]:
    return [result.summary, *result.key_points]


def _sentences(result: Summary) -> set[str]:
    """Every sentence the result shows (the summary split at its sentence ends)."""
    return {*re.split(r"(?<=[.!?])\s+", result.summary), *result.key_points}


# --- what is never a candidate ------------------------------------------------------------------


def test_page_footers_repeated_on_every_page_are_never_shown() -> None:
    pages = []
    for number, pair in enumerate(zip(PROSE[::2], PROSE[1::2], strict=True), 1):
        pages.append(
            f"<!-- page {number} -->\n"
            f"Fernhill Instruments - Annual Report 2026 - page {number} of 4\n\n"
            f"{pair[0]} {pair[1]}\n\n"
            f"CONFIDENTIAL {number}\n"
        )
    result = _summarize("\n".join(pages))
    assert result.summary
    assert len(result.key_points) == 5
    for text in _shown(result):
        assert "Annual Report 2026" not in text
        assert "CONFIDENTIAL" not in text
    assert _sentences(result) <= set(PROSE)


def test_a_line_repeated_three_times_is_boilerplate_even_without_pages() -> None:
    disclaimer = "This draft is confidential and for internal review only."
    markdown = "\n\n".join([PROSE[0], disclaimer, PROSE[1], disclaimer, PROSE[2], disclaimer])
    result = _summarize(markdown)
    assert all(disclaimer not in text for text in _shown(result))
    twice = "\n\n".join([PROSE[0], disclaimer, PROSE[1], disclaimer, PROSE[2]])
    # Twice is not a pattern: the sentence may be shown.
    assert disclaimer in " ".join(_shown(_summarize(twice, key_points=5)))


def test_a_sentence_cut_by_a_page_break_is_joined() -> None:
    markdown = (
        "<!-- page 1 -->\n"
        "The supplier agreement renews every March unless either party\n\n"
        "<!-- page 2 -->\n"
        "gives written notice three months before the renewal date.\n"
    )
    result = _summarize(markdown)
    assert result.summary == (
        "The supplier agreement renews every March unless either party gives written notice "
        "three months before the renewal date."
    )


def test_table_of_contents_lines_are_never_shown() -> None:
    markdown = "\n\n".join(
        [
            "# Annual report",
            "## Contents",
            "Letter from the chair ........................ 3",
            "Financial review . . . . . . . . . . . . . . . 7",
            "Risks and uncertainties \u2026\u2026\u2026\u2026 12",
            "Outlook for the coming year 19",
            "Notes to the accounts and other statements xiv",
            "## Letter from the chair",
            " ".join(PROSE[:4]),
            "## Financial review",
            " ".join(PROSE[4:]),
            "The appendix lists the subsidiaries ............ 42",
        ]
    )
    result = _summarize(markdown)
    assert _sentences(result) <= set(PROSE)
    for text in _shown(result):
        assert "...." not in text and ". . ." not in text and "\u2026\u2026" not in text
        assert not re.search(r"\s\d+$", text)


def test_headings_are_never_shown_and_list_markers_are_stripped() -> None:
    markdown = (
        "# Product sync, 14 November\n\n"
        "Attendees\n"
        "=========\n\n"
        "**Decisions**\n\n"
        "- Summaries are extractive by default for every new customer.\n"
        "* The language model summarizer stays an opt-in setting per tenant.\n"
        "1. Key points must never repeat the page footer of a report.\n"
        "2) [ ] Ship the Markdown summaries before the end of the quarter.\n"
        "- [x] The team reviewed the demo documents and their key points.\n\n"
        "## Next steps\n\n"
        "> The next sync takes place in two weeks with the design team.\n"
    )
    result = _summarize(markdown)
    expected = {
        "Summaries are extractive by default for every new customer.",
        "The language model summarizer stays an opt-in setting per tenant.",
        "Key points must never repeat the page footer of a report.",
        "Ship the Markdown summaries before the end of the quarter.",
        "The team reviewed the demo documents and their key points.",
        "The next sync takes place in two weeks with the design team.",
    }
    assert _sentences(result) <= expected
    assert len(_sentences(result)) == 6
    for text in _shown(result):
        assert not text.startswith(("#", "-", "*", ">", "1.", "2)", "["))
        assert "Product sync" not in text and "Attendees" not in text
        assert "Decisions" not in text and "Next steps" not in text


def test_badges_images_links_html_and_code_are_removed_or_skipped() -> None:
    markdown = (
        "# docflow\n\n"
        "[![Build](https://img.shields.io/badge/build-passing-green.svg)](https://ci.example)"
        " [![PyPI](https://img.shields.io/pypi/v/docflow.svg)](https://pypi.org/project/x)\n\n"
        '<p align="center"><img src="logo.png" alt="docflow logo" width="200"></p>\n\n'
        "<!-- a comment that spans\nseveral lines of the README -->\n\n"
        "Docflow turns uploaded documents into text, summaries and structured analysis.\n\n"
        "Read the [installation guide](https://docs.example/install) before the first "
        "upload, and use `docflow upload` with **one** file at a time.\n\n"
        "```python\n"
        "summary = summarize(text, markdown=markdown)  # this line is code and never a point\n"
        "print(summary.key_points)\n"
        "```\n\n"
        "~~~\n"
        "the tilde fence holds code too, and its content is never a key point at all\n"
        "~~~\n\n"
        "https://docflow.example/documentation/getting-started\n\n"
        "The worker runs extraction in a sandbox with <b>strict</b> memory and time limits.\n\n"
        "The service keeps every document encrypted at rest\\* and deletes it on request.\n"
    )
    result = _summarize(markdown, key_points=5)
    shown = _sentences(result)
    assert shown == {
        "Docflow turns uploaded documents into text, summaries and structured analysis.",
        "Read the installation guide before the first upload, and use docflow upload with one "
        "file at a time.",
        "The worker runs extraction in a sandbox with strict memory and time limits.",
        "The service keeps every document encrypted at rest* and deletes it on request.",
    }
    for text in _shown(result):
        assert not re.search(r"\]\(|!\[|<[a-z/!]|```|~~~|https?://|\bprint\(|\*\*", text)


def test_tables_rows_urls_and_fragments_are_never_candidates() -> None:
    markdown = (
        "Short line here\n\n"
        "ALL CAPITALS LINE THAT SHOUTS AT EVERY READER\n\n"
        "Revenue Growth Margin Outlook Summary Table\n\n"
        "| Region | Revenue | Notes |\n"
        "|---|---|---|\n"
        "| North | 1200 | the northern region sold more sensors than planned this year |\n"
        "| South | 900 | the southern region waits for the new distribution agreement |\n\n"
        "| a raw row | without a delimiter | still a table row and never a sentence |\n\n"
        "<https://example.com/a/very/long/link/that/is/alone/on/its/line>\n\n"
        "www.example.com/another/link/alone/on/a/line/of/its/own\n\n" + " ".join(PROSE[:3])
    )
    result = _summarize(markdown)
    assert _sentences(result) <= set(PROSE[:3])
    assert all("|" not in text for text in _shown(result))


@pytest.mark.parametrize(
    ("sentence", "prose"),
    [
        ("Four words only here.", False),
        ("THE END OF THE DOCUMENT IS HERE NOW.", False),
        ("Instructions For Form 1040NR And Its Schedules", False),
        ("x = compute(a, b); y = other(c) if d else e", False),
        ("pypdf._page.MERGE_CROP_BOX = 'trimbox' is set here", False),
        ("Table 3 2021 2022 2023 4,512 5,120 6,003 7.2% 8.1%", False),
        ("Hello world Hello world Hello world Hello world Hello world", False),
        ("Chin a Ocea n Shippin g Compan y Lin e Ltd and more", False),
        ("Introduction .......... 4 and more words here", False),
        ("| cell | cell | a table row with enough words in it |", False),
        ("The supplier agreement renews every March.", True),
        ("A tachyon walks into a bar.", True),
        ("The fee (in USD) is due on receipt of the invoice.", True),
        ("東京の会議は来週の月曜日です。", True),
    ],
)
def test_is_prose(sentence: str, prose: bool) -> None:
    assert candidates_module.is_prose(sentence) is prose


def test_markdown_none_reads_the_text_as_markdown() -> None:
    text = "# Quarterly report\n\n" + " ".join(PROSE[:3]) + "\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    result = ExtractiveSummarizer().summarize(text)
    assert _sentences(result) <= set(PROSE[:3])
    assert "Quarterly report" not in result.summary


# --- section coverage ---------------------------------------------------------------------------

SECTIONS = {
    "Revenue": [
        "Revenue from sensors rose because hospitals bought more sensors and sensor kits.",
        "Sensor revenue from hospitals grew in every quarter of the year.",
        "Hospitals renewed their sensor contracts, which lifted sensor revenue again.",
        "The sensor kits for hospitals were the largest source of revenue.",
        "Revenue per hospital rose as each hospital bought more sensor kits.",
        "Sensor revenue is expected to keep growing with new hospital contracts.",
    ],
    "People": [
        "The company hired sixty engineers for the development team this year.",
        "Staff turnover fell to four percent after the new training programme started.",
    ],
    "Sustainability": [
        "The factory now runs on solar power for most of the working day.",
        "Packaging waste was halved by switching to recycled cardboard boxes.",
    ],
    "Risks": [
        "The main risk remains the dependence on a single supplier of chips.",
        "A longer outage at that supplier would delay deliveries by several weeks.",
    ],
    "Outlook": [
        "The board expects moderate growth and stable margins next year.",
        "New markets in Asia should open after the distribution agreement is signed.",
    ],
}


def _sectioned() -> str:
    parts = ["# Fernhill Instruments annual report"]
    for title, sentences in SECTIONS.items():
        parts += [f"## {title}", " ".join(sentences)]
    return "\n\n".join(parts)


def test_key_points_cover_the_major_sections() -> None:
    result = _summarize(_sectioned(), summary_sentences=2, key_points=5)
    section_of = {s: title for title, sentences in SECTIONS.items() for s in sentences}
    assert all(p in section_of for p in result.key_points)
    covered = {section_of[p] for p in result.key_points}
    assert len(covered) >= 4  # not five points about sensor revenue
    # In document order.
    order = list(section_of)
    assert [order.index(p) for p in result.key_points] == sorted(
        order.index(p) for p in result.key_points
    )
    # Without headings the same text is ranked as one block: revenue dominates.
    flat = "\n\n".join(" ".join(sentences) for sentences in SECTIONS.values())
    flat_result = _summarize(flat, summary_sentences=2, key_points=5)
    flat_covered = {section_of[p] for p in flat_result.key_points}
    assert len(flat_covered) < len(covered)


def test_summary_is_the_best_sentences_in_order_within_bounds() -> None:
    result = _summarize(_sectioned())
    sentences = re.split(r"(?<=[.!?])\s+", result.summary)
    assert 2 <= len(sentences) <= 3
    assert len(result.summary) <= extractive_module.SUMMARY_MAX_CHARS
    everything = [s for group in SECTIONS.values() for s in group]
    assert [everything.index(s) for s in sentences] == sorted(
        everything.index(s) for s in sentences
    )
    assert all(p not in sentences for p in result.key_points)
    assert all(len(p) <= extractive_module.KEY_POINT_MAX_CHARS for p in result.key_points)


def test_output_is_deterministic() -> None:
    markdown = _sectioned() + "\n\n" + "\n\n".join(PROSE)
    first = _summarize(markdown)
    assert all(_summarize(markdown) == first for _ in range(3))


# --- tabular documents --------------------------------------------------------------------------

REGIONS = ["North", "South", "North", "East", "North", "South", "West", "North", "", "South"]
REVENUE = [1200, 98000, 15500, 4300, 22000, 7100, 3150, 61000, 9900, None]
MARGIN = [12.5, 3.0, 7.25, 1.5, 9.0, 4.0, 6.5, 11.0, 2.0, 8.0]
DATES = [f"2024-0{1 + i // 3}-{10 + i:02d}" for i in range(10)]
ACTIVE = ["yes", "no", "yes", "yes", "no", "yes", "yes", "no", "yes", "yes"]
NOTES = ["first \\| order", "", "", "late", "", "", "", "", "", "repeat"]


def _csv_markdown() -> str:
    lines = [
        "| Date | Region | Revenue (USD) | Margin % | Active | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for i in range(10):
        revenue = "" if REVENUE[i] is None else f"{REVENUE[i]:,}"
        lines.append(
            f"| {DATES[i]} | {REGIONS[i]} | {revenue} | {MARGIN[i]}% | {ACTIVE[i]} | {NOTES[i]} |"
        )
    return "\n".join(lines)


def test_a_table_is_described_with_computed_figures() -> None:
    result = _summarize(_csv_markdown(), key_points=6)
    assert result.summary.startswith("A table of 10 rows and 6 columns: ")
    for name, kind in [
        ("Date", "date"),
        ("Region", "categorical"),
        ("Revenue (USD)", "currency"),
        ("Margin %", "percentage"),
        ("Active", "boolean"),
        ("Notes", "text"),
    ]:
        assert f"{name} ({kind})" in result.summary

    revenue = [r for r in REVENUE if r is not None]
    points = {p.split(":", 1)[0]: p for p in result.key_points}
    assert set(points) == {"Date", "Region", "Revenue (USD)", "Margin %", "Active", "Notes"}
    assert points["Revenue (USD)"] == (
        f"Revenue (USD): currency values from {min(revenue):,} to {max(revenue):,}, "
        f"total {sum(revenue):,}, mean {round(statistics.mean(revenue)):,}; "
        f"{REVENUE.count(None)} empty."
    )
    assert f"from {min(MARGIN):g}% to {max(MARGIN):g}%" in points["Margin %"]
    assert f"mean {statistics.mean(MARGIN):.2f}%".replace(".00%", "%") in points["Margin %"]
    top = Counter(r for r in REGIONS if r).most_common(3)
    assert points["Region"] == (
        f"Region: {len(set(REGIONS) - {''})} categories, the most frequent "
        + ", ".join(f"\u201c{v}\u201d ({n})" for v, n in top)
        + f"; {REGIONS.count('')} empty."
    )
    assert points["Date"].startswith(f"Date: dates, from {min(DATES)} to {max(DATES)}")
    assert points["Active"] == (
        f"Active: yes/no values, {ACTIVE.count('yes')} true and {ACTIVE.count('no')} false; "
        "no empty cells."
    )
    # The escaped pipe stays inside its cell: one value, not two columns.
    assert "\u201cfirst | order\u201d" in points["Notes"]
    assert f"{NOTES.count('')} empty" in points["Notes"]
    empty = REGIONS.count("") + REVENUE.count(None) + NOTES.count("")
    assert f"{empty} cells are empty, {NOTES.count('')} of them in column \u201cNotes\u201d" in (
        result.summary
    )
    assert len(result.summary) <= extractive_module.SUMMARY_MAX_CHARS


def test_large_totals_units_and_currency_symbols() -> None:
    weights = [1.5, 2.25, 12.0, 3.5]
    prices = [250_000, 480_500, 504_067]
    lines = ["| Item | Weight | Price |", "|---|---|---|"]
    lines += [
        f"| item {i} | {w} kg | ${p:,} |"
        for i, (w, p) in enumerate(zip(weights, prices, strict=False))
    ]
    lines.append(f"| item 3 | {weights[3]} kg |  |")
    result = _summarize("\n".join(lines))
    points = {p.split(":", 1)[0]: p for p in result.key_points}
    assert points["Weight"] == (
        f"Weight: decimal values from {min(weights)} to {max(weights):g} kg, "
        f"total {sum(weights):g} kg, mean {statistics.mean(weights):.2f} kg; no empty cells."
    )
    total = sum(prices)
    assert total == 1_234_567
    assert points["Price"] == (
        f"Price: currency values from ${min(prices):,} to ${max(prices):,}, "
        f"total $1.2 million, mean ${round(statistics.mean(prices)):,}; 1 empty."
    )


def test_a_table_without_header_and_identifier_and_year_columns() -> None:
    rows = [(i + 1, 2000 + i, 10 * (i + 1)) for i in range(6)]
    lines = ["|  |  |  |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    result = _summarize("\n".join(lines))
    assert "(no header row)" in result.summary
    assert "column 1 (identifier)" in result.summary
    assert "column 2 (year)" in result.summary
    values = [c for _, _, c in rows]
    assert (
        f"column 3: integer values from {min(values)} to {max(values)}, total {sum(values)}"
        in result.key_points[-1]
    )
    assert any(p.startswith("column 2: integer years from 2000 to 2005") for p in result.key_points)


def test_csv_rows_and_columns_are_counted_beyond_the_rows_examined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(candidates_module, "MAX_TABLE_ROWS", 50)
    lines = ["| n | label |", "|---|---|", *(f"| {i} | group {i % 3} |" for i in range(1, 201))]
    result = _summarize("\n".join(lines))
    assert result.summary.startswith("A table of 200 rows and 2 columns")
    assert "The first 50 rows were examined." in result.summary


def test_a_mixed_document_summarizes_the_prose_and_describes_the_largest_table() -> None:
    table = [
        "| Product | Units |",
        "|---|---|",
        *(f"| sensor {i} | {i * 10} |" for i in range(1, 9)),
    ]
    small = ["| a | b |", "|---|---|", "| 1 | 2 |"]
    markdown = "\n\n".join([" ".join(PROSE), "\n".join(small), "\n".join(table)])
    result = _summarize(markdown, key_points=4)
    assert _sentences(result) - {result.key_points[-1]} <= set(PROSE)
    units = [i * 10 for i in range(1, 9)]
    assert result.key_points[-1] == (
        "A table of 8 rows and 2 columns (Product, Units); "
        f"Units from {min(units)} to {max(units)}."
    )
    assert len(result.key_points) == 4


def test_several_tables_are_counted_and_the_others_get_a_point() -> None:
    first = ["| x | y |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |", "| 5 | 6 |"]
    second = ["| name | city |", "|---|---|", "| Ann | Oslo |"]
    result = _summarize("\n\n".join(["\n".join(first), "\n".join(second)]))
    assert result.summary.startswith("2 tables; the largest has 3 rows and 2 columns")
    assert "Table 2 of 2 has 1 row and 2 columns (name, city)." in result.key_points


# --- bounded on hostile input -------------------------------------------------------------------

_PATHOLOGICAL = [
    "<!--" * 250_000,  # comments never closed
    "[" * 500_000 + "](" * 250_000,  # links never closed
    "![a](" * 200_000,
    "`" * 1_000_000,
    "| " * 500_000,
    "*_" * 500_000,
    ". " * 500_000,
    "a\n" * 500_000,
    "x" * 1_000_000,
    "# h\n" * 250_000,
    "\\" * 1_000_000,
]


@pytest.mark.parametrize("text", _PATHOLOGICAL, ids=lambda t: repr(t[:6]))
def test_hostile_markdown_completes_with_a_sane_shape(text: str) -> None:
    result = _summarize(text)
    _check_shape(result)


def test_five_megabytes_of_mixed_hostile_markdown_completes() -> None:
    # The prose first: an unclosed comment or fence runs to the end, as in CommonMark.
    text = "\n".join(_PATHOLOGICAL)[:5_000_000]
    result = _summarize(" ".join(PROSE) + "\n\n" + text)
    _check_shape(result)
    assert _sentences(result) <= set(PROSE)


def _check_shape(result: Summary) -> None:
    assert len(result.summary) <= extractive_module.SUMMARY_MAX_CHARS
    assert len(result.key_points) <= 5
    assert all(len(p) <= extractive_module.KEY_POINT_MAX_CHARS for p in result.key_points)


def test_units_and_currency_from_the_header_words() -> None:
    lines = ["| revenue_eur | distance km | Duration min |", "|---|---|---|"]
    lines += ["| 1200.50 | 12 | 30 |", "| 800.25 | 8 | 45 |", "| 99.25 | 20 | 15 |"]
    points = {p.split(":", 1)[0]: p for p in _summarize("\n".join(lines)).key_points}
    assert points["revenue_eur"].startswith("revenue_eur: currency values from 99.25 to 1,200.5,")
    assert points["distance km"].startswith("distance km: integer values from 8 to 20, total 40")
    # "min" may be minutes or a minimum: no unit is claimed.
    assert points["Duration min"].startswith("Duration min: integer values from 15 to 45,")


def test_a_sentence_that_only_introduces_a_list_is_not_shown() -> None:
    markdown = (
        f"{PROSE[0]}\n\nEvery sensor ships with a radio module for the following networks:\n\n"
        "- LoRaWAN in the European and the American frequency bands\n"
        "- NB-IoT where the local operator supports it\n"
    )
    shown = _sentences(_summarize(markdown))
    assert not any(text.endswith(":") for text in shown)
    # A list item in the summary gets its full stop.
    assert "LoRaWAN in the European and the American frequency bands" in {
        text.rstrip(".") for text in shown
    }

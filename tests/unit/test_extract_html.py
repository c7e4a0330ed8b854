"""HTML extraction (issue 15): an HTML5 parser, main content without boilerplate (never an
emptied simple document), and Markdown with headings, lists, tables, code and quotes."""

from __future__ import annotations

from shared.documents import sniff
from shared.documents.extract import Extraction, Limits, extract
from shared.documents.extract.html import extract_html

ARTICLE = (
    "<p>The harbour office reported a strong quarter. Revenue grew by nine percent and the "
    "new crane arrives in March, after a long tender that ran through the winter.</p>"
    "<p>Staff turnover stayed low, and the training programme for the new terminal opened "
    "to all crews, with forty people enrolled in the first month alone.</p>"
)
NAV = (
    '<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>'
    '<li><a href="/about">About us</a></li></ul></nav>'
)


def page(body: str, head: str = "<title>Harbour</title>") -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


def via_sniff(data: bytes) -> Extraction:
    content_type = sniff.sniff(data)
    assert content_type == sniff.HTML
    return extract(data, content_type, Limits())


# --- parsing ---------------------------------------------------------------------------


def test_html_without_a_closing_head_keeps_its_body() -> None:
    result = via_sniff(b"<html><head><title>T</title><body><p>Hello")
    assert result.title == "T"
    assert result.text == "Hello"
    assert result.markdown == "Hello"


def test_omitted_end_tags_are_implied() -> None:
    result = extract_html("<title>Notes</title><p>one<p>two<ul><li>a<li>b</ul>")
    assert result.text == "one\n\ntwo\n\n- a\n- b"
    assert result.title == "Notes"


def test_invisible_content_is_dropped() -> None:
    result = extract_html(
        page(
            "<p>visible</p><script>SCRIPT()</script><style>.STYLE{}</style>"
            "<noscript>NOSCRIPT</noscript><template><p>TEMPLATE</p></template>"
            "<svg><text>SVG</text></svg><p hidden>HIDDEN</p>"
            '<div style="display: none">NONE</div><p>also visible</p>'
        )
    )
    assert result.text == "visible\n\nalso visible"
    for word in ("SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "SVG", "HIDDEN", "NONE", "Harbour"):
        assert word not in result.text and word not in result.markdown


def test_title_falls_back_to_the_first_h1() -> None:
    assert extract_html("<body><h1>Annual  report</h1><p>x</p></body>").title == "Annual report"
    assert extract_html("<body><p>x</p></body>").title is None


def test_inline_whitespace_and_entities() -> None:
    result = extract_html("<p>Fees &lt; 5&nbsp;% for <b>all</b>\n   <i>members</i>.<br>Next</p>")
    assert result.text == "Fees < 5 % for all members.\nNext"


def test_deep_nesting_does_not_fail() -> None:
    for opening in ("<div>", "<ul><li>", "<blockquote>", "<table><tr><td>", "<span>"):
        result = extract_html(opening * 5000 + "deep text")
        assert result.text.endswith("deep text")


# --- main content ----------------------------------------------------------------------


def test_page_boilerplate_is_left_out() -> None:
    html = page(
        '<header><div class="logo">HarbourCo</div></header>'
        + NAV
        + '<div id="cookie-banner">We use cookies. Accept all?</div>'
        + '<div role="navigation">Skip to section</div>'
        + "<article><header><h1>Quarterly update</h1></header>"
        + ARTICLE
        + "<footer>Written by the board</footer></article>"
        + "<aside>Related: other quarters</aside>"
        + '<footer role="contentinfo">Copyright 2026 HarbourCo</footer>'
    )
    result = extract_html(html)
    assert result.details["content"] == "main"
    assert result.text.startswith("Quarterly update\n\nThe harbour office")
    assert "Written by the board" in result.text  # the article's own footer stays
    for word in ("HarbourCo", "Home", "cookies", "Skip to", "Related", "Copyright"):
        assert word not in result.text, word
    assert result.markdown.startswith("# Quarterly update\n\n")


def test_main_is_preferred() -> None:
    html = page(
        "<div>Promoted: a long advertising paragraph outside the main element, repeated. " * 3
        + "</div><main><h2>Report</h2>"
        + ARTICLE
        + "</main>"
    )
    result = extract_html(html)
    assert result.text.startswith("Report\n\nThe harbour office")
    assert "Promoted" not in result.text


def test_link_lists_are_left_out_in_the_body() -> None:
    links = "".join(f'<li><a href="/t{i}">Topic number {i}</a></li>' for i in range(8))
    result = extract_html(page(f"<div>{ARTICLE}</div><ul>{links}</ul>"))
    assert result.details["content"] == "main"
    assert "Topic number" not in result.text
    assert "The harbour office" in result.text


def test_a_simple_document_is_never_emptied() -> None:
    # Only navigation-like content: all the visible text is kept.
    result = extract_html(page(NAV + "<footer>Contact: office@example.com</footer>"))
    assert result.details["content"] == "all"
    assert "Home" in result.text and "Contact: office@example.com" in result.text


def test_a_short_main_in_a_larger_page_falls_back_to_all_the_text() -> None:
    # The main content is under 200 characters while the page has more.
    html = page("<header>" + ARTICLE + "</header><main><p>Short main.</p></main>")
    result = extract_html(html)
    assert result.details["content"] == "all"
    assert "The harbour office" in result.text and "Short main." in result.text


def test_a_main_under_a_quarter_of_the_page_falls_back() -> None:
    big_aside = "<aside>" + ARTICLE * 6 + "</aside>"
    html = page(big_aside + "<main>" + ARTICLE + "</main>")
    result = extract_html(html)
    assert result.details["content"] == "all"
    assert result.text.count("The harbour office") == 7


def test_a_class_word_never_drops_most_of_the_page() -> None:
    html = page('<div class="content share">' + ARTICLE * 3 + "</div><p>tail</p>")
    assert extract_html(html).text.count("The harbour office") == 3


# --- Markdown --------------------------------------------------------------------------


def test_headings_lists_links_code_and_quotes() -> None:
    html = page(
        "<h1>Guide</h1><h3>Steps</h3>"
        '<ol start="3"><li>first</li><li>second<ul><li>inner <a href="x">link</a></li>'
        "</ul></li></ol>"
        "<p>Run <code>make test</code> now.</p>"
        '<pre><code class="language-python">def f():\n    return "```"\n</code></pre>'
        "<blockquote><p>quoted one</p><p>quoted two</p></blockquote>"
        "<h6>Small</h6><hr><p># not a heading</p>"
    )
    md = extract_html(html).markdown
    assert md.split("\n\n") == [
        "# Guide",
        "### Steps",
        "3. first\n4. second\n   - inner link",
        "Run `make test` now.",
        '````python\ndef f():\n    return "```"\n````',
        "> quoted one\n>\n> quoted two",
        "###### Small",
        "---",
        "\\# not a heading",
    ]


def test_text_is_the_plain_version() -> None:
    html = page(
        "<h2>Guide</h2><ul><li>one</li></ul><pre>code  here</pre>"
        "<blockquote>said</blockquote><table><tr><th>k</th><th>v</th></tr>"
        "<tr><td>a</td><td>1</td></tr></table>"
    )
    assert extract_html(html).text == "Guide\n\n- one\n\ncode  here\n\nsaid\n\nk | v\na | 1"


def test_table_with_header_spans_and_caption() -> None:
    html = page(
        "<table><caption>Results</caption>"
        "<thead><tr><th>Name</th><th colspan='2'>Score</th></tr></thead>"
        "<tbody><tr><td rowspan='2'>Ana</td><td>1</td><td>2</td></tr>"
        "<tr><td>3</td><td>4 | 5</td></tr>"
        "<tr><td>Bo</td><td colspan='2'>absent</td></tr></tbody></table>"
    )
    result = extract_html(html)
    assert result.markdown == (
        "Results\n\n"
        "| Name | Score |  |\n"
        "|---|---|---|\n"
        "| Ana | 1 | 2 |\n"
        "|  | 3 | 4 \\| 5 |\n"
        "| Bo | absent |  |"
    )
    assert "Ana | 1 | 2" in result.text.split("\n")


def test_table_without_a_header_row_gets_an_empty_one() -> None:
    md = extract_html("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>")
    assert md.markdown == "|  |  |\n|---|---|\n| a | b |\n| c |  |"


def test_first_row_of_th_is_the_header_and_rowspan_zero_runs_to_the_end() -> None:
    html = (
        "<table><tr><th>x</th><th>y</th></tr><tr><td rowspan='0'>all</td><td>1</td></tr>"
        "<tr><td>2</td></tr><tr><td>3</td></tr></table>"
    )
    assert extract_html(html).markdown.split("\n") == [
        "| x | y |",
        "|---|---|",
        "| all | 1 |",
        "|  | 2 |",
        "|  | 3 |",
    ]


def test_layout_tables_are_read_as_blocks() -> None:
    html = (
        "<table role='presentation'><tr><td><h2>Title</h2><p>Body text.</p></td>"
        "<td><p>Side</p></td></tr></table>"
    )
    result = extract_html(html)
    assert "|" not in result.markdown
    assert result.markdown.split("\n\n") == ["## Title", "Body text.", "Side"]


def test_huge_spans_are_bounded() -> None:
    html = "<table>" + "<tr><td colspan='100000' rowspan='65534'>x</td></tr>" * 50 + "</table>"
    result = extract_html(html)
    assert "x" in result.text
    assert len(result.markdown) < 1_000_000


def test_a_list_in_a_table_cell_is_one_line() -> None:
    html = (
        "<table><tr><th>Key</th><th>Values</th></tr>"
        "<tr><td>Founders</td><td><ul><li>Bill Gates</li><li>Paul Allen</li></ul></td></tr>"
        "</table>"
    )
    assert extract_html(html).markdown.split("\n")[-1] == "| Founders | Bill Gates; Paul Allen |"

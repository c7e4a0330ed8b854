"""DOCX extraction on packages built here (zipfile + XML strings), one class of content each."""

from __future__ import annotations

import io
import zipfile

import pytest

from shared.documents.extract import ExtractionError, Limits
from shared.documents.extract.docx import check_zip, extract_docx

LIMITS = Limits()
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
W_STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
R_STRICT = "http://purl.oclc.org/ooxml/officeDocument/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
NAMESPACES = (
    f'xmlns:w="{W}" xmlns:r="{R}" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:v="urn:schemas-microsoft-com:vml"'
)


def p(text: str, style: str | None = None, num: tuple[int, int] | None = None) -> str:
    ppr = ""
    if style or num:
        ppr = "<w:pPr>"
        ppr += f'<w:pStyle w:val="{style}"/>' if style else ""
        if num:
            ppr += f'<w:numPr><w:ilvl w:val="{num[1]}"/><w:numId w:val="{num[0]}"/></w:numPr>'
        ppr += "</w:pPr>"
    return f"<w:p>{ppr}<w:r><w:t xml:space='preserve'>{text}</w:t></w:r></w:p>"


def tc(content: str, props: str = "") -> str:
    return f"<w:tc><w:tcPr>{props}</w:tcPr>{content}</w:tc>"


def tbl(*rows: str) -> str:
    return "<w:tbl><w:tblPr/>" + "".join(f"<w:tr>{r}</w:tr>" for r in rows) + "</w:tbl>"


def rels(*targets: tuple[str, str], strict: bool = False) -> str:
    base = (
        "http://purl.oclc.org/ooxml/officeDocument/relationships/"
        if strict
        else "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    )
    items = "".join(
        f'<Relationship Id="rId{i}" Type="{base}{kind}" Target="{target}"/>'
        for i, (kind, target) in enumerate(targets, 1)
    )
    return f'<Relationships xmlns="{PKG}">{items}</Relationships>'


def package(
    body: str,
    *,
    main: str = "word/document.xml",
    parts: dict[str, str] | None = None,
    part_rels: tuple[tuple[str, str], ...] = (),
    app: str | None = None,
    strict: bool = False,
) -> bytes:
    """A DOCX: `_rels/.rels` naming `main`, whose own rels name `part_rels`."""
    namespaces = NAMESPACES
    if strict:
        namespaces = namespaces.replace(W, W_STRICT).replace(R, R_STRICT)
    folder, base = main.rsplit("/", 1)
    members = {
        "[Content_Types].xml": "<Types/>",
        "_rels/.rels": rels(("officeDocument", main), strict=strict),
        main: f"<w:document {namespaces}><w:body>{body}</w:body></w:document>",
        f"{folder}/_rels/{base}.rels": rels(*part_rels, strict=strict),
    }
    for name, xml in (parts or {}).items():
        members[name] = xml.replace("NAMESPACES", namespaces)
    if app is not None:
        members["docProps/app.xml"] = app
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_paragraphs_headings_and_lists_through_styles_and_numbering() -> None:
    styles = (
        "<w:styles NAMESPACES>"
        '<w:style w:type="paragraph" w:styleId="Kop1"><w:name w:val="heading 1"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Sub"><w:name w:val="Sub"/>'
        '<w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>'
        "</w:styles>"
    )
    numbering = (
        "<w:numbering NAMESPACES>"
        '<w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:numFmt w:val="decimal"/></w:lvl>'
        "</w:abstractNum>"
        '<w:abstractNum w:abstractNumId="1"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/></w:lvl>'
        "</w:abstractNum>"
        '<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>'
        '<w:num w:numId="2"><w:abstractNumId w:val="1"/></w:num>'
        "</w:numbering>"
    )
    data = package(
        p("Report", "Titel")
        + p("Scope", "Kop1")
        + p("Detail", "Sub")
        + p("first", num=(1, 0))
        + p("second", num=(1, 0))
        + p("dot", num=(2, 0))
        + p("# not a heading"),
        parts={"word/styles.xml": styles, "word/numbering.xml": numbering},
        part_rels=(("styles", "styles.xml"), ("numbering", "numbering.xml")),
    )
    result = extract_docx(data, LIMITS)
    assert result.markdown == (
        "# Report\n\n# Scope\n\n### Detail\n\n1. first\n1. second\n- dot\n\n\\# not a heading\n"
    )
    assert result.text == "Report\n\nScope\n\nDetail\nfirst\nsecond\ndot\n# not a heading"
    assert result.details == {"headings": 3, "tables": 0, "parts": ["body"]}
    assert result.extractor == "docx"


def test_content_controls_at_body_paragraph_and_cell_level() -> None:
    body = (
        "<w:sdt><w:sdtPr><w:alias w:val='x'/></w:sdtPr><w:sdtContent>"
        + p("block control")
        + "</w:sdtContent></w:sdt>"
        + "<w:p><w:r><w:t>before </w:t></w:r><w:sdt><w:sdtContent><w:r><w:t>inline control</w:t>"
        "</w:r></w:sdtContent></w:sdt></w:p>"
        + tbl(
            tc(p("a")) + "<w:sdt><w:sdtContent>" + tc(p("cell control")) + "</w:sdtContent></w:sdt>"
        )
    )
    result = extract_docx(package(body), LIMITS)
    assert result.text == "block control\nbefore inline control\na | cell control"
    assert "| a | cell control |" in result.markdown


def test_text_box_in_alternate_content_appears_once() -> None:
    txbx = "<w:txbxContent>" + p("boxed words") + "</w:txbxContent>"
    body = (
        "<w:p><w:r><w:t>anchor</w:t></w:r><w:r><mc:AlternateContent>"
        '<mc:Choice Requires="wps"><w:drawing><wp:anchor><a:graphic><a:graphicData>'
        f"<wps:wsp><wps:txbx>{txbx}</wps:txbx></wps:wsp>"
        "</a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>"
        f"<mc:Fallback><w:pict><v:shape><v:textbox>{txbx}</v:textbox></v:shape></w:pict>"
        "</mc:Fallback></mc:AlternateContent></w:r></w:p>"
    )
    result = extract_docx(package(body), LIMITS)
    assert result.text == "anchor\nboxed words"
    assert result.markdown.count("boxed words") == 1


def test_fallback_is_read_when_the_choice_has_no_text() -> None:
    body = (
        "<w:p><w:r><mc:AlternateContent>"
        '<mc:Choice Requires="wps"><w:drawing/></mc:Choice>'
        "<mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>"
        + p("only in fallback")
        + "</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback>"
        "</mc:AlternateContent></w:r></w:p>"
    )
    assert extract_docx(package(body), LIMITS).text == "only in fallback"


def test_vml_text_box() -> None:
    body = (
        "<w:p><w:r><w:pict><v:shape><v:textbox><w:txbxContent>"
        + p("vml words")
        + "</w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
    )
    assert extract_docx(package(body), LIMITS).text == "vml words"


def test_runs_fields_hyperlinks_tabs_breaks_and_revisions() -> None:
    body = (
        "<w:p>"
        "<w:r><w:t>A</w:t><w:tab/><w:t>B</w:t><w:br/><w:t>C</w:t></w:r>"
        '<w:hyperlink r:id="rId9"><w:r><w:t> link</w:t></w:r></w:hyperlink>'
        '<w:fldSimple w:instr="PAGE"><w:r><w:t> 7</w:t></w:r></w:fldSimple>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>HYPERLINK x</w:instrText>'
        '</w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t> shown</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        "<w:del><w:r><w:delText> gone</w:delText></w:r></w:del>"
        "<w:ins><w:r><w:t> added</w:t></w:r></w:ins>"
        '<w:r><w:sym w:font="Symbol" w:char="F061"/></w:r>'
        "</w:p>"
    )
    result = extract_docx(package(body), LIMITS)
    assert result.text == "A\tB\nC link 7 shown addeda"


def test_nested_table_is_written_inline_in_its_cell() -> None:
    inner = tbl(tc(p("x1")) + tc(p("x2")), tc(p("y1")) + tc(p("y2")))
    body = tbl(tc(p("h1")) + tc(p("h2")), tc(p("outer")) + tc(p("before") + inner))
    result = extract_docx(package(body), LIMITS)
    assert result.markdown == ("| h1 | h2 |\n|---|---|\n| outer | before x1; x2 / y1; y2 |\n")
    assert result.text == "h1 | h2\nouter | before x1; x2 / y1; y2"
    assert result.details["tables"] == 2 and result.details["nested_tables"] == 1


def test_merged_cells_keep_the_value_in_the_first_cell() -> None:
    body = tbl(
        tc(p("wide"), '<w:gridSpan w:val="2"/>') + tc(p("tall"), '<w:vMerge w:val="restart"/>'),
        tc(p("a")) + tc(p("b")) + tc("<w:p/>", "<w:vMerge/>"),
        tc(p("c")) + tc(p("d")) + tc(p("e")),
    )
    result = extract_docx(package(body), LIMITS)
    assert result.markdown == ("| wide |  | tall |\n|---|---|---|\n| a | b |  |\n| c | d | e |\n")


def test_a_table_with_unresolvable_merges_still_gives_its_text() -> None:
    # A continuation with nothing above it, and a span wider than the grid.
    body = tbl(
        tc(p("orphan"), "<w:vMerge/>") + tc(p("x"), '<w:gridSpan w:val="abc"/>'),
        tc(p("y"), '<w:gridSpan w:val="9"/>'),
    )
    result = extract_docx(package(body), LIMITS)
    for word in ("orphan", "x", "y"):
        assert word in result.text


def test_headers_footers_notes_and_comments_are_labelled_sections() -> None:
    header = "<w:hdr NAMESPACES>" + p("Company confidential") + "</w:hdr>"
    footer = "<w:ftr NAMESPACES>" + p("Page footer") + "</w:ftr>"
    notes = (
        "<w:{kind}s NAMESPACES>"
        '<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>'
        '<w:{kind} w:id="1">' + p("{text}") + "</w:{kind}></w:{kind}s>"
    )
    comments = (
        '<w:comments NAMESPACES><w:comment w:id="0" w:author="Ann">'
        + p("Check this")
        + '</w:comment><w:comment w:id="1" w:author="Bo">'
        + p("Check this")
        + "</w:comment></w:comments>"
    )
    data = package(
        p("Body text"),
        parts={
            "word/header1.xml": header,
            "word/header2.xml": header,  # the first-page header, identical: written once
            "word/footer1.xml": footer,
            "word/footnotes.xml": notes.format(kind="footnote", text="A footnote"),
            "word/endnotes.xml": notes.format(kind="endnote", text="An endnote"),
            "word/comments.xml": comments,
        },
        part_rels=(
            ("header", "header1.xml"),
            ("header", "header2.xml"),
            ("footer", "footer1.xml"),
            ("footnotes", "footnotes.xml"),
            ("endnotes", "endnotes.xml"),
            ("comments", "comments.xml"),
        ),
    )
    result = extract_docx(data, LIMITS)
    assert result.markdown == (
        "Body text\n\n## Headers\n\nCompany confidential\n\n## Footers\n\nPage footer\n\n"
        "## Footnotes\n\nA footnote\n\n## Endnotes\n\nAn endnote\n\n## Comments\n\nCheck this\n\n"
        "Check this\n"
    )
    assert result.text == (
        "Body text\n\nHeaders\nCompany confidential\n\nFooters\nPage footer\n\n"
        "Footnotes\nA footnote\n\nEndnotes\nAn endnote\n\nComments\nCheck this\n\nCheck this"
    )
    assert result.details["parts"] == [
        "body",
        "headers",
        "footers",
        "footnotes",
        "endnotes",
        "comments",
    ]


def test_main_part_named_by_the_package_relationships() -> None:
    data = package(p("Word Online"), main="word/document2.xml")
    result = extract_docx(data, LIMITS)
    assert result.text == "Word Online"
    assert result.details["main_part"] == "word/document2.xml"


def test_strict_ooxml_namespaces() -> None:
    footnotes = '<w:footnotes NAMESPACES><w:footnote w:id="1">' + p("strict note")
    footnotes += "</w:footnote></w:footnotes>"
    body = p("strict body") + tbl(tc(p("s1"), '<w:gridSpan w:val="2"/>'), tc(p("s2")) + tc(p("s3")))
    data = package(
        body,
        strict=True,
        parts={"word/footnotes.xml": footnotes},
        part_rels=(("footnotes", "footnotes.xml"),),
    )
    result = extract_docx(data, LIMITS)
    assert "| s1 |  |" in result.markdown
    assert result.text == "strict body\ns1 | \ns2 | s3\n\nFootnotes\nstrict note"


def test_pages_come_from_app_xml_or_are_unknown() -> None:
    assert extract_docx(package(p("x")), LIMITS).pages is None
    app = (
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'extended-properties"><Pages>872</Pages></Properties>'
    )
    result = extract_docx(package(p("x"), app=app), LIMITS)
    assert (result.pages, result.page_starts) == (872, [])


def test_title_and_author_from_core_properties() -> None:
    data = package(p("x"))
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(
            "docProps/core.xml",
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            "<dc:title>The Title</dc:title><dc:creator>Ann Author</dc:creator>"
            "</cp:coreProperties>",
        )
    result = extract_docx(buffer.getvalue(), LIMITS)
    assert (result.title, result.author) == ("The Title", "Ann Author")


def _error(data: bytes, limits: Limits = LIMITS) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        extract_docx(data, limits)
    return caught.value


def test_not_a_zip_and_not_a_word_package_are_malformed() -> None:
    assert _error(b"PK\x03\x04 not really a zip").code == "malformed_document"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    error = _error(buffer.getvalue())
    assert error.code == "malformed_document" and "no main document part" in error.message
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("_rels/.rels", rels(("officeDocument", "word/document.xml")))
        archive.writestr("word/document.xml", "<not-xml")
    assert _error(buffer.getvalue()).code == "malformed_document"


def test_entities_are_not_expanded() -> None:
    body = "<w:p><w:r><w:t>&ext;</w:t></w:r></w:p>"
    data = package(body)
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "word/document.xml":
                content = b'<!DOCTYPE d [<!ENTITY ext SYSTEM "file:///etc/passwd">]>' + content
            target.writestr(info, content)
    try:
        result = extract_docx(buffer.getvalue(), LIMITS)
    except ExtractionError as exc:
        assert exc.code == "malformed_document"
    else:
        assert "root:" not in result.text


def test_zip_bomb_is_refused_before_parsing() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_rels/.rels", rels(("officeDocument", "word/document.xml")))
        archive.writestr("word/document.xml", b" " * (8 * 1024 * 1024))
    data = buffer.getvalue()
    error = _error(data, Limits(docx_max_ratio=50))
    assert error.code == "resource_limit" and "expands" in error.message
    error = _error(data, Limits(docx_max_uncompressed_bytes=1024 * 1024))
    assert error.code == "resource_limit" and "uncompressed" in error.message
    with pytest.raises(ExtractionError):
        check_zip(data, Limits(docx_max_entries=1))


def test_outline_level_list_style_grid_before_and_wrappers() -> None:
    styles = (
        "<w:styles NAMESPACES>"
        '<w:style w:type="paragraph" w:styleId="ListNumber"><w:name w:val="List Number"/>'
        '<w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:style>'
        "</w:styles>"
    )
    numbering = (
        '<w:numbering NAMESPACES><w:abstractNum w:abstractNumId="5"><w:lvl w:ilvl="0">'
        '<w:numFmt w:val="lowerRoman"/></w:lvl></w:abstractNum>'
        '<w:num w:numId="1"><w:abstractNumId w:val="5"/></w:num></w:numbering>'
    )
    body = (
        '<w:p><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:r><w:t>Outlined</w:t></w:r></w:p>'
        + p("numbered by style", "ListNumber")
        + "<w:customXml><w:p><w:smartTag><w:r><w:t>tagged</w:t></w:r></w:smartTag></w:p>"
        "</w:customXml>"
        + tbl(
            '<w:trPr><w:gridBefore w:val="1"/></w:trPr>' + tc(p("shifted")),
            tc(p("one")) + tc(p("two")),
        )
    )
    data = package(
        body,
        parts={"word/styles.xml": styles, "word/numbering.xml": numbering},
        part_rels=(("styles", "/word/styles.xml"), ("numbering", "numbering.xml")),
    )
    result = extract_docx(data, LIMITS)
    assert result.markdown == (
        "## Outlined\n\n1. numbered by style\n\ntagged\n\n"
        "|  | shifted |\n|---|---|\n| one | two |\n"
    )


def test_hyperlinks_become_markdown_links_for_safe_schemes_only() -> None:
    base = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"
    document_rels = (
        f'<Relationships xmlns="{PKG}">'
        f'<Relationship Id="rId1" Type="{base}" Target="https://example.org/a" '
        'TargetMode="External"/>'
        f'<Relationship Id="rId2" Type="{base}" Target="javascript:alert(1)" '
        'TargetMode="External"/></Relationships>'
    )
    body = (
        '<w:p><w:r><w:t xml:space="preserve">See </w:t></w:r><w:hyperlink r:id="rId1">'
        "<w:r><w:t>the site</w:t></w:r></w:hyperlink><w:r><w:t xml:space='preserve'> or </w:t>"
        '</w:r><w:hyperlink r:id="rId2"><w:r><w:t>this</w:t></w:r></w:hyperlink></w:p>'
    )
    result = extract_docx(
        package(body, parts={"word/_rels/document.xml.rels": document_rels}), LIMITS
    )
    assert result.markdown == "See [the site](https://example.org/a) or this\n"
    assert result.text == "See the site or this"

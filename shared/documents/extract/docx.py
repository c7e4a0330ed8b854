"""DOCX: the WordprocessingML parts walked directly with lxml (no python-docx).

The package is read with `zipfile`: `check_zip` applies the zip-bomb limits from the central
directory, and every part is then read with a bounded read that shares one budget (the
Limits' uncompressed bytes). XML is parsed with entities, DTDs and the network off.

- The main part is the `officeDocument` relationship of `_rels/.rels` (Word Online names it
  `word/document2.xml`); headers, footers, footnotes, endnotes, comments, styles and
  numbering come from that part's own relationships. Transitional and ISO 29500 Strict
  (`http://purl.oclc.org/ooxml/...`) namespaces are both read: namespace URIs are mapped to
  one prefix each.
- Text: paragraphs, runs, hyperlinks, smart tags, fields (`w:fldSimple`; field codes are
  skipped), content controls (`w:sdt`) at every level, inserted text (deleted text is
  skipped), tabs, breaks, symbols, math (`m:t`), and text boxes (`wps:txbx`, VML
  `v:textbox`). Inside `mc:AlternateContent` one branch is read: the first `mc:Choice` that
  has text, else `mc:Fallback`, so a text box's text appears once. A text box's paragraphs
  follow the paragraph that anchors it.
- Markdown: headings from paragraph styles (`Title`, `heading 1..9` by style name through
  `styles.xml`, or `w:outlineLvl`), list items from `w:numPr` (`1.` for numbered formats in
  `numbering.xml`, else `-`), tables as GFM tables. Merged cells follow `markdown.py`: the
  value is in the first cell of a `gridSpan` or `vMerge` span, the others are empty.
  GFM cannot nest tables: a table inside a cell is written inline in that cell, its cells
  separated by `; ` and its rows by ` / `. A table that cannot be laid out degrades to its
  cells' text as paragraphs.
- Parts other than the body follow it as labelled sections (`## Headers`, `## Footers`,
  `## Footnotes`, `## Endnotes`, `## Comments`; in the plain text the label is a line of
  its own). Identical headers (or footers) appear once.
- `pages` is Word's saved count (`docProps/app.xml` `<Pages>`), else None: DOCX has no
  pages of its own. Title and author come from `docProps/core.xml`.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lxml import etree  # type: ignore[import-untyped]

from shared.documents import sniff
from shared.documents.extract import Extraction, ExtractionError, Limits
from shared.documents.extract import markdown as md

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_W_STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"

# Namespace URI -> one prefix, so Transitional and Strict documents read the same.
_PREFIXES = {
    _W: "w",
    _W_STRICT: "w",
    "http://schemas.openxmlformats.org/markup-compatibility/2006": "mc",
    "http://schemas.openxmlformats.org/officeDocument/2006/math": "m",
    "http://purl.oclc.org/ooxml/officeDocument/math": "m",
}


def _wkeys(local: str) -> tuple[str, str]:
    """The attribute's name in both WordprocessingML namespaces."""
    return f"{{{_W}}}{local}", f"{{{_W_STRICT}}}{local}"


_VAL_KEYS = _wkeys("val")
_TYPE_KEYS = _wkeys("type")
_CHAR_KEYS = _wkeys("char")

# Elements whose content is never text of the document: properties, deleted text, field codes.
_SKIP = frozenset(
    {
        "w:del",
        "w:moveFrom",
        "w:delText",
        "w:instrText",
        "w:delInstrText",
        "w:fldData",
        "mc:Fallback",
    }
)
_SECTIONS = (
    ("header", "Headers"),
    ("footer", "Footers"),
    ("footnotes", "Footnotes"),
    ("endnotes", "Endnotes"),
    ("comments", "Comments"),
)
_NOTE_SEPARATORS = frozenset({"separator", "continuationSeparator", "continuationNotice"})
_HEADING_NAME = re.compile(r"heading\s*([1-9])")
_MAX_SPAN = 64  # a gridSpan wider than any real table (Word allows 63 columns)
_SAFE_URL = re.compile(r"(https?://|mailto:)[^\s<>]+$", re.IGNORECASE)
_RID_KEYS = (
    "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id",
    "{http://purl.oclc.org/ooxml/officeDocument/relationships}id",
)


def check_zip(data: bytes, limits: Limits) -> None:
    """Zip-bomb limits from the central directory, before anything is decompressed."""
    _open_checked(data, limits).close()


def _open_checked(data: bytes, limits: Limits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ExtractionError("malformed_document", f"unreadable ZIP container ({exc})") from None
    try:
        if len(infos) > limits.docx_max_entries:
            raise ExtractionError(
                "resource_limit", f"{len(infos)} entries (limit {limits.docx_max_entries})"
            )
        total = sum(i.file_size for i in infos)
        if total > limits.docx_max_uncompressed_bytes:
            raise ExtractionError(
                "resource_limit",
                f"{total} bytes uncompressed (limit {limits.docx_max_uncompressed_bytes})",
            )
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and ratio > limits.docx_max_ratio:
                raise ExtractionError(
                    "resource_limit",
                    f"{info.filename} expands {ratio:.0f}x (limit {limits.docx_max_ratio:g}x)",
                )
    except BaseException:
        archive.close()
        raise
    return archive


class _Package:
    """Bounded reads of the parts of one archive, all sharing one uncompressed budget."""

    def __init__(self, archive: zipfile.ZipFile, budget: int) -> None:
        self.archive = archive
        self.budget = budget
        # OPC part names are case-insensitive.
        self.names = {info.filename.lower(): info for info in archive.infolist()}

    def has(self, name: str) -> bool:
        return name.lower() in self.names

    def read(self, name: str) -> bytes | None:
        info = self.names.get(name.lower())
        if info is None:
            return None
        try:
            with self.archive.open(info) as stream:
                data = stream.read(self.budget + 1)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            raise ExtractionError(
                "malformed_document", f"unreadable part {name} ({type(exc).__name__})"
            ) from None
        if len(data) > self.budget:
            raise ExtractionError(
                "resource_limit", f"{name} expands beyond the uncompressed budget"
            )
        self.budget -= len(data)
        return data

    def xml(self, name: str) -> Any:
        """The parsed part, None when absent; XMLSyntaxError when it is not XML."""
        data = self.read(name)
        if data is None:
            return None
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        return etree.fromstring(data, parser)

    def rels(self, part: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The part's relationships: (type's last segment, target part name) of the internal
        ones, and id -> URL of its external hyperlinks. `part` "" is the package itself."""
        folder, base = posixpath.split(part)
        found: list[tuple[str, str]] = []
        links: dict[str, str] = {}
        try:
            root = self.xml(posixpath.join(folder, "_rels", base + ".rels"))
        except etree.XMLSyntaxError:
            return found, links
        if root is None:
            return found, links
        for rel in root:
            if not isinstance(rel.tag, str):
                continue
            kind = (rel.get("Type") or "").rstrip("/").rsplit("/", 1)[-1]
            target = rel.get("Target") or ""
            if rel.get("TargetMode") == "External":
                if kind == "hyperlink" and _SAFE_URL.match(target):
                    links[rel.get("Id") or ""] = target
                continue
            target = unquote(target)
            if not target:
                continue
            if target.startswith("/"):
                name = posixpath.normpath(target.lstrip("/"))
            else:
                name = posixpath.normpath(posixpath.join(folder, target))
            found.append((kind, name))
        return found, links


_tag_cache: dict[str, str] = {}


def _key(tag: Any) -> str:
    """`{uri}local` -> `prefix:local` with the prefixes above (unknown URIs kept)."""
    if not isinstance(tag, str):
        return ""
    key = _tag_cache.get(tag)
    if key is None:
        if tag.startswith("{"):
            uri, local = tag[1:].split("}", 1)
            key = f"{_PREFIXES.get(uri, uri)}:{local}"
        else:
            key = tag
        if len(_tag_cache) < 4096:
            _tag_cache[tag] = key
    return key


def _get(el: Any, keys: tuple[str, ...]) -> str | None:
    for k in keys:
        value = el.get(k)
        if value is not None:
            return str(value)
    return None


def _child(el: Any, key: str) -> Any:
    for c in el:
        if _key(c.tag) == key:
            return c
    return None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


_TEXT_TAGS = (
    f"{{{_W}}}t",
    f"{{{_W_STRICT}}}t",
    "{http://schemas.openxmlformats.org/officeDocument/2006/math}t",
    "{http://purl.oclc.org/ooxml/officeDocument/math}t",
)


def _has_text(el: Any) -> bool:
    return any(t.text for t in el.iter(*_TEXT_TAGS))


def _choose(alternate: Any) -> Any:
    """The branch of an mc:AlternateContent to read: the first Choice with text, else the
    Fallback, else the first Choice (or nothing)."""
    choices = [c for c in alternate if _key(c.tag) == "mc:Choice"]
    for choice in choices:
        if _has_text(choice):
            return choice
    fallback = _child(alternate, "mc:Fallback")
    if fallback is not None:
        return fallback
    return choices[0] if choices else None


@dataclass
class _Block:
    kind: str  # "p", "h", "li" or "table"
    markdown: str
    text: str


@dataclass
class _Styles:
    names: dict[str, str] = field(default_factory=dict)
    based_on: dict[str, str] = field(default_factory=dict)
    outline: dict[str, int] = field(default_factory=dict)
    num_id: dict[str, str] = field(default_factory=dict)
    levels: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, root: Any) -> _Styles:
        styles = cls()
        if root is None:
            return styles
        for style in root:
            if _key(style.tag) != "w:style" or _get(style, _TYPE_KEYS) not in (None, "paragraph"):
                continue
            sid = _get(style, _wkeys("styleId"))
            if not sid:
                continue
            for c in style:
                k = _key(c.tag)
                if k == "w:name":
                    styles.names[sid] = (_get(c, _VAL_KEYS) or "").lower()
                elif k == "w:basedOn":
                    styles.based_on[sid] = _get(c, _VAL_KEYS) or ""
                elif k == "w:pPr":
                    lvl = _child(c, "w:outlineLvl")
                    if lvl is not None:
                        styles.outline[sid] = _int(_get(lvl, _VAL_KEYS), 9)
                    num = _child(c, "w:numPr")
                    num_id = _child(num, "w:numId") if num is not None else None
                    if num_id is not None:
                        styles.num_id[sid] = _get(num_id, _VAL_KEYS) or "0"
        return styles

    def heading_level(self, sid: str) -> int | None:
        if sid not in self.levels:
            self.levels[sid] = self._level(sid)
        return self.levels[sid]

    def _level(self, sid: str) -> int | None:
        seen: set[str] = set()
        current: str | None = sid
        while current and current not in seen and len(seen) < 16:
            seen.add(current)
            name = self.names.get(current, current.lower())
            if name == "title":
                return 1
            match = _HEADING_NAME.fullmatch(name)
            if match:
                return int(match.group(1))
            if current in self.outline:
                lvl = self.outline[current]
                return lvl + 1 if 0 <= lvl < 9 else None
            current = self.based_on.get(current)
        return None

    def list_num_id(self, sid: str) -> str | None:
        seen: set[str] = set()
        current: str | None = sid
        while current and current not in seen and len(seen) < 16:
            seen.add(current)
            if current in self.num_id:
                return self.num_id[current]
            current = self.based_on.get(current)
        return None


def _numbering(root: Any) -> dict[tuple[str, int], bool]:
    """(numId, level) -> ordered (True) or bulleted."""
    if root is None:
        return {}
    abstract: dict[str, dict[int, bool]] = {}
    nums: dict[str, str] = {}
    for c in root:
        k = _key(c.tag)
        if k == "w:abstractNum":
            aid = _get(c, _wkeys("abstractNumId")) or ""
            levels: dict[int, bool] = {}
            for lvl in c:
                if _key(lvl.tag) != "w:lvl":
                    continue
                fmt = _child(lvl, "w:numFmt")
                value = _get(fmt, _VAL_KEYS) if fmt is not None else None
                ilvl = _int(_get(lvl, _wkeys("ilvl")), 0)
                levels[ilvl] = value not in (None, "bullet", "none")
            abstract[aid] = levels
        elif k == "w:num":
            nid = _get(c, _wkeys("numId")) or ""
            ref = _child(c, "w:abstractNumId")
            if ref is not None:
                nums[nid] = _get(ref, _VAL_KEYS) or ""
    return {
        (nid, ilvl): ordered
        for nid, aid in nums.items()
        for ilvl, ordered in abstract.get(aid, {}).items()
    }


class _Walker:
    """Turns WordprocessingML block content into `_Block`s."""

    def __init__(self, styles: _Styles, numbering: dict[tuple[str, int], bool]) -> None:
        self.styles = styles
        self.numbering = numbering
        self.headings = 0
        self.tables = 0
        self.nested_tables = 0
        self.links: dict[str, str] = {}  # the current part's hyperlinks, by relationship id

    # Block level -------------------------------------------------------------------------

    def blocks(self, container: Any, out: list[_Block], in_cell: bool = False) -> None:
        for child in container:
            k = _key(child.tag)
            if k == "w:p":
                self.paragraph(child, out, in_cell)
            elif k == "w:tbl":
                self.table(child, out, in_cell)
            elif k == "mc:AlternateContent":
                chosen = _choose(child)
                if chosen is not None:
                    self.blocks(chosen, out, in_cell)
            elif not k or k in _SKIP or k.endswith("Pr"):
                continue
            elif len(child):
                # w:sdt / w:sdtContent, w:customXml, w:ins, w:moveTo, and anything unknown.
                self.blocks(child, out, in_cell)

    def paragraph(self, p: Any, out: list[_Block], in_cell: bool) -> None:
        parts: list[str] = []
        links: list[tuple[int, int, str]] = []
        extras: list[_Block] = []
        self.inline(p, parts, links, extras, in_cell)
        text = "".join(parts).replace("\r", "").strip()
        if text:
            marked = text
            if links and not in_cell:
                for start, end, url in links:
                    parts[start] = "[" + parts[start]
                    parts[end - 1] = parts[end - 1] + f"]({url})"
                marked = "".join(parts).replace("\r", "").strip()
            out.append(self.paragraph_block(p, text, marked, in_cell))
        out.extend(extras)

    def paragraph_block(self, p: Any, text: str, marked: str, in_cell: bool) -> _Block:
        """`marked` is `text` with its hyperlinks as Markdown links."""
        if in_cell:
            return _Block("p", text, text)
        ppr = _child(p, "w:pPr")
        style = num_id = None
        ilvl = 0
        level: int | None = None
        if ppr is not None:
            pstyle = _child(ppr, "w:pStyle")
            style = _get(pstyle, _VAL_KEYS) if pstyle is not None else None
            outline = _child(ppr, "w:outlineLvl")
            if outline is not None:
                lvl = _int(_get(outline, _VAL_KEYS), 9)
                level = lvl + 1 if 0 <= lvl < 9 else None
            numpr = _child(ppr, "w:numPr")
            if numpr is not None:
                nid = _child(numpr, "w:numId")
                num_id = _get(nid, _VAL_KEYS) if nid is not None else None
                il = _child(numpr, "w:ilvl")
                ilvl = _int(_get(il, _VAL_KEYS), 0) if il is not None else 0
        if level is None and style:
            level = self.styles.heading_level(style)
        if level is not None:
            self.headings += 1
            return _Block("h", md.heading(marked, level), text)
        if num_id is None and style:
            num_id = self.styles.list_num_id(style)
        if num_id is not None and num_id != "0":
            ordered = self.numbering.get((num_id, ilvl), False)
            marker = "1." if ordered else "-"
            indent = "   " * min(max(ilvl, 0), 8) if ordered else "  " * min(max(ilvl, 0), 8)
            body = " ".join(line.strip() for line in marked.split("\n"))
            return _Block("li", f"{indent}{marker} {body}", text)
        lines = [md.escape_inline(line.strip()) for line in marked.split("\n")]
        return _Block("p", "\n".join(line for line in lines if line), text)

    # Inline level ------------------------------------------------------------------------

    def inline(
        self,
        el: Any,
        parts: list[str],
        links: list[tuple[int, int, str]],
        extras: list[_Block],
        in_cell: bool,
    ) -> None:
        for child in el:
            k = _key(child.tag)
            if k in ("w:t", "m:t"):
                if child.text:
                    parts.append(child.text)
            elif k == "w:tab" or k == "w:ptab":
                parts.append("\t")
            elif k in ("w:br", "w:cr"):
                parts.append("\n")
            elif k == "w:noBreakHyphen":
                parts.append("-")
            elif k == "w:sym":
                parts.append(_symbol(child))
            elif k == "w:txbxContent":
                self.blocks(child, extras, in_cell)
            elif k in ("w:p", "w:tbl"):
                self.blocks([child], extras, in_cell)  # block content where runs belong
            elif k == "mc:AlternateContent":
                chosen = _choose(child)
                if chosen is not None:
                    self.inline(chosen, parts, links, extras, in_cell)
            elif not k or k in _SKIP or k.endswith("Pr"):
                continue
            elif k == "w:hyperlink":
                start = len(parts)
                self.inline(child, parts, links, extras, in_cell)
                url = self.links.get(_get(child, _RID_KEYS) or "")
                if url and len(parts) > start and "".join(parts[start:]).strip():
                    links.append((start, len(parts), _link_target(url)))
            elif len(child):
                # w:r, w:fldSimple, w:smartTag, w:sdt(Content), w:ins, w:drawing...
                self.inline(child, parts, links, extras, in_cell)

    # Tables ------------------------------------------------------------------------------

    def table(self, tbl: Any, out: list[_Block], in_cell: bool) -> None:
        self.tables += 1
        if in_cell:
            self.nested_tables += 1
        try:
            rows = self.table_rows(tbl)
        except (ValueError, TypeError, IndexError, KeyError):
            # Degrade to the cells' text rather than fail the document.
            cells: list[_Block] = []
            self.blocks(tbl, cells, True)
            out.extend(_Block("p", md.escape_inline(b.text), b.text) for b in cells)
            return
        rows = [r for r in rows if any(c for c in r)]
        if not rows:
            return
        if in_cell:
            inline = " / ".join("; ".join(c for c in r if c) for r in rows)
            out.append(_Block("p", inline, inline))
            return
        text = "\n".join(" | ".join(r) for r in rows)
        out.append(_Block("table", md.table(rows), text))

    def table_rows(self, tbl: Any) -> list[list[str]]:
        rows: list[list[str]] = []
        for tr in _descend(tbl, "w:tr", "w:tbl"):
            row: list[str] = []
            trpr = _child(tr, "w:trPr")
            after = 0
            if trpr is not None:
                before = _child(trpr, "w:gridBefore")
                if before is not None:
                    row += [""] * min(max(_int(_get(before, _VAL_KEYS), 0), 0), _MAX_SPAN)
                aft = _child(trpr, "w:gridAfter")
                if aft is not None:
                    after = min(max(_int(_get(aft, _VAL_KEYS), 0), 0), _MAX_SPAN)
            for tc in _descend(tr, "w:tc", "w:tbl"):
                span = 1
                tcpr = _child(tc, "w:tcPr")
                if tcpr is not None:
                    gs = _child(tcpr, "w:gridSpan")
                    if gs is not None:
                        span = min(max(_int(_get(gs, _VAL_KEYS), 1), 1), _MAX_SPAN)
                # A vMerge continuation cell is empty in Word: its own (empty) text is used,
                # never the value of the cell above, so the value stays in the first cell.
                content: list[_Block] = []
                self.blocks(tc, content, True)
                row.append(" ".join(" ".join(b.text.split()) for b in content))
                row += [""] * (span - 1)
            row += [""] * after
            rows.append(row)
        return rows


def _descend(el: Any, want: str, stop: str) -> Any:
    """Children `want` of `el`, looking through wrappers (w:sdt, w:customXml, ...) but not
    into `stop` elements."""
    for child in el:
        k = _key(child.tag)
        if k == want:
            yield child
        elif k == "mc:AlternateContent":
            chosen = _choose(child)
            if chosen is not None:
                yield from _descend(chosen, want, stop)
        elif k and k != stop and k not in _SKIP and not k.endswith("Pr") and len(child):
            yield from _descend(child, want, stop)


def _link_target(url: str) -> str:
    """A URL as a Markdown link destination."""
    if any(c in url for c in " ()"):
        return "<" + url + ">"
    return url


def _symbol(el: Any) -> str:
    value = _get(el, _CHAR_KEYS) or ""
    if not re.fullmatch(r"[0-9A-Fa-f]{1,6}", value):
        return ""
    code = int(value, 16)
    if 0xF000 <= code <= 0xF0FF:  # symbol fonts map their glyphs into the private use area
        code -= 0xF000
    return chr(code) if 0x20 <= code < 0x110000 else ""


def _join(blocks: list[_Block]) -> tuple[str, str]:
    """(Markdown, plain text) of consecutive blocks."""
    md_out: list[str] = []
    text_out: list[str] = []
    previous = ""
    for block in blocks:
        if md_out:
            md_out.append("\n" if previous == "li" and block.kind == "li" else "\n\n")
        md_out.append(block.markdown)
        if block.kind == "h" and text_out:
            text_out.append("")
        text_out.append(block.text)
        if block.kind == "table":
            text_out.append("")
        previous = block.kind
    return "".join(md_out), "\n".join(text_out).strip()


def _text_of(root: Any, local: str) -> str | None:
    if root is None:
        return None
    for el in root.iter(f"{{*}}{local}"):
        if el.text and el.text.strip():
            return str(el.text).strip()
    return None


def extract_docx(data: bytes, limits: Limits) -> Extraction:
    with _open_checked(data, limits) as archive:
        package = _Package(archive, limits.docx_max_uncompressed_bytes)
        return _extract(package)


def _extract(package: _Package) -> Extraction:
    package_rels, _ = package.rels("")
    try:
        root = package.xml("_rels/.rels")
    except etree.XMLSyntaxError:
        root = None
    main = sniff.main_part(root) if root is not None else None  # what the upload checked
    if main is None or not package.has(main):
        main = "word/document.xml" if package.has("word/document.xml") else None
    if main is None:
        raise ExtractionError(
            "malformed_document", "not a Word document: the package has no main document part"
        )
    try:
        root = package.xml(main)
    except etree.XMLSyntaxError as exc:
        raise ExtractionError(
            "malformed_document", f"the main document part is not XML ({exc.msg})"
        ) from None
    if root is None or _key(root.tag) != "w:document":
        raise ExtractionError(
            "malformed_document", "not a Word document: the main part is not WordprocessingML"
        )
    rels, walker_links = package.rels(main)
    unreadable: list[str] = []

    def part_xml(name: str) -> Any:
        try:
            return package.xml(name)
        except etree.XMLSyntaxError:
            unreadable.append(name)
            return None

    styles_part = next((t for k, t in rels if k == "styles"), None)
    numbering_part = next((t for k, t in rels if k == "numbering"), None)
    walker = _Walker(
        _Styles.parse(part_xml(styles_part) if styles_part else None),
        _numbering(part_xml(numbering_part) if numbering_part else None),
    )

    body = _child(root, "w:body")
    body_blocks: list[_Block] = []
    walker.links = walker_links
    if body is not None:
        walker.blocks(body, body_blocks)
    body_md, body_text = _join(body_blocks)
    md_parts = [body_md] if body_md else []
    text_parts = [body_text] if body_text else []
    read = ["body"]

    for kind, label in _SECTIONS:
        names = list(dict.fromkeys(t for k, t in rels if k == kind))
        seen: set[str] = set()
        section_md: list[str] = []
        section_text: list[str] = []
        for name in names:
            part = part_xml(name)
            if part is None:
                continue
            if label.lower() not in read:
                read.append(label.lower())
            walker.links = package.rels(name)[1]
            for container in _containers(part, kind):
                blocks: list[_Block] = []
                walker.blocks(container, blocks)
                part_md, part_text = _join(blocks)
                # Sections repeat the same header or footer; notes and comments may agree.
                if not part_md or (kind in ("header", "footer") and part_md in seen):
                    continue
                seen.add(part_md)
                section_md.append(part_md)
                section_text.append(part_text)
        if section_md:
            md_parts.append(md.heading(label, 2) + "\n\n" + "\n\n".join(section_md))
            text_parts.append(label + "\n" + "\n\n".join(section_text))

    core_part = next((t for k, t in package_rels if k == "core-properties"), "docProps/core.xml")
    core = part_xml(core_part)
    app_part = next(
        (t for k, t in package_rels if k in ("extended-properties", "extendedProperties")),
        "docProps/app.xml",
    )
    app = part_xml(app_part)
    pages_text = _text_of(app, "Pages")
    pages = _int(pages_text, 0) if pages_text else 0

    details: dict[str, Any] = {
        "headings": walker.headings,
        "tables": walker.tables,
        "parts": read,
    }
    if walker.nested_tables:
        details["nested_tables"] = walker.nested_tables
    if main.lower() != "word/document.xml":
        details["main_part"] = main
    if unreadable:
        details["unreadable_parts"] = unreadable
    return Extraction(
        text="\n\n".join(text_parts),
        extractor="docx",
        markdown="\n\n".join(md_parts) + ("\n" if md_parts else ""),
        pages=pages if pages > 0 else None,
        page_starts=[],
        title=_text_of(core, "title"),
        author=_text_of(core, "creator"),
        details=details,
    )


def _containers(part: Any, kind: str) -> list[Any]:
    """The block containers of a part: the part itself for headers and footers, one per
    note or comment otherwise (notes' separators skipped)."""
    if kind in ("header", "footer"):
        return [part]
    wanted = {"footnotes": "w:footnote", "endnotes": "w:endnote", "comments": "w:comment"}[kind]
    return [
        c for c in part if _key(c.tag) == wanted and _get(c, _TYPE_KEYS) not in _NOTE_SEPARATORS
    ]

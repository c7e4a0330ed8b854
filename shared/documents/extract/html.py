"""HTML: the visible text, and the same content as GitHub Markdown.

Parsed by lexbor (selectolax), an HTML5 parser: end tags the standard lets authors omit
(`</head>`, `</p>`, `</li>`, ...) are implied as a browser implies them, so
`<html><head><title>T</title><body><p>Hello` keeps its body.

What is read:

- Never: script, style, noscript, template, svg, head (but its <title>), iframe, object,
  embed, canvas, audio, video, select and datalist, and elements hidden with the `hidden`
  attribute or an inline `display:none` / `visibility:hidden`.
- Main content, as trafilatura and readability pick it: the page's <main> (or role=main),
  else its only <article>, else the body; within it, navigation and boilerplate are left
  out: nav, the page's own header/footer/aside (not those of an article or section), role
  navigation/banner/contentinfo/search/menubar, cookie and consent banners, menus,
  breadcrumbs, sidebars and share bars (by class or id), and link lists (a list of >= 3
  links whose text is >= 80 % link text: menus, tag clouds, category and "see also" lists).
- But a simple document is never emptied: when the main content has less than 25 % of the
  page's visible text, or less than 200 characters while the page has more, the text is all
  the visible text (`details["content"]` says "main" or "all").

Markdown: headings h1-h6 as `#`, lists as `-` / `1.` (nested lists indented), tables as GFM
tables (`markdown.table`; a colspan/rowspan keeps its value in the first cell of the span,
the others empty; the first row is the header when it is all <th> or in <thead>, else the
header row is empty), pre as fenced code blocks, inline code in backticks, blockquote as `>`,
links as their text. Layout tables (role=presentation, one column, or holding a table) are
read as blocks. `text` is the same content as plain text (list markers kept, table rows as
`a | b`). The title is the <title>, else the first <h1>.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from shared.documents.extract import Extraction
from shared.documents.extract.markdown import escape_inline, heading, table

_DROP = {
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "head",
    "title",
    "iframe",
    "object",
    "embed",
    "canvas",
    "audio",
    "video",
    "select",
    "datalist",
}
_BLOCKS = {
    "address",
    "article",
    "aside",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hgroup",
    "html",
    "legend",
    "li",
    "main",
    "nav",
    "p",
    "section",
    "summary",
    "td",
    "th",
    "tr",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_LISTS = {"ul", "ol", "menu"}
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "search", "menubar"}
# class / id words that mark boilerplate (a word: split at anything not a letter or digit).
_BOILERPLATE_WORDS = {
    "nav",
    "navbar",
    "navigation",
    "menu",
    "breadcrumb",
    "breadcrumbs",
    "sidebar",
    "cookie",
    "cookies",
    "consent",
    "gdpr",
    "share",
    "sharing",
    "social",
    "skip",
    "advertisement",
    "ads",
}
_SECTIONING = {"article", "section", "main", "nav", "aside"}
# Deeper than this, an element's text is taken flat (no recursion).
_MAX_DEPTH = 100
# The most cells a table may grow to by its spans before it is read as plain blocks.
_MAX_TABLE_CELLS = 250_000
_MAX_COLSPAN = 1000
_MIN_MAIN_SHARE = 0.25
_MIN_MAIN_CHARS = 200


@dataclass
class _Block:
    md: str
    text: str
    items: list[str] | None = None  # a list's items, flat (for a table cell)


@dataclass
class _Out:
    """Blocks, and the inline run being gathered (Markdown and text side by side)."""

    blocks: list[_Block] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def add(self, md: str, text: str | None = None) -> None:
        self.md.append(md)
        self.text.append(md if text is None else text)

    def flush(self) -> None:
        md_lines = _lines("".join(self.md))
        text_lines = _lines("".join(self.text))
        self.md.clear()
        self.text.clear()
        if text_lines or md_lines:
            md = "\n".join(escape_inline(line) for line in md_lines)
            self.blocks.append(_Block(md, "\n".join(text_lines)))

    def block(self, md: str, text: str, items: list[str] | None = None) -> None:
        self.flush()
        if md or text:
            self.blocks.append(_Block(md, text, items))


def _lines(run: str) -> list[str]:
    lines = (" ".join(line.split()) for line in run.split("\n"))
    return [line for line in lines if line]


def _words(value: str | None) -> set[str]:
    if not value:
        return set()
    cleaned = "".join(ch.lower() if ch.isalnum() else " " for ch in value)
    return set(cleaned.split())


def _hidden(node: LexborNode) -> bool:
    attributes = node.attributes
    if "hidden" in attributes:
        return True
    style = (attributes.get("style") or "").lower().replace(" ", "")
    return "display:none" in style or "visibility:hidden" in style


class _Renderer:
    def __init__(self, skip: Callable[[LexborNode], bool]) -> None:
        self.skip = skip

    def render(self, node: LexborNode) -> list[_Block]:
        out = _Out()
        self._children(node, out, 0)
        out.flush()
        return out.blocks

    def _sub(self, node: LexborNode, depth: int) -> list[_Block]:
        out = _Out()
        self._children(node, out, depth + 1)
        out.flush()
        return out.blocks

    def _children(self, node: LexborNode, out: _Out, depth: int) -> None:
        for child in node.iter(include_text=True):
            self._node(child, out, depth)

    def _node(self, node: LexborNode, out: _Out, depth: int) -> None:
        tag = node.tag
        if tag == "-text":
            raw = node.text_content or ""
            words = " ".join(raw.split())
            if words:
                lead = " " if raw[0].isspace() else ""
                out.add(lead + words + (" " if raw[-1].isspace() else ""))
            elif raw:
                out.add(" ")
            return
        if not node.is_element_node or tag in _DROP or _hidden(node) or self.skip(node):
            return
        if depth > _MAX_DEPTH:
            out.add(" " + node.text(deep=True, separator=" ") + " ")
            return
        if tag == "br":
            out.add("\n")
        elif tag in _HEADINGS:
            title = " ".join(" ".join(block.text for block in self._sub(node, depth)).split())
            if title:
                out.block(heading(title, _HEADINGS[tag]), title)
        elif tag in _LISTS:
            self._list(node, out, depth)
        elif tag == "table":
            self._table(node, out, depth)
        elif tag == "pre":
            self._pre(node, out)
        elif tag == "blockquote":
            blocks = self._sub(node, depth)
            md = "\n>\n".join(
                "\n".join("> " + line if line else ">" for line in block.md.split("\n"))
                for block in blocks
                if block.md
            )
            out.block(md, "\n\n".join(block.text for block in blocks if block.text))
        elif tag == "hr":
            out.block("---", "")
        elif tag == "code":
            code = " ".join(node.text(deep=True).split())
            if code:
                out.add(f"`` {code} ``" if "`" in code else f"`{code}`", code)
        elif tag in _BLOCKS:
            out.flush()
            self._children(node, out, depth + 1)
            out.flush()
        else:
            self._children(node, out, depth + 1)

    def _list(self, node: LexborNode, out: _Out, depth: int) -> None:
        ordered = node.tag == "ol"
        try:
            number = int((node.attributes.get("start") or "1").strip())
        except ValueError:
            number = 1
        md_items: list[str] = []
        text_items: list[str] = []
        flat: list[str] = []
        for child in node.iter(include_text=False):
            if not child.is_element_node or _hidden(child) or self.skip(child):
                continue
            if child.tag in _DROP:
                continue
            blocks = self._sub(child, depth)
            if not blocks:
                continue
            if child.tag == "li":
                marker = f"{number}." if ordered else "-"
                number += 1
            else:
                marker = ""  # not an item (a list directly in a list): indented only
            md_items.append(_item(marker, [block.md for block in blocks if block.md]))
            text_items.append(_item(marker, [block.text for block in blocks if block.text]))
            flat.append(_cell_text(blocks))
        out.block("\n".join(md_items), "\n".join(text_items), flat)

    def _pre(self, node: LexborNode, out: _Out) -> None:
        code = node.text(deep=True)
        if code.startswith("\n"):
            code = code[1:]
        code = code.rstrip()
        if not code.strip():
            return
        language = ""
        for holder in (node, node.css_first("code")):
            if holder is None:
                continue
            for word in (holder.attributes.get("class") or "").split():
                for prefix in ("language-", "lang-"):
                    if word.startswith(prefix) and not language:
                        language = word[len(prefix) :]
        fence = "```"
        while fence in code:
            fence += "`"
        out.block(f"{fence}{language}\n{code}\n{fence}", code)

    def _table(self, node: LexborNode, out: _Out, depth: int) -> None:
        rows, header = self._rows(node)
        grid = (
            None
            if (node.attributes.get("role") or "").lower() in ("presentation", "none")
            or len(node.css("table")) > 1  # css() includes the node itself
            else self._grid(rows, depth)
        )
        if grid is None or max((len(row) for row in grid), default=0) < 2:
            # a layout table: its cells are blocks
            out.flush()
            self._children(node, out, depth + 1)
            out.flush()
            return
        for caption in node.iter(include_text=False):
            if caption.tag != "caption":
                continue
            title = " ".join(block.text for block in self._sub(caption, depth)).strip()
            if title:
                out.block(escape_inline(title), title)
        text = "\n".join(" | ".join(value for value in row if value) for row in grid)
        out.block(table(grid, header=header), text)

    def _rows(self, node: LexborNode) -> tuple[list[LexborNode], bool]:
        """The table's own rows (not a nested table's), and whether the first is a header."""
        rows: list[LexborNode] = []
        header = False
        for child in node.iter(include_text=False):
            if child.tag == "tr":
                rows.append(child)
            elif child.tag in ("thead", "tbody", "tfoot"):
                for row in child.iter(include_text=False):
                    if row.tag == "tr":
                        if child.tag == "thead" and not rows:
                            header = True
                        rows.append(row)
        if rows and not header:
            cells = [c for c in rows[0].iter(include_text=False) if c.tag in ("td", "th")]
            header = bool(cells) and all(c.tag == "th" for c in cells)
        return rows, header

    def _grid(self, rows: list[LexborNode], depth: int) -> list[list[str]] | None:
        """The rows as a grid; a span's value in its first cell, the rest empty."""
        taken: dict[tuple[int, int], str] = {}
        for r, row in enumerate(rows):
            c = 0
            for cell in row.iter(include_text=False):
                if cell.tag not in ("td", "th") or _hidden(cell) or self.skip(cell):
                    continue
                while (r, c) in taken:
                    c += 1
                value = _cell_text(self._sub(cell, depth))
                colspan = min(max(_int(cell.attributes.get("colspan"), 1), 1), _MAX_COLSPAN)
                rowspan = _int(cell.attributes.get("rowspan"), 1)
                if rowspan <= 0 or rowspan > len(rows) - r:
                    rowspan = len(rows) - r  # 0 means "to the end"
                if len(taken) + colspan * rowspan > _MAX_TABLE_CELLS:
                    return None
                for dr in range(rowspan):
                    for dc in range(colspan):
                        taken[(r + dr, c + dc)] = ""
                taken[(r, c)] = value
                c += colspan
        if not taken:
            return None
        height = max(r for r, _ in taken) + 1
        width = max(c for _, c in taken) + 1
        if height * width > _MAX_TABLE_CELLS:
            return None
        return [[taken.get((r, c), "") for c in range(width)] for r in range(height)]


def _cell_text(blocks: list[_Block]) -> str:
    """Blocks as one line for a table cell: a list's items separated by "; "."""
    return " ".join("; ".join(b.items) if b.items is not None else b.text for b in blocks)


def _int(value: str | None, default: int) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        return default


def _item(marker: str, blocks: list[str]) -> str:
    """One list item: the marker before its first line, the rest indented under it."""
    indent = " " * (len(marker) + 1) if marker else "  "
    lines = "\n".join(blocks).split("\n")
    first = f"{marker} {lines[0]}" if marker else indent + lines[0]
    return "\n".join([first, *(indent + line if line else line for line in lines[1:])])


# --- main content --------------------------------------------------------------------


def _in_section(node: LexborNode) -> bool:
    """Whether a header/footer/aside belongs to an article or section, not the page."""
    parent = node.parent
    while parent is not None and parent.tag not in ("body", "html"):
        if parent.tag in _SECTIONING:
            return True
        parent = parent.parent
    return False


def _link_list(node: LexborNode) -> bool:
    links = node.css("a")
    if len(links) < 3:
        return False
    total = len("".join(node.text(deep=True).split()))
    linked = sum(len("".join(link.text(deep=True).split())) for link in links)
    return total > 0 and linked >= 0.8 * total


def _boilerplate(root: LexborNode, page_chars: int) -> Callable[[LexborNode], bool]:
    def skip(node: LexborNode) -> bool:
        if node == root:
            return False
        tag = node.tag
        if tag == "nav":
            return True
        if tag in ("header", "footer", "aside") and not _in_section(node):
            return True
        attributes = node.attributes
        role = (attributes.get("role") or "").lower()
        if role in _BOILERPLATE_ROLES:
            return True
        words = _words(attributes.get("class")) | _words(attributes.get("id"))
        if words & _BOILERPLATE_WORDS:
            # never a block that holds most of the page
            own = len("".join(node.text(deep=True).split()))
            if own * 2 < page_chars:
                return True
        return tag in _LISTS and _link_list(node)

    return skip


def _main_root(body: LexborNode) -> LexborNode | None:
    main = body.css_first("main") or body.css_first('[role="main"]')
    if main is not None:
        return main
    articles = body.css("article")
    return articles[0] if len(articles) == 1 else None


def _joined(blocks: list[_Block]) -> tuple[str, str]:
    md = "\n\n".join(block.md for block in blocks if block.md)
    text = "\n\n".join(block.text for block in blocks if block.text)
    return md, text


def _chars(text: str) -> int:
    return len("".join(text.split()))


def extract_html(text: str) -> Extraction:
    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    title = " ".join(title_node.text(deep=True).split()) if title_node is not None else ""
    body = tree.body or tree.root
    if not title:
        first_h1 = tree.css_first("h1")
        title = " ".join(first_h1.text(deep=True).split()) if first_h1 is not None else ""
    if body is None:
        return Extraction(text="", extractor="html", markdown="", title=title or None)

    md, plain = _joined(_Renderer(lambda node: False).render(body))
    content = "all"
    page_chars = _chars(plain)
    root = _main_root(body)
    skip = _boilerplate(root or body, page_chars)
    main_md, main_text = _joined(_Renderer(skip).render(root or body))
    main_chars = _chars(main_text)
    if main_chars >= _MIN_MAIN_SHARE * page_chars and not (
        main_chars < _MIN_MAIN_CHARS < page_chars
    ):
        md, plain, content = main_md, main_text, "main"
    return Extraction(
        text=plain,
        extractor="html",
        markdown=md,
        title=title or None,
        details={"content": content},
    )

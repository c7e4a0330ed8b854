"""Content detection from the bytes; the filename never decides the format.

`sniff(data, name=...)` answers one of `SUPPORTED` or None (unsupported: the job fails at once
with `unsupported_content`). It runs on every upload, in the request thread, so it is cheap and
bounded: binary formats are recognised by their signature, and text formats are classified on
the first 64 KiB.

Order of the checks:

1. PDF: `%PDF-` followed by a version digit within the first 1024 bytes (readers accept junk
   before the header, so we do too); or, further in but within the first 64 KiB, `%PDF-d.d`
   at the start of a line with a `%%EOF` after it, in a file that is binary or ends as a PDF
   ends (`startxref` ... `%%EOF`); pdftotext reads such files, and the extractor cuts the
   junk off at `pdf_header_offset`. The extra conditions keep a text that quotes PDF syntax
   (a tutorial with a code block) a text.
2. ZIP (`PK\\x03\\x04` at offset 0): a DOCX when its central directory lists
   `word/document.xml` (nothing is decompressed then). Otherwise the package is asked where
   its main part is, as Word does: `_rels/.rels` names it through an officeDocument
   relationship (transitional or ISO 29500 Strict), and `[Content_Types].xml` must give it
   the WordprocessingML main content type (Word Online writes `word/document2.xml`). Only
   those two small parts are read, each capped at 64 KiB inflated, and parsed by lxml with
   entities, DTDs and network access off (a part with a DOCTYPE is refused). Any other ZIP,
   or one that cannot be opened, is unsupported.
3. Other known binary signatures (PNG, JPEG, GIF, ELF, gzip, OLE2, ...): unsupported.
4. Text (see `decode_text`): HTML, then CSV, then Markdown, else plain text. Anything that
   does not decode as text is unsupported, and so is an SVG image (text, but an image).

CSV rule (`csv_delimiter`): the first of `,` `;` tab `|` whose records (up to 20, blank lines
skipped; a line of delimiters only is a record of empty fields) agree on one width >= 2 in
90 % of them and are values rather than prose. A file too small or too ragged for that
(one line, or rows of varying width, as csvkit's examples are) is still CSV when its
structure is unmistakably tabular: a single line of at least two numbers; or a first row of
at least three non-empty short fields, at least half the rows with two fields or more, and
no field that reads like prose (leading space after a delimiter, more than six words outside
quotes). `|` never takes the small/ragged path.

The declared name (`name`, optional) only ever chooses between two text types, never between
text and a binary format, nor whether a file is accepted:

- a `.txt`/`.text` name keeps `|`-separated text plain text (pipes are common in plain text:
  ASCII tables, logs, shell lines). Comma-, semicolon- and tab-separated `.txt` files stay
  CSV, since spreadsheets export exactly these as `.txt`;
- a `.md`/`.markdown` name makes text with no or a single Markdown signal Markdown (plain
  text is valid Markdown, and the signals cannot tell short Markdown from text), and keeps a
  `|`-separated file Markdown.

Without a name, content alone decides (`|`-separated text is then CSV).

Linear time, by construction: sniff runs in the request thread on untrusted bytes, so every
pattern here is an RE2 pattern (google-re2, a linear-time automaton with no backtracking) or a
plain scan; none uses Python's backtracking `re`. A backtracking engine took 17 s on a 64 KiB
file of `[a](` repeated. The classifiers only ever see the 64 KiB sample (2 KiB for the HTML
and SVG checks); the whole file is only decoded and counted for control characters.

RE2 and Python's `re` differ in a few places; the patterns are written so that they match
exactly what the earlier `re` patterns matched:

- `\\s` is ASCII in RE2, Unicode in Python: it is spelled out as `_SPACE` (str.isspace()).
- `\\d` is ASCII in RE2: `\\p{Nd}` is Python's Unicode `\\d`.
- `\\b` is ASCII in RE2: the word boundary after `<html`, `<svg` is checked in Python
  (`_word_ends`), with Python's own notion of a word character.
- Case-insensitive letters are spelled out as classes (`_ci`), with the extra characters
  Python's IGNORECASE folds onto `i`, `k` and `s`, which RE2's case folding partly lacks.
- No look-ahead: a search for "tag followed by one of these" finds the same texts as "tag
  where one of these follows".

tests/unit/test_sniff_linear.py checks each of these against Python's `re`.
"""

from __future__ import annotations

import codecs
import csv
import io
import posixpath
import zipfile
from collections import Counter
from typing import Any
from urllib.parse import unquote

import re2

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
CSV = "text/csv"
TEXT_PLAIN = "text/plain"

SUPPORTED = (PDF, DOCX, HTML, MARKDOWN, CSV, TEXT_PLAIN)
TEXT_TYPES = (HTML, MARKDOWN, CSV, TEXT_PLAIN)

_EXTENSIONS = {
    PDF: ".pdf",
    DOCX: ".docx",
    HTML: ".html",
    MARKDOWN: ".md",
    CSV: ".csv",
    TEXT_PLAIN: ".txt",
}

# How much of the text the classifiers look at.
_SAMPLE_CHARS = 64 * 1024
# Text may carry a few stray control characters (form feeds are fine); binary carries many.
_MAX_CONTROL_RATIO = 0.01

_PDF_MAGIC = b"%PDF-"
_PDF_HEADER_WINDOW = 1024
# Further in, up to here, a header is accepted at a line start with a %%EOF after it.
_PDF_JUNK_WINDOW = 64 * 1024
_PDF_EOF = b"%%EOF"
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_DOCX_MAIN_PART = "word/document.xml"
_DOCX_MAIN_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_OFFICE_DOCUMENT_RELATIONSHIPS = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",  # Strict
)
_PACKAGE_RELS = "_rels/.rels"
_CONTENT_TYPES = "[Content_Types].xml"
# The most sniffing inflates of either package part.
_PACKAGE_PART_MAX = 64 * 1024

# Signatures of binary formats we do not accept. Most of them would fail the text test
# anyway (NUL bytes); listing them keeps a crafted header from passing as Latin-1 text.
_BINARY_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",  # GIF
    b"GIF89a",
    b"\x7fELF",  # ELF executables
    b"\x1f\x8b",  # gzip
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE2 (legacy .doc/.xls)
    b"7z\xbc\xaf\x27\x1c",  # 7-Zip
    b"Rar!\x1a\x07",  # RAR
    b"PK\x05\x06",  # empty ZIP
    b"PK\x07\x08",  # spanned ZIP
)

# C0 control characters other than \t \n \f \r (bytes and code points alike).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\f\r")

# --- RE2 building blocks ------------------------------------------------------------
# Python's `\s` (str.isspace(): category Zs, or bidirectional class B, S or WS), as the body
# of an RE2 character class.
_SPACE = r"\t-\r\x1c-\x1f\x85\x{2028}\x{2029}\p{Zs}"
# What Python's re.IGNORECASE matches for an ASCII letter, beyond its two cases.
_FOLDS = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}


def _ci(pattern: str) -> str:
    """`pattern` with each lower-case ASCII letter made a class that matches what
    re.IGNORECASE matches for it; everything else is left as it is."""
    return "".join(
        f"[{ch}{ch.upper()}{_FOLDS.get(ch, '')}]" if "a" <= ch <= "z" else ch for ch in pattern
    )


def _is_word_char(ch: str) -> bool:
    """Python's `\\w` for one character (what `re` uses for `\\b`)."""
    return ch.isalnum() or ch == "_"


# --- HTML ---------------------------------------------------------------------------
# Each matched at the start of the head, then `_word_ends` checks the `\b` that follows.
_HTML_DOCUMENT = re2.compile(f"<!{_ci('doctype')}[{_SPACE}]+{_ci('html')}|<{_ci('html')}")
_HTML_TAG = re2.compile(
    "</?(?:"
    + _ci(
        "html|head|body|title|meta|link|style|script|div|span|p|a|br|hr|img|"
        "h[1-6]|table|thead|tbody|tr|td|th|ul|ol|li|dl|dt|dd|section|article|header|"
        "footer|nav|main|aside|form|pre|code|blockquote|em|strong|b|i|u"
    )
    + f")[{_SPACE}/>]"  # the tag name ends: a space, a slash or the tag's end
)
_SVG_ROOT = re2.compile(f"<{_ci('svg')}")
_HTML_HEAD_CHARS = 2048

# --- CSV ----------------------------------------------------------------------------
_CSV_DELIMITERS = (",", ";", "\t", "|")
_CSV_SAMPLE_RECORDS = 20
_CSV_MIN_CONSISTENCY = 0.9
# A field of a small or ragged table has at most this many words (unless the file quotes).
_RAGGED_MAX_WORDS = 6
# Searched in a stripped string: RE2's `$` is the end of the text (Python's also matched
# before a final newline, which a stripped string does not have).
_SENTENCE_END = re2.compile(r"[.!?][\"')\]]*$")
# A fully quoted field next to a delimiter, per delimiter.
_QUOTED_FIELD = {
    d: re2.compile(f'(?m)(?:^|{re2.escape(d)})"[^"\\n]*"(?:{re2.escape(d)}|$)')
    for d in _CSV_DELIMITERS
}

# --- Markdown -----------------------------------------------------------------------
_MD_TABLE_RULE = re2.compile(
    r"(?m)^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$"
)
_MARKDOWN_SIGNALS = (
    # ATX headings, or setext headings (a text line underlined with === or ---)
    re2.compile(f"(?m)^#{{1,6}}[ \\t]+[^{_SPACE}]|^[^{_SPACE}].*\\n(?:={{3,}}|-{{3,}})[ \\t]*$"),
    # list items
    re2.compile(f"(?m)^[ \\t]*(?:[-*+]|\\p{{Nd}}{{1,9}}[.)])[ \\t]+[^{_SPACE}]"),
    # fenced code
    re2.compile(r"(?m)^[ \t]{0,3}(?:```|~~~)"),
    # inline links and images
    re2.compile(f'!?\\[[^\\]\\n]+\\]\\([^){_SPACE}]+(?:[ \\t]+"[^"\\n]*")?\\)'),
    # strong emphasis
    re2.compile(
        f"\\*\\*[^*{_SPACE}](?:[^*\\n]*[^*{_SPACE}])?\\*\\*|__[^_{_SPACE}](?:[^_\\n]*[^_{_SPACE}])?__"
    ),
    # block quotes
    re2.compile(r"(?m)^[ \t]{0,3}>[ \t]"),
    # table delimiter rows
    _MD_TABLE_RULE,
)


def extension_for(content_type: str) -> str:
    """The file extension for a detected content type (".bin" for anything else)."""
    return _EXTENSIONS.get(content_type, ".bin")


def decode_text(data: bytes) -> str | None:
    """The text of `data` if it is text, else None.

    A byte-order mark decides first (UTF-8, UTF-16 LE/BE); then strict UTF-8; then, when the
    bytes still look like text, a single-byte fallback: Windows-1252 (the superset of
    Latin-1 that browsers use for "latin1"), or Latin-1 itself for the few bytes 1252 leaves
    undefined. Looking like text means no NUL and fewer than 1 % C0 control characters
    other than tab, newline, form feed and carriage return.
    """
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                return None
            return text if _chars_look_like_text(text) else None
    if not _bytes_look_like_text(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _too_many_controls(controls: int, total: int) -> bool:
    return controls > 0 and controls >= total * _MAX_CONTROL_RATIO


def _bytes_look_like_text(data: bytes) -> bool:
    # In UTF-8 and single-byte encodings alike a C0 control byte is a C0 control character.
    if b"\x00" in data:
        return False
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    return not _too_many_controls(controls, len(data))


def _chars_look_like_text(text: str) -> bool:
    if "\x00" in text:
        return False
    # UTF-8 writes each C0 control character as that one byte, and uses no byte below 0x80
    # for anything else: counting the bytes counts the characters.
    encoded = text.encode("utf-8")
    controls = len(encoded) - len(encoded.translate(None, _CONTROL_BYTES))
    return not _too_many_controls(controls, len(text))


def sniff(data: bytes, *, name: str | None = None) -> str | None:
    """The detected content type (one of `SUPPORTED`), or None when unsupported.

    `name`, the declared filename, only ever picks between two text types (module docstring).
    """
    if not data:
        return None
    if pdf_header_offset(data) is not None:
        return PDF
    if data.startswith(_ZIP_LOCAL_HEADER):
        return DOCX if _is_docx(data) else None
    if data.startswith(_BINARY_SIGNATURES):
        return None
    text = decode_text(data)
    if text is None or _word_ends(_SVG_ROOT, _strip_prolog(text[:_HTML_HEAD_CHARS])):
        return None  # binary, or an SVG image
    return _as_declared(classify_text(text), text, name)


def _as_declared(kind: str, text: str, name: str | None) -> str:
    """`kind` (from the content), settled between two text types by the declared name."""
    if not name or "." not in name:
        return kind
    extension = name.rsplit(".", 1)[1].lower()
    if extension in ("txt", "text"):
        if kind == CSV and csv_delimiter(text) == "|":
            return TEXT_PLAIN
    elif extension in ("md", "markdown") and (
        kind == TEXT_PLAIN or (kind == CSV and csv_delimiter(text) == "|")
    ):
        return MARKDOWN
    return kind


def pdf_header_offset(data: bytes) -> int | None:
    """Where the PDF starts (its `%PDF-` header), or None when `data` is not a PDF.

    `%PDF-` and a digit within the first 1024 bytes; or, within the first 64 KiB, `%PDF-d.d`
    at the start of a line with `%%EOF` after it, in a file that is binary or ends with
    `startxref` ... `%%EOF`. Bytes before the offset are junk that readers skip (pdftotext
    does; PDFium wants them cut off).
    """
    near = _near_pdf_header(data)
    if near is not None:
        return near
    end = _PDF_HEADER_WINDOW + len(_PDF_MAGIC) - 1
    far_end = _PDF_JUNK_WINDOW + len(_PDF_MAGIC) - 1
    at = data.find(_PDF_MAGIC, max(0, end - len(_PDF_MAGIC) + 1), far_end)
    eof: int | None = None  # found once, lazily: the last %%EOF of the file
    while at >= 0:
        version = data[at + len(_PDF_MAGIC) : at + len(_PDF_MAGIC) + 3]
        if (
            data[at - 1 : at] in (b"\n", b"\r")
            and len(version) == 3
            and version[:1].isdigit()
            and version[1:2] == b"."
            and version[2:3].isdigit()
        ):
            if eof is None:
                eof = data.rfind(_PDF_EOF)
            if eof > at:
                return at if _pdf_body(data) else None
        at = data.find(_PDF_MAGIC, at + 1, far_end)
    return None


def _pdf_body(data: bytes) -> bool:
    """For a header far in: the file is binary (a PDF's compressed streams are), or it ends
    as a PDF ends, `startxref` and then `%%EOF` with nothing but whitespace after it. A text
    that quotes PDF syntax (a tutorial with a code block) is neither."""
    if not _bytes_look_like_text(data):
        return True
    tail = data[-_PDF_HEADER_WINDOW:].rstrip(b" \t\r\n\f\x00")
    return tail.endswith(_PDF_EOF) and b"startxref" in tail


def _has_pdf_header(data: bytes) -> bool:
    """`%PDF-` and a digit, starting within the first 1024 bytes."""
    return _near_pdf_header(data) is not None


def _near_pdf_header(data: bytes) -> int | None:
    end = _PDF_HEADER_WINDOW + len(_PDF_MAGIC) - 1  # find() wants the whole needle before end
    at = data.find(_PDF_MAGIC, 0, end)
    while at >= 0:
        if data[at + len(_PDF_MAGIC) : at + len(_PDF_MAGIC) + 1].isdigit():
            return at
        at = data.find(_PDF_MAGIC, at + 1, end)
    return None


def _word_ends(pattern: Any, text: str) -> bool:
    """`pattern` matches at the start of `text`, and a word ends there (Python's `\\b` after
    a letter: no word character follows)."""
    match = pattern.match(text)
    if match is None:
        return False
    end = match.end()
    return end == len(text) or not _is_word_char(text[end])


def _is_docx(data: bytes) -> bool:
    """A ZIP that is a Word document: `word/document.xml` listed, or the main part that
    `_rels/.rels` names has the WordprocessingML main content type. Reads at most the two
    package parts, each capped; never raises."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # Part names are case-insensitive in OPC.
            names = {info.filename.lower(): info for info in archive.infolist()}
            if _DOCX_MAIN_PART in names:
                return True
            rels, types = names.get(_PACKAGE_RELS.lower()), names.get(_CONTENT_TYPES.lower())
            if rels is None or types is None:
                return False
            main = main_part(_read_package_xml(archive, rels))
            if main is None or main.lower() not in names:
                return False
            return _content_type(_read_package_xml(archive, types), main) == _DOCX_MAIN_TYPE
    except Exception:  # any damage, or an oversized part, means "not a document we can read"
        return False


def _read_package_xml(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    """A small package part parsed by a hardened parser (no entities, DTD or network)."""
    if info.file_size > _PACKAGE_PART_MAX:
        raise ValueError("package part too large")
    with archive.open(info) as member:
        raw = member.read(_PACKAGE_PART_MAX + 1)  # the header's size may lie
    if len(raw) > _PACKAGE_PART_MAX:
        raise ValueError("package part too large")
    # Imported here: only a DOCX whose main part is not word/document.xml gets this far, and
    # the upload function should not load an XML library at start for those few files.
    from lxml import etree  # type: ignore[import-untyped,unused-ignore]

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    root = etree.fromstring(raw, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("a package part with a DTD")  # OPC forbids them
    return root


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def main_part(rels: Any) -> str | None:
    """An OPC package's main part (its name, no leading slash) from the parsed `_rels/.rels`:
    the target of the internal officeDocument relationship (transitional or strict),
    percent-decoded, from the package root. The sniffer and the DOCX extractor both ask this,
    so a file is never accepted by one and unreadable to the other for this reason."""
    for element in rels.iter():
        if (
            _local(element.tag) == "Relationship"
            and element.get("Type") in _OFFICE_DOCUMENT_RELATIONSHIPS
            and element.get("TargetMode", "Internal") == "Internal"
        ):
            target = unquote(element.get("Target") or "")
            return posixpath.normpath("/" + target.lstrip("/")).lstrip("/") or None
    return None


def _content_type(types: Any, part: str) -> str | None:
    """The content type `[Content_Types].xml` gives `part`: its Override (a part name is a
    URI, percent-encoded like a relationship's target), else the Default for its extension."""
    wanted = "/" + part.lower()
    extension = part.rsplit(".", 1)[-1].lower() if "." in part else ""
    default = None
    for element in types.iter():
        tag = _local(element.tag)
        content_type = element.get("ContentType")
        if not isinstance(content_type, str):
            continue
        if tag == "Override" and unquote(element.get("PartName") or "").lower() == wanted:
            return content_type
        if tag == "Default" and (element.get("Extension") or "").lower() == extension:
            default = content_type
    return default


def classify_text(text: str) -> str:
    """HTML, CSV, Markdown or plain text, from the first 64 KiB of decoded text."""
    sample = _head(text)
    if _is_html(sample):
        return HTML
    if _is_csv(sample):
        return CSV
    if _markdown_signals(sample) >= 2:
        return MARKDOWN
    return TEXT_PLAIN


def _head(text: str) -> str:
    """The first 64 KiB of `text`, without a cut-off line at the end."""
    sample = text[:_SAMPLE_CHARS]
    if len(text) > _SAMPLE_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    return sample


def _strip_prolog(text: str) -> str:
    """Leading whitespace, XML declaration and comments removed."""
    text = text.lstrip()
    while True:
        if text.startswith("<!--"):
            end = text.find("-->", 4)
            if end < 0:
                return ""
            text = text[end + 3 :].lstrip()
        elif text.startswith("<?xml"):
            end = text.find("?>", 5)
            if end < 0:
                return ""
            text = text[end + 2 :].lstrip()
        else:
            return text


def _is_html(sample: str) -> bool:
    head = _strip_prolog(sample[: 4 * _HTML_HEAD_CHARS])[:_HTML_HEAD_CHARS]
    if len(head) < 2 or head[0] != "<" or not (head[1].isalpha() or head[1] in "!/"):
        return False
    if _word_ends(_HTML_DOCUMENT, head):
        return True
    if _HTML_TAG.search(head) is None:
        return False  # other XML is plain text
    # A fragment (no doctype, no <html>). Markdown that opens with an HTML block, like the
    # centred logo of many READMEs, stays Markdown.
    return _markdown_signals(sample) < 2


def _is_csv(sample: str) -> bool:
    return csv_delimiter(sample) is not None


def csv_delimiter(text: str) -> str | None:
    """The delimiter (`,` `;` tab `|`) that makes the head of `text` a table, else None.

    The same rule `sniff` uses to call text CSV, for extractors that want to agree with it:
    first a consistent table for any delimiter (in that order), then a small or ragged one
    (module docstring).
    """
    sample = _head(text)
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        return None
    table_rule = _MD_TABLE_RULE.search(sample) is not None
    candidates: list[tuple[str, list[list[str]]]] = []
    for delimiter in _CSV_DELIMITERS:
        if delimiter == "|" and table_rule:
            continue  # a Markdown table, not pipe-separated values
        if not any(delimiter in line for line in lines[:_CSV_SAMPLE_RECORDS]):
            continue
        records = _csv_records(sample, delimiter)
        if records is None:
            continue
        if _consistent_table(records, sample, delimiter):
            return delimiter
        candidates.append((delimiter, records))
    for delimiter, records in candidates:
        if delimiter != "|" and _small_or_ragged_table(records, sample, delimiter):
            return delimiter
    return None


def _csv_records(sample: str, delimiter: str) -> list[list[str]] | None:
    """Up to 20 records; blank lines are skipped, a line of delimiters only is kept."""
    records: list[list[str]] = []
    try:
        for record in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if len(record) < 2 and not any(field.strip() for field in record):
                continue
            records.append(record)
            if len(records) == _CSV_SAMPLE_RECORDS:
                break
    except csv.Error:
        return None
    return records


def _small_or_ragged_table(records: list[list[str]], sample: str, delimiter: str) -> bool:
    """Too few or too uneven records for `_consistent_table`, yet plainly a table: one line
    of numbers, or a header of >= 3 short fields over rows of values."""
    if not records:
        return False
    first = records[0]
    if len(records) == 1:
        return len(first) >= 2 and all(_is_number(field) for field in first)
    if len(first) < 3 or not all(field.strip() for field in first):
        return False
    if sum(1 for record in records if len(record) >= 2) * 2 < len(records):
        return False
    quoted = _QUOTED_FIELD[delimiter].search(sample) is not None
    for record in records:
        for field in record:
            if field[:1].isspace() and field[1:].strip():
                return False  # "we came, we saw": a sentence cut at its commas
            if not quoted and len(field.split()) > _RAGGED_MAX_WORDS:
                return False
    return not _looks_like_prose(first, delimiter, quoted)


def _is_number(field: str) -> bool:
    if not any(ch.isdigit() for ch in field):
        return False  # "nan", "inf"
    try:
        float(field.strip().replace(",", ""))
    except ValueError:
        return False
    return True


def _consistent_table(records: list[list[str]], sample: str, delimiter: str) -> bool:
    """Most records have the same number (>= 2) of fields, and they are values, not prose."""
    if len(records) < 2:
        return False
    width, count = Counter(len(record) for record in records).most_common(1)[0]
    if width < 2 or count < len(records) * _CSV_MIN_CONSISTENCY:
        return False
    rows = [record for record in records if len(record) == width]
    # A row of empty fields (a line of delimiters) is table syntax, neither prose nor values.
    rows = [record for record in rows if any(field.strip() for field in record)] or rows[:1]
    # A fully quoted field next to a delimiter is CSV's own syntax: long fields are then
    # free text columns, not sentences split at their commas.
    quoted = _QUOTED_FIELD[delimiter].search(sample) is not None
    prose = sum(1 for record in rows if _looks_like_prose(record, delimiter, quoted))
    return prose * 2 < len(rows)


def _looks_like_prose(record: list[str], delimiter: str, quoted: bool) -> bool:
    """A "record" that is a sentence cut at its delimiters rather than a row of values."""
    if delimiter == "\t" and not record[0]:
        return True  # tab-indented text
    words = sum(len(field.split()) for field in record)
    if not quoted and words > 4 * len(record):
        return True
    if delimiter in ",;":
        # "We came, we saw, we left.": the continuation fields open with a space and the
        # record ends like a sentence.
        continued = sum(1 for field in record[1:] if field[:1] == " " and field[1:2].isalpha())
        if continued * 2 >= len(record) - 1 and _SENTENCE_END.search(record[-1].rstrip()):
            return True
    return False


def _markdown_signals(sample: str) -> int:
    return sum(1 for pattern in _MARKDOWN_SIGNALS if pattern.search(sample))

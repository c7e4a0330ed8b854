"""PDF: text through PDFium (pypdfium2), with fallbacks where PDFium alone loses text.

- Leading junk: PDFium finds a `%PDF-` header within the first 1 KiB only; one found within
  the first 64 KiB (mail and HTTP headers prepended by gateways) is taken as the file's start
  and the bytes before it dropped. Offsets in the file are then right when the writer counted
  them from the header, and PDFium rebuilds the xref when it counted them from the first
  byte; if the cut file still fails, the file is tried as it came.
- Encryption: PDFium opens a file whose user password is empty. A file with an empty *owner*
  password (AES-256 R5/R6 among them) PDFium refuses; pypdf (with `cryptography`) decrypts
  it with the empty password and PDFium reads the decrypted copy. Any other password-
  protected file is `encrypted_document`, not `malformed_document`: it is not damaged and
  retrying cannot help.
- Form fields: when the document has an AcroForm (PDFium tells us without parsing anything),
  the filled values, which PDFium's page text leaves out, are read with pypdf and appended
  as `name: value` lines ("## Form fields" in the Markdown).
- Annotations that draw text (filled widgets, free-text notes, stamps; not links): on pages
  that have them, the page is flattened in memory and the lines it gains are added.
- CJK with fonts that are not embedded: PDFium returns plausible wrong glyphs or nothing for
  them (vertical Identity-V text is dropped). A page using a non-embedded font with a CJK
  font name (or no name) is read again with pdfminer.six and its CMaps (at most
  `MAX_FALLBACK_PAGES` pages); its text replaces PDFium's when it holds more letters. The
  check is one call per text object; other pages never pay for pdfminer.
- Fake bold drawn as every glyph twice ("MMuunn") is read once.
- Structure (`pdf_layout.py`): headings, paragraphs and a page map for the Markdown. Each
  text object's font, size and matrix are read in one pass over the page's objects (the
  same pass finds the fonts for the CJK check); each line costs two queries (the loose boxes
  of its first and last characters) and one more (its text object) only on pages whose text
  objects are not all set alike. Never a query per character. The plain text is PDFium's.
- Speed: handles are passed to PDFium as plain addresses and pages are opened and closed
  through the raw API, without pypdfium2's wrapper objects and finalizers per page.
"""

from __future__ import annotations

import ctypes
import io
import logging
import re
from collections import Counter
from typing import Any

from shared.documents.extract import (
    Extraction,
    ExtractionError,
    Limits,
    normalize_newlines,
    pdf_layout,
)
from shared.documents.extract.pdf_layout import Line

HEADER_WINDOW = 64 * 1024  # how far into the file a `%PDF-` header is looked for
MAX_FALLBACK_PAGES = 200  # pages at most read again with pdfminer.six
# pdfminer.six and pypdf log their complaints about a file's fonts and structure as warnings
# ("Could not get FontBBox ..."): noise on the worker's stderr, the outcome says enough.
logging.getLogger("pdfminer").setLevel(logging.ERROR)
logging.getLogger("pypdf").setLevel(logging.ERROR)
_FPDF_ERR_PASSWORD = 4
# Names of the CJK fonts a PDF may use without embedding them (Adobe's CJK font packs,
# Windows, macOS and Linux CJK fonts). Western names such as "Franklin Gothic" or "Mingus" must
# not match: a match costs the page a pdfminer.six reading.
_CJK_FONT = re.compile(
    r"(?i)ryumin|gothicbbb|heisei|koz(min|go)|mincho|ms-?p?gothic|"
    r"ms ?ui ?gothic|yu ?gothic|mingliu|mingstd|ming-|song(ti|std|-)|stsong|stfangsong|"
    r"heiti|stheiti|simhei|mhei|kaiti|stkaiti|ukai|uming|myeongjo|myungjo|batang|dotum|"
    r"gulim|gungsuh|hygo|hysm|msung|simsun|nsimsun|fangsong|meiryo|malgun|nanum|osaka|"
    r"hiragino|hira(kaku|min)|wenquanyi|cjk|source ?han|japan|chinese|korean"
)
_GOOD_CHAR = re.compile(r"[^\W_]", re.UNICODE)
# What PDFium prints for codes it maps through the wrong encoding (WinAnsi 0x80-0x9F, C0).
_WRONG_GLYPHS = set(bytes(range(0x80, 0xA0)).decode("cp1252", "ignore")) | {
    chr(c) for c in range(1, 32) if chr(c) not in "\n\r\t"
}


def extract_pdf(data: bytes, limits: Limits) -> Extraction:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pdf, data, notes = _open(data)
    try:
        page_count = len(pdf)
        take = min(page_count, limits.max_pages)
        texts: list[str] = []
        layouts: list[list[Line]] = []
        suspect: list[int] = []
        annotated = 0
        # Before the loop: flattening annotations below removes the form from the document.
        has_form = raw.FPDF_GetFormType(pdf.raw) != raw.FORMTYPE_NONE
        fonts: dict[int, tuple[bool, bool]] = {}  # font handle -> (bold, CJK and not embedded)
        # Pages and text pages through the raw API, closed here: pypdfium2's wrappers cost
        # a finalizer and bookkeeping per page.
        doc = _address(pdf.raw)
        for index in range(take):
            api = _api(raw)
            page = api.load_page(doc, index)
            if not page:
                raise pdfium.PdfiumError(f"Failed to load page {index}.")
            try:
                textpage = api.load_textpage(page)
                if not textpage:
                    raise pdfium.PdfiumError(f"Failed to load text page {index}.")
                try:
                    text, lines, cjk = _read_page(raw, page, textpage, fonts)
                finally:
                    api.close_textpage(textpage)
                drawn = _has_drawn_annotations(api, page)
            finally:
                api.close_page(page)
            if drawn:
                extra = _annotation_text(raw, pdf, index, text)
                if extra:
                    text = "\n".join(filter(None, [text, extra]))
                    lines += [Line(text=line) for line in extra.split("\n")]
                    annotated += 1
            texts.append(text)
            layouts.append(lines)
            if cjk:
                suspect.append(index)
        meta = pdf.get_metadata_dict(skip_empty=True)
    except pdfium.PdfiumError as exc:
        raise ExtractionError("malformed_document", f"unreadable PDF page ({exc})") from None
    finally:
        pdf.close()

    # pdfminer.six reads ~10-20 pages/s: past this many pages it would risk the sandbox's
    # timeout and fail the whole document, so the later pages keep PDFium's text.
    fallback = _cjk_fallback(data, suspect[:MAX_FALLBACK_PAGES], texts) if suspect else {}
    for index, text in fallback.items():
        texts[index] = text
    fields = _form_fields(data) if has_form else []

    margins = pdf_layout.repeated_margins(layouts)
    body, sizes, bold_ok = pdf_layout.document_style(layouts, margins)
    markdown = ""
    page_starts: list[int] = []
    for index, lines in enumerate(layouts):
        if index in fallback:
            block = pdf_layout.plain_markdown(texts[index])
        else:
            block = pdf_layout.page_markdown(lines, margins, body, sizes, bold_ok)
        if block and markdown:
            markdown += "\n\n"
        page_starts.append(len(markdown) if block else -1)
        markdown += block
    # An empty page starts where the next page with content starts (or at the end).
    following = len(markdown)
    for index in reversed(range(len(page_starts))):
        if page_starts[index] < 0:
            page_starts[index] = following
        following = page_starts[index]

    text = "\n\n".join(t for t in texts if t)
    if fields:
        lines_out = [f"{name}: {value}" for name, value in fields]
        text = "\n\n".join(filter(None, [text, "Form fields\n" + "\n".join(lines_out)]))
        markdown = "\n\n".join(
            filter(None, [markdown, "## Form fields", "\n".join(f"- {line}" for line in lines_out)])
        )
    details: dict[str, Any] = {"pages_with_text": sum(1 for t in texts if t), "pages_read": take}
    if suspect:
        details["pages_read_by_pdfminer"] = min(len(suspect), MAX_FALLBACK_PAGES)
        details["pages_text_from_pdfminer"] = len(fallback)
    if len(suspect) > MAX_FALLBACK_PAGES:
        details["cjk_pages_not_read_again"] = len(suspect) - MAX_FALLBACK_PAGES
    if fields:
        details["form_fields"] = len(fields)
    if annotated:
        details["pages_with_annotation_text"] = annotated
    details.update(notes)
    return Extraction(
        text=text,
        extractor="pypdfium2",
        markdown=markdown,
        pages=page_count,
        page_starts=page_starts,
        title=meta.get("Title") or None,
        author=meta.get("Author") or None,
        truncated=take < page_count,
        details=details,
    )


def _open(data: bytes) -> tuple[Any, bytes, dict[str, Any]]:
    """The PDFium document, the bytes it was opened from, and notes for `details`."""
    import pypdfium2 as pdfium

    notes: dict[str, Any] = {}
    start = data.find(b"%PDF-", 0, HEADER_WINDOW)
    candidates = [data[start:], data] if start > 0 else [data]
    error: Exception | None = None
    for candidate in candidates:
        try:
            pdf = pdfium.PdfDocument(candidate)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _FPDF_ERR_PASSWORD:
                decrypted = _decrypt_empty_password(candidate)
                if decrypted is None:
                    raise ExtractionError(
                        "encrypted_document", "the PDF is password-protected"
                    ) from None
                try:
                    pdf = pdfium.PdfDocument(decrypted)
                except pdfium.PdfiumError as again:
                    raise ExtractionError(
                        "malformed_document", f"unreadable PDF ({again})"
                    ) from None
                notes["decrypted"] = True
                candidate = decrypted
            else:
                error = exc
                continue
        if candidate is not data and start > 0 and len(candidate) < len(data):
            notes["leading_bytes_skipped"] = start
        return pdf, candidate, notes
    raise ExtractionError("malformed_document", f"unreadable PDF ({error})") from None


def _has_drawn_annotations(api: _Api, page: int) -> bool:
    """Whether the page has annotations whose appearance may show text (form fields, free
    text, stamps...): links and pop-ups do not count."""
    for i in range(api.annot_count(page)):
        annot = api.get_annot(page, i)
        subtype = api.annot_subtype(annot)
        api.close_annot(annot)
        if subtype not in (api.ANNOT_LINK, api.ANNOT_POPUP):
            return True
    return False


def _annotation_text(raw: Any, pdf: Any, index: int, text: str) -> str:
    """Lines drawn by the page's annotations (filled form fields, free text) that the page
    text (`text`) lacks, as a viewer shows them: the annotations are flattened into the page,
    in memory only (the document is never saved), and the page read again."""
    page = pdf[index]
    try:
        if raw.FPDFPage_Flatten(page.raw, raw.FLAT_NORMALDISPLAY) != raw.FLATTEN_SUCCESS:
            return ""
    finally:
        page.close()
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            flat = _dedouble(normalize_newlines(textpage.get_text_range()))
        finally:
            textpage.close()
    finally:
        page.close()
    have = Counter(line.strip() for line in text.split("\n"))
    extra = []
    for line in flat.split("\n"):
        line = line.strip()
        if have[line] > 0:
            have[line] -= 1
        elif line:
            extra.append(line)
    return "\n".join(extra)


def _decrypt_empty_password(data: bytes) -> bytes | None:
    """The file decrypted with the empty password (as user or owner), or None when that
    password does not open it."""
    from pypdf import PasswordType, PdfReader, PdfWriter

    try:
        reader = PdfReader(io.BytesIO(data))
        if not reader.is_encrypted or reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            return None
        out = io.BytesIO()
        PdfWriter(clone_from=reader).write(out)
    except Exception:  # pypdf can fail anywhere on hostile input: then the file stays encrypted
        return None
    return out.getvalue()


class _Api:
    """PDFium functions re-declared with plain addresses (`c_void_p`) for handles: an int
    comes back, hashable and cheap, instead of a ctypes pointer object per call. Built once."""

    def __init__(self, raw: Any) -> None:
        vp, i, f = ctypes.c_void_p, ctypes.c_int, ctypes.CFUNCTYPE

        def bind(fn: Any, restype: Any, *argtypes: Any) -> Any:
            return f(restype, *argtypes)(ctypes.cast(fn, vp).value or 0)

        self.count_objects = bind(raw.FPDFPage_CountObjects, i, vp)
        self.get_object = bind(raw.FPDFPage_GetObject, vp, vp, i)
        self.get_font = bind(raw.FPDFTextObj_GetFont, vp, vp)
        self.object_type = bind(raw.FPDFPageObj_GetType, i, vp)
        self.font_size = bind(raw.FPDFTextObj_GetFontSize, i, vp, vp)
        self.matrix = bind(raw.FPDFPageObj_GetMatrix, i, vp, vp)
        self.text_object = bind(raw.FPDFText_GetTextObject, vp, vp, i)
        self.loose_box = bind(raw.FPDFText_GetLooseCharBox, i, vp, i, vp)
        self.count_chars = bind(raw.FPDFText_CountChars, i, vp)
        self.text_index = bind(raw.FPDFText_GetTextIndexFromCharIndex, i, vp, i)
        self.get_text = bind(raw.FPDFText_GetText, i, vp, i, i, vp)
        self.load_page = bind(raw.FPDF_LoadPage, vp, vp, i)
        self.close_page = bind(raw.FPDF_ClosePage, None, vp)
        self.load_textpage = bind(raw.FPDFText_LoadPage, vp, vp)
        self.close_textpage = bind(raw.FPDFText_ClosePage, None, vp)
        self.annot_count = bind(raw.FPDFPage_GetAnnotCount, i, vp)
        self.get_annot = bind(raw.FPDFPage_GetAnnot, vp, vp, i)
        self.annot_subtype = bind(raw.FPDFAnnot_GetSubtype, i, vp)
        self.close_annot = bind(raw.FPDFPage_CloseAnnot, None, vp)
        self.ANNOT_LINK, self.ANNOT_POPUP = raw.FPDF_ANNOT_LINK, raw.FPDF_ANNOT_POPUP

    def page_text(self, textpage: int) -> str:
        """The text page's text, as pypdfium2's `get_text_range()` reads it: characters
        PDFium leaves out of the text at either end are not asked for (crbug.com/pdfium/2079)."""
        end = self.count_chars(textpage) - 1
        start = 0
        text_index = self.text_index
        while start <= end and text_index(textpage, start) == -1:
            start += 1
        while start <= end and text_index(textpage, end) == -1:
            end -= 1
        if start > end:
            return ""
        count = end + 1 - start
        # Room for the text and its NUL, and never less than PDFium may write (count + 1).
        size = max(text_index(textpage, end) + 2 - text_index(textpage, start), count + 1)
        buffer = (ctypes.c_ushort * size)()
        got = self.get_text(textpage, start, count, ctypes.addressof(buffer))
        return ctypes.string_at(buffer, 2 * max(min(got, size) - 1, 0)).decode(
            "utf-16-le", "ignore"
        )


_API: _Api | None = None


def _api(raw: Any) -> _Api:
    global _API
    if _API is None:
        _API = _Api(raw)
    return _API


def _address(handle: Any) -> int:
    return ctypes.cast(handle, ctypes.c_void_p).value or 0


def _read_page(
    raw: Any, page_h: int, tp: int, fonts: dict[int, tuple[bool, bool]]
) -> tuple[str, list[Line], bool]:
    """The page's text, its lines with position and font, and whether it uses a CJK font
    that is not embedded. One pass over the page's objects reads each text object's font,
    size and matrix (four PDFium calls); then two calls per line (the loose boxes of its
    first and last characters) and, unless every text object on the page is set alike, one
    more (the text object of its first character)."""
    api = _api(raw)
    get_object, get_font, font_size, get_matrix = (
        api.get_object,
        api.get_font,
        api.font_size,
        api.matrix,
    )
    size, matrix = ctypes.c_float(), raw.FS_MATRIX()
    # FS_MATRIX is (a, b, c, d, e, f): a float array unpacks faster than its fields.
    values = (ctypes.c_float * 6)()
    size_at, values_at = ctypes.addressof(size), ctypes.addressof(values)
    styles: dict[int, tuple[int, float, float, float, float, float]] = {}  # object -> style
    unstyled: set[int] = set()  # fonts of text objects whose size PDFium did not give
    forms = False  # text inside form XObjects is not among the page's objects
    for i in range(api.count_objects(page_h)):
        obj = get_object(page_h, i)
        font = get_font(obj)
        if font:
            if font_size(obj, size_at) and get_matrix(obj, values_at):
                a, b, c, d, _, _ = values
                styles[obj] = (font, size.value, a, b, c, d)
            else:
                unstyled.add(font)
        elif not forms and api.object_type(obj) == raw.FPDF_PAGEOBJ_FORM:
            forms = True
    page_fonts = {style[0] for style in styles.values()} | unstyled
    cjk = False
    for font in page_fonts:
        cjk = _font_info(raw, font, fonts)[1] or cjk
    full = api.page_text(tp)
    # PDFium joins a word hyphenated at a line end into one, the hyphen as U+FFFE.
    text = _dedouble(normalize_newlines(full).replace("\ufffe", "-\n")).strip()
    lines: list[Line] = []
    if len(full) != api.count_chars(tp):  # text and character indices disagree
        return text, [Line(part) for part in full.split("\r\n") if part.strip()], cjk
    looks: dict[tuple[int, float, float, float, float, float], tuple[float, bool]] = {}

    def look(style: tuple[int, float, float, float, float, float]) -> tuple[float, bool]:
        found = looks.get(style)
        if found is None:
            font, points, a, b, c, d = style
            effective = pdf_layout.effective_size(points, a, b, c, d)
            found = looks[style] = (effective, _font_info(raw, font, fonts)[0])
        return found

    distinct = set(styles.values())
    same = look(distinct.pop()) if len(distinct) == 1 and not forms else None
    # FS_RECTF is (left, top, right, bottom): plain float arrays unpack faster than fields.
    first_box, last_box = (ctypes.c_float * 4)(), (ctypes.c_float * 4)()
    first_at, last_at = ctypes.addressof(first_box), ctypes.addressof(last_box)
    loose_box, text_object = api.loose_box, api.text_object
    scratch = (size, matrix)
    offset = 0
    for part in full.split("\r\n"):
        if part and not part.isspace():
            i0 = offset
            if part[0].isspace():
                i0 += len(part) - len(part.lstrip())
            i1 = offset + (len(part.rstrip()) if part[-1].isspace() else len(part)) - 1
            found = same
            if found is None:
                obj = text_object(tp, i0)
                style = styles.get(obj) if obj else None
                if style is not None:
                    found = look(style)
                elif obj:  # in a form XObject
                    found = _object_info(api, raw, obj, fonts, scratch)
            if found is None:
                line = Line(part)
            elif found[0] > 0 and loose_box(tp, i0, first_at) and loose_box(tp, i1, last_at):
                x0, _, _, base0 = first_box
                _, _, x1, base1 = last_box
                line = Line(part, found[0], found[1], x0, x1, base0, base1, True)
            else:
                line = Line(part, found[0], found[1])
            lines.append(line)
        offset += len(part) + 2
    return text, lines, cjk


def _object_info(
    api: _Api,
    raw: Any,
    obj: int,
    fonts: dict[int, tuple[bool, bool]],
    scratch: tuple[Any, Any],
) -> tuple[float, bool]:
    """(effective font size, bold) of a text object: its font size scaled by its matrix."""
    size, matrix = scratch
    effective = 0.0
    if api.font_size(obj, ctypes.addressof(size)) and api.matrix(obj, ctypes.addressof(matrix)):
        effective = pdf_layout.effective_size(size.value, matrix.a, matrix.b, matrix.c, matrix.d)
    return (effective, _font_info(raw, api.get_font(obj), fonts)[0])


def _font_info(raw: Any, font: int, fonts: dict[int, tuple[bool, bool]]) -> tuple[bool, bool]:
    """(bold, CJK font that is not embedded), once per font."""
    if not font:
        return (False, False)
    found = fonts.get(font)
    if found is None:
        handle = ctypes.cast(font, type(raw.FPDFTextObj_GetFont.restype()))
        buffer = ctypes.create_string_buffer(256)
        size = raw.FPDFFont_GetBaseFontName(handle, buffer, 256)
        name = buffer.raw[: max(size - 1, 0)].decode("latin-1") if size else ""
        weight = raw.FPDFFont_GetWeight(handle)
        bold = weight >= 600 or bool(re.search(r"(?i)bold|black|heavy|semibold|demi", name))
        embedded = bool(raw.FPDFFont_GetIsEmbedded(handle))
        cjk = not embedded and (not name or not name.isascii() or bool(_CJK_FONT.search(name)))
        found = fonts[font] = (bold, cjk)
    return found


# A whole word of three or more doubled characters ("MMuunn..."), found without a call per word.
_DOUBLED = re.compile(r"(?<!\S)(?:(\S)\1){3,}(?!\S)")
_THREE_PAIRS = re.compile(r"(.)\1(.)\2(.)\3")


def _dedouble(text: str) -> str:
    """Undo "MMuunniicciippaall": fake bold drawn as each glyph twice, which PDFium reads twice
    (poppler drops the overlapping copy). Only words of six or more characters made entirely
    of doubled pairs, with a letter among them, are touched."""
    if _THREE_PAIRS.search(text) is None:  # the common case, found twice as fast
        return text
    return _DOUBLED.sub(_halve, text)


def _halve(match: re.Match[str]) -> str:
    word = match.group()
    return word[0::2] if any(ch.isalpha() for ch in word) else word


def _score(text: str) -> int:
    """Letters and digits, less what PDFium prints for unmapped codes."""
    return len(_GOOD_CHAR.findall(text)) - sum(1 for ch in text if ch in _WRONG_GLYPHS)


def _cjk_fallback(data: bytes, pages: list[int], texts: list[str]) -> dict[int, str]:
    """pdfminer.six's text of the given pages, where it reads more than PDFium did."""
    from pdfminer.high_level import extract_text
    from pdfminer.layout import LAParams

    try:
        # Vertical writing is common in these documents (and what PDFium loses most).
        joined = extract_text(
            io.BytesIO(data), page_numbers=pages, laparams=LAParams(detect_vertical=True)
        )
    except Exception:  # pdfminer.six can fail anywhere on hostile input: PDFium's text stays
        return {}
    chunks = joined.split("\f")
    better: dict[int, str] = {}
    for index, chunk in zip(pages, chunks, strict=False):
        text = _tidy_cjk(normalize_newlines(chunk))
        if _score(text) > _score(texts[index]):
            better[index] = text
    return better


_CJK_RANGE = "\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef"
_CJK_LINE_BREAK = re.compile(f"(?<=[{_CJK_RANGE}])\n(?=[{_CJK_RANGE}])")
_UNMAPPED_CID = re.compile(r"\(cid:\d+\)")


def _tidy_cjk(text: str) -> str:
    """pdfminer writes vertical text one character a line when it does not see the column:
    rejoin lines between CJK characters; drop its `(cid:N)` marks for unmapped codes."""
    text = _CJK_LINE_BREAK.sub("", _UNMAPPED_CID.sub("", text))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_COMBO = 1 << 17  # /Ff bit of a choice field shown as a drop-down (its options are hidden)


def _form_fields(data: bytes) -> list[tuple[str, str]]:
    """(label, value) of each filled AcroForm field, in document order, and the options a
    list box shows on the page (a drop-down shows only its value). The label is the field's
    tooltip (/TU) when it has a short one, else its qualified name."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        fields = reader.get_fields() or {}
        out: list[tuple[str, str]] = []
        for name, spec in fields.items():
            kind = spec.get("/FT")
            label = spec.get("/TU")
            label = _oneline(label if isinstance(label, str) and 0 < len(label) <= 100 else name)
            value = _field_value(spec.get("/V")) if kind != "/Sig" else ""
            if value:
                out.append((label, _oneline(value)))
            flags = spec.get("/Ff", 0)
            if kind == "/Ch" and isinstance(flags, int) and not flags & _COMBO:
                shown = [_option(o) for o in spec.get("/Opt") or []]
                if any(shown):
                    out.append((f"{label} (list)", _oneline(", ".join(filter(None, shown)))))
    except Exception:  # pypdf can fail anywhere on hostile input: the page text stays
        return []
    return out


def _option(option: Any) -> str:
    """A choice option: a text, or an [export value, shown text] pair."""
    if isinstance(option, list) and len(option) == 2:
        option = option[1]
    return _field_value(option)


def _field_value(value: Any) -> str:
    """A text, choice or button value; anything else (a signature's dictionary) is not
    text and is left out."""
    from pypdf.generic import NameObject

    if isinstance(value, list):
        return ", ".join(filter(None, (_field_value(v) for v in value)))
    if isinstance(value, NameObject):  # a checkbox or radio state
        return "" if value == "/Off" else str(value)[1:]
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _oneline(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()

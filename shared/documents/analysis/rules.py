"""The offline extractor: what rules find reliably in a document's Markdown, with no LLM.

`extract()` returns raw values shaped like the template's fields, each with the quote it was
read from; `finalize()` (in `__init__.py`) validates them and checks every quote against the
document. It never guesses: a value it cannot pin down is left out, or sent to `unverified`
with a reason (an ambiguous numeric date such as 03/04/2026).

What it reads:

- dates (`dates.py`): written and numeric full dates and month-year, to ISO 8601;
- amounts and percentages (`amounts.py`): a number with a currency marker next to it, the
  scale written with it, its sentence (or table row) as context;
- organizations: the title/author metadata or the first heading when they name one, and
  capitalized names ending in a legal-form suffix (Inc., Ltd, GmbH, AS, S.A., ...);
- title (the metadata title when it is in the text, else the only level-1 heading) and the
  document type from its keywords;
- obligations, risks and deal terms only from clearly labeled places (list items and
  sentences under an "Action items"/"Next steps"/"Obligations", a "Risks" or a "Deal terms"
  heading) and, for obligations, sentences with "must", "shall" or "is required to";
- for `financial`: periods (FY2025, Q3 2026, H1 2025, "year ended 31 December 2025"), revenue,
  EBITDA and net income from amounts whose sentence or table row names them (period from the
  same sentence, or the column header of a table), growth rates, headcount, industry.

People are not extracted offline: names alone cannot be told from other capitalized words.

Linear time: every pattern is RE2 (google-re2, an automaton without backtracking) or a single
character class; the Markdown is read one block at a time (a paragraph, list item, table row
or heading, at most `MAX_BLOCK` characters), the time budget is checked between blocks, and
each field keeps at most `MAX_VALUES` values (`MAX_STATEMENTS` for sentences).

No date or money library: dateparser reads 03/04/2026 as 4 March without a word (month
first), finds dates at ~0.5 MB/s in `search_dates`, and costs ~60 ms to import plus ~110 ms
on its first parse (with `regex`, 7 MB); price-parser parses one given string (it does not
search text), drops the scale ("USD 4.2 million" -> 4.2) and keeps "kr" as a currency; babel
(36 MB) formats and parses numbers of a known locale but finds nothing in text. A few RE2
patterns do what is needed here, at tens of MB/s, and import in milliseconds.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2

from shared.documents.analysis import amounts, dates, templates

MAX_VALUES = 500  # per list field
MAX_MATCHES = 5_000  # matches looked at per kind of value (repeats are not new values)
MAX_STATEMENTS = 20  # obligations, risks, deal terms
MAX_UNVERIFIED = 200
MAX_BLOCK = 20_000  # characters in one block; a longer line is cut at a space
BATCH = 32_000  # characters of blocks handled together
BATCH_BLOCKS = 1_000  # and at most this many blocks
MAX_SENTENCE = 600  # a longer sentence is no statement
CONTEXT = 1000

# evidence.normalize reads "[text](target)" as "text": so does the extractor, so that its
# quotes are what the grounding check finds. (RE2: linear, unlike a backtracking engine on
# a line of "[".)
_LINK = re2.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")
_URL = re2.compile(r"(?:https?://|www\.)[^\s<>\]\)|\x00]+")
_DIGIT = re.compile(r"[0-9]")  # one character class: linear
_SPECIAL_FIRST = frozenset("`~<#|-*+>0123456789")  # what a line of Markdown may start with
_BLANK_RUN = re2.compile(r"\n(?:[ \t\r\f\v]*\n){2,}")
_SENTENCE_END = re2.compile(r"[.!?]+[\"')\]\x{201d}\x{2019}]*(?:\[\d{1,4}\])*[ \t\n]+")
_MARKUP = re2.compile(r"\*\*|__|`|\\(?:[^\w\s])")

# --- organizations -----------------------------------------------------------------------------

_SUFFIXES = (
    r"Pty\.? Ltd\.?|S\.p\.A\.|S\.A\.S\.|S\.A\.|N\.V\.|B\.V\.|A/S|L\.L\.C\.|Inc\.?|Ltd\.?"
    r"|Limited|LLC|LLP|PLC|plc|GmbH|ASA|AS|AB|AG|SARL|SAS|SA|SE|Corporation|Corp\.?|Co\."
    r"|KK|Oy"
)
_AMBIGUOUS_SUFFIXES = frozenset(("AS", "AB", "AG", "SA", "SE", "SAS", "KK", "Oy", "Co."))
_NAME_WORD = r"\p{Lu}[\p{L}\p{Nd}&'\x{2019}-]*"
_CONNECTOR = r"(?:of|and|&|de|du|des|la|le|van|von|der|den|y|e|the|for)"
_ORG = re2.compile(
    rf"(?P<name>{_NAME_WORD}(?: (?:{_CONNECTOR} )?{_NAME_WORD})*),? (?P<suffix>{_SUFFIXES})"
)  # unbounded here (a bounded repeat of Unicode classes outgrows the DFA); at most
# MAX_NAME_WORDS are kept, after the words before the last stop word are cut off
MAX_NAME_WORDS = 6
_STOP_TEXT = (
    "a about after against all also among an and any are as at be before between both but by "
    "contact dear during each for from had has have he her his i if in including into is it "
    "its my no not note of on or our over per see she since so than that the their then "
    "these they this those to under via was we were when where whereas which while who whom "
    "whose with you your mr ms mrs dr monday tuesday wednesday thursday friday saturday "
    "sunday january february march april may june july august september october november "
    "december"
)
_STOP = frozenset(_STOP_TEXT.split())

# --- document type -----------------------------------------------------------------------------

_TYPES = (
    ("confidential information memorandum", "confidential information memorandum"),
    ("information memorandum", "information memorandum"),
    ("memorandum of understanding", "memorandum of understanding"),
    ("annual report", "annual report"),
    ("quarterly report", "quarterly report"),
    ("meeting minutes", "minutes"),
    ("minutes", "minutes"),
    ("meeting notes", "meeting notes"),
    ("purchase order", "purchase order"),
    ("invoice", "invoice"),
    ("agreement", "agreement"),
    ("contract", "contract"),
    ("memorandum", "memorandum"),
    ("memo", "memorandum"),
    ("privacy policy", "policy"),
    ("policy", "policy"),
    ("terms of service", "terms"),
    ("terms and conditions", "terms"),
    ("terms of use", "terms"),
    ("frequently asked questions", "FAQ"),
    ("faq", "FAQ"),
    ("press release", "press release"),
    ("proposal", "proposal"),
    ("white paper", "white paper"),
    ("report", "report"),
)
_TYPE_PATTERN = re2.compile(
    "(?i)\\b(" + "|".join(re2.escape(k) for k, _ in _TYPES) + ")s?\\b"
)  # alternatives are tried in order at one place: the longer phrase first
_TYPE_OF = {k: v for k, v in _TYPES}
# what may follow the type in a title ("Annual Report 2026", "Invoice #1234", "Minutes of ...")
_TYPE_TAIL = re2.compile(
    "(?i)^(?:[\\s\\d#:/.,()\\-\\x{2013}\\x{2014}]|fy|q[1-4]|h[12]|"
    + "|".join(dates._MONTHS)
    + ")*$"
)
_TYPE_NEXT = frozenset(("of", "for", "between", "on", "no", "no.", "to", "-", "\u2013", ":"))

# --- statements --------------------------------------------------------------------------------

_OBLIGATION_HEADINGS = ("action item", "next step", "obligation", "to-do", "todo", "to do")
_RISK_HEADINGS = ("risk",)
_DEAL_HEADINGS = ("deal term", "transaction", "key terms", "offer", "proposed terms")
_OBLIGATION_WORDS = (" must ", " shall ", " is required to ", " are required to ")

# --- financial ---------------------------------------------------------------------------------

_SPC = r"[ \x{a0}]"
_PERIOD = re2.compile(
    "|".join(
        (
            rf"\b(?:FY|fy){_SPC}?'?(?:\d{{4}}|\d{{2}})\b",
            rf"\b[Qq][1-4]{_SPC}?(?:FY{_SPC}?'?)?(?:\d{{4}}|\d{{2}})\b",
            rf"\b[Qq][1-4]{_SPC}FY{_SPC}?\d{{2}}\b",
            rf"\b[1-4]Q{_SPC}?(?:\d{{4}}|\d{{2}})\b",
            rf"\b[Hh][12]{_SPC}?(?:FY{_SPC}?)?\d{{4}}\b",
            rf"\b[12]H{_SPC}?\d{{4}}\b",
            rf"\b(?:[Ff]iscal|[Ff]inancial){_SPC}(?:[Yy]ear{_SPC})?\d{{4}}\b",
            rf"\b(?:[Yy]ears?|[Pp]eriod|[Qq]uarter|(?:[Ss]ix|[Tt]hree|[Nn]ine|[Tt]welve){_SPC}"
            rf"[Mm]onths){_SPC}[Ee]nded{_SPC}(?:\d{{1,2}}{_SPC}{dates._MONTH},?{_SPC}\d{{4}}"
            rf"|{dates._MONTH}{_SPC}\d{{1,2}},?{_SPC}\d{{4}})",
        )
    )
)
_YEAR_AFTER = re2.compile(r"^[ \x{a0}]?\(((?:FY[ \x{a0}]?)?(?:19|20)\d\d)\)")
_YEAR_CELL = re2.compile(r"^(?:19|20)\d\d[A-Za-z]?$")
_METRIC = re2.compile(
    r"(?i)\b(revenues?|sales|turnover|ebitda|net income|net profit|profit for the (?:year|period)"
    r"|net earnings)\b"
)
_METRIC_OF = {
    "revenue": "revenue",
    "revenues": "revenue",
    "sales": "revenue",
    "turnover": "revenue",
    "ebitda": "ebitda",
}
# "sales and marketing expenses", "EBITDA margin": the keyword names something else
_METRIC_NOT = re2.compile(
    r"(?i)^[ \-]?(?:and marketing|tax|team|force|costs?|expenses?|margins?|growth|per|multiples?"
    r"|staff|people|representatives?|channels?|volumes?|pipeline|targets?|prices?)\b"
)
# "$5m of revenue": the amount comes first (the money match starts at the amount)
_METRIC_AFTER = re2.compile(
    r"^\S+(?:[ \x{a0}](?:thousand|million|billion|trillion))?[ \x{a0}]+(?:of|in)[ \x{a0}]+"
    r"(?:annual[ \x{a0}]|total[ \x{a0}]|net[ \x{a0}])?(?i:(revenues?|sales|turnover|ebitda))\b"
)
# between a keyword and its amount: another amount or another money word means the amount
# is a figure of something else ("revenue ..., with a net loss of $492 million")
_BETWEEN_NOT = re2.compile(
    r"[$\x{20ac}\x{a3}\x{a5}\x{20b9};]|\b(?:USD|EUR|GBP|NOK|SEK|DKK|CHF|JPY|AUD|CAD)\b"
    r"|(?i:\b(?:loss|losses|profits?|income|costs?|expenses?|prices?|value|valuation"
    r"|capitali[sz]ation|debt|cash|earnings|bonds?|dividends?|acquisition|acquired?|bought|paid"
    r"|pay|fined?|salary|compensation|investments?|invested|funding|raised|whereas|while)\b)"
)
_GROWTH = re2.compile(
    r"(?i)\b(?:growth|grew|grow|grows|growing|increased?|increases|increasing|decreased?"
    r"|decreases|decreasing|declined?|declines|declining|up|down|rose|rise|rises|rising|fell"
    r"|fall|falls|falling|cagr)\b"
)
_HEADCOUNT = re2.compile(
    r"\b(?P<n1>\d{1,3}(?:,\d{3})+|\d{1,6})\+?[ \x{a0}](?:full-time[ \x{a0}]|FTE[ \x{a0}])?"
    r"(?:employees|staff|people|FTEs|FTE|workers|team members|personnel)\b"
    r"|(?i:\bheadcount)(?: of| was| is|:)?[ \x{a0}](?:of[ \x{a0}])?"
    r"(?P<n2>\d{1,3}(?:,\d{3})+|\d{1,6})\b"
)
_INDUSTRY = re2.compile(
    r"(?i:\b(?:industry|sector))[ \x{a0}]?:[ \x{a0}]*(?P<label>\p{L}[\p{L}&,/ \-]*)"
    r"|\bin the (?P<phrase>(?:[A-Za-z&\-]+ ){0,3}[A-Za-z&\-]+) (?:industry|sector)\b"
)
# re2 rebuilds `groupindex` on each use: the group numbers are looked up once
_ORG_NAME, _ORG_SUFFIX = _ORG.groupindex["name"], _ORG.groupindex["suffix"]
_HEAD_1, _HEAD_2 = _HEADCOUNT.groupindex["n1"], _HEADCOUNT.groupindex["n2"]
_IND_LABEL, _IND_PHRASE = _INDUSTRY.groupindex["label"], _INDUSTRY.groupindex["phrase"]
_INDUSTRY_STOP_TEXT = (
    "same whole entire wider broader overall this that our their its relevant respective "
    "other given above following such any each every"
)
_INDUSTRY_STOP = frozenset(_INDUSTRY_STOP_TEXT.split())


@dataclass
class Block:
    """A paragraph, list item, table row or heading, with the heading it is under."""

    kind: str  # "heading", "paragraph", "item", "row"
    text: str
    section: str
    level: int = 0
    header: list[str] | None = None  # a row's table header cells


def extract(
    markdown: str,
    *,
    template: str,
    title: str | None,
    author: str | None,
    budget_seconds: float = 2.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(raw, unverified): the template's fields as found by the rules, and what could not be
    pinned down. Stops at `budget_seconds` and says so in `unverified` (`_truncated`)."""
    fields = templates.get(template).model_fields
    deadline = time.perf_counter() + budget_seconds
    state = _State(template, set(fields), deadline)
    for batch in _batches(_blocks(markdown)):
        if time.perf_counter() >= deadline:
            state.out_of_time = True
        if state.out_of_time:
            break
        state.feed(batch)
    if state.out_of_time:
        state.unverified.append(
            {"field": "_truncated", "value": {"reason": "time_budget"}, "reason": "time_budget"}
        )
    state.finish(markdown, title, author)
    raw = {name: value for name, value in state.raw.items() if name in fields}
    return raw, state.unverified[:MAX_UNVERIFIED]


# --- blocks ------------------------------------------------------------------------------------


def _blocks(markdown: str) -> Iterator[Block]:
    section = ""
    header: list[str] | None = None
    in_fence = False
    parts: list[str] = []
    kind = "paragraph"
    size = 0
    previous_row = False

    def flush() -> Iterator[Block]:
        nonlocal parts, size
        if parts:
            yield Block(kind, "\n".join(parts), section)
        parts, size = [], 0

    if "\n\n\n\n" in markdown:  # long runs of blank lines: one split line each, else
        markdown = _BLANK_RUN.sub("\n\n", markdown)
    for line in markdown.split("\n"):
        stripped = line.strip()
        if (
            stripped
            and parts
            and kind == "paragraph"
            and not in_fence
            and stripped[0] not in _SPECIAL_FIRST
            and size + len(stripped) <= MAX_BLOCK
        ):
            # the common case, a line that goes on a paragraph: no other checks apply
            parts.append(stripped)
            size += len(stripped) + 1
            previous_row = False
            continue
        if stripped.startswith(("```", "~~~")):
            yield from flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if not stripped or stripped.startswith("<!--"):
            yield from flush()
            previous_row = False
            continue
        if stripped[0] == "#":
            level = len(stripped) - len(stripped.lstrip("#"))
            if level <= 6 and (len(stripped) == level or stripped[level] in " \t"):
                yield from flush()
                previous_row = False
                text = stripped[level:].strip().rstrip("#").strip()
                section = text[:300]
                if text:
                    for piece in _pieces(text):
                        yield Block("heading", piece, section, level=level)
                continue
        if stripped[0] == "|":
            yield from flush()
            if not stripped.strip("|-: \t"):
                continue  # the rule under a header row
            if not previous_row:
                header = [cell.strip() for cell in stripped.strip("|").split("|")]
            previous_row = True
            for piece in _pieces(stripped):
                yield Block("row", piece, section, header=header)
            continue
        previous_row = False
        item = _item(stripped)
        if item is not None:
            yield from flush()
            kind = "item"
            stripped = item
        elif parts and kind == "item" and not line[:1].isspace():
            yield from flush()
            kind = "paragraph"
        elif not parts:
            kind = "paragraph"
        if stripped.startswith(">"):
            stripped = stripped.lstrip("> ")
        if len(stripped) > MAX_BLOCK:
            yield from flush()
            for piece in _pieces(stripped):
                yield Block(kind, piece, section)
            continue
        if size + len(stripped) > MAX_BLOCK:
            yield from flush()
        parts.append(stripped)
        size += len(stripped) + 1
    yield from flush()


def _batches(blocks: Iterator[Block]) -> Iterator[list[Block]]:
    """Consecutive blocks, about BATCH characters together (the budget is checked between
    batches)."""
    batch: list[Block] = []
    size = 0
    for block in blocks:
        batch.append(block)
        size += len(block.text)
        if size >= BATCH or len(batch) >= BATCH_BLOCKS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _pieces(text: str) -> Iterator[str]:
    """`text` in pieces of at most MAX_BLOCK characters, cut at a space where there is one."""
    while len(text) > MAX_BLOCK:
        cut = text.rfind(" ", MAX_BLOCK - 200, MAX_BLOCK)
        cut = cut if cut > 0 else MAX_BLOCK
        yield text[:cut]
        text = text[cut:].lstrip()
    if text:
        yield text


def _item(stripped: str) -> str | None:
    """The text of a list item line, without its marker; None for other lines."""
    if stripped[:2] in ("- ", "* ", "+ "):
        return stripped[2:].strip()
    digits = len(stripped) - len(stripped.lstrip("0123456789"))
    if 0 < digits <= 3 and stripped[digits : digits + 2] in (". ", ") "):
        return stripped[digits + 2 :].strip()
    return None


def _clean(text: str) -> str:
    """Text for display: emphasis and code marks off, white space collapsed."""
    return " ".join(_MARKUP.sub("", text).split())


# --- the extractor's state ---------------------------------------------------------------------


class _State:
    def __init__(self, template: str, fields: set[str], deadline: float) -> None:
        self.template = template
        self.deadline = deadline
        self.out_of_time = False
        self.examined: dict[str, int] = {}
        self.wants = fields
        self.raw: dict[str, Any] = {
            name: [] for name in fields if name not in ("document_type", "title", "company")
        }
        self.raw.pop("industry", None)
        self.unverified: list[dict[str, Any]] = []
        self.seen: dict[str, set[Any]] = {}
        self.first_h1: str | None = None
        self.h1_count = 0
        self.first_heading: str | None = None
        self.first_org: dict[str, Any] | None = None
        self.legal_names: list[dict[str, Any]] = []  # financial: names with a legal form
        self.industry: dict[str, Any] | None = None
        self.counts: dict[str, int] = {}

    # --- adding values ---

    def add(
        self, field: str, value: dict[str, Any], key: Any = None, cap: int = MAX_VALUES
    ) -> bool:
        if field not in self.raw:
            return False
        values = self.raw[field]
        if len(values) >= cap:
            return False
        seen = self.seen.setdefault(field, set())
        key = key if key is not None else tuple(sorted((k, repr(v)) for k, v in value.items()))
        if key in seen:
            return False
        seen.add(key)
        values.append(value)
        return True

    def more(self, kind: str) -> bool:
        """Whether to look at one more match of `kind`: at most MAX_MATCHES each, and the
        clock is read every 256 matches (a batch full of matches stops at the budget too)."""
        seen = self.examined.get(kind, 0) + 1
        self.examined[kind] = seen
        if seen > MAX_MATCHES or self.out_of_time:
            return False
        if seen % 256 == 0 and time.perf_counter() >= self.deadline:
            self.out_of_time = True
            return False
        return True

    def full(self, field: str, cap: int = MAX_VALUES) -> bool:
        return field not in self.raw or len(self.raw[field]) >= cap

    # --- one block ---

    def feed(self, blocks: list[Block]) -> None:
        """A batch of blocks: each block on its own (headings, rows, statements), then the
        patterns over the batch's blocks joined (one RE2 call per pattern, not per block)."""
        for block in blocks:
            if "](" in block.text:
                block.text = _LINK.sub(r"\1", block.text)
            if block.kind == "heading":
                if self.first_heading is None:
                    self.first_heading = _clean(block.text)
                if block.level == 1:
                    self.h1_count += 1
                    if self.first_h1 is None:
                        self.first_h1 = _clean(block.text)
            elif block.kind == "row":
                if self.industry is None and "industry" in self.wants:
                    self._industry_row(block.text)
            else:
                self._statements(block, block.text)
        batch = _Batch(blocks)
        text = batch.text
        if _DIGIT.search(text) is not None:
            if "dates" in self.wants and not self.full("dates"):
                self._dates(batch)
            self._money(batch)
            self._percentages(batch)
            if self.template == "financial":
                self._periods(batch)
                self._headcount(batch)
        self._organizations(text)
        if "industry" in self.wants and self.industry is None:
            self._industry(text)

    def _dates(self, batch: _Batch) -> None:
        for found in dates.scan(batch.text):
            if not self.more("dates"):
                break
            if found is None or batch.in_url(found.start):
                continue
            if not found.values:
                if len(self.unverified) < MAX_UNVERIFIED:
                    self.unverified.append(
                        {
                            "field": "dates",
                            "value": {
                                "text": found.text,
                                "readings": list(found.readings),
                                "evidence": {"quote": found.text},
                            },
                            "reason": "ambiguous_date",
                        }
                    )
                continue
            for value in found.values:
                self.add(
                    "dates",
                    {"value": value, "text": found.text, "evidence": {"quote": found.text}},
                )

    def _money(self, batch: _Batch) -> None:
        wants_amounts = "amounts" in self.wants and not self.full("amounts")
        wants_metrics = self.template == "financial" and not (
            self.full("revenue") and self.full("ebitda") and self.full("net_income")
        )
        if not (wants_amounts or wants_metrics):
            return
        for found in amounts.scan_money(batch.text):
            if not self.more("money"):
                break
            for money in found:
                self._one_money(batch, money, wants_amounts, wants_metrics)

    def _one_money(
        self, batch: _Batch, money: amounts.Money, wants_amounts: bool, wants_metrics: bool
    ) -> None:
        if not batch.in_url(money.start):
            block, at = batch.locate(money.start)
            start, end = batch.sentence(block, at)
            if wants_amounts:
                self.add(
                    "amounts",
                    {
                        "value": money.value,
                        "currency": money.currency,
                        "scale": money.scale,
                        "text": money.text,
                        "context": batch.context(block, start, end, at),
                        "evidence": {"quote": money.text},
                    },
                )
            if wants_metrics:
                self._metric(block, money, at, start, end)

    def _metric(self, block: Block, money: amounts.Money, at: int, start: int, end: int) -> None:
        """`money` (at `at` in `block`) as revenue, EBITDA or net income when its sentence or
        its table row says which."""
        text = block.text
        field: str | None
        period: str | None = None
        if block.kind == "row":
            label = _row_label(text)
            if label is None:
                return
            field = _metric_field(label)
            cell = text.count("|", 0, at) - (1 if text.startswith("|") else 0)
            if block.header and 0 <= cell < len(block.header) and block.header[cell] != label:
                period = _period_in(block.header[cell])
            after = at + money.end - money.start
            year = _YEAR_AFTER.search(text[after : after + 12])
            if period is None and year is not None:
                period = year.group(1)  # "| Revenue | US$211.9 billion (2023) |"
            quote = text
        else:
            field = _metric_near(text, start, at, end)
            periods = {" ".join(m.group().split()) for m in _PERIOD.finditer(text[start:end])}
            period = periods.pop() if len(periods) == 1 else None
            quote = text[start:end].strip()
        if field is None:
            return
        if len(quote) > 1000:
            quote = money.text
        self.add(
            field,
            {
                "value": money.value,
                "currency": money.currency,
                "scale": money.scale,
                "period": period,
                "text": money.text,
                "evidence": {"quote": quote},
            },
        )

    def _percentages(self, batch: _Batch) -> None:
        wants = "percentages" in self.wants and not self.full("percentages")
        growth = "growth_rates" in self.wants and not self.full("growth_rates")
        if not (wants or growth):
            return
        for pct in amounts.scan_percentages(batch.text):
            if not self.more("percentages"):
                break
            if pct is None or batch.in_url(pct.start):
                continue
            block, at = batch.locate(pct.start)
            start, end = batch.sentence(block, at)
            value = {
                "value": pct.value,
                "text": pct.text,
                "context": batch.context(block, start, end, at),
                "evidence": {"quote": pct.text},
            }
            if wants:
                self.add("percentages", value)
            if growth:
                if block.kind == "row":
                    about = _row_label(block.text) or ""
                else:
                    about = block.text[start:end]
                if _GROWTH.search(about) is not None:
                    self.add("growth_rates", value)

    def _periods(self, batch: _Batch) -> None:
        if self.full("periods", 100):
            return
        for m in _PERIOD.finditer(batch.text):
            if not self.more("periods"):
                break
            written = " ".join(m.group().split())
            self.add(
                "periods",
                {"value": written, "evidence": {"quote": written}},
                key=written.casefold(),
                cap=100,
            )

    def _headcount(self, batch: _Batch) -> None:
        if self.full("headcount", 50):
            return
        text = batch.text
        for m in _HEADCOUNT.finditer(text):
            if not self.more("headcount"):
                break
            number = m.group(_HEAD_1) or m.group(_HEAD_2)
            if number is None or (m.start() > 0 and text[m.start() - 1] in "$€£¥.,"):
                continue
            if "," not in number and len(number) == 4 and number[:2] in ("19", "20"):
                continue  # "In 2025 employees ...": a year, not a count
            written = " ".join(m.group().split())
            self.add(
                "headcount",
                {
                    "value": int(number.replace(",", "")),
                    "text": written,
                    "evidence": {"quote": written},
                },
                cap=50,
            )

    def _industry_row(self, text: str) -> None:
        """A table row "| Industry | Marine instruments |"."""
        cells = [c.strip() for c in text.strip("|").split("|")]
        if len(cells) >= 2 and _clean(cells[0]).casefold() in ("industry", "sector") and cells[1]:
            value = _clean(cells[1])
            if 1 < len(value) <= 60 and _DIGIT.search(value) is None:
                self.industry = {"value": value, "evidence": {"quote": cells[1]}}

    def _industry(self, text: str) -> None:
        for m in _INDUSTRY.finditer(text):
            if not self.more("industry"):
                break
            value = m.group(_IND_LABEL) or m.group(_IND_PHRASE)
            if value is None:
                continue
            value = " ".join(value.strip(" ,/-").split())
            words = value.casefold().split()
            if len(value) > 60:
                continue
            if not words or words[0] in _INDUSTRY_STOP or len(words) > 6:
                continue
            quote = value if m.group(_IND_LABEL) else " ".join(m.group().split())
            self.industry = {"value": value, "evidence": {"quote": quote}}
            return

    def _organizations(self, text: str) -> None:
        want = "organizations" in self.wants and not self.full("organizations")
        if not want and (self.template != "financial" or len(self.legal_names) >= MAX_VALUES):
            return
        for m in _ORG.finditer(text):
            if not self.more("organizations"):
                break
            org = _organization(text, m)
            if org is None:
                continue
            value = {"value": org, "evidence": {"quote": org}}
            if self.first_org is None:
                self.first_org = value
            if want:
                self.add("organizations", value, key=_org_key(org))
            elif len(self.legal_names) < MAX_VALUES:
                self.legal_names.append(value)

    def _statements(self, block: Block, text: str) -> None:
        section = block.section.casefold()
        targets: list[str] = []
        if any(h in section for h in _OBLIGATION_HEADINGS):
            targets.append("obligations")
        if any(h in section for h in _RISK_HEADINGS):
            targets.append("risks")
        if self.template == "financial" and any(h in section for h in _DEAL_HEADINGS):
            targets.append("deal_terms")
        targets = [t for t in targets if not self.full(t, MAX_STATEMENTS)]
        obligation_words = (
            "obligations" in self.wants
            and not self.full("obligations", MAX_STATEMENTS)
            and "obligations" not in targets
        )
        if obligation_words and not targets:
            folded = text.casefold()
            obligation_words = any(w.strip() in folded for w in _OBLIGATION_WORDS)
        if not targets and not obligation_words:
            return
        spans = [(0, len(text))] if block.kind == "item" else _sentences(text, block.kind)
        for start, end in spans:
            quote = text[start:end].strip()
            shown = _clean(quote)
            if not (len(shown.split()) >= 3 and len(quote) <= MAX_SENTENCE):
                continue
            fields = list(targets)
            if obligation_words and _whole_sentence(shown, block.kind):
                padded = f" {shown.casefold()} "
                if any(w in padded for w in _OBLIGATION_WORDS):
                    fields.append("obligations")
            for field in fields:
                self.add(
                    field,
                    {"text": shown, "evidence": {"quote": quote}},
                    key=shown.casefold(),
                    cap=MAX_STATEMENTS,
                )

    # --- after the last block ---

    def finish(self, markdown: str, title: str | None, author: str | None) -> None:
        folded: list[str] = []  # the casefolded document, made once when needed

        def in_document(text: str) -> bool:
            if not folded:
                folded.append(markdown.casefold())
            return " ".join(text.split()).casefold() in folded[0]

        # The metadata title when the text has it; else the level-1 heading when there is one
        # only (a heading on every page, "Page 1: Overview", titles a page, not the document).
        doc_title: str | None = None
        if title and title.strip() and in_document(title):
            doc_title = " ".join(title.split())
        elif self.h1_count == 1:
            doc_title = self.first_h1
        if "title" in self.wants:
            self.raw["title"] = (
                {"value": doc_title[:500], "evidence": {"quote": doc_title}} if doc_title else None
            )
        if "document_type" in self.wants:
            self.raw["document_type"] = _document_type(doc_title or self.first_heading or "")
        legal = self.raw.get("organizations", []) + self.legal_names
        meta_orgs: list[dict[str, Any]] = []
        for source in (author, title, doc_title):
            org = _metadata_org(source)
            if org and in_document(org):
                # "Fernhill Instruments" (from the title) is "Fernhill Instruments AS" in the text
                key = _org_key(org)
                fuller = [v for v in legal if _org_key(v["value"]).startswith(key + " ")]
                meta_orgs.append(
                    fuller[0] if fuller else {"value": org, "evidence": {"quote": org}}
                )
        if "organizations" in self.wants:
            existing = list(self.raw["organizations"])
            self.raw["organizations"] = []
            self.seen["organizations"] = set()
            for value in meta_orgs + existing:
                self.add("organizations", value, key=_org_key(value["value"]))
        if "company" in self.wants:
            self.raw["company"] = meta_orgs[0] if meta_orgs else self.first_org
        if "industry" in self.wants:
            self.raw["industry"] = self.industry


class _Batch:
    """Blocks joined with a separator that no pattern crosses (no pattern matches a NUL, and
    none but the sentence split spans a blank line), with the way back from an offset in the
    joined text to its block."""

    SEPARATOR = "\n\x00\n"

    def __init__(self, blocks: list[Block]) -> None:
        self.blocks = blocks
        self.starts: list[int] = []
        offset = 0
        for block in blocks:
            self.starts.append(offset)
            offset += len(block.text) + len(self.SEPARATOR)
        self.text = self.SEPARATOR.join(block.text for block in blocks)
        self._sentences: dict[int, list[tuple[int, int]]] = {}
        self._urls: list[tuple[int, int]] | None = None
        self._rows: dict[int, str] = {}

    def locate(self, at: int) -> tuple[Block, int]:
        """The block of joined offset `at`, and the offset in that block."""
        index = bisect.bisect_right(self.starts, at) - 1
        return self.blocks[index], at - self.starts[index]

    def sentence(self, block: Block, at: int) -> tuple[int, int]:
        """The span of the sentence at `at` in `block` (the whole row or heading)."""
        spans = self._sentences.get(id(block))
        if spans is None:
            spans = self._sentences[id(block)] = _sentences(block.text, block.kind)
        index = bisect.bisect_right(spans, (at, len(block.text) + 1)) - 1
        return spans[max(0, index)]

    def context(self, block: Block, start: int, end: int, at: int) -> str:
        """`_context`, once per table row."""
        if block.kind != "row":
            return _context(block, start, end, at)
        found = self._rows.get(id(block))
        if found is None:
            found = self._rows[id(block)] = _context(block, start, end, at)
        return found

    def in_url(self, at: int) -> bool:
        if self._urls is None:
            text = self.text
            has_url = "://" in text or "www." in text
            self._urls = [m.span() for m in _URL.finditer(text)] if has_url else []
        if not self._urls:
            return False
        index = bisect.bisect_right(self._urls, (at, len(self.text) + 1)) - 1
        return index >= 0 and self._urls[index][0] <= at < self._urls[index][1]


# --- helpers -----------------------------------------------------------------------------------


def _sentences(text: str, kind: str) -> list[tuple[int, int]]:
    """The sentence spans of a block: one for a table row or heading."""
    if kind in ("row", "heading"):
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        after = text[m.end() : m.end() + 1]
        if after and after.islower():
            continue  # "Inc. and", "e.g. the"
        spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans or [(0, len(text))]


def _whole_sentence(shown: str, kind: str) -> bool:
    """A sentence that reads as one: 5 to 60 words, a capital first, a full stop last (a list
    item may end without), no bullet or cell marks (text of a form or of columns run
    together)."""
    words = shown.split()
    if not 5 <= len(words) <= 60 or not shown[:1].isupper():
        return False
    if "\u2022" in shown or "|" in shown:
        return False
    end = shown.rstrip("\"')\u201d\u2019")
    return end.endswith(".") or (kind == "item" and not end.endswith(("?", ":")))


def _context(block: Block, start: int, end: int, at: int) -> str:
    """The sentence from `start` to `end` of a block (a window of it around `at` when it is
    long), or a table row's cells."""
    text = block.text
    if block.kind == "row":
        cells = [_clean(c) for c in text.strip("|").split("|")]
        context = " | ".join(c for c in cells if c)
    else:
        if end - start > CONTEXT:
            start = max(start, at - CONTEXT // 2)
            end = min(end, start + CONTEXT)
        context = _clean(text[start:end])
    return context[:CONTEXT]


def _row_label(text: str) -> str | None:
    for cell in text.strip("|").split("|"):
        cell = _clean(cell)
        if cell:
            return cell if _DIGIT.search(cell) is None or len(cell) > 12 else None
    return None


def _metric_field(label: str) -> str | None:
    """The metric a row label names: revenue, ebitda or net_income."""
    m = _METRIC.search(label)
    if m is None or _METRIC_NOT.search(label[m.end() :]) is not None:
        return None
    if label[: m.start()].casefold().rstrip().endswith("cost of"):
        return None
    return _METRIC_OF.get(m.group(1).casefold(), "net_income")


def _metric_near(text: str, start: int, at: int, end: int) -> str | None:
    """The metric the amount at `at` is a figure of, in its sentence `start`..`end`: the
    keyword nearest before it (within 80 characters, with no other amount and no other money
    word such as "loss" or "price" between), or right after it ("$5m of revenue")."""
    after = _METRIC_AFTER.search(text[at : min(end, at + 60)])
    if after is not None:
        return _METRIC_OF.get(after.group(1).casefold(), "net_income")
    window_start = max(start, at - 80)
    named: tuple[int, str] | None = None
    for m in _METRIC.finditer(text[window_start:at]):
        keyword_end = window_start + m.end()
        if _METRIC_NOT.search(text[keyword_end : keyword_end + 30]) is not None:
            continue
        if text[max(0, window_start + m.start() - 8) : window_start + m.start()].casefold() == (
            "cost of "
        ):
            continue
        named = (keyword_end, _METRIC_OF.get(m.group(1).casefold(), "net_income"))
    if named is None:
        return None
    between = text[named[0] : at]
    if _BETWEEN_NOT.search(between) is not None:
        return None
    return named[1]


def _period_in(cell: str) -> str | None:
    cell = _clean(cell)
    m = _PERIOD.search(cell)
    if m is not None:
        return " ".join(m.group().split())
    return cell if _YEAR_CELL.search(cell) is not None else None


def _organization(text: str, m: Any) -> str | None:
    end = m.end()
    suffix = m.group(_ORG_SUFFIX)
    if not suffix.endswith(".") and end < len(text) and text[end].isalnum():
        return None  # "Inc" of "Include", "AG" of "AGM"
    words = m.group(_ORG_NAME).split(" ")
    name_start = m.start()
    for i in range(len(words) - 1, -1, -1):
        if words[i].casefold() in _STOP:
            cut = i + 1
            name_start += len(" ".join(words[:cut])) + 1
            words = words[cut:]
            break
    if not words or words[0].casefold() in _STOP or not words[0][:1].isupper():
        return None
    if len([w for w in words if w[:1].isupper()]) > MAX_NAME_WORDS:
        return None  # a run of capitalized words (a title-case heading), not a name
    if suffix in _AMBIGUOUS_SUFFIXES and _mostly_upper(text[m.start() : end + 30]):
        return None  # "SUCH AS", "KNOWN AS" in an upper-case heading
    return " ".join(text[name_start:end].split())


def _mostly_upper(text: str) -> bool:
    upper = sum(1 for c in text if c.isupper())
    lower = sum(1 for c in text if c.islower())
    return upper > lower


def _org_key(name: str) -> str:
    return " ".join(name.casefold().replace(".", " ").replace(",", " ").split())


def _metadata_org(source: str | None) -> str | None:
    """An organization named by a title or author: a name with a legal-form suffix, or the
    part of a title before a report type ("Fernhill Instruments - Annual Report 2026")."""
    if not source or not source.strip() or len(source) > 300:
        return None
    source = " ".join(source.split())
    for m in _ORG.finditer(source):
        org = _organization(source, m)
        if org:
            return org
    m = _TYPE_PATTERN.search(source)
    if m is None or _TYPE_OF.get(m.group(1).casefold()) not in (
        "annual report",
        "quarterly report",
        "confidential information memorandum",
        "information memorandum",
    ):
        return None
    before = source[: m.start()].rstrip(" -\u2013\u2014:|,")
    words = before.split()
    if not 1 <= len(words) <= 5:
        return None
    if not all(w[:1].isupper() or w in ("&", "of", "and") for w in words):
        return None
    if words[0].casefold() in _STOP or _DIGIT.search(before) is not None:
        return None
    return before


def _document_type(heading: str) -> dict[str, Any] | None:
    if not heading:
        return None
    for m in _TYPE_PATTERN.finditer(heading):
        keyword = m.group(1)
        rest = heading[m.end() :].strip()
        ends = _TYPE_TAIL.search(rest) is not None
        next_word = rest.split(" ", 1)[0].casefold() if rest else ""
        starts = m.start() == 0 and next_word in _TYPE_NEXT
        if ends or starts:
            return {"value": _TYPE_OF[keyword.casefold()], "evidence": {"quote": m.group()}}
    return None

"""Tabular documents are described, not quoted: GFM tables to computed column statistics.

`describe()` turns the tables `candidates.parse()` found into a summary ("A table of 120 rows
and 6 columns: ...") and one key point per notable column. Everything is computed from the
cells; nothing is generated:

- each column's type, inferred from its non-empty cells (95 % of them must agree): boolean,
  integer, decimal, currency, percentage, date, else categorical (values repeat) or text;
- for numeric columns the range, sum and mean (no sum for percentages and years, no sum or
  mean for identifiers), with the unit or currency the header ("Revenue (USD)", "Weight
  [kg]", "Price $") or the values ("$1,200", "12 kg", "4.5%") give;
- for categorical columns the most frequent values with their counts;
- the empty cells per column.

At most `candidates.MAX_TABLE_ROWS` rows and `MAX_COLUMNS` columns of a table are examined
(the row and column counts are exact). The work is linear in the cells there are: a short row
is not padded to the table's width, its missing cells are counted as empty.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import re2

SUMMARY_MAX_CHARS = 600
POINT_MAX_CHARS = 200
_AGREE = 0.95  # share of non-empty cells that must parse for a type to hold
MAX_COLUMNS = 1_000  # columns examined (a row of 1 MB may have 500,000)

# RE2: its spaces around an optional `|` backtrack in `re` (a line of spaces took seconds).
_DELIMITER_ROW = re2.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_PIPE = re.compile(r"(?<!\\)\|")


def is_delimiter_row(line: str) -> bool:
    """The `|---|:--:|` line under a GFM table's header row."""
    return "-" in line and "|" in line and bool(_DELIMITER_ROW.fullmatch(line))


def split_row(line: str) -> list[str]:
    """The cells of a GFM table row; escaped pipes (`\\|`) stay in their cell."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in _PIPE.split(line)]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)  # the first MAX_TABLE_ROWS rows
    row_count: int = 0  # every row

    @property
    def width(self) -> int:
        return max([len(self.header), *(len(r) for r in self.rows)])

    @property
    def size(self) -> int:
        return self.row_count * max(1, self.width)


# --- values -------------------------------------------------------------------------------------

_CURRENCY_SYMBOLS = {"$": "$", "\u20ac": "\u20ac", "\u00a3": "\u00a3", "\u00a5": "\u00a5"}
_CURRENCY_SYMBOLS |= {"\u20b9": "\u20b9", "US$": "US$", "kr": "kr", "CHF": "CHF"}
_CURRENCY_CODES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CNY",
        "CHF",
        "NOK",
        "SEK",
        "DKK",
        "CAD",
        "AUD",
        "NZD",
        "INR",
        "BRL",
        "ZAR",
        "PLN",
        "CZK",
        "HUF",
        "RUB",
        "KRW",
        "SGD",
        "HKD",
        "MXN",
        "TRY",
    ]
)
_UNITS = frozenset(
    [
        "kg",
        "g",
        "mg",
        "t",
        "lb",
        "lbs",
        "oz",
        "km",
        "m",
        "cm",
        "mm",
        "mi",
        "ft",
        "in",
        "l",
        "ml",
        "h",
        "hr",
        "hrs",
        "min",
        "s",
        "ms",
        "kwh",
        "mwh",
        "gwh",
        "kw",
        "mw",
        "gw",
        "w",
        "gb",
        "mb",
        "kb",
        "tb",
        "px",
        "pt",
    ]
)
_NUMBER = re.compile(
    r"(?P<pre>[$\u20ac\u00a3\u00a5\u20b9]|US\$|[A-Z]{3}\s?)?"
    r"(?P<sign>[-+\u2212])?"
    r"(?P<pre2>[$\u20ac\u00a3\u00a5\u20b9])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"\s?(?P<suf>%|[A-Za-z\u20ac$\u00a3]{1,4})?"
)
_DATE_PATTERNS = (
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)?"), "ymd"),
    (re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"), "ymd"),
    (re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})"), "dmy?"),
    (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2})"), "dmy?"),
)
_MONTHS = {
    m: i
    for i, names in enumerate(
        (
            "jan january",
            "feb february",
            "mar march",
            "apr april",
            "may",
            "jun june",
            "jul july",
            "aug august",
            "sep sept september",
            "oct october",
            "nov november",
            "dec december",
        ),
        1,
    )
    for m in names.split()
}
_MONTH_DATE = re.compile(
    r"(?:(\d{1,2})\s+([A-Za-z]{3,9})\.?,?\s+(\d{4}))|(?:([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4}))"
)
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "y": True, "n": False}
_NULLS = frozenset({"na", "n/a", "null", "none", "nan", "-", "\u2014", "?", "#n/a"})
_YEAR_HEADER = re.compile(r"\b(?:year|yr|fy)\b", re.IGNORECASE)
_ID_HEADER = re.compile(
    r"(?:^|\b|_)(?:id|code|zip|postcode|fips|no|nr|number|num|key|index|phone)(?:\b|_|$)|#",
    re.IGNORECASE,
)


@dataclass
class Number:
    value: float
    integral: bool
    prefix: str  # a currency symbol or code written before the number
    suffix: str  # %, a unit or a currency written after it


def parse_number(cell: str) -> Number | None:
    text = cell.strip()
    negative = False
    if text.startswith("(") and text.endswith(")"):  # accounting: (1,234) is -1,234
        text, negative = text[1:-1].strip(), True
    match = _NUMBER.fullmatch(text)
    if not match:
        return None
    prefix = (match.group("pre") or match.group("pre2") or "").strip()
    if prefix and prefix not in _CURRENCY_SYMBOLS and prefix not in _CURRENCY_CODES:
        return None
    suffix = match.group("suf") or ""
    known = suffix.lower() in _UNITS or suffix in _CURRENCY_SYMBOLS or suffix in _CURRENCY_CODES
    if suffix and suffix != "%" and not known:
        return None
    digits = match.group("num")
    value = float(digits.replace(",", ""))
    if match.group("sign") in ("-", "\u2212"):
        negative = not negative
    return Number(-value if negative else value, "." not in digits, prefix, suffix)


def parse_date(cell: str) -> tuple[int, int, int, bool] | None:
    """(year, month, day, ambiguous) of a date cell; ambiguous: day and month may swap."""
    text = cell.strip()
    for pattern, order in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if not match:
            continue
        a, b, c = (int(x) for x in match.groups())
        if order == "ymd":
            year, month, day, ambiguous = a, b, c, False
        else:
            year = c + (2000 if c < 70 else 1900) if c < 100 else c
            if a > 12 and b <= 12:
                day, month, ambiguous = a, b, False
            elif b > 12 and a <= 12:
                month, day, ambiguous = a, b, False
            else:
                month, day, ambiguous = a, b, a != b  # read month first; flagged
        if 1 <= month <= 12 and 1 <= day <= 31 and 1000 <= year <= 2999:
            return year, month, day, ambiguous
        return None
    match = _MONTH_DATE.fullmatch(text)
    if match:
        if match.group(1):
            day, name, year = int(match.group(1)), match.group(2), int(match.group(3))
        else:
            name, day, year = match.group(4), int(match.group(5)), int(match.group(6))
        number = _MONTHS.get(name.lower(), 0)
        if number and 1 <= day <= 31:
            return year, number, day, False
    return None


# --- columns ------------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    kind: str  # boolean integer decimal currency percentage date categorical text (or "empty")
    filled: int
    empty: int
    distinct: int
    unit: str = ""  # "USD", "kg", "%": what the numbers are in
    symbol: str = ""  # a currency symbol to write before the numbers ("$")
    minimum: float = 0.0
    maximum: float = 0.0
    total: float = 0.0
    mean: float = 0.0
    role: str = ""  # "identifier" or "year": a range only
    first: str = ""  # dates: earliest and latest, as written
    last: str = ""
    ambiguous_dates: bool = False
    top: list[tuple[str, int]] = field(default_factory=list)
    trues: int = 0

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "decimal", "currency", "percentage")


def _bracketed(name: str) -> str:
    r"""What the name's closing brackets hold, 1-12 characters: "USD" in "Revenue (USD)", "kg"
    in "Weight [ kg ]"; "" if nothing. Linear: the pattern `[(\[]\s*([^()\[\]]{1,12}?)\s*[)\]]\s*$`
    backtracked through a run of spaces (8 KB took 4 s, and it grows with the square)."""
    name = name.rstrip()
    if name[-1:] not in (")", "]"):
        return ""
    opening = max(name.rfind(bracket, 0, len(name) - 1) for bracket in "()[]")
    if opening < 0 or name[opening] not in "([":
        return ""
    inner = name[opening + 1 : -1].strip()
    return inner if len(inner) <= 12 else ""


def _header_unit(name: str) -> str:
    unit = _bracketed(name)
    if unit:
        if unit.upper() in _CURRENCY_CODES or unit in _CURRENCY_SYMBOLS or unit == "%":
            return unit.upper() if unit.upper() in _CURRENCY_CODES else unit
        if unit.lower() in _UNITS or unit.lower() in ("usd m", "eur m", "m usd", "k", "000s"):
            return unit
    words = [w for w in re.split(r"[^A-Za-z]+", name) if w]
    for word in words:
        if word in _CURRENCY_CODES:  # "Revenue USD", "EUR amount"
            return word
    if len(words) > 1:  # a last word: "revenue_eur", "weight kg"
        last = words[-1]
        if last.upper() in _CURRENCY_CODES:
            return last.upper()
        if len(last) >= 2 and last.lower() in _UNITS and last.lower() not in ("in", "min"):
            return last
    for symbol in ("$", "\u20ac", "\u00a3", "\u00a5"):
        if symbol in name:
            return symbol
    return ""


def analyze_column(name: str, cells: list[str], missing: int = 0) -> Column:
    """A column's type and statistics; `missing`: rows too short to have the column (empty)."""
    values = [c for c in cells if c and not c.isspace()]
    empty = len(cells) + missing - len(values)
    present = [v for v in values if v.strip().lower() not in _NULLS]
    counts = Counter(values)
    column = Column(name=name, kind="text", filled=len(values), empty=empty, distinct=len(counts))
    if not present:
        column.kind = "empty" if not values else "text"
        column.top = counts.most_common(3)
        return column
    need = math.ceil(_AGREE * len(present))

    lowered = Counter(v.strip().lower() for v in present)
    if all(v in _BOOLEANS for v in lowered) and len({_BOOLEANS[v] for v in lowered}) <= 2:
        column.kind = "boolean"
        column.trues = sum(n for v, n in lowered.items() if _BOOLEANS[v])
        return column

    dates = [d for d in map(parse_date, present) if d is not None]
    if len(dates) >= need:
        column.kind = "date"
        column.ambiguous_dates = any(d[3] for d in dates)
        parsed = zip(map(parse_date, present), present, strict=True)
        keyed = sorted((d[:3], v) for d, v in parsed if d)
        column.first, column.last = keyed[0][1], keyed[-1][1]
        return column

    numbers = [n for n in map(parse_number, present) if n is not None]
    if len(numbers) >= need:
        _numeric(column, numbers, name)
        return column

    if column.distinct <= max(1, len(values) // 2) and counts.most_common(1)[0][1] >= 2:
        column.kind = "categorical"
    column.top = counts.most_common(3)
    return column


def _numeric(column: Column, numbers: list[Number], name: str) -> None:
    unit = _header_unit(name)
    prefixes = Counter(n.prefix for n in numbers)
    suffixes = Counter(n.suffix for n in numbers)
    prefix, prefix_n = prefixes.most_common(1)[0]
    suffix, suffix_n = suffixes.most_common(1)[0]
    symbol = ""
    if prefix and prefix_n >= 0.5 * len(numbers):
        if prefix in _CURRENCY_SYMBOLS:
            symbol = prefix
        else:
            unit = unit or prefix
    if suffix and suffix_n >= 0.5 * len(numbers):
        unit = unit or suffix
    if unit == "%" or (suffix == "%" and suffix_n >= 0.5 * len(numbers)) or "%" in name:
        column.kind, unit = "percentage", "%"
    elif symbol or unit in _CURRENCY_SYMBOLS or unit.upper() in _CURRENCY_CODES:
        column.kind = "currency"
        if unit in _CURRENCY_SYMBOLS and not symbol:
            symbol, unit = unit, ""
    elif all(n.integral for n in numbers):
        column.kind = "integer"
    else:
        column.kind = "decimal"
    column.unit, column.symbol = unit, symbol
    values = [n.value for n in numbers]
    column.minimum, column.maximum = min(values), max(values)
    column.total = math.fsum(values)
    column.mean = column.total / len(values)
    integral = all(n.integral for n in numbers)
    if integral and column.kind == "integer":
        if _YEAR_HEADER.search(name) or all(1800 <= v <= 2100 for v in values):
            column.role = "year"
        elif _ID_HEADER.search(name) or (
            len(values) > 2 and values == [values[0] + i for i in range(len(values))]
        ):
            column.role = "identifier"  # named so, or numbered 1, 2, 3, ...


# --- wording ------------------------------------------------------------------------------------


def fmt(value: float, *, exact: bool = False) -> str:
    """1,234 / 12.5 / 1.2 million: exact values keep their digits (up to 4 decimals); sums
    and means are rounded: millions and more in words with one decimal, from 100 to whole
    numbers, below that to 2 decimals (3 significant digits below 1)."""
    magnitude = abs(value)
    if not exact and magnitude >= 1e6:
        for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
            if magnitude >= size:
                return f"{value / size:,.{1 if magnitude / size < 100 else 0}f} {word}".replace(
                    ".0 ", " "
                )
    if value == int(value) and magnitude < 1e15:
        return f"{int(value):,}"
    if not exact:
        if magnitude >= 100:
            return f"{round(value):,}"
        digits = 2 if magnitude >= 1 else 2 - math.floor(math.log10(magnitude))
        text = f"{value:,.{min(digits, 6)}f}"
    else:
        text = f"{value:,.4f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _money(column: Column, value: float, *, exact: bool) -> str:
    if column.role == "year":
        return str(int(value))
    text = fmt(value, exact=exact)
    if column.kind == "percentage":
        return text + "%"
    if column.symbol:
        return ("-" if text.startswith("-") else "") + column.symbol + text.lstrip("-")
    return text


def _label(column: Column, index: int) -> str:
    """The column's name; "column 3" without one, "column “2024”" for a name without letters."""
    name = column.name if len(column.name) <= 40 else column.name[:39] + "\u2026"
    if not name:
        return f"column {index + 1}"
    if not any(c.isalpha() for c in name):
        return f"column \u201c{name}\u201d"
    return name


def _unit_note(column: Column) -> str:
    """The unit when the header does not already show it."""
    if column.unit and column.unit != "%" and column.unit.lower() not in column.name.lower():
        return f" {column.unit}"
    return ""


def column_point(column: Column, index: int) -> str:
    """One key point: "Revenue (USD): 1,200 to 98,000, total 1.2 million, mean 10,100; 3 empty." """
    label = _label(column, index)
    empty = f"{column.empty:,} empty" if column.empty else "no empty cells"
    if column.kind == "empty":
        return f"{label}: every cell of this column is empty ({column.empty:,})."
    if column.numeric:
        unit = _unit_note(column)
        low = _money(column, column.minimum, exact=True)
        high = _money(column, column.maximum, exact=True)
        kind = column.kind
        if column.minimum == column.maximum:
            parts = [f"{kind} values, all {low}{unit}"]
        elif column.role:
            parts = [
                f"{kind} {column.role}s from {low} to {high}",
                _count(column.distinct, "distinct value"),
            ]
        elif column.kind == "percentage":
            parts = [
                f"{kind}s from {low} to {high}",
                f"mean {_money(column, column.mean, exact=False)}",
            ]
        else:
            parts = [
                f"{kind} values from {low} to {high}{unit}",
                f"total {_money(column, column.total, exact=False)}{unit}",
                f"mean {_money(column, column.mean, exact=False)}{unit}",
            ]
        text = f"{label}: " + ", ".join(parts) + f"; {empty}."
    elif column.kind == "date":
        note = " (month and day order assumed)" if column.ambiguous_dates else ""
        span = (
            f"all {column.first}"
            if column.distinct == 1
            else f"from {column.first} to {column.last}"
        )
        text = f"{label}: dates, {span}{note}, {_count(column.distinct, 'distinct date')}; {empty}."
    elif column.kind == "boolean":
        text = (
            f"{label}: yes/no values, {column.trues:,} true and "
            f"{column.filled - column.trues:,} false; {empty}."
        )
    elif column.kind == "categorical":
        top = ", ".join(f"{_short(v)} ({n:,})" for v, n in column.top)
        if column.distinct == 1:
            text = f"{label}: one value throughout, {top}; {empty}."
        else:
            text = f"{label}: {column.distinct:,} categories, the most frequent {top}; {empty}."
    else:
        example = _short(column.top[0][0]) if column.top else ""
        text = (
            f"{label}: text with {_count(column.distinct, 'distinct value')}"
            + (f" such as {example}" if example else "")
            + f"; {empty}."
        )
    return _fit(text, POINT_MAX_CHARS)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def _ref(column: Column, index: int) -> str:
    """A column named inside a sentence: column \u201cRevenue\u201d, column 3."""
    if not column.name:
        return f"column {index + 1}"
    name = column.name if len(column.name) <= 40 else column.name[:39] + "\u2026"
    return f"column \u201c{name}\u201d"


def _short(value: str, limit: int = 30) -> str:
    value = " ".join(value.split())
    return f"\u201c{value if len(value) <= limit else value[: limit - 1] + chr(0x2026)}\u201d"


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip(" ,;:") + "\u2026"


def _kind_name(column: Column) -> str:
    if column.role:
        return column.role
    return {"empty": "empty", "text": "text"}.get(column.kind, column.kind)


@dataclass
class Description:
    summary: str
    points: list[str]  # one per notable column, then the other tables
    brief: str  # one key point for a mixed document: the largest table in one line


def analyze(table: Table) -> list[Column]:
    """The first `MAX_COLUMNS` columns, read in one pass over the cells the rows have."""
    width = min(table.width, MAX_COLUMNS)
    names = [*table.header[:width], *[""] * (width - len(table.header))]
    cells: list[list[str]] = [[] for _ in range(width)]
    for row in table.rows:
        for column, cell in zip(cells, row, strict=False):  # a row may be short or long
            column.append(cell.strip())
    rows = len(table.rows)
    return [analyze_column(names[i].strip(), cells[i], rows - len(cells[i])) for i in range(width)]


def _notability(column: Column) -> int:
    """Higher is more worth a key point: measures, then dates and categories, then the rest."""
    if column.kind == "empty":
        return 0
    if column.distinct <= 1 and column.kind != "boolean":
        return 1  # one value throughout
    if column.numeric and not column.role:
        return 5
    if column.kind in ("date", "categorical", "boolean"):
        return 4
    if column.role:
        return 2
    return 3 if column.distinct > 1 else 1


def describe(tables: list[Table], key_points: int) -> Description:
    """Summary sentences and key points for a document that is mostly tables."""
    largest = max(enumerate(tables), key=lambda e: (e[1].size, -e[0]))[1]  # the first largest
    columns = analyze(largest)
    has_header = any(c.name for c in columns)
    rows, width = largest.row_count, largest.width

    listed = ", ".join(f"{_label(c, i)} ({_kind_name(c)})" for i, c in enumerate(columns[:8]))
    if width > 8:
        listed += f" and {width - 8} more"
    lead = (
        f"{len(tables)} tables; the largest has"
        if len(tables) > 1
        else "A table of"
        if rows
        else "A table with a header row only:"
    )
    if rows:
        first = f"{lead} {rows:,} {_plural(rows, 'row')} and {width} {_plural(width, 'column')}"
    else:
        first = f"{lead} {width} {_plural(width, 'column')}"
    first += ("" if has_header else " (no header row)") + f": {listed}."
    sentences = [first]
    if rows > len(largest.rows):
        sentences.append(f"The first {len(largest.rows):,} rows were examined.")
    if width > len(columns):
        sentences.append(f"The first {len(columns):,} columns were examined.")

    highlights = []
    measures = [c for c in columns if c.numeric and not c.role]
    measure = next((c for c in measures if c.minimum != c.maximum), None)
    if measure is not None:
        ref = _ref(measure, columns.index(measure))
        low = _money(measure, measure.minimum, exact=True)
        high = _money(measure, measure.maximum, exact=True)
        unit = _unit_note(measure)
        if measure.kind == "percentage":
            highlights.append(f"{ref} ranges from {low} to {high}")
        else:
            total = _money(measure, measure.total, exact=False)
            highlights.append(f"{ref} ranges from {low} to {high}{unit} (total {total}{unit})")
    categories = [c for c in columns if c.kind == "categorical"]
    category = next((c for c in categories if c.distinct > 1), None)
    if category is not None:
        value, count = category.top[0]
        highlights.append(
            f"the most frequent value of {_ref(category, columns.index(category))} is "
            f"{_short(value)} ({count:,} of {category.filled:,})"
        )
    if highlights:
        text = "; ".join(highlights)
        sentences.append(text[0].upper() + text[1:] + ".")
    empty = sum(c.empty for c in columns)
    if rows:
        if empty:
            worst = max(range(len(columns)), key=lambda i: (columns[i].empty, -i))
            where = _ref(columns[worst], worst)
            many = _plural(empty, "cell is", "cells are")
            sentences.append(
                f"{empty:,} {many} empty, {columns[worst].empty:,} of them in {where}."
                if empty > columns[worst].empty
                else f"{empty:,} {many} empty, all in {where}."
            )
        else:
            sentences.append("None of the cells is empty.")
    summary = _join(sentences, SUMMARY_MAX_CHARS)

    order = sorted(range(len(columns)), key=lambda i: (-_notability(columns[i]), i))
    chosen = sorted(i for i in order[:key_points] if rows and _notability(columns[i]) > 0)
    points = [column_point(columns[i], i) for i in chosen]
    for number, table in enumerate(tables, 1):
        if len(points) >= key_points:
            break
        if table is not largest:
            points.append(table_point(table, lead=f"Table {number} of {len(tables)} has"))
    return Description(summary=summary, points=points, brief=table_point(largest, columns))


def table_point(
    table: Table, columns: list[Column] | None = None, *, lead: str = "A table of"
) -> str:
    """A table in one key point: "A table of 42 rows and 5 columns (Name, ...); Revenue ..."."""
    columns = columns if columns is not None else analyze(table)
    rows, width = table.row_count, table.width
    names = ", ".join(_label(c, i) for i, c in enumerate(columns[:5]) if c.name)
    if names and width > 5:
        names += ", \u2026"
    text = f"{lead} {rows:,} {_plural(rows, 'row')} and {width} {_plural(width, 'column')}"
    text += f" ({names})" if names else ""
    measure = next((c for c in columns if c.numeric and not c.role), None)
    if measure is not None and rows:
        i = columns.index(measure)
        text += (
            f"; {_label(measure, i)} from {_money(measure, measure.minimum, exact=True)} to "
            f"{_money(measure, measure.maximum, exact=True)}{_unit_note(measure)}"
        )
    return _fit(text + ".", POINT_MAX_CHARS)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many if many is not None else one + "s")


def _join(sentences: list[str], limit: int) -> str:
    out = ""
    for sentence in sentences:
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > limit:
            if not out:
                return _fit(sentence, limit)
            break
        out = candidate
    return out

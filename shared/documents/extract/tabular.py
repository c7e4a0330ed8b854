"""CSV (and TSV): rows as text, and the whole table as a GFM table.

The delimiter is `sniff.csv_delimiter`'s, the rule that called the file CSV. The Markdown is
one GFM table: the header row when `_has_header` finds one, else an empty header row (GFM
requires one) over all the rows; short rows are padded with empty cells, pipes escaped.
"""

from __future__ import annotations

import csv
import io

from shared.documents import sniff
from shared.documents.extract import Extraction
from shared.documents.extract.markdown import table

_HEADER_SAMPLE_ROWS = 20


def _has_header(rows: list[list[str]]) -> bool:
    """`csv.Sniffer.has_header`'s rule, on rows parsed with the delimiter we detected.

    The first row is a header when, over the next 20 rows, the columns whose type (a number)
    or length is the same in every row mostly disagree with it. Sniffer itself re-detects the
    dialect first with regexes that backtrack (a crafted 63 KB file took 11 s); this does not.
    """
    if len(rows) < 2:
        return True
    header, width = rows[0], len(rows[0])
    kinds: dict[int, type | int | None] = dict.fromkeys(range(width))
    for row in rows[1 : _HEADER_SAMPLE_ROWS + 2]:
        if len(row) != width:
            continue
        for col in list(kinds):
            kind: type | int
            try:
                complex(row[col])
                kind = complex
            except (ValueError, OverflowError):
                kind = len(row[col])
            if kinds[col] is None:
                kinds[col] = kind
            elif kinds[col] != kind:
                del kinds[col]
    score = 0
    for col, seen in kinds.items():
        if seen is None:
            continue
        if isinstance(seen, int):
            score += 1 if len(header[col]) != seen else -1
        else:
            try:
                complex(header[col])
            except (ValueError, OverflowError):
                score += 1
            else:
                score -= 1
    return score > 0


def _is_number(value: str) -> bool:
    try:
        complex(value.strip())
    except (ValueError, OverflowError):
        return False
    return True


def extract_csv(text: str) -> Extraction:
    delimiter = sniff.csv_delimiter(text) or ","  # the same rule that called the file CSV
    csv.field_size_limit(max(len(text), 131072))  # one field may be the whole file
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = [r for r in reader if any(c.strip() for c in r)]
    columns = max((len(r) for r in rows), default=0)
    header = rows[0] if rows and _has_header(rows) else None
    if len(rows) == 1 and all(_is_number(c) for c in rows[0]):
        header = None  # a single line of numbers is data ("4,5,6")
    body = rows[1:] if header else rows
    lines = []
    if header:
        lines.append(" | ".join(c.strip() for c in header))
    lines += [" | ".join(c.strip() for c in r) for r in body]
    markdown = table([header, *body], header=True) if header else table(body, header=False)
    return Extraction(
        text="\n".join(lines),
        extractor="csv",
        markdown=markdown,
        details={"rows": len(body), "columns": columns, "header": header, "delimiter": delimiter},
    )

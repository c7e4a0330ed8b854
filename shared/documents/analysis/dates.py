"""Calendar dates in English business text, normalized to ISO 8601 (offline, linear time).

Forms read: "14 March 2026", "14th of March 2026", "14-Mar-2026", "March 14, 2026",
"Mar. 14, 2026", "2026-03-14", "2026/03/14", numeric day-month-year with `.`, `/` or `-`
("14.03.2026", "3/14/2026") when it can be read only one way, ranges within a month
("1-3 March 2026", "March 1-3, 2026": both ends), and a month with its year ("March 2026",
"Sept. 2026" -> "2026-09"). Every date is checked against the calendar (no 31 February).

Not dates: bare years, quarters, times, version numbers, dates without a year. A numeric date
whose day and month are both 12 or less and differ (03/04/2026) is returned as ambiguous,
never as a date: the caller sends it to `unverified`. So is a numeric date with a two-digit
year written with `/` (12/20/24: the century is a guess), with its readings in 20YY.

One RE2 pattern (google-re2: an automaton, linear in the text, no backtracking) finds every
form; its alternatives are ordered so that at one starting point the longest form wins (a full
date before its month and year).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        ("January", "Jan"),
        ("February", "Feb"),
        ("March", "Mar"),
        ("April", "Apr"),
        ("May",),
        ("June", "Jun"),
        ("July", "Jul"),
        ("August", "Aug"),
        ("September", "Sept", "Sep"),
        ("October", "Oct"),
        ("November", "Nov"),
        ("December", "Dec"),
    ),
    start=1,
):
    for _name in _names:
        _MONTHS[_name.casefold()] = _number

# Title case and upper case only: "march" in running text is a verb.
_MONTH = (
    "(?:"
    + "|".join(
        f"{name.capitalize()}|{name.upper()}" for name in sorted(_MONTHS, key=len, reverse=True)
    )
    + ")"
)
_SP = r"[ \t\n\x{a0}\x{202f}]{1,3}"  # a few spaces; a date does not span a blank line
_ORD = "(?:st|nd|rd|th)?"
_DASH = r"[ \x{a0}]?[-\x{2013}\x{2014}][ \x{a0}]?"

_PATTERN = re2.compile(
    "|".join(
        (
            # 1-3 March 2026
            rf"\b(?P<r1a>\d{{1,2}}){_ORD}{_DASH}(?P<r1b>\d{{1,2}}){_ORD}(?:{_SP}of)?{_SP}"
            rf"(?P<r1m>{_MONTH})\.?,?{_SP}(?P<r1y>\d{{4}})\b",
            # March 1-3, 2026
            rf"\b(?P<r2m>{_MONTH})\.?{_SP}(?P<r2a>\d{{1,2}}){_ORD}{_DASH}(?P<r2b>\d{{1,2}}){_ORD},?"
            rf"{_SP}(?P<r2y>\d{{4}})\b",
            # 14 March 2026, 14th of March 2026, 14-Mar-2026
            rf"\b(?P<d1>\d{{1,2}}){_ORD}(?:(?:{_SP}of)?{_SP}|-)(?P<m1>{_MONTH})\.?,?(?:{_SP}|-)"
            rf"(?P<y1>\d{{4}})\b",
            # March 14, 2026
            rf"\b(?P<m2>{_MONTH})\.?{_SP}(?P<d2>\d{{1,2}}){_ORD},?{_SP}(?P<y2>\d{{4}})\b",
            # 2026-03-14, 2026/03/14
            r"\b(?P<iy>\d{4})(?P<is>[-/])(?P<im>\d{1,2})(?P<is2>[-/])(?P<id>\d{1,2})",
            # 14.03.2026, 3/14/2026, 14-03-2026; 12/20/24 (a two-digit year: never a date)
            r"\b(?P<na>\d{1,2})(?P<ns>[./-])(?P<nb>\d{1,2})(?P<ns2>[./-])(?P<ny>\d{4}|\d{2})",
            # March 2026
            rf"\b(?P<m3>{_MONTH})\.?,?{_SP}(?P<y3>\d{{4}})\b",
        )
    )
)

_INDEX: dict[str, int] = dict(_PATTERN.groupindex)  # re2 rebuilds groupindex on each use

_YEARS_WRITTEN = range(1000, 3000)  # a month name makes a four-digit number a year
_YEARS_NUMERIC = range(1900, 2100)  # digits alone: only years a business document dates


@dataclass(frozen=True)
class Found:
    """One date (or both ends of a range) as written at `start`..`end` of the text."""

    start: int
    end: int
    text: str
    values: tuple[str, ...]  # ISO dates; empty when ambiguous
    readings: tuple[str, ...] = ()  # the two readings of an ambiguous numeric date


def find(text: str) -> Iterator[Found]:
    """The dates in `text`, in order."""
    for found in scan(text):
        if found is not None:
            yield found


def scan(text: str) -> Iterator[Found | None]:
    """One item per match of the pattern: the date, or None for a match that is no date
    (a caller that bounds its work counts these too)."""
    for match in _PATTERN.finditer(text):
        yield _read(match, text)


def _iso(year: int, month: int, day: int | None = None) -> str | None:
    try:
        if day is None:
            datetime.date(year, month, 1)
            return f"{year:04d}-{month:02d}"
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        return None


def _month(name: str) -> int:
    return _MONTHS[name.casefold()]


def _read(m: Any, text: str) -> Found | None:
    start, end = m.span()

    def g(name: str) -> Any:
        return m.group(_INDEX[name])

    written = " ".join(text[start:end].split())
    if g("r1a") is not None or g("r2a") is not None:
        key = "r1" if g("r1a") is not None else "r2"
        year = int(g(f"{key}y"))
        month = _month(g(f"{key}m"))
        first, last = int(g(f"{key}a")), int(g(f"{key}b"))
        if year not in _YEARS_WRITTEN or first >= last:
            return None
        values = (_iso(year, month, first), _iso(year, month, last))
        if values[0] is None or values[1] is None:
            return None
        return Found(start, end, written, (values[0], values[1]))
    if g("d1") is not None or g("d2") is not None:
        key = "1" if g("d1") is not None else "2"
        year = int(g(f"y{key}"))
        if year not in _YEARS_WRITTEN:
            return None
        value = _iso(year, _month(g(f"m{key}")), int(g(f"d{key}")))
        return None if value is None else Found(start, end, written, (value,))
    if g("iy") is not None:
        if not _standalone(text, start, end) or g("is2") != g("is"):
            return None
        year = int(g("iy"))
        if year not in _YEARS_NUMERIC:
            return None
        value = _iso(year, int(g("im")), int(g("id")))
        return None if value is None else Found(start, end, written, (value,))
    if g("na") is not None:
        if not _standalone(text, start, end) or g("ns2") != g("ns"):
            return None
        year = int(g("ny"))
        a, b = int(g("na")), int(g("nb"))
        if len(g("ny")) == 2:
            if g("ns") != "/":  # 12-01-24 and 3.4.26 read as codes and versions as often
                return None
            orders = {(b, a), (a, b)} if a <= 12 and b <= 12 else {(b, a) if a > 12 else (a, b)}
            short = sorted(filter(None, (_iso(2000 + year, m, d) for m, d in orders)))
            return Found(start, end, written, (), tuple(short)) if short else None
        if year not in _YEARS_NUMERIC:
            return None
        if a > 12 and b <= 12:
            value = _iso(year, b, a)
        elif b > 12 and a <= 12:
            value = _iso(year, a, b)
        elif a == b:
            value = _iso(year, a, a)
        elif a <= 12 and b <= 12:
            readings = (_iso(year, b, a), _iso(year, a, b))
            if readings[0] is None or readings[1] is None:
                return None
            return Found(start, end, written, (), (readings[0], readings[1]))
        else:
            return None
        return None if value is None else Found(start, end, written, (value,))
    if g("m3") is not None:
        year = int(g("y3"))
        if year not in _YEARS_WRITTEN:
            return None
        value = _iso(year, _month(g("m3")))
        return None if value is None else Found(start, end, written, (value,))
    return None


def _standalone(text: str, start: int, end: int) -> bool:
    """Digits and separators that are not part of a longer run (a version, an IP address, a
    phone number): no digit or separator right before, no separator-and-digit right after."""
    if start > 0 and (text[start - 1].isdigit() or text[start - 1] in "./-"):
        return False
    after = text[end : end + 2]
    if after[:1].isdigit():
        return False
    return not (len(after) == 2 and after[0] in "./-" and after[1].isdigit())

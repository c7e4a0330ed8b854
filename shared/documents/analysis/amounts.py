"""Money amounts and percentages in business text (offline, linear time).

An amount is a number with a currency marker right next to it, before or after:

- a symbol, alone or prefixed: `$ € £ ¥ ₹`, `US$ A$ AU$ C$ CA$ NZ$ HK$ S$ R$`, `kr`/`kr.`;
- an ISO 4217 code before or after: `USD 5`, `5 USD`, `NOK 12.5 million`;
- a currency word after: `dollars`, `euros`, `pounds (sterling)`, `yen`, `yuan`, `kroner`,
  `francs`, `rupees`, with the country word when written ("Australian dollars" -> AUD).

`value` is the number as written (4.2 in "$4.2 million"), `scale` the word or suffix written
next to it (thousand/k/K, million/m/mn/M/MM, billion/bn/b/B, trillion/tn), `currency` the ISO
code: `$` and "dollars" are USD unless prefixed, `¥` is JPY, `kr` and a bare "kroner" name no
single currency (None). Thousands separators `1,234,567.89`, `1 234 567`, `1.234.567,89`; a
minus sign, or parentheses around an amount (`($1,200)`), make it negative. A number without a
marker is not an amount.

A percentage is a number with `%`, `percent`, `per cent` or `pct`; "percentage points" and
"pp" are not percentages.

Both are found by one RE2 pattern each (google-re2: linear in the text, no backtracking); the
checks that RE2 cannot express (what stands right before a number, a range's shared scale)
look at a character or two around the match.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2

_PREFIX_SYMBOLS = {
    "US$": "USD",
    "A$": "AUD",
    "AU$": "AUD",
    "C$": "CAD",
    "CA$": "CAD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "R$": "BRL",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
}
_SUFFIX_SYMBOLS = {"€": "EUR", "£": "GBP"}
# Currencies whose home countries write 1.500 for fifteen hundred (None: "kr", Nordic).
_DOT_THOUSANDS = frozenset({
    "EUR", "DKK", "NOK", "SEK", "ISK", "PLN", "CZK", "HUF", "RON", "TRY", "BRL", "ARS", "CLP",
    "COP", "IDR", "RUB", None,
})  # fmt: skip
_ISO_TEXT = (
    "USD EUR GBP JPY CHF CNY NOK SEK DKK ISK AUD CAD NZD HKD SGD INR BRL ZAR MXN RUB KRW PLN "
    "CZK HUF TRY AED SAR ILS THB IDR MYR TWD NGN KES EGP CLP COP ARS"
)
ISO_CODES = frozenset(_ISO_TEXT.split())
_WORDS = {
    "dollar": "USD",
    "us dollar": "USD",
    "u.s. dollar": "USD",
    "australian dollar": "AUD",
    "canadian dollar": "CAD",
    "new zealand dollar": "NZD",
    "hong kong dollar": "HKD",
    "singapore dollar": "SGD",
    "euro": "EUR",
    "pound": "GBP",
    "pound sterling": "GBP",
    "pounds sterling": "GBP",
    "sterling": "GBP",
    "yen": "JPY",
    "yuan": "CNY",
    "renminbi": "CNY",
    "norwegian kroner": "NOK",
    "norwegian krone": "NOK",
    "swedish kronor": "SEK",
    "swedish krona": "SEK",
    "danish kroner": "DKK",
    "danish krone": "DKK",
    "swiss franc": "CHF",
    "rupee": "INR",
    "indian rupee": "INR",
}
SCALES = {
    "thousand": "thousand",
    "k": "thousand",
    "K": "thousand",
    "million": "million",
    "m": "million",
    "mn": "million",
    "M": "million",
    "MM": "million",
    "billion": "billion",
    "bn": "billion",
    "b": "billion",
    "B": "billion",
    "trillion": "trillion",
    "tn": "trillion",
}

_S = r"[ \x{a0}\x{202f}]"  # one space inside an amount
# Grouped forms first: at one start, the first alternative that matches wins.
NUMBER = (
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"
    r"|\d{1,3}(?:\.\d{3})+(?:,\d+)?"
    rf"|\d{{1,3}}(?:{_S}\d{{3}})+(?:[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?"
)
_SCALE = "thousand|trillion|billion|million|mn|bn|tn|MM|k|K|m|M|b|B"
_ISO = "|".join(sorted(ISO_CODES))
_PREFIX = "|".join(re2.escape(s) for s in sorted(_PREFIX_SYMBOLS, key=len, reverse=True))
_COUNTRY = (
    "(?:US|U\\.S\\.|Australian|Canadian|New Zealand|Hong Kong|Singapore|Norwegian|Swedish"
    "|Danish|Swiss|Indian) "
)
_WORD = (
    f"(?:{_COUNTRY})?(?:dollars?|euros?|pounds? sterling|pounds?|sterling|yen|yuan|renminbi"
    "|kroner|kronor|krone|krona|francs?|rupees?)"
)

_AMOUNT = re2.compile(
    # prefix marker: $4.2 million, -€5, (US$1,200), USD 5m, kr 500
    rf"(?P<pneg>[-\x{{2212}}(]{_S}?)?(?P<pcur>{_PREFIX}|\b(?:{_ISO})|\bkr\.?){_S}?"
    rf"(?P<pneg2>[-\x{{2212}}])?(?P<pnum>{NUMBER})(?:{_S}?(?P<pscale>{_SCALE})\b)?"
    # suffix marker: 5 USD, 12.5 million NOK, 1.234,56 €, 3 million Australian dollars
    rf"|(?P<sneg>[-\x{{2212}}(]{_S}?)?(?P<snum>{NUMBER})(?:{_S}?(?P<sscale>{_SCALE})\b)?{_S}?"
    rf"(?P<scur>(?:{_ISO}|kr|{_WORD})\b|€|£)"
)
_RANGE_TAIL = re2.compile(
    rf"^{_S}?(?:[-\x{{2013}}]|to){_S}?(?:{_PREFIX})?(?P<num>{NUMBER}){_S}?(?P<scale>{_SCALE})\b"
)
_PERCENT = re2.compile(
    rf"(?P<neg>[-\x{{2212}}+]{_S}?)?(?P<num>{NUMBER}){_S}?(?:%|(?:percent|per cent|pct)\b)"
)

# re2 rebuilds `groupindex` on each use: the group numbers are looked up once
_AMOUNT_INDEX: dict[str, int] = dict(_AMOUNT.groupindex)
_RANGE_INDEX: dict[str, int] = dict(_RANGE_TAIL.groupindex)
_PERCENT_INDEX: dict[str, int] = dict(_PERCENT.groupindex)


@dataclass(frozen=True)
class Money:
    start: int
    end: int
    text: str
    value: float
    currency: str | None
    scale: str | None


@dataclass(frozen=True)
class Percent:
    start: int
    end: int
    text: str
    value: float


def parse_number(written: str) -> float | None:
    """The number a string of digits and separators stands for, or None when the separators
    do not read one way (`1,1,1`, `1.23.4`) or it is too long to be a finite float."""
    value = _parse_number(written)
    return value if value is None or math.isfinite(value) else None


def _parse_number(written: str) -> float | None:
    s = written.replace("\u00a0", " ").replace("\u202f", " ").replace(" ", "")
    if "," in s and "." in s:
        decimal = "," if s.rfind(",") > s.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        whole, _, fraction = s.rpartition(decimal)
        if not _grouped(whole, thousands):
            return None
        return float(whole.replace(thousands, "") + "." + fraction)
    for sep in (",", "."):
        if sep in s:
            parts = s.split(sep)
            if len(parts) > 2:
                return float(s.replace(sep, "")) if _grouped(s, sep) else None
            if sep == "," and len(parts[1]) == 3 and _grouped(s, sep):
                return float(s.replace(sep, ""))  # 1,500; but 0,500 is a half
            return float(parts[0] + "." + parts[1])
    return float(s) if s.isdigit() else None


def readings(written: str) -> set[float]:
    """Every number `written` can stand for: `parse_number`'s reading, and for one separator
    with three digits after it (`1.500`, `1,500`) the other convention's too (a thousand and
    a half, or one and a half)."""
    value = parse_number(written)
    out = set() if value is None else {value}
    s = written.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    for sep in (",", "."):
        whole, found, fraction = s.partition(sep)
        if found and fraction.isdigit() and len(fraction) == 3 and whole.isdigit():
            out.add(float(whole + "." + fraction))
            if _grouped(s, sep):
                out.add(float(whole + fraction))
    return out


def _dot_thousands(written: str) -> bool:
    """`1.500`, `12.345`: one dot with three digits after it, a grouped whole before."""
    s = written.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    return "," not in s and s.count(".") == 1 and len(s.partition(".")[2]) == 3 and _grouped(s, ".")


def _grouped(whole: str, sep: str) -> bool:
    """Thousands groups: 1-3 digits (not starting with 0), then groups of three."""
    parts = whole.split(sep)
    return (
        1 <= len(parts[0]) <= 3
        and parts[0].isdigit()
        and not parts[0].startswith("0")
        and all(len(p) == 3 and p.isdigit() for p in parts[1:])
    )


def _free_before(text: str, at: int) -> bool:
    """Nothing word-like or numeric right before `at` (so `5-10%` is no minus ten)."""
    return at == 0 or not (text[at - 1].isalnum() or text[at - 1] in ".,_/")


def _free_after(text: str, at: int) -> bool:
    """The number does not go on (`1,2,3` is no amount `1,2`)."""
    after = text[at : at + 2]
    if after[:1].isdigit():
        return False
    return not (len(after) == 2 and after[0] in ".," and after[1].isdigit())


def _word_currency(word: str) -> str | None:
    key = " ".join(word.casefold().rstrip(".").split())
    if key in _WORDS:
        return _WORDS[key]
    if key.endswith("s") and key[:-1] in _WORDS:
        return _WORDS[key[:-1]]
    return None  # kroner, francs: the country is not said


def find_money(text: str) -> Iterator[Money]:
    """The money amounts in `text`, in order."""
    for found in scan_money(text):
        yield from found


def scan_money(text: str) -> Iterator[list[Money]]:
    """One list per match of the pattern: the amounts it is (two for a range), or none (a
    caller that bounds its work counts these too)."""
    for m in _AMOUNT.finditer(text):
        yield _money(m, text) or []


def _money(m: Any, text: str) -> list[Money] | None:
    def g(name: str) -> Any:
        return m.group(_AMOUNT_INDEX[name])

    prefixed = g("pnum") is not None
    num = g("pnum") if prefixed else g("snum")
    scale_word = g("pscale") if prefixed else g("sscale")
    neg = g("pneg") if prefixed else g("sneg")
    marker = g("pcur") if prefixed else g("scur")
    start, end = m.span()
    num_start = m.start(_AMOUNT_INDEX["pnum" if prefixed else "snum"])
    num_end = num_start + len(num)
    if not prefixed and neg is None and not _free_before(text, num_start):
        return None
    if not _free_after(text, num_end):
        return None
    value = parse_number(num)
    if value is None:
        return None
    if prefixed:
        if marker in _PREFIX_SYMBOLS:
            currency: str | None = _PREFIX_SYMBOLS[marker]
        elif marker in ISO_CODES:
            currency = marker
        else:  # kr
            currency = None
        if start > 0 and neg is None and (text[start - 1].isalnum()):
            return None  # "A$" inside a word, "5$"
    else:
        key = marker.rstrip(".")
        if key in ISO_CODES:
            currency = key
        elif key in _SUFFIX_SYMBOLS:
            currency = _SUFFIX_SYMBOLS[key]
        elif key == "kr":
            currency = None
        else:
            currency = _word_currency(key)
            weight = text[end : end + 4].casefold() in (" of ", " per")
            if weight and key.casefold().startswith("pound") and "sterling" not in key.casefold():
                return None  # "5 pounds of flour"
    negative = False
    if neg is not None:
        sign_at = start
        if neg.startswith("("):
            # parentheses: negative only in a table row (accounting), and only when the amount
            # is closed right after; in prose "(USD 5 million)" is an aside
            negative = text[end : end + 1] == ")" and _in_table_row(text, start)
        elif neg == neg.rstrip() and _free_before(text, sign_at):
            # a minus is a sign only when it touches the amount: "€12m - €15m" is a range
            negative = True
        if not negative:
            start += len(neg)  # the sign is a range dash or an unclosed parenthesis
    if prefixed and g("pneg2") is not None:
        negative = True
    if negative and neg is not None and neg.startswith("("):
        end += 1
    if prefixed and scale_word and len(scale_word) == 1 and text[end : end + 1] in "&'-²³":
        end = num_end  # "$3 M&A", "€12 m²": the letter starts a word or a unit, it is no scale
        scale_word = None
    scale = SCALES.get(scale_word) if scale_word else None
    if prefixed and scale is None and (text[end : end + 1].isalpha() or text[end : end + 1] == "("):
        return None  # "$2(PER)", "$1abc": a placeholder or code, not money
    if scale is None and currency in _DOT_THOUSANDS and _dot_thousands(num):
        # Money has two decimals or none: in a currency written the continental way, three
        # digits after a lone dot are thousands (EUR 1.500 is fifteen hundred euros; $3.499
        # stays a price). With a scale word it stays a fraction ("EUR 1.500 million").
        value = float(num.replace(".", "").replace(" ", ""))
    written = " ".join(text[start:end].split())
    results = [Money(start, end, written, -value if negative else value, currency, scale)]
    if scale is None and prefixed:
        # "$1.2-1.5 million": the scale written after the range belongs to both ends
        tail = _RANGE_TAIL.search(text[end : end + 40])
        if tail is not None:
            other = parse_number(tail.group(_RANGE_INDEX["num"]))
            range_scale = SCALES.get(tail.group(_RANGE_INDEX["scale"]))
            if other is None or range_scale is None:
                return None
            end += tail.end()
            written = " ".join(text[start:end].split())
            return [
                Money(start, end, written, -value if negative else value, currency, range_scale),
                Money(start, end, written, other, currency, range_scale),
            ]
    return results


def _in_table_row(text: str, at: int) -> bool:
    """Whether `at` is on a GFM table row (a line that starts with `|`)."""
    line = text.rfind("\n", 0, at) + 1
    return text[line:at].lstrip().startswith("|")


def find_percentages(text: str) -> Iterator[Percent]:
    """The percentages in `text`, in order."""
    for found in scan_percentages(text):
        if found is not None:
            yield found


def scan_percentages(text: str) -> Iterator[Percent | None]:
    """One item per match of the pattern: the percentage, or None."""
    for m in _PERCENT.finditer(text):
        yield _percent(m, text)


def _percent(m: Any, text: str) -> Percent | None:
    start, end = m.span()
    num = m.group(_PERCENT_INDEX["num"])
    num_start = m.start(_PERCENT_INDEX["num"])
    neg = m.group(_PERCENT_INDEX["neg"])
    if not _free_after(text, num_start + len(num)):
        return None
    value = parse_number(num)
    if value is None:
        return None
    if neg is not None and (neg != neg.rstrip() or not _free_before(text, start)):
        neg = None  # "5% - 10%": a spaced dash is a range, not a sign
        start = num_start
    elif neg is None and not _free_before(text, num_start):
        return None
    if neg is not None and neg.strip() != "+":
        value = -value
    return Percent(start, end, " ".join(text[start:end].split()), value)

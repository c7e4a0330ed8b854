"""Structured analysis of a document against a template (see `templates.py`).

`analyze()` is the entry point: the offline extractor (`rules.py`) when the summarizer is
`extractive`, else the LLM extractor (`llm.py`) of the same provider. Both return raw values
(plain dicts shaped like the template's fields, each with `evidence.quote`); `finalize()` then
validates each value on its own with pydantic and runs the grounding check (`evidence.py`). A
value that fails either, or that its extractor could not pin down (an ambiguous date), goes to
`unverified` with a reason; `fields` holds only validated values whose quote is in the
document, with their page and section filled in from the Markdown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from shared.documents.analysis import templates

if TYPE_CHECKING:  # the jobs function imports the templates only: RE2 stays out of its start
    from shared.documents.analysis.evidence import Locator

MAX_UNVERIFIED = 200  # kept in the result; more are counted, not listed
MAX_VALUES_PER_FIELD = 500  # looked up per field: each look-up reads the document once
MAX_STORED_CHARS = 1000  # a rejected value's strings, as kept in `unverified`
# A number's scale as it may be written next to it.
_SCALE_WORDS = {
    "thousand": {"thousand", "thousands", "k", "000s"},
    "million": {"million", "millions", "m", "mn", "mm", "mio"},
    "billion": {"billion", "billions", "bn", "b", "bln"},
    "trillion": {"trillion", "trillions", "tn", "t"},
}
_NUMBER = re.compile(r"\d(?:[\d,.\u00a0\u202f ]{0,40}\d)?")
_WORDS = re.compile(r"[^\W\d_]+")


@dataclass
class Usage:
    """LLM usage of an analysis (all zero offline)."""

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0


@dataclass
class Analysis:
    template: str
    fields: dict[str, Any]
    unverified: list[dict[str, Any]]
    usage: Usage = field(default_factory=Usage)

    def as_result(self) -> dict[str, Any]:
        """The result's `analysis` object."""
        return {"template": self.template, "fields": self.fields, "unverified": self.unverified}


def empty_fields(template: str) -> dict[str, Any]:
    """The template's fields with nothing found: None or an empty list each."""
    model = templates.get(template)
    return {
        name: [] if _is_list(info.annotation) else None for name, info in model.model_fields.items()
    }


def finalize(
    template: str,
    raw: dict[str, Any],
    locator: Locator,
    unverified: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(fields, unverified) from an extractor's raw values.

    Each value is validated alone against its field's model, so one bad value does not lose
    the others; its `evidence.quote` must be found in the document (`Locator`), which also
    gives `evidence.page` and `evidence.section` (an extractor's own page or section is
    replaced by what the document says). List fields are de-duplicated on their content
    without the evidence, keeping the first. Unknown field names are dropped.
    """
    model = templates.get(template)
    out_unverified = list(unverified or [])
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        value_model = _value_model(info.annotation)
        is_list = _is_list(info.annotation)
        given = raw.get(name)
        items = given if isinstance(given, list) else ([] if given is None else [given])
        items = items[:MAX_VALUES_PER_FIELD]
        kept: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in items:
            checked, reason = _check(value_model, item, locator)
            if checked is None:
                out_unverified.append({"field": name, "value": item, "reason": reason})
                continue
            key = repr(sorted((k, v) for k, v in checked.items() if k != "evidence"))
            if key in seen:
                continue
            seen.add(key)
            kept.append(checked)
            if not is_list:
                break
        fields[name] = kept if is_list else (kept[0] if kept else None)
    return fields, [_stored(entry) for entry in out_unverified[:MAX_UNVERIFIED]]


def _stored(value: Any, depth: int = 0) -> Any:
    """A rejected value as `unverified` keeps it: JSON that PostgreSQL's jsonb takes (no inf
    or NaN), strings cut to MAX_STORED_CHARS, at most 20 items a level, 4 levels deep."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**15 else str(value)[:40]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_STORED_CHARS]
    if depth >= 4:
        return None
    if isinstance(value, dict):
        return {str(k)[:100]: _stored(v, depth + 1) for k, v in list(value.items())[:20]}
    if isinstance(value, list):
        return [_stored(v, depth + 1) for v in value[:20]]
    return str(value)[:MAX_STORED_CHARS]


def _check(
    value_model: type[BaseModel], item: Any, locator: Locator
) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(item, dict):
        return None, "invalid"
    evidence = item.get("evidence")
    quote = evidence.get("quote") if isinstance(evidence, dict) else None
    if not isinstance(quote, str) or not quote.strip():
        return None, "no_evidence"
    place = locator.find(quote)
    if place is None:
        return None, "quote_not_found"
    page, section = place
    candidate = {**item, "evidence": {"quote": quote.strip(), "page": page, "section": section}}
    try:
        checked = value_model.model_validate(candidate).model_dump(mode="json")
    except ValidationError:
        return None, "invalid"
    if not _value_in_quote(value_model, checked):
        return None, "value_not_in_quote"
    return checked, ""


def _value_in_quote(value_model: type[BaseModel], item: dict[str, Any]) -> bool:
    """A date, amount, percentage or count is what its quote says: the value as written
    (`text`) is inside the quote, the number (or date) is the one `text` writes, and a scale
    is written there too. A real quote beside an invented value fails here."""
    kinds = (templates.Amount, templates.Metric, templates.Percentage, templates.Count)
    if value_model is not templates.DateValue and value_model not in kinds:
        return True
    from shared.documents.analysis import amounts, dates
    from shared.documents.analysis.evidence import normalize

    text = str(item["text"])
    if normalize(text) not in normalize(str(item["evidence"]["quote"])):
        return False
    if value_model is templates.DateValue:
        return any(item["value"] in found.values for found in dates.find(text))
    value = abs(float(item["value"]))
    written = (n for m in _NUMBER.finditer(text) for n in amounts.readings(m.group()))
    if not any(math.isclose(n, value, rel_tol=1e-9) for n in written):
        return False
    scale = item.get("scale")
    return not scale or bool(_SCALE_WORDS[scale] & set(_WORDS.findall(text.casefold())))


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def _value_model(annotation: Any) -> type[BaseModel]:
    """The value model of `X | None` or `list[X]`."""
    for arg in getattr(annotation, "__args__", ()) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    raise TypeError(f"not a template field: {annotation!r}")


def analyze(
    markdown: str,
    *,
    template: str = templates.DEFAULT_TEMPLATE,
    title: str | None = None,
    author: str | None = None,
    config: Any = None,
    http: Any = None,
) -> Analysis:
    """The document's analysis against `template`. `config` is the summarizer's
    `SummarizerConfig`: `extractive` (or None) runs the offline rules, `anthropic` and
    `openai` the LLM extractor."""
    from shared.documents.analysis.evidence import Locator

    locator = Locator(markdown)
    kind = getattr(config, "kind", "extractive") or "extractive"
    if kind == "extractive":
        from shared.documents.analysis import rules

        raw, unverified = rules.extract(markdown, template=template, title=title, author=author)
        usage = Usage()
    else:
        from shared.documents.analysis import llm

        raw, unverified, usage = llm.extract(
            markdown, template=template, title=title, config=config, http=http
        )
    fields, unverified = finalize(template, raw, locator, unverified)
    return Analysis(template=template, fields=fields, unverified=unverified, usage=usage)

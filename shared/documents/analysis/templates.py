"""Analysis templates: pydantic models of the fields to extract, and the registry of them.

A template is a model whose fields are values or lists of values; every value carries
`evidence`, the exact quote from the document it was read from and where that quote is (page
for paged documents, else the nearest heading above it). The offline extractor (`rules.py`)
and the LLM extractor (`llm.py`) fill the same models; `evidence.py` checks every quote against
the document before a value is kept (the grounding check), so a value without a quote that is
really in the text never reaches `fields`.

Shipped templates: `document_brief` (the default) and `financial`. `TEMPLATES` maps a name to
its model; `describe()` is what `GET /templates` answers.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.platform.errors import Unprocessable

Scale = Literal["thousand", "million", "billion", "trillion"]
SCALE_FACTORS: dict[str, int] = {
    "thousand": 1_000,
    "million": 1_000_000,
    "billion": 1_000_000_000,
    "trillion": 1_000_000_000_000,
}


class _Model(BaseModel):
    # No inf or NaN: PostgreSQL's jsonb refuses them, so one would fail the job's completion.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Evidence(_Model):
    """Where a value was read: the quote as it is in the document, and its place."""

    quote: str = Field(min_length=1, max_length=1000, description="Exact text from the document.")
    page: int | None = Field(default=None, ge=1, description="Page of a paged document.")
    section: str | None = Field(
        default=None, max_length=300, description="The nearest heading above the quote."
    )


class Text(_Model):
    """A short text value (a name, a title, a document type)."""

    value: str = Field(min_length=1, max_length=500)
    evidence: Evidence


class Statement(_Model):
    """A sentence-long item: an obligation, an action item, a risk, a deal term."""

    text: str = Field(min_length=1, max_length=1000)
    evidence: Evidence


class DateValue(_Model):
    """A calendar date, ISO 8601: `YYYY-MM-DD`, or `YYYY-MM` when the document names only the
    month. Never a guess: a date that could be read two ways is left out (`unverified`)."""

    value: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    text: str = Field(min_length=1, max_length=200, description="The date as written.")
    evidence: Evidence

    @field_validator("value")
    @classmethod
    def _a_real_date(cls, value: str) -> str:
        """2026-13-45 matches the pattern; the calendar refuses it."""
        datetime.date.fromisoformat(value if len(value) == 10 else value + "-01")
        return value


class Amount(_Model):
    """A monetary amount: `value` as written (4.2 in "$4.2 million"), `scale` as written next
    to it, `currency` as an ISO 4217 code when the document says which."""

    value: float
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    scale: Scale | None = None
    text: str = Field(min_length=1, max_length=200, description="The amount as written.")
    context: str | None = Field(default=None, max_length=1000, description="Its sentence.")
    evidence: Evidence

    def normalized(self) -> float:
        """The value with its scale applied."""
        return self.value * SCALE_FACTORS.get(self.scale or "", 1)


class Percentage(_Model):
    value: float
    text: str = Field(min_length=1, max_length=200, description="The percentage as written.")
    context: str | None = Field(default=None, max_length=1000)
    evidence: Evidence


class Metric(_Model):
    """A financial figure for a period: revenue, EBITDA or net income."""

    value: float
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    scale: Scale | None = None
    period: str | None = Field(default=None, max_length=100, description='e.g. "FY2025".')
    text: str = Field(min_length=1, max_length=200)
    evidence: Evidence


class Count(_Model):
    """A whole number such as a headcount."""

    value: int = Field(ge=0)
    text: str = Field(min_length=1, max_length=200)
    evidence: Evidence


class DocumentBrief(_Model):
    """Who, when, how much and what must happen: the facts of any business document."""

    document_type: Text | None = None
    title: Text | None = None
    organizations: list[Text] = Field(default_factory=list)
    people: list[Text] = Field(default_factory=list)
    dates: list[DateValue] = Field(default_factory=list)
    amounts: list[Amount] = Field(default_factory=list)
    percentages: list[Percentage] = Field(default_factory=list)
    obligations: list[Statement] = Field(
        default_factory=list, description="Obligations and action items."
    )
    risks: list[Statement] = Field(default_factory=list)


class Financial(_Model):
    """A company's figures, for a confidential information memorandum, an annual report or
    similar."""

    company: Text | None = None
    industry: Text | None = None
    periods: list[Text] = Field(default_factory=list, description='Reporting periods ("FY2025").')
    revenue: list[Metric] = Field(default_factory=list)
    ebitda: list[Metric] = Field(default_factory=list)
    net_income: list[Metric] = Field(default_factory=list)
    growth_rates: list[Percentage] = Field(default_factory=list)
    headcount: list[Count] = Field(default_factory=list)
    deal_terms: list[Statement] = Field(default_factory=list)
    risks: list[Statement] = Field(default_factory=list)


TEMPLATES: dict[str, type[_Model]] = {
    "document_brief": DocumentBrief,
    "financial": Financial,
}
DEFAULT_TEMPLATE = "document_brief"


def get(name: str) -> type[_Model]:
    """The template called `name`; KeyError when there is none."""
    return TEMPLATES[name]


def check_name(name: object, default: str) -> str:
    """A template name from a request: `default` (the `ANALYSIS_TEMPLATE` setting) when none
    is given; 422 `unknown_template` for a name not in the registry."""
    if name is None or name == "":
        name = default
    if not isinstance(name, str) or name.strip() not in TEMPLATES:
        raise Unprocessable(
            f"template must be one of {', '.join(TEMPLATES)} (GET /templates)",
            code="unknown_template",
        )
    return name.strip()


def describe() -> list[dict[str, Any]]:
    """Each template's name, description and JSON Schema, in registry order."""
    return [
        {
            "name": name,
            "description": " ".join((model.__doc__ or "").split()),
            "schema": model.model_json_schema(),
        }
        for name, model in TEMPLATES.items()
    ]

"""What every summarizer shares: its configuration, its answer and its interface."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

KINDS = ("extractive", "anthropic", "openai")


@dataclass(frozen=True)
class SummarizerConfig:
    """How to summarize; built by the caller from settings."""

    kind: str = "extractive"  # extractive | anthropic | openai
    model: str | None = None  # default per provider
    api_key: str | None = field(default=None, repr=False)  # never logged, never in errors
    base_url: str | None = None  # default per provider
    timeout_seconds: float = 60.0
    max_input_tokens: int = 8000  # per request: the chunk budget (prompt included)
    max_output_tokens: int = 512
    price_input_per_mtok: float = 0.0  # USD per million input tokens, for the cost estimate
    price_output_per_mtok: float = 0.0
    summary_sentences: int = 3
    key_points: int = 5


@dataclass
class Summary:
    summary: str
    key_points: list[str]
    summarizer: str
    model: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0
    chunks: int = 1

    def as_result(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        result = dataclasses.asdict(self)
        result["key_points"] = list(self.key_points)
        result["cost_usd"] = round(self.cost_usd, 8)
        return result


class Summarizer(Protocol):
    name: str

    def summarize(
        self, text: str, *, title: str | None = None, markdown: str | None = None
    ) -> Summary:
        """Summarize `text`; `markdown` is the same document as the extraction's Markdown
        (headings, GFM tables, `<!-- page N -->` markers), which a summarizer may read
        instead of the flat text."""
        ...

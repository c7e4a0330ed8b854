"""Summarizers behind one interface: extractive (the default), Anthropic and OpenAI-compatible.

- `extractive`: offline and deterministic, no model and no network. LexRank over the prose
  sentences of the Markdown (`candidates.py` says what is never a candidate); key points
  cover the major sections; tabular documents are described from computed column figures
  (`tables.py`).
- `anthropic` (Messages API) and `openai` (Chat Completions at any compatible base URL): over
  httpx with the configured timeouts. The model is asked for JSON
  `{"summary": ..., "key_points": [...]}` and its reply is parsed leniently. A text over the
  per-request token budget is split (`split_text`), each chunk summarized (map) and the
  partial summaries summarized together (reduce, recursively while still over budget). Token
  usage and an estimated cost are summed over every request.

Failures are `JobError`s: 429, 5xx, timeouts and connection errors are recoverable (the queue
retries with backoff), other 4xx are not, and a 200 whose body is unusable is recoverable.
Neither the API key nor the document text ever appears in an error, a result or a log line.
"""

from __future__ import annotations

import httpx

from shared.documents.summarize.anthropic import AnthropicSummarizer
from shared.documents.summarize.base import KINDS, Summarizer, SummarizerConfig, Summary
from shared.documents.summarize.chat import parse_reply
from shared.documents.summarize.chunking import estimate_tokens, split_text
from shared.documents.summarize.extractive import ExtractiveSummarizer
from shared.documents.summarize.openai import OpenAISummarizer
from shared.platform.errors import ConfigError

__all__ = [
    "KINDS",
    "AnthropicSummarizer",
    "ExtractiveSummarizer",
    "OpenAISummarizer",
    "Summarizer",
    "SummarizerConfig",
    "Summary",
    "estimate_tokens",
    "make_summarizer",
    "parse_reply",
    "split_text",
]


def make_summarizer(config: SummarizerConfig, http: httpx.Client | None = None) -> Summarizer:
    """The summarizer `config.kind` names; ConfigError for an unknown kind or a bad setting."""
    kind = config.kind.strip().lower()
    problems = []
    if config.timeout_seconds <= 0:
        problems.append("timeout_seconds must be positive")
    if config.max_input_tokens < 1 or config.max_output_tokens < 1:
        problems.append("max_input_tokens and max_output_tokens must be at least 1")
    if config.price_input_per_mtok < 0 or config.price_output_per_mtok < 0:
        problems.append("prices must not be negative")
    if config.summary_sentences < 1 or config.key_points < 0:
        problems.append("summary_sentences must be at least 1 and key_points not negative")
    if problems:
        raise ConfigError("invalid summarizer configuration: " + "; ".join(problems))
    if kind == "extractive":
        return ExtractiveSummarizer(config)
    if kind == "anthropic":
        return AnthropicSummarizer(config, http)
    if kind == "openai":
        return OpenAISummarizer(config, http)
    raise ConfigError(f"unknown summarizer {config.kind!r}; expected one of {', '.join(KINDS)}")

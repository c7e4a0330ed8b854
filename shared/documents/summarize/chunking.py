"""Text helpers: token estimates, splitting a text into chunks within a budget, trimming."""

from __future__ import annotations

import re

# Sentence boundaries: end punctuation (optionally followed by a closing quote or bracket) and
# whitespace; CJK full stops, which need no whitespace; a blank line (paragraph break).
_SENTENCE_BREAK = re.compile(
    r"(?:(?<=[.!?\u2026])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s+"
    r"|(?<=[\u3002\uff01\uff1f])\s*"
    r"|\n[ \t\r\f\v]*\n\s*"
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


def estimate_tokens(text: str) -> int:
    """A rough token count: about four characters a token, at least 1 for non-empty text."""
    return -(-len(text) // 4)


def split_text(text: str, max_tokens: int) -> list[str]:
    """Split `text` into chunks of at most `max_tokens` (estimated) each.

    Splits on paragraph breaks, then sentence boundaries, then whitespace (or, for a run
    without whitespace, anywhere). Chunks are stripped and in order; joining them with
    whitespace gives back all of the text's non-whitespace content in order.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    limit = max_tokens * 4
    text = text.strip()
    if not text:
        return []
    if len(text) <= limit:
        return [text]

    # (separator before the piece, piece), every piece within the limit.
    pieces: list[tuple[str, str]] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            pieces.append(("\n\n", paragraph))
            continue
        separator = "\n\n"
        for sentence in _SENTENCE_BREAK.split(paragraph):
            sentence = sentence.strip()
            if not sentence:
                continue
            if len(sentence) <= limit:
                pieces.append((separator, sentence))
            else:
                for hard_separator, hard in _hard_split(sentence, limit):
                    pieces.append((separator if hard_separator is None else hard_separator, hard))
            separator = " "

    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for separator, piece in pieces:
        if current and size + len(separator) + len(piece) <= limit:
            current.append(separator)
            current.append(piece)
            size += len(separator) + len(piece)
            continue
        if current:
            chunks.append("".join(current))
        current = [piece]
        size = len(piece)
    if current:
        chunks.append("".join(current))
    return chunks


def _hard_split(sentence: str, limit: int) -> list[tuple[str | None, str]]:
    """Cut an over-long sentence at whitespace near the limit (mid-word only if it must).

    Returns (separator, piece) pairs: None for the first (the caller's separator applies),
    " " after a cut at whitespace, "" after a mid-word cut.
    """
    rest = " ".join(sentence.split())
    out: list[tuple[str | None, str]] = []
    separator: str | None = None
    start = 0
    while len(rest) - start > limit:
        cut = rest.rfind(" ", start, start + limit + 1)
        if cut > start + limit // 2:
            out.append((separator, rest[start:cut]))
            start = cut + 1
            separator = " "
        else:  # no usable whitespace: cut mid-word
            out.append((separator, rest[start : start + limit]))
            start += limit
            separator = ""
    if start < len(rest):
        out.append((separator, rest[start:]))
    return out


def _trim(text: str, limit: int) -> str:
    """Shorten to at most `limit` characters, at a word boundary when there is one, with "…"."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    if cut < limit // 2:
        cut = limit - 1
    return text[:cut].rstrip(" ,;:-\u2013\u2014") + "…"


def _normalize(text: str) -> str:
    return " ".join(text.split())

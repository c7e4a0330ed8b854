"""The extractive summarizer's throughput (target: at least 5 MB of text per second, up to the
25 MiB upload limit).

Generates ~N MB of English-like text (deterministic: a seeded generator over a fixed
vocabulary, sentences of 6-28 words, paragraphs of 2-7 sentences) and the same paragraphs as
Markdown the way the extractors write it (`to_markdown`: headings, `<!-- page N -->` markers,
a footer line on every page, list items, emphasis and links, a GFM table now and then). Each
is summarized with the extractive summarizer a few times, timing the whole `summarize` call
(the Markdown parsing included), and the best and median MB/s are printed (MB = 10^6 bytes of
UTF-8, of the input handed over). Offline: no network, no model, no database.

Usage: python bench/summarize_bench.py [--mb 4 25] [--runs 3] [--seed 7]
                                       [--input text|markdown|both]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.documents.summarize import SummarizerConfig, make_summarizer  # noqa: E402

_FUNCTION_TEXT = (
    "the of and to in a is that for it as with was on be by this are from at or an have "
    "which not but all their has were been its more also will would can other these into "
    "than when after over such between under while our most about during"
)
_CONTENT_TEXT = (
    "contract invoice payment supplier customer revenue quarter budget forecast report "
    "delivery schedule warranty liability agreement clause party term renewal notice "
    "service level availability incident response audit compliance policy security data "
    "retention storage backup recovery migration database queue worker document upload "
    "summary analysis market growth margin cost price discount volume region team project "
    "milestone risk issue decision approval review board committee manager employee "
    "training office travel expense account balance tax fiscal statement profit loss asset "
    "capital investment loan interest rate inflation demand supply inventory warehouse "
    "shipment logistics carrier route vehicle fleet maintenance repair inspection safety "
    "quality standard certification vendor procurement tender bid proposal estimate"
)
_CAPITALIZED_TEXT = "Acme Globex Initech Umbrella Northwind Contoso Fabrikam Europe Asia March"
FUNCTION_WORDS = _FUNCTION_TEXT.split()
CONTENT_WORDS = _CONTENT_TEXT.split()
CAPITALIZED = _CAPITALIZED_TEXT.split()


def generate(size_bytes: int, seed: int = 7) -> str:
    """About `size_bytes` of English-like paragraphs; the same seed gives the same text."""
    rng = random.Random(seed)
    # Zipf-like weights: a few content words are much more frequent than the rest.
    weights = [1.0 / (rank + 1) for rank in range(len(CONTENT_WORDS))]
    paragraphs: list[str] = []
    size = 0
    while size < size_bytes:
        sentences = []
        for _ in range(rng.randint(2, 7)):
            n = rng.randint(6, 28)
            words = [
                rng.choice(FUNCTION_WORDS)
                if rng.random() < 0.45
                else rng.choices(CONTENT_WORDS, weights)[0]
                for _ in range(n)
            ]
            if rng.random() < 0.2:
                words[rng.randrange(n)] = rng.choice(CAPITALIZED)
            if rng.random() < 0.1:
                words.insert(rng.randrange(n), str(rng.randint(1, 9999)))
            sentence = " ".join(words)
            end = "." if rng.random() < 0.9 else rng.choice("?!")
            sentences.append(sentence[0].upper() + sentence[1:] + end)
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def to_markdown(text: str, seed: int = 7) -> str:
    """The paragraphs of `text` as extracted Markdown: a page marker and a footer every 8
    paragraphs, a `##` heading every 12, every 10th paragraph a list, emphasis and a link now
    and then, and a small GFM table every 50 paragraphs."""
    rng = random.Random(seed)
    paragraphs = text.split("\n\n")
    pages = len(paragraphs) // 8 + 1
    out: list[str] = []
    for i, paragraph in enumerate(paragraphs):
        if i % 8 == 0:
            page = i // 8 + 1
            out.append(f"<!-- page {page} -->")
            out.append(f"Acme Corporation \u2013 Annual Report \u2013 page {page} of {pages}")
        if i % 12 == 0:
            out.append(f"## Section {i // 12 + 1}: {rng.choice(CONTENT_WORDS).title()}")
        if i % 50 == 25:
            rows = [
                f"| {rng.choice(CAPITALIZED)} | {rng.randint(1, 9999):,} | {rng.random():.1%} |"
                for _ in range(5)
            ]
            out.append("\n".join(["| Region | Revenue (USD) | Margin |", "|---|---|---|", *rows]))
        words = paragraph.split(" ")
        if len(words) > 4 and rng.random() < 0.3:
            k = rng.randrange(len(words) - 1)
            words[k] = f"**{words[k]}**"
            k = rng.randrange(len(words) - 1)
            words[k] = f"[{words[k]}](https://example.com/{k})"
        paragraph = " ".join(words)
        if i % 10 == 5:
            out.append("\n".join(f"- {s}" for s in paragraph.split(". ")))
        else:
            out.append(paragraph)
    return "\n\n".join(out)


def bench(name: str, document: str, runs: int, *, markdown: bool) -> None:
    summarizer = make_summarizer(SummarizerConfig(kind="extractive"))
    megabytes = len(document.encode()) / 1_000_000
    warm = document[:100_000]  # warm-up (regex caches)
    summarizer.summarize(warm, markdown=warm if markdown else None)
    rates = []
    result = None
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        if markdown:
            result = summarizer.summarize(document, markdown=document)
        else:
            result = summarizer.summarize(document)
        elapsed = time.perf_counter() - started
        rates.append(megabytes / elapsed)
    assert result is not None
    print(f"extractive summarizer, {name}: {megabytes:.2f} MB, {len(rates)} runs")
    print(f"  best   {max(rates):.2f} MB/s")
    print(f"  median {statistics.median(rates):.2f} MB/s  (target: >= 5 MB/s)")
    print(f"  summary: {len(result.summary)} chars, {len(result.key_points)} key points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=float, nargs="+", default=[4.0, 25.0], help="sizes in MB (default 4 25)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--input",
        choices=("text", "markdown", "both"),
        default="both",
        help="summarize the plain text, the Markdown, or both (default both)",
    )
    args = parser.parse_args()

    for mb in args.mb:
        text = generate(int(mb * 1_000_000), args.seed)
        if args.input in ("text", "both"):
            bench("plain text", text, args.runs, markdown=False)
        if args.input in ("markdown", "both"):
            bench("Markdown", to_markdown(text, args.seed), args.runs, markdown=True)


if __name__ == "__main__":
    main()

"""The extractive summarizer's throughput (target: at least 1 MB of text per second).

Generates ~N MB of English-like text (deterministic: a seeded generator over a fixed
vocabulary, sentences of 6-28 words, paragraphs of 2-7 sentences), summarizes it with the
extractive summarizer a few times and prints the best and median MB/s (MB = 10^6 bytes of
UTF-8). Offline: no network, no model, no database.

Usage: python bench/summarize_bench.py [--mb 4] [--runs 3] [--seed 7]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="text size in MB (default 4)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    text = generate(int(args.mb * 1_000_000), args.seed)
    megabytes = len(text.encode()) / 1_000_000
    summarizer = make_summarizer(SummarizerConfig(kind="extractive"))
    summarizer.summarize(text[:100_000])  # warm-up (regex caches)

    rates = []
    result = None
    for _ in range(max(1, args.runs)):
        started = time.perf_counter()
        result = summarizer.summarize(text)
        elapsed = time.perf_counter() - started
        rates.append(megabytes / elapsed)
    assert result is not None
    print(f"extractive summarizer: {megabytes:.2f} MB of text, {len(rates)} runs")
    print(f"  best   {max(rates):.2f} MB/s")
    print(f"  median {statistics.median(rates):.2f} MB/s  (target: >= 1 MB/s)")
    print(f"  summary: {len(result.summary)} chars, {len(result.key_points)} key points")


if __name__ == "__main__":
    main()

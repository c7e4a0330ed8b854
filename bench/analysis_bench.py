"""The offline analysis extractor's time per MB (target: well over 5 MB of Markdown a second).

Generates business-like Markdown (the summarizer bench's seeded English-like paragraphs, with
headings, list items, a table every few sections, and dates, amounts, percentages, periods and
company names sprinkled into about one sentence in five), then times `rules.extract` for each
template at each size, a few runs each, and prints MB/s and ms per MB (MB = 10^6 bytes of
UTF-8). The time budget is lifted for the measurement, so the whole text is read. The text
is dense with facts (about one sentence in five), so past about 5,000 matches of a kind
(`rules.MAX_MATCHES`, a few MB in) the extractor stops looking for that kind: the 1 MB figure
is the full work rate, the 25 MB one includes the caps. Offline: no network, no model, no
database. The last line is one JSON object, like the other benches.

Usage: python bench/analysis_bench.py [--mb 1 25] [--runs 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from summarize_bench import generate  # noqa: E402

from shared.documents.analysis import rules  # noqa: E402

FACTS = (
    "The board approved the budget on 14 March 2026.",
    "Revenue reached $4.2 million in FY2025, up 12% on the prior year.",
    "EBITDA was NOK 12.5 million for the year ended 31 December 2025.",
    "Payment of EUR 1,250,000 is due by March 31, 2026.",
    "Acme Holdings Inc. signed the agreement with Globex GmbH in Q3 2026.",
    "Net income fell 3.5 percent to £850k.",
    "The company has 1,250 employees across 4 sites.",
    "The review is planned for June 2026 and the renewal for 2026-09-30.",
    "The supplier must deliver within 30 days of 03/04/2026.",
    "Costs of ($1,200) were written off in H1 2025.",
)


def document(size_bytes: int, seed: int = 7) -> str:
    """About `size_bytes` of business-like Markdown; the same seed gives the same text."""
    rng = random.Random(seed)
    paragraphs = generate(size_bytes, seed).split("\n\n")
    out: list[str] = []
    for i, paragraph in enumerate(paragraphs):
        if i % 12 == 0:
            out.append(f"## Section {i // 12 + 1}" if i else "# Northwind Annual Report 2025")
        if i % 12 == 6:
            out.append("## Risks" if rng.random() < 0.5 else "## Next steps")
        sentences = paragraph.split(". ")
        for j in range(len(sentences)):
            if rng.random() < 0.2:
                sentences[j] = rng.choice(FACTS) + " " + sentences[j]
        text = ". ".join(sentences)
        if i % 12 in (6, 7):
            out.append("\n".join(f"- {s.strip()}" for s in text.split(". ") if s.strip()))
        elif i % 24 == 9:
            out.append(
                "| Metric | FY2025 | FY2024 |\n|---|---|---|\n"
                "| Revenue | $4.2m | $3.9m |\n| EBITDA | $1.1m | $0.8m |\n| Growth | 7% | 5% |"
            )
            out.append(text)
        else:
            out.append(text)
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[1.0, 25.0], help="sizes in MB")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rules.extract(document(100_000, args.seed), template="financial", title=None, author=None)
    results: dict[str, dict[str, float]] = {}
    for mb in args.mb:
        text = document(int(mb * 1_000_000), args.seed)
        megabytes = len(text.encode()) / 1_000_000
        for template in ("document_brief", "financial"):
            rates = []
            raw: dict[str, object] = {}
            unverified: list[dict[str, object]] = []
            for _ in range(max(1, args.runs)):
                started = time.perf_counter()
                raw, unverified = rules.extract(
                    text, template=template, title=None, author=None, budget_seconds=3600
                )
                rates.append(megabytes / (time.perf_counter() - started))
            median = statistics.median(rates)
            counted = {
                k: len(v) if isinstance(v, list) else int(v is not None) for k, v in raw.items()
            }
            print(
                f"{template:15} {megabytes:6.2f} MB: median {median:6.1f} MB/s"
                f" ({1000 / median:6.1f} ms per MB), best {max(rates):6.1f} MB/s;"
                f" values {sum(counted.values())}, unverified {len(unverified)}"
            )
            results[f"{template}_{mb:g}mb"] = {
                "megabytes": round(megabytes, 2),
                "median_mb_per_s": round(median, 1),
                "best_mb_per_s": round(max(rates), 1),
                "ms_per_mb": round(1000 / median, 1),
            }
    print(json.dumps({"bench": "analysis", "runs": args.runs, "results": results}))


if __name__ == "__main__":
    main()

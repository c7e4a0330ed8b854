"""The extractive summarizer (the default): offline, deterministic, linear in the document.

It reads the Markdown (`markdown=`; else the text, read as Markdown):

1. `candidates.parse()` finds the prose blocks, sections and tables; headings, code, HTML,
   tables, contents lines and page headers and footers never become candidates.
2. A document that is mostly GFM tables (a CSV always is) is described, not quoted:
   `tables.describe()` computes rows, columns, types, ranges, sums, means, frequent values and
   empty cells.
3. Otherwise at most `MAX_BLOCKS` blocks, spread evenly across the sections, are split into
   sentences; those that read as prose are the candidates (at most `MAX_CANDIDATES`, again
   spread across sections).
4. LexRank (Erkan and Radev, 2004): the stationary distribution of a random walk over the
   candidates' TF-IDF cosine-similarity graph, damped like PageRank. The graph is never built:
   with unit vectors, one step of the walk is a dot product with a weighted centroid, so each
   iteration is linear in the candidates' terms. The score is the centrality times a length
   prior (very short or very long sentences lose) and a mild position prior (earlier wins).
5. The summary is the best `summary_sentences` sentences, in document order, within 600
   characters. The key points are distinct from them and from each other (cosine below
   `_SAME`): first the best sentence of each of the largest major sections (the shallowest
   heading level that splits the candidates in two or more; page ranges for a long document
   without headings), then the best remaining ones, in document order, each within 200
   characters. A document with prose and a large table gets a key point describing the table.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import chain

from shared.documents.summarize import candidates as cands
from shared.documents.summarize import tables
from shared.documents.summarize.base import SummarizerConfig, Summary
from shared.documents.summarize.candidates import Candidate, Parsed
from shared.documents.summarize.chunking import _WORD, _trim

_STOPWORD_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each either else etc even ever every few for from further
    get gets got had hadn't has hasn't have haven't having he he'd he'll he's her here here's
    hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't it
    it's its itself just let's like made make many may me might more most much must mustn't my
    myself neither no nor not now of off often on once one only or other others otherwise ought
    our ours ourselves out over own per perhaps quite rather really same say says said shall
    shan't she she'd she'll she's should shouldn't since so some such than that that's the
    their theirs them themselves then there there's these they they'd they'll they're they've
    this those though through thus to too under until up upon us use used using very via was
    wasn't we we'd we'll we're we've well were weren't what what's when when's where where's
    whether which while who who's whom whose why why's will with within without won't would
    wouldn't yet you you'd you'll you're you've your yours yourself yourselves
    """
# Both apostrophes: "don't" and "don\u2019t".
_STOPWORDS = frozenset(
    chain.from_iterable((w, w.replace("'", "\u2019")) for w in _STOPWORD_TEXT.split())
)

SUMMARY_MAX_CHARS = 600
KEY_POINT_MAX_CHARS = 200
# Bounds on the work: blocks split into sentences, and sentences ranked.
MAX_BLOCKS = 1_000
MAX_CANDIDATES = 600
DAMPING = 0.15  # LexRank's jump probability
ITERATIONS = 60
_SAME = 0.8  # cosine at or above which two sentences say the same thing
_SUMMARY_SENTENCE_CHARS = 300  # longer sentences go to the summary only when nothing else fits
_TABLE_POINT_ROWS = 5  # a table this long gets a key point in a prose document

Vector = dict[str, float]


class ExtractiveSummarizer:
    """LexRank over the Markdown's prose; tables described. Offline and deterministic."""

    name: str = "extractive"

    def __init__(self, config: SummarizerConfig | None = None) -> None:
        config = config or SummarizerConfig()
        self.summary_sentences = config.summary_sentences
        self.key_points = config.key_points

    def summarize(
        self, text: str, *, title: str | None = None, markdown: str | None = None
    ) -> Summary:
        # The title is not used: the score comes from the document alone.
        parsed = cands.parse(markdown if markdown is not None else text)
        found: list[Candidate] = []
        if not _tabular(parsed):
            found = cands.spread(
                cands.candidates(parsed, MAX_BLOCKS), MAX_CANDIDATES, lambda c: c.section
            )
        if not found:
            if parsed.tables:
                described = tables.describe(parsed.tables, self.key_points)
                return self._summary(described.summary, described.points[: self.key_points])
            return self._summary(_nothing_to_quote(text if markdown is None else markdown), [])
        summary, points = self._select(parsed, found)
        if parsed.tables and self.key_points:
            largest = max(parsed.tables, key=lambda t: t.size)
            if largest.row_count >= _TABLE_POINT_ROWS:
                points = [*points[: self.key_points - 1], tables.table_point(largest)]
        return self._summary(summary, points)

    def _summary(self, summary: str, key_points: list[str]) -> Summary:
        return Summary(summary=summary, key_points=key_points, summarizer=self.name, model=None)

    def _select(self, parsed: Parsed, found: list[Candidate]) -> tuple[str, list[str]]:
        vectors = _vectors([c.text for c in found])
        central = lexrank(vectors)
        n = len(found)
        scores = [
            central[i] * n * _prior(found[i].text) * (1.0 + 0.2 * (1.0 - i / n)) for i in range(n)
        ]
        ranked = sorted(range(n), key=lambda i: (-scores[i], i))
        chosen: list[int] = []

        def distinct(i: int) -> bool:
            return all(_cosine(vectors[i], vectors[j]) < _SAME for j in chosen)

        # The summary: the best sentences that fit, in document order. Whole sentences of at
        # most 300 characters first, then any of them; a longer one only when nothing fits.
        wanted = min(self.summary_sentences, max(2, n - self.key_points))
        size = 0
        for closed_only in (True, False):
            for i in ranked:
                if len(chosen) >= wanted:
                    break
                text = found[i].text
                if i in chosen or (closed_only and not found[i].closed):
                    continue
                if len(text) > _SUMMARY_SENTENCE_CHARS or size + len(text) + 1 > SUMMARY_MAX_CHARS:
                    continue
                if distinct(i):
                    chosen.append(i)
                    size += len(text) + 1
        if not chosen:
            chosen.append(ranked[0])
        summary = _trim(" ".join(_closed(found[i].text) for i in sorted(chosen)), SUMMARY_MAX_CHARS)

        # The key points: the major sections first, then by score.
        points: list[int] = []
        slots = self.key_points
        for group in _major_groups(parsed, found, slots):
            best = next(
                (
                    i
                    for i in ranked
                    if i in group and i not in chosen and len(found[i].text) <= 200 and distinct(i)
                ),
                None,
            )
            if best is not None:
                chosen.append(best)
                points.append(best)
        for limit in (KEY_POINT_MAX_CHARS, math.inf):
            for i in ranked:
                if len(points) >= slots:
                    break
                if i not in chosen and len(found[i].text) <= limit and distinct(i):
                    chosen.append(i)
                    points.append(i)
        key_points = [_trim(found[i].text, KEY_POINT_MAX_CHARS) for i in sorted(points)]
        return summary, key_points


def _closed(sentence: str) -> str:
    """A sentence ending in punctuation, so that the summary's sentences do not run on."""
    if sentence[-1] in ".!?\u2026\u3002\uff01\uff1f" or not sentence[-1].isalnum():
        return sentence
    return sentence + "."


def _tabular(parsed: Parsed) -> bool:
    """Mostly tables: the table rows hold more characters than the prose."""
    return bool(parsed.tables) and parsed.table_chars >= parsed.prose_chars


def _nothing_to_quote(text: str) -> str:
    words = len(text.split())
    if not words:
        return ""
    counted = f"{words:,} {'word is' if words == 1 else 'words are'}"
    return (
        f"No sentence to quote: the document's {counted} in headings, short lines, tables "
        "or text repeated on every page."
    )


def _prior(sentence: str) -> float:
    """Very short and very long sentences lose, and so does one that only introduces what
    follows ("as follows:")."""
    words = cands.word_count(sentence)
    prior = 1.0
    if words < 8:
        prior = 0.7 + 0.0375 * words
    elif words > 40:
        prior = max(0.4, 40 / words)
    return prior * 0.5 if sentence.endswith(":") else prior


def _terms(sentence: str) -> list[str]:
    out = []
    for word in _WORD.findall(sentence.lower()):
        if len(word) < 2 or word in _STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]  # a crude plural fold: "installations" ~ "installation"
        out.append(word)
    return out


def _vectors(sentences: list[str]) -> list[Vector]:
    """Unit TF-IDF vectors (smoothed idf over the candidates)."""
    counts: list[dict[str, int]] = []
    df: dict[str, int] = defaultdict(int)
    for sentence in sentences:
        tf: dict[str, int] = defaultdict(int)
        for term in _terms(sentence):
            tf[term] += 1
        counts.append(tf)
        for term in tf:
            df[term] += 1
    n = len(sentences)
    idf = {t: math.log((1 + n) / (1 + d)) + 1.0 for t, d in df.items()}
    vectors = []
    for tf in counts:
        vector = {t: c * idf[t] for t, c in tf.items()}
        norm = math.sqrt(sum(x * x for x in vector.values()))
        vectors.append({t: x / norm for t, x in vector.items()} if norm else {})
    return vectors


def _dot(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    return sum(x * get(t, 0.0) for t, x in a.items())


def _cosine(a: Vector, b: Vector) -> float:
    return _dot(a, b)  # unit vectors


def lexrank(vectors: list[Vector]) -> list[float]:
    """Continuous LexRank: PageRank over the cosine graph without its self-loops, each edge
    weighted by the similarity. Linear per iteration: the walk's step is a dot product with
    the centroid of the vectors weighted by probability over degree."""
    n = len(vectors)
    if n == 0:
        return []
    centroid: Vector = defaultdict(float)
    for vector in vectors:
        for t, x in vector.items():
            centroid[t] += x
    self_sim = [1.0 if v else 0.0 for v in vectors]
    degree = [_dot(v, centroid) - s for v, s in zip(vectors, self_sim, strict=True)]
    p = [1.0 / n] * n
    for _ in range(ITERATIONS):
        weighted: Vector = defaultdict(float)
        dangling = 0.0
        weights = [0.0] * n
        for i, vector in enumerate(vectors):
            if degree[i] > 1e-12:
                w = weights[i] = p[i] / degree[i]
                for t, x in vector.items():
                    weighted[t] += w * x
            else:
                dangling += p[i]
        spread = dangling / n
        new = [
            DAMPING / n + (1.0 - DAMPING) * (_dot(v, weighted) - weights[i] * self_sim[i] + spread)
            for i, v in enumerate(vectors)
        ]
        change = sum(abs(a - b) for a, b in zip(new, p, strict=True))
        p = new
        if change < 1e-9:
            break
    return p


def _major_groups(parsed: Parsed, found: list[Candidate], slots: int) -> list[set[int]]:
    """Candidate indices of the largest major sections (at most `slots`), in document order.

    Major: the shallowest heading level that puts the candidates in two or more sections. A
    document without headings but of three or more pages is cut into `slots` page ranges."""
    if slots <= 0:
        return []
    sections = parsed.sections
    levels = sorted({s.level for s in sections[1:]})
    for level in levels:
        owner = []
        current = 0
        for index, section in enumerate(sections):
            if index and section.level <= level:
                current = index
            owner.append(current)
        groups: dict[int, set[int]] = defaultdict(set)
        for i, candidate in enumerate(found):
            groups[owner[candidate.section]].add(i)
        if len(groups) >= 2:
            size: dict[int, int] = defaultdict(int)
            for index, section in enumerate(sections):
                size[owner[index]] += section.prose_chars
            largest = sorted(groups, key=lambda g: (-size[g], g))[:slots]
            return [groups[g] for g in sorted(largest)]
    if parsed.pages >= 3 and len(found) > slots:
        ranges: dict[int, set[int]] = defaultdict(set)
        for i, candidate in enumerate(found):
            ranges[min(slots - 1, (candidate.page - 1) * slots // parsed.pages)].add(i)
        if len(ranges) >= 2:
            return [ranges[g] for g in sorted(ranges)]
    return []

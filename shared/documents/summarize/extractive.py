"""The extractive summarizer (the default): offline, deterministic, linear in the text.

Sentences are scored by the summed normalized frequencies of their non-stopword words; the
best few, in document order, make the summary and the next best distinct ones the key points.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import chain

from shared.documents.summarize.base import SummarizerConfig, Summary
from shared.documents.summarize.chunking import _SENTENCE_BREAK, _WORD, _normalize, _trim

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
# Above this many sentences only an evenly spaced, deterministic sample is scored (and counted
# for the word frequencies), which bounds the work for very large texts.
MAX_SCORED_SENTENCES = 50_000


class ExtractiveSummarizer:
    """Frequency-based sentence extraction: deterministic, offline, linear in the text."""

    name: str = "extractive"

    def __init__(self, config: SummarizerConfig | None = None) -> None:
        config = config or SummarizerConfig()
        self.summary_sentences = config.summary_sentences
        self.key_points = config.key_points

    def summarize(self, text: str, *, title: str | None = None) -> Summary:
        # The title is not used: the score comes from the text alone.
        sentences = [s for s in _SENTENCE_BREAK.split(text) if s and not s.isspace()]
        if not sentences:
            return Summary(summary="", key_points=[], summarizer=self.name, model=None)

        stride = max(1, math.ceil(len(sentences) / MAX_SCORED_SENTENCES))
        candidates = sentences[::stride]
        words = [_WORD.findall(s.lower()) for s in candidates]
        counts = Counter(chain.from_iterable(words))
        top = max((c for w, c in counts.items() if w not in _STOPWORDS), default=0)
        weights = {w: 0.0 if w in _STOPWORDS else c / top for w, c in counts.items()}
        get = weights.__getitem__
        scores = [sum(map(get, ws)) for ws in words]
        # Best first; earlier sentences win ties.
        ranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))

        chosen: list[int] = []  # indices into candidates, distinct texts
        seen: set[str] = set()
        wanted = self.summary_sentences + self.key_points
        for i in ranked:
            key = _normalize(candidates[i]).lower()
            if key in seen:
                continue
            seen.add(key)
            chosen.append(i)
            if len(chosen) >= wanted:
                break

        in_summary = sorted(chosen[: self.summary_sentences])
        summary = _trim(" ".join(_normalize(candidates[i]) for i in in_summary), SUMMARY_MAX_CHARS)
        rest = chosen[self.summary_sentences :]
        if len(rest) < self.key_points:
            # A short text: fill the key points from the summary's own sentences, best first.
            rest += chosen[: self.summary_sentences][: self.key_points - len(rest)]
        key_points = [
            _trim(_normalize(candidates[i]), KEY_POINT_MAX_CHARS)
            for i in sorted(rest[: self.key_points])
        ]
        return Summary(summary=summary, key_points=key_points, summarizer=self.name, model=None)

"""Abstention: when the best fused retrieval score is too low, say "not found" (and what the documents cover).

The fused score of :mod:`pipeline.search.retrieve` is absolute (BM25 normalised by the query's own upper bound, plus
a little cosine), so one threshold works across queries. :func:`calibrate_threshold` picks it from the best
scores of answerable questions and of off-topic ones, on a tuning set; report its effect on another set.

Example::

    >>> from pipeline.search.abstention import calibrate_threshold, should_abstain
    >>> cut = calibrate_threshold([0.55, 0.62, 0.48, 0.7], [0.05, 0.12, 0.2], min_recall=0.95)
    >>> round(cut.threshold, 3), cut.recall, cut.rejection
    (0.34, 1.0, 1.0)
    >>> should_abstain([], cut.threshold)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Calibration:
    threshold: float
    recall: float  # share of answerable questions kept (best score >= threshold)
    rejection: float  # share of off-topic questions refused (best score < threshold)


def _rates(threshold: float, positives: Sequence[float], negatives: Sequence[float]) -> tuple[float, float]:
    recall = sum(s >= threshold for s in positives) / max(len(positives), 1)
    rejection = sum(s < threshold for s in negatives) / max(len(negatives), 1)
    return recall, rejection


def calibrate_threshold(positives: Sequence[float], negatives: Sequence[float], *,
                        min_recall: float = 0.95) -> Calibration:
    """The threshold that refuses the most off-topic questions while keeping ``min_recall`` of answerable ones.

    Among equally good cuts it takes the midpoint of the gap, which generalises better than an edge.
    """
    if not positives:
        raise ValueError("need scores of answerable questions")
    candidates = sorted(set(positives) | set(negatives) | {0.0})
    best: tuple[float, float, float] | None = None  # (rejection, recall, threshold)
    for low, high in zip(candidates, [*candidates[1:], candidates[-1] + 1e-6]):
        threshold = (low + high) / 2 if high > low else low
        recall, rejection = _rates(threshold, positives, negatives)
        if recall >= min_recall and (best is None or (rejection, recall) > best[:2]):
            best = (rejection, recall, threshold)
    assert best is not None  # the cut at 0 keeps every answerable question
    return Calibration(best[2], best[1], best[0])


def should_abstain(hits: Sequence, min_relevance: float) -> bool:
    """True when there is no hit or the best fused score is below ``min_relevance``."""
    return not hits or max(h.score for h in hits) < min_relevance


def known_topics(chunks: Sequence, limit: int = 8) -> list[str]:
    """Titles of the indexed documents (most chunks first), to tell a citizen what the bot knows about."""
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.title] = counts.get(chunk.title, 0) + 1
    return [title for title, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]

"""Learned abstention: does the reader's best span answer the question, judged from what reading and retrieval saw.

The reader's own no-answer margin (:mod:`pipeline.answering.reader`) is one signal; how well the passages matched the
question is another (a question whose answer is not in the documents still finds passages of the right
document, but they match it less well). :class:`AnswerabilityModel` is a logistic regression over a few such
signals, all of them read from any corpus without rules about its text (:data:`FEATURES`). It is fitted by
``scripts/bench_answers.py --calibrate`` on SQuAD-pt articles the reader never trained on — answerable
questions against questions whose paragraph is left out of the index (same document, no answer), SQuAD 2.0's
unanswerable questions and off-topic ones — and saved beside the reader adapter as ``abstention.json``, so that
the nightly runs carry it on with the adapter. Its threshold keeps a chosen share of the answerable calibration
questions (``answer_share``).

Example::

    >>> model = AnswerabilityModel(features=("margin", "dense_span"), mean=(2.0, 0.85), scale=(2.0, 0.03),
    ...                            coef=(1.5, 1.0), intercept=0.5, threshold=0.0)
    >>> model.decision({"margin": 4.0, "dense_span": 0.88}) > model.threshold
    True
    >>> model.decision({"margin": -1.0, "dense_span": 0.80}) > model.threshold
    False
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.core.files import atomic_file

logger = logging.getLogger(__name__)

FILE = "abstention.json"
# margin: the best span's score minus the no-answer score; score/null: both parts on their own; dense_span and
# dense_top: cosine of the question with the span's passage and with the first passage (the embedder's);
# lexical_span: the normalised BM25 score of the span's passage; rank: which passage the span came from;
# other_margin: the best margin found in another passage (agreement or confusion between passages).
# Similarities are the passage's own (Hit.passage_dense/passage_lexical), never those of a question indexed about
# it: a vague "O que é isso?" matches generated "O que é ...?" questions closely, and the calibration corpus has
# no such entries, so entry-level scores would not mean the same thing there and in production.
# The supporting sentence of a span (pipeline.answering.citation.supporting_quote: its sentence, or its table header +
# row) says more than its passage: a question whose answer is not indexed still finds passages of the right document,
# but no sentence in them that says what it asks. sentence_dense / sentence_cover: cosine of the question with the
# best span's sentence and the IDF-weighted share of the question's words in it; passage_cover: that share in the
# span's passage; max_sentence_*: the best of those over the best span of every passage read (:class:`Support`).
SENTENCE_FEATURES = ("sentence_dense", "sentence_cover", "passage_cover", "max_sentence_dense", "max_sentence_cover")
FEATURES = ("margin", "score", "null", "dense_span", "dense_top", "lexical_span", "rank", "other_margin",
            *SENTENCE_FEATURES)
NO_SPAN = -20.0  # the margin given when the reader found no span at all


@dataclass(frozen=True)
class Support:
    """How well the sentence that supports a passage's best span matches the question."""

    sentence_dense: float   # cosine of the question's and the sentence's embeddings
    sentence_cover: float   # IDF-weighted share of the question's meaningful words found in the sentence
    passage_cover: float    # the same share in the whole passage


def features_of(hits: Sequence, spans: Sequence, support: Mapping[int, Support] | None = None) -> dict[str, float]:
    """The signals of one question: ``hits`` from the retriever (``.passage_dense``, ``.passage_lexical``), ``spans``
    from :meth:`pipeline.answering.reader.SpanReader.read` (best first), ``support`` (by passage index: the
    :class:`Support` of the best span of each passage read, see ``pipeline.answering.answer.Answerer.support``; without
    it the sentence signals are 0)."""
    support = support or {}
    if not spans or not hits:
        return {"margin": NO_SPAN, "score": 0.0, "null": -NO_SPAN, "dense_span": 0.0,
                "dense_top": float(hits[0].passage_dense) if hits else 0.0, "lexical_span": 0.0,
                "rank": float(len(hits)), "other_margin": NO_SPAN, **{name: 0.0 for name in SENTENCE_FEATURES}}
    best = spans[0]
    others = [s.margin for s in spans if s.passage != best.passage]
    hit = hits[best.passage]
    own = support.get(best.passage, Support(0.0, 0.0, 0.0))
    return {"margin": float(best.margin), "score": float(best.score), "null": float(best.null),
            "dense_span": float(hit.passage_dense), "dense_top": float(hits[0].passage_dense),
            "lexical_span": float(hit.passage_lexical), "rank": float(best.passage),
            "other_margin": float(others[0]) if others else NO_SPAN,
            "sentence_dense": float(own.sentence_dense), "sentence_cover": float(own.sentence_cover),
            "passage_cover": float(own.passage_cover),
            "max_sentence_dense": max([float(s.sentence_dense) for s in support.values()], default=0.0),
            "max_sentence_cover": max([float(s.sentence_cover) for s in support.values()], default=0.0)}


@dataclass(frozen=True)
class AnswerabilityModel:
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float            # decision value (log-odds) below which the reader abstains
    confident: float = math.inf  # decision value from which the answer is shown in bold
    fitted_on: str = ""
    # decision value from which an abstention still shows the closest passage (quoted, never as an answer): most
    # answerable citizen-style questions reach it, no off-topic calibration question does
    near: float = math.inf

    @property
    def needs_support(self) -> bool:
        """Whether the model reads the supporting sentences (:class:`Support`), which costs an embedding."""
        return any(name in SENTENCE_FEATURES for name in self.features)

    def decision(self, values: Mapping[str, float]) -> float:
        """Log-odds that the best span answers the question."""
        total = self.intercept
        for name, mean, scale, coef in zip(self.features, self.mean, self.scale, self.coef):
            total += coef * (float(values[name]) - mean) / scale
        return total

    def save(self, path: Path) -> None:
        with atomic_file(Path(path)) as handle:
            json.dump(asdict(self), handle, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, path: Path) -> "AnswerabilityModel":
        """The model saved at ``path``; ``ValueError`` naming the file when it is malformed."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            model = cls(features=tuple(raw["features"]), mean=tuple(map(float, raw["mean"])),
                        scale=tuple(map(float, raw["scale"])), coef=tuple(map(float, raw["coef"])),
                        intercept=float(raw["intercept"]), threshold=float(raw["threshold"]),
                        confident=float(raw.get("confident", math.inf)), fitted_on=str(raw.get("fitted_on", "")),
                        near=float(raw.get("near", math.inf)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not an abstention model ({exc})") from exc
        unknown = set(model.features) - set(FEATURES)
        if unknown or not (len(model.features) == len(model.mean) == len(model.scale) == len(model.coef)):
            raise ValueError(f"{path}: not an abstention model (features {sorted(unknown)} unknown or lengths differ)")
        if not all(math.isfinite(v) and v > 0 for v in model.scale):
            raise ValueError(f"{path}: not an abstention model (scales must be positive)")
        return model


def load_for(adapter: Path | None) -> AnswerabilityModel | None:
    """The model kept beside a reader adapter, or ``None`` (then the margin threshold decides). A damaged file
    is logged and ignored rather than taking the answers down."""
    path = Path(adapter) / FILE if adapter else None
    if path is None or not path.is_file():
        return None
    try:
        return AnswerabilityModel.load(path)
    except ValueError as exc:
        logger.error("%s; falling back to the reader's margin threshold", exc)
        return None


def fit(positives: Sequence[Mapping[str, float]], negatives: Sequence[Mapping[str, float]], *,
        features: Sequence[str] = FEATURES, answer_share: float = 0.93, confident_share: float = 0.6,
        negative_weights: Sequence[float] | None = None, fitted_on: str = "") -> AnswerabilityModel:
    """A logistic regression of answerable (``positives``) against unanswerable questions; its threshold
    answers ``answer_share`` of the positives, and answers are bold from the decision value that
    ``confident_share`` of the positives reach."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if not positives or not negatives:
        raise ValueError("need feature rows of answerable and of unanswerable questions")
    names = tuple(features)
    x = np.array([[row[n] for n in names] for row in [*positives, *negatives]], dtype=float)
    y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    weights = np.r_[np.ones(len(positives)), negative_weights if negative_weights is not None
                    else np.ones(len(negatives))]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    regression = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / scale, y, sample_weight=weights)
    model = AnswerabilityModel(features=names, mean=tuple(float(v) for v in mean.round(6)),
                               scale=tuple(float(v) for v in scale.round(6)),
                               coef=tuple(float(v) for v in regression.coef_[0].round(6)),
                               intercept=round(float(regression.intercept_[0]), 6), threshold=0.0, fitted_on=fitted_on)
    decisions = np.array([model.decision(row) for row in positives])
    threshold = float(np.quantile(decisions, 1.0 - answer_share))
    confident = float(np.quantile(decisions, 1.0 - confident_share))
    return AnswerabilityModel(**{**asdict(model), "threshold": round(threshold, 4), "confident": round(confident, 4)})

"""Extractive answers: the short span of the retrieved passages that answers the question.

The candidates are the word spans (1-30 words) of the sentences that best cover the question's words in the
top passages; each is described by a few features (length, words of the question inside it or next to it,
its first word — "em", "desde", "para"… —, digits, years, months, capitalised names, punctuation around it,
the sentence's coverage and the passage's rank), crossed with the question's type (onde → place, quando →
date, quanto → value, quem → entity, o que é → definition…). A linear model scores them; its weights were
learned with ``scripts/train_extractor.py`` on one part of FaQuAD and live, as plain JSON, in
``pipeline/answering/extractor_weights.json`` (no pickle). The best span is the answer; its sentence is the quote.

Example::

    >>> from pipeline.answering.extract import SpanExtractor
    >>> from pipeline.core.query import Query
    >>> Query.of("Onde é sediada a UFMS?").kind, Query.of("Em que ano foi criada?").kind
    ('onde', 'quando')
    >>> ex = SpanExtractor.default()
    >>> ex.best("Onde é sediada a UFMS?", ["A UFMS é uma universidade federal sediada em Campo Grande."]).text
    'em Campo Grande'
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.core.query import Query
from pipeline.core.text import (
    ARTICLES,
    FOLDED_MONTHS,
    FOLDED_STOPWORDS,
    PREP_DE,
    PREP_EM,
    PREP_PARA,
    PREP_POR,
    PREP_TIME,
    QUESTION_TYPES,
    content_terms,
    fold,
    is_content,
    same_answer,
    stem_words,
)
from pipeline.documents.chunking import split_sentences

WEIGHTS_FILE = Path(__file__).with_name("extractor_weights.json")
MAX_SPAN_TOKENS = 30
TOP_SENTENCES = 4  # sentences (over all passages, best coverage first) whose spans are candidates

_TOKEN = re.compile(r"\d+(?:[.,/]\d+)*|\w+(?:[-'’]\w+)*|[^\w\s]")
_PUNCT = frozenset(",;:()[]—–-\"“”'")
@dataclass(frozen=True)
class Extraction:
    text: str          # the answer span
    sentence: str      # the sentence it comes from (the quote)
    passage: int       # index of its passage in the list given
    start: int         # character offsets of the span in its passage
    end: int
    score: float       # the model's score of the span
    coverage: float    # IDF-weighted share of the question's words found in its sentence


@dataclass
class _Sentence:
    passage: int
    start: int
    tokens: list[tuple[int, int, str, bool]]  # (start, end, folded, capitalised) in passage offsets
    stems: list[str | None]
    coverage: float


CORE_FEATURES = (
    "bias", "len1", "len2", "len3", "len4_5", "len6_8", "len9_12", "len13_18", "len19p", "log_len", "q_frac",
    "has_q", "first_stop", "last_stop", "first_em", "first_de", "first_para", "first_por", "first_time",
    "first_article", "first_que", "starts_sentence", "ends_sentence", "prev_punct", "next_punct", "prev_q",
    "next_q", "left_q_share", "right_q_share", "near_left", "near_right", "has_digit", "has_year", "has_month",
    "has_cap", "has_symbol", "commas", "has_paren", "sent_cov", "sent_best", "passage_top", "passage_rank",
    "next_stop", "next_article", "prev_stop", "first_cap", "last_cap",
)


def feature_names() -> list[str]:
    return list(CORE_FEATURES) + [f"{t}*{f}" for t in QUESTION_TYPES for f in CORE_FEATURES]


def _tokenize(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    return [(start + m.start(), start + m.end(), fold(m.group()), m.group()[:1].isupper())
            for m in _TOKEN.finditer(text[start:end])]


class SpanExtractor:
    """Scores candidate spans with a linear model over ``feature_names()``."""

    def __init__(self, weights: np.ndarray | None = None, *, mean: np.ndarray | None = None,
                 scale: np.ndarray | None = None) -> None:
        n = len(feature_names())
        self.weights = np.zeros(n) if weights is None else np.asarray(weights, dtype=np.float64)
        self.mean = np.zeros(n) if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = np.ones(n) if scale is None else np.asarray(scale, dtype=np.float64)
        if self.weights.shape != (n,):
            raise ValueError(f"expected {n} weights, got {self.weights.shape}")

    @classmethod
    def default(cls) -> "SpanExtractor":
        """The shipped model (``pipeline/answering/extractor_weights.json``), loaded once per process."""
        return _default_extractor()

    @classmethod
    def from_json(cls, path: Path) -> "SpanExtractor":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("features") != feature_names():
            raise ValueError(f"{path}: features differ from this code's; retrain with scripts/train_extractor.py")
        return cls(np.array(data["weights"]), mean=np.array(data["mean"]), scale=np.array(data["scale"]))

    def to_json(self, path: Path, **info) -> None:
        payload = {"features": feature_names(), "weights": [round(float(w), 6) for w in self.weights],
                   "mean": [round(float(m), 6) for m in self.mean], "scale": [round(float(s), 6) for s in self.scale],
                   **info}
        Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=0), encoding="utf-8")

    # --- candidates -----------------------------------------------------------------------------------------

    def sentences(self, question: Query | str, passages: list[str], idf: dict[str, float] | None = None,
                  top: int = TOP_SENTENCES) -> tuple[list[_Sentence], set[str]]:
        """The ``top`` sentences of ``passages`` that best cover the question's words (IDF-weighted)."""
        q_terms = set(Query.of(question).terms)
        idf = idf or {}
        default_idf = max(idf.values(), default=1.0)
        total = sum(idf.get(t, default_idf) for t in q_terms) or 1.0
        found: list[_Sentence] = []
        for p, text in enumerate(passages):
            for s_start, s_end in split_sentences(text):
                tokens = _tokenize(text, s_start, s_end)
                if not tokens:
                    continue
                content = [i for i, t in enumerate(tokens) if is_content(t[2])]
                stems: list[str | None] = [None] * len(tokens)
                for i, stem in zip(content, stem_words([tokens[i][2] for i in content])):
                    stems[i] = stem
                matched = q_terms & {s for s in stems if s}
                coverage = sum(idf.get(t, default_idf) for t in matched) / total
                found.append(_Sentence(p, s_start, tokens, stems, coverage))
        found.sort(key=lambda s: (-s.coverage, s.passage, s.start))
        return found[:top], q_terms

    def candidates(self, question: Query | str, passages: list[str], idf: dict[str, float] | None = None):
        """Feature matrix and ``(sentence, i, j)`` token spans of every candidate of ``question``."""
        query = Query.of(question)
        sentences, q_terms = self.sentences(query, passages, idf)
        qtype = QUESTION_TYPES.index(query.kind)
        blocks, spans = [], []
        for rank, sentence in enumerate(sentences):
            core, pairs = _span_features(sentence, q_terms, sentence_rank=rank)
            if not pairs:
                continue
            crossed = np.zeros((len(pairs), len(QUESTION_TYPES) * len(CORE_FEATURES)))
            crossed[:, qtype * len(CORE_FEATURES):(qtype + 1) * len(CORE_FEATURES)] = core
            blocks.append(np.hstack([core, crossed]))
            spans.extend((sentence, i, j) for i, j in pairs)
        if not blocks:
            return np.zeros((0, len(feature_names()))), spans
        return np.vstack(blocks), spans

    def scores(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weights

    def best(self, question: Query | str, passages: list[str],
             idf: dict[str, float] | None = None) -> Extraction | None:
        """The best-scoring span of ``passages`` for ``question``; ``None`` when there is no candidate."""
        features, spans = self.candidates(question, passages, idf)
        if not spans:
            return None
        scores = self.scores(features)
        k = int(np.argmax(scores))
        sentence, i, j = spans[k]
        text = passages[sentence.passage]
        start, end = sentence.tokens[i][0], sentence.tokens[j - 1][1]
        s_end = sentence.tokens[-1][1]
        return Extraction(text=text[start:end], sentence=text[sentence.start:s_end], passage=sentence.passage,
                          start=start, end=end, score=float(scores[k]), coverage=sentence.coverage)


@lru_cache(maxsize=1)
def _default_extractor() -> SpanExtractor:
    return SpanExtractor.from_json(WEIGHTS_FILE) if WEIGHTS_FILE.is_file() else SpanExtractor(_prior_weights())


def _prior_weights() -> np.ndarray:
    """Hand-set weights used only when no trained file exists: short spans right after the question's words."""
    prior = {"len2": 1.0, "len3": 1.0, "len4_5": 0.8, "q_frac": -4.0, "prev_q": 1.0, "next_punct": 0.5,
             "first_stop": -0.3, "last_stop": -1.0, "sent_cov": 3.0, "sent_best": 1.0, "ends_sentence": 0.3}
    names = feature_names()
    weights = np.zeros(len(names))
    for name, value in prior.items():
        weights[names.index(name)] = value
    return weights


def _token_flags(sentence: _Sentence, words: list[str], q_terms: set[str]) -> dict[str, np.ndarray]:
    """Per token of ``sentence``: punctuation, question word, digit, year, month, capitalised name, symbol..."""
    return {
        "punct": np.array([w in _PUNCT or not w[0].isalnum() for w in words]),
        "q": np.array([s is not None and s in q_terms for s in sentence.stems], dtype=float),
        "digit": np.array([w[0].isdigit() for w in words], dtype=float),
        "year": np.array([bool(re.fullmatch(r"(1[89]|20)\d\d", w)) for w in words], dtype=float),
        "month": np.array([w in FOLDED_MONTHS for w in words], dtype=float),
        "cap": np.array([i > 0 and t[3] for i, t in enumerate(sentence.tokens)], dtype=float),  # a name, not the 1st
        "symbol": np.array([w in {"%", "$", "r$", "º", "ª"} for w in words], dtype=float),
        "comma": np.array([w in {",", ";", ":"} for w in words], dtype=float),
        "paren": np.array([w in {"(", ")"} for w in words], dtype=float),
    }


def _distance_to_question(is_q: np.ndarray, I: np.ndarray, J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (in tokens, at most 10) from each span [I, J) to the closest question word before / after it."""
    q_positions = np.flatnonzero(is_q)
    near_left = np.full(len(I), 10.0)
    near_right = np.full(len(I), 10.0)
    if len(q_positions):
        left_idx = np.searchsorted(q_positions, I) - 1
        has_left = left_idx >= 0
        near_left[has_left] = np.minimum(I[has_left] - q_positions[left_idx[has_left]] - 1, 10)
        right_idx = np.searchsorted(q_positions, J)
        has_right = right_idx < len(q_positions)
        near_right[has_right] = np.minimum(q_positions[right_idx[has_right]] - J[has_right], 10)
    return near_left, near_right


def _span_features(sentence: _Sentence, q_terms: set[str], *, sentence_rank: int):
    """Core features (rows) of every span of ``sentence`` that starts and ends on a word."""
    n = len(sentence.tokens)
    words = [t[2] for t in sentence.tokens]
    flags = _token_flags(sentence, words, q_terms)
    is_punct, is_q, is_cap = flags["punct"], flags["q"], flags["cap"]
    pairs = [(i, j) for i in range(n) if not is_punct[i]
             for j in range(i + 1, min(n, i + MAX_SPAN_TOKENS) + 1) if not is_punct[j - 1]]
    if not pairs:
        return np.zeros((0, len(CORE_FEATURES))), []
    I = np.array([p[0] for p in pairs])
    J = np.array([p[1] for p in pairs])
    P_q, P_digit, P_year, P_month, P_cap, P_sym, P_comma, P_paren = (
        np.concatenate([[0.0], np.cumsum(flags[k])])
        for k in ("q", "digit", "year", "month", "cap", "symbol", "comma", "paren"))
    length = (J - I).astype(float)
    q_in = P_q[J] - P_q[I]
    q_total = max(P_q[-1], 1.0)
    near_left, near_right = _distance_to_question(is_q, I, J)
    first = [words[i] for i in I]
    last = [words[j - 1] for j in J]
    prev = np.array([words[i - 1] if i > 0 else "" for i in I], dtype=object)
    nxt = np.array([words[j] if j < n else "" for j in J], dtype=object)
    columns = {
        "bias": np.ones(len(pairs)),
        "len1": length == 1, "len2": length == 2, "len3": length == 3, "len4_5": (length >= 4) & (length <= 5),
        "len6_8": (length >= 6) & (length <= 8), "len9_12": (length >= 9) & (length <= 12),
        "len13_18": (length >= 13) & (length <= 18), "len19p": length >= 19, "log_len": np.log(length),
        "q_frac": q_in / length, "has_q": q_in > 0,
        "first_stop": [w in FOLDED_STOPWORDS for w in first], "last_stop": [w in FOLDED_STOPWORDS for w in last],
        "first_em": [w in PREP_EM for w in first], "first_de": [w in PREP_DE for w in first],
        "first_para": [w in PREP_PARA for w in first], "first_por": [w in PREP_POR for w in first],
        "first_time": [w in PREP_TIME for w in first], "first_article": [w in ARTICLES for w in first],
        "first_que": [w == "que" for w in first],
        "starts_sentence": I == 0, "ends_sentence": (J == n) | ((J == n - 1) & is_punct[-1]),
        "prev_punct": [p in _PUNCT for p in prev], "next_punct": [x in _PUNCT or x in {".", "?", "!"} for x in nxt],
        "prev_q": (I > 0) & (is_q[np.maximum(I - 1, 0)] > 0),
        "next_q": (J < n) & (is_q[np.minimum(J, n - 1)] > 0),
        "left_q_share": P_q[I] / q_total, "right_q_share": (P_q[-1] - P_q[J]) / q_total,
        "near_left": near_left / 10, "near_right": near_right / 10,
        "has_digit": P_digit[J] > P_digit[I], "has_year": P_year[J] > P_year[I],
        "has_month": P_month[J] > P_month[I], "has_cap": P_cap[J] > P_cap[I],
        "has_symbol": P_sym[J] > P_sym[I], "commas": np.minimum(P_comma[J] - P_comma[I], 3) / 3,
        "has_paren": P_paren[J] > P_paren[I],
        "sent_cov": np.full(len(pairs), sentence.coverage), "sent_best": np.full(len(pairs), sentence_rank == 0),
        "passage_top": np.full(len(pairs), sentence.passage == 0),
        "passage_rank": np.full(len(pairs), min(sentence.passage, 5) / 5),
        # a span that stops right before an article or a stop word usually cuts a phrase in two
        "next_stop": [x in FOLDED_STOPWORDS for x in nxt], "next_article": [x in ARTICLES for x in nxt],
        "prev_stop": [p in FOLDED_STOPWORDS for p in prev],
        "first_cap": is_cap[I] > 0, "last_cap": is_cap[J - 1] > 0,
    }
    return np.column_stack([np.asarray(columns[name], dtype=float) for name in CORE_FEATURES]), pairs


def idf_table(texts: list[str]) -> dict[str, float]:
    """IDF of every content term over ``texts`` (one document per text)."""
    frequency: dict[str, int] = {}
    for text in texts:
        for term in set(content_terms(text)):
            frequency[term] = frequency.get(term, 0) + 1
    return {t: math.log(1 + len(texts) / f) for t, f in frequency.items()}


def _places(passage: str, text: str) -> list[tuple[int, int]]:
    places, at = [], passage.find(text) if text else -1
    while at >= 0:
        places.append((at, at + len(text)))
        at = passage.find(text, at + 1)
    return places


def best_excluding(extractor, question: Query | str, passages: list[str], idf: dict[str, float] | None,
                   rejected: list, chunk_ids: list[str] | None = None) -> Extraction | None:
    """The extractor's best span that is neither one of the ``rejected`` answers nor overlapping the place of
    its passage (``chunk_ids[i]`` names passage i) it was taken from; ``None`` when every candidate is."""
    best = extractor.best(question, passages, idf)
    if best is None or not rejected:
        return best
    banned: dict[int, list[tuple[int, int]]] = {}
    for r in rejected:
        for p, chunk_id in enumerate(chunk_ids or []):
            if r.chunk_id is not None and chunk_id == r.chunk_id:
                banned.setdefault(p, []).extend(_places(passages[p], r.text))

    def excluded(p: int, start: int, end: int, text: str) -> bool:
        return (any(start < e and end > s for s, e in banned.get(p, []))
                or any(r.text and same_answer(text, r.text) for r in rejected))

    if not excluded(best.passage, best.start, best.end, best.text):
        return best
    features, spans = extractor.candidates(question, passages, idf)
    scores = extractor.scores(features)
    for k in np.argsort(-scores, kind="stable"):
        sentence, i, j = spans[int(k)]
        text = passages[sentence.passage]
        start, end = sentence.tokens[i][0], sentence.tokens[j - 1][1]
        if excluded(sentence.passage, start, end, text[start:end]):
            continue
        return Extraction(text=text[start:end], sentence=text[sentence.start:sentence.tokens[-1][1]],
                          passage=sentence.passage, start=start, end=end, score=float(scores[k]),
                          coverage=sentence.coverage)
    return None

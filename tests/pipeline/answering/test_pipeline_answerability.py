"""The learned abstention model: its decision, fitting, the file kept beside the adapter, the shipped one."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from pipeline.answering.answerability import (FEATURES, NO_SPAN, SENTENCE_FEATURES, AnswerabilityModel, Support, features_of, fit,
                                    load_for)
from pipeline.answering.reader import SHIPPED_ADAPTER, ReadSpan


def _row(margin: float, dense: float) -> dict:
    return {name: 0.0 for name in FEATURES} | {"margin": margin, "dense_span": dense}


def test_features_come_from_the_best_span_and_its_passage():
    # the passage's own similarities count, not those of a question indexed about it (dense/lexical)
    hits = [SimpleNamespace(passage_dense=0.9, passage_lexical=0.5, dense=0.99, lexical=0.9),
            SimpleNamespace(passage_dense=0.8, passage_lexical=0.7, dense=0.99, lexical=0.9)]
    spans = [ReadSpan(1, 0, 4, "2006", 3.5, 9.0, 5.5), ReadSpan(1, 5, 9, "Peru", 1.0, 6.5, 5.5),
             ReadSpan(0, 0, 3, "UFMS", -2.0, 3.5, 5.5)]
    row = features_of(hits, spans)
    assert row == {"margin": 3.5, "score": 9.0, "null": 5.5, "dense_span": 0.8, "dense_top": 0.9,
                   "lexical_span": 0.7, "rank": 1.0, "other_margin": -2.0, **{n: 0.0 for n in SENTENCE_FEATURES}}
    assert features_of(hits, [])["margin"] == NO_SPAN and features_of([], [])["dense_top"] == 0.0
    # the sentence signals: those of the best span's passage, and the best over every passage read
    support = {1: Support(sentence_dense=0.86, sentence_cover=0.4, passage_cover=0.9),
               0: Support(sentence_dense=0.91, sentence_cover=0.7, passage_cover=0.7)}
    row = features_of(hits, spans, support)
    assert (row["sentence_dense"], row["sentence_cover"], row["passage_cover"]) == (0.86, 0.4, 0.9)
    assert (row["max_sentence_dense"], row["max_sentence_cover"]) == (0.91, 0.7)
    assert set(features_of([], [], support)) == set(FEATURES)


def test_fit_separates_and_answers_the_chosen_share():
    positives = [_row(3.0 + i / 10, 0.88 + i / 1000) for i in range(40)]
    negatives = [_row(-1.0 + i / 10, 0.82 + i / 1000) for i in range(40)]
    model = fit(positives, negatives, features=("margin", "dense_span"), answer_share=0.9)
    answered = sum(model.decision(r) >= model.threshold for r in positives) / len(positives)
    assert 0.85 <= answered <= 0.95
    assert all(model.decision(r) < model.threshold for r in negatives)
    assert model.coef[0] > 0  # a higher margin means "answerable"
    with pytest.raises(ValueError, match="need feature rows"):
        fit(positives, [])


def test_save_and_load_round_trip_and_malformed_files(tmp_path):
    model = AnswerabilityModel(features=("margin",), mean=(1.0,), scale=(2.0,), coef=(1.5,), intercept=0.25,
                               threshold=-0.5, confident=1.0, fitted_on="test", near=-2.0)
    model.save(tmp_path / "abstention.json")
    assert not model.needs_support and AnswerabilityModel(**{**vars(model), "features": ("sentence_cover",)}).needs_support
    assert AnswerabilityModel.load(tmp_path / "abstention.json") == model
    assert model.decision({"margin": 3.0}) == pytest.approx(0.25 + 1.5 * (3.0 - 1.0) / 2.0)
    assert load_for(tmp_path) == model and load_for(None) is None and load_for(tmp_path / "none") is None

    bad = {"not json": "{", "unknown feature": json.dumps({**json.loads((tmp_path / "abstention.json").read_text()),
                                                            "features": ["shoe_size"]}),
           "zero scale": json.dumps({**json.loads((tmp_path / "abstention.json").read_text()), "scale": [0.0]})}
    for reason, text in bad.items():
        (tmp_path / "abstention.json").write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match="not an abstention model"):
            AnswerabilityModel.load(tmp_path / "abstention.json")
        assert load_for(tmp_path) is None, reason  # a damaged file falls back to the margin, answers go on


def test_the_shipped_adapter_carries_a_fitted_model():
    model = load_for(SHIPPED_ADAPTER)
    assert model is not None and "SQuAD" in model.fitted_on and model.needs_support
    assert model.near < model.threshold < model.confident  # a band of "closest passage" abstentions below it
    assert set(model.features) <= set(FEATURES) and math.isfinite(model.threshold)
    assert model.coef[model.features.index("margin")] > 0

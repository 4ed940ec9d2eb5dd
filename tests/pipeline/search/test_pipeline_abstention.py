"""Abstention threshold calibration on the indexed sample corpus."""

from __future__ import annotations

import pytest

from pipeline.search.abstention import calibrate_threshold, known_topics, should_abstain

ANSWERABLE = ["Onde é sediada a UFMS?", "Qual a finalidade da FAPDF?", "O que é o POSCOMP?",
              "Quando foi implantado o curso de Ciência da Computação na UFMS?",
              "Qual o prazo para renovação de matrícula?", "O que é monografia?"]
OFF_TOPIC = ["Qual a receita de bolo de cenoura?", "Quem ganhou a copa do mundo de 1970?",
             "Como trocar o pneu do carro?", "Qual a previsão do tempo para amanhã?"]


def test_calibration_keeps_answerable_and_refuses_off_topic(retriever):
    best = lambda q: retriever.search(q, k=1)[0].score  # noqa: E731
    tune_pos, tune_neg = [best(q) for q in ANSWERABLE[:4]], [best(q) for q in OFF_TOPIC[:2]]
    cut = calibrate_threshold(tune_pos, tune_neg, min_recall=1.0)
    assert cut.recall == 1.0 and cut.rejection == 1.0
    # held out: the other questions
    assert all(not should_abstain(retriever.search(q, k=3), cut.threshold) for q in ANSWERABLE[4:])
    assert all(should_abstain(retriever.search(q, k=3), cut.threshold) for q in OFF_TOPIC[2:])


def test_calibration_edge_cases():
    assert calibrate_threshold([0.5], []).threshold <= 0.5
    overlapping = calibrate_threshold([0.1, 0.9], [0.5], min_recall=1.0)  # keeping 0.1 lets 0.5 through
    assert overlapping.threshold <= 0.1 and overlapping.recall == 1.0 and overlapping.rejection == 0.0
    strict = calibrate_threshold([0.1, 0.9], [0.5], min_recall=0.5)
    assert 0.5 < strict.threshold <= 0.9 and strict.rejection == 1.0
    with pytest.raises(ValueError):
        calibrate_threshold([], [0.3])
    assert should_abstain([], 0.0)


def test_known_topics_lists_document_titles(retriever):
    topics = known_topics(retriever.chunks, limit=5)
    assert len(topics) == 5 and all(isinstance(t, str) and t for t in topics)
    assert set(topics) <= {c.title for c in retriever.chunks}

"""The span extractor: question types, candidates and their features, the shipped weights, span choice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.answering.extract import CORE_FEATURES, WEIGHTS_FILE, SpanExtractor, feature_names, idf_table
from pipeline.core.text import QUESTION_TYPES, question_type

UFMS = ("Universidade Federal de Mato Grosso do Sul (UFMS) é uma instituição de ensino superior pública federal "
        "brasileira, sediada em Campo Grande, no estado do Mato Grosso do Sul. A UFMS mantém campi em nove "
        "cidades. A universidade foi criada em 1979, com a divisão do estado.")
OTHER = "O restaurante universitário abre às 11 horas e fecha às 14 horas, de segunda a sexta-feira."


@pytest.mark.parametrize("question,expected", [
    ("Onde é sediada a UFMS?", "onde"), ("Em que cidade fica o campus?", "onde"),
    ("Quando a UFMS foi criada?", "quando"), ("Em que ano foi criada a UFMS?", "quando"),
    ("Quantas cidades têm campi?", "quanto"), ("Qual o valor da bolsa?", "quanto"),
    ("Quem coordena o curso?", "quem"), ("Por que o exame foi criado?", "porque"),
    ("Para que serve o POSCOMP?", "para_que"), ("Qual o objetivo do POSCOMP?", "para_que"),
    ("Como é feita a inscrição?", "como"), ("O que é a UFMS?", "definicao"),
    ("Qual curso tem mais vagas?", "qual"), ("Estágio é obrigatório?", "outro"),
])
def test_question_types(question, expected):
    assert question_type(question) == expected and expected in QUESTION_TYPES


def test_candidates_are_spans_of_the_best_sentences_with_one_row_each():
    extractor = SpanExtractor.default()
    features, spans = extractor.candidates("Quando a universidade foi criada?", [OTHER, UFMS], idf_table([OTHER, UFMS]))
    assert features.shape == (len(spans), len(feature_names())) and len(spans) > 20
    sentence = spans[0][0]
    assert sentence.passage == 1 and "1979" in UFMS[sentence.start:sentence.tokens[-1][1]]  # best sentence first
    names = feature_names()
    row = next(k for k, (s, i, j) in enumerate(spans) if s is sentence and UFMS[s.tokens[i][0]:s.tokens[j - 1][1]]
               == "em 1979")
    assert features[row, names.index("has_year")] == 1 and features[row, names.index("first_em")] == 1
    assert features[row, names.index("len2")] == 1 and features[row, names.index("has_q")] == 0
    # crossed with the question type: only the "quando" block is filled
    assert features[row, names.index("quando*has_year")] == 1 and features[row, names.index("onde*has_year")] == 0
    passages = [OTHER, UFMS]
    assert all(passages[s.passage][s.tokens[i][0]].isalnum() and passages[s.passage][s.tokens[j - 1][1] - 1].isalnum()
               for s, i, j in spans)  # spans start and end on a word, never on punctuation


def test_shipped_weights_match_the_features_and_were_trained():
    data = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert data["features"] == feature_names() and len(data["weights"]) == len(feature_names())
    assert "train" in data["trained_on"] and np.count_nonzero(data["weights"]) > len(CORE_FEATURES)


@pytest.mark.parametrize("question,expected", [
    ("Onde é sediada a UFMS?", "Campo Grande"),
    ("Em quantas cidades a UFMS mantém campi?", "nove"),
    ("Em que ano a universidade foi criada?", "1979"),
])
def test_best_span_is_short_and_answers(question, expected):
    found = SpanExtractor.default().best(question, [UFMS, OTHER], idf_table([UFMS, OTHER]))
    assert expected in found.text and len(found.text.split()) <= 6
    assert found.passage == 0 and UFMS[found.start:found.end] == found.text and found.text in found.sentence
    assert 0 < found.coverage <= 1


def test_no_candidate_without_text():
    assert SpanExtractor.default().best("Onde fica?", ["", "   "]) is None


def test_weights_of_the_wrong_shape_are_refused(tmp_path):
    with pytest.raises(ValueError):
        SpanExtractor(np.zeros(3))
    path = tmp_path / "w.json"
    SpanExtractor.default().to_json(path, trained_on="test")
    assert np.allclose(SpanExtractor.from_json(path).weights, SpanExtractor.default().weights, atol=1e-5)
    data = json.loads(path.read_text())
    data["features"] = data["features"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError):
        SpanExtractor.from_json(path)

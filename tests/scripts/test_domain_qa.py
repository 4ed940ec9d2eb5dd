"""The rules that keep or drop an LLM-written question in scripts/bench_domain_qa.py, and the halves it measures."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.evaluation.answers import article_split
from pipeline.evaluation.squad import load_squad
from scripts.bench_domain_qa import held_out_halves, kept_pairs

CONTEXT = "A Universidade Federal de Mato Grosso do Sul foi criada em 1979, com sede em Campo Grande."


def test_an_answer_copied_from_the_text_is_kept_at_its_place_in_the_text():
    kept = kept_pairs(CONTEXT, [{"question": "Em que ano a universidade foi criada?", "answer": "1979."}])
    assert kept == [{"question": "Em que ano a universidade foi criada?", "answer_start": CONTEXT.index("1979"),
                     "answer_text": "1979"}]


def test_accents_and_case_aside_the_text_itself_is_the_answer():
    kept = kept_pairs(CONTEXT, [{"question": "Onde fica a sede da universidade?", "answer": "campo grande"}])
    assert [k["answer_text"] for k in kept] == ["Campo Grande"]


def test_answers_not_in_the_text_too_long_or_inside_the_question_are_dropped_and_questions_kept_once():
    pairs = [
        {"question": "Quem criou a universidade?", "answer": "o governo federal"},             # not in the text
        {"question": "O que diz o texto sobre a universidade?",
         "answer": "A Universidade Federal de Mato Grosso do Sul foi criada em 1979, com sede"},  # over 12 words
        {"question": "A sede fica em Campo Grande?", "answer": "Campo Grande"},              # inside its question
        {"question": "Que ano?", "answer": "1979"},                                           # under 3 words
        {"question": "Em que ano foi criada?", "answer": "1979"},
        {"question": "Em que ano foi criada?", "answer": "1979"},                             # the same question
    ]
    assert [k["question"] for k in kept_pairs(CONTEXT, pairs)] == ["Em que ano foi criada?"]
    # --loose (how the first measurement ran) keeps every answer found in the text
    assert len(kept_pairs(CONTEXT, pairs, loose=True)) == 5


def test_the_two_halves_are_the_learning_loop_benchmark_halves(tmp_path: Path):
    articles = [{"title": f"DOC{i}", "paragraphs": [{"context": f"Texto {i}.", "qas": [
        {"id": str(i), "question": f"Pergunta {i}?", "answers": [{"text": "Texto", "answer_start": 0}]}]}]}
        for i in range(30)]
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")
    half0, half1 = held_out_halves(load_squad(path))
    heldout = sorted(t for t in (a["title"] for a in articles) if article_split(t) == "heldout")
    assert len(heldout) >= 4 and half0 | half1 == set(heldout) and not half0 & half1
    assert half0 == set(heldout[0::2])  # as scripts/bench_loop.py --voted-half 0 splits them

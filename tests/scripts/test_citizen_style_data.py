"""The citizen-style training data of scripts/make_citizen_style.py and how scripts/train_reader.py reads it."""

from __future__ import annotations

import json
import random
import unicodedata

import pytest

from scripts.make_citizen_style import KINDS, acceptable, noisy, table_example
from scripts.train_reader import citizen_dev_examples, citizen_style_examples


def test_a_table_question_points_at_its_own_cell_or_at_a_row_the_table_lacks():
    rng = random.Random(3)
    seen_kinds, unanswerable = set(), 0
    for _ in range(300):
        item = table_example(rng)
        kind = item["kind"].split(":")[1]
        seen_kinds.add(kind)
        header = KINDS[kind][1]
        lines = item["context"].split("\n")
        assert " | ".join(header) in lines  # rendered as the ingesters render tables
        if item["answer_start"] is None:
            unanswerable += 1
            asked = [k for k in KINDS[kind][2] if k in item["formal"]]
            assert asked and not any(line.startswith(asked[0] + " | ") for line in lines)
            continue
        start, cell = item["answer_start"], item["answer_text"]
        assert item["context"][start:start + len(cell)] == cell
        row = item["context"][item["context"].rfind("\n", 0, start) + 1:].split("\n")[0]
        key = row.split(" | ")[0]
        assert key in item["formal"]  # the question names the row its answer sits in
    assert seen_kinds == set(KINDS)
    assert 0.15 < unanswerable / 300 < 0.45


def test_a_rewrite_must_differ_keep_a_long_word_and_be_question_sized():
    formal = "Qual é o prazo para a matrícula dos aprovados?"
    assert acceptable(formal, "tenho quantos dias pra fazer a matricula?")
    assert not acceptable(formal, "qual e o prazo para a matricula dos aprovados")  # the same, folded
    assert not acceptable(formal, "quando?")                                          # too short
    assert not acceptable(formal, "me conta uma piada sobre gatos")                   # no word of the question
    assert not acceptable(formal, " ".join(["palavra"] * 40) + " matricula")           # too long


def test_phone_typing_noise_only_drops_case_accents_and_the_question_mark():
    rng = random.Random(0)
    question = "Posso pedir isenção da taxa de inscrição?"
    folded = "".join(c for c in unicodedata.normalize("NFKD", question.lower()) if not unicodedata.combining(c))
    variants = {noisy(question, rng) for _ in range(200)}
    assert len(variants) > 4
    for variant in variants:
        plain = "".join(c for c in unicodedata.normalize("NFKD", variant.lower()) if not unicodedata.combining(c))
        assert plain.rstrip("?") == folded.rstrip("?")


def test_training_reads_the_jsonl_and_refuses_an_answer_that_is_not_where_it_says(tmp_path):
    good = {"kind": "table:taxas", "question": "quanto custa o habite-se", "formal": "x",
            "context": "Serviço | Valor\nHabite-se | R$ 80,00", "answer_start": 28, "answer_text": "R$ 80,00"}
    none = dict(good, answer_start=None, answer_text=None, question="quanto custa a poda?")
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(none) + "\n\n", encoding="utf-8")
    examples = citizen_style_examples(path)
    assert [(e.answer_start, e.answer_text) for e in examples] == [(28, "R$ 80,00"), (None, None)]
    path.write_text(json.dumps(dict(good, answer_start=27)) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is not at 27"):
        citizen_style_examples(path)


def test_the_calibration_set_pairs_each_unanswerable_question_with_its_document():
    examples = citizen_dev_examples()
    answerable = [e for e in examples if e.answer_start is not None]
    unanswerable = [e for e in examples if e.answer_start is None]
    assert len(answerable) == 80 and len(unanswerable) == 24
    assert "saae" in unanswerable[6].question.lower() and "SAAE" in unanswerable[6].context


def test_a_table_rewrite_that_drops_the_row_name_is_refused():
    from scripts.make_citizen_style import keeps_row

    item = {"kind": "table:auxilio:unanswerable", "formal": "Qual é o valor do auxílio para a faixa de renda "
            "Até meio salário mínimo?"}
    assert keeps_row(item, "quanto recebe quem ganha ate meio salario?")
    assert not keeps_row(item, "quanto eu posso receber do auxilio de renda?")
    assert keeps_row({"kind": "paraphrase:squad", "formal": "Quem?"}, "qualquer coisa")

"""``oraculo eval answers``: a fresh index over a SQuAD file, the real answer path, the metrics' interface."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from pipeline.evaluation.answers import OFF_TOPIC_QUESTIONS, article_split, evaluate_answers
from pipeline.settings import Settings

KEYS = {"f1", "exact_match", "abstain_rate", "p50_ms", "p95_ms", "n_queries"}


def squad_file(path):
    data = {"version": "1.1", "data": [
        {"title": "UFMS", "paragraphs": [
            {"context": "A Universidade Federal de Mato Grosso do Sul (UFMS) é sediada em Campo Grande. "
                        "A UFMS mantém campi em nove cidades do estado.",
             "qas": [{"id": "1", "question": "Onde é sediada a UFMS?",
                      "answers": [{"text": "Campo Grande", "answer_start": 70}]},
                     {"id": "2", "question": "Em quantas cidades a UFMS mantém campi?",
                      "answers": [{"text": "nove", "answer_start": 110}]}]}]},
        {"title": "POSCOMP", "paragraphs": [
            {"context": "O POSCOMP é um exame aplicado em todas as regiões do País. Em parceria com a Sociedade "
                        "Peruana de Computação, desde 2006 o Exame passou a ser realizado no Peru.",
             "qas": [{"id": "3", "question": "Desde quando o POSCOMP é realizado no Peru?",
                      "answers": [{"text": "2006", "answer_start": 120}]}]}]},
        {"title": "FAPDF", "paragraphs": [
            {"context": "A Fundação de Apoio à Pesquisa do Distrito Federal (FAPDF) tem por finalidade estimular "
                        "o desenvolvimento científico e tecnológico do Distrito Federal.", "qas": []}]},
    ]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_evaluate_answers_reports_the_interface_keys(tmp_path):
    report = evaluate_answers(Settings(DATA_DIR=tmp_path / "data"), squad=squad_file(tmp_path / "q.json"),
                              corpus=None, off_topic=6)
    assert KEYS | {"abstain_precision"} <= report.keys()
    assert report["n_queries"] == 3 and report["f1"] >= 0.3 and report["abstain_rate"] == 0.0
    assert report["abstain_precision"] >= 5 / 6
    assert 0 < report["p50_ms"] <= report["p95_ms"]
    assert not (tmp_path / "data" / "index").exists()  # the evaluation index is temporary


def test_cli_json_last_line(tmp_path, capsys):
    assert main(["eval", "answers", "--squad", str(squad_file(tmp_path / "q.json")), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    report = json.loads(last)
    assert KEYS <= report.keys() and "abstain_precision" not in report


def test_off_topic_list_is_fixed_varied_and_portuguese():
    assert len(OFF_TOPIC_QUESTIONS) == len(set(OFF_TOPIC_QUESTIONS)) >= 50
    assert all(q.endswith("?") for q in OFF_TOPIC_QUESTIONS)
    starts = {q.split()[0] for q in OFF_TOPIC_QUESTIONS}
    assert {"Qual", "Como", "Quem", "Onde", "Quanto"} <= starts | {s.rstrip("s") for s in starts}


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        evaluate_answers(Settings(DATA_DIR=tmp_path), squad=squad_file(tmp_path / "q.json"), off_topic=10_000)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError):
        evaluate_answers(Settings(DATA_DIR=tmp_path), squad=tmp_path / "bad.json")


def test_article_split_is_stable_and_keeps_a_third_out():
    titles = [f"artigo {i}" for i in range(300)]
    held = [t for t in titles if article_split(t) == "heldout"]
    assert 60 < len(held) < 140 and held == [t for t in titles if article_split(t) == "heldout"]


def test_abstentions_that_quote_the_closest_passage_are_counted_and_checked():
    from pipeline.answering.result import Answer, Source
    from pipeline.evaluation.answers import score_answers

    def source(quote):
        return Source(document="d", title="D", section="", chunk_id="d:0", quote=quote, score=0.5)

    canned = {"onde?": Answer(text="Campo Grande"),
              "quando?": Answer(text="", abstained=True, closest=source("Desde 2006 o exame é no Peru.")),
              "quem?": Answer(text="", abstained=True, closest=source("Um trecho sem a resposta.")),
              "quanto?": Answer(text="", abstained=True),
              "fora?": Answer(text="", abstained=True),
              "nada?": Answer(text="", abstained=True, closest=source("Perto, mas não."))}

    class Canned:
        def answer(self, question):
            return canned[question]

    questions = [("onde?", ("Campo Grande",)), ("quando?", ("2006",)), ("quem?", ("a SBC",)), ("quanto?", ("9",))]
    report = score_answers(Canned(), questions, ["fora?"], ["nada?"])
    assert report["abstain_rate"] == 0.75 and report["f1"] == 0.25
    assert report["closest_shown"] == {"answerable": 0.5, "off_topic": 0.0, "unanswerable": 1.0}
    assert report["closest_holds_answer"] == 0.5  # "2006" is in its quote, "a SBC" is not
    assert "closest_shown" not in score_answers(Canned(), questions[:1], [])

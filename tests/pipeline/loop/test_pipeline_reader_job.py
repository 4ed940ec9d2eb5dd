"""Training the reader from citizens' votes: examples, the recorded run, promotion and hot swap, merge."""

from __future__ import annotations

import json

import pytest

from pipeline.loop.reader_job import ReaderRunArgs, build_examples, negative_examples, positive_examples, train_reader_run
from pipeline.settings import Settings

DOC = "A UFMS tem sede em Campo Grande. A inscrição custa R$ 80,00 e vai até 10 de março."


def _record(question, answer, *, rid, span=None, generator="feedback"):
    return {"id": rid, "question": question, "answer": answer, "document": "edital",
            "chunk_id": f"edital:0-{len(DOC)}", "span": span, "generator": generator}


def test_positives_use_the_recorded_span_and_negatives_the_rejected_one():
    at = DOC.index("Campo Grande")
    [pos] = positive_examples([_record("Onde fica a sede?", "Campo Grande", rid="f1", span=[at, at + 12])],
                              {"edital": DOC})
    assert (pos.answer_start, pos.answer_text, pos.rejected) == (at, "Campo Grande", None)
    review = [{"question": "Quanto custa?", "answer": "10 de março", "abstained": False, "up": 0, "down": 2,
               "sources": [{"chunk_id": f"edital:0-{len(DOC)}", "document": "edital"}]}]
    [neg] = negative_examples(review, {"edital": DOC})
    assert neg.answer_start is None and DOC[neg.rejected[0]:neg.rejected[1]] == "10 de março"


def test_a_disliked_answer_with_more_likes_or_a_vanished_passage_is_no_negative():
    liked = {"question": "q", "answer": "Campo Grande", "up": 3, "down": 1, "abstained": False,
             "sources": [{"chunk_id": f"edital:0-{len(DOC)}"}]}
    gone = {**liked, "up": 0, "sources": [{"chunk_id": "outro:0-10"}]}
    assert negative_examples([liked, gone], {"edital": DOC}) == []


def test_held_out_feedback_trains_only_when_there_is_enough_of_it():
    from pipeline.loop.reader_job import MIN_FEEDBACK_TO_HOLD_OUT, training_exclusions
    from pipeline.loop.evaluate import heldout_records

    few = [_record(f"q{i}?", "a", rid=f"feedback-{i}") for i in range(MIN_FEEDBACK_TO_HOLD_OUT - 1)]
    many = [_record(f"q{i}?", "a", rid=f"feedback-{i}") for i in range(40)]
    assert training_exclusions(few) == set()
    held = {r["id"] for r in heldout_records(many, 10 ** 9)}
    assert held and training_exclusions(many) == held


def test_held_out_records_never_train_and_rehearsal_is_bounded():
    from pipeline.training.reader_train import QAExample

    records = [_record("Onde fica a sede?", "Campo Grande", rid="f1"),
               _record("Quanto custa?", "R$ 80,00", rid="f2"),
               _record("Até quando vai a inscrição?", "10 de março", rid="h1", generator="human"),
               *[_record(f"Pergunta gerada {i}?", "Campo Grande", rid=f"g{i}", generator="offline")
                 for i in range(10)]]
    rehearsal = [QAExample(f"Pergunta antiga {i}?", "Texto antigo.", None) for i in range(10)]
    examples, counts = build_examples(records, [], {"edital": DOC}, heldout_ids={"f2"}, replay=2, seed=0,
                                      rehearsal=rehearsal)
    # the 👍 and the hand-written pair train, the held-out 👍 and the generated pairs never do
    assert counts == {"positives": 2, "negatives": 0, "replay": 4}
    questions = {e.question for e in examples}
    assert "Quanto custa?" not in questions and not any(q.startswith("Pergunta gerada") for q in questions)
    assert sum(q.startswith("Pergunta antiga") for q in questions) == 4


def test_the_rehearsal_sample_skips_damaged_lines(tmp_path, caplog):
    from pipeline.training.reader_train import REHEARSAL_FILE, load_rehearsal

    good = {"question": "Onde fica a sede?", "context": DOC, "answer_start": DOC.index("Campo"),
            "answer_text": "Campo Grande"}
    lines = [json.dumps(good), "{not json", json.dumps({**good, "answer_start": 0}),  # answer not at its offset
             json.dumps({"question": "Sem resposta?", "context": DOC, "answer_start": None}), ""]
    (tmp_path / REHEARSAL_FILE).write_text("\n".join(lines), encoding="utf-8")
    examples = load_rehearsal(tmp_path)
    assert [(e.question, e.answer_text) for e in examples] == [("Onde fica a sede?", "Campo Grande"),
                                                               ("Sem resposta?", None)]
    assert "2 malformed rehearsal lines" in caplog.text
    assert load_rehearsal(tmp_path / "missing") == [] and load_rehearsal(None) == []


def test_the_shipped_adapter_carries_a_rehearsal_sample_of_its_training():
    from pipeline.answering.reader import SHIPPED_ADAPTER
    from pipeline.training.reader_train import load_rehearsal

    sample = load_rehearsal(SHIPPED_ADAPTER)
    assert len(sample) >= 300
    assert any(e.answer_start is None for e in sample) and any(e.answer_start is not None for e in sample)


def test_no_feedback_means_no_run(tmp_path):
    settings = Settings(DATA_DIR=tmp_path / "data")
    with pytest.raises(ValueError, match="no citizen feedback"):
        train_reader_run(settings, records=[], review=[])


def test_a_run_is_recorded_promoted_and_served_without_restart(tmp_path, sample_documents, model_cache_dir):
    from pipeline.answering.answer import Answerer
    from pipeline.training.merge import merge_run
    from pipeline.answering.reader import load_serving_reader
    from pipeline.serving.promote import promote
    from storage.db import Database
    from storage.models import TrainingRun

    doc = next(d for d in sample_documents if d.name == "POSCOMP")
    at = doc.text.index("2006")
    chunk_id = f"POSCOMP:{max(0, at - 200)}-{min(len(doc.text), at + 200)}"
    records = [{"id": f"feedback-{i}", "question": q, "answer": "2006", "document": "POSCOMP",
                "chunk_id": chunk_id, "span": [at, at + 4], "generator": "feedback"}
               for i, q in enumerate(["Desde quando o POSCOMP é feito no Peru?", "Em que ano o POSCOMP chegou ao Peru?",
                                      "Desde que ano há POSCOMP no Peru?", "Quando o Peru passou a ter POSCOMP?"])]
    settings = Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR="sample")
    meta = train_reader_run(settings, ReaderRunArgs(max_steps=2, batch_size=2, precision="fp32"),
                            records=records, review=[])
    adapter = settings.models_dir / "adapters" / meta["version"]
    assert meta["adapter_dir"] == str(adapter) and (adapter / "adapter_model.safetensors").is_file()
    stored = json.loads((adapter / "metadata.json").read_text(encoding="utf-8"))
    assert stored["metrics"]["positives"] == len(records)  # fewer than 5 votes: all of them train
    assert stored["kind"] == "reader" and stored["metrics"]["steps"] == 2
    assert not [p for p in adapter.parent.iterdir() if p.name.startswith(".")]  # no staging left
    assert (adapter / "rehearsal.jsonl").is_file()  # carried on for the next night
    from pipeline.answering.answerability import load_for
    from pipeline.answering.reader import SHIPPED_ADAPTER

    shift = stored["metrics"]["abstention_shift"]  # the abstention model moved to the new adapter's scale
    assert shift is not None
    assert load_for(adapter).threshold == pytest.approx(load_for(SHIPPED_ADAPTER).threshold + shift, abs=1e-3)
    assert stored["metrics"]["replay"] == 3 * len(records)
    database = Database(settings.database_url)
    with database.session() as session:
        run = session.get(TrainingRun, meta["run_id"])
        assert run.status == "succeeded" and run.adapter_path == str(adapter)
    database.dispose()

    before = load_serving_reader(settings)
    assert before.version != meta["version"]
    answerer = Answerer(settings, reader=before)
    promote(settings, adapter_dir=adapter)
    answerer.maybe_refresh()
    assert answerer.reader.version == meta["version"]  # hot swap on the next question

    merged = merge_run(settings, meta["version"])
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model = AutoModelForQuestionAnswering.from_pretrained(merged)
    assert AutoTokenizer.from_pretrained(merged)("query: teste")["input_ids"]
    assert model.config.hidden_size == 384


def test_the_rehearsal_guard_is_never_trained_on_and_scores_reading():
    from types import SimpleNamespace

    from pipeline.loop.reader_job import REHEARSAL_GUARD, guard_f1, rehearsal_guard, training_rehearsal
    from pipeline.training.reader_train import QAExample

    at = DOC.index("Campo Grande")
    sample = [QAExample(f"Pergunta {i}?", DOC, at, "Campo Grande") if i % 2 else QAExample(f"Pergunta {i}?", DOC)
              for i in range(3 * REHEARSAL_GUARD)]
    train, guard = training_rehearsal(sample), rehearsal_guard(sample)
    assert guard and not {e.question for e in train} & {e.question for e in guard}
    assert all(e.answer_start is not None for e in guard)  # reading is scored on answerable examples
    assert rehearsal_guard(sample[:10]) == [] and training_rehearsal(sample[:10]) == sample[:10]  # too few to split

    class Reads:  # answers a fixed text: a reader that reads right, and one that reads wrong
        def __init__(self, text):
            self.text = text

        def read(self, question, passages, top=1):
            return [SimpleNamespace(text=self.text)]

    assert guard_f1(Reads("Campo Grande"), guard) == 1.0
    assert guard_f1(Reads("10 de março"), guard) == 0.0
    assert guard_f1(Reads("x"), []) is None


def test_the_abstention_threshold_follows_the_readers_shift():
    from types import SimpleNamespace

    from pipeline.answering.answerability import AnswerabilityModel
    from pipeline.loop.reader_job import recalibrated_abstention
    from pipeline.training.reader_train import QAExample

    model = AnswerabilityModel(features=("margin", "null", "dense_span"), mean=(0.0, 0.0, 0.8),
                               scale=(2.0, 1.0, 0.1), coef=(1.0, -0.5, 2.0), intercept=0.0, threshold=0.3,
                               confident=1.0)

    class Reads:
        def __init__(self, margin, null):
            self.span = SimpleNamespace(margin=margin, null=null, score=margin + null)

        def read(self, question, passages, top=1):
            return [self.span]

    guard = [QAExample("Onde?", DOC, 0, "A")] * 4
    moved, shift = recalibrated_abstention(model, Reads(4.0, 1.0), Reads(2.0, 2.0), guard)
    # margin fell by 2 (coef 1 / scale 2: -1.0), null rose by 1 (coef -0.5 / scale 1: -0.5)
    assert shift == pytest.approx(-1.5)
    assert (moved.threshold, moved.confident) == (pytest.approx(-1.2), pytest.approx(-0.5))
    assert recalibrated_abstention(model, Reads(4.0, 1.0), Reads(2.0, 2.0), []) == (model, 0.0)

    class FindsNothingIn(Reads):  # no span on the guard's second passage: the mean is over the pairs read
        def read(self, question, passages, top=1):
            return [] if passages[0] == "vazio" else [self.span]

    half = guard[:2] + [QAExample("Onde?", "vazio", 0, "A")] * 2
    assert recalibrated_abstention(model, FindsNothingIn(4.0, 1.0), FindsNothingIn(2.0, 2.0), half)[1] == \
        pytest.approx(-1.5)
    assert recalibrated_abstention(model, FindsNothingIn(4.0, 1.0), Reads(2.0, 2.0), half[2:]) == (model, 0.0)


def test_json_lines_holding_unicode_line_separators_are_read_whole(tmp_path):
    # json.dumps(ensure_ascii=False) leaves U+2028 / U+0085 unescaped: str.splitlines() would cut the record
    from pipeline.loop.reader_job import REVIEW_FILE, read_review
    from pipeline.training.reader_train import REHEARSAL_FILE, load_rehearsal

    settings = Settings(DATA_DIR=tmp_path)
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    record = {"question": "Qual o prazo?\u2028(edital\x85 2025)", "answer": "10 de março", "up": 0, "down": 1}
    (settings.exports_dir / REVIEW_FILE).write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_review(settings) == [record]
    context = "Prazo:\u2028até 10 de março."
    (tmp_path / REHEARSAL_FILE).write_text(json.dumps({"question": "Prazo?", "context": context, "answer_start": 11,
                                                      "answer_text": "10 de março"}, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    [example] = load_rehearsal(tmp_path)
    assert example.context == context and example.answer_text == "10 de março"

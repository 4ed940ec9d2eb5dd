"""Feedback export: validated QA records and the review file, written atomically and deterministically."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from storage import repository as repo
from pipeline.core.files import write_jsonl_atomic
from pipeline.feedback.export import PASSAGES_FILENAME, REVIEW_FILENAME, VALIDATED_FILENAME, export_feedback

QA_FIELDS = {"id", "question", "answer", "document", "chunk_id", "span", "tags", "generator", "created_at"}


def _ask(session, user_id, question, *, abstained=False, chunk_id="edital_2024:120-480"):
    return repo.record_interaction(
        session, user_id=user_id, question=question, answer="" if abstained else f"Resposta para {question}",
        sources=[] if abstained else [{"document": "edital_2024", "title": "Edital 2024", "section": "3",
                                       "chunk_id": chunk_id, "quote": "...", "score": 0.7}],
        strategy="extractive", abstained=abstained, model_version="m", index_version="v1",
        latency_ms=5.0, channel="telegram",
    )


@pytest.fixture
def voted(db):
    """Interactions covering every case; returns their ids by name."""
    with db.session() as session:
        ana = repo.get_or_create_user(session, user_hash="a" * 64)
        bia = repo.get_or_create_user(session, user_hash="b" * 64)
        ids = {}
        for name in ("liked", "mixed", "disliked", "silent", "abstained_liked", "changed_mind"):
            ids[name] = _ask(session, ana.id, f"pergunta {name}", abstained=name == "abstained_liked").id

        def vote(name, user, value, comment=None):
            repo.record_feedback(session, interaction_id=ids[name], user_id=user.id, vote=value, comment=comment)

        vote("liked", ana, 1)
        vote("liked", bia, 1)
        vote("mixed", ana, 1)
        vote("mixed", bia, -1, "a data está errada")
        vote("disliked", bia, -1)
        vote("abstained_liked", ana, 1)
        vote("changed_mind", ana, 1)
        vote("changed_mind", ana, -1, "mudei de ideia")
    return ids


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_splits_validated_and_review(db, voted, tmp_path):
    out = tmp_path / "exports"
    with db.session() as session:
        result = export_feedback(session, out_dir=out)

    assert (result.validated, result.review, result.passages) == (1, 3, 0)  # no abstention quoted a passage
    assert result.path == out / VALIDATED_FILENAME and result.review_path == out / REVIEW_FILENAME

    [record] = _read(result.path)
    assert QA_FIELDS <= set(record)
    assert record["id"] == f"feedback-{voted['liked']}" and record["interaction_id"] == voted["liked"]
    assert record["generator"] == "feedback" and record["tags"] == ["feedback"]
    assert record["question"] == "pergunta liked" and record["answer"] == "Resposta para pergunta liked"
    assert (record["document"], record["chunk_id"], record["span"]) == ("edital_2024", "edital_2024:120-480",
                                                                       [120, 480])
    assert (record["up"], record["down"]) == (2, 0)
    assert datetime.fromisoformat(record["created_at"]).utcoffset().total_seconds() == 0

    review = _read(result.review_path)
    assert [r["interaction_id"] for r in review] == [voted["mixed"], voted["disliked"], voted["changed_mind"]]
    by_id = {r["interaction_id"]: r for r in review}
    assert (by_id[voted["mixed"]]["up"], by_id[voted["mixed"]]["down"]) == (1, 1)
    assert [c["comment"] for c in by_id[voted["mixed"]]["comments"]] == ["a data está errada"]
    assert by_id[voted["disliked"]]["comments"] == []
    assert by_id[voted["changed_mind"]]["comments"][0]["vote"] == -1

    text = result.path.read_text(encoding="utf-8") + result.review_path.read_text(encoding="utf-8")
    assert "a" * 64 not in text and "b" * 64 not in text  # no user hash leaves the database
    assert "está" in text  # pt-BR kept readable, not \\u-escaped


def test_export_is_deterministic_and_leaves_no_temp_files(db, voted, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    (out / VALIDATED_FILENAME).write_text("stale garbage\n")
    with db.session() as session:
        first = export_feedback(session, out_dir=out)
        first_bytes = first.path.read_bytes(), first.review_path.read_bytes()
        second = export_feedback(session, out_dir=out)
    assert (second.path.read_bytes(), second.review_path.read_bytes()) == first_bytes
    assert b"stale garbage" not in first_bytes[0]
    assert sorted(p.name for p in out.iterdir()) == sorted([PASSAGES_FILENAME, REVIEW_FILENAME, VALIDATED_FILENAME])


def test_votes_on_a_closest_passage_are_exported_with_its_passage_never_as_validated(db, tmp_path):
    closest = {"document": "edital_2024", "title": "Edital 2024", "section": "3", "chunk_id": "edital_2024:120-480",
               "quote": "A inscrição custa R$ 80,00.", "score": 0.4, "span": [150, 158], "closest": True}
    with db.session() as session:
        ana = repo.get_or_create_user(session, user_hash="a" * 64)
        ids = []
        for question, vote in (("quanto custa a inscrição", 1), ("quem assina o edital", -1)):
            row = repo.record_interaction(session, user_id=ana.id, question=question, answer="", sources=[closest],
                                          strategy="reader", abstained=True, model_version="m", index_version="v1",
                                          latency_ms=5.0, channel="telegram")
            repo.record_feedback(session, interaction_id=row.id, user_id=ana.id, vote=vote)
            ids.append(row.id)
        result = export_feedback(session, out_dir=tmp_path / "exports")
    assert (result.validated, result.review, result.passages) == (0, 1, 2)
    records = _read(result.passages_path)
    assert [(r["interaction_id"], r["question"], r["up"], r["down"]) for r in records] == [
        (ids[0], "quanto custa a inscrição", 1, 0), (ids[1], "quem assina o edital", 0, 1)]
    assert records[0]["chunk_id"] == "edital_2024:120-480" and records[0]["span"] == [150, 158]
    assert records[0]["document"] == "edital_2024" and "user" not in json.dumps(records)


def test_export_with_no_feedback_writes_empty_files(db, tmp_path):
    with db.session() as session:
        _ask(session, None, "ninguém votou")
        result = export_feedback(session, out_dir=tmp_path / "exports")
    assert (result.validated, result.review) == (0, 0)
    assert result.path.read_text() == "" and result.review_path.read_text() == ""


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "out.jsonl"
    assert write_jsonl_atomic(path, [{"n": 1}, {"n": 2}]) == 2
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_jsonl_atomic(path, [{"n": 3}, {"not json": object()}])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_dir_appears_whole_keeps_a_finished_twin_and_leaves_nothing_on_error(tmp_path):
    import pytest

    from pipeline.core.files import atomic_dir

    target = tmp_path / "model"
    with atomic_dir(target, marker="config.json") as tmp:
        (tmp / "config.json").write_text("first")
        assert not target.exists()  # nothing visible until the block ends
    assert (target / "config.json").read_text() == "first"
    with atomic_dir(target, marker="config.json") as tmp:  # another process finished first: theirs stays
        (tmp / "config.json").write_text("second")
    assert (target / "config.json").read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "broken", marker="config.json") as tmp:
            (tmp / "config.json").write_text("half")
            raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("up,down,verdict", [(1, 0, "confirmed"), (3, 0, "confirmed"), (0, 1, "refused"),
                                             (1, 2, "refused"), (1, 1, None), (2, 1, None), (0, 0, None)])
def test_one_rule_says_what_votes_on_a_closest_passage_mean(up, down, verdict):
    from pipeline.feedback.export import passage_verdict

    assert passage_verdict(up, down) == verdict

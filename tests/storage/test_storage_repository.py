"""Repository behaviour on SQLite and PostgreSQL: hashing, upserts, uniqueness, cascades, training runs."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage import repository as repo
from storage.models import Feedback, Interaction, TrainingRun, User

SALT = b"test-salt"
TELEGRAM_ID = 987654321


def _interaction(session, user_id, question="Qual é o prazo de inscrição?", **overrides) -> Interaction:
    fields = dict(
        user_id=user_id, question=question, answer="O prazo é de 30 dias.",
        sources=[{"document": "edital_2024", "title": "Edital 2024", "chunk_id": "edital_2024:0-120",
                  "quote": "O prazo é de 30 dias.", "score": 0.81}],
        strategy="extractive", abstained=False, model_version="smollm2", index_version="v1",
        latency_ms=42.0, channel="telegram",
    )
    fields.update(overrides)
    return repo.record_interaction(session, **fields)


def _count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def _run_in_threads(target, n: int) -> list:
    results: list = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


# -- users ------------------------------------------------------------------------------------------------
def test_hash_user_id_is_keyed_stable_and_hides_the_id():
    digest = repo.hash_user_id(TELEGRAM_ID, salt=SALT)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == repo.hash_user_id(str(TELEGRAM_ID), salt=SALT)
    assert digest != repo.hash_user_id(TELEGRAM_ID, salt=b"other-salt")
    assert digest != repo.hash_user_id(TELEGRAM_ID + 1, salt=SALT)
    assert str(TELEGRAM_ID) not in digest
    with pytest.raises(ValueError):
        repo.hash_user_id(TELEGRAM_ID, salt=b"")
    with pytest.raises(ValueError):
        repo.hash_user_id(True, salt=SALT)


def test_get_or_create_user_makes_one_row(db):
    user_hash = repo.hash_user_id(TELEGRAM_ID, salt=SALT)
    with db.session() as session:
        first = repo.get_or_create_user(session, user_hash=user_hash)
    with db.session() as session:
        second = repo.get_or_create_user(session, user_hash=user_hash)
        assert _count(session, User) == 1
    assert first.id == second.id
    assert second.created_at.tzinfo is not None and second.created_at.utcoffset() == timedelta(0)
    with db.session() as session, pytest.raises(ValueError):
        repo.get_or_create_user(session, user_hash="")


def test_get_or_create_user_is_race_safe(db):
    user_hash = repo.hash_user_id(TELEGRAM_ID, salt=SALT)

    def create(_: int) -> int:
        with db.session() as session:
            return repo.get_or_create_user(session, user_hash=user_hash).id

    ids = _run_in_threads(create, 8)
    assert len(set(ids)) == 1
    with db.session() as session:
        assert _count(session, User) == 1


def test_raw_telegram_id_is_never_stored(db):
    with db.session() as session:
        user = repo.get_or_create_user(session, user_hash=repo.hash_user_id(TELEGRAM_ID, salt=SALT))
        interaction = _interaction(session, user.id, chat_hash=repo.hash_user_id(TELEGRAM_ID, salt=SALT))
        repo.record_feedback(session, interaction_id=interaction.id, user_id=user.id, vote=1, comment="ok")
    with db.engine.connect() as connection:
        dump = " ".join(
            str(row) for table in ("users", "interactions", "feedback")
            for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
        )
    assert repo.hash_user_id(TELEGRAM_ID, salt=SALT) in dump  # the dump is real...
    assert str(TELEGRAM_ID) not in dump  # ...and the id is not in it


# -- interactions -----------------------------------------------------------------------------------------
def test_record_and_get_interaction(db):
    with db.session() as session:
        user = repo.get_or_create_user(session, user_hash="u" * 64)
        interaction_id = _interaction(session, user.id).id
    with db.session() as session:
        loaded = repo.get_interaction(session, interaction_id=interaction_id)
        assert loaded is not None
        assert loaded.sources[0]["chunk_id"] == "edital_2024:0-120"
        assert loaded.sources[0]["score"] == pytest.approx(0.81)
        assert loaded.question == "Qual é o prazo de inscrição?" and loaded.abstained is False
        assert loaded.created_at.tzinfo is not None and loaded.created_at.utcoffset() == timedelta(0)
        assert abs(loaded.created_at - datetime.now(timezone.utc)) < timedelta(minutes=5)
        assert repo.get_interaction(session, interaction_id=interaction_id + 1000) is None
        anonymous = _interaction(session, None, channel="cli", abstained=True, answer="", sources=[])
        assert anonymous.id != interaction_id and anonymous.user is None
        with pytest.raises(TypeError):
            _interaction(session, None, sources=["not a dict"])


# -- feedback ---------------------------------------------------------------------------------------------
def test_record_feedback_upserts_a_change_of_mind(db):
    with db.session() as session:
        user = repo.get_or_create_user(session, user_hash="u" * 64)
        interaction = _interaction(session, user.id)
        feedback, created = repo.record_feedback(session, interaction_id=interaction.id, user_id=user.id,
                                                 vote=1, comment="  útil  ")
        first_id, first_updated = feedback.id, feedback.updated_at
    assert created is True and feedback.comment == "útil"

    with db.session() as session:
        feedback, created = repo.record_feedback(session, interaction_id=interaction.id, user_id=user.id,
                                                 vote=-1)
    assert created is False and feedback.id == first_id and feedback.vote == -1
    assert feedback.comment == "útil"  # a vote without a comment keeps the comment
    assert feedback.updated_at >= first_updated

    with db.session() as session:
        rows = session.scalars(sa.select(Feedback)).all()
        assert [(row.vote, row.comment) for row in rows] == [(-1, "útil")]
        assert rows[0].created_at.tzinfo is not None
        before = repo.get_feedback(session, interaction_id=interaction.id, user_id=user.id)
        assert before is not None and before.vote == -1


def test_voted_interactions_come_oldest_first_with_their_vote_counts(db):
    with db.session() as session:
        before = repo.feedback_signature(session)
        users = [repo.get_or_create_user(session, user_hash=c * 64) for c in "abc"]
        quiet, liked, split = (_interaction(session, users[0].id, question=f"Pergunta {n}?") for n in range(3))
        repo.record_feedback(session, interaction_id=liked.id, user_id=users[0].id, vote=1)
        for user, vote in zip(users, (1, -1, -1)):
            repo.record_feedback(session, interaction_id=split.id, user_id=user.id, vote=vote)
    with db.session() as session:
        voted = [(i.id, up, down) for i, up, down in repo.voted_interactions(session)]
        after = repo.feedback_signature(session)
    assert voted == [(liked.id, 1, 0), (split.id, 1, 2)] and quiet.id not in [v[0] for v in voted]
    assert before[0] == 0 and after[0] == 4 and after != before


def test_record_feedback_rejects_bad_votes_and_unknown_rows(db):
    with db.session() as session:
        user = repo.get_or_create_user(session, user_hash="u" * 64)
        interaction = _interaction(session, user.id)
        for vote in (0, 2, -2, True):
            with pytest.raises(ValueError):
                repo.record_feedback(session, interaction_id=interaction.id, user_id=user.id, vote=vote)
        with pytest.raises(LookupError):
            repo.record_feedback(session, interaction_id=interaction.id + 99, user_id=user.id, vote=1)
        with pytest.raises(LookupError):
            repo.record_feedback(session, interaction_id=interaction.id, user_id=user.id + 99, vote=1)
        assert _count(session, Feedback) == 0


def test_record_feedback_double_tap_makes_one_row(db):
    with db.session() as session:
        user = repo.get_or_create_user(session, user_hash="u" * 64)
        interaction_id, user_id = _interaction(session, user.id).id, user.id

    def vote(i: int) -> bool:
        with db.session() as session:
            return repo.record_feedback(session, interaction_id=interaction_id, user_id=user_id,
                                        vote=1 if i % 2 else -1)[1]

    created = _run_in_threads(vote, 6)
    assert created.count(True) == 1
    with db.session() as session:
        assert _count(session, Feedback) == 1


def test_feedback_is_unique_per_user_and_interaction_in_the_database(db):
    with pytest.raises(IntegrityError), db.session() as session:
        user = repo.get_or_create_user(session, user_hash="u" * 64)
        interaction = _interaction(session, user.id)
        session.add_all([Feedback(interaction_id=interaction.id, user_id=user.id, vote=1),
                         Feedback(interaction_id=interaction.id, user_id=user.id, vote=-1)])
        session.flush()


def test_set_feedback_comment(db):
    with db.session() as session:
        user = repo.get_or_create_user(session, user_hash="u" * 64)
        interaction = _interaction(session, user.id)
        assert repo.set_feedback_comment(session, interaction_id=interaction.id, user_id=user.id,
                                         comment="sem voto") is None
        repo.record_feedback(session, interaction_id=interaction.id, user_id=user.id, vote=-1)
        feedback = repo.set_feedback_comment(session, interaction_id=interaction.id, user_id=user.id,
                                             comment=" faltou o valor da taxa ")
        assert feedback is not None and feedback.comment == "faltou o valor da taxa"
        assert feedback.vote == -1


def test_deleting_a_user_cascades_to_interactions_and_feedback(db):
    with db.session() as session:
        alice = repo.get_or_create_user(session, user_hash="a" * 64)
        bob = repo.get_or_create_user(session, user_hash="b" * 64)
        asked_by_alice = _interaction(session, alice.id)
        asked_by_bob = _interaction(session, bob.id)
        repo.record_feedback(session, interaction_id=asked_by_alice.id, user_id=alice.id, vote=1)
        repo.record_feedback(session, interaction_id=asked_by_bob.id, user_id=alice.id, vote=-1)
        repo.record_feedback(session, interaction_id=asked_by_bob.id, user_id=bob.id, vote=1)

    with db.session() as session:
        assert repo.delete_user(session, user_hash="a" * 64) is True
        assert repo.delete_user(session, user_hash="a" * 64) is False
    with db.session() as session:
        assert session.scalars(sa.select(User.user_hash)).all() == ["b" * 64]
        assert session.scalars(sa.select(Interaction.id)).all() == [asked_by_bob.id]
        assert [(f.interaction_id, f.user_id) for f in session.scalars(sa.select(Feedback))] == [
            (asked_by_bob.id, bob.id)
        ]
        session.execute(sa.delete(Interaction).where(Interaction.id == asked_by_bob.id))
        assert _count(session, Feedback) == 0  # deleting an interaction takes its feedback along


# -- training runs ----------------------------------------------------------------------------------------
def test_training_run_lifecycle_and_cost(db):
    started = datetime.now(timezone.utc) - timedelta(hours=1)
    with db.session() as session:
        run = repo.create_training_run(session, base_model="smollm2", data_hash="abc", n_examples=10,
                                       gpu_hourly_usd=3.6, started_at=started)
        assert run.status == "running" and run.finished_at is None
        run_id = run.id
    with db.session() as session:
        done = repo.finish_training_run(
            session, run_id=run_id, status="succeeded", finished_at=started + timedelta(hours=1),
            adapter_path="/data/adapters/1", metrics={"f1": 0.5}, usd_brl=5.0,
            usd_brl_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        )
    assert done.duration_s == pytest.approx(3600.0)
    assert done.cost_usd == pytest.approx(3.6) and done.cost_brl == pytest.approx(18.0)

    with db.session() as session:
        loaded = repo.get_training_run(session, run_id=run_id)
        assert loaded is not None and loaded.status == "succeeded" and loaded.metrics == {"f1": 0.5}
        assert loaded.usd_brl_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        with pytest.raises(ValueError):
            repo.finish_training_run(session, run_id=run_id, status="failed")  # already finished
        with pytest.raises(ValueError):
            repo.finish_training_run(session, run_id=run_id, status="running")
        with pytest.raises(LookupError):
            repo.finish_training_run(session, run_id=run_id + 99, status="failed")


def test_failed_run_keeps_the_error_and_explicit_costs_win(db):
    with db.session() as session:
        run = repo.create_training_run(session, base_model="m", gpu_hourly_usd=2.0)
        failed = repo.finish_training_run(session, run_id=run.id, status="failed", error="CUDA OOM",
                                          cost_usd=0.25, cost_brl=1.5)
        assert (failed.status, failed.error, failed.cost_usd, failed.cost_brl) == ("failed", "CUDA OOM", 0.25, 1.5)
        free = repo.create_training_run(session, base_model="m")  # no price known: no cost invented
        free = repo.finish_training_run(session, run_id=free.id, status="succeeded")
        assert free.cost_usd is None and free.cost_brl is None and free.duration_s >= 0


def test_list_training_runs_newest_first(db):
    base = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with db.session() as session:
        for day in range(4):
            run = repo.create_training_run(session, base_model=f"m{day}", started_at=base + timedelta(days=day))
            if day % 2 == 0:
                repo.finish_training_run(session, run_id=run.id, status="succeeded",
                                         finished_at=base + timedelta(days=day, hours=1))
    with db.session() as session:
        assert [r.base_model for r in repo.list_training_runs(session)] == ["m3", "m2", "m1", "m0"]
        assert [r.base_model for r in repo.list_training_runs(session, limit=2)] == ["m3", "m2"]
        assert [r.base_model for r in repo.list_training_runs(session, status="succeeded")] == ["m2", "m0"]
        assert all(isinstance(r, TrainingRun) for r in repo.list_training_runs(session, status="running"))


def test_training_cost_is_added_up_by_the_database_within_the_window(db):
    sao_paulo = timezone(timedelta(hours=-3))
    november = datetime(2026, 11, 1, tzinfo=sao_paulo)  # 03:00 UTC
    with db.session() as session:
        def run(started, **finish):
            row = repo.create_training_run(session, base_model="m", started_at=started)
            if finish.get("status") == "interrupted":  # what interrupt_stale_training_runs leaves
                row.status, row.cost_usd, row.cost_brl = "interrupted", finish["cost_usd"], finish["cost_brl"]
                session.flush()
            elif finish:
                repo.finish_training_run(session, run_id=row.id, **finish)
            return row.id

        run(november - timedelta(minutes=1), status="succeeded", cost_usd=100.0, cost_brl=500.0)  # still October
        priced = run(november, status="succeeded", cost_usd=2.0, cost_brl=10.0)
        unpriced = run(november + timedelta(days=3), status="succeeded", cost_usd=1.0)
        free = run(november + timedelta(days=4), status="succeeded")
        interrupted = run(november + timedelta(days=5), status="interrupted", cost_usd=0.5, cost_brl=2.5)
        run(november + timedelta(days=6))  # still running: no cost yet
        run(datetime(2026, 12, 1, tzinfo=sao_paulo), status="succeeded", cost_usd=7.0, cost_brl=35.0)  # December
    with db.session() as session:
        month = repo.training_cost_between(session, since=november, until=datetime(2026, 12, 1, tzinfo=sao_paulo))
    assert month["runs"] == 5 and month["usd"] == pytest.approx(3.5) and month["brl"] == pytest.approx(12.5)
    assert month["without_brl"] == [unpriced, free] and month["without_rate"] == [unpriced]
    assert month["interrupted"] == [interrupted] and priced not in month["without_brl"]


def test_index_versions_keep_one_current(tmp_path):
    from storage import repository as repo
    from storage.db import Database

    database = Database(f"sqlite:///{tmp_path / 'ix.db'}")
    try:
        database.upgrade()
        with database.session() as session:
            for version in ("v1", "v2"):
                repo.record_index_version(session, version=version, embedding_model="embedded", content_hash="h",
                                          n_chunks=10, n_questions=2, n_embedded=10, build_s=1.5,
                                          meta={"dense_index": "flat"})
        with database.session() as session:
            assert [v.version for v in repo.list_index_versions(session)] == ["v2", "v1"]
            current = repo.current_index_version(session)
            assert current.version == "v2" and current.meta == {"dense_index": "flat"}
            assert sum(v.is_current for v in repo.list_index_versions(session)) == 1
    finally:
        database.dispose()

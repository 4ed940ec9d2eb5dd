"""The nightly learning loop on the sample corpus with the embedded models: the whole job through the real
Telegram application (fake Bot API on 127.0.0.1), a failing step, one run at a time, the 👍 fast path, the 👎
memory, hot reload of a promoted index, and the schedule."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading

import pytest

from bot import admin_texts
from bot.telegram.app import RETRAIN_JOB_NAME, build_application, scheduled_retrain
from pipeline.search.store import current_version
from pipeline.serving.promote import build_candidate_index, promote
from pipeline.serving.versions import adapter_pointer, serving_adapter
from pipeline.loop.nightly import RetrainBusy, RetrainFailed, last_runs, retrain_job, run_lock
from pipeline.service import Oraculo
from pipeline.settings import Settings
from storage.models import Interaction
from tests.fakes.telegram_server import CITIZEN, FakeTelegramServer, running_application

ADMIN = {"id": 9009, "is_bot": False, "first_name": "Ana"}
OTHER = {"id": 4242, "is_bot": False, "first_name": "Bia"}
QUESTION = "Onde é sediada a UFMS?"


@pytest.fixture
def make_settings(tmp_path, session_settings, sample_index, smollm2):
    """A fresh data folder holding a copy of the session's index and QA pairs (no re-embedding)."""
    data = tmp_path / "data"

    def make(**overrides) -> Settings:
        if not data.exists():
            shutil.copytree(session_settings.index_dir, data / "index")
            shutil.copytree(session_settings.qa_dir, data / "data_qa")
        values = dict(DATA_DIR=data, LLM_MODEL=str(session_settings.models_dir / "smollm2-135m-instruct"),
                      RETRAIN_MAX_STEPS=1, RETRAIN_BATCH_SIZE=1, RETRAIN_MAX_EXAMPLES=2, RETRAIN_EVAL_QUESTIONS=12,
                      ADMIN_IDS=str(ADMIN["id"]))
        values.update(overrides)
        return Settings(**values)

    return make


def run_bot(settings_for, scenario):
    """Run ``scenario(server, app, service)`` with the real service behind the real Application."""
    async def main():
        async with FakeTelegramServer() as server:
            settings = settings_for(TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_BASE_URL=server.base_url)
            service = Oraculo.from_settings(settings)
            app = build_application(settings, service)
            async with running_application(app):
                await asyncio.wait_for(scenario(server, app, service), RETRAIN_TIMEOUT_S + 60)

    asyncio.run(main())


# How long a scenario waits for the /retrain report: a safety net against a hung job, never a speed check. A run
# that trains the reader takes about 100 s on 2 idle cores and twice that under load (it once ran past 200 s).
RETRAIN_TIMEOUT_S = 600.0

async def say(server, text, *, user=CITIZEN):
    before = len(server.calls_to("sendMessage", ok=True))
    server.push_text(text, user=user)
    return (await server.wait_for("sendMessage", count=before + 1, timeout=60))[-1]


async def press(server, message, data, *, user=CITIZEN):
    before = len(server.calls_to("answerCallbackQuery", ok=True))
    server.push_callback(data, message=message, user=user)
    await server.wait_for("answerCallbackQuery", count=before + 1)


def interactions(service) -> list[Interaction]:
    with service.database.session() as session:
        rows = session.query(Interaction).order_by(Interaction.id).all()
        session.expunge_all()
        return rows


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("strategy", ["reader", "extractive"])
def test_a_telegram_vote_reaches_export_index_and_training_data_and_the_bot_serves_the_promotion(make_settings,
                                                                                                strategy):
    """reader (the default): the reader's adapter learns from the 👍 span; extractive: the LLM's adapter."""
    settings_for = lambda **kw: make_settings(ANSWER_STRATEGY=strategy, **kw)  # noqa: E731
    seen = {}

    async def scenario(server, app, service):
        answer = await say(server, QUESTION)
        up = answer.json("reply_markup")["inline_keyboard"][0][0]["callback_data"]
        await press(server, answer.result, up)
        seen["before"] = current_version(service.settings.index_dir)
        await say(server, "/retrain", user=ADMIN)
        [report] = await server.wait_for("sendMessage", timeout=RETRAIN_TIMEOUT_S,
                                         where=lambda c: "Retreinamento concluído" in c.params["text"]
                                         or "Retreinamento falhou" in c.params["text"])
        seen["report"] = report.result["text"]
        await say(server, "Quando foi criada a UFMS?", user=OTHER)  # answered by the promoted index, no restart

    run_bot(settings_for, scenario)
    settings = settings_for()
    assert seen["report"].startswith("✅ Retreinamento concluído"), seen["report"]
    assert "promoção" in seen["report"] and "índice promovido" in seen["report"]
    service = Oraculo(settings)
    first = interactions(service)[0]
    qa_id = f"feedback-{first.id}"
    assert [r["id"] for r in read_jsonl(settings.exports_dir / "feedback_validated.jsonl")] == [qa_id]
    [run] = last_runs(settings)
    assert run["ok"] and run["promoted"] == {"index": True, "adapter": True}
    new_index = current_version(settings.index_dir)
    assert new_index != seen["before"] and run["serving_after"]["index"] == new_index
    entries = read_jsonl(settings.index_dir / "versions" / new_index / "entries.jsonl")
    assert any(e.get("qa_id") == qa_id and e["text"] == QUESTION for e in entries)
    adapter = serving_adapter(settings)
    metadata = json.loads((adapter / "metadata.json").read_text())
    if strategy == "reader":  # the 👍 answer's span is the reader's positive example; the bot serves it now
        assert metadata["kind"] == "reader" and metadata["metrics"]["positives"] == 1
        assert interactions(service)[-1].model_version == adapter.name
    else:
        train_data = read_jsonl(settings.data_dir / "retrain" / run["run_id"] / "train_data.jsonl")
        assert qa_id in {r["id"] for r in train_data}
        assert metadata["hyperparameters"]["data"].endswith(f"{run['run_id']}/train_data.jsonl")
        assert metadata["data"]["records"] == len(train_data)
    assert interactions(service)[-1].index_version == new_index  # hot reload: same process, new index


def test_a_failing_training_leaves_serving_versions_untouched_and_the_admin_gets_the_error(make_settings, tmp_path):
    # The LLM's training fails (its model is missing) while the extractive answers go on; a failing reader
    # training takes the same path through the job (the step's error, nothing promoted).
    missing = tmp_path / "no-such-model"
    settings_for = lambda **kw: make_settings(ANSWER_STRATEGY="extractive", LLM_MODEL=str(missing), **kw)  # noqa: E731
    seen = {}

    async def scenario(server, app, service):
        answer = await say(server, QUESTION)
        await press(server, answer.result, answer.json("reply_markup")["inline_keyboard"][0][0]["callback_data"])
        seen["before"] = current_version(service.settings.index_dir)
        await say(server, "/retrain", user=ADMIN)
        [report] = await server.wait_for("sendMessage", timeout=RETRAIN_TIMEOUT_S,
                                         where=lambda c: "falhou" in c.params["text"])
        seen["report"] = report.result["text"]
        again = await say(server, QUESTION, user=OTHER)  # the bot keeps answering, from the old index
        seen["again"] = again.result["text"]

    run_bot(settings_for, scenario)
    settings = settings_for()
    assert "❌ Retreinamento falhou" in seen["report"] and "train: RuntimeError" in seen["report"]
    assert current_version(settings.index_dir) == seen["before"]
    assert not adapter_pointer(settings).exists()
    assert not (settings.data_dir / "index_staging").exists()
    [run] = last_runs(settings)
    assert (run["ok"], run["failed_step"], run["serving_after"]) == (False, "train", run["serving_before"])
    assert "Campo Grande" in seen["again"]


def test_one_run_at_a_time_a_second_retrain_is_told_one_is_running(make_settings):
    settings = make_settings(RETRAIN_TRAIN=False)
    holding, release = threading.Event(), threading.Event()

    def other_run():
        with run_lock(settings):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=other_run)
    thread.start()
    holding.wait(10)
    try:
        with pytest.raises(RetrainBusy):
            retrain_job(settings)

        async def scenario(server, app, service):
            busy = await say(server, "/retrain", user=ADMIN)
            assert busy.params["text"] == admin_texts.RETRAIN_BUSY

        run_bot(lambda **kw: make_settings(RETRAIN_TRAIN=False, **kw), scenario)
    finally:
        release.set()
        thread.join()
    assert last_runs(settings) == []  # neither call ran anything

    async def twice(server, app, service):  # two /retrain in a row: one run
        first = await say(server, "/retrain", user=ADMIN)
        second = await say(server, "/retrain", user=ADMIN)
        assert (first.params["text"], second.params["text"]) == (admin_texts.RETRAIN_STARTED, admin_texts.RETRAIN_BUSY)
        await server.wait_for("sendMessage", timeout=RETRAIN_TIMEOUT_S,
                              where=lambda c: "concluído" in c.params["text"])

    run_bot(lambda **kw: make_settings(RETRAIN_TRAIN=False, **kw), twice)
    assert len(last_runs(settings)) == 1


def test_the_fast_path_answers_near_identical_questions_from_a_liked_answer_and_logs_it(make_settings):
    service = Oraculo.from_settings(make_settings())
    first = service.ask(QUESTION, user_ref=1, channel="cli")
    assert first.answer.strategy == "reader" and not first.answer.abstained
    service.vote(interaction_id=first.interaction_id, user_ref=1, vote=+1)
    again = service.ask("a UFMS é sediada onde", user_ref=2, channel="cli")  # same words, other order and case
    assert (again.answer.strategy, again.answer.text) == ("fastpath", first.answer.text)
    assert again.answer.model_version == f"fastpath:{first.interaction_id}"
    assert again.answer.sources[0].chunk_id == first.answer.sources[0].chunk_id
    logged = interactions(service)[-1]
    assert (logged.strategy, logged.model_version) == ("fastpath", f"fastpath:{first.interaction_id}")
    other_type = service.ask("Quando foi sediada a UFMS?", user_ref=2, channel="cli")  # when ≠ where
    assert other_type.answer.strategy != "fastpath"
    service.vote(interaction_id=again.interaction_id, user_ref=3, vote=-1)  # a 👎 on it: no longer validated
    assert service.ask(QUESTION, user_ref=4, channel="cli").answer.strategy != "fastpath"


def test_a_disliked_answer_is_not_given_again_for_that_question(make_settings):
    service = Oraculo.from_settings(make_settings())
    first = service.ask(QUESTION, user_ref=1, channel="cli")
    service.vote(interaction_id=first.interaction_id, user_ref=1, vote=-1)
    second = service.ask(QUESTION + " ", user_ref=2, channel="cli")
    assert second.answer.strategy == "reader"
    assert second.answer.abstained or second.answer.text != first.answer.text


def test_a_promoted_index_is_picked_up_by_the_running_service_without_restart(make_settings, sample_chunks):
    settings = make_settings()
    service = Oraculo.from_settings(settings)
    before = service.ask(QUESTION, user_ref=1, channel="cli").answer.index_version
    record = {"id": "hand-1", "question": "Qual é a cidade-sede da universidade federal sul-mato-grossense?",
              "answer": "Campo Grande", "document": sample_chunks[0].document, "chunk_id": sample_chunks[0].id}
    info = build_candidate_index(settings, sample_chunks, [record])
    assert current_version(settings.index_dir) == before  # built aside: still serving the old one
    assert service.ask(QUESTION, user_ref=1, channel="cli").answer.index_version == before
    promote(settings, index=info)
    assert service.ask(QUESTION, user_ref=1, channel="cli").answer.index_version == info.version


def test_the_job_is_scheduled_in_sao_paulo_time_coalescing_missed_runs_and_reports_to_admins(make_settings):
    async def scenario(server, app, service):
        [job] = app.job_queue.get_jobs_by_name(RETRAIN_JOB_NAME)
        aps = job.job
        assert (aps.coalesce, aps.max_instances, aps.misfire_grace_time) == (True, 1, 3600)
        assert str(aps.trigger.timezone) == "America/Sao_Paulo"
        assert [str(f) for f in aps.trigger.fields[-3:]] == ["3", "0", "0"]  # 03:00:00
        await say(server, "/ajuda", user=ADMIN)  # the admin's private chat exists once they wrote to the bot
        app.job_queue.run_once(scheduled_retrain, 0)  # what the schedule runs, now
        [report] = await server.wait_for("sendMessage", timeout=RETRAIN_TIMEOUT_S,
                                         where=lambda c: "agendado" in c.params["text"])
        assert report.result["text"].startswith("✅ Retreinamento agendado concluído")

    run_bot(lambda **kw: make_settings(RETRAIN_TRAIN=False, **kw), scenario)
    [run] = last_runs(make_settings())
    assert run["trigger"] == "schedule"


def test_a_job_failing_outside_training_raises_with_its_record(make_settings):
    settings = make_settings(RETRAIN_TRAIN=False, EMBEDDING_MODEL="/nonexistent/embedder")
    before = current_version(settings.index_dir)
    with pytest.raises(RetrainFailed) as failure:
        retrain_job(settings)
    assert failure.value.report.failed_step == "index"
    assert current_version(settings.index_dir) == before


def test_votes_on_the_closest_passage_confirm_it_or_set_it_aside_and_are_exported(make_settings):
    from dataclasses import replace

    from pipeline.loop import jobs

    settings = make_settings()
    service = Oraculo.from_settings(settings)
    service.answerer.maybe_refresh()  # the serving versions are read once, so the reader below is the one that answers
    reader = service.answerer.reader
    reader.abstention = replace(reader.abstention, threshold=1e6, near=-1e6)  # every reply: the closest passage
    first = service.ask(QUESTION, user_ref=1, channel="cli")
    assert first.answer.abstained and first.answer.closest is not None
    [logged] = interactions(service)[-1].sources
    assert logged["closest"] is True and logged["chunk_id"] == first.answer.closest.chunk_id and logged["span"]
    service.vote(interaction_id=first.interaction_id, user_ref=1, vote=+1)  # "yes, this passage answers me"
    again = service.ask("a UFMS é sediada onde", user_ref=2, channel="cli")
    assert again.answer.strategy == "reader" and not again.answer.abstained and again.answer.text
    assert again.answer.sources[0].chunk_id == first.answer.closest.chunk_id

    other = "Qual é o endereço da reitoria da UFMS?"
    refused = service.ask(other, user_ref=3, channel="cli")
    assert refused.answer.abstained and refused.answer.closest is not None
    service.vote(interaction_id=refused.interaction_id, user_ref=3, vote=-1)  # "no, it does not"
    later = service.ask(other, user_ref=4, channel="cli")
    assert later.answer.closest is None or later.answer.closest.quote != refused.answer.closest.quote  # not again

    result = jobs.export_feedback_job(settings)
    assert result.passages == 2 and result.review == 1  # the 👎 is also there for people to review
    votes = {v["question"]: (v["up"], v["down"], v["chunk_id"]) for v in read_jsonl(result.passages_path)}
    assert votes == {QUESTION: (1, 0, first.answer.closest.chunk_id),
                     other: (0, 1, refused.answer.closest.chunk_id)}
    # the next index holds the confirmed question as an entry of its passage; the refused one is not indexed
    [entry] = jobs.confirmed_passage_questions(settings)
    assert (entry["question"], entry["chunk_id"]) == (QUESTION, first.answer.closest.chunk_id)

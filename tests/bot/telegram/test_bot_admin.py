"""Admin commands through the real Application, the fake Bot API and the real service on SQLite:
refusals (logged, hashed), /stats with its PNG chart, /cost from the training runs, /retrain and /reindex
acknowledged at once, one at a time, reported at the end."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from bot import admin_texts, texts
from bot.telegram.admin import JOBS_KEY, retrain_steps
from bot.telegram.app import build_application
from pipeline.service import Oraculo
from pipeline.settings import Settings
from storage import repository
from tests.fakes.oraculo import CannedAnswerer
from tests.fakes.telegram_server import CITIZEN, FakeTelegramServer, running_application

ADMIN = {"id": 9009, "is_bot": False, "first_name": "Ana"}


@pytest.fixture
def real(tmp_path):
    def run(scenario, *, prepare=None):
        async def main():
            async with FakeTelegramServer() as server:
                settings = Settings(DATA_DIR=tmp_path / "data", TELEGRAM_BOT_TOKEN=server.token,
                                    TELEGRAM_BASE_URL=server.base_url, ADMIN_IDS=str(ADMIN["id"]))
                service = Oraculo(settings, answerer=CannedAnswerer())
                service.database.upgrade()
                if prepare:
                    prepare(service)
                app = build_application(settings, service)
                async with running_application(app):
                    await asyncio.wait_for(scenario(server, app, service), 60)

        asyncio.run(main())

    return run


async def say(server, text, *, user=CITIZEN, where=None):
    before = len([c for c in server.calls_to("sendMessage", ok=True) if where is None or where(c)])
    server.push_text(text, user=user)
    return (await server.wait_for("sendMessage", count=before + 1, where=where))[-1]


def test_everyone_else_is_refused_politely_and_the_attempt_is_logged_without_the_raw_id(real, caplog):
    ran = []

    async def scenario(server, app, service):
        app.bot_data[JOBS_KEY] = {"retrain": lambda s: [("x", lambda: ran.append(1))],
                                  "reindex": lambda s: [("x", lambda: ran.append(1))]}
        for command in ("/retrain", "/reindex", "/cost", "/stats"):
            reply = await say(server, command)
            assert reply.params["text"] == texts.ADMIN_ONLY
        await asyncio.sleep(0.2)

    with caplog.at_level(logging.WARNING, logger="bot.telegram.admin"):
        real(scenario)
    refusals = [r for r in caplog.records if "refused admin command" in r.getMessage()]
    assert len(refusals) == 4 and ran == []
    assert all(str(CITIZEN["id"]) not in r.getMessage() for r in refusals)


def test_stats_sends_a_png_chart_with_the_day_counts_and_top_unanswered(real):
    async def scenario(server, app, service):
        for question in ("Onde é sediada a UFMS?", "Qual o clima em Marte?", "qual o clima em marte?",
                         "Quem vai a Marte?"):
            await say(server, question)
        first = server.calls_to("sendMessage")[0]
        await server.wait_for("sendMessage", count=4)
        server.push_callback(first.json("reply_markup")["inline_keyboard"][0][1]["callback_data"],
                             message=first.result)
        await server.wait_for("answerCallbackQuery")
        server.push_text("/stats", user=ADMIN)
        [photo] = await server.wait_for("sendPhoto")
        assert photo.files["photo"][:8] == b"\x89PNG\r\n\x1a\n" and len(photo.files["photo"]) > 5000
        caption = photo.result["caption"]
        assert "Perguntas: 4 · respondidas: 1 · sem resposta: 3" in caption
        assert "Avaliações das respostas: 👍 0 · 👎 1" in caption and "Trecho mais próximo" not in caption
        assert "2× Qual o clima em Marte?" in caption and "1× Quem vai a Marte?" in caption

    real(scenario)


def test_stats_with_nothing_yet_says_so(real):
    async def scenario(server, app, service):
        reply = await say(server, "/stats", user=ADMIN)
        assert reply.params["text"] == admin_texts.STATS_EMPTY

    real(scenario)


def test_cost_reports_the_last_run_and_the_month_in_usd_and_brl_with_the_rate(real):
    now = datetime.now(timezone.utc)

    def prepare(service):
        with service.database.session() as session:
            for minutes, rate in ((30, 5.0), (60, 5.5)):
                run = repository.create_training_run(session, base_model="m", gpu_hourly_usd=2.0,
                                                     started_at=now - timedelta(minutes=minutes + 1))
                repository.finish_training_run(session, run_id=run.id, status="succeeded", usd_brl=rate,
                                               usd_brl_at=now - timedelta(hours=1),
                                               finished_at=now - timedelta(minutes=1))

    async def scenario(server, app, service):
        reply = await say(server, "/cost", user=ADMIN)
        shown = reply.result["text"]
        assert "Último treino (nº 1" in shown  # the most recently started
        assert "US$ 1,00 = R$ 5,00" in shown  # 30 min x US$ 2/h, at 5.0
        assert "(2 treino(s)): US$ 3,00 = R$ 16,00" in shown  # + 60 min x 2 x 5.5
        assert "US$ 1 = R$ 5,00 (cotação de" in shown

    real(scenario, prepare=prepare)


def test_retrain_acknowledges_at_once_refuses_a_second_and_reports_at_the_end(real):
    release = threading.Event()

    def slow_steps(service):
        return [("perguntas geradas", lambda: ["a", "b"]), ("adaptador LoRA", lambda: release.wait(10) and {
            "version": "v9", "metrics": {"val_loss": 1.2345, "steps": 20}, "cost": {"usd": 0.0123, "brl": 0.07}})]

    async def scenario(server, app, service):
        app.bot_data[JOBS_KEY] = {"retrain": slow_steps, "reindex": slow_steps}
        ack = await say(server, "/retrain", user=ADMIN)
        assert ack.params["text"] == admin_texts.RETRAIN_STARTED
        busy = await say(server, "/reindex", user=ADMIN)
        assert busy.params["text"] == admin_texts.RETRAIN_BUSY
        other = await say(server, "Onde é sediada a UFMS?")  # citizens are still answered meanwhile
        assert other.result["text"].startswith("A UFMS tem sede")
        release.set()
        [report] = await server.wait_for("sendMessage", where=lambda c: "concluído" in c.params["text"])
        shown = report.result["text"]
        assert shown.startswith("✅ Retreinamento concluído em")
        assert "perguntas geradas: 2 itens" in shown
        assert "versão v9, perda de validação 1.234, 20 passos, custo US$ 0.0123 = R$ 0.07" in shown
        again = await say(server, "/reindex", user=ADMIN)
        assert again.params["text"] == admin_texts.REINDEX_STARTED

    real(scenario)


def test_a_failing_step_is_reported_and_the_bot_keeps_going(real):
    def boom():
        raise RuntimeError("disco cheio")

    async def scenario(server, app, service):
        app.bot_data[JOBS_KEY] = {"reindex": lambda s: [("índice", boom), ("ativar", lambda: None)]}
        await say(server, "/reindex", user=ADMIN)
        [report] = await server.wait_for("sendMessage", where=lambda c: "falhou" in c.params["text"])
        assert "❌ Reindexação falhou" in report.result["text"]
        assert "índice: RuntimeError: disco cheio" in report.result["text"]
        reply = await say(server, "Onde é sediada a UFMS?")
        assert reply.result["text"].startswith("A UFMS tem sede")

    real(scenario)


def test_the_default_retrain_runs_the_nightly_job_then_serves(tmp_path):
    service = Oraculo(Settings(DATA_DIR=tmp_path / "data"), answerer=CannedAnswerer())
    steps = retrain_steps(service)
    assert [name for name, _ in steps] == ["retreino", "ativar"]
    assert steps[0][1].func.__module__ == "pipeline.loop.nightly" and steps[0][1].keywords == {"trigger": "admin"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_stats_queries_count_per_day_on_sqlite_and_postgres(tmp_path, backend, request):
    from bot.telegram.admin import stats_summary

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    service = Oraculo(Settings(DATA_DIR=tmp_path / "data", DATABASE_URL=url), answerer=CannedAnswerer())
    service.database.upgrade()
    answered = service.ask("Onde é sediada a UFMS?", user_ref=1, channel="telegram", chat_ref=1)
    abstained = service.ask("Tem vida em Marte?", user_ref=2, channel="telegram", chat_ref=2)
    service.vote(interaction_id=answered.interaction_id, user_ref=1, vote=+1, chat_ref=1)
    service.vote(interaction_id=answered.interaction_id, user_ref=2, vote=-1)
    # a vote on an abstention (the closest passage it quoted) is counted apart from the votes on answers
    service.vote(interaction_id=abstained.interaction_id, user_ref=2, vote=-1, chat_ref=2)
    summary = stats_summary(service, days=3)
    today = datetime.now(timezone.utc).date().isoformat()
    assert list(summary["days"])[-1] == today and len(summary["days"]) == 3
    assert summary["days"][today] == {"questions": 2, "answered": 1, "up": 1, "down": 1,
                                      "passage_up": 0, "passage_down": 1}
    assert summary["unanswered"] == [("Tem vida em Marte?", 1)]
    service.database.dispose()

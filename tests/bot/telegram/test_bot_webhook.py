"""Webhook mode: in process (updates POSTed by the fake Telegram, secret token checked) and two real bot
processes behind a round-robin "load balancer" sharing one PostgreSQL database without losing a vote."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot import texts
from bot.telegram.app import build_application, webhook_options
from pipeline.service import Oraculo
from pipeline.settings import Settings
from storage.db import Database
from storage.models import Feedback, Interaction, User
from tests.fakes.oraculo import CannedAnswerer
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fixtures.postgres import free_port

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-webhook-token"


def webhook_settings(data_dir, server, port, **extra) -> Settings:
    return Settings(DATA_DIR=data_dir, TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_BASE_URL=server.base_url,
                    TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}", TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
                    TELEGRAM_WEBHOOK_PORT=port, TELEGRAM_WEBHOOK_SECRET=SECRET, **extra)


def test_webhook_mode_answers_posted_updates_and_refuses_a_wrong_secret(tmp_path):
    async def main():
        async with FakeTelegramServer() as server:
            port = free_port()
            settings = webhook_settings(tmp_path / "data", server, port)
            service = Oraculo(settings, answerer=CannedAnswerer())
            service.database.upgrade()
            app = build_application(settings, service)
            async with app:
                await app.updater.start_webhook(**webhook_options(settings))
                await app.start()
                try:
                    assert server.webhook == {"url": f"http://127.0.0.1:{port}/telegram", "secret_token": SECRET}
                    server.push_text("Onde é sediada a UFMS?")
                    [answer] = await server.wait_for("sendMessage")
                    assert answer.result["text"].startswith("A UFMS tem sede")
                    assert server.deliveries == [(server.webhook["url"], 200)]
                    forged = {"update_id": 999, "message": {**answer.result, "text": "/start"}}
                    assert await server.post_update(server.webhook["url"], forged, secret_token="wrong") == 403
                    assert await server.post_update(server.webhook["url"], forged) == 403
                    await asyncio.sleep(0.3)
                    assert len(server.calls_to("sendMessage")) == 1
                finally:
                    await app.updater.stop()
                    await app.stop()
        return service

    service = asyncio.run(main())
    with service.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 1


def _start_worker(server, url, port, data_dir) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "TELEGRAM_BOT_TOKEN": server.token,
           "TELEGRAM_BASE_URL": server.base_url, "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}",
           "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1", "TELEGRAM_WEBHOOK_PORT": str(port),
           "TELEGRAM_WEBHOOK_SECRET": SECRET, "DATA_DIR": str(data_dir), "RATE_LIMIT_QUESTIONS": "1000",
           # Every process must hash user ids with the same salt, or one person becomes two.
           "USER_HASH_SALT": "shared-salt-for-all-processes", "PYTHONPATH": str(ROOT)}
    log = open(data_dir / "worker.log", "w")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen([sys.executable, str(ROOT / "tests/bot/bot_worker.py")], env=env, cwd=data_dir,
                            stdout=log, stderr=subprocess.STDOUT)


async def _until_both_listen(server, workers, data_dirs, timeout_s=180.0) -> None:
    """Wait for both processes' setWebhook; fail at once with its log when a process dies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(server.calls_to("setWebhook", ok=True)) < len(workers):
        for worker, folder in zip(workers, data_dirs):
            if worker.poll() is not None:
                raise AssertionError(f"worker exited {worker.returncode}:\n{(folder / 'worker.log').read_text()}")
        assert loop.time() < deadline, "the bot processes did not start in time"
        await asyncio.sleep(0.2)


def test_two_bot_processes_on_one_postgres_lose_no_vote(tmp_path, postgres_url):
    Database(postgres_url).upgrade()  # once, before the processes start (as a deploy step would)
    users = [{"id": 5000 + i, "is_bot": False, "first_name": f"Pessoa{i}"} for i in range(12)]
    questions_each = 3

    async def main():
        async with FakeTelegramServer() as server:
            ports = [free_port(), free_port()]
            for i in range(2):
                (tmp_path / f"w{i}").mkdir()
            workers = [_start_worker(server, postgres_url, port, tmp_path / f"w{i}")
                       for i, port in enumerate(ports)]
            try:
                await _until_both_listen(server, workers, [tmp_path / "w0", tmp_path / "w1"])
                server.webhook_targets = [f"http://127.0.0.1:{port}/telegram" for port in ports]  # the balancer
                for user in users:
                    for q in range(questions_each):
                        server.push_text(f"Pergunta {q} sobre a UFMS?", user=user)
                total = len(users) * questions_each
                answers = await server.wait_for("sendMessage", count=total, timeout=120)
                # Every answer's 👍, all at once, spread over both processes.
                for answer in answers:
                    user = next(u for u in users if str(u["id"]) == answer.params["chat_id"])
                    up = answer.json("reply_markup")["inline_keyboard"][0][0]["callback_data"]
                    server.push_callback(up, message=answer.result, user=user)
                acks = await server.wait_for("answerCallbackQuery", count=total, timeout=120)
                assert {a.params["text"] for a in acks} == {texts.FEEDBACK_THANKS}
                # Then a change of mind on every other answer, again concurrently.
                changed = answers[::2]
                for answer in changed:
                    user = next(u for u in users if str(u["id"]) == answer.params["chat_id"])
                    down = answer.json("reply_markup")["inline_keyboard"][0][1]["callback_data"]
                    server.push_callback(down, message=answer.result, user=user)
                await server.wait_for("answerCallbackQuery", count=total + len(changed), timeout=120)
                delivered = {url for url, status in server.deliveries if status == 200}
                assert delivered == set(server.webhook_targets)  # both processes did work
                return total, {int(a.json("reply_markup")["inline_keyboard"][0][0]["callback_data"].split(":")[1])
                               for a in changed}
            finally:
                for worker in workers:
                    worker.send_signal(signal.SIGTERM)
                for worker in workers:
                    try:
                        worker.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        worker.kill()

    total, changed_ids = asyncio.run(main())
    database = Database(postgres_url)
    try:
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(User)) == len(users)
            assert session.scalar(select(func.count()).select_from(Interaction)) == total
            votes = dict(session.execute(select(Feedback.interaction_id, Feedback.vote)).all())
        assert len(votes) == total  # one row per (answer, person): none lost, none doubled
        assert {i for i, v in votes.items() if v == -1} == changed_ids
    finally:
        database.dispose()

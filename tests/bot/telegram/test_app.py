"""Application wiring: token required, command menu, per-person ordering."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Update

from bot import texts
from bot.telegram.app import PerUserUpdateProcessor, build_application
from bot.telegram.handlers import SERVICE_KEY
from pipeline.settings import Settings
from tests.fakes.oraculo import FakeOraculo


def test_a_token_is_required(tmp_path):
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN"):
        build_application(Settings(DATA_DIR=tmp_path), FakeOraculo())


def test_application_holds_the_service_and_points_at_the_configured_server(tmp_path):
    service = FakeOraculo()
    app = build_application(Settings(DATA_DIR=tmp_path, TELEGRAM_BOT_TOKEN="1:abc",
                                     TELEGRAM_BASE_URL="http://127.0.0.1:9/bot"), service)
    assert app.bot_data[SERVICE_KEY] is service
    assert app.bot.base_url == "http://127.0.0.1:9/bot1:abc"
    assert isinstance(app.update_processor, PerUserUpdateProcessor) and app.update_processor.max_concurrent_updates > 1


def test_post_init_publishes_the_command_menu_and_survives_a_failure(drive):
    async def scenario(server, app):
        await app.post_init(app)
        assert {c["command"]: c["description"] for c in server.commands} == texts.COMMANDS
        server.fail_next("setMyCommands", status=500)
        await app.post_init(app)  # logged, not raised: the bot still starts

    drive(scenario)


def test_updates_of_one_person_run_one_at_a_time_and_in_order():
    def update(update_id, user_id):
        return Update.de_json({"update_id": update_id, "message": {
            "message_id": update_id, "date": 0, "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "x"}, "text": "oi"}}, None)

    async def main():
        processor = PerUserUpdateProcessor(8)
        log = []

        async def work(name, delay):
            log.append(f"start {name}")
            await asyncio.sleep(delay)
            log.append(f"end {name}")

        async with processor:
            await asyncio.gather(processor.process_update(update(1, 10), work("a1", 0.2)),
                                 processor.process_update(update(2, 10), work("a2", 0.0)),
                                 processor.process_update(update(3, 20), work("b1", 0.05)))
        return log

    log = asyncio.run(main())
    assert log.index("end a1") < log.index("start a2")  # same person: strictly one after the other
    assert log.index("end b1") < log.index("end a1")  # another person did not wait

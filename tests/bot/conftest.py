"""Fixtures for the bot tests: the real PTB Application against the fake Bot API on 127.0.0.1.

A test writes an async scenario and hands it to ``drive``, which runs it in a fresh event loop with the
fake server up and the application polling it::

    def test_help(drive):
        async def scenario(server, app):
            server.push_text("/ajuda")
            [reply] = await server.wait_for("sendMessage")
        drive(scenario)
"""

from __future__ import annotations

import asyncio

import pytest

from bot.telegram.app import build_application
from pipeline.settings import Settings
from tests.fakes.oraculo import FakeOraculo
from tests.fakes.telegram_server import FakeTelegramServer, running_application

SCENARIO_TIMEOUT_S = 60.0


def bot_settings(data_dir, server: FakeTelegramServer) -> Settings:
    return Settings(DATA_DIR=data_dir, TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_BASE_URL=server.base_url)


@pytest.fixture
def service() -> FakeOraculo:
    return FakeOraculo(documents=["Ufms", "Poscomp", "Edital <Nº 1> & Anexos"])


@pytest.fixture
def drive(tmp_path, service):
    """Run ``scenario(server, app)`` with the application polling a fresh fake server."""

    def run(scenario, *, with_service=None):
        async def main():
            async with FakeTelegramServer() as server:
                app = build_application(bot_settings(tmp_path / "data", server), with_service or service)
                async with running_application(app):
                    await asyncio.wait_for(scenario(server, app), SCENARIO_TIMEOUT_S)

        asyncio.run(main())

    return run

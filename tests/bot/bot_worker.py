"""One bot process for the multi-process tests: the real Application and the real Oráculo service (answers
canned, so no model loads) configured entirely from the environment, as `oraculo bot` would be.

Run: ``DATABASE_URL=... TELEGRAM_BOT_TOKEN=... TELEGRAM_BASE_URL=... TELEGRAM_WEBHOOK_URL=... \\
python tests/bot/bot_worker.py``; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.telegram.app import run  # noqa: E402
from pipeline.service import Oraculo  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from tests.fakes.oraculo import CannedAnswerer  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    run(settings, service=Oraculo(settings, answerer=CannedAnswerer()))

"""The load script end to end, small and with canned answers: under 20% injected 429/500 replies every
question is answered and stored exactly once and every vote is stored exactly once."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "load_bot.py"


def load_script():
    spec = importlib.util.spec_from_file_location("load_bot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_question_and_vote_is_stored_exactly_once_despite_injected_failures():
    load_bot = load_script()
    args = load_bot.parse_args(["--users", "6", "--questions", "4", "--failure-rate", "0.2", "--think-s", "0",
                                "--canned", "--seed", "3"])
    report = asyncio.run(load_bot.run(args))
    assert sum(report["injected_failures"].values()) > 0  # the faults really happened
    assert report["answered"] == report["interactions_stored"] == 24
    assert report["votes_cast"] == report["feedback_rows"] > 0
    assert report["exact"] is True

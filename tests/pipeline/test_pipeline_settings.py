"""Settings: the documented .env.example loads as it is, and every field is documented."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_copied_to_dot_env_loads_with_the_defaults(tmp_path, monkeypatch):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:  # the autouse fixture sets some; the file alone must be enough
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings()
    assert settings.usd_brl_fallback is None
    assert settings.telegram_webhook_url is None
    assert settings.telegram_bot_token is None
    assert settings.answer_strategy == "reader"
    assert settings.retrain_cron == "0 3 * * *"


def test_every_setting_is_documented_in_env_example_and_readme():
    env = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name.upper() for name in Settings.model_fields
               if f"{name.upper()}=" not in env or f"`{name.upper()}`" not in readme]
    assert missing == []


def test_a_malformed_number_is_still_refused(monkeypatch):
    monkeypatch.setenv("USD_BRL_FALLBACK", "cinco reais")
    with pytest.raises(ValidationError, match="usd_brl_fallback"):
        Settings()


def test_the_user_hash_salt_is_made_once_readable_only_by_its_owner(tmp_path):
    settings = Settings(DATA_DIR=tmp_path / "data")
    salt = settings.salt()
    path = tmp_path / "data" / ".user_salt"
    assert len(salt) == 64 and (path.stat().st_mode & 0o777) == 0o600
    assert Settings(DATA_DIR=tmp_path / "data").salt() == salt  # kept, not made again
    assert [p.name for p in path.parent.iterdir()] == [".user_salt"]  # no temp file left beside it


def _salt_of(data_dir: str, barrier, out) -> None:
    barrier.wait()  # every process asks at the same moment
    out.put(Settings(DATA_DIR=data_dir).salt())


def test_processes_that_start_together_share_one_salt(tmp_path):
    # each process makes its own candidate; the first one hard-linked into place is everybody's
    import multiprocessing

    context = multiprocessing.get_context("fork")
    n = 8
    barrier, out = context.Barrier(n), context.Queue()
    workers = [context.Process(target=_salt_of, args=(str(tmp_path / "data"), barrier, out)) for _ in range(n)]
    for worker in workers:
        worker.start()
    salts = [out.get(timeout=60) for _ in range(n)]
    for worker in workers:
        worker.join(timeout=60)
    assert len(set(salts)) == 1 and len(salts[0]) == 64
    assert [p.name for p in (tmp_path / "data").iterdir()] == [".user_salt"]


def test_create_once_keeps_the_first_file(tmp_path):
    from pipeline.core.files import create_once

    path = tmp_path / "x" / "secret"
    assert create_once(path, "first", mode=0o600) == "first"
    assert create_once(path, "second", mode=0o600) == "first"
    assert (path.stat().st_mode & 0o777) == 0o600 and sorted(p.name for p in path.parent.iterdir()) == ["secret"]

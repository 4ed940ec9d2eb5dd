"""Shared test setup: no network, all user data under tmp_path, models loaded offline."""

from __future__ import annotations

import os

# Must be set before transformers / huggingface_hub are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from pipeline.settings import Settings, get_settings
from tests.fixtures.postgres import postgres_server, postgres_url  # noqa: F401  (shared, one server per run)

_SETTINGS_VARS = [name.upper() for name in Settings.model_fields]


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory):
    """Derived models (ONNX exports) shared by the whole run, as MODEL_CACHE_DIR lets deployments do."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch, model_cache_dir):
    """Point every setting at tmp_path and forget any real secret of the developer's environment."""
    for name in _SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(model_cache_dir))
    # Tests answer from the bundled sample corpus, asked for by name (there is no silent fallback to it).
    monkeypatch.setenv("DOCUMENTS_DIR", "sample")
    monkeypatch.chdir(tmp_path)  # a developer's .env in the repo root must not leak into tests
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(DATA_DIR=tmp_path / "data")

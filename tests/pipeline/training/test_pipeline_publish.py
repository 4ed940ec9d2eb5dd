"""Push to the Hub through a recorded-call fake of HfApi (bound to the real method signatures)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline.training.publish import PublishError, push_run
from pipeline.settings import Settings
from pipeline.training.args import TrainArgs
from pipeline.training.train import main
from tests.fakes.hub_server import FakeHfApi


@pytest.fixture(scope="module")
def trained(tiny_llm_dir, sample_qa_records, session_settings, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("publish") / "data"
    result = main(TrainArgs(model=str(tiny_llm_dir), data=str(session_settings.qa_dir), max_steps=2,
                            batch_size=4, max_train_examples=4, max_val_examples=2, max_length=384),
                  settings=Settings(DATA_DIR=data_dir, DOCUMENTS_DIR="sample"))
    return data_dir, result


def test_push_creates_a_private_repo_and_uploads_both_with_a_model_card(trained, tmp_path):
    data_dir, result = trained
    settings = Settings(DATA_DIR=data_dir, HF_TOKEN="hf_test_token", HF_REPO_ID="alguem/oraculo-lora")
    hub = FakeHfApi(store=tmp_path)
    url = push_run(settings, "latest", what="both", api=hub)
    assert url == "https://hub.invalid/alguem/oraculo-lora"
    assert [name for name, _ in hub.calls] == ["create_repo", "upload_folder"]
    create = hub.calls[0][1]
    assert create["repo_id"] == "alguem/oraculo-lora" and create["private"] is True and create["exist_ok"]
    files = hub.repos["alguem/oraculo-lora"]["files"]
    assert {"README.md", "model.safetensors", "config.json", "adapter/adapter_model.safetensors",
            "adapter/adapter_config.json", "oraculo_metadata.json"} <= set(files)
    card = (hub.uploaded / "README.md").read_text()
    assert "license: apache-2.0" in card and f"base_model: {result['base_model']}" in card
    assert str(result["metrics"]["val_loss"]) in card and 'subfolder="adapter"' in card
    assert json.loads((hub.uploaded / "oraculo_metadata.json").read_text())["run_id"] == result["run_id"]
    assert (data_dir / "models" / "merged" / result["version"] / "config.json").is_file()  # merged on the way


def test_push_of_the_adapter_only_respects_hf_private(trained, tmp_path):
    data_dir, _ = trained
    settings = Settings(DATA_DIR=data_dir, HF_TOKEN="hf_test_token", HF_REPO_ID="alguem/publico",
                        HF_PRIVATE="false")
    hub = FakeHfApi(store=tmp_path)
    push_run(settings, "latest", what="adapter", api=hub)
    assert hub.calls[0][1]["private"] is False
    files = hub.repos["alguem/publico"]["files"]
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files


def test_without_a_token_nothing_is_touched(trained, tmp_path):
    data_dir, _ = trained
    hub = FakeHfApi(store=tmp_path)
    with pytest.raises(PublishError, match="HF_TOKEN"):
        push_run(Settings(DATA_DIR=data_dir, HF_REPO_ID="alguem/x"), "latest", api=hub)
    assert hub.calls == []


def test_cli_push_without_token_exits_non_zero_with_a_clear_message(trained, tmp_path):
    data_dir, _ = trained
    env = {"DATA_DIR": str(data_dir), "HF_REPO_ID": "alguem/x", "PATH": "/usr/bin:/bin",
           "HF_HUB_OFFLINE": "1"}
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "push", "latest"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "HF_TOKEN is not set" in proc.stderr
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before

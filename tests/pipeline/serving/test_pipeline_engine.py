"""Publishing a promoted LoRA adapter to the answer engine: vLLM's runtime adapter routes (a fake on 127.0.0.1
that records the calls), a publish command, failures that keep the previous adapter, the bot's next answer
calling the new name, and the nightly job telling the admins."""

from __future__ import annotations

import json
import shutil
import socket
import sys

import pytest

from bot import admin_texts
from pipeline.answering.answer import Answerer
from pipeline.serving.engine import EngineError, publish_adapter
from pipeline.serving.versions import engine_pointer, published_adapter, served_model
from pipeline.settings import Settings
from tests.fakes.vllm_server import FakeVLLM

QUESTION = "Onde é sediada a UFMS?"


def make_adapter(settings: Settings, name: str):
    folder = settings.models_dir / "adapters" / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    (folder / "metadata.json").write_text(json.dumps({"kind": "llm", "version": name}))
    return folder


def vllm_settings(tmp_path, vllm: FakeVLLM, **overrides) -> Settings:
    values = dict(DATA_DIR=tmp_path / "data", LLM_BACKEND="openai", OPENAI_BASE_URL=vllm.base_url,
                  OPENAI_ANSWER_MODEL=vllm.base_model, ENGINE_PUBLISH="vllm", OPENAI_ANSWER_MAX_RETRIES=0)
    values.update(overrides)
    return Settings(**values)


def test_publishing_loads_the_new_adapter_then_names_it_then_unloads_the_previous(tmp_path):
    with FakeVLLM() as vllm:
        settings = vllm_settings(tmp_path, vllm, OPENAI_API_KEY="sk-engine-key-123")
        first, second = make_adapter(settings, "run1"), make_adapter(settings, "run2")
        assert served_model(settings) == "base"  # nothing published yet: the configured model
        result = publish_adapter(settings, first)
        assert result["name"] == "oraculo-run1" and result["previous"] is None
        assert vllm.calls_to("/v1/load_lora_adapter") == [{"lora_name": "oraculo-run1",
                                                           "lora_path": str(first.resolve())}]
        assert vllm.calls[-1]["authorization"] == "Bearer sk-engine-key-123"
        result = publish_adapter(settings, second)
        assert [c["path"] for c in vllm.calls] == ["/v1/load_lora_adapter"] * 2 + ["/v1/unload_lora_adapter"]
        assert vllm.calls_to("/v1/unload_lora_adapter") == [{"lora_name": "oraculo-run1"}]
        assert result["unloaded"] == "oraculo-run1" and list(vllm.adapters) == ["oraculo-run2"]
        assert served_model(settings) == "oraculo-run2" and published_adapter(settings)["adapter"] == "run2"


def test_the_engine_path_maps_the_adapters_folder_as_the_engine_sees_it(tmp_path):
    with FakeVLLM() as vllm:
        settings = vllm_settings(tmp_path, vllm, ENGINE_ADAPTERS_DIR="/srv/engine/adapters/")
        with pytest.raises(EngineError, match="No adapter found for /srv/engine/adapters/run1"):
            publish_adapter(settings, make_adapter(settings, "run1"))
        assert vllm.calls_to("/v1/load_lora_adapter")[0]["lora_path"] == "/srv/engine/adapters/run1"


def test_the_bots_next_answer_calls_the_published_adapter(tmp_path, retriever):
    with FakeVLLM() as vllm:
        settings = vllm_settings(tmp_path, vllm, ANSWER_STRATEGY="generative")
        answerer = Answerer(settings, retriever=retriever)
        answerer.maybe_refresh()
        answerer.answer(QUESTION)
        publish_adapter(settings, make_adapter(settings, "run1"))
        answerer.maybe_refresh()  # what the service does before every question: one stat per pointer
        answer = answerer.answer(QUESTION, on_partial=lambda text: None)  # streamed, as in the bot
        models = [c["model"] for c in vllm.calls_to("/v1/chat/completions")]
        assert models == ["base", "oraculo-run1"]
        assert answer.notice == "" and answer.text  # the fake's reply is not grounded: the extractive answer


@pytest.mark.parametrize("status,message,expected", [
    (400, "LoRA rank 64 is greater than max_lora_rank 16.", "max_lora_rank"),
    (500, "CUDA out of memory", "500 CUDA out of memory"),
])
def test_a_refused_load_keeps_the_previous_adapter_named_and_loaded(tmp_path, retriever, status, message,
                                                                    expected):
    with FakeVLLM() as vllm:
        settings = vllm_settings(tmp_path, vllm, ANSWER_STRATEGY="generative")
        publish_adapter(settings, make_adapter(settings, "run1"))
        stamp = engine_pointer(settings).stat().st_mtime_ns
        vllm.fail_next("/v1/load_lora_adapter", status, message)
        with pytest.raises(EngineError, match=expected):
            publish_adapter(settings, make_adapter(settings, "run2"))
        assert served_model(settings) == "oraculo-run1" and engine_pointer(settings).stat().st_mtime_ns == stamp
        assert vllm.calls_to("/v1/unload_lora_adapter") == [] and list(vllm.adapters) == ["oraculo-run1"]
        Answerer(settings, retriever=retriever).answer(QUESTION)
        assert vllm.calls_to("/v1/chat/completions")[-1]["model"] == "oraculo-run1"


def test_runtime_updates_off_or_engine_down_are_errors_that_say_why(tmp_path):
    with FakeVLLM() as vllm:
        vllm.runtime_updates = False
        settings = vllm_settings(tmp_path, vllm)
        with pytest.raises(EngineError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING"):
            publish_adapter(settings, make_adapter(settings, "run1"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    settings = Settings(DATA_DIR=tmp_path / "data", ENGINE_PUBLISH="vllm", ENGINE_URL=f"http://127.0.0.1:{port}",
                        ENGINE_TIMEOUT_S=2)
    with pytest.raises(EngineError, match="ConnectError"):
        publish_adapter(settings, settings.models_dir / "adapters" / "run1")
    assert published_adapter(settings) is None


def test_an_unload_failure_still_publishes_and_is_reported(tmp_path):
    with FakeVLLM() as vllm:
        settings = vllm_settings(tmp_path, vllm)
        publish_adapter(settings, make_adapter(settings, "run1"))
        vllm.fail_next("/v1/unload_lora_adapter", 500, "engine busy")
        result = publish_adapter(settings, make_adapter(settings, "run2"))
        assert served_model(settings) == "oraculo-run2" and "engine busy" in result["unload_error"]
        assert set(vllm.adapters) == {"oraculo-run1", "oraculo-run2"}


def test_the_publish_command_gets_the_adapter_folder_and_name_and_its_failure_changes_nothing(tmp_path):
    script = tmp_path / "publish.py"
    log = tmp_path / "published.txt"
    script.write_text("import sys\n"
                      "if 'bad' in sys.argv[2]:\n    sys.exit('conversion to GGUF failed')\n"
                      f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n")
    settings = Settings(DATA_DIR=tmp_path / "data", ENGINE_PUBLISH="command",
                        ENGINE_PUBLISH_COMMAND=f"{sys.executable} {script}")
    good = make_adapter(settings, "run1")
    assert publish_adapter(settings, good)["name"] == "oraculo-run1"
    assert log.read_text() == f"{good.resolve()} oraculo-run1\n"
    with pytest.raises(EngineError, match="exited with 1: conversion to GGUF failed"):
        publish_adapter(settings, make_adapter(settings, "bad"))
    assert served_model(settings) == "oraculo-run1"


@pytest.fixture
def retrain_settings(tmp_path, session_settings, sample_index, smollm2):
    data = tmp_path / "data"
    shutil.copytree(session_settings.index_dir, data / "index")
    shutil.copytree(session_settings.qa_dir, data / "data_qa")

    def make(vllm: FakeVLLM) -> Settings:
        return vllm_settings(tmp_path, vllm, ANSWER_STRATEGY="extractive", ADMIN_IDS="9009",
                             LLM_MODEL=str(session_settings.models_dir / "smollm2-135m-instruct"),
                             RETRAIN_MAX_STEPS=1, RETRAIN_BATCH_SIZE=1, RETRAIN_MAX_EXAMPLES=2,
                             RETRAIN_EVAL_QUESTIONS=12, RETRAIN_TOLERANCE=1.0)

    return make


def test_the_nightly_job_publishes_the_promoted_adapter_and_a_refusal_reaches_the_admins(retrain_settings):
    """Two runs: the first adapter goes to the engine; the engine refuses the second, which stays promoted
    in DATA_DIR while the engine keeps answering with the first, and the admins' report says so."""
    from pipeline.loop.nightly import retrain_job

    with FakeVLLM() as vllm:
        settings = retrain_settings(vllm)
        first = retrain_job(settings)
        assert first.ok and first.promoted["adapter"], first.error
        [engine_step] = [s for s in first.steps if s.name == "engine"]
        assert served_model(settings) == engine_step.detail["name"] == f"oraculo-{first.serving_after['adapter']}"
        assert (f"motor de respostas ({engine_step.seconds:.0f} s)", f"{engine_step.detail['name']} em uso no motor "
                "(vllm)") in admin_texts.retrain_step_lines(first)
        vllm.fail_next("/v1/load_lora_adapter", 400, "LoRA rank 64 is greater than max_lora_rank 16.")
        second = retrain_job(settings)  # no exception: the promotion stands, only the engine refused
    assert second.promoted["adapter"] and second.failed_step == "engine" and not second.ok
    assert served_model(settings) == engine_step.detail["name"]  # the previous adapter still answers
    assert list(vllm.adapters) == [engine_step.detail["name"]] and not vllm.calls_to("/v1/unload_lora_adapter")
    message = admin_texts.job_finished(title=admin_texts.RETRAIN_SCHEDULED_TITLE, ok=second.ok, duration_s=second.duration_s,
                                 steps=admin_texts.retrain_step_lines(second), error=second.error)
    assert "motor de respostas" in message and f"segue em uso {engine_step.detail['name']}" in message
    assert "max_lora_rank" in message

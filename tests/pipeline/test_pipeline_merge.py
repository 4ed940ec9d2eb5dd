"""Merge: the stand-alone model gives the adapter model's logits and loads without peft."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.llm import EMBEDDED_DIR_NAME, LocalLLM
from pipeline.merge import load_adapter_model, merge_run
from pipeline.settings import Settings
from pipeline.train import TrainArgs, main

PROMPT = [{"role": "user", "content": "Contexto:\n[1] UFMS\nA UFMS fica em Campo Grande.\n\nPergunta: Onde fica?"}]


def _logits(model, tokenizer):
    inputs = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits


def _check_merge(settings, result, atol):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = merge_run(settings, result["run_id"])
    assert target == settings.models_dir / "merged" / result["version"]
    assert (target / "model.safetensors").is_file() and (target / "tokenizer_config.json").is_file()
    assert not (target / "adapter_config.json").exists()
    assert json.loads((target / "metadata.json").read_text())["run_id"] == result["run_id"]
    tokenizer = AutoTokenizer.from_pretrained(target)
    merged = AutoModelForCausalLM.from_pretrained(target).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    adapter = load_adapter_model(result["adapter_dir"], result)
    base = AutoModelForCausalLM.from_pretrained(result["base_path"]).eval()
    merged_logits, adapter_logits = _logits(merged, tokenizer), _logits(adapter, tokenizer)
    assert torch.allclose(merged_logits, adapter_logits, atol=atol), (merged_logits - adapter_logits).abs().max()
    assert not torch.allclose(merged_logits, _logits(base, tokenizer), atol=atol)  # the adapter did something
    assert merge_run(settings, "latest") == target  # idempotent
    return target


def test_merged_tiny_model_matches_the_adapter(tiny_llm_dir, sample_qa_records, session_settings, tmp_path):
    settings = Settings(DATA_DIR=tmp_path / "data")
    result = main(TrainArgs(model=str(tiny_llm_dir), data=str(session_settings.qa_dir), max_steps=3,
                            batch_size=4, max_train_examples=4, max_val_examples=2, lr=5e-2,
                            target_modules="all-linear", max_length=384), settings=settings)
    _check_merge(settings, result, atol=1e-5)


def test_merge_of_an_unknown_run_is_a_lookup_error(tmp_path):
    with pytest.raises(LookupError):
        merge_run(Settings(DATA_DIR=tmp_path / "data"), "latest")


def test_real_embedded_model_trains_merges_and_answers_without_peft(smollm2, sample_qa_records,
                                                                     session_settings, tmp_path):
    """The one short run on the real SmolLM2-135M (materialised from its GGUF by the session fixture)."""
    settings = Settings(DATA_DIR=tmp_path / "data")
    base = session_settings.models_dir / EMBEDDED_DIR_NAME
    result = main(TrainArgs(model=str(base), data=str(session_settings.qa_dir), max_steps=1, batch_size=2,
                            max_train_examples=2, max_val_examples=1, lr=1e-3, max_length=640), settings=settings)
    assert result["metrics"]["val_loss"] is not None and result["metrics"]["tokens_per_s"] > 0
    target = _check_merge(settings, result, atol=1e-4)
    llm = LocalLLM.from_pretrained(target)
    answer = llm.generate(PROMPT, max_new_tokens=8)
    assert isinstance(answer, str) and answer

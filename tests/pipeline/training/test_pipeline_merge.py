"""Merge: the stand-alone model gives the adapter model's logits and loads without peft."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from pipeline.llm.local import LocalLLM
from pipeline.llm.resolve import EMBEDDED_DIR_NAME
from pipeline.training.merge import load_adapter_model, merge_run
from pipeline.settings import Settings
from pipeline.training.args import TrainArgs
from pipeline.training.train import main

PROMPT = [{"role": "user", "content": "Contexto:\n[1] UFMS\nA UFMS fica em Campo Grande.\n\nPergunta: Onde fica?"}]


def _logits(model, tokenizer):
    inputs = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits


def rounding_budget(model, tokenizer, logits) -> float:
    """How far two correct evaluations of this model's function may differ in the precision it computes in.

    Merging computes ``x @ (W + s·B·A)`` where the adapter model computes ``x @ W + s·(x @ A) @ B``, and rounds
    each merged weight once: mathematically the same function, so merged and adapter logits may differ only by
    float rounding, which piles up through the layers (more for a 30-layer model than for a 2-layer one, more on
    some CPUs' kernels than others). How much it piles up is measured here, not guessed: the same model run in
    float64 is exact for this purpose, and ``noise`` is the largest error of the run in the model's own dtype.
    The merged model makes an error of the same kind and size, and the one extra rounding of each merged weight
    is of the size of the rounding inside each product; by the triangle inequality the two runs then differ by
    at most about 3 x noise. 4 x noise leaves room for the maximum of one error being a little larger than the
    other's; a wrong merge (a missed module, a wrong scale) is off by the adapter's whole effect, far above it.
    """
    exact = _logits(copy.deepcopy(model).to(torch.float64), tokenizer)
    noise = (logits.to(torch.float64) - exact).abs().max().item()
    # At least a few units in the last place of the largest logit: a model whose rounding happens to cancel out
    # on this prompt must not demand more than its dtype can give.
    floor = 4 * torch.finfo(logits.dtype).eps * logits.abs().max().item()
    return max(4 * noise, floor)


def _check_merge(settings, result):
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
    # Compared in the precision the models compute in (float32 for these checkpoints; bf16 would get a bf16 budget).
    assert merged.dtype == adapter.dtype == base.dtype
    merged_logits, adapter_logits = _logits(merged, tokenizer), _logits(adapter, tokenizer)
    assert merged_logits.dtype == adapter_logits.dtype == merged.dtype
    atol = rounding_budget(adapter, tokenizer, adapter_logits)
    difference = (merged_logits - adapter_logits).abs().max().item()
    assert difference <= atol, (difference, atol)
    assert (merged_logits - _logits(base, tokenizer)).abs().max().item() > atol  # the adapter did something
    assert merge_run(settings, "latest") == target  # idempotent
    return target


def test_merged_tiny_model_matches_the_adapter(tiny_llm_dir, sample_qa_records, session_settings, tmp_path):
    settings = Settings(DATA_DIR=tmp_path / "data")
    result = main(TrainArgs(model=str(tiny_llm_dir), data=str(session_settings.qa_dir), max_steps=3,
                            batch_size=4, max_train_examples=4, max_val_examples=2, lr=5e-2,
                            target_modules="all-linear", max_length=384), settings=settings)
    _check_merge(settings, result)


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
    target = _check_merge(settings, result)
    llm = LocalLLM.from_pretrained(target)
    answer = llm.generate(PROMPT, max_new_tokens=8)
    assert isinstance(answer, str) and answer

"""scripts/average_adapters.py: the averaged adapter is exactly the mean of the two models, loaded by PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from transformers import BertConfig, BertForQuestionAnswering  # noqa: E402

from scripts.average_adapters import average_adapters  # noqa: E402

TINY = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=32)


def base() -> BertForQuestionAnswering:
    torch.manual_seed(0)
    return BertForQuestionAnswering(TINY).eval()


def adapter(folder: Path, seed: int, **lora) -> Path:
    model = get_peft_model(base(), LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value", "dense"],
                                              modules_to_save=["qa_outputs"], **lora))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:  # a trained adapter: B is no longer zero
                parameter.copy_(torch.randn_like(parameter) * 0.1)
    model.save_pretrained(folder)
    return folder


def merged_state(folder: Path) -> dict:
    merged = PeftModel.from_pretrained(base(), folder).merge_and_unload()
    return {k: v.detach().clone() for k, v in merged.state_dict().items()}


@pytest.mark.parametrize("weight", [0.5, 0.3])
@pytest.mark.parametrize("rslora", [False, True])
def test_the_average_is_the_weighted_mean_of_the_two_merged_models(tmp_path, weight, rslora):
    first, second = adapter(tmp_path / "a", 1, use_rslora=rslora), adapter(tmp_path / "b", 2, use_rslora=rslora)
    out = average_adapters(first, second, tmp_path / "soup", weight=weight)
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    soup, a, b = merged_state(out), merged_state(first), merged_state(second)
    changed = 0
    for name, value in soup.items():
        expected = weight * a[name] + (1 - weight) * b[name]
        # float32: merged weights are O(1) sums of a handful of products, rounded at ~1e-7 each; 1e-5 leaves
        # room for that on every CPU and is still a thousand times smaller than the deltas (~1e-2)
        assert torch.allclose(value, expected, atol=1e-5), name
        changed += not torch.equal(a[name], b[name])
    assert changed >= 2 * TINY.num_hidden_layers  # the LoRA layers and the head really differed


def test_adapters_of_different_shapes_or_kinds_are_refused_and_nothing_is_written(tmp_path):
    first = adapter(tmp_path / "a", 1)
    other = get_peft_model(base(), LoraConfig(r=4, lora_alpha=4, target_modules=["query"]))
    other.save_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match="differ in .*r"):
        average_adapters(first, tmp_path / "b", tmp_path / "soup")
    with pytest.raises(ValueError, match="not a PEFT adapter"):
        average_adapters(first, tmp_path, tmp_path / "soup")
    with pytest.raises(ValueError, match="exists"):
        average_adapters(first, first, tmp_path / "a")
    assert not (tmp_path / "soup").exists() and not (tmp_path / "soup.partial").exists()


def test_the_rehearsal_sample_comes_along_but_not_the_first_adapters_abstention_model(tmp_path):
    first, second = adapter(tmp_path / "a", 1), adapter(tmp_path / "b", 2)
    (first / "rehearsal.jsonl").write_text('{"question": "q"}\n', encoding="utf-8")
    (first / "abstention.json").write_text("{}", encoding="utf-8")  # calibrated on the first adapter's scores
    out = average_adapters(first, second, tmp_path / "soup")
    assert (out / "rehearsal.jsonl").read_text(encoding="utf-8") == '{"question": "q"}\n'
    assert not (out / "abstention.json").exists()

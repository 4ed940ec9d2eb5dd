"""LoRA training on a tiny random Llama: exact fast loss, loss falls, only the adapter moves, bf16, resume, crash."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.training.merge import load_adapter_model, resolve_run
from pipeline.settings import Settings
from pipeline.training.args import TrainArgs
from pipeline.training.train import _AnswerLoss, main, use_bf16
from pipeline.training.examples import IGNORE_INDEX, build_examples, collate, length_grouped_batches, split_by_document
from storage import repository
from storage.db import Database


@pytest.fixture
def train_settings(tmp_path) -> Settings:
    return Settings(DATA_DIR=tmp_path / "data")


@pytest.fixture
def tiny_args(tiny_llm_dir, sample_qa_records, session_settings):
    def make(**overrides) -> TrainArgs:
        values = dict(model=str(tiny_llm_dir), data=str(session_settings.qa_dir), batch_size=4,
                      max_train_examples=8, max_val_examples=4, lr=3e-2, lora_dropout=0.0,
                      target_modules="all-linear", eval_every=2, save_every=2, patience=0, max_length=384)
        values.update(overrides)
        return TrainArgs(**values)
    return make


def _runs(settings):
    database = Database(settings.database_url)
    database.upgrade()
    with database.session() as session:
        runs = [(r.id, r.status, r.adapter_path, r.error) for r in repository.list_training_runs(session)]
    database.dispose()
    return runs


def test_examples_label_only_the_answer_and_split_by_document(tiny_llm_dir, sample_qa_records,
                                                               sample_documents):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm_dir)
    examples, dropped = build_examples(sample_qa_records, sample_documents, tokenizer, max_length=384,
                                       eos_id=tokenizer.sep_token_id)
    assert examples and dropped["no_context"] == 0
    def encode(record):
        return build_examples([record], sample_documents, tokenizer, max_length=384,
                              eos_id=tokenizer.sep_token_id)[0]

    record = next(r for r in sample_qa_records if encode(r))
    first = encode(record)[0]
    answer = [t for t in first.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(answer, skip_special_tokens=True) == tokenizer.decode(
        tokenizer(record["answer"], add_special_tokens=False)["input_ids"], skip_special_tokens=True)
    assert answer[-1] == tokenizer.sep_token_id and first.labels[0] == IGNORE_INDEX
    prompt = tokenizer.decode(first.input_ids[:len(first.labels) - len(answer)])
    assert "contexto" in prompt.lower() and "pergunta" in prompt.lower()  # the serving prompt
    train, val = split_by_document(examples, val_fraction=0.25, seed=0)
    assert val and not {e.document for e in train} & {e.document for e in val}
    batches = length_grouped_batches([len(e.input_ids) for e in train], batch_size=4, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(train)))
    assert batches == length_grouped_batches([len(e.input_ids) for e in train], batch_size=4, seed=0, epoch=0)


def test_padded_batch_without_mask_and_answer_only_head_equal_each_example_alone(tiny_llm_dir, sample_qa_records,
                                                                                  sample_documents):
    """The speed tricks (no attention mask on right padding, LM head on answer positions) change no loss."""
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm_dir)
    examples, _ = build_examples(sample_qa_records, sample_documents, tokenizer, max_length=384,
                                 eos_id=tokenizer.sep_token_id)
    by_length = sorted(examples, key=lambda e: len(e.input_ids))
    chosen = [by_length[0], by_length[len(by_length) // 2], by_length[-1]]
    assert len({len(e.input_ids) for e in chosen}) == 3  # a padded batch
    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir).eval()
    batch = collate(chosen, pad_id=tokenizer.pad_token_id)
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        fast, n_fast = _AnswerLoss.make(model, True)(**batch)
        full, n_full = _AnswerLoss.make(model, False)(**batch)
        expected, n_expected = torch.tensor(0.0), 0
        for example in chosen:  # one at a time: no padding at all, full logits
            logits = model(input_ids=torch.tensor([example.input_ids])).logits[0, :-1]
            target = torch.tensor(example.labels[1:])
            keep = target != IGNORE_INDEX
            expected += F.cross_entropy(logits[keep], target[keep], reduction="sum")
            n_expected += int(keep.sum())
    assert int(n_fast) == int(n_full) == n_expected == sum(e.n_answer_tokens for e in chosen)
    assert torch.allclose(fast, expected, rtol=1e-4) and torch.allclose(full, expected, rtol=1e-4)


def test_precision_choice_and_bf16_training_saves_a_float32_adapter(tiny_args, train_settings):
    from safetensors.torch import load_file

    assert use_bf16("fp32") is False and use_bf16("bf16") is True
    with pytest.raises(ValueError, match="precision"):
        use_bf16("fp8")
    result = main(tiny_args(max_steps=3, precision="bf16"), settings=train_settings)
    assert result["device"]["bf16"] is True and result["metrics"]["steps"] == 3
    assert 0 < result["metrics"]["train_answer_tokens"] < result["metrics"]["train_tokens"]
    weights = load_file(f"{result['adapter_dir']}/adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(w.dtype == torch.float32 for w in weights.values())
    assert any(w.abs().sum() > 0 for w in lora_b)  # LoRA B starts at zero: bf16 training moved it


def test_training_lowers_the_loss_and_moves_only_the_adapter(tiny_args, tiny_llm_dir, train_settings):
    from transformers import AutoModelForCausalLM

    losses = []
    result = main(tiny_args(max_steps=12, max_train_examples=4, max_val_examples=4),
                  settings=train_settings, on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < losses[0] - 0.05, losses
    adapter_dir, metadata = resolve_run(train_settings, "latest")
    assert str(adapter_dir) == result["adapter_dir"] and metadata["metrics"]["steps"] == 12
    assert 1 <= metadata["data"]["val"] <= 4 and metadata["hyperparameters"]["lr"] == 3e-2
    assert metadata["base_model"] == str(tiny_llm_dir) and len(metadata["data"]["hash"]) == 64
    assert (train_settings.data_dir / "tensorboard" / metadata["version"]).is_dir()
    base = AutoModelForCausalLM.from_pretrained(tiny_llm_dir).state_dict()
    tuned = load_adapter_model(adapter_dir, metadata)
    for name, weight in tuned.named_parameters():
        if "lora_B" in name:
            assert weight.abs().sum() > 0, name  # starts at zero: it moved
        elif "lora_" not in name:
            key = name.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(weight, base[key]), name
    [(run_id, status, path, _)] = _runs(train_settings)
    assert status == "succeeded" and path == str(adapter_dir) and metadata["run_id"] == run_id


def test_resume_continues_from_the_checkpoint_and_a_crash_registers_nothing(tiny_args, train_settings):
    straight = main(tiny_args(max_steps=4), settings=train_settings)

    def crash(step, loss):
        if step == 3:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        main(tiny_args(max_steps=4), settings=train_settings, on_step=crash)
    runs = _runs(train_settings)
    crashed_id, status, path, error = runs[0]
    assert status == "failed" and path is None and "power cut" in error
    adapters = sorted(p.name for p in (train_settings.models_dir / "adapters").iterdir())
    assert adapters == [straight["version"]]  # no adapter of the crashed run, not even a staging folder
    checkpoint = train_settings.data_dir / "training" / f"run-{crashed_id}" / "checkpoint-2"
    assert checkpoint.is_dir()

    steps = []
    resumed = main(tiny_args(max_steps=4, resume="latest"), settings=train_settings,
                   on_step=lambda step, loss: steps.append(step))
    assert steps == [3, 4] and resumed["resumed_from"] == str(checkpoint)
    a = load_adapter_model(*resolve_run(train_settings, straight["run_id"])).state_dict()
    b = load_adapter_model(*resolve_run(train_settings, resumed["run_id"])).state_dict()
    lora = [k for k in a if "lora_" in k]
    assert lora and all(torch.allclose(a[k], b[k], atol=1e-6) for k in lora)


def test_resume_refuses_a_checkpoint_of_other_data(tiny_args, train_settings, tmp_path, sample_qa_records):
    main(tiny_args(max_steps=2), settings=train_settings)  # checkpoint only below max_steps: none here
    with pytest.raises(FileNotFoundError):
        main(tiny_args(max_steps=2, resume="latest"), settings=train_settings)
    main(tiny_args(max_steps=3), settings=train_settings)
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in sample_qa_records[:30]))
    with pytest.raises(ValueError, match="other data"):
        main(tiny_args(max_steps=3, resume="latest", data=str(other)), settings=train_settings)


def test_early_stopping_keeps_the_best_adapter(tiny_args, train_settings):
    result = main(tiny_args(max_steps=40, lr=3.0, eval_every=1, patience=2), settings=train_settings)
    metrics = result["metrics"]
    history = [loss for _, loss in metrics["val_loss_history"]]
    assert metrics["stopped_early"] and metrics["steps"] < 40
    assert metrics["val_loss"] == min(history)

"""Benchmark `oraculo train` against a plain `transformers.Trainer` + peft baseline, same data, same machine.

What is compared, and how it is counted:

- Same data: the exact train/validation examples `oraculo train` builds (the sample corpus with the offline QA
  generator unless ``--data-dir`` has QA records), same tokens per example (chat template + answer + end token).
- Same work: LoRA r=8, alpha=16, dropout 0.05 on q_proj/v_proj, AdamW at the same lr with linear decay and no
  warm-up, the same batch size and number of optimiser updates (``--steps``; 8 x 8 = one epoch of the 63 sample
  examples), seed 0, no gradient accumulation.
- tokens/s = real (non-padding) tokens of every batch trained on / seconds of the training loop. Both sides
  count the attention-mask ones of the batches they were given; validation and model loading are not timed.
- Peak memory: max RSS of the process (its own process per run) right after training; on CUDA, max allocated.
- Quality: both final adapters are loaded the same way (float32 base + adapter) and scored by the same code:
  mean loss on the answer tokens of the validation split (documents never seen in training).

The baseline is the standard transformers/peft recipe: ``AutoModelForCausalLM`` in float32, ``get_peft_model``,
``Trainer`` with default ``TrainingArguments`` (AdamW, random sampler, fp32, torch's default threads, which is
the core count here) and ``DataCollatorForLanguageModeling(mlm=False)`` (dynamic padding to the longest of the
batch). Loss on every token, as a Trainer script does. One fix a careful author makes: labels come from the
attention mask, not from the pad id, because SmolLM2's pad token *is* ``<|im_end|>`` and the stock collator
would otherwise hide every end-of-turn token from the loss (the model would never learn to stop).

`oraculo train` ("ours") differs in how it computes, not in what it learns: length-grouped batches, no
attention mask (right padding under causal attention), LM head and loss on the answer tokens only, and on a
CPU with AVX512-BF16/AMX (or a bf16 GPU) the frozen base in bf16 under autocast with float32 LoRA weights.
``--ablation`` adds one run of ours in float32 (``precision="fp32"``) to show what bf16 contributes.
Runs go in ABBA order so that load changes on a shared machine hit both; the load average before each run is
printed. Prints one table and, last, a JSON line.

Example::

    python scripts/bench_train.py --steps 8 --batch-size 8 --ablation     # ~10 min on 2 idle CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _prepare(data_dir: Path, model: str):
    from pipeline.loop.jobs import generate_qa_job
    from pipeline.qa.records import qa_records
    from pipeline.llm.resolve import resolve_llm
    from pipeline.settings import Settings

    settings = Settings(DATA_DIR=data_dir, DOCUMENTS_DIR="sample")  # the bundled sample corpus, asked for
    if not qa_records(settings):
        generate_qa_job(settings)
    return settings, resolve_llm(model, models_dir=settings.models_dir)


def _split(settings, base, args):
    """The exact train/val examples `oraculo train` uses (same code path)."""
    from transformers import AutoTokenizer

    from pipeline.documents.load import load_documents
    from pipeline.qa.records import qa_records
    from pipeline.training.examples import build_examples, split_by_document

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    examples, _ = build_examples(qa_records(settings), load_documents(settings.documents_dir), tokenizer,
                                 max_length=args.max_length)
    train, val = split_by_document(examples, val_fraction=0.2, seed=args.seed)
    return tokenizer, train, val


def _val_loss(peft_model, tokenizer, val, batch_size):
    """Mean answer-token loss of ``peft_model`` (float32) on ``val``: the one scorer of both sides."""
    import torch

    from pipeline.training.train import _AnswerLoss
    from pipeline.training.examples import collate

    module = _AnswerLoss.make(peft_model.float(), True).eval()
    total = n_total = 0.0
    with torch.inference_mode():
        for i in range(0, len(val), batch_size):
            loss, n = module(**collate(val[i:i + batch_size], pad_id=tokenizer.pad_token_id or 0))
            total, n_total = total + float(loss), n_total + int(n)
    return total / n_total


def run_ours(args) -> dict:
    import resource

    from pipeline.training.args import TrainArgs
    from pipeline.training.train import main

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    settings, base = _prepare(args.data_dir, args.model)
    result = main(TrainArgs(model=str(base), max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            max_length=args.max_length, seed=args.seed, eval_every=10**9, save_every=10**9,
                            patience=0, precision=args.precision), settings=settings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m = result["metrics"]
    tokenizer, _, val = _split(settings, base, args)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)), result["adapter_dir"])
    return {"tokens_per_s": m["tokens_per_s"], "train_s": result["timings"]["train_s"],
            "val_loss": _val_loss(tuned, tokenizer, val, args.batch_size), "peak_rss_mb": peak,
            "n_train": result["data"]["train"], "n_val": result["data"]["val"], "threads": result["device"]["threads"],
            "bf16": result["device"]["bf16"], "tokens": round(m["tokens_per_s"] * result["timings"]["train_s"])}


def run_baseline(args) -> dict:
    import resource

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    settings, base = _prepare(args.data_dir, args.model)
    tokenizer, train, val = _split(settings, base, args)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(args.seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                                      task_type="CAUSAL_LM"))
    dataset = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids)} for e in train]
    counted = {"tokens": 0}
    pad_collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)

    def collator(features):  # counts the real (non-padding) tokens of every batch the Trainer takes
        batch = pad_collator(features)
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)  # pad id == <|im_end|>
        counted["tokens"] += int(batch["attention_mask"].sum())
        return batch

    trainer = Trainer(model=model, train_dataset=dataset, data_collator=collator,
                      args=TrainingArguments(output_dir=str(args.data_dir / "baseline"), max_steps=args.steps,
                                             per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
                                             lr_scheduler_type="linear", warmup_steps=0, seed=args.seed,
                                             logging_steps=1, save_strategy="no", report_to=[],
                                             dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
                                             disable_tqdm=True))
    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = counted["tokens"]
    return {"tokens_per_s": tokens / train_s, "train_s": train_s,
            "val_loss": _val_loss(model.eval(), tokenizer, val, args.batch_size), "peak_rss_mb": peak,
            "n_train": len(train), "n_val": len(val), "threads": torch.get_num_threads(), "bf16": False,
            "tokens": tokens}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, in ABBA order (mean reported)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary folder")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"], help="ours only")
    parser.add_argument("--ablation", action="store_true", help="add one run of ours with precision fp32")
    parser.add_argument("--only", choices=["ours", "baseline"], help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.only:
        result = run_baseline(args) if args.only == "baseline" else run_ours(args)
        print(json.dumps(result))
        return 0
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    _prepare(data_dir, args.model)  # QA records and the plain checkpoint, outside the timed children
    runs: dict[str, list[dict]] = {"baseline": [], "ours": []}
    order = [("baseline", "ours") if repeat % 2 == 0 else ("ours", "baseline") for repeat in range(args.repeat)]
    if args.ablation:
        runs["ours-fp32"] = []
        order.append(("ours-fp32",))
    for which in (w for pair in order for w in pair):  # ABBA: a load change on the shared machine hits both
        load_before = os.getloadavg()
        precision = "fp32" if which == "ours-fp32" else args.precision
        cmd = [sys.executable, __file__, "--only", which.split("-")[0], "--data-dir", str(data_dir),
               "--model", args.model, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--lr", str(args.lr), "--max-length", str(args.max_length), "--seed", str(args.seed),
               "--precision", precision]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
        runs[which].append({**json.loads(out.strip().splitlines()[-1]), "load_before": load_before,
                            "load_after": os.getloadavg()})
        print(which, json.dumps(runs[which][-1]), flush=True)
    rows = {}
    for which, results in runs.items():
        rows[which] = {**results[0], "tokens_per_s": sum(r["tokens_per_s"] for r in results) / len(results),
                       "train_s": sum(r["train_s"] for r in results) / len(results),
                       "all_tokens_per_s": [round(r["tokens_per_s"], 1) for r in results],
                       "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}
    try:
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU x{os.cpu_count()}"
    except Exception:  # noqa: BLE001
        device = "?"
    print(f"device: {device}; steps {args.steps} x batch {args.batch_size}; "
          f"{rows['ours']['n_train']} train / {rows['ours']['n_val']} val examples")
    print(f"{'':10} {'tokens/s':>9} {'train s':>8} {'peak MB':>8} {'val loss':>9}  load avg (1/5/15 min) before")
    for which, row in rows.items():
        load = "/".join(f"{x:.2f}" for x in row["load_before"])
        print(f"{which:10} {row['tokens_per_s']:9.1f} {row['train_s']:8.1f} {row['peak_rss_mb']:8.0f} "
              f"{row['val_loss']:9.4f}  {load}  (each run: {row['all_tokens_per_s']}, tokens {row['tokens']})")
    speedup = rows["ours"]["tokens_per_s"] / rows["baseline"]["tokens_per_s"]
    print(f"speed-up {speedup:.2f}x (target >= 1.5x); val loss ours - baseline "
          f"{rows['ours']['val_loss'] - rows['baseline']['val_loss']:+.4f} (target <= 0)")
    print(json.dumps({"device": device, "speedup": speedup, **rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

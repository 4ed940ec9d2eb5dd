"""Benchmark `oraculo train` against a plain `transformers.Trainer` + peft baseline, same data, same machine.

Both train LoRA (same r, alpha, modules, lr, batch size, optimiser steps, seed) on the same training split of
the QA records (the sample corpus with the offline generator unless ``--data-dir`` has some), each in its own
process so that peak memory (max RSS on CPU, max allocated on CUDA) is its own. The baseline does what a seed
script does: full sequences in the chat template, loss on every token, dynamic padding, random batches,
torch's default threads. Both final adapters are then scored the same way: mean loss on the answer tokens of
the validation split (documents unseen in training). Prints one table and, last, a JSON line.

Example::

    python scripts/bench_train.py --steps 8 --batch-size 8      # ~5 min on 2 CPU cores
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
    from pipeline.jobs import generate_qa_job, qa_records
    from pipeline.llm import resolve_llm
    from pipeline.settings import Settings

    settings = Settings(DATA_DIR=data_dir)
    if not qa_records(settings):
        generate_qa_job(settings)
    return settings, resolve_llm(model, models_dir=settings.models_dir)


def _split(settings, base, args):
    """The exact train/val examples `oraculo train` uses (same code path)."""
    from transformers import AutoTokenizer

    from pipeline.documents import load_documents
    from pipeline.jobs import qa_records
    from pipeline.train_data import build_examples, split_by_document

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    examples, _ = build_examples(qa_records(settings), load_documents(settings.documents_dir), tokenizer,
                                 max_length=args.max_length)
    train, val = split_by_document(examples, val_fraction=0.2, seed=args.seed)
    return tokenizer, train, val


def _val_loss(peft_model, tokenizer, val, batch_size):
    import torch

    from pipeline.train import _AnswerLoss
    from pipeline.train_data import collate

    module = _AnswerLoss.make(peft_model, True).eval()
    total = n_total = 0.0
    with torch.no_grad():
        for i in range(0, len(val), batch_size):
            loss, n = module(**collate(val[i:i + batch_size], pad_id=tokenizer.pad_token_id or 0))
            total, n_total = total + float(loss), n_total + int(n)
    return total / n_total


def run_ours(args) -> dict:
    import resource

    from pipeline.train import TrainArgs, main

    settings, base = _prepare(args.data_dir, args.model)
    result = main(TrainArgs(model=str(base), max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            max_length=args.max_length, seed=args.seed, eval_every=args.steps,
                            save_every=10**9, patience=0), settings=settings)
    m = result["metrics"]
    return {"tokens_per_s": m["tokens_per_s"], "train_s": result["timings"]["train_s"],
            "val_loss": m["val_loss"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "n_train": result["data"]["train"], "n_val": result["data"]["val"], "threads": result["device"]["threads"]}


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
    tokens = counted["tokens"]
    return {"tokens_per_s": tokens / train_s, "train_s": train_s,
            "val_loss": _val_loss(model.eval(), tokenizer, val, args.batch_size),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "n_train": len(train), "n_val": len(val), "threads": torch.get_num_threads()}


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
    parser.add_argument("--only", choices=["ours", "baseline"], help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.only:
        result = run_ours(args) if args.only == "ours" else run_baseline(args)
        print(json.dumps(result))
        return 0
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    _prepare(data_dir, args.model)  # QA records and the plain checkpoint, outside the timed children
    runs: dict[str, list[dict]] = {"baseline": [], "ours": []}
    for repeat in range(args.repeat):  # ABBA order: a load change on the shared machine hits both alike
        for which in (("baseline", "ours") if repeat % 2 == 0 else ("ours", "baseline")):
            load_before = os.getloadavg()
            cmd = [sys.executable, __file__, "--only", which, "--data-dir", str(data_dir), "--model", args.model,
                   "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                   "--max-length", str(args.max_length), "--seed", str(args.seed)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
            runs[which].append({**json.loads(out.strip().splitlines()[-1]), "load_before": load_before})
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
              f"{row['val_loss']:9.4f}  {load}  (each run: {row['all_tokens_per_s']})")
    speedup = rows["ours"]["tokens_per_s"] / rows["baseline"]["tokens_per_s"]
    print(f"speed-up {speedup:.2f}x (target >= 1.5x); val loss ours - baseline "
          f"{rows['ours']['val_loss'] - rows['baseline']['val_loss']:+.4f} (target <= 0)")
    print(json.dumps({"device": device, "speedup": speedup, **rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

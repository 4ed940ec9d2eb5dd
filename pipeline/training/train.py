"""`oraculo train`: a LoRA adapter for the answer model, trained on question + context -> answer.

nanoGPT/TRL style: :class:`TrainArgs` holds every knob (defaults commented), :func:`main` runs one training run
and returns its result; parsing lives in ``bot/cli.py``. The loop is plain PyTorch driven by ``accelerate``:
CPU when there is no GPU, one GPU (bf16 where supported), or several under ``accelerate launch`` / ``torchrun``
with no code change. Speed on CPU comes from (measured in ``scripts/bench_train.py``):

- length-grouped batches, right-padded, and *no attention mask*: under causal attention a real token never
  attends to the padding after it, so dropping the mask changes no real token's output while letting SDPA take
  its ``is_causal`` fast path (no [batch, 1, len, len] mask built or read);
- the LM head (49k x 576 for SmolLM2) and the cross-entropy computed on the answer positions only, the only
  positions that carry a loss;
- ``precision="auto"``: the frozen base stored in bfloat16 and run under autocast where the hardware has fast
  bf16 matmuls (CUDA with bf16; CPUs with AVX512-BF16 or AMX), the LoRA weights and AdamW kept in float32;
- one torch thread per core, ``torch.inference_mode`` for validation.

Each run: a row in ``training_runs`` (``running`` -> ``succeeded``/``failed``), checkpoints under
``DATA_DIR/training/run-<id>/``, TensorBoard logs under ``DATA_DIR/tensorboard/<version>``, and on success
the adapter in ``DATA_DIR/models/adapters/<version>/`` with ``metadata.json``. That folder is built aside and
renamed into place last, so a crash never leaves an adapter that looks complete.

Example::

    >>> from pipeline.settings import Settings
    >>> from pipeline.training.args import TrainArgs
    >>> from pipeline.training.train import main
    >>> result = main(TrainArgs(max_steps=20), settings=Settings())     # doctest: +SKIP
    >>> result["adapter_dir"]                                          # doctest: +SKIP
    'data/models/adapters/20261125T050000Z-run1'
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline.core.hardware import cpu_has_fast_bf16
from pipeline.documents.load import load_documents
from pipeline.llm.adapters import METADATA
from pipeline.llm.resolve import resolve_llm
from pipeline.qa.records import load_qa_records
from pipeline.qa.records import qa_records
from pipeline.settings import Settings, get_settings
from pipeline.training.args import TrainArgs
from pipeline.training.cost import run_cost
from pipeline.training.examples import (
    IGNORE_INDEX,
    build_examples,
    collate,
    data_hash,
    length_grouped_batches,
    split_by_document,
)
from pipeline.training.lm_loop import (
    STATE,
    LoopState,
    TrainingSetup,
    finish_loop,
    loop_metrics,
    open_writer,
    resume_state,
    train_loop,
)
from pipeline.training.runs import Heartbeat
from storage import repository

log = logging.getLogger(__name__)


class _AnswerLoss:
    """Builds the module whose forward returns (sum of answer-token losses, number of answer tokens)."""

    @staticmethod
    def make(model, answer_only_head: bool):
        import torch
        import torch.nn.functional as F

        class AnswerLoss(torch.nn.Module):
            def __init__(self, lm) -> None:
                super().__init__()
                self.lm = lm

            def forward(self, input_ids, attention_mask, labels):
                targets = labels[:, 1:]
                keep = targets != IGNORE_INDEX
                if attention_mask is not None and bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all()):
                    attention_mask = None  # right padding only: causal attention never reads it (module doc)
                causal_lm = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
                if answer_only_head and hasattr(causal_lm, "get_decoder"):
                    hidden = causal_lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask,
                                                     use_cache=False).last_hidden_state
                    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
                else:
                    logits = self.lm(input_ids=input_ids, attention_mask=attention_mask,
                                     use_cache=False).logits[:, :-1][keep]
                loss = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
                return loss, keep.sum()

        return AnswerLoss(model)


def _threads(args: TrainArgs) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    launcher = os.environ.get("OMP_NUM_THREADS", "")  # torchrun sets 1 per process: several share the cores
    return args.threads or (int(launcher) if launcher.isdigit() and int(launcher) > 0 else cores)


def use_bf16(precision: str) -> bool:
    """Resolve ``TrainArgs.precision`` on this machine."""
    import torch

    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_fast_bf16()



def find_checkpoint(settings: Settings, resume: str) -> Path:
    """``"latest"`` -> the newest checkpoint of any run; otherwise ``resume`` must be a checkpoint folder."""
    if resume != "latest":
        path = Path(resume)
        if not (path / STATE).is_file():
            raise FileNotFoundError(f"{path} is not a training checkpoint (no {STATE})")
        return path
    found = sorted((settings.data_dir / "training").glob(f"run-*/checkpoint-*/{STATE}"),
                   key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no checkpoint under {settings.data_dir / 'training'} to resume from")
    return found[-1].parent


def _load_records(args: TrainArgs, settings: Settings) -> list[dict]:
    return load_qa_records(Path(args.data)) if args.data else qa_records(settings)


def _sample(items: list, limit: int, seed: int) -> list:
    if not limit or len(items) <= limit:
        return items
    return random.Random(seed).sample(items, limit)


@dataclass
class _Data:
    """The base model's tokenizer and the encoded QA examples, split by document."""

    base_path: str | Path
    local: bool  # base_path is a local folder (no Hub download)
    tokenizer: object
    pad_id: int
    records: list[dict]
    train: list
    val: list
    dropped: dict
    digest: str  # data_hash of the records


def _prepare_data(args: TrainArgs, settings: Settings, checkpoint: Path | None, resumed: dict | None) -> _Data:
    from transformers import AutoTokenizer

    base_path = resolve_llm(args.model, models_dir=settings.models_dir)
    local = Path(base_path).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(base_path), local_files_only=local)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    records = _load_records(args, settings)
    eos_id = tokenizer.eos_token_id
    if eos_id is None:  # some tokenizers have none: the model's own end-of-sequence id is what generate stops on
        from transformers import AutoConfig

        eos_id = AutoConfig.from_pretrained(str(base_path), local_files_only=local).eos_token_id
        eos_id = eos_id[0] if isinstance(eos_id, list) else eos_id
    examples, dropped = build_examples(records, load_documents(settings.documents_dir), tokenizer,
                                       max_length=args.max_length, eos_id=eos_id)
    train, val = split_by_document(examples, val_fraction=args.val_fraction, seed=args.seed)
    train, val = _sample(train, args.max_train_examples, args.seed), _sample(val, args.max_val_examples, args.seed)
    if not train:
        raise ValueError(f"no training example ({len(records)} QA records, dropped: {dropped}, "
                         f"{len(val)} for validation): generate QA pairs first (oraculo generate-qa) "
                         "or raise --max-length")
    digest = data_hash(records)
    if resumed and (resumed["data_hash"], resumed["args"]["model"]) != (digest, args.model):
        raise ValueError(f"checkpoint {checkpoint} was made with another model or other data")
    return _Data(base_path=base_path, local=local, tokenizer=tokenizer, pad_id=pad_id, records=records,
                 train=train, val=val, dropped=dropped, digest=digest)


def _create_run(database, args: TrainArgs, settings: Settings, data: _Data) -> int:
    """The ``running`` row of this run in ``training_runs`` (main process only); returns its id."""
    database.upgrade()
    with database.session() as session:
        return repository.create_training_run(session, base_model=args.model, data_hash=data.digest,
                                              n_examples=len(data.train) + len(data.val),
                                              gpu_hourly_usd=settings.gpu_hourly_usd).id


def _load_model(args: TrainArgs, data: _Data, bf16: bool, checkpoint: Path | None):
    """The base causal LM with LoRA adapters: new ones, or the checkpoint's (trainable)."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    # bf16: the frozen base is stored in bf16 (no per-step weight casts); peft keeps the LoRA weights in fp32
    model = AutoModelForCausalLM.from_pretrained(str(data.base_path), local_files_only=data.local,
                                                 dtype=torch.bfloat16 if bf16 else torch.float32)
    model.config.use_cache = False
    if checkpoint:
        model = PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
    else:
        targets = "all-linear" if args.target_modules == "all-linear" else args.target_modules.split(",")
        model = get_peft_model(model, LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha,
                                                 lora_dropout=args.lora_dropout, target_modules=targets,
                                                 task_type="CAUSAL_LM"))
    if bf16:  # autocast runs the LoRA matmuls in bf16; peft's own cast to fp32 would only copy activations
        for module in model.modules():
            if hasattr(module, "cast_input_dtype_enabled"):
                module.cast_input_dtype_enabled = False
    return model


def _setup_training(args: TrainArgs, data: _Data, accelerator, bf16: bool, checkpoint: Path | None) -> TrainingSetup:
    """Model, loss, AdamW and the linear schedule, prepared by ``accelerator``; this process's validation batches."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    model = _load_model(args, data, bf16, checkpoint)
    train, val = data.train, data.val
    lengths = [len(e.input_ids) for e in train]
    per_epoch = max(1, len(length_grouped_batches(lengths, batch_size=args.batch_size, seed=args.seed,
                                                  epoch=0)) // (args.grad_accum * accelerator.num_processes))
    total_steps = args.max_steps or max(1, math.ceil(args.epochs * per_epoch))
    loss_module = _AnswerLoss.make(model, args.answer_only_head)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                                  weight_decay=args.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, args.warmup_steps, total_steps)
    loss_module, optimizer, scheduler = accelerator.prepare(loss_module, optimizer, scheduler)
    peft_model = accelerator.unwrap_model(loss_module).lm
    starts = list(range(0, len(val), args.batch_size))[accelerator.process_index::accelerator.num_processes]
    val_batches = [collate(val[i:i + args.batch_size], pad_id=data.pad_id) for i in starts]
    return TrainingSetup(accelerator=accelerator, loss_module=loss_module, optimizer=optimizer,
                         scheduler=scheduler, peft_model=peft_model, train=train, lengths=lengths,
                         val_batches=val_batches, total_steps=total_steps, pad_id=data.pad_id, bf16=bf16)


def _metadata(args: TrainArgs, data: _Data, setup: TrainingSetup, state: LoopState, *, version: str,
              run_id: int, metrics: dict, wall: float, checkpoint: Path | None, cost) -> dict:
    import torch

    device = setup.accelerator.device
    return {
        "version": version, "run_id": run_id, "base_model": args.model, "base_path": str(data.base_path),
        "data": {"hash": data.digest, "records": len(data.records), "train": len(data.train),
                 "val": len(data.val), "dropped": data.dropped,
                 "val_documents": sorted({e.document for e in data.val})},
        "hyperparameters": asdict(args), "metrics": metrics,
        "timings": {"wall_s": wall, "train_s": state.train_seconds, "eval_s": state.eval_seconds},
        "device": {"type": device.type, "processes": setup.accelerator.num_processes, "bf16": setup.bf16,
                   "threads": torch.get_num_threads()},
        "resumed_from": str(checkpoint) if checkpoint else None, "cost": cost.as_dict(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _write_adapter(staging: Path, final: Path, peft_model, tokenizer, metadata: dict) -> Path:
    """Adapter, tokenizer and ``metadata.json`` written in ``staging``, then renamed to ``final`` (returned)."""
    shutil.rmtree(staging, ignore_errors=True)
    peft_model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / METADATA).write_text(json.dumps(metadata, ensure_ascii=False, indent=2), encoding="utf-8")
    staging.rename(final)
    return final


def _record_success(database, run_id: int, final: Path, metrics: dict, data: _Data, cost) -> None:
    with database.session() as session:
        repository.finish_training_run(session, run_id=run_id, status="succeeded", adapter_path=str(final),
                                       metrics=metrics, n_examples=len(data.train) + len(data.val),
                                       usd_brl=cost.quote.rate if cost.quote else None,
                                       usd_brl_at=cost.quote.at if cost.quote else None,
                                       cost_usd=cost.usd, cost_brl=cost.brl)


def _publish(args: TrainArgs, data: _Data, setup: TrainingSetup, state: LoopState, *, settings: Settings, database,
             run_id: int, version: str, staging: Path, started_wall: float, checkpoint: Path | None) -> dict:
    """Main process, after the loop: metrics and cost, the adapter renamed into place, the run marked succeeded."""
    metrics = loop_metrics(state, setup.accelerator.device)
    wall = time.perf_counter() - started_wall
    cost = run_cost(settings, seconds=wall)
    if cost.quote:
        metrics.update(quote_source=cost.quote.source, quote_note=cost.quote.note)
    metadata = _metadata(args, data, setup, state, version=version, run_id=run_id, metrics=metrics, wall=wall,
                         checkpoint=checkpoint, cost=cost)
    final = _write_adapter(staging, settings.models_dir / "adapters" / version, setup.peft_model, data.tokenizer,
                           metadata)
    metadata["adapter_dir"] = str(final)
    _record_success(database, run_id, final, metrics, data, cost)
    log.info("run %s: adapter %s (val loss %s)", run_id, final, metrics["val_loss"])
    return metadata


def main(args: TrainArgs, *, settings: Settings | None = None, on_step=None) -> dict:
    """Train one adapter; returns its metadata. ``on_step(step, loss)`` is called after every optimiser step."""
    import torch
    from accelerate import Accelerator

    from storage.db import migrated

    settings = settings or get_settings()
    started_wall = time.perf_counter()
    torch.set_num_threads(_threads(args))
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    bf16 = use_bf16(args.precision)
    # cpu=True without a GPU: several CPU processes (torchrun) then talk over gloo instead of looking for CUDA
    accelerator = Accelerator(mixed_precision="no", cpu=not torch.cuda.is_available())  # bf16: see autocast
    main_process = accelerator.is_main_process

    checkpoint = find_checkpoint(settings, args.resume) if args.resume else None
    resumed = torch.load(checkpoint / STATE, weights_only=False) if checkpoint else None
    data = _prepare_data(args, settings, checkpoint, resumed)

    with migrated(settings.database_url) as database:  # migrated first, disposed at the end
        run_id = _create_run(database, args, settings, data) if main_process else None
        # kill -9 cannot close the row: the heartbeat tells the next start until when this run was alive.
        heartbeat = Heartbeat(database, run_id).start() if run_id is not None else None
        version = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-run{run_id}"
        work = settings.data_dir / "training" / f"run-{run_id}"
        staging = settings.models_dir / "adapters" / f".{version}.tmp"
        try:
            setup = _setup_training(args, data, accelerator, bf16, checkpoint)
            state = resume_state(setup, resumed)
            writer = open_writer(settings.data_dir / "tensorboard" / version) if main_process else None
            train_loop(args, setup, state, writer=writer, on_step=on_step, work=work, digest=data.digest)
            finish_loop(setup, state)
            if not main_process:
                return {}
            if writer:
                writer.close()
            return _publish(args, data, setup, state, settings=settings, database=database, run_id=run_id,
                            version=version, staging=staging, started_wall=started_wall, checkpoint=checkpoint)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if main_process and run_id is not None:
                with database.session() as session:
                    repository.finish_training_run(session, run_id=run_id, status="failed",
                                                   error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        finally:
            if heartbeat is not None:
                heartbeat.stop()

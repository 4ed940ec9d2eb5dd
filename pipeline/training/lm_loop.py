"""The training loop of :mod:`pipeline.training.train`: optimiser steps, validation, early stopping, checkpoints.

:func:`train.main <pipeline.training.train.main>` prepares the data, the model and the optimiser, gathers them in
a :class:`TrainingSetup` and hands it here: :func:`resume_state` restores a checkpoint's :class:`LoopState`,
:func:`train_loop` runs the steps (checkpoints under the run's work folder, the last 2 kept), :func:`finish_loop`
puts back the best adapter and sums the token counts of every process, and :func:`loop_metrics` writes them up.
Validation runs under ``torch.inference_mode``; bf16 is a per-run autocast (see :func:`autocast`).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.training.examples import collate, length_grouped_batches

log = logging.getLogger(__name__)

STATE = "trainer_state.pt"  # the trainer state file inside a checkpoint folder


@dataclass
class TrainingSetup:
    """What the loop drives: accelerate-prepared modules, the training examples and the validation batches."""

    accelerator: object
    loss_module: object  # forward(input_ids, attention_mask, labels) -> (loss sum, answer tokens)
    optimizer: object
    scheduler: object
    peft_model: object  # the LoRA-wrapped model inside loss_module (unwrapped)
    train: list  # training examples
    lengths: list[int]  # their lengths, for length-grouped batches
    val_batches: list  # this process's share of the collated validation batches
    total_steps: int
    pad_id: int
    bf16: bool


@dataclass
class LoopState:
    """Where the loop stands: saved in checkpoints (the first five fields) and written up by :func:`loop_metrics`."""

    step: int = 0
    history: list = field(default_factory=list)  # {"step", "loss"[, "val_loss"]} per optimiser step
    best_val: float = float("inf")
    bad_evals: int = 0
    best_state: dict | None = None  # the LoRA weights at the best validation loss
    stopped_early: bool = False
    tokens: int = 0
    answer_tokens: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0  # kept out of the throughput figures


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def autocast(device, bf16: bool):
    """bf16 autocast for this run only: accelerate's ``mixed_precision`` is process-wide state that a second
    run in the same process (tests, a long-lived job runner) could not change."""
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def evaluate(loss_module, batches, device, accelerator, bf16: bool = False) -> float:
    import torch

    loss_module.eval()
    total = torch.zeros(2, device=device, dtype=torch.float64)
    with torch.inference_mode():
        for batch in batches:
            batch = {key: value.to(device) for key, value in batch.items()}
            with autocast(device, bf16):
                loss, n = loss_module(**batch)
            total += torch.stack([loss.double(), n.double()])
    total = accelerator.reduce(total, reduction="sum")
    loss_module.train()
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")


def save_checkpoint(work: Path, step: int, peft_model, state: dict) -> Path:
    import torch

    target = work / f"checkpoint-{step}"
    tmp = work / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    peft_model.save_pretrained(tmp)
    torch.save(state, tmp / STATE)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    for old in sorted(work.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[:-2]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def resume_state(setup: TrainingSetup, resumed: dict | None) -> LoopState:
    """A fresh :class:`LoopState`, or the one of the checkpoint state ``resumed`` (optimiser, scheduler, RNG)."""
    import torch

    state = LoopState()
    if resumed:
        setup.optimizer.load_state_dict(resumed["optimizer"])
        setup.scheduler.load_state_dict(resumed["scheduler"])
        torch.set_rng_state(resumed["torch_rng"])
        state.step, state.history, state.best_val, state.bad_evals = (resumed["step"], resumed["history"],
                                                                      resumed["best_val"], resumed["bad_evals"])
        state.best_state = resumed.get("best_state")
    return state


def open_writer(logdir: Path):
    """A TensorBoard ``SummaryWriter`` on ``logdir``, or None where tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(logdir))
    except ImportError:
        log.warning("tensorboard is not installed: no TensorBoard logs")
        return None


def train_loop(args, setup: TrainingSetup, state: LoopState, *, writer, on_step, work: Path,
               digest: str) -> LoopState:
    """Run the optimiser steps of ``args`` (a ``TrainArgs``) from ``state.step`` to ``setup.total_steps``, or
    until early stopping; a resumed run skips the micro-batches its checkpoint had consumed."""
    from tqdm.auto import tqdm

    accelerator = setup.accelerator
    progress = tqdm(total=setup.total_steps, initial=state.step, desc="train",
                    disable=not accelerator.is_main_process)
    loop_started = time.perf_counter()
    micro_done = state.step * args.grad_accum  # micro-batches already consumed (resume skips them)
    micro, epoch = 0, 0
    setup.loss_module.train()
    while state.step < setup.total_steps and not state.stopped_early:
        batches = length_grouped_batches(setup.lengths, batch_size=args.batch_size, seed=args.seed, epoch=epoch)
        usable = len(batches) - len(batches) % accelerator.num_processes
        batches = batches[:usable][accelerator.process_index::accelerator.num_processes]
        for index in batches:
            micro += 1
            if micro <= micro_done:
                continue
            loss = _forward_backward(args, setup, state, index)
            if micro % args.grad_accum:
                continue
            _optimizer_step(setup, state, loss, progress=progress, writer=writer, on_step=on_step)
            if setup.val_batches and (state.step % args.eval_every == 0 or state.step == setup.total_steps):
                _validate(args, setup, state, writer=writer)
            if accelerator.is_main_process and state.step % args.save_every == 0 and state.step < setup.total_steps:
                _checkpoint(args, setup, state, work=work, digest=digest)
            if state.step >= setup.total_steps or state.stopped_early:
                break
        epoch += 1
    progress.close()
    state.train_seconds = time.perf_counter() - loop_started - state.eval_seconds
    return state


def _forward_backward(args, setup: TrainingSetup, state: LoopState, index: list[int]):
    """One micro-batch: forward, backward (scaled for gradient accumulation), token counts; returns its loss."""
    accelerator = setup.accelerator
    device = accelerator.device
    batch = {k: v.to(device) for k, v in collate([setup.train[i] for i in index], pad_id=setup.pad_id).items()}
    with autocast(device, setup.bf16):
        loss_sum, n = setup.loss_module(**batch)
    loss = loss_sum / n.clamp(min=1)
    accelerator.backward(loss / args.grad_accum)
    state.tokens += int(batch["attention_mask"].sum())
    state.answer_tokens += int(n)
    return loss


def _optimizer_step(setup: TrainingSetup, state: LoopState, loss, *, progress, writer, on_step) -> None:
    setup.optimizer.step()
    setup.scheduler.step()
    setup.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    loss_value = float(loss.detach())
    state.history.append({"step": state.step, "loss": loss_value})
    progress.update(1)
    progress.set_postfix(loss=f"{loss_value:.3f}")
    if writer:
        writer.add_scalar("train/loss", loss_value, state.step)
    if on_step:
        on_step(state.step, loss_value)


def _validate(args, setup: TrainingSetup, state: LoopState, *, writer) -> None:
    """A validation pass: keeps the best LoRA weights, counts passes without improvement (early stopping)."""
    from peft import get_peft_model_state_dict

    eval_started = time.perf_counter()
    val_loss = evaluate(setup.loss_module, setup.val_batches, setup.accelerator.device, setup.accelerator,
                        setup.bf16)
    state.eval_seconds += time.perf_counter() - eval_started
    state.history[-1]["val_loss"] = val_loss
    if writer:
        writer.add_scalar("val/loss", val_loss, state.step)
    if val_loss < state.best_val:
        state.best_val, state.bad_evals = val_loss, 0
        state.best_state = {k: v.detach().cpu().clone()
                            for k, v in get_peft_model_state_dict(setup.peft_model).items()}
    else:
        state.bad_evals += 1
        state.stopped_early = bool(args.patience) and state.bad_evals >= args.patience


def _checkpoint(args, setup: TrainingSetup, state: LoopState, *, work: Path, digest: str) -> None:
    import torch

    save_checkpoint(work, state.step, setup.peft_model, {
        "step": state.step, "history": state.history, "best_val": state.best_val, "bad_evals": state.bad_evals,
        "best_state": state.best_state, "optimizer": setup.optimizer.state_dict(),
        "scheduler": setup.scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
        "data_hash": digest, "args": asdict(args)})


def finish_loop(setup: TrainingSetup, state: LoopState) -> None:
    """Put back the best adapter (early stopping), sum every process's token counts, wait for every process."""
    import torch
    from peft import set_peft_model_state_dict

    accelerator = setup.accelerator
    final_val = state.history[-1].get("val_loss") if state.history else None
    if state.best_state is not None and (final_val is None or state.best_val < final_val):
        set_peft_model_state_dict(setup.peft_model, state.best_state)  # early stopping keeps the best adapter
    counts = accelerator.reduce(torch.tensor([state.tokens, state.answer_tokens], device=accelerator.device,
                                             dtype=torch.float64),
                                reduction="sum")  # every process's tokens: the throughput of the whole run
    state.tokens, state.answer_tokens = int(counts[0]), int(counts[1])
    accelerator.wait_for_everyone()


def loop_metrics(state: LoopState, device) -> dict:
    """The ``metrics`` of the adapter's metadata (and of its ``training_runs`` row)."""
    history, seconds = state.history, state.train_seconds
    return {"train_loss_first": history[0]["loss"] if history else None,
            "train_loss_last": history[-1]["loss"] if history else None,
            "val_loss": state.best_val if state.best_state is not None else None,
            "val_loss_history": [(h["step"], h["val_loss"]) for h in history if "val_loss" in h],
            "steps": state.step, "stopped_early": state.stopped_early,
            "train_tokens": state.tokens, "train_answer_tokens": state.answer_tokens,
            "tokens_per_s": state.tokens / seconds if seconds else None,
            "answer_tokens_per_s": state.answer_tokens / seconds if seconds else None,
            "peak_memory_mb": peak_memory_mb(device)}

"""The arguments of one LLM LoRA training run (:func:`pipeline.training.train.main`): the ``oraculo train`` flags
are made from these fields, so the CLI builds its parser without importing the training code.

Example::

    >>> from pipeline.training.args import TrainArgs
    >>> TrainArgs(max_steps=5).lora_r
    8
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainArgs:
    model: str = "embedded"  # causal LM: "embedded" (SmolLM2-135M from its GGUF), a Hub id or a local path
    data: str | None = None  # QA jsonl file or folder; None: generated + hand-written + validated feedback
    epochs: float = 1.0  # passes over the training split (max_steps > 0 wins)
    max_steps: int = 0  # optimiser steps to run; 0: as many as `epochs` takes
    batch_size: int = 8  # examples per micro-batch (per process)
    grad_accum: int = 1  # micro-batches per optimiser step
    lr: float = 2e-4  # AdamW learning rate, linear decay after warm-up
    warmup_steps: int = 0
    weight_decay: float = 0.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: str = "q_proj,v_proj"  # comma-separated module names, or "all-linear"
    max_length: int = 512  # longer examples are dropped (counted in the metadata), never cut mid-answer
    val_fraction: float = 0.2  # share of *documents* held out for validation
    max_train_examples: int = 0  # 0: all (a seeded sample otherwise: quick runs, tests)
    max_val_examples: int = 0
    eval_every: int = 50  # steps between validation passes (and early-stopping checks)
    save_every: int = 50  # steps between checkpoints (the last 2 are kept)
    patience: int = 3  # validation passes without improvement before stopping; 0: never stop early
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0: the cores this process may use
    resume: str | None = None  # "latest" or a checkpoint folder: continue from there
    answer_only_head: bool = True  # LM head on answer positions only (same loss, less compute)
    precision: str = "auto"  # "auto": bf16 base + autocast where the hardware is fast at bf16, else "fp32"; "bf16"

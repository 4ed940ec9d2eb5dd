"""`oraculo merge RUN`: fold a run's LoRA adapter into its base model -> a stand-alone checkpoint.

The result (``DATA_DIR/models/merged/<version>/``: safetensors + tokenizer + the run's metadata) loads with
plain ``AutoModelForCausalLM.from_pretrained`` and generates without peft; point ``LLM_MODEL`` at it to serve
it. Built aside and renamed into place, like the adapters. ``RUN`` is a run id, an adapter version, an
adapter folder or ``latest`` (the newest succeeded run).

Example::

    >>> from pipeline.settings import Settings
    >>> from pipeline.training.merge import merge_run
    >>> merge_run(Settings(), "latest")            # doctest: +SKIP
    PosixPath('data/models/merged/20261125T050000Z-run1')
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from pipeline.answering.reader import base_model, resolve_base
from pipeline.llm.adapters import METADATA, load_llm_adapter
from pipeline.settings import Settings
from storage import repository

log = logging.getLogger(__name__)


def resolve_run(settings: Settings, ref: str | int) -> tuple[Path, dict]:
    """(adapter folder, metadata) of a finished run; ``LookupError`` when there is none such."""
    ref = str(ref)
    adapters = settings.models_dir / "adapters"
    candidates: list[Path] = []
    if Path(ref).is_dir():
        candidates = [Path(ref)]
    elif (adapters / ref).is_dir():
        candidates = [adapters / ref]
    else:
        from storage.db import migrated

        with migrated(settings.database_url) as database, database.session() as session:
            if ref == "latest":
                runs = repository.list_training_runs(session, limit=1, status="succeeded")
            elif ref.isdigit():
                run = repository.get_training_run(session, run_id=int(ref))
                runs = [run] if run is not None and run.status == "succeeded" else []
            else:
                runs = []
            candidates = [Path(r.adapter_path) for r in runs if r.adapter_path]
    for folder in candidates:
        if (folder / METADATA).is_file():
            return folder, json.loads((folder / METADATA).read_text(encoding="utf-8"))
    raise LookupError(f"no finished training run {ref!r} (see `oraculo cost` or DATA_DIR/models/adapters)")


def load_adapter_model(adapter_dir: Path, metadata: dict):
    """The base model with the adapter applied (peft), in eval mode (the reader's QA model for a reader run)."""
    if metadata.get("kind") != "reader":
        return load_llm_adapter(adapter_dir, metadata)
    from peft import PeftModel

    model, _ = base_model(metadata["base_model"])
    return PeftModel.from_pretrained(model, str(adapter_dir)).eval()


def merge_run(settings: Settings, ref: str | int, *, output: Path | None = None) -> Path:
    """Merge the adapter of run ``ref`` into its base model; returns the stand-alone folder."""
    from transformers import AutoTokenizer

    adapter_dir, metadata = resolve_run(settings, ref)
    target = Path(output) if output else settings.models_dir / "merged" / metadata["version"]
    if (target / "config.json").is_file():
        log.info("%s is already merged", target)
        return target
    merged = load_adapter_model(adapter_dir, metadata).merge_and_unload()
    if metadata.get("kind") == "reader":  # the reader's tokenizer is its encoder's
        tokenizer = AutoTokenizer.from_pretrained(resolve_base(metadata["base_model"]))
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(tmp)  # safetensors is the only format in transformers 5
        tokenizer.save_pretrained(tmp)
        (tmp / METADATA).write_text(json.dumps({**metadata, "merged_from": str(adapter_dir)}, ensure_ascii=False,
                                               indent=2), encoding="utf-8")
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("merged %s into %s", adapter_dir, target)
    return target

"""LoRA adapters as files: their metadata (what kind, which base), loading a generative one, the serving LLM.

Every adapter folder that training writes (``DATA_DIR/models/adapters/<version>/``) holds the peft weights and
``metadata.json``; its ``kind`` says whose it is: ``"llm"`` (the generative model, :mod:`pipeline.training.train`)
or ``"reader"`` (the span reader, :mod:`pipeline.loop.reader_job`). Serving, merging and publishing all read
it here.

Example::

    from pipeline.llm.adapters import adapter_kind, load_serving_llm
    adapter_kind(Path("data/models/adapters/20261202T030000Z"))   # 'reader'
    llm = load_serving_llm(settings)   # the configured LLM, with the serving LLM adapter merged when there is one
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.llm.local import LocalLLM, load_llm
from pipeline.llm.remote import OpenAIChatLLM
from pipeline.serving.versions import answer_base_url, served_model, serving_adapter
from pipeline.settings import Settings

log = logging.getLogger(__name__)

METADATA = "metadata.json"


def read_metadata(adapter_dir: Path) -> dict:
    """The adapter's ``metadata.json``; ``OSError``/``ValueError`` when it is missing or not JSON."""
    return json.loads((Path(adapter_dir) / METADATA).read_text(encoding="utf-8"))


def adapter_kind(adapter: Path | None) -> str | None:
    """``"reader"`` or ``"llm"`` (the generative model's adapter) from the adapter's metadata."""
    if adapter is None:
        return None
    try:
        metadata = read_metadata(adapter)
    except (OSError, ValueError):
        return "llm"
    return metadata.get("kind", "llm")


def load_llm_adapter(adapter_dir: Path, metadata: dict):
    """The generative base model (``metadata["base_path"]``) with the adapter applied (peft), in eval mode."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = metadata["base_path"]
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=Path(base).is_dir())
    return PeftModel.from_pretrained(model, str(adapter_dir)).eval()


def load_serving_llm(settings: Settings):
    """The generative model: the configured base with the serving adapter merged in memory, if there is one."""
    if settings.llm_backend == "openai":  # the engine applies the adapter: call it by its published name
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIChatLLM(base_url=answer_base_url(settings), api_key=key, model=served_model(settings),
                             timeout_s=settings.openai_answer_timeout_s,
                             max_retries=settings.openai_answer_max_retries)
    adapter = serving_adapter(settings)
    if adapter is not None and adapter_kind(adapter) == "reader":
        adapter = None  # the serving adapter is the reader's: the LLM runs as configured
    if adapter is None or settings.llm_backend != "transformers":
        if adapter is not None:
            log.warning("adapter %s is not applied: the %s backend serves the base model", adapter.name,
                        settings.llm_backend)
        llm = load_llm(settings.llm_model, backend=settings.llm_backend, models_dir=settings.models_dir)
        return llm
    from transformers import AutoTokenizer

    model = load_llm_adapter(adapter, read_metadata(adapter)).merge_and_unload()
    llm = LocalLLM(model, AutoTokenizer.from_pretrained(str(adapter)), version=adapter.name)
    llm.serving = True  # reloaded when the adapter pointer moves
    log.info("serving adapter %s", adapter.name)
    return llm

"""Serving versions: which index and which LoRA adapter answer citizens, and how a candidate replaces them.

Two pointers, each a one-line file replaced atomically (temp file + ``os.replace``):

- ``DATA_DIR/index/CURRENT`` names the serving index version (``pipeline.search.index``);
- ``DATA_DIR/models/SERVING_ADAPTER`` names the serving adapter folder under ``DATA_DIR/models/adapters``
  (absent: the base model as configured);
- with ``LLM_BACKEND=openai``, ``DATA_DIR/models/ENGINE_ADAPTER`` names the adapter the engine answers with,
  moved only once the engine loaded it (:mod:`pipeline.serving.engine`).

The nightly job builds its candidate index *aside*, under ``DATA_DIR/index_staging`` (reusing the serving
version's vectors, so only new text is embedded), and trains its adapter into its own folder; nothing serving
changes until :func:`promote`, which moves the candidate index into ``index/versions`` and flips both
pointers (adapter first, index last; the adapter pointer is put back if the index flip fails). A running bot
notices the flip on its next question (:func:`serving_stamp`, one ``stat`` per pointer) and reloads: no restart.

Example::

    from pipeline.serving.promote import build_candidate_index, promote, serving_adapter
    info = build_candidate_index(settings, chunks, qa_records)   # serving untouched
    promote(settings, index=info, adapter_dir=None)              # now it serves
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pipeline.settings import Settings

log = logging.getLogger(__name__)

ADAPTER_POINTER = "SERVING_ADAPTER"
STAGING_DIR = "index_staging"
KEEP_INDEX_VERSIONS = 3


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def adapter_pointer(settings: Settings) -> Path:
    return settings.models_dir / ADAPTER_POINTER


def serving_adapter(settings: Settings) -> Path | None:
    """The serving adapter folder, or ``None`` (base model)."""
    try:
        name = adapter_pointer(settings).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    folder = settings.models_dir / "adapters" / name
    return folder if name and folder.is_dir() else None


def serving_stamp(settings: Settings) -> tuple:
    """Changes whenever a pointer is replaced (new inode, time, size): the cheap hot-reload check."""
    from pipeline.serving.engine import engine_pointer
    from pipeline.search.index import CURRENT_FILE

    stamp = []
    for path in (Path(settings.index_dir) / CURRENT_FILE, adapter_pointer(settings), engine_pointer(settings)):
        try:
            st = os.stat(path)
            stamp.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def serving_versions(settings: Settings) -> dict:
    from pipeline.search.index import current_version

    adapter = serving_adapter(settings)
    return {"index": current_version(settings.index_dir), "adapter": adapter.name if adapter else None}


def load_serving_llm(settings: Settings):
    """The generative model: the configured base with the serving adapter merged in memory, if there is one."""
    from pipeline.llm.local import LocalLLM, load_llm

    if settings.llm_backend == "openai":  # the engine applies the adapter: call it by its published name
        from pipeline.serving.engine import answer_base_url, served_model
        from pipeline.llm.remote import OpenAIChatLLM

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

    from pipeline.training.merge import load_adapter_model

    metadata = json.loads((adapter / "metadata.json").read_text(encoding="utf-8"))
    model = load_adapter_model(adapter, metadata).merge_and_unload()
    llm = LocalLLM(model, AutoTokenizer.from_pretrained(str(adapter)), version=adapter.name)
    llm.serving = True  # reloaded when the adapter pointer moves
    log.info("serving adapter %s", adapter.name)
    return llm


def adapter_kind(adapter: Path | None) -> str | None:
    """``"reader"`` or ``"llm"`` (the generative model's adapter) from the adapter's metadata."""
    if adapter is None:
        return None
    try:
        metadata = json.loads((adapter / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "llm"
    return metadata.get("kind", "llm")


def load_serving_reader(settings: Settings):
    """The span reader: the promoted reader adapter when there is one, else ``READER_ADAPTER``."""
    from pipeline.answering.reader import SpanReader

    adapter = serving_adapter(settings)
    if adapter is not None and adapter_kind(adapter) == "reader":
        reader = SpanReader.load(settings.reader_model, adapter, cache_dir=settings.model_cache_dir)
        reader.version = adapter.name
        reader.serving = True  # reloaded when the adapter pointer moves
        log.info("serving reader adapter %s", adapter.name)
        return reader
    configured = settings.reader_adapter
    chosen = None if configured == "none" else ("shipped" if configured == "shipped" else Path(configured))
    reader = SpanReader.load(settings.reader_model, chosen, cache_dir=settings.model_cache_dir)
    reader.serving = True  # a later promotion replaces it
    return reader


# --- candidate index ------------------------------------------------------------------------------------

def _serving_vectors(settings: Settings) -> dict[str, np.ndarray]:
    """Vectors of the serving index by entry key, so the candidate only embeds what is new."""
    from pipeline.search.index import ENTRIES_FILE, META_FILE, VECTORS_FILE, current_version, version_dir

    version = current_version(settings.index_dir)
    if version is None:
        return {}
    folder = version_dir(settings.index_dir, version)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        if meta.get("embedding_model") != settings.embedding_model:
            return {}
        vectors = np.load(folder / VECTORS_FILE)
        with (folder / ENTRIES_FILE).open(encoding="utf-8") as handle:
            keys = [json.loads(line).get("key") for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        log.warning("serving vectors not reusable: %s", exc)
        return {}
    return {key: vectors[i] for i, key in enumerate(keys) if key}


def build_candidate_index(settings: Settings, chunks: list, qa_records: list[dict]):
    """Build an index of ``chunks`` + ``qa_records`` under ``DATA_DIR/index_staging``; serving is untouched."""
    from pipeline.search.index import build_index, questions_to_index

    staging = settings.data_dir / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    qa_records = questions_to_index(qa_records, generated=settings.index_generated_questions)
    return build_index(chunks, qa_records=qa_records, embedding_model=settings.embedding_model,
                       index_root=staging, keep=1, embedding_dtype=settings.embedding_dtype,
                       vector_cache=_serving_vectors(settings))


def _prune_indexes(settings: Settings, protect: set[str]) -> None:
    from pipeline.search.index import META_FILE, VERSIONS_DIR

    root = Path(settings.index_dir) / VERSIONS_DIR
    versions = sorted((p for p in root.iterdir() if p.is_dir() and (p / META_FILE).is_file()),
                      key=lambda p: ((p / META_FILE).stat().st_mtime_ns, p.name))
    for old in versions[:-KEEP_INDEX_VERSIONS]:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)


def promote(settings: Settings, *, index=None, adapter_dir: Path | None = None) -> dict:
    """Make the candidate ``index`` (an ``IndexInfo`` from :func:`build_candidate_index`) and/or ``adapter_dir``
    the serving ones; returns the serving versions before and after."""
    from pipeline.search.index import CURRENT_FILE, VERSIONS_DIR, record_in_database

    before = serving_versions(settings)
    pointer = adapter_pointer(settings)
    old_pointer = pointer.read_text(encoding="utf-8") if pointer.exists() else None
    if adapter_dir is not None:
        _atomic_write(pointer, Path(adapter_dir).name + "\n")
    try:
        if index is not None:
            target = Path(settings.index_dir) / VERSIONS_DIR / index.version
            target.parent.mkdir(parents=True, exist_ok=True)
            if Path(index.path) != target:
                shutil.move(str(index.path), str(target))
            _atomic_write(Path(settings.index_dir) / CURRENT_FILE, index.version + "\n")
    except BaseException:
        if adapter_dir is not None:  # put the adapter pointer back: both or neither
            if old_pointer is None:
                pointer.unlink(missing_ok=True)
            else:
                _atomic_write(pointer, old_pointer)
        raise
    if index is not None:
        from dataclasses import replace

        record_in_database(settings.database_url, replace(index, path=target))
        _prune_indexes(settings, {index.version, before["index"] or ""})
    after = serving_versions(settings)
    log.info("promoted: %s -> %s", before, after)
    return {"before": before, "after": after}

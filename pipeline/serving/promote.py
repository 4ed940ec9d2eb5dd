"""Promotion: how a candidate index and adapter replace the serving ones (read side: :mod:`pipeline.serving.versions`).

Two pointers, each a one-line file replaced atomically (:func:`pipeline.core.files.atomic_write_text`):

- ``DATA_DIR/index/CURRENT`` names the serving index version (``pipeline.search.index``);
- ``DATA_DIR/models/SERVING_ADAPTER`` names the serving adapter folder under ``DATA_DIR/models/adapters``
  (absent: the base model as configured);
- with ``LLM_BACKEND=openai``, ``DATA_DIR/models/ENGINE_ADAPTER`` names the adapter the engine answers with,
  moved only once the engine loaded it (:mod:`pipeline.serving.engine`).

The nightly job builds its candidate index *aside*, under ``DATA_DIR/index_staging`` (reusing the serving
version's vectors, so only new text is embedded), and trains its adapter into its own folder; nothing serving
changes until :func:`promote`, which moves the candidate index into ``index/versions`` and flips both
pointers (adapter first, index last; the adapter pointer is put back if the index flip fails). A running bot
notices the flip on its next question (:func:`pipeline.serving.versions.serving_stamp`, one ``stat`` per pointer) and
reloads: no restart.

Example::

    from pipeline.serving.promote import build_candidate_index, promote
    info = build_candidate_index(settings, chunks, qa_records)   # serving untouched
    promote(settings, index=info, adapter_dir=None)              # now it serves
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from pipeline.core.files import atomic_write_text
from pipeline.search.index import build_index, questions_to_index, record_in_database
from pipeline.search.store import (CURRENT_FILE, ENTRIES_FILE, META_FILE, VECTORS_FILE, VERSIONS_DIR, current_version,
                                   version_dir)
from pipeline.serving.versions import adapter_pointer, serving_versions
from pipeline.settings import Settings

log = logging.getLogger(__name__)

STAGING_DIR = "index_staging"
KEEP_INDEX_VERSIONS = 3


# --- candidate index ------------------------------------------------------------------------------------

def _serving_vectors(settings: Settings) -> dict[str, np.ndarray]:
    """Vectors of the serving index by entry key, so the candidate only embeds what is new."""
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
    staging = settings.data_dir / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    qa_records = questions_to_index(qa_records, generated=settings.index_generated_questions)
    return build_index(chunks, qa_records=qa_records, embedding_model=settings.embedding_model,
                       index_root=staging, keep=1, embedding_dtype=settings.embedding_dtype,
                       vector_cache=_serving_vectors(settings))


def _prune_indexes(settings: Settings, protect: set[str]) -> None:
    root = Path(settings.index_dir) / VERSIONS_DIR
    versions = sorted((p for p in root.iterdir() if p.is_dir() and (p / META_FILE).is_file()),
                      key=lambda p: ((p / META_FILE).stat().st_mtime_ns, p.name))
    for old in versions[:-KEEP_INDEX_VERSIONS]:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)


def promote(settings: Settings, *, index=None, adapter_dir: Path | None = None) -> dict:
    """Make the candidate ``index`` (an ``IndexInfo`` from :func:`build_candidate_index`) and/or ``adapter_dir``
    the serving ones; returns the serving versions before and after."""
    before = serving_versions(settings)
    pointer = adapter_pointer(settings)
    old_pointer = pointer.read_text(encoding="utf-8") if pointer.exists() else None
    if adapter_dir is not None:
        atomic_write_text(pointer, Path(adapter_dir).name + "\n")
    try:
        if index is not None:
            target = Path(settings.index_dir) / VERSIONS_DIR / index.version
            target.parent.mkdir(parents=True, exist_ok=True)
            if Path(index.path) != target:
                shutil.move(str(index.path), str(target))
            atomic_write_text(Path(settings.index_dir) / CURRENT_FILE, index.version + "\n")
    except BaseException:
        if adapter_dir is not None:  # put the adapter pointer back: both or neither
            if old_pointer is None:
                pointer.unlink(missing_ok=True)
            else:
                atomic_write_text(pointer, old_pointer)
        raise
    if index is not None:
        from dataclasses import replace

        record_in_database(settings.database_url, replace(index, path=target))
        _prune_indexes(settings, {index.version, before["index"] or ""})
    after = serving_versions(settings)
    log.info("promoted: %s -> %s", before, after)
    return {"before": before, "after": after}

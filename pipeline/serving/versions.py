"""The read side of the serving versions: which index, reader or LLM adapter, and engine adapter serve now.

Three pointers, each a one-line file replaced atomically by the promotion (:mod:`pipeline.serving.promote`) or
the engine publication (:mod:`pipeline.serving.engine`): ``DATA_DIR/index/CURRENT`` (the index version),
``DATA_DIR/models/SERVING_ADAPTER`` (the adapter folder's name) and ``DATA_DIR/models/ENGINE_ADAPTER`` (what the
answer engine was told to load). Every process reads them here: :func:`serving_stamp` changes whenever one is
replaced, which is the bots' cheap hot-reload check.

Example::

    from pipeline.serving.versions import serving_adapter, serving_stamp, served_model
    serving_adapter(settings)      # Path('data/models/adapters/20261202T030000Z') or None (the shipped one)
    serving_stamp(settings)        # compare with the last one seen: changed -> reload
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.search.store import CURRENT_FILE, current_version
from pipeline.settings import Settings

ADAPTER_POINTER = "SERVING_ADAPTER"
ENGINE_POINTER = "ENGINE_ADAPTER"


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
    stamp = []
    for path in (Path(settings.index_dir) / CURRENT_FILE, adapter_pointer(settings), engine_pointer(settings)):
        try:
            st = os.stat(path)
            stamp.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def serving_versions(settings: Settings) -> dict:
    adapter = serving_adapter(settings)
    return {"index": current_version(settings.index_dir), "adapter": adapter.name if adapter else None}


def engine_pointer(settings: Settings) -> Path:
    return settings.models_dir / ENGINE_POINTER


def published_adapter(settings: Settings) -> dict | None:
    """What the engine answers with since the last publication (``{"name", "adapter", "engine", "at"}``)."""
    try:
        record = json.loads(engine_pointer(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("name") else None


def served_model(settings: Settings) -> str:
    """The model name the bots call: the published adapter's, else ``OPENAI_ANSWER_MODEL``."""
    record = published_adapter(settings)
    return record["name"] if record else settings.openai_answer_model


def answer_base_url(settings: Settings) -> str | None:
    return settings.openai_answer_base_url or settings.openai_base_url

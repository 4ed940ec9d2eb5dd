"""Where a search index lives on disk: the layout of a version, the versions and ``CURRENT``.

``index_root/versions/<version>/`` holds one whole index (written by :func:`pipeline.search.index.build_index`);
``index_root/CURRENT`` names the one serving. ``.build-<pid>-<random>`` folders are versions being written;
those of a killed build are leftovers, removed by the next build. Older versions are pruned, the newest kept for
rollback. This module also reads back what a new build can reuse from the current version (vectors by entry
key, lexical token ids, the trained IVF lists).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from pipeline.search.lexical import LexicalIndex

# Moved out of pipeline.search.index: the log lines keep the name they always had (log files, filters, tests).
logger = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
INDEX_FILE = "faiss.index"
CHUNKS_FILE = "chunks.jsonl"
ENTRIES_FILE = "entries.jsonl"
META_FILE = "meta.json"
VECTORS_FILE = "vectors.npy"
LEXICAL_DIR = "lexical"
FORMAT = 2  # bump when the files' layout changes


def version_dir(index_root: Path, version: str) -> Path:
    return Path(index_root) / VERSIONS_DIR / version


def current_version(index_root: Path) -> str | None:
    """The version named in ``index_root/CURRENT``, or ``None`` when there is no usable index."""
    try:
        version = (Path(index_root) / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not version or not (version_dir(index_root, version) / META_FILE).is_file():
        if version:
            logger.warning("CURRENT names %s but %s has no such index", version, index_root)
        return None
    return version


BUILD_PREFIX = ".build-"  # + "<pid>-<random>": a version being written; renamed into place when whole
LEFTOVER_BUILD_AGE_S = 6 * 3600  # a build folder without a pid (older Oráculo) this old is a leftover


def _build_alive(folder: Path) -> bool:
    pid = folder.name[len(BUILD_PREFIX):].split("-", 1)[0]
    if not pid.isdigit():
        return time.time() - folder.stat().st_mtime < LEFTOVER_BUILD_AGE_S
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftover_builds(index_root: Path) -> list[str]:
    """Remove the ``.build-*`` folders of builds whose process is gone (killed mid-build); their names."""
    versions = Path(index_root) / VERSIONS_DIR
    removed = []
    for folder in versions.glob(BUILD_PREFIX + "*") if versions.is_dir() else []:
        try:
            if folder.is_dir() and not _build_alive(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        except OSError:  # removed meanwhile by another build
            continue
    if removed:
        logger.warning("removed %d unfinished index build(s) left by a killed process: %s", len(removed),
                       ", ".join(sorted(removed)))
    return removed


def prune_versions(index_root: Path, *, keep: int, protect: set[str]) -> None:
    versions = sorted((p for p in (Path(index_root) / VERSIONS_DIR).iterdir()
                       if p.is_dir() and (p / META_FILE).is_file()),
                      key=lambda p: ((p / META_FILE).stat().st_mtime_ns, p.name))  # oldest first
    for old in versions[:-keep] if keep > 0 else []:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("old index version removed: %s", old.name)


def load_previous_version(index_root: Path) -> tuple[Path, dict, list[dict]] | None:
    """Folder, meta and entry rows of the current version, or ``None`` when there is none or it is unreadable."""
    version = current_version(index_root)
    if version is None:
        return None
    folder = version_dir(index_root, version)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        with (folder / ENTRIES_FILE).open(encoding="utf-8") as handle:
            entries = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        logger.warning("cannot reuse index version %s: %s", version, exc)
        return None
    return folder, meta, entries


def reusable_vectors(previous: tuple[Path, dict, list[dict]] | None, identity: str, dim: int
                      ) -> dict[str, np.ndarray]:
    """Vectors of the previous version by entry key (empty when there is none or it used another model or
    precision)."""
    if previous is None:
        return {}
    folder, meta, entries = previous
    if meta.get("embedding_identity", meta.get("embedding_model")) != identity or meta.get("dim") != dim \
            or not (folder / VECTORS_FILE).is_file():
        return {}
    try:
        vectors = np.load(folder / VECTORS_FILE)  # read whole: 50k row views of a memmap cost 0.4 s
    except (OSError, ValueError) as exc:
        logger.warning("cannot reuse the vectors of %s: %s", folder.name, exc)
        return {}
    if len(vectors) != len(entries):
        return {}
    return {entry["key"]: vectors[i] for i, entry in enumerate(entries) if entry.get("key")}


def reusable_tokens(previous: tuple[Path, dict, list[dict]] | None):
    """Lexical token ids of the previous version's rows (``None`` when there is none)."""
    if previous is None:
        return None
    folder, _, entries = previous
    return LexicalIndex.saved_tokens(folder / LEXICAL_DIR, [entry.get("text", "") for entry in entries])


def reusable_dense_index(index_root: Path):
    import faiss

    version = current_version(index_root)
    if version is None or not (version_dir(index_root, version) / INDEX_FILE).is_file():
        return None
    try:
        return faiss.deserialize_index(np.fromfile(version_dir(index_root, version) / INDEX_FILE, dtype=np.uint8))
    except (OSError, RuntimeError):
        return None

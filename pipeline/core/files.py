r"""Files written so that no reader ever sees half of one: the one atomic writer of the project.

Feedback exports, pointers of the serving versions, the abstention model, stored documents and rehearsal
samples all go through :func:`atomic_file` (temp file in the same folder, fsync, ``os.replace``);
folders built once (a materialised model, an index version) through :func:`atomic_dir`.

Example::

    >>> import tempfile, pathlib
    >>> from pipeline.core.files import atomic_write_text, write_jsonl_atomic
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(folder / "CURRENT", "v2\n")
    >>> write_jsonl_atomic(folder / "a.jsonl", [{"b": 1}, {"a": 2}])
    2
    >>> (folder / "a.jsonl").read_text()
    '{"b": 1}\n{"a": 2}\n'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


@contextmanager
def atomic_file(path: Path, *, binary: bool = False, mode: int = 0o644, once: bool = False) -> Iterator[TextIO]:
    """A text handle whose content replaces ``path`` in one step (temp file in the same folder, fsync,
    ``os.replace``) when the block ends without error; on error the temp file is removed and ``path`` is
    untouched, so a reader never sees a half-written file, even after a kill. ``binary``: a bytes handle;
    ``mode``: the file's permissions (``0o600`` for a secret), set before anything is written.
    ``once``: never replace an existing ``path`` — the temp file is hard-linked into place, which fails when the
    name exists, so of two processes writing at the same moment the first one's file stays (see
    :func:`create_once`). The temp file's name starts with a dot: folder scans skip it as hidden."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # by default 0644: mkstemp's 0600 would hide the file from other tools
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if not once:
            os.replace(tmp_name, path)
        else:
            try:
                os.link(tmp_name, path)
            except FileExistsError:
                pass  # another process created it first: theirs is the one
    finally:
        Path(tmp_name).unlink(missing_ok=True)  # gone already after os.replace


@contextmanager
def atomic_dir(target: Path, *, marker: str) -> Iterator[Path]:
    """A temporary folder beside ``target`` that becomes ``target`` in one rename when the block ends without
    error, so readers never see half a folder. Built once: when another process renamed its own copy into place
    first (its ``marker`` file exists), that one is kept and this one dropped. On error nothing is left."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: theirs is identical
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def create_once(path: Path, text: str, *, mode: int = 0o644) -> str:
    """Write ``text`` to ``path`` unless the file exists, and return what ``path`` holds: when two processes
    create it at the same moment, both get the one that landed first, never one each (``atomic_file(once=True)``).
    """
    if not path.exists():
        with atomic_file(path, mode=mode, once=True) as handle:
            handle.write(text)
    return path.read_text(encoding="utf-8")


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` atomically (see ``atomic_file``)."""
    with atomic_file(path, mode=mode) as handle:
        handle.write(text)


def write_jsonl_atomic(path: Path, records: Iterable[Mapping[str, Any]], *, sort_keys: bool = True) -> int:
    """Write one JSON object per line to `path` atomically (see ``atomic_file``); return the count."""
    count = 0
    with atomic_file(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=sort_keys) + "\n")
            count += 1
    return count

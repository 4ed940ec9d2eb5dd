"""Optional cross-encoder reranking: any sentence-transformers ``CrossEncoder`` id or local path.

Off by default (``RERANKER_MODEL`` empty): the embedded defaults ship no Portuguese reranker. When configured,
:class:`pipeline.search.retrieve.Retriever` reorders its best ``RERANK_DEPTH`` chunks by the cross-encoder's score.

Example::

    >>> from pipeline.search.rerank import load_reranker, rerank_scores
    >>> model = load_reranker("cross-encoder/mmarco-mMiniLMv2-L12-H384-v1")  # doctest: +SKIP
    >>> rerank_scores(model, "Onde fica a UFMS?",
    ...               ["A UFMS fica em Campo Grande.", "O MEC é um ministério."])  # doctest: +SKIP
    [7.1, -4.2]
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_cache: dict[str, Any] = {}
_lock = threading.Lock()


def load_reranker(name: str):
    """The ``CrossEncoder`` for ``name`` on CPU, loaded once per process."""
    with _lock:
        model = _cache.get(name)
        if model is None:
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(name, device="cpu", local_files_only=Path(name).is_dir())
            _cache[name] = model
    return model


def rerank_scores(model, query: str, passages: list[str]) -> list[float]:
    """The cross-encoder's relevance score of each passage for ``query`` (higher is better)."""
    if not passages:
        return []
    scores = model.predict([(query, p) for p in passages], show_progress_bar=False, convert_to_numpy=True)
    return [float(s) for s in scores]

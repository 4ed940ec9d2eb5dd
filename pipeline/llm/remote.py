"""Answers from an OpenAI-compatible chat-completions server (vLLM, llama.cpp's server, Ollama, OpenAI itself).

``LLM_BACKEND=openai`` moves generation out of the bot process: the model runs on an engine (a GPU server, or
``python -m pipeline.llm.llamacpp serve`` on a CPU box) and every bot process calls it over HTTP with the real
``openai`` client. Same interface as :class:`pipeline.llm.local.LocalLLM` (``generate``, ``stream``, ``version``), so
the answerer, the streaming into Telegram and the grounding check are unchanged.

Failure rules: the client retries 408/409/429/5xx and connection errors ``OPENAI_ANSWER_MAX_RETRIES`` times with
exponential backoff (``retry-after`` honoured); every request has ``OPENAI_ANSWER_TIMEOUT_S``. What still fails —
the server down, a stream cut in the middle, an unknown model — raises :class:`pipeline.llm.local.LLMUnavailable`, and
the answerer gives the reader's (or extractive) answer with a notice instead. Latency, time to the first piece
and token usage of each call are logged and kept for the interaction (:func:`pipeline.llm.local.take_last_call`);
the API key never reaches a log line (it is only in the client's headers, and ``pipeline.core.redaction`` masks it).

Example::

    >>> from pipeline.llm.remote import OpenAIChatLLM
    >>> llm = OpenAIChatLLM(base_url="http://127.0.0.1:8080/v1", api_key=None, model="oraculo")
    >>> llm.generate([{"role": "user", "content": "Diga olá."}], max_new_tokens=8)   # doctest: +SKIP
    'Olá! Como posso ajudar?'
"""

from __future__ import annotations

import logging
import time
from typing import Iterator

from pipeline.llm.local import LLMCall, LLMUnavailable, note_call

log = logging.getLogger(__name__)

# llama.cpp's server and vLLM accept any key when started without one; the client refuses an empty one.
NO_KEY = "no-key"


class OpenAIChatLLM:
    """Greedy chat replies from an OpenAI-compatible server; thread-safe (one client, one connection pool)."""

    def __init__(self, *, base_url: str | None, api_key: str | None, model: str, timeout_s: float = 30.0,
                 max_retries: int = 2) -> None:
        import openai

        if not model:
            raise ValueError("LLM_BACKEND=openai needs OPENAI_ANSWER_MODEL (the model or adapter name to call)")
        self.model = model
        self.version = f"{model}@openai"
        self.serving = True  # rebuilt when the serving pointers move (a newly published adapter name)
        self._openai = openai
        # Status errors after the retries, timeouts, refused connections and streams cut in the middle (the
        # client wraps its transport's errors in APIConnectionError / APITimeoutError).
        self._transport_errors = (openai.OpenAIError,)
        # Connecting is fast or hopeless: a down server must not hold the citizen for the whole read timeout.
        timeout = openai.Timeout(timeout_s, connect=min(5.0, timeout_s))
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout,
                                     max_retries=max_retries)
        self._stream_usage = True  # ask for usage in the stream's last chunk until a server refuses it

    def _request(self, messages: list[dict], max_new_tokens: int, **extra):
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        return self._client.chat.completions.create(model=self.model, messages=messages, max_tokens=max_new_tokens,
                                                    temperature=0.0, **extra)

    def _unavailable(self, exc: BaseException, started: float) -> LLMUnavailable:
        status = getattr(exc, "status_code", None)
        log.warning("answer engine failed model=%s after_ms=%.0f error=%s%s", self.model,
                    (time.perf_counter() - started) * 1000, type(exc).__name__,
                    f" status={status}" if status else "")
        return LLMUnavailable(f"{type(exc).__name__}{f' ({status})' if status else ''}")

    def _note(self, started: float, first_piece: float | None, usage, pieces: int | None = None) -> None:
        call = LLMCall(model=self.model, latency_ms=round((time.perf_counter() - started) * 1000, 1),
                       first_piece_ms=None if first_piece is None else round((first_piece - started) * 1000, 1),
                       prompt_tokens=getattr(usage, "prompt_tokens", None),
                       completion_tokens=getattr(usage, "completion_tokens", None), pieces=pieces)
        note_call(call)
        log.info("answer engine model=%s latency_ms=%.0f first_piece_ms=%s prompt_tokens=%s completion_tokens=%s "
                 "pieces=%s", call.model, call.latency_ms, call.first_piece_ms, call.prompt_tokens,
                 call.completion_tokens, call.pieces)

    def generate(self, messages: list[dict], *, max_new_tokens: int) -> str:
        """Greedy reply to ``messages``; :class:`LLMUnavailable` when the server cannot give one."""
        started = time.perf_counter()
        try:
            completion = self._request(messages, max_new_tokens)
        except self._transport_errors as exc:
            raise self._unavailable(exc, started) from exc
        if isinstance(completion, str) or not completion.choices:  # a proxy's error page, or an empty reply
            log.warning("answer engine gave no choices model=%s", self.model)
            raise LLMUnavailable("reply without choices")
        self._note(started, None, completion.usage)
        return (completion.choices[0].message.content or "").strip()

    def _open_stream(self, messages: list[dict], max_new_tokens: int):
        if self._stream_usage:
            try:
                return self._request(messages, max_new_tokens, stream=True,
                                     stream_options={"include_usage": True})
            except self._openai.BadRequestError:  # an older server that knows no stream_options
                log.info("answer engine refused stream_options: streaming without usage")
                self._stream_usage = False
        return self._request(messages, max_new_tokens, stream=True)

    def stream(self, messages: list[dict], *, max_new_tokens: int) -> Iterator[str]:
        """The same reply piece by piece; :class:`LLMUnavailable` also when the stream breaks in the middle."""
        started = time.perf_counter()
        first_piece = usage = None
        pieces = 0
        try:
            chunks = self._open_stream(messages, max_new_tokens)
            with chunks:
                for chunk in chunks:
                    usage = getattr(chunk, "usage", None) or usage
                    piece = chunk.choices[0].delta.content if chunk.choices else None
                    if piece:
                        first_piece = first_piece or time.perf_counter()
                        pieces += 1
                        yield piece
        except self._transport_errors as exc:
            raise self._unavailable(exc, started) from exc
        self._note(started, first_piece, usage, pieces)

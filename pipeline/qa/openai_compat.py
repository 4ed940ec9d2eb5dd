"""QA pairs from any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp's server).

One request per chunk, asking for structured JSON (``response_format`` with a JSON schema; a server that refuses
it with HTTP 400 is asked again with ``json_object`` and then with no ``response_format`` at all, and the
working mode is kept for the rest of the run). Transport failures are retried by the ``openai`` client itself
(``max_retries``): 408/409/429/5xx, timeouts and dropped connections, with exponential backoff, honouring
``retry-after`` / ``retry-after-ms``. A reply that is not the JSON asked for (not JSON, wrong shape, an empty
``choices`` list, a body that is no chat completion at all, such as a proxy's HTML page) is asked again up to
``malformed_retries`` times with no wait (it is not a rate problem), then recorded as an error. Nothing here raises for
a chunk: :meth:`OpenAIQAGenerator.generate_chunk` always returns a :class:`ChunkResult`. Token usage of every reply
(retries included) is added up.

Example (any server; ``OPENAI_BASE_URL=http://localhost:11434/v1`` for Ollama)::

    from pipeline.qa.openai_compat import OpenAIQAGenerator
    gen = OpenAIQAGenerator(base_url="http://localhost:8000/v1", api_key="sk-local", model="qwen2.5-7b",
                            timeout_s=60, concurrency=8)
    result = gen.generate_chunk(doc, chunk)        # ChunkResult(items=[{"question", "answer"}], usage=..., error=None)
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field

from pipeline.documents.chunking import Chunk
from pipeline.documents.text import Document

logger = logging.getLogger(__name__)

MAX_OPENAI_PER_CHUNK = 4
RESPONSE_MODES = ("json_schema", "json_object", "none")

# The generation prompt is Portuguese on purpose: the questions must read like a Brazilian citizen's.
SYSTEM_PROMPT = (
    "Você cria pares de pergunta e resposta em português do Brasil a partir de trechos de documentos "
    "públicos brasileiros. Responda somente com um objeto JSON, sem texto antes ou depois."
)
USER_PROMPT = (
    "Documento: {title}\n"
    "Trecho:\n\"\"\"\n{text}\n\"\"\"\n\n"
    "Escreva até {n} perguntas que um cidadão faria e que este trecho responde. Para cada pergunta, a "
    "resposta deve ser copiada literalmente do trecho (a frase ou expressão que responde), sem reescrever.\n"
    'Formato: {{"pairs": [{{"question": "...", "answer": "..."}}]}}'
)
PAIRS_SCHEMA = {
    "type": "object",
    "properties": {"pairs": {"type": "array", "items": {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"], "additionalProperties": False}}},
    "required": ["pairs"], "additionalProperties": False,
}


@dataclass
class ChunkResult:
    """What one chunk gave: the raw ``{"question", "answer"}`` items, the tokens spent, or the error."""

    chunk_id: str
    items: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    error: str | None = None
    attempts: int = 0


def parse_pairs_json(content: str) -> list[dict]:
    """The ``[{"question", "answer"}]`` list of a model reply; ``ValueError`` when the reply is unusable.

    Tolerates Markdown code fences and a bare list instead of ``{"pairs": [...]}``.
    """
    text = (content or "").strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, flags=re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"reply is not JSON: {exc}") from None
    items = data.get("pairs") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("reply has no 'pairs' list")
    pairs = [{"question": item["question"], "answer": item["answer"]} for item in items if isinstance(item, dict)
             and isinstance(item.get("question"), str) and item["question"].strip()
             and isinstance(item.get("answer"), str) and item["answer"].strip()]
    if items and not pairs:
        raise ValueError("no item of 'pairs' has a non-empty 'question' and 'answer'")
    return pairs


class MalformedReply(ValueError):
    """The server answered 200 but not with the JSON asked for."""


class OpenAIQAGenerator:
    """Chunk -> raw QA items through an OpenAI-compatible server; see the module docstring for the failure rules."""

    def __init__(self, *, base_url: str | None, api_key: str, model: str, timeout_s: float = 60.0,
                 max_retries: int = 4, malformed_retries: int = 2, concurrency: int = 4,
                 per_chunk: int = MAX_OPENAI_PER_CHUNK, response_mode: str = "json_schema") -> None:
        import openai  # deferred: only this generator needs it

        if response_mode not in RESPONSE_MODES:
            raise ValueError(f"response_mode must be one of {RESPONSE_MODES}")
        self.model = model
        self.name = f"openai:{model}"
        self.per_chunk = per_chunk
        self.concurrency = max(1, int(concurrency))
        self.malformed_retries = max(0, int(malformed_retries))
        self.response_mode = response_mode
        self._mode_lock = threading.Lock()
        self._openai = openai
        # One client for all worker threads: it is thread-safe and keeps one connection pool.
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries)

    def _response_format(self, mode: str) -> dict:
        if mode == "json_schema":
            return {"response_format": {"type": "json_schema", "json_schema": {
                "name": "qa_pairs", "strict": True, "schema": PAIRS_SCHEMA}}}
        if mode == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {}

    def _create(self, doc: Document, chunk: Chunk):
        """One completion; on HTTP 400 steps down the response modes (json_schema -> json_object -> none)."""
        while True:
            mode = self.response_mode
            try:
                return self._client.chat.completions.create(
                    model=self.model,  # no temperature: some models (reasoning ones) refuse any value but the default
                    messages=[{"role": "system", "content": SYSTEM_PROMPT},
                              {"role": "user", "content": USER_PROMPT.format(title=doc.title, text=chunk.text,
                                                                             n=self.per_chunk)}],
                    **self._response_format(mode))
            except self._openai.BadRequestError:
                with self._mode_lock:
                    if self.response_mode == mode and mode != "none":
                        self.response_mode = RESPONSE_MODES[RESPONSE_MODES.index(mode) + 1]
                        logger.warning("server refused response_format=%s; using %s", mode, self.response_mode)
                if mode == "none":
                    raise

    def generate_chunk(self, doc: Document, chunk: Chunk) -> ChunkResult:
        """Ask for the pairs of one chunk; never raises for a server or reply problem."""
        result = ChunkResult(chunk_id=chunk.id)
        for attempt in range(1 + self.malformed_retries):  # transport retries happen inside the client
            result.attempts = attempt + 1
            try:
                completion = self._create(doc, chunk)
            except self._openai.OpenAIError as exc:  # status errors after the client's retries, timeouts
                result.error = f"{type(exc).__name__}: {exc}"
                break
            usage = getattr(completion, "usage", None)
            for key in result.usage:
                result.usage[key] += int(getattr(usage, key, 0) or 0)
            try:
                if isinstance(completion, str):  # the openai client hands back a body that is not JSON as text
                    raise MalformedReply(f"server replied with a body that is not JSON: {completion[:120]!r}")
                if not completion.choices:
                    raise MalformedReply("reply has an empty 'choices' list")
                items = parse_pairs_json(completion.choices[0].message.content or "")
            except ValueError as exc:
                result.error = f"MalformedReply: {exc}"
                logger.info("malformed reply for %s (attempt %d): %s", chunk.id, attempt + 1, exc)
                continue
            result.items, result.error = items[: self.per_chunk], None
            break
        if result.error:
            logger.warning("QA generation failed for %s: %s", chunk.id, result.error)
        return result

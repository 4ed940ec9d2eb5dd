"""Question-answer pairs from documents: offline templates or any OpenAI-compatible chat server.

The pairs feed the index (a question is one more way to reach its chunk) and LoRA training. One record per
line in ``<qa_dir>/<document>.jsonl``; the record format is shared with the feedback export::

    {"id", "question", "answer", "document", "chunk_id", "span": [start, end], "tags": [...],
     "generator": "offline" | "openai:<model>" | "feedback" | "human", "created_at": ISO-8601 UTC}

``span`` is where the answer's supporting text lies in ``Document.text``.

Example::

    >>> from pathlib import Path
    >>> from pipeline.documents import load_documents
    >>> from pipeline.qa import generate_qa, load_qa_records
    >>> summary = generate_qa(load_documents(None), out_dir=Path("/tmp/oraculo_qa"), generator="offline")
    >>> records = load_qa_records(Path("/tmp/oraculo_qa"))      # every *.jsonl there, generated or not
    >>> sorted(records[0])
    ['answer', 'chunk_id', 'created_at', 'document', 'generator', 'id', 'question', 'span', 'tags']
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Protocol

from pipeline.chunking import Chunk, chunk_document, split_sentences
from pipeline.documents import Document
from pipeline.qa_templates import questions_for_sentence

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MAX_OFFLINE_PER_CHUNK = 6
MAX_OPENAI_PER_CHUNK = 4


@dataclass
class QAPair:
    """One question with its answer and where the answer comes from."""

    id: str
    question: str
    answer: str
    document: str
    chunk_id: str
    span: tuple[int, int]
    tags: list[str] = field(default_factory=list)
    generator: str = "offline"
    created_at: str = ""

    def to_record(self) -> dict:
        record = asdict(self)
        record["span"] = [int(self.span[0]), int(self.span[1])]
        return record


class QAGenerator(Protocol):
    name: str

    def generate(self, doc: Document, chunks: list[Chunk]) -> list[QAPair]: ...


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _pair_id(document: str, question: str, span: tuple[int, int]) -> str:
    digest = hashlib.sha1(f"{question}|{span[0]}|{span[1]}".encode()).hexdigest()[:12]
    return f"{document}:{digest}"


def _question_key(question: str) -> str:
    return re.sub(r"\W+", " ", question.lower()).strip()


# --- offline --------------------------------------------------------------------------------------------------

def generate_offline(doc: Document, chunks: list[Chunk]) -> list[QAPair]:
    """Template questions (definitions, dates, quantities, values, who, where) from each chunk's sentences.

    The answer is the supporting sentence, never the whole chunk; ``span`` is exact in ``doc.text``.
    """
    pairs: list[QAPair] = []
    seen: set[str] = set()
    created_at = _now()
    for chunk in chunks:
        per_chunk = 0
        for start, end in split_sentences(doc.text, chunk.start, chunk.end):
            sentence = doc.text[start:end]
            for kind, question in questions_for_sentence(sentence):
                key = _question_key(question)
                if key in seen or per_chunk >= MAX_OFFLINE_PER_CHUNK:
                    continue
                seen.add(key)
                per_chunk += 1
                pairs.append(QAPair(id=_pair_id(doc.name, question, (start, end)), question=question,
                                    answer=sentence, document=doc.name, chunk_id=chunk.id, span=(start, end),
                                    tags=[kind], generator="offline", created_at=created_at))
    return pairs


class OfflineQAGenerator:
    """The template generator as an object, interchangeable with :class:`OpenAIQAGenerator`."""

    name = "offline"

    def __init__(self) -> None:
        self.errors: list[dict] = []

    def generate(self, doc: Document, chunks: list[Chunk]) -> list[QAPair]:
        return generate_offline(doc, chunks)


# --- OpenAI-compatible ----------------------------------------------------------------------------------------

# The generation prompt is Portuguese on purpose: the questions must read like a Brazilian citizen's.
_SYSTEM_PROMPT = (
    "Você cria pares de pergunta e resposta em português do Brasil a partir de trechos de documentos "
    "públicos brasileiros. Responda somente com um objeto JSON, sem texto antes ou depois."
)
_USER_PROMPT = (
    "Documento: {title}\n"
    "Trecho:\n\"\"\"\n{text}\n\"\"\"\n\n"
    "Escreva até {n} perguntas que um cidadão faria e que este trecho responde. Para cada pergunta, a "
    "resposta deve ser copiada literalmente do trecho (a frase ou expressão que responde), sem reescrever.\n"
    'Formato: {{"pairs": [{{"question": "...", "answer": "..."}}]}}'
)


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
    pairs = [item for item in items if isinstance(item, dict)
             and isinstance(item.get("question"), str) and item["question"].strip()
             and isinstance(item.get("answer"), str) and item["answer"].strip()]
    if items and not pairs:
        raise ValueError("no item of 'pairs' has a non-empty 'question' and 'answer'")
    return pairs


def locate_answer(doc_text: str, chunk: Chunk, answer: str) -> tuple[tuple[int, int], bool]:
    """Span of ``answer`` inside the chunk (exact, then ignoring case and spacing); the chunk span otherwise.

    Returns ``(span, found)``.
    """
    answer = answer.strip()
    pos = doc_text.find(answer, chunk.start, chunk.end)
    if answer and pos >= 0:
        return (pos, pos + len(answer)), True
    words = [re.escape(w) for w in answer.split()]
    if words:
        pattern = re.compile(r"\s+".join(words), flags=re.IGNORECASE)
        match = pattern.search(doc_text, chunk.start, chunk.end)
        if match:
            return (match.start(), match.end()), True
    return (chunk.start, chunk.end), False


class OpenAIQAGenerator:
    """QA pairs from an OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp).

    A malformed reply or a failed request is recorded in ``errors`` and the chunk is skipped.
    """

    def __init__(self, *, base_url: str | None, api_key: str, model: str, timeout_s: float,
                 max_retries: int = 3, per_chunk: int = MAX_OPENAI_PER_CHUNK, json_mode: bool = True) -> None:
        import openai  # deferred: only this generator needs it

        self.model = model
        self.name = f"openai:{model}"
        self.per_chunk = per_chunk
        self.json_mode = json_mode  # response_format=json_object; turn off for servers that reject it
        self.errors: list[dict] = []
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s,
                                     max_retries=max_retries)

    def _ask(self, doc: Document, chunk: Chunk) -> str:
        extra = {"response_format": {"type": "json_object"}} if self.json_mode else {}
        completion = self._client.chat.completions.create(
            model=self.model,  # no temperature: some models (reasoning ones) refuse any value but the default
            messages=[{"role": "system", "content": _SYSTEM_PROMPT},
                      {"role": "user", "content": _USER_PROMPT.format(title=doc.title, text=chunk.text,
                                                                      n=self.per_chunk)}],
            **extra,
        )
        return completion.choices[0].message.content or ""

    def generate(self, doc: Document, chunks: list[Chunk]) -> list[QAPair]:
        pairs: list[QAPair] = []
        seen: set[str] = set()
        for chunk in chunks:
            try:
                items = parse_pairs_json(self._ask(doc, chunk))
            except Exception as exc:  # network, HTTP status, malformed body or reply: record, go on
                self.errors.append({"document": doc.name, "chunk_id": chunk.id,
                                    "error": f"{type(exc).__name__}: {exc}"})
                logger.warning("QA generation failed for %s: %s: %s", chunk.id, type(exc).__name__, exc)
                continue
            created_at = _now()
            for item in items[: self.per_chunk]:
                question = " ".join(item["question"].split())
                key = _question_key(question)
                if key in seen:
                    continue
                seen.add(key)
                span, found = locate_answer(doc.text, chunk, item["answer"])
                answer = doc.text[span[0]:span[1]] if found else " ".join(item["answer"].split())
                pairs.append(QAPair(id=_pair_id(doc.name, question, span), question=question, answer=answer,
                                    document=doc.name, chunk_id=chunk.id, span=span,
                                    tags=["llm"] if found else ["llm", "span:chunk"],
                                    generator=self.name, created_at=created_at))
        return pairs


# --- files ----------------------------------------------------------------------------------------------------

@dataclass
class GenerationSummary:
    generated: list[str] = field(default_factory=list)  # document names (re)generated this run
    skipped: list[str] = field(default_factory=list)  # unchanged since the last run with the same generator
    removed: list[str] = field(default_factory=list)  # generated files of documents that are gone
    n_pairs: int = 0  # pairs written this run
    errors: list[dict] = field(default_factory=list)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _read_manifest(out_dir: Path) -> dict:
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def generate_qa(documents: list[Document], *, out_dir: Path, generator: QAGenerator | str = "offline",
                max_chars: int = 900) -> GenerationSummary:
    """Write ``out_dir/<doc>.jsonl`` for every document whose text or generator changed since the last run.

    ``generator`` is ``"offline"`` or an object with ``name`` and ``generate(doc, chunks)`` (for instance an
    :class:`OpenAIQAGenerator`). A document whose generation recorded errors is retried on the next run.
    """
    out_dir = Path(out_dir)
    gen: QAGenerator = OfflineQAGenerator() if generator == "offline" else generator  # type: ignore[assignment]
    if isinstance(gen, str):
        raise ValueError(f"unknown generator {gen!r}")
    manifest = _read_manifest(out_dir)
    summary = GenerationSummary()
    for doc in documents:
        entry = manifest.get(doc.name, {})
        path = out_dir / f"{doc.name}.jsonl"
        if (entry.get("sha256") == doc.sha256 and entry.get("generator") == gen.name
                and entry.get("max_chars") == max_chars and not entry.get("errors") and path.exists()):
            summary.skipped.append(doc.name)
            continue
        errors_before = len(getattr(gen, "errors", []))
        pairs = gen.generate(doc, chunk_document(doc, max_chars=max_chars))
        new_errors = list(getattr(gen, "errors", [])[errors_before:])
        write_jsonl(path, (p.to_record() for p in pairs))
        manifest[doc.name] = {"sha256": doc.sha256, "generator": gen.name, "max_chars": max_chars,
                              "n_pairs": len(pairs), "errors": len(new_errors), "updated_at": _now()}
        summary.generated.append(doc.name)
        summary.n_pairs += len(pairs)
        summary.errors.extend(new_errors)
    present = {doc.name for doc in documents}
    for name in sorted(set(manifest) - present):
        (out_dir / f"{name}.jsonl").unlink(missing_ok=True)  # only files this function wrote are listed
        del manifest[name]
        summary.removed.append(name)
    atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True))
    logger.info("QA generation (%s): %d generated, %d skipped, %d removed, %d pairs, %d errors", gen.name,
                len(summary.generated), len(summary.skipped), len(summary.removed), summary.n_pairs,
                len(summary.errors))
    return summary


def _record_problem(record: object) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for key in ("question", "answer", "document"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"missing or empty {key!r}"
    span = record.get("span")
    if span is not None and not (isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)):
        return "'span' must be [start, end]"
    return None


def load_qa_records(qa_dir: Path) -> list[dict]:
    """Every record of every ``*.jsonl`` in ``qa_dir`` (sorted by file); bad lines are logged and skipped.

    ``qa_dir`` may also be one ``.jsonl`` file (e.g. the feedback export); a missing path gives ``[]``.
    """
    records: list[dict] = []
    qa_dir = Path(qa_dir)
    if qa_dir.is_file():
        files = [qa_dir]
    elif qa_dir.is_dir():
        files = sorted(qa_dir.glob("*.jsonl"))
    else:
        return records
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    logger.warning("%s:%d: invalid JSON (%s), skipped", path, lineno, exc.msg)
                    continue
                problem = _record_problem(record)
                if problem:
                    logger.warning("%s:%d: %s, skipped", path, lineno, problem)
                    continue
                records.append(record)
    return records

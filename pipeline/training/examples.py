"""Training examples for the answer model: question + context -> answer, tokenised the way serving prompts.

Each QA record (generated, hand-written or validated feedback; see ``pipeline.qa.records.qa_records``) becomes the
chat of ``pipeline.llm.prompt.build_messages(question, hits)`` where the hits are the record's own chunk (looked
up in the documents by ``chunk_id``), followed by the answer and the end-of-turn token. Only the answer tokens
carry a label: the model is never taught to write the documents or the question.

Train/validation split: ``GroupShuffleSplit`` grouped by document, so no document is on both sides.
Batches: length-grouped (similar lengths together) so right padding wastes almost nothing.

Example::

    >>> from pipeline.documents.load import load_documents
    >>> from pipeline.training.examples import context_hits
    >>> docs = {d.name: d for d in load_documents(None)}
    >>> hits = context_hits({"document": "UFMS", "chunk_id": "UFMS:0-40", "question": "q", "answer": "a"}, docs)
    >>> hits[0].chunk.text == docs["UFMS"].text[0:40]
    True
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass

from pipeline.documents.chunking import Chunk, chunk_document
from pipeline.documents.text import Document
from pipeline.llm.prompt import build_messages
from pipeline.search.retrieve import Hit

IGNORE_INDEX = -100  # label of the tokens that carry no loss (prompt, padding)
_CHUNK_SPAN = re.compile(r":(\d+)-(\d+)$")


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on the prompt
    document: str

    @property
    def n_answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def data_hash(records: list[dict]) -> str:
    """sha256 of what training reads from ``records`` (order-independent)."""
    keys = sorted(json.dumps([r.get("question"), r.get("answer"), r.get("document"), r.get("chunk_id")],
                             ensure_ascii=False) for r in records)
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()


def _chunk_index(documents: dict[str, Document]) -> dict[str, Chunk]:
    return {chunk.id: chunk for doc in documents.values() for chunk in chunk_document(doc)}


def context_hits(record: dict, documents: dict[str, Document], chunks: dict[str, Chunk] | None = None) -> list:
    """The record's own chunk as a one-hit context (``[]`` when its document is unknown)."""
    chunk_id = str(record.get("chunk_id") or "")
    chunk = (chunks or {}).get(chunk_id)
    if chunk is None:
        doc = documents.get(str(record.get("document")))
        if doc is None:
            return []
        match = _CHUNK_SPAN.search(chunk_id)
        start, end = (int(match.group(1)), int(match.group(2))) if match else tuple(record.get("span") or (0, 0))
        if not 0 <= start < end <= len(doc.text):
            return []
        chunk = Chunk(id=f"{doc.name}:{start}-{end}", document=doc.name, title=doc.title,
                      text=doc.text[start:end], start=start, end=end)
    return [Hit(chunk=chunk, score=1.0, via="chunk")]


def encode_example(tokenizer, question: str, answer: str, hits: list, *, document: str,
                   eos_id: int | None = None) -> Example:
    """Prompt (the serving chat template, generation prompt included) + answer + end-of-turn token."""
    prompt = tokenizer.apply_chat_template(build_messages(question, hits), add_generation_prompt=True,
                                           tokenize=True, return_dict=True)["input_ids"]
    answer_ids = tokenizer(answer.strip(), add_special_tokens=False)["input_ids"]
    eos_id = tokenizer.eos_token_id if eos_id is None else eos_id
    if eos_id is not None:
        answer_ids = answer_ids + [eos_id]  # generation stops on it at serving time
    return Example(input_ids=list(prompt) + answer_ids, labels=[IGNORE_INDEX] * len(prompt) + answer_ids,
                   document=document)


def build_examples(records: list[dict], documents: list[Document], tokenizer, *, max_length: int,
                   eos_id: int | None = None) -> tuple[list[Example], dict]:
    """Encoded examples and counts of what was dropped (unknown document, too long).

    ``eos_id``: the token generation stops on (default: the tokenizer's end-of-sequence token).
    """
    by_name = {doc.name: doc for doc in documents}
    chunks = _chunk_index(by_name)
    examples, dropped = [], {"no_context": 0, "too_long": 0}
    for record in records:
        hits = context_hits(record, by_name, chunks)
        if not hits:
            dropped["no_context"] += 1
            continue
        example = encode_example(tokenizer, record["question"], record["answer"], hits,
                                 document=str(record["document"]), eos_id=eos_id)
        if len(example.input_ids) > max_length:
            dropped["too_long"] += 1
            continue
        examples.append(example)
    return examples, dropped


def split_by_document(examples: list[Example], *, val_fraction: float, seed: int) -> tuple[list, list]:
    """Train/validation examples with every document on one side only (scikit-learn's GroupShuffleSplit)."""
    from sklearn.model_selection import GroupShuffleSplit

    groups = [example.document for example in examples]
    if val_fraction <= 0 or len(set(groups)) < 2:
        return list(examples), []
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    train_idx, val_idx = next(splitter.split(examples, groups=groups))
    return [examples[i] for i in train_idx], [examples[i] for i in val_idx]


def length_grouped_batches(lengths: list[int], *, batch_size: int, seed: int, epoch: int,
                           mega: int = 32) -> list[list[int]]:
    """Index batches for one epoch: shuffled, sorted by length inside windows of ``mega`` batches, reshuffled.

    Deterministic in (seed, epoch), which is what lets ``--resume`` skip exactly the batches already done.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * mega
    batches = []
    for start in range(0, len(order), window):
        part = sorted(order[start:start + window], key=lambda i: lengths[i], reverse=True)
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example], *, pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels (padding labelled IGNORE_INDEX)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}

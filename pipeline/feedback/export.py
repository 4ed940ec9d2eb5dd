"""Export citizens' feedback as jsonl: validated answers for training, disliked ones for review.

"Validated" = an interaction with at least one 👍 and no 👎 that was answered (not an abstention) from at
least one source: it becomes a QA record (generator "feedback") that indexing and training read like any
generated one. Every interaction with a 👎 goes to the review file, with the comments people left. Votes on
"the closest passage" an abstention quoted (does this passage answer the question?) go to a third file, one
record per voted abstention with its passage (confirmed ones become index entries of it: ``pipeline.loop.jobs``). The
files are written atomically (temp file + os.replace) in interaction-id order, so a re-export of the same
data gives the same bytes. No user hash or chat hash leaves the database.

Example::

    >>> import tempfile, pathlib
    >>> from storage.db import Database
    >>> from pipeline.feedback.export import export_feedback
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> db = Database(f"sqlite:///{folder / 'o.db'}")
    >>> db.upgrade()
    >>> with db.session() as session:
    ...     result = export_feedback(session, out_dir=folder / "exports")
    >>> result.validated, result.review, result.path.name
    (0, 0, 'feedback_validated.jsonl')
    >>> db.dispose()
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from pipeline.core.files import write_jsonl_atomic
from storage import repository
from storage.models import Interaction

VALIDATED_FILENAME = "feedback_validated.jsonl"
REVIEW_FILENAME = "feedback_review.jsonl"
PASSAGES_FILENAME = "feedback_passages.jsonl"
_CHUNK_SPAN = re.compile(r":(\d+)-(\d+)$")  # chunk ids are f"{document}:{start}-{end}"


@dataclass(frozen=True)
class ExportResult:
    validated: int
    review: int
    path: Path
    review_path: Path
    passages: int = 0
    passages_path: Path | None = None


def recorded_span(source: Mapping[str, Any]) -> list[int] | None:
    """The source's own `span` (document offsets of the answer, or of the span a closest passage was quoted
    around), when it has a well-formed one."""
    span = source.get("span")
    if isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(x, int) for x in span):
        return [span[0], span[1]]
    return None


def closest_source(sources: Any) -> Mapping[str, Any] | None:
    """The closest passage an abstention quoted, as the service logs it (its first source, marked `closest`,
    with a chunk id); None for any other interaction."""
    first = sources[0] if isinstance(sources, list) and sources else None
    if isinstance(first, Mapping) and first.get("closest") and first.get("chunk_id"):
        return first
    return None


def _span(source: Mapping[str, Any]) -> list[int] | None:
    """The supporting span: the source's own `span` when it has one, else the chunk's offsets."""
    span = recorded_span(source)
    if span is not None:
        return span
    match = _CHUNK_SPAN.search(str(source.get("chunk_id", "")))
    return [int(match.group(1)), int(match.group(2))] if match else None


def validated_record(interaction: Interaction, *, up: int, down: int) -> dict[str, Any]:
    """The QA record (see the contracts' QA format) for a validated interaction, from its best source."""
    source = interaction.sources[0]
    chunk_id = str(source.get("chunk_id", ""))
    document = str(source.get("document") or chunk_id.rsplit(":", 1)[0])
    return {
        "id": f"feedback-{interaction.id}",
        "question": interaction.question,
        "answer": interaction.answer,
        "document": document,
        "chunk_id": chunk_id,
        "span": _span(source),
        "tags": ["feedback"],
        "generator": "feedback",
        "created_at": interaction.created_at.isoformat(),
        "interaction_id": interaction.id,
        "up": up,
        "down": down,
    }


def review_record(interaction: Interaction, *, up: int, down: int) -> dict[str, Any]:
    """What a maintainer needs to see why an answer was disliked."""
    return {
        "interaction_id": interaction.id,
        "question": interaction.question,
        "answer": interaction.answer,
        "abstained": interaction.abstained,
        "strategy": interaction.strategy,
        "model_version": interaction.model_version,
        "index_version": interaction.index_version,
        "sources": interaction.sources,
        "up": up,
        "down": down,
        "comments": [
            {"vote": fb.vote, "comment": fb.comment, "at": fb.updated_at.isoformat()}
            for fb in interaction.feedback if fb.comment
        ],
        "created_at": interaction.created_at.isoformat(),
    }


def passage_verdict(up: int, down: int) -> str | None:
    """What the votes on a closest passage say, everywhere they act (the 👎 memory, the index): ``"confirmed"``
    with a 👍 and no 👎 (it answers the question), ``"refused"`` with more 👎 than 👍 (the sentence shown does not),
    else ``None``."""
    if down > up:
        return "refused"
    return "confirmed" if up and not down else None


def passage_record(interaction: Interaction, *, up: int, down: int) -> dict[str, Any] | None:
    """The votes on the closest passage an abstention quoted (its first source, marked ``closest``)."""
    source = closest_source(interaction.sources)
    if not interaction.abstained or source is None:
        return None
    chunk_id = str(source["chunk_id"])
    return {
        "interaction_id": interaction.id,
        "question": interaction.question,
        "document": str(source.get("document") or chunk_id.rsplit(":", 1)[0]),
        "chunk_id": chunk_id,
        "span": _span(source),
        "quote": source.get("quote", ""),
        "up": up,
        "down": down,
        "created_at": interaction.created_at.isoformat(),
    }


def export_feedback(session: Session, *, out_dir: Path) -> ExportResult:
    """Write `out_dir/feedback_validated.jsonl`, `out_dir/feedback_review.jsonl` and
    `out_dir/feedback_passages.jsonl`; return the counts."""
    validated: list[dict[str, Any]] = []
    review: list[dict[str, Any]] = []
    passages: list[dict[str, Any]] = []
    for interaction, up, down in repository.voted_interactions(session):
        passage = passage_record(interaction, up=up, down=down)
        if passage is not None:
            passages.append(passage)
        if down:
            review.append(review_record(interaction, up=up, down=down))
        elif up and not interaction.abstained and interaction.answer.strip() and interaction.sources:
            record = validated_record(interaction, up=up, down=down)
            if record["document"]:  # a QA record must say which document supports it
                validated.append(record)
    out_dir = Path(out_dir)
    path, review_path = out_dir / VALIDATED_FILENAME, out_dir / REVIEW_FILENAME
    passages_path = out_dir / PASSAGES_FILENAME
    return ExportResult(
        validated=write_jsonl_atomic(path, validated),
        review=write_jsonl_atomic(review_path, review),
        path=path,
        review_path=review_path,
        passages=write_jsonl_atomic(passages_path, passages),
        passages_path=passages_path,
    )

"""Every QA record that indexing and training learn from, gathered from where each kind lives.

Generated and hand-written records sit in ``DATA_DIR/data_qa`` (hand-written files go through the generation
rules, checked against the documents' text); validated feedback (👍 answers) in the export
``DATA_DIR/exports/feedback_validated.jsonl`` (:mod:`pipeline.feedback.export`).

Example::

    from pipeline.qa.records import qa_records
    records = qa_records(settings)   # [{"id", "question", "answer", "document", "chunk_id", "span", ...}, ...]
"""

from __future__ import annotations

from pipeline.documents.load import load_configured
from pipeline.feedback.export import VALIDATED_FILENAME
from pipeline.qa.generate import load_qa_records
from pipeline.settings import Settings


def qa_records(settings: Settings) -> list[dict]:
    """Every QA record indexing and training learn from: generated, hand-written and validated feedback.

    The 👎 review file stays out: it is for people to read, never a positive example.
    """
    # Hand-written files in data_qa go through the generation rules, checked against the documents' text.
    texts = {doc.name: doc.text for doc in load_configured(settings)} if settings.qa_dir.exists() else {}
    records = load_qa_records(settings.qa_dir, documents=texts) if settings.qa_dir.exists() else []
    validated = settings.exports_dir / VALIDATED_FILENAME
    if validated.exists():
        records += load_qa_records(validated)
    return records

"""The steps of the pipeline as jobs the CLI, the bot and the nightly loop (:mod:`pipeline.loop.nightly`) call.

Example::

    from pipeline.settings import Settings
    from pipeline.loop import jobs
    s = Settings()
    jobs.generate_qa_job(s)      # documents -> DATA_DIR/data_qa/<doc>.jsonl
    jobs.index_job(s)            # chunks + questions -> DATA_DIR/index/versions/<v>
    jobs.export_feedback_job(s)  # validated 👍 -> DATA_DIR/exports/feedback_validated.jsonl
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.documents.chunking import chunk_document
from pipeline.documents.load import load_configured, scan_configured
from pipeline.feedback.export import PASSAGES_FILENAME, export_feedback, passage_verdict
from pipeline.qa.generate import OpenAIQAGenerator, generate_qa
from pipeline.qa.records import read_jsonl_quietly
from pipeline.qa.records import qa_records
from pipeline.search.index import build_index, questions_to_index, record_in_database
from pipeline.search.store import current_version
from pipeline.settings import Settings

log = logging.getLogger(__name__)


def make_generator(settings: Settings):
    """The QA generator chosen by settings: OpenAI-compatible when configured, else the offline one."""
    if settings.use_openai:
        if settings.openai_api_key is None:
            raise RuntimeError("QA_GENERATOR=openai needs OPENAI_API_KEY")
        return OpenAIQAGenerator(base_url=settings.openai_base_url,
                                 api_key=settings.openai_api_key.get_secret_value(),
                                 model=settings.openai_model, timeout_s=settings.openai_timeout_s,
                                 concurrency=settings.openai_concurrency, max_retries=settings.openai_max_retries)
    return "offline"


def generate_qa_job(settings: Settings, *, input_dir: Path | None = None, output_dir: Path | None = None,
                    progress: bool = False):
    """Generate QA pairs for every document into output_dir (default DATA_DIR/data_qa); the summary names every
    input file skipped (empty, binary, hidden, a symbolic link) with the reason."""
    scan = scan_configured(settings, input_dir)
    out = Path(output_dir) if output_dir else settings.qa_dir
    summary = generate_qa(scan.documents, out_dir=out, generator=make_generator(settings), progress=progress)
    # Every file left out, with the reason (other kinds of files, a PDF or a README, are only logged).
    summary.unreadable = [f"{skip.path.relative_to(scan.folder)} ({skip.reason})" for skip in scan.skipped
                          if not skip.reason.startswith("not a .txt")]
    return summary


def index_job(settings: Settings, *, input_dir: Path | None = None):
    """Chunk every document and (re)build the search index with the QA records of DATA_DIR/data_qa (the offline
    generator's template questions only with INDEX_GENERATED_QUESTIONS: see
    pipeline.search.index.questions_to_index)."""
    documents = load_configured(settings, input_dir)
    chunks = [chunk for doc in documents for chunk in chunk_document(doc)]
    records = questions_to_index(qa_records(settings), generated=settings.index_generated_questions)
    info = build_index(chunks, qa_records=records + confirmed_passage_questions(settings),
                       embedding_model=settings.embedding_model,
                       index_root=settings.index_dir, embedding_dtype=settings.embedding_dtype)

    record_in_database(settings.database_url, info)
    log.info("index %s built: %d chunks, %d questions", info.version, info.n_chunks, info.n_questions)
    return info


def confirmed_passage_questions(settings: Settings) -> list[dict]:
    """Index entries (never QA records: they have no answer) for the questions whose closest passage citizens
    confirmed (a 👍 and no 👎 under an abstention that quoted it): the question finds that passage again."""
    return [{"id": f"passage-{vote.get('interaction_id')}", "question": vote["question"],
             "document": vote.get("document"), "chunk_id": vote.get("chunk_id"), "span": vote.get("span"),
             "generator": "feedback-passage"}
            for vote in read_jsonl_quietly(settings.exports_dir / PASSAGES_FILENAME)
            if vote.get("question") and passage_verdict(int(vote.get("up") or 0), int(vote.get("down") or 0))
            == "confirmed"]


def ensure_index(settings: Settings):
    """Build QA pairs and the index if there is no serving index yet (first run on a fresh install)."""
    if current_version(settings.index_dir) is not None:
        return None
    log.info("no index yet in %s: generating QA pairs and building one", settings.index_dir)
    generate_qa_job(settings)
    return index_job(settings)


def export_feedback_job(settings: Settings, *, output_dir: Path | None = None):
    """Export validated feedback (👍 and no 👎) to jsonl for indexing and training; 👎 to a review file."""
    from storage.db import migrated

    with migrated(settings.database_url) as database, database.session() as session:
        return export_feedback(session, out_dir=Path(output_dir) if output_dir else settings.exports_dir)

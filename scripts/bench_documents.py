"""Documents benchmark: extraction speed (pages/s) and the time from an admin's upload to the first answer
citing the new document, for a 40-page PDF. Not a test: it prints figures (JSON with --out) for the README.

Run::

    python scripts/bench_documents.py --pages 40 --repeat 3 --out bench_documents.json

Extraction: the 40-page PDF of ``tests/pipeline/doc_samples.long_pdf`` (six articles a page, a running header
and a page-number footer on every page), and the test DOCX and HTML, read ``--repeat`` times; the median.

Upload to first answer: the real bot (python-telegram-bot ``Application``) against the fake Bot API on
127.0.0.1, the real service with the default settings (reader answers, e5-small index) over the bundled sample
corpus copied into a fresh documents folder, indexed and warmed up first (a bot already serving). The clock
starts when the admin's file is queued and stops when the citizen's question about the auxílio-creche (one article, on page 26 of 40) is answered;
the breakdown comes from the same pipeline steps run again on a copy (extraction, QA generation, index build).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.documents.ingest import extract_document  # noqa: E402
from tests.pipeline import doc_samples  # noqa: E402

ADMIN = {"id": 9009, "is_bot": False, "first_name": "Ana"}
TITLE = "Regulamento Geral de Bolsas e Auxílios Estudantis"
QUESTION = "Qual é o valor do auxílio-creche?"
EXPECTED = doc_samples.SPECIAL_VALUE


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_extraction(pages: int, repeat: int) -> dict:
    pdf = doc_samples.long_pdf(pages)
    seconds = timed(lambda: extract_document(pdf, name="regulamento"), repeat)
    doc = extract_document(pdf, name="regulamento")
    small_pdf = doc_samples.edital_pdf()
    docx, html = doc_samples.portaria_docx(), doc_samples.bolsas_html()
    return {"pdf_pages": pages, "pdf_bytes": len(pdf), "pdf_seconds": round(seconds, 3),
            "pdf_pages_per_s": round(pages / seconds, 1), "pdf_chars": len(doc.text),
            "edital_3_pages_seconds": round(timed(lambda: extract_document(small_pdf, name="e"), repeat), 3),
            "docx_seconds": round(timed(lambda: extract_document(docx, name="p"), repeat), 4),
            "html_seconds": round(timed(lambda: extract_document(html, name="b"), repeat), 4)}


def prepared_settings(root: Path, **overrides):
    from pipeline.documents.load import sample_corpus_dir
    from pipeline.settings import Settings

    docs = root / "docs"
    shutil.copytree(sample_corpus_dir(), docs, ignore=shutil.ignore_patterns("*.md"))
    return Settings(DATA_DIR=root / "data", DOCUMENTS_DIR=docs, ADMIN_IDS=str(ADMIN["id"]),
                    MODEL_CACHE_DIR=os.environ.get("MODEL_CACHE_DIR") or str(Path(tempfile.gettempdir()) /
                                                                               "oraculo-bench-models"),
                    **overrides)


def bench_breakdown(pdf: bytes, root: Path) -> dict:
    """The pipeline steps of an upload, one by one, on an indexed copy of the sample corpus."""
    from pipeline.loop import jobs
    from pipeline.loop.library import store_document

    settings = prepared_settings(root)
    jobs.generate_qa_job(settings)
    jobs.index_job(settings)
    steps = {}
    started = time.perf_counter()
    store_document(settings, pdf, "regulamento.pdf")
    steps["check_extract_store_s"] = time.perf_counter() - started
    started = time.perf_counter()
    summary = jobs.generate_qa_job(settings)
    steps["qa_generation_s"] = time.perf_counter() - started
    started = time.perf_counter()
    info = jobs.index_job(settings)
    steps["index_build_s"] = time.perf_counter() - started
    steps.update(qa_pairs=summary.n_valid, entries_embedded=info.n_embedded, chunks_total=info.n_chunks)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in steps.items()}


def bench_upload_to_answer(pdf: bytes, pages: int, root: Path) -> dict:
    from bot.telegram.app import build_application
    from pipeline.loop import jobs
    from pipeline.service import Oraculo
    from tests.fakes.telegram_server import CITIZEN, FakeTelegramServer, running_application

    async def main() -> dict:
        async with FakeTelegramServer() as server:
            settings = prepared_settings(root, TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_BASE_URL=server.base_url,
                                         TELEGRAM_BASE_FILE_URL=server.base_file_url)
            await asyncio.to_thread(jobs.generate_qa_job, settings)
            await asyncio.to_thread(jobs.index_job, settings)
            service = Oraculo.from_settings(settings)
            await asyncio.to_thread(service.warm_up)
            async with running_application(build_application(settings, service)):
                started = time.perf_counter()
                server.push_document(pdf, file_name="Regulamento de Bolsas.pdf", user=ADMIN)
                ack, summary = await server.wait_for("sendMessage", count=2, timeout=1800)
                indexed = time.perf_counter()
                server.push_text(QUESTION, user=CITIZEN)
                calls = await server.wait_for("sendMessage", count=3, timeout=600)
                answered = time.perf_counter()
                answer = calls[2].result["text"]
        source = next((line for line in answer.splitlines() if line.startswith("📄 Fonte: ")), "")
        return {"upload_to_summary_s": round(indexed - started, 2), "question_s": round(answered - indexed, 2),
                "upload_to_first_answer_s": round(answered - started, 2), "summary": summary.result["text"],
                "answer": answer, "cites_new_document": source.startswith(f"📄 Fonte: {TITLE}"),
                "answer_correct": EXPECTED in answer,
                "cites_the_page": source.endswith(f", p. {doc_samples.special_page(pages)}")}

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-upload", action="store_true", help="extraction only (no models)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
               "extraction": bench_extraction(args.pages, args.repeat)}
    print(json.dumps(results["extraction"], ensure_ascii=False, indent=1))
    if not args.skip_upload:
        pdf = doc_samples.long_pdf(args.pages)
        with tempfile.TemporaryDirectory() as tmp:
            results["breakdown"] = bench_breakdown(pdf, Path(tmp) / "steps")
            print(json.dumps(results["breakdown"], ensure_ascii=False, indent=1))
            results["telegram"] = bench_upload_to_answer(pdf, args.pages, Path(tmp) / "bot")
            print(json.dumps(results["telegram"], ensure_ascii=False, indent=1))
    results["load_1min_end"] = round(os.getloadavg()[0], 2)
    if args.out:
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()

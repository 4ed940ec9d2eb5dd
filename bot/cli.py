"""`oraculo`: one console command for every step of Oráculo.

Example::

    oraculo demo                      # sample corpus -> QA -> index -> three answers, offline
    oraculo ask "Onde é sediada a UFMS?"
    oraculo bot                       # needs TELEGRAM_BOT_TOKEN
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from bot import texts
from bot.cli_models import add_model_commands, settings_or_exit
from bot.terminal import run_chat
from pipeline.core.redaction import install, secret_values
from pipeline.documents.load import DocumentsError, sample_corpus_dir, scan_documents

DEMO_QUESTIONS = [
    "Onde é sediada a UFMS?",
    "Quem pode se inscrever no POSCOMP?",
    "O que são atividades complementares?",
]


def _offline_hub_for_local_models(settings) -> None:
    # Hub look-ups hang without a network; the embedded defaults and local paths never need one.
    if all(m == "embedded" or Path(m).exists() for m in (settings.embedding_model, settings.llm_model)):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _service(settings):
    from pipeline.service import Oraculo

    return Oraculo.from_settings(settings)


def cmd_generate_qa(args) -> int:
    from pipeline.loop.jobs import generate_qa_job  # the jobs load SQLAlchemy: not for `oraculo --help`

    summary = generate_qa_job(settings_or_exit(), input_dir=args.input, output_dir=args.output, progress=True)
    print(summary.format())
    if summary.errors and not summary.n_pairs:  # every request failed: nothing useful was done
        print(f"error: all {len(summary.errors)} QA requests failed, no pair generated "
              f"(first: {summary.errors[0]['error']})", file=sys.stderr)
        return 1
    return 0


def cmd_index(args) -> int:
    from pipeline.loop.jobs import index_job  # the jobs load SQLAlchemy: not for `oraculo --help`

    info = index_job(settings_or_exit(), input_dir=args.input)
    print(f"index {info.version}: {info.n_chunks} chunks, {info.n_questions} questions -> {info.path}")
    return 0


def cmd_ask(args) -> int:
    service = _service(settings_or_exit())
    try:
        result = service.ask(args.question, user_ref=args.user, channel="cli")
    except ValueError:
        print(texts.EMPTY_QUESTION if not args.question.strip() else texts.TOO_LONG, file=sys.stderr)
        return 2
    print(texts.render_answer_plain(result.answer))
    print(f"[interação {result.interaction_id}]")
    return 0


def cmd_chat(args) -> int:
    return run_chat(_service(settings_or_exit()), user_ref=args.user)


def cmd_export_feedback(args) -> int:
    from pipeline.loop.jobs import export_feedback_job  # the jobs load SQLAlchemy: not for `oraculo --help`

    result = export_feedback_job(settings_or_exit(), output_dir=args.output)
    print(f"{result.validated} validated -> {result.path}; {result.review} for review -> {result.review_path}; "
          f"{result.passages} closest-passage votes -> {result.passages_path}")
    return 0


def cmd_bot(args) -> int:
    settings = settings_or_exit()
    if settings.telegram_bot_token is None:
        print("error: TELEGRAM_BOT_TOKEN is not set (get one from @BotFather, then put it in .env)", file=sys.stderr)
        return 2
    from telegram.error import InvalidToken

    from bot.telegram.app import run

    try:
        run(settings)  # webhook mode when TELEGRAM_WEBHOOK_URL is set, else long polling
    except InvalidToken:  # its message holds the token: never print it
        print(f"error: Telegram rejected TELEGRAM_BOT_TOKEN ({settings.telegram_base_url}): check it with "
              "@BotFather", file=sys.stderr)
        return 2
    return 0


def cmd_db(args) -> int:
    from storage import migrate

    url = settings_or_exit().database_url
    if args.action == "upgrade":
        migrate.upgrade(url)
    elif args.action == "downgrade":
        migrate.downgrade(url, args.revision)
    print(f"database at revision {migrate.current(url)}")
    return 0


def _demo_documents(settings) -> None:
    """The demo's documents: the configured folder's, or the bundled sample corpus copied there (said aloud)."""
    import shutil

    folder = Path(settings.documents_dir)
    try:
        if scan_documents(folder).documents:
            print(f"documentos: {folder}")
            return
    except DocumentsError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(sample_corpus_dir().iterdir()):
        if path.is_file() and not (folder / path.name).exists():
            shutil.copy2(path, folder / path.name)
    print(f"documentos: corpus de exemplo (UFMS, FaQuAD) copiado para {folder} — troque pelos seus e rode "
          "`oraculo index`")


def cmd_demo(args) -> int:
    from pipeline.loop.jobs import generate_qa_job, index_job  # the jobs load SQLAlchemy: not for `oraculo --help`

    settings = settings_or_exit()
    _demo_documents(settings)
    print("== 1/3 Gerando perguntas e respostas a partir dos documentos")
    print(generate_qa_job(settings).format())
    print("== 2/3 Construindo o índice de busca")
    info = index_job(settings)
    print(f"índice {info.version}: {info.n_chunks} trechos, {info.n_questions} perguntas")
    print("== 3/3 Respondendo perguntas de exemplo")
    service = _service(settings)
    for question in DEMO_QUESTIONS:
        result = service.ask(question, user_ref="demo", channel="cli")
        print(f"\n❓ {question}\n{texts.render_answer_plain(result.answer)}")
    print("\n" + texts.DEMO_NEXT_STEPS)
    return 0


def cmd_eval(args) -> int:
    from pipeline.evaluation.answers import evaluate_answers  # the answerer and the index: not for --help
    from pipeline.evaluation.retrieval import evaluate_retrieval

    evaluate = evaluate_retrieval if args.target == "retrieval" else evaluate_answers
    try:
        extra = {"unanswerable": args.unanswerable} if args.target == "answers" and args.unanswerable else {}
        report = evaluate(settings_or_exit(), squad=args.squad, corpus=args.corpus, off_topic=args.off_topic, **extra)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in report.items():
        print(f"{key:>18}: {value:.4f}" if isinstance(value, float) else f"{key:>18}: {value}")
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oraculo", description="Oráculo: RAG over Brazilian public documents.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the whole offline pipeline on the sample corpus")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate-qa", help="generate QA pairs from the documents (.txt, .pdf, .docx, .html)")
    p.add_argument("--input", type=Path, help="folder of documents (default DATA_DIR/documents)")
    p.add_argument("--output", type=Path, help="output folder (default DATA_DIR/data_qa)")
    p.set_defaults(func=cmd_generate_qa)

    p = sub.add_parser("index", help="build the search index")
    p.add_argument("--input", type=Path, help="folder of documents (default DATA_DIR/documents)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="answer one question")
    p.add_argument("question")
    p.add_argument("--user", default="cli:local", help="who is asking (hashed before storage)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="interactive terminal chat with feedback")
    p.add_argument("--user", default="cli:local", help="who is asking (hashed before storage)")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("export-feedback", help="export validated feedback to jsonl")
    p.add_argument("--output", type=Path, help="output folder (default DATA_DIR/exports)")
    p.set_defaults(func=cmd_export_feedback)

    p = sub.add_parser("bot", help="run the Telegram bot (polling, or webhook when TELEGRAM_WEBHOOK_URL is set)")
    p.set_defaults(func=cmd_bot)

    p = sub.add_parser("eval", help="evaluate retrieval or answers on a SQuAD v1.1 file")
    p.add_argument("target", choices=["retrieval", "answers"])
    p.add_argument("--squad", type=Path, required=True, help="questions, SQuAD v1.1 json")
    p.add_argument("--corpus", type=Path, help="corpus paragraphs, SQuAD v1.1 json (default: --squad)")
    p.add_argument("--off-topic", type=int, default=0, help="answers only: mix in N off-topic questions")
    p.add_argument("--unanswerable", type=Path,
                   help="answers only: JSON list of questions the corpus does not answer (reports the share refused)")
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    p.set_defaults(func=cmd_eval)

    add_model_commands(sub)

    p = sub.add_parser("db", help="database migrations")
    p.add_argument("action", choices=["upgrade", "downgrade", "current"])
    p.add_argument("revision", nargs="?", default="base", help="target of downgrade (default base)")
    p.set_defaults(func=cmd_db)
    return parser


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _configure_logging(args, settings) -> None:
    """INFO on the console; the demo keeps its screen for the steps and answers (warnings only, the log in a file)."""
    level = logging.DEBUG if args.verbose else logging.INFO
    if args.command == "demo" and not args.verbose:
        log_file = settings.data_dir / "logs" / "demo.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        logging.basicConfig(level=level, format=LOG_FORMAT, handlers=[console, file_handler])
        # No progress bars between the answers (huggingface_hub, transformers and tqdm read these at import), and
        # no transformers load reports: its logger has a console handler of its own that our file never sees.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    else:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    for noisy in ("httpx", "sentence_transformers", "transformers", "faiss", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_or_exit()
    _configure_logging(args, settings)
    install(secret_values(settings))  # no token or key in any log line or traceback
    if args.command != "push":  # push must reach the Hub
        _offline_hub_for_local_models(settings)
    try:
        return args.func(args)
    except DocumentsError as exc:  # no documents where they were expected: say where, never swap corpora
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `oraculo` command end to end on the sample corpus with the embedded models (offline)."""

from __future__ import annotations

import io
import json
import os
import logging

import pytest
from sqlalchemy import select

from bot import texts
from bot.cli import main
from bot.terminal import run_chat
from pipeline.service import Oraculo
from pipeline.settings import Settings, get_settings
from storage.models import Feedback, Interaction


def _scripted(lines):
    answers = iter(lines)

    def read(prompt: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None

    return read


def test_generate_index_ask_chat_export(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data))

    assert main(["generate-qa"]) == 0
    qa_files = sorted((data / "data_qa").glob("*.jsonl"))
    assert any(f.name == "UFMS.jsonl" for f in qa_files)

    assert main(["index"]) == 0
    assert (data / "index" / "CURRENT").read_text().strip()

    capsys.readouterr()
    assert main(["ask", "Onde é sediada a UFMS?"]) == 0
    out = capsys.readouterr().out
    assert "Fonte: UFMS" in out
    assert "[interação 1]" in out

    settings = Settings(DATA_DIR=data)
    service = Oraculo.from_settings(settings)
    transcript = []

    class Out:
        def write(self, text):
            transcript.append(text)

        def flush(self):
            pass

    read = _scripted(["Onde é sediada a UFMS?", "s", "Quem pode se inscrever no POSCOMP?", "n", "faltou o prazo", "sair"])
    assert run_chat(service, user_ref="cli:ana", read=read, out=Out()) == 0
    with service.database.session() as session:
        votes = session.scalars(select(Feedback).order_by(Feedback.interaction_id)).all()
        assert [(f.vote, f.comment) for f in votes] == [(1, None), (-1, "faltou o prazo")]
        channels = set(session.scalars(select(Interaction.channel)))
        assert channels == {"cli"}
    assert "Fonte:" in "".join(transcript)

    capsys.readouterr()
    assert main(["export-feedback"]) == 0
    assert "1 validated" in capsys.readouterr().out
    validated = [json.loads(line) for line in (data / "exports" / "feedback_validated.jsonl").read_text().splitlines()]
    assert [r["question"] for r in validated] == ["Onde é sediada a UFMS?"]
    assert validated[0]["generator"] == "feedback"
    review = (data / "exports" / "feedback_review.jsonl").read_text()
    assert "faltou o prazo" in review

    # the validated 👍 question reaches the next index; the 👎 one never does
    from pipeline.qa.records import qa_records

    questions = {r["question"] for r in qa_records(settings)}
    assert "Onde é sediada a UFMS?" in questions
    assert "Quem pode se inscrever no POSCOMP?" not in questions


def test_input_folder_is_used_and_an_empty_folder_is_an_error_not_the_sample_corpus(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "edital_bolsas.txt").write_text(
        "Edital de bolsas 2026.\n\nAs inscrições vão de 1º de março a 15 de março de 2026, "
        "na Secretaria Acadêmica.\n", encoding="utf-8")
    assert main(["index", "--input", str(docs)]) == 0
    chunks = (tmp_path / "data" / "index").rglob("chunks.jsonl")
    documents = {json.loads(line)["document"] for path in chunks for line in path.read_text().splitlines()}
    assert documents == {"edital_bolsas"}

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "scan.pdf").write_bytes(b"%PDF-1.4")
    capsys.readouterr()
    assert main(["generate-qa", "--input", str(empty), "--output", str(tmp_path / "qa")]) == 2
    err = capsys.readouterr().err
    assert f"no readable document (.txt, .pdf, .docx, .html) in {empty}" in err and "scan.pdf: broken PDF" in err
    assert not list((tmp_path / "qa").glob("*.jsonl"))  # never the bundled sample corpus in its place
    monkeypatch.setenv("DOCUMENTS_DIR", str(tmp_path / "nowhere"))
    get_settings.cache_clear()
    assert main(["index"]) == 2
    assert f"documents folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err


def test_ask_rejects_empty_question(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert main(["ask", "   "]) == 2
    assert "Escreva sua pergunta" in capsys.readouterr().err


def test_bot_without_token_is_a_clear_error(capsys):
    assert main(["bot"]) == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in capsys.readouterr().err


def test_placeholder_secret_is_refused(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "changeme")
    with pytest.raises(SystemExit, match="placeholder secret"):
        main(["db", "current"])


def test_db_upgrade_and_current(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert "database at revision" in out and "None" not in out


def test_generate_qa_exits_non_zero_when_every_request_failed(tmp_path, monkeypatch, capsys):
    from tests.fakes.openai_server import FakeOpenAI

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "EDITAL.txt").write_text("As inscrições vão de 1º a 15 de março, na Secretaria Acadêmica.\n\n"
                                     "A taxa de inscrição é de R$ 100,00.", encoding="utf-8")
    with FakeOpenAI() as fake:  # nothing queued, no default: every request gets a 500
        for name, value in {"DATA_DIR": str(tmp_path / "data"), "QA_GENERATOR": "openai",
                            "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test-key-123",
                            "OPENAI_MAX_RETRIES": "0"}.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        assert main(["generate-qa", "--input", str(docs)]) == 1
    captured = capsys.readouterr()
    assert "error: all 1 QA requests failed, no pair generated (first: InternalServerError" in captured.err
    assert "sk-test-key-123" not in captured.out + captured.err


def test_bot_with_a_rejected_token_says_so_without_printing_it(tmp_path, monkeypatch, capfd, caplog):
    import asyncio
    import threading

    from tests.fakes.oraculo import FakeOraculo
    from tests.fakes.telegram_server import FakeTelegramServer

    token = "987654:AAH-the-real-secret-token"
    loop = asyncio.new_event_loop()
    server = FakeTelegramServer()  # knows another token: answers 401 to this one, as Telegram does
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
    try:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
        monkeypatch.setenv("TELEGRAM_BASE_URL", server.base_url)
        service = type("WarmFakeOraculo", (FakeOraculo,), {"warm_up": lambda self: None})()  # no model to load
        monkeypatch.setattr("pipeline.service.Oraculo.from_settings", classmethod(lambda cls, s: service))
        get_settings.cache_clear()
        with caplog.at_level(logging.DEBUG):
            assert main(["bot"]) == 2
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
    captured = capfd.readouterr()
    assert "Telegram rejected TELEGRAM_BOT_TOKEN" in captured.err
    everything = captured.out + captured.err + caplog.text
    assert token not in everything and "AAH-the-real-secret" not in everything


def test_secrets_are_redacted_from_log_lines_and_tracebacks(monkeypatch):
    from pipeline.core.redaction import MASK, RedactingFilter, install, secret_values
    from pipeline.settings import Settings

    settings = Settings(TELEGRAM_BOT_TOKEN="111:secret-bot-token", OPENAI_API_KEY="sk-open-secret",
                        DATABASE_URL="postgresql+psycopg://oraculo:db-password-1@host/db")
    secrets = secret_values(settings)
    assert set(secrets) == {"111:secret-bot-token", "sk-open-secret", "db-password-1"}
    record = logging.LogRecord("telegram", logging.ERROR, __file__, 1, "POST %s failed",
                               ("/bot111:secret-bot-token/getMe",), None)
    try:
        raise RuntimeError("key sk-open-secret refused")
    except RuntimeError:
        import sys
        record.exc_info = sys.exc_info()
    RedactingFilter(secrets).filter(record)
    text = logging.Formatter().format(record)
    assert "secret-bot-token" not in text and "sk-open-secret" not in text
    assert f"/bot{MASK}/getMe" in text and f"key {MASK} refused" in record.exc_text
    written = []
    monkeypatch.setattr("sys.excepthook", lambda *a: None)
    monkeypatch.setattr("sys.stderr", type("W", (), {"write": lambda self, t: written.append(t)})())
    install(secrets)
    import sys
    try:
        raise ValueError("token 111:secret-bot-token")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    assert "111:secret-bot-token" not in "".join(written) and MASK in "".join(written)


def test_demo_logs_to_a_file_and_shows_only_warnings_and_no_progress_bars(tmp_path):
    import subprocess
    import sys

    code = ("import argparse, logging, os; from bot.cli import _configure_logging; "
            "from pipeline.settings import Settings; "
            f"s = Settings(DATA_DIR={str(tmp_path / 'data')!r}); "
            "_configure_logging(argparse.Namespace(command='demo', verbose=False), s); "
            "logging.getLogger('pipeline.search.index').info('index built in 3.2s'); "
            "logging.getLogger('pipeline.training.cost').warning('quote unavailable'); "
            "print(os.environ['HF_HUB_DISABLE_PROGRESS_BARS'], os.environ['TQDM_DISABLE'], "
            "os.environ['TRANSFORMERS_VERBOSITY'])")
    quiet = ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE", "TRANSFORMERS_VERBOSITY")
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1", "error"]
    assert "quote unavailable" in result.stderr and "index built" not in result.stderr
    log = (tmp_path / "data" / "logs" / "demo.log").read_text(encoding="utf-8")
    assert "index built in 3.2s" in log and "quote unavailable" in log


def test_demo_copies_the_sample_corpus_only_into_an_empty_documents_folder(tmp_path, capsys):
    from bot.cli import _demo_documents
    from pipeline.documents.load import sample_corpus_dir

    settings = Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR=tmp_path / "docs")
    _demo_documents(settings)
    assert "corpus de exemplo (UFMS, FaQuAD) copiado para" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == sorted(p.name for p in sample_corpus_dir().iterdir()
                                                                           if p.is_file())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "EDITAL.txt").write_text("O prazo é de dez dias.", encoding="utf-8")
    _demo_documents(Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR=mine))
    assert f"documentos: {mine}" in capsys.readouterr().out and sorted(p.name for p in mine.iterdir()) == ["EDITAL.txt"]


def test_ask_on_a_fresh_install_without_documents_names_the_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DOCUMENTS_DIR")  # the default, DATA_DIR/documents, which nobody filled
    get_settings.cache_clear()
    assert main(["ask", "Onde é sediada a UFMS?"]) == 2
    err = capsys.readouterr().err
    assert f"error: documents folder {tmp_path / 'data' / 'documents'} does not exist" in err
    assert not (tmp_path / "data" / "index").exists()  # no index of the sample corpus built in its place


def test_the_terminal_asks_about_the_closest_passage_and_skips_a_bare_not_found():
    from pipeline.answering.result import Answer, Source
    from pipeline.service import AskResult

    passage = Source(document="edital", title="Edital", section="", chunk_id="edital:0-9", quote="Custa R$ 80.",
                     score=0.5)
    replies = [Answer(text="", abstained=True), Answer(text="", abstained=True, closest=passage)]

    class Service:  # the two calls the terminal makes, with the real result types
        votes: list[tuple[int, int]] = []

        def ask(self, question, *, user_ref, channel):
            return AskResult(interaction_id=len(replies), answer=replies.pop(0))

        def vote(self, *, interaction_id, user_ref, vote):
            self.votes.append((interaction_id, vote))

    prompts, script = [], ["qual a cor do céu?", "quanto custa?", "s", "sair"]

    def read(prompt):
        prompts.append(prompt)
        return script.pop(0)

    service = Service()
    assert run_chat(service, user_ref="cli:bia", read=read, out=io.StringIO()) == 0
    assert prompts == ["> ", "> ", texts.CHAT_CLOSEST_PROMPT, "> "]  # no vote asked under the bare "not found"
    assert service.votes == [(1, 1)]

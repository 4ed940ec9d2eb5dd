"""Documents sent through Telegram, end to end: the real Application, the fake Bot API serving getFile and the
file download, the real service on SQLite and the real document pipeline.

An admin's PDF is downloaded, checked, stored under a safe name, indexed (real QA generation and index build)
and summarised; a citizen's question is then answered citing the PDF's real title and page; /documentos lists
the files with their dates and /remover takes the document out again. A citizen's file gets the kind reply and
is never downloaded; a scan, a broken PDF and a file above the limit are refused with clear messages and leave
the documents folder as it was.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from bot import admin_texts, texts
from bot.telegram.app import build_application
from pipeline.search.store import META_FILE, current_version, version_dir
from pipeline.service import Oraculo
from pipeline.settings import Settings
from tests.fakes.oraculo import CannedAnswerer
from tests.fakes.telegram_server import CITIZEN, FakeTelegramServer, running_application
from tests.pipeline import doc_samples

ADMIN = {"id": 9009, "is_bot": False, "first_name": "Ana"}
# Building the QA set and the index and loading the models: minutes on two CPU cores the first time.
INDEX_TIMEOUT_S = 600.0
SEED = "Aviso de Prorrogação\n\nO prazo de matrícula do semestre foi prorrogado até 20 de fevereiro de 2026."


def make_settings(tmp_path, server, **overrides) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "aviso.txt").write_text(SEED, encoding="utf-8")
    return Settings(DATA_DIR=tmp_path / "data", DOCUMENTS_DIR=docs, TELEGRAM_BOT_TOKEN=server.token,
                    TELEGRAM_BASE_URL=server.base_url, TELEGRAM_BASE_FILE_URL=server.base_file_url,
                    ADMIN_IDS=str(ADMIN["id"]), **overrides)


def run(tmp_path, scenario, *, real_answers: bool, timeout: float = 60.0, **overrides):
    async def main():
        async with FakeTelegramServer() as server:
            settings = make_settings(tmp_path, server, **overrides)
            service = Oraculo(settings, answerer=None if real_answers else CannedAnswerer())
            service.database.upgrade()
            async with running_application(build_application(settings, service)):
                await asyncio.wait_for(scenario(server, settings, service), timeout)

    asyncio.run(main())


async def reply_to(server, push, *, count: int = 1, timeout: float = 30.0):
    before = len(server.calls_to("sendMessage", ok=True))
    push()
    return (await server.wait_for("sendMessage", count=before + count, timeout=timeout))[before:]


def test_admin_upload_is_indexed_summarised_cited_with_its_page_listed_and_removed(tmp_path):
    async def scenario(server, settings, service):
        [howto] = await reply_to(server, lambda: server.push_text("/adicionar", user=ADMIN))
        assert howto.params["text"] == admin_texts.document_howto(20.0)

        pdf = doc_samples.edital_pdf()
        ack, summary = await reply_to(server, lambda: server.push_document(
            pdf, file_name="Edital nº 12-2025 (final).PDF", user=ADMIN), count=2, timeout=INDEX_TIMEOUT_S)
        assert server.downloads == ["documents/file-1"]
        assert "Recebi" in ack.result["text"] and "Edital nº 12-2025 (final).PDF" in ack.result["text"]
        shown = summary.result["text"]
        assert shown.startswith("✅ Documento adicionado: Edital nº 12/2025 – Concurso Público"), shown
        assert "arquivo: Edital_no_12-2025_final.pdf (PDF)" in shown and "páginas: 3" in shown
        assert "tabelas: 1" in shown
        chunks = int(shown.split("trechos indexados: ")[1].split("\n")[0])
        pairs = int(shown.split("perguntas geradas: ")[1].split("\n")[0])
        assert chunks >= 4 and pairs >= 1
        stored = settings.documents_dir / "Edital_no_12-2025_final.pdf"
        assert stored.read_bytes() == pdf
        meta = json.loads((version_dir(settings.index_dir, current_version(settings.index_dir)) / META_FILE)
                          .read_text(encoding="utf-8"))
        assert meta["documents"] == ["Edital_no_12-2025_final", "aviso"]

        [answer] = await reply_to(server, lambda: server.push_text("Qual é o valor da taxa de inscrição do "
                                                                   "concurso público?"), timeout=INDEX_TIMEOUT_S)
        text = answer.result["text"]
        assert "85,00" in text, text
        [source] = [line for line in text.splitlines() if line.startswith("📄 Fonte: ")][:1]
        assert source == "📄 Fonte: Edital nº 12/2025 – Concurso Público, Art. 3º, p. 1", source

        [listing] = await reply_to(server, lambda: server.push_text("/documentos", user=ADMIN))
        today = datetime.now(timezone.utc).strftime("%d/%m/%Y")
        assert "Edital_no_12-2025_final.pdf, PDF, 3 p., " + today in listing.result["text"]
        assert "aviso.txt, texto, " in listing.result["text"]
        [citizen_list] = await reply_to(server, lambda: server.push_text("/documentos"))
        assert "Edital_no_12-2025_final.pdf" not in citizen_list.result["text"]  # citizens see titles only

        [refused] = await reply_to(server, lambda: server.push_text("/remover Edital_no_12-2025_final"))
        assert refused.params["text"] == texts.ADMIN_ONLY
        [removed] = await reply_to(server, lambda: server.push_text("/remover Edital_no_12-2025_final", user=ADMIN),
                                   timeout=INDEX_TIMEOUT_S)
        assert removed.result["text"].startswith("🗑️ Edital nº 12/2025 – Concurso Público"), removed.result["text"]
        assert not stored.exists()
        assert [p.name.split("__", 1)[1] for p in (settings.data_dir / "removed").iterdir()] == [stored.name]
        meta = json.loads((version_dir(settings.index_dir, current_version(settings.index_dir)) / META_FILE)
                          .read_text(encoding="utf-8"))
        assert meta["documents"] == ["aviso"]
        [last] = await reply_to(server, lambda: server.push_text("/remover aviso", user=ADMIN))
        assert "único documento" in last.result["text"] and (settings.documents_dir / "aviso.txt").exists()

    run(tmp_path, scenario, real_answers=True, timeout=3 * INDEX_TIMEOUT_S)


def test_a_citizen_who_sends_a_file_gets_the_kind_reply_and_nothing_is_downloaded(tmp_path):
    async def scenario(server, settings, service):
        [reply] = await reply_to(server, lambda: server.push_document(doc_samples.edital_pdf(),
                                                                      file_name="edital.pdf", user=CITIZEN))
        assert reply.params["text"] == texts.unsupported("document")
        assert server.downloads == [] and not server.calls_to("getFile")
        assert sorted(p.name for p in settings.documents_dir.iterdir()) == ["aviso.txt"]

    run(tmp_path, scenario, real_answers=False)


@pytest.mark.parametrize(("content", "name", "expected"), [
    (doc_samples.scanned_pdf, "digitalizado.pdf", "sem texto: precisa de OCR"),
    (doc_samples.broken_pdf, "quebrado.pdf", "corrompido ou incompleto"),
    (lambda: b"\xd0\xcf\x11\xe0" + bytes(2000), "antigo.doc", "não é um PDF, DOCX, HTML nem texto"),
])
def test_an_admins_unreadable_file_is_refused_clearly_and_nothing_is_stored(tmp_path, content, name, expected):
    async def scenario(server, settings, service):
        ack, refusal = await reply_to(server, lambda: server.push_document(content(), file_name=name, user=ADMIN),
                                      count=2)
        assert "Recebi" in ack.result["text"]
        assert refusal.result["text"].startswith(f"❌ Não adicionei {name}: "), refusal.result["text"]
        assert expected in refusal.result["text"]
        assert sorted(p.name for p in settings.documents_dir.iterdir()) == ["aviso.txt"]  # no temp file either
        assert current_version(settings.index_dir) is None  # nothing was indexed

    run(tmp_path, scenario, real_answers=False)


def test_a_file_above_the_limit_is_refused_before_it_is_downloaded(tmp_path):
    async def scenario(server, settings, service):
        [refusal] = await reply_to(server, lambda: server.push_document(
            doc_samples.edital_pdf(), file_name="grande.pdf", user=ADMIN, file_size=3 * 1024 * 1024))
        assert refusal.result["text"] == "❌ Não adicionei grande.pdf: o arquivo passa do limite de 2 MB."
        assert server.downloads == [] and not server.calls_to("getFile")

    run(tmp_path, scenario, real_answers=False, DOCUMENT_MAX_MB=2)

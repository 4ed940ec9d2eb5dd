"""What Oráculo tells its admins, in Portuguese: jobs (/retrain, /reindex), costs, statistics, documents they send.

The citizens' texts live in :mod:`bot.texts`; these are the team's (Telegram admins and the nightly report).

Example::

    >>> from bot import admin_texts
    >>> admin_texts.cost_report(last=None, month_label="11/2026", month_usd=0.0, month_brl=0.0, month_runs=0,
    ...                         rate=None, rate_at=None).startswith(admin_texts.NO_TRAINING_RUNS)
    True
"""

from __future__ import annotations

from typing import Sequence

from bot.texts import NO_DOCUMENTS, clip, escape

# --- admins (Portuguese too: admins are Brazilian public servants) --------------------------------------

RETRAIN_STARTED = "🔄 Retreinamento iniciado. Aviso aqui quando terminar."
RETRAIN_BUSY = "⏳ Já há um retreinamento ou reindexação em andamento. Aviso quando terminar."
REINDEX_STARTED = "🔄 Reconstruindo o índice agora. Aviso aqui quando terminar."
NO_TRAINING_RUNS = "Ainda não há nenhum treinamento registrado."
STATS_EMPTY = "Ainda não há perguntas registradas no período."


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "—"
    text = f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return f"US$ {text}" if currency == "USD" else f"R$ {text}"


def _when(moment) -> str:
    return moment.strftime("%d/%m/%Y %H:%M UTC") if moment is not None else "—"


def job_finished(*, title: str, ok: bool, duration_s: float, steps: Sequence[tuple[str, str]],
                 error: str | None = None) -> str:
    """The report of a finished /retrain or /reindex (HTML): status, duration, one line per step."""
    head = f"✅ {escape(title)} concluído" if ok else f"❌ {escape(title)} falhou"
    lines = [f"<b>{head}</b> em {duration_s:.1f} s."]
    lines += [f"• {escape(name)}: {escape(detail)}" for name, detail in steps]
    if error:
        lines.append(f"Erro: <code>{escape(clip(error, 500))}</code>")
    return "\n".join(lines)


def cost_report(*, last: dict | None, month_label: str, month_usd: float, month_brl: float | None,
                month_runs: int, rate: float | None, rate_at) -> str:
    """The /cost message (HTML): last run and the month's total, in USD and BRL, with the rate used."""
    if last is None:
        return NO_TRAINING_RUNS
    lines = [
        "<b>Custo de treinamento</b> 💰", "",
        f"<b>Último treino</b> (nº {last['id']}, {escape(last['status'])}, {_when(last['started_at'])}):",
        f"• duração: {last['duration_s'] or 0:.0f} s",
        f"• custo: {_money(last['cost_usd'], 'USD')} = {_money(last['cost_brl'], 'BRL')}",
        "",
        f"<b>Total de {escape(month_label)}</b> ({month_runs} treino(s)): "
        f"{_money(month_usd, 'USD')} = {_money(month_brl, 'BRL')}",
    ]
    if rate is not None:
        lines.append(f"Câmbio usado: US$ 1 = {_money(rate, 'BRL')} (cotação de {_when(rate_at)})")
    else:
        lines.append("Câmbio: ainda sem cotação registrada.")
    return "\n".join(lines)


def stats_report(*, days: int, questions: int, answered: int, up: int, down: int,
                 unanswered: Sequence[tuple[str, int]], passage_up: int = 0, passage_down: int = 0) -> str:
    """The /stats caption (HTML, at most 1024 characters as Telegram requires for captions). ``passage_up`` /
    ``passage_down``: votes on the closest passage quoted by an abstention, kept apart from votes on answers."""
    lines = [f"<b>Últimos {days} dias</b>",
             f"Perguntas: {questions} · respondidas: {answered} · sem resposta: {questions - answered}",
             f"Avaliações das respostas: 👍 {up} · 👎 {down}"]
    if passage_up or passage_down:
        lines.append(f"Trecho mais próximo (sem resposta exata): 👍 {passage_up} · 👎 {passage_down}")
    if unanswered:
        lines.append("")
        lines.append("<b>Mais perguntadas sem resposta:</b>")
        for question, count in unanswered:
            lines.append(f"{count}× {escape(clip(question, 80))}")
    text = "\n".join(lines)
    return text if len(text) <= 1024 else "\n".join(lines[:4 if passage_up or passage_down else 3])


CHART_TITLE = "Oráculo: atividade por dia"
CHART_LABELS = {"questions": "perguntas", "answered": "respondidas", "up": "avaliações positivas",
                "down": "avaliações negativas"}


# --- nightly learning loop (pipeline/loop/nightly.py) ------------------------------------------------------------

RETRAIN_SCHEDULED_TITLE = "Retreinamento agendado"
RETRAIN_STEP_NAMES = {"export": "feedback exportado", "index": "índice candidato", "train": "adaptador LoRA",
                      "evaluate": "avaliação", "promote": "promoção", "publish": "publicação no Hub",
                      "engine": "motor de respostas", "record": "registro"}


def _score(block: dict | None) -> str:
    if not block:
        return "—"
    f1 = "—" if block.get("f1") is None else f"{block['f1']:.3f}"
    return f"F1 {f1}, acerto@k {block['hit_at_k']:.3f}"


def retrain_step_lines(report) -> list[tuple[str, str]]:
    """One (name, result) per step of a retraining run (pipeline.loop.nightly.RetrainReport), in pt-BR."""
    lines = []
    for step in report.steps:
        d = step.detail
        if step.name == "export":
            text = f"{d.get('validated', 0)} respostas validadas (👍), {d.get('review', 0)} para revisão (👎)"
        elif step.name == "index":
            text = (f"versão {d.get('version')}: {d.get('n_chunks')} trechos, {d.get('n_questions')} perguntas "
                    f"({d.get('feedback_records', 0)} do feedback)")
        elif step.name == "train":
            text = (f"pulado ({d['skipped']})" if "skipped" in d else
                    f"versão {d.get('adapter')}, {d.get('steps')} passos, perda de validação "
                    + (f"{d['val_loss']:.3f}" if d.get("val_loss") is not None else "—"))
        elif step.name == "evaluate":
            index = d.get("index") or {}
            text = (f"{d.get('heldout', 0)} perguntas reservadas; candidato {_score(index.get('candidate'))} × "
                    f"em uso {_score(index.get('serving'))}")
        elif step.name == "promote":
            promoted = d.get("promoted") or {}
            text = (f"índice {'promovido' if promoted.get('index') else 'mantido'}, adaptador "
                    f"{'promovido' if promoted.get('adapter') else 'mantido'}"
                    + ("" if all(promoted.values()) and promoted else f" ({d.get('reason', '')})"))
        elif step.name == "publish":
            text = f"pulada ({d['skipped']})" if "skipped" in d else f"publicado em {d.get('url')}"
        elif step.name == "engine":
            if "failed" in d:
                text = f"falhou ({d['failed']}); segue em uso {d.get('kept') or 'o modelo base'}"
            elif "skipped" in d:
                text = f"pulado ({d['skipped']})"
            else:
                text = f"{d.get('name')} em uso no motor ({d.get('engine')})" + (
                    f", {d['unloaded']} descarregado" if d.get("unloaded") else "")
        else:
            continue
        lines.append((f"{RETRAIN_STEP_NAMES.get(step.name, step.name)} ({step.seconds:.0f} s)", text))
    return lines


# --- documents sent by admins (/adicionar, /documentos, /remover) --------------------------------------

_KIND_NAMES = {"pdf": "PDF", "docx": "DOCX", "html": "HTML", "txt": "texto"}
DOCUMENT_BUSY = ("⏳ Já estou processando outro documento, um retreinamento ou uma reindexação. "
                 "Tente de novo quando terminar.")
REMOVE_USAGE = "Diga qual documento remover: <code>/remover nome</code> (o nome aparece em /documentos)."
DOCUMENT_REFUSED = {
    "too_large": "o arquivo passa do limite de {max_mb} MB.",
    "unsupported": "não é um PDF, DOCX, HTML nem texto. Envie o documento em um desses formatos.",
    "no_text": "sem texto: precisa de OCR. O PDF parece ser uma digitalização (só imagens). "
               "Envie a versão com texto selecionável, ou passe-o antes por um programa de OCR.",
    "broken": "o arquivo está corrompido ou incompleto e não pôde ser lido. Envie-o de novo.",
    "encrypted": "o PDF está protegido por senha. Envie uma versão sem senha.",
    "empty": "o arquivo não tem texto.",
    "read_only": "os documentos em uso são o corpus de exemplo, que não pode ser alterado "
                 "(configure DOCUMENTS_DIR).",
    "not_found": "não encontrei esse documento. Veja os nomes em /documentos.",
    "last": "é o único documento do índice: adicione outro antes de removê-lo.",
    "download": "não consegui baixar o arquivo do Telegram. Tente enviá-lo de novo.",
}


def document_howto(max_mb: float) -> str:
    """The /adicionar message: how an admin adds a document."""
    return ("📎 Para adicionar um documento, envie o arquivo aqui nesta conversa (PDF, DOCX, HTML ou texto, "
            f"até {max_mb:g} MB). Eu confiro, guardo, indexo e aviso quando ele já puder ser consultado.")


def document_received(file_name: str) -> str:
    return f"📥 Recebi <b>{escape(file_name)}</b>. Vou ler, guardar e indexar; aviso aqui quando terminar."


def document_refused(code: str, *, file_name: str, max_mb: float) -> str:
    """Why a document sent by an admin was not added (HTML)."""
    reason = DOCUMENT_REFUSED.get(code, DOCUMENT_REFUSED["broken"]).format(max_mb=f"{max_mb:g}")
    return f"❌ Não adicionei <b>{escape(file_name)}</b>: {escape(reason)}"


def document_added(report) -> str:
    """The summary of a document added (HTML): title, file, pages, chunks, QA pairs, time."""
    if report.unchanged:
        return f"ℹ️ <b>{escape(report.title)}</b> já estava no índice, idêntico ({escape(report.file)})."
    head = "🔁 Documento atualizado" if report.replaced else "✅ Documento adicionado"
    lines = [f"<b>{head}:</b> {escape(report.title)}",
             f"• arquivo: {escape(report.file)} ({_KIND_NAMES.get(report.kind, report.kind)})"]
    if report.pages:
        lines.append(f"• páginas: {report.pages}")
    if report.ocr_pages:
        lines.append(f"• páginas lidas por OCR (confira o texto): {len(report.ocr_pages)}")
    if report.pages_without_text:
        pages = ", ".join(str(p) for p in report.pages_without_text[:20])
        lines.append(f"• ⚠️ páginas sem texto (precisam de OCR), ignoradas: {pages}")
    if report.tables:
        lines.append(f"• tabelas: {report.tables}")
    lines += [f"• trechos indexados: {report.chunks}", f"• perguntas geradas: {report.qa_pairs}",
              f"• tempo: {report.seconds:.1f} s", "Já pode ser consultado."]
    return "\n".join(lines)


def document_failed(file_name: str, error: str) -> str:
    return f"❌ Não consegui indexar <b>{escape(file_name)}</b>: <code>{escape(clip(error, 300))}</code>"


def document_files(entries) -> str:
    """/documentos for admins (HTML): each document's title, file, type, pages and date."""
    if not entries:
        return NO_DOCUMENTS
    lines = [f"<b>Documentos ({len(entries)}):</b>"]
    for entry in entries[:100]:
        pages = f", {entry.pages} p." if entry.pages else ""
        lines.append(f"• {escape(entry.title)} — <code>{escape(entry.name)}</code> "
                     f"({escape(entry.file)}, {_KIND_NAMES.get(entry.kind, entry.kind)}{pages}, "
                     f"{entry.modified:%d/%m/%Y})")
    lines.append("Para remover um: <code>/remover nome</code>")
    return "\n".join(lines)


def document_removed(entry, *, seconds: float) -> str:
    return (f"🗑️ <b>{escape(entry.title)}</b> ({escape(entry.file)}) saiu do índice em {seconds:.1f} s. "
            "O arquivo foi guardado na pasta <code>removed</code> dos dados, caso precise voltar.")


def document_not_removed(code: str, *, wanted: str) -> str:
    reason = DOCUMENT_REFUSED.get(code, DOCUMENT_REFUSED["not_found"])
    return f"❌ Não removi <b>{escape(wanted)}</b>: {escape(reason)}"

"""Every citizen-facing text of Oráculo, in Brazilian Portuguese, and the functions that render answers.

Nothing else in the code base holds pt-BR text shown to people. Functions returning HTML escape
everything that came from outside (answers, titles, names), so the result is safe for parse_mode=HTML.

Example::

    >>> from bot import texts
    >>> texts.welcome(["Edital <2024>"], first_name="Ana").splitlines()[0]
    'Olá, Ana! Eu sou o Oráculo 🔮'
    >>> "&lt;2024&gt;" in texts.welcome(["Edital <2024>"], first_name="Ana")
    True
"""

from __future__ import annotations

from html import escape as _html_escape
from typing import Iterable, Protocol, Sequence

# Telegram refuses messages longer than 4096 characters: longer answers are split (split_message);
# beyond this an answer is clipped, so that one question never floods a chat.
MAX_ANSWER_CHARS = 12000
MAX_MESSAGE_CHARS = 4096
MAX_SOURCES_SHOWN = 3
MAX_QUOTE_CHARS = 400
MAX_BOLD_CHARS = 300  # a short answer the reader is confident of is shown in bold
MAX_DOCUMENTS_LISTED = 30


def escape(text: str) -> str:
    """Escape &, < and > for Telegram HTML (quotes need no escaping outside attributes)."""
    return _html_escape(text, quote=False)


class _Source(Protocol):
    document: str
    title: str
    section: str


class _Answer(Protocol):
    text: str
    sources: Sequence[_Source]
    abstained: bool


# --- commands -----------------------------------------------------------------------------------------

COMMANDS = {
    "start": "Começar e ver os documentos que conheço",
    "ajuda": "Como perguntar, com exemplos",
    "documentos": "Lista dos documentos que conheço",
    "sobre": "Fontes e versão do Oráculo",
    "esquecer": "Apagar minhas perguntas e avaliações",
}

EXAMPLE_QUESTIONS = (
    "Onde é sediada a UFMS?",
    "Quem pode se inscrever no POSCOMP?",
    "O que são atividades complementares?",
)

HELP = (
    "<b>Como usar o Oráculo</b>\n\n"
    "Escreva sua pergunta em uma mensagem, do jeito que você falaria. "
    "Eu procuro a resposta nos documentos oficiais e mostro de onde ela veio.\n\n"
    "<b>Exemplos:</b>\n"
    + "".join(f"• {escape(q)}\n" for q in EXAMPLE_QUESTIONS)
    + "\nDepois de cada resposta, toque em 👍 ou 👎 para dizer se ajudou. "
    "Isso me ajuda a melhorar.\n\n"
    "/documentos — documentos que conheço\n"
    "/sobre — fontes e versão\n"
    "/esquecer — apagar suas perguntas e avaliações\n"
    "/ajuda — esta mensagem"
)

UNKNOWN_COMMAND = "Não conheço esse comando. 🤔 Use /ajuda para ver o que eu sei fazer."
NO_DOCUMENTS = "Ainda não tenho nenhum documento carregado. Tente mais tarde, por favor."


def _document_list(documents: Sequence[str]) -> str:
    shown = [f"• {escape(title)}" for title in documents[:MAX_DOCUMENTS_LISTED]]
    if len(documents) > MAX_DOCUMENTS_LISTED:
        shown.append(f"… e mais {len(documents) - MAX_DOCUMENTS_LISTED}")
    return "\n".join(shown)


def welcome(documents: Sequence[str], *, first_name: str | None = None) -> str:
    """The /start message (HTML): who the bot is, what it knows, how to ask."""
    greeting = f"Olá, {escape(first_name)}!" if first_name else "Olá!"
    known = (f"Conheço estes documentos:\n{_document_list(documents)}" if documents else NO_DOCUMENTS)
    return (
        f"{greeting} Eu sou o Oráculo 🔮\n"
        "Respondo perguntas sobre documentos públicos oficiais, sempre dizendo de onde tirei a resposta.\n\n"
        f"{known}\n\n"
        "É só escrever sua pergunta. Por exemplo:\n"
        f"<i>{escape(EXAMPLE_QUESTIONS[0])}</i>\n\n"
        "Depois, toque em 👍 ou 👎 para me dizer se a resposta ajudou.\n\n"
        f"{PRIVACY_NOTE}"
    )


PRIVACY_NOTE = (
    "🔒 <b>Privacidade:</b> não guardo seu nome nem seu número; seu identificador do Telegram é "
    "guardado só de forma embaralhada (hash com sal), junto com suas perguntas e avaliações, para melhorar "
    "as respostas. Use /esquecer para apagar tudo quando quiser (LGPD)."
)


def about(*, version: str, documents: int, strategy: str) -> str:
    """The /sobre message (HTML): where the answers come from and which version answers."""
    mode = {"reader": "leitor (aponta o trecho do documento que responde)",
            "extractive": "extrativa (trechos dos documentos)"}.get(strategy, "generativa (modelo de linguagem)")
    return (
        "<b>Sobre o Oráculo</b> 🔮\n\n"
        f"Respondo com base em {documents} documentos públicos oficiais (veja /documentos), sempre citando "
        "o documento e a seção de onde veio a resposta.\n\n"
        "<b>Fontes:</b> normas e regulamentos da UFMS/FACOM do conjunto FaQuAD "
        "(Sayama, Araujo e Fernandes, BRACIS 2019), licença CC BY 4.0.\n"
        f"<b>Versão:</b> {escape(version)}\n"
        f"<b>Modo de resposta:</b> {mode}\n\n"
        "As respostas podem conter erros: em caso de dúvida, confirme no documento original."
    )


def documents_list(documents: Sequence[str]) -> str:
    """The /documentos message (HTML)."""
    if not documents:
        return NO_DOCUMENTS
    return f"<b>Documentos que conheço ({len(documents)}):</b>\n{_document_list(documents)}"


# --- questions and answers ----------------------------------------------------------------------------

EMPTY_QUESTION = "Escreva sua pergunta em uma mensagem de texto, por favor. 🙂"
TOO_LONG = "Sua pergunta ficou longa demais para mim. Pode resumir em poucas frases, por favor?"
UNSUPPORTED_MESSAGE = (
    "Por enquanto eu só entendo mensagens de texto. 🙂 Escreva sua pergunta, por favor."
)
_UNSUPPORTED_BY_KIND = {
    "photo": "Recebi sua imagem, mas ainda não consigo ler fotos. 📷",
    "sticker": "Adorei a figurinha! 😄",
    "voice": "Ainda não consigo ouvir áudios. 🎧",
    "audio": "Ainda não consigo ouvir áudios. 🎧",
    "video": "Ainda não consigo assistir vídeos. 🎬",
    "video_note": "Ainda não consigo assistir vídeos. 🎬",
    "document": "Ainda não consigo abrir arquivos enviados. 📎",
    "location": "Obrigado pela localização, mas eu só entendo perguntas escritas. 📍",
    "contact": "Obrigado pelo contato, mas eu só entendo perguntas escritas. 👤",
}


def unsupported(kind: str | None) -> str:
    """A kind reply to a message that is not text: say what it was, then ask for a written question."""
    first = _UNSUPPORTED_BY_KIND.get(kind or "")
    if first is None:
        return UNSUPPORTED_MESSAGE
    return f"{first} Por enquanto eu só entendo mensagens de texto: escreva sua pergunta, por favor."


EDITED_MESSAGE = (
    "Vi que você editou uma mensagem. ✏️ Eu não respondo de novo a mensagens editadas: "
    "envie a pergunta corrigida como uma nova mensagem, por favor."
)
RATE_LIMITED = (
    "Calma, são muitas perguntas em pouco tempo! 😅 Espere um minutinho e tente de novo, por favor."
)
NOT_FOUND = (
    "Não encontrei essa informação nos documentos que conheço. 😕\n"
    "Tente perguntar de outro jeito, ou use /documentos para ver o que eu conheço e /ajuda para ver "
    "exemplos de perguntas que sei responder."
)
# An abstention whose best passage came close: that passage is shown, quoted, never as an answer.
NOT_FOUND_CLOSEST = (
    "Não encontrei uma resposta exata para isso nos documentos. 😕 "
    "O trecho mais próximo que achei foi este; confira se ajuda:"
)
CLOSEST_VOTE_PROMPT = "Esse trecho responde à sua pergunta? Toque em 👍 ou 👎: assim eu aprendo."
ERROR = "Desculpe, algo deu errado do meu lado. 😓 Tente de novo em instantes, por favor."
# Answer.notice values (pipeline/answering/answer.py) -> the line shown above the answer.
NOTICES = {
    "llm_unavailable": ("⚠️ Meu gerador de respostas está fora do ar agora. Enquanto ele volta, esta é a "
                        "resposta que encontrei direto nos documentos:"),
}


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _unique_sources(sources: Iterable[_Source]) -> list[_Source]:
    seen: set[tuple[str, str, int]] = set()
    unique = []
    for source in sources:
        key = (source.document, source.section or "", getattr(source, "page", 0))
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique[:MAX_SOURCES_SHOWN]


def _source_label(source: _Source) -> str:
    section = source.section or ""
    if section == source.title or section.startswith(f"{source.title} > "):  # the title line heads the path
        section = section[len(source.title):].removeprefix(" > ")
    label = f"{source.title}, {section}" if section else source.title
    page = getattr(source, "page", 0)  # PDFs (and DOCX with pages) only
    return f"{label}, p. {page}" if page else label


def _quote_text(quote: str) -> str:
    """A quote as shown: a table row as two lines (header, row), a sentence as one."""
    return "\n   ".join(" ".join(line.split()) for line in quote.splitlines() if line.strip())


def _source_lines(answer: _Answer) -> list[str]:
    """One '📄 Fonte:' line per distinct source; under the first, the short quote the answer comes from
    (unless the answer already is that quote)."""
    lines: list[str] = []
    for rank, source in enumerate(_unique_sources(answer.sources)):
        lines.append(f"📄 Fonte: {_source_label(source)}")
        quote = _quote_text(getattr(source, "quote", "") or "")
        if rank == 0 and quote and quote != " ".join(answer.text.split()):
            lines.append(f"   “{_clip(quote, MAX_QUOTE_CHARS)}”")
    return [""] + lines if lines else []


def _closest_lines(answer: _Answer) -> list[str]:
    """For an abstention that came close (``Answer.closest``): the notice, the quote and its source."""
    source = getattr(answer, "closest", None)
    quote = _quote_text(getattr(source, "quote", "") or "") if source is not None else ""
    if not quote:
        return []
    return [NOT_FOUND_CLOSEST, f"   “{_clip(quote, MAX_QUOTE_CHARS)}”", f"📄 Fonte: {_source_label(source)}"]


def render_answer(answer: _Answer) -> str:
    """An answer as Telegram HTML: the text, then its sources (with the supporting quote), escaped.

    May be longer than one Telegram message: send it through ``split_message``.
    """
    notice = NOTICES.get(getattr(answer, "notice", ""), "")
    lead = [escape(notice), ""] if notice else []
    if answer.abstained or not answer.text.strip():
        closest = _closest_lines(answer)
        if not closest:
            return "\n".join(lead + [escape(NOT_FOUND)])
        return "\n".join(lead + [escape(line) for line in closest] + ["", escape(CLOSEST_VOTE_PROMPT)])
    text = escape(_clip(answer.text, MAX_ANSWER_CHARS))
    if getattr(answer, "confident", False) and len(answer.text) <= MAX_BOLD_CHARS:
        text = f"<b>{text}</b>"  # short: never reaches split_message's cut
    return "\n".join(lead + [text] + [escape(line) for line in _source_lines(answer)])


def render_answer_plain(answer: _Answer) -> str:
    """The same answer as plain text, for the terminal."""
    notice = NOTICES.get(getattr(answer, "notice", ""), "")
    lead = [notice, ""] if notice else []
    if answer.abstained or not answer.text.strip():
        return "\n".join(lead + (_closest_lines(answer) or [NOT_FOUND]))
    return "\n".join(lead + [answer.text.strip()] + _source_lines(answer))


def split_message(html: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Cut tag-free escaped HTML into parts of at most ``limit`` characters, at the cleanest boundary.

    Prefers paragraph breaks, then line breaks, then spaces; never cuts inside ``&amp;``-style entities.
    Only for text whose markup is entities (what ``render_answer`` makes), not for ``<b>`` tags.

    >>> [len(p) for p in split_message("a " * 3000, limit=4096)]
    [4095, 1903]
    """
    parts: list[str] = []
    rest = html.strip()
    while _utf16_units(rest) > limit:
        fits = _prefix_fitting(rest, limit)  # Telegram counts UTF-16 code units: an emoji counts 2
        window = rest[: fits + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator, 0, fits + 1)
            if cut > fits // 4:
                break
        if cut <= 0:
            cut = fits
            entity = window.rfind("&", 0, cut)
            if entity != -1 and ";" not in window[entity:cut]:
                cut = entity  # the entity would be cut in two
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix_fitting(text: str, limit: int) -> int:
    """The length of the longest prefix of ``text`` that is at most ``limit`` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


# --- feedback -----------------------------------------------------------------------------------------

BUTTON_UP = "👍 Ajudou"
BUTTON_DOWN = "👎 Não ajudou"
CHOSEN_MARK = "✅ "

# Callback-query answers: Telegram shows at most 200 characters.
FEEDBACK_THANKS = "Obrigado pelo retorno! 💙"
FEEDBACK_THANKS_DOWN = "Obrigado por avisar! Vou usar isso para melhorar."
FEEDBACK_CHANGED = "Pronto, mudei o seu voto. Obrigado!"
FEEDBACK_SAME = "Seu voto já estava registrado. Obrigado!"
FEEDBACK_INVALID = "Este botão não é válido. Faça uma nova pergunta, por favor."
FEEDBACK_EXPIRED = "Não encontrei mais essa resposta. Faça a pergunta de novo, por favor."
FEEDBACK_ERROR = "Não consegui registrar seu voto agora. Tente de novo em instantes."


FEEDBACK_FORGED = "Este botão não é desta conversa, então não registrei nada."
COMMENT_PROMPT = (
    "Que pena que não ajudou. 😕 Se quiser, responda a esta mensagem contando o que estava errado "
    "ou o que faltou (é opcional)."
)
COMMENT_PLACEHOLDER = "O que faltou na resposta?"
COMMENT_THANKS = "Anotado! Obrigado por explicar, isso me ajuda a melhorar. 💙"
COMMENT_NO_VOTE = "Não encontrei sua avaliação dessa resposta. Toque em 👎 nela antes de comentar, por favor."
COMMENT_EMPTY = "Seu comentário veio vazio. Se quiser, responda de novo com o texto, por favor."
_PROTOCOL = "Protocolo nº"


def comment_prompt(interaction_id: int) -> str:
    """The optional 'what was wrong?' question sent after a 👎; the protocol number ties the reply to it."""
    return f"{COMMENT_PROMPT}\n\n{_PROTOCOL} {interaction_id}"


def comment_protocol(prompt_text: str | None) -> int | None:
    """The interaction id in a comment prompt the bot sent, or None when the text is not such a prompt."""
    if not prompt_text or not prompt_text.startswith(COMMENT_PROMPT):
        return None
    tail = prompt_text.rsplit(_PROTOCOL, 1)[-1].strip()
    return int(tail) if tail.isascii() and tail.isdigit() and len(tail) <= 18 and int(tail) > 0 else None


# --- LGPD: /esquecer -----------------------------------------------------------------------------------

FORGET_CONFIRM = (
    "Você quer mesmo que eu apague <b>todas</b> as suas perguntas e avaliações? "
    "Isso não pode ser desfeito."
)
FORGET_YES = "🗑️ Sim, apagar tudo"
FORGET_NO = "Cancelar"
FORGET_DONE = "Pronto: apaguei suas perguntas e avaliações. Se voltar a perguntar, começamos do zero. 👋"
FORGET_NOTHING = "Não havia nada guardado sobre você. Está tudo limpo. 👍"
FORGET_CANCELLED = "Tudo bem, não apaguei nada."


def feedback_ack(*, vote: int, created: bool, changed: bool) -> str:
    """The short acknowledgement shown when a 👍/👎 button is pressed."""
    if changed:
        return FEEDBACK_CHANGED
    if not created:
        return FEEDBACK_SAME
    return FEEDBACK_THANKS if vote > 0 else FEEDBACK_THANKS_DOWN


# --- terminal chat and demo ---------------------------------------------------------------------------

CHAT_WELCOME = (
    "Oráculo 🔮 — pergunte sobre os documentos oficiais que eu conheço.\n"
    "Escreva 'sair' para terminar."
)
CHAT_FEEDBACK_PROMPT = "Esta resposta ajudou? [s/n, Enter para pular] "
CHAT_CLOSEST_PROMPT = "Esse trecho responde à sua pergunta? [s/n, Enter para pular] "
CHAT_COMMENT_PROMPT = "Quer contar o que faltou? (Enter para pular) "
DEMO_NEXT_STEPS = (
    "Pronto! Próximos passos:\n"
    "  oraculo chat    — converse com o Oráculo no terminal\n"
    "  oraculo bot     — rode o bot no Telegram (precisa de TELEGRAM_BOT_TOKEN no .env)"
)


# --- admins (Portuguese too: admins are Brazilian public servants) --------------------------------------

ADMIN_ONLY = "Desculpe, este comando é só para a equipe que administra o Oráculo. 🙏"
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
        lines.append(f"Erro: <code>{escape(_clip(error, 500))}</code>")
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
            lines.append(f"{count}× {escape(_clip(question, 80))}")
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
    return f"❌ Não consegui indexar <b>{escape(file_name)}</b>: <code>{escape(_clip(error, 300))}</code>"


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

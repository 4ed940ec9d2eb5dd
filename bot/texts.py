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


def clip(text: str, limit: int) -> str:
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
            lines.append(f"   “{clip(quote, MAX_QUOTE_CHARS)}”")
    return [""] + lines if lines else []


def _closest_lines(answer: _Answer) -> list[str]:
    """For an abstention that came close (``Answer.closest``): the notice, the quote and its source."""
    source = getattr(answer, "closest", None)
    quote = _quote_text(getattr(source, "quote", "") or "") if source is not None else ""
    if not quote:
        return []
    return [NOT_FOUND_CLOSEST, f"   “{clip(quote, MAX_QUOTE_CHARS)}”", f"📄 Fonte: {_source_label(source)}"]


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
    text = escape(clip(answer.text, MAX_ANSWER_CHARS))
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

# Shown to anyone who tries an admin command without being one.
ADMIN_ONLY = "Desculpe, este comando é só para a equipe que administra o Oráculo. 🙏"

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

# Telegram refuses messages longer than 4096 characters; keep room for the sources and the markup.
MAX_ANSWER_CHARS = 3500
MAX_SOURCES_SHOWN = 3
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
        "Depois, toque em 👍 ou 👎 para me dizer se a resposta ajudou."
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
NOT_FOUND = (
    "Não encontrei essa informação nos documentos que conheço. 😕\n"
    "Tente perguntar de outro jeito, ou use /documentos para ver o que eu conheço."
)
ERROR = "Desculpe, algo deu errado do meu lado. 😓 Tente de novo em instantes, por favor."


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _unique_sources(sources: Iterable[_Source]) -> list[_Source]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for source in sources:
        key = (source.document, source.section or "")
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique[:MAX_SOURCES_SHOWN]


def _source_label(source: _Source) -> str:
    return f"{source.title}, {source.section}" if source.section else source.title


def render_answer(answer: _Answer) -> str:
    """An answer as Telegram HTML: the text, then one '📄 Fonte:' line per distinct source."""
    if answer.abstained or not answer.text.strip():
        return escape(NOT_FOUND)
    lines = [escape(_clip(answer.text, MAX_ANSWER_CHARS))]
    sources = _unique_sources(answer.sources)
    if sources:
        lines.append("")
        lines += [f"📄 Fonte: {escape(_source_label(s))}" for s in sources]
    return "\n".join(lines)


def render_answer_plain(answer: _Answer) -> str:
    """The same answer as plain text, for the terminal."""
    if answer.abstained or not answer.text.strip():
        return NOT_FOUND
    lines = [answer.text.strip()]
    sources = _unique_sources(answer.sources)
    if sources:
        lines.append("")
        lines += [f"📄 Fonte: {_source_label(s)}" for s in sources]
    return "\n".join(lines)


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
CHAT_COMMENT_PROMPT = "Quer contar o que faltou? (Enter para pular) "
DEMO_NEXT_STEPS = (
    "Pronto! Próximos passos:\n"
    "  oraculo chat    — converse com o Oráculo no terminal\n"
    "  oraculo bot     — rode o bot no Telegram (precisa de TELEGRAM_BOT_TOKEN no .env)"
)

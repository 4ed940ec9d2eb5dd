"""The terminal chat: the same answer path and feedback recording as the Telegram bot.

Example::

    oraculo chat
    > Onde é sediada a UFMS?
    ... answer with sources ...
    Esta resposta ajudou? [s/n/Enter para pular]
"""

from __future__ import annotations

from typing import Callable, TextIO
import sys

from bot import texts

_YES = {"s", "sim", "y", "yes", "+", "👍"}
_NO = {"n", "nao", "não", "no", "-", "👎"}
_QUIT = {"sair", "exit", "quit", ":q"}


def run_chat(service, *, user_ref: str, read: Callable[[str], str] = input, out: TextIO = sys.stdout) -> int:
    """Loop: question -> answer with sources -> optional 👍/👎 and comment, until 'sair' or end of input."""
    print(texts.CHAT_WELCOME, file=out)
    while True:
        try:
            question = read("> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return 0
        if not question:
            continue
        if question.lower() in _QUIT:
            return 0
        try:
            result = service.ask(question, user_ref=user_ref, channel="cli")
        except ValueError:
            print(texts.TOO_LONG, file=out)
            continue
        print(texts.render_answer_plain(result.answer), file=out)
        if result.answer.abstained and getattr(result.answer, "closest", None) is None:
            continue  # a bare "not found" has nothing to rate
        prompt = texts.CHAT_CLOSEST_PROMPT if result.answer.abstained else texts.CHAT_FEEDBACK_PROMPT
        try:
            reply = read(prompt).strip().lower()
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return 0
        if reply in _YES | _NO:
            vote = 1 if reply in _YES else -1
            service.vote(interaction_id=result.interaction_id, user_ref=user_ref, vote=vote)
            print(texts.FEEDBACK_THANKS, file=out)
            if vote < 0:
                try:
                    comment = read(texts.CHAT_COMMENT_PROMPT).strip()
                except (EOFError, KeyboardInterrupt):
                    return 0
                if comment:
                    service.comment(interaction_id=result.interaction_id, user_ref=user_ref, comment=comment)

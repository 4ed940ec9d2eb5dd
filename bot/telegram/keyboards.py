"""The 👍/👎 feedback keyboard and the strict parser of its callback data.

Callback data is ``fb:<interaction_id>:up`` or ``fb:<interaction_id>:down``, and ``forget:yes`` /
``forget:no`` for the /esquecer confirmation. Anything else a client sends (old formats, forged data, stray
whitespace, non-ASCII digits) parses to ``None``.

Example::

    >>> from bot.telegram.keyboards import feedback_keyboard, parse_feedback_data
    >>> [b.callback_data for b in feedback_keyboard(42).inline_keyboard[0]]
    ['fb:42:up', 'fb:42:down']
    >>> parse_feedback_data("fb:42:down")
    FeedbackChoice(interaction_id=42, vote=-1)
    >>> parse_feedback_data("fb:42:maybe") is None
    True
"""

from __future__ import annotations

import re
from typing import NamedTuple

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts

PREFIX = "fb"
VOTES = {"up": +1, "down": -1}
_NAMES = {vote: name for name, vote in VOTES.items()}
# Database ids are positive; 18 digits keep them inside a signed 64-bit integer.
_PATTERN = re.compile(r"fb:([1-9][0-9]{0,17}):(up|down)", re.ASCII)


class FeedbackChoice(NamedTuple):
    interaction_id: int
    vote: int  # +1 or -1


def feedback_data(interaction_id: int, vote: int) -> str:
    """The callback data of one button; at most 64 bytes, as Telegram requires."""
    if isinstance(interaction_id, bool) or not isinstance(interaction_id, int) or interaction_id < 1:
        raise ValueError(f"interaction_id must be a positive int, got {interaction_id!r}")
    if vote not in _NAMES:
        raise ValueError(f"vote must be +1 or -1, got {vote!r}")
    return f"{PREFIX}:{interaction_id}:{_NAMES[vote]}"


def feedback_keyboard(interaction_id: int, *, chosen: int | None = None) -> InlineKeyboardMarkup:
    """Two buttons, 👍 and 👎; the one matching ``chosen`` (+1/-1) carries a check mark."""
    buttons = []
    for vote, label in ((+1, texts.BUTTON_UP), (-1, texts.BUTTON_DOWN)):
        mark = texts.CHOSEN_MARK if chosen == vote else ""
        buttons.append(InlineKeyboardButton(mark + label, callback_data=feedback_data(interaction_id, vote)))
    return InlineKeyboardMarkup([buttons])


def parse_feedback_data(data: object) -> FeedbackChoice | None:
    """The choice encoded in callback data, or None when the data is not exactly ours."""
    if not isinstance(data, str):
        return None
    match = _PATTERN.fullmatch(data)
    if match is None:
        return None
    return FeedbackChoice(interaction_id=int(match.group(1)), vote=VOTES[match.group(2)])


FORGET_PREFIX = "forget"
FORGET_PATTERN = r"^forget:(yes|no)$"


def forget_keyboard() -> InlineKeyboardMarkup:
    """The /esquecer confirmation: erase everything, or cancel."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(texts.FORGET_YES, callback_data=f"{FORGET_PREFIX}:yes"),
                                  InlineKeyboardButton(texts.FORGET_NO, callback_data=f"{FORGET_PREFIX}:no")]])


def comment_request() -> ForceReply:
    """Opens the reply field under the 'what was wrong?' prompt, so answering it is one tap."""
    return ForceReply(selective=True, input_field_placeholder=texts.COMMENT_PLACEHOLDER)

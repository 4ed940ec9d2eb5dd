"""Telegram's HTML parse mode, as the fake Bot API applies it: the text people see and its entities.

Telegram refuses (400 "can't parse entities") unknown tags, unbalanced tags and any ``<``, ``>`` or ``&`` that
is not part of a tag or one of the entities ``&lt; &gt; &amp; &quot;`` or a numeric one.

Example::

    >>> parse_html("<b>Olá</b> &amp; até")
    ('Olá & até', [{'type': 'bold', 'offset': 0, 'length': 3}])
"""

from __future__ import annotations

import re
from html import unescape

_ENTITY_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
                "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
                "code": "code", "pre": "pre", "a": "text_link", "blockquote": "blockquote",
                "tg-spoiler": "spoiler", "span": "spoiler", "tg-emoji": "custom_emoji"}
_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:=(?:\"[^\"]*\"|'[^']*'))?)*)\s*>"
                    r"|&(?:#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot);|[<>&]")
_ATTR = re.compile(r"([a-zA-Z-]+)=(?:\"([^\"]*)\"|'([^']*)')")


class HtmlError(ValueError):
    """Telegram would answer 400 with this description."""


def parse_html(text: str) -> tuple[str, list[dict]]:
    """Telegram's HTML parse mode: (plain text, entities with UTF-16 offsets); HtmlError when Telegram says 400."""
    out: list[str] = []
    units = 0  # UTF-16 length of the plain text so far: Telegram's offsets count UTF-16 code units
    stack: list[tuple[str, int, dict]] = []
    entities: list[dict] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        chunk = text[pos:match.start()]
        out.append(chunk)
        units += len(chunk.encode("utf-16-le")) // 2
        pos = match.end()
        token = match.group(0)
        if token in "<>&":
            raise HtmlError(f"Bad Request: can't parse entities: unexpected {token!r} at byte offset "
                                f"{len(text[:match.start()].encode())}; escape it as an HTML entity")
        if token.startswith("&"):
            char = unescape(token)
            out.append(char)
            units += len(char.encode("utf-16-le")) // 2
            continue
        closing, tag, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if tag not in _ENTITY_TAGS:
            raise HtmlError(f"Bad Request: can't parse entities: Unsupported start tag \"{tag}\"")
        if not closing:
            stack.append((tag, units, {m[1]: m[2] or m[3] for m in _ATTR.finditer(attrs)}))
            continue
        if not stack or stack[-1][0] != tag:
            raise HtmlError(f"Bad Request: can't parse entities: Unmatched end tag \"{tag}\"")
        _, start, attributes = stack.pop()
        if units > start:
            entity = {"type": _ENTITY_TAGS[tag], "offset": start, "length": units - start}
            if tag == "a":
                entity["url"] = attributes.get("href", "")
            entities.append(entity)
    if stack:
        raise HtmlError("Bad Request: can't parse entities: Can't find end tag corresponding to start "
                            f"tag \"{stack[-1][0]}\"")
    out.append(text[pos:])
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))

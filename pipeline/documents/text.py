r"""A document's text and identity: the :class:`Document` record, decoding bytes, normalising text, titles.

Every reader of documents (plain text in :mod:`pipeline.documents.load`, PDF/DOCX/HTML in
:mod:`pipeline.documents.ingest`) builds its :class:`Document` with these, so character offsets and titles mean
the same thing whatever the file type.

Example::

    >>> from pipeline.documents.text import normalise_text, title_from_name, title_from_text
    >>> title_from_name("NORMAS_DE_ESTAGIO_UFMS")
    'Normas de Estagio UFMS'
    >>> title_from_text("Edital nº 12/2025\n\nAs inscrições...")
    'Edital nº 12/2025'
    >>> normalise_text("a\r\nb")
    'a\nb'
"""

from __future__ import annotations

import bisect
import codecs
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

# Share of control characters (other than tab/newline/CR/form feed) above which a file is taken for binary;
# the same share bounds the stray NUL bytes a text file may carry (one NUL in 11 KB of text is not binary).
_MAX_CONTROL_SHARE = 0.01
TITLE_MAX_CHARS = 90  # titles head every source shown to a citizen: keep them to one line

@dataclass(frozen=True)
class Document:
    """One source document: ``name`` (the file stem, with its subfolders) is the key every other record refers to."""

    name: str
    title: str
    text: str
    path: Path
    sha256: str  # of the normalised text (UTF-8), so re-encoding a file does not count as a change
    page_starts: tuple[int, ...] = ()  # offset where each page begins (PDF; DOCX when Word recorded pages)
    kind: str = "txt"  # txt | pdf | docx | html

    def page_at(self, offset: int) -> int:
        """The 1-based page holding ``text[offset]``; 0 when the document has no pages."""
        return bisect.bisect_right(self.page_starts, offset) if self.page_starts else 0


# Joining words stay lower case in a title; short all-caps words of a file name are usually acronyms.
_TITLE_LOWER = {"a", "o", "e", "as", "os", "de", "da", "do", "das", "dos", "em", "na", "no", "para", "por"}
_ACRONYM_MAX = 5


def read_file(path: Path) -> bytes | str:
    """The file's bytes, or the reason it cannot be read (``"unreadable (Permission denied)"``)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def title_from_name(name: str) -> str:
    """``NORMAS_DE_ESTAGIO_UFMS`` -> ``Normas de Estagio UFMS``."""
    words = name.replace("_", " ").replace("-", " ").split()
    titled = []
    for i, word in enumerate(words):
        if i > 0 and word.lower() in _TITLE_LOWER:
            titled.append(word.lower())
        elif word.isupper() and len(word) <= _ACRONYM_MAX and word.isalpha() and word.lower() not in _TITLE_LOWER:
            titled.append(word)
        else:
            titled.append(word.capitalize())
    return " ".join(titled)


# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one. The codecs read the mark for the byte order.
_WIDE_BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
              (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]


def _looks_binary(text: str) -> bool:
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f")
    return bool(text) and controls / len(text) > _MAX_CONTROL_SHARE


def decode_bytes(raw: bytes) -> tuple[str, str] | None:
    """Decode ``raw`` as UTF-16/32 with a BOM, else UTF-8, else CP1252, else Latin-1; ``None`` when it looks binary.

    Returns ``(text, encoding)``. Stray NUL bytes (at most 1% of the file) are dropped, and the encoding then
    says so (``"utf-8, 1 NUL byte dropped"``): offsets refer to the text without them.
    """
    for bom, encoding in _WIDE_BOMS:
        if raw.startswith(bom):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                return None
            return None if _looks_binary(text) else (text, encoding)
    nuls = raw.count(b"\x00")
    if nuls:
        if nuls / len(raw) > _MAX_CONTROL_SHARE:
            return None
        raw = raw.replace(b"\x00", b"")
    try:
        text, encoding = raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, encoding = raw.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:  # bytes 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in CP1252
            text, encoding = raw.decode("latin-1"), "latin-1"
    if _looks_binary(text):
        return None
    if nuls:
        encoding += f", {nuls} NUL byte{'s' if nuls > 1 else ''} dropped"
    return text, encoding


def normalise_text(text: str) -> str:
    """Unify line endings and Unicode composition; offsets are only stable on this form."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


# A heading line: no sentence-ending punctuation (an all-caps line may end with a period, as official titles do).
_SENTENCE_END = re.compile(r"[.!?;,]$")
_MARKUP = re.compile(r"^(#+|=+|\*+)\s*|\s*(#+|=+|\*+)$")


def title_from_text(text: str, *, limit: int = TITLE_MAX_CHARS) -> str | None:
    """The document's own title: its first non-empty line when it reads as a heading, else ``None``.

    ``"Edital nº 12/2025 — Concurso Público\\n\\nAs inscrições..."`` -> ``"Edital nº 12/2025 — Concurso
    Público"``.
    A heading is short (at most 200 characters, cut to ``limit`` at a word with "…"), has letters, is followed
    by more text and does not end like a sentence; markdown ``#`` marks are dropped.
    """
    stripped = text.strip()
    if not stripped:
        return None
    first, _, rest = stripped.partition("\n")
    line = " ".join(_MARKUP.sub("", first.strip()).split())
    if not rest.strip() or not line or len(line) > 200 or not any(c.isalpha() for c in line):
        return None
    letters = [c for c in line if c.isalpha()]
    all_caps = sum(c.isupper() for c in letters) >= 0.8 * len(letters)
    if _SENTENCE_END.search(line) and not (all_caps and line.endswith(".")):
        return None
    line = line.rstrip(".:").strip() if all_caps else line.rstrip(":").strip()
    if len(line) > limit:
        cut = line[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:—–-")
        line = cut + "…"
    return line or None

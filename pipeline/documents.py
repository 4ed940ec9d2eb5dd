"""Load the public documents Oráculo answers from: one plain-text file per document.

Files are read as UTF-8 (a BOM is dropped); files that are not valid UTF-8 are decoded as CP1252 or, when
that fails, Latin-1 (the encodings Brazilian government offices still export). Line endings become ``\\n`` and
the text is put in Unicode NFC, so every character offset later stored (chunk spans, QA spans) refers to
``Document.text`` as loaded here. Empty and binary files are logged and skipped. Without a folder of
documents (none given, missing, or without any ``*.txt``) the bundled sample corpus is used.

Example::

    >>> from pipeline.documents import load_documents
    >>> docs = load_documents(None)            # the bundled sample corpus
    >>> docs[0].name, docs[0].title
    ('ANALISE_DE_SISTEMAS', 'Analise De Sistemas')
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

# Share of control characters (other than tab/newline/CR/form feed) above which a file is taken for binary.
_MAX_CONTROL_SHARE = 0.01


@dataclass(frozen=True)
class Document:
    """One source document: ``name`` is the file stem and the key every other record refers to."""

    name: str
    title: str
    text: str
    path: Path
    sha256: str  # of the normalised text (UTF-8), so re-encoding a file does not count as a change


def sample_corpus_dir() -> Path:
    """The folder of the sample corpus shipped as package data (FaQuAD's documents, CC BY 4.0)."""
    return Path(str(resources.files("pipeline") / "sample_corpus"))


# Joining words stay lower case in a title; short all-caps words of a file name are usually acronyms.
_TITLE_LOWER = {"a", "o", "e", "as", "os", "de", "da", "do", "das", "dos", "em", "na", "no", "para", "por"}
_ACRONYM_MAX = 5


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


def decode_bytes(raw: bytes) -> tuple[str, str] | None:
    """Decode ``raw`` as UTF-8, else CP1252, else Latin-1; ``None`` when it looks binary.

    Returns ``(text, encoding)``.
    """
    if b"\x00" in raw:
        return None
    try:
        text, encoding = raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, encoding = raw.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:  # bytes 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in CP1252
            text, encoding = raw.decode("latin-1"), "latin-1"
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f")
    if text and controls / len(text) > _MAX_CONTROL_SHARE:
        return None
    return text, encoding


def normalise_text(text: str) -> str:
    """Unify line endings and Unicode composition; offsets are only stable on this form."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def read_document(path: Path) -> Document | None:
    """Read one file; ``None`` (and a log line) when it is empty or binary."""
    decoded = decode_bytes(path.read_bytes())
    if decoded is None:
        logger.warning("skipping %s: looks binary", path)
        return None
    text, encoding = decoded
    text = normalise_text(text)
    if not text.strip():
        logger.warning("skipping %s: empty", path)
        return None
    if encoding != "utf-8":
        logger.info("%s decoded as %s", path, encoding)
    return Document(name=path.stem, title=title_from_name(path.stem), text=text, path=path,
                    sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def load_documents(folder: Path | None) -> list[Document]:
    """Every readable ``*.txt`` of ``folder`` sorted by name; the sample corpus when there is none."""
    files = sorted(Path(folder).glob("*.txt")) if folder is not None and Path(folder).is_dir() else []
    if not files:
        logger.info("no .txt documents in %s: using the sample corpus", folder)
        files = sorted(sample_corpus_dir().glob("*.txt"))
    documents = [doc for doc in (read_document(path) for path in files if path.is_file()) if doc is not None]
    if not documents:
        logger.warning("no usable document in %s", folder)
    return documents

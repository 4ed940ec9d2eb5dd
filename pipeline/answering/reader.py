"""The span reader: a question-answering model that reads the retrieved passages and points at the answer.

A ``BertForQuestionAnswering`` on the multilingual-e5-small encoder (:mod:`pipeline.search.e5`), adapted with LoRA
(rank 16 on every linear layer of the encoder, plus the start/end head). The adapter is the part that learns:
the shipped one (``pipeline/answering/reader_adapter/``, trained by ``scripts/train_reader.py`` on machine-translated
SQuAD 2.0 in Portuguese and FaQuAD, see the README) and every adapter the nightly job trains from citizens'
votes on top of it (:mod:`pipeline.training.reader_train`).

Each passage is read as ``<s> question </s></s> passage </s>`` (windows of ``max_length`` tokens with
``stride`` overlap for long passages). The best span over all windows is the answer; the score that decides
whether to answer is its *margin*: start+end logits of the span minus those of the ``<s>`` token, which the
model was trained to prefer when a window holds no answer (SQuAD 2.0's unanswerable questions). A margin
below ``Settings.reader_threshold`` (calibrated on held-out documents) means "no answer in these passages".

Example::

    >>> from pipeline.answering.reader import SpanReader
    >>> reader = SpanReader.load()                    # doctest: +SKIP
    >>> best = reader.read("Onde fica a UFMS?", ["A UFMS tem sede em Campo Grande, MS."])[0]   # doctest: +SKIP
    >>> best.text, best.margin > 0                    # doctest: +SKIP
    ('Campo Grande', True)
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.answering.answerability import load_for
from pipeline.core.text import FUNCTION_WORDS, fold
from pipeline.documents.chunking import _MARKER
from pipeline.llm.adapters import adapter_kind
from pipeline.search.e5 import embedded_e5_dir
from pipeline.serving.versions import serving_adapter
from pipeline.settings import EMBEDDED, Settings

logger = logging.getLogger(__name__)

SHIPPED_ADAPTER = Path(__file__).with_name("reader_adapter")
MAX_LENGTH = 384
STRIDE = 96
MAX_ANSWER_TOKENS = 48
TARGET_MODULES = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
MAX_QUESTION_CHARS = 250  # longer questions are cut: the passage must keep room in the window
_SPELLED = re.compile(r"\s?\((?=[^\W\d])[^()\n]{1,60}\)")  # "(cinquenta)", "(vinte e cinco reais)"
_CELL_OR_LINE = re.compile(r"\n|\s\|\s")  # an answer never runs across lines or table cells
_CELL_SEPARATOR = " | "
_PUNCT_EDGE = " \t\n,;:.()[]\"'“”‘’-–—/"
_BRACKETS = (("(", ")"), ("[", "]"), ("“", "”"))
_CLOSING_OF = dict(_BRACKETS)
_OPENING_OF = {closing: opening for opening, closing in _BRACKETS}
_NUMBER_BEFORE = re.compile(r"\d[\d.,]*\s?$")  # the figure a parenthesis spells out: "4 (quatro)"
# A count written out ("12 (doze)") is completed by the word it counts ("12 (doze) meses"), never a sum of money
_COUNT_AT_END = re.compile(r"\d[\d.,]*" + _SPELLED.pattern + "$")
_MONEY_SPELLED = re.compile(r"\b(?:reais|real|centavos?)\)$")
_NEXT_WORD = re.compile(r" ([^\W\d_]{3,})\b")


@dataclass(frozen=True)
class ReadSpan:
    passage: int      # index of the passage in the list given to ``read``
    start: int        # character offsets in that passage
    end: int
    text: str
    margin: float     # span score minus the "no answer" score of the same passages
    score: float = 0.0  # the span's own score (start + end logits)
    null: float = 0.0   # the "no answer" score it is compared with


def resolve_base(name: str | Path, cache_dir: Path | None = None) -> str:
    """``"embedded"`` -> the converted e5-small checkpoint folder; any Hugging Face id or path unchanged."""
    if str(name) == EMBEDDED:
        return str(embedded_e5_dir(cache_dir=cache_dir))
    return str(name)


def base_model(base: str | Path, cache_dir: Path | None = None):
    """A fresh ``(BertForQuestionAnswering-like model, tokenizer)`` for ``base`` (head initialised at random)."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_base(base, cache_dir)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "some weights were newly initialised": the head, on purpose
    hf_logging.disable_progress_bar()
    try:
        torch.manual_seed(0)
        model = AutoModelForQuestionAnswering.from_pretrained(path)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return model, AutoTokenizer.from_pretrained(path)


def lora_config(rank: int = 16, alpha: int = 32, dropout: float = 0.05):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=TARGET_MODULES,
                      modules_to_save=["qa_outputs"], bias="none")


def adapter_version(adapter: Path | None) -> str:
    """A short stable id of an adapter folder (its weights' hash), ``"base"`` without one."""
    if adapter is None:
        return "base"
    digest = hashlib.sha256()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        file = Path(adapter) / name
        if file.is_file():
            digest.update(file.read_bytes())
    return f"reader-{digest.hexdigest()[:10]}"


def words_edge(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` widened to whole words and stripped of punctuation and spaces at both edges; a bracket is
    never left without its pair, a number or percentage keeps its written-out form ("50 (cinquenta)"), a
    written-out count the word it counts ("50 (cinquenta) dias") and an amount its "R$"."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and end > 0 and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    for opening, closing in _BRACKETS:  # "50 (cinq" -> "50 (cinquenta)"; "quatro) horas" -> "4 (quatro) horas"
        inside = text[start:end]
        if inside.count(opening) > inside.count(closing):
            close = text.find(closing, end, end + 40)
            if close >= 0:
                end = close + 1
        elif inside.count(closing) > inside.count(opening):
            before = text.rfind(opening, max(0, start - 40), start)
            if before >= 0 and closing not in text[before + 1:start]:
                figure = _NUMBER_BEFORE.search(text, max(0, before - 24), before)
                start = figure.start() if figure else before
    # Official documents write amounts as "R$ 25,00 (vinte e cinco reais)" and "50 (cinquenta)": a number
    # is given with its currency sign and its spelled-out form.
    if start < end and (text[end - 1].isdigit() or text[end - 1] == "%"):  # "80% (oitenta por cento)"
        spelled = _SPELLED.match(text, end)
        if spelled:
            end = spelled.end()
    if _COUNT_AT_END.search(text, start, end) and not _MONEY_SPELLED.search(text, start, end):
        unit = _NEXT_WORD.match(text, end)
        if unit and unit.group(1).islower() and fold(unit.group(1)) not in FUNCTION_WORDS:
            end = unit.end()
    if start < end and text[start].isdigit() and text[max(0, start - 3):start] == "R$ ":
        start -= 3
    while start < end and text[start] in _PUNCT_EDGE:
        # keep an opening bracket or quote whose closing one is inside the span ("(49) 3581-2047")
        closing = _CLOSING_OF.get(text[start])
        if closing and closing in text[start + 1:end]:
            break
        start += 1
    while end > start and text[end - 1] in _PUNCT_EDGE:
        # keep a closing bracket or quote whose opening one is inside the span ("50 (cinquenta)")
        closing = text[end - 1]
        opening = _OPENING_OF.get(closing)
        if opening and opening in text[start:end - 1]:
            break
        end -= 1
    return start, end


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Where the line(s) holding ``[start, end)`` begin and end (without their newlines)."""
    line_end = text.find("\n", end)
    return text.rfind("\n", 0, start) + 1, len(text) if line_end < 0 else line_end


def past_marker(text: str, start: int, end: int) -> tuple[int, int]:
    """A span that opens a line with its structural marker ("Art. 6º", "§ 2º", "IV –", "b)", "8.1") starts after
    it: the marker is where the answer sits (the citation names it), not part of what it says. A span that is only
    the marker is returned unchanged."""
    line_start, line_end = _line_bounds(text, start, end)
    if text[line_start:start].strip() or _CELL_SEPARATOR in text[line_start:line_end]:
        return start, end  # not at the head of its line, or a table row (its cells are the answer)
    marker = _MARKER.match(text, start, end)
    if marker is None:
        return start, end
    after = marker.end()
    while after < end and text[after] in _PUNCT_EDGE:
        after += 1
    if marker.lastgroup == "item" and not text[after:after + 1].isupper():
        return start, end  # "10.5 milhões": a figure, not an item's number ("8.1 Para a matrícula")
    return (after, end) if after < end else (start, end)


def table_cell(text: str, start: int, end: int) -> tuple[int, int]:
    """A span inside a table row (cells joined by " | ", as documents are read) widened to its whole cell: a
    table's answer is a cell ("Rua das Acácias" -> "Rua das Acácias, entre os nºs 100 e 400"). Anything else is
    returned unchanged."""
    line_start, line_end = _line_bounds(text, start, end)
    if _CELL_SEPARATOR not in text[line_start:line_end] or _CELL_SEPARATOR in text[start:end]:
        return start, end
    before = text.rfind(_CELL_SEPARATOR, line_start, start)
    after = text.find(_CELL_SEPARATOR, end, line_end)
    cell_start = line_start if before < 0 else before + len(_CELL_SEPARATOR)
    cell_end = line_end if after < 0 else after
    while cell_start < cell_end and text[cell_start] in " |\t":
        cell_start += 1
    while cell_end > cell_start and text[cell_end - 1] in " |\t":
        cell_end -= 1
    return (cell_start, cell_end) if cell_start <= start and end <= cell_end else (start, end)


class SpanReader:
    """Reads passages with a question-answering model; thread-safe; one instance per process is enough."""

    def __init__(self, model, tokenizer, *, version: str = "base", max_length: int = MAX_LENGTH,
                 stride: int = STRIDE, max_answer_tokens: int = MAX_ANSWER_TOKENS) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.version = version
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        # "no answer" score: the lowest over all windows read (SQuAD 2.0's rule for one long text), or the one
        # of the answer's own passage
        self.per_passage_null = False
        # the AnswerabilityModel kept beside the adapter (pipeline.answering.answerability), if any
        self.abstention = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, base: str | Path = EMBEDDED, adapter: Path | None | str = "shipped",
             cache_dir: Path | None = None) -> "SpanReader":
        """The reader of ``base`` with ``adapter`` (``"shipped"``: the one in the package; ``None``: no
        adapter, an untrained head) merged into its weights for speed."""
        model, tokenizer = base_model(base, cache_dir)
        if adapter == "shipped":
            adapter = SHIPPED_ADAPTER if (SHIPPED_ADAPTER / "adapter_config.json").is_file() else None
            if adapter is None:
                logger.warning("no shipped reader adapter at %s: the reader is untrained", SHIPPED_ADAPTER)
        if adapter is not None:
            from peft import PeftModel

            with warnings.catch_warnings():  # transformers' deprecation notice raised inside peft's merge
                warnings.filterwarnings("ignore", category=FutureWarning)
                model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()

        reader = cls(model, tokenizer, version=adapter_version(Path(adapter) if adapter else None))
        reader.abstention = load_for(Path(adapter) if adapter else None)
        return reader

    def encode(self, question: str, passages: Sequence[str]):
        """Tokenised windows of every (question, passage) pair, with offsets and their passage index."""
        question = question[:MAX_QUESTION_CHARS]
        return self.tokenizer([question] * len(passages), list(passages), truncation="only_second",
                              max_length=self.max_length, stride=min(self.stride, self.max_length // 4),
                              return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
                              return_tensors="pt")

    def logits(self, question: str, passages: Sequence[str]):
        """``(encoding, start_logits, end_logits)`` as numpy arrays, one row per window."""
        import torch

        encoding = self.encode(question, passages)
        inputs = {k: encoding[k] for k in ("input_ids", "attention_mask")}
        with self._lock, torch.inference_mode():
            out = self.model(**inputs)
        return encoding, out.start_logits.float().numpy(), out.end_logits.float().numpy()

    def read(self, question: str, passages: Sequence[str], *, top: int = 5,
             exclude: Sequence[tuple[int, int, int]] = ()) -> list[ReadSpan]:
        """The ``top`` best spans over ``passages`` (best first), never one overlapping ``exclude``
        (``(passage, start, end)`` of answers citizens rejected). Empty when no passage has text."""
        passages = list(passages)
        keep = [i for i, p in enumerate(passages) if p and p.strip()]
        if not question.strip() or not keep:
            return []
        encoding, starts, ends = self.logits(question, [passages[i] for i in keep])
        windows = encoding["overflow_to_sample_mapping"].numpy()
        nulls: dict[int, float] = {}
        for w, sample in enumerate(windows):
            nulls[int(sample)] = min(nulls.get(int(sample), np.inf), float(starts[w, 0] + ends[w, 0]))
        null_all = min(nulls.values())
        candidates: list[tuple[float, int, int, int]] = []
        for w, sample in enumerate(windows):
            sequence_ids = encoding.sequence_ids(w)
            context = np.array([sid == 1 for sid in sequence_ids])
            offsets = encoding["offset_mapping"][w].numpy()
            s_logits = np.where(context, starts[w], -np.inf)
            e_logits = np.where(context, ends[w], -np.inf)
            s_best = np.argsort(s_logits)[::-1][:20]
            e_best = np.argsort(e_logits)[::-1][:20]
            for s in s_best:
                if not context[s]:
                    break
                for e in e_best:
                    if not context[e] or e < s or e - s + 1 > self.max_answer_tokens:
                        continue
                    candidates.append((float(s_logits[s] + e_logits[e]), keep[sample],
                                       int(offsets[s][0]), int(offsets[e][1])))
        candidates.sort(key=lambda c: -c[0])
        spans: list[ReadSpan] = []
        seen: set[tuple[int, int, int]] = set()
        position = {p: i for i, p in enumerate(keep)}
        for score, passage, start, end in candidates:
            null = nulls[position[passage]] if self.per_passage_null else null_all
            text = passages[passage]
            start, end = table_cell(text, *past_marker(text, *words_edge(text, start, end)))
            if end <= start or (passage, start, end) in seen or _CELL_OR_LINE.search(text, start, end):
                continue
            if any(p == passage and start < e and s < end for p, s, e in exclude):
                continue
            seen.add((passage, start, end))
            spans.append(ReadSpan(passage, start, end, text[start:end], round(score - null, 4),
                                  round(score, 4), round(null, 4)))
            if len(spans) >= top:
                break
        return spans


def load_serving_reader(settings: Settings):
    """The span reader: the promoted reader adapter when there is one, else ``READER_ADAPTER``."""
    adapter = serving_adapter(settings)
    if adapter is not None and adapter_kind(adapter) == "reader":
        reader = SpanReader.load(settings.reader_model, adapter, cache_dir=settings.model_cache_dir)
        reader.version = adapter.name
        reader.serving = True  # reloaded when the adapter pointer moves
        logger.info("serving reader adapter %s", adapter.name)
        return reader
    configured = settings.reader_adapter
    chosen = None if configured == "none" else ("shipped" if configured == "shipped" else Path(configured))
    reader = SpanReader.load(settings.reader_model, chosen, cache_dir=settings.model_cache_dir)
    reader.serving = True  # a later promotion replaces it
    return reader

"""Portuguese text as the pipeline compares it: accent folding, stop and closed-class words, stems, question
types, and the SQuAD answer scores (token F1, exact match).

One home for these, so that retrieval, answering, the feedback memory, the nightly evaluation and the
benchmarks fold, stem and score text the same way.

Example::

    >>> from pipeline.core.text import content_terms, fold, question_type, token_f1
    >>> fold("Inscrição"), question_type("Onde é sediada a UFMS?")
    ('inscricao', 'onde')
    >>> round(token_f1("em Campo Grande", ["Campo Grande"]), 2)
    0.8
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from functools import lru_cache

# Portuguese stop words and question words: they say nothing about which passage answers.
STOPWORDS = frozenset("""
a ao aos as até com como da das de dela dele deles do dos e ela elas ele eles em entre era essa esse esta este
eu foi for foram há isso isto já la lhe lo mais mas me mesmo meu minha muito na nas nem no nos nós o os ou para
pela pelas pelo pelos por qual quais quando que quem se sem ser seu seus sua suas são só também te tem têm ter
um uma umas uns você vocês é está estão sobre onde porque quanto quanta quantos quantas posso pode podem preciso
devo deve fazer faz faço existe existem tenho ser sou é estou the of what how
""".split())

PREP_EM = frozenset("em no na nos nas num numa".split())
PREP_DE = frozenset("de do da dos das".split())
PREP_PARA = frozenset("para pra ao aos".split())
PREP_POR = frozenset("por pelo pela pelos pelas".split())
PREP_TIME = frozenset("desde ate durante apos antes entre partir".split())
ARTICLES = frozenset("o a os as um uma uns umas".split())

# The months as documents write them; MONTHS_PATTERN for regular expressions, FOLDED_MONTHS for folded words.
MONTHS = ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
          "novembro", "dezembro")
MONTHS_PATTERN = "|".join(MONTHS)

QUESTION_TYPES = ("quando", "quanto", "onde", "quem", "porque", "como", "para_que", "definicao", "qual", "outro")
_TYPE_PATTERNS = [  # first match wins; tested on the accent-folded, lower-cased question
    ("quando", r"\bquando\b|\b(que|qual|quais) (ano|anos|data|datas|dia|dias|mes|epoca|periodo|seculo|decada)\b"
               r"|\bem que ano\b|\bprazo\b|\bhorario\b"),
    ("quanto", r"\bquant[oa]s?\b|\b(qual|que) (o |a )?(valor|numero|percentual|porcentagem|quantidade|total|"
               r"carga|duracao|tamanho|nota|idade)\b"),
    ("onde", r"\bonde\b|\baonde\b|\b(que|qual|quais) (cidade|cidades|local|locais|lugar|estado|pais|regiao|"
             r"campus|predio|bloco|sala)\b"),
    ("quem", r"\bquem\b|\b(qual|que) (pessoa|orgao|instituicao|entidade|professor|universidade)\b"),
    ("porque", r"\bpor ?que\b|\bpor qual (motivo|razao)\b|\b(qual|quais) (o |os )?motivos?\b"),
    ("para_que", r"\bpara (que|qual)\b|\b(qual|quais) (e |sao )?(o |a |os |as )?(objetivo|finalidade|funcao|"
                 r"papel|proposito)s?\b"),
    ("como", r"\bcomo\b|\bde que (forma|maneira|modo)\b"),
    ("definicao", r"^(o )?que (e|sao|significa|quer dizer)\b|\bo que (e|sao|significa)\b"),
    ("qual", r"\bqua(l|is)\b|\bque\b"),
]


def fold(text: str) -> str:
    """Lower-case ``text`` without accents ("Inscrição" -> "inscricao")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


FOLDED_STOPWORDS = frozenset(fold(w) for w in STOPWORDS)
FOLDED_MONTHS = frozenset(fold(m) for m in MONTHS)
# Closed-class words (stop words, prepositions, articles): a span made only of them answers nothing ("desde").
FUNCTION_WORDS = FOLDED_STOPWORDS | PREP_EM | PREP_DE | PREP_PARA | PREP_POR | PREP_TIME | ARTICLES


def only_function_words(text: str) -> bool:
    """True when ``text`` holds no number and no word outside :data:`FUNCTION_WORDS` (also when it is empty)."""
    return not re.search(r"\d", text) and all(w in FUNCTION_WORDS for w in re.findall(r"\w+", fold(text)))


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball's Portuguese stemmer

    return Stemmer.Stemmer("portuguese")


def is_content(folded: str) -> bool:
    return len(folded) > 2 and folded not in FOLDED_STOPWORDS and not folded.isdigit() and folded.isalnum()


def stem_words(folded_words: list[str]) -> list[str]:
    return _stemmer().stemWords([re.sub(r"[oa]es$", "ao", w) for w in folded_words])  # inscricoes/inscricao


def content_terms(text: str) -> list[str]:
    """Accent-folded, stemmed meaningful words of ``text`` (stop words and 1-2 letter words dropped).

    Folding comes first because citizens often type without accents ("inscricao" must meet "inscrição").
    """
    return stem_words([w for w in re.findall(r"\w+", fold(text)) if is_content(w)])


def question_type(question: str) -> str:
    """One of ``QUESTION_TYPES``: what kind of answer the question asks for."""
    folded = " ".join(re.findall(r"\w+", fold(question)))
    for name, pattern in _TYPE_PATTERNS:
        if re.search(pattern, folded):
            return name
    return "outro"


# --- answer scores (SQuAD) -------------------------------------------------------------------------------

_ANSWER_ARTICLES = re.compile(r"\b(o|a|os|as|um|uma|uns|umas)\b")
_ANSWER_PUNCT = set(string.punctuation) | {"“", "”", "‘", "’", "«", "»", "–", "—"}


def normalize_answer(text: str) -> str:
    """SQuAD normalisation (lower case, no punctuation, no articles, single spaces), accents kept."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ANSWER_PUNCT)
    text = _ANSWER_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    """Best token F1 of the prediction over the gold answers."""
    best = 0.0
    pred_tokens = normalize_answer(prediction).split()
    for gold in golds:
        gold_tokens = normalize_answer(gold).split()
        common = Counter(pred_tokens) & Counter(gold_tokens)
        same = sum(common.values())
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
            continue
        if same == 0:
            continue
        precision, recall = same / len(pred_tokens), same / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def exact_match(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(gold) for gold in golds))


SAME_ANSWER_F1 = 0.5  # two answers sharing most of their words say the same thing


def same_answer(a: str, b: str) -> bool:
    return token_f1(a, [b]) >= SAME_ANSWER_F1


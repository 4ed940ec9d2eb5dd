"""Citizens' words: common Brazilian public-service abbreviations and everyday terms, expanded in queries.

A citizen asks "como tirar a segunda via do rg?"; the document says "Carteira de Identidade Nacional". BM25
cannot match "rg" to it, and a small embedding model barely does. :func:`query_expansions` finds, in a
query folded like the lexical side (lower case, no accents), each known abbreviation or everyday term as whole
words and returns the official phrases it stands for; the other way round too (a query saying "cadastro de
pessoas fisicas" also gets "cpf"), since documents use both. :mod:`pipeline.search.retrieve` adds them to the
query: to the BM25 words (normalised by the original query's own bound, so an expansion adds evidence and never
dilutes the words the citizen typed) and, with ``QUERY_EXPANSION``, to the text the dense model embeds.

The table is deliberately short and unambiguous: every entry is a term that, in a question to a public
service, means one thing. Extend it with care (a wrong expansion pulls in wrong documents); scripts/
bench_retrieval.py measures its effect on informal questions (``scripts/citizen_eval.json``).

Example::

    >>> from pipeline.search.abbreviations import expand_query, query_expansions
    >>> query_expansions("como tirar a 2a via do RG?")
    ['carteira de identidade', 'registro geral', 'segunda via']
    >>> expand_query("quanto custa o iptu")
    'quanto custa o iptu (imposto predial e territorial urbano)'
"""

from __future__ import annotations

import re
from functools import lru_cache

from pipeline.core.text import fold

# abbreviation or everyday term (folded) -> the official phrases it stands for (as documents write them).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    # documents
    "rg": ("carteira de identidade", "registro geral"),
    "cin": ("carteira de identidade nacional",),
    "cpf": ("cadastro de pessoas físicas",),
    "cnh": ("carteira nacional de habilitação",),
    "carteira de motorista": ("carteira nacional de habilitação",),
    "ctps": ("carteira de trabalho e previdência social",),
    "carteira de trabalho": ("carteira de trabalho e previdência social",),
    "cnpj": ("cadastro nacional da pessoa jurídica",),
    "titulo de eleitor": ("título eleitoral",),
    "cep": ("código de endereçamento postal",),
    "nis": ("número de identificação social",),
    "pis": ("programa de integração social",),
    "pasep": ("programa de formação do patrimônio do servidor público",),
    "2a via": ("segunda via",),
    "2 via": ("segunda via",),
    "segunda via": ("2ª via",),
    # taxes and fees
    "iptu": ("imposto predial e territorial urbano",),
    "ipva": ("imposto sobre a propriedade de veículos automotores",),
    "itbi": ("imposto sobre a transmissão de bens imóveis",),
    "iss": ("imposto sobre serviços",),
    "issqn": ("imposto sobre serviços de qualquer natureza",),
    "icms": ("imposto sobre circulação de mercadorias e serviços",),
    "irpf": ("imposto de renda da pessoa física",),
    "darf": ("documento de arrecadação de receitas federais",),
    "gru": ("guia de recolhimento da união",),
    "taxa": ("tarifa", "emolumentos"),
    "boleto": ("guia de pagamento",),
    # benefits, social security, work
    "inss": ("instituto nacional do seguro social",),
    "fgts": ("fundo de garantia do tempo de serviço",),
    "bpc": ("benefício de prestação continuada",),
    "loas": ("lei orgânica da assistência social", "benefício de prestação continuada"),
    "cadunico": ("cadastro único",),
    "cad unico": ("cadastro único",),
    "mei": ("microempreendedor individual",),
    "sus": ("sistema único de saúde",),
    "ubs": ("unidade básica de saúde",),
    "upa": ("unidade de pronto atendimento",),
    "cras": ("centro de referência de assistência social",),
    "detran": ("departamento estadual de trânsito",),
    # education
    "enem": ("exame nacional do ensino médio",),
    "sisu": ("sistema de seleção unificada",),
    "prouni": ("programa universidade para todos",),
    "fies": ("fundo de financiamento estudantil",),
    "encceja": ("exame nacional para certificação de competências de jovens e adultos",),
    "eja": ("educação de jovens e adultos",),
}
# Tried and left out: "matricula" -> "inscrição" (the two are different steps of a selection: on FaQuAD's
# 'train' articles it cost 0.003 nDCG@10).


def _phrase_pattern(phrase: str) -> re.Pattern:
    """Whole-word match of a folded phrase (runs of spaces or punctuation between its words)."""
    words = [re.escape(w) for w in re.findall(r"\w+", fold(phrase))]
    return re.compile(r"(?<!\w)" + r"\W+".join(words) + r"(?!\w)")


@lru_cache(maxsize=1)
def _table() -> list[tuple[re.Pattern, list[str], str]]:
    """(pattern of a term, what it expands to, the term) for every entry and, backwards, every long form."""
    rows: list[tuple[re.Pattern, list[str], str]] = []
    for term, phrases in ABBREVIATIONS.items():
        rows.append((_phrase_pattern(term), list(phrases), term))
        for phrase in phrases:  # the official phrase in the query -> the short form documents also use
            if len(term.split()) == 1 and term.isalpha() and len(term) <= 7 and term not in ("taxa", "boleto"):
                rows.append((_phrase_pattern(phrase), [term], phrase))
    return rows


def query_expansions(query: str) -> list[str]:
    """The phrases the query's abbreviations and everyday terms stand for (none already in it), in order."""
    folded = _ORDINAL_VIA.sub(r"\1a ", fold(query))
    found: list[str] = []
    for pattern, phrases, _ in _table():
        if pattern.search(folded):
            found.extend(p for p in phrases if p not in found and not _phrase_pattern(p).search(folded))
    return found


_ORDINAL_VIA = re.compile(r"(\d)\s*[ºªo]\s*(?=via\b)")


def expand_query(query: str) -> str:
    """``query`` followed by its expansions in parentheses (unchanged when there are none)."""
    extra = query_expansions(query)
    return f"{query} ({', '.join(extra)})" if extra else query

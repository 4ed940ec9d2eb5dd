"""Citizens' words: abbreviations and everyday terms expanded in queries, on the lexical and dense sides."""

from __future__ import annotations

import pytest

from pipeline.core.text import fold
from pipeline.search.abbreviations import ABBREVIATIONS, expand_query, query_expansions
from pipeline.search.lexical import LexicalIndex


@pytest.mark.parametrize("query, expected", [
    ("como tirar a segunda via do RG?", ["carteira de identidade", "registro geral"]),
    ("perdi meu rg", ["carteira de identidade", "registro geral"]),
    ("quanto custa o IPTU", ["imposto predial e territorial urbano"]),
    ("renovar cnh vencida", ["carteira nacional de habilitação"]),
    ("sacar o fgts", ["fundo de garantia do tempo de serviço"]),
    ("nota do enem pro sisu", ["exame nacional do ensino médio", "sistema de seleção unificada"]),
    ("agendar no inss", ["instituto nacional do seguro social"]),
    ("pagar o ipva atrasado", ["imposto sobre a propriedade de veículos automotores"]),
])
def test_common_abbreviations_expand_case_and_accent_insensitively(query, expected):
    found = query_expansions(query)
    assert all(phrase in found for phrase in expected), found
    assert query_expansions(query.upper()) == found


def test_second_copy_is_recognised_in_every_spelling():
    for query in ("2a via da conta", "2ª via da conta", "2º via da conta", "2 via da conta"):
        assert "segunda via" in query_expansions(query), query
    assert "2ª via" in query_expansions("segunda via da conta")


def test_whole_words_only_and_nothing_already_said():
    assert query_expansions("o cargo exige disponibilidade") == []  # no "cpf"/"rg"/"iss" inside other words
    assert query_expansions("Carteira Nacional de Habilitação (CNH)") == []  # both forms already there
    assert query_expansions("meu cadastro de pessoas físicas") == ["cpf"]  # the long form gets the short one
    assert expand_query("horário da biblioteca") == "horário da biblioteca"


def test_table_is_folded_and_every_term_expands_to_something_else():
    for term, phrases in ABBREVIATIONS.items():
        assert term == fold(term) and phrases
        assert all(fold(p) != term for p in phrases)


def test_expansion_adds_evidence_without_diluting_the_query():
    docs = ["Carteira de Identidade Nacional: a segunda via é emitida no posto de atendimento.",
            "Segunda via da conta de água: peça no site da companhia.",
            "O IPTU (Imposto Predial e Territorial Urbano) vence em março."]
    index = LexicalIndex.build(docs)
    plain = index.scores("segunda via do rg")
    expanded = index.scores("segunda via do rg", query_expansions("segunda via do rg"))
    assert plain[0] <= plain[1]  # BM25 alone prefers the water bill (a shorter text with "segunda via")
    assert expanded[0] > expanded[1] and expanded.max() <= 1.0
    assert expanded[1] == pytest.approx(plain[1])  # what matched before scores the same: the bound is the query's
    assert index.scores("iptu", []).argmax() == 2


def test_retriever_finds_the_identity_card_document_for_rg(tmp_path):
    import dataclasses

    from pipeline.documents.chunking import Chunk
    from pipeline.search.index import build_index
    from pipeline.search.retrieve import Retriever

    texts = {"CIN": "A Carteira de Identidade Nacional (CIN) é emitida pelos institutos de identificação. A "
                    "segunda via é gratuita na primeira solicitação.",
             "AGUA": "A segunda via da conta de água pode ser emitida no site da companhia de saneamento.",
             "IPTU": "O Imposto Predial e Territorial Urbano é pago em cota única ou em dez parcelas."}
    chunks = [Chunk(id=f"{name}:0-{len(t)}", document=name, title=name, text=t, start=0, end=len(t))
              for name, t in texts.items()]
    build_index(chunks, qa_records=[], embedding_model="embedded", index_root=tmp_path)
    retriever = Retriever.load(tmp_path, embedding_model="embedded")
    assert retriever.search("segunda via do rg", k=1)[0].chunk.document == "CIN"
    assert retriever.search("qnd vence o iptu", k=1)[0].chunk.document == "IPTU"
    retriever.options = dataclasses.replace(retriever.options, query_expansion="off", dense_weight=0.0)
    assert retriever.search("segunda via do rg", k=1)[0].chunk.document == "AGUA"  # BM25 without expansion

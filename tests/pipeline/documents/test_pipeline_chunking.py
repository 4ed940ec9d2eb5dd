"""Chunking: exact spans, size limits, paragraph and sentence boundaries, headings."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.documents.chunking import chunk_document, split_sentences
from pipeline.documents.text import Document
from tests.pipeline.doc_samples import SECTIONED_EDITAL as SECTIONED


def make_doc(text: str, name: str = "doc") -> Document:
    return Document(name=name, title=name.title(), text=text, path=Path(f"{name}.txt"), sha256="x")


def test_sample_chunks_are_exact_bounded_ordered_and_cover_the_text(sample_documents):
    for doc in sample_documents:
        chunks = chunk_document(doc, max_chars=900)
        assert chunks
        covered = set()
        for previous, chunk in zip([None] + chunks, chunks):
            assert doc.text[chunk.start:chunk.end] == chunk.text == chunk.text.strip()
            assert chunk.id == f"{doc.name}:{chunk.start}-{chunk.end}"
            assert chunk.document == doc.name and chunk.title == doc.title
            assert len(chunk.text) <= 900
            assert previous is None or previous.end <= chunk.start
            covered.update(range(chunk.start, chunk.end))
        missing = [i for i, c in enumerate(doc.text) if not c.isspace() and i not in covered]
        assert missing == []


def test_short_paragraphs_are_packed_and_boundaries_respected():
    paragraphs = [f"Parágrafo {i} com algum texto de exemplo." for i in range(6)]
    doc = make_doc("\n\n".join(paragraphs))
    chunks = chunk_document(doc, max_chars=100)
    assert len(chunks) == 3
    for chunk in chunks:  # whole paragraphs only: each chunk starts and ends on a paragraph boundary
        assert chunk.text.startswith("Parágrafo") and chunk.text.endswith("exemplo.")


def test_long_paragraph_is_split_at_sentence_ends():
    sentences = [f"A regra número {i} determina o prazo de entrega dos documentos." for i in range(20)]
    doc = make_doc(" ".join(sentences))
    chunks = chunk_document(doc, max_chars=200)
    assert len(chunks) > 1
    assert all(c.text.endswith(".") and c.text.startswith("A regra") for c in chunks)


def test_sentence_without_spaces_is_hard_split():
    doc = make_doc("x" * 250)
    chunks = chunk_document(doc, max_chars=100)
    assert [len(c.text) for c in chunks] == [100, 100, 50]


def test_headings_name_the_section_of_the_following_chunks():
    text = ("CAPÍTULO I\n\nDas inscrições serão feitas pela internet.\n\n"
            "Das Bolsas\n\nO valor da bolsa é de R$ 700,00 mensais.")
    chunks = chunk_document(make_doc(text), max_chars=900)
    assert [(c.section, c.text.splitlines()[0]) for c in chunks] == [("CAPÍTULO I", "CAPÍTULO I"),
                                                                     ("Das Bolsas", "Das Bolsas")]
    assert chunks[1].text.endswith("mensais.")


def test_consecutive_headings_form_one_section():
    text = "CAPÍTULO II\n\nDas Bolsas\n\nO valor da bolsa é de R$ 700,00 mensais.\n\nANEXO I"
    chunks = chunk_document(make_doc(text), max_chars=900)
    assert [c.section for c in chunks] == ["CAPÍTULO II — Das Bolsas", "ANEXO I"]
    assert chunks[0].text.startswith("CAPÍTULO II\n\nDas Bolsas\n\nO valor") and chunks[1].text == "ANEXO I"


def test_split_sentences_keeps_abbreviations_and_offsets():
    text = "Conforme o Art. 5º da Lei, o Prof. Silva decide. O prazo é de 10 dias! Isso vale? Sim."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Conforme o Art. 5º da Lei, o Prof. Silva decide.",
                                            "O prazo é de 10 dias!", "Isso vale?", "Sim."]


def test_too_small_max_chars_is_refused():
    with pytest.raises(ValueError):
        chunk_document(make_doc("texto"), max_chars=5)


EDITAL = """EDITAL Nº 12/2024

CAPÍTULO II
Das Inscrições

Art. 5º As inscrições serão feitas pela internet.
§ 1º O candidato deverá apresentar:
I - documento de identidade;
II - comprovante de pagamento:
a) boleto bancário;
b) PIX.
§ 2º Não serão aceitas inscrições condicionais.
Art. 6º A taxa de inscrição é de R$ 150,00.
Parágrafo único. Há isenção para doadores de sangue.

Cargo | Vagas | Taxa
--- | --- | ---
Professor | 3 | R$ 150,00
Técnico | 5 | R$ 90,00
Auxiliar | 7 | R$ 50,00
Motorista | 2 | R$ 50,00
Depois da tabela vem texto.
"""


def _edital_chunks(max_chars: int):
    from pathlib import Path

    from pipeline.documents.text import Document

    doc = Document(name="EDITAL", title="Edital 12", text=EDITAL, path=Path("EDITAL.txt"), sha256="x")
    chunks = chunk_document(doc, max_chars=max_chars)
    assert all(EDITAL[c.start:c.end] == c.text for c in chunks)
    return chunks


def test_articles_paragraphs_incisos_and_alineas_give_the_section_path():
    chunks = _edital_chunks(100)
    by_start = {c.text.split()[0] + " " + c.text.split()[1]: c.section for c in chunks}
    chapter = "EDITAL Nº 12/2024 — CAPÍTULO II — Das Inscrições"
    assert chunks[0].section == f"{chapter} > Art. 5º" and chunks[0].text.startswith("EDITAL")
    assert by_start["§ 1º"] == f"{chapter} > Art. 5º > § 1º"
    assert by_start["a) boleto"] == f"{chapter} > Art. 5º > § 1º > inciso II > alínea a"
    assert by_start["Art. 6º"] == f"{chapter} > Art. 6º"  # a new article clears § and incisos
    # every article starts a chunk of its own even when the previous one had room
    assert any(c.text.startswith("Art. 6º") for c in _edital_chunks(900))


def test_a_long_table_is_split_by_rows_with_its_header_repeated():
    chunks = _edital_chunks(100)
    table = [c for c in chunks if "R$ 50,00" in c.text or c.text.startswith("Cargo")]
    assert table[0].text.startswith("Cargo | Vagas | Taxa") and table[0].context == ""
    assert all(c.context == "Cargo | Vagas | Taxa\n--- | --- | ---" for c in table[1:]) and len(table) >= 2
    assert [c for c in chunks if c.text == "Depois da tabela vem texto."][0].context == ""
    whole = [c for c in _edital_chunks(900) if c.text.startswith("Cargo")]
    assert len(whole) == 1 and whole[0].text.endswith("Motorista | 2 | R$ 50,00")


@pytest.mark.parametrize("max_chars", [900, 60])
def test_a_title_in_capitals_above_its_items_names_their_section_without_changing_the_chunks(max_chars):
    chunks = chunk_document(make_doc(SECTIONED), max_chars=max_chars)
    title_of = {line: c.section_title for c in chunks for line in c.text.splitlines()}
    if max_chars == 60:  # each item in a chunk of its own: every chunk knows the title it starts under
        assert title_of["2.2 A taxa de inscrição é de R$ 30,00."] == "2. DAS INSCRIÇÕES"
        assert title_of["II – 2 (duas) fotos 3x4 recentes."] == "CAPÍTULO III — DA MATRÍCULA"
        # capitals over prose are no title: the paragraph under them stays in the section before
        assert title_of["O prazo poderá ser prorrogado."] == "2. DAS INSCRIÇÕES"
    # the title is kept for citations only: boundaries and (indexed) sections are those of the same text
    # without titles (the title lines in small letters, which no rule takes for a title)
    plain = (SECTIONED.replace("2. DAS INSCRIÇÕES", "2. das inscrições")
             .replace("CAPÍTULO III\nDA", "capítulo iii\nda"))
    baseline = chunk_document(make_doc(plain), max_chars=max_chars)
    assert [(c.start, c.end, c.section) for c in chunks] == [(c.start, c.end, c.section) for c in baseline]
    assert not any(c.section_title for c in baseline) and any(c.section_title for c in chunks)

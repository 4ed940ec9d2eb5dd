"""The supporting quote and the label of its own place."""

from __future__ import annotations

import pytest

from pipeline.documents.chunking import Chunk, chunk_document
from pipeline.answering.citation import heading_lines, section_at, supporting_quote, table_header_lines
from pipeline.documents.text import Document
from tests.pipeline.doc_samples import SECTIONED_EDITAL as SECTIONED

PORTARIA = """PORTARIA Nº 34, DE 3 DE FEVEREIRO DE 2025

CAPÍTULO II
Do Benefício

Art. 5º O estudante beneficiário terá direito a 50 (cinquenta) passagens por mês.
§ 1º O benefício vale apenas em dias letivos.
§ 2º A renovação deve ser pedida até 31 de janeiro de cada ano.
I - com o comprovante de matrícula;
II - com a Carteira de Identidade Nacional.

Art. 6º Perde o benefício quem emprestar o cartão.
"""

TABELA = """Tabela de taxas

Serviço | Unidade | Valor (R$)
Segunda via do carnê do IPTU | unidade | 7,68
Certidão negativa de débitos | unidade | 15,20
Alvará de funcionamento | ano | 120,00
"""


EDITAL = """EDITAL Nº 47/2025 – PROCESSO SELETIVO 2026

8. DA MATRÍCULA
8.1 Para a matrícula, o candidato deve apresentar:
I – certidão de nascimento;
II – histórico escolar;
III – comprovante de residência;
IV – 2 (duas) fotos 3x4 recentes.
8.2 A matrícula será feita na secretaria do campus.
"""


def _doc(name: str, text: str) -> Document:
    return Document(name=name, title=text.splitlines()[0], text=text, path=None, sha256="")


def _chunk_with(text: str, needle: str) -> tuple[Chunk, int]:
    chunks = chunk_document(_doc("d", text))
    chunk = next(c for c in chunks if needle in c.text)
    return chunk, chunk.text.index(needle)


def test_the_label_is_the_quoted_paragraph_not_the_chunks_first():
    chunk, at = _chunk_with(PORTARIA, "31 de janeiro")
    quote = supporting_quote(chunk, at, at + len("31 de janeiro"))
    assert quote.text == "§ 2º A renovação deve ser pedida até 31 de janeiro de cada ano."
    assert quote.section.endswith("Art. 5º > § 2º")
    assert quote.section.startswith("CAPÍTULO II")


def test_an_inciso_label_keeps_its_paragraph():
    chunk, at = _chunk_with(PORTARIA, "Carteira de Identidade Nacional")
    assert section_at(chunk, at).endswith("Art. 5º > § 2º > inciso II")


def test_the_article_label_when_the_answer_is_in_the_caput():
    chunk, at = _chunk_with(PORTARIA, "50 (cinquenta)")
    quote = supporting_quote(chunk, at, at + 14)
    assert "50 (cinquenta) passagens por mês" in quote.text
    assert quote.section.endswith("Art. 5º") and "§" not in quote.section


def test_a_table_answer_is_quoted_with_its_header_and_row():
    chunk, at = _chunk_with(TABELA, "7,68")
    quote = supporting_quote(chunk, at, at + 4)
    assert quote.table_row
    assert quote.text.splitlines() == ["Serviço | Unidade | Valor (R$)",
                                       "Segunda via do carnê do IPTU | unidade | 7,68"]


def test_a_long_heading_is_clipped_in_the_label():
    heading = "DO PROCESSO SELETIVO SIMPLIFICADO PARA A CONTRATAÇÃO TEMPORÁRIA DE PROFISSIONAIS DA SAÚDE DA FAMÍLIA"
    chunk = Chunk(id="d:0-10", document="d", title="d", text="Art. 1º Texto.", start=0, end=14,
                  section=f"{heading} > Art. 1º")
    label = section_at(chunk, 0)
    assert len(label) < 100 and label.endswith("… > Art. 1º")


def test_heading_lines_are_the_chunks_leading_headings():
    chunk, _ = _chunk_with(PORTARIA, "Art. 5º")
    lines = [chunk.text[s:e] for s, e in heading_lines(chunk)]
    assert "Do Benefício" in lines and not any("Art." in line for line in lines)


def test_a_tables_header_row_is_never_an_answer_and_prose_has_none():
    chunk, _ = _chunk_with(TABELA, "Certidão")
    assert [chunk.text[s:e] for s, e in table_header_lines(chunk)] == ["Serviço | Unidade | Valor (R$)"]
    prose, _ = _chunk_with(PORTARIA, "Art. 5º")
    assert table_header_lines(prose) == []


def test_a_very_long_sentence_is_clipped_around_the_answer():
    text = "Considerando " + "o disposto na legislação vigente e " * 30 + "a taxa é de R$ 80,00 por candidato."
    chunk = Chunk(id="d:0-1", document="d", title="d", text=text, start=0, end=len(text))
    at = text.index("R$ 80,00")
    quote = supporting_quote(chunk, at, at + 8)
    assert "R$ 80,00" in quote.text and quote.text.startswith("…") and len(quote.text) <= 402


def test_an_inciso_of_an_edital_item_is_labelled_under_its_item():
    chunk, at = _chunk_with(EDITAL, "2 (duas) fotos")
    quote = supporting_quote(chunk, at, at + len("2 (duas) fotos"))
    assert quote.text == "IV – 2 (duas) fotos 3x4 recentes."
    assert quote.section.endswith("item 8.1 > inciso IV")


def test_a_chunk_path_names_the_item_before_its_inciso():
    pieces = chunk_document(_doc("e", EDITAL), max_chars=60)
    inciso = next(c for c in pieces if c.text.lstrip().startswith("IV"))
    assert inciso.section.endswith("item 8.1 > inciso IV")


@pytest.mark.parametrize("max_chars", [900, 60])
def test_an_item_is_labelled_with_the_title_of_its_section_not_the_documents_header(max_chars):
    chunks = chunk_document(_doc("e", SECTIONED), max_chars=max_chars)

    def label(needle):
        chunk = next(c for c in chunks if needle in c.text)
        at = chunk.text.index(needle)
        return supporting_quote(chunk, at, at + len(needle)).section

    assert label("R$ 30,00") == "2. DAS INSCRIÇÕES > item 2.2"
    assert label("2 (duas) fotos") == "CAPÍTULO III — DA MATRÍCULA > item 3.1 > inciso II"
    assert label("pela internet") == "2. DAS INSCRIÇÕES > item 2.1"

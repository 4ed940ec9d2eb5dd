"""Real documents made in the tests: PDFs drawn with reportlab, a DOCX written with python-docx, HTML pages.

- :func:`edital_pdf` — three pages: a running header and "Página n de 3" footer on each, a big title, a
  two-column page (drawn row by row, so the file's order mixes the columns) with a word hyphenated at a line
  end, a ruled table, an article and a table without rules (a schedule) on the last page.
- :func:`long_pdf` — ``pages`` pages of articles with a running header (benchmarks, the 40-page upload).
- :func:`scanned_pdf` — a page that is only an image of text (no text layer).
- :func:`broken_pdf` — a PDF cut in the middle.
- :func:`portaria_docx` — a heading, paragraphs, a table and a page header that is not content.
- :func:`bolsas_html` — navigation, a sidebar and a footer around the content (a heading, paragraphs, a table).
- ``SECTIONED_EDITAL`` — plain text: section titles in capitals right above their items.
"""

from __future__ import annotations

import io
from pathlib import Path

HEADER = "Prefeitura Municipal de Boa Vista do Sul"
TITLE = "Edital nº 12/2025 – Concurso Público"
LEFT_COLUMN = [
    "Art. 1º Este edital rege o concurso público",
    "para o cargo de agente administrativo da",
    "Prefeitura.",
    "Art. 2º As inscrições ficam abertas de 1º a",
    "15 de março de 2025, exclusivamente pela inter-",
    "net, no portal da Prefeitura.",
]
RIGHT_COLUMN = [
    "Art. 3º A taxa de inscrição é de R$ 85,00",
    "(oitenta e cinco reais), paga por boleto.",
    "Art. 4º Candidatos inscritos no CadÚnico podem",
    "pedir isenção da taxa até 5 de março de 2025.",
]
SCHEDULE = [("Etapa", "Data"), ("Inscrições", "1º a 15 de março de 2025"), ("Prova objetiva", "20 de abril de 2025"),
            ("Resultado final", "30 de maio de 2025")]
TABLE = [["Cargo", "Vagas", "Salário"], ["Agente administrativo", "12", "R$ 2.450,00"],
         ["Motorista", "4", "R$ 2.100,00"], ["Vigia", "6", "R$ 1.900,00"]]

# An edital whose sections are titled in capitals right above their items (no blank line between), one title
# on two lines, and capitals over prose that are no title: for the chunker's section titles and the citations.
SECTIONED_EDITAL = """EDITAL Nº 47/2025 – PROCESSO SELETIVO 2026

INSTITUTO FEDERAL DE EDUCAÇÃO, CIÊNCIA E TECNOLOGIA DO PLANALTO SERRANO

2. DAS INSCRIÇÕES
2.1 As inscrições serão feitas pela internet.
2.2 A taxa de inscrição é de R$ 30,00.

AVISO IMPORTANTE
O prazo poderá ser prorrogado.

CAPÍTULO III
DA MATRÍCULA
3.1 Para a matrícula, o candidato deve apresentar:
I – certidão de nascimento;
II – 2 (duas) fotos 3x4 recentes.
"""


def _frame(c, page: int, pages: int, *, width: float, height: float) -> None:
    c.setFont("Helvetica", 8)
    c.drawString(50, height - 30, HEADER)
    c.drawCentredString(width / 2, 25, f"Página {page} de {pages}")


def edital_pdf() -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    from reportlab.platypus import Table, TableStyle

    buffer = io.BytesIO()
    width, height = A4
    c = canvas.Canvas(buffer, pagesize=A4)
    # page 1: title across the page, then two columns
    _frame(c, 1, 3, width=width, height=height)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(50, height - 80, TITLE)
    c.setFont("Helvetica", 10)
    # Drawn row by row, left line then right line, as many producers write them: the file's own order mixes
    # the columns, so reading in that order (pypdf, pypdfium2) interleaves them.
    for row in range(max(len(LEFT_COLUMN), len(RIGHT_COLUMN))):
        for column, x in ((LEFT_COLUMN, 50), (RIGHT_COLUMN, 310)):
            if row < len(column):
                c.drawString(x, height - 120 - 13 * row, column[row])
    c.showPage()
    # page 2: a ruled table and an article
    _frame(c, 2, 3, width=width, height=height)
    c.setFont("Helvetica", 10)
    c.drawString(50, height - 80, "Art. 5º Os cargos, as vagas e os salários são os seguintes:")
    table = Table(TABLE, colWidths=[180, 60, 100])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                               ("FONTNAME", (0, 0), (-1, -1), "Helvetica"), ("FONTSIZE", (0, 0), (-1, -1), 10)]))
    _, table_height = table.wrapOn(c, width, height)
    table.drawOn(c, 50, height - 100 - table_height)
    c.drawString(50, height - 130 - table_height, "Art. 6º A prova objetiva será aplicada em 20 de abril de 2025.")
    c.showPage()
    # page 3
    _frame(c, 3, 3, width=width, height=height)
    c.setFont("Helvetica", 10)
    c.drawString(50, height - 80, "Art. 7º O resultado final será publicado no Diário Oficial do Município.")
    c.drawString(50, height - 110, "ANEXO I – CRONOGRAMA")
    for row, (stage, date) in enumerate(SCHEDULE):  # a table without rules: only the gap splits the cells
        c.drawString(50, height - 130 - 14 * row, stage)
        c.drawString(250, height - 130 - 14 * row, date)
    c.showPage()
    c.save()
    return buffer.getvalue()


SCANNED_LINES = ["EDITAL Nº 7/2025 - CURSO DE INFORMÁTICA", "Art. 1º A taxa de inscrição é de R$ 50,00.",
                 "Art. 2º As aulas começam em 3 de março."]
SPECIAL_VALUE = "R$ 321,00"  # the auxílio-creche, the one article unlike the others in long_pdf


def special_page(pages: int) -> int:
    """The page of long_pdf that holds the auxílio-creche article."""
    return max(1, pages * 2 // 3)


def long_pdf(pages: int = 40) -> bytes:
    """``pages`` pages, each with a running header, a footer and six articles of about 60 words; on
    :func:`special_page` the last article is the auxílio-creche (:data:`SPECIAL_VALUE`)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    width, height = A4
    c = canvas.Canvas(buffer, pagesize=A4)
    article = 0
    for page in range(1, pages + 1):
        _frame(c, page, pages, width=width, height=height)
        c.setFont("Helvetica", 10)
        y = height - 70
        if page == 1:
            c.setFont("Helvetica-Bold", 16)
            c.drawString(50, y, "Regulamento Geral de Bolsas e Auxílios Estudantis")
            c.setFont("Helvetica", 10)
            y -= 30
        for slot in range(6):
            article += 1
            lines = [f"Art. {article}º O auxílio de número {article} é pago ao estudante regularmente matriculado",
                     f"que comprove renda familiar per capita de até {article % 3 + 1} salários mínimos, mediante",
                     f"inscrição no setor de assistência estudantil até o dia {article % 28 + 1} do mês, com valor",
                     f"mensal de R$ {100 + article},00 e duração de {article % 12 + 1} meses, renovável uma vez."]
            if page == special_page(pages) and slot == 5:
                lines = [f"Art. {article}º O auxílio-creche é pago à estudante mãe ou ao estudante pai de criança",
                         f"de até seis anos, no valor mensal de {SPECIAL_VALUE}, enquanto durar a matrícula."]
            for line in lines:
                c.drawString(50, y, line)
                y -= 13
            y -= 8
        c.showPage()
    c.save()
    return buffer.getvalue()


def scanned_pdf() -> bytes:
    """One page holding only a picture of text, as a scanner makes: no text layer."""
    import reportlab
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("RGB", (1700, 420), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf"), 44)  # with accents
    for row, line in enumerate(SCANNED_LINES):  # big and clean enough for OCR (DOCUMENTS_OCR)
        draw.text((40, 40 + 90 * row), line, fill="black", font=font)
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4)
    c.drawImage(ImageReader(image), 40, 500, width=510, height=126)
    c.showPage()
    c.save()
    return buffer.getvalue()


def broken_pdf() -> bytes:
    """The first half of a real PDF: its header is there, its page tree and cross-reference table are not."""
    data = edital_pdf()
    return data[: len(data) // 3]


def portaria_docx(*, title_in_metadata: str = "") -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title_in_metadata
    document.sections[0].header.paragraphs[0].text = "Secretaria Municipal de Saúde — documento oficial"
    document.add_heading("Portaria nº 45/2025 — Calendário de Vacinação", level=1)
    document.add_paragraph("Art. 1º Fica aprovado o calendário de vacinação contra a gripe de 2025.")
    document.add_paragraph("Art. 2º A vacinação ocorre nas unidades básicas de saúde, das 8h às 17h.")
    table = document.add_table(rows=0, cols=3)
    for row in (["Vacina", "Público", "Período"], ["Influenza", "Idosos", "1º a 30 de abril"],
                ["Influenza", "Gestantes", "1º a 15 de maio"], ["Covid-19", "Crianças", "Todo o ano"]):
        cells = table.add_row().cells
        for cell, value in zip(cells, row):
            cell.text = value
    document.add_paragraph("Art. 3º Esta portaria entra em vigor na data de sua publicação.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


BOLSAS_HTML = """<!DOCTYPE html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Edital 3/2025 | Portal da Prefeitura</title>
<style>body { font-family: sans-serif }</style><script>var menu = "Início";</script></head>
<body>
<header><a href="/">Portal da Prefeitura</a><nav><ul><li><a href="/">Início</a></li><li><a href="/noticias">Notícias</a></li>
<li><a href="/ouvidoria">Ouvidoria</a></li></ul></nav></header>
<div class="breadcrumb">Você está aqui: Início › Editais</div>
<main>
<h1>Edital nº 3/2025 — Bolsas de Estudo</h1>
<p>A Secretaria de Educação abre inscrições para bolsas de estudo
para estudantes da rede pública.</p>
<h2>Valores</h2>
<table><thead><tr><th>Modalidade</th><th>Valor mensal</th></tr></thead>
<tbody><tr><td>Integral</td><td>R$ 600,00</td></tr><tr><td>Parcial</td><td>R$ 300,00</td></tr>
<tr><td>Transporte</td><td>R$ 120,00</td></tr></tbody></table>
<p>As inscrições vão até 30 de junho de 2025.<br>Dúvidas: educacao@boavista.example</p>
</main>
<aside><h3>Links úteis</h3><ul><li>Transparência</li><li>Diário Oficial</li></ul></aside>
<footer><p>© 2025 Prefeitura Municipal de Boa Vista do Sul. Todos os direitos reservados.</p></footer>
</body></html>
"""


def bolsas_html() -> bytes:
    return BOLSAS_HTML.encode("utf-8")

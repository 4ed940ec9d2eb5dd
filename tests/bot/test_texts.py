"""pt-BR texts: escaping, sources, limits Telegram enforces (checked with the fake's HTML parser)."""

from __future__ import annotations

import pytest

from bot import admin_texts, texts
from tests.fakes.oraculo import canned_answer, make_answer, make_source
from tests.fakes.telegram_html import parse_html
from tests.fakes.telegram_server import MAX_CALLBACK_ANSWER_CHARS, MAX_MESSAGE_CHARS


def test_answer_lists_each_distinct_source_once_and_at_most_three():
    sources = [make_source("UFMS", "Ufms", "Sede"), make_source("UFMS", "Ufms", "Sede"),
               make_source("UFMS", "Ufms", ""), make_source("TCC", "Tcc", "Art. 2º"), make_source("MEC", "Mec")]
    shown, _ = parse_html(texts.render_answer(make_answer("Em Campo Grande.", sources)))
    assert shown.splitlines() == ["Em Campo Grande.", "", "📄 Fonte: Ufms, Sede", "📄 Fonte: Ufms",
                                  "📄 Fonte: Tcc, Art. 2º"]


def test_the_first_source_shows_its_quote_escaped_and_clipped_unless_it_is_the_answer():
    quote = "A <UFMS> & a FACOM ficam em Campo Grande, " + "capital do estado, " * 30
    shown, entities = parse_html(texts.render_answer(make_answer("Campo Grande", [
        make_source("UFMS", "Ufms", "Sede", quote=quote), make_source("TCC", "Tcc", "Art. 2º", quote="outra")])))
    lines = shown.splitlines()
    assert lines[2] == "📄 Fonte: Ufms, Sede" and lines[4] == "📄 Fonte: Tcc, Art. 2º" and entities == []
    assert lines[3].startswith("   “A <UFMS> & a FACOM") and lines[3].endswith("…”")
    assert len(lines[3]) <= texts.MAX_QUOTE_CHARS + 5
    same, _ = parse_html(texts.render_answer(make_answer("Fica em Campo Grande.", [
        make_source("UFMS", "Ufms", "Sede", quote="Fica em  Campo Grande.")])))
    assert same.splitlines() == ["Fica em Campo Grande.", "", "📄 Fonte: Ufms, Sede"]


def test_html_and_plain_renderings_show_the_same_characters():
    answer = canned_answer("1 < 2 & 3 > 2 \"sim\"", title="Edital <Nº 5>", section="§ 1º")
    html = texts.render_answer(answer)
    assert "<" not in html.replace("&lt;", "") and "&amp;" in html
    shown, entities = parse_html(html)
    assert shown == texts.render_answer_plain(answer) and entities == []


def test_abstention_and_empty_answer_say_not_found():
    for answer in (canned_answer("x", abstained=True), make_answer("   ", [make_source("A", "A")])):
        assert parse_html(texts.render_answer(answer))[0] == texts.NOT_FOUND
        assert texts.render_answer_plain(answer) == texts.NOT_FOUND


def test_an_abstention_that_came_close_quotes_the_closest_passage_never_as_an_answer():
    from pipeline.answering.result import Answer, Source

    row = Source(document="taxas", title="Tabela de Taxas", section="Art. 3º", chunk_id="taxas:1",
                 quote="Serviço | Valor (R$)\n2ª via do carnê   | 8,50 & <taxa>", score=0.8)
    answer = Answer(text="", abstained=True, strategy="reader", closest=row)
    shown, entities = parse_html(texts.render_answer(answer))
    passage = [texts.NOT_FOUND_CLOSEST, "   “Serviço | Valor (R$)", "   2ª via do carnê | 8,50 & <taxa>”",
               "📄 Fonte: Tabela de Taxas, Art. 3º"]
    assert shown.splitlines() == passage + ["", texts.CLOSEST_VOTE_PROMPT] and entities == []  # its 👍/👎 ask this
    assert texts.render_answer_plain(answer) == "\n".join(passage)  # the terminal asks with its own prompt
    # nothing close: the plain "not found"
    assert texts.render_answer_plain(Answer(text="", abstained=True, closest=None)) == texts.NOT_FOUND


def test_a_huge_answer_is_split_into_valid_telegram_messages_losing_nothing():
    text = ("Ação & reação <art. 5º> " * 300 + "\n\n") * 2 + "😀" * 3000
    answer = make_answer(text, [make_source("DOC", "Título " * 20, "Seção " * 20)] * 3)
    parts = texts.split_message(texts.render_answer(answer))
    assert len(parts) >= 4
    shown = [parse_html(part)[0] for part in parts]  # each part is valid HTML on its own
    assert all(len(p.encode("utf-16-le")) // 2 <= MAX_MESSAGE_CHARS for p in shown)
    assert "".join(shown).replace("\n", "").replace(" ", "") == \
        parse_html(texts.render_answer(answer))[0].replace("\n", "").replace(" ", "")
    assert shown[-1].splitlines()[-1].startswith("📄 Fonte:")


def test_split_never_cuts_an_html_entity_in_two():
    for offset in range(8):
        html = "x" * offset + "&amp;" * 2000
        for part in texts.split_message(html, limit=100):
            parse_html(part)  # raises on a cut entity
            assert len(part) <= 100


def test_welcome_lists_documents_and_cuts_a_long_list():
    titles = [f"Documento {i}" for i in range(45)]
    shown, entities = parse_html(texts.welcome(titles, first_name="<Ana & Bia>"))
    assert shown.startswith("Olá, <Ana & Bia>!")
    assert "• Documento 29" in shown and "• Documento 30" not in shown and "… e mais 15" in shown
    assert [e["type"] for e in entities] == ["italic", "bold"]  # the example question, the privacy note
    assert "Ainda não tenho" in parse_html(texts.welcome([], first_name=None))[0]


@pytest.mark.parametrize("html", [texts.HELP, texts.documents_list(["A & B"]), texts.documents_list([])])
def test_fixed_html_texts_are_valid_telegram_html(html):
    shown, _ = parse_html(html)
    assert shown.strip()


@pytest.mark.parametrize("vote,created,changed,expected", [
    (1, True, False, texts.FEEDBACK_THANKS), (-1, True, False, texts.FEEDBACK_THANKS_DOWN),
    (-1, False, True, texts.FEEDBACK_CHANGED), (1, False, False, texts.FEEDBACK_SAME)])
def test_feedback_ack(vote, created, changed, expected):
    assert texts.feedback_ack(vote=vote, created=created, changed=changed) == expected


def test_callback_answers_fit_telegrams_200_characters():
    acks = [texts.FEEDBACK_THANKS, texts.FEEDBACK_THANKS_DOWN, texts.FEEDBACK_CHANGED, texts.FEEDBACK_SAME,
            texts.FEEDBACK_INVALID, texts.FEEDBACK_EXPIRED, texts.FEEDBACK_ERROR]
    assert all(0 < len(a) <= MAX_CALLBACK_ANSWER_CHARS for a in acks)


def test_stats_keeps_votes_on_closest_passages_apart_from_votes_on_answers():
    plain = admin_texts.stats_report(days=7, questions=5, answered=3, up=2, down=1, unanswered=[])
    assert "👍 2 · 👎 1" in plain and "Trecho mais próximo" not in plain
    both = admin_texts.stats_report(days=7, questions=5, answered=3, up=2, down=1, unanswered=[("x?" * 600, 9)],
                              passage_up=1, passage_down=4)
    # the caption is cut to 1024 characters but keeps the passage votes line
    assert len(both) <= 1024 and "Trecho mais próximo (sem resposta exata): 👍 1 · 👎 4" in both

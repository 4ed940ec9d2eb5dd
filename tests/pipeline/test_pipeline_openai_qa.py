"""The OpenAI-compatible QA generator against a fake server on loopback, with the real openai client."""

from __future__ import annotations

import json

import pytest

from pipeline.chunking import chunk_document
from pipeline.documents import Document
from pipeline.qa import OpenAIQAGenerator, generate_qa, load_qa_records, parse_pairs_json

from tests.fakes.openai_server import FakeOpenAI

TEXT = ("O Programa de Bolsas concede auxílio mensal de R$ 700,00 a estudantes de graduação.\n\n"
        "As inscrições vão de 1º a 15 de março, somente pelo sistema eletrônico da universidade.")


@pytest.fixture
def doc(tmp_path) -> Document:
    return Document(name="EDITAL", title="Edital", text=TEXT, path=tmp_path / "EDITAL.txt", sha256="abc")


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def make_generator(server: FakeOpenAI, **kwargs) -> OpenAIQAGenerator:
    return OpenAIQAGenerator(base_url=server.base_url, api_key="sk-test", model="fake-model", timeout_s=5,
                             **{"max_retries": 0, **kwargs})


def pairs_reply(*pairs: tuple[str, str]) -> str:
    return json.dumps({"pairs": [{"question": q, "answer": a} for q, a in pairs]}, ensure_ascii=False)


def test_good_reply_becomes_pairs_with_exact_spans(server, doc):
    chunks = chunk_document(doc, max_chars=100)
    assert len(chunks) == 2
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))
    server.reply(pairs_reply(("Quando são as inscrições?", "de 1º a 15 de março"),
                             ("Onde se inscrever?", "pelo  sistema eletrônico")))  # spacing differs
    generator = make_generator(server)
    pairs = generator.generate(doc, chunks)

    assert [p.question for p in pairs] == ["Qual é o valor da bolsa?", "Quando são as inscrições?",
                                           "Onde se inscrever?"]
    for pair in pairs:
        assert TEXT[pair.span[0]:pair.span[1]] == pair.answer
        assert pair.generator == "openai:fake-model" and pair.tags == ["llm"]
    assert pairs[0].chunk_id == chunks[0].id and pairs[2].answer == "pelo sistema eletrônico"
    assert generator.errors == []

    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert request["json"]["model"] == "fake-model"
    assert request["json"]["response_format"] == {"type": "json_object"}
    assert chunks[0].text in request["json"]["messages"][-1]["content"]


def test_malformed_reply_is_recorded_and_the_next_chunk_still_runs(server, doc):
    chunks = chunk_document(doc, max_chars=100)
    server.reply("Claro! Aqui estão as perguntas: 1. Qual é o valor?")  # not JSON
    server.reply(pairs_reply(("Quando são as inscrições?", "de 1º a 15 de março")))
    generator = make_generator(server)
    pairs = generator.generate(doc, chunks)
    assert [p.chunk_id for p in pairs] == [chunks[1].id]
    assert len(generator.errors) == 1
    assert generator.errors[0]["chunk_id"] == chunks[0].id and "not JSON" in generator.errors[0]["error"]


def test_http_error_is_recorded_not_raised(server, doc):
    server.fail(500)
    generator = make_generator(server)
    assert generator.generate(doc, chunk_document(doc)) == []
    assert "InternalServerError" in generator.errors[0]["error"]


def test_answer_not_in_the_text_falls_back_to_the_chunk_span(server, doc):
    (chunk,) = chunk_document(doc)
    server.reply(pairs_reply(("Quanto é a bolsa?", "Setecentos reais por mês")))
    (pair,) = make_generator(server).generate(doc, [chunk])
    assert pair.span == (chunk.start, chunk.end) and pair.tags == ["llm", "span:chunk"]
    assert pair.answer == "Setecentos reais por mês"


def test_generate_qa_retries_documents_that_had_errors(server, doc, tmp_path):
    out = tmp_path / "qa"
    server.reply("{\"pairs\": [{\"question\": \"\"}]}")  # valid JSON, unusable content
    first = generate_qa([doc], out_dir=out, generator=make_generator(server))
    assert first.generated == ["EDITAL"] and first.n_pairs == 0 and len(first.errors) == 1

    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))
    second = generate_qa([doc], out_dir=out, generator=make_generator(server))
    assert second.generated == ["EDITAL"] and second.skipped == [] and second.errors == []
    (record,) = load_qa_records(out)
    assert record["generator"] == "openai:fake-model" and record["answer"] == "R$ 700,00"

    third = generate_qa([doc], out_dir=out, generator=make_generator(server))
    assert third.skipped == ["EDITAL"] and len(server.requests) == 2  # no call for an unchanged document


@pytest.mark.parametrize("content, expected", [
    ('```json\n{"pairs": [{"question": "Q?", "answer": "A"}]}\n```', [{"question": "Q?", "answer": "A"}]),
    ('[{"question": "Q?", "answer": "A"}, {"question": 3}]', [{"question": "Q?", "answer": "A"}]),
    ('{"pairs": []}', []),
])
def test_parse_pairs_json_tolerates_fences_and_bare_lists(content, expected):
    assert parse_pairs_json(content) == expected


@pytest.mark.parametrize("content", ["", "null", '{"perguntas": []}', '{"pairs": [{"question": "Q?"}]}'])
def test_parse_pairs_json_rejects_unusable_replies(content):
    with pytest.raises(ValueError):
        parse_pairs_json(content)

"""The OpenAI-compatible QA generator against a fake server on loopback, with the real openai client.

Documented behaviour: well-formed replies become validated pairs; a malformed reply (not JSON, an empty
``choices`` list) is asked again, then recorded as an error; 429 waits ``retry-after`` and retries; 500 and
timeouts are retried by the client, then recorded; in every case the run goes on, the files on disk are whole
and the failed chunks are asked again on the next run.
"""

from __future__ import annotations

import json

import pytest

from pipeline.documents.chunking import chunk_document
from pipeline.documents.text import Document
from pipeline.qa.generate import OpenAIQAGenerator, generate_qa, parse_pairs_json
from pipeline.qa.records import load_qa_records

from tests.fakes.openai_server import FakeOpenAI, quoting_reply

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
    # one request at a time unless a test says otherwise: the fake answers in arrival order
    options = {"max_retries": 0, "malformed_retries": 0, "timeout_s": 5, "concurrency": 1, **kwargs}
    return OpenAIQAGenerator(base_url=server.base_url, api_key="sk-test", model="fake-model", **options)


def pairs_reply(*pairs: tuple[str, str]) -> str:
    return json.dumps({"pairs": [{"question": q, "answer": a} for q, a in pairs]}, ensure_ascii=False)


def files(out) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_well_formed_replies_become_validated_pairs_with_exact_spans(server, doc, tmp_path):
    out = tmp_path / "qa"
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00"),
                             ("Qual é o valor mensal da bolsa?", "R$ 700,00"),  # near-duplicate question
                             ("Quem paga a bolsa?", "O Ministério da Fazenda")))  # not in the text
    server.reply(pairs_reply(("Quando são as inscrições?", "de 1º a 15 de março"),
                             ("Onde faço a inscrição?", "pelo  sistema eletrônico")))  # spacing differs
    summary = generate_qa([doc], out_dir=out, generator=make_generator(server), max_chars=100)

    valid = lines(out / "EDITAL.jsonl")
    assert [r["question"] for r in valid] == ["Qual é o valor da bolsa?", "Quando são as inscrições?",
                                              "Onde faço a inscrição?"]
    for record in valid:
        assert TEXT[record["span"][0]:record["span"][1]] == record["answer"]
        assert record["generator"] == "openai:fake-model" and "kind:llm" in record["tags"]
    assert "money" in valid[0]["tags"] and "date" in valid[1]["tags"]
    assert valid[2]["answer"] == "pelo sistema eletrônico"
    invalid = {r["question"]: r["reasons"] for r in lines(out / "EDITAL.invalid.jsonl")}
    assert invalid["Qual é o valor mensal da bolsa?"] == ["near-duplicate question"]
    assert invalid["Quem paga a bolsa?"][0].startswith("answer not supported by its source span")
    assert [r["question"] for r in load_qa_records(out)] == [r["question"] for r in valid]  # never the invalid

    assert summary.n_pairs == 5 and summary.n_valid == 3 and summary.errors == []
    assert summary.usage == {"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["EDITAL"]["usage"]["total_tokens"] == 240 and manifest["EDITAL"]["failed_chunks"] == []

    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert request["json"]["model"] == "fake-model"
    assert request["json"]["response_format"]["type"] == "json_schema"
    assert "O Programa de Bolsas" in request["json"]["messages"][-1]["content"]


def test_malformed_json_is_retried_then_recorded_and_asked_again_next_run(server, doc, tmp_path):
    out = tmp_path / "qa"
    server.reply("Claro! Aqui estão as perguntas: 1. Qual é o valor?")  # not JSON
    server.reply('{"pairs": [{"question": "Qual é o valor?"}]}')  # JSON, wrong shape
    summary = generate_qa([doc], out_dir=out, generator=make_generator(server, malformed_retries=1))
    assert len(server.requests) == 2  # one retry of the malformed reply, then give up
    (error,) = summary.errors
    assert error["error"].startswith("MalformedReply") and error["chunk_id"] == chunk_document(doc)[0].id
    assert summary.usage["total_tokens"] == 240  # both replies cost tokens
    assert (out / "EDITAL.jsonl").read_text() == "" and files(out) == ["EDITAL.jsonl", "manifest.json"]

    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))  # next run: only the failed chunk
    again = generate_qa([doc], out_dir=out, generator=make_generator(server))
    assert again.generated == ["EDITAL"] and again.errors == []
    assert [r["answer"] for r in load_qa_records(out)] == ["R$ 700,00"]
    third = generate_qa([doc], out_dir=out, generator=make_generator(server))
    assert third.skipped == ["EDITAL"] and len(server.requests) == 3  # nothing sent for an unchanged document


def test_failed_chunks_only_are_asked_again(server, doc, tmp_path):
    out = tmp_path / "qa"
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))
    server.fail(500)
    first = generate_qa([doc], out_dir=out, generator=make_generator(server), max_chars=100)
    assert len(first.errors) == 1 and "InternalServerError" in first.errors[0]["error"]
    assert [r["question"] for r in load_qa_records(out)] == ["Qual é o valor da bolsa?"]  # what worked is kept

    server.reply(pairs_reply(("Quando são as inscrições?", "de 1º a 15 de março")))
    second = generate_qa([doc], out_dir=out, generator=make_generator(server), max_chars=100)
    assert second.errors == [] and len(server.requests) == 3
    assert "15 de março" in server.requests[-1]["json"]["messages"][-1]["content"]  # the second chunk only
    assert [r["question"] for r in load_qa_records(out)] == ["Qual é o valor da bolsa?", "Quando são as inscrições?"]


def test_429_waits_for_retry_after_then_succeeds(server, doc):
    server.fail(429, "slow down", headers={"retry-after": "1"})
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))
    result = make_generator(server, max_retries=2).generate_chunk(doc, chunk_document(doc)[0])
    assert result.error is None and result.items[0]["answer"] == "R$ 700,00"
    first, second = server.requests
    assert second["at"] - first["at"] >= 0.95  # the client's own backoff alone would wait at most 0.5 s


def test_500_is_retried_by_the_client_then_recorded(server, doc, tmp_path):
    for _ in range(3):
        server.fail(500)
    summary = generate_qa([doc], out_dir=tmp_path / "qa", generator=make_generator(server, max_retries=2))
    assert len(server.requests) == 3  # one try and two retries
    assert "InternalServerError" in summary.errors[0]["error"]
    assert files(tmp_path / "qa") == ["EDITAL.jsonl", "manifest.json"]


def test_500_then_success_is_transparent(server, doc):
    server.fail(503)
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))
    result = make_generator(server, max_retries=1).generate_chunk(doc, chunk_document(doc)[0])
    assert result.error is None and len(server.requests) == 2


def test_timeout_is_retried_then_recorded(server, doc, tmp_path):
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")), delay=2)
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")), delay=2)
    summary = generate_qa([doc], out_dir=tmp_path / "qa",
                          generator=make_generator(server, timeout_s=0.3, max_retries=1))
    assert len(server.requests) == 2
    assert summary.errors[0]["error"].startswith("APITimeoutError")
    assert json.loads((tmp_path / "qa" / "manifest.json").read_text())["EDITAL"]["failed_chunks"]


def test_empty_choice_list_is_a_malformed_reply(server, doc):
    server.empty_choices()
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))
    result = make_generator(server, malformed_retries=1).generate_chunk(doc, chunk_document(doc)[0])
    assert result.error is None and result.attempts == 2

    server.empty_choices()
    result = make_generator(server).generate_chunk(doc, chunk_document(doc)[0])
    assert result.error == "MalformedReply: reply has an empty 'choices' list" and result.items == []


def test_a_body_that_is_not_json_is_a_precise_malformed_reply(server, doc):
    server.raw("<html><body>502 Bad Gateway</body></html>", "text/html")
    result = make_generator(server).generate_chunk(doc, chunk_document(doc)[0])
    assert result.error == ("MalformedReply: server replied with a body that is not JSON: "
                            "'<html><body>502 Bad Gateway</body></html>'") and result.items == []


def test_server_refusing_json_schema_is_asked_with_json_object(server, doc):
    server.fail(400, "response_format json_schema not supported")
    server.reply(pairs_reply(("Qual é o valor da bolsa?", "R$ 700,00")))
    gen = make_generator(server)
    assert gen.generate_chunk(doc, chunk_document(doc)[0]).error is None
    assert [r["json"].get("response_format", {}).get("type") for r in server.requests] == ["json_schema", "json_object"]
    assert gen.response_mode == "json_object"


def test_concurrency_is_bounded(doc, tmp_path):
    docs = [Document(name=f"D{i}", title="D", text=TEXT, path=tmp_path / f"D{i}.txt", sha256=str(i)) for i in range(6)]
    with FakeOpenAI(default=quoting_reply, latency=0.2) as fake:
        summary = generate_qa(docs, out_dir=tmp_path / "qa", max_chars=100,
                              generator=make_generator(fake, concurrency=3))
        assert len(fake.requests) == 12 and 1 < fake.max_in_flight <= 3
    assert summary.errors == [] and summary.n_valid == 12 and len(summary.generated) == 6


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

"""LLM_BACKEND=openai: the real ``openai`` client against a fake OpenAI-compatible server (retries, timeouts, a
server down, usage) and against llama-cpp-python's real server with the embedded GGUF (answers, streaming into
Telegram, the grounding check, the engine killed in the middle of an answer)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from bot import texts
from bot.telegram.app import build_application
from pipeline.answering.answer import Answerer
from pipeline.answering.result import NOTICE_LLM_UNAVAILABLE, is_grounded
from pipeline.core.text import content_terms
from pipeline.llm.local import LLMUnavailable, take_last_call
from pipeline.llm.remote import OpenAIChatLLM
from pipeline.llm.adapters import load_serving_llm
from pipeline.service import Oraculo
from pipeline.settings import Settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegramServer, running_application
from tests.fixtures import llamacpp_server
from tests.fixtures.llamacpp_server import LlamaCppServer, free_port

MESSAGES = [{"role": "user", "content": "Diga olá."}]
QUESTION = "Onde é sediada a UFMS?"
KEY = "sk-answer-engine-secret-42"


def engine_settings(tmp_path, base_url: str, **overrides) -> Settings:
    values = dict(DATA_DIR=tmp_path / "data", LLM_BACKEND="openai", OPENAI_BASE_URL=base_url,
                  OPENAI_ANSWER_MODEL="oraculo", ANSWER_STRATEGY="generative", OPENAI_ANSWER_MAX_RETRIES=0)
    values.update(overrides)
    return Settings(**values)


# --- the client against a fake server ------------------------------------------------------------------------

def test_429_and_503_are_retried_with_backoff_then_the_reply_and_its_usage_are_kept(caplog):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI() as fake:
        fake.fail(503)
        fake.fail(429, headers={"retry-after": "0.2"})
        fake.reply("Campo Grande.", usage={"prompt_tokens": 321, "completion_tokens": 4, "total_tokens": 325})
        llm = OpenAIChatLLM(base_url=fake.base_url, api_key=KEY, model="oraculo", max_retries=2)
        assert llm.generate(MESSAGES, max_new_tokens=16) == "Campo Grande."
    assert len(fake.requests) == 3
    assert fake.requests[2]["at"] - fake.requests[1]["at"] >= 0.2  # retry-after honoured
    body = fake.requests[-1]["json"]
    assert body["model"] == "oraculo" and body["max_tokens"] == 16 and body["temperature"] == 0.0
    assert fake.requests[-1]["headers"]["authorization"] == f"Bearer {KEY}"
    call = take_last_call()
    assert call.prompt_tokens == 321 and call.completion_tokens == 4 and call.latency_ms > 0
    assert take_last_call() is None  # taken once
    assert "prompt_tokens=321" in caplog.text and KEY not in caplog.text


def test_a_server_down_a_timeout_or_an_unknown_model_is_llm_unavailable():
    llm = OpenAIChatLLM(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=None, model="m", max_retries=0)
    with pytest.raises(LLMUnavailable, match="APIConnectionError"):
        llm.generate(MESSAGES, max_new_tokens=8)
    with pytest.raises(LLMUnavailable):
        list(llm.stream(MESSAGES, max_new_tokens=8))
    with FakeOpenAI() as fake:
        fake.reply("tarde demais", delay=2.0)
        fake.fail(404, "The model `m` does not exist.")
        fake.empty_choices()
        slow = OpenAIChatLLM(base_url=fake.base_url, api_key=None, model="m", timeout_s=0.5, max_retries=0)
        with pytest.raises(LLMUnavailable, match="APITimeoutError"):
            slow.generate(MESSAGES, max_new_tokens=8)
        with pytest.raises(LLMUnavailable, match="NotFoundError"):
            slow.generate(MESSAGES, max_new_tokens=8)
        with pytest.raises(LLMUnavailable, match="without choices"):
            slow.generate(MESSAGES, max_new_tokens=8)
    with pytest.raises(ValueError, match="OPENAI_ANSWER_MODEL"):
        OpenAIChatLLM(base_url=fake.base_url, api_key=None, model="")


def test_the_grounding_check_judges_engine_answers(tmp_path, retriever):
    with FakeOpenAI() as fake:
        settings = engine_settings(tmp_path, fake.base_url)
        answerer = Answerer(settings, retriever=retriever)
        fake.reply("A UFMS é sediada em Campo Grande, Mato Grosso do Sul.")
        grounded = answerer.answer(QUESTION)
        fake.reply("A UFMS fica em Manaus desde 1890.")  # a place and a year the documents never say
        made_up = answerer.answer(QUESTION)
        fake.reply("NAO_ENCONTRADO")
        refused = answerer.answer(QUESTION)
    assert grounded.strategy == "generative" and grounded.text.startswith("A UFMS é sediada em Campo Grande")
    assert grounded.model_version == "oraculo@openai" and grounded.llm_usage["prompt_tokens"] == 100
    assert made_up.strategy == "extractive" and "Manaus" not in made_up.text and made_up.notice == ""
    assert refused.abstained
    assert fake.requests[0]["json"]["messages"][0]["role"] == "system"  # the RAG prompt went to the engine


@pytest.mark.parametrize("fallback", ["extractive", "reader"])
def test_engine_down_gives_the_fallback_answer_with_a_notice(tmp_path, retriever, fallback):
    settings = engine_settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1", LLM_FALLBACK=fallback)
    answer = Answerer(settings, retriever=retriever).answer(QUESTION)
    assert answer.notice == NOTICE_LLM_UNAVAILABLE and answer.strategy == fallback
    assert "Campo Grande" in answer.text and not answer.abstained
    html = texts.render_answer(answer)
    assert html.startswith("⚠️ Meu gerador de respostas está fora do ar") and "Campo Grande" in html
    assert texts.render_answer_plain(answer).splitlines()[0] == texts.NOTICES[NOTICE_LLM_UNAVAILABLE]


def test_the_serving_llm_for_the_openai_backend_is_built_from_settings(tmp_path):
    settings = engine_settings(tmp_path, "http://engine:8000/v1", OPENAI_ANSWER_BASE_URL="http://other:9/v1",
                               OPENAI_API_KEY=KEY, OPENAI_ANSWER_MODEL="qwen-oraculo")
    llm = load_serving_llm(settings)
    assert isinstance(llm, OpenAIChatLLM) and llm.version == "qwen-oraculo@openai" and llm.serving
    assert str(llm._client.base_url).startswith("http://other:9/v1")  # the answer engine's own URL wins
    with pytest.raises(ValueError, match="LLM_BACKEND"):
        Settings(LLM_BACKEND="vllm")


# --- llama-cpp-python's real server -----------------------------------------------------------------------

needs_server = pytest.mark.skipif(not llamacpp_server.available(), reason=llamacpp_server.MISSING)


@pytest.fixture(scope="module")
def llama_server():
    with LlamaCppServer() as server:
        yield server


@needs_server
def test_the_llama_cpp_server_answers_and_streams_through_the_openai_client(llama_server):
    llm = OpenAIChatLLM(base_url=llama_server.base_url, api_key=None, model="embedded")
    text = llm.generate(MESSAGES, max_new_tokens=12)
    call = take_last_call()
    assert text and call.prompt_tokens > 0 and 0 < call.completion_tokens <= 12
    pieces = list(llm.stream(MESSAGES, max_new_tokens=12))
    call = take_last_call()
    assert len(pieces) > 1 and "".join(pieces).strip() and call.pieces == len(pieces)
    assert call.first_piece_ms is not None and 0 < call.first_piece_ms <= call.latency_ms


@needs_server
def test_generated_answers_through_the_server_pass_the_grounding_check_or_fall_back(tmp_path, retriever,
                                                                                      llama_server):
    settings = engine_settings(tmp_path, llama_server.base_url, MAX_NEW_TOKENS=48)
    answerer = Answerer(settings, retriever=retriever)
    checked = 0
    for question in (QUESTION, "Quando foi criada a UFMS?"):
        partials: list[str] = []
        answer = answerer.answer(question, on_partial=partials.append)
        if answer.abstained:  # the model wrote NAO_ENCONTRADO (never shown while streaming)
            continue
        checked += 1
        assert partials, "the reply was streamed"
        generated = partials[-1]
        evidence = answerer.evidence(question)
        terms = {t for h in evidence.hits for t in content_terms(f"{h.chunk.title} {h.chunk.text}")}
        context = "\n".join(h.chunk.text for h in evidence.hits)
        if answer.strategy == "generative":  # what the engine wrote, judged supported by the documents
            assert answer.text == generated and is_grounded(generated, question=question, context_terms=terms,
                                                            context_text=context)
        else:  # an unsupported reply is replaced by the extractive answer
            assert not answer.abstained and answer.strategy == "extractive" and answer.text != generated
            assert not is_grounded(generated, question=question, context_terms=terms, context_text=context)
    assert checked


@needs_server
def test_the_engine_killed_mid_answer_gives_the_reader_answer_in_the_streamed_telegram_message(tmp_path,
                                                                                             retriever):
    """The server dies after the first streamed piece: the citizen's message, which showed the partial text,
    becomes the pt-BR notice and the reader's answer with its source and buttons."""
    with LlamaCppServer() as server:
        killed = threading.Event()

        class KillingAnswerer(Answerer):
            def _generate(self, question, hits, on_partial):
                def partial(text):
                    on_partial(text)
                    if not killed.is_set():
                        killed.set()
                        server.kill()
                return super()._generate(question, hits, partial)

        async def main():
            async with FakeTelegramServer() as telegram:
                bot_settings = engine_settings(tmp_path, server.base_url, MAX_NEW_TOKENS=200,
                                               TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_BASE_URL=telegram.base_url)
                service = Oraculo(bot_settings, answerer=KillingAnswerer(bot_settings, retriever=retriever))
                service.database.upgrade()
                async with running_application(build_application(bot_settings, service)):
                    telegram.push_text(QUESTION)
                    while not any(c.params.get("reply_markup") for c in telegram.calls_to("editMessageText")
                                  + telegram.calls_to("sendMessage")):
                        await asyncio.sleep(0.2)
                    return telegram.calls_to("sendMessage"), telegram.calls_to("editMessageText")

        sent, edits = asyncio.run(asyncio.wait_for(main(), 180))
    assert killed.is_set() and server.process.returncode is not None
    final = [c for c in sent + edits if c.params.get("reply_markup")][-1]
    assert final.text.startswith(texts.NOTICES[NOTICE_LLM_UNAVAILABLE]) and "Campo Grande" in final.text
    assert "Fonte" in final.text and "▌" not in final.text
    assert sent[0].text.endswith("▌")  # the partial text had been shown before the engine died

"""Streaming a generated answer: one message grows by rate-limited edits, then becomes the final answer."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from bot import texts
from tests.fakes.oraculo import FakeOraculo, canned_answer

FINAL = "O POSCOMP é realizado no Peru desde 2006."


class StreamingOraculo(FakeOraculo):
    """A fake service in generative mode: ``ask`` reports ``partials`` through ``on_partial`` before answering."""

    def __init__(self, partials: list[str], *, pause_s: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.settings = SimpleNamespace(answer_strategy="generative")
        self.partials = partials
        self.pause_s = pause_s
        self.streamed = threading.Event()

    def ask(self, question, *, user_ref, channel, chat_ref=None, on_partial=None):
        assert on_partial is not None, "a generative service must be asked with on_partial"
        for text in self.partials:
            on_partial(text)
            time.sleep(self.pause_s)
        self.streamed.set()
        return super().ask(question, user_ref=user_ref, channel=channel, chat_ref=chat_ref)


def _words(final: str) -> list[str]:
    words = final.split()
    return [" ".join(words[:n]) for n in range(1, len(words) + 1)]


def test_answer_grows_in_one_message_then_gets_sources_and_buttons(drive):
    service = StreamingOraculo(_words(FINAL), pause_s=0.15)
    service.answers.append(canned_answer(FINAL, document="POSCOMP"))

    async def scenario(server, app):
        server.push_text("Desde quando o POSCOMP é realizado no Peru?")
        [first] = await server.wait_for("sendMessage")
        edits = await server.wait_for("editMessageText", count=1)
        while not any(c.params.get("reply_markup") for c in server.calls_to("editMessageText")):
            edits = await server.wait_for("editMessageText", count=len(edits) + 1)
        assert first.text.endswith("▌") and FINAL.startswith(first.text.removesuffix(" ▌"))
        message_id = first.result["message_id"]
        assert {c.params["message_id"] for c in edits} == {str(message_id)}  # one message, edited
        *growing, final = edits
        for call in growing:  # every intermediate state is a prefix of the answer, with the cursor
            assert call.text.endswith("▌") and FINAL.startswith(call.text.removesuffix(" ▌"))
        # Rate-limited: far fewer edits than pieces (8 pieces ~0.15 s apart, at most one edit a second).
        assert len(growing) < len(service.partials) - 2
        assert final.params["parse_mode"] == "HTML" and final.text == texts.render_answer(service.answers_given[0])
        assert "▌" not in final.text and "Fonte" in final.text
        assert "feedback" in final.params["reply_markup"] or "callback_data" in final.params["reply_markup"]
        assert len(server.calls_to("sendMessage")) == 1  # nothing sent besides the streamed message

    service.answers_given = list(service.answers)
    drive(scenario, with_service=service)


def test_a_429_while_streaming_does_not_lose_the_answer(drive):
    service = StreamingOraculo(_words(FINAL), pause_s=0.1)
    service.answers.append(canned_answer(FINAL, document="POSCOMP"))

    async def scenario(server, app):
        server.fail_next("editMessageText", status=429, retry_after=1, times=1)
        server.push_text("Desde quando o POSCOMP é realizado no Peru?")
        await server.wait_for("sendMessage")
        while not any(c.params.get("reply_markup") and c.status == 200
                      for c in server.calls_to("editMessageText")):
            await server.wait_for("editMessageText", count=len(server.calls_to("editMessageText")) + 1)
        final = [c for c in server.calls_to("editMessageText") if c.status == 200][-1]
        assert FINAL in final.text and "▌" not in final.text
        assert any(c.status == 429 for c in server.calls_to("editMessageText"))

    drive(scenario, with_service=service)


def test_abstention_after_nothing_was_streamed_is_a_plain_reply_without_buttons(drive):
    service = StreamingOraculo([])
    service.answers.append(canned_answer("", abstained=True))

    async def scenario(server, app):
        server.push_text("Qual a receita de bolo de cenoura?")
        [reply] = await server.wait_for("sendMessage")
        assert reply.text == texts.render_answer(canned_answer("", abstained=True))
        assert "reply_markup" not in reply.params and not server.calls_to("editMessageText")

    drive(scenario, with_service=service)


def test_extractive_services_are_not_streamed(drive, service):
    async def scenario(server, app):
        server.push_text("Onde é sediada a UFMS?")
        [reply] = await server.wait_for("sendMessage")
        assert "▌" not in reply.text and not server.calls_to("editMessageText")

    drive(scenario)

"""Citizens' flows through the real PTB Application, the fake Bot API and the *real* Oráculo service on a
real SQLite database (answers canned, so no model loads): comments after 👎, forged buttons, /esquecer,
/sobre, the rate limit, non-text messages, long answers."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from bot import texts
from bot.telegram.app import build_application
from pipeline.service import Oraculo
from pipeline.settings import Settings
from storage.models import Feedback, Interaction, User
from tests.fakes.oraculo import CannedAnswerer
from tests.fakes.telegram_server import CITIZEN, FakeTelegramServer, running_application

OTHER = {"id": 2002, "is_bot": False, "first_name": "João"}


@pytest.fixture
def real(tmp_path):
    """``real(scenario, **settings)``: run the scenario against the real service; returns the service."""

    def run(scenario, *, answerer=None, **overrides):
        holder = {}

        async def main():
            async with FakeTelegramServer() as server:
                settings = Settings(DATA_DIR=tmp_path / "data", TELEGRAM_BOT_TOKEN=server.token,
                                    TELEGRAM_BASE_URL=server.base_url, **overrides)
                service = Oraculo(settings, answerer=answerer or CannedAnswerer())
                service.database.upgrade()
                holder["service"] = service
                async with running_application(build_application(settings, service)) as app:
                    await asyncio.wait_for(scenario(server, app, service), 60)

        asyncio.run(main())
        return holder["service"]

    return run


def count(service, model) -> int:
    with service.database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


async def ask(server, text, *, user=CITIZEN, chat_id=None):
    before = len(server.calls_to("sendMessage", ok=True))
    server.push_text(text, user=user, chat_id=chat_id)
    return (await server.wait_for("sendMessage", count=before + 1))[-1]


async def press(server, message, data, *, user=CITIZEN):
    before = len(server.calls_to("answerCallbackQuery", ok=True))
    server.push_callback(data, message=message, user=user)
    return (await server.wait_for("answerCallbackQuery", count=before + 1))[-1]


def test_after_a_thumbs_down_the_reply_to_the_prompt_is_stored_as_the_comment(real):
    async def scenario(server, app, service):
        answer = await ask(server, "Onde é sediada a UFMS?")
        [_, down] = [b["callback_data"] for b in answer.json("reply_markup")["inline_keyboard"][0]]
        await press(server, answer.result, down)
        [prompt] = await server.wait_for("sendMessage", where=lambda c: "Protocolo" in c.params["text"])
        assert prompt.json("reply_markup")["force_reply"] is True
        interaction_id = int(down.split(":")[1])
        assert prompt.result["text"] == texts.comment_prompt(interaction_id)
        # The citizen answers the prompt (Telegram sets reply_to_message).
        server.push_message(text="Faltou o endereço completo <rua & número>",
                            reply_to_message=prompt.result)
        [thanks] = await server.wait_for("sendMessage", where=lambda c: c.params["text"] == texts.COMMENT_THANKS)
        assert thanks
        with service.database.session() as session:
            [row] = session.scalars(select(Feedback)).all()
            assert (row.interaction_id, row.vote, row.comment) == (interaction_id, -1,
                                                                   "Faltou o endereço completo <rua & número>")
        assert count(service, Interaction) == 1  # the comment was not taken for a new question

    real(scenario)


def test_a_thumbs_up_asks_for_no_comment_and_a_reply_to_an_answer_is_a_new_question(real):
    async def scenario(server, app, service):
        answer = await ask(server, "Onde é sediada a UFMS?")
        up = answer.json("reply_markup")["inline_keyboard"][0][0]["callback_data"]
        await press(server, answer.result, up)
        server.push_message(text="E a FACOM?", reply_to_message=answer.result)
        await server.wait_for("sendMessage", count=2)
        await ask(server, "/ajuda")
        assert not [c for c in server.calls_to("sendMessage") if "Protocolo" in c.params["text"]]

    service = real(scenario)
    assert count(service, Interaction) == 2


def test_a_button_of_another_chat_is_refused_without_effect(real, caplog):
    async def scenario(server, app, service):
        answer = await ask(server, "Onde é sediada a UFMS?")  # in Maria's chat
        up = answer.json("reply_markup")["inline_keyboard"][0][0]["callback_data"]
        other_answer = await ask(server, "Onde é sediada a UFMS?", user=OTHER)
        # João forges Maria's answer id on a message of his own chat.
        ack = await press(server, other_answer.result, up, user=OTHER)
        assert ack.params["text"] == texts.FEEDBACK_FORGED
        ack = await press(server, other_answer.result, "fb:1:up;DROP TABLE", user=OTHER)
        assert ack.params["text"] == texts.FEEDBACK_INVALID

    with caplog.at_level(logging.WARNING, logger="bot.telegram.handlers"):
        service = real(scenario)
    assert count(service, Feedback) == 0
    assert "forged callback data" in caplog.text


def test_forget_me_asks_first_then_erases_only_that_person(real):
    async def scenario(server, app, service):
        answer = await ask(server, "Onde é sediada a UFMS?")
        await press(server, answer.result, answer.json("reply_markup")["inline_keyboard"][0][0]["callback_data"])
        other = await ask(server, "Onde é sediada a UFMS?", user=OTHER)
        await press(server, other.result, other.json("reply_markup")["inline_keyboard"][0][0]["callback_data"],
                    user=OTHER)
        confirm = await ask(server, "/esquecer")
        assert [b["callback_data"] for b in confirm.json("reply_markup")["inline_keyboard"][0]] == \
            ["forget:no", "forget:yes"][::-1]
        await press(server, confirm.result, "forget:no")
        assert count(service, Interaction) == 2
        [edit] = await server.wait_for("editMessageText")
        assert edit.params["text"] == texts.FORGET_CANCELLED

        confirm = await ask(server, "/esquecer")
        await press(server, confirm.result, "forget:yes")
        [_, edit] = await server.wait_for("editMessageText", count=2)
        assert edit.params["text"] == texts.FORGET_DONE
        with service.database.session() as session:
            assert session.scalar(select(func.count()).select_from(User)) == 1
            assert session.scalar(select(func.count()).select_from(Feedback)) == 1
            assert session.scalar(select(func.count()).select_from(Interaction)) == 1
            assert service.user_hash(OTHER["id"]) == session.scalar(select(User.user_hash))

        confirm = await ask(server, "/esquecer")
        await press(server, confirm.result, "forget:yes")
        [_, _, edit] = await server.wait_for("editMessageText", count=3)
        assert edit.params["text"] == texts.FORGET_NOTHING

    real(scenario)


def test_about_names_the_sources_and_the_version(real):
    async def scenario(server, app, service):
        reply = await ask(server, "/sobre")
        shown = reply.result["text"]
        assert "Sobre o Oráculo" in shown and "FaQuAD" in shown and "CC BY 4.0" in shown
        assert "Versão:" in shown

    real(scenario)


def test_rate_limit_answers_kindly_once_and_stores_nothing_more(real):
    async def scenario(server, app, service):
        for i in range(3):
            await ask(server, f"Pergunta {i} sobre a UFMS?")
        for i in range(3):
            server.push_text(f"Mais uma {i}?")
        server.push_text("/ajuda")  # barrier: the updates before it were handled (per-person order)
        await server.wait_for("sendMessage", where=lambda c: "Como usar" in c.params["text"])
        texts_sent = [c.params["text"] for c in server.calls_to("sendMessage")]
        assert texts_sent.count(texts.RATE_LIMITED) == 1
        other = await ask(server, "Onde é sediada a UFMS?", user=OTHER)  # others are not affected
        assert other.result["text"].startswith("A UFMS tem sede")

    service = real(scenario, RATE_LIMIT_QUESTIONS=3, RATE_LIMIT_WINDOW_S=3600)
    assert count(service, Interaction) == 4


@pytest.mark.parametrize("kind, fields", [
    ("photo", {"photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]}),
    ("sticker", {"sticker": {"file_id": "s", "file_unique_id": "u", "width": 1, "height": 1, "is_animated": False,
                             "is_video": False, "type": "regular"}}),
    ("voice", {"voice": {"file_id": "v", "file_unique_id": "u", "duration": 3}}),
    ("document", {"document": {"file_id": "d", "file_unique_id": "u", "file_name": "edital.pdf"}}),
])
def test_non_text_messages_get_a_kind_reply_naming_what_arrived(real, kind, fields):
    async def scenario(server, app, service):
        server.push_message(**fields)
        [reply] = await server.wait_for("sendMessage")
        assert reply.params["text"] == texts.unsupported(kind) != texts.UNSUPPORTED_MESSAGE

    service = real(scenario)
    assert count(service, Interaction) == 0


def test_empty_and_ten_thousand_character_messages(real):
    async def scenario(server, app, service):
        reply = await ask(server, "   ")
        assert reply.params["text"] == texts.EMPTY_QUESTION
        reply = await ask(server, "a" * 10_000)
        assert reply.params["text"] == texts.TOO_LONG

    service = real(scenario)
    assert count(service, Interaction) == 0


def test_a_long_answer_arrives_in_several_valid_messages_with_the_buttons_on_the_last(real):
    long_text = "O artigo <5º> & seus incisos dizem o seguinte. " * 250  # ~12k characters

    async def scenario(server, app, service):
        server.push_text("Explique o regulamento inteiro")
        server.push_text("/ajuda")
        await server.wait_for("sendMessage", where=lambda c: "Como usar" in c.params["text"])
        parts = server.calls_to("sendMessage")[:-1]  # the last one answers /ajuda
        assert len(parts) >= 3 and all(c.status == 200 for c in server.calls_to("sendMessage"))
        assert ["reply_markup" in c.params for c in parts] == [False] * (len(parts) - 1) + [True]
        assert parts[-1].result["text"].endswith("📄 Fonte: Ufms, Art. 1º\n   “A UFMS tem sede em Campo Grande.”")

    real(scenario, answerer=CannedAnswerer(long_text=long_text))

"""The handlers through the real PTB Application and the fake Bot API, with a fake Oráculo service."""

from __future__ import annotations

import asyncio
import threading

from bot import texts
from pipeline.service import MAX_QUESTION_CHARS
from tests.fakes.oraculo import canned_answer
from tests.fakes.telegram_server import CITIZEN

OTHER = {"id": 2002, "is_bot": False, "first_name": "João"}


def buttons(call) -> list[tuple[str, str]]:
    markup = call.json("reply_markup")
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


async def ask(server, text: str, *, user=CITIZEN):
    """Send a question and return the sendMessage call that answered it."""
    before = len(server.calls_to("sendMessage", ok=True))
    server.push_text(text, user=user)
    replies = await server.wait_for("sendMessage", count=before + 1)
    return replies[-1]


async def press(server, answer_call, data: str, *, user=CITIZEN, inaccessible=False):
    """Press a button with ``data`` on the bot's answer; return the answerCallbackQuery call."""
    before = len(server.calls_to("answerCallbackQuery", ok=True))
    server.push_callback(data, message=answer_call.result, user=user, inaccessible=inaccessible)
    acks = await server.wait_for("answerCallbackQuery", count=before + 1)
    return acks[-1]


def test_start_greets_by_name_and_lists_documents_escaped(drive, service):
    async def scenario(server, app):
        server.push_text("/start")
        [reply] = await server.wait_for("sendMessage")
        assert reply.params["parse_mode"] == "HTML"
        shown = reply.result["text"]  # what the citizen sees, after Telegram parsed the HTML
        assert shown.startswith("Olá, Maria!")
        assert "• Ufms" in shown and "• Edital <Nº 1> & Anexos" in shown
        assert "Privacidade:" in shown and "hash com sal" in shown and "/esquecer" in shown  # LGPD note
        assert "reply_markup" not in reply.params

    drive(scenario)
    assert service.calls("documents") == [("documents",)]


def test_help_and_documents_commands(drive):
    async def scenario(server, app):
        server.push_text("/ajuda")
        [help_reply] = await server.wait_for("sendMessage")
        assert "Como usar o Oráculo" in help_reply.result["text"]
        assert texts.EXAMPLE_QUESTIONS[0] in help_reply.result["text"]
        server.push_text("/documentos")
        replies = await server.wait_for("sendMessage", count=2)
        assert "Documentos que conheço (3)" in replies[1].result["text"]

    drive(scenario)


def test_question_gets_typing_then_answer_with_source_and_two_buttons(drive, service):
    service.answers.append(canned_answer("A UFMS fica em Campo Grande.", document="UFMS", title="Ufms",
                                         section="Histórico"))

    async def scenario(server, app):
        reply = await ask(server, "  Onde é sediada a UFMS?  ")
        [typing] = server.calls_to("sendChatAction")
        assert typing.params == {"chat_id": "1001", "action": "typing"}
        assert server.calls.index(typing) < server.calls.index(reply)
        assert reply.result["text"] == "A UFMS fica em Campo Grande.\n\n📄 Fonte: Ufms, Histórico"
        assert buttons(reply) == [(texts.BUTTON_UP, "fb:1:up"), (texts.BUTTON_DOWN, "fb:1:down")]

    drive(scenario)
    assert service.calls("ask") == [("ask", "Onde é sediada a UFMS?",
                                     {"user_ref": 1001, "channel": "telegram", "chat_ref": 1001})]


def test_answer_and_title_are_html_escaped(drive, service):
    service.answers.append(canned_answer("Use <b>x</b> & não <script>", document="D", title="Tabela <A&B>"))

    async def scenario(server, app):
        reply = await ask(server, "pergunta com <tags>?")
        # The fake refuses bad HTML like Telegram does, so getting here means the escaping is right,
        # and the citizen sees the characters literally, not as formatting.
        assert reply.result["text"] == "Use <b>x</b> & não <script>\n\n📄 Fonte: Tabela <A&B>"
        assert "entities" not in reply.result

    drive(scenario)


def test_abstention_says_not_found_without_buttons(drive, service):
    service.answers.append(canned_answer("", abstained=True))

    async def scenario(server, app):
        reply = await ask(server, "Qual a cor do céu em Marte?")
        assert reply.result["text"] == texts.NOT_FOUND
        assert "reply_markup" not in reply.params

    drive(scenario)


def test_an_abstention_quoting_the_closest_passage_asks_for_a_vote_on_it(drive, service):
    from pipeline.answering.result import Answer, Source

    passage = Source(document="edital", title="Edital 1/2026", section="item 5.2", chunk_id="edital:0-90",
                     quote="A inscrição custa R$ 80,00.", score=0.7)
    service.answers.append(Answer(text="", abstained=True, strategy="reader", closest=passage))

    async def scenario(server, app):
        reply = await ask(server, "quanto pago pra me inscrever?")
        assert reply.result["text"].endswith(texts.CLOSEST_VOTE_PROMPT) and "R$ 80,00" in reply.result["text"]
        assert [text for text, _ in buttons(reply)] == [texts.BUTTON_UP, texts.BUTTON_DOWN]

    drive(scenario)


def test_too_long_question_and_non_text_never_reach_the_service(drive, service):
    async def scenario(server, app):
        reply = await ask(server, "a" * (MAX_QUESTION_CHARS + 1))
        assert reply.params["text"] == texts.TOO_LONG
        server.push_message(photo=[{"file_id": "f1", "file_unique_id": "u1", "width": 10, "height": 10}])
        replies = await server.wait_for("sendMessage", count=2)
        assert replies[1].params["text"] == texts.unsupported("photo")
        reply = await ask(server, "/naoexiste")
        assert reply.params["text"] == texts.UNKNOWN_COMMAND

    drive(scenario)
    assert service.calls("ask") == []


def test_edited_messages_are_not_new_questions_but_get_a_kind_reply(drive, service):
    async def scenario(server, app):
        original = server.push_text("Onde fica a UFMS?")
        await server.wait_for("sendMessage")
        server.push_update({"edited_message": {**original, "text": "Onde fica a FACOM?", "edit_date": 1}})
        [_, edited] = await server.wait_for("sendMessage", count=2)
        assert edited.params["text"] == texts.EDITED_MESSAGE
        await ask(server, "/ajuda")
        assert len(server.calls_to("sendMessage")) == 3

    drive(scenario)
    assert [q for _, q, _ in service.calls("ask")] == ["Onde fica a UFMS?"]


def test_vote_then_change_of_mind_updates_the_same_vote(drive, service):
    async def scenario(server, app):
        reply = await ask(server, "Onde é sediada a UFMS?")
        ack = await press(server, reply, "fb:1:up")
        assert ack.params["text"] == texts.FEEDBACK_THANKS
        [edit] = await server.wait_for("editMessageReplyMarkup")
        assert edit.params["message_id"] == str(reply.result["message_id"])
        assert buttons(edit) == [(texts.CHOSEN_MARK + texts.BUTTON_UP, "fb:1:up"),
                                 (texts.BUTTON_DOWN, "fb:1:down")]

        ack = await press(server, reply, "fb:1:down")
        assert ack.params["text"] == texts.FEEDBACK_CHANGED
        edits = await server.wait_for("editMessageReplyMarkup", count=2)
        assert buttons(edits[1])[1] == (texts.CHOSEN_MARK + texts.BUTTON_DOWN, "fb:1:down")

        ack = await press(server, reply, "fb:1:down")
        assert ack.params["text"] == texts.FEEDBACK_SAME
        await ask(server, "/ajuda")  # barrier: everything before it was handled
        assert len(server.calls_to("editMessageReplyMarkup")) == 2  # nothing to change, no edit
        assert server.calls_to("editMessageReplyMarkup", ok=False) == []

    drive(scenario)
    assert service.votes == {(1, 1001): -1}
    assert [h[2]["vote"] for h in service.calls("vote")] == [1, -1, -1]


def test_garbage_callback_data_is_refused_politely_without_touching_votes(drive, service):
    garbage = ["fb:1:maybe", "fb:0:up", "fb:01:up", "fb:1:up ", "fb:-1:up", "fb:１:up", "x" * 64,
               "fb:1:up:extra", "fb:99999999999999999999:up"]

    async def scenario(server, app):
        reply = await ask(server, "Onde é sediada a UFMS?")
        for data in garbage:
            ack = await press(server, reply, data)
            assert ack.params["text"] == texts.FEEDBACK_INVALID
        assert server.calls_to("editMessageReplyMarkup") == []

    drive(scenario)
    assert service.calls("vote") == [] and service.votes == {}


def test_vote_on_unknown_interaction_says_expired(drive, service):
    async def scenario(server, app):
        reply = await ask(server, "Onde é sediada a UFMS?")
        ack = await press(server, reply, "fb:777:up")
        assert ack.params["text"] == texts.FEEDBACK_EXPIRED

    drive(scenario)
    assert service.votes == {}


def test_votes_of_one_person_are_stored_in_the_order_pressed(drive, service):
    # 👍 is slow to store: without per-person ordering the 👎 pressed after it would land first and lose.
    service.vote_delays[1] = 0.3

    async def scenario(server, app):
        reply = await ask(server, "Onde é sediada a UFMS?")
        server.push_callback("fb:1:up", message=reply.result)
        server.push_callback("fb:1:down", message=reply.result)
        await server.wait_for("answerCallbackQuery", count=2)

    drive(scenario)
    assert [h[2]["vote"] for h in service.calls("vote")] == [1, -1]
    assert service.votes == {(1, 1001): -1}


def test_a_slow_answer_does_not_hold_up_other_people(drive, service):
    gate = service.gates["pergunta lenta"] = threading.Event()

    async def scenario(server, app):
        server.push_text("pergunta lenta")
        reply = await ask(server, "pergunta rápida", user=OTHER)
        assert reply.params["chat_id"] == str(OTHER["id"])
        gate.set()
        replies = await server.wait_for("sendMessage", count=2)
        assert replies[1].params["chat_id"] == str(CITIZEN["id"])

    drive(scenario)


def test_in_a_group_votes_count_but_the_keyboard_is_left_alone(drive, service):
    async def scenario(server, app):
        server.push_text("Onde é sediada a UFMS?", chat_id=-100123)
        [reply] = await server.wait_for("sendMessage")
        ack = await press(server, reply, "fb:1:up", user=OTHER)
        assert ack.params["text"] == texts.FEEDBACK_THANKS
        server.push_message(chat_id=-100123, new_chat_members=[OTHER])  # no "only text" reply in groups
        await ask(server, "/ajuda")
        assert len(server.calls_to("sendMessage")) == 2
        assert server.calls_to("editMessageReplyMarkup") == []

    drive(scenario)
    assert service.votes == {(1, OTHER["id"]): 1}


def test_vote_on_a_message_too_old_to_edit_is_still_recorded(drive, service):
    async def scenario(server, app):
        reply = await ask(server, "Onde é sediada a UFMS?")
        ack = await press(server, reply, "fb:1:up", inaccessible=True)
        assert ack.params["text"] == texts.FEEDBACK_THANKS
        await ask(server, "/ajuda")
        assert server.calls_to("editMessageReplyMarkup") == []

    drive(scenario)
    assert service.votes == {(1, 1001): 1}


def test_service_failure_tells_the_user_to_try_again(drive, service):
    service.answers.append(RuntimeError("model exploded"))

    async def scenario(server, app):
        reply = await ask(server, "Onde é sediada a UFMS?")
        assert reply.params["text"] == texts.ERROR

    drive(scenario)


def test_telegram_429_is_retried_after_the_requested_wait(drive):
    async def scenario(server, app):
        server.fail_next("sendMessage", status=429, retry_after=1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await ask(server, "Onde é sediada a UFMS?")
        assert loop.time() - started >= 1.0
        assert reply.result["text"].startswith("Resposta para: Onde é sediada a UFMS?")
        assert [c.status for c in server.calls_to("sendMessage")] == [429, 200]

    drive(scenario)


def test_telegram_500_on_the_answer_is_retried(drive):
    async def scenario(server, app):
        server.fail_next("sendMessage", status=500, times=2)
        reply = await ask(server, "Onde é sediada a UFMS?")
        assert reply.result["text"].startswith("Resposta para: Onde é sediada a UFMS?")
        assert [c.status for c in server.calls_to("sendMessage")] == [500, 500, 200]

    drive(scenario)


def test_telegram_down_for_good_ends_in_the_error_message_and_keeps_the_answer_stored(drive, service):
    from bot.telegram.app import NETWORK_RETRIES

    async def scenario(server, app):
        server.fail_next("sendMessage", status=502, times=NETWORK_RETRIES + 1)
        reply = await ask(server, "Onde é sediada a UFMS?")
        assert reply.params["text"] == texts.ERROR
        assert [c.status for c in server.calls_to("sendMessage")] == [502] * (NETWORK_RETRIES + 1) + [200]

    drive(scenario)
    assert service._interactions == {1}  # answered and stored before the send failed


def test_failed_typing_indicator_does_not_stop_the_answer(drive):
    async def scenario(server, app):
        server.fail_next("sendChatAction", status=500)
        reply = await ask(server, "Onde é sediada a UFMS?")
        assert reply.result["text"].startswith("Resposta para:")

    drive(scenario)


def test_a_flood_wait_in_one_chat_does_not_hold_up_another_chat(drive):
    async def scenario(server, app):
        server.fail_next("sendMessage", status=429, retry_after=2)
        server.push_text("Onde é sediada a UFMS?")  # Maria's answer hits flood control
        await server.wait_for("sendChatAction")
        while not server.calls_to("sendMessage", ok=False):
            await asyncio.sleep(0.01)
        other = await ask(server, "Quem pode se inscrever?", user=OTHER)
        [first_ok, second_ok] = await server.wait_for("sendMessage", count=2)
        assert first_ok is other and second_ok.params["chat_id"] == str(CITIZEN["id"])  # João did not wait
        assert [c.status for c in server.calls_to("sendMessage")] == [429, 200, 200]

    drive(scenario)

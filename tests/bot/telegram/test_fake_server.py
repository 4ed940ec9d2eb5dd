"""The fake Bot API itself, exercised with PTB's real Bot: replies, errors and checks match Telegram's."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter

from tests.fakes.telegram_html import HtmlError, parse_html
from tests.fakes.telegram_server import CITIZEN, FakeTelegramServer


def run(scenario):
    async def main():
        async with FakeTelegramServer() as server:
            async with Bot(server.token, base_url=server.base_url) as bot:
                await asyncio.wait_for(scenario(server, bot), 30)

    asyncio.run(main())


def test_send_and_edit_return_real_messages_and_refuse_a_no_op_edit():
    async def scenario(server, bot):
        server.chat(CITIZEN["id"])
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="x")]])
        message = await bot.send_message(CITIZEN["id"], "<b>Olá</b> &amp; até", parse_mode="HTML",
                                         reply_markup=markup)
        assert message.text == "Olá & até" and message.entities[0].type == "bold"
        assert message.chat.type == "private" and message.from_user.is_bot
        edited = await bot.edit_message_reply_markup(CITIZEN["id"], message.message_id, reply_markup=None)
        assert edited.reply_markup is None
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_reply_markup(CITIZEN["id"], message.message_id, reply_markup=None)
        with pytest.raises(BadRequest, match="(?i)message to edit not found"):
            await bot.edit_message_text("novo", chat_id=CITIZEN["id"], message_id=999)
        assert [c.status for c in server.calls if c.method != "getMe"] == [200, 200, 400, 400]

    run(scenario)


@pytest.mark.parametrize("html,error", [("a < b", "unexpected '<'"), ("R&D", "unexpected '&'"),
                                        ("<b>x", "Can't find end tag"), ("<b>x</i>", "Unmatched end tag"),
                                        ("<script>x</script>", "Unsupported start tag"), ("&nbsp;", "'&'")])
def test_bad_html_is_refused_like_telegram_does(html, error):
    with pytest.raises(HtmlError, match=error):
        parse_html(html)


def test_entity_offsets_count_utf16_units():
    text, entities = parse_html("👍 <i>ok</i>")
    assert text == "👍 ok" and entities == [{"type": "italic", "offset": 3, "length": 2}]


def test_injected_errors_map_to_ptb_exceptions():
    async def scenario(server, bot):
        server.chat(CITIZEN["id"])
        server.fail_next("sendMessage", status=429, retry_after=7)
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(CITIZEN["id"], "x")
        assert info.value.retry_after == 7
        server.fail_next("sendMessage", status=500)
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(CITIZEN["id"], "x")
        assert (await bot.send_message(CITIZEN["id"], "x")).text == "x"  # failures were one-shot
        with pytest.raises(BadRequest, match="(?i)chat not found"):
            await bot.send_message(42, "x")

    run(scenario)


def test_wrong_token_is_unauthorized():
    async def scenario(server, bot):
        async with Bot("999:wrong", base_url=server.base_url):  # initialize() calls getMe
            pass

    with pytest.raises(InvalidToken):
        run(scenario)


def test_get_updates_long_polls_and_forgets_confirmed_updates():
    async def scenario(server, bot):
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await bot.get_updates(timeout=0.3) == ()
        assert loop.time() - started >= 0.3
        waiting = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.05)
        server.push_text("/start")
        [update] = await asyncio.wait_for(waiting, 2)  # returned as soon as the update arrived
        assert update.message.text == "/start" and update.message.entities[0].type == "bot_command"
        assert len(await bot.get_updates(offset=update.update_id)) == 1
        assert await bot.get_updates(offset=update.update_id + 1) == ()

    run(scenario)


def test_a_callback_query_can_be_answered_once():
    async def scenario(server, bot):
        server.chat(CITIZEN["id"])
        message = await bot.send_message(CITIZEN["id"], "x")
        query = server.push_callback("fb:1:up", message=message.to_dict())
        assert await bot.answer_callback_query(query["id"], text="ok")
        with pytest.raises(BadRequest, match="(?i)query is too old"):
            await bot.answer_callback_query(query["id"], text="ok")
        with pytest.raises(BadRequest):
            await bot.answer_callback_query("nope", text="x" * 201)

    run(scenario)

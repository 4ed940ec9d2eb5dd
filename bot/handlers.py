"""Thin async Telegram handlers: read the update, call the Oráculo service in a thread, reply in pt-BR.

The service (``pipeline.service.Oraculo`` or anything with the same methods) is synchronous and lives in
``application.bot_data[SERVICE_KEY]``; every call to it goes through ``asyncio.to_thread`` so the event
loop keeps serving other chats while a model answers.

Example::

    from telegram.ext import ApplicationBuilder
    from bot.handlers import SERVICE_KEY, register_handlers
    app = ApplicationBuilder().token(token).build()
    app.bot_data[SERVICE_KEY] = service
    register_handlers(app)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from telegram import Chat, Message, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot import texts
from bot.keyboards import feedback_keyboard, parse_feedback_data
from pipeline.service import MAX_QUESTION_CHARS

log = logging.getLogger(__name__)

SERVICE_KEY = "service"
CHANNEL = "telegram"
# Telegram shows "typing…" for 5 seconds; refresh it while a slow model is still answering.
TYPING_REFRESH_S = 4.5


def _service(context: ContextTypes.DEFAULT_TYPE):
    return context.application.bot_data[SERVICE_KEY]


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: greet the citizen and list the documents the bot knows."""
    documents = await asyncio.to_thread(_service(context).documents)
    user = update.effective_user
    await update.effective_message.reply_html(
        texts.welcome(documents, first_name=user.first_name if user else None))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ajuda and /help: how to ask, with examples."""
    await update.effective_message.reply_html(texts.HELP)


async def documents_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/documentos: the titles of the known documents."""
    documents = await asyncio.to_thread(_service(context).documents)
    await update.effective_message.reply_html(texts.documents_list(documents))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other /command: point to /ajuda."""
    await update.effective_message.reply_text(texts.UNKNOWN_COMMAND)


async def unsupported_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Photos, stickers, voice…: say kindly that only text is understood."""
    await update.effective_message.reply_text(texts.UNSUPPORTED_MESSAGE)


async def question(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message is a question: answer it with its sources and the 👍/👎 keyboard."""
    message, user = update.effective_message, update.effective_user
    text = (message.text or "").strip()
    if not text:
        await message.reply_text(texts.EMPTY_QUESTION)
        return
    if len(text) > MAX_QUESTION_CHARS:
        await message.reply_text(texts.TOO_LONG)
        return
    async with typing_indicator(message.chat):
        result = await asyncio.to_thread(
            _service(context).ask, text, user_ref=user.id, channel=CHANNEL, chat_ref=message.chat_id)
    # An abstention has nothing to rate: a 👍 on "not found" would become a bogus training example.
    keyboard = None if result.answer.abstained else feedback_keyboard(result.interaction_id)
    await message.reply_html(texts.render_answer(result.answer), reply_markup=keyboard)


async def feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A 👍/👎 press: validate, record (or change) the vote, acknowledge, mark the chosen button."""
    query = update.callback_query
    choice = parse_feedback_data(query.data)
    if choice is None:
        log.warning("refused callback data of length %d", len(query.data or ""))
        await query.answer(texts.FEEDBACK_INVALID)
        return
    try:
        result = await asyncio.to_thread(
            _service(context).vote, interaction_id=choice.interaction_id, user_ref=query.from_user.id,
            vote=choice.vote)
    except LookupError:
        await query.answer(texts.FEEDBACK_EXPIRED)
        return
    await query.answer(texts.feedback_ack(vote=result.vote, created=result.created, changed=result.changed))
    message = query.message  # None for inline messages; not accessible (date 0) when too old to edit
    # In a group several people vote on one message: a check mark would show only the last one's choice.
    editable = isinstance(message, Message) and message.is_accessible and message.chat.type == ChatType.PRIVATE
    if editable and (result.created or result.changed):
        with contextlib.suppress(BadRequest):  # e.g. "message is not modified" after a race of two presses
            await message.edit_reply_markup(feedback_keyboard(choice.interaction_id, chosen=result.vote))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception and, when there is someone to tell, ask them to try again."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.FEEDBACK_ERROR)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(texts.ERROR)
    except TelegramError as exc:  # the original error may be Telegram itself being down
        log.warning("could not tell the user about the error: %s", exc)


@contextlib.asynccontextmanager
async def typing_indicator(chat: Chat) -> AsyncIterator[None]:
    """Show "typing…" now and keep it up until the block ends; failures here never stop an answer."""
    await _send_typing(chat)

    async def refresh() -> None:
        while True:
            await asyncio.sleep(TYPING_REFRESH_S)
            await _send_typing(chat)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _send_typing(chat: Chat) -> None:
    try:
        await chat.send_action(ChatAction.TYPING)
    except TelegramError as exc:
        log.debug("chat action failed: %s", exc)


def register_handlers(application: Application) -> None:
    """Wire every handler and the error handler into the application."""
    new_message = filters.UpdateType.MESSAGE  # edited messages are not new questions
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("start", start, filters=new_message))
    application.add_handler(CommandHandler(["ajuda", "help"], help_command, filters=new_message))
    application.add_handler(CommandHandler("documentos", documents_command, filters=new_message))
    application.add_handler(CallbackQueryHandler(feedback))
    application.add_handler(MessageHandler(new_message & filters.TEXT & ~filters.COMMAND, question))
    # Only in private chats: in groups other bots' commands and service messages (joins, pins…) abound.
    application.add_handler(MessageHandler(new_message & private & filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(new_message & private & ~filters.TEXT, unsupported_message))
    application.add_error_handler(on_error)

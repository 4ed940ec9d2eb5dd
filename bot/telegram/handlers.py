"""Thin async Telegram handlers: read the update, call the Oráculo service in a thread, reply in pt-BR.

The service (``pipeline.service.Oraculo`` or anything with the same methods) is synchronous and lives in
``application.bot_data[SERVICE_KEY]``; every call to it goes through ``asyncio.to_thread`` so the event
loop keeps serving other chats while a model answers.

Example::

    from telegram.ext import ApplicationBuilder
    from bot.telegram.handlers import SERVICE_KEY, register_handlers
    app = ApplicationBuilder().token(token).build()
    app.bot_data[SERVICE_KEY] = service
    register_handlers(app)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from typing import AsyncIterator

from telegram import Chat, Message, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot import texts
from bot.telegram.admin import register_admin_handlers
from bot.telegram.keyboards import (FORGET_PATTERN, comment_request, feedback_keyboard, forget_keyboard,
                                    parse_feedback_data)
from bot.telegram.ratelimit import PerUserLimiter
from bot.telegram.streaming import StreamingReply
from bot.telegram.uploads import list_for_admin, register_upload_handlers
from pipeline.service import MAX_QUESTION_CHARS, Service

log = logging.getLogger(__name__)

SERVICE_KEY = "service"
LIMITER_KEY = "question_limiter"
CHANNEL = "telegram"
# What a non-text message is, for a kind reply that names it (checked in this order).
ATTACHMENT_KINDS = ("photo", "sticker", "voice", "audio", "video", "video_note", "document", "location", "contact")
# Telegram shows "typing…" for 5 seconds; refresh it while a slow model is still answering.
TYPING_REFRESH_S = 4.5


def _service(context: ContextTypes.DEFAULT_TYPE) -> Service:
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
    """/documentos: the titles of the known documents (for admins: the files, with types and dates)."""
    if await list_for_admin(update, context):
        return
    documents = await asyncio.to_thread(_service(context).documents)
    await update.effective_message.reply_html(texts.documents_list(documents))


async def about_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/sobre: sources, version and answer mode."""
    service = _service(context)
    documents = await asyncio.to_thread(service.documents)
    await update.effective_message.reply_html(texts.about(
        version=_version(), documents=len(documents), strategy=service.settings.answer_strategy))


def _version() -> str:
    try:
        return importlib.metadata.version("oraculo")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


async def forget_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/esquecer: ask for confirmation before erasing the person's questions and feedback."""
    await update.effective_message.reply_html(texts.FORGET_CONFIRM, reply_markup=forget_keyboard())


async def forget_confirmed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The /esquecer buttons: erase everything of the person who pressed, or cancel."""
    query = update.callback_query
    if query.data == "forget:yes":
        erased = await asyncio.to_thread(_service(context).forget_user, query.from_user.id)
        log.info("LGPD erasure requested: %s", "done" if erased else "nothing stored")
        reply = texts.FORGET_DONE if erased else texts.FORGET_NOTHING
    else:
        reply = texts.FORGET_CANCELLED
    await query.answer()
    message = query.message
    if isinstance(message, Message) and message.is_accessible:
        with contextlib.suppress(BadRequest):  # pressed twice: "message is not modified"
            await message.edit_text(reply)
            return
    await context.bot.send_message(query.from_user.id, reply)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other /command: point to /ajuda."""
    await update.effective_message.reply_text(texts.UNKNOWN_COMMAND)


async def unsupported_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Photos, stickers, voice…: say kindly what arrived and that only text is understood."""
    message = update.effective_message
    kind = next((name for name in ATTACHMENT_KINDS if getattr(message, name, None)), None)
    await message.reply_text(texts.unsupported(kind))


async def edited_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited message is not a new question: say how to ask again."""
    await update.effective_message.reply_text(texts.EDITED_MESSAGE)


def _limiter(context: ContextTypes.DEFAULT_TYPE) -> PerUserLimiter:
    limiter = context.application.bot_data.get(LIMITER_KEY)
    if limiter is None:  # applications built without bot.telegram.app (tests of handlers alone): a lenient default
        limiter = context.application.bot_data[LIMITER_KEY] = PerUserLimiter(max_rate=30, time_period=60)
    return limiter


async def question(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message is a question: answer it with its sources and the 👍/👎 keyboard."""
    message, user = update.effective_message, update.effective_user
    protocol = _comment_protocol(message, context)
    if protocol is not None:
        await comment_reply(message, context, protocol)
        return
    text = (message.text or "").strip()
    if not text:
        await message.reply_text(texts.EMPTY_QUESTION)
        return
    if len(text) > MAX_QUESTION_CHARS:
        await message.reply_text(texts.TOO_LONG)
        return
    limiter = _limiter(context)
    if not await limiter.allow(user.id):
        if limiter.first_refusal(user.id):
            await message.reply_text(texts.RATE_LIMITED)
        return
    if streams_answers(_service(context)):
        await answer_streaming(message, _service(context), text, user_id=user.id)
        return
    async with typing_indicator(message.chat):
        result = await asyncio.to_thread(
            _service(context).ask, text, user_ref=user.id, channel=CHANNEL, chat_ref=message.chat_id)
    await send_answer(message, result)


def streams_answers(service: Service) -> bool:
    """Whether answers are generated (so worth streaming): ANSWER_STRATEGY=generative."""
    return service.settings.answer_strategy == "generative"


async def answer_streaming(message: Message, service, text: str, *, user_id: int) -> None:
    """Answer with a message that grows as the model writes, then becomes the final answer with its buttons."""
    reply = StreamingReply(message)
    async with typing_indicator(message.chat):
        result = await reply.run(lambda on_partial: service.ask(
            text, user_ref=user_id, channel=CHANNEL, chat_ref=message.chat_id, on_partial=on_partial))
    keyboard = answer_keyboard(result)
    parts = texts.split_message(texts.render_answer(result.answer))
    await reply.finish(parts[0], reply_markup=keyboard if len(parts) == 1 else None)
    for number, part in enumerate(parts[1:], start=2):
        await message.reply_html(part, reply_markup=keyboard if number == len(parts) else None)


def answer_keyboard(result):
    """The 👍/👎 buttons for an answer, or for the closest passage an abstention quoted (does it answer?); none
    under a bare "not found": a 👍 there would rate nothing."""
    answer = result.answer
    if answer.abstained and getattr(answer, "closest", None) is None:
        return None
    return feedback_keyboard(result.interaction_id)


async def send_answer(message: Message, result) -> None:
    """Reply with the answer, split into several messages when long; the 👍/👎 buttons go on the last one."""
    keyboard = answer_keyboard(result)
    parts = texts.split_message(texts.render_answer(result.answer))
    for number, part in enumerate(parts, start=1):
        await message.reply_html(part, reply_markup=keyboard if number == len(parts) else None)


def _comment_protocol(message: Message, context: ContextTypes.DEFAULT_TYPE) -> int | None:
    """The interaction id when ``message`` answers the bot's 'what was wrong?' prompt, else None."""
    prompt = message.reply_to_message
    if prompt is None or prompt.from_user is None or prompt.from_user.id != context.bot.id:
        return None
    return texts.comment_protocol(prompt.text)


async def comment_reply(message: Message, context: ContextTypes.DEFAULT_TYPE, interaction_id: int) -> None:
    """Store the reply to a comment prompt with the person's vote on that answer."""
    comment = (message.text or "").strip()
    if not comment:
        await message.reply_text(texts.COMMENT_EMPTY)
        return
    stored = await asyncio.to_thread(_service(context).comment, interaction_id=interaction_id,
                                     user_ref=message.from_user.id, comment=comment)
    await message.reply_text(texts.COMMENT_THANKS if stored else texts.COMMENT_NO_VOTE)


async def feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A 👍/👎 press: validate, record (or change) the vote, acknowledge, mark the chosen button."""
    query = update.callback_query
    choice = parse_feedback_data(query.data)
    if choice is None:
        log.warning("refused callback data of length %d", len(query.data or ""))
        await query.answer(texts.FEEDBACK_INVALID)
        return
    message = query.message  # None for inline messages; not accessible (date 0) when too old to edit
    try:
        result = await asyncio.to_thread(
            _service(context).vote, interaction_id=choice.interaction_id, user_ref=query.from_user.id,
            vote=choice.vote, chat_ref=message.chat.id if message is not None else None)
    except LookupError:
        await query.answer(texts.FEEDBACK_EXPIRED)
        return
    except PermissionError:
        log.warning("refused a vote on interaction %d from another chat (forged callback data)",
                    choice.interaction_id)
        await query.answer(texts.FEEDBACK_FORGED)
        return
    # Stored before anything is sent: a failing acknowledgement below never loses the vote.
    await query.answer(texts.feedback_ack(vote=result.vote, created=result.created, changed=result.changed))
    # In a group several people vote on one message: a check mark would show only the last one's choice.
    private = message is not None and message.chat.type == ChatType.PRIVATE
    editable = private and isinstance(message, Message) and message.is_accessible
    if editable and (result.created or result.changed):
        with contextlib.suppress(BadRequest):  # e.g. "message is not modified" after a race of two presses
            await message.edit_reply_markup(feedback_keyboard(choice.interaction_id, chosen=result.vote))
    if private and result.vote < 0 and (result.created or result.changed):
        await context.bot.send_message(message.chat.id, texts.comment_prompt(choice.interaction_id),
                                       reply_markup=comment_request())


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
    application.add_handler(CommandHandler("sobre", about_command, filters=new_message))
    application.add_handler(CommandHandler("esquecer", forget_command, filters=new_message & private))
    register_admin_handlers(application)  # before the catch-all "unknown command"
    register_upload_handlers(application)  # /adicionar, /remover and admins' files, before "unsupported"
    application.add_handler(CallbackQueryHandler(forget_confirmed, pattern=FORGET_PATTERN))
    application.add_handler(CallbackQueryHandler(feedback))
    application.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & private, edited_message))
    application.add_handler(MessageHandler(new_message & filters.TEXT & ~filters.COMMAND, question))
    # Only in private chats: in groups other bots' commands and service messages (joins, pins…) abound.
    application.add_handler(MessageHandler(new_message & private & filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(new_message & private & ~filters.TEXT, unsupported_message))
    application.add_error_handler(on_error)

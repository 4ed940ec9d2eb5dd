"""Documents through Telegram: admins send a file (or /adicionar for how), list with /documentos, /remover.

A file an admin sends in a private chat is size-checked against ``DOCUMENT_MAX_MB`` before it is downloaded
(``getFile`` + the Bot API file URL), type-checked by its content, read, stored under the documents folder
with a safe name and indexed in the admin job thread (one job at a time, shared with /retrain and /reindex);
the admin gets a summary with pages, chunks, QA pairs and time, then the new index is served. A citizen who
sends a file gets the usual kind reply. The pipeline work is :mod:`pipeline.loop.library`.

Example::

    from bot.telegram.uploads import register_upload_handlers
    register_upload_handlers(application)   # done by bot.telegram.handlers.register_handlers
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from bot import admin_texts, texts
from bot.telegram.admin import _EXECUTOR_KEY, _RUNNING_KEY, _retrain_running, admin_only
from pipeline.documents.ingest.layout import ExtractionError
from pipeline.loop.library import LibraryError, add_document, list_documents, remove_document
from pipeline.service import Service

log = logging.getLogger(__name__)


def _service(context: ContextTypes.DEFAULT_TYPE):
    return context.application.bot_data["service"]


def _max_mb(service: Service) -> float:
    return float(service.settings.document_max_mb)


async def _run_job(update: Update, context: ContextTypes.DEFAULT_TYPE, work, name: str, *, ack: str = "") -> None:
    """Reply ``ack`` (HTML), run ``work()`` in the admin job thread, then send what it returns (HTML); when
    another job runs, say so instead."""
    bot_data = context.application.bot_data
    running: threading.Lock = bot_data.setdefault(_RUNNING_KEY, threading.Lock())
    if not running.acquire(blocking=False):
        await update.effective_message.reply_text(admin_texts.DOCUMENT_BUSY)
        return
    if _retrain_running(bot_data):  # the nightly run rebuilds the index too: one at a time
        running.release()
        await update.effective_message.reply_text(admin_texts.DOCUMENT_BUSY)
        return
    try:
        if ack:
            await update.effective_message.reply_html(ack)
    except BaseException:
        running.release()
        raise
    executor = bot_data.setdefault(_EXECUTOR_KEY, ThreadPoolExecutor(1, thread_name_prefix="oraculo-admin"))
    chat_id = update.effective_chat.id

    async def job() -> None:
        try:
            reply = await asyncio.get_running_loop().run_in_executor(executor, work)
        finally:
            running.release()
        await context.bot.send_message(chat_id, reply, parse_mode="HTML")

    context.application.create_task(job(), update=update, name=name)


def _add(service, data: bytes, file_name: str) -> str:
    """Store and index one document, serve the new index; the admin's reply (HTML). Runs in the job thread."""
    try:
        report = add_document(service.settings, data, file_name)
    except (ExtractionError, LibraryError) as exc:
        log.warning("document %r refused: %s", file_name, exc)
        return admin_texts.document_refused(exc.code, file_name=file_name, max_mb=_max_mb(service))
    except Exception as exc:  # the admin gets the error; the bot keeps running
        log.exception("adding document %r failed", file_name)
        return admin_texts.document_failed(file_name, f"{type(exc).__name__}: {exc}")
    service.answerer.refresh()
    return admin_texts.document_added(report)


def _remove(service, wanted: str) -> str:
    started = time.perf_counter()
    try:
        entry, _, _ = remove_document(service.settings, wanted)
    except LibraryError as exc:
        return admin_texts.document_not_removed(exc.code, wanted=wanted)
    except Exception as exc:  # noqa: BLE001
        log.exception("removing document %r failed", wanted)
        return admin_texts.document_failed(wanted, f"{type(exc).__name__}: {exc}")
    service.answerer.refresh()
    return admin_texts.document_removed(entry, seconds=time.perf_counter() - started)


async def document_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file in a private chat: an admin's is checked, stored and indexed; a citizen gets the kind reply."""
    message, user = update.effective_message, update.effective_user
    service = _service(context)
    if user is None or not service.is_admin(user.id):
        await message.reply_text(texts.unsupported("document"))
        return
    document = message.document
    file_name = document.file_name or "documento"
    max_mb = _max_mb(service)
    if document.file_size is not None and document.file_size > max_mb * 1024 * 1024:
        await message.reply_html(admin_texts.document_refused("too_large", file_name=file_name, max_mb=max_mb))
        return
    try:
        data = bytes(await (await document.get_file()).download_as_bytearray())
    except TelegramError as exc:
        log.warning("download of %r failed: %s", file_name, exc)
        await message.reply_html(admin_texts.document_refused("download", file_name=file_name, max_mb=max_mb))
        return
    log.info("admin sent a document: %r, %d bytes", file_name, len(data))
    await _run_job(update, context, lambda: _add(service, data, file_name), "admin-add-document",
                   ack=admin_texts.document_received(file_name))


@admin_only
async def add_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/adicionar: how to add a document (send the file)."""
    await update.effective_message.reply_text(admin_texts.document_howto(_max_mb(_service(context))))


@admin_only
async def remove_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/remover <nome>: take a document out of the folder and the index."""
    wanted = " ".join(context.args or []).strip()
    if not wanted:
        await update.effective_message.reply_html(admin_texts.REMOVE_USAGE)
        return
    service = _service(context)
    log.info("admin asked to remove document %r", wanted)
    await _run_job(update, context, lambda: _remove(service, wanted), "admin-remove-document")


async def list_for_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """/documentos from an admin: the files with their names, types and dates; False for anyone else."""
    service = _service(context)
    user = update.effective_user
    if user is None or not service.is_admin(user.id):
        return False
    entries = await asyncio.to_thread(list_documents, service.settings)
    for part in texts.split_message(admin_texts.document_files(entries)):
        await update.effective_message.reply_html(part)
    return True


def register_upload_handlers(application: Application) -> None:
    """Wire /adicionar, /remover and files sent in private chats (before the catch-all handlers)."""
    new_message = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler(["adicionar", "add"], add_command, filters=new_message))
    application.add_handler(CommandHandler(["remover", "remove"], remove_command, filters=new_message))
    application.add_handler(MessageHandler(new_message & filters.ChatType.PRIVATE & filters.Document.ALL,
                                           document_received))

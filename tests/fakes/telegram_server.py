"""A fake Telegram Bot API on 127.0.0.1 (aiohttp), for driving the real python-telegram-bot client.

It serves queued updates through getUpdates (long polling honoured), keeps the messages the bot sent so
edits behave like Telegram's (400 "message is not modified", "message to edit not found"), checks
parse_mode=HTML the way Telegram does (unknown tags, bare ``<``/``&``, unbalanced tags → 400 "can't parse
entities"), records every call (uploaded files too), and fails on demand (429 with ``parameters.retry_after``,
500, …) or at random (``failure_rate``, for load tests). After ``setWebhook`` (or with ``webhook_targets``
set: the fake then plays Telegram and a round-robin load balancer) updates are POSTed to the bot instead of
being served by getUpdates, with the secret token header, retried until the bot answers 200. Files people send
(``push_document``) are served as Telegram does: ``getFile`` gives a ``file_path`` (400 "file is too big" above
20 MB) and ``GET /file/bot<token>/<file_path>`` (``base_file_url``) the bytes; each download is recorded.

Example::

    async with FakeTelegramServer() as server:
        app = ApplicationBuilder().token(server.token).base_url(server.base_url).build()
        async with running_application(app):
            server.push_text("/start")
            [call] = await server.wait_for("sendMessage")
            assert "Olá" in call.params["text"]
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import random
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from tests.fakes.telegram_files import FileServing
from tests.fakes.telegram_html import HtmlError, parse_html
from tests.fakes.telegram_http import (  # noqa: F401  (re-exported for tests)
    ApiError, _inline_markup, _read_params, command_entities, running_application)

DEFAULT_TOKEN = "123456:TEST-token_for-the-fake-server"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Oráculo", "username": "oraculo_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
CITIZEN = {"id": 1001, "is_bot": False, "first_name": "Maria", "language_code": "pt-br"}
MAX_MESSAGE_CHARS = 4096
MAX_CALLBACK_ANSWER_CHARS = 200
_CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                 "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}


@dataclass
class ApiCall:
    """One request the client made: the method, its fields as sent (strings, JSON for objects), the reply."""

    method: str
    params: dict[str, str]
    status: int
    response: dict
    files: dict[str, bytes] = field(default_factory=dict)

    def json(self, name: str) -> Any:
        return json.loads(self.params[name])

    @property
    def text(self) -> str | None:
        return self.params.get("text")

    @property
    def result(self) -> Any:
        return self.response.get("result")


@dataclass
class _Failure:
    status: int
    description: str
    parameters: dict | None = None


@dataclass
class FakeChat:
    info: dict  # the Chat object as Telegram sends it
    messages: dict[int, dict] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))


class FakeTelegramServer(FileServing):
    """The fake Bot API. Use as ``async with FakeTelegramServer() as server``; point PTB at ``base_url``."""

    # Methods random failures never hit: the bot's start-up and polling, which tests do not measure.
    _SPARED = {"getme", "getupdates", "setmycommands", "deletewebhook", "setwebhook", "getwebhookinfo", "close",
               "logout"}

    def __init__(self, *, token: str = DEFAULT_TOKEN, failure_rate: float = 0.0, seed: int = 0):
        self.token = token
        self.failure_rate = failure_rate  # share of replies that are 429 (retry_after=1) or 500, half each
        self._random = random.Random(seed)
        self.random_failures: dict[int, int] = defaultdict(int)  # status -> how many were injected
        self.webhook: dict | None = None  # what setWebhook set: url, secret_token
        self.webhook_targets: list[str] = []  # where updates are POSTed (round robin); default: webhook url
        self.deliveries: list[tuple[str, int]] = []  # (url, HTTP status) of every webhook POST
        self.listeners: list[Callable[[ApiCall], None]] = []  # called with every call as it is recorded
        self._target_cycle = itertools.count()
        self._http = None
        self.calls: list[ApiCall] = []
        self.commands: list[dict] = []
        self._updates: deque[dict] = deque()
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._pending_callbacks: set[str] = set()
        self._chats: dict[int, FakeChat] = {}
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._changed: asyncio.Condition | None = None
        self._closing = False
        self._tasks: set[asyncio.Task] = set()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._init_files()

    # --- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> "FakeTelegramServer":
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._closing = True
        await self._notify()  # pending long polls return at once
        for task in list(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> "FakeTelegramServer":
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """The value for ``ApplicationBuilder().base_url(...)`` (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    # --- what tests do ------------------------------------------------------------------------------

    def chat(self, chat_id: int, *, user: dict = CITIZEN, title: str | None = None) -> FakeChat:
        """The chat with this id, created on first use: private when it is the user's id, else a group."""
        if chat_id not in self._chats:
            if chat_id == user["id"]:
                info = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            else:
                info = {"id": chat_id, "type": "supergroup" if chat_id < 0 else "group", "title": title or "Grupo"}
            self._chats[chat_id] = FakeChat(info)
        return self._chats[chat_id]

    def push_update(self, payload: dict) -> dict:
        """Queue a raw update (update_id assigned here) for the next getUpdates."""
        update = {"update_id": next(self._update_ids), **copy.deepcopy(payload)}
        targets = self.webhook_targets or ([self.webhook["url"]] if self.webhook else [])
        if targets:
            work = self._deliver(targets[next(self._target_cycle) % len(targets)], update)
        else:
            self._updates.append(update)
            work = self._notify()
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return update

    async def _deliver(self, url: str, update: dict, *, attempts: int = 50) -> None:
        """POST one update to the bot's webhook as Telegram does, retrying until it answers 200."""
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        headers = {}
        if self.webhook and self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        for _ in range(attempts):
            try:
                async with self._http.post(url, json=update, headers=headers) as response:
                    self.deliveries.append((url, response.status))
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                self.deliveries.append((url, 0))
            await asyncio.sleep(0.2)

    async def post_update(self, url: str, update: dict, *, secret_token: str | None = None) -> int:
        """POST a raw update to a webhook once (no retry); the HTTP status the bot answered."""
        import aiohttp

        headers = {"X-Telegram-Bot-Api-Secret-Token": secret_token} if secret_token else {}
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=update, headers=headers) as response:
                return response.status

    def push_message(self, *, user: dict = CITIZEN, chat_id: int | None = None, **fields) -> dict:
        """Queue a message from a user (text, photo, sticker…); returns the message."""
        chat = self.chat(user["id"] if chat_id is None else chat_id, user=user)
        message = {"message_id": next(chat.ids), "date": int(time.time()), "chat": chat.info,
                   "from": user, **fields}
        chat.messages[message["message_id"]] = message
        self.push_update({"message": message})
        return message

    def push_text(self, text: str, *, user: dict = CITIZEN, chat_id: int | None = None) -> dict:
        """Queue a text message; a leading /command gets its bot_command entity as real clients send."""
        entities = command_entities(text)
        return self.push_message(user=user, chat_id=chat_id, text=text, **({"entities": entities} if entities else {}))

    def push_callback(self, data: str, *, message: dict, user: dict = CITIZEN, inaccessible: bool = False) -> dict:
        """Queue the press of an inline button with ``data`` on the bot's ``message`` (as it is now).

        ``inaccessible``: the message is too old for the bot to see, so Telegram sends only its ids (date 0).
        """
        chat = self._chats.get(message["chat"]["id"])
        message = chat.messages.get(message["message_id"], message) if chat else message
        if inaccessible:
            message = {"chat": message["chat"], "message_id": message["message_id"], "date": 0}
        query_id = str(next(self._callback_ids))
        self._pending_callbacks.add(query_id)
        query = {"id": query_id, "from": user, "chat_instance": f"ci{message['chat']['id']}",
                 "message": message, "data": data}
        self.push_update({"callback_query": query})
        return query

    def fail_next(self, method: str, *, status: int = 500, description: str | None = None,
                  retry_after: int | None = None, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail (429 gets ``parameters.retry_after``)."""
        if status == 429:
            retry_after = 1 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        description = description or {400: "Bad Request", 403: "Forbidden: bot was blocked by the user",
                                       500: "Internal Server Error"}.get(status, "Error")
        for _ in range(times):
            self._failures[method.lower()].append(_Failure(status, description, parameters))

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[ApiCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()
                and (ok is None or (c.status == 200) == ok)]

    async def wait_for(self, method: str, *, count: int = 1, timeout: float = 10.0,
                       where: Callable[[ApiCall], bool] | None = None) -> list[ApiCall]:
        """Wait until ``count`` successful calls of ``method`` (matching ``where``) were made; return them."""

        def matching() -> list[ApiCall]:
            return [c for c in self.calls_to(method, ok=True) if where is None or where(c)]

        async def until_enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)

        try:
            await asyncio.wait_for(until_enough(), timeout)
        except asyncio.TimeoutError:
            seen = [f"{c.method}:{c.status}" for c in self.calls]
            raise AssertionError(f"expected {count} x {method} within {timeout}s; calls so far: {seen}") from None
        return matching()[:count]

    def message(self, chat_id: int, message_id: int) -> dict:
        """The current state of a message in a chat (after edits)."""
        return self._chats[chat_id].messages[message_id]

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    # --- the HTTP side ------------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await _read_params(request)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if self._failures[method.lower()]:
                failure = self._failures[method.lower()].popleft()
                raise ApiError(failure.status, failure.description, failure.parameters)
            if self.failure_rate and method.lower() not in self._SPARED and self._random.random() < self.failure_rate:
                status = self._random.choice((429, 500))
                self.random_failures[status] += 1
                if status == 429:
                    raise ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
                raise ApiError(500, "Internal Server Error")
            handler = getattr(self, f"_api_{method.lower()}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            status, body = 200, {"ok": True, "result": await handler(params, files) if method.lower() in
                                 self._UPLOADS else await handler(params)}
        except ApiError as exc:
            status = exc.status
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
        # A copy: the stored message keeps changing with edits, the record of this reply must not.
        call = ApiCall(method, params, status, copy.deepcopy(body), files)
        self.calls.append(call)
        for listener in self.listeners:
            listener(call)
        await self._notify()
        return web.json_response(body, status=status)

    # --- Bot API methods (lower-case names: Telegram's are case-insensitive) -----------------------

    async def _api_getme(self, params: dict) -> dict:
        return BOT_USER

    async def _api_deletewebhook(self, params: dict) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates") == "true":
            self._updates.clear()
        return True

    async def _api_getwebhookinfo(self, params: dict) -> dict:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    async def _api_getupdates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset", 0))
        while self._updates and self._updates[0]["update_id"] < offset:
            self._updates.popleft()  # confirmed by the client
        timeout = float(params.get("timeout", 0))
        if not self._updates and timeout > 0 and not self._closing:
            with contextlib.suppress(asyncio.TimeoutError):
                async with self._changed:
                    await asyncio.wait_for(self._changed.wait_for(lambda: self._updates or self._closing), timeout)
        return list(self._updates)[: int(params.get("limit", 100))]

    async def _api_sendmessage(self, params: dict) -> dict:
        chat = self._known_chat(params)
        text, entities = self._formatted(params)
        message = {"message_id": next(chat.ids), "date": int(time.time()), "from": BOT_USER,
                   "chat": chat.info, "text": text}
        if entities:
            message["entities"] = entities
        if "reply_markup" in params:
            message["reply_markup"] = _inline_markup(params["reply_markup"])
        if "reply_parameters" in params:
            replied = chat.messages.get(json.loads(params["reply_parameters"])["message_id"])
            if replied is not None:
                message["reply_to_message"] = replied
        chat.messages[message["message_id"]] = message
        return message

    _UPLOADS = {"sendphoto"}

    async def _api_sendphoto(self, params: dict, files: dict[str, bytes]) -> dict:
        chat = self._known_chat(params)
        photo = files.get("photo")
        if photo is None and not params.get("photo"):
            raise ApiError(400, "Bad Request: there is no photo in the request")
        caption = params.get("caption", "")
        if caption:
            caption_params = {"text": caption, "parse_mode": params.get("parse_mode", "")}
            caption, _ = self._formatted(caption_params)
            if len(caption) > 1024:
                raise ApiError(400, "Bad Request: message caption is too long")
        size = len(photo) if photo is not None else 0
        message = {"message_id": next(chat.ids), "date": int(time.time()), "from": BOT_USER, "chat": chat.info,
                   "photo": [{"file_id": f"photo{size}", "file_unique_id": f"u{size}", "width": 800,
                              "height": 400, "file_size": size}]}
        if caption:
            message["caption"] = caption
        chat.messages[message["message_id"]] = message
        return message

    async def _api_setwebhook(self, params: dict) -> bool:
        if not params.get("url", "").startswith(("https://", "http://")):
            raise ApiError(400, "Bad Request: bad webhook: invalid URL")
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
        return True

    async def _api_sendchataction(self, params: dict) -> bool:
        self._known_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _api_answercallbackquery(self, params: dict) -> bool:
        query_id = params.get("callback_query_id", "")
        if query_id not in self._pending_callbacks:  # unknown, or answered already
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(params.get("text", "")) > MAX_CALLBACK_ANSWER_CHARS:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._pending_callbacks.discard(query_id)
        return True

    async def _api_editmessagereplymarkup(self, params: dict) -> dict:
        message = self._message_to_edit(params)
        markup = _inline_markup(params["reply_markup"]) if "reply_markup" in params else None
        if markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    async def _api_editmessagetext(self, params: dict) -> dict:
        message = self._message_to_edit(params)
        text, entities = self._formatted(params)
        markup = _inline_markup(params["reply_markup"]) if "reply_markup" in params else None
        if text == message.get("text") and entities == message.get("entities", []) \
                and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        message.update(text=text, entities=entities, edit_date=int(time.time()))
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        return message

    async def _api_setmycommands(self, params: dict) -> bool:
        commands = json.loads(params.get("commands", "[]"))
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command.get("command", "")) \
                    or not 1 <= len(command.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands = commands
        return True

    async def _api_getmycommands(self, params: dict) -> list[dict]:
        return self.commands

    async def _api_deletemycommands(self, params: dict) -> bool:
        self.commands = []
        return True

    async def _api_close(self, params: dict) -> bool:
        return True

    async def _api_logout(self, params: dict) -> bool:
        return True

    # --- helpers ------------------------------------------------------------------------------------

    def _known_chat(self, params: dict) -> FakeChat:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self._chats[chat_id]

    def _message_to_edit(self, params: dict) -> dict:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._known_chat(params)
        message = chat.messages.get(int(params.get("message_id", 0)))
        if message is None or message.get("from", {}).get("id") != BOT_USER["id"]:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    @staticmethod
    def _formatted(params: dict) -> tuple[str, list[dict]]:
        raw = params.get("text", "")
        if params.get("parse_mode", "").upper() == "HTML":
            try:
                text, entities = parse_html(raw)
            except HtmlError as exc:
                raise ApiError(400, str(exc)) from None
        else:
            text, entities = raw, json.loads(params.get("entities", "[]"))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_MESSAGE_CHARS:
            raise ApiError(400, "Bad Request: message is too long")
        return text, entities

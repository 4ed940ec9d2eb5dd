"""Files people send to the bot, as the fake Bot API serves them: ``getFile`` and the file download endpoint.

Mixed into :class:`tests.fakes.telegram_server.FakeTelegramServer`. ``push_document`` queues a message with a
file; ``getFile`` gives its ``file_path`` (400 "file is too big" above 20 MB, as the public Bot API does) and
``GET /file/bot<token>/<file_path>`` (``base_file_url``) its bytes; every download served is recorded.

Example::

    async with FakeTelegramServer() as server:
        app = ApplicationBuilder().token(server.token).base_url(server.base_url) \\
            .base_file_url(server.base_file_url).build()
        server.push_document(b"%PDF-1.7 ...", file_name="edital.pdf", user=ADMIN)
"""

from __future__ import annotations

import itertools

from aiohttp import web

from tests.fakes.telegram_http import ApiError

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # the public Bot API refuses getFile above this


class FileServing:
    """The file side of the fake Bot API (needs ``token``, ``port`` and ``push_message`` from the server)."""

    def _init_files(self) -> None:
        self.files: dict[str, bytes] = {}  # file_id -> content, for getFile and the download
        self.downloads: list[str] = []  # file_path of every download served
        self._file_ids = itertools.count(1)

    @property
    def base_file_url(self) -> str:
        """The value for ``ApplicationBuilder().base_file_url(...)`` (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def push_document(self, content: bytes, *, file_name: str, user: dict, chat_id: int | None = None,
                      mime_type: str = "application/octet-stream", caption: str | None = None,
                      file_size: int | None = None) -> dict:
        """Queue a message with a file attached (``file_size`` may claim another size, as a client could)."""
        file_id = f"file-{next(self._file_ids)}"
        self.files[file_id] = content
        document = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": file_name,
                    "mime_type": mime_type, "file_size": len(content) if file_size is None else file_size}
        extra = {"caption": caption} if caption else {}
        return self.push_message(user=user, chat_id=chat_id, document=document, **extra)

    async def _api_getfile(self, params: dict) -> dict:
        content = self.files.get(params.get("file_id", ""))
        if content is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(content) > MAX_DOWNLOAD_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        file_id = params["file_id"]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(content),
                "file_path": f"documents/{file_id}"}

    async def _download(self, request: web.Request) -> web.Response:
        """The Bot API file endpoint: the bytes of a file getFile gave a path for."""
        path = request.match_info["file_path"]
        file_id = path.rsplit("/", 1)[-1]
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(path)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

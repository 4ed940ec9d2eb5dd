"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, for the real ``openai`` client.

Replies come from a queue (``reply(content)`` or ``fail(status)``); every request is recorded::

    with FakeOpenAI() as fake:
        fake.reply('{"pairs": []}')
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test")
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self._queue: deque[tuple[int, str]] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def reply(self, content: str) -> None:
        """Queue a 200 chat completion whose message content is ``content``."""
        self._queue.append((200, content))

    def fail(self, status: int, message: str = "boom") -> None:
        self._queue.append((status, json.dumps({"error": {"message": message, "type": "server_error"}})))

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {key.lower(): value for key, value in self.headers.items()}
                fake.requests.append({"path": self.path, "headers": headers, "json": json.loads(body or b"{}")})
                if self.path != "/v1/chat/completions":
                    return self._send(404, json.dumps({"error": {"message": "not found"}}))
                status, content = fake._queue.popleft() if fake._queue else (500, '{"error": {}}')
                if status != 200:
                    return self._send(status, content)
                model = fake.requests[-1]["json"].get("model", "fake")
                return self._send(200, json.dumps({
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }))

            def _send(self, status: int, body: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, for the real ``openai`` client.

Replies come from a queue, one per request, in order; when the queue is empty ``default`` (a function of the
request body returning the message content) answers, or a 500 when there is none. Every request is recorded,
and ``max_in_flight`` tells how many were ever served at the same time::

    with FakeOpenAI() as fake:
        fake.reply('{"pairs": []}')                        # 200 with this message content
        fake.fail(429, headers={"retry-after": "1"})       # an error status, with headers
        fake.reply("{}", delay=3)                          # answer late (client timeouts)
        fake.empty_choices()                               # 200 with "choices": []
        fake.raw("<html>Bad gateway</html>", "text/html")  # 200 with this body as it is (a proxy's page)
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test")

Run alone it serves until Ctrl-C, answering every request with pairs quoted from the prompt (for manual tries):
``python -m tests.fakes.openai_server --port 8999 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Scripted:
    status: int = 200
    content: str | None = ""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    empty_choices: bool = False
    raw_type: str | None = None  # send ``content`` as the whole body with this Content-Type
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 100, "completion_tokens": 20,
                                                 "total_tokens": 120})


def quoting_reply(body: dict) -> str:
    """Pairs whose answers are the first sentences of the quoted chunk: a plausible, well-formed reply."""
    prompt = body.get("messages", [{}])[-1].get("content", "")
    match = re.search(r'"""\n(.*?)\n"""', prompt, flags=re.DOTALL)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", match.group(1) if match else "") if len(s) > 20]
    pairs = [{"question": f"O que o documento diz sobre {' '.join(s.split()[:4]).lower()}?", "answer": s}
             for s in sentences[:3]]
    return json.dumps({"pairs": pairs}, ensure_ascii=False)


class FakeOpenAI:
    def __init__(self, *, default: Callable[[dict], str] | None = None, latency: float = 0.0,
                 port: int = 0) -> None:
        self.requests: list[dict] = []
        self.default = default
        self.latency = latency  # seconds added to every default reply
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._queue: deque[Scripted] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def reply(self, content: str, *, delay: float = 0.0, usage: dict | None = None) -> None:
        """Queue a 200 chat completion whose message content is ``content``."""
        self._queue.append(Scripted(content=content, delay=delay, **({"usage": usage} if usage else {})))

    def fail(self, status: int, message: str = "boom", *, headers: dict | None = None) -> None:
        self._queue.append(Scripted(status=status, headers=headers or {},
                                    content=json.dumps({"error": {"message": message, "type": "server_error"}})))

    def empty_choices(self) -> None:
        self._queue.append(Scripted(empty_choices=True))

    def raw(self, body: str, content_type: str = "text/html") -> None:
        """Queue a 200 whose body is ``body`` as it is, not a chat completion (a proxy's error page)."""
        self._queue.append(Scripted(content=body, raw_type=content_type))

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict) -> Scripted:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.default is not None:
            return Scripted(content=self.default(body), delay=self.latency)
        return Scripted(status=500, content='{"error": {"message": "nothing queued"}}')

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                headers = {key.lower(): value for key, value in self.headers.items()}
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": headers, "json": body,
                                          "at": time.monotonic()})
                    fake._in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
                try:
                    self._serve(body)
                finally:
                    with fake._lock:
                        fake._in_flight -= 1

            def _serve(self, body: dict) -> None:
                if self.path != "/v1/chat/completions":
                    return self._send(404, json.dumps({"error": {"message": "not found"}}))
                scripted = fake._next(body)
                if scripted.delay:
                    time.sleep(scripted.delay)
                if scripted.status != 200:
                    return self._send(scripted.status, scripted.content or "{}", scripted.headers)
                if scripted.raw_type:
                    return self._send(200, scripted.content or "", {"Content-Type": scripted.raw_type})
                choices = [] if scripted.empty_choices else [
                    {"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": scripted.content}}]
                return self._send(200, json.dumps({
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", "fake"),
                    "choices": choices, "usage": scripted.usage}))

            def _send(self, status: int, body: str, headers: dict | None = None) -> None:
                data = body.encode("utf-8")
                try:
                    self.send_response(status)
                    headers = dict(headers or {})
                    self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with FakeOpenAI(default=quoting_reply, latency=args.latency, port=args.port) as fake:
        print(f"serving on {fake.base_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

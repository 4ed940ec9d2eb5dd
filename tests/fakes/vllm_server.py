"""A fake vLLM OpenAI-compatible server on 127.0.0.1 with its runtime LoRA routes, recording every call.

As vLLM started with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` answers them:
``POST /v1/load_lora_adapter {"lora_name", "lora_path"}`` -> 200 with a text body, 400 JSON error when the name is
already loaded, 404 "No adapter found" when the path holds no adapter; ``POST /v1/unload_lora_adapter
{"lora_name"}`` -> 200 text, 404 "cannot be found"; ``GET /v1/models`` lists the base model and the adapters;
``POST /v1/chat/completions`` (plain or streamed) answers "Resposta de <model>" for a known model, 404 otherwise.
Errors use vLLM's ``ErrorResponse`` layout (``{"object": "error", "message", "type", "code"}``).

    with FakeVLLM(base_model="base") as vllm:
        vllm.fail_next("/v1/load_lora_adapter", 400, "LoRA rank 64 is greater than max_lora_rank 16.")
        vllm.runtime_updates = False          # as without VLLM_ALLOW_RUNTIME_LORA_UPDATING: the routes are 404
        vllm.calls, vllm.adapters             # what was asked, what is loaded now
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FakeVLLM:
    def __init__(self, *, base_model: str = "base") -> None:
        self.base_model = base_model
        self.adapters: dict[str, str] = {}
        self.calls: list[dict] = []
        self.runtime_updates = True
        self._failures: dict[str, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def fail_next(self, route: str, status: int, message: str) -> None:
        """The next call to ``route`` answers this error (vLLM's layout)."""
        self._failures.setdefault(route, []).append((status, message))

    def calls_to(self, route: str) -> list[dict]:
        return [c["json"] for c in self.calls if c["path"] == route]

    def __enter__(self) -> "FakeVLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _route(self, path: str, body: dict) -> tuple[int, str | dict, bool]:
        """(status, body, is_text) for the adapter routes."""
        if path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter") and not self.runtime_updates:
            return 404, {"detail": "Not Found"}, False
        if self._failures.get(path):
            status, message = self._failures[path].pop(0)
            return status, _error(message, status), False
        name = body.get("lora_name")
        if path == "/v1/load_lora_adapter":
            if not name or not body.get("lora_path"):
                return 400, _error("Both 'lora_name' and 'lora_path' must be provided.", 400), False
            if name in self.adapters:
                return 400, _error(f"The lora adapter '{name}' has already been loaded.", 400), False
            if not (Path(body["lora_path"]) / "adapter_config.json").is_file():
                return 404, _error(f"No adapter found for {body['lora_path']}", 404, "NotFoundError"), False
            self.adapters[name] = body["lora_path"]
            return 200, f"Success: LoRA adapter '{name}' added successfully.", True
        if name not in self.adapters:
            return 404, _error(f"The lora adapter '{name}' cannot be found.", 404, "NotFoundError"), False
        del self.adapters[name]
        return 200, f"Success: LoRA adapter '{name}' removed successfully.", True

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/v1/models":
                    return self._send(404, {"detail": "Not Found"})
                with fake._lock:
                    data = [{"id": fake.base_model, "object": "model", "root": fake.base_model}] + [
                        {"id": n, "object": "model", "root": p, "parent": fake.base_model}
                        for n, p in fake.adapters.items()]
                self._send(200, {"object": "list", "data": data})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake._lock:
                    fake.calls.append({"path": self.path, "json": body, "at": time.monotonic(),
                                       "authorization": self.headers.get("Authorization")})
                    if self.path != "/v1/chat/completions":
                        status, reply, text = fake._route(self.path, body)
                        return self._send(status, reply, text=text)
                    model = body.get("model")
                    known = model == fake.base_model or model in fake.adapters
                if not known:
                    return self._send(404, _error(f"The model `{model}` does not exist.", 404, "NotFoundError"))
                content = f"Resposta de {model}"
                if body.get("stream"):
                    return self._stream(model, content.split(" "))
                self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                                 "model": model, "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                     "role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 50, "completion_tokens": 3, "total_tokens": 53}})

            def _stream(self, model: str, words: list[str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for i, word in enumerate(words):
                    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                             "choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word},
                                          "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _send(self, status: int, body, *, text: bool = False) -> None:
                data = (body if text else json.dumps(body)).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _error(message: str, status: int, kind: str = "BadRequestError") -> dict:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": status}

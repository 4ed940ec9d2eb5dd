"""A fake AwesomeAPI (``/json/last/USD-BRLT``) on 127.0.0.1, for the real ``requests`` client.

``mode``: ``"normal"`` (a well-formed quote of ``rate``), ``"down"`` (HTTP 503), ``"malformed"`` (not JSON),
``"absurd"`` (a well-formed answer with an impossible rate), ``"future"`` (a plausible rate stamped in the
year 2100). Every request path is recorded::

    with FakeAwesomeAPI(rate=5.71) as fake:
        requests.get(fake.url, timeout=5).json()["USDBRLT"]["ask"]   # '5.71'
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIMESTAMP = 1764000000  # 2025-11-24T16:00:00Z
FUTURE_TIMESTAMP = 4102444800  # 2100-01-01T00:00:00Z


class FakeAwesomeAPI:
    def __init__(self, *, rate: float = 5.71, mode: str = "normal") -> None:
        self.rate, self.mode = rate, mode
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/json/last/USD-BRLT"

    def __enter__(self) -> "FakeAwesomeAPI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _body(self) -> tuple[int, str]:
        if self.mode == "down":
            return 503, "Service Unavailable"
        if self.mode == "malformed":
            return 200, '{"USDBRLT": {"ask": "5.7'  # cut in the middle
        rate = self.rate if self.mode in ("normal", "future") else 98765.0
        stamp = FUTURE_TIMESTAMP if self.mode == "future" else TIMESTAMP
        quote = {"code": "USD", "codein": "BRLT", "name": "Dólar Americano/Real Brasileiro Turismo",
                 "bid": f"{rate - 0.2:.4f}", "ask": f"{rate:.4f}", "timestamp": str(stamp),
                 "create_date": "2025-11-24 13:00:00"}
        return 200, json.dumps({"USDBRLT": quote})

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(self.path)
                status, body = fake._body() if self.path == "/json/last/USD-BRLT" else (404, "not found")
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

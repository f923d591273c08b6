"""A loopback proxy in front of the gateway that notes every call a client made and its answer.

Claude Code decides on its own how many calls it makes (background calls, token counts); the
proxy sees each of them, so a test can say that every one was answered, and find the usage
record of each by its `request-id`. Bodies are streamed through as they come (SSE included).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str  # without the query string
    model: str | None  # the body's `model`, for requests that have one
    status: int
    request_id: str | None
    body: bytes  # the answer (whole, also for streams)


class RecordingProxy:
    """`with RecordingProxy(upstream_url) as proxy:`; `proxy.url`, `proxy.calls`."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RecordingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def do_GET(self) -> None:
                self._forward()

            do_POST = do_HEAD = do_GET

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                sent = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                url = proxy.target + self.path
                received = bytearray()
                with httpx.stream(
                    self.command, url, content=sent, headers=headers, timeout=120
                ) as answer:
                    self.send_response(answer.status_code)
                    for name, value in answer.headers.items():
                        if name.lower() not in HOP_BY_HOP:
                            self.send_header(name, value)
                    self.end_headers()
                    for chunk in answer.iter_raw():
                        received += chunk
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    proxy._note(self.command, self.path, sent, answer, bytes(received))

            def log_message(self, *args) -> None:
                pass

        return Handler

    def _note(self, method: str, path: str, sent: bytes, answer: httpx.Response, got: bytes):
        try:
            model = json.loads(sent).get("model") if sent else None
        except (ValueError, AttributeError):
            model = None
        call = Call(
            method,
            path.split("?")[0],
            model,
            answer.status_code,
            answer.headers.get("request-id"),
            got,
        )
        with self._lock:
            self.calls.append(call)

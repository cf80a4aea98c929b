"""A real webhook receiver on a loopback port: records every request, answers as told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from otelspend.controls.signing import SIGNATURE_HEADER, verify


@dataclass
class Received:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """time.monotonic() when it arrived."""
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        header = self.headers.get(SIGNATURE_HEADER.lower(), "")
        return verify(secret.encode(), self.body, header, now=int(time.time()))


@dataclass
class Receiver:
    """Requests received; ``answer`` decides the status of the next one (default 200)."""

    url: str
    received: list[Received] = field(default_factory=list)
    answer: Callable[[int], int] = lambda _n: 200
    delay: Callable[[int], float] = lambda _n: 0.0
    """Seconds to wait before answering request n (a slow webhook)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, *, delivered_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [r.event for r in self.received if not delivered_only or 200 <= r.answered < 300]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = predicate(self.events())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook: condition not met in {timeout}s; received {self.events()}")
            time.sleep(0.05)


@contextmanager
def webhook_receiver(path: str = "/hook") -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver = state["r"]
            with receiver.lock:
                number = len(receiver.received)
                status = receiver.answer(number)
                pause = receiver.delay(number)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(), status)
                )
            if pause:
                time.sleep(pause)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()

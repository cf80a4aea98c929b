"""A loopback fake provider speaking the OpenAI, Anthropic, Amazon Bedrock and Gemini wire
formats, with a ledger of every HTTP request it answered and what it billed.

Failures are scripted by the scenario, step by step, through a control endpoint:
``POST /_control/step {"run", "step", "fail": [500], "always": null}`` makes the next
requests fail with the listed statuses (then succeed), or every request of the step fail
with ``always``. A request's ``retry_count`` is the number of failed attempts at the same
(API, model, stream) immediately before it in the step: the SDK's retries, whatever the
library (not every client sends a retry header).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.conventions.harness import wire_anthropic, wire_bedrock, wire_google, wire_openai
from tests.conventions.harness.answer import Answer
from tests.conventions.harness.billing import billed, response_model
from tests.conventions.harness.sink import read_body

FRAME_PAUSE_S = 0.004
"""Pause between streamed frames (a stream takes a few milliseconds, as a real one does)."""


@dataclass
class Plan:
    """The scenario's current step and the failures scripted for it."""

    run: str = ""
    library: str = ""
    step: str = ""
    failures: deque[int] = field(default_factory=deque)
    always: int | None = None
    streaks: dict[tuple[str, str, bool], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    api: str
    model: str
    stream: bool
    answer: Callable[[dict[str, Any], Any, str, str], Answer]
    """(request, billed usage, response model, response id) -> the answer."""
    error: Callable[[int], Answer]
    id_prefix: str


_BEDROCK = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream|invoke|invoke-with-response-stream)$")
_GEMINI = re.compile(r"^/v1(?:beta|alpha|)/models/(?P<model>[^:/]+):(?P<op>generateContent|streamGenerateContent)$")


def route(path: str, request: dict[str, Any]) -> Route | None:
    """Which API a request is for, from its path (and its body's model and stream flag)."""
    model = str(request.get("model") or "")
    stream = bool(request.get("stream"))
    trimmed = path[3:] if path.startswith("/v1/") else path
    fixed = _FIXED_PATHS.get(trimmed)
    if fixed is not None:
        return fixed(model, stream)
    if found := _BEDROCK.match(path):
        return _bedrock(unquote(found["model"]), found["op"])
    if found := _GEMINI.match(path):
        return _gemini(found["model"], found["op"] == "streamGenerateContent")
    return None


_FIXED_PATHS: dict[str, Callable[[str, bool], Route]] = {
    "/chat/completions": lambda model, stream: Route(
        "openai.chat", model, stream, wire_openai.chat, wire_openai.error, "chatcmpl-rc"
    ),
    "/responses": lambda model, stream: Route(
        "openai.responses", model, stream, wire_openai.responses, wire_openai.error, "resp_rc"
    ),
    "/embeddings": lambda model, stream: Route(
        "openai.embeddings",
        model,
        False,
        lambda req, bill, m, _id: wire_openai.embeddings(req, bill, m),
        wire_openai.error,
        "",
    ),
    "/messages": lambda model, stream: Route(
        "anthropic.messages", model, stream, wire_anthropic.messages, wire_anthropic.error, "msg_rc"
    ),
}
"""OpenAI and Anthropic paths (after ``/v1``): (model, stream) -> the route."""


def _bedrock(model: str, op: str) -> Route:
    streamed = op.endswith("stream")
    if op.startswith("converse"):
        return Route(
            "aws.converse",
            model,
            streamed,
            lambda req, bill, m, rid: wire_bedrock.converse(req, bill, m, rid, streamed),
            wire_bedrock.error,
            "rc-",
        )
    return Route(
        "aws.invoke",
        model,
        streamed,
        lambda req, bill, m, rid: wire_bedrock.invoke(req, bill, m, rid, streamed),
        wire_bedrock.error,
        "rc-",
    )


def _gemini(model: str, streamed: bool) -> Route:
    return Route(
        "google.generate_content",
        model,
        streamed,
        lambda req, bill, m, rid: wire_google.generate(req, bill, m, rid, streamed),
        wire_google.error,
        "rc",
    )


class FakeProvider:
    """The server, its plan and its ledger. ``start()`` binds 127.0.0.1 on an ephemeral port."""

    def __init__(self) -> None:
        self.plan = Plan()
        self.ledger: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProvider:
        provider = self

        class Handler(_Handler):
            fake = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- control ----------------------------------------------------------------------------

    def set_step(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self.plan = Plan(
                run=str(doc.get("run", self.plan.run)),
                library=str(doc.get("library", self.plan.library)),
                step=str(doc.get("step", "")),
                failures=deque(int(s) for s in doc.get("fail") or ()),
                always=doc.get("always"),
            )

    # -- answering --------------------------------------------------------------------------

    def answer(self, path: str, request: dict[str, Any], headers: Any) -> Answer:
        found = route(path, request)
        if found is None:
            return Answer(404, "application/json", json.dumps({"error": f"no such API: {path}"}).encode())
        with self._lock:
            plan = self.plan
            key = (found.api, found.model, found.stream)
            retry_count = plan.streaks.get(key, 0)
            status = plan.failures.popleft() if plan.failures else plan.always
            self._seq += 1
            seq = self._seq
            plan.streaks[key] = retry_count + 1 if status else 0
        entry: dict[str, Any] = {
            "ts": time.time(),
            "api": found.api,
            "path": path,
            "model": found.model,
            "stream": found.stream,
            "library": plan.library,
            "run": plan.run,
            "step": plan.step,
            "retry_count": retry_count,
            "traceparent": headers.get("traceparent"),
            "baggage": headers.get("baggage"),
            "user_agent": headers.get("user-agent"),
        }
        if status:
            answer = found.error(int(status))
            entry.update(status=answer.status, usage=None, response_model=None, injected_failure=True)
        else:
            bill = billed(found.api, found.model, found.stream, retry_count)
            model = response_model(found.model)
            response_id = f"{found.id_prefix}{seq:08d}" if found.id_prefix else ""
            answer = found.answer(request, bill, model, response_id)
            entry.update(
                status=answer.status,
                response_model=answer.response_model,
                response_id=answer.response_id,
                usage=answer.usage,
                usage_withheld=answer.usage_withheld,
                tool_call=answer.tool_call,
            )
        with self._lock:
            entry["seq"] = seq
            self.ledger.append(entry)
        return answer


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the ledger is the log

    def do_GET(self) -> None:
        if self.path.startswith("/_control/ledger"):
            self._send(Answer(200, "application/json", json.dumps(self.fake.ledger).encode()))
        else:
            self._send(Answer(404, "application/json", b"{}"))

    def do_POST(self) -> None:
        raw = read_body(self)
        path = urlsplit(self.path).path
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            request = {}
        if path == "/_control/step":
            self.fake.set_step(request)
            self._send(Answer(200, "application/json", b"{}"))
            return
        self._send(self.fake.answer(path, request if isinstance(request, dict) else {}, self.headers))

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("content-type", answer.content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.frames is None:
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for data in answer.frames:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            time.sleep(FRAME_PAUSE_S)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

"""Webhook delivery: one thread per sink, signed POSTs, retries with backoff, nothing lost.

Each sink works through its own queue, so a slow or dead webhook delays only itself and
never ingest (the queue lives in memory, the events in the journal). An attempt:

* ``2xx``: delivered (journaled, so a restart does not send it again);
* connection error, timeout, ``408``, ``425``, ``429`` or ``5xx``: retried after a delay
  doubling from ``alerts.retry_initial_seconds`` up to ``alerts.retry_max_seconds``, with
  jitter (a ``Retry-After`` answer is honoured within that bound), until
  ``alerts.give_up_after_hours`` after the alert, then failed;
* any other ``4xx``: the receiver refuses it for good (a bad URL, a signature it rejects):
  failed at once.

Every attempt's state goes to the alert history (``alert_deliveries``), so ``/v1/alerts``
shows a webhook that keeps failing and why. Request headers: ``Content-Type:
application/json``, ``User-Agent: otelspend/<version>``, ``Otelspend-Event-Id``,
``Otelspend-Event-Type`` and, with a secret, ``Otelspend-Signature``
(``otelspend.controls.signing``). The URL is secret (it may carry a token): it is never
logged or returned.
"""

from __future__ import annotations

import heapq
import http.client
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from otelspend import __version__
from otelspend.controls.formats import Format, body
from otelspend.controls.signing import SIGNATURE_HEADER, signature_header
from otelspend.controls.store import DeliveryState
from otelspend.metrics import Metrics

log = logging.getLogger("otelspend")
NS = 10**9
RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Sink:
    """A webhook receiving alert events."""

    name: str
    url: str = field(repr=False)
    secret: bytes | None = field(default=None, repr=False)
    format: Format = "json"


@dataclass(frozen=True)
class Policy:
    """Timeouts and retry bounds (``alerts.*`` settings)."""

    timeout_seconds: float = 5.0
    initial_seconds: float = 1.0
    max_seconds: float = 300.0
    give_up_seconds: float = 24 * 3600.0


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST."""

    outcome: str
    """delivered | retry | failed"""
    http_status: int
    error: str
    retry_after: float | None = None


def classify(status: int | None, error: str, retry_after: float | None = None) -> Attempt:
    """What an answer (or its absence) means for the delivery."""
    if status is None:
        return Attempt("retry", 0, error or "no answer", None)
    if 200 <= status < 300:
        return Attempt("delivered", status, "")
    if status >= 500 or status in RETRYABLE_STATUS:
        return Attempt("retry", status, error or f"HTTP {status}", retry_after)
    return Attempt("failed", status, error or f"HTTP {status}: the receiver refused the event")


def backoff_seconds(attempt: int, policy: Policy, rng: random.Random, retry_after: float | None = None) -> float:
    """Delay before attempt ``attempt + 1``: doubling with jitter (50-100 %), or the server's
    ``Retry-After``, never above ``policy.max_seconds``."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_seconds)
    base = min(policy.initial_seconds * 2.0 ** max(attempt - 1, 0), policy.max_seconds)
    return float(base * (0.5 + rng.random() / 2))


class Connection:
    """A keep-alive connection to one sink, reopened when the server closed it."""

    def __init__(self, sink: Sink, timeout: float) -> None:
        parts = urlsplit(sink.url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self._http: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def _open(self) -> http.client.HTTPConnection:
        if self._http is None:
            if self.https:
                context = ssl.create_default_context()
                self._http = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)
            else:
                self._http = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._http

    def post(self, payload: bytes, headers: Mapping[str, str]) -> tuple[int | None, str, float | None]:
        """POST ``payload``; (status or None, error text, Retry-After seconds). Never raises."""
        for reused in (self._http is not None, False):
            try:
                connection = self._open()
                connection.request("POST", self.target, body=payload, headers=dict(headers))
                response = connection.getresponse()
                text = response.read(2048).decode("utf-8", "replace")
                response.read()  # drain, so the connection can carry the next request
                if response.will_close:
                    self.close()
                retry_after = _retry_after(response.getheader("Retry-After"))
                error = "" if 200 <= response.status < 300 else f"HTTP {response.status}: {text[:200]}".strip()
                return response.status, error, retry_after
            except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
                self.close()
                return None, f"timed out after {self.timeout:g} s", None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused:
                    continue  # the server closed an idle keep-alive connection: one fresh try
                return None, f"{type(exc).__name__}: {exc}"[:300], None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                return None, f"{type(exc).__name__}: {exc}"[:300], None
        return None, "no answer", None  # pragma: no cover - the loop always returns


def post(
    sink: Sink, payload: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int | None, str, float | None]:
    """One POST on a connection of its own; (status or None, error text, Retry-After seconds)."""
    connection = Connection(sink, timeout)
    try:
        return connection.post(payload, headers)
    finally:
        connection.close()


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def headers_for(sink: Sink, event: Mapping[str, Any], payload: bytes, now_s: int) -> dict[str, str]:
    """The request headers of one attempt (signed afresh each time)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"otelspend/{__version__}",
        "Otelspend-Event-Id": str(event["id"]),
        "Otelspend-Event-Type": str(event["type"]),
    }
    if sink.secret is not None:
        headers[SIGNATURE_HEADER] = signature_header(sink.secret, payload, now_s)
    return headers


@dataclass(order=True)
class _Item:
    due_ns: int
    seq: int
    event_id: str = field(compare=False)
    event: dict[str, Any] = field(compare=False, repr=False)
    created_ns: int = field(compare=False)
    attempts: int = field(default=0, compare=False)


class SinkWorker:
    """The delivery thread of one sink."""

    def __init__(
        self,
        sink: Sink,
        policy: Policy,
        metrics: Metrics,
        *,
        on_done: Callable[[str, str, str, int], None],
        on_state: Callable[[DeliveryState], None],
        seed: int | None = None,
    ) -> None:
        self.sink = sink
        self.policy = policy
        self.metrics = metrics
        self.on_done = on_done
        self.on_state = on_state
        self._rng = random.Random(seed)
        self._heap: list[_Item] = []
        self._cond = threading.Condition()
        self._seq = 0
        self._stopping = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._connection = Connection(sink, policy.timeout_seconds)

    def start(self) -> None:
        """Start delivering."""
        self._thread = threading.Thread(target=self._loop, name=f"otelspend-webhook-{self.sink.name}", daemon=True)
        self._thread.start()

    def enqueue(self, event: dict[str, Any], created_ns: int) -> None:
        """Deliver ``event`` (already journaled) as soon as possible."""
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, _Item(0, self._seq, str(event["id"]), event, created_ns))
            self._cond.notify()

    @property
    def pending(self) -> int:
        """Events not yet delivered (waiting or in flight)."""
        return len(self._heap) + self._busy

    def drop_oldest(self, count: int) -> list[str]:
        """Give up on the ``count`` oldest pending events (the outbox is full); their ids."""
        with self._cond:
            self._heap.sort(key=lambda item: item.created_ns)
            dropped, self._heap = self._heap[:count], self._heap[count:]
            heapq.heapify(self._heap)
        return [item.event_id for item in dropped]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the attempt in flight (pending events stay in the journal)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._connection.close()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.time_ns()
                    if self._heap and self._heap[0].due_ns <= now:
                        break
                    wait = (self._heap[0].due_ns - now) / NS if self._heap else None
                    self._cond.wait(min(wait, 1.0) if wait is not None else 1.0)
                if self._stopping:
                    return
                item = heapq.heappop(self._heap)
                self._busy = True
            try:
                self._attempt(item)
            except Exception:  # a bug must not end deliveries: log, count, retry later
                log.exception("webhook %s: delivery attempt failed unexpectedly", self.sink.name)
                self.metrics.inc("otelspend_alert_deliveries_total", sink=self.sink.name, outcome="error")
                self._reschedule(item, Attempt("retry", 0, "internal error"), time.time_ns())
            finally:
                with self._cond:
                    self._busy = False

    def _attempt(self, item: _Item) -> None:
        item.attempts += 1
        payload = body(item.event, self.sink.format)
        now = time.time_ns()
        status, error, retry_after = self._connection.post(
            payload, headers_for(self.sink, item.event, payload, now // NS)
        )
        result = classify(status, error, retry_after)
        done = time.time_ns()
        self.metrics.inc("otelspend_alert_deliveries_total", sink=self.sink.name, outcome=result.outcome)
        if result.outcome == "delivered":
            self._finish(item, "delivered", result, done)
        elif result.outcome == "failed":
            log.warning("webhook %s refused event %s for good: %s", self.sink.name, item.event_id, result.error)
            self._finish(item, "failed", result, done)
        elif done - item.created_ns >= self.policy.give_up_seconds * NS:
            gave_up = Attempt("failed", result.http_status, f"gave up after {item.attempts} attempts: {result.error}")
            self._finish(item, "failed", gave_up, done)
        else:
            self._reschedule(item, result, done)

    def _finish(self, item: _Item, status: str, result: Attempt, now: int) -> None:
        self.on_done(item.event_id, self.sink.name, status, now)
        self.on_state(
            DeliveryState(
                item.event_id, self.sink.name, status, item.attempts, result.http_status, result.error, None,
                now if status == "delivered" else None, now,
            )
        )  # fmt: skip

    def _reschedule(self, item: _Item, result: Attempt, now: int) -> None:
        delay = backoff_seconds(item.attempts, self.policy, self._rng, result.retry_after)
        item.due_ns = now + int(delay * NS)
        self.on_state(
            DeliveryState(
                item.event_id, self.sink.name, "retrying", item.attempts, result.http_status, result.error,
                item.due_ns, None, now,
            )
        )  # fmt: skip
        with self._cond:
            self._seq += 1
            item.seq = self._seq
            heapq.heappush(self._heap, item)

"""Receiver worker processes: the per-span CPU work of ingest spread over cores.

``pipeline.workers: N`` (``auto``: one less than the cores, at most 4; none on one core) starts N worker
processes beside the owner, the process ``otelspend serve`` started. The owner keeps every
piece of state, as in single-process mode: the listeners, the write-ahead log, the ingest
queue, the stitcher and run emission, the store (chDB allows one engine per data path and
process). Workers keep none: a receiver thread of the owner hands the request bytes to an
idle worker (``pipeline/worker_wire.py``), the worker decodes, normalises, prices and builds
the Arrow table (``pipeline/prepare.py``) and answers with Arrow IPC plus the compact spans
the stitcher keeps; the receiver thread then reserves room, appends the request to the
write-ahead log and acknowledges, exactly as it would have after preparing it itself.

So the owner's Python thread time per span is the stitching and run computation, and the
listeners balance load per request, not per connection. Because nothing is acknowledged
before the owner's write-ahead log has it, a worker may die at any moment and lose nothing:

* a worker that dies (or stops answering within ``prepare_timeout``, and is killed) fails
  only the request it had; that request is tried once more on another worker, and if that
  fails too the exporter is answered UNAVAILABLE (it retries);
* the supervisor thread restarts a dead worker (backoff 0.5 s doubling to 10 s while it
  keeps dying young) and counts it (``otelspend_worker_restarts_total``);
* while no worker is ready at all (starting, or all restarting) requests are prepared in the
  receiving thread, as in single-process mode;
* workers end when the owner closes their sockets after its receivers have drained
  (SIGTERM), or when the owner dies (end of stream).

The supervisor loop runs guarded (``pipeline/guard.py``); if it cannot go on, ``problem()``
says why (readiness) and requests are prepared in the owner from then on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from otelspend.metrics import Metrics
from otelspend.pipeline.errors import describe
from otelspend.pipeline.guard import LoopGuard
from otelspend.pipeline.worker_wire import (
    CONFIG,
    FAILED,
    PREPARE,
    PREPARED,
    READY,
    UNDECODABLE,
    PeerGone,
    WorkerConfig,
    decode_prepared,
    encode_request,
    recv_frame,
    send_frame,
)
from otelspend.receiver.decode import UndecodableRequest
from otelspend.receiver.sink import Prepared, Preparer, SinkUnavailable

log = logging.getLogger("otelspend")

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "otelspend.pipeline.worker_main")
RESTART_MIN_SECONDS, RESTART_MAX_SECONDS = 0.5, 10.0
"""Backoff between restarts of a worker that keeps dying young."""
HEALTHY_AFTER_SECONDS = 30.0
"""A worker that lived this long died of something else than its start: restart at once."""
_SUPERVISE_SECONDS = 0.2

STARTING, IDLE, BUSY, DEAD = "starting", "idle", "busy", "dead"


class WorkerLost(Exception):
    """The worker handling a request exited, broke the protocol or did not answer in time."""


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    sock: socket.socket
    started: float
    state: str = STARTING
    lost: str = ""
    """Why the dispatching thread gave up on it ('' while it is fine)."""


@dataclass
class _Slot:
    """One of the ``count`` worker places: the worker in it, and when to (re)start one."""

    worker: _Worker | None = None
    next_start: float = 0.0
    young_deaths: int = 0


class WorkerPool:
    """N receiver worker processes; implements the receiver's ``Preparer``."""

    def __init__(
        self,
        count: int,
        config: Callable[[int], WorkerConfig],
        local: Preparer,
        metrics: Metrics,
        *,
        prepare_timeout: float = 60.0,
        start_timeout: float = 60.0,
        command: Sequence[str] = WORKER_COMMAND,
    ) -> None:
        if count < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.count = count
        self.config = config
        self.local = local
        self.metrics = metrics
        self.prepare_timeout = prepare_timeout
        self.start_timeout = start_timeout
        self.command = tuple(command)
        self.guard = LoopGuard("workers", metrics)
        self._slots = [_Slot() for _ in range(count)]
        self._idle: deque[_Worker] = deque()
        self._ready = 0
        """Workers idle or busy (guarded by ``_cond``)."""
        self._cond = threading.Condition()
        self._stopping = False
        self._fatal: str | None = None
        self._thread: threading.Thread | None = None
        metrics.gauge("otelspend_workers_ready", lambda: self._ready)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the supervisor thread; it starts the workers (they are ready about a second later)."""
        self._thread = threading.Thread(target=self._run, name="otelspend-workers", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop restarting, let running requests finish, close every worker (they exit). Safe twice."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            while any(slot.worker is not None and slot.worker.state == BUSY for slot in self._slots):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            workers = [slot.worker for slot in self._slots if slot.worker is not None]
            for worker in workers:
                self._mark_dead(worker, "shutting down")
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.sock.close()  # end of stream: the worker exits
        for worker in workers:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("receiver worker %d (pid %d) did not exit; killed", worker.index, worker.process.pid)
                worker.process.kill()
                worker.process.wait(10)

    def problem(self) -> str | None:
        """None while the supervisor runs; else why not (requests are then prepared in the owner)."""
        return self._fatal

    @property
    def ready(self) -> int:
        """Workers ready to take a request (idle or busy)."""
        return self._ready

    def pids(self) -> list[int]:
        """Process ids of the workers running now (tests, benchmarks)."""
        with self._cond:
            return [s.worker.process.pid for s in self._slots if s.worker is not None and s.worker.state != DEAD]

    def reload(self) -> None:
        """Forward a reload request (SIGHUP) to every running worker: they re-read the rate card."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    # -- requests (receiver threads) ------------------------------------------------------------

    def prepare(self, payload: bytes, *, json_body: bool, token: str) -> Prepared:
        """Prepare on a worker; here when none is ready. Raises ``UndecodableRequest``, or
        ``SinkUnavailable`` when the request failed on two workers (or none came free in time)."""
        lost = ""
        for attempt in (1, 2):
            try:
                worker = self._acquire(local_ok=attempt == 1)
            except SinkUnavailable as exc:
                raise SinkUnavailable(f"receiver worker failed: {lost}; {exc}" if lost else str(exc)) from None
            if worker is None:
                self.metrics.inc("otelspend_requests_prepared_locally_total")
                return self.local.prepare(payload, json_body=json_body, token=token)
            try:
                return self._call(worker, payload, json_body, token)
            except WorkerLost as exc:
                lost = str(exc)
                worker.lost = lost
                self.metrics.inc("otelspend_worker_lost_requests_total")
            finally:
                self._release(worker)
        raise SinkUnavailable(f"receiver worker failed: {lost}")

    def _acquire(self, *, local_ok: bool) -> _Worker | None:
        """An idle worker (now busy); None when none is ready and the caller may prepare itself."""
        deadline = time.monotonic() + self.prepare_timeout
        with self._cond:
            while True:
                if self._idle:
                    worker = self._idle.popleft()
                    worker.state = BUSY
                    return worker
                if self._ready == 0 and (local_ok or self._stopping or self._fatal is not None):
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SinkUnavailable(f"no receiver worker came free within {self.prepare_timeout:g}s")
                self._cond.wait(remaining)

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if worker.state != BUSY:
                return
            if worker.lost or worker.process.poll() is not None:
                self._mark_dead(worker, worker.lost or "exited")
            else:
                worker.state = IDLE
                self._idle.append(worker)
            self._cond.notify_all()

    def _call(self, worker: _Worker, payload: bytes, json_body: bool, token: str) -> Prepared:
        sock = worker.sock
        try:
            send_frame(sock, PREPARE, *encode_request(payload, json_body=json_body, token=token))
            kind, body = recv_frame(sock)
        except TimeoutError:
            with contextlib.suppress(OSError):
                worker.process.kill()
            raise WorkerLost(
                f"worker {worker.index} did not answer within {self.prepare_timeout:g}s and was killed"
            ) from None
        except (PeerGone, OSError) as exc:
            raise WorkerLost(f"worker {worker.index} exited ({describe(exc, 200)})") from None
        if kind == PREPARED:
            return decode_prepared(body)
        if kind == UNDECODABLE:
            raise UndecodableRequest(bytes(body).decode())
        if kind == FAILED:
            raise RuntimeError(f"receiver worker {worker.index}: {bytes(body).decode()}")
        raise WorkerLost(f"worker {worker.index} answered an unknown frame kind {kind}")

    # -- supervision (the supervisor thread) ----------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._stopping:
                        return
                self.guard.run("supervise", self._supervise)
                stuck = self.guard.stuck()
                if stuck is not None:
                    self._stop_for_good(stuck)
                    return
                self._await_ready(_SUPERVISE_SECONDS)
        except BaseException as exc:  # a bug outside the guarded steps: say why, never silently
            self._stop_for_good(f"workers thread stopped: {describe(exc)}")

    def _stop_for_good(self, reason: str) -> None:
        log.error("%s; receiver requests are prepared in the owner process from now on", reason)
        with self._cond:
            self._fatal = reason
            self._cond.notify_all()

    def _supervise(self) -> None:
        """Reap dead workers, start missing ones, give up on workers that do not start."""
        now = time.monotonic()
        for index, slot in enumerate(self._slots):
            worker = slot.worker
            if worker is not None:
                with self._cond:
                    if worker.state in (STARTING, IDLE) and worker.process.poll() is not None:
                        self._mark_dead(worker, "exited")
                    elif worker.state == STARTING and now - worker.started > self.start_timeout:
                        worker.process.kill()
                        self._mark_dead(worker, f"did not start within {self.start_timeout:g}s")
                    dead = worker.state == DEAD
                if dead:
                    self._reap(slot, worker, now)
            if slot.worker is None and now >= slot.next_start:
                with self._cond:
                    if self._stopping:
                        return
                slot.worker = self._spawn(index)

    def _reap(self, slot: _Slot, worker: _Worker, now: float) -> None:
        with contextlib.suppress(OSError):
            worker.sock.close()
        try:
            code = worker.process.wait(5)
        except subprocess.TimeoutExpired:  # gave up on it while it still runs: end it
            worker.process.kill()
            code = worker.process.wait(10)
        exit_text = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        young = now - worker.started < HEALTHY_AFTER_SECONDS
        slot.young_deaths = slot.young_deaths + 1 if young else 0
        delay = min(RESTART_MIN_SECONDS * 2 ** (slot.young_deaths - 1), RESTART_MAX_SECONDS) if young else 0.0
        slot.next_start = now + delay
        slot.worker = None
        self.metrics.inc("otelspend_worker_restarts_total")
        log.warning(
            "receiver worker %d (pid %d) ended (%s, %s); restarting in %.1fs",
            worker.index,
            worker.process.pid,
            exit_text,
            worker.lost or "while idle",
            delay,
        )

    def _spawn(self, index: int) -> _Worker:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [*self.command, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        parent.settimeout(self.prepare_timeout)
        worker = _Worker(index, process, parent, time.monotonic())
        try:
            send_frame(parent, CONFIG, self.config(index).encode())
        except OSError as exc:
            worker.lost = f"could not be configured ({describe(exc, 200)})"
            with self._cond:
                self._mark_dead(worker, worker.lost)
        return worker

    def _await_ready(self, timeout: float) -> None:
        """Wait up to ``timeout`` for starting workers to say READY (or for a stop)."""
        starting = [s.worker for s in self._slots if s.worker is not None and s.worker.state == STARTING]
        if not starting:
            with self._cond:
                if not self._stopping:
                    self._cond.wait(timeout)
            return
        readable, _, _ = select.select([w.sock for w in starting], [], [], timeout)
        for worker in starting:
            if worker.sock not in readable:
                continue
            try:
                kind, _ = recv_frame(worker.sock)
            except (PeerGone, OSError) as exc:
                worker.lost = f"failed to start ({describe(exc, 200)})"
                kind = -1
            with self._cond:
                if kind == READY:
                    worker.state = IDLE
                    self._ready += 1
                    self._idle.append(worker)
                else:
                    worker.lost = worker.lost or f"answered kind {kind} instead of READY"
                    self._mark_dead(worker, worker.lost)
                self._cond.notify_all()

    def _mark_dead(self, worker: _Worker, reason: str) -> None:
        """(``_cond`` held) Take the worker out of service."""
        if worker.state in (IDLE, BUSY):
            self._ready -= 1
        if worker.state == IDLE:
            with contextlib.suppress(ValueError):
                self._idle.remove(worker)
        worker.state = DEAD
        worker.lost = worker.lost or reason

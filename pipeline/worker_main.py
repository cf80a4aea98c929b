"""A receiver worker process: prepares export requests for the owner, one at a time.

Started by ``pipeline.workers.WorkerPool`` as ``python -m otelspend.pipeline.worker_main FD``
with one end of a Unix socket pair: reads its ``CONFIG``, builds the same normaliser and
rate card as the owner, answers ``READY``, then turns each ``PREPARE`` into ``PREPARED``
(decoded, normalised, priced, Arrow), ``UNDECODABLE`` or ``FAILED``.

It holds no state worth keeping: nothing it has seen is acknowledged until the owner has
written the request to its write-ahead log, so a worker may die at any moment and lose
nothing. It ends when the owner closes the socket (a drain finished, or the owner died);
SIGTERM and SIGINT are ignored so that a signal to the whole process group lets the owner
drain through its workers first. SIGHUP reloads the rate card, as in the owner.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from otelspend.conventions import load_conventions
from otelspend.enrich.genai_prices_card import GenaiPricesCard
from otelspend.enrich.pricing import PriceBook
from otelspend.pipeline.errors import describe
from otelspend.pipeline.memory import skip_pandas_probe, trim, tune_allocator
from otelspend.pipeline.prepare import Preparer
from otelspend.pipeline.worker_wire import (
    CONFIG,
    FAILED,
    PREPARE,
    PREPARED,
    READY,
    UNDECODABLE,
    PeerGone,
    WorkerConfig,
    decode_request,
    encode_prepared,
    recv_frame,
    send_frame,
)
from otelspend.receiver.decode import UndecodableRequest
from otelspend.receiver.normalize import NormalizeOptions, Normalizer
from otelspend.reloadable import Reloadable

log = logging.getLogger("otelspend")
RELOAD_CHECK_SECONDS = 2.0
"""How often the rate card file is checked for changes (the owner checks as often)."""


class Worker:
    """The worker's loop over one socket."""

    def __init__(self, sock: socket.socket, config: WorkerConfig) -> None:
        self.sock = sock
        self.config = config
        path = Path(config.rate_card) if config.rate_card else None
        genai = GenaiPricesCard()
        self.pricing: Reloadable[PriceBook] = Reloadable(
            "rate card", path, lambda card: PriceBook.from_file(card, genai)
        )
        normalizer = Normalizer(
            load_conventions(),
            NormalizeOptions(
                keep_content=config.keep_content,
                max_value_chars=config.max_value_chars,
                max_attributes=config.max_attributes,
            ),
        )
        self.preparer = Preparer(normalizer, lambda: self.pricing.current, node=config.node)
        self._checked = time.monotonic()

    def serve(self) -> None:
        """Answer requests until the owner closes the socket."""
        send_frame(self.sock, READY)
        while True:
            try:
                kind, body = recv_frame(self.sock)
            except PeerGone:
                return
            if kind != PREPARE:
                raise RuntimeError(f"unexpected frame kind {kind} from the owner")
            self._housekeeping()
            payload, json_body, token = decode_request(body)
            try:
                prepared = self.preparer.prepare(payload, json_body=json_body, token=token)
            except UndecodableRequest as exc:
                send_frame(self.sock, UNDECODABLE, str(exc).encode())
            except Exception as exc:  # a bug: the owner answers as its own receiver would
                log.exception("worker %d: preparing a request failed", self.config.index)
                send_frame(self.sock, FAILED, describe(exc).encode())
            else:
                send_frame(self.sock, PREPARED, *encode_prepared(prepared))

    def _housekeeping(self) -> None:
        """Every few seconds: pick up a rate card edit, give free C heap back to the system."""
        now = time.monotonic()
        if now - self._checked >= RELOAD_CHECK_SECONDS:
            self._checked = now
            self.pricing.check()
            trim()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m otelspend.pipeline.worker_main FD``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m otelspend.pipeline.worker_main FD (started by otelspend serve)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune_allocator()
    skip_pandas_probe()
    sock = socket.socket(fileno=int(args[0]))
    try:
        kind, body = recv_frame(sock)
    except PeerGone:
        return 0
    if kind != CONFIG:
        print(f"otelspend worker: expected a CONFIG frame, got kind {kind}", file=sys.stderr)
        return 2
    config = WorkerConfig.decode(body)
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s[worker {config.index}]: %(message)s",
    )
    worker = Worker(sock, config)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: worker.pricing.request())
    _tune_garbage_collector()
    with contextlib.suppress(PeerGone, BrokenPipeError, ConnectionResetError):
        worker.serve()  # ends when the owner goes; nothing here was acknowledged
    return 0


def _tune_garbage_collector() -> None:
    """Requests allocate rows and tuples without cycles: collect rarely, never the start-up data."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


if __name__ == "__main__":
    raise SystemExit(main())

"""A receiver worker that misbehaves on purpose, for the pool's supervision tests.

    python tests/resilience/fake_worker.py BEHAVIOUR FD

``silent``: never says READY. ``hang``: says READY, then never answers a request.
``crash-once:DIR``: a real worker, except that the first request any of them gets (the one
that creates ``DIR/crashed``) kills it. It speaks the real wire
(``otelspend.pipeline.worker_wire``), so the pool cannot tell it from a real worker.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from otelspend.pipeline.worker_main import Worker
from otelspend.pipeline.worker_wire import READY, WorkerConfig, recv_frame, send_frame


def main() -> int:
    behaviour, fd = sys.argv[1], int(sys.argv[2])
    sock = socket.socket(fileno=fd)
    _, config = recv_frame(sock)
    if behaviour == "silent":
        time.sleep(3600)
    elif behaviour == "hang":
        send_frame(sock, READY)
        recv_frame(sock)
        time.sleep(3600)
    elif behaviour.startswith("crash-once:"):
        marker = Path(behaviour.split(":", 1)[1]) / "crashed"
        worker = Worker(sock, WorkerConfig.decode(config))
        prepare = worker.preparer.prepare

        def crash_once(payload: bytes, **kwargs: Any) -> Any:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return prepare(payload, **kwargs)
            os._exit(3)

        worker.preparer.prepare = crash_once  # type: ignore[method-assign]
        worker.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

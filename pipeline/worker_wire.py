"""The wire between the owner process and a receiver worker: frames over a Unix socket pair.

A frame is a 9-byte header (kind, body length) and a body. The owner sends a worker its
``CONFIG`` once, the worker answers ``READY``; then each ``PREPARE`` (one export request)
gets exactly one answer: ``PREPARED``, ``UNDECODABLE`` (the body is no OTLP request) or
``FAILED`` (an unexpected error, described). One request at a time per worker.

Bodies are ``marshal`` (both ends run the same interpreter; the peer is our own child)
and Arrow IPC: a prepared batch crosses as the Arrow stream of its span table, read back
without a copy, plus its compact spans, so the owner builds no Python object per span
except the compact tuples the stitcher keeps.
"""

from __future__ import annotations

import marshal
import socket
import struct
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from otelspend.pipeline.prepare import PreparedBatch
from otelspend.receiver.sink import Prepared

_FRAME = struct.Struct("<BQ")
_REQUEST = struct.Struct("<I")
_RESULT = struct.Struct("<IQ")

CONFIG, READY, PREPARE, PREPARED, UNDECODABLE, FAILED = 1, 2, 3, 4, 5, 6
MAX_FRAME_BYTES = 2 << 30
"""A frame longer than this is a broken peer, not data (requests are bounded far below)."""


class PeerGone(EOFError):
    """The other end closed the socket (exited, or was killed) mid-frame or between frames."""


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to prepare requests exactly as the owner would."""

    index: int
    node: str
    rate_card: str | None
    keep_content: bool
    max_value_chars: int
    max_attributes: int
    log_level: str

    def encode(self) -> bytes:
        """The ``CONFIG`` frame's body."""
        return marshal.dumps(
            (
                self.index,
                self.node,
                self.rate_card,
                self.keep_content,
                self.max_value_chars,
                self.max_attributes,
                self.log_level,
            )
        )

    @classmethod
    def decode(cls, body: bytes | memoryview) -> WorkerConfig:
        """A ``CONFIG`` frame's body -> the config."""
        return cls(*marshal.loads(body))


def send_frame(sock: socket.socket, kind: int, *parts: bytes | memoryview) -> None:
    """Write one frame (raises ``OSError`` when the peer is gone)."""
    length = sum(len(part) for part in parts)
    sock.sendall(b"".join((_FRAME.pack(kind, length), *parts)))


def recv_frame(sock: socket.socket) -> tuple[int, memoryview]:
    """Read one frame: (kind, body). Raises ``PeerGone`` at end of stream, ``TimeoutError``
    when the socket has a timeout and it passes."""
    kind, length = _FRAME.unpack(_recv_exactly(sock, _FRAME.size))
    if length > MAX_FRAME_BYTES:
        raise PeerGone(f"frame of {length} bytes: the peer is broken")
    return kind, memoryview(_recv_exactly(sock, length))


def _recv_exactly(sock: socket.socket, length: int) -> bytearray:
    buffer = bytearray(length)
    view = memoryview(buffer)
    got = 0
    while got < length:
        received = sock.recv_into(view[got:], length - got)
        if received == 0:
            raise PeerGone("the peer closed the connection")
        got += received
    return buffer


# -- requests ----------------------------------------------------------------------------------


def encode_request(payload: bytes, *, json_body: bool, token: str) -> tuple[bytes, bytes]:
    """The body parts of a ``PREPARE`` frame (the payload is sent as it is, not copied into a header)."""
    meta = marshal.dumps((json_body, token))
    return _REQUEST.pack(len(meta)) + meta, payload


def decode_request(body: memoryview) -> tuple[bytes, bool, str]:
    """(payload, json_body, token) of a ``PREPARE`` body."""
    (meta_length,) = _REQUEST.unpack_from(body)
    start = _REQUEST.size
    json_body, token = marshal.loads(body[start : start + meta_length])
    return bytes(body[start + meta_length :]), json_body, token


# -- results -----------------------------------------------------------------------------------


def encode_prepared(prepared: Prepared) -> tuple[bytes | memoryview, ...]:
    """The body parts of a ``PREPARED`` frame."""
    batch: PreparedBatch | None = prepared.batch
    arrow: bytes | memoryview = b""
    lite = b""
    batch_meta: tuple[Any, ...] | None = None
    if batch is not None:
        batch_meta = (batch.count, batch.ingested_ns, batch.failure, batch.resources, batch.cpu_seconds)
        if batch.spans is not None:
            arrow = _arrow_stream(batch.spans)
            lite = batch.lite if isinstance(batch.lite, bytes) else marshal.dumps(batch.lite)
    meta = marshal.dumps((prepared.accepted, prepared.rejected, prepared.message, batch_meta))
    return _RESULT.pack(len(meta), len(arrow)), meta, arrow, lite


def decode_prepared(body: memoryview) -> Prepared:
    """A ``PREPARED`` body -> the ``Prepared`` the worker computed (the Arrow table reads the
    frame's buffer in place)."""
    meta_length, arrow_length = _RESULT.unpack_from(body)
    start = _RESULT.size
    accepted, rejected, message, batch_meta = marshal.loads(body[start : start + meta_length])
    start += meta_length
    batch = None
    if batch_meta is not None:
        count, ingested_ns, failure, resources, cpu_seconds = batch_meta
        spans = None
        lite: list[tuple[Any, ...]] | bytes = []
        if arrow_length:
            spans = pa.ipc.open_stream(pa.py_buffer(body[start : start + arrow_length])).read_all()
            lite = bytes(body[start + arrow_length :])  # unpacked by the pipeline thread, when it stitches
        batch = PreparedBatch(count, spans, lite, resources, ingested_ns, failure, cpu_seconds)
    return Prepared(accepted, rejected, message, batch)


def _arrow_stream(table: pa.Table) -> memoryview:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return memoryview(sink.getvalue())

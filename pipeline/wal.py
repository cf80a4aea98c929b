"""Write-ahead log: an export is acknowledged only after its bytes are here.

Each record holds one accepted export request exactly as received (protobuf or OTLP/JSON,
decompressed) plus the ingest token name, so replay runs the same decode and normalise
path as live traffic. Records carry a sequence number and a CRC; a torn tail left by a
crash mid-write is detected and cut off (that request was never acknowledged).

Concurrency: appends serialise on a lock only for the ``write``; ``fsync`` is a group
commit (one fsync covers every append written before it started), so N concurrent
exporters pay about one fsync, not N.

The store writer calls ``checkpoint(seq)`` once everything up to ``seq`` is stored in
ClickHouse (or, refused for good, in the quarantine); whole segments below the checkpoint
are deleted. ``pending_bytes`` is exact: each record's size leaves it when a checkpoint
covers the record, whoever called.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("otelspend")
_HEADER = struct.Struct("<IIQBH")  # body length, crc32(body), seq, format, token length
_SEGMENT_PREFIX = "wal-"
_SEGMENT_SUFFIX = ".log"
_CHECKPOINT = "checkpoint"

FORMAT_PROTOBUF = 0
FORMAT_JSON = 1


@dataclass(frozen=True)
class WalRecord:
    """One logged request: its sequence, format (protobuf or JSON), ingest token name and bytes."""

    seq: int
    format: int
    token: str
    payload: bytes


class WalCorrupt(RuntimeError):
    """The log cannot be used: it is closed, or its checkpoint file does not hold a sequence number."""

    pass


class WriteAheadLog:
    """Accepted requests, durable before they are acknowledged: segment files and a checkpoint
    under ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path, *, fsync: bool = True, segment_bytes: int = 64 << 20) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        self._segment_size = 0
        self._next_seq = 1
        self._written = 0  # monotonically increasing byte counter across segments
        self._synced = 0
        self._checkpoint = 0
        self._segments: list[tuple[int, Path]] = []  # (first seq, path), oldest first
        self.pending_bytes = 0
        """Bytes appended but not yet checkpointed (what a restart would replay)."""
        self.failing: str | None = None
        """Why the last checkpoint failed (None once one succeeds): a readiness problem."""
        self._sizes: deque[tuple[int, int]] = deque()  # (seq, payload bytes) not yet checkpointed
        self._stored: set[int] = set()  # seqs above the checkpoint already stored downstream

    # -- lifecycle ----------------------------------------------------------------------

    def open(self) -> list[WalRecord]:
        """Open the log and return the records a crash left unstored (seq > checkpoint)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._checkpoint = self._read_checkpoint()
        pending: list[WalRecord] = []
        last_seq = self._checkpoint
        for first_seq, path in self._list_segments():
            self._segments.append((first_seq, path))
            for record in self._read_segment(path):
                last_seq = max(last_seq, record.seq)
                if record.seq > self._checkpoint:
                    pending.append(record)
                    self.pending_bytes += len(record.payload)
                    self._sizes.append((record.seq, len(record.payload)))
        self._next_seq = last_seq + 1
        self._roll()
        return pending

    def close(self) -> None:
        """Sync and close the current segment."""
        with self._lock:
            if self._fd is not None:
                if self.fsync:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    # -- appends ------------------------------------------------------------------------

    def append(self, payload: bytes, *, format: int = FORMAT_PROTOBUF, token: str = "") -> int:
        """Write one request; returns its sequence number once it is durable."""
        token_bytes = token.encode()
        body = token_bytes + payload
        with self._lock:
            if self._fd is None:
                raise WalCorrupt("write-ahead log is closed")
            seq = self._next_seq
            self._next_seq += 1
            header = _HEADER.pack(len(body), zlib.crc32(body), seq, format, len(token_bytes))
            record = header + body
            os.write(self._fd, record)
            self._segment_size += len(record)
            self._written += len(record)
            self.pending_bytes += len(payload)
            self._sizes.append((seq, len(payload)))
            mark = self._written
            if self._segment_size >= self.segment_bytes:
                self._roll()
        if self.fsync:
            self._sync_to(mark)
        return seq

    def _sync_to(self, mark: int) -> None:
        with self._sync_lock:
            if self._synced >= mark:
                return
            with self._lock:
                fd, target = self._fd, self._written
            if fd is not None:
                os.fsync(fd)
            self._synced = target

    def _roll(self) -> None:
        """Start a new segment (caller holds the lock or is single-threaded)."""
        if self._fd is not None:
            if self.fsync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._synced = self._written
        path = self.directory / f"{_SEGMENT_PREFIX}{self._next_seq:020d}{_SEGMENT_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment_size = 0
        self._segments.append((self._next_seq, path))
        if self.fsync:
            _fsync_dir(self.directory)

    # -- checkpoints --------------------------------------------------------------------

    def complete(self, seqs: Iterable[int]) -> int:
        """Mark these requests stored downstream (or quarantined); return the highest seq up
        to which every appended request is, i.e. what may be checkpointed.

        Receivers append concurrently, so requests can reach the pipeline out of sequence
        order: a batch holding seq 6 may be stored while seq 5 is still on its way. A
        checkpoint at 6 would then drop an acknowledged request from replay; only the
        prefix in which every request is stored is safe.
        """
        with self._lock:
            self._stored.update(seq for seq in seqs if seq > self._checkpoint)
            safe = self._checkpoint
            for seq, _ in self._sizes:
                if seq not in self._stored:
                    break
                safe = seq
            return safe

    def checkpoint(self, seq: int) -> None:
        """Everything up to ``seq`` is stored downstream (or quarantined); drop what no replay
        can need.

        Called by the store writer thread only. An ``OSError`` (disk full, I/O error) leaves
        the previous checkpoint in force, on disk and here (the next call covers this one:
        a checkpoint is cumulative), sets ``failing`` until a checkpoint succeeds, and is
        raised to the caller.
        """
        if seq <= self._checkpoint:
            return
        try:
            tmp = self.directory / (_CHECKPOINT + ".tmp")
            tmp.write_text(str(seq))
            if self.fsync:
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
            os.replace(tmp, self.directory / _CHECKPOINT)
        except OSError as exc:
            self.failing = f"{type(exc).__name__}: {exc}"[:300]
            raise
        self.failing = None
        self._checkpoint = seq
        with self._lock:
            while self._sizes and self._sizes[0][0] <= seq:
                done, size = self._sizes.popleft()
                self.pending_bytes -= size
                self._stored.discard(done)
            # A segment is obsolete when the next one starts at or below checkpoint + 1.
            while len(self._segments) > 1 and self._segments[1][0] <= seq + 1:
                _, path = self._segments.pop(0)
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:  # left on disk: a replay skips records at or below the checkpoint
                    log.warning("cannot delete write-ahead log segment %s: %s", path, exc)

    @property
    def checkpointed(self) -> int:
        """The highest sequence known stored (records up to it are never replayed)."""
        return self._checkpoint

    # -- reading --------------------------------------------------------------------------

    def _read_checkpoint(self) -> int:
        try:
            return int((self.directory / _CHECKPOINT).read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise WalCorrupt(f"{self.directory / _CHECKPOINT}: not a sequence number") from exc

    def _list_segments(self) -> list[tuple[int, Path]]:
        segments = []
        for path in self.directory.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}"):
            number = path.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)]
            if number.isdigit():
                segments.append((int(number), path))
        return sorted(segments)

    @staticmethod
    def _read_segment(path: Path) -> Iterator[WalRecord]:
        data = path.read_bytes()
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, crc, seq, fmt, token_len = _HEADER.unpack_from(data, pos)
            start = pos + _HEADER.size
            body = data[start : start + length]
            if len(body) < length or zlib.crc32(body) != crc or token_len > length:
                break  # torn tail: written during a crash, never acknowledged
            yield WalRecord(seq, fmt, body[:token_len].decode(), body[token_len:])
            pos = start + length
        if pos < len(data):
            # Cut the torn tail so a later segment never follows garbage.
            with open(path, "r+b") as handle:
                handle.truncate(pos)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

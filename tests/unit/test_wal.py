from __future__ import annotations

import threading

from otelspend.pipeline.wal import FORMAT_JSON, FORMAT_PROTOBUF, WriteAheadLog


def test_records_survive_reopen_until_checkpointed(tmp_path):
    wal = WriteAheadLog(tmp_path, fsync=True, segment_bytes=1 << 20)
    assert wal.open() == []
    first = wal.append(b"one", token="acme")
    second = wal.append(b"{}", format=FORMAT_JSON)
    wal.close()

    reopened = WriteAheadLog(tmp_path)
    pending = reopened.open()
    assert [(r.seq, r.format, r.token, r.payload) for r in pending] == [
        (first, FORMAT_PROTOBUF, "acme", b"one"),
        (second, FORMAT_JSON, "", b"{}"),
    ]
    reopened.checkpoint(first)
    third = reopened.append(b"three")
    assert third == second + 1
    reopened.close()

    again = WriteAheadLog(tmp_path)
    assert [r.payload for r in again.open()] == [b"{}", b"three"]


def test_torn_tail_is_cut_and_never_replayed(tmp_path):
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.open()
    wal.append(b"complete")
    wal.close()
    segment = sorted(tmp_path.glob("wal-*.log"))[0]
    with open(segment, "ab") as handle:
        handle.write(b"\x40\x00\x00\x00garbage-of-a-crash")  # a header promising 64 bytes, then a crash
    reopened = WriteAheadLog(tmp_path)
    assert [r.payload for r in reopened.open()] == [b"complete"]
    assert segment.read_bytes().endswith(b"complete")


def test_segments_roll_and_are_deleted_below_the_checkpoint(tmp_path):
    wal = WriteAheadLog(tmp_path, fsync=False, segment_bytes=1 << 20)
    wal.segment_bytes = 64  # roll after every record
    wal.open()
    seqs = [wal.append(b"x" * 100) for _ in range(5)]
    assert len(list(tmp_path.glob("wal-*.log"))) >= 5
    wal.checkpoint(seqs[3])
    remaining = WriteAheadLog(tmp_path)
    assert [r.seq for r in remaining.open()] == [seqs[4]]


def test_concurrent_appends_get_unique_sequence_numbers(tmp_path):
    wal = WriteAheadLog(tmp_path, fsync=True)
    wal.open()
    got: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(50):
            seq = wal.append(b"payload")
            with lock:
                got.append(seq)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wal.close()
    assert sorted(got) == list(range(1, 201))
    assert len(WriteAheadLog(tmp_path).open()) == 200


def test_checkpoint_only_covers_requests_all_stored_before_it(tmp_path):
    # Receivers append concurrently: seq 2 and 3 can be stored before seq 1 reaches the
    # pipeline. Checkpointing at 3 then would drop an acknowledged request from replay.
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.open()
    first, second, third = (wal.append(p) for p in (b"a", b"bb", b"ccc"))
    assert wal.complete([second, third]) == 0
    assert wal.complete([first]) == third
    wal.checkpoint(third)
    assert wal.pending_bytes == 0
    fourth = wal.append(b"dddd")
    assert wal.complete([fourth]) == fourth
    wal.close()
    reopened = WriteAheadLog(tmp_path, fsync=False)
    assert [r.seq for r in reopened.open()] == [fourth]  # never checkpointed: replayed
    assert reopened.complete([fourth]) == fourth

"""The owner <-> worker wire: frames over a socket pair, requests and prepared batches round-trip."""

from __future__ import annotations

import socket
import threading

import pytest

from bench.traces import generate
from otelspend.conventions import load_conventions
from otelspend.enrich.pricing import PriceBook
from otelspend.pipeline.prepare import PreparedBatch, Preparer, compact_spans
from otelspend.pipeline.worker_wire import (
    PREPARE,
    PREPARED,
    PeerGone,
    WorkerConfig,
    decode_prepared,
    decode_request,
    encode_prepared,
    encode_request,
    recv_frame,
    send_frame,
)
from otelspend.receiver.normalize import Normalizer
from otelspend.receiver.sink import Prepared


def test_frames_arrive_whole_in_order_and_end_of_stream_is_peer_gone() -> None:
    left, right = socket.socketpair()
    big = bytes(range(256)) * 8_000  # larger than a socket buffer: sent while the other end reads
    sender = threading.Thread(target=lambda: [send_frame(left, PREPARE, b"a", big), send_frame(left, PREPARED)])
    sender.start()
    assert recv_frame(right) == (PREPARE, memoryview(b"a" + big))
    kind, body = recv_frame(right)
    assert (kind, bytes(body)) == (PREPARED, b"")
    sender.join()
    left.close()
    with pytest.raises(PeerGone):
        recv_frame(right)
    right.close()


def test_a_frame_cut_by_a_dying_peer_is_peer_gone() -> None:
    left, right = socket.socketpair()
    left.sendall(b"\x03\x10\x00\x00\x00\x00\x00\x00\x00abc")  # promises 16 bytes, sends 3
    left.close()
    with pytest.raises(PeerGone):
        recv_frame(right)
    right.close()


@pytest.mark.parametrize(
    ("payload", "json_body", "token"),
    [
        pytest.param(b"\x0a\x00", False, "", id="protobuf"),
        pytest.param(b'{"resourceSpans": []}', True, "team-a", id="json-with-token"),
    ],
)
def test_requests_round_trip(payload: bytes, json_body: bool, token: str) -> None:
    head, body = encode_request(payload, json_body=json_body, token=token)
    assert decode_request(memoryview(head + body)) == (payload, json_body, token)


def test_a_prepared_batch_round_trips_with_its_arrow_table_and_compact_spans() -> None:
    payload = generate(seed=2, spans=200, batch_spans=200).requests[0].payload
    book = PriceBook.from_file(None)
    local = Preparer(Normalizer(load_conventions()), lambda: book, node="n").prepare(
        payload, json_body=False, token="t"
    )
    received = decode_prepared(memoryview(b"".join(encode_prepared(local))))
    sent: PreparedBatch = local.batch
    got: PreparedBatch = received.batch
    assert (received.accepted, received.rejected, received.message) == (local.accepted, 0, "")
    assert got.spans is not None and sent.spans is not None and got.spans.equals(sent.spans)
    assert isinstance(got.lite, bytes), "kept compact until the pipeline stitches it"
    assert compact_spans(got) == compact_spans(sent)
    assert (got.count, got.resources, got.ingested_ns, got.failure) == (
        sent.count,
        sent.resources,
        sent.ingested_ns,
        None,
    )
    assert got.cpu_seconds == sent.cpu_seconds


@pytest.mark.parametrize(
    "prepared",
    [
        pytest.param(Prepared(0, 3, "rejected 3 span(s): ...", None), id="nothing-accepted"),
        pytest.param(
            Prepared(5, 0, "", PreparedBatch(5, None, [], {7: ("svc", [("k", "v")])}, 42, "RuntimeError: bug")),
            id="preparing-failed",
        ),
    ],
)
def test_results_without_spans_round_trip(prepared: Prepared) -> None:
    assert decode_prepared(memoryview(b"".join(encode_prepared(prepared)))) == prepared


def test_the_worker_config_round_trips() -> None:
    config = WorkerConfig(3, "node", "/etc/card.yaml", True, 4096, 256, "warning")
    assert WorkerConfig.decode(config.encode()) == config

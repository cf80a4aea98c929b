"""Fuzz target for the OTLP decoders and the normaliser.

    python -m bench.fuzz_decode                    # atheris if installed, else hypothesis
    python -m bench.fuzz_decode -atheris_runs=100000
    python -m bench.fuzz_decode --examples 20000   # hypothesis: random bytes + mutated real requests

``test_one_input`` feeds one input to ``decode_protobuf`` and ``decode_json`` and, when it
decodes, to ``Normalizer.normalize``. The contract it checks: a request is undecodable as
a whole (``UndecodableRequest``, with a message) or every decoded span is either a row or
a rejection with a reason; anything else raised is a bug. Under atheris (coverage-guided,
``pip install atheris``) the seeds are real generated requests; without it, hypothesis
draws random bytes and truncations / bit flips / splices of those seeds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from otelspend.conventions import load_conventions
from otelspend.receiver.decode import Decoded, UndecodableRequest, decode_json, decode_protobuf
from otelspend.receiver.normalize import NormalizeOptions, Normalizer

_NORMALIZER = Normalizer(load_conventions(), NormalizeOptions(max_value_chars=256, max_attributes=64))


def test_one_input(data: bytes) -> None:
    """One fuzz input through both decoders and the normaliser; raises on a broken contract."""
    for decode in (decode_protobuf, decode_json):
        try:
            decoded: Decoded = decode(data)
        except UndecodableRequest as exc:
            if not str(exc):
                raise AssertionError("UndecodableRequest without a message") from exc
            continue
        batch = _NORMALIZER.normalize(decoded.request)
        spans = sum(len(ss.spans) for rs in decoded.request.resource_spans for ss in rs.scope_spans)
        if len(batch.rows) + batch.rejected != spans:
            raise AssertionError(f"{spans} spans decoded, {len(batch.rows)} rows + {batch.rejected} rejected")
        if (decoded.rejected or batch.rejected) and not (decoded.errors or batch.errors):
            raise AssertionError("spans rejected without a reason")


def seeds(count: int = 8) -> list[bytes]:
    """Realistic requests (``bench.traces``) to mutate, protobuf and OTLP/JSON."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from bench.traces import generate

    payloads = [r.payload for r in generate(seed=5, spans=count * 8, batch_spans=8).requests[:count]]
    as_json = json_format.MessageToJson(ExportTraceServiceRequest.FromString(payloads[0])).encode()
    return [*payloads, as_json]


def run_atheris(argv: list[str]) -> None:  # pragma: no cover - needs atheris
    """Fuzz with atheris (coverage-guided) until interrupted."""
    import atheris

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def run_hypothesis(examples: int, *, derandomize: bool = False) -> None:
    """Random bytes and mutated seeds, ``examples`` of them."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    corpus = seeds()

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(corpus)))
        for _ in range(draw(st.integers(1, 4))):
            operation = draw(st.sampled_from(("truncate", "flip", "splice", "insert")))
            position = draw(st.integers(0, max(0, len(data) - 1)))
            if operation == "truncate":
                del data[position:]
            elif operation == "flip" and data:
                data[position] ^= 1 << draw(st.integers(0, 7))
            elif operation == "splice":
                donor = draw(st.sampled_from(corpus))
                start = draw(st.integers(0, len(donor)))
                data[position:position] = donor[start : start + draw(st.integers(1, 64))]
            else:
                data[position:position] = draw(st.binary(min_size=1, max_size=16))
        return bytes(data)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(st.binary(max_size=4096), mutated()))
    def fuzz(data: bytes) -> None:
        test_one_input(data)

    fuzz()


def main(argv: Sequence[str] | None = None) -> int:
    """Fuzz with atheris when installed, else run ``--examples`` hypothesis examples."""
    argv = list(sys.argv if argv is None else argv)
    try:
        import atheris  # noqa: F401
    except ImportError:
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--examples", type=int, default=5_000, help="hypothesis examples (default 5000)")
        args, _ = parser.parse_known_args(argv[1:])
        print(f"atheris is not installed: running {args.examples} hypothesis examples", file=sys.stderr)
        run_hypothesis(args.examples)
        print("no contract violation found", file=sys.stderr)
        return 0
    run_atheris(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

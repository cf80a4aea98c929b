"""HTTP compression as ClickHouse does it: ``Content-Encoding`` of request bodies, and of
responses when ``enable_http_compression`` is on and the client sent ``Accept-Encoding``.

The response method is chosen in ClickHouse's order of preference, not the client's
(``chooseHTTPCompressionMethod`` in ``src/IO/CompressionMethod.cpp``): zstd, br, lz4, snappy,
gzip, deflate, xz, bz2; here among those this process can write. lz4 is the LZ4 frame
format (what ClickHouse and clickhouse-connect use); zstd and lz4 come with clickhouse-connect.
Request bodies are decompressed with a bound on the output.
"""

from __future__ import annotations

import bz2
import lzma
import sys
import zlib
from collections.abc import Callable

from otelspend.api.sqlhttp import errors
from otelspend.api.sqlhttp.errors import ClickHouseError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd
import lz4.frame

PREFERENCE = ("zstd", "br", "lz4", "snappy", "gzip", "deflate", "xz", "bz2")
DEFAULT_LEVEL = 3  # ClickHouse's http_zlib_compression_level default


def choose(accept_encoding: str) -> str | None:
    """The response encoding for an ``Accept-Encoding`` value, or None."""
    offered = set()
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        if params.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        offered.add(name.strip().lower())
    return next((m for m in PREFERENCE if m in offered and m in _ENCODERS), None)


def encode(body: bytes, method: str, level: int = DEFAULT_LEVEL) -> bytes:
    """Compress a response body with ``method`` (one ``choose`` picked)."""
    return _ENCODERS[method](body, level)


def decode(body: bytes, method: str, limit: int) -> bytes:
    """Decompress a request body; raises ClickHouseError past ``limit`` bytes or if corrupt."""
    method = method.strip().lower()
    if method in ("", "identity"):
        return body
    decoder = _DECODERS.get(method)
    if decoder is None:
        raise ClickHouseError.of(
            errors.NOT_IMPLEMENTED,
            f"Content-Encoding {method!r} is not supported (use gzip, deflate, zstd, lz4, xz or bz2)",
        )
    try:
        out, complete = decoder(body, limit + 1)
    except (zlib.error, zstd.ZstdError, RuntimeError, OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        raise ClickHouseError.of(
            errors.CANNOT_DECOMPRESS, f"Cannot decompress the {method} request body: {exc}"
        ) from None
    if len(out) > limit:
        raise ClickHouseError.of(
            errors.QUERY_IS_TOO_LARGE, f"The decompressed request body is larger than sql.max_request_bytes ({limit})"
        )
    if not complete:
        raise ClickHouseError.of(errors.CANNOT_DECOMPRESS, f"The {method} request body is truncated")
    return out


def _zlib(wbits: int) -> Callable[[bytes, int], tuple[bytes, bool]]:
    def decode_(body: bytes, cap: int) -> tuple[bytes, bool]:
        inflater = zlib.decompressobj(wbits=wbits)
        out = inflater.decompress(body, cap)
        return out, inflater.eof or len(out) >= cap

    return decode_


def _zstd(body: bytes, cap: int) -> tuple[bytes, bool]:
    decompressor = zstd.ZstdDecompressor()
    out = decompressor.decompress(body, max_length=cap)
    return out, decompressor.eof or len(out) >= cap


def _lz4(body: bytes, cap: int) -> tuple[bytes, bool]:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    out = decompressor.decompress(body, max_length=cap)
    return out, decompressor.eof or len(out) >= cap


def _xz(body: bytes, cap: int) -> tuple[bytes, bool]:
    decompressor = lzma.LZMADecompressor()
    out = decompressor.decompress(body, max_length=cap)
    return out, decompressor.eof or len(out) >= cap


def _bz2(body: bytes, cap: int) -> tuple[bytes, bool]:
    decompressor = bz2.BZ2Decompressor()
    out = decompressor.decompress(body, max_length=cap)
    return out, decompressor.eof or len(out) >= cap


def _gzip_encode(body: bytes, level: int) -> bytes:
    deflater = zlib.compressobj(level, wbits=31)
    return deflater.compress(body) + deflater.flush()


def _deflate_encode(body: bytes, level: int) -> bytes:
    return zlib.compress(body, level)


_ENCODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "zstd": lambda body, level: zstd.compress(body, level=level),
    "lz4": lambda body, level: lz4.frame.compress(body),
    "gzip": _gzip_encode,
    "deflate": _deflate_encode,
    "xz": lambda body, level: lzma.compress(body, preset=min(max(level, 0), 9)),
    "bz2": lambda body, level: bz2.compress(body, min(max(level, 1), 9)),
}

_DECODERS: dict[str, Callable[[bytes, int], tuple[bytes, bool]]] = {
    "gzip": _zlib(31),
    "deflate": _zlib(15),
    "zstd": _zstd,
    "lz4": _lz4,
    "xz": _xz,
    "bz2": _bz2,
}

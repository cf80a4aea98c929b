"""Response headers as a ClickHouse server sends them."""

from __future__ import annotations

import json

from otelspend.api.sqlhttp.errors import ClickHouseError

_BINARY = ("Native", "RowBinary", "Parquet", "Arrow", "ORC", "Avro", "Protobuf", "CapnProto", "BSON", "MsgPack", "Npy")


def content_type(fmt: str) -> str:
    """Content-Type of a result in ``fmt`` (IOutputFormat::getContentType in ClickHouse)."""
    if fmt.startswith(("TabSeparated", "TSV")):
        return "text/tab-separated-values; charset=UTF-8"
    if fmt.startswith("CSV"):
        header = "present" if "WithNames" in fmt else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if fmt.startswith(("JSON", "PrettyJSON", "NDJSON")):
        return "application/json; charset=UTF-8"
    if fmt == "XML":
        return "application/xml; charset=UTF-8"
    if fmt.startswith(_BINARY):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def summary(
    *, read_rows: int = 0, read_bytes: int = 0, result_rows: int = 0, result_bytes: int = 0, elapsed_ns: int = 0
) -> str:
    """X-ClickHouse-Summary: the query's progress totals, numbers as strings."""
    values = {
        "read_rows": read_rows,
        "read_bytes": read_bytes,
        "written_rows": 0,
        "written_bytes": 0,
        "total_rows_to_read": read_rows,
        "result_rows": result_rows,
        "result_bytes": result_bytes,
        "elapsed_ns": elapsed_ns,
    }
    return json.dumps({k: str(v) for k, v in values.items()}, separators=(",", ":"))


def header_value(text: str) -> bytes:
    """A client-given value echoed in a header (query id, time zone): printable ASCII only."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text[:512]).encode()


def common(display_name: str, query_id: str) -> list[tuple[bytes, bytes]]:
    """Headers every answer carries: the server's display name and the query id."""
    return [
        (b"x-clickhouse-server-display-name", header_value(display_name)),
        (b"x-clickhouse-query-id", header_value(query_id)),
    ]


def error_headers(error: ClickHouseError) -> list[tuple[bytes, bytes]]:
    """Headers of an error answer (its code; a 401 also asks for Basic credentials)."""
    headers = [
        (b"content-type", b"text/plain; charset=UTF-8"),
        (b"x-clickhouse-exception-code", str(error.code).encode()),
    ]
    if error.http_status == 401:
        headers.append((b"www-authenticate", b'Basic realm="otelspend SQL endpoint"'))
    return headers

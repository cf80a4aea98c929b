"""ClickHouse-shaped errors: the code, the name, the body and the HTTP status a server uses.

Body: ``Code: 164. DB::Exception: <message>. (READONLY) (version 26.9.2.1)`` plus a newline,
with the code again in ``X-ClickHouse-Exception-Code``. Statuses follow ClickHouse's
``src/Server/HTTP/exceptionCodeToHTTPStatus.cpp`` (by error name; ACCESS_DENIED is 403 since
ClickHouse PR 111043); every other code is 500.
"""

from __future__ import annotations

import re

# The numbers are ClickHouse's (``errorCodeToName`` in the engine; a test checks each).
SYNTAX_ERROR = (62, "SYNTAX_ERROR")
NOT_IMPLEMENTED = (48, "NOT_IMPLEMENTED")
BAD_ARGUMENTS = (36, "BAD_ARGUMENTS")
UNKNOWN_FORMAT = (73, "UNKNOWN_FORMAT")
UNKNOWN_SETTING = (115, "UNKNOWN_SETTING")
READONLY = (164, "READONLY")
REQUIRED_PASSWORD = (194, "REQUIRED_PASSWORD")
TOO_MANY_SIMULTANEOUS_QUERIES = (202, "TOO_MANY_SIMULTANEOUS_QUERIES")
QUERY_IS_TOO_LARGE = (229, "QUERY_IS_TOO_LARGE")
CANNOT_DECOMPRESS = (271, "CANNOT_DECOMPRESS")
INTO_OUTFILE_NOT_ALLOWED = (358, "INTO_OUTFILE_NOT_ALLOWED")
SESSION_NOT_FOUND = (372, "SESSION_NOT_FOUND")
INVALID_SESSION_TIMEOUT = (374, "INVALID_SESSION_TIMEOUT")
AUTHENTICATION_FAILED = (516, "AUTHENTICATION_FAILED")
UNKNOWN_EXCEPTION = (1002, "UNKNOWN_EXCEPTION")

_STATUS_BY_NAME: dict[str, int] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"), 403
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST",
            "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    **dict.fromkeys(("SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"), 503),
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
}  # fmt: skip

# Innermost "Code: N. DB::Exception: <message> (NAME)": the engine nests the same error
# when it rethrows it (the same shape @clickhouse/client's parser anchors on).
_ENGINE_MESSAGE = re.compile(
    r"Code: (?P<code>\d+)\..*Exception: (?P<message>.+?)\((?P<name>[A-Z0-9_]*[A-Z]{3}[A-Z0-9_]*)\)", re.S
)


class ClickHouseError(Exception):
    """An error answered the way ClickHouse answers it."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(f"{name} ({code}): {message}")
        self.code = code
        self.name = name
        self.message = message

    @classmethod
    def of(cls, kind: tuple[int, str], message: str) -> ClickHouseError:
        """An error of a known kind (``(code, name)``) with this message."""
        return cls(kind[0], kind[1], message)

    @classmethod
    def from_engine(cls, text: str) -> ClickHouseError:
        """Parse an engine exception text (chDB nests rethrown errors; keep the innermost)."""
        match = _ENGINE_MESSAGE.search(text)
        if match is None:
            return cls.of(UNKNOWN_EXCEPTION, text.strip() or "unknown engine error")
        message = match.group("message").strip()
        return cls(int(match.group("code")), match.group("name"), message)

    @property
    def http_status(self) -> int:
        """The HTTP status ClickHouse answers this error with (500 for the unlisted)."""
        return _STATUS_BY_NAME.get(self.name, 500)

    def body(self, version: str) -> bytes:
        """The error text as ClickHouse writes it (``Code: N. DB::Exception: ... (NAME) (version V)``)."""
        message = self.message if self.message.endswith((".", "!", "?")) else f"{self.message}."
        return f"Code: {self.code}. DB::Exception: {message} ({self.name}) (version {version})\n".encode()

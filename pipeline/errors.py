"""The write side's error taxonomy: permanent (retrying cannot help) or retryable.

The same split as the OpenTelemetry Collector's exporter helper (``retry_sender.go``: an
error marked with ``consumererror.NewPermanent`` is dropped at once, anything else is
retried with bounded backoff), and as the receiver's ``receiver/errors.py`` on the way in.
Here a permanent error does not drop data: the rows or runs it concerns are quarantined
(``pipeline/quarantine.py``) with the reason, and counted.

Permanent:

* ``PermanentError``: an explicit mark, e.g. a run whose computation fails (the same
  spans fail the same way on every attempt);
* a ClickHouse error about the data of this one call (``PERMANENT_CLICKHOUSE_CODES``:
  parse, type, overflow and size errors) or the driver's ``DataError``;
* ``MigrationError``: a migration changed after it was applied (start-up stops; no retry
  can make the checksums agree).

Retryable: everything else — connection refused, timeouts, a store that is down, too many
parts, memory limits, and unknown exceptions (the Collector's default too: an error is
retried unless marked permanent). A retryable error keeps the job at the head of the
store writer's queue with bounded backoff while ``/readyz`` says why; nothing is dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from clickhouse_connect.driver.exceptions import DatabaseError, DataError

from otelspend.clickhouse.migrate import MigrationError


class ErrorKind(enum.Enum):
    """What to do about a failed call."""

    PERMANENT = "permanent"
    """The same input fails the same way again: quarantine it, count it, go on."""
    RETRYABLE = "retryable"
    """The store may take it later: back off (bounded) and try again."""


class PermanentError(Exception):
    """Marks a failure that retrying cannot fix (``consumererror.NewPermanent``)."""


PERMANENT_CLICKHOUSE_CODES: Mapping[int, str] = {
    6: "CANNOT_PARSE_TEXT",
    19: "SIZE_OF_FIXED_STRING_DOESNT_MATCH",
    25: "CANNOT_PARSE_ESCAPE_SEQUENCE",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    128: "TOO_LARGE_ARRAY_SIZE",
    130: "CANNOT_READ_ARRAY_FROM_TEXT",
    131: "TOO_LARGE_STRING_SIZE",
    190: "SIZES_OF_ARRAYS_DOESNT_MATCH",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    376: "CANNOT_PARSE_UUID",
    407: "DECIMAL_OVERFLOW",
}
"""ClickHouse error codes (``src/Common/ErrorCodes.cpp``) that say the data of one call is
wrong: sent again, it fails again. Schema problems (unknown table or column) are not here:
an operator can fix those, and the data is fine."""


def classify(exc: BaseException) -> ErrorKind:
    """Permanent or retryable: the one decision every write-side failure goes through."""
    if isinstance(exc, PermanentError | MigrationError | DataError):
        return ErrorKind.PERMANENT
    if isinstance(exc, DatabaseError) and exc.code in PERMANENT_CLICKHOUSE_CODES:
        return ErrorKind.PERMANENT
    return ErrorKind.RETRYABLE


def describe(exc: BaseException, limit: int = 500) -> str:
    """One line for logs, ``/readyz`` and quarantine records: type and message, bounded."""
    message = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {message}"[:limit]

"""HTTP sessions (``session_id``): what SET and USE leave for the session's next queries.

ClickHouse keeps a session's settings server-side for ``session_timeout`` seconds (default
60, at most 3600). Here a session is only that state: vetted settings, query parameters
(``SET param_x = ...``) and the current database. Bounded: the oldest session is dropped
when ``capacity`` is reached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from otelspend.api.sqlhttp import errors
from otelspend.api.sqlhttp.errors import ClickHouseError

DEFAULT_TIMEOUT_SECONDS = 60
MAX_TIMEOUT_SECONDS = 3600


@dataclass
class Session:
    """What one session keeps between queries: settings, query parameters, current database."""

    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    expires_at: float = 0.0


class Sessions:
    """Sessions by id, expired after their timeout, the oldest dropped past ``capacity``."""

    def __init__(self, capacity: int = 1000, clock: Callable[[], float] | None = None) -> None:
        self.capacity = capacity
        self._clock = clock or time.monotonic
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str, *, timeout: str | None, check: bool) -> Session:
        """The session, created unless ``check`` (ClickHouse's ``session_check=1``)."""
        seconds = parse_timeout(timeout)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at < now:
                del self._sessions[session_id]
                session = None
            if session is None:
                if check:
                    raise ClickHouseError.of(errors.SESSION_NOT_FOUND, f"Session {session_id} not found")
                session = Session()
                self._sessions[session_id] = session
                while len(self._sessions) > self.capacity:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(session_id)
            session.expires_at = now + seconds
            return session


def parse_timeout(value: str | None) -> int:
    """A ``session_timeout`` value in seconds (default 60, at most 3600); ClickHouse's error otherwise."""
    if value is None or value == "":
        return DEFAULT_TIMEOUT_SECONDS
    if not value.isdigit():
        raise ClickHouseError.of(errors.INVALID_SESSION_TIMEOUT, f"Invalid session timeout: '{value}'")
    seconds = int(value)
    if seconds > MAX_TIMEOUT_SECONDS:
        raise ClickHouseError.of(
            errors.INVALID_SESSION_TIMEOUT,
            f"Session timeout '{value}' is larger than max_session_timeout: {MAX_TIMEOUT_SECONDS}",
        )
    return seconds

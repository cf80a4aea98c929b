"""HMAC-SHA256 signatures on webhook deliveries, with a timestamp against replays.

Header (the scheme Stripe documents for its webhooks, under our own name)::

    Otelspend-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The secret is the sink's configured secret as UTF-8 bytes; the signed message is the
decimal timestamp, a full stop, then the request body exactly as sent. A receiver
recomputes it over the raw bytes it received, compares in constant time, and rejects a
timestamp further than its tolerance (300 s is usual) from its own clock, so a captured
delivery cannot be replayed later. Every attempt is signed afresh: a retry an hour later
carries a new ``t`` over the same body (same event ``id``), so receivers deduplicate by
``id``, not by signature.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Otelspend-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Otelspend-Signature`` header value for one delivery attempt."""
    return f"t={timestamp},{SCHEME}={signature(secret, body, timestamp)}"


def verify(
    secret: bytes, body: bytes, header: str, *, now: int, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and its timestamp is within tolerance of ``now``."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, body, timestamp)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)

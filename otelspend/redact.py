"""Secrets never leave the process: how a secret setting is typed, shown, read from a file,
and kept out of logs.

A secret setting is a ``pydantic.SecretStr`` (or one of the URL types below): its ``str``,
``repr`` and JSON form never hold the value; code that needs the value asks for it with
``get_secret_value()`` at the one place it is used (a comparison, a connection). What is
shown instead is ``'***'`` with the length (:func:`shown`), or for a URL the URL with its
credentials, query values (and, for a webhook-style URL, its path) replaced by ``***``.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "***"
MAX_SECRET_FILE_BYTES = 64 * 1024
"""A secret file larger than this is a mistake (a certificate bundle, a log), not a token."""

log = logging.getLogger("otelspend")


def shown(value: Any, annotation: Any = None) -> str:
    """How a secret (or the raw input meant for one) appears in messages: never its value.
    Input meant for a secret URL (``annotation``) is shown redacted the way that type shows it.
    A missing secret (None) is shown as such: there is nothing to hide, and saying so helps."""
    if value is None:
        return "None"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    url_type = bare(annotation)
    if isinstance(value, str) and isinstance(url_type, type) and issubclass(url_type, SecretUrl):
        return repr(str(url_type(value)))
    if isinstance(value, str):
        return f"'{MASK}' ({len(value)} characters)"
    return f"'{MASK}'"


def redact_url(url: str, *, keep_path: bool = False) -> str:
    """``url`` with its password (or a bare user-info token), query values and fragment shown
    as ``***``; the path too unless ``keep_path`` (a webhook URL's path is often its token)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return MASK
    if not parts.scheme:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
    text = f"{parts.scheme}://{netloc}"
    text += parts.path if keep_path or parts.path in ("", "/") else f"/{MASK}"
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        text += "?" + "&".join(f"{key}={MASK}" for key, _ in pairs) if pairs else f"?{MASK}"
    if parts.fragment:
        text += f"#{MASK}"
    return text


class SecretUrl(SecretStr):
    """A URL whose credentials are secret (a webhook URL with a token in its user info, path
    or query): shown as ``https://hooks.example.com/***?token=***``."""

    def _display(self) -> str:
        return redact_url(self.get_secret_value()) if self.get_secret_value() else ""


class SecretDsn(SecretUrl):
    """A connection URL whose password (and query values, e.g. ``access_token``) are secret and
    whose path is not (a database name, the chDB directory): ``http://user:***@host:8123``."""

    def _display(self) -> str:
        return redact_url(self.get_secret_value(), keep_path=True) if self.get_secret_value() else ""


# -- which settings are secret -------------------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation is made of: ``list[X] | None`` -> [X], ``Annotated[X, ...]`` -> [X]."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple, set, frozenset):
        return [leaf for arg in get_args(annotation) if arg is not type(None) for leaf in _unwrap(arg)]
    return [annotation]


def is_secret_type(annotation: Any) -> bool:
    """A secret (``SecretStr`` or a subclass), or a list or optional of one."""
    return any(isinstance(t, type) and issubclass(t, SecretStr) for t in _unwrap(annotation))


def holds_secret(annotation: Any) -> bool:
    """A secret, or something with a secret inside (a model with a secret field, a list of them)."""
    for leaf in _unwrap(annotation):
        if not isinstance(leaf, type):
            continue
        if issubclass(leaf, SecretStr):
            return True
        if issubclass(leaf, BaseModel) and any(holds_secret(f.annotation) for f in leaf.model_fields.values()):
            return True
    return False


def bare(annotation: Any) -> Any:
    """Without ``Annotated[...]`` and ``| None``."""
    while True:
        origin = get_origin(annotation)
        present = [a for a in get_args(annotation) if a is not type(None)]
        if not (origin is Annotated or (origin in (Union, types.UnionType) and len(present) == 1)):
            return annotation
        annotation = present[0]


def annotation_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any | None:
    """The annotation of the setting at ``loc`` (keys and list indexes); None if there is none."""
    annotation: Any = model
    for part in loc:
        annotation = bare(annotation)
        if isinstance(part, int) or part.isdigit():
            if get_origin(annotation) is not list:
                return None
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return None
    return annotation


def is_secret_path(model: type[BaseModel], loc: tuple[str | int, ...]) -> bool:
    """True when the setting at ``loc``, or one it belongs to or holds, is secret."""
    for end in range(1, len(loc) + 1):
        annotation = annotation_at(model, loc[:end])
        if annotation is None:
            return False
        if is_secret_type(annotation):
            return True
    return bool(loc) and holds_secret(annotation_at(model, loc))


def secret_values(model: BaseModel) -> list[str]:
    """Every non-empty secret value held by ``model`` (for scrubbing logs)."""
    return sorted(set(_walk_secrets(model)), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***`` (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def _walk_secrets(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            yield value.get_secret_value()
            if isinstance(value, SecretUrl):
                yield from url_secrets(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk_secrets(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk_secrets(item)


def url_secrets(url: str) -> Iterator[str]:
    """The parts of a URL that are secret on their own (a password, a query token)."""
    try:
        parts = urlsplit(url)
        if parts.password:
            yield parts.password
        elif parts.username and "@" in parts.netloc and ":" not in parts.netloc.rpartition("@")[0]:
            yield parts.username
        for _, value in parse_qsl(parts.query):
            if len(value) >= 4:  # a short value ("1", "on") is not worth scrubbing everywhere
                yield value
    except ValueError:
        return


# -- secrets from files --------------------------------------------------------------------


class SecretFileError(ValueError):
    """A ``*_FILE`` secret file that cannot be used; the message never holds its content."""


def read_secret_file(path: Path) -> str:
    """The secret in ``path``, surrounding whitespace (the trailing newline) removed.

    The file must be a regular file no other user can read or write (like ssh's private
    keys): ``chmod 600`` (or 640 for a group the service shares)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError("expected a regular file")
        if info.st_mode & 0o007:
            raise SecretFileError(
                f"other users can read or write it (mode {stat.S_IMODE(info.st_mode):04o}): "
                "make it readable by the service user only (chmod 600, or 640 for its group)"
            )
        if info.st_size > MAX_SECRET_FILE_BYTES:
            raise SecretFileError(f"expected a secret of at most {MAX_SECRET_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretFileError(f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SecretFileError("expected UTF-8 text") from None
    if not text:
        raise SecretFileError("the file is empty")
    return text


# -- logs ------------------------------------------------------------------------------------


class RedactSecrets(logging.Filter):
    """Replaces every configured secret value in a log record's text with ``***``: a second
    line of defence for messages built by libraries (an exception carrying a URL)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every configured secret replaced by ``***``."""
        return scrub(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record's message, exception text and stack in place; never drops a record."""
        if not self.secrets:
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


_REASONS = {"missing": "no token", "unknown": "an unknown token"}


class RejectedCredentials:
    """Requests refused for a missing or unknown bearer token: counted by the caller on every
    refusal, logged at most once per ``interval_seconds`` with how many there were. The
    presented token is never logged (nor its length or hash: a near-miss of a real token
    would help whoever is guessing)."""

    def __init__(
        self, surface: str, interval_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.surface = surface
        self.interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._last: float | None = None

    def refused(self, reason: str) -> None:
        """One refused request; ``reason`` is 'missing' or 'unknown' (never the token)."""
        with self._lock:
            self._pending[reason] = self._pending.get(reason, 0) + 1
            now = self._clock()
            if self._last is not None and now - self._last < self.interval:
                return
            pending, self._pending, self._last = self._pending, {}, now
        counts = ", ".join(f"{n} with {_REASONS.get(r, r)}" for r, n in sorted(pending.items()))
        log.warning(
            "%s refused %d request(s) without a valid bearer token (%s); tokens are never logged",
            self.surface,
            sum(pending.values()),
            counts,
        )

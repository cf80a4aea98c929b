"""What one HTTP request asks: credentials, the query text, its parameters and settings.

Pure functions over the method, URL parameters, headers and body, following ClickHouse's
HTTP interface (https://clickhouse.com/docs/interfaces/http and
``src/Server/HTTP/authenticateUserByHTTP.cpp``): the query is the ``query`` URL parameter
followed by the POST body; ``param_<name>`` are query parameters; every other URL parameter
is a setting, except the transport ones listed in ``TRANSPORT``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP

from otelspend.api.sqlhttp import errors
from otelspend.api.sqlhttp.errors import ClickHouseError

USER = "otelspend"

TRANSPORT = frozenset(
    {"query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
     "user", "password", "quota_key", "role", "compress", "decompress", "enable_http_compression",
     "http_zlib_compression_level", "wait_end_of_query", "send_progress_in_http_headers",
     "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close", "buffer_size",
     "client_protocol_version", "http_response_buffer_size", "http_wait_end_of_query", "add_http_cors_header",
     "http_native_compression_disable_checksumming_on_decompress"}
)  # fmt: skip
"""URL parameters the HTTP layer consumes; they never reach the engine. Results are always
buffered whole (as with ``wait_end_of_query=1``), so progress headers are never sent."""


@dataclass(frozen=True)
class Credentials:
    """Who a request says it is (HTTP Basic, ``X-ClickHouse-*`` headers or URL parameters)."""

    user: str
    password: str
    interactive: bool
    """ClickHouse answers a failed default-user login with 401 + WWW-Authenticate unless the
    client sent ``Authorization: never``."""


def credentials(headers: Mapping[str, str], params: Mapping[str, str]) -> Credentials:
    """The user and password of a request, from X-ClickHouse-User/Key, Basic auth or URL parameters."""
    x_user = headers.get("x-clickhouse-user", "")
    x_key = headers.get("x-clickhouse-key", "")
    authorization = headers.get("authorization")
    interactive = authorization != "never"
    has_http = authorization is not None and authorization != "never"
    in_params = "user" in params or "password" in params
    if x_user or x_key:
        if has_http:
            raise _mixed("X-ClickHouse HTTP headers", "Authorization HTTP header")
        if in_params:
            raise _mixed("X-ClickHouse HTTP headers", "authentication via parameters")
        if not x_user:
            raise ClickHouseError.of(
                errors.AUTHENTICATION_FAILED, "Got an empty user name from X-ClickHouse HTTP headers"
            )
        return Credentials(x_user, x_key, interactive)
    if has_http:
        assert authorization is not None
        if in_params:
            raise _mixed("Authorization HTTP header", "authentication via parameters")
        scheme, _, info = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise ClickHouseError.of(
                errors.AUTHENTICATION_FAILED,
                f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported",
            )
        try:
            user, _, password = base64.b64decode(info.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ClickHouseError.of(
                errors.AUTHENTICATION_FAILED, "Invalid authentication: malformed Basic credentials"
            ) from None
        if not user:
            raise ClickHouseError.of(
                errors.AUTHENTICATION_FAILED, "Got an empty user name from Authorization HTTP header"
            )
        return Credentials(user, password, interactive)
    return Credentials(params.get("user", "default"), params.get("password", ""), interactive)


def authenticate(given: Credentials, password: str | None) -> None:
    """Accept user ``otelspend`` with ``password``; with no password configured, also no
    credentials at all (user ``default``, empty password). Raises as ClickHouse answers."""
    expected = password or ""
    if given.user == USER and hmac.compare_digest(given.password.encode(), expected.encode()):
        return
    if password is None and given.user == "default" and given.password == "":
        return
    # src/Access/AccessControl.cpp: only the default (or empty) user gets REQUIRED_PASSWORD,
    # which the HTTP layer answers with 401; any other failed login is AUTHENTICATION_FAILED (403).
    kind = (
        errors.REQUIRED_PASSWORD
        if given.interactive and given.user in ("", "default")
        else errors.AUTHENTICATION_FAILED
    )
    hint = f" (otelspend's SQL endpoint has one user, {USER})" if given.user != USER else ""
    raise ClickHouseError.of(
        kind, f"{given.user}: Authentication failed: password is incorrect, or there is no user with such name{hint}"
    )


def query_text(params: Mapping[str, str], body: bytes) -> str:
    """The ``query`` URL parameter, then the body (ClickHouse reads them as one text)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ClickHouseError.of(errors.SYNTAX_ERROR, "The query is not valid UTF-8") from None
    head = params.get("query", "")
    return f"{head}\n{text}" if head and text else head or text


def split_params(params: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(settings, query parameters) of the URL parameters; transport ones are left out."""
    settings: dict[str, str] = {}
    query_params: dict[str, str] = {}
    for name, value in params.items():
        if name.startswith("param_"):
            query_params[name[len("param_") :]] = value
        elif name not in TRANSPORT:
            settings[name] = value
    return settings, query_params


def multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    """Text fields of a multipart/form-data body (``query``, ``param_*``): what both clients
    send once their query parameters outgrow a URL. File parts (external tables) are refused."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ClickHouseError.of(errors.BAD_ARGUMENTS, "Malformed multipart/form-data body")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None or not isinstance(name, str):
            raise ClickHouseError.of(
                errors.NOT_IMPLEMENTED, "External tables (file parts of a multipart body) are not supported"
            )
        payload = part.get_payload(decode=True)
        fields[name] = payload.decode() if isinstance(payload, bytes) else str(payload or "")
    return fields


def _mixed(first: str, second: str) -> ClickHouseError:
    return ClickHouseError.of(
        errors.AUTHENTICATION_FAILED,
        f"Invalid authentication: it is not allowed to use {first} and {second} simultaneously",
    )

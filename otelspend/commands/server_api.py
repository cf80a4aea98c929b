"""Admin commands ask the running server first: chDB opens a data path in one process only,
and only the server's pipeline may touch its open runs. Nothing listening = work offline."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from otelspend.settings import Settings, split_address

HTTP_TIMEOUT_SECONDS = 3700.0
"""The server allows an admin job an hour on its pipeline; wait a little longer than that."""


class ApiError(RuntimeError):
    """The server answered, with an error: report it, do not fall back to offline."""


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """``--api``, ``--token``, ``--offline``: reach a running server's API, or open the store directly."""
    parser.add_argument("--api", help="running server's API base URL (default: http://<api.address>)")
    parser.add_argument("--token", help="API bearer token (default: the first of api.tokens)")
    parser.add_argument("--offline", action="store_true", help="do not try the API; open the store directly")


def default_api_url(settings: Settings) -> str:
    """The configured API address as a URL a client can reach (wildcard binds -> loopback)."""
    host, port = split_address(settings.api.address)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def open_server(
    args: argparse.Namespace,
    settings: Settings,
    path: str,
    fallback: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[str, Any] | None:
    """Send a request for ``path`` (with its query; POST when ``data`` is given) to the server's
    API with the bearer token: (base URL, the open response, closed by the caller), or None when
    nothing listens (after saying ``fallback`` on stderr). Raises ApiError when the server refuses."""
    url = (args.api or default_api_url(settings)).rstrip("/")
    request = urllib.request.Request(f"{url}{path}", data=data, headers=headers or {})
    token = args.token or (settings.api.tokens[0].get_secret_value() if settings.api.tokens else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        return url, urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("detail", detail)
        raise ApiError(f"{url} answered {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            print(f"no otelspend server answers at {url}; {fallback}", file=sys.stderr)
            return None
        raise ApiError(f"{url} answered {exc.reason}") from None


def ask_server(
    args: argparse.Namespace,
    settings: Settings,
    path: str,
    body: dict[str, Any] | bytes,
    fallback: str,
    headers: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """POST ``body`` (JSON, or bytes sent with ``headers``, e.g. a CSV file) to the server's
    ``path``: (base URL, JSON answer), or None when nothing listens (after saying ``fallback``
    on stderr). Raises ApiError when the server refuses."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    opened = open_server(
        args, settings, path, fallback, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    if opened is None:
        return None
    url, response = opened
    with response:
        return url, json.loads(response.read())


def answered_by_server(
    args: argparse.Namespace,
    settings: Settings,
    path: str,
    body: dict[str, Any] | bytes,
    fallback: str,
    report: Callable[[str, dict[str, Any]], list[str]],
    headers: dict[str, str] | None = None,
) -> int | None:
    """``ask_server`` for a command: prints ``report(base URL, answer)`` and gives exit code 0,
    prints the refusal and gives 1, or gives None when nothing listens (the command goes on
    offline)."""
    try:
        asked = ask_server(args, settings, path, body, fallback, headers)
    except ApiError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    if asked is None:
        return None
    url, answer = asked
    print("\n".join(report(url, answer)))
    return 0

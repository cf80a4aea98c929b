"""Loopback fakes of the OpenAI and Anthropic admin APIs: real HTTP servers on port 0 serving
pages of the documented shapes, with real paging (``limit``, ``has_more``, ``next_page``),
the documented auth headers (401 otherwise), parameter checks (OpenAI costs reject a limit
above 180, e.g. 366), and injectable 429 / 5xx answers with ``Retry-After``."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DAY = 86_400
LIMITS = {
    "/v1/organization/costs": (1, 180),
    "/v1/organization/usage/completions": (1, 31),
    "/v1/organizations/cost_report": (1, 31),
    "/v1/organizations/usage_report/messages": (1, 31),
}


def _rfc3339(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@dataclass
class Injected:
    status: int
    retry_after: str | None = None
    body: str = '{"error": {"message": "Too many requests", "type": "rate_limit_error"}}'


@dataclass
class FakeAdminApi:
    """One provider's admin API. ``results[path][day_start] = [result, ...]`` is what each day
    bucket holds; ``page_buckets`` caps buckets per page below the requested limit so that a
    few days already need several pages."""

    provider: str
    key: str
    results: dict[str, dict[int, list[dict[str, Any]]]]
    page_buckets: int = 2
    injected: list[Injected] = field(default_factory=list)
    fail_after_pages: int | None = None
    """Once this many pages were served, answer 503 for good (a pull failing half-way)."""
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    served_pages: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append((path, query))
            if not self._authorised(headers):
                return 401, {}, self._auth_error()
            if self.injected:
                failure = self.injected.pop(0)
                extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                return failure.status, extra, json.loads(failure.body)
            if self.fail_after_pages is not None and self.served_pages >= self.fail_after_pages:
                return 503, {}, {"error": {"message": "service unavailable"}}
            if path not in self.results:
                return 404, {}, {"error": {"message": f"no route {path}"}}
            problem = self._check(path, query)
            if problem:
                return 400, {}, {"error": {"message": problem, "type": "invalid_request_error"}}
            self.served_pages += 1
            return 200, {}, self._page(path, query)

    def _authorised(self, headers: Any) -> bool:
        if self.provider == "anthropic":
            return headers.get("x-api-key") == self.key and headers.get("anthropic-version") == "2023-06-01"
        return headers.get("Authorization") == f"Bearer {self.key}"

    def _auth_error(self) -> dict[str, Any]:
        if self.provider == "anthropic":
            return {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
        return {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }

    def _check(self, path: str, query: dict[str, list[str]]) -> str:
        low, high = LIMITS[path]
        limit = query.get("limit", ["7"])[0]
        if not limit.isdigit() or not low <= int(limit) <= high:
            return f"Invalid value for 'limit': expected an integer from {low} to {high}, got {limit}"
        if query.get("bucket_width", ["1d"])[0] != "1d":
            return "bucket_width: only 1d is supported"
        start_key = "starting_at" if self.provider == "anthropic" else "start_time"
        if start_key not in query:
            return f"missing required parameter {start_key}"
        return ""

    def _window(self, query: dict[str, list[str]]) -> tuple[int, int]:
        if self.provider == "anthropic":
            start = _seconds(query["starting_at"][0])
            end = _seconds(query["ending_at"][0]) if "ending_at" in query else 2**40
        else:
            start = int(query["start_time"][0])
            end = int(query["end_time"][0]) if "end_time" in query else 2**40
        return start, end

    def _page(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        start, end = self._window(query)
        days = sorted(day for day in self.results[path] if start <= day < end)
        offset = int(base64.b64decode(query["page"][0]).decode().split(":")[1]) if "page" in query else 0
        size = min(int(query.get("limit", ["7"])[0]), self.page_buckets)
        chosen = days[offset : offset + size]
        more = offset + size < len(days)
        buckets = [self._bucket(day, self.results[path][day]) for day in chosen]
        page: dict[str, Any] = {"data": buckets, "has_more": more}
        page["next_page"] = base64.b64encode(f"offset:{offset + size}".encode()).decode() if more else None
        if self.provider == "openai":
            page = {"object": "page", **page}
        return page

    def _bucket(self, day: int, results: list[dict[str, Any]]) -> dict[str, Any]:
        if self.provider == "anthropic":
            return {"starting_at": _rfc3339(day), "ending_at": _rfc3339(day + DAY), "results": results}
        return {"object": "bucket", "start_time": day, "end_time": day + DAY, "results": results}


def _handler(api: FakeAdminApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urllib.parse.urlparse(self.path)
            status, extra, body = api.answer(parsed.path, urllib.parse.parse_qs(parsed.query), self.headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(api: FakeAdminApi) -> Iterator[FakeAdminApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    host, port = server.server_address[:2]
    api.url = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- fixture data of the documented shapes ------------------------------------------------------


def openai_results(days: list[int]) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Costs and completions usage for each day: gpt-4o in one project, money as JSON numbers."""
    costs: dict[int, list[dict[str, Any]]] = {}
    usage: dict[int, list[dict[str, Any]]] = {}
    for index, day in enumerate(days):
        costs[day] = [
            {"object": "organization.costs.result", "amount": {"value": 0.25 + index, "currency": "usd"},
             "line_item": "gpt-4o-2024-08-06, input", "project_id": "proj_acme"},
            {"object": "organization.costs.result", "amount": {"value": 1.5, "currency": "usd"},
             "line_item": "gpt-4o-2024-08-06, output", "project_id": "proj_acme"},
        ]  # fmt: skip
        usage[day] = [
            {"object": "organization.usage.completions.result", "input_tokens": 100_000 * (index + 1),
             "output_tokens": 150_000, "input_cached_tokens": 0, "num_model_requests": 10 + index,
             "project_id": "proj_acme", "user_id": None, "api_key_id": "key_1", "model": "gpt-4o-2024-08-06",
             "batch": False, "service_tier": "default"},
        ]  # fmt: skip
    return {"/v1/organization/costs": costs, "/v1/organization/usage/completions": usage}


def anthropic_results(days: list[int]) -> dict[str, dict[int, list[dict[str, Any]]]]:
    cost: dict[int, list[dict[str, Any]]] = {}
    usage: dict[int, list[dict[str, Any]]] = {}
    for index, day in enumerate(days):
        cost[day] = [
            {"currency": "USD", "amount": str(300 + index), "workspace_id": None,
             "description": "Claude Sonnet 4.5 Usage - Input Tokens", "cost_type": "tokens",
             "context_window": "0-200k", "model": "claude-sonnet-4-5-20250929", "service_tier": "standard",
             "token_type": "uncached_input_tokens"},
        ]  # fmt: skip
        usage[day] = [
            {"uncached_input_tokens": 1_000_000 + index, "cache_creation": {"ephemeral_5m_input_tokens": 10,
             "ephemeral_1h_input_tokens": 0}, "cache_read_input_tokens": 5, "output_tokens": 7,
             "server_tool_use": {"web_search_requests": 0}, "api_key_id": "apikey_01", "workspace_id": None,
             "model": "claude-sonnet-4-5-20250929", "service_tier": "standard", "context_window": "0-200k"},
        ]  # fmt: skip
    return {"/v1/organizations/cost_report": cost, "/v1/organizations/usage_report/messages": usage}

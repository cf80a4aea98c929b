"""Pull usage and cost from the providers' admin APIs.

For each endpoint of a provider (OpenAI: costs, completions usage; Anthropic: cost report,
messages usage) the pull asks for day buckets from ``since`` to ``until``, follows
``has_more`` / ``next_page``, and spools every page it fully received to a JSON Lines file,
which is then imported like any export (same importers, same all-or-nothing import).

Failures are classified once: 429 and 5xx are retryable — retried up to
``billing.pull_max_attempts`` times, waiting what ``Retry-After`` says (else 1, 2, 4 ... s),
never more than ``billing.pull_max_wait_seconds`` in total; 401/403 (a wrong admin key) and
other 4xx are permanent. A pull that stops half-way still imports the pages it fully
received and says where to resume (``--since`` the first day it does not have). The admin
key is sent in its header and never logged, printed or stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

PROVIDERS = ("openai", "anthropic")
ANTHROPIC_VERSION = "2023-06-01"
RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
"""Statuses worth another attempt (529: Anthropic overloaded)."""
MAX_PAGES = 10_000
"""A server that never stops saying has_more is a bug: stop there."""
USER_AGENT = "otelspend-billing-pull"


@dataclass(frozen=True)
class Endpoint:
    """One admin-API listing: its path, the importer of its pages, its query parameters."""

    name: str
    path: str
    format: str
    limit: int
    group_by: tuple[str, ...]


ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "openai": (
        # Costs: bucket_width 1d only; limit 1..180 (366 is rejected, not clamped).
        Endpoint("costs", "/v1/organization/costs", "openai_costs", 31, ("project_id", "line_item")),
        Endpoint(
            "usage",
            "/v1/organization/usage/completions",
            "openai_usage",
            31,
            ("project_id", "api_key_id", "model", "batch", "service_tier"),
        ),
    ),
    "anthropic": (
        Endpoint("cost", "/v1/organizations/cost_report", "anthropic_cost", 31, ("workspace_id", "description")),
        Endpoint(
            "usage",
            "/v1/organizations/usage_report/messages",
            "anthropic_usage",
            31,
            ("api_key_id", "workspace_id", "model", "service_tier", "context_window"),
        ),
    ),
}


class PullError(RuntimeError):
    """The pull stopped. ``resume_since`` is the first day not fetched (None: nothing to resume)."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


@dataclass
class EndpointPull:
    """What one endpoint's pull fetched and where it stopped."""

    endpoint: str
    format: str
    pages: int = 0
    buckets: int = 0
    requests: int = 0
    retries: int = 0
    spool: Path | None = None
    last_bucket_end: int | None = None
    error: str = ""
    status: int | None = None
    resume_since: str | None = None
    imported: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The failure as JSON fields, with where to resume."""
        return {
            "endpoint": self.endpoint,
            "format": self.format,
            "pages": self.pages,
            "buckets": self.buckets,
            "requests": self.requests,
            "retries": self.retries,
            "error": self.error,
            "resume_since": self.resume_since,
            "imported": self.imported,
        }


@dataclass
class PullOptions:
    """How to reach one admin API: base URL, key, limits of retries and waits."""

    base_url: str
    key: SecretStr
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    max_wait_seconds: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    """Injected so tests can see the waits the client chose (it still uses real HTTP)."""


@dataclass
class Client:
    """A minimal admin-API client over urllib: GET JSON pages with retries and a secret header."""

    provider: str
    options: PullOptions
    requests: int = 0
    retries: int = 0
    waits: list[float] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        """Request headers for the provider (the key is written here and nowhere else)."""
        key = self.options.key.get_secret_value()
        if self.provider == "anthropic":
            return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION, "User-Agent": USER_AGENT}
        return {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT}

    def get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """One page: retries 429 and 5xx within bounds (Retry-After honoured), refuses 401/403 at once."""
        url = self.options.base_url.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
        waited = 0.0
        for attempt in range(1, self.options.max_attempts + 1):
            self.requests += 1
            request = urllib.request.Request(url, headers=self.headers(), method="GET")
            try:
                with urllib.request.urlopen(request, timeout=self.options.timeout_seconds) as response:
                    return _json_page(response.read(), path)
            except urllib.error.HTTPError as exc:
                status, body = exc.code, _body(exc)
                if status not in RETRYABLE:
                    raise PullError(_refusal(self.provider, path, status, body), status=status) from None
                delay = _retry_after(exc.headers.get("Retry-After"), attempt)
                reason = f"{path} answered {status}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = f"{path}: {getattr(exc, 'reason', exc)}"
                delay = _retry_after(None, attempt)
            if attempt == self.options.max_attempts or waited + delay > self.options.max_wait_seconds:
                raise PullError(
                    f"{reason}; gave up after {attempt} attempt(s) and {waited:.0f}s of waiting", permanent=False
                )
            self.retries += 1
            self.waits.append(delay)
            self.options.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")


def _body(exc: urllib.error.HTTPError) -> str:
    with contextlib.suppress(Exception):
        return exc.read().decode("utf-8", errors="replace")[:500]
    return ""


def _refusal(provider: str, path: str, status: int, body: str) -> str:
    detail = body
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        parsed = json.loads(body)
        error = parsed.get("error", parsed)
        detail = error.get("message", body) if isinstance(error, dict) else body
    if status in (401, 403):
        setting = f"billing.{provider}_admin_key"
        return f"{path} answered {status}: the admin key was refused ({detail}); check {setting}"
    return f"{path} answered {status}: {detail}"


def _json_page(raw: bytes, path: str) -> dict[str, Any]:
    try:
        page = json.loads(raw)
    except ValueError:
        raise PullError(f"{path} answered something that is not JSON", permanent=False) from None
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise PullError(f"{path} answered JSON without a data list", permanent=False)
    return page


def _retry_after(header: str | None, attempt: int) -> float:
    """Seconds to wait: Retry-After as seconds or an HTTP date, else exponential backoff."""
    if header:
        text = header.strip()
        if text.isdigit():
            return float(text)
        with contextlib.suppress(TypeError, ValueError, IndexError):
            when = email.utils.parsedate_to_datetime(text)
            return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    return float(min(2 ** (attempt - 1), 30))


def _time_params(provider: str, since: dt.datetime, until: dt.datetime) -> list[tuple[str, str]]:
    if provider == "anthropic":
        return [("starting_at", _rfc3339(since)), ("ending_at", _rfc3339(until))]
    return [("start_time", str(int(since.timestamp()))), ("end_time", str(int(until.timestamp())))]


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pages(client: Client, endpoint: Endpoint, since: dt.datetime, until: dt.datetime) -> Iterator[dict[str, Any]]:
    """Every page of one listing, following next_page."""
    key = "group_by[]" if client.provider == "anthropic" else "group_by"
    base = [
        *_time_params(client.provider, since, until),
        ("bucket_width", "1d"),
        ("limit", str(endpoint.limit)),
        *((key, value) for value in endpoint.group_by),
    ]
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params = base + ([("page", cursor)] if cursor else [])
        page = client.get(endpoint.path, params)
        yield page
        cursor = page.get("next_page")
        if not page.get("has_more") or not cursor:
            return
    raise PullError(f"{endpoint.path}: more than {MAX_PAGES} pages; narrow the window", permanent=True)


def _bucket_end(provider: str, bucket: dict[str, Any]) -> int | None:
    value = bucket.get("ending_at" if provider == "anthropic" else "end_time")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    return None


def pull_endpoint(
    client: Client, endpoint: Endpoint, since: dt.datetime, until: dt.datetime, spool: Path
) -> EndpointPull:
    """Spool every page fully received; on failure record where to resume."""
    report = EndpointPull(endpoint.name, endpoint.format, spool=spool)
    before = (client.requests, client.retries)
    with spool.open("w") as out:
        try:
            for page in pages(client, endpoint, since, until):
                out.write(json.dumps(page, separators=(",", ":")) + "\n")
                out.flush()
                report.pages += 1
                for bucket in page["data"]:
                    report.buckets += 1
                    end = _bucket_end(client.provider, bucket) if isinstance(bucket, dict) else None
                    if end is not None and (report.last_bucket_end is None or end > report.last_bucket_end):
                        report.last_bucket_end = end
        except PullError as exc:
            report.error = str(exc)
            report.status = exc.status
            resume = report.last_bucket_end or int(since.timestamp())
            report.resume_since = dt.datetime.fromtimestamp(resume, dt.UTC).strftime("%Y-%m-%d")
    report.requests = client.requests - before[0]
    report.retries = client.retries - before[1]
    return report


def pull(
    provider: str,
    options: PullOptions,
    since: dt.datetime,
    until: dt.datetime,
    spool_dir: Path,
    importer: Callable[[Path, str, str], dict[str, Any]],
) -> list[EndpointPull]:
    """Pull every endpoint of ``provider``; ``importer(path, format, name)`` imports a spool file
    (through the running server or the store) and answers the import result. Pages received
    before a failure are imported too."""
    if provider not in ENDPOINTS:
        raise PullError(f"unknown provider {provider!r} (allowed: {', '.join(PROVIDERS)})")
    spool_dir.mkdir(parents=True, exist_ok=True)
    client = Client(provider, options)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    reports = []
    for endpoint in ENDPOINTS[provider]:
        spool = spool_dir / f"{provider}-{endpoint.name}-{stamp}.jsonl"
        report = pull_endpoint(client, endpoint, since, until, spool)
        if report.pages:
            name = f"pull {provider} {endpoint.name} {_rfc3339(since)}..{_rfc3339(until)}"
            report.imported = importer(spool, endpoint.format, name)
        reports.append(report)
        if report.status in (401, 403):
            break  # a refused key fails every endpoint the same way
    return reports


def resume_point(reports: list[EndpointPull]) -> str | None:
    """The day to pass as ``--since`` to fetch what a failed pull is missing (the earliest of
    the endpoints' resume points; what is fetched again replaces, never adds)."""
    points = [r.resume_since for r in reports if r.resume_since]
    return min(points) if points else None

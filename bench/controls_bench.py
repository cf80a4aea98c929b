"""Benchmarks of the spend controls.

    python -m bench.controls_bench check [--rate 1000] [--seconds 20]   # decision endpoint latency
    python -m bench.controls_bench overhead [--pairs 3] [--spans 200000]  # ingest with / without controls

``check``: starts ``otelspend serve`` (own data directory) with 24 budgets and 4 policy rules,
lets the budgets load, flags a run (a retry loop sent over OTLP), then sends
``GET /v1/controls/check`` open-loop at ``--rate`` requests per second for ``--seconds``
from 16 keep-alive connections (a minimal asyncio HTTP/1.1 client in this process, so the
client costs little CPU next to the server). Latency is measured from each request's
*scheduled* send time, so a stall delays and counts every request behind it (no coordinated
omission). Queries mix tenants, workflow types, features, models (priced and unpriced) and
run ids (one flagged). Optionally ``--with-ingest`` runs the ingest load generator at the
same time.

``overhead``: runs the ingest benchmark (``bench.ingest``, ground truth checked) alternately
without the controls (``OTELSPEND_CONTROLS_ENABLED=false``) and with every control on (the
same 24 budgets and 4 rules, retry-loop detection, the anomaly detectors every 60 s, a
webhook receiver on loopback), ``--pairs`` times, and reports every run, the spread and the
ratio of the means. The machine is shared: interleaving spreads its load over both arms.

Both print the machine and append their figures to ``bench/RESULTS.md`` (``--no-results``: print only).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psutil

from bench.loadgen import percentile
from bench.machine import machine
from bench.server import ServerProcess
from bench.traces import FEATURES, MODELS, TENANTS, WORKFLOWS

RESULTS = Path(__file__).with_name("RESULTS.md")
TARGET_P99_MS = 5.0
TARGET_OVERHEAD = 0.10
CONNECTIONS = 16


# -- the controls' configuration ----------------------------------------------------------------


def write_config(directory: Path) -> dict[str, str]:
    """24 budgets and 4 policy rules over the benchmark traffic's vocabulary; the env to use them."""
    budgets = ["version: 1", "budgets:"]
    for tenant in TENANTS:
        budgets.append(f"  - {{id: {tenant}-daily, filter: {{tenant: {tenant}}}, period: day, amount_usd: '500'}}")
    for workflow in WORKFLOWS:
        budgets.append(f"  - {{id: {workflow.type}-monthly, filter: {{workflow_type: {workflow.type}}}, "
                       "period: month, timezone: Europe/Paris, amount_usd: '20000'}")  # fmt: skip
    for model in MODELS:
        budgets.append(f"  - {{id: tokens-{model.response}, filter: {{model: {model.response}}}, period: week, "
                       "amount_tokens: 5000000000}")  # fmt: skip
    for tenant in TENANTS[:4]:
        budgets.append(f"  - {{id: {tenant}-gpt41, filter: {{tenant: {tenant}, model: gpt-4.1-2025-04-14}}, "
                       "period: month, amount_usd: '300'}")  # fmt: skip
    budgets.append("  - {id: everything-monthly, period: month, amount_usd: '100000', thresholds: [0.5, 0.9, 1.0]}")
    policy = """\
version: 1
rules:
  - id: support-small-models
    match: {workflow_type: support_triage}
    models: ["gpt-4o-mini*", "claude-haiku-*", "claude-sonnet-*"]
  - id: research-price-cap
    match: {workflow_type: research_report}
    max_usd_per_mtok: {input: "2.50", output: "10.00"}
    action: warn
  - id: invoices-no-mistral
    match: {workflow_type: invoice_extraction}
    deny_models: ["mistral-*"]
  - id: no-previews
    deny_models: ["*-preview*"]
"""
    (directory / "budgets.yaml").write_text("\n".join(budgets) + "\n")
    (directory / "policy.yaml").write_text(policy)
    return {
        "OTELSPEND_BUDGETS_PATH": str(directory / "budgets.yaml"),
        "OTELSPEND_CONTROLS_POLICY": str(directory / "policy.yaml"),
    }


class _Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def webhook() -> tuple[ThreadingHTTPServer, str]:
    """A loopback webhook answering 200 (the alerts' destination)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


# -- the decision endpoint ------------------------------------------------------------------------


def _queries(flagged: str, rng: random.Random, count: int = 2_000) -> list[bytes]:
    models = [m.response for m in MODELS] + ["llama-3-70b-selfhosted", "gpt-4o-mini"]
    out = []
    for _ in range(count):
        params = {
            "tenant": rng.choice(TENANTS),
            "workflow_type": rng.choice(WORKFLOWS).type,
            "feature": rng.choice(FEATURES),
            "model": rng.choice(models),
        }
        if rng.random() < 0.5:
            params["run_id"] = flagged if rng.random() < 0.1 else f"{rng.getrandbits(128):032x}"
        out.append(f"GET /v1/controls/check?{urlencode(params)} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    return out


async def _connection(host: str, port: int, slots: list[tuple[float, bytes]], t0: float,
                      scheduled: list[float], service: list[float], errors: list[str]) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for due, request in slots:
            delay = t0 + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = loop.time()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            body = await reader.readexactly(int(match.group(1))) if match else b""
            done = loop.time()
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n")[0].decode() + " " + body[:200].decode("utf-8", "replace"))
            scheduled.append(done - (t0 + due))
            service.append(done - sent)
    finally:
        writer.close()


async def _drive(address: str, rate: float, seconds: float, requests: list[bytes]) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    total = int(rate * seconds)
    slots: list[list[tuple[float, bytes]]] = [[] for _ in range(CONNECTIONS)]
    for index in range(total):
        slots[index % CONNECTIONS].append((index / rate, requests[index % len(requests)]))
    scheduled: list[float] = []
    service: list[float] = []
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    await asyncio.gather(*(_connection(host, int(port), s, t0, scheduled, service, errors) for s in slots))
    elapsed = loop.time() - t0
    return {"requests": total, "elapsed": elapsed, "scheduled": scheduled, "service": service, "errors": errors}


def _flag_a_run(server: ServerProcess) -> str:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    from tests.otel import GrpcExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(GrpcExporter(endpoint=server.grpc_address, insecure=True)))
    tracer = provider.get_tracer("bench")
    with tracer.start_as_current_span("loop", attributes={"tenant.id": "acme"}) as root:
        for _ in range(4):
            attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                     "gen_ai.request.model": "gpt-4o-mini"}  # fmt: skip
            with tracer.start_as_current_span("chat", attributes=attrs) as span:
                span.set_status(Status(StatusCode.ERROR))
        run_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    api = f"http://{server.api_address}"
    deadline = time.monotonic() + 30
    while httpx.get(f"{api}/v1/controls/runs/{run_id}").json()["action"] != "stop":
        if time.monotonic() > deadline:
            raise RuntimeError("the retry loop was not flagged")
        time.sleep(0.1)
    return run_id


def run_check(args: argparse.Namespace) -> int:
    """Measure the decision endpoint at a fixed request rate; append the figures."""
    info = machine()
    print(f"machine: {info}", flush=True)
    with tempfile.TemporaryDirectory(prefix="otelspend-controls-") as tmp:
        env = write_config(Path(tmp))
        server = ServerProcess(Path(tmp) / "data", env=env).start()
        loadgen = None
        try:
            api = f"http://{server.api_address}"
            deadline = time.monotonic() + 60
            while (
                httpx.get(f"{api}/v1/controls/status").json()["budgets"]["loading"]
                or not httpx.get(f"{api}/v1/budgets").json()["budgets"]
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("budgets did not load")
                time.sleep(0.2)
            flagged = _flag_a_run(server)
            requests = _queries(flagged, random.Random(args.seed))
            asyncio.run(_drive(server.api_address, min(args.rate, 200), 2.0, requests))  # warm-up
            if args.with_ingest:
                loadgen = subprocess.Popen(
                    [sys.executable, "-m", "bench.loadgen", "--endpoint", server.grpc_endpoint, "--spans",
                     str(args.ingest_spans)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(2.0)
            process = psutil.Process(server.pid)
            cpu_before = sum(process.cpu_times()[:2])
            load = asyncio.run(_drive(server.api_address, args.rate, args.seconds, requests))
            load["server_cpu"] = sum(process.cpu_times()[:2]) - cpu_before
            sample = httpx.get(f"{api}/v1/controls/check", params={"run_id": flagged, "tenant": "acme"}).json()
        finally:
            if loadgen is not None:
                loadgen.kill()
                loadgen.wait()
            server.terminate()
    text = check_report(args, info, load, sample)
    print(text)
    if load["errors"]:
        print(f"{len(load['errors'])} error(s), e.g. {load['errors'][:3]}", file=sys.stderr)
        return 1
    if not args.no_results:
        _append(text)
    return 0


def check_report(args: argparse.Namespace, info: dict[str, str], load: dict[str, Any], sample: Any) -> str:
    """The decision endpoint figures as a RESULTS.md section."""
    scheduled, service = load["scheduled"], load["service"]

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.2f}"

    p99 = percentile(scheduled, 0.99) * 1000
    achieved = load["requests"] / load["elapsed"]
    mark = "met" if p99 < TARGET_P99_MS else "**not met**"
    ingest = f" · ingest load alongside ({args.ingest_spans:,} spans)" if args.with_ingest else ""
    return "\n".join(
        [
            f"## {_now()} · decision endpoint · {args.rate:,.0f} req/s for {args.seconds:g} s{ingest}",
            "",
            _machine_line(info),
            "",
            "24 budgets, 4 policy rules, one flagged run; 16 keep-alive connections, open loop; latency from "
            "each request's scheduled send time (client in another process, same machine).",
            "",
            "| figure | value | target |",
            "|---|---|---|",
            f"| requests | {load['requests']:,} at {achieved:,.0f} req/s achieved | |",
            f"| latency p50 / p90 / p99 / max | {ms(scheduled, 0.5)} / {ms(scheduled, 0.9)} / {p99:.2f} / "
            f"{max(scheduled) * 1000:.2f} ms | p99 < {TARGET_P99_MS:g} ms: {mark} |",
            f"| service time p50 / p99 (send to answer) | {ms(service, 0.5)} / {ms(service, 0.99)} ms | |",
            f"| server CPU per request | {load['server_cpu'] / load['requests'] * 1e6:,.0f} µs | |",
            f"| errors | {len(load['errors'])} | 0 |",
            f"| sample answer | `{sample['action']}`: {sample['reasons'][0]['message'][:80]} | |",
            "",
        ]
    )


# -- ingest with and without the controls --------------------------------------------------------------


def _ingest_once(args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.ingest", "--spans", str(args.spans), "--no-results"]
    for name, value in env.items():
        command += ["--env", f"{name}={value}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"bench.ingest failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    figures = {}
    for name, pattern in (("spans_per_second", r"\| spans/s end to end \| ([\d,]+) \|"),
                          ("cpu_per_1k", r"\| server CPU s per 1k spans \| ([\d.]+) \|"),
                          ("p99_ms", r"\| export latency p50 / p99 \| [\d.,]+ / ([\d.,]+) ms \|")):  # fmt: skip
        match = re.search(pattern, result.stdout)
        if match is None:
            raise RuntimeError(f"no {name} in bench.ingest's output:\n{result.stdout[-2000:]}")
        figures[name] = float(match.group(1).replace(",", ""))
    return figures


def run_overhead(args: argparse.Namespace) -> int:
    """Ingest with the controls off and on, alternately; append the figures."""
    info = machine()
    print(f"machine: {info}", flush=True)
    sink, url = webhook()
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="otelspend-controls-") as tmp:
        on_env = {
            **write_config(Path(tmp)),
            "OTELSPEND_ALERTS_WEBHOOK_URL": url,
            "OTELSPEND_ALERTS_WEBHOOK_SECRET": "bench-secret",
            "OTELSPEND_CONTROLS_ANOMALY_INTERVAL_SECONDS": "60",
        }
        arms = [("off", {"OTELSPEND_CONTROLS_ENABLED": "false"}), ("on", on_env)]
        for index in range(args.pairs):
            for arm, env in arms if index % 2 == 0 else arms[::-1]:
                figures = _ingest_once(args, env)
                runs[arm].append(figures)
                print(f"pair {index + 1} controls {arm}: {figures}", flush=True)
    sink.shutdown()
    text = overhead_report(args, info, runs, _Sink.received)
    print(text)
    if not args.no_results:
        _append(text)
    return 0


def overhead_report(args: argparse.Namespace, info: dict[str, str], runs: dict[str, list[dict[str, float]]],
                    alerts: int) -> str:  # fmt: skip
    """The ingest overhead figures as a RESULTS.md section."""

    def column(arm: str, key: str) -> list[float]:
        return [r[key] for r in runs[arm]]

    off, on = column("off", "spans_per_second"), column("on", "spans_per_second")
    ratio = statistics.mean(on) / statistics.mean(off)
    mark = "met" if ratio >= 1 - TARGET_OVERHEAD else "**not met**"
    lines = [
        f"## {_now()} · ingest with and without the controls · {args.spans:,} spans × {args.pairs} pairs",
        "",
        _machine_line(info),
        "",
        "`bench.ingest` (ground truth checked every run), alternating arms. On: 24 budgets, 4 policy rules, "
        f"retry-loop detection, anomaly detectors every 60 s, one signed webhook ({alerts} alert deliveries "
        "received over all runs).",
        "",
        "| run | controls off: spans/s · CPU s/1k spans · export p99 ms | controls on: spans/s · CPU s/1k · p99 ms |",
        "|---|---|---|",
    ]
    for index in range(args.pairs):
        a, b = runs["off"][index], runs["on"][index]
        lines.append(
            f"| {index + 1} | {a['spans_per_second']:,.0f} · {a['cpu_per_1k']:.3f} · {a['p99_ms']:,.1f} | "
            f"{b['spans_per_second']:,.0f} · {b['cpu_per_1k']:.3f} · {b['p99_ms']:,.1f} |"
        )
    lines += [
        f"| mean (min-max) | {statistics.mean(off):,.0f} ({min(off):,.0f}-{max(off):,.0f}) | "
        f"{statistics.mean(on):,.0f} ({min(on):,.0f}-{max(on):,.0f}) |",
        "",
        f"With the controls on, ingest runs at {ratio:.1%} of the rate without them (mean over mean; target ≥ "
        f"{1 - TARGET_OVERHEAD:.0%}: {mark}). CPU per 1k spans: {statistics.mean(column('off', 'cpu_per_1k')):.3f} "
        f"off, {statistics.mean(column('on', 'cpu_per_1k')):.3f} on.",
        "",
    ]
    return "\n".join(lines)


# -- shared -----------------------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _machine_line(info: dict[str, str]) -> str:
    return (
        f"commit {info['commit']} · {info['cpu']}, {info['cores']} cores, {info['ram']} · {info['os']} · "
        f"Python {info['python']} · chDB {info['chdb']} · load average before the run {info['load']}"
    )


def _append(text: str) -> None:
    with RESULTS.open("a") as handle:
        handle.write("\n" + text)
    print(f"appended to {RESULTS}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="decision endpoint latency at a fixed request rate")
    check.add_argument("--rate", type=float, default=1000.0, help="requests per second (default 1000)")
    check.add_argument("--seconds", type=float, default=20.0, help="how long (default 20)")
    check.add_argument("--seed", type=int, default=1)
    check.add_argument("--with-ingest", action="store_true", help="run the ingest load generator meanwhile")
    check.add_argument("--ingest-spans", type=int, default=300_000)
    check.add_argument("--no-results", action="store_true")
    check.set_defaults(func=run_check)
    overhead = sub.add_parser("overhead", help="ingest throughput with and without the controls, interleaved")
    overhead.add_argument("--pairs", type=int, default=3)
    overhead.add_argument("--spans", type=int, default=200_000)
    overhead.add_argument("--no-results", action="store_true")
    overhead.set_defaults(func=run_overhead)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

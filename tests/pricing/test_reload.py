"""Rate-card reload while the server runs: a changed file prices new spans, an invalid edit
keeps the previous card (and says why), nothing is dropped; SIGHUP reloads too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from opentelemetry.trace import SpanKind

from tests.conftest import wait_for
from tests.otel import tracer_provider

from .helpers import write_card

MILLION = 1_000_000


def card(input_rate: str) -> str:
    return (
        "entries:\n"
        "  - id: house-model\n"
        "    model: house-model\n"
        f"    prices: {{input: {input_rate}, cache_read: 0, output: 0}}\n"
    )


class Sender(threading.Thread):
    """Sends one-call runs through the OTel SDK until stopped; counts what it sent."""

    def __init__(self, server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.sent = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with tracer_provider(self.server, "grpc", service="reload") as tp:
                tracer = tp.get_tracer("app")
                while not self.stop.is_set():
                    with tracer.start_as_current_span("run", kind=SpanKind.SERVER):
                        tracer.start_span("chat", kind=SpanKind.CLIENT, attributes={
                            "gen_ai.operation.name": "chat", "gen_ai.request.model": "house-model",
                            "gen_ai.usage.input_tokens": MILLION}).end()  # fmt: skip
                    self.sent += 1
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def finish(self) -> int:
        self.stop.set()
        self.join(30)
        assert self.error is None, self.error
        return self.sent


def test_card_change_while_spans_flow_prices_new_spans_and_drops_nothing(start_server, tmp_path):
    rates = write_card(tmp_path / "rates.yaml", card("1.0"))
    server = start_server(rate_card=str(rates))
    pricing = server.app.pricing
    sender = Sender(server)
    sender.start()

    def stored_calls() -> int:
        return server.scalar("SELECT count() FROM {db}.spans WHERE span_class = 'llm'")

    wait_for(lambda: stored_calls() >= 5, what="spans priced by the first card")
    generation = pricing.generation
    write_card(rates, card("2.0"))
    wait_for(lambda: pricing.generation > generation, what="the reload")
    after_reload = sender.sent
    wait_for(lambda: sender.sent >= after_reload + 5, what="spans after the reload")

    # An invalid edit: the previous card stays in force, and the reason is kept.
    write_card(rates, card("-3.0"))
    wait_for(lambda: pricing.last_error, what="the failed reload")
    assert "entry 1 (id 'house-model'), prices.input = -3.0" in pricing.last_error
    after_error = sender.sent
    wait_for(lambda: sender.sent >= after_error + 5, what="spans after the failed reload")
    sent = sender.finish()
    server.wait_idle()

    rows = server.rows(
        "SELECT cost_usd, price_source, ingested_at FROM {db}.spans FINAL WHERE span_class = 'llm' ORDER BY ingested_at"
    )
    assert len(rows) == sent  # nothing dropped across the reloads
    costs = [cost for cost, _, _ in rows]
    assert set(costs) == {Decimal("1"), Decimal("2")}  # never the invalid card, never unpriced
    # Each batch is priced by one card: every span of the first card was stored before any of the second.
    first = [at for cost, _, at in rows if cost == 1]
    second = [at for cost, _, at in rows if cost == 2]
    assert max(first) <= min(second)
    assert len({source for _, source, _ in rows}) == 2
    assert pricing.current.card.source == next(source for cost, source, _ in rows if cost == 2)

    # Fixing the file clears the error.
    write_card(rates, card("3.0"))
    wait_for(lambda: not pricing.last_error and pricing.current.quote("", "house-model", "", time.time_ns())
             .compiled.rates_usd_per_mtok["input_mtok"] == "3.0", what="the fixed card")  # fmt: skip


def test_sighup_reloads_the_card_of_a_running_serve(tmp_path: Path):
    rates = write_card(tmp_path / "rates.yaml", card("1.0"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELSPEND_")}
    command = [
        sys.executable, "-m", "otelspend", "serve", "--data-dir", str(tmp_path / "data"),
        "--clickhouse-dsn", f"chdb://{tmp_path / 'chdb'}", "--rate-card", str(rates), "--log-level", "info",
        "--otlp-grpc-address", "127.0.0.1:0", "--otlp-http-address", "127.0.0.1:0", "--api-address", "127.0.0.1:0",
        "--sql-address", "127.0.0.1:0",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True).start()
    try:
        listening = process.stdout.readline()
        assert listening.startswith("otelspend listening"), (listening, lines)
        # Same mtime as before: the 2 s file poll cannot see the edit, only SIGHUP can.
        before = rates.stat()
        rates.write_text(card("2.0"))
        os.utime(rates, ns=(before.st_atime_ns, before.st_mtime_ns))
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: any(re.search(r"rate card reloaded from .*rates\.yaml \(generation 2\)", x) for x in lines),
                 timeout=30, what="the reload log line")  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, lines

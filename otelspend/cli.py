"""``otelspend`` command line: serve, migrate, rates, reprice, rollups, demo."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from otelspend.settings import ConfigError, Settings, load_settings

log = logging.getLogger("otelspend")

# serve flags -> settings path (each also an OTELSPEND_* variable)
SERVE_FLAGS: dict[str, tuple[str, ...]] = {
    "clickhouse_dsn": ("clickhouse", "dsn"),
    "database": ("clickhouse", "database"),
    "otlp_grpc_address": ("otlp", "grpc_address"),
    "otlp_http_address": ("otlp", "http_address"),
    "api_address": ("api", "address"),
    "rate_card": ("rate_card",),
    "ownership": ("ownership",),
    "api_tokens": ("api", "tokens"),
    "data_dir": ("data_dir",),
    "log_level": ("log_level",),
}


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML settings file (also OTELSPEND_CONFIG)")


def _add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clickhouse-dsn", help="chdb://<dir> or http(s)://host:8123 (OTELSPEND_CLICKHOUSE_DSN)")
    parser.add_argument("--database", help="ClickHouse database (OTELSPEND_CLICKHOUSE_DATABASE)")
    parser.add_argument("--data-dir", help="directory for the write-ahead log and embedded data (OTELSPEND_DATA_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otelspend", description="OpenTelemetry-native AI spend ledger")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the OTLP receivers, pipeline, API and dashboard")
    _add_config(serve)
    _add_store_flags(serve)
    serve.add_argument("--otlp-grpc-address", help="default 127.0.0.1:4317 (OTELSPEND_OTLP_GRPC_ADDRESS)")
    serve.add_argument("--otlp-http-address", help="default 127.0.0.1:4318 (OTELSPEND_OTLP_HTTP_ADDRESS)")
    serve.add_argument("--api-address", help="default 127.0.0.1:8000 (OTELSPEND_API_ADDRESS)")
    serve.add_argument("--rate-card", help="YAML rate card (OTELSPEND_RATE_CARD)")
    serve.add_argument("--ownership", help="YAML ownership rules (OTELSPEND_OWNERSHIP)")
    serve.add_argument("--api-tokens", help="comma-separated API bearer tokens (OTELSPEND_API_TOKENS)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    mig = sub.add_parser("migrate", help="apply schema migrations (serve does this too)")
    _add_config(mig)
    _add_store_flags(mig)
    mig.add_argument("--print-cluster-ddl", metavar="CLUSTER", help="print the replicated ON CLUSTER DDL and exit")

    sub.add_parser("version", help="print the version")
    return parser


def settings_from_args(args: argparse.Namespace, flags: dict[str, tuple[str, ...]]) -> Settings:
    overrides: dict[str, Any] = {}
    for name, path in flags.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        target = overrides
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return load_settings(overrides, config_file=getattr(args, "config", None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(settings_from_args(args, SERVE_FLAGS))
        if args.command == "migrate":
            return _migrate(args, settings_from_args(args, _STORE_FLAGS))
        if args.command == "version":
            from otelspend import __version__

            print(__version__)
            return 0
    except ConfigError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


_STORE_FLAGS = {k: v for k, v in SERVE_FLAGS.items() if k in ("clickhouse_dsn", "database", "data_dir")}


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _serve(settings: Settings) -> int:
    from otelspend.app import OtelSpend

    _logging(settings.log_level)
    app = OtelSpend(settings)
    try:
        addresses = app.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        app.stop()
        return 1
    print(addresses.line(), flush=True)

    def stop(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        app.stop()

    def reload(_signum: int, _frame: Any) -> None:
        app.pricing.request()
        app.ownership.request()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    app.wait()
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from otelspend.clickhouse.client import Store
    from otelspend.clickhouse.migrate import migrate

    _logging(settings.log_level)
    store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
    try:
        applied = migrate(store)
    finally:
        store.close()
    print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in applied))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

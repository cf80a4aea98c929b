"""One module per ``otelspend`` subcommand. Each exposes ``register(subparsers)``, which adds
its parser and sets ``func(args) -> int`` as the handler."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from otelspend.redact import RedactSecrets, secret_values
from otelspend.settings import Settings, load_settings

# flag dest -> settings path; every such flag is also an OTELSPEND_* variable
STORE_FLAGS: dict[str, tuple[str, ...]] = {
    "clickhouse_dsn": ("clickhouse", "dsn"),
    "database": ("clickhouse", "database"),
    "data_dir": ("data_dir",),
}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every store-using command takes: settings file, ClickHouse DSN and database, data directory."""
    parser.add_argument("--config", help="YAML settings file (also OTELSPEND_CONFIG)")
    parser.add_argument("--clickhouse-dsn", help="chdb://<dir> or http(s)://host:8123 (OTELSPEND_CLICKHOUSE_DSN)")
    parser.add_argument("--database", help="ClickHouse database (OTELSPEND_CLICKHOUSE_DATABASE)")
    parser.add_argument("--data-dir", help="write-ahead log and embedded data directory (OTELSPEND_DATA_DIR)")


def settings_from_args(args: argparse.Namespace, flags: Mapping[str, tuple[str, ...]] = STORE_FLAGS) -> Settings:
    """The settings from file and environment, with the command's flags (``flags``: dest -> settings path) on top."""
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


def setup_logging(level: str, settings: Settings | None = None) -> None:
    """Log to stderr at ``level``; every secret value of ``settings`` is replaced by ``***`` in
    what is written (a library's message may quote one; our own messages never do)."""
    handler = logging.StreamHandler()
    if settings is not None:
        handler.addFilter(RedactSecrets(secret_values(settings)))
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=[handler]
    )

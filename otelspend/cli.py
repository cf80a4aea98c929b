"""``otelspend`` command line. Subcommands live in ``otelspend.commands``, one module each."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otelspend import __version__
from otelspend.settings import ConfigError

COMMANDS = (
    "serve",
    "migrate",
    "demo",
    "rates",
    "reprice",
    "rollups",
    "billing",
    "allocate",
    "revenue",
    "export",
    "statements",
)
"""Modules of otelspend.commands, in help order."""


def build_parser() -> argparse.ArgumentParser:
    """The ``otelspend`` argument parser, one subcommand per module of ``otelspend.commands``."""
    parser = argparse.ArgumentParser(prog="otelspend", description="OpenTelemetry-native AI spend ledger")
    parser.add_argument("--version", action="version", version=f"otelspend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"otelspend.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a configuration or start-up mistake prints one line, exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""Test-only expansion of the Grafana ClickHouse plugin's macros and dashboard variables.

Grafana sends a panel's ``rawSql`` to the grafana-clickhouse-datasource backend after
interpolating dashboard variables; the plugin then expands its macros
(pkg/macros/macros.go in grafana/clickhouse-datasource). The tests need the same concrete
SQL to run every panel on chDB, so this module reproduces the subset the otelspend
dashboards use, with the plugin's output shapes:

* ``$__timeFilter(col)`` -> ``col >= toDateTime(<from>) AND col <= toDateTime(<to>)``
* ``$__fromTime`` / ``$__toTime`` -> ``toDateTime(<unix seconds>)``
* ``$__timeInterval(col)`` -> ``toStartOfInterval(toDateTime(col), INTERVAL <n> second)``
* ``$__interval_s`` -> ``<n>``
* ``${var}`` / ``$var`` -> the variable's value

Anything else starting with ``$`` is an error, so a dashboard cannot use a macro this
expander (and therefore the tests) does not know. It is not used by otelspend itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_MACRO_WITH_ARG = re.compile(r"\$__(timeFilter|timeInterval)\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)")
_MACRO_BARE = re.compile(r"\$__(fromTime|toTime|interval_s)\b(?!\()")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class UnknownMacro(ValueError):
    """The SQL uses a macro or variable the expander does not know."""


@dataclass(frozen=True)
class TimeRange:
    from_s: int
    to_s: int
    interval_s: int = 3600


def expand(sql: str, time_range: TimeRange, variables: Mapping[str, str]) -> str:
    """Concrete SQL for ``sql`` as the plugin would run it for ``time_range``."""
    interval = max(time_range.interval_s, 1)  # the plugin never goes below one second

    def with_arg(match: re.Match[str]) -> str:
        name, column = match.group(1), match.group(2)
        if name == "timeFilter":
            return f"{column} >= toDateTime({time_range.from_s}) AND {column} <= toDateTime({time_range.to_s})"
        return f"toStartOfInterval(toDateTime({column}), INTERVAL {interval} second)"

    def bare(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "fromTime":
            return f"toDateTime({time_range.from_s})"
        if name == "toTime":
            return f"toDateTime({time_range.to_s})"
        return str(interval)

    expanded = _MACRO_WITH_ARG.sub(with_arg, sql)
    expanded = _MACRO_BARE.sub(bare, expanded)
    leftover = re.search(r"\$__\w+", expanded)
    if leftover:
        raise UnknownMacro(f"unknown macro {leftover.group(0)}")

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise UnknownMacro(f"unknown dashboard variable ${name}")
        return variables[name]

    return _VARIABLE.sub(variable, expanded)

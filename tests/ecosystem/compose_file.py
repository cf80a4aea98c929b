"""Test-only reading of docker-compose.yml the way Compose would interpolate it.

Compose substitutes ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` from the
environment (or an .env file) before anything else; ``$$`` is a literal ``$``. The
tests read the file with an empty environment, i.e. the documented defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(KeyError):
    """A ``${VAR}`` without default and without a value."""


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Substitute variables in every string of a parsed compose document."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1) or match.group(4)
            operator, default = match.group(2), match.group(3)
            found = environ.get(name)
            if operator == ":-" and not found:
                return default
            if operator == "-" and found is None:
                return default
            if found is None:
                raise MissingVariable(name)
            return found

        return _INTERPOLATION.sub(substitute, value)
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    return value


def load_compose(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    return interpolate(yaml.safe_load(path.read_text()), environ or {})


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose accepts a mapping or KEY=VALUE items)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def port_mappings(service: Mapping[str, Any]) -> list[tuple[str, int | None, int]]:
    """``ports`` entries as (host ip, published port or None, container port), short syntax."""
    mappings = []
    for item in service.get("ports") or []:
        parts = str(item).split("/")[0].split(":")
        if len(parts) == 1:
            mappings.append(("", None, int(parts[0])))
        elif len(parts) == 2:
            mappings.append(("", int(parts[0]), int(parts[1])))
        else:
            mappings.append((parts[0], int(parts[1]), int(parts[2])))
    return mappings


def container_ports(service: Mapping[str, Any]) -> set[int]:
    """Every port the service offers: published targets plus ``expose``."""
    ports = {target for _, _, target in port_mappings(service)}
    ports |= {int(str(item).split("/")[0]) for item in service.get("expose") or []}
    return ports


def mounts(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``volumes`` entries as (source, target), short syntax; the mode suffix is dropped."""
    found = []
    for item in service.get("volumes") or []:
        parts = str(item).split(":")
        found.append((parts[0], parts[1]))
    return found

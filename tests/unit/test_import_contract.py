"""The import contract: dependencies between stages point one way.

Every module of the package is read (as source, with ``ast``) and assigned to a stage; each
import of another stage must be allowed below. A wrong arrow fails here, in ``make test``.
Lazy imports inside functions count too: an arrow is an arrow wherever it is written.

Run ``python -m tests.unit.test_import_contract`` to print the import matrix.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FOLDERS: dict[str, str] = {
    "receiver": "receiver",
    "enrich": "enrich",
    "clickhouse": "clickhouse",
    "pipeline": "pipeline",
    "finance": "finance",
    "controls": "controls",
    "api": "api",
}
"""Top-level folder -> stage (each installs as ``otelspend.<folder>``)."""

KERNEL_MODULES = frozenset(
    {"record", "conventions", "settings", "redact", "metrics", "reloadable", "money", "observers"}
)
"""``otelspend/<name>.py`` modules every stage may use; they import no stage."""

ALLOWED: dict[str, frozenset[str]] = {
    "kernel": frozenset(),
    "receiver": frozenset({"kernel"}),
    "enrich": frozenset({"kernel"}),
    "clickhouse": frozenset({"kernel"}),
    # The pipeline implements the receiver's BatchSink protocol and drives enrich + store.
    "pipeline": frozenset({"kernel", "receiver", "enrich", "clickhouse"}),
    "finance": frozenset({"kernel", "enrich", "clickhouse"}),
    "controls": frozenset({"kernel", "enrich", "clickhouse"}),
    "api": frozenset({"kernel", "enrich", "clickhouse", "finance", "controls"}),
    "root": frozenset({"kernel", "receiver", "enrich", "clickhouse", "pipeline", "finance", "controls", "api"}),
}
"""Stage -> the stages it may import. ``root`` is the composition root (app, cli, commands, demo)."""


def stage_of_module(module: str) -> str | None:
    """``otelspend.enrich.pricing`` -> ``enrich``; None for modules outside the package."""
    parts = module.split(".")
    if parts[0] != "otelspend":
        return None
    if len(parts) == 1:
        return "kernel"
    if parts[1] in FOLDERS:
        return FOLDERS[parts[1]]
    # ``otelspend.__version__`` and friends name the package itself.
    return "kernel" if parts[1] in KERNEL_MODULES or parts[1] == "__version__" else "root"


def package_files() -> list[tuple[Path, str]]:
    """Every source file of the package with its dotted module name."""
    files: list[tuple[Path, str]] = []
    for folder in ("otelspend", *FOLDERS):
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(base).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            prefix = ["otelspend"] if folder == "otelspend" else ["otelspend", folder]
            files.append((path, ".".join(prefix + parts)))
    return files


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            if node.module is not None or node.level:
                # ``from otelspend import app`` imports a module, not a name.
                found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def arrows() -> list[tuple[str, str, str, int, str]]:
    """(from stage, to stage, file, line, imported module) for every cross-stage import."""
    found = []
    for path, module in package_files():
        source = stage_of_module(module)
        assert source is not None
        for line, target in imports_of(path, module):
            stage = stage_of_module(target)
            if stage is None or stage == source:
                continue
            found.append((source, stage, str(path.relative_to(ROOT)), line, target))
    return found


def test_every_module_belongs_to_a_known_stage() -> None:
    stages = {stage_of_module(module) for _, module in package_files()}
    assert stages <= set(ALLOWED), stages - set(ALLOWED)


def test_dependencies_point_one_way() -> None:
    wrong = [
        f"{file}:{line}: {source} imports {target} ({stage})"
        for source, stage, file, line, target in arrows()
        if stage not in ALLOWED[source]
    ]
    assert not wrong, "imports against the stage contract:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "stage"),
    [
        pytest.param("otelspend.record", "kernel", id="kernel"),
        pytest.param("otelspend.app", "root", id="root"),
        pytest.param("otelspend.commands.rates", "root", id="commands"),
        pytest.param("otelspend.pipeline.wal", "pipeline", id="pipeline"),
        pytest.param("otelspend.api.routes.runs", "api", id="api"),
        pytest.param("fastapi", None, id="outside"),
    ],
)
def test_stage_of_module(module: str, stage: str | None) -> None:
    assert stage_of_module(module) == stage


def test_a_wrong_arrow_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from otelspend.pipeline.stage import Pipeline\n")
    targets = [target for _, target in imports_of(bad, "otelspend.receiver.bad")]
    assert "otelspend.pipeline.stage" in targets
    assert stage_of_module("otelspend.pipeline.stage") not in ALLOWED["receiver"]


def matrix() -> str:
    """The import matrix: rows import columns (count of import statements)."""
    counts = Counter((source, stage) for source, stage, *_ in arrows())
    order = ["kernel", "receiver", "enrich", "clickhouse", "pipeline", "finance", "controls", "api", "root"]
    lines = ["from \\ to".ljust(12) + "".join(s[:10].rjust(11) for s in order)]
    for source in order:
        lines.append(source.ljust(12) + "".join(str(counts.get((source, s), "")).rjust(11) for s in order))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(matrix() + "\n")

"""Type-check the whole ``otelspend`` package with mypy (run by ``make test``).

    .venv/bin/python -m tests.typecheck            # exit status 1 on any error

The stage folders install as subpackages (``receiver/`` is ``otelspend.receiver``, see
``[tool.setuptools] package-dir``) through an import hook mypy cannot follow, and mypy names a
module after its path. So the package is assembled as it installs, from symbolic links under
``build/typecheck/otelspend``, and checked there with the ``[tool.mypy]`` settings of
``pyproject.toml``; paths in the report are mapped back to the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "typecheck"


def package_dirs() -> dict[str, Path]:
    """Installed package -> its source folder, from ``[tool.setuptools] package-dir``."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {package: ROOT / folder for package, folder in setuptools["package-dir"].items()}


def assemble() -> dict[str, str]:
    """Link the package as installed; returns link prefix -> source prefix (for the report)."""
    shutil.rmtree(BUILD, ignore_errors=True)
    mapping: dict[str, str] = {}
    for package, source in sorted(package_dirs().items()):
        target = BUILD.joinpath(*package.split("."))
        if package == "otelspend":
            target.mkdir(parents=True)
            for entry in source.iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        else:
            target.symlink_to(source, target_is_directory=True)
        mapping[target.relative_to(BUILD).as_posix() + "/"] = source.relative_to(ROOT).as_posix() + "/"
    return mapping


def to_source(line: str, mapping: dict[str, str]) -> str:
    """``otelspend/receiver/normalize.py:12: ...`` -> ``receiver/normalize.py:12: ...``."""
    for link, source in sorted(mapping.items(), key=lambda item: -len(item[0])):
        if line.startswith(link):
            return source + line[len(link) :]
    return line


def main() -> int:
    mapping = assemble()
    command = [
        sys.executable, "-m", "mypy",
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / "build" / "mypy-cache"),
        "-p", "otelspend",
    ]  # fmt: skip
    # Run where the links are: mypy finds ``otelspend`` in its working directory.
    done = subprocess.run(command, cwd=BUILD, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        print(to_source(line, mapping))
    print(done.stderr, file=sys.stderr, end="")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

"""The Dockerfile and .dockerignore, checked without a Docker engine: instructions known,
COPY sources present and not ignored, everything `pip install .` reads copied, a
non-root user, a health check that really answers (its command runs against a live
server here), exposed ports matching the listen addresses, and a CMD that is a real
subcommand."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import subprocess
import sys
import tomllib

import pytest

from otelspend.cli import COMMANDS, build_parser
from otelspend.settings import env_names, load_settings, split_address
from tests.ecosystem.conftest import REPO, DemoData

DOCKERFILE = REPO / "Dockerfile"
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
         "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}  # fmt: skip


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; comments dropped, backslash continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "dangling line continuation"
    return instructions


def _args(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def _env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(arguments))
    return env


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _ignored(path: str) -> bool:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, p) or fnmatch.fnmatch(prefix, p.removeprefix("**/")) or
        fnmatch.fnmatch(parts[-1], p.removeprefix("**/"))
        for p in patterns for prefix in prefixes
    )  # fmt: skip


def test_instructions_are_known_and_the_base_is_python_slim(instructions):
    assert all(keyword in KNOWN for keyword, _ in instructions)
    froms = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert froms == ["python:3.11-slim"]


def test_copy_sources_exist_are_not_ignored_and_cover_what_pip_install_reads(instructions):
    copied: set[str] = set()
    for keyword, arguments in instructions:
        if keyword in ("COPY", "ADD"):
            *sources, _destination = _args(arguments)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"
                copied.add(source.rstrip("/"))
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"], *project["tool"]["setuptools"]["package-dir"].values()}
    assert needed <= copied, f"pip install . also needs {sorted(needed - copied)}"
    for package_data in project["tool"]["setuptools"]["package-data"]:
        folder = project["tool"]["setuptools"]["package-dir"][package_data]
        assert folder in copied
    for module in ("otelspend/demo.py", "otelspend/demo_sender.py", "otelspend/commands/demo.py"):
        assert not _ignored(module)


def test_dockerignore_keeps_local_state_out(instructions):
    for path in (".venv/bin/python", "data/chdb", ".git/HEAD", "tests/conftest.py", "otelspend/__pycache__/x.pyc"):
        assert _ignored(path), path


def test_runs_as_an_unprivileged_user_declared_in_the_image(instructions):
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    keywords = [keyword for keyword, _ in instructions]
    assert keywords.index("USER") < keywords.index("CMD")
    setup = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert f"useradd --system --uid 10001 --gid {users[-1]}" in setup


def test_environment_is_valid_settings_and_ports_are_exposed(instructions):
    env = _env(instructions)
    otelspend_env = {k: v for k, v in env.items() if k.startswith("OTELSPEND_")}
    assert set(otelspend_env) <= set(env_names())
    settings = load_settings(environ=otelspend_env)
    exposed = {int(port) for keyword, arguments in instructions if keyword == "EXPOSE" for port in arguments.split()}
    addresses = (settings.otlp.grpc_address, settings.otlp.http_address, settings.api.address)
    assert exposed == {split_address(a)[1] for a in addresses} == {4317, 4318, 8000}
    assert all(split_address(a)[0] == "0.0.0.0" for a in addresses)
    volumes = [_args(arguments) for keyword, arguments in instructions if keyword == "VOLUME"]
    assert [str(settings.data_dir)] in volumes
    dsn = settings.clickhouse.dsn.get_secret_value()
    assert dsn == f"chdb://{settings.data_dir}/chdb", "embedded store inside the volume"


def test_cmd_is_a_real_subcommand(instructions):
    (cmd,) = [_args(arguments) for keyword, arguments in instructions if keyword == "CMD"]
    assert cmd[0] == "otelspend" and cmd[1] in COMMANDS
    args = build_parser().parse_args(cmd[1:])
    assert args.command == "serve"


def _healthcheck_command(instructions) -> list[str]:
    (arguments,) = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    options, _, command = arguments.partition("CMD ")
    assert "--interval" in options and "--timeout" in options
    return json.loads(command)


def test_healthcheck_passes_on_a_ready_server_and_fails_without_one(instructions, demo: DemoData):
    command = _healthcheck_command(instructions)
    assert command[:2] == ["python", "-c"] and "/readyz" in command[2]
    # The image's command, run as the container would, against the live test server.
    run_env = {**os.environ, "OTELSPEND_API_ADDRESS": f"0.0.0.0:{split_address(demo.server.addresses.api)[1]}"}
    ready = subprocess.run([sys.executable, "-c", command[2]], env=run_env, capture_output=True, timeout=30)
    assert ready.returncode == 0, ready.stderr
    run_env["OTELSPEND_API_ADDRESS"] = "0.0.0.0:9"  # discard port: nothing answers
    down = subprocess.run([sys.executable, "-c", command[2]], env=run_env, capture_output=True, timeout=30)
    assert down.returncode != 0

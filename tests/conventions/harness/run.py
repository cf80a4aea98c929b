"""Regenerate captures: ``python -m tests.conventions.harness.run [name ...]`` (``make captures``).

For each target: a throwaway virtual environment (or npm project) with its pinned packages,
a fresh fake provider and OTLP sink on loopback, the scripted scenario run with the real
library, then ``tests/conventions/captures/<name>.json``: every exported span, the resource,
the runs, the steps, the package versions and the fake provider's ledger.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conventions.harness.fake_provider import FakeProvider
from tests.conventions.harness.sink import Sink
from tests.conventions.harness.targets import BY_NAME, TARGETS, Target

HERE = Path(__file__).parent
CAPTURES = HERE.parent / "captures"
LOCKS = HERE / "locks"
SCENARIOS = HERE / "scenarios"
NODE = HERE / "node"
ENVS = Path(os.environ.get("OTELSPEND_CAPTURE_ENVS", Path.home() / ".cache" / "otelspend-captures"))
SCENARIO_TIMEOUT_S = 600
INSTALL_TIMEOUT_S = 1800


def log(message: str) -> None:
    print(f"[captures] {message}", flush=True)


# -- environments ---------------------------------------------------------------------------


def python_env(target: Target) -> Path:
    """The target's virtual environment, installed from its lock (or its requirements, then
    locked). Reused while the lock / requirements are unchanged."""
    lock = LOCKS / f"{target.name}.txt"
    spec = lock.read_text() if lock.exists() else "\n".join(target.requirements)
    digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
    env = ENVS / f"{target.name}-{digest}"
    python = env / "bin" / "python"
    if (env / ".complete").exists():
        return python
    shutil.rmtree(env, ignore_errors=True)
    env.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as reqs:
        reqs.write(spec + "\n")
    log(f"{target.name}: installing {'the lock' if lock.exists() else ', '.join(target.requirements)}")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "-r", reqs.name], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location")]
        raise RuntimeError(f"{target.name}: pip install failed:\n" + "\n".join(errors[-30:]))
    if not lock.exists():
        frozen = subprocess.run(
            [str(python), "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True, text=True
        ).stdout
        lock.write_text(f"# {target.name}: pip freeze of the environment its capture was taken in\n{frozen}")
    (env / ".complete").touch()
    return python


def installed_versions(python: Path) -> dict[str, str]:
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], check=True, capture_output=True, text=True).stdout
    out = {}
    for line in frozen.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            out[name.lower().replace("_", "-")] = version
    return out


def node_project(target: Target) -> Path:
    """A throwaway copy of the npm project, installed with ``npm ci`` from its lock (or
    ``npm install``, whose lock is then kept)."""
    source = NODE / target.scenario
    digest = hashlib.sha256(
        b"".join((source / f).read_bytes() for f in ("package.json", "package-lock.json") if (source / f).exists())
    ).hexdigest()[:12]
    project = ENVS / f"{target.name}-{digest}"
    if (project / ".complete").exists():
        for item in source.iterdir():  # scenario edits need no reinstall
            if item.is_file():
                shutil.copy2(item, project / item.name)
        return project
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(source, project)
    locked = (source / "package-lock.json").exists()
    log(f"{target.name}: npm {'ci' if locked else 'install'}")
    command = ["npm", "ci" if locked else "install", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(command, cwd=project, check=True, timeout=INSTALL_TIMEOUT_S)
    if not locked:
        shutil.copy2(project / "package-lock.json", source / "package-lock.json")
    (project / ".complete").touch()
    return project


def node_versions(project: Path) -> dict[str, str]:
    lock = json.loads((project / "package-lock.json").read_text())
    out = {}
    for path, meta in lock.get("packages", {}).items():
        if path.startswith("node_modules/") and "version" in meta:
            out[path[len("node_modules/") :]] = meta["version"]
    return out


# -- one capture ----------------------------------------------------------------------------


def scenario_env(target: Target, fake: FakeProvider, sink: Sink, result: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "RC_FAKE_URL": fake.url,
            "RC_OTLP_BASE": sink.url,
            "RC_OTLP_ENDPOINT": f"{sink.url}/v1/traces",
            "RC_LIBRARY": target.name,
            "RC_RESULT": str(result),
            "PYTHONPATH": str(SCENARIOS),
            "OTEL_SERVICE_NAME": f"rc-{target.name}",
            "OTEL_RESOURCE_ATTRIBUTES": f"rc.library={target.name},rc.harness=capture",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OPENAI_API_KEY": "sk-rc-dummy",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "ANTHROPIC_API_KEY": "sk-ant-rc-dummy",
            "ANTHROPIC_BASE_URL": fake.url,
            "AWS_ACCESS_KEY_ID": "AKIDRCDUMMY",
            "AWS_SECRET_ACCESS_KEY": "rc-dummy",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake.url,
            "GOOGLE_API_KEY": "rc-dummy",
            "GEMINI_API_KEY": "rc-dummy",
            "GOOGLE_GEMINI_BASE_URL": fake.url,
        }
    )
    for key, value in target.env.items():
        env[key] = value.format(fake=fake.url, sink=sink.url)
    return env


def capture(target: Target) -> dict[str, Any]:
    if target.node:
        project = node_project(target)
        command = ["node", str(project / "scenario.mjs")]
        cwd: Path | None = project
        versions_all = node_versions(project)
    else:
        python = python_env(target)
        command = [str(python), str(SCENARIOS / target.scenario)]
        cwd = None
        versions_all = installed_versions(python)
    fake, sink = FakeProvider().start(), Sink().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result_path = Path(tmp) / "result.json"
            env = scenario_env(target, fake, sink, result_path)
            log(f"{target.name}: running the scenario")
            started = time.monotonic()
            proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S)
            took = time.monotonic() - started
            if proc.returncode != 0 or not result_path.exists():
                raise RuntimeError(
                    f"{target.name}: scenario failed ({proc.returncode}):\n{proc.stderr[-3000:]}\n{proc.stdout[-2000:]}"
                )
            result = json.loads(result_path.read_text())
        time.sleep(0.5)  # exporters that flush on shutdown
    finally:
        fake.stop()
        sink.stop()
    if sink.errors:
        raise RuntimeError(f"{target.name}: the sink could not decode: {sink.errors[:3]}")
    return document(target, result, sink, fake, versions_all, proc.stderr, took)


def document(
    target: Target,
    result: dict[str, Any],
    sink: Sink,
    fake: FakeProvider,
    versions_all: dict[str, str],
    stderr: str,
    took: float,
) -> dict[str, Any]:
    runs = result["runs"]
    trace_ids = {run["trace_id"] for run in runs}
    spans = [span for _, span in sink.received]
    root = next(span for span in spans if span["span_id"] == runs[0]["root_span_id"])
    resource = next(res for res, span in sink.received if span is root)
    resources = {json.dumps(res, sort_keys=True) for res, _ in sink.received}
    outside = [span for span in spans if span["trace_id"] not in trace_ids]
    wanted = target.versions_of or tuple(versions_all)
    versions = {name: versions_all[name] for name in wanted if name in versions_all}
    notes = []
    if len(resources) > 1:
        notes.append(f"{len(resources)} different resources; the root span's is kept")
    if outside:
        notes.append(f"{len(outside)} spans outside the run's trace")
    failed = [s for s in result["steps"] if not s.get("ok")]
    if failed:
        notes.append(f"steps that did not go as scripted: {[s['step'] for s in failed]}")
    return {
        "library": target.name,
        "description": target.description,
        "family": target.family,
        "harness": "tests/conventions/harness (make captures)",
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions,
        "runs": runs,
        "steps": result["steps"],
        "notes": notes,
        "span_names": dict(Counter(span["name"] for span in spans)),
        "env": dict(target.env),
        "resource": resource,
        "spans": sorted(spans, key=lambda s: s["start_unix_nano"]),
        "provider_ledger": fake.ledger,
        "_stderr_tail": stderr[-1500:] if failed else "",
        "_seconds": round(took, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="targets (default: all)")
    parser.add_argument("--keep-going", action="store_true", help="capture the other targets after a failure")
    parser.add_argument("--install-only", action="store_true", help="prepare the environments, capture nothing")
    parser.add_argument("--out", type=Path, default=CAPTURES, help="where to write the captures")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {sorted(BY_NAME)}")
    targets = [BY_NAME[n] for n in args.names] if args.names else list(TARGETS)
    failures = []
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for target in targets:
        if args.install_only:
            try:
                print(node_project(target) if target.node else python_env(target))
            except Exception as exc:
                log(f"{target.name}: FAILED: {exc}")
            continue
        try:
            doc = capture(target)
        except Exception as exc:
            failures.append(target.name)
            log(f"{target.name}: FAILED: {exc}")
            if not args.keep_going:
                return 1
            continue
        out = args.out / f"{target.name}.json"
        out.write_text(json.dumps(doc, indent=1) + "\n")
        calls = sum(1 for e in doc["provider_ledger"])
        log(f"{target.name}: {len(doc['spans'])} spans, {calls} provider requests -> {out.name}; notes: {doc['notes']}")
    log(f"{len(targets)} target(s) in {time.monotonic() - started:.0f} s")
    if failures:
        log(f"failed: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every library the harness captures: its pinned packages, its scenario, what it is.

``requirements`` pin the library under test and its provider clients; ``locks/<name>.txt``
(written by the first ``make captures`` on a machine with none, then committed) pins every
package of the environment, so a capture is reproducible: with a lock present, the
environment is installed from it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OTEL_PY = ("opentelemetry-sdk==1.45.2", "opentelemetry-exporter-otlp-proto-http==1.45.2")


@dataclass(frozen=True)
class Target:
    name: str
    """The capture's name (``tests/conventions/captures/<name>.json``) and library id in tests."""
    description: str
    family: str
    """Provider client(s) driven: openai, anthropic, both, aws, google."""
    scenario: str
    """A file in ``scenarios/`` (Python) or a folder in ``node/`` (npm project)."""
    requirements: tuple[str, ...] = ()
    versions_of: tuple[str, ...] = ()
    """Packages whose installed version is recorded in the capture."""
    env: dict[str, str] = field(default_factory=dict)
    node: bool = False


TARGETS: tuple[Target, ...] = (
    Target(
        "logfire-openai",
        "logfire.instrument_openai on the OpenAI SDK",
        "openai",
        "logfire_openai.py",
        ("logfire==5.2.0", "openai==3.54.0", *OTEL_PY),
        ("logfire", "openai", "opentelemetry-sdk"),
    ),
    Target(
        "logfire-anthropic",
        "logfire.instrument_anthropic on the Anthropic SDK (SDK spans on by default)",
        "anthropic",
        "logfire_anthropic.py",
        ("logfire==5.2.0", "anthropic==2.12.0", *OTEL_PY),
        ("logfire", "anthropic", "opentelemetry-sdk"),
    ),
    Target(
        "openinference-anthropic",
        "openinference-instrumentation-anthropic on the Anthropic SDK (SDK spans on by default)",
        "anthropic",
        "openinference_anthropic.py",
        ("openinference-instrumentation-anthropic==3.1.0", "anthropic==2.12.0", *OTEL_PY),
        ("openinference-instrumentation-anthropic", "anthropic", "opentelemetry-sdk"),
    ),
    Target(
        "openlit",
        "openlit.init on the OpenAI 2.x and Anthropic 0.x SDKs",
        "both",
        "openlit_sdks.py",
        ("openlit==1.44.0", "openai==2.54.0", "anthropic==0.125.0"),
        ("openlit", "openai", "anthropic", "opentelemetry-sdk"),
    ),
)

BY_NAME = {target.name: target for target in TARGETS}

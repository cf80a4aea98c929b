"""The README stays true: its configuration reference is the settings model's, its quick start
is the two commands, and every local file it links to exists."""

from __future__ import annotations

import re
from pathlib import Path

from otelspend.settings import reference_markdown

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_configuration_reference_is_generated_from_the_settings_model() -> None:
    assert reference_markdown() in README, (
        "README's configuration table differs from the settings model: paste "
        "`python -c 'from otelspend.settings import reference_markdown; print(reference_markdown())'`"
    )


def test_the_quick_start_is_make_run_and_make_test() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]


def test_every_local_link_and_image_exists() -> None:
    targets = re.findall(r"\]\(([^)#]+)\)", README)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/img/dashboard-overview.png" in local
    assert [t for t in local if not (REPO / t).exists()] == []


def test_every_in_page_link_names_a_heading() -> None:
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", README, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links, "the contents line links to the sections"
    assert [link for link in links if link not in anchors] == []

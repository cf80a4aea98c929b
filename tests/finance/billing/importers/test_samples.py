"""Each sample export beside the lines it must produce (beangulp's regression shape).

``OTELSPEND_UPDATE_EXPECTED=1`` rewrites the ``*.expected.json`` files from the importers;
review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.finance.billing.helpers import TESTDATA, extract, line_dict

SAMPLES = sorted(p for p in TESTDATA.iterdir() if p.suffix in (".json", ".jsonl", ".csv") and ".expected" not in p.name)
FORMATS = {
    "openai_costs.jsonl": "openai_costs",
    "openai_usage.json": "openai_usage",
    "anthropic_cost.json": "anthropic_cost",
    "anthropic_usage.json": "anthropic_usage",
    "focus_1_2.csv": "focus",
    "focus_1_3.csv": "focus",
    "aws_cur_bedrock.csv": "aws_cur",
}


def _expected_path(sample: Path) -> Path:
    return sample.with_name(sample.name.split(".")[0] + ".expected.json")


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_extracts_to_its_expected_lines(sample: Path) -> None:
    lines, counters = extract(sample)
    got = {"format": lines[0].format, "skipped": counters.skipped, "lines": [line_dict(line) for line in lines]}
    expected_path = _expected_path(sample)
    if os.environ.get("OTELSPEND_UPDATE_EXPECTED"):
        expected_path.write_text(json.dumps(got, indent=1) + "\n")
    assert got == json.loads(expected_path.read_text())
    assert got["format"] == FORMATS[sample.name], "--format auto recognised it"


def test_every_sample_has_a_format_and_every_format_a_sample() -> None:
    from otelspend.finance.billing.importers import IMPORTERS

    assert {p.name for p in SAMPLES} == set(FORMATS)
    assert set(FORMATS.values()) == set(IMPORTERS)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_reimporting_gives_the_same_identities(sample: Path) -> None:
    first, _ = extract(sample)
    second, _ = extract(sample)
    identities = [line.identity for line in first]
    assert identities == [line.identity for line in second]
    assert len(set(identities)) == len(identities), "identities are unique within a file"

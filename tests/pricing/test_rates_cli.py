"""``otelspend rates show`` and ``otelspend rates check``."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelspend.cli import main
from otelspend.enrich.genai_prices_card import SOURCE

EXAMPLE = Path(__file__).parents[2] / "examples" / "rate-card.yaml"
TESTDATA = Path(__file__).parent / "testdata"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def fields(out: str) -> dict[str, str]:
    """The 'name  value' header lines of ``rates show``."""
    found = {}
    for line in out.splitlines():
        if line and not line.startswith(" ") and "  " in line:
            name, _, value = line.partition("  ")
            found[name.strip()] = value.strip()
    return found


def test_check_accepts_the_example_card(capsys):
    code, out, err = run(capsys, "rates", "check", str(EXAMPLE))
    assert code == 0 and err == ""
    assert out.startswith(
        f"rate card {EXAMPLE}: valid, 6 entries\nsource recorded on priced spans: user:rate-card.yaml@"
    )
    assert (
        "  vllm-llama-3-3-70b: provider '*' model 'meta-llama/Llama-3.3-70B-Instruct': GPU-seconds at 0.0011 USD" in out
    )
    assert "  anthropic-committed-use: provider 'anthropic' model 'claude-*': adjusts genai-prices" in out
    assert "warning" not in out


def test_check_rejects_a_malformed_card_naming_file_entry_and_field(capsys):
    path = TESTDATA / "negative_price.yaml"
    code, out, err = run(capsys, "rates", "check", str(path))
    assert code == 1 and out == ""
    assert err == f"otelspend: rate card {path}: entry 2 (id 'bad-entry'), prices.input = -2.5: " \
        "Input should be greater than or equal to 0\n"  # fmt: skip


def test_check_warns_when_cache_hits_would_cost_the_input_rate(capsys, tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text("entries:\n  - {id: plain, model: house, prices: {input: 1, output: 2}}\n")
    code, out, _ = run(capsys, "rates", "check", str(path))
    assert code == 0
    assert "warning: entry 'plain': no cache_read price, so cache hits are priced at the full input rate" in out


def test_show_genai_prices_model_at_a_date(capsys):
    code, out, _ = run(capsys, "rates", "show", "gpt-4o-2024-08-06", "--provider", "openai", "--at", "2025-03-01")
    assert code == 0
    assert (
        fields(out).items()
        >= {
            "model": "gpt-4o-2024-08-06",
            "provider": "openai",
            "at": "2025-03-01T00:00:00Z",
            "source": SOURCE,
            "entry": "openai/gpt-4o",
            "effective from": "(always)",
        }.items()
    )
    assert "  input_mtok               2.5\n" in out and "  cache_read_mtok          1.25\n" in out
    assert "  web_searches_kcount      10  (usage spans do not report: not charged)" in out


def test_show_user_entry_with_tier_and_fee(capsys):
    code, out, _ = run(capsys, "rates", "show", "acme-router-v7", "--rate-card", str(EXAMPLE), "--context",
                       "processing=batch")  # fmt: skip
    assert code == 0
    shown = fields(out)
    assert shown["source"].startswith("user:rate-card.yaml@") and shown["entry"] == "acme-router"
    assert shown["matches"] == "provider '*', model 're:acme-router-v[0-9]+'"
    assert shown["tier"] == "by processing (batch: x0.5, flex: x0.7)"
    assert shown["multiplier"].startswith("x0.5 ")
    assert "  output_reasoning_mtok  0.6\n" in out
    assert shown["components"] == "cache_read, cache_write, input, output, reasoning, request"


def test_show_follows_a_price_change_on_a_date(capsys):
    common = ("rates", "show", "acme-summarizer", "--rate-card", str(EXAMPLE))
    _, before, _ = run(capsys, *common, "--at", "2025-02-28T23:59:59Z")
    _, after, _ = run(capsys, *common, "--at", "2025-03-01")
    assert fields(before)["entry"] == "acme-summarizer-launch" and "  input_mtok       0.5\n" in before
    assert fields(after)["entry"] == "acme-summarizer" and fields(after)["effective from"] == "2025-03-01"
    assert "  input_mtok       0.4\n" in after


def test_show_discount_on_the_default(capsys):
    code, out, _ = run(capsys, "rates", "show", "claude-sonnet-4-5", "--provider", "anthropic", "--rate-card",
                       str(EXAMPLE), "--at", "2025-12-01")  # fmt: skip
    shown = fields(out)
    assert code == 0 and shown["source"].startswith(f"{SOURCE} + user:rate-card.yaml@")
    assert shown["source"].endswith("#anthropic-committed-use")
    assert shown["multiplier"].startswith("x0.875 ")


def test_show_unknown_model_exits_1_with_the_reason(capsys):
    code, out, _ = run(capsys, "rates", "show", "gpt-99-ultra", "--provider", "openai")
    assert code == 1 and out.startswith("gpt-99-ultra: unpriced (unknown_model): ")


def test_show_rejects_a_malformed_card_and_a_bad_date(capsys):
    code, _, err = run(capsys, "rates", "show", "gpt-4o", "--rate-card", str(TESTDATA / "duplicate_id.yaml"))
    assert code == 2 and "entries: duplicate entry id 'same' (entries 1 and 2)" in err
    with pytest.raises(SystemExit):
        main(["rates", "show", "gpt-4o", "--at", "yesterday"])
    assert "'yesterday': expected a date (2025-03-01) or RFC 3339 time" in capsys.readouterr().err

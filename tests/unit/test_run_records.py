"""Run and breakdown records are the stored rows: one field per column, in the table's order."""

from __future__ import annotations

import pytest

from otelspend.enrich.run_records import BreakdownRecord, OutcomeSource, RunRecord, RunStatus, SpanRole
from otelspend.enrich.runs import CALL_FIELD_NAMES, RUN_FIELD_NAMES, call_row_of, compute_run, run_row_of
from otelspend.record import LITE_FIELDS, RUN_CALL_COLUMNS, RUN_COLUMNS, SPAN_COLUMNS


@pytest.mark.parametrize(
    ("record", "columns"),
    [
        pytest.param(RunRecord, RUN_COLUMNS, id="runs"),
        pytest.param(BreakdownRecord, RUN_CALL_COLUMNS, id="run_calls"),
    ],
)
def test_record_fields_are_the_table_columns_in_order(record: type, columns: tuple) -> None:
    assert record._fields == tuple(column.name for column in columns)


def test_field_name_tuples_follow_the_columns() -> None:
    assert RunRecord._fields == RUN_FIELD_NAMES
    assert BreakdownRecord._fields == CALL_FIELD_NAMES


def test_a_computed_run_converts_to_rows_of_the_right_width_and_is_immutable() -> None:
    span = dict.fromkeys(LITE_FIELDS, "")
    span.update(
        span_id="root", start_time=1, end_time=2, duration_ns=1, status_code="OK", resend_count=0, retry_count=0,
        payload_bytes=0, version=1, resource_id=0, attributes=None, outcome_score=None, outcome_time=0,
        input_tokens=None, output_tokens=None, cost_usd=None, reported_cost_usd=None,
    )  # fmt: skip
    result = compute_run([tuple(span[name] for name in LITE_FIELDS)])
    run_row = list(run_row_of(result.run))
    call_rows = [list(call_row_of(call)) for call in result.calls]
    assert len(run_row) == len(RUN_COLUMNS) and all(len(row) == len(RUN_CALL_COLUMNS) for row in call_rows)
    assert (result.run.status, result.run.outcome_source) == (RunStatus.SUCCESS, OutcomeSource.NONE)
    assert (result.run.version, result.run.sign, result.run.written_at, result.run.node) == (0, 1, 0, "")
    with pytest.raises(AttributeError):
        result.run.cost_usd = 1  # type: ignore[misc]  # the point of the test: records are immutable


def test_roles_are_the_documented_call_role_values() -> None:
    documented = next(c.doc for c in SPAN_COLUMNS if c.name == "call_role").split(" (")[0].split(" | ")
    assert [role.value for role in SpanRole] == documented
    assert SpanRole.VIEW == "view" and f"{SpanRole.VIEW}" == "view"  # stored and compared as plain strings

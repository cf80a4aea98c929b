"""The row index constants (``F``, ``L``) match the column lists they index, name by name."""

from __future__ import annotations

import dataclasses

import pytest

from otelspend.record import (
    COLUMN_INDEX,
    COLUMN_NAMES,
    LITE_FIELDS,
    NCOLS,
    ROW_TEMPLATE,
    SPAN_COLUMNS,
    F,
    L,
    LiteFields,
    SpanFields,
    lite_from_row,
)


@pytest.mark.parametrize(
    ("constants", "names"),
    [
        pytest.param(SpanFields, tuple(column.name for column in SPAN_COLUMNS), id="F-SPAN_COLUMNS"),
        pytest.param(LiteFields, LITE_FIELDS, id="L-LITE_FIELDS"),
    ],
)
def test_declared_fields_are_the_columns_in_order(constants: type, names: tuple[str, ...]) -> None:
    assert tuple(field.name for field in dataclasses.fields(constants)) == names


@pytest.mark.parametrize(
    ("instance", "names"),
    [pytest.param(F, COLUMN_NAMES, id="F"), pytest.param(L, LITE_FIELDS, id="L")],
)
def test_each_constant_is_its_columns_position(instance: object, names: tuple[str, ...]) -> None:
    assert [getattr(instance, name) for name in names] == list(range(len(names)))


def test_constants_cannot_be_reassigned() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        F.cost_usd = 0  # type: ignore[misc]  # the point of the test: frozen at runtime too


def test_column_index_and_lite_tuples_agree_with_the_row() -> None:
    assert len(COLUMN_INDEX) == NCOLS == len(ROW_TEMPLATE)
    assert all(COLUMN_INDEX[name] == getattr(F, name) for name in COLUMN_NAMES)
    row = [f"value of {name}" for name in COLUMN_NAMES]
    lite = lite_from_row(row)
    assert [lite[getattr(L, name)] for name in LITE_FIELDS] == [f"value of {name}" for name in LITE_FIELDS]

"""The contracts as portable narwhals checks (crmkpi.contract_checks) agree row for row with
pandera's failure cases, for every table, on a frame with a bad row of every kind of check;
and they give the same rows on SQLFrame (PySpark's API over DuckDB), the Spark code path
without a JVM."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import narwhals as nw
import pandera.polars as pa
import polars as pl
import pytest

from crmkpi.contract_checks import UNIQUENESS, contract_checks
from crmkpi.samples import SCALES, generate_tables
from crmkpi.tables import CONTRACTS, TABLE_NAMES

ROW = "_row"
GOOD_ROWS = 4


@pytest.fixture(scope="module")
def samples() -> dict[str, pl.DataFrame]:
    return generate_tables(SCALES["tiny"], seed=7)


def _breaking(frame: pl.DataFrame, column: str | None, check: str) -> dict[str, Any]:
    """Changes to a good row that break `check` (of `column`)."""
    row = frame.row(0, named=True)
    if check == "not_nullable":
        return {column: None}
    if check == UNIQUENESS:
        return {}  # a copy of the first row's id with its other values
    bound = re.fullmatch(r"(greater|less)_than_or_equal_to\((.+)\)", check)
    if bound:
        return {column: float(bound[2]) + (-1 if bound[1] == "greater" else 1)}
    if check.startswith("isin("):
        return {column: "no_such_value"}
    before = re.fullmatch(r"(\w+)_not_before_(\w+)", check)
    if before:
        later, earlier = before[1], before[2]
        return {later: row[earlier] - dt.timedelta(days=1)} if row[earlier] else {}
    if check == "prep_seconds_within_staffed_seconds":
        return {"prep_seconds": row["staffed_seconds"] + 1}
    return {
        "closed_at_required_when_won_or_lost": {"status": "won", "closed_at": None},
        "amount_not_negative_unless_refunded": {"amount": -1.0, "status": "completed"},
        "quantity_not_negative_unless_refunded": {"quantity": -1.0, "status": "completed"},
        "score_on_its_scale": {"survey_type": "nps", "score": 11.0},
    }[check]


def _with_bad_rows(table: str, sample: pl.DataFrame) -> pl.DataFrame:
    """A few good rows, then one row per check breaking it (ids made unique but for the
    uniqueness rows)."""
    good = sample.head(GOOD_ROWS)
    unique = [n for n, c in CONTRACTS[table].to_schema().columns.items() if c.unique]
    rows = []
    for number, check in enumerate(contract_checks(table, good.columns)):
        row = {**good.row(number % good.height, named=True)}
        for key in unique:
            if key in row and check.check != UNIQUENESS:
                row[key] = f"bad-{number}"
        if check.check == UNIQUENESS:
            row[check.column] = good[check.column][0]
        row.update(_breaking(good, check.column, check.check))
        rows.append(row)
    bad = pl.DataFrame(rows, schema=good.schema)
    return pl.concat([good, bad]).with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))


def _pandera_failures(table: str, frame: pl.DataFrame) -> set[tuple[int, str]]:
    try:
        CONTRACTS[table].validate(frame.drop(ROW), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        assert cases["index"].null_count() == 0, cases
        return {(int(i), str(c)) for i, c in cases.select("index", "check").iter_rows()}
    return set()


def _narwhals_failures(table: str, lazy: nw.LazyFrame[Any]) -> set[tuple[int, str]]:
    checks = contract_checks(table, lazy.collect_schema().names())
    flags = lazy.select(ROW, *(c.fails.alias(f"fails_{i}") for i, c in enumerate(checks)))
    collected = pl.DataFrame(flags.collect(backend="polars").to_native())
    return {
        (row, check.check)
        for i, check in enumerate(checks)
        for row in collected.filter(pl.col(f"fails_{i}"))[ROW].to_list()
    }


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_narwhals_checks_agree_with_pandera_row_for_row(
    table: str, samples: dict[str, pl.DataFrame]
) -> None:
    frame = _with_bad_rows(table, samples[table])
    expected = _pandera_failures(table, frame)
    checks = contract_checks(table, frame.columns)
    # every check fails on its own bad row, and nowhere among the good rows
    assert {c for _, c in expected} == {c.check for c in checks}
    good_rows = min(GOOD_ROWS, samples[table].height)
    assert all(row >= good_rows or c == UNIQUENESS for row, c in expected)
    assert _narwhals_failures(table, nw.from_native(frame.lazy())) == expected


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_narwhals_checks_give_the_same_rows_on_sqlframe(
    table: str, samples: dict[str, pl.DataFrame]
) -> None:
    pytest.importorskip("sqlframe")
    from crmkpi.engines.sqlframe import SQLFrameEngine

    frame = _with_bad_rows(table, samples[table])
    on_polars = _narwhals_failures(table, nw.from_native(frame.lazy()))
    assert _narwhals_failures(table, SQLFrameEngine().lazy(frame)) == on_polars


def test_checks_cover_only_the_columns_present() -> None:
    names = {c.check for c in contract_checks("deals", ["deal_id", "created_at", "status"])}
    assert names == {
        UNIQUENESS,
        "not_nullable",
        "isin(['open', 'won', 'lost'])",
        "closed_at_required_when_won_or_lost",
        "closed_at_not_before_created_at",
    }
    columns = {c.check: c.column for c in contract_checks("deals", ["deal_id", "status"])}
    assert columns["closed_at_required_when_won_or_lost"] == "closed_at"

"""The whole catalogue computed on Polars and on DuckDB gives the same table (DESIGN.md: the
narwhals compute layer runs unchanged on both engines)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crmkpi.api import compute_kpis
from crmkpi.samples import SCALES, generate_tables
from tests.kpi_helpers import frame

pytest.importorskip("duckdb")


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return generate_tables(SCALES["tiny"], seed=7)


def _both(
    tables: dict[str, pl.DataFrame], by: tuple[str, ...], **options: object
) -> tuple[pl.DataFrame, ...]:
    """Both engines' tables, each sorted by its key columns."""
    keys = ["period_start", "grain", *by, "metric"]
    return tuple(
        compute_kpis(tables, by=by, engine=engine, **options).sort(keys, nulls_last=True)  # type: ignore[arg-type]
        for engine in ("polars", "duckdb")
    )


@pytest.mark.parametrize(
    ("period", "by", "settings"),
    [
        ("quarter", ("segment", "rep"), {}),
        ("month", ("category", "team"), {"win_rate_basis": "created", "inactivity_days": 90}),
        ("all", ("segment",), {"clv_lifetime_years": 3}),
    ],
)
def test_polars_and_duckdb_agree_on_the_whole_catalogue(
    tables: dict[str, pl.DataFrame],
    period: str,
    by: tuple[str, ...],
    settings: dict[str, object],
) -> None:
    polars_out, duckdb_out = _both(
        tables, by, period=period, as_of=dt.date(2025, 6, 15), settings=settings
    )
    assert polars_out.height > 0
    assert polars_out["metric"].n_unique() > 30  # the catalogue, not a few metrics
    assert_frame_equal(polars_out, duckdb_out, abs_tol=1e-9, rel_tol=1e-9)


def test_engines_agree_on_medians_nulls_and_distinct_counts() -> None:
    deals = frame(
        "deals",
        [
            # an even number of won deals: the median interpolates (10.5 + 20) / 2
            dict(deal_id="d1", created_at="2024-01-01 00:00", status="won",
                 closed_at="2024-01-11 12:00", amount=None, rep="ann", segment="smb"),
            dict(deal_id="d2", created_at="2024-01-01", status="won", closed_at="2024-01-21",
                 amount=5.0, rep=None, segment=None),
            dict(deal_id="d3", created_at="2024-02-01", status="won",
                 closed_at="2024-02-04 06:00", amount=7.0, rep="bo", segment="smb"),
            dict(deal_id="d4", created_at="2024-02-01", status="won", closed_at="2024-03-02",
                 amount=1.0, rep="bo", segment="ent"),
            dict(deal_id="d5", created_at="2024-02-01", status="open", amount=3.0,
                 probability=0.5, rep="ann"),
        ],
    )  # fmt: skip
    orders = frame(
        "orders",
        [
            dict(order_id=None, customer_id="c1", ordered_at="2024-01-05", amount=1.0),
            dict(order_id=None, customer_id="c1", ordered_at="2024-01-05", amount=2.0),
            dict(order_id="o1", customer_id="c2", ordered_at="2024-02-05", amount=3.0),
            dict(order_id="o1", customer_id="c2", ordered_at="2024-02-05", amount=4.0),
        ],
    )
    polars_out, duckdb_out = _both(
        {"deals": deals, "orders": orders}, ("segment", "rep"), period="quarter",
        as_of=dt.date(2024, 3, 31),
    )  # fmt: skip
    assert_frame_equal(polars_out, duckdb_out, abs_tol=1e-9, rel_tol=1e-9)
    median = duckdb_out.filter(
        (pl.col("metric") == "sales_cycle_days_median") & (pl.col("grain") == "total")
    )
    assert median["value"].to_list() == [pytest.approx(15.25)]

"""Invariants of the engine on random small inputs (hypothesis): ratios of sums at every grain,
additive metrics add up, row order does not matter, zero denominators give null, empty input
gives empty output, and the customer stocks balance."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from crmkpi.engine import DIMENSIONS
from crmkpi.metrics import REGISTRY
from crmkpi.tables import TABLE_NAMES, columns_of
from tests.kpi_helpers import frame, kpis, run

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = dt.datetime(2024, 1, 1)
AS_OF = "2024-06-30"
REPS = ["ann", "bo", None]
SEGMENTS = ["smb", "ent", None]
CUSTOMERS = ["c1", "c2", "c3", "c4"]


@st.composite
def deal_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to 10 deals over the first half of 2024 (closes may fall after as-of)."""
    n = draw(st.integers(0, 10))
    deals = []
    for i in range(n):
        created = START + dt.timedelta(days=draw(st.integers(0, 180)),
                                       hours=draw(st.integers(0, 23)))  # fmt: skip
        status = draw(st.sampled_from(["open", "won", "lost"]))
        closed = None
        if status != "open" or draw(st.booleans()):
            closed = created + dt.timedelta(days=draw(st.integers(0, 60)),
                                            hours=draw(st.integers(0, 23)))  # fmt: skip
        deals.append(
            dict(
                deal_id=f"d{i}",
                created_at=created,
                status=status,
                closed_at=closed,
                amount=draw(st.one_of(st.none(), st.integers(0, 1000).map(float))),
                probability=draw(st.sampled_from([None, 0.0, 0.25, 0.5, 1.0])),
                rep=draw(st.sampled_from(REPS)),
                segment=draw(st.sampled_from(SEGMENTS)),
            )
        )
    return deals


@st.composite
def order_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to 10 order lines; some share an order id, some have none."""
    n = draw(st.integers(0, 10))
    return [
        dict(
            order_id=draw(st.sampled_from([None, "o1", "o2", f"x{i}"])),
            customer_id=draw(st.sampled_from(CUSTOMERS)),
            ordered_at=START + dt.timedelta(days=draw(st.integers(0, 200))),
            amount=float(draw(st.integers(0, 500))),
            quantity=float(draw(st.integers(0, 3))),
            status=draw(st.sampled_from([None, "completed", "completed", "cancelled"])),
            rep=draw(st.sampled_from(REPS)),
            segment=draw(st.sampled_from(SEGMENTS)),
        )
        for i in range(n)
    ]


@st.composite
def customer_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for customer in CUSTOMERS[: draw(st.integers(0, len(CUSTOMERS)))]:
        created = draw(st.one_of(st.none(), st.integers(0, 150)))
        churned = draw(st.one_of(st.none(), st.integers(0, 120)))
        created_at = None if created is None else START + dt.timedelta(days=created)
        rows.append(
            dict(
                customer_id=customer,
                created_at=created_at,
                churned_at=(
                    None if churned is None else (created_at or START) + dt.timedelta(days=churned)
                ),
                segment=draw(st.sampled_from(SEGMENTS)),
            )
        )
    return rows


def _deals(rows: list[dict[str, Any]]) -> pl.DataFrame:
    if rows:
        return frame("deals", rows)
    return _empty("deals", ["deal_id", "created_at", "status", "closed_at", "amount", "rep"])


def _orders(rows: list[dict[str, Any]]) -> pl.DataFrame:
    if rows:
        return frame("orders", rows)
    return _empty("orders", ["order_id", "customer_id", "ordered_at", "amount", "segment"])


def _empty(table: str, names: list[str] | None = None) -> pl.DataFrame:
    contract = columns_of(table)
    return pl.DataFrame(schema={c: contract[c].dtype for c in names or contract})


RATIOS = ["win_rate", "loss_rate", "avg_deal_size", "sales_cycle_days"]


@FAST
@given(deal_rows())
def test_total_ratio_is_the_ratio_of_the_summed_segment_parts(rows: list[dict[str, Any]]) -> None:
    out = kpis({"deals": _deals(rows)}, period="month", by=("segment",), as_of=AS_OF,
               metrics=RATIOS)  # fmt: skip
    if not rows:
        return
    total = out.filter(pl.col("grain") == "total")
    parts = (
        out.filter(pl.col("grain") == "segment")
        .group_by("period", "metric")
        .agg(pl.col("numerator").sum().alias("num"), pl.col("denominator").sum().alias("den"))
    )
    joined = total.join(parts, on=["period", "metric"], how="left")
    assert joined.height == total.height
    for record in joined.iter_rows(named=True):
        assert abs(record["numerator"] - record["num"]) < 1e-9, record
        assert record["denominator"] == record["den"], record
        if record["den"] == 0:
            assert record["value"] is None, record
        else:
            expected = record["num"] / record["den"]
            assert abs(record["value"] - expected) < 1e-9 * max(1.0, abs(expected)), record


ADDITIVE = ["deals_won", "won_revenue", "deals_created", "revenue"]


@FAST
@given(deal_rows(), order_rows())
def test_segment_rows_of_additive_metrics_sum_to_the_total(
    deals: list[dict[str, Any]], orders: list[dict[str, Any]]
) -> None:
    if not deals and not orders:
        return
    out = kpis({"deals": _deals(deals), "orders": _orders(orders)}, period="month",
               by=("segment", "rep"), as_of=AS_OF, metrics=ADDITIVE)  # fmt: skip
    total = out.filter(pl.col("grain") == "total").select("period", "metric", "value")
    for grain in ("segment", "rep", "segment+rep"):
        summed = (
            out.filter(pl.col("grain") == grain)
            .group_by("period", "metric")
            .agg(pl.col("value").sum().alias("summed"))
        )
        joined = total.join(summed, on=["period", "metric"], how="left")
        assert joined.height == total.height
        for record in joined.iter_rows(named=True):
            assert abs(record["value"] - (record["summed"] or 0.0)) < 1e-9, (grain, record)


@settings(FAST, max_examples=20)  # the whole catalogue twice per example
@given(deal_rows(), order_rows(), customer_rows(), st.randoms(use_true_random=False))
def test_shuffling_input_rows_does_not_change_the_output(
    deals: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    customers: list[dict[str, Any]],
    rng: random.Random,
) -> None:
    if not deals and not orders:
        return
    tables = {"deals": _deals(deals), "orders": _orders(orders)}
    if customers:
        tables["customers"] = frame("customers", customers)
    shuffled = {}
    for name, table in tables.items():
        order = list(range(table.height))
        rng.shuffle(order)
        shuffled[name] = table[order]
    first = kpis(tables, period="quarter", by=("rep",), as_of=AS_OF)
    second = kpis(shuffled, period="quarter", by=("rep",), as_of=AS_OF)
    assert_frame_equal(first, second, abs_tol=1e-9, rel_tol=1e-9)


@FAST
@given(deal_rows(), order_rows(), customer_rows(), st.sampled_from(["month", "quarter", "all"]))
def test_zero_denominators_give_null_and_no_nan_or_inf(
    deals: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    customers: list[dict[str, Any]],
    period: str,
) -> None:
    if not deals and not orders:
        return
    tables = {"deals": _deals(deals), "orders": _orders(orders)}
    if customers:
        tables["customers"] = frame("customers", customers)
    out = kpis(tables, period=period, by=("segment",), as_of=AS_OF)
    assert (
        out.filter(pl.col("denominator") == 0)["value"].null_count()
        == out.filter(pl.col("denominator") == 0).height
    )
    finite = out["value"].drop_nulls()
    assert not finite.is_nan().any()
    assert not finite.is_infinite().any()


@FAST
@given(
    st.sets(st.sampled_from(TABLE_NAMES), min_size=1),
    st.sampled_from(["day", "week", "month", "quarter", "year", "all"]),
    st.lists(st.sampled_from(DIMENSIONS), max_size=2, unique=True),
    st.sampled_from(["polars", "duckdb"]),
)
def test_empty_tables_give_an_empty_output(
    names: set[str], period: str, by: list[str], engine: str
) -> None:
    tables = {name: _empty(name) for name in names}
    result = run(tables, period=period, by=by, as_of=AS_OF, engine=engine)
    assert result.kpis.height == 0
    assert set(result.skipped) <= {m.name for m in REGISTRY.outputs()}


@FAST
@given(customer_rows(), order_rows(), st.sampled_from(["month", "quarter"]))
def test_customer_stocks_balance(
    customers: list[dict[str, Any]], orders: list[dict[str, Any]], period: str
) -> None:
    tables = {"orders": _orders(orders)}
    if customers:
        tables["customers"] = frame("customers", customers)
    if not customers and not orders:
        return
    metrics = ["customers_at_start", "customers_at_end", "new_customers", "churned_customers"]
    out = kpis(tables, period=period, by=("segment",), as_of=AS_OF, metrics=metrics,
               settings={"inactivity_days": 60})  # fmt: skip
    if out.height == 0:  # nobody was ever acquired: no dated row, no period
        return
    wide = out.pivot("metric", index=["period_start", "grain", "segment"], values="value").sort(
        "grain", "segment", "period_start", nulls_last=True
    )
    # end = start + new - churned, in every cell
    balance = wide["customers_at_start"] + wide["new_customers"] - wide["churned_customers"]
    assert (balance == wide["customers_at_end"]).all()
    # end(P) = start(P + 1) along each series
    following = wide.with_columns(
        pl.col("customers_at_start").shift(-1).over("grain", "segment").alias("next_start")
    ).filter(pl.col("next_start").is_not_null())
    assert (following["customers_at_end"] == following["next_start"]).all()

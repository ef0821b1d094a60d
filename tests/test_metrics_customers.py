"""Every customer and order metric (KPI_CATALOGUE.md, "Customers and orders") on tiny inline data.

Each expected value is worked out by hand in the comment beside it and written as a literal.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from scipy import integrate, stats

from crmkpi.metrics import REGISTRY
from crmkpi.metrics.customers import METRICS
from tests.kpi_helpers import frame, kpis, row, rows, run, series, value

# --- orders -------------------------------------------------------------------------------------

ORDERS = [
    # order o1 has two lines: one order of 150 and 3 items
    dict(order_id="o1", customer_id="c1", ordered_at="2024-01-05", amount=100.0, quantity=2.0,
         status="completed", cost=60.0),
    dict(order_id="o1", customer_id="c1", ordered_at="2024-01-05", amount=50.0, quantity=1.0,
         status="completed", cost=20.0),
    # no order_id: an order of its own; a null status counts as completed
    dict(order_id=None, customer_id="c1", ordered_at="2024-01-20", amount=10.0, quantity=1.0,
         status=None, cost=5.0),
    dict(order_id=None, customer_id="c2", ordered_at="2024-01-21", amount=20.0, quantity=1.0,
         status="completed", cost=15.0),
    # cancelled and refunded orders do not count
    dict(order_id="o3", customer_id="c2", ordered_at="2024-01-22", amount=40.0, quantity=4.0,
         status="cancelled", cost=1.0),
    dict(order_id="o4", customer_id="c3", ordered_at="2024-01-23", amount=30.0, quantity=3.0,
         status="refunded", cost=1.0),
]  # fmt: skip


def test_order_metrics_group_lines_and_skip_cancelled_and_refunded() -> None:
    out = kpis({"orders": frame("orders", ORDERS)}, period="month", as_of="2024-01-31")
    # revenue: 100 + 50 + 10 + 20 = 180
    assert value(out, "revenue", "2024-01") == 180.0
    # orders: o1, the c1 line, the c2 line = 3
    assert value(out, "orders_count", "2024-01") == 3
    aov = row(out, "average_order_value", "2024-01")
    assert (aov["value"], aov["numerator"], aov["denominator"]) == (60.0, 180.0, 3.0)
    # items: 2 + 1 + 1 + 1 = 5 over 3 orders
    upt = row(out, "units_per_transaction", "2024-01")
    assert upt["value"] == pytest.approx(5 / 3)
    assert (upt["numerator"], upt["denominator"]) == (5.0, 3.0)
    # customers with a completed order: c1, c2 (c3 only refunded)
    assert value(out, "active_customers", "2024-01") == 2
    assert value(out, "purchase_frequency", "2024-01") == 1.5  # 3 orders / 2 customers
    # c1 has 2 orders (o1 and its line without id), c2 has 1: 1 of 2 repeat
    repeat = row(out, "repeat_purchase_rate", "2024-01")
    assert (repeat["value"], repeat["numerator"], repeat["denominator"]) == (0.5, 1.0, 2.0)
    # cost: 60 + 20 + 5 + 15 = 100 -> 180 - 100 = 80
    assert value(out, "gross_profit", "2024-01") == 80.0


def _line(order_id: str, customer: str, day: str, rep: str, amount: float = 1.0) -> dict[str, Any]:
    """A completed order line of the rollup tests."""
    return dict(order_id=order_id, customer_id=customer, ordered_at=day, amount=amount, rep=rep)


# Every order falls in one rep's cell, so the engine counts orders (and orders per customer) at
# the finest grain and sums them per grain: a customer whose two orders went to two reps is a
# repeat buyer in the total and in neither rep's cell.
DISTINCT_ORDERS = [
    _line("a", "c1", "2024-01-05", "r1"),
    _line("b", "c1", "2024-01-20", "r2"),
    _line("c", "c2", "2024-01-10", "r1"),
    _line("d", "c2", "2024-02-03", "r1"),
    _line("e", "c1", "2024-02-10", "r2"),
]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_per_customer_counts_roll_up_exactly_when_order_ids_are_distinct(engine: str) -> None:
    orders = frame("orders", DISTINCT_ORDERS)
    out = kpis({"orders": orders}, period="month", by=("rep",), as_of="2024-02-29", engine=engine)
    # without orders_count the repeat buyers settle their rollup on their own
    alone = kpis({"orders": orders}, period="month", by=("rep",), as_of="2024-01-31",
                 metrics=["repeat_purchase_rate"], engine=engine)  # fmt: skip
    assert value(alone, "repeat_purchase_rate", "2024-01") == 0.5
    assert value(alone, "repeat_purchase_rate", "2024-01", rep="r1") == 0.0
    # January: orders a, b, c; c1 has two (a, b), c2 one (c)
    assert value(out, "orders_count", "2024-01") == 3
    assert value(out, "repeat_purchase_rate", "2024-01") == 0.5
    # per rep, nobody has two orders: r1 has c1 (a) and c2 (c), r2 has c1 (b)
    assert value(out, "orders_count", "2024-01", rep="r1") == 2
    assert value(out, "repeat_purchase_rate", "2024-01", rep="r1") == 0.0
    assert value(out, "repeat_purchase_rate", "2024-01", rep="r2") == 0.0
    # February: c2 (d, r1) and c1 (e, r2) bought again. Total: both January buyers are back;
    # r1: of c1 and c2 only c2; r2: c1 of c1
    assert value(out, "purchase_retention_rate", "2024-02") == 1.0
    assert value(out, "purchase_retention_rate", "2024-02", rep="r1") == 0.5
    assert value(out, "purchase_retention_rate", "2024-02", rep="r2") == 1.0


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_retention_sums_the_finest_cells_when_each_customer_keeps_one_rep(engine: str) -> None:
    customers = frame(
        "customers",
        [dict(customer_id="c1", segment="A"), dict(customer_id="c2", segment="B"),
         dict(customer_id="c3", segment="A")],
    )  # fmt: skip
    orders = frame(
        "orders",
        [
            _line("a", "c1", "2024-01-05", "r1"),
            _line("b", "c2", "2024-01-06", "r1"),
            _line("c", "c3", "2024-01-07", "r2"),
            _line("d", "c1", "2024-02-05", "r1"),
            _line("e", "c3", "2024-02-06", "r2"),
        ],
    )
    out = kpis({"customers": customers, "orders": orders}, period="month",
               by=("segment", "rep"), as_of="2024-02-29", engine=engine)  # fmt: skip
    # January buyers c1, c2, c3; February c1, c3
    february = row(out, "purchase_retention_rate", "2024-02")
    assert (february["numerator"], february["denominator"]) == (2.0, 3.0)
    assert value(out, "purchase_retention_rate", "2024-02", rep="r1") == 0.5  # c1 of c1, c2
    assert value(out, "purchase_retention_rate", "2024-02", rep="r2") == 1.0  # c3
    assert value(out, "purchase_retention_rate", "2024-02", segment="A") == 1.0  # c1, c3
    assert value(out, "purchase_retention_rate", "2024-02", segment="B") == 0.0  # c2


# Order a's two lines went to two reps: its id is in two finest cells, so distinct counts cannot
# be summed from the reps' cells and are counted at every grain.
SPLIT_ORDERS = [
    _line("a", "c1", "2024-01-05", "r1"),
    _line("a", "c1", "2024-01-05", "r2", 2.0),
    _line("b", "c1", "2024-01-20", "r1", 4.0),
    _line("c", "c2", "2024-01-10", "r2", 8.0),
]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_an_order_split_across_reps_counts_once_in_the_total(engine: str) -> None:
    orders = frame("orders", SPLIT_ORDERS)
    out = kpis({"orders": orders}, period="month", by=("rep",), as_of="2024-01-31", engine=engine)
    # total: orders a, b, c (a once, not once per rep); c1 has a and b, c2 has c
    assert value(out, "orders_count", "2024-01") == 3
    assert value(out, "average_order_value", "2024-01") == 5.0  # 15 / 3
    assert value(out, "repeat_purchase_rate", "2024-01") == 0.5
    # r1: a and b, both c1's -> c1 repeats; r2: a (c1) and c (c2) -> nobody repeats
    assert value(out, "orders_count", "2024-01", rep="r1") == 2
    assert value(out, "repeat_purchase_rate", "2024-01", rep="r1") == 1.0
    assert value(out, "orders_count", "2024-01", rep="r2") == 2
    assert value(out, "repeat_purchase_rate", "2024-01", rep="r2") == 0.0
    # c1 is active for both reps and once in the total
    assert value(out, "active_customers", "2024-01") == 2
    assert value(out, "active_customers", "2024-01", rep="r1") == 1


# c1 (segment A) buys from r1 and r2, c3 (A) and c4 (no customer row) from r1, c2 (B) from r2:
# by rep, each customer lies in one segment (looked up by customer_id), so a rep's count is the
# sum of its segments' counts; by segment, c1 lies under two reps and counts once.
CUSTOMERS_ACROSS_REPS = [
    _line("a", "c1", "2024-01-05", "r1"),
    _line("b", "c1", "2024-01-20", "r2"),
    _line("c", "c2", "2024-01-10", "r2"),
    _line("d", "c3", "2024-01-11", "r1"),
    _line("e", "c4", "2024-01-12", "r1"),
    _line("f", "c4", "2024-01-13", "r1"),
]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_distinct_customers_at_every_grain_when_a_customer_spans_reps(engine: str) -> None:
    customers = frame(
        "customers",
        [dict(customer_id="c1", segment="A"), dict(customer_id="c2", segment="B"),
         dict(customer_id="c3", segment="A")],
    )  # fmt: skip
    orders = frame("orders", CUSTOMERS_ACROSS_REPS)
    out = kpis({"customers": customers, "orders": orders}, period="month",
               by=("segment", "rep"), as_of="2024-01-31", engine=engine)  # fmt: skip
    cells = {
        # (segment, rep): (active customers, repeat buyers): hand-counted from the lines above
        (None, None): (4, 2),  # c1 (a, b), c4 (e, f)
        ("A", None): (2, 1),  # c1, c3: c1 repeats
        ("B", None): (1, 0),
        ("(none)", None): (1, 1),  # c4
        (None, "r1"): (3, 1),  # c1 (a), c3, c4 (e, f)
        (None, "r2"): (2, 0),  # c1 (b), c2
        ("A", "r1"): (2, 0),
        ("A", "r2"): (1, 0),
        ("B", "r2"): (1, 0),
        ("(none)", "r1"): (1, 1),
    }
    for (segment, rep), (active, repeat) in cells.items():
        at = {k: v for k, v in (("segment", segment), ("rep", rep)) if v is not None}
        assert value(out, "active_customers", "2024-01", **at) == active, at
        repeat_rate = row(out, "repeat_purchase_rate", "2024-01", **at)
        assert (repeat_rate["numerator"], repeat_rate["denominator"]) == (repeat, active), at


def test_explain_says_which_distinct_counts_are_sums_of_finer_cells() -> None:
    """A count of distinct customers is summed where the dimensions dropped are the customer's
    own (segment through customer_id), and counted again where they are the row's (rep)."""
    customers = frame("customers", [dict(customer_id="c1", segment="A")])
    orders = frame("orders", CUSTOMERS_ACROSS_REPS)
    text = run({"customers": customers, "orders": orders}, period="month",
               by=("segment", "rep"), as_of="2024-01-31", explain=True).plan or ""  # fmt: skip
    assert "rows at segment: orders_count, active_customers" in text
    assert (
        "summed at rep from segment+rep (segment decided by customer_id): "
        "active_customers, repeat_customers, purchase_retention_rate"
    ) in text
    assert "summed at total from segment (segment decided by customer_id): " in text
    assert "entities at rep:" not in text and "entities at segment: repeat_customers" in text


def test_repeat_purchase_counts_distinct_orders_not_lines() -> None:
    orders = frame(
        "orders",
        [
            # c1: one order of three lines -> not a repeat buyer
            dict(order_id="a", customer_id="c1", ordered_at="2024-01-05", amount=1.0),
            dict(order_id="a", customer_id="c1", ordered_at="2024-01-05", amount=1.0),
            dict(order_id="a", customer_id="c1", ordered_at="2024-01-05", amount=1.0),
            # c2: two orders -> repeat buyer
            dict(order_id="b", customer_id="c2", ordered_at="2024-01-05", amount=1.0),
            dict(order_id="c", customer_id="c2", ordered_at="2024-01-25", amount=1.0),
        ],
    )
    out = kpis({"orders": orders}, period="month", as_of="2024-01-31")
    assert value(out, "repeat_purchase_rate", "2024-01") == 0.5  # c2 of c1, c2
    assert value(out, "orders_count", "2024-01") == 3  # a, b, c


def test_gross_profit_needs_cost_and_is_skipped_without_it() -> None:
    orders = frame("orders", [dict(customer_id="c1", ordered_at="2024-01-05", amount=10.0)])
    result = run({"orders": orders}, period="month", as_of="2024-01-31")
    assert "cost" in result.skipped["gross_profit"]
    assert "quantity" in result.skipped["units_per_transaction"]


# --- the customer base --------------------------------------------------------------------------


def test_new_customers_from_created_at_else_first_completed_order() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2023-12-20"),  # December
            dict(customer_id="c2", created_at=None),  # first completed order: January
            dict(customer_id="c4", created_at="2024-02-05"),  # February, never ordered
            dict(customer_id="c5", created_at=None),  # only a cancelled order: not acquired
            dict(customer_id="c6", created_at="2024-04-01"),  # after as-of
        ],
    )
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-01-05", amount=10.0),  # created_at wins
            dict(customer_id="c2", ordered_at="2024-01-21", amount=10.0),
            dict(customer_id="c2", ordered_at="2024-02-21", amount=10.0),
            dict(customer_id="c3", ordered_at="2024-02-10", amount=10.0),  # only in orders
            dict(customer_id="c5", ordered_at="2024-02-11", amount=10.0, status="cancelled"),
        ],
    )
    out = kpis({"customers": customers, "orders": orders}, period="month", as_of="2024-03-31")
    # December c1; January c2; February c3 (orders only) and c4; March none.
    assert series(out, "new_customers") == {
        "2023-12": 1,
        "2024-01": 1,
        "2024-02": 2,
        "2024-03": 0,
    }


def test_customers_at_start_and_end_chain_and_balance() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2024-01-01"),
            dict(customer_id="c2", created_at="2024-01-15", churned_at="2024-02-10"),
            dict(customer_id="c3", created_at="2024-02-01"),
            dict(customer_id="c4", created_at="2024-02-20", churned_at="2024-02-25"),
            # churned after as-of: not churned
            dict(customer_id="c5", created_at="2024-01-10", churned_at="2024-04-02"),
            # never acquired (no created_at, no order): neither counted nor churned
            dict(customer_id="c6", created_at=None, churned_at="2024-02-01"),
        ],
    )
    out = kpis({"customers": customers}, period="month", as_of="2024-03-31")
    # Jan: start 0, new c1 c2 c5 = 3, churned 0, end 3.
    # Feb: start 3, new c3 c4 = 2, churned c2 c4 = 2, end 3.
    # Mar: start 3, new 0, churned 0, end 3.
    assert series(out, "customers_at_start") == {"2024-01": 0, "2024-02": 3, "2024-03": 3}
    assert series(out, "new_customers") == {"2024-01": 3, "2024-02": 2, "2024-03": 0}
    assert series(out, "churned_customers") == {"2024-01": 0, "2024-02": 2, "2024-03": 0}
    assert series(out, "customers_at_end") == {"2024-01": 3, "2024-02": 3, "2024-03": 3}
    # churn in February: 2 / 3 at start (c4 came and went within it)
    assert value(out, "churn_rate", "2024-02") == pytest.approx(2 / 3)
    assert value(out, "churn_rate", "2024-01") is None  # 0 at start
    # retention in February: (3 at end - 2 new) / 3 at start = 1/3
    assert value(out, "retention_rate", "2024-02") == pytest.approx(1 / 3)
    # growth in February: (3 - 3) / 3 = 0; January: start 0 -> null
    assert value(out, "customer_growth_rate", "2024-02") == 0.0
    assert value(out, "customer_growth_rate", "2024-01") is None


def test_customer_stocks_of_period_all_are_measured_at_its_two_boundaries() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2024-01-01"),
            dict(customer_id="c2", created_at="2024-01-15", churned_at="2024-02-10"),
            dict(customer_id="c3", created_at="2024-02-01"),
        ],
    )
    out = kpis({"customers": customers}, period="all", as_of="2024-03-31")
    # the range starts on 2024-01-01, the first acquisition: nobody before it
    assert value(out, "customers_at_start", "all") == 0
    assert value(out, "customers_at_end", "all") == 2  # c1, c3
    assert value(out, "new_customers", "all") == 3
    assert value(out, "churned_customers", "all") == 1
    assert value(out, "churn_rate", "all") is None  # 1 / 0


def test_churn_and_retention_seed_examples() -> None:
    # 100 customers at the start of 2024-Q1; 15 churn in Q1 (10 in January); none is new.
    customers = frame(
        "customers",
        [
            dict(customer_id=f"c{i}", created_at="2023-06-01",
                 churned_at="2024-01-15" if i < 10 else "2024-03-01" if i < 15 else None)
            for i in range(100)
        ],
    )  # fmt: skip
    month = kpis({"customers": customers}, period="month", as_of="2024-03-31")
    # January: 10 of 100 customers at start = 10 %.
    jan = row(month, "churn_rate", "2024-01")
    assert (jan["value"], jan["numerator"], jan["denominator"]) == (0.1, 10.0, 100.0)
    quarter = kpis({"customers": customers}, period="quarter", as_of="2024-03-31")
    assert value(quarter, "customers_at_start", "2024-Q1") == 100
    assert value(quarter, "churned_customers", "2024-Q1") == 15
    assert value(quarter, "new_customers", "2024-Q1") == 0
    assert value(quarter, "customers_at_end", "2024-Q1") == 85
    # retention: (85 at end - 0 new) / 100 at start = 0.85
    assert value(quarter, "retention_rate", "2024-Q1") == pytest.approx(0.85)
    assert value(quarter, "churn_rate", "2024-Q1") == pytest.approx(0.15)
    assert value(quarter, "customer_growth_rate", "2024-Q1") == pytest.approx(-0.15)


def test_churn_derived_from_inactivity() -> None:
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-01-05", amount=10.0),
            dict(customer_id="c2", ordered_at="2024-01-20", amount=10.0),
            dict(customer_id="c2", ordered_at="2024-03-20", amount=10.0),
            dict(customer_id="c3", ordered_at="2024-03-25", amount=10.0),
        ],
    )
    out = kpis({"orders": orders}, period="month", as_of="2024-04-10",
               settings={"inactivity_days": 30})  # fmt: skip
    # c1: last order 01-05 + 30 days = 02-04 <= as-of -> churned in February.
    # c2: last order 03-20 + 30 = 04-19 > as-of 04-10 -> not churned (yet).
    # c3: 03-25 + 30 = 04-24 > as-of -> not churned.
    assert series(out, "churned_customers") == {
        "2024-01": 0,
        "2024-02": 1,
        "2024-03": 0,
        "2024-04": 0,
    }
    assert value(out, "churn_rate", "2024-02") == 0.5  # 1 of c1, c2 at start
    assert value(out, "customers_at_end", "2024-02") == 1
    assert value(out, "customers_at_end", "2024-04") == 2  # c2, c3
    # the default of 365 days: nobody has churned by 2024-04-10
    default = kpis({"orders": orders}, period="month", as_of="2024-04-10")
    assert set(rows(default, "churned_customers")["value"]) == {0.0}


def test_snapshot_churn_from_a_flag_for_period_all() -> None:
    customers = frame(
        "customers",
        [dict(customer_id=f"c{i}", churned=i < 3, segment="a" if i < 4 else "b")
         for i in range(10)],
    )  # fmt: skip
    result = run({"customers": customers}, period="all", by=("segment",), as_of="2024-06-30")
    out = result.kpis
    # 3 flagged of 10 customers; segment a: c0..c3, 3 of 4; segment b: c4..c9, 0 of 6.
    total = row(out, "churn_rate", "all")
    assert (total["value"], total["numerator"], total["denominator"]) == (0.3, 3.0, 10.0)
    assert value(out, "churn_rate", "all", segment="a") == 0.75
    assert value(out, "churn_rate", "all", segment="b") == 0.0
    # without dates the dated customer metrics cannot be measured: skipped, not zeros
    for metric in ("customers_at_start", "customers_at_end", "new_customers",
                   "churned_customers", "retention_rate"):  # fmt: skip
        assert metric in result.skipped, metric
    assert set(out["metric"]) == {"churn_rate"}
    # snapshot churn has no period finer than `all`
    quarterly = run({"customers": customers}, period="quarter", as_of="2024-06-30")
    assert "period all" in quarterly.skipped["churn_rate"]
    assert quarterly.kpis.height == 0


def test_churn_metrics_are_skipped_without_a_churn_source() -> None:
    customers = frame("customers", [dict(customer_id="c1", created_at="2024-01-05")])
    result = run({"customers": customers}, period="month", as_of="2024-01-31")
    assert "churned_on" in result.skipped["churned_customers"]
    assert "churn_rate" in result.skipped
    assert value(result.kpis, "new_customers", "2024-01") == 1


def test_purchase_retention_rate_within_the_cell() -> None:
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-01-05", amount=1.0, rep="ann"),
            dict(customer_id="c2", ordered_at="2024-01-06", amount=1.0, rep="ann"),
            dict(customer_id="c3", ordered_at="2024-01-07", amount=1.0, rep="bo"),
            dict(customer_id="c1", ordered_at="2024-02-05", amount=1.0, rep="bo"),
            dict(customer_id="c3", ordered_at="2024-02-06", amount=1.0, rep="bo"),
            dict(customer_id="c4", ordered_at="2024-02-07", amount=1.0, rep="bo"),
        ],
    )
    out = kpis({"orders": orders}, period="month", by=("rep",), as_of="2024-02-29")
    # January buyers c1, c2, c3; of them c1 and c3 bought again in February: 2/3.
    feb = row(out, "purchase_retention_rate", "2024-02")
    assert feb["value"] == pytest.approx(2 / 3)
    assert (feb["numerator"], feb["denominator"]) == (2.0, 3.0)
    assert value(out, "purchase_retention_rate", "2024-01") is None  # no earlier buyers
    # by rep: ann's January buyers c1, c2 bought nothing from ann in February: 0/2;
    # bo's January buyer c3 bought from bo again: 1/1.
    assert value(out, "purchase_retention_rate", "2024-02", rep="ann") == 0.0
    assert value(out, "purchase_retention_rate", "2024-02", rep="bo") == 1.0


# --- category shares ----------------------------------------------------------------------------

CATEGORY_ORDERS = [
    # c1's first order (2024-01-05) has categories x and y; a later order has z
    dict(order_id="o1", customer_id="c1", ordered_at="2024-01-05", amount=1.0, category="x"),
    dict(order_id="o1", customer_id="c1", ordered_at="2024-01-05", amount=1.0, category="y"),
    dict(order_id="o2", customer_id="c1", ordered_at="2024-01-20", amount=1.0, category="z"),
    # c2's first order is in x
    dict(order_id="o3", customer_id="c2", ordered_at="2024-01-10", amount=1.0, category="x"),
    # c3 first bought in December: not a new buyer in January
    dict(order_id="o4", customer_id="c3", ordered_at="2023-12-10", amount=1.0, category="x"),
    dict(order_id="o5", customer_id="c3", ordered_at="2024-01-12", amount=1.0, category="y"),
]  # fmt: skip


def test_new_customer_penetration_and_category_engagement_by_category() -> None:
    orders = frame("orders", CATEGORY_ORDERS)
    out = kpis({"orders": orders}, period="month", by=("category",), as_of="2024-01-31")
    # January new buyers (first completed order in January): c1, c2 = 2.
    x = row(out, "new_customer_penetration", "2024-01", category="x")
    assert (x["value"], x["numerator"], x["denominator"]) == (1.0, 2.0, 2.0)  # c1, c2
    assert value(out, "new_customer_penetration", "2024-01", category="y") == 0.5  # c1
    assert value(out, "new_customer_penetration", "2024-01", category="z") == 0.0  # not first
    # January active customers: c1, c2, c3 = 3.
    engaged = row(out, "category_engagement", "2024-01", category="x")
    assert engaged["value"] == pytest.approx(2 / 3)  # c1, c2
    assert (engaged["numerator"], engaged["denominator"]) == (2.0, 3.0)
    assert value(out, "category_engagement", "2024-01", category="y") == pytest.approx(2 / 3)
    assert value(out, "category_engagement", "2024-01", category="z") == pytest.approx(1 / 3)
    # December: c3 is the only buyer and new: x 1/1
    assert value(out, "new_customer_penetration", "2023-12", category="x") == 1.0
    assert value(out, "new_customer_penetration", "2023-12", category="y") == 0.0  # 0 of 1
    # only at grains with the category dimension
    for metric in ("new_customer_penetration", "category_engagement"):
        assert rows(out, metric).filter(pl.col("grain") == "total").height == 0
    plain = kpis({"orders": orders}, period="month", as_of="2024-01-31")
    assert not {"new_customer_penetration", "category_engagement"} & set(plain["metric"])


# --- value and cost of customers ----------------------------------------------------------------


def test_clv_seed_example_with_a_fixed_lifetime() -> None:
    # Seed: 10 purchases a year x 1,000 order value x 3 years = 30,000.
    customers = frame("customers", [dict(customer_id="c1", created_at="2023-06-01")])
    orders = frame(
        "orders",
        [dict(customer_id="c1", ordered_at=f"2024-{m:02d}-10", amount=1000.0)
         for m in range(1, 11)],
    )  # fmt: skip
    out = kpis({"customers": customers, "orders": orders}, period="year", as_of="2024-12-31",
               settings={"clv_lifetime_years": 3})  # fmt: skip
    assert value(out, "average_order_value", "2024") == 1000.0
    assert value(out, "purchase_frequency", "2024") == 10.0
    # 1000 x 10 purchases x 1 period a year x 3 years x margin 1 (no cost) = 30,000
    assert value(out, "clv", "2024") == pytest.approx(30_000.0)


CLV_CUSTOMERS = [
    dict(customer_id="c1", created_at="2023-03-01"),
    dict(customer_id="c2", created_at="2023-04-01", churned_at="2024-11-01"),
]
CLV_ORDERS = [
    dict(customer_id="c1", ordered_at="2024-02-01", amount=100.0, cost=60.0),
    dict(customer_id="c1", ordered_at="2024-05-01", amount=100.0, cost=60.0),
    dict(customer_id="c2", ordered_at="2024-03-01", amount=100.0, cost=40.0),
]


def test_clv_with_margin_and_the_churn_based_lifetime() -> None:
    tables = {"customers": frame("customers", CLV_CUSTOMERS), "orders": frame("orders", CLV_ORDERS)}
    out = kpis(tables, period="year", as_of="2024-12-31")
    # 2024: 2 customers at start, 1 churned -> churn 0.5 a year -> lifetime 1 / 0.5 = 2 years.
    assert value(out, "churn_rate", "2024") == 0.5
    # aov 300 / 3 = 100; frequency 3 orders / 2 customers = 1.5;
    # margin (300 - 160) / 300; clv = 100 x 1.5 x 1 x 2 x 140/300 = 140.
    assert value(out, "gross_profit", "2024") == 140.0
    assert value(out, "clv", "2024") == pytest.approx(140.0)
    # capped: clv_max_years 1.5 < 2 -> 100 x 1.5 x 1.5 x 140/300 = 105
    capped = kpis(tables, period="year", as_of="2024-12-31", settings={"clv_max_years": 1.5})
    assert value(capped, "clv", "2024") == pytest.approx(105.0)


def test_clv_annualises_the_churn_of_a_quarter() -> None:
    tables = {"customers": frame("customers", CLV_CUSTOMERS), "orders": frame("orders", CLV_ORDERS)}
    out = kpis(tables, period="quarter", as_of="2024-12-31")
    # 2024-Q4: 2 at start, c2 churned -> 0.5 a quarter; k = 4 -> lifetime 1 / (0.5 x 4) = 0.5 y.
    # No order in Q4: aov null -> clv null.
    assert value(out, "churn_rate", "2024-Q4") == 0.5
    assert value(out, "clv", "2024-Q4") is None
    # 2024-Q1: churn 0 of 2 -> lifetime capped at 10 years; orders c1 100 (cost 60), c2 100
    # (cost 40): aov 100, frequency 2 / 2 = 1, margin 100 / 200;
    # clv = 100 x 1 x 4 x 10 x 0.5 = 2000.
    assert value(out, "clv", "2024-Q1") == pytest.approx(2000.0)
    # a year without churn data: churn null (nobody at start) -> clv null
    assert value(out, "clv", "2023-Q1") is None


def test_cac_seed_example_and_null_without_new_customers() -> None:
    # Seed: 100,000 of acquisition spend / 100 new customers = 1,000.
    customers = frame(
        "customers", [dict(customer_id=f"c{i}", created_at="2024-02-01") for i in range(100)]
    )
    spend = frame(
        "spend",
        [
            dict(spent_at="2024-01-10", category="marketing", amount=60_000.0),
            dict(spent_at="2024-02-10", category="advertising", amount=30_000.0),
            dict(spent_at="2024-03-10", category="sales", amount=10_000.0),
            dict(spent_at="2024-03-11", category="service", amount=5_000.0),  # not acquisition
            dict(spent_at="2024-05-10", category="marketing", amount=500.0),
        ],
    )
    out = kpis({"customers": customers, "spend": spend}, as_of="2024-06-30")
    q1 = row(out, "cac", "2024-Q1")
    assert (q1["value"], q1["numerator"], q1["denominator"]) == (1000.0, 100_000.0, 100.0)
    # Q2: 500 spent, no customer acquired -> null; the spend is still reported.
    q2 = row(out, "cac", "2024-Q2")
    assert (q2["value"], q2["numerator"], q2["denominator"]) == (None, 500.0, 0.0)


def test_clv_to_cac_and_cac_payback_months() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2023-03-01"),
            dict(customer_id="c2", created_at="2023-04-01", churned_at="2024-06-01"),
            dict(customer_id="c3", created_at="2024-02-01"),
        ],
    )
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-02-01", amount=100.0),
            dict(customer_id="c1", ordered_at="2024-05-01", amount=100.0),
            dict(customer_id="c3", ordered_at="2024-03-01", amount=100.0),
        ],
    )
    spend = frame("spend", [dict(spent_at="2024-01-10", category="marketing", amount=150.0)])
    out = kpis({"customers": customers, "orders": orders, "spend": spend}, period="year",
               as_of="2024-12-31")  # fmt: skip
    # churn 1 of 2 at start = 0.5 -> lifetime 2; aov 100; frequency 3 / 2 = 1.5; no cost:
    # clv = 100 x 1.5 x 1 x 2 = 300. cac = 150 / 1 new (c3) = 150. clv / cac = 2.
    assert value(out, "clv", "2024") == pytest.approx(300.0)
    assert value(out, "cac", "2024") == 150.0
    assert value(out, "clv_to_cac", "2024") == pytest.approx(2.0)
    # payback: revenue per active customer per month = 300 / 2 / 12 calendar months = 12.5
    # -> 150 / 12.5 = 12 months
    assert value(out, "cac_payback_months", "2024") == pytest.approx(12.0)


def test_cac_payback_uses_gross_profit_when_orders_carry_cost() -> None:
    customers = frame("customers", [dict(customer_id="c1", created_at="2024-01-02")])
    orders = frame(
        "orders", [dict(customer_id="c1", ordered_at="2024-01-05", amount=100.0, cost=70.0)]
    )
    spend = frame("spend", [dict(spent_at="2024-01-10", category="sales", amount=62.0)])
    out = kpis({"customers": customers, "orders": orders, "spend": spend}, period="month",
               as_of="2024-01-31")  # fmt: skip
    # cac 62 / 1 = 62; gross profit 30 per active customer over January (one calendar month)
    # -> 62 / 30 = 2.0666...
    assert value(out, "cac_payback_months", "2024-01") == pytest.approx(62 / 30)


# --- rules for every metric ---------------------------------------------------------------------


def test_complete_grid_partial_period_and_nothing_after_as_of() -> None:
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-01-05", amount=10.0),
            dict(customer_id="c1", ordered_at="2024-03-05", amount=30.0),
            dict(customer_id="c2", ordered_at="2024-03-20", amount=99.0),  # after as-of
        ],
    )
    out = kpis({"orders": orders}, period="month", as_of="2024-03-10")
    # February has no order: counts 0, ratios null; March is partial and ends at as-of.
    assert series(out, "revenue") == {"2024-01": 10.0, "2024-02": 0.0, "2024-03": 30.0}
    assert series(out, "orders_count") == {"2024-01": 1, "2024-02": 0, "2024-03": 1}
    assert series(out, "average_order_value") == {"2024-01": 10.0, "2024-02": None,
                                                  "2024-03": 30.0}  # fmt: skip
    assert value(out, "active_customers", "2024-03") == 1  # c2 bought after as-of
    assert row(out, "revenue", "2024-03")["partial_period"] is True
    assert row(out, "revenue", "2024-02")["partial_period"] is False
    march = row(out, "revenue", "2024-03")
    assert (march["previous_value"], march["change"]) == (0.0, 30.0)


def test_null_segments_are_none_and_orders_take_the_customers_segment() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2024-01-01", segment="smb"),
            dict(customer_id="c2", created_at="2024-01-01", segment=None),
        ],
    )
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-01-05", amount=10.0),
            dict(customer_id="c2", ordered_at="2024-01-06", amount=20.0),
            dict(customer_id="c9", ordered_at="2024-01-07", amount=40.0),  # unknown customer
        ],
    )
    out = kpis({"customers": customers, "orders": orders}, period="month", by=("segment",),
               as_of="2024-01-31")  # fmt: skip
    assert value(out, "revenue", "2024-01", segment="smb") == 10.0
    assert value(out, "revenue", "2024-01", segment="(none)") == 60.0  # c2 20 + c9 40
    assert value(out, "revenue", "2024-01") == 70.0
    assert row(out, "revenue", "2024-01")["segment"] is None
    assert value(out, "new_customers", "2024-01", segment="(none)") == 2  # c2 and c9


@pytest.mark.parametrize("metrics", [None, ["revenue"]])
def test_a_customer_created_after_as_of_lends_no_segment(metrics: list[str] | None) -> None:
    """With or without the customer-base metrics (which build the base the segments come
    from), a customer created after as-of is not yet one: its earlier order is (none)."""
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2024-01-01", segment="smb"),
            dict(customer_id="c2", created_at="2024-03-15", segment="enterprise"),
            dict(customer_id="c3", created_at=None, segment="enterprise"),
        ],
    )
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-01-05", amount=10.0),
            dict(customer_id="c2", ordered_at="2024-01-06", amount=20.0),
            dict(customer_id="c3", ordered_at="2024-01-07", amount=40.0),
        ],
    )
    out = kpis({"customers": customers, "orders": orders}, period="month", by=("segment",),
               as_of="2024-01-31", metrics=metrics)  # fmt: skip
    assert value(out, "revenue", "2024-01", segment="smb") == 10.0
    assert value(out, "revenue", "2024-01", segment="(none)") == 20.0  # c2
    assert value(out, "revenue", "2024-01", segment="enterprise") == 40.0  # c3: no created_at


def test_breakdown_a_table_cannot_supply_is_skipped_not_an_error() -> None:
    orders = frame("orders", [dict(customer_id="c1", ordered_at="2024-01-05", amount=10.0)])
    result = run({"orders": orders}, period="month", by=("segment",), as_of="2024-01-31")
    assert result.grain_skips["revenue"] == ["segment"]
    assert set(result.kpis["grain"]) == {"total"}
    assert value(result.kpis, "revenue", "2024-01", segment=None) == 10.0


def test_every_customer_metric_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    outputs = [m.name for m in METRICS if REGISTRY[m.name].output]
    assert outputs, "no customer metrics"
    untested = [name for name in outputs if f'"{name}"' not in source]
    assert not untested, f"customer metrics without a test: {untested}"


def test_clv_with_a_fixed_lifetime_needs_no_churn_source() -> None:
    # orders only, no churned_at and inactivity never reached: churn_rate is 0/1 in 2024 but a
    # fixed lifetime makes it irrelevant: 1000 x 10 x 1 x 3 = 30,000
    orders = frame(
        "orders",
        [dict(customer_id="c1", ordered_at=f"2024-{m:02d}-10", amount=1000.0)
         for m in range(1, 11)],
    )  # fmt: skip
    out = kpis({"orders": orders}, period="year", as_of="2024-12-31",
               settings={"clv_lifetime_years": 3})  # fmt: skip
    assert value(out, "clv", "2024") == pytest.approx(30_000.0)


def test_customers_by_rfm_segment_counts_customers_per_segment() -> None:
    # c1: days 01-10 and 03-10 (frequency 1, spend 30); c2: 02-01 (frequency 0, spend 5).
    # As of 2024-03-31: days since last purchase c1 21, c2 59 -> R: c2 1, c1 5;
    # F: c2 1, c1 5; M: c2 1, c1 5. c1 r5 f5 m5 -> champions; c2 r1 f1 -> lost.
    orders = frame(
        "orders",
        [dict(customer_id="c1", ordered_at="2024-01-10", amount=10.0),
         dict(customer_id="c1", ordered_at="2024-03-10", amount=20.0),
         dict(customer_id="c2", ordered_at="2024-02-01", amount=5.0)],
    )  # fmt: skip
    out = kpis({"orders": orders}, period="quarter", as_of="2024-03-31", by=("rfm_segment",))
    cells = out.filter(pl.col("metric") == "customers_by_rfm_segment", pl.col("grain") != "total")
    assert dict(cells.select("rfm_segment", "value").iter_rows()) == {"champions": 1.0, "lost": 1.0}


# --- refunds ------------------------------------------------------------------------------------

REFUNDS = [
    # invoice 1: two completed lines (one order of 6 x 2.55 + 6 x 3.39 = 35.64)
    dict(order_id="536365", customer_id="c1", ordered_at="2024-01-05", amount=15.30,
         quantity=6.0, status="completed"),
    dict(order_id="536365", customer_id="c1", ordered_at="2024-01-05", amount=20.34,
         quantity=6.0, status="completed"),
    # a cancellation invoice, written negative as the export does: kept, a refund
    dict(order_id="C536379", customer_id="c2", ordered_at="2024-01-06", amount=-27.50,
         quantity=-1.0, status="refunded"),
    # a refund written as a positive amount, two lines of one order
    dict(order_id="R1", customer_id="c3", ordered_at="2024-01-07", amount=4.0, quantity=1.0,
         status="refunded"),
    dict(order_id="R1", customer_id="c3", ordered_at="2024-01-07", amount=6.0, quantity=1.0,
         status="refunded"),
    # a cancelled order: placed, neither revenue nor a refund
    dict(order_id="X1", customer_id="c3", ordered_at="2024-01-08", amount=-9.0, quantity=-1.0,
         status="cancelled"),
    # a refund in February and a completed order there
    dict(order_id="C2", customer_id="c1", ordered_at="2024-02-02", amount=-5.0, quantity=-1.0,
         status="refunded"),
    dict(order_id="O2", customer_id="c2", ordered_at="2024-02-03", amount=50.0, quantity=2.0,
         status="completed"),
]  # fmt: skip


def test_refund_rate_and_refunded_amount_keep_refunds_out_of_revenue() -> None:
    out = kpis({"orders": frame("orders", REFUNDS)}, period="month", as_of="2024-02-29")
    # January: orders placed 536365, C536379, R1, X1 = 4; refunded C536379 and R1 = 2
    refund = row(out, "refund_rate", "2024-01")
    assert (refund["value"], refund["numerator"], refund["denominator"]) == (0.5, 2.0, 4.0)
    # refunded amount: |-27.50| + 4 + 6 = 37.50 (the cancelled -9 is not a refund)
    assert value(out, "refunded_amount", "2024-01") == pytest.approx(37.5)
    # revenue counts only the completed lines: 15.30 + 20.34 = 35.64
    assert value(out, "revenue", "2024-01") == pytest.approx(35.64)
    assert value(out, "orders_count", "2024-01") == 1
    # February: C2 refunded of C2 and O2 -> 1 / 2; refunded 5; revenue 50
    assert value(out, "refund_rate", "2024-02") == 0.5
    assert value(out, "refunded_amount", "2024-02") == 5.0
    assert value(out, "revenue", "2024-02") == 50.0


def test_refund_metrics_are_skipped_without_a_status_column() -> None:
    plain = [{k: v for k, v in r.items() if k != "status"} for r in REFUNDS[:2]]
    result = run({"orders": frame("orders", plain)}, period="month", as_of="2024-01-31")
    assert "refund_rate" in result.skipped and "refunded_amount" in result.skipped


# --- the forecast metrics (BG/NBD and Gamma-Gamma, crmkpi.clv_models) ---------------------------

# 40 customers on a deterministic pattern: customer i first buys on day 3i of 2024 and comes
# back (i mod 5, plus 3 when i is a multiple of 3) times; customers with no purchase are absent.
FORECAST_ORDERS = [
    dict(customer_id=f"c{i:02d}",
         ordered_at=(dt.date(2024, 1, 1)
                     + dt.timedelta(days=3 * i + j * (9 + i % 11) * (1 + j % 2))).isoformat(),
         amount=float(10 + (i * 7) % 13 + 3 * j))
    for i in range(40)
    for j in range(i % 5 + (i % 3 == 0) * 3)
]  # fmt: skip
FORECAST_SEGMENTS = [dict(customer_id=f"c{i:02d}", segment="ab"[i % 2]) for i in range(40)]
FORECAST_SETTINGS = {
    "clv_time_unit": "month",
    "clv_horizon_periods": 2,
    "clv_discount_rate": 0.01,
    "clv_min_repeat_buyers": 3,
    "p_alive_threshold": 0.5,
}


def _clv_by_hand(params: dict[str, float], values: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per customer, from the raw rows and the fitted parameters: x, t_x, T in months (of
    365.25 / 12 days), P(alive) by the paper's closed form, E[Y(1)] and E[Y(2)] by numeric
    integration over the dropout probability, the Gamma-Gamma value and the discounted CLV."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    p, q, gamma = (values[k] for k in ("p", "q", "gamma"))
    month = 365.25 / 12
    days: dict[str, dict[dt.date, float]] = {}
    for o in FORECAST_ORDERS:
        day = dt.date.fromisoformat(o["ordered_at"])
        days.setdefault(o["customer_id"], {}).setdefault(day, 0.0)
        days[o["customer_id"]][day] += o["amount"]
    out = {}
    for customer, spend in days.items():
        ordered = sorted(spend)
        x = len(ordered) - 1
        t_x = (ordered[-1] - ordered[0]).days / month
        T = (dt.date(2024, 12, 31) - ordered[0]).days / month
        m_x = sum(spend[d] for d in ordered[1:]) / x if x else 0.0
        odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x else 0.0
        alive = 1 / (1 + odds)

        def expected(t: float, x: int = x, T: float = T, alive: float = alive) -> float:
            def integrand(u: float) -> float:
                gone = ((alpha + T) / (alpha + T + u * t)) ** (r + x)
                return float(stats.beta.pdf(u, a, b + x)) * (1 - gone) / u

            return alive * integrate.quad(integrand, 0, 1, limit=200)[0]

        e1, e2 = expected(1.0), expected(2.0)
        value = p * (gamma + x * m_x) / (p * x + q - 1)
        out[customer] = {
            "p_alive": alive,
            "expected": e2,
            "clv": value * (e1 / 1.01 + (e2 - e1) / 1.01**2),
        }
    return out


def test_forecast_metrics_sum_each_customers_predictions_at_every_grain() -> None:
    orders, customers = frame("orders", FORECAST_ORDERS), frame("customers", FORECAST_SEGMENTS)
    result = run({"orders": orders, "customers": customers}, period="year", by=("segment",),
                 as_of="2024-12-31", settings=FORECAST_SETTINGS)  # fmt: skip
    assert result.clv_forecast is not None
    (fit,) = result.clv_forecast.fits
    assert fit["bg_nbd"]["converged"] and fit["gamma_gamma"]["converged"]
    hand = _clv_by_hand(fit["bg_nbd"], fit["gamma_gamma"])
    segment = {c["customer_id"]: c["segment"] for c in FORECAST_SEGMENTS}
    out = result.kpis
    for seg in (None, "a", "b"):
        mine = [v for c, v in hand.items() if seg is None or segment[c] == seg]
        kw = {} if seg is None else {"segment": seg}
        assert value(out, "expected_purchases_next_period", "2024", **kw) == pytest.approx(
            sum(v["expected"] for v in mine), rel=1e-6
        )
        total = sum(v["clv"] for v in mine)
        assert value(out, "predicted_clv_total", "2024", **kw) == pytest.approx(total, rel=1e-6)
        mean = row(out, "predicted_clv", "2024", **kw)
        assert mean["value"] == pytest.approx(total / len(mine), rel=1e-6)
        assert (mean["numerator"], mean["denominator"]) == (pytest.approx(total, rel=1e-6),
                                                            len(mine))  # fmt: skip
        likely = sum(1 for v in mine if v["p_alive"] < 0.5)
        assert value(out, "customers_likely_churned", "2024", **kw) == likely
    # 35 customers bought; the threshold splits them (the test means something)
    assert len(hand) == 35
    assert 0 < sum(1 for v in hand.values() if v["p_alive"] < 0.5) < 35


def test_forecast_metrics_are_skipped_with_the_reason_when_repeat_buyers_are_too_few() -> None:
    # repeat buyers: i mod 5 in (2, 3, 4) -> 24, plus i = 0, 6, 15, 21, 30, 36 (multiples of 3
    # with i mod 5 in (0, 1)) -> 30 of the 35 buyers: fewer than 100, so no fit, and the
    # metrics say why instead of showing zeros
    orders = frame("orders", FORECAST_ORDERS)
    result = run({"orders": orders}, period="year", as_of="2024-12-31",
                 settings={"clv_min_repeat_buyers": 100})  # fmt: skip
    for name in ("expected_purchases_next_period", "predicted_clv", "predicted_clv_total",
                 "customers_likely_churned"):  # fmt: skip
        assert "30 repeat buyers, fewer than clv_min_repeat_buyers (100)" in result.skipped[name]
        assert name not in result.kpis["metric"].to_list()

"""Every sales and pipeline metric (KPI_CATALOGUE.md, "Sales and pipeline") on tiny inline data.

Each expected value is worked out by hand in the comment beside it and written as a literal.
Periods are quarters unless a test says otherwise; `as_of` is always given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from crmkpi.metrics import REGISTRY
from crmkpi.metrics.sales import METRICS
from tests.kpi_helpers import frame, kpis, row, rows, run, series, value

# --- deals: counts, win and loss rates ----------------------------------------------------------


def test_deal_counts_win_and_loss_rates_by_close_date() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-10", status="won", closed_at="2024-02-01",
                 amount=1000.0),
            dict(deal_id="d2", created_at="2024-01-15", status="lost", closed_at="2024-02-20",
                 amount=500.0),
            dict(deal_id="d3", created_at="2024-02-01", status="lost", closed_at="2024-04-05",
                 amount=300.0),
            dict(deal_id="d4", created_at="2024-03-01", status="open", amount=700.0),
            dict(deal_id="d5", created_at="2024-04-02", status="won", closed_at="2024-05-01",
                 amount=2000.0),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, as_of="2024-06-30")
    # Q1: created d1..d4 = 4; closed in Q1: d1 won, d2 lost.
    assert value(out, "deals_created", "2024-Q1") == 4
    assert value(out, "deals_won", "2024-Q1") == 1
    assert value(out, "deals_lost", "2024-Q1") == 1
    assert value(out, "win_rate", "2024-Q1") == 0.5  # 1 / (1 + 1)
    assert value(out, "loss_rate", "2024-Q1") == 0.5
    assert value(out, "won_revenue", "2024-Q1") == 1000.0
    # Q2: created d5 = 1; closed in Q2: d3 lost (created in Q1), d5 won.
    assert value(out, "deals_created", "2024-Q2") == 1
    assert value(out, "deals_won", "2024-Q2") == 1
    assert value(out, "deals_lost", "2024-Q2") == 1
    assert value(out, "won_revenue", "2024-Q2") == 2000.0
    win = row(out, "win_rate", "2024-Q2")
    assert (win["value"], win["numerator"], win["denominator"]) == (0.5, 1.0, 2.0)
    loss = row(out, "loss_rate", "2024-Q2")
    assert (loss["value"], loss["numerator"], loss["denominator"]) == (0.5, 1.0, 2.0)


def test_win_rate_is_a_ratio_of_sums_at_a_coarser_grain() -> None:
    # Rep a: 1 won of 1 closed. Rep b: 1 won + 9 lost = 1 of 10. Total: 2 / 11, not the mean
    # of the per-rep rates (1.0 + 0.1) / 2 = 0.55.
    closed = [("a", "won"), ("b", "won")] + [("b", "lost")] * 9
    deals = frame(
        "deals",
        [
            dict(deal_id=f"d{i}", created_at="2024-01-02", status=status,
                 closed_at="2024-02-01", amount=10.0, rep=rep)
            for i, (rep, status) in enumerate(closed)
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, by=("rep",), as_of="2024-03-31")
    assert value(out, "win_rate", "2024-Q1", rep="a") == 1.0
    assert value(out, "win_rate", "2024-Q1", rep="b") == 0.1
    total = row(out, "win_rate", "2024-Q1")
    assert total["value"] == pytest.approx(2 / 11)  # 0.1818..., not 0.55
    assert (total["numerator"], total["denominator"]) == (2.0, 11.0)
    assert value(out, "loss_rate", "2024-Q1") == pytest.approx(9 / 11)


def test_zero_denominator_gives_null_and_the_row_is_still_written() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-01-20",
                 amount=100.0, rep="ann"),
            dict(deal_id="d2", created_at="2024-01-03", status="open", amount=50.0, rep="bo"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, by=("rep",), as_of="2024-03-31")
    # Bo closed nothing: 0 won / 0 closed -> null, and the row exists with its parts.
    for metric in ("win_rate", "loss_rate", "avg_deal_size", "sales_cycle_days"):
        bo = row(out, metric, "2024-Q1", rep="bo")
        assert bo["value"] is None, metric
        assert (bo["numerator"], bo["denominator"]) == (0.0, 0.0), metric
    assert value(out, "deals_won", "2024-Q1", rep="bo") == 0
    assert value(out, "win_rate", "2024-Q1", rep="ann") == 1.0
    assert not out["value"].is_nan().any()
    assert not out["value"].is_infinite().any()


def test_win_rate_basis_created_is_a_cohort_won_by_as_of() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-05", status="won", closed_at="2024-02-01"),
            dict(deal_id="d2", created_at="2024-01-06", status="won", closed_at="2024-04-10"),
            dict(deal_id="d3", created_at="2024-01-07", status="lost", closed_at="2024-03-01"),
            dict(deal_id="d4", created_at="2024-02-01", status="won", closed_at="2024-07-15"),
            dict(deal_id="d5", created_at="2024-03-01", status="open"),
        ],
    )  # fmt: skip
    closed = kpis({"deals": deals}, as_of="2024-06-30")
    # Closed basis: Q1 closes d1 won, d3 lost -> 1/2; Q2 closes d2 won -> 1/1 (d4 closes after
    # as-of).
    assert series(closed, "win_rate") == {"2024-Q1": 0.5, "2024-Q2": 1.0}
    created = kpis({"deals": deals}, as_of="2024-06-30", settings={"win_rate_basis": "created"})
    # Created basis: all 5 created in Q1; won by as-of 2024-06-30: d1, d2 -> 2/5 (d4 won later).
    q1 = row(created, "win_rate", "2024-Q1")
    assert (q1["value"], q1["numerator"], q1["denominator"]) == (0.4, 2.0, 5.0)
    # Q2 created nothing: 0/0 -> null.
    assert value(created, "win_rate", "2024-Q2") is None


def test_won_deal_closed_after_as_of_is_still_open() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-04-02", status="won", closed_at="2024-05-01",
                 amount=100.0, probability=1.0),
            dict(deal_id="d2", created_at="2024-04-03", status="won", closed_at="2024-07-01",
                 amount=800.0, probability=0.75),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, as_of="2024-06-30")
    # d2's close is after as-of: not won yet, so only d1 counts...
    assert value(out, "deals_won", "2024-Q2") == 1
    assert value(out, "won_revenue", "2024-Q2") == 100.0
    # ... and d2 is open at the Q2 end: 800, weighted 800 x 0.75 = 600.
    assert value(out, "open_pipeline_value", "2024-Q2") == 800.0
    assert value(out, "weighted_pipeline_value", "2024-Q2") == 600.0
    assert set(out["period"]) == {"2024-Q2"}  # nothing after as-of


def test_null_amount_counts_as_a_won_deal_and_adds_zero() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-01-20",
                 amount=1000.0, rep="ann"),
            dict(deal_id="d2", created_at="2024-01-03", status="won", closed_at="2024-01-21",
                 amount=None, rep="ann"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, as_of="2024-03-31")
    assert value(out, "deals_won", "2024-Q1") == 2
    assert value(out, "won_revenue", "2024-Q1") == 1000.0  # 1000 + 0
    size = row(out, "avg_deal_size", "2024-Q1")
    assert (size["value"], size["numerator"], size["denominator"]) == (500.0, 1000.0, 2.0)


# --- sales cycle --------------------------------------------------------------------------------


def test_sales_cycle_in_fractional_days_with_an_interpolated_median() -> None:
    deals = frame(
        "deals",
        [
            # 10 days 12 hours = 10.5 days
            dict(deal_id="d1", created_at="2024-01-01 00:00", status="won",
                 closed_at="2024-01-11 12:00"),
            # 20 days
            dict(deal_id="d2", created_at="2024-01-01", status="won", closed_at="2024-01-21"),
            # 3 days 6 hours = 3.25 days
            dict(deal_id="d3", created_at="2024-02-01 00:00", status="won",
                 closed_at="2024-02-04 06:00"),
            # 2024-02-01 -> 2024-03-02 = 29 (leap February) + 1 = 30 days
            dict(deal_id="d4", created_at="2024-02-01", status="won", closed_at="2024-03-02"),
            # lost deals are not in the sales cycle
            dict(deal_id="d5", created_at="2023-10-01", status="lost", closed_at="2024-03-01"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, as_of="2024-03-31")
    # mean = (10.5 + 20 + 3.25 + 30) / 4 = 63.75 / 4 = 15.9375
    cycle = row(out, "sales_cycle_days", "2024-Q1")
    assert cycle["value"] == pytest.approx(15.9375)
    assert cycle["numerator"] == pytest.approx(63.75)
    assert cycle["denominator"] == 4
    # sorted 3.25, 10.5, 20, 30: median = (10.5 + 20) / 2 = 15.25
    assert value(out, "sales_cycle_days_median", "2024-Q1") == pytest.approx(15.25)


# --- pipeline stocks ----------------------------------------------------------------------------

PIPELINE = [
    # open; its closed_at is an expected date and must be ignored
    dict(deal_id="p1", created_at="2024-01-10", status="open", closed_at="2024-02-01",
         amount=100.0, probability=0.5),
    # won in Q2: open at the Q1 end, not at the Q2 end
    dict(deal_id="p2", created_at="2024-02-01", status="won", closed_at="2024-05-10",
         amount=200.0, probability=0.9),
    # created in Q2, lost on 2024-06-01
    dict(deal_id="p3", created_at="2024-04-10", status="lost", closed_at="2024-06-01",
         amount=400.0, probability=0.1),
    # created in Q2, won after the latest as-of used below
    dict(deal_id="p4", created_at="2024-05-01", status="won", closed_at="2024-08-01",
         amount=800.0, probability=0.25),
    # open, amount unknown: adds 0
    dict(deal_id="p5", created_at="2024-03-01", status="open", amount=None, probability=0.5),
]  # fmt: skip


def test_open_pipeline_at_period_end() -> None:
    out = kpis({"deals": frame("deals", PIPELINE)}, as_of="2024-06-30")
    # Q1 end (2024-03-31): p1 100 + p2 200 + p5 0 = 300; weighted 50 + 180 + 0 = 230.
    assert value(out, "open_pipeline_value", "2024-Q1") == 300.0
    assert value(out, "weighted_pipeline_value", "2024-Q1") == pytest.approx(230.0)
    # Q2 end (2024-06-30): p1 100 + p4 800 (won after as-of) = 900; weighted 50 + 200 = 250.
    assert value(out, "open_pipeline_value", "2024-Q2") == 900.0
    assert value(out, "weighted_pipeline_value", "2024-Q2") == pytest.approx(250.0)


def test_open_pipeline_of_the_partial_period_is_measured_at_as_of() -> None:
    out = kpis({"deals": frame("deals", PIPELINE)}, as_of="2024-05-15")
    q2 = row(out, "open_pipeline_value", "2024-Q2")
    assert q2["partial_period"] is True
    # at 2024-05-15: p1 100 + p3 400 (lost only on 06-01) + p4 800 + p5 0 = 1300; p2 won 05-10.
    assert q2["value"] == 1300.0
    # weighted: 50 + 40 + 200 + 0 = 290
    assert value(out, "weighted_pipeline_value", "2024-Q2") == pytest.approx(290.0)


def test_pipeline_is_a_stock_not_a_sum_over_periods() -> None:
    out = kpis({"deals": frame("deals", PIPELINE)}, period="all", as_of="2024-06-30")
    # period all ends at as-of: the same deals as at the Q2 end, 900 (not 300 + 900).
    assert value(out, "open_pipeline_value", "all") == 900.0


# --- upsell and cross-sell ----------------------------------------------------------------------


def test_upsell_cross_sell_rate_seed_example() -> None:
    # Seed: 100,000 of upsell and cross-sell in 1,000,000 won = 10 %.
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=60_000.0, deal_type="upsell"),
            dict(deal_id="d2", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=40_000.0, deal_type="cross_sell"),
            dict(deal_id="d3", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=900_000.0, deal_type="new_business"),
            # a lost upsell is not won amount
            dict(deal_id="d4", created_at="2024-01-02", status="lost", closed_at="2024-02-01",
                 amount=500_000.0, deal_type="upsell"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, as_of="2024-03-31")
    rate = row(out, "upsell_cross_sell_rate", "2024-Q1")
    assert rate["value"] == pytest.approx(0.10)
    assert (rate["numerator"], rate["denominator"]) == (100_000.0, 1_000_000.0)


def test_upsell_cross_sell_rate_from_order_types_when_deals_lack_deal_type() -> None:
    deals = frame(
        "deals",
        [dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-02-01",
              amount=5.0)],
    )  # fmt: skip
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2024-01-05", amount=70.0, order_type="new"),
            dict(customer_id="c1", ordered_at="2024-02-05", amount=20.0, order_type="upsell"),
            dict(customer_id="c2", ordered_at="2024-02-06", amount=10.0, order_type="cross_sell"),
        ],
    )
    out = kpis({"deals": deals, "orders": orders}, as_of="2024-03-31")
    # (20 + 10) / (70 + 20 + 10) = 0.3
    assert value(out, "upsell_cross_sell_rate", "2024-Q1") == pytest.approx(0.3)


# --- quotas -------------------------------------------------------------------------------------


def test_quota_rows_are_summed_by_period_start_not_pro_rated() -> None:
    quotas = frame(
        "quotas",
        [
            # monthly quotas of ann, summed into the quarter: 3 x 1000 = 3000
            dict(period_start="2024-01-01", quota_amount=1000.0, rep="ann"),
            dict(period_start="2024-02-01", quota_amount=1000.0, rep="ann"),
            dict(period_start="2024-03-01", quota_amount=1000.0, rep="ann"),
            dict(period_start="2024-01-01", quota_amount=2000.0, rep="bo"),
            # Q2 is partial at as-of 2024-05-15 and still gets the whole quota row
            dict(period_start="2024-04-01", quota_amount=1000.0, rep="ann"),
            # starts after as-of: not counted
            dict(period_start="2024-07-01", quota_amount=9000.0, rep="ann"),
        ],
    )
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=1500.0, rep="ann"),
            dict(deal_id="d2", created_at="2024-01-02", status="won", closed_at="2024-03-01",
                 amount=500.0, rep="bo"),
            dict(deal_id="d3", created_at="2024-04-02", status="won", closed_at="2024-05-01",
                 amount=250.0, rep="ann"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals, "quotas": quotas}, by=("rep",), as_of="2024-05-15")
    assert value(out, "quota", "2024-Q1", rep="ann") == 3000.0
    assert value(out, "quota", "2024-Q1") == 5000.0  # 3000 + 2000
    assert value(out, "quota_attainment", "2024-Q1", rep="ann") == 0.5  # 1500 / 3000
    assert value(out, "quota_attainment", "2024-Q1", rep="bo") == 0.25  # 500 / 2000
    # total: (1500 + 500) / 5000 = 0.4 (not the mean of 0.5 and 0.25)
    assert value(out, "quota_attainment", "2024-Q1") == 0.4
    assert value(out, "quota", "2024-Q2") == 1000.0
    assert value(out, "quota_attainment", "2024-Q2") == 0.25  # 250 / 1000, not pro-rated
    assert set(out["period"]) == {"2024-Q1", "2024-Q2"}


def test_quotas_sum_up_to_the_team_grain() -> None:
    reps = frame("reps", [dict(rep="ann", team="east"), dict(rep="cy", team="east"),
                          dict(rep="bo", team="west")])  # fmt: skip
    quotas = frame(
        "quotas",
        [
            dict(period_start="2024-01-01", quota_amount=1000.0, rep="ann"),
            dict(period_start="2024-01-01", quota_amount=1000.0, rep="cy"),
            dict(period_start="2024-01-01", quota_amount=2000.0, rep="bo"),
        ],
    )
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=600.0, rep="ann"),
            dict(deal_id="d2", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=400.0, rep="cy"),
            dict(deal_id="d3", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=500.0, rep="bo"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals, "quotas": quotas, "reps": reps}, by=("team",),
               as_of="2024-03-31")  # fmt: skip
    assert value(out, "quota", "2024-Q1", team="east") == 2000.0
    assert value(out, "quota_attainment", "2024-Q1", team="east") == 0.5  # (600 + 400) / 2000
    assert value(out, "quota_attainment", "2024-Q1", team="west") == 0.25  # 500 / 2000
    assert value(out, "quota_attainment", "2024-Q1") == 0.375  # 1500 / 4000


# --- growth -------------------------------------------------------------------------------------


def test_sales_growth_uses_order_revenue_previous_period_and_year_on_year() -> None:
    orders = frame(
        "orders",
        [
            dict(customer_id="c1", ordered_at="2023-01-05", amount=100.0),
            dict(customer_id="c1", ordered_at="2023-04-20", amount=200.0),
            dict(customer_id="c2", ordered_at="2024-01-20", amount=150.0),
            dict(customer_id="c2", ordered_at="2024-04-25", amount=100.0),
        ],
    )
    deals = frame(
        "deals",
        [dict(deal_id="d1", created_at="2023-01-01", status="won", closed_at="2024-04-02",
              amount=1e6)],
    )  # fmt: skip
    # the data start on 2023-01-01 and end on 2024-06-30: no quarter is partial
    out = kpis({"orders": orders, "deals": deals}, as_of="2024-06-30")
    growth = series(out, "sales_growth_rate")
    # revenue by quarter: 100, 200, 0, 0, 150, 100 (won deals are ignored when orders exist)
    assert growth["2023-Q1"] is None  # first period
    assert growth["2023-Q2"] == 1.0  # (200 - 100) / 100
    assert growth["2023-Q3"] == -1.0  # (0 - 200) / 200
    assert growth["2023-Q4"] is None  # 0 / 0
    assert growth["2024-Q1"] is None  # from 0
    assert growth["2024-Q2"] == pytest.approx(-1 / 3)  # (100 - 150) / 150
    yoy = series(out, "sales_growth_yoy")
    assert yoy["2023-Q1"] is None and yoy["2023-Q4"] is None  # no year before
    assert yoy["2024-Q1"] == 0.5  # (150 - 100) / 100
    assert yoy["2024-Q2"] == -0.5  # (100 - 200) / 200
    q2 = row(out, "sales_growth_yoy", "2024-Q2")
    assert (q2["numerator"], q2["denominator"]) == (-100.0, 200.0)


def test_year_on_year_growth_of_weeks_compares_the_same_week_number() -> None:
    orders = frame(
        "orders",
        [
            # Monday 2023-03-13 starts 2023-W11: the data cover the whole first week
            dict(customer_id="c1", ordered_at="2023-03-13", amount=100.0),  # 2023-W11
            dict(customer_id="c1", ordered_at="2024-03-12", amount=150.0),  # 2024-W11
        ],
    )
    out = kpis({"orders": orders}, period="week", as_of="2024-03-17")
    assert value(out, "sales_growth_yoy", "2024-W11") == 0.5  # (150 - 100) / 100
    assert value(out, "sales_growth_yoy", "2024-W10") is None  # 0 a year before


def test_sales_growth_falls_back_to_won_revenue_without_orders() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-01", status="won", closed_at="2024-02-01",
                 amount=200.0),
            dict(deal_id="d2", created_at="2024-01-01", status="won", closed_at="2024-05-01",
                 amount=100.0),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, as_of="2024-06-30")
    assert series(out, "sales_growth_rate") == {"2024-Q1": None, "2024-Q2": -0.5}  # (100-200)/200


# --- leads --------------------------------------------------------------------------------------


def test_lead_conversion_seed_example() -> None:
    # Seed: 40 converted of 200 leads = 20 %.
    leads = frame(
        "leads",
        [
            dict(lead_id=f"l{i}", created_at="2024-02-01",
                 status="converted" if i < 40 else "open",
                 converted_at="2024-02-10" if i < 40 else None)
            for i in range(200)
        ],
    )  # fmt: skip
    out = kpis({"leads": leads}, as_of="2024-03-31")
    assert value(out, "leads_created", "2024-Q1") == 200
    rate = row(out, "lead_conversion_rate", "2024-Q1")
    assert (rate["value"], rate["numerator"], rate["denominator"]) == (0.2, 40.0, 200.0)


def test_lead_is_converted_by_date_or_by_status_without_a_date() -> None:
    leads = frame(
        "leads",
        [
            # converted by as-of
            dict(lead_id="l1", created_at="2024-01-05", status="converted",
                 converted_at="2024-01-10"),
            # status converted, no date: converted
            dict(lead_id="l2", created_at="2024-01-06", status="converted", converted_at=None),
            # converted after as-of: not yet
            dict(lead_id="l3", created_at="2024-01-07", status="converted",
                 converted_at="2024-07-10"),
            # open
            dict(lead_id="l4", created_at="2024-01-08", status="open"),
            # created in Q1, converted in Q2: counts for its Q1 cohort
            dict(lead_id="l5", created_at="2024-03-30", status="converted",
                 converted_at="2024-04-02"),
        ],
    )  # fmt: skip
    out = kpis({"leads": leads}, as_of="2024-06-30")
    # Q1 cohort: l1, l2, l5 converted of 5 created = 0.6
    assert value(out, "lead_conversion_rate", "2024-Q1") == 0.6
    assert value(out, "leads_created", "2024-Q2") == 0
    assert value(out, "lead_conversion_rate", "2024-Q2") is None  # no leads created


# --- calls --------------------------------------------------------------------------------------


def test_calls_to_new_and_existing_customers() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2023-12-01"),  # acquired before January
            dict(customer_id="c2", created_at="2024-01-10"),  # acquired in January
        ],
    )
    activities = frame(
        "activities",
        [
            dict(activity_id="a1", occurred_at="2024-01-05", type="call", customer_id="c1",
                 direction="outbound"),  # existing
            dict(activity_id="a2", occurred_at="2024-01-15", type="call", customer_id="c2",
                 direction="inbound"),  # new
            dict(activity_id="a3", occurred_at="2024-01-05", type="call",
                 customer_id="c2"),  # new: acquired in the call's period (even if later in it)
            dict(activity_id="a4", occurred_at="2024-01-15", type="call",
                 customer_id=None),  # neither
            dict(activity_id="a5", occurred_at="2024-01-15", type="email",
                 customer_id="c2"),  # not a call
            dict(activity_id="a6", occurred_at="2024-02-05", type="call",
                 customer_id="c2"),  # existing in February
            dict(activity_id="a7", occurred_at="2024-02-05", type="call",
                 customer_id="zz"),  # unknown customer: neither
        ],
    )  # fmt: skip
    out = kpis({"customers": customers, "activities": activities}, period="month",
               as_of="2024-02-29")  # fmt: skip
    # January: calls a1, a2, a3, a4 = 4 (both directions); new a2, a3 = 2; existing a1 = 1.
    assert value(out, "calls_made", "2024-01") == 4
    assert value(out, "calls_to_new_customers", "2024-01") == 2
    assert value(out, "calls_to_existing_customers", "2024-01") == 1
    # February: a6, a7 = 2; new 0; existing a6 = 1.
    assert value(out, "calls_made", "2024-02") == 2
    assert value(out, "calls_to_new_customers", "2024-02") == 0
    assert value(out, "calls_to_existing_customers", "2024-02") == 1


# --- per rep and expenses -----------------------------------------------------------------------


def test_revenue_per_rep_counts_distinct_non_null_reps_with_a_won_deal() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-02-01",
                 amount=100.0, rep="ann"),
            dict(deal_id="d2", created_at="2024-01-02", status="won", closed_at="2024-02-02",
                 amount=200.0, rep="ann"),
            dict(deal_id="d3", created_at="2024-01-02", status="won", closed_at="2024-02-03",
                 amount=300.0, rep="bo"),
            dict(deal_id="d4", created_at="2024-01-02", status="won", closed_at="2024-02-04",
                 amount=400.0, rep=None),
            dict(deal_id="d5", created_at="2024-01-02", status="lost", closed_at="2024-02-05",
                 amount=900.0, rep="cy"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, by=("rep",), as_of="2024-03-31")
    # (100 + 200 + 300 + 400) / 2 reps (ann, bo; cy only lost, the null rep is no rep) = 500
    total = row(out, "revenue_per_rep", "2024-Q1")
    assert (total["value"], total["numerator"], total["denominator"]) == (500.0, 1000.0, 2.0)
    assert value(out, "revenue_per_rep", "2024-Q1", rep="ann") == 300.0
    assert value(out, "revenue_per_rep", "2024-Q1", rep="(none)") is None  # 400 / 0 reps
    assert value(out, "revenue_per_rep", "2024-Q1", rep="cy") is None  # 0 / 0


def test_sales_expense_ratio_on_revenue_else_won_revenue() -> None:
    spend = frame(
        "spend",
        [
            dict(spent_at="2024-01-10", category="sales", amount=50.0),
            dict(spent_at="2024-01-11", category="marketing", amount=1000.0),  # not sales
        ],
    )
    orders = frame("orders", [dict(customer_id="c1", ordered_at="2024-02-01", amount=1000.0)])
    deals = frame(
        "deals",
        [dict(deal_id="d1", created_at="2024-01-02", status="won", closed_at="2024-02-01",
              amount=500.0)],
    )  # fmt: skip
    with_orders = kpis({"spend": spend, "orders": orders, "deals": deals}, as_of="2024-03-31")
    assert value(with_orders, "sales_expense_ratio", "2024-Q1") == 0.05  # 50 / 1000
    deals_only = kpis({"spend": spend, "deals": deals}, as_of="2024-03-31")
    assert value(deals_only, "sales_expense_ratio", "2024-Q1") == 0.1  # 50 / 500


def test_spend_category_is_not_the_product_category_dimension() -> None:
    spend = frame("spend", [dict(spent_at="2024-01-10", category="sales", amount=50.0)])
    orders = frame(
        "orders", [dict(customer_id="c1", ordered_at="2024-02-01", amount=1000.0, category="x")]
    )
    result = run({"spend": spend, "orders": orders}, by=("category",), as_of="2024-03-31")
    out = result.kpis
    # Spend cannot be split by product category: no category rows, the grain is reported.
    assert rows(out, "sales_expense_ratio").filter(pl.col("grain") == "category").height == 0
    assert "category" in result.grain_skips["sales_expense_ratio"]
    assert value(out, "sales_expense_ratio", "2024-Q1", category=None) == 0.05
    assert value(out, "revenue", "2024-Q1", category="x") == 1000.0


# --- rules for every metric ---------------------------------------------------------------------


def test_complete_grid_previous_value_and_change() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-05", status="won", closed_at="2024-01-20",
                 amount=100.0, rep="ann"),
            dict(deal_id="d2", created_at="2024-01-06", status="lost", closed_at="2024-01-21",
                 amount=100.0, rep="ann"),
            dict(deal_id="d3", created_at="2024-07-05", status="won", closed_at="2024-07-20",
                 amount=300.0, rep="bo"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, by=("rep",), as_of="2024-09-30")
    # Q2 has no activity: its rows exist, counts 0, ratios null; ann and bo both get rows.
    assert series(out, "deals_created") == {"2024-Q1": 2, "2024-Q2": 0, "2024-Q3": 1}
    assert series(out, "win_rate") == {"2024-Q1": 0.5, "2024-Q2": None, "2024-Q3": 1.0}
    assert series(out, "deals_won", rep="bo") == {"2024-Q1": 0, "2024-Q2": 0, "2024-Q3": 1}
    q2 = row(out, "deals_created", "2024-Q2")
    assert (q2["previous_value"], q2["change"]) == (2.0, -2.0)
    q3 = row(out, "won_revenue", "2024-Q3")
    assert (q3["previous_value"], q3["change"]) == (0.0, 300.0)
    first = row(out, "won_revenue", "2024-Q1")
    assert first["previous_value"] is None and first["change"] is None
    # a null previous ratio gives a null change
    assert row(out, "win_rate", "2024-Q3")["change"] is None


def test_null_dimension_values_and_roll_up_rows() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-05", status="won", closed_at="2024-01-20",
                 amount=100.0, rep="ann", segment="smb"),
            dict(deal_id="d2", created_at="2024-01-06", status="won", closed_at="2024-01-21",
                 amount=50.0, rep=None, segment=None),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, by=("segment", "rep"), as_of="2024-03-31",
               metrics=["won_revenue"])  # fmt: skip
    assert value(out, "won_revenue", "2024-Q1", rep="(none)") == 50.0
    assert value(out, "won_revenue", "2024-Q1", segment="(none)") == 50.0
    assert value(out, "won_revenue", "2024-Q1", segment="(none)", rep="(none)") == 50.0
    total = row(out, "won_revenue", "2024-Q1")
    assert total["segment"] is None and total["rep"] is None and total["value"] == 150.0
    by_rep = rows(out, "won_revenue").filter(pl.col("grain") == "rep")
    assert by_rep["segment"].is_null().all()  # segment is rolled up in the rep rows
    assert sorted(by_rep["rep"]) == ["(none)", "ann"]
    assert set(out["grain"]) == {"total", "segment", "rep", "segment+rep"}


def test_partial_period_and_nothing_after_as_of() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-05", status="won", closed_at="2024-01-20",
                 amount=100.0),
            dict(deal_id="d2", created_at="2024-02-14", status="open", amount=50.0),
            dict(deal_id="d3", created_at="2024-02-16", status="won", closed_at="2024-02-17",
                 amount=70.0),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, period="month", as_of="2024-02-15")
    # February holds as-of; January is partial too, as the data start on the 5th
    assert dict(zip(out["period"], out["partial_period"], strict=True)) == {
        "2024-01": True,
        "2024-02": True,
    }
    # d3 is created and won after as-of: not counted anywhere.
    assert series(out, "deals_created") == {"2024-01": 1, "2024-02": 1}
    assert series(out, "won_revenue") == {"2024-01": 100.0, "2024-02": 0.0}
    assert value(out, "open_pipeline_value", "2024-02") == 50.0


def test_a_metric_whose_table_or_column_is_missing_is_skipped_with_a_reason() -> None:
    deals = frame(
        "deals",
        [dict(deal_id="d1", created_at="2024-01-05", status="won", closed_at="2024-01-20",
              amount=100.0)],
    )  # fmt: skip
    result = run({"deals": deals}, as_of="2024-03-31")
    assert result.skipped["leads_created"] == "table leads not given"
    assert "leads" in result.skipped["lead_conversion_rate"]
    assert result.skipped["quota_attainment"].startswith("needs quota")
    assert "probability" in result.skipped["weighted_pipeline_value"]
    assert "won_revenue" in result.computed
    computed = set(result.kpis["metric"])
    assert "leads_created" not in computed and "weighted_pipeline_value" not in computed


# --- renewals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_renewal_rate_and_revenue_from_renewal_deals_by_close_date(engine: str) -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="r1", created_at="2023-12-01", status="won", closed_at="2024-01-10",
                 amount=1200.0, deal_type="renewal", rep="a"),
            dict(deal_id="r2", created_at="2023-12-01", status="lost", closed_at="2024-01-20",
                 amount=800.0, deal_type="renewal", rep="a"),
            # a won renewal without an amount counts as won and adds 0
            dict(deal_id="r3", created_at="2023-12-01", status="won", closed_at="2024-01-25",
                 amount=None, deal_type="renewal", rep="b"),
            # not renewals: new business, and a deal without a type
            dict(deal_id="n1", created_at="2023-12-01", status="won", closed_at="2024-01-05",
                 amount=5000.0, deal_type="new_business", rep="a"),
            dict(deal_id="n2", created_at="2023-12-01", status="lost", closed_at="2024-01-06",
                 amount=100.0, deal_type=None, rep="b"),
            dict(deal_id="r4", created_at="2024-01-15", status="won", closed_at="2024-02-10",
                 amount=600.0, deal_type="renewal", rep="b"),
            # closed after as-of: still open, counted nowhere
            dict(deal_id="r5", created_at="2024-02-01", status="won", closed_at="2024-03-05",
                 amount=999.0, deal_type="renewal", rep="b"),
            dict(deal_id="r6", created_at="2024-02-02", status="open", amount=50.0,
                 deal_type="renewal", rep="a"),
        ],
    )  # fmt: skip
    out = kpis({"deals": deals}, period="month", by=("rep",), as_of="2024-02-29", engine=engine)
    # January: renewals closed r1 (won), r2 (lost), r3 (won) -> 2 / 3, not a's 1/2 and b's 1/1
    # averaged (0.75)
    january = row(out, "renewal_rate", "2024-01")
    assert (january["numerator"], january["denominator"]) == (2.0, 3.0)
    assert january["value"] == pytest.approx(2 / 3)
    assert value(out, "renewal_rate", "2024-01", rep="a") == 0.5
    assert value(out, "renewal_rate", "2024-01", rep="b") == 1.0
    # February: r4 won, r5 closes after as-of -> 1 / 1
    assert value(out, "renewal_rate", "2024-02") == 1.0
    # renewal revenue: January r1 1200 + r3 0; February r4 600 (r5 not yet)
    assert series(out, "renewal_revenue") == {"2023-12": 0.0, "2024-01": 1200.0, "2024-02": 600.0}
    assert value(out, "renewal_revenue", "2024-01", rep="b") == 0.0
    # December: nothing closed -> null rate, the row still written
    assert value(out, "renewal_rate", "2023-12") is None


def test_renewal_metrics_need_the_deal_type() -> None:
    deals = frame(
        "deals",
        [dict(deal_id="d1", created_at="2024-01-05", status="won", closed_at="2024-01-20",
              amount=100.0)],
    )  # fmt: skip
    result = run({"deals": deals}, as_of="2024-03-31")
    assert result.skipped["renewal_revenue"] == "deals lacks column(s) deal_type"
    assert "deal_type" in result.skipped["renewal_rate"]


# --- training effectiveness ---------------------------------------------------------------------


def _won(deal_id: str, closed_at: str, amount: float | None, rep: str | None) -> dict[str, Any]:
    return dict(deal_id=deal_id, created_at="2024-01-01", status="won", closed_at=closed_at,
                amount=amount, rep=rep)  # fmt: skip


TRAINING_DEALS = [
    # rep a, trained on 10 February; with a 10-day window: before = 31 Jan .. 9 Feb, after =
    # 11 Feb .. 20 Feb, the training day in neither
    _won("a1", "2024-01-30 10:00", 500.0, "a"),  # one day before the before-window
    _won("a2", "2024-01-31 09:00", 1000.0, "a"),  # before
    _won("a3", "2024-02-09 23:00", 200.0, "a"),  # before (its last day)
    _won("a4", "2024-02-10 12:00", 9999.0, "a"),  # the training day: neither
    _won("a5", "2024-02-11 08:00", 1500.0, "a"),  # after
    _won("a6", "2024-02-12 08:00", None, "a"),  # after, adds 0
    _won("a7", "2024-02-20 18:00", 700.0, "a"),  # after (its last day)
    _won("a8", "2024-02-21 09:00", 4000.0, "a"),  # one day past the after-window
    dict(deal_id="a9", created_at="2024-01-01", status="lost", closed_at="2024-02-15",
         amount=3000.0, rep="a"),  # lost: no revenue
    # rep b, trained on 15 February: before = 5 .. 14 Feb, after = 16 .. 25 Feb
    _won("b1", "2024-02-05 09:00", 800.0, "b"),
    _won("b2", "2024-02-16 09:00", 400.0, "b"),
    _won("b3", "2024-02-25 09:00", 400.0, "b"),
    # rep c, trained on 1 March: nothing before, 300 after
    _won("c1", "2024-03-05 09:00", 300.0, "c"),
    _won("x1", "2024-02-12 09:00", 5000.0, None),  # nobody's
]  # fmt: skip
TRAININGS = [
    dict(rep="a", trained_on="2024-02-10", program="negotiation"),
    dict(rep="b", trained_on="2024-02-15", program="negotiation"),
    dict(rep="c", trained_on="2024-03-01", program="product"),
    # its after-window (26 Mar .. 4 Apr) has not ended by as-of (31 Mar): not counted
    dict(rep="a", trained_on="2024-03-25", program="product"),
]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_training_effectiveness_compares_won_revenue_after_with_before(engine: str) -> None:
    tables = {"deals": frame("deals", TRAINING_DEALS), "trainings": frame("trainings", TRAININGS)}
    out = kpis(tables, period="month", by=("rep",), as_of="2024-03-31",
               settings={"training_window_days": 10}, engine=engine)  # fmt: skip
    # February: a before 1000 + 200 = 1200, after 1500 + 0 + 700 = 2200; b before 800, after
    # 400 + 400 = 800 -> (1000 + 0) / (1200 + 800) = 0.5
    february = row(out, "training_effectiveness", "2024-02")
    assert (february["value"], february["numerator"], february["denominator"]) == (
        0.5,
        1000.0,
        2000.0,
    )
    assert value(out, "training_effectiveness", "2024-02", rep="a") == pytest.approx(1000 / 1200)
    assert value(out, "training_effectiveness", "2024-02", rep="b") == 0.0
    # March: only c's training counts (a's second one has not finished its window): 300 - 0
    # over nothing before -> null, the parts still written
    march = row(out, "training_effectiveness", "2024-03")
    assert (march["value"], march["numerator"], march["denominator"]) == (None, 300.0, 0.0)


def test_training_window_defaults_to_90_days() -> None:
    tables = {"deals": frame("deals", TRAINING_DEALS), "trainings": frame("trainings", TRAININGS)}
    out = kpis(tables, period="month", as_of="2024-05-10")
    # Only a's 10 February training has ended its window (10 Feb + 90 days = 10 May); b's
    # (15 May), c's (30 May) and a's second have not. Before (12 Nov .. 9 Feb): 500 + 1000 +
    # 200 = 1700; after (11 Feb .. 10 May): 1500 + 0 + 700 + 4000 = 6200
    february = row(out, "training_effectiveness", "2024-02")
    assert (february["numerator"], february["denominator"]) == (4500.0, 1700.0)
    assert february["value"] == pytest.approx(4500 / 1700)
    assert row(out, "training_effectiveness", "2024-03")["denominator"] == 0.0


def test_training_effectiveness_needs_trainings_and_deals_with_reps() -> None:
    deals = frame("deals", TRAINING_DEALS)
    result = run({"deals": deals}, period="month", as_of="2024-03-31")
    assert result.skipped["training_effectiveness"] == (
        "needs won_revenue_lift_after_training (table trainings not given)"
    )
    anonymous = deals.drop("rep")
    result = run({"deals": anonymous, "trainings": frame("trainings", TRAININGS)},
                 period="month", as_of="2024-03-31")  # fmt: skip
    assert result.skipped["training_effectiveness"].endswith("(deals lack column(s) rep)")
    assert "won_revenue" in result.computed  # the deals still count where they can


def test_every_sales_metric_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    outputs = [m.name for m in METRICS if REGISTRY[m.name].output]
    assert outputs, "no sales metrics"
    untested = [name for name in outputs if f'"{name}"' not in source]
    assert not untested, f"sales metrics without a test: {untested}"

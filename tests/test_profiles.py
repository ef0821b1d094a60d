"""Per-customer tables against independent computations on small transaction logs."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import polars as pl
import pytest

from crmkpi.calendar import Calendar
from crmkpi.metrics.settings import resolve_settings
from crmkpi.profiles import churn_risk, cohorts, rfm, score
from crmkpi.views import customer_base

AS_OF = dt.date(2024, 12, 31)
LOG = [  # customer, timestamp, amount (two purchases by A on 2024-03-01 are one purchase day)
    ("A", dt.datetime(2024, 1, 1, 10), 10.0),
    ("A", dt.datetime(2024, 3, 1, 9), 20.0),
    ("A", dt.datetime(2024, 3, 1, 17), 5.0),
    ("A", dt.datetime(2024, 6, 1), 40.0),
    ("B", dt.datetime(2024, 2, 1), 100.0),
    ("C", dt.datetime(2024, 5, 1), 7.0),
    ("C", dt.datetime(2024, 11, 30), 9.0),
    ("D", dt.datetime(2025, 1, 5), 50.0),  # after as-of: not counted
]


def _orders() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(len(LOG))],
            "customer_id": [c for c, _, _ in LOG],
            "ordered_at": [t for _, t, _ in LOG],
            "amount": [a for _, _, a in LOG],
        }
    )


def _lifetimes_summary() -> dict[str, tuple[int, int, int, float]]:
    """summary_data_from_transaction_data, written out: (frequency, recency, T, monetary)."""
    per_day: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for customer, when, amount in LOG:
        if when.date() <= AS_OF:
            per_day[customer][when.date()] += amount
    summary = {}
    for customer, days in per_day.items():
        ordered = sorted(days)
        repeat = [days[d] for d in ordered[1:]]
        summary[customer] = (
            len(ordered) - 1,
            (ordered[-1] - ordered[0]).days,
            (AS_OF - ordered[0]).days,
            sum(repeat) / len(repeat) if repeat else 0.0,
        )
    return summary


def test_rfm_matches_the_lifetimes_conventions() -> None:
    table = rfm(_orders(), None, AS_OF, resolve_settings({}))
    expected = _lifetimes_summary()
    assert sorted(table["customer_id"]) == sorted(expected) == ["A", "B", "C"]
    for row in table.iter_rows(named=True):
        frequency, recency, tenure, monetary = expected[row["customer_id"]]
        assert row["frequency"] == frequency
        assert row["recency_days"] == recency
        assert row["tenure_days"] == tenure
        assert row["monetary"] == pytest.approx(monetary)
    a = table.filter(pl.col("customer_id") == "A").row(0, named=True)
    # A: purchase days 01-01 (10), 03-01 (25), 06-01 (40): frequency 2, monetary (25+40)/2
    assert (a["frequency"], a["monetary"], a["total_spend"], a["orders_count"]) == (
        2,
        32.5,
        75.0,
        4,
    )


def test_rfm_scores_and_segments() -> None:
    table = rfm(_orders(), None, AS_OF, resolve_settings({})).sort("customer_id")
    # days since last purchase: A 213, B 334, C 31 -> R ranks (fewer days higher): B 1, A 3, C 5
    assert table["r_score"].to_list() == [3, 1, 5]
    # frequency A 2, B 0, C 1 -> F: B 1, C 3, A 5 ; total spend A 75, B 100, C 16 -> M: C1 A3 B5
    assert table["f_score"].to_list() == [5, 1, 3]
    assert table["m_score"].to_list() == [3, 5, 1]
    # A r3 f5 -> loyal; B r1 f1 -> lost; C r5 f3 m1 -> loyal (r>=3, f>=3)
    assert table["rfm_segment"].to_list() == ["loyal", "lost", "loyal"]


def test_score_ties_share_the_lowest_rank() -> None:
    frame = pl.DataFrame({"v": [1, 1, 1, 5]})
    assert frame.select(score(pl.col("v")).alias("s"))["s"].to_list() == [1, 1, 1, 5]


def test_cohort_triangle() -> None:
    table = cohorts(_orders(), AS_OF, Calendar("quarter"))
    # cohorts by first purchase: A, B in 2024-Q1 (2 customers); C in 2024-Q2 (1)
    q1 = table.filter(pl.col("cohort") == "2024-Q1")
    assert q1["cohort_customers"].unique().to_list() == [2]
    # Q1: A and B buy; Q2: A buys (06-01); Q3: nobody; Q4: nobody
    assert q1["active_customers"].to_list() == [2, 1, 0, 0]
    assert q1["retention"].to_list() == [1.0, 0.5, 0.0, 0.0]
    q2 = table.filter(pl.col("cohort") == "2024-Q2")
    assert q2["periods_since_acquisition"].to_list() == [0, 1, 2]
    assert q2["active_customers"].to_list() == [1, 0, 1]  # C buys again in Q4


def test_churn_risk_rules() -> None:
    settings = resolve_settings({"churn_risk_window_days": 90, "risk_multiple": 2})
    orders = _orders()
    base, _ = customer_base(None, orders, AS_OF, settings)
    flagged = churn_risk(orders, None, base, AS_OF, settings)
    reasons = dict(zip(flagged["customer_id"], flagged["reason"], strict=True))
    # A: gaps 60 and 92 days (usual 76); 213 days since the last purchase > 2 x 76 -> overdue.
    # B: one purchase day, no usual gap, no purchases in either window -> not flagged.
    # C: gap 213; 31 days since the last -> not overdue; windows: last (10-03..12-31) 1 -> fine.
    assert reasons == {"A": "overdue"}


def test_customers_by_rfm_segment_kpi() -> None:
    from crmkpi.api import compute_kpis

    out = compute_kpis({"orders": _orders()}, period="quarter", by=("rfm_segment",),
                       as_of=AS_OF, metrics=["customers_by_rfm_segment"])  # fmt: skip
    cells = out.filter(pl.col("grain") == "rfm_segment", pl.col("period") == "2024-Q4")
    # from test_rfm_scores_and_segments: A and C loyal, B lost (D bought after as-of)
    assert dict(cells.select("rfm_segment", "value").iter_rows()) == {"loyal": 2.0, "lost": 1.0}
    earlier = out.filter(pl.col("grain") == "rfm_segment", pl.col("period") == "2024-Q1")
    assert earlier["value"].sum() == 0  # a snapshot as of as-of: earlier periods hold none


def test_customers_by_rfm_segment_needs_the_breakdown() -> None:
    from crmkpi.api import options_for
    from crmkpi.engine import compute

    result = compute({"orders": _orders()}, options_for(None, "quarter", ("segment",), AS_OF))
    assert "customers_by_rfm_segment" in result.skipped
    assert "rfm_segment" in result.skipped["customers_by_rfm_segment"]

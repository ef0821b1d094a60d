"""Per-customer tables against independent computations on small transaction logs."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

import narwhals as nw
import numpy as np
import polars as pl
import pytest

from crmkpi.calendar import Calendar
from crmkpi.metrics.settings import resolve_settings
from crmkpi.profiles import COLUMN_DOCS, churn_risk, clv_forecast, cohorts, rfm, score
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
    frame = nw.from_native(pl.DataFrame({"v": [1, 1, 1, 5, 9, 0]}))
    # ranks (min) 2 2 2 5 6 1 over 6 values: percent ranks 0.2 0.2 0.2 0.8 1 0
    scores = frame.select(score(nw.col("v")).alias("s"), score(nw.col("v"), True).alias("d"))
    assert scores["s"].to_list() == [2, 2, 2, 5, 5, 1]
    # descending ranks 3 3 3 2 1 6: percent ranks 0.4 0.4 0.4 0.2 0 1
    assert scores["d"].to_list() == [3, 3, 3, 2, 1, 5]


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


def test_churn_risk_flags_a_p_alive_below_the_threshold_with_the_probability() -> None:
    settings = resolve_settings({"p_alive_threshold": 0.4})
    orders = _orders()
    base, _ = customer_base(None, orders, AS_OF, settings)
    alive = pl.DataFrame({"customer_id": ["A", "B", "C"], "p_alive": [0.39, 0.4, None]})
    flagged = churn_risk(orders, None, base, AS_OF, settings, alive=alive)
    rows = {r["customer_id"]: r for r in flagged.iter_rows(named=True)}
    # A: overdue (as above) and 0.39 < 0.4; B: 0.4 is not below; C: no probability (no fit)
    assert set(rows) == {"A"}
    assert rows["A"]["reason"] == "overdue; unlikely_alive"
    assert rows["A"]["p_alive"] == 0.39


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


SIMULATED = {"r": 0.5, "alpha": 3.0, "a": 0.8, "b": 2.5}  # alpha in weeks
SIMULATION_END = dt.date(2024, 9, 29)  # day 272: 39 weeks after the first possible purchase


def _simulated_rfm(segments: bool = False) -> pl.DataFrame:
    """rfm of 3,000 customers drawn from the BG/NBD process itself (seeded): purchase rate
    lambda ~ Gamma(r, alpha) per week, dropout p ~ Beta(a, b) after each purchase, first
    purchases in the first 12 weeks of 2024, observed for 39 weeks; purchases of one day merge.
    Segment (when asked): a for even customers, b for odd ones, none for every tenth."""
    rng = np.random.default_rng(3)
    n = 3000
    rate = rng.gamma(SIMULATED["r"], 1 / SIMULATED["alpha"], n) / 7  # per day
    dropout = rng.beta(SIMULATED["a"], SIMULATED["b"], n)
    birth = rng.integers(0, 84, n)
    observed = (SIMULATION_END - dt.date(2024, 1, 1)).days - birth
    who, when = [np.arange(n)], [birth.astype(float)]
    elapsed, alive = np.zeros(n), np.ones(n, dtype=bool)
    while alive.any():  # one step per purchase number, over all customers at once
        elapsed = elapsed + rng.exponential(1.0, n) / rate
        alive = alive & (elapsed <= observed)
        who.append(np.nonzero(alive)[0])
        when.append((birth + elapsed)[alive])
        alive = alive & (rng.random(n) >= dropout)
    customer = np.concatenate(who)
    day = np.floor(np.concatenate(when)).astype(np.int64)
    orders = pl.DataFrame(
        {
            "customer_id": [f"s{i:04d}" for i in customer],
            "ordered_at": (np.datetime64("2024-01-01") + day.astype("timedelta64[D]")).astype(
                "datetime64[us]"
            ),
            "amount": (10.0 + customer % 17 + day % 5).astype(np.float64),
        }
    )
    labels = pl.DataFrame(
        {
            "customer_id": [f"s{i:04d}" for i in range(n)],
            "segment": [None if i % 10 == 0 else "ab"[i % 2] for i in range(n)],
        }
    )
    return rfm(orders, labels if segments else None, SIMULATION_END, resolve_settings({}))


def test_the_bgnbd_fit_recovers_the_parameters_of_simulated_customers() -> None:
    (fit,) = clv_forecast(_simulated_rfm(), resolve_settings({})).fits
    assert fit["bg_nbd"]["converged"]
    for name, truth in SIMULATED.items():
        assert fit["bg_nbd"][name] == pytest.approx(truth, rel=0.2), name


def test_clv_time_unit_rescales_alpha_and_the_log_likelihood_by_a_constant() -> None:
    table = _simulated_rfm()
    fits = {
        unit: clv_forecast(table, resolve_settings({"clv_time_unit": unit})).fits[0]["bg_nbd"]
        for unit in ("week", "day")
    }
    week, day = fits["week"], fits["day"]
    # time x 7 with alpha x 7 leaves r, a, b and P(alive) as they were, and divides each
    # customer's likelihood by 7^x (alpha^r / (alpha + T)^(r + x) gains 7^r / 7^(r + x)):
    # LL in days = LL in weeks - sum(x) ln 7
    assert day["alpha"] == pytest.approx(7 * week["alpha"], rel=1e-4)
    for name in ("r", "a", "b"):
        assert day[name] == pytest.approx(week[name], rel=1e-4)
    shift = int(table["frequency"].sum()) * math.log(7)
    assert day["log_likelihood"] == pytest.approx(week["log_likelihood"] - shift, rel=1e-9)


def test_clv_fits_by_segment_equal_fits_on_each_segment_alone() -> None:
    table = _simulated_rfm(segments=True)
    forecast = clv_forecast(table, resolve_settings({"clv_fit_by": "segment"}))
    by_group = {f["group"]: f for f in forecast.fits}
    assert set(by_group) == {"a", "b", "(none)"}
    for group in ("a", "b", "(none)"):
        part = table.filter(pl.col("segment").fill_null("(none)") == group)
        alone = clv_forecast(part, resolve_settings({}))
        assert by_group[group]["customers"] == part.height
        assert by_group[group]["bg_nbd"] == alone.fits[0]["bg_nbd"]
        mine = forecast.table.filter(pl.col("fit_group") == group)
        assert mine["p_alive"].to_list() == alone.table["p_alive"].to_list()
        assert mine["predicted_clv"].to_list() == alone.table["predicted_clv"].to_list()


def test_every_rfm_and_clv_forecast_column_is_documented() -> None:
    """The README's column table (COLUMN_DOCS) names the columns the tables really have."""
    table = _simulated_rfm(segments=True)
    assert [c for c in COLUMN_DOCS["rfm"] if c in table.columns] == table.columns
    assert set(COLUMN_DOCS["rfm"]) - set(table.columns) == {
        "region",
        "rep",
    }  # only segment simulated
    forecast = clv_forecast(table, resolve_settings({})).table
    assert set(COLUMN_DOCS["clv_forecast"]) <= set(forecast.columns)
    assert set(forecast.columns) - set(COLUMN_DOCS["clv_forecast"]) <= {
        "customer_id",
        "segment",
        "fit_group",
    }

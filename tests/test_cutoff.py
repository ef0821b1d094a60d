"""An honest cut-off (issue 13, section 3): the default as-of comes from events that happened,
growth against a period the data cover only in part is null, and metrics that the data cannot
support are skipped with the reason. Expected figures are worked out by hand beside each test."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from crmkpi.run import execute
from tests import factory as fx
from tests import shapes
from tests.kpi_helpers import frame, kpis, row, run, value


def _sf_deal(i: int, stage: str, amount: str, created: str, closed: str) -> dict[str, str]:
    """A Salesforce opportunity report row; an open deal's Close Date is its expected date."""
    return {
        "Opportunity ID": fx.sf_id18(fx.sf_id15(i)),
        "Opportunity Name": f"Deal {i + 1}",
        "Account ID": f"001A{i:04d}",
        "Stage": stage,
        "Amount": amount,
        "Probability (%)": "100" if stage == "Closed Won" else "10",
        "Created Date": created,
        "Close Date": closed,
        "Opportunity Owner": "Ann Lee",
        "Type": "New Business",
    }


SALESFORCE_DEALS = [
    _sf_deal(0, "Closed Won", "100.00", "1/1/2024", "2/10/2024"),
    _sf_deal(1, "Closed Won", "200.00", "1/20/2024", "3/15/2024"),
    _sf_deal(2, "Closed Won", "450.00", "4/2/2024", "6/30/2024"),
    _sf_deal(3, "Closed Lost", "50.00", "5/1/2024", "5/20/2024"),
    # open deals: Salesforce writes an expected close date years ahead
    _sf_deal(4, "Negotiation", "900.00", "6/12/2024", "7/2/2031"),
    _sf_deal(5, "Prospecting", "300.00", "3/1/2024", "1/15/2031"),
]


def test_open_deals_expected_close_dates_do_not_set_the_default_as_of(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    fx.write_csv(exports / "deals.csv", SALESFORCE_DEALS, fx.HEADERS)
    config = fx.write_config(exports)
    out = tmp_path / "out"
    execute(exports, config, {"out": str(out), "format": "csv"}, {})
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    # the latest event that happened is the won deal closed on 2024-06-30, not 2031-07-02
    assert manifest["as_of"] == "2024-06-30"
    left_out = [w for w in manifest["warnings"] if "deals.closed_at" in w]
    assert len(left_out) == 1 and "2 rows" in left_out[0]
    kpis = pl.read_csv(out / "kpis.csv")
    # no empty future periods: Q1 and Q2 2024 only, both whole
    periods = kpis.select("period", "partial_period").unique().sort("period").rows()
    assert periods == [("2024-Q1", False), ("2024-Q2", False)]
    growth = kpis.filter(
        (pl.col("metric") == "sales_growth_rate")
        & (pl.col("grain") == "total")
        & (pl.col("period") == "2024-Q2")
    )
    # won revenue (no orders): Q1 100 + 200 = 300, Q2 450: (450 - 300) / 300 = +50 %, not -100 %
    assert growth["value"].to_list() == [pytest.approx(0.5)]


# Online Retail's span: from Wednesday 2010-12-01 (two thirds into 2010-Q4) to 2011-12-09.
RETAIL_YEAR = {
    **shapes.ONLINE_RETAIL_DAYS,  # 2010-Q4: 15.30 + 20.34 + 20.40 + 15.00 = 71.04
    "2011-02-10": [shapes._retail("540001", "10", "2/10/2011 10:00", "2.00", "17850")],  # 20
    "2011-05-05": [shapes._retail("550001", "5", "5/5/2011 11:00", "8.00", "17850")],  # 40
    "2011-08-08": [shapes._retail("560001", "4", "8/8/2011 12:00", "5.00", "17809")],  # 20
    "2011-12-09": [shapes._retail("581587", "100", "12/9/2011 12:50", "2.00", "12680")],  # 200
}


def _total(kpis: pl.DataFrame, metric: str) -> dict[str, float | None]:
    rows = kpis.filter((pl.col("metric") == metric) & (pl.col("grain") == "total"))
    return dict(rows.select("period", "value").iter_rows())


def test_growth_against_a_partial_first_or_last_period_is_null(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    shapes.write_online_retail(exports, RETAIL_YEAR)
    config = fx.write_config(exports, {"tables": {"orders": shapes.ONLINE_RETAIL_TABLE}})
    out = tmp_path / "out"
    execute(exports, config, {"out": str(out), "format": "csv"}, {})
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["as_of"] == "2011-12-09"
    kpis = pl.read_csv(out / "kpis.csv")
    flags = dict(kpis.select("period", "partial_period").unique().iter_rows())
    # the data start on 2010-12-01 in a quarter starting 2010-10-01: partial like the last one
    assert flags == {
        "2010-Q4": True,
        "2011-Q1": False,
        "2011-Q2": False,
        "2011-Q3": False,
        "2011-Q4": True,
    }
    assert _total(kpis, "revenue") == pytest.approx(
        {"2010-Q4": 71.04, "2011-Q1": 20.0, "2011-Q2": 40.0, "2011-Q3": 20.0, "2011-Q4": 200.0}
    )
    # year on year 2011-Q4 against 2010-Q4 would be (200 - 71.04) / 71.04 = +181.5 %: null
    assert _total(kpis, "sales_growth_yoy")["2011-Q4"] is None
    # against the previous quarter: 2011-Q1 against the partial 2010-Q4 and the partial 2011-Q4
    # against 2011-Q3 are null; between whole quarters (40 - 20) / 20 and (20 - 40) / 40
    growth = _total(kpis, "sales_growth_rate")
    assert growth["2011-Q1"] is None and growth["2011-Q4"] is None
    assert (growth["2011-Q2"], growth["2011-Q3"]) == pytest.approx((1.0, -0.5))
    nulled = manifest["growth_nulled"]
    assert sorted(nulled["sales_growth_rate"]) == ["2011-Q1", "2011-Q4"]
    assert nulled["sales_growth_yoy"] == {
        "2011-Q4": "against 2010-Q4: 2011-Q4 runs only to as-of 2011-12-09; 2010-Q4 has data "
        "only from 2010-12-01"
    }
    assert "2010-Q4 has data only from 2010-12-01" in nulled["sales_growth_rate"]["2011-Q1"]


@pytest.mark.parametrize(
    ("period", "as_of", "months"),
    [
        ("quarter", "2024-03-31", 3.0),  # a quarter is 3 calendar months, not 91 / 30.44 = 2.99
        ("month", "2024-01-31", 1.0),
        ("week", "2024-01-07", 7 / 30.4375),  # Monday 1 to Sunday 7 January
        ("all", "2024-03-31", 91 / 30.4375),  # 1 January to 31 March: 91 days
    ],
)
def test_cac_payback_counts_the_calendar_months_of_the_period(
    period: str, as_of: str, months: float
) -> None:
    customers = frame("customers", [dict(customer_id="c1", created_at="2024-01-01")])
    orders = frame("orders", [dict(customer_id="c1", ordered_at="2024-01-03", amount=90.0)])
    spend = frame("spend", [dict(spent_at="2024-01-02", category="marketing", amount=60.0)])
    out = kpis(
        {"customers": customers, "orders": orders, "spend": spend},
        period=period,
        as_of=as_of,
        metrics=["cac_payback_months"],
    )
    first = out.filter(pl.col("grain") == "total").sort("period_start")["period"][0]
    # cac 60 / 1 new customer = 60; revenue 90 per active customer over the period, so
    # 90 / months a month; payback = 60 / (90 / months) = months x 2 / 3 (a quarter: 2.0)
    assert value(out, "cac_payback_months", first) == pytest.approx(months * 2 / 3)


def test_customer_data_completeness_is_skipped_without_a_customers_table() -> None:
    orders = frame("orders", [dict(customer_id="c1", ordered_at="2024-01-03", amount=90.0)])
    result = run({"orders": orders}, period="month", as_of="2024-01-31")
    # a customer base built from orders alone has no profile fields: no 0 %, a reason
    assert "customer_data_completeness" not in result.kpis["metric"].to_list()
    assert result.skipped["customer_data_completeness"] == (
        "needs profile_fields_filled (table customers not given)"
    )


CALLS_WITHOUT_WAITS = [
    dict(call_id="k1", offered_at="2024-01-02 09:00", outcome="answered"),
    dict(call_id="k2", offered_at="2024-01-02 09:05", outcome="abandoned"),
    dict(call_id="k3", offered_at="2024-01-02 09:10", outcome="abandoned"),
    dict(call_id="k4", offered_at="2024-01-02 09:15", outcome="blocked"),
]


def test_abandonment_rate_without_wait_seconds_when_short_abandons_are_off() -> None:
    calls = frame("calls", CALLS_WITHOUT_WAITS)
    out = kpis({"calls": calls}, period="month", as_of="2024-01-31")
    # short_abandon_seconds 0 (the default): no short abandons, so no wait is needed:
    # 2 abandoned / (4 offered - 1 blocked) = 2 / 3
    january = row(out, "abandonment_rate", "2024-01")
    assert (january["numerator"], january["denominator"]) == (2.0, 3.0)
    assert january["value"] == pytest.approx(2 / 3)


def test_short_abandons_without_wait_seconds_skip_the_abandonment_rate() -> None:
    calls = frame("calls", CALLS_WITHOUT_WAITS)
    result = run({"calls": calls}, period="month", as_of="2024-01-31",
                 settings={"short_abandon_seconds": 5})  # fmt: skip
    assert result.skipped["abandonment_rate"] == (
        "needs calls_abandoned_counted (calls lacks column(s) wait_seconds, needed while "
        "short_abandon_seconds is 5)"
    )
    # with the waits, a 3-second abandon is short: (2 - 1) / (4 - 1 - 1) = 1 / 2
    waits = [
        {**c, "wait_seconds": w}
        for c, w in zip(CALLS_WITHOUT_WAITS, [10.0, 3.0, 40.0, 0.0], strict=True)
    ]
    out = kpis({"calls": frame("calls", waits)}, period="month", as_of="2024-01-31",
               settings={"short_abandon_seconds": 5})  # fmt: skip
    assert value(out, "abandonment_rate", "2024-01") == pytest.approx(0.5)


def test_response_rate_per_campaign() -> None:
    members = frame(
        "campaign_members",
        [
            dict(campaign_id="A", member_id="m1", targeted_at="2024-01-05", responded=True),
            dict(campaign_id="A", member_id="m2", targeted_at="2024-01-05", responded=False),
            dict(campaign_id="A", member_id="m3", targeted_at="2024-01-06", responded=True),
            dict(campaign_id="B", member_id="m1", targeted_at="2024-02-01", responded=True),
            dict(campaign_id="B", member_id="m4", targeted_at="2024-02-01", responded=None),
            dict(campaign_id="B", member_id="m4", targeted_at="2024-02-08", responded=False),
        ],
    )
    surveys = frame(
        "surveys",
        [dict(response_id="s1", responded_at="2024-02-02", survey_type="ad_rating", score=4.0)],
    )
    result = run({"campaign_members": members, "surveys": surveys}, period="quarter",
                 by=["campaign"], as_of="2024-03-31")  # fmt: skip
    out = result.kpis
    # A: responded pairs (A,m1), (A,m3) of 3 targeted = 2 / 3; B: (B,m1) of the pairs (B,m1),
    # (B,m4) (m4 targeted twice counts once) = 1 / 2; all: 3 of 5 pairs = 0.6
    a = row(out, "response_rate", "2024-Q1", campaign="A")
    b = row(out, "response_rate", "2024-Q1", campaign="B")
    total = row(out, "response_rate", "2024-Q1", campaign=None)
    assert (a["numerator"], a["denominator"], a["value"]) == (2.0, 3.0, pytest.approx(2 / 3))
    assert (b["numerator"], b["denominator"], b["value"]) == (1.0, 2.0, 0.5)
    assert (total["numerator"], total["denominator"], total["value"]) == (3.0, 5.0, 0.6)
    # distinct responders: A m1, m3; B m1; in all, m1 and m3 = 2 (not 2 + 1)
    assert value(out, "campaign_participants", "2024-Q1", campaign="A") == 2.0
    assert value(out, "campaign_participants", "2024-Q1", campaign="B") == 1.0
    assert value(out, "campaign_participants", "2024-Q1", campaign=None) == 2.0
    # surveys carry no campaign: the usual grain skip
    assert result.grain_skips["ad_success_score"] == ["campaign"]


def test_planned_periods_do_not_set_the_default_as_of() -> None:
    spend = frame("spend", [dict(spent_at="2024-03-10", category="marketing", amount=80.0)])
    budgets = frame(
        "budgets",
        [
            dict(period_start="2024-01-01", category="marketing", amount=100.0),
            dict(period_start="2025-01-01", category="marketing", amount=120.0),  # next year's
        ],
    )
    result = run({"spend": spend, "budgets": budgets}, period="quarter")
    # the latest event is the spend of 2024-03-10; next year's budget is a plan
    assert result.as_of.isoformat() == "2024-03-10"
    assert result.warnings == [
        "as-of: budgets.period_start left out of the default as-of (planned periods): 1 row "
        "dated after it"
    ]
    # spend 80 against the Q1 budget 100
    assert value(result.kpis, "marketing_spend_vs_budget", "2024-Q1") == pytest.approx(0.8)

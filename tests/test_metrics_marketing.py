"""Every marketing and advertising metric (KPI_CATALOGUE.md, "Marketing and advertising") on tiny
inline data.

Each expected value is worked out by hand in the comment beside it and written as a literal.
Periods are months; `as_of` is always given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crmkpi.metrics import REGISTRY
from crmkpi.metrics.marketing import METRICS
from tests.kpi_helpers import frame, kpis, row, run, series, value

# --- campaign members ---------------------------------------------------------------------------

MEMBERS = [
    # x is in campaign A twice (one pair) and in campaign B once
    dict(campaign_id="A", member_id="x", targeted_at="2024-01-05", responded=True,
         converted=True),
    dict(campaign_id="A", member_id="x", targeted_at="2024-01-06", responded=True,
         converted=True),
    dict(campaign_id="B", member_id="x", targeted_at="2024-01-07", responded=True,
         converted=False),
    dict(campaign_id="A", member_id="y", targeted_at="2024-01-08", responded=False,
         converted=None),
    dict(campaign_id="A", member_id="z", targeted_at="2024-01-09", responded=None,
         converted=None),  # unknown: not responded
    dict(campaign_id="B", member_id="w", targeted_at="2024-01-10", responded=True,
         converted=None),  # unknown: not converted
    # targeted after as-of: not counted
    dict(campaign_id="B", member_id="v", targeted_at="2024-02-03", responded=True,
         converted=True),
]  # fmt: skip


def test_participants_response_and_conversion_on_distinct_members_and_pairs() -> None:
    out = kpis({"campaign_members": frame("campaign_members", MEMBERS)}, period="month",
               as_of="2024-01-31")  # fmt: skip
    # distinct members who responded: x, w (x counts once over A and B)
    assert value(out, "campaign_participants", "2024-01") == 2
    # pairs targeted: (A,x), (B,x), (A,y), (A,z), (B,w) = 5; responded: (A,x), (B,x), (B,w) = 3
    response = row(out, "response_rate", "2024-01")
    assert (response["value"], response["numerator"], response["denominator"]) == (
        0.6,
        3.0,
        5.0,
    )
    # converted pairs: (A,x) = 1 of the 3 responding pairs
    conversion = row(out, "campaign_conversion_rate", "2024-01")
    assert conversion["value"] == pytest.approx(1 / 3)
    assert (conversion["numerator"], conversion["denominator"]) == (1.0, 3.0)
    assert list(series(out, "campaign_participants")) == ["2024-01"]


# --- campaign ROI -------------------------------------------------------------------------------


def test_campaign_roi_cost_sources_revenue_by_as_of_and_placement_by_start() -> None:
    campaigns = frame(
        "campaigns",
        [
            dict(campaign_id="E", started_at="2023-12-20", cost=10.0),
            dict(campaign_id="A", started_at="2024-01-01", cost=100.0),  # its cost wins
            dict(campaign_id="B", started_at="2024-01-15", cost=None),  # cost from spend rows
            dict(campaign_id="C", started_at="2024-01-20", cost=None),  # no cost at all: 0
            dict(campaign_id="D", started_at="2024-02-05", cost=50.0),  # after as-of
        ],
    )
    members = frame(
        "campaign_members",
        [
            # E started in December: its January member's revenue counts for December
            dict(campaign_id="E", member_id="m1", targeted_at="2024-01-03", revenue=40.0),
            dict(campaign_id="A", member_id="m2", targeted_at="2024-01-05", revenue=100.0),
            dict(campaign_id="A", member_id="m3", targeted_at="2024-01-06", revenue=50.0),
            dict(campaign_id="A", member_id="m4", targeted_at="2024-01-07", revenue=None),
            dict(campaign_id="B", member_id="m5", targeted_at="2024-01-16", revenue=25.0),
            # targeted after as-of: its revenue does not count
            dict(campaign_id="B", member_id="m6", targeted_at="2024-02-03", revenue=1000.0),
            dict(campaign_id="C", member_id="m7", targeted_at="2024-01-21", revenue=10.0),
            dict(campaign_id="D", member_id="m8", targeted_at="2024-01-30", revenue=70.0),
        ],
    )
    spend = frame(
        "spend",
        [
            dict(spent_at="2024-01-02", category="marketing", amount=999.0, campaign_id="A"),
            dict(spent_at="2024-01-20", category="marketing", amount=30.0, campaign_id="B"),
            dict(spent_at="2024-01-25", category="advertising", amount=20.0, campaign_id="B"),
            # spent after as-of: not part of B's cost yet
            dict(spent_at="2024-02-10", category="marketing", amount=500.0, campaign_id="B"),
        ],
    )
    tables = {"campaigns": campaigns, "campaign_members": members, "spend": spend}
    out = kpis(tables, period="month", as_of="2024-01-31")
    # December: E (40 - 10) / 10 = 3
    december = row(out, "campaign_roi", "2023-12")
    assert (december["value"], december["numerator"], december["denominator"]) == (
        3.0,
        30.0,
        10.0,
    )
    # January: revenue A 150 + B 25 + C 10 = 185; cost A 100 + B (30 + 20) + C 0 = 150
    # -> (185 - 150) / 150 = 35 / 150
    january = row(out, "campaign_roi", "2024-01")
    assert january["value"] == pytest.approx(35 / 150)
    assert (january["numerator"], january["denominator"]) == (35.0, 150.0)


def test_campaign_roi_with_zero_cost_is_null_and_skipped_without_revenue() -> None:
    campaigns = frame("campaigns", [dict(campaign_id="C", started_at="2024-01-20")])
    members = frame(
        "campaign_members",
        [dict(campaign_id="C", member_id="m", targeted_at="2024-01-21", revenue=10.0)],
    )
    out = kpis({"campaigns": campaigns, "campaign_members": members}, period="month",
               as_of="2024-01-31")  # fmt: skip
    roi = row(out, "campaign_roi", "2024-01")
    assert (roi["value"], roi["numerator"], roi["denominator"]) == (None, 10.0, 0.0)
    no_revenue = frame(
        "campaign_members",
        [dict(campaign_id="C", member_id="m", targeted_at="2024-01-21", responded=True)],
    )
    result = run({"campaigns": campaigns, "campaign_members": no_revenue}, period="month",
                 as_of="2024-01-31")  # fmt: skip
    assert "campaign_roi" in result.skipped


# --- spend and budgets --------------------------------------------------------------------------

SPEND = [
    dict(spent_at="2024-01-10", category="marketing", amount=300.0),
    dict(spent_at="2024-01-20", category="marketing", amount=200.0),
    dict(spent_at="2024-01-15", category="advertising", amount=100.0),
    dict(spent_at="2024-01-05", category="sales", amount=999.0),  # neither
    dict(spent_at="2024-02-05", category="marketing", amount=150.0),
    dict(spent_at="2024-02-10", category="advertising", amount=300.0),
    dict(spent_at="2024-02-20", category="advertising", amount=1000.0),  # after as-of
]
BUDGETS = [
    # two marketing rows start in January: summed
    dict(period_start="2024-01-01", category="marketing", amount=400.0),
    dict(period_start="2024-01-15", category="marketing", amount=100.0),
    dict(period_start="2024-01-01", category="advertising", amount=200.0),
    dict(period_start="2024-01-01", category="sales", amount=5.0),  # neither
    dict(period_start="2024-02-01", category="marketing", amount=300.0),
    dict(period_start="2024-02-01", category="advertising", amount=200.0),
]


def test_spend_vs_budget_sums_budget_rows_and_never_pro_rates_the_partial_period() -> None:
    tables = {"spend": frame("spend", SPEND), "budgets": frame("budgets", BUDGETS)}
    out = kpis(tables, period="month", as_of="2024-02-15")
    # January: marketing (300 + 200) / (400 + 100) = 1
    marketing = row(out, "marketing_spend_vs_budget", "2024-01")
    assert (marketing["value"], marketing["numerator"], marketing["denominator"]) == (
        1.0,
        500.0,
        500.0,
    )
    # February is partial (as-of the 15th): spend up to as-of, whole budget: 150 / 300
    assert row(out, "marketing_spend_vs_budget", "2024-02")["partial_period"] is True
    assert value(out, "marketing_spend_vs_budget", "2024-02") == 0.5
    # advertising: January 100 / 200; February 300 / 200 (the 1000 is after as-of)
    assert value(out, "ad_spend_vs_budget", "2024-01") == 0.5
    ad = row(out, "ad_spend_vs_budget", "2024-02")
    assert (ad["value"], ad["numerator"], ad["denominator"]) == (1.5, 300.0, 200.0)


def test_budgets_of_a_quarter_are_the_rows_starting_in_it() -> None:
    tables = {"spend": frame("spend", SPEND), "budgets": frame("budgets", BUDGETS)}
    out = kpis(tables, period="quarter", as_of="2024-02-15")
    # marketing: spend 300 + 200 + 150 = 650; budget 400 + 100 + 300 = 800
    assert value(out, "marketing_spend_vs_budget", "2024-Q1") == 0.8125


def test_ad_effectiveness_is_ad_spend_growth_over_revenue_growth() -> None:
    spend = frame(
        "spend",
        [
            dict(spent_at="2024-01-10", category="advertising", amount=100.0),
            dict(spent_at="2024-02-10", category="advertising", amount=300.0),
            dict(spent_at="2024-03-10", category="advertising", amount=150.0),
            dict(spent_at="2024-02-10", category="marketing", amount=5000.0),  # not advertising
        ],
    )
    orders = frame(
        "orders",
        [
            # the data start on 1 January: January is whole, growth against it is not null
            dict(customer_id="c1", ordered_at="2024-01-01", amount=1000.0),
            dict(customer_id="c1", ordered_at="2024-02-05", amount=1500.0),
            dict(customer_id="c2", ordered_at="2024-03-05", amount=1500.0),
        ],
    )
    out = kpis({"spend": spend, "orders": orders}, period="month", as_of="2024-03-31")
    # January: no previous period -> null
    # February: ad spend +200 % (100 -> 300), revenue +50 % (1000 -> 1500) -> 2 / 0.5 = 4
    # March: revenue growth 0 -> null (never inf)
    assert series(out, "ad_effectiveness") == {
        "2024-01": None,
        "2024-02": pytest.approx(4.0),
        "2024-03": None,
    }


# --- activities ---------------------------------------------------------------------------------


def test_interaction_cost_and_frequency() -> None:
    activities = frame(
        "activities",
        [
            dict(activity_id="a1", occurred_at="2024-01-02", type="call", customer_id="c1",
                 cost=10.0),
            dict(activity_id="a2", occurred_at="2024-01-03", type="email", customer_id="c1",
                 cost=20.0),
            dict(activity_id="a3", occurred_at="2024-01-04", type="visit", customer_id="c2",
                 cost=None),  # no cost: not in the mean
            dict(activity_id="a4", occurred_at="2024-01-05", type="call", customer_id=None,
                 cost=0.0),  # a zero cost is a cost; no customer: not an interaction
            dict(activity_id="a5", occurred_at="2024-01-06", type="chat", customer_id="c3",
                 cost=None),
            dict(activity_id="a6", occurred_at="2024-02-06", type="chat", customer_id="c4",
                 cost=100.0),  # after as-of
        ],
    )  # fmt: skip
    out = kpis({"activities": activities}, period="month", as_of="2024-01-31")
    # (10 + 20 + 0) / 3 activities with a cost = 10
    cost = row(out, "avg_interaction_cost", "2024-01")
    assert (cost["value"], cost["numerator"], cost["denominator"]) == (10.0, 30.0, 3.0)
    # activities with a customer: a1, a2, a3, a5 = 4; distinct customers c1, c2, c3 = 3
    frequency = row(out, "interaction_frequency", "2024-01")
    assert frequency["value"] == pytest.approx(4 / 3)
    assert (frequency["numerator"], frequency["denominator"]) == (4.0, 3.0)


# --- advertising surveys ------------------------------------------------------------------------

AD_SURVEYS = [
    dict(response_id="s1", responded_at="2024-01-03", survey_type="ad_awareness", score=1.0,
         rep="a"),
    dict(response_id="s2", responded_at="2024-01-04", survey_type="ad_awareness", score=0.0,
         rep="a"),
    dict(response_id="s3", responded_at="2024-01-05", survey_type="ad_awareness", score=1.0,
         rep="b"),
    dict(response_id="s4", responded_at="2024-01-06", survey_type="ad_rating", score=4.0,
         rep="a"),
    dict(response_id="s5", responded_at="2024-01-07", survey_type="ad_rating", score=2.5,
         rep="b"),
    dict(response_id="s6", responded_at="2024-01-08", survey_type="csat", score=5.0, rep="a"),
    dict(response_id="s7", responded_at="2024-01-09", survey_type="nps", score=10.0, rep="a"),
    dict(response_id="s8", responded_at="2024-01-10", survey_type="nps", score=3.0, rep="b"),
    dict(response_id="s9", responded_at="2024-02-02", survey_type="ad_awareness", score=0.0,
         rep="b"),
    # after as-of: not counted
    dict(response_id="s10", responded_at="2024-03-01", survey_type="ad_rating", score=1.0,
         rep="a"),
]  # fmt: skip


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_ad_awareness_and_success_from_their_own_survey_types(engine: str) -> None:
    out = kpis({"surveys": frame("surveys", AD_SURVEYS)}, period="month", by=("rep",),
               as_of="2024-02-29", engine=engine)  # fmt: skip
    # January: ad_awareness s1, s2, s3 of which s1 and s3 aware -> 2 / 3
    awareness = row(out, "ad_awareness_rate", "2024-01")
    assert (awareness["numerator"], awareness["denominator"]) == (2.0, 3.0)
    assert value(out, "ad_awareness_rate", "2024-01", rep="a") == 0.5
    assert value(out, "ad_awareness_rate", "2024-02") == 0.0  # s9 not aware
    # ad_rating s4 4 and s5 2.5 -> 6.5 / 2 = 3.25; February has none (s10 is after as-of)
    success = row(out, "ad_success_score", "2024-01")
    assert (success["value"], success["numerator"], success["denominator"]) == (3.25, 6.5, 2.0)
    assert value(out, "ad_success_score", "2024-01", rep="b") == 2.5
    assert value(out, "ad_success_score", "2024-02") is None


def test_csat_and_nps_read_only_their_own_survey_types() -> None:
    out = kpis({"surveys": frame("surveys", AD_SURVEYS)}, period="month", as_of="2024-02-29")
    # CSAT: s6 only (the ad rating of 4 is no satisfied CSAT response) -> 1 / 1, mean 5
    csat = row(out, "csat", "2024-01")
    assert (csat["numerator"], csat["denominator"]) == (1.0, 1.0)
    assert value(out, "avg_satisfaction_score", "2024-01") == 5.0
    # NPS: s7 promoter, s8 detractor -> 0 of 2 (the 0/1 awareness scores are no detractors)
    nps = row(out, "nps", "2024-01")
    assert (nps["value"], nps["numerator"], nps["denominator"]) == (0.0, 0.0, 2.0)


def test_every_marketing_metric_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    outputs = [m.name for m in METRICS if REGISTRY[m.name].output]
    assert outputs, "no marketing metrics"
    untested = [name for name in outputs if f'"{name}"' not in source]
    assert not untested, f"marketing metrics without a test: {untested}"

"""Every data quality and adoption metric (KPI_CATALOGUE.md, "Data quality and adoption") on tiny
inline data.

Each expected value is worked out by hand in the comment beside it and written as a literal.
Periods are months; `as_of` is always given.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from crmkpi.metrics import REGISTRY
from crmkpi.metrics.quality import METRICS
from tests.kpi_helpers import frame, kpis, row, run, series, value

# --- customer data completeness -----------------------------------------------------------------

CUSTOMERS = [
    # name, email filled; an empty phone and a white-space address are blank -> 2 of 4
    dict(customer_id="c1", created_at="2024-01-05", name="Ann", email="a@x.cn", phone="",
         address="  "),
    # email null -> 3 of 4
    dict(customer_id="c2", created_at="2024-01-20", name="Bo", email=None, phone="123",
         address="Rd 1"),
    # a tab, a no-break space and an ideographic space are blank too -> email only, 1 of 4
    dict(customer_id="c3", created_at="2024-02-10", name="\t", email="c@x.cn",
         phone="\u00a0", address="\u3000"),
    # acquired after as-of: not counted
    dict(customer_id="c4", created_at="2024-03-05", name="Di", email="d@x.cn", phone="4",
         address="Rd 4"),
]  # fmt: skip


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_completeness_is_a_stock_over_customers_acquired_by_each_period_end(engine: str) -> None:
    out = kpis({"customers": frame("customers", CUSTOMERS)}, period="month",
               as_of="2024-02-29", engine=engine)  # fmt: skip
    # end of January: c1 2 + c2 3 = 5 of 2 x 4 = 8 slots
    january = row(out, "customer_data_completeness", "2024-01")
    assert (january["value"], january["numerator"], january["denominator"]) == (
        0.625,
        5.0,
        8.0,
    )
    # end of February (a stock: January's customers are still counted): 5 + c3 1 = 6 of 12
    february = row(out, "customer_data_completeness", "2024-02")
    assert (february["value"], february["numerator"], february["denominator"]) == (
        0.5,
        6.0,
        12.0,
    )


def test_completeness_fields_come_from_the_profile_fields_setting() -> None:
    out = kpis({"customers": frame("customers", CUSTOMERS)}, period="month", as_of="2024-02-29",
               settings={"profile_fields": ["name", "email"]})  # fmt: skip
    # January: c1 name + email 2, c2 name 1 -> 3 of 4; February: + c3 email 1 -> 4 of 6
    assert series(out, "customer_data_completeness") == {
        "2024-01": 0.75,
        "2024-02": pytest.approx(4 / 6),
    }


def test_a_profile_field_the_export_lacks_is_empty_for_every_customer() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2024-01-05", name="Ann", email="a@x.cn"),
            dict(customer_id="c2", created_at="2024-01-06", name="Bo", email=None),
        ],
    )
    out = kpis({"customers": customers}, period="month", as_of="2024-01-31")
    # no phone or address columns: 3 filled of 2 x 4 = 8 slots
    completeness = row(out, "customer_data_completeness", "2024-01")
    assert (completeness["numerator"], completeness["denominator"]) == (3.0, 8.0)


# --- CRM adoption -------------------------------------------------------------------------------


def test_crm_adoption_rate_among_reps_owning_an_open_deal_or_a_live_customer() -> None:
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-05", status="open", rep="a"),
            # won in January: b owns no open deal at January's end
            dict(deal_id="d2", created_at="2024-01-03", status="won", closed_at="2024-01-20",
                 rep="b"),
            dict(deal_id="d3", created_at="2023-12-01", status="open", rep="c"),
            # won after as-of: still open at February's end (as-of), but created in February
            dict(deal_id="d4", created_at="2024-02-01", status="won", closed_at="2024-02-25",
                 rep="f"),
        ],
    )  # fmt: skip
    customers = frame(
        "customers",
        [
            # b's customer is live at January's end and churned before as-of
            dict(customer_id="k1", created_at="2024-01-10", churned_at="2024-02-05", rep="b"),
            dict(customer_id="k2", created_at="2024-02-01", churned_at=None, rep="d"),
        ],
    )
    activities = frame(
        "activities",
        [
            dict(activity_id="a1", occurred_at="2024-01-10", type="call", rep="a"),
            dict(activity_id="a2", occurred_at="2024-01-12", type="email", rep="b"),
            dict(activity_id="a3", occurred_at="2024-01-15", type="call", rep="e"),  # owns none
            dict(activity_id="a4", occurred_at="2024-02-10", type="visit", rep="c"),
            dict(activity_id="a5", occurred_at="2024-02-14", type="call", rep="f"),
            dict(activity_id="a6", occurred_at="2024-02-20", type="call", rep="a"),  # after
        ],
    )
    tables = {"deals": deals, "customers": customers, "activities": activities}
    out = kpis(tables, period="month", by=("rep",), as_of="2024-02-15")
    # December: owners c (d3); nobody active -> 0 / 1
    assert value(out, "crm_adoption_rate", "2023-12") == 0.0
    # January's end: owners a (d1), b (k1), c (d3); active a, b, e -> a, b = 2 / 3
    january = row(out, "crm_adoption_rate", "2024-01")
    assert (january["numerator"], january["denominator"]) == (2.0, 3.0)
    # as-of (15 February): owners a (d1), c (d3), d (k2), f (d4 closes after as-of); b's
    # customer churned -> active c, f = 2 / 4 (a's activity is after as-of)
    february = row(out, "crm_adoption_rate", "2024-02")
    assert (february["value"], february["numerator"], february["denominator"]) == (
        0.5,
        2.0,
        4.0,
    )
    assert value(out, "crm_adoption_rate", "2024-01", rep="a") == 1.0
    assert value(out, "crm_adoption_rate", "2024-02", rep="a") == 0.0
    assert value(out, "crm_adoption_rate", "2024-02", rep="b") is None  # owns nothing


def test_crm_adoption_with_open_deals_only_and_skipped_without_activity_reps() -> None:
    # every deal open: the export has no closed_at column at all
    deals = frame(
        "deals",
        [
            dict(deal_id="d1", created_at="2024-01-05", status="open", rep="a"),
            dict(deal_id="d2", created_at="2024-01-06", status="open", rep="b"),
        ],
    )
    activities = frame(
        "activities", [dict(activity_id="x", occurred_at="2024-01-10", type="call", rep="a")]
    )
    out = kpis({"deals": deals, "activities": activities}, period="month", as_of="2024-01-31")
    assert value(out, "crm_adoption_rate", "2024-01") == 0.5  # a of a, b
    anonymous = frame("activities", [dict(activity_id="x", occurred_at="2024-01-10", type="call")])
    result = run({"deals": deals, "activities": anonymous}, period="month", as_of="2024-01-31")
    assert "crm_adoption_rate" in result.skipped  # not 0 %: who was active is unknown


# --- incidents ----------------------------------------------------------------------------------

INCIDENTS = [
    dict(incident_id="i1", occurred_at="2024-01-05 10:00", kind="document_lost", rep="a",
         team="Sales", description="signed contract missing from the file"),
    # no team of its own: the table's team column wins as a whole, so (none), not b's team
    dict(incident_id="i2", occurred_at="2024-01-20 11:00", kind="document_lost", rep="b",
         team=None),
    dict(incident_id="i3", occurred_at="2024-01-22 09:00", kind="process_failure", rep="c",
         team="Service"),
    dict(incident_id="i4", occurred_at="2024-01-25 09:00", kind="other", rep="a",
         team="Sales"),
    dict(incident_id="i5", occurred_at="2024-02-03 16:00", kind="process_failure", rep=None,
         team="Sales"),
    # after as-of: not counted
    dict(incident_id="i6", occurred_at="2024-03-01 09:00", kind="document_lost", rep="a",
         team="Sales"),
]  # fmt: skip


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_documents_lost_and_process_failures_count_incidents_by_kind(engine: str) -> None:
    reps = frame("reps", [dict(rep="a", team="Sales"), dict(rep="b", team="Sales"),
                          dict(rep="c", team="Service")])  # fmt: skip
    tables = {"incidents": frame("incidents", INCIDENTS), "reps": reps}
    out = kpis(tables, period="month", by=("team",), as_of="2024-02-29", engine=engine)
    # January: i1, i2 lost documents; i3 a process failure (i4 is another kind)
    assert series(out, "documents_lost") == {"2024-01": 2, "2024-02": 0}
    assert series(out, "process_failures") == {"2024-01": 1, "2024-02": 1}
    assert value(out, "documents_lost", "2024-01", team="Sales") == 1
    assert value(out, "documents_lost", "2024-01", team="(none)") == 1
    assert value(out, "process_failures", "2024-02", team="Sales") == 1
    assert REGISTRY["documents_lost"].higher_is_better is False
    assert REGISTRY["process_failures"].higher_is_better is False


def test_incident_metrics_are_skipped_without_incidents() -> None:
    result = run({"customers": frame("customers", CUSTOMERS)}, period="month",
                 as_of="2024-02-29")  # fmt: skip
    assert result.skipped["documents_lost"] == "table incidents not given"
    assert result.skipped["process_failures"] == "table incidents not given"


def test_every_quality_metric_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    outputs = [m.name for m in METRICS if REGISTRY[m.name].output]
    assert outputs, "no quality metrics"
    untested = [name for name in outputs if f'"{name}"' not in source]
    assert not untested, f"quality metrics without a test: {untested}"


def test_a_mapped_profile_column_counts_when_configured() -> None:
    customers = frame(
        "customers",
        [
            dict(customer_id="c1", created_at="2024-01-02", name="Ann"),
            dict(customer_id="c2", created_at="2024-01-03", name="Bo"),
        ],
    ).with_columns(pl.Series("profile_wechat", ["ann_wx", None]))
    out = kpis({"customers": customers}, period="month", as_of="2024-01-31",
               settings={"profile_fields": ["name", "profile_wechat"]})  # fmt: skip
    # names 2 + wechat 1 = 3 of 2 x 2 slots
    assert value(out, "customer_data_completeness", "2024-01") == 0.75

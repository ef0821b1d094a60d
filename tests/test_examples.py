"""The example configs load the real exports in ../shared/datasets with every row accounted for.

Expected figures are computed here independently, with the csv module and plain Python.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from crmkpi.configure import resolve_config
from crmkpi.load import LoadResult, load_all
from tests.conftest import REPO


def _load(example: str) -> LoadResult:
    config, folder = resolve_config(None, REPO / "examples" / example / "crmkpi.toml")
    result = load_all(config, folder)
    assert result.failures == []
    for report in result.reports:
        assert report.reconciles(), report
    return result


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_maven_crm(datasets: Path) -> None:
    result = _load("maven_crm")
    raw = _rows(datasets / "maven_crm" / "sales_pipeline.csv")
    deals = result.tables["deals"]
    assert deals.report.rows_read == len(raw) == 8800
    assert deals.report.rows_skipped == sum(1 for r in raw if not r["engage_date"]) == 500
    won = [r for r in raw if r["deal_stage"] == "Won"]
    frame = deals.frame
    assert frame.filter(pl.col("status") == "won").height == len(won)
    assert frame.filter(pl.col("status") == "won")["amount"].sum() == pytest.approx(
        sum(float(r["close_value"]) for r in won)
    )
    assert frame["customer_id"].null_count() == sum(
        1 for r in raw if r["engage_date"] and not r["account"]
    )
    assert result.tables["reps"].frame.height == 35
    assert set(result.tables["reps"].frame["team"]) == {"Central", "East", "West"}


def test_pwc_callcenter_feeds_calls_and_surveys(datasets: Path) -> None:
    result = _load("pwc_callcenter")
    raw = _rows(datasets / "pwc_callcenter" / "call_center_pwc.csv")
    calls = result.tables["calls"].frame
    assert calls.height == len(raw) == 5000
    unanswered = sum(1 for r in raw if r["Answered (Y/N)"] == "N")
    assert calls.filter(pl.col("outcome") == "abandoned").height == unanswered == 946
    # unanswered calls keep a null wait, never a 0-second answer
    assert calls.filter(pl.col("outcome") == "abandoned")["wait_seconds"].null_count() == 946
    answered_talk = [r["AvgTalkDuration"] for r in raw if r["AvgTalkDuration"]]
    seconds = [
        int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in (t.split(":") for t in answered_talk)
    ]
    assert calls["talk_seconds"].sum() == pytest.approx(sum(seconds))
    first = calls.filter(pl.col("call_id") == "ID0001").row(0, named=True)
    assert first["offered_at"] == dt.datetime(2021, 1, 1, 9, 12, 58)
    surveys = result.tables["surveys"]
    rated = [r for r in raw if r["Satisfaction rating"]]
    assert surveys.report.rows_used == len(rated)
    assert surveys.report.rows_skipped == len(raw) - len(rated)
    assert surveys.frame["score"].mean() == pytest.approx(
        sum(float(r["Satisfaction rating"]) for r in rated) / len(rated)
    )


def test_cdnow_space_aligned_log(datasets: Path) -> None:
    result = _load("cdnow")
    orders = result.tables["orders"].frame
    lines = (datasets / "cdnow" / "CDNOW_master.txt").read_text().split("\n")[1:]
    fields = [line.split() for line in lines if line.strip()]
    assert orders.height == len(fields) == 69659
    assert orders["amount"].sum() == pytest.approx(sum(float(f[3]) for f in fields))
    assert orders["quantity"].sum() == sum(int(f[2]) for f in fields)
    assert orders["customer_id"].n_unique() == len({f[0] for f in fields})
    # ids keep their leading zeros, exactly as exported
    assert orders["customer_id"][0] == "00001"
    assert orders["ordered_at"].min() == dt.datetime(1997, 1, 1)


def test_telco_churn_snapshot(datasets: Path) -> None:
    result = _load("telco_churn")
    raw = _rows(datasets / "telco_churn" / "Telco-Customer-Churn.csv")
    customers = result.tables["customers"].frame
    assert customers.height == len(raw)
    assert customers["churned"].sum() == sum(1 for r in raw if r["Churn"] == "Yes")
    assert customers.group_by("segment").len().sort("segment").rows() == sorted(
        {c: sum(1 for r in raw if r["Contract"] == c) for c in {r["Contract"] for r in raw}}.items()
    )


def test_support_tickets_hours_derives_timestamps(datasets: Path) -> None:
    result = _load("support_tickets_hours")
    raw = _rows(datasets / "support_tickets_hours" / "customer_support_tickets_teresgeo.csv")
    tickets = result.tables["tickets"].frame
    assert tickets.height == len(raw)
    row = raw[0]
    created = dt.datetime.fromisoformat(row["Created_Date"])
    got = tickets.filter(pl.col("ticket_id") == row["Ticket_ID"]).row(0, named=True)
    expected = created + dt.timedelta(hours=float(row["Resolution_Time_Hours"]))
    assert abs(got["resolved_at"] - expected) < dt.timedelta(seconds=1)
    surveys = result.tables["surveys"].frame
    assert surveys.height == sum(1 for r in raw if r["CSAT_Score"])


def test_nps_survey_dayfirst_dates(datasets: Path) -> None:
    result = _load("nps_survey")
    raw = _rows(datasets / "nps_survey" / "NPS_timeseries_data.csv")
    surveys = result.tables["surveys"].frame
    assert surveys.height == len(raw)
    first = surveys.filter(pl.col("response_id") == "1000").row(0, named=True)
    assert first["responded_at"] == dt.datetime(2021, 9, 1)  # 01/09/2021 is 1 September
    promoters = sum(1 for r in raw if int(r["NPS"]) >= 9)
    assert surveys.filter(pl.col("score") >= 9).height == promoters

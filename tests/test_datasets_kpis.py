"""End-to-end KPI figures on the real public exports in ../shared/datasets.

Every expected figure is computed here independently from the raw file, with the csv module and
plain Python or with SQL (duckdb reading the raw CSV), following KPI_CATALOGUE.md; crmkpi's own
output is never copied back as an expectation. The tests skip where ../shared is absent.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from crmkpi.api import options_for
from crmkpi.calendar import Calendar
from crmkpi.cli import app
from crmkpi.configure import resolve_config
from crmkpi.engine import compute
from crmkpi.load import LoadResult, load_all
from crmkpi.metrics.settings import resolve_settings
from crmkpi.profiles import cohorts, rfm
from tests.conftest import REPO

PWC_AS_OF = dt.date(2021, 3, 31)
TICKETS_AS_OF = dt.date(2024, 12, 31)
NPS_AS_OF = dt.date(2021, 12, 31)
CDNOW_AS_OF = dt.date(1998, 6, 30)
TELCO_AS_OF = dt.date(2024, 1, 1)


# --- helpers: crmkpi's side -----------------------------------------------------------------


@functools.cache
def _load(example: str) -> LoadResult:
    config, folder = resolve_config(None, REPO / "examples" / example / "crmkpi.toml")
    result = load_all(config, folder)
    assert result.failures == []
    return result


@functools.cache
def _kpis(example: str, period: str, by: tuple[str, ...], as_of: dt.date) -> pl.DataFrame:
    config, _ = resolve_config(None, REPO / "examples" / example / "crmkpi.toml")
    tables = {name: table.frame for name, table in _load(example).tables.items()}
    return compute(tables, options_for(config, period, by, as_of)).kpis


def _got(
    kpis: pl.DataFrame, metric: str, dims: Sequence[str]
) -> dict[tuple[Any, ...], float | None]:
    """{(period, *dimension values): value} of one metric at the grain of exactly `dims`."""
    grain = "+".join(dims) if dims else "total"
    rows = kpis.filter((pl.col("metric") == metric) & (pl.col("grain") == grain))
    assert rows.height > 0, (metric, grain)
    got = {
        (row["period"], *(row[d] for d in dims)): row["value"] for row in rows.iter_rows(named=True)
    }
    assert len(got) == rows.height, f"duplicate cells for {metric} at {grain}"
    return got


def _check(
    kpis: pl.DataFrame,
    metric: str,
    dims: Sequence[str],
    expected: Mapping[tuple[Any, ...], float],
    empty: float | None = None,
) -> None:
    """Every expected cell is written with the expected value; any other cell of the grid (a
    period x dimension combination without activity) carries `empty` (0 for counts, null for
    ratios and means)."""
    got = _got(kpis, metric, dims)
    missing = set(expected) - set(got)
    assert not missing, f"{metric}: cells not written: {sorted(missing)[:5]}"
    for key, value in got.items():
        want = expected.get(key, empty)
        if want is None:
            assert value is None, (metric, key, value)
        else:
            assert value == pytest.approx(want, rel=1e-9, abs=1e-9), (metric, key)


# --- helpers: the independent side ----------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _month(day: dt.date) -> str:
    return f"{day.year}-{day.month:02d}"


def _quarter(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _hms(text: str) -> int:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds


Key = tuple[Hashable, ...]


def _by_grain(
    rows: Iterable[dict[str, Any]],
    key: Callable[[dict[str, Any]], tuple[Hashable, ...] | None],
    dims: Sequence[str],
    value: Callable[[list[dict[str, Any]]], float | None],
) -> dict[Key, float]:
    """Group rows by (period, *row[d] for d in dims), key(row) giving (period,) or None to leave
    the row out (not counted by as-of); reduce each group, dropping groups that reduce to None."""
    groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        period = key(row)
        if period is None:
            continue
        groups[(*period, *(row[d] for d in dims))].append(row)
    reduced = {k: value(group) for k, group in groups.items()}
    return {k: v for k, v in reduced.items() if v is not None}


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


# --- pwc_callcenter: agent x month ----------------------------------------------------------


def _pwc_calls(datasets: Path) -> list[dict[str, Any]]:
    raw = _rows(datasets / "pwc_callcenter" / "call_center_pwc.csv")
    assert len(raw) == 5000
    calls = []
    for r in raw:
        calls.append(
            {
                "month": _month(dt.date.fromisoformat(r["Date"])),
                "rep": r["Agent"],
                "answered": r["Answered (Y/N)"] == "Y",
                "resolved": r["Resolved"] == "Y",
                "speed": float(r["Speed of answer in seconds"])
                if r["Speed of answer in seconds"]
                else None,
                "talk": _hms(r["AvgTalkDuration"]) if r["AvgTalkDuration"] else None,
                "rating": float(r["Satisfaction rating"]) if r["Satisfaction rating"] else None,
            }
        )
    return calls


def _pwc_expected(calls: list[dict[str, Any]], dims: Sequence[str]) -> dict[str, dict[Key, float]]:
    def month(row: dict[str, Any]) -> tuple[str]:
        return (row["month"],)

    def answered(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [c for c in group if c["answered"]]

    def rated(group: list[dict[str, Any]]) -> list[float]:
        return [c["rating"] for c in group if c["rating"] is not None]

    reducers: dict[str, Callable[[list[dict[str, Any]]], float | None]] = {
        "calls_offered": len,
        "calls_answered": lambda g: len(answered(g)),
        # no call in this file is blocked: the denominator is every call offered
        "answer_rate": lambda g: _share(len(answered(g)), len(g)),
        # answered calls only; the unanswered calls' blank speed is not a 0-second answer
        "average_speed_of_answer": lambda g: _mean(
            [c["speed"] for c in answered(g) if c["speed"] is not None]
        ),
        "average_talk_time": lambda g: _mean(
            [c["talk"] for c in answered(g) if c["talk"] is not None]
        ),
        "call_resolution_rate": lambda g: _share(
            sum(1 for c in answered(g) if c["resolved"]), len(answered(g))
        ),
        "csat": lambda g: _share(sum(1 for s in rated(g) if s >= 4), len(rated(g))),
        "avg_satisfaction_score": lambda g: _mean(rated(g)),
    }
    return {name: _by_grain(calls, month, dims, fn) for name, fn in reducers.items()}


PWC_METRICS = (
    "calls_offered",
    "calls_answered",
    "answer_rate",
    "average_speed_of_answer",
    "average_talk_time",
    "call_resolution_rate",
    "csat",
    "avg_satisfaction_score",
)


def test_pwc_callcenter_by_agent_and_month(datasets: Path) -> None:
    calls = _pwc_calls(datasets)
    kpis = _kpis("pwc_callcenter", "month", ("rep",), PWC_AS_OF)
    by_agent = _pwc_expected(calls, ("rep",))
    total = _pwc_expected(calls, ())
    assert sorted(total["calls_offered"]) == [("2021-01",), ("2021-02",), ("2021-03",)]
    assert len(by_agent["calls_offered"]) == 8 * 3  # 8 agents, every one active every month
    for metric in PWC_METRICS:
        empty = 0.0 if metric.startswith("calls_") else None
        _check(kpis, metric, ("rep",), by_agent[metric], empty)
        _check(kpis, metric, (), total[metric], empty)

    # a few cells spelled out, so a reader sees the figures (all derived above from the file)
    got = {m: _got(kpis, m, ("rep",)) for m in PWC_METRICS}
    diane_jan = [c for c in calls if c["rep"] == "Diane" and c["month"] == "2021-01"]
    answered = [c for c in diane_jan if c["answered"]]
    assert got["calls_offered"][("2021-01", "Diane")] == len(diane_jan)
    assert got["average_speed_of_answer"][("2021-01", "Diane")] == pytest.approx(
        sum(c["speed"] for c in answered) / len(answered)
    )
    # the ratio is recomputed from rows, never an average of per-agent ratios
    total_rate = _got(kpis, "answer_rate", ())[("2021-02",)]
    per_agent = [v for (p, _), v in got["answer_rate"].items() if p == "2021-02"]
    feb = [c for c in calls if c["month"] == "2021-02"]
    assert total_rate == pytest.approx(sum(c["answered"] for c in feb) / len(feb))
    assert total_rate != pytest.approx(fmean(v for v in per_agent if v is not None), abs=1e-12)


def test_pwc_nulls_as_zero_copy_understates_asa(datasets: Path) -> None:
    """The third-party copy writes the unanswered calls' blank speed as 0: averaging that column
    gives a lower, wrong ASA. crmkpi on the clean file averages answered calls only."""
    folder = datasets / "pwc_callcenter"
    sql = """
        WITH clean AS (
            SELECT "Call Id" AS id, strftime("Date", '%Y-%m') AS month,
                   "Answered (Y/N)" AS answered, "Speed of answer in seconds" AS speed
            FROM read_csv(?, header = true)
        ), variant AS (
            SELECT "Call Id" AS id, "Speed of answer in seconds" AS speed
            FROM read_csv(?, header = true)
        )
        SELECT clean.month,
               avg(clean.speed) FILTER (WHERE clean.answered = 'Y') AS asa_clean,
               avg(variant.speed) AS asa_zeros,
               count(*) FILTER (WHERE clean.speed IS NULL AND variant.speed = 0) AS blanks_as_zero,
               count(*) FILTER (WHERE clean.speed IS NULL) AS blanks
        FROM clean JOIN variant USING (id)
        GROUP BY clean.month ORDER BY clean.month
    """
    rows = duckdb.execute(
        sql,
        [
            str(folder / "call_center_pwc.csv"),
            str(folder / "Call-Center-Dataset_ankit7050_variant_nulls_as_zero.csv"),
        ],
    ).fetchall()
    assert [r[0] for r in rows] == ["2021-01", "2021-02", "2021-03"]
    assert sum(r[4] for r in rows) == 946
    kpis = _kpis("pwc_callcenter", "month", ("rep",), PWC_AS_OF)
    asa = _got(kpis, "average_speed_of_answer", ())
    for month, asa_clean, asa_zeros, blanks_as_zero, blanks in rows:
        assert blanks_as_zero == blanks > 0  # every blank of the clean file is a 0 in the copy
        got = asa[(month,)]
        assert got is not None and got == pytest.approx(asa_clean)
        assert asa_zeros < got * 0.9  # the trap: the zeros drag ASA down by more than 10 %


# --- support_tickets_hours: channel x agent x quarter ---------------------------------------


def test_support_tickets_hours_by_channel_and_agent(datasets: Path) -> None:
    raw = _rows(datasets / "support_tickets_hours" / "customer_support_tickets_teresgeo.csv")
    assert len(raw) == 1000
    end = dt.datetime.combine(TICKETS_AS_OF + dt.timedelta(days=1), dt.time())
    tickets: list[dict[str, Any]] = []
    for r in raw:
        created = dt.datetime.fromisoformat(r["Created_Date"])
        first = float(r["First_Response_Time_Hours"]) if r["First_Response_Time_Hours"] else None
        resolution = float(r["Resolution_Time_Hours"]) if r["Resolution_Time_Hours"] else None
        resolved_at = created + dt.timedelta(hours=resolution) if resolution is not None else None
        responded_at = created + dt.timedelta(hours=first) if first is not None else None
        tickets.append(
            {
                "channel": r["Channel"],
                "rep": r["Assigned_Agent"],
                "created": created,
                "first_hours": first if responded_at is not None and responded_at < end else None,
                "resolution_hours": resolution,
                "resolved_at": resolved_at,
                "csat": float(r["CSAT_Score"]) if r["CSAT_Score"] else None,
            }
        )
    # as-of cuts something: late-December tickets resolve in 2025, after as-of, and one is
    # even first answered in 2025 (created in 2024, so counted, but not in the response mean)
    late = [t for t in tickets if t["resolved_at"] is not None and t["resolved_at"] >= end]
    assert late
    assert any(t["first_hours"] is None for t in tickets)

    def by_created(t: dict[str, Any]) -> tuple[str] | None:
        return (_quarter(t["created"].date()),) if t["created"] < end else None

    def by_resolved(t: dict[str, Any]) -> tuple[str] | None:
        at = t["resolved_at"]
        return (_quarter(at.date()),) if at is not None and at < end else None

    kpis = _kpis("support_tickets_hours", "quarter", ("channel", "rep"), TICKETS_AS_OF)
    for dims in [(), ("channel",), ("rep",), ("channel", "rep")]:
        counts = _by_grain(tickets, by_created, dims, len)
        first_response = _by_grain(
            tickets,
            by_created,
            dims,
            lambda g: _mean([t["first_hours"] for t in g if t["first_hours"] is not None]),
        )
        resolution_mean = _by_grain(
            tickets,
            by_resolved,
            dims,
            lambda g: _mean([t["resolution_hours"] for t in g]),
        )
        # CSAT responses are dated by the ticket's Created_Date (the survey's responded_at)
        csat = _by_grain(
            tickets,
            by_created,
            dims,
            lambda g: _share(
                sum(1 for t in g if t["csat"] is not None and t["csat"] >= 4),
                sum(1 for t in g if t["csat"] is not None),
            ),
        )
        _check(kpis, "tickets_created", dims, counts, empty=0.0)
        _check(kpis, "avg_first_response_hours", dims, first_response)
        _check(kpis, "avg_resolution_hours", dims, resolution_mean)
        _check(kpis, "csat", dims, csat)
    # the anchors differ: by created_at the year has all 1000 tickets; by resolved_at the
    # resolution mean is over the tickets resolved by as-of only
    assert sum(v or 0 for v in _got(kpis, "tickets_created", ()).values()) == 1000
    resolution_rows = kpis.filter(
        (pl.col("metric") == "avg_resolution_hours") & (pl.col("grain") == "total")
    )
    assert resolution_rows["denominator"].sum() == 1000 - len(late)


# --- nps_survey: market x quarter -----------------------------------------------------------


def test_nps_survey_by_market_and_quarter(datasets: Path) -> None:
    raw = _rows(datasets / "nps_survey" / "NPS_timeseries_data.csv")
    answers = []
    for r in raw:
        day = dt.datetime.strptime(r["Survey date"], "%d/%m/%Y").date()  # day first
        # the export's own Month and Quarter columns agree with the day-first reading
        assert (day.month, (day.month - 1) // 3 + 1) == (int(r["Month"]), int(r["Quarter"]))
        answers.append({"quarter": _quarter(day), "region": r["Market"], "score": int(r["NPS"])})

    def nps(group: list[dict[str, Any]]) -> float:
        promoters = sum(1 for a in group if a["score"] >= 9)
        detractors = sum(1 for a in group if a["score"] <= 6)
        return (promoters - detractors) / len(group) * 100

    kpis = _kpis("nps_survey", "quarter", ("region",), NPS_AS_OF)
    by_market = _by_grain(answers, lambda a: (a["quarter"],), ("region",), nps)
    total = _by_grain(answers, lambda a: (a["quarter"],), (), nps)
    assert len(by_market) == 3 * 4
    _check(kpis, "nps", ("region",), by_market)
    _check(kpis, "nps", (), total)


# --- cdnow: rfm and cohorts -----------------------------------------------------------------


def _cdnow_days(datasets: Path) -> dict[str, dict[dt.date, float]]:
    """{customer: {purchase day: total spend that day}}: lines of one day are one purchase."""
    lines = (datasets / "cdnow" / "CDNOW_master.txt").read_text().splitlines()
    assert lines[0].split() == ["customer_id", "date", "number_of_cds", "dollar_value"]
    days: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for line in lines[1:]:
        if not line.strip():
            continue
        customer, date, _, value = line.split()
        day = dt.datetime.strptime(date, "%Y%m%d").date()
        if day <= CDNOW_AS_OF:
            days[customer][day] += float(value)
    return days


def test_cdnow_rfm_every_customer(datasets: Path) -> None:
    days = _cdnow_days(datasets)
    expected = {}
    for customer, spend in days.items():
        ordered = sorted(spend)
        first, last = ordered[0], ordered[-1]
        repeat = [spend[d] for d in ordered[1:]]
        expected[customer] = (
            len(ordered) - 1,  # frequency: repeat purchase days
            (last - first).days,  # recency
            (CDNOW_AS_OF - first).days,  # T
            fmean(repeat) if repeat else 0.0,  # monetary: mean of the repeat days
        )
    orders = _load("cdnow").tables["orders"].frame
    table = rfm(orders, None, CDNOW_AS_OF, resolve_settings({}))
    assert table.height == len(expected) == 23570
    got = {
        row[0]: row[1:]
        for row in table.select(
            "customer_id", "frequency", "recency_days", "tenure_days", "monetary"
        ).iter_rows()
    }
    assert got.keys() == expected.keys()
    wrong = [
        customer
        for customer, (frequency, recency, tenure, monetary) in expected.items()
        if got[customer][:3] != (frequency, recency, tenure)
        or got[customer][3] != pytest.approx(monetary, rel=1e-9, abs=1e-9)
    ]
    assert wrong == [], f"{len(wrong)} customers differ, e.g. {wrong[:3]}"
    # the one-day grouping matters: some customers bought several times on their first day
    assert any(len(spend) < n for spend, n in _line_counts(datasets, days))


def _line_counts(
    datasets: Path, days: Mapping[str, Mapping[dt.date, float]]
) -> list[tuple[Mapping[dt.date, float], int]]:
    counts: dict[str, int] = defaultdict(int)
    for line in (datasets / "cdnow" / "CDNOW_master.txt").read_text().splitlines()[1:]:
        if line.strip():
            counts[line.split()[0]] += 1
    return [(days[c], n) for c, n in counts.items()]


@pytest.mark.parametrize("grain", ["quarter", "month"])
def test_cdnow_cohorts_triangle(datasets: Path, grain: str) -> None:
    label = _quarter if grain == "quarter" else _month

    def index(day: dt.date) -> int:
        return (
            day.year * 12 + day.month - 1
            if grain == "month"
            else day.year * 4 + (day.month - 1) // 3
        )

    days = _cdnow_days(datasets)
    cohort_of = {c: min(spend) for c, spend in days.items()}
    size: dict[int, int] = defaultdict(int)
    for first in cohort_of.values():
        size[index(first)] += 1
    active: dict[tuple[int, int], set[str]] = defaultdict(set)
    for customer, spend in days.items():
        for day in spend:
            active[(index(cohort_of[customer]), index(day))].add(customer)
    last = index(CDNOW_AS_OF)
    names = {index(d): label(d) for spend in days.values() for d in spend}
    expected = {
        (names[c], p - c): (names[p], size[c], len(active[(c, p)]), len(active[(c, p)]) / size[c])
        for c in size
        for p in range(c, last + 1)
    }
    orders = _load("cdnow").tables["orders"].frame
    table = cohorts(orders, CDNOW_AS_OF, Calendar(grain))
    got = {
        (row["cohort"], row["periods_since_acquisition"]): (
            row["period"],
            row["cohort_customers"],
            row["active_customers"],
            row["retention"],
        )
        for row in table.iter_rows(named=True)
    }
    assert got.keys() == expected.keys()
    for key, (period, cohort_size, buyers, retention) in expected.items():
        assert got[key][:3] == (period, cohort_size, buyers), key
        assert got[key][3] == pytest.approx(retention), key
        if key[1] == 0:
            assert retention == 1.0  # everyone buys in the period of their first purchase


# --- telco_churn: snapshot churn by contract ------------------------------------------------


def test_telco_churn_rate_by_contract(datasets: Path) -> None:
    raw = _rows(datasets / "telco_churn" / "Telco-Customer-Churn.csv")
    customers: dict[str, list[bool]] = defaultdict(list)
    for r in raw:
        customers[r["Contract"]].append(r["Churn"] == "Yes")
    expected = {("all", c): sum(flags) / len(flags) for c, flags in customers.items()}
    kpis = _kpis("telco_churn", "all", ("segment",), TELCO_AS_OF)
    _check(kpis, "churn_rate", ("segment",), expected)
    _check(kpis, "churn_rate", (), {("all",): sum(r["Churn"] == "Yes" for r in raw) / len(raw)})
    assert set(customers) == {"Month-to-month", "One year", "Two year"}


# --- the CLI on pwc_callcenter --------------------------------------------------------------


def test_cli_compute_pwc_callcenter(datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "compute",
            "--config",
            str(REPO / "examples" / "pwc_callcenter" / "crmkpi.toml"),
            "--period",
            "month",
            "--by",
            "rep",
            "--as-of",
            PWC_AS_OF.isoformat(),
            "--out",
            str(out),
            "--format",
            "csv",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    raw_bytes = (out / "kpis.csv").read_bytes()
    assert raw_bytes.startswith(b"\xef\xbb\xbf")  # the BOM for Excel
    kpis = pl.read_csv(out / "kpis.csv", try_parse_dates=False)
    assert kpis.columns[:5] == ["period", "period_start", "period_end", "partial_period", "grain"]
    assert {"rep", "metric", "value", "numerator", "denominator", "unit"} <= set(kpis.columns)
    # rfm.csv, cohorts.csv and churn_risk.csv are written only when there are orders: none here
    assert (out / "manifest.json").exists()
    kpis = kpis.with_columns(pl.col("value").cast(pl.Float64))
    calls = _pwc_calls(datasets)
    by_agent = _pwc_expected(calls, ("rep",))
    total = _pwc_expected(calls, ())
    for metric in ("calls_offered", "average_speed_of_answer", "csat"):
        _check(kpis, metric, ("rep",), by_agent[metric])
        _check(kpis, metric, (), total[metric])
    asa = kpis.filter(
        (pl.col("metric") == "average_speed_of_answer") & (pl.col("grain") == "total")
    )
    answered = [c for c in calls if c["answered"]]
    assert asa["numerator"].sum() == pytest.approx(sum(c["speed"] for c in answered))
    assert asa["denominator"].sum() == len(answered)

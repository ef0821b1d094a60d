"""How KPIs are shown, shared by the workbook and the HTML report: metric titles, wide tables
(periods down, metrics across), number formats by unit, and the headline KPIs with their
changes. Everything here reads the KPI table the CSV holds; nothing is recomputed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from crmkpi.labels import FAMILY_TITLES
from crmkpi.metrics import REGISTRY

# The KPIs a manager looks at first, one or more per family, in the order the cards show them.
DEFAULT_HEADLINE_METRICS = (
    "win_rate",
    "won_revenue",
    "open_pipeline_value",
    "revenue",
    "average_order_value",
    "active_customers",
    "churn_rate",
    "retention_rate",
    "clv_to_cac",
    "csat",
    "nps",
    "first_contact_resolution_rate",
    "service_level",
    "average_speed_of_answer",
    "abandonment_rate",
    "campaign_roi",
)
EXCEL_FORMATS = {
    "currency": "#,##0.00",
    "ratio": "0.0%",
    "count": "#,##0",
    "days": "0.0",
    "hours": "0.00",
    "minutes": "0.0",
    "seconds": "#,##0.0",
    "score": "0.00",
    "points": "0.0",
    "months": "0.0",
}
# ratios that read as "so many per", not as a share
RATIO_AS_NUMBER = {
    "units_per_transaction",
    "purchase_frequency",
    "avg_contacts_per_ticket",
    "interaction_frequency",
    "clv_to_cac",
}
# decimals shown in the report per unit, and the unit's word after the number
DECIMALS = {
    "currency": 2,
    "ratio": 1,
    "count": 0,
    "days": 1,
    "hours": 2,
    "minutes": 1,
    "seconds": 1,
    "score": 2,
    "points": 1,
    "months": 1,
}
UNIT_WORDS = {
    "en": {"days": " days", "hours": " h", "minutes": " min", "seconds": " s", "months": " mo"},
    "zh": {
        "days": " 天",
        "hours": " 小时",
        "minutes": " 分钟",
        "seconds": " 秒",
        "months": " 个月",
    },
}
# large amounts in a card: thousands/millions in English, 万 and 亿 in Chinese
COMPACT_STEPS = {
    "en": ((1e9, "B"), (1e6, "M"), (1e3, "K")),
    "zh": ((1e8, "亿"), (1e4, "万")),
}
_CATALOGUE_ORDER = {name: i for i, name in enumerate(REGISTRY.metrics)}


def title(metric: str, lang: str) -> str:
    """The metric's title in the language (its name when it is not in the registry)."""
    if metric not in REGISTRY.metrics:
        return metric
    spec = REGISTRY[metric]
    return spec.title_zh if lang == "zh" else spec.title_en


def excel_format(metric: str, unit: str) -> str:
    """The workbook's number format for a metric."""
    if unit == "ratio" and metric in RATIO_AS_NUMBER:
        return "0.00"
    return EXCEL_FORMATS.get(unit, "General")


def _is_share(metric: str, unit: str) -> bool:
    return unit == "ratio" and metric not in RATIO_AS_NUMBER


def format_value(
    value: float | None,
    metric: str,
    unit: str,
    lang: str,
    currency_symbol: str = "",
    compact: bool = False,
) -> str:
    """A value as the report prints it: `12.3%`, `¥1,234.50`, `3.5 天`; compact shortens large
    counts and amounts (`1.23M`, `12.35万`). A missing value is a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if _is_share(metric, unit):
        return f"{value * 100:,.1f}%"
    decimals = 2 if unit == "ratio" else DECIMALS.get(unit, 2)
    suffix = ""
    if compact and unit in ("currency", "count"):
        for step, mark in COMPACT_STEPS[lang]:
            if abs(value) >= step:
                value, suffix, decimals = value / step, mark, 2
                break
    sign = "-" if value < 0 else ""
    number = f"{abs(value):,.{decimals}f}"
    symbol = currency_symbol if unit == "currency" else ""
    return f"{sign}{symbol}{number}{suffix}{UNIT_WORDS[lang].get(unit, '')}"


def format_change(delta: float | None, base: float | None, metric: str, unit: str) -> str:
    """A change as the card shows it: percentage points for shares, the difference for scores
    and points (NPS crosses zero), else relative to the base."""
    if delta is None:
        return "–"
    if _is_share(metric, unit):
        return f"{delta * 100:+.1f} pp"
    if unit in ("score", "points"):
        return f"{delta:+.{DECIMALS[unit]}f}"
    if not base:
        return "–"
    return f"{delta / abs(base) * 100:+.1f}%"


def wide(kpis: pl.DataFrame, keys: Sequence[str]) -> tuple[pl.DataFrame, list[str]]:
    """Periods (and dimension values) down, metrics across in catalogue order (sales first,
    then customers, service, call centre, marketing, data quality), as a manager reads them."""
    metrics = sorted(
        kpis["metric"].unique().to_list(), key=lambda m: (_CATALOGUE_ORDER.get(m, 10**6), m)
    )
    table = kpis.pivot(on="metric", index=list(keys), values="value", aggregate_function="first")
    return table.select(*keys, *[m for m in metrics if m in table.columns]), metrics


def units(kpis: pl.DataFrame) -> dict[str, str]:
    """Each metric's unit, as the KPI table states it."""
    return dict(kpis.select("metric", "unit").unique().iter_rows())


@dataclass(frozen=True)
class Periods:
    """The periods of a run as the report names them."""

    labels: list[str]  # every period, oldest first
    latest: str | None  # the latest complete period (the last one when all are partial)
    partial: str | None  # the partial period after it, if any


def periods(kpis: pl.DataFrame) -> Periods:
    """The run's periods from the total rows."""
    total = (
        kpis.filter(pl.col("grain") == "total")
        .select("period", "period_start", "partial_period")
        .unique()
        .sort("period_start")
    )
    labels = total["period"].to_list()
    complete = total.filter(~pl.col("partial_period"))["period"].to_list()
    partial = total.filter(pl.col("partial_period"))["period"].to_list()
    latest = complete[-1] if complete else (labels[-1] if labels else None)
    after = [p for p in partial if labels.index(p) > labels.index(latest)] if latest else []
    return Periods(labels, latest, after[-1] if after else None)


@dataclass(frozen=True)
class Headline:
    """One headline card: a metric's value in the reported period, its changes and trend."""

    metric: str
    family: str
    unit: str
    value: float | None
    previous_value: float | None
    change: float | None  # against the previous period, as the KPI table holds it
    year_ago_value: float | None  # the period starting one year earlier, from the KPI table
    higher_is_better: bool | None
    trend: list[float | None]  # the metric over the run's periods, oldest first

    @property
    def year_change(self) -> float | None:
        if self.value is None or self.year_ago_value is None:
            return None
        return self.value - self.year_ago_value


def headlines(kpis: pl.DataFrame, wanted: Sequence[str], period: str | None) -> list[Headline]:
    """The wanted headline metrics that the run computed, in the order asked, with the values
    of `period`, the period a year before it and the trend, all read from the total rows; a
    metric without a value in any period (its source absent) gets no card."""
    total = kpis.filter(pl.col("grain") == "total")
    # the period a year before: the row whose start is one year earlier, matched by a join
    year_ago = total.select(
        "metric",
        pl.col("period_start").dt.offset_by("1y").alias("period_start"),
        pl.col("value").alias("year_ago_value"),
    )
    rows = total.join(year_ago, on=["metric", "period_start"], how="left").filter(
        pl.col("period") == period
    )
    by_metric = {r["metric"]: r for r in rows.iter_rows(named=True)}
    trends = wide(total.sort("period_start"), ["period_start"])[0]
    cards = []
    for metric in wanted:
        row = by_metric.get(metric)
        if row is None or metric not in trends.columns or trends[metric].is_null().all():
            continue
        spec = REGISTRY.metrics.get(metric)
        cards.append(
            Headline(
                metric=metric,
                family=spec.family if spec else "quality",
                unit=row["unit"],
                value=row["value"],
                previous_value=row["previous_value"],
                change=row["change"],
                year_ago_value=row["year_ago_value"],
                higher_is_better=spec.higher_is_better if spec else None,
                trend=trends[metric].to_list(),
            )
        )
    return cards


def direction(delta: float | None, higher_is_better: bool | None) -> str:
    """`good`, `bad` or `flat` for a change, by the metric's direction."""
    if delta is None or delta == 0 or higher_is_better is None:
        return "flat"
    return "good" if (delta > 0) == higher_is_better else "bad"


@dataclass(frozen=True)
class Series:
    """One metric's line in a chart."""

    metric: str
    title: str
    unit: str
    values: list[float | None]


@dataclass(frozen=True)
class ChartSpec:
    """A trend chart: the headline metrics of one family over the run's periods, one panel
    each (their units differ). `key` names the PNG copy under charts/."""

    key: str
    title: str
    periods: list[str]
    series: list[Series]


def trend_charts(kpis: pl.DataFrame, headline: Sequence[str], lang: str) -> list[ChartSpec]:
    """One chart per family that has headline metrics with values, in catalogue family order."""
    total = kpis.filter(pl.col("grain") == "total").sort("period_start")
    table, _ = wide(total, ["period"])
    unit_of = units(total)
    charts = []
    for family, family_title in FAMILY_TITLES[lang].items():
        series = [
            Series(m, title(m, lang), unit_of[m], table[m].to_list())
            for m in headline
            if m in table.columns
            and REGISTRY.metrics.get(m) is not None
            and REGISTRY[m].family == family
            and table[m].is_not_null().any()
        ]
        if series:
            charts.append(ChartSpec(family, family_title, table["period"].to_list(), series))
    return charts

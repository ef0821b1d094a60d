"""report.html: the KPI report a manager opens in the morning, one self-contained file (inline
SVG charts, no script, no network) plus PNG copies of the charts under charts/.

Every figure comes from the KPI table the CSV holds and from the rfm, churn_risk and cohorts
tables, through the presentation model the workbook shares; nothing is recomputed here. The
template escapes every value, so a rep named `<script>` is shown as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from crmkpi.charts import cjk_font, render
from crmkpi.labels import DIMENSION_TITLES, LABELS
from crmkpi.metrics import REGISTRY
from crmkpi.presentation import (
    FAMILY_TITLES,
    Headline,
    direction,
    format_change,
    format_value,
    headlines,
    periods,
    title,
    trend_charts,
    units,
)

# breakdown columns, the first present one ranks the rows
BREAKDOWN_METRICS = (
    "won_revenue",
    "revenue",
    "win_rate",
    "quota_attainment",
    "deals_won",
    "avg_deal_size",
    "orders_count",
    "average_order_value",
    "active_customers",
    "churn_rate",
    "csat",
    "first_contact_resolution_rate",
    "calls_answered",
    "average_speed_of_answer",
    "service_level",
)
MAX_BREAKDOWN_COLUMNS = 7
MAX_COHORTS = 12
TOP_AT_RISK = 10
SPARK_WIDTH, SPARK_HEIGHT = 120, 28

# the names crmkpi gives RFM segments and churn-risk rules, in Chinese (configured segment names
# are shown as they are)
CODE_TITLES_ZH = {
    "champions": "重要价值客户",
    "loyal": "忠诚客户",
    "new": "新客户",
    "potential": "潜力客户",
    "cannot lose": "不能流失客户",
    "at risk": "风险客户",
    "hibernating": "沉睡客户",
    "lost": "流失客户",
    "purchases_dropped": "购买减少",
    "overdue": "超期未购",
    "interactions_dropped": "互动减少",
}


def _code_title(code: str, lang: str) -> str:
    """An RFM segment or churn-risk reason (`overdue; purchases_dropped`) in the language."""
    if lang != "zh":
        return code
    return "; ".join(CODE_TITLES_ZH.get(part, part) for part in code.split("; "))


@dataclass(frozen=True)
class Cell:
    text: str
    mark: str = ""  # "best", "worst" or ""


def _sparkline(values: Sequence[float | None]) -> str:
    """The points of a card's trend line in a SPARK_WIDTH x SPARK_HEIGHT box."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = SPARK_WIDTH / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{SPARK_HEIGHT - 2 - (v - low) / span * (SPARK_HEIGHT - 4):.1f}"
        for i, v in enumerate(values)
        if v is not None
    )


def _card(card: Headline, lang: str, symbol: str) -> dict[str, Any]:
    previous = format_change(card.change, card.previous_value, card.metric, card.unit)
    year = format_change(card.year_change, card.year_ago_value, card.metric, card.unit)
    return {
        "metric": card.metric,
        "title": title(card.metric, lang),
        "value": format_value(card.value, card.metric, card.unit, lang, symbol, compact=True),
        "full_value": format_value(card.value, card.metric, card.unit, lang, symbol),
        "raw": "" if card.value is None else repr(card.value),
        "previous": previous,
        "previous_class": direction(card.change, card.higher_is_better)
        if previous != "–"
        else "flat",
        "year": year,
        "year_class": direction(card.year_change, card.higher_is_better) if year != "–" else "flat",
        "spark": _sparkline(card.trend),
    }


def _breakdown(
    kpis: pl.DataFrame, dimension: str, period: str | None, lang: str, symbol: str
) -> dict[str, Any] | None:
    """The dimension's rows in the reported period, ranked, best and worst marked."""
    part = kpis.filter((pl.col("grain") == dimension) & (pl.col("period") == period))
    if part.is_empty():
        return None
    unit_of = units(part)
    present = set(part.filter(pl.col("value").is_not_null())["metric"].to_list())
    metrics = [m for m in BREAKDOWN_METRICS if m in present][:MAX_BREAKDOWN_COLUMNS]
    if not metrics:
        return None
    table = part.filter(pl.col("metric").is_in(metrics)).pivot(
        on="metric", index=dimension, values="value", aggregate_function="first"
    )
    table = table.select(dimension, *metrics).sort(
        [metrics[0], dimension], descending=[True, False], nulls_last=True
    )
    marks: dict[str, tuple[Any, Any]] = {}
    if table.height >= 3:
        for m in metrics:
            better = REGISTRY[m].higher_is_better
            if better is None:
                continue
            high, low = table[m].max(), table[m].min()
            marks[m] = (high, low) if better else (low, high)
    rows = []
    for record in table.iter_rows(named=True):
        cells = []
        for m in metrics:
            best, worst = marks.get(m, (None, None))
            value = record[m]
            mark = ""
            if value is not None and best != worst:
                mark = "best" if value == best else "worst" if value == worst else ""
            cells.append(Cell(format_value(value, m, unit_of[m], lang, symbol), mark))
        rows.append(
            {"name": "–" if record[dimension] is None else record[dimension], "cells": cells}
        )
    return {
        "dimension": DIMENSION_TITLES[lang].get(dimension, dimension),
        "headers": [title(m, lang) for m in metrics],
        "rows": rows,
    }


def _cohort_table(cohorts: pl.DataFrame) -> dict[str, Any] | None:
    """The retention triangle of the latest cohorts, each cell shaded by its retention."""
    if cohorts.is_empty():
        return None
    latest = cohorts["cohort"].unique().sort().tail(MAX_COHORTS).to_list()
    part = cohorts.filter(pl.col("cohort").is_in(latest))
    offsets = part["periods_since_acquisition"].unique().sort().to_list()
    table = part.pivot(
        on="periods_since_acquisition",
        index=["cohort", "cohort_customers"],
        values="retention",
        aggregate_function="first",
    ).sort("cohort")
    rows = []
    for record in table.iter_rows(named=True):
        cells: list[dict[str, Any] | None] = []
        for offset in offsets:
            value = record[str(offset)]
            if value is None:
                cells.append(None)
            else:
                # lighter for low retention, darker blue for high
                lightness = 96 - round(value * 50)
                cells.append({"text": f"{value * 100:.0f}%", "lightness": lightness})
        rows.append(
            {"cohort": record["cohort"], "customers": record["cohort_customers"], "cells": cells}
        )
    return {"offsets": offsets, "rows": rows}


def _profiles(profiles: Mapping[str, pl.DataFrame], lang: str) -> dict[str, Any]:
    """RFM segment sizes, churn-risk counts by reason and the customers at risk (None for a
    run without orders)."""
    found: dict[str, Any] = dict.fromkeys(("rfm", "risk_reasons", "at_risk", "cohorts"))
    rfm_table = profiles.get("rfm")
    if rfm_table is not None and rfm_table.height:
        sizes = (
            rfm_table.group_by("rfm_segment")
            .len()
            .sort(["len", "rfm_segment"], descending=[True, False])
            .rows()
        )
        found["rfm"] = [(_code_title(name, lang), count) for name, count in sizes]
    risk = profiles.get("churn_risk")
    if risk is not None and risk.height:
        reasons = (
            risk.group_by("reason").len().sort(["len", "reason"], descending=[True, False]).rows()
        )
        found["risk_reasons"] = [(_code_title(reason, lang), count) for reason, count in reasons]
        found["at_risk"] = [
            (customer, _code_title(reason, lang), days, gap)
            for customer, reason, days, gap in risk.sort(
                ["days_since_last_purchase", "customer_id"], descending=[True, False]
            )
            .head(TOP_AT_RISK)
            .select("customer_id", "reason", "days_since_last_purchase", "usual_gap_days")
            .rows()
        ]
    cohort_frame = profiles.get("cohorts")
    if cohort_frame is not None:
        found["cohorts"] = _cohort_table(cohort_frame)
    return found


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("crmkpi", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class ReportSettings:
    """What the reader of the report chose: its title (empty: the language's default),
    language, headline KPIs and currency."""

    title: str
    lang: str
    headline: Sequence[str]
    currency_symbol: str


def write_report(
    folder: Path,
    kpis: pl.DataFrame,
    profiles: Mapping[str, pl.DataFrame],
    dimensions: Sequence[str],
    quality: Sequence[Mapping[str, Any]],
    run: Mapping[str, str],
    settings: ReportSettings,
) -> tuple[list[Path], list[str]]:
    """Write report.html and charts/<family>.png into `folder`; returns (paths, warnings)."""
    lang, symbol = settings.lang, settings.currency_symbol
    span = periods(kpis)
    cards = headlines(kpis, settings.headline, span.latest)
    families = [
        {
            "title": family_title,
            "cards": [_card(c, lang, symbol) for c in cards if c.family == family],
        }
        for family, family_title in FAMILY_TITLES[lang].items()
    ]
    specs = trend_charts(kpis, settings.headline, lang)
    charts = [render(spec, lang, symbol) for spec in specs]
    breakdowns = [
        b
        for b in (_breakdown(kpis, d, span.latest, lang, symbol) for d in dimensions)
        if b is not None
    ]
    dictionary = [(m.name, m.title_en, m.title_zh, m.unit, m.formula) for m in REGISTRY.outputs()]
    html = (
        _environment()
        .get_template("report.html.j2")
        .render(
            lang=lang,
            labels=LABELS[lang],
            title=settings.title or LABELS[lang]["default_title"],
            periods=span,
            run=run,
            used=f"{sum(q['rows_used'] for q in quality):,}",
            quarantined=f"{sum(q['rows_quarantined'] for q in quality):,}",
            families=[f for f in families if f["cards"]],
            charts=[
                {"key": c.key, "title": s.title, "svg": c.svg}
                for s, c in zip(specs, charts, strict=True)
            ],
            breakdowns=breakdowns,
            profiles=_profiles(profiles, lang),
            dictionary=dictionary,
            quality=quality,
        )
    )
    report = folder / "report.html"
    report.write_text(html, encoding="utf-8", newline="\n")
    written = [report]
    for chart in charts:
        png = folder / "charts" / f"{chart.key}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(chart.png)
        written.append(png)
    warnings = []
    if cjk_font() is None:
        warnings.append(
            "no CJK font found for the charts of report.html (install fonts-noto-cjk): "
            "Chinese labels in charts/ may show as boxes"
        )
    return written, warnings

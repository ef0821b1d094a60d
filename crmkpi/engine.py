"""Plan and run the metric computations: one grouped pass per source, anchor and grain.

The heavy work (joining facts to the calendar and aggregating them) is written against the
narwhals lazy API, so it runs on Polars (default) or DuckDB unchanged. What follows the
aggregation works on small per-period frames in Polars: ratios are recomputed from their two
parts at every grain, derived and growth metrics come after, and every metric gets the complete
period x dimension grid it is owed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.calendar import Calendar
from crmkpi.choices import DEFAULT_DIMENSIONS, DIMENSIONS
from crmkpi.cutoff import Inferred, as_date, infer_as_of
from crmkpi.engines import Engine, Frame, engine_named
from crmkpi.errors import ConfigError
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.base import Context, Derived, Growth, Metric, Ratio, Simple, Stock
from crmkpi.metrics.reductions import DENOMINATOR, NUMERATOR, VALUE
from crmkpi.metrics.settings import resolve_settings
from crmkpi.passes import KEY, Grain, Plan, Source, grains, resolve_dimensions
from crmkpi.profiles import (
    ClvForecast,
    clv_forecast,
    purchase_days_on,
    rfm_on,
)
from crmkpi.views import (
    VIEW_COLUMNS,
    campaign_results,
    churn_source_of,
    completed_orders,
    customer_base_plan,
    keyed_orders,
    known_customers,
    order_spans,
    placed_orders,
    rep_adoption,
    shift_utilization,
    training_results,
    with_lines,
)

# The views dated only by the periods, and the table dates they are built from.
VIEW_ANCHORS = {"rep_adoption": (("activities", "occurred_at"), ("deals", "created_at"))}
VIEW_TABLES = {
    "completed_orders": "orders",
    "placed_orders": "orders",
    "training_results": "trainings",
}
OUTPUT_COLUMNS = ("period", "period_start", "period_end", "partial_period", "grain")
VALUE_COLUMNS = ("metric", "value", "numerator", "denominator", "unit", "previous_value", "change")


@dataclass(frozen=True)
class ComputeOptions:
    """What to compute: the calendar, the breakdowns, the cut-off and the metrics."""

    calendar: Calendar = field(default_factory=Calendar)
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    as_of: dt.date | None = None
    metrics: tuple[str, ...] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    engine: str = "polars"
    explain: bool = False  # plan only: `ComputeResult.plan` says what would run, nothing runs
    spark_master: str | None = None  # engine spark only


@dataclass
class ComputeResult:
    kpis: pl.DataFrame
    as_of: dt.date
    computed: list[str]
    skipped: dict[str, str]
    grain_skips: dict[str, list[str]]
    clv_forecast: ClvForecast | None = None  # when a metric read it: the fit, built once
    plan: str | None = None  # with ComputeOptions.explain: the passes, and what is skipped
    shared: dict[str, pl.DataFrame] = field(default_factory=dict)  # see Prepared.shared
    purchase_days: nw.LazyFrame[Any] | None = None  # see Prepared.purchase_days
    warnings: list[str] = field(default_factory=list)  # for the manifest (e.g. as-of's inference)
    # {metric: {period: why}}: growth rates null because a partial period is on one side
    growth_nulled: dict[str, dict[str, str]] = field(default_factory=dict)


# --- planning -----------------------------------------------------------------------------------


def _missing(metric: Metric, sources: Mapping[str, Collection[str]]) -> str | None:
    """Why a metric reading tables directly cannot be computed, or None."""
    for table, columns in metric.table_columns.items():
        if table not in sources:
            return f"table {table} not given"
        absent = [c for c in columns if c not in sources[table]]
        if absent:
            return f"{table} lacks column(s) {', '.join(absent)}"
    return None


def plan(
    names: Sequence[str],
    sources: Mapping[str, Collection[str]],
    settings: Mapping[str, Any],
    unavailable: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The computable metrics in dependency order, the skipped ones with the reason, and the
    metrics whose result is another's (a setting's variant, or a fallback). `unavailable`
    names metrics that cannot be computed in this run, with the reason."""
    skipped: dict[str, str] = {}
    aliases: dict[str, str] = {}
    ordered = REGISTRY.order(names)
    for name in ordered:
        metric = REGISTRY[name]
        if metric.variant and settings.get(metric.variant[0]) == metric.variant[1]:
            target = metric.variant[2]
            if target in skipped:
                skipped[name] = skipped[target]
            else:
                aliases[name] = target
            continue
        reason = (unavailable or {}).get(name) or _missing(metric, sources)
        if reason is None:
            blocked = [
                i
                for i in metric.inputs
                if i in skipped and not (isinstance(metric, Derived) and i in metric.optional)
            ]
            if blocked:
                reason = f"needs {blocked[0]} ({skipped[blocked[0]]})"
        if reason is not None and metric.fallback and metric.fallback not in skipped:
            aliases[name] = metric.fallback
        elif reason is not None:
            skipped[name] = reason
    return [n for n in ordered if n not in skipped], skipped, aliases


def _first_date(
    sources: Mapping[str, Frame], anchors: set[tuple[str, str]], as_of: dt.date
) -> dt.date | None:
    """The earliest anchor date up to as-of over the anchors in use: where the periods start."""
    firsts = []
    for source, anchor in sorted(anchors):
        frame = sources[source].lazy()
        date = as_date(frame, anchor)
        first = frame.select(date.filter(date <= as_of).min()).collect().item()
        if first is not None:
            firsts.append(first)
    return min(firsts) if firsts else None


# --- assembly (small frames, Polars) ------------------------------------------------------------


def _metric_frame(
    values: pl.LazyFrame, grid: pl.LazyFrame, metric: Simple, grain: Grain
) -> pl.LazyFrame:
    """One simple metric on its complete grid: value, numerator, denominator."""
    name = metric.name
    if metric.reduction.is_ratio_of_parts:
        parts = values.select(
            *grain.keys,
            pl.col(name + NUMERATOR).cast(pl.Float64).alias("numerator"),
            pl.col(name + DENOMINATOR).cast(pl.Float64).alias("denominator"),
        )
        filled = grid.join(parts, on=grain.keys, how="left").with_columns(
            pl.col("numerator", "denominator").fill_null(0.0)
        )
        return filled.with_columns(_divide(pl.col("numerator"), pl.col("denominator")))
    parts = values.select(*grain.keys, pl.col(name + VALUE).cast(pl.Float64).alias("value"))
    filled = grid.join(parts, on=grain.keys, how="left")
    if metric.reduction.zero_when_empty:
        filled = filled.with_columns(pl.col("value").fill_null(0.0))
    return filled.with_columns(
        pl.lit(None, pl.Float64).alias("numerator"), pl.lit(None, pl.Float64).alias("denominator")
    )


def _as_expr(value: Any) -> nw.Expr:
    """Derived formulas return narwhals expressions (a `when/then` without otherwise is null
    elsewhere), or a number."""
    return value if isinstance(value, nw.Expr) else nw.lit(value)


def _divide(numerator: pl.Expr, denominator: pl.Expr, scale: float = 1.0) -> pl.Expr:
    """A zero or missing denominator gives null, never 0, inf or NaN."""
    return (
        pl.when(denominator.is_not_null() & (denominator != 0))
        .then(numerator / denominator * scale)
        .otherwise(None)
        .alias("value")
    )


def _combine(frames: list[pl.LazyFrame], keys: list[str]) -> pl.LazyFrame:
    """Outer-join input metric frames on the grid keys; columns value_0, value_1, ..."""
    combined = frames[0].select(*keys, pl.col("value").alias("value_0"))
    for i, frame in enumerate(frames[1:], start=1):
        combined = combined.join(
            frame.select(*keys, pl.col("value").alias(f"value_{i}")),
            on=keys,
            how="full",
            coalesce=True,
        )
    return combined


def _stock_frame(
    net: pl.LazyFrame, grid: pl.LazyFrame, metric: Stock, grain: Grain
) -> pl.LazyFrame:
    """Balance at each period's end (or start): cumulative net openings, from period -1 on."""
    dims = grain.keys[1:]
    carried = net.filter(pl.col(KEY) == -1).drop(KEY).rename({"__net": "__carried"})
    per_period = grid.join(net, on=grain.keys, how="left").with_columns(
        pl.col("__net").fill_null(0.0)
    )
    per_period = (
        per_period.join(carried, on=dims, how="left")
        if dims
        else per_period.join(carried.select(pl.col("__carried").sum()), how="cross")
    )
    balance = per_period.sort(KEY).with_columns(
        (pl.col("__net").cum_sum().over(dims) if dims else pl.col("__net").cum_sum())
        .add(pl.col("__carried").fill_null(0.0))
        .alias("__end")
    )
    value = pl.col("__end") if metric.boundary == "end" else pl.col("__end") - pl.col("__net")
    return balance.select(
        *grain.keys,
        value.alias("value"),
        pl.lit(None, pl.Float64).alias("numerator"),
        pl.lit(None, pl.Float64).alias("denominator"),
    )


def _growth_frame(
    base: pl.LazyFrame, metric: Growth, grain: Grain, periods: pl.LazyFrame
) -> pl.LazyFrame:
    """(value - base value) / base value, the base being the previous period or a year before.
    Null when either period is partial (a part of a period against a whole one is no growth:
    see Calendar.partial_comparisons); the difference and the base are still written."""
    dims = grain.keys[1:]
    dated = base.join(periods.select(KEY, "period", "__year_before", "partial_period"), on=KEY)
    values = (pl.col("value").alias("__b"), pl.col("partial_period").alias("__b_partial"))
    if metric.lag == "previous":
        earlier = dated.select(*dims, (pl.col(KEY) + 1).alias(KEY), *values)
        joined = dated.join(earlier, on=grain.keys, how="left")
    else:
        earlier = dated.select(*dims, pl.col("period").alias("__year_before"), *values)
        joined = dated.join(earlier, on=[*dims, "__year_before"], how="left")
    whole = ~(pl.col("partial_period") | pl.col("__b_partial").fill_null(False))
    return joined.select(
        *grain.keys,
        pl.when(whole).then(_divide(pl.col("value") - pl.col("__b"), pl.col("__b"))).alias("value"),
        (pl.col("value") - pl.col("__b")).alias("numerator"),
        pl.col("__b").alias("denominator"),
    )


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """The sources of a run, and what was built on the way that others may reuse."""

    sources: dict[str, Source]  # with their dimensions, as the engine's lazy frames
    frames: dict[str, Frame]  # the tables and views, before their dimensions
    # built once per run, shared with the profiles stage: rfm, customer_base
    shared: dict[str, pl.DataFrame]
    purchase_days: nw.LazyFrame[Any] | None  # profiles.purchase_days, kept on the engine
    churn_source: str | None
    forecast: ClvForecast | None  # the CLV fit, when customer_clv was built


def prepare_sources(
    tables: Mapping[str, pl.DataFrame],
    as_of: dt.date,
    settings: Mapping[str, Any],
    dimensions: Sequence[str],
    engine: Engine,
    needed: Mapping[str, Collection[str]] | None = None,
) -> Prepared:
    """Canonical tables plus the views that `needed` (table and view names the planned metrics
    read, with the columns they read; None: all) asks for, with their dimension columns
    resolved. Views and columns nobody reads are not built: at tens of millions of rows each
    costs a pass over its table."""

    def wanted(name: str, column: str | None = None) -> bool:
        return needed is None or (name in needed and (column is None or column in needed[name]))

    orders, customers_table = tables.get("orders"), tables.get("customers")
    reads_base = wanted("customer_base") or any(wanted(n, "customer_acquired_on") for n in tables)
    reads_first_order = wanted("completed_orders", "customer_first_order_on")
    # The views are plans over the engine's tables; those several others read are persisted
    # where the engine computed them, and collected for the run's own look at them.
    numbered, key = keyed_orders(orders) if orders is not None else (None, None)
    spans = None
    if numbered is not None and (reads_base or reads_first_order):
        spans = engine.persist(order_spans(engine.lazy(numbered), numbered.columns, as_of))
    frames: dict[str, Frame] = {name: frame for name, frame in tables.items() if wanted(name)}
    on_engine: dict[str, nw.LazyFrame[Any]] = {}
    shared: dict[str, pl.DataFrame] = {}
    if reads_base:
        known = None if customers_table is None else engine.lazy(customers_table)
        base_plan, churn_source = customer_base_plan(known, spans, as_of, settings)
        base = pl.DataFrame()
        if base_plan is not None:
            base_plan = engine.persist(base_plan)
            (base,) = engine.collect_all([base_plan])
        shared["customer_base"] = base
        if base_plan is not None and (churn_source is not None or base.height):
            frames["customer_base"] = base
            on_engine["customer_base"] = base_plan
    else:  # dimensions only: the customers that customer_base would keep, without its passes
        given = None if customers_table is None else customers_table.columns
        churn_source = churn_source_of(given, orders is not None)
        base = pl.DataFrame()
        if customers_table is not None:
            base = known_customers(customers_table, as_of)
    customers = dict.fromkeys(frames, base)
    columns: dict[str, dict[str, str]] = {}
    if "acquired_on" in base.columns:
        columns = {
            name: {"customer_acquired_on": "acquired_on"}
            for name in frames
            if wanted(name, "customer_acquired_on") and name != "customer_base"
        }
    # The order views are plans over the orders: a Polars plan for the run's own look at them
    # (schema, first dates), and the same plan over the engine's orders for the passes.
    if numbered is not None and key is not None:
        views = {
            "completed_orders": lambda o: completed_orders(o, numbered.columns, key, as_of),
            "placed_orders": lambda o: placed_orders(o, key, as_of),
        }
        for name, view in views.items():
            if wanted(name):
                frames[name] = view(nw.from_native(numbered.lazy())).to_native()
                on_engine[name] = view(engine.lazy(numbered))
                customers[name] = base
        if spans is not None and reads_first_order and "completed_orders" in frames:
            # the first order comes along in the segment's join (spans cover every buyer)
            first = nw.col("first_order_on").alias("customer_first_order_on")
            (firsts,) = engine.collect_all([spans.select("customer_id", first)])
            customers["completed_orders"] = base.join(
                firsts, on="customer_id", how="full", coalesce=True
            )
            columns["completed_orders"] = {"customer_first_order_on": "customer_first_order_on"}
    forecast, days = None, None
    if orders is not None and (wanted("customer_rfm") or wanted("customer_clv")):
        days = purchase_days_on(engine, orders, as_of)
        rfm_table = rfm_on(engine, days, customers_table, as_of, settings)
        shared["rfm"] = rfm_table
        snapshot = pl.lit(as_of).alias("snapshot_on")
        if wanted("customer_rfm"):
            frames["customer_rfm"] = rfm_table.with_columns(snapshot)
        if wanted("customer_clv"):
            forecast = clv_forecast(rfm_table, settings)
            frames["customer_clv"] = forecast.table.with_columns(snapshot)
    # shift utilisation, training and campaign results are plans: over Polars frames for the
    # run's own look, over the engine's tables for the passes
    if "calls" in tables and "agent_shifts" in tables and wanted("shift_utilization"):
        calls, shifts = tables["calls"], tables["agent_shifts"]
        frames["shift_utilization"], on_engine["shift_utilization"] = _view_plans(
            engine, lambda read: shift_utilization(read(calls), calls.columns, read(shifts))
        )
    deals = tables.get("deals")
    if (
        "trainings" in tables
        and deals is not None
        and {"rep", "closed_at", "amount"} <= set(deals.columns)
        and wanted("training_results")
    ):
        trainings, window_days = with_lines(tables["trainings"]), settings["training_window_days"]
        frames["training_results"], on_engine["training_results"] = _view_plans(
            engine, lambda read: training_results(read(trainings), read(deals), as_of, window_days)
        )
    if "campaigns" in tables and wanted("campaign_results"):
        members, spend = tables.get("campaign_members"), tables.get("spend")
        frames["campaign_results"], on_engine["campaign_results"] = _view_plans(
            engine,
            lambda read: campaign_results(
                read(tables["campaigns"]),
                None if members is None else read(members),
                None if spend is None else read(spend),
                as_of,
            ),
        )
    reps = tables.get("reps")
    sources = {
        name: resolve_dimensions(
            name,
            frame,
            dimensions,
            customers.get(name, base),
            reps,
            engine,
            columns.get(name),
            on_engine.get(name),
        )
        for name, frame in frames.items()
        if wanted(name) or name == "customer_base"
    }
    return Prepared(sources, frames, shared, days, churn_source, forecast)


def _view_plans(
    engine: Engine, build: Callable[[Callable[[Frame], nw.LazyFrame[Any]]], nw.LazyFrame[Any]]
) -> tuple[pl.LazyFrame, nw.LazyFrame[Any]]:
    """A view `build`s over its inputs `read` as Polars lazy frames (the run's own look at
    the view: schema, first dates) and as the engine's tables (its passes)."""
    polars = build(lambda frame: nw.from_native(frame.lazy()))
    return polars.to_native(), build(engine.lazy)


def _anchors(names: Sequence[str]) -> set[tuple[str, str]]:
    anchors = set()
    for name in names:
        metric = REGISTRY[name]
        if isinstance(metric, Simple):
            anchors.add((metric.table, metric.anchor))
        elif isinstance(metric, Stock):
            anchors.add((metric.table, metric.opened))
    return anchors


def _training_results_gap(tables: Mapping[str, pl.DataFrame]) -> str:
    """Why the trainings cannot be compared with the won revenue around them."""
    for table in ("trainings", "deals"):
        if table not in tables:
            return f"table {table} not given"
    absent = [c for c in ("rep", "closed_at", "amount") if c not in tables["deals"].columns]
    return f"deals lack column(s) {', '.join(absent)}"


def _check_period_count(periods: pl.DataFrame, grain: str, max_periods: int) -> None:
    """Refuse a run of more periods than `max_periods` before any aggregation: every period
    costs a row per metric and breakdown, so a far as-of would run for hours."""
    if periods.height > max_periods:
        first, last = periods["period"][0], periods["period"][-1]
        raise ConfigError(
            f"settings.max_periods: {periods.height} {grain} periods from {first} to {last} "
            f"is more than {max_periods}; check --as-of, choose a coarser --period, or raise "
            "max_periods"
        )


def compute(
    tables: Mapping[str, pl.DataFrame], options: ComputeOptions, engine: Engine | None = None
) -> ComputeResult:
    """Compute the requested metrics (default: all) into DESIGN.md's tidy long table.
    `engine`: one the run made already (the Spark loader's, holding its validated tables);
    None: the one `options.engine` names."""
    settings = resolve_settings(options.settings)
    unknown_dims = [d for d in options.dimensions if d not in DIMENSIONS]
    if unknown_dims:
        raise ConfigError(
            f"by: unknown dimension(s) {', '.join(unknown_dims)}; "
            f"choose from {', '.join(DIMENSIONS)}"
        )
    wanted = list(options.metrics) if options.metrics else [m.name for m in REGISTRY.outputs()]
    unknown = [n for n in wanted if n not in REGISTRY.metrics]
    if unknown:
        raise ConfigError(f"metrics: unknown metric(s) {', '.join(unknown)}")
    # The default as-of is the latest date of an event that happened (see cutoff.py) over the
    # anchors of every metric, whatever metrics were asked for: --metrics never moves the periods.
    every = [m.name for m in REGISTRY.metrics.values()]
    table_anchors = {
        (VIEW_TABLES.get(t, t), a)
        for t, a in _anchors(every)
        if VIEW_TABLES.get(t, t) in tables and a in tables[VIEW_TABLES.get(t, t)].columns
    }
    inferred = Inferred(options.as_of, []) if options.as_of else infer_as_of(tables, table_anchors)
    as_of = inferred.as_of
    if as_of is None:
        raise ConfigError(
            "as-of: the inputs hold no dated events (expected dates and plans do not count); "
            "give --as-of"
        )
    reachable = [n for n in wanted if set(REGISTRY[n].requires) <= set(options.dimensions)]
    needed: dict[str, set[str]] = {}
    for name in REGISTRY.order(reachable):
        for table, read in REGISTRY[name].table_columns.items():
            needed.setdefault(table, set()).update(read)
    if "rep_adoption" in needed:  # its reps own deals or customers
        needed.setdefault("customer_base", set())
    if engine is None:
        engine = engine_named(options.engine, options.spark_master)
    prepared = prepare_sources(tables, as_of, settings, options.dimensions, engine, needed)
    sources, frames = prepared.sources, prepared.frames
    churn_source, forecast = prepared.churn_source, prepared.forecast
    columns = {name: frozenset(source.schema) for name, source in sources.items()}
    # Adoption needs who logged activities and who owns deals or customers: reps on both sides.
    with_rep = {n for n, f in (*tables.items(), *frames.items()) if "rep" in f.collect_schema()}
    adoption_inputs = (
        "rep_adoption" in needed
        and "activities" in with_rep
        and bool({"deals", "customer_base"} & with_rep)
    )
    if adoption_inputs:  # built once the periods are known; its columns are fixed
        columns["rep_adoption"] = frozenset(VIEW_COLUMNS["rep_adoption"])
    unavailable: dict[str, str] = {}
    if churn_source == "snapshot" and options.calendar.grain != "all":
        reason = "snapshot churn (a churned flag without dates) is measured for period all only"
        unavailable = {"snapshot_churned": reason, "snapshot_customers": reason}
    if "training_results" in needed and "training_results" not in frames:
        reason = _training_results_gap(tables)
        unavailable |= {
            m.name: reason
            for m in REGISTRY.metrics.values()
            if "training_results" in m.table_columns
        }
    if forecast is not None:
        unavailable.update(_forecast_skips(forecast))
    unavailable |= _setting_gaps(frames, settings)
    names, skipped, aliases = plan(
        wanted, columns, {**settings, "churn_source": churn_source}, unavailable
    )
    for name in wanted:
        absent = [d for d in REGISTRY[name].requires if d not in options.dimensions]
        if absent:
            skipped[name] = f"written only at grains with {', '.join(absent)} (--by)"
    dated = {**tables, **frames}
    all_anchors = {(t, a) for t, a in _anchors(names) if t in frames}
    if adoption_inputs:  # rep_adoption is dated by the activities and deals it is built from
        all_anchors |= {(t, a) for t, a in VIEW_ANCHORS["rep_adoption"] if t in tables}
    low = _first_date(dated, all_anchors, as_of)
    periods = options.calendar.periods(low or as_of, as_of)
    _check_period_count(periods, options.calendar.grain, settings["max_periods"])
    calendar = options.calendar.table(low or as_of, as_of)
    if adoption_inputs:
        # the customer base as a source of the run (built, and kept unless empty without churn)
        base_frame = prepared.shared["customer_base"] if "customer_base" in frames else None
        adoption = rep_adoption(
            calendar, periods, as_of, tables.get("activities"), tables.get("deals"), base_frame
        )
        sources["rep_adoption"] = resolve_dimensions(
            "rep_adoption", adoption, options.dimensions, None, tables.get("reps"), engine
        )
        columns["rep_adoption"] = frozenset(sources["rep_adoption"].schema)
    ctx = Context(settings, as_of, _periods_per_year(options.calendar, periods), columns)
    planned = [REGISTRY[n] for n in names]
    # A table's cells are those of every computable metric's rows on it, whatever was asked.
    every_output = [m.name for m in REGISTRY.outputs()]
    computable, _, _ = plan(
        every_output, columns, {**settings, "churn_source": churn_source}, unavailable
    )
    planned_tables = {m.table for m in planned if isinstance(m, Simple | Stock)}
    cell_anchors: dict[str, set[str]] = {}
    for name in computable:
        metric = REGISTRY[name]
        if (
            isinstance(metric, Simple)
            and metric.reduction.passes == "rows"
            and metric.table in planned_tables
            and metric.anchor in columns[metric.table]
        ):
            cell_anchors.setdefault(metric.table, set()).add(metric.anchor)
    run = Plan(
        sources,
        calendar.select("date", KEY, "period_start", "period_end"),
        ctx,
        options.dimensions,
        planned,
        engine,
        cell_anchors,
    )
    if options.explain:
        return ComputeResult(
            _finish([], periods, options.dimensions),
            as_of,
            [n for n in names if n in wanted],
            {k: v for k, v in skipped.items() if k in wanted},
            {},
            forecast,
            _explanation(run, periods, {k: v for k, v in skipped.items() if k in wanted}),
            warnings=inferred.warnings,
        )
    if low is not None:
        run.execute()
    periods = periods.with_columns(
        ((pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1)
        .cast(pl.Float64)
        .alias("__period_days"),
        options.calendar.year_before(pl.col("period")).alias("__year_before"),
    )
    outputs: list[pl.LazyFrame] = []
    grain_skips: dict[str, list[str]] = {}
    by_grain: dict[tuple[str, ...], dict[str, pl.LazyFrame]] = {}
    # Without a dated row up to as-of there is no period to report: an empty table, not zeros.
    for grain in grains(options.dimensions) if low is not None else []:
        results, missing = _compute_grain(run, names, aliases, grain, periods.lazy(), by_grain)
        by_grain[grain.dims] = results
        for name in missing:
            if name in wanted:
                grain_skips.setdefault(name, []).append(grain.name)
        outputs.extend(
            _long(frame, REGISTRY[name], grain, options.dimensions)
            for name, frame in results.items()
            if REGISTRY[name].output and name in wanted
        )
    kpis = _finish(outputs, periods, options.dimensions)
    computed = sorted({n for n in names if n in wanted and n not in skipped})
    nulled = (
        _growth_nulled(options.calendar, periods, low, as_of, computed) if low is not None else {}
    )
    return ComputeResult(
        kpis,
        as_of,
        computed,
        {k: v for k, v in skipped.items() if k in wanted},
        grain_skips,
        forecast,
        shared=prepared.shared,
        purchase_days=prepared.purchase_days,
        warnings=inferred.warnings,
        growth_nulled=nulled,
    )


def _explanation(run: Plan, periods: pl.DataFrame, skipped: Mapping[str, str]) -> str:
    """What `crmkpi compute --explain` prints: the run's frame, its passes, what is skipped."""
    breakdowns = ", ".join(g.name for g in grains(run.dimensions))
    lines = [
        f"as of {run.ctx.as_of.isoformat()}: {periods.height} period(s); grains {breakdowns}",
        f"{len(run.passes)} aggregation passes, executed together per source:",
        run.explain(),
    ]
    if skipped:
        lines.append(f"skipped ({len(skipped)}):")
        lines.extend(f"  {name}: {reason}" for name, reason in sorted(skipped.items()))
    return "\n".join(lines)


def _growth_nulled(
    calendar: Calendar, periods: pl.DataFrame, first: dt.date, as_of: dt.date, names: list[str]
) -> dict[str, dict[str, str]]:
    """{metric: {period: why}} for the output metrics that are, or are built from, a growth
    rate: the periods where it is null because a partial period is on one side."""
    lags = ("previous", "year")
    by_lag = {lag: calendar.partial_comparisons(periods, lag, first, as_of) for lag in lags}
    nulled = {}
    for name in names:
        used = (REGISTRY[n] for n in REGISTRY.order([name]))
        found = sorted({m.lag for m in used if isinstance(m, Growth)})
        reasons = {p: why for lag in found for p, why in by_lag[lag].items()}
        if reasons and REGISTRY[name].output:
            nulled[name] = dict(sorted(reasons.items()))
    return nulled


def _setting_gaps(frames: Mapping[str, Frame], settings: Mapping[str, Any]) -> dict[str, str]:
    """The metrics that need columns while a setting is on (Simple.setting_columns), when it is
    on and their source lacks them, with the reason."""
    gaps = {}
    for metric in REGISTRY.metrics.values():
        if not isinstance(metric, Simple) or metric.table not in frames:
            continue
        for setting, columns in metric.setting_columns:
            absent = [c for c in columns if c not in frames[metric.table].collect_schema()]
            if settings[setting] and absent:
                gaps[metric.name] = (
                    f"{metric.table} lacks column(s) {', '.join(absent)}, needed while "
                    f"{setting} is {settings[setting]}"
                )
    return gaps


def _forecast_skips(forecast: ClvForecast) -> dict[str, str]:
    """The customer_clv metrics that cannot be computed: all of them without a BG/NBD fit,
    those reading predicted_clv without a Gamma-Gamma fit too."""
    skips = {}
    for metric in REGISTRY.metrics.values():
        read = metric.table_columns.get("customer_clv")
        if read is None:
            continue
        reason = forecast.value_skipped if "predicted_clv" in read else forecast.purchases_skipped
        if reason is not None:
            skips[metric.name] = f"clv_forecast skipped ({reason})"
    return skips


def _periods_per_year(calendar: Calendar, periods: pl.DataFrame) -> float:
    """k of the CLV formula: month 12, quarter 4, year 1, all = 365.25 / days in the range."""
    per_year = {"day": 365.25, "week": 365.25 / 7, "month": 12.0, "quarter": 4.0, "year": 1.0}
    if calendar.grain in per_year:
        return per_year[calendar.grain]
    days = (periods["period_end"][0] - periods["period_start"][0]).days + 1
    return 365.25 / days


def _compute_grain(
    run: Plan,
    names: list[str],
    aliases: Mapping[str, str],
    grain: Grain,
    periods: pl.LazyFrame,
    by_grain: Mapping[tuple[str, ...], Mapping[str, pl.LazyFrame]],
) -> tuple[dict[str, pl.LazyFrame], list[str]]:
    """Every metric at one grain; those the grain's dimensions cannot reach are listed."""
    results: dict[str, pl.LazyFrame] = {}
    missing: list[str] = []
    single_pass: dict[tuple[str, str], list[Simple]] = {}
    for name in names:
        metric = REGISTRY[name]
        if (
            isinstance(metric, Simple)
            and metric.reduction.passes == "rows"
            and set(grain.dims) <= run.sources[metric.table].dimensions
        ):
            single_pass.setdefault((metric.table, metric.anchor), []).append(metric)
    aggregated = {key: run.rows(group, grain).lazy() for key, group in single_pass.items()}

    def grid(table: str) -> pl.LazyFrame:
        """Every period x every cell the table's rows have at this grain."""
        index = periods.select(pl.col(KEY))
        if not grain.dims:
            return index
        seen = run.cells(table, grain)
        if seen is None:
            return index.clear().join(
                pl.LazyFrame(schema={k: pl.String for k in grain.keys[1:]}), how="cross"
            )
        return index.join(seen.lazy(), how="cross")

    for name in names:
        metric = REGISTRY[name]
        if not set(metric.requires) <= set(grain.dims):
            continue
        if name in aliases:
            if aliases[name] in results:
                results[name] = results[aliases[name]]
            else:
                missing.append(name)
            continue
        optional = metric.optional if isinstance(metric, Derived) else ()
        inputs_missing = [i for i in metric.inputs if i not in results and i not in optional]
        if inputs_missing:
            missing.append(name)
            continue
        if isinstance(metric, Simple | Stock) and not (
            set(grain.dims) <= run.sources[metric.table].dimensions
        ):
            missing.append(name)
            continue
        if isinstance(metric, Simple) and metric.reduction.passes != "rows":
            values = run.entities(metric, grain).lazy()
            frame = _metric_frame(
                values.with_columns(pl.col(KEY).cast(pl.Int32)), grid(metric.table), metric, grain
            )
        elif isinstance(metric, Simple):
            values = aggregated[(metric.table, metric.anchor)]
            frame = _metric_frame(
                values.with_columns(pl.col(KEY).cast(pl.Int32)), grid(metric.table), metric, grain
            )
        elif isinstance(metric, Stock):
            net = run.stock(metric, grain).lazy()
            stock_grid = grid(metric.table)
            if grain.dims:
                extra = net.select(grain.keys[1:]).unique()
                stock_grid = periods.select(KEY).join(
                    pl.concat([stock_grid.select(grain.keys[1:]), extra]).unique(), how="cross"
                )
            frame = _stock_frame(net, stock_grid, metric, grain)
        elif isinstance(metric, Ratio) and metric.denominator_without:
            parent = tuple(d for d in grain.dims if d != metric.denominator_without)
            whole = by_grain[parent][metric.denominator]
            parent_keys = [KEY, *(f"dim:{d}" for d in parent)]
            combined = (
                results[metric.numerator]
                .select(*grain.keys, pl.col("value").alias("value_0"))
                .join(
                    whole.select(*parent_keys, pl.col("value").alias("value_1")),
                    on=parent_keys,
                    how="left",
                )
            )
            frame = combined.select(
                *grain.keys,
                _divide(pl.col("value_0"), pl.col("value_1"), metric.scale),
                pl.col("value_0").alias("numerator"),
                pl.col("value_1").alias("denominator"),
            )
        elif isinstance(metric, Ratio):
            combined = _combine(
                [results[metric.numerator], results[metric.denominator]], grain.keys
            )
            frame = combined.select(
                *grain.keys,
                _divide(pl.col("value_0"), pl.col("value_1"), metric.scale),
                pl.col("value_0").alias("numerator"),
                pl.col("value_1").alias("denominator"),
            )
        elif isinstance(metric, Derived):
            present = [i for i in metric.inputs if i in results]
            combined = _combine([results[i] for i in present], grain.keys).join(
                periods.select(KEY, "__period_days"), on=KEY, how="left"
            )
            columns: dict[str, nw.Expr | None] = {
                i: nw.col(f"value_{k}") for k, i in enumerate(present)
            }
            columns.update({i: None for i in metric.inputs if i not in results})
            frame = (
                nw.from_native(combined)
                .select(
                    *grain.keys,
                    _as_expr(metric.compute(columns, run.ctx)).cast(nw.Float64).alias("value"),
                    nw.lit(None, nw.Float64).alias("numerator"),
                    nw.lit(None, nw.Float64).alias("denominator"),
                )
                .to_native()
            )
            frame = frame.with_columns(
                pl.when(pl.col("value").is_nan() | pl.col("value").is_infinite())
                .then(None)
                .otherwise(pl.col("value"))
                .alias("value")
            )
        elif isinstance(metric, Growth):
            frame = _growth_frame(results[metric.base], metric, grain, periods)
        else:  # pragma: no cover - the registry only holds the five types
            raise TypeError(type(metric).__name__)
        results[name] = frame.with_columns(pl.col(KEY).cast(pl.Int32))
    return results, missing


def _long(
    frame: pl.LazyFrame, metric: Metric, grain: Grain, dimensions: Sequence[str]
) -> pl.LazyFrame:
    return frame.select(
        pl.col(KEY),
        pl.lit(grain.name).alias("grain"),
        *(
            (pl.col(f"dim:{d}") if d in grain.dims else pl.lit(None, pl.String)).alias(d)
            for d in dimensions
        ),
        pl.lit(metric.name).alias("metric"),
        pl.col("value").cast(pl.Float64),
        pl.col("numerator").cast(pl.Float64),
        pl.col("denominator").cast(pl.Float64),
        pl.lit(metric.unit).alias("unit"),
    )


def _finish(
    outputs: list[pl.LazyFrame], periods: pl.DataFrame, dimensions: Sequence[str]
) -> pl.DataFrame:
    """Attach period columns, previous values and changes; sort; fix the column order."""
    dims = list(dimensions)
    schema = {
        KEY: pl.Int32,
        "grain": pl.String,
        **{d: pl.String for d in dims},
        "metric": pl.String,
        "value": pl.Float64,
        "numerator": pl.Float64,
        "denominator": pl.Float64,
        "unit": pl.String,
    }
    long = pl.concat(outputs) if outputs else pl.LazyFrame(schema=schema)
    series = ["grain", *dims, "metric"]
    long = (
        long.sort(KEY)
        .with_columns(pl.col("value").shift(1).over(series, order_by=KEY).alias("previous_value"))
        .with_columns((pl.col("value") - pl.col("previous_value")).alias("change"))
    )
    grain_order = {g.name: i for i, g in enumerate(grains(dimensions))}
    long = long.join(periods.lazy(), on=KEY, how="left").with_columns(
        pl.col("grain").replace_strict(grain_order, return_dtype=pl.Int32).alias("__grain_order")
    )
    long = long.sort([KEY, "__grain_order", *dims, "metric"], nulls_last=False)
    return long.select(*OUTPUT_COLUMNS, *dims, *VALUE_COLUMNS).collect()

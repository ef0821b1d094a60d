"""Plan and run the metric computations: one grouped pass per source, anchor and grain.

The heavy work (joining facts to the calendar and aggregating them) is written against the
narwhals lazy API, so it runs on Polars (default) or DuckDB unchanged. What follows the
aggregation works on small per-period frames in Polars: ratios are recomputed from their two
parts at every grain, derived and growth metrics come after, and every metric gets the complete
period x dimension grid it is owed.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.calendar import Calendar
from crmkpi.engines import Engine, engine_named
from crmkpi.errors import ConfigError
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.base import Context, Derived, Growth, Metric, Ratio, Simple, Stock
from crmkpi.metrics.settings import resolve_settings
from crmkpi.profiles import ClvForecast, clv_forecast, rfm
from crmkpi.views import (
    VIEW_COLUMNS,
    campaign_results,
    churn_source_of,
    completed_orders,
    customer_base,
    end_of,
    known_customers,
    order_spans,
    placed_orders,
    rep_adoption,
    shift_utilization,
    training_results,
)

DIMENSIONS = (
    "segment",
    "region",
    "rep",
    "team",
    "channel",
    "product",
    "category",
    "source",
    "rfm_segment",
)
DEFAULT_DIMENSIONS = ("segment", "rep")
NONE_LABEL = "(none)"
VIEW_TABLES = {
    "completed_orders": "orders",
    "placed_orders": "orders",
    "training_results": "trainings",
}
KEY = "period_index"
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
    spark_master: str | None = None  # engine spark only


@dataclass
class ComputeResult:
    kpis: pl.DataFrame
    as_of: dt.date
    computed: list[str]
    skipped: dict[str, str]
    grain_skips: dict[str, list[str]]
    clv_forecast: ClvForecast | None = None  # when a metric read it: the fit, built once


# --- sources and dimensions ---------------------------------------------------------------------


@dataclass
class Source:
    """A table or view ready for aggregation: dimension columns resolved, nulls as (none)."""

    name: str
    frame: pl.DataFrame
    dimensions: set[str]


# Columns named like a dimension that mean something else in their table (a spend or budget
# category is the kind of spend, not a product category).
NOT_DIMENSIONS = {"spend": ("category",), "budgets": ("category",)}


def _dimension_column(name: str, frame: pl.DataFrame, table: str = "") -> str | None:
    if name in NOT_DIMENSIONS.get(table, ()):
        return None
    candidates = {"source": ("source", "lead_source")}.get(name, (name,))
    return next((c for c in candidates if c in frame.columns), None)


def resolve_dimensions(
    name: str,
    frame: pl.DataFrame,
    wanted: Sequence[str],
    customers: pl.DataFrame | None,
    reps: pl.DataFrame | None,
    customer_columns: Mapping[str, str] | None = None,
) -> Source:
    """Attach each wanted dimension: the table's own column wins as a whole column; else
    segment/region through customer_id, team through rep. `customer_columns` (name in the
    source: column of `customers`) come along in the same customer join."""
    supplied: set[str] = set()
    columns: dict[str, pl.Expr] = {}
    from_customers = dict(customer_columns or {})
    for dimension in wanted:
        own = _dimension_column(dimension, frame, name)
        if own is not None:
            columns[dimension] = pl.col(own)
            supplied.add(dimension)
            continue
        if (
            dimension in ("segment", "region")
            and customers is not None
            and "customer_id" in frame.columns
            and dimension in customers.columns
            and customers[dimension].is_not_null().any()
        ):
            from_customers[f"__{dimension}"] = dimension
            columns[dimension] = pl.col(f"__{dimension}")
            supplied.add(dimension)
        elif (
            dimension == "team"
            and reps is not None
            and "team" in reps.columns
            and "rep" in frame.columns
        ):
            frame = frame.hstack(lookup(frame, "rep", reps, {"__team": "team"}))
            columns[dimension] = pl.col("__team")
            supplied.add(dimension)
    if from_customers and customers is not None and "customer_id" in frame.columns:
        frame = frame.hstack(lookup(frame, "customer_id", customers, from_customers))
    frame = frame.with_columns(
        expr.cast(pl.String).fill_null(NONE_LABEL).alias(f"dim:{d}") for d, expr in columns.items()
    )
    # looked-up columns are contiguous, the table's may come in chunks: align them once here,
    # not in every aggregation's select
    frame = frame.drop([c for c in frame.columns if c.startswith("__")]).rechunk()
    return Source(name, frame, supplied)


def lookup(
    frame: pl.DataFrame, key: str, table: pl.DataFrame, columns: Mapping[str, str]
) -> pl.DataFrame:
    """`table`'s columns (new name: column) for each row of `frame` by `key` (unique in
    `table`): one join of the key alone, so that the frame's other columns are not copied."""
    # one chunk: gathering from a chunked column costs several times more
    wanted = table.select(key, *(pl.col(c).alias(new) for new, c in columns.items())).rechunk()
    if frame.schema[key] == pl.String and table.schema[key] == pl.String:
        rows = _rows_by_hash(frame[key], wanted[key])
        if rows is not None:
            return wanted.drop(key).select(pl.all().gather(rows))
    return frame.select(key).join(wanted, on=key, how="left", maintain_order="left").drop(key)


def _rows_by_hash(keys: pl.Series, table_keys: pl.Series) -> pl.Series | None:
    """Each key's row in `table_keys` (unique), or null. Joining 64-bit hashes is about twice
    as fast as joining strings; every match is then compared string for string, so a hash
    collision falls back to the string join (None) and never picks a wrong row."""
    table_hashes = table_keys.hash()
    if table_hashes.n_unique() != table_hashes.len():
        return None
    rows = pl.DataFrame({"h": table_hashes, "row": pl.int_range(table_hashes.len(), eager=True)})
    probe = pl.DataFrame({"h": keys.hash(), "key": keys}).select(
        pl.when(pl.col("key").is_not_null()).then(pl.col("h")).alias("h")
    )
    found = probe.join(rows, on="h", how="left", maintain_order="left")["row"]
    same = (table_keys.gather(found) == keys) | found.is_null()
    return found if same.all(ignore_nulls=False) else None


def grains(dimensions: Sequence[str]) -> list[tuple[str, ...]]:
    """The total plus every combination of the breakdown dimensions, coarse to fine."""
    return [
        combo
        for size in range(len(dimensions) + 1)
        for combo in itertools.combinations(dimensions, size)
    ]


def grain_name(dims: Sequence[str]) -> str:
    return "+".join(dims) if dims else "total"


# --- planning -----------------------------------------------------------------------------------


def _missing(metric: Metric, sources: Mapping[str, pl.DataFrame]) -> str | None:
    """Why a metric reading tables directly cannot be computed, or None."""
    for table, columns in metric.table_columns.items():
        if table not in sources:
            return f"table {table} not given"
        absent = [c for c in columns if c not in sources[table].columns]
        if absent:
            return f"{table} lacks column(s) {', '.join(absent)}"
    return None


def plan(
    names: Sequence[str],
    sources: Mapping[str, pl.DataFrame],
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


def _date(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    return pl.col(column).dt.date() if isinstance(dtype, pl.Datetime) else pl.col(column)


def _date_range(
    sources: Mapping[str, pl.DataFrame], anchors: set[tuple[str, str]], as_of: dt.date | None
) -> tuple[dt.date | None, dt.date | None]:
    """(earliest anchor date <= as-of, latest anchor date) over the anchors in use."""
    lows, highs = [], []
    for source, anchor in anchors:
        frame = sources[source]
        dates = frame.select(_date(frame, anchor).alias("d"))["d"].drop_nulls()
        if as_of is not None:
            dates = dates.filter(dates <= as_of)
        if dates.len():
            lows.append(dates.min())
            highs.append(dates.max())
    low = min(lows) if lows else None  # type: ignore[type-var]
    high = max(highs) if highs else None  # type: ignore[type-var]
    return low, high  # type: ignore[return-value]


# --- aggregation (narwhals: runs on every engine) -----------------------------------------------

_NUM, _DEN, _VAL = "|num", "|den", "|val"
_DISTINCT = "distinct:"  # per entity: see _Computation._finest_entities


def _guarded(value: nw.Expr, condition: nw.Expr | None) -> nw.Expr:
    return value if condition is None else nw.when(condition).then(value)


# Floats added up in whatever order parallel group_by sees them differ in the last bits from
# run to run; sums in a wide decimal are exact, so reruns are byte-identical.
EXACT = nw.Decimal(38, 9)
_EXACT = pl.Decimal(38, 9)  # the same, for the frames assembled in Polars


def _exact_sum(value: nw.Expr) -> nw.Expr:
    return value.cast(nw.Float64).cast(EXACT).sum()


def _distinct(value: nw.Expr) -> nw.Expr:
    """The number of distinct non-null values."""
    return value.n_unique() - (value.null_count() > 0).cast(nw.Int64)


def _left_join(
    left: nw.LazyFrame[Any], right: nw.LazyFrame[Any], on: Sequence[str]
) -> nw.LazyFrame[Any]:
    """`left.join(right, on, how="left")` through plain key names: SQLFrame (4.10) cannot
    join on a name that needs quoting, such as the grain keys `dim:segment`."""
    plain = {key: f"__key{i}" for i, key in enumerate(on)}
    joined = left.rename(plain).join(right.rename(plain), on=list(plain.values()), how="left")
    return joined.rename({v: k for k, v in plain.items()})


def _part_columns(metric: Simple) -> list[str]:
    """The columns `_aggregates` names for a metric."""
    if metric.agg == "mean":
        return [metric.name + _NUM, metric.name + _DEN]
    return [metric.name + _VAL]


def _aggregates(metric: Simple, ctx: Context) -> list[nw.Expr]:
    """The aggregate expressions of one simple metric (count, sum, mean as sum and count, ...)."""
    condition = metric.condition(ctx)
    value = _guarded(metric.value_expr(ctx), condition)
    name = metric.name
    if metric.agg == "count":
        counted = nw.len() if condition is None else condition.cast(nw.Int64).sum()
        return [counted.alias(name + _VAL)]
    if metric.agg == "sum":
        return [_exact_sum(value).alias(name + _VAL)]
    if metric.agg == "mean":
        return [_exact_sum(value).alias(name + _NUM), value.count().alias(name + _DEN)]
    if metric.agg == "median":
        return [value.median().alias(name + _VAL)]
    if metric.agg == "n_unique":
        return [_distinct(value).alias(name + _VAL)]
    raise ValueError(f"{name}: aggregate {metric.agg} is not a single-pass aggregate")


@dataclass
class _Grain:
    dims: tuple[str, ...]

    @property
    def keys(self) -> list[str]:
        return [KEY, *(f"dim:{d}" for d in self.dims)]


class _Computation:
    """One run of the engine over prepared sources."""

    def __init__(
        self,
        sources: dict[str, Source],
        backend: Engine,
        calendar: pl.DataFrame,
        ctx: Context,
        dimensions: Sequence[str],
        planned: Sequence[Metric],
    ) -> None:
        self.sources = sources
        self.planned = [m for m in planned if isinstance(m, Simple)]
        self.dimensions = tuple(dimensions)
        self._built: dict[tuple[str, ...], pl.DataFrame] = {}  # see _once
        self._rollable: dict[str, bool] = {}  # by metric: see _settle_rollups, _stays_in_cell
        # (table, anchor, column) whose values each fall in one finest cell
        self._disjoint: set[tuple[str, str, str]] = set()
        self.backend = backend
        self.calendar = calendar
        self.calendar_lazy = backend.lazy(
            calendar.select("date", KEY, "period_start", "period_end")
        )
        self.ctx = ctx

    def _collect(self, plan: nw.LazyFrame[Any]) -> pl.DataFrame:
        return self.backend.collect_all([plan])[0]

    def _once(self, key: tuple[str, ...], build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """`build()` the first time `key` is asked for, the same frame afterwards: what is
        found once per source (or metric) and reused by every grain."""
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]

    def _periods_of(self, source: Source, anchor: str) -> pl.DataFrame:
        """Each row's period by its anchor date (null outside the grid, so after as-of): the
        calendar join done once per source and anchor, not once per grain and metric group."""

        def place() -> pl.DataFrame:
            dates = source.frame.select(_date(source.frame, anchor).alias("__date"))
            return dates.join(
                self.calendar.select("date", KEY, "period_start", "period_end"),
                left_on="__date",
                right_on="date",
                how="left",
                maintain_order="left",
            ).drop("__date")

        return self._once(("placed", source.name, anchor), place)

    def _facts(self, source: Source, anchor: str, columns: set[str], grain: _Grain) -> Any:
        """The source's rows with their period (rows outside the grid fall out)."""
        frame = source.frame
        keep = _present(columns | {anchor}, frame.columns)
        periods = self._periods_of(source, anchor)
        placed = frame.select(*keep, *(f"dim:{d}" for d in grain.dims)).hstack(
            periods.select(c for c in periods.columns if c not in keep)
        )
        return self.backend.lazy(placed).filter(~nw.col(KEY).is_null())

    def simple(self, metrics: list[Simple], grain: _Grain) -> pl.DataFrame:
        """Every single-pass simple metric of one source and anchor at one grain.

        Additive parts (counts, sums, the sum and count of a mean) are aggregated ONCE per
        source and anchor, at the finest grain the run asks for, and rolled up to coarser
        grains from that small frame (exact for sums). So are distinct counts whose values
        each fall in one finest cell (order ids: see `_settle_rollups`). Other distinct counts
        and medians cannot be rolled up: they get one group_by per grain.
        """
        finest_grain = self._finest_grain(metrics[0].table, grain)
        at_finest = grain.keys == finest_grain.keys
        rolled = [m for m in metrics if self._rolls_up(m) or (at_finest and m.agg == "n_unique")]
        finest = (
            self._finest_parts(metrics, finest_grain)
            if any(m.agg in (*_ADDITIVE, "n_unique") for m in metrics)
            else None
        )
        others = [m for m in metrics if m not in rolled]
        parts = []
        if finest is not None:
            columns = [c for m in rolled for c in _part_columns(m)]
            parts.append(
                finest.select(*grain.keys, *columns)
                if at_finest
                else finest.group_by(grain.keys).agg(pl.col(columns).sum())
            )
        if others:
            per_grain = self._aggregate(others, grain)
            if not grain.dims and finest is not None:
                self._settle_rollups(others, per_grain, finest)
            parts.append(per_grain)
        result = parts[0]
        for part in parts[1:]:
            result = result.join(part, on=grain.keys, how="full", coalesce=True)
        return result

    def _rolls_up(self, metric: Simple) -> bool:
        return metric.agg in _ADDITIVE or self._rollable.get(metric.name, False)

    def _settle_rollups(
        self, metrics: list[Simple], per_period: pl.DataFrame, finest: pl.DataFrame
    ) -> None:
        """Decide, at the period-only grain, which distinct counts roll up from the finest.

        Within a period, the distinct values of all finest cells together number at most the
        sum of each cell's distinct values, with equality exactly when no value is in two
        cells. Then every coarser cell's count is the sum of its finest cells' counts: so equal
        totals (one number per metric) make the rollup exact at every grain."""
        for metric in metrics:
            if metric.agg == "n_unique":
                column = metric.name + _VAL
                rolls = bool(per_period[column].sum() == finest[column].sum())
                self._rollable[metric.name] = rolls
                if rolls and metric.where is None and metric.value is None and metric.column:
                    self._disjoint.add((metric.table, metric.anchor, metric.column))

    def _finest_parts(self, metrics: list[Simple], finest: _Grain) -> pl.DataFrame:
        """The parts aggregated at the finest grain, once per source and anchor: the additive
        ones and the distinct counts (a rollup candidate, and the finest grain's own value)."""
        at_finest = [m for m in metrics if m.agg in (*_ADDITIVE, "n_unique")]
        key = ("finest", metrics[0].table, metrics[0].anchor)
        return self._once(key, lambda: self._aggregate(at_finest, finest))

    def _aggregate(self, metrics: list[Simple], grain: _Grain) -> pl.DataFrame:
        """ONE group_by for all the given metrics of a source and anchor."""
        first = metrics[0]
        columns = {c for m in metrics for c in (*m.table_columns[m.table], *m.optional_columns)}
        facts = self._facts(self.sources[first.table], first.anchor, columns, grain)
        aggregates = [e for m in metrics for e in _aggregates(m, self.ctx)]
        collected = self._collect(facts.group_by(grain.keys).agg(*aggregates))
        return collected.with_columns(pl.col(KEY).cast(pl.Int32))

    def entities(self, metric: Simple, grain: _Grain) -> pl.DataFrame:
        """count_entities: aggregate per entity within the cell, then count those that qualify.
        retained: entities present in the cell and in the same cell of the previous period."""
        assert metric.entity
        if metric.agg == "retained":
            return self._retained(metric, grain)
        assert metric.column and metric.having
        per_entity = self._per_entity(metric, grain)
        qualifies = metric.having(nw.col("__per_entity"), self.ctx).cast(nw.Int64)
        counted = per_entity.group_by(grain.keys).agg(qualifies.sum().alias(metric.name + _VAL))
        return self._collect(counted)

    def _per_entity(self, metric: Simple, grain: _Grain) -> nw.LazyFrame[Any]:
        """Per cell and entity, how many distinct `column` values it has. They are counted once
        at the finest grain and summed per grain when each value falls in one finest cell and
        entity (an order's lines share a customer, a rep and a date), as settled at the
        period-only grain the way `_settle_rollups` settles distinct counts. Values that fall in
        one finest cell fall in one finest cell and entity, so a settled distinct count of the
        same column settles this too."""
        assert metric.entity and metric.column
        column, condition = metric.column, metric.condition(self.ctx)
        entity_keys = [*grain.keys, metric.entity]
        columns = set(metric.table_columns[metric.table])
        facts = self._facts(self.sources[metric.table], metric.anchor, columns, grain)
        if condition is not None:
            facts = facts.filter(condition)
        per_entity = facts.group_by(entity_keys).agg(
            _distinct(nw.col(column)).alias("__per_entity")
        )
        if condition is not None:
            return per_entity
        finest = self._finest_grain(metric.table, grain)
        counts = self.backend.lazy(self._finest_entities(metric, grain)).select(
            *finest.keys, metric.entity, nw.col(_DISTINCT + column).alias("__per_entity")
        )
        if grain.keys == finest.keys:
            return counts
        if (metric.table, metric.anchor, column) in self._disjoint:
            self._rollable[metric.name] = True
        if self._rollable.get(metric.name):
            return counts.group_by(entity_keys).agg(nw.col("__per_entity").sum())
        if grain.dims:
            return per_entity
        collected = self._collect(per_entity)
        finest_total = self._collect(counts.select(nw.col("__per_entity").sum())).item()
        self._rollable[metric.name] = bool(collected["__per_entity"].sum() == finest_total)
        return self.backend.lazy(collected)

    def _retained(self, metric: Simple, grain: _Grain) -> pl.DataFrame:
        """Entities present in a cell and in the same cell one period earlier. When every
        entity stays in one finest cell, an entity retained in a coarser cell is retained in
        its own finest cell: the finest counts are summed instead of joined again per grain."""
        finest = self._finest_grain(metric.table, grain)
        if metric.where is None and finest.dims and self._stays_in_cell(metric, grain):
            at_finest = self._once(
                ("retained", metric.name), lambda: self._retained_in(metric, finest)
            )
            if grain.keys == finest.keys:
                return at_finest
            parts = pl.col(metric.name + _NUM, metric.name + _DEN)
            return at_finest.group_by(grain.keys).agg(parts.sum())
        return self._retained_in(metric, grain)

    def _retained_in(self, metric: Simple, grain: _Grain) -> pl.DataFrame:
        assert metric.entity
        condition = metric.condition(self.ctx)
        if condition is None:
            present = self._presence(metric, grain)
        else:
            columns = set(metric.table_columns[metric.table])
            facts = self._facts(self.sources[metric.table], metric.anchor, columns, grain)
            present = facts.filter(condition).select(*grain.keys, metric.entity).unique()
        earlier = present.with_columns((nw.col(KEY) + 1).alias(KEY), nw.lit(1).alias("__was"))
        both = _left_join(
            earlier, present.with_columns(nw.lit(1).alias("__is")), [*grain.keys, metric.entity]
        )
        counted = both.group_by(grain.keys).agg(
            nw.col("__is").fill_null(0).sum().alias(metric.name + _NUM),
            nw.len().alias(metric.name + _DEN),
        )
        return self._collect(counted)

    def _presence(self, metric: Simple, grain: _Grain) -> nw.LazyFrame[Any]:
        """Which entities have rows in which cells. Presence in a coarser cell is presence in
        any of its finer cells, so the finest pairs are found once and projected per grain."""
        assert metric.entity
        pairs = self.backend.lazy(self._finest_entities(metric, grain))
        if grain.keys == self._finest_grain(metric.table, grain).keys:
            return pairs.select(*grain.keys, metric.entity)
        return pairs.select(*grain.keys, metric.entity).unique()

    def _stays_in_cell(self, metric: Simple, grain: _Grain) -> bool:
        """Whether each entity has the same finest dimensions in every period (a customer's
        segment, and one rep for all their orders)."""
        assert metric.entity
        if metric.name not in self._rollable:
            finest = self._finest_grain(metric.table, grain)
            pairs = self._finest_entities(metric, grain)
            placed = pairs.select(*finest.keys[1:], metric.entity).unique()
            self._rollable[metric.name] = placed.height == placed[metric.entity].n_unique()
        return self._rollable[metric.name]

    def _finest_entities(self, metric: Simple, grain: _Grain) -> pl.DataFrame:
        """Per finest cell and entity with rows of the metric's source and anchor, the distinct
        values of each column that a planned unconditional count_entities metric counts there.
        One pass serves all of them, and its rows are the presence pairs retention needs."""
        assert metric.entity
        entity = metric.entity
        key = (metric.table, metric.anchor, entity)

        def count() -> pl.DataFrame:
            counted = sorted(
                {
                    m.column
                    for m in self.planned
                    if m.agg == "count_entities" and m.where is None and m.column
                    if (m.table, m.anchor, m.entity) == key
                }
            )
            finest = self._finest_grain(metric.table, grain)
            columns = {metric.anchor, entity, *counted}
            facts = self._facts(self.sources[metric.table], metric.anchor, columns, finest)
            found = [_distinct(nw.col(c)).alias(_DISTINCT + c) for c in counted]
            by_entity = facts.group_by([*finest.keys, entity])
            return self._collect(
                by_entity.agg(*found) if found else by_entity.agg(nw.len().alias("__rows"))
            )

        return self._once(("entities", *key), count)

    def _finest_grain(self, table: str, grain: _Grain) -> _Grain:
        """The run's finest grain that the table's dimensions reach."""
        supplied = self.sources[table].dimensions
        return _Grain(tuple(d for d in self.dimensions if d in supplied) or grain.dims)

    def stock(self, metric: Stock, grain: _Grain) -> pl.DataFrame:
        """Net openings per period (openings before the grid in period -1). They are sums: found
        once at the finest grain and summed per grain, in decimals, so exactly."""
        finest = self._finest_grain(metric.table, grain)
        net = self._once(("stock", metric.name), lambda: self._net_openings(metric, finest))
        if grain.keys != finest.keys:
            net = net.group_by(grain.keys).agg(pl.col("__net").sum())
        return net.with_columns(pl.col("__net").cast(pl.Float64))

    def _net_openings(self, metric: Stock, grain: _Grain) -> pl.DataFrame:
        """Openings less closings per cell, as two passes."""
        source = self.sources[metric.table]
        frame = source.frame
        total = _exact_sum(metric.value(self.ctx)) if metric.value else nw.len()
        parts = []
        events = [(metric.opened, 1, metric.where)]
        if metric.closed is not None:
            events.append((metric.closed, -1, metric.closed_where))
        for column, sign, where in events:
            declared = {*metric.table_columns[metric.table], *metric.optional_columns}
            keep = _present(declared, frame.columns)
            selected = frame.select(
                *keep, *(f"dim:{d}" for d in grain.dims), _date(frame, column).alias("__date")
            )
            lazy = self.backend.lazy(selected).filter(
                ~nw.col("__date").is_null() & (nw.col("__date") <= nw.lit(self.ctx.as_of))
            )
            for rule in (metric.where, where):
                if rule is not None:
                    lazy = lazy.filter(rule(self.ctx))
            lazy = lazy.join(
                self.calendar_lazy.select("date", KEY),
                left_on="__date",
                right_on="date",
                how="left",
            )
            lazy = lazy.with_columns(nw.col(KEY).fill_null(-1))
            parts.append(
                self._collect(lazy.group_by(grain.keys).agg((total * sign).alias("__net")))
            )
        return (
            pl.concat(
                [
                    p.with_columns(pl.col(KEY).cast(pl.Int32), pl.col("__net").cast(_EXACT))
                    for p in parts
                ]
            )
            .group_by(grain.keys)
            .agg(pl.col("__net").sum())
        )


# --- assembly (small frames, Polars) ------------------------------------------------------------

_ZERO_WHEN_EMPTY = ("count", "sum", "n_unique", "count_entities")
_TWO_PASS = ("count_entities", "retained")
_ADDITIVE = ("count", "sum", "mean")


def _present(declared: Collection[str], columns: Sequence[str]) -> list[str]:
    """The declared columns a source has; `profile_*` stands for every column so named."""
    prefixes = tuple(c[:-1] for c in declared if c.endswith("*"))
    return sorted(c for c in columns if c in declared or (prefixes and c.startswith(prefixes)))


def _metric_frame(
    values: pl.DataFrame, grid: pl.DataFrame, metric: Simple, grain: _Grain
) -> pl.DataFrame:
    """One simple metric on its complete grid: value, numerator, denominator."""
    name = metric.name
    if metric.agg in ("mean", "retained"):
        parts = values.select(
            *grain.keys,
            pl.col(name + _NUM).cast(pl.Float64).alias("numerator"),
            pl.col(name + _DEN).cast(pl.Float64).alias("denominator"),
        )
        filled = grid.join(parts, on=grain.keys, how="left").with_columns(
            pl.col("numerator", "denominator").fill_null(0.0)
        )
        return filled.with_columns(_divide(pl.col("numerator"), pl.col("denominator")))
    parts = values.select(*grain.keys, pl.col(name + _VAL).cast(pl.Float64).alias("value"))
    filled = grid.join(parts, on=grain.keys, how="left")
    if metric.agg in _ZERO_WHEN_EMPTY:
        filled = filled.with_columns(pl.col("value").fill_null(0.0))
    return filled.with_columns(
        pl.lit(None, pl.Float64).alias("numerator"), pl.lit(None, pl.Float64).alias("denominator")
    )


def _as_expr(value: Any) -> pl.Expr:
    """Derived formulas return expressions (or a `when/then` without otherwise, or a number)."""
    if isinstance(value, pl.Expr):
        return value
    if hasattr(value, "otherwise"):
        return value.otherwise(None)
    return pl.lit(value)


def _divide(numerator: pl.Expr, denominator: pl.Expr, scale: float = 1.0) -> pl.Expr:
    """A zero or missing denominator gives null, never 0, inf or NaN."""
    return (
        pl.when(denominator.is_not_null() & (denominator != 0))
        .then(numerator / denominator * scale)
        .otherwise(None)
        .alias("value")
    )


def _combine(frames: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
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
    net: pl.DataFrame, grid: pl.DataFrame, metric: Stock, grain: _Grain
) -> pl.DataFrame:
    """Balance at each period's end (or start): cumulative net openings, from period -1 on."""
    dims = grain.keys[1:]
    carried = net.filter(pl.col(KEY) == -1).drop(KEY).rename({"__net": "__carried"})
    per_period = grid.join(net, on=grain.keys, how="left").with_columns(
        pl.col("__net").fill_null(0.0)
    )
    per_period = (
        per_period.join(carried, on=dims, how="left")
        if dims
        else per_period.with_columns(pl.lit(carried["__carried"].sum()).alias("__carried"))
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
    base: pl.DataFrame, metric: Growth, grain: _Grain, periods: pl.DataFrame
) -> pl.DataFrame:
    """(value - base value) / base value, the base being the previous period or a year before."""
    dims = grain.keys[1:]
    dated = base.join(periods.select(KEY, "period", "__year_before"), on=KEY)
    if metric.lag == "previous":
        earlier = dated.select(*dims, (pl.col(KEY) + 1).alias(KEY), pl.col("value").alias("__b"))
        joined = dated.join(earlier, on=grain.keys, how="left")
    else:
        earlier = dated.select(
            *dims, pl.col("period").alias("__year_before"), pl.col("value").alias("__b")
        )
        joined = dated.join(earlier, on=[*dims, "__year_before"], how="left")
    return joined.select(
        *grain.keys,
        _divide(pl.col("value") - pl.col("__b"), pl.col("__b")),
        (pl.col("value") - pl.col("__b")).alias("numerator"),
        pl.col("__b").alias("denominator"),
    )


# --- the run ------------------------------------------------------------------------------------


def prepare_sources(
    tables: Mapping[str, pl.DataFrame],
    as_of: dt.date,
    settings: Mapping[str, Any],
    dimensions: Sequence[str],
    needed: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict[str, Source], str | None, ClvForecast | None]:
    """Canonical tables plus the views that `needed` (table and view names the planned metrics
    read, with the columns they read; None: all) asks for, with their dimension columns
    resolved. Views and columns nobody reads are not built: at tens of millions of rows each
    costs a pass over its table. Also the CLV fit when customer_clv was built."""

    def wanted(name: str, column: str | None = None) -> bool:
        return needed is None or (name in needed and (column is None or column in needed[name]))

    orders, customers_table = tables.get("orders"), tables.get("customers")
    reads_base = wanted("customer_base") or any(wanted(n, "customer_acquired_on") for n in tables)
    reads_first_order = wanted("completed_orders", "customer_first_order_on")
    spans = None
    if orders is not None and (reads_base or reads_first_order):
        spans = order_spans(orders, as_of)
    frames = {name: frame for name, frame in tables.items() if wanted(name)}
    if reads_base:
        base, churn_source = customer_base(customers_table, orders, as_of, settings, spans)
        if churn_source is not None or base.height:
            frames["customer_base"] = base
    else:  # dimensions only: the customers that customer_base would keep, without its passes
        churn_source = churn_source_of(customers_table, orders)
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
    if orders is not None and wanted("completed_orders"):
        frames["completed_orders"] = completed_orders(orders, end_of(as_of))
        customers["completed_orders"] = base
        if spans is not None and reads_first_order:
            # the first order comes along in the segment's join (spans cover every buyer)
            first = pl.col("first_order_on").alias("customer_first_order_on")
            customers["completed_orders"] = base.join(
                spans.select("customer_id", first), on="customer_id", how="full", coalesce=True
            )
            columns["completed_orders"] = {"customer_first_order_on": "customer_first_order_on"}
    if orders is not None and wanted("placed_orders"):
        frames["placed_orders"] = placed_orders(orders, end_of(as_of))
        customers["placed_orders"] = base
    forecast = None
    if orders is not None and (wanted("customer_rfm") or wanted("customer_clv")):
        rfm_table = rfm(orders, tables.get("customers"), as_of, settings)
        snapshot = pl.lit(as_of).alias("snapshot_on")
        if wanted("customer_rfm"):
            frames["customer_rfm"] = rfm_table.with_columns(snapshot)
        if wanted("customer_clv"):
            forecast = clv_forecast(rfm_table, settings)
            frames["customer_clv"] = forecast.table.with_columns(snapshot)
    if "calls" in tables and "agent_shifts" in tables and wanted("shift_utilization"):
        frames["shift_utilization"] = shift_utilization(tables["calls"], tables["agent_shifts"])
    deals = tables.get("deals")
    if (
        "trainings" in tables
        and deals is not None
        and {"rep", "closed_at", "amount"} <= set(deals.columns)
        and wanted("training_results")
    ):
        frames["training_results"] = training_results(
            tables["trainings"], deals, as_of, settings["training_window_days"]
        )
    if "campaigns" in tables and wanted("campaign_results"):
        frames["campaign_results"] = campaign_results(
            tables["campaigns"], tables.get("campaign_members"), tables.get("spend"), as_of
        )
    reps = tables.get("reps")
    return (
        {
            name: resolve_dimensions(
                name, frame, dimensions, customers.get(name, base), reps, columns.get(name)
            )
            for name, frame in frames.items()
            if wanted(name) or name == "customer_base"
        },
        churn_source,
        forecast,
    )


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


def compute(tables: Mapping[str, pl.DataFrame], options: ComputeOptions) -> ComputeResult:
    """Compute the requested metrics (default: all) into DESIGN.md's tidy long table."""
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
    # The default as-of is the latest anchor date of any metric in the data, whatever metrics
    # were asked for, so that --metrics never moves the periods.
    every = [m.name for m in REGISTRY.metrics.values()]
    table_anchors = {
        (VIEW_TABLES.get(t, t), a)
        for t, a in _anchors(every)
        if VIEW_TABLES.get(t, t) in tables and a in tables[VIEW_TABLES.get(t, t)].columns
    }
    low, high = _date_range(tables, table_anchors, options.as_of)
    as_of = options.as_of or high
    if as_of is None:
        raise ConfigError("as-of: the inputs hold no dated rows; give --as-of")
    reachable = [n for n in wanted if set(REGISTRY[n].requires) <= set(options.dimensions)]
    needed: dict[str, set[str]] = {}
    for name in REGISTRY.order(reachable):
        for table, read in REGISTRY[name].table_columns.items():
            needed.setdefault(table, set()).update(read)
    if "rep_adoption" in needed:  # its reps own deals or customers
        needed.setdefault("customer_base", set())
    sources, churn_source, forecast = prepare_sources(
        tables, as_of, settings, options.dimensions, needed
    )
    frames = {name: s.frame for name, s in sources.items()}
    # Adoption needs who logged activities and who owns deals or customers: reps on both sides.
    with_rep = {n for n, f in (*tables.items(), *frames.items()) if "rep" in f.columns}
    adoption_inputs = (
        "rep_adoption" in needed
        and "activities" in with_rep
        and bool({"deals", "customer_base"} & with_rep)
    )
    if adoption_inputs:  # built once the periods are known; its columns are fixed
        frames["rep_adoption"] = pl.DataFrame(
            schema=dict.fromkeys(VIEW_COLUMNS["rep_adoption"], pl.String)
        )
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
    names, skipped, aliases = plan(
        wanted, frames, {**settings, "churn_source": churn_source}, unavailable
    )
    for name in wanted:
        absent = [d for d in REGISTRY[name].requires if d not in options.dimensions]
        if absent:
            skipped[name] = f"written only at grains with {', '.join(absent)} (--by)"
    all_anchors = {(t, a) for t, a in _anchors(names) if t in frames}
    low, _ = _date_range(frames, all_anchors, as_of)
    periods = options.calendar.periods(low or as_of, as_of)
    _check_period_count(periods, options.calendar.grain, settings["max_periods"])
    calendar = options.calendar.table(low or as_of, as_of)
    if adoption_inputs:
        base_frame = frames.get("customer_base")
        adoption = rep_adoption(
            calendar, periods, as_of, tables.get("activities"), tables.get("deals"), base_frame
        )
        sources["rep_adoption"] = resolve_dimensions(
            "rep_adoption", adoption, options.dimensions, None, tables.get("reps")
        )
    columns = {name: frozenset(source.frame.columns) for name, source in sources.items()}
    ctx = Context(settings, as_of, _periods_per_year(options.calendar, periods), columns)
    planned = [REGISTRY[n] for n in names]
    backend = engine_named(options.engine, options.spark_master)
    run = _Computation(sources, backend, calendar, ctx, options.dimensions, planned)
    periods = periods.with_columns(
        ((pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1)
        .cast(pl.Float64)
        .alias("__period_days"),
        options.calendar.year_before(pl.col("period")).alias("__year_before"),
    )
    outputs: list[pl.DataFrame] = []
    grain_skips: dict[str, list[str]] = {}
    by_grain: dict[tuple[str, ...], dict[str, pl.DataFrame]] = {}
    # Without a dated row up to as-of there is no period to report: an empty table, not zeros.
    for dims in grains(options.dimensions) if low is not None else []:
        grain = _Grain(dims)
        results, missing = _compute_grain(run, names, aliases, grain, periods, by_grain)
        by_grain[dims] = results
        for name in missing:
            if name in wanted:
                grain_skips.setdefault(name, []).append(grain_name(dims))
        outputs.extend(
            _long(frame, REGISTRY[name], grain, options.dimensions)
            for name, frame in results.items()
            if REGISTRY[name].output and name in wanted
        )
    kpis = _finish(outputs, periods, options.dimensions)
    computed = sorted({n for n in names if n in wanted and n not in skipped})
    return ComputeResult(
        kpis,
        as_of,
        computed,
        {k: v for k, v in skipped.items() if k in wanted},
        grain_skips,
        forecast,
    )


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
    run: _Computation,
    names: list[str],
    aliases: Mapping[str, str],
    grain: _Grain,
    periods: pl.DataFrame,
    by_grain: Mapping[tuple[str, ...], Mapping[str, pl.DataFrame]],
) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Every metric at one grain; those the grain's dimensions cannot reach are listed."""
    results: dict[str, pl.DataFrame] = {}
    missing: list[str] = []
    single_pass: dict[tuple[str, str], list[Simple]] = {}
    for name in names:
        metric = REGISTRY[name]
        if (
            isinstance(metric, Simple)
            and metric.agg not in _TWO_PASS
            and set(grain.dims) <= run.sources[metric.table].dimensions
        ):
            single_pass.setdefault((metric.table, metric.anchor), []).append(metric)
    aggregated = {key: run.simple(group, grain) for key, group in single_pass.items()}
    observed: dict[str, list[pl.DataFrame]] = {}
    for (table, _), frame in aggregated.items():
        observed.setdefault(table, []).append(frame.select(grain.keys[1:]))
    tuples = {
        t: (pl.concat(f).unique() if grain.dims else pl.DataFrame()) for t, f in observed.items()
    }

    def grid(table: str) -> pl.DataFrame:
        index = periods.select(pl.col(KEY))
        if not grain.dims:
            return index
        seen = tuples.get(table)
        if seen is None or seen.height == 0:
            return index.clear().join(
                pl.DataFrame(schema={k: pl.String for k in grain.keys[1:]}), how="cross"
            )
        return index.join(seen, how="cross")

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
        if isinstance(metric, Simple) and metric.agg in _TWO_PASS:
            values = run.entities(metric, grain)
            frame = _metric_frame(
                values.with_columns(pl.col(KEY).cast(pl.Int32)), grid(metric.table), metric, grain
            )
        elif isinstance(metric, Simple):
            values = aggregated[(metric.table, metric.anchor)]
            frame = _metric_frame(
                values.with_columns(pl.col(KEY).cast(pl.Int32)), grid(metric.table), metric, grain
            )
        elif isinstance(metric, Stock):
            net = run.stock(metric, grain)
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
            columns: dict[str, pl.Expr | None] = {
                i: pl.col(f"value_{k}") for k, i in enumerate(present)
            }
            columns.update({i: None for i in metric.inputs if i not in results})
            frame = combined.select(
                *grain.keys,
                _as_expr(metric.compute(columns, run.ctx)).cast(pl.Float64).alias("value"),
                pl.lit(None, pl.Float64).alias("numerator"),
                pl.lit(None, pl.Float64).alias("denominator"),
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
    frame: pl.DataFrame, metric: Metric, grain: _Grain, dimensions: Sequence[str]
) -> pl.DataFrame:
    return frame.select(
        pl.col(KEY),
        pl.lit(grain_name(grain.dims)).alias("grain"),
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
    outputs: list[pl.DataFrame], periods: pl.DataFrame, dimensions: Sequence[str]
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
    long = pl.concat(outputs) if outputs else pl.DataFrame(schema=schema)
    series = ["grain", *dims, "metric"]
    long = (
        long.sort(KEY)
        .with_columns(pl.col("value").shift(1).over(series, order_by=KEY).alias("previous_value"))
        .with_columns((pl.col("value") - pl.col("previous_value")).alias("change"))
    )
    grain_order = {grain_name(g): i for i, g in enumerate(grains(dimensions))}
    long = long.join(periods, on=KEY, how="left").with_columns(
        pl.col("grain").replace_strict(grain_order, return_dtype=pl.Int32).alias("__grain_order")
    )
    long = long.sort([KEY, "__grain_order", *dims, "metric"], nulls_last=False)
    return long.select(*OUTPUT_COLUMNS, *dims, *VALUE_COLUMNS)

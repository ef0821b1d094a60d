"""The run's aggregation plan: which passes over which source, at which grain, for which metrics.

Every pass is a narwhals lazy frame over the engine's own frames, and the engine executes a
source's passes at once (on Polars, `pl.collect_all`: the rows they share are placed in their
periods once, and both cores are busy). Per source and anchor:

- one `rows` pass at the finest grain of the run carries every metric's parts; coarser grains
  take the additive parts (counts, sums, a mean's sum and count) from it by summing;
- a median has no exact rollup, and a distinct count (of values, `entities` or `retained`
  entities, a second step per entity) has one only where the dimensions dropped are decided by
  the entity counted (a customer's segment, looked up by customer_id): such a grain sums a finer
  one's parts, every other grain gets a pass of its own;
- a stock's net openings are sums: one pass per event (opened, closed) at the finest grain.

Nothing here knows the engine: the plan is the same on Polars, DuckDB or a Spark-like backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.engines import Engine, Frame
from crmkpi.exact import EXACT, exact_sum
from crmkpi.metrics.base import Context, Metric, Simple, Stock
from crmkpi.metrics.reductions import VALUE, distinct

KEY = "period_index"
NONE_LABEL = "(none)"
_EXACT = pl.Decimal(EXACT.precision, EXACT.scale)  # for the small frames summed in Polars


@dataclass(frozen=True)
class Grain:
    """A breakdown: the total (no dimensions) or a combination of the run's dimensions."""

    dims: tuple[str, ...]

    @property
    def keys(self) -> list[str]:
        return [KEY, *(f"dim:{d}" for d in self.dims)]

    @property
    def name(self) -> str:
        return "+".join(self.dims) if self.dims else "total"


def grains(dimensions: Sequence[str]) -> list[Grain]:
    """The total plus every combination of the breakdown dimensions, coarse to fine."""
    return [
        Grain(combo)
        for size in range(len(dimensions) + 1)
        for combo in itertools.combinations(dimensions, size)
    ]


# --- sources ------------------------------------------------------------------------------------


@dataclass
class Source:
    """A table or view as the engine's lazy frame, with a `dim:NAME` column per dimension it
    supplies (nulls as (none))."""

    name: str
    frame: nw.LazyFrame[Any]
    schema: Mapping[str, pl.DataType]  # the Polars types of its columns
    dimensions: set[str]
    # dimension -> the source column whose value decides it on every row: the dimension's own
    # column, customer_id for a segment looked up by customer, rep for a team looked up by rep
    decided_by: Mapping[str, str] = field(default_factory=dict)


# Columns named like a dimension that mean something else in their table (a spend or budget
# category is the kind of spend, not a product category).
NOT_DIMENSIONS = {"spend": ("category",), "budgets": ("category",)}


def _dimension_column(name: str, columns: Collection[str], table: str) -> str | None:
    if name in NOT_DIMENSIONS.get(table, ()):
        return None
    # a campaign is its campaign_id: members, campaigns (campaign_results), leads and spend
    candidates = {"source": ("source", "lead_source"), "campaign": ("campaign_id",)}.get(
        name, (name,)
    )
    return next((c for c in candidates if c in columns), None)


def resolve_dimensions(
    name: str,
    frame: Frame,
    wanted: Sequence[str],
    customers: pl.DataFrame | None,
    reps: pl.DataFrame | None,
    engine: Engine,
    customer_columns: Mapping[str, str] | None = None,
    on_engine: nw.LazyFrame[Any] | None = None,
) -> Source:
    """Attach each wanted dimension: the table's own column wins as a whole column; else
    segment/region through customer_id, team through rep, as left joins in the plan.
    `customer_columns` (name in the source: column of `customers`) come along in the same
    customer join. `on_engine`: the frame as the engine's plan already (a view built over the
    engine's tables), else the engine takes `frame`."""
    supplied: set[str] = set()
    decided_by: dict[str, str] = {}
    columns: dict[str, nw.Expr] = {}
    from_customers = dict(customer_columns or {})
    lazy = engine.lazy(frame) if on_engine is None else on_engine
    # the schema follows from the inputs' own: no engine is asked (a Spark-like one would
    # have to analyse the plan)
    schema: dict[str, Any] = dict(frame.collect_schema())
    for dimension in wanted:
        own = _dimension_column(dimension, schema, name)
        if own is not None:
            columns[dimension] = nw.col(own)
            decided_by[dimension] = own
            supplied.add(dimension)
        elif (
            dimension in ("segment", "region")
            and customers is not None
            and "customer_id" in schema
            and dimension in customers.columns
            and customers[dimension].is_not_null().any()
        ):
            from_customers[f"__{dimension}"] = dimension
            columns[dimension] = nw.col(f"__{dimension}")
            decided_by[dimension] = "customer_id"  # customers' customer_id is unique
            supplied.add(dimension)
        elif (
            dimension == "team" and reps is not None and "team" in reps.columns and "rep" in schema
        ):
            teams = reps.select("rep", pl.col("team").alias("__team"))
            lazy = lazy.join(engine.lazy(teams), on="rep", how="left")
            schema["__team"] = teams.schema["__team"]
            columns[dimension] = nw.col("__team")
            decided_by[dimension] = "rep"  # reps' rep is unique
            supplied.add(dimension)
    if from_customers and customers is not None and "customer_id" in schema:
        looked_up = customers.select(
            "customer_id", *(pl.col(c).alias(new) for new, c in from_customers.items())
        )
        lazy = lazy.join(engine.lazy(looked_up), on="customer_id", how="left")
    lazy = lazy.with_columns(
        e.cast(nw.String).fill_null(NONE_LABEL).alias(f"dim:{d}") for d, e in columns.items()
    )
    if customers is not None and "customer_id" in schema:
        schema.update({new: customers.schema[c] for new, c in from_customers.items()})
    schema.update({f"dim:{d}": pl.String for d in columns})
    helpers = [c for c in schema if c.startswith("__")]
    lazy = lazy.drop(helpers)
    kept = {c: t for c, t in schema.items() if c not in helpers}
    return Source(name, lazy, kept, supplied, decided_by)


def present(declared: Collection[str], columns: Collection[str]) -> list[str]:
    """The declared columns a source has; `profile_*` stands for every column so named."""
    prefixes = tuple(c[:-1] for c in declared if c.endswith("*"))
    return sorted(c for c in columns if c in declared or (prefixes and c.startswith(prefixes)))


def _date(source: Source, column: str) -> nw.Expr:
    is_datetime = isinstance(source.schema[column], pl.Datetime)
    return nw.col(column).dt.date() if is_datetime else nw.col(column)


def _left_join(
    left: nw.LazyFrame[Any], right: nw.LazyFrame[Any], on: Sequence[str]
) -> nw.LazyFrame[Any]:
    """`left.join(right, on, how="left")` through plain key names: SQLFrame (4.10) cannot
    join on a name that needs quoting, such as the grain keys `dim:segment`."""
    plain = {key: f"__key{i}" for i, key in enumerate(on)}
    joined = left.rename(plain).join(right.rename(plain), on=list(plain.values()), how="left")
    return joined.rename({v: k for k, v in plain.items()})


# --- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pass:
    """One aggregation the run executes."""

    kind: str  # "rows", "entities", "retained", "stock" or "cells"
    source: str
    anchor: str
    grain: Grain
    metrics: tuple[str, ...]
    # the coarser grains whose additive parts are sums of this pass's
    rolls_up_to: tuple[Grain, ...] = ()


def _finest(source: Source, dimensions: Sequence[str]) -> Grain:
    """The run's finest grain that the source's dimensions reach."""
    return Grain(tuple(d for d in dimensions if d in source.dimensions))


def _reaches(source: Source, grain: Grain) -> bool:
    return set(grain.dims) <= source.dimensions


def _donors(
    source: Source, finest: Grain, coarser: Sequence[Grain], entity: str | None
) -> dict[Grain, Grain | None]:
    """For each coarser grain of a metric counting distinct `entity` values, the grain whose
    parts it sums (None: it needs a pass of its own). The sum is exact by construction when
    every dimension the finer grain adds is decided by the entity itself (a customer's segment
    when the segment is looked up by customer_id): each entity then lies in one finer cell of
    the coarser cell. Grains are taken fine to coarse, so a grain with a pass of its own can
    serve coarser ones (total from segment when segment+rep cannot)."""
    decided = {
        d for d, column in source.decided_by.items() if entity is not None and column == entity
    }
    computed = [finest]
    donors: dict[Grain, Grain | None] = {}
    for grain in sorted(coarser, key=lambda g: -len(g.dims)):
        dims = set(grain.dims)
        donor = next(
            (finer for finer in computed if dims < set(finer.dims) <= dims | decided), None
        )
        donors[grain] = donor
        if donor is None:
            computed.append(grain)
    return donors


@dataclass
class Plan:
    """The passes of one run, and the small frames they give once executed."""

    sources: Mapping[str, Source]
    calendar: pl.DataFrame  # date, period_index, period_start, period_end
    ctx: Context
    dimensions: tuple[str, ...]
    metrics: Sequence[Metric]
    engine: Engine
    # table -> the anchors whose placed rows make its cells (see `cells`): those of every
    # computable metric on it, not only the planned ones, so a metric alone has its grid
    cell_anchors: Mapping[str, Collection[str]] = field(default_factory=dict)
    passes: list[Pass] = field(default_factory=list)
    # (metric, grain) -> the finer grain whose parts sum to the metric's at that grain
    rolled: dict[tuple[str, Grain], Grain] = field(default_factory=dict)
    _results: dict[Pass, pl.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._calendar_lazy = self.engine.lazy(self.calendar)
        self._facts: dict[tuple[str, str], nw.LazyFrame[Any]] = {}
        run_grains = grains(self.dimensions)
        groups: dict[tuple[str, str], list[Simple]] = {}
        for metric in self.metrics:
            if isinstance(metric, Simple) and metric.reduction.passes == "rows":
                groups.setdefault((metric.table, metric.anchor), []).append(metric)
        for (table, anchor), group in groups.items():
            source = self.sources[table]
            finest = _finest(source, self.dimensions)
            coarser = tuple(g for g in run_grains if _reaches(source, g) and g != finest)
            names = tuple(m.name for m in group)
            self.passes.append(Pass("rows", table, anchor, finest, names, coarser))
            own: dict[Grain, list[str]] = {g: [] for g in coarser}
            for metric in group:
                if not metric.reduction.additive:
                    donors = _donors(source, finest, coarser, metric.counted_entity)
                    for grain, donor in donors.items():
                        self._place(metric.name, grain, donor, own)
            self.passes.extend(
                Pass("rows", table, anchor, g, tuple(served)) for g, served in own.items() if served
            )
        for table, anchors in sorted(self.cell_anchors.items()):
            source = self.sources[table]
            self.passes.extend(
                Pass("cells", table, anchor, g, ())
                for anchor in sorted(anchors)
                for g in run_grains
                if g.dims and _reaches(source, g)
            )
        for metric in self.metrics:
            if isinstance(metric, Simple) and metric.reduction.passes != "rows":
                source = self.sources[metric.table]
                finest = _finest(source, self.dimensions)
                coarser = tuple(g for g in run_grains if _reaches(source, g) and g != finest)
                own = {g: [] for g in (finest, *coarser)}
                own[finest].append(metric.name)
                for grain, donor in _donors(source, finest, coarser, metric.counted_entity).items():
                    self._place(metric.name, grain, donor, own)
                self.passes.extend(
                    Pass(metric.reduction.passes, metric.table, metric.anchor, g, (metric.name,))
                    for g in run_grains
                    if own.get(g)
                )
            elif isinstance(metric, Stock):
                source = self.sources[metric.table]
                finest = _finest(source, self.dimensions)
                coarser = tuple(g for g in run_grains if _reaches(source, g) and g != finest)
                self.passes.append(
                    Pass("stock", metric.table, metric.opened, finest, (metric.name,), coarser)
                )

    def _place(
        self, metric: str, grain: Grain, donor: Grain | None, own: dict[Grain, list[str]]
    ) -> None:
        """The metric at `grain` is summed from `donor`, else computed by a pass of its own."""
        if donor is None:
            own[grain].append(metric)
        else:
            self.rolled[(metric, grain)] = donor

    # --- building ------------------------------------------------------------------------------

    def _source_facts(self, table: str, anchor: str) -> nw.LazyFrame[Any]:
        """The source's rows placed in their periods by the anchor (rows outside the grid fall
        out), with every column any pass of this source and anchor reads: one shared sub-plan,
        so that the engine places the rows once for all of them."""
        key = (table, anchor)
        if key not in self._facts:
            source = self.sources[table]
            declared = {anchor}
            for metric in self.metrics:
                if isinstance(metric, Simple) and (metric.table, metric.anchor) == key:
                    declared.update(metric.table_columns[table], metric.optional_columns)
            keep = present(declared, source.schema)
            dims = [f"dim:{d}" for d in self.dimensions if d in source.dimensions]
            placed = source.frame.select(*keep, *dims, _date(source, anchor).alias("__date"))
            self._facts[key] = placed.join(
                self._calendar_lazy, left_on="__date", right_on="date", how="inner"
            )
        return self._facts[key]

    def _metric(self, name: str) -> Any:
        return next(m for m in self.metrics if m.name == name)

    def _build(self, step: Pass) -> nw.LazyFrame[Any]:
        if step.kind == "stock":
            raise ValueError("stock passes are built per event")  # see _stock_events
        facts = self._source_facts(step.source, step.anchor)
        keys = step.grain.keys
        if step.kind == "cells":
            return facts.select(keys[1:]).unique()
        if step.kind == "rows":
            aggregates: list[nw.Expr] = []
            for name in step.metrics:
                metric = self._metric(name)
                reduce = metric.reduction.aggregate
                parts = reduce(metric.value_expr(self.ctx), metric.condition(self.ctx))
                aggregates.extend(
                    e.alias(name + p) for e, p in zip(parts, metric.reduction.parts, strict=True)
                )
            return facts.group_by(keys).agg(*aggregates)
        metric = self._metric(step.metrics[0])
        condition = metric.condition(self.ctx)
        if condition is not None:
            facts = facts.filter(condition)
        if step.kind == "entities":
            per_entity = facts.group_by([*keys, metric.entity]).agg(
                distinct(nw.col(metric.column)).alias("__per_entity")
            )
            qualifies = metric.having(nw.col("__per_entity"), self.ctx).cast(nw.Int64)
            return per_entity.group_by(keys).agg(qualifies.sum().alias(metric.name + VALUE))
        # retained: present in a cell and in the same cell one period earlier
        present_ = facts.select(*keys, metric.entity).unique()
        earlier = present_.with_columns((nw.col(KEY) + 1).alias(KEY), nw.lit(1).alias("__was"))
        both = _left_join(
            earlier, present_.with_columns(nw.lit(1).alias("__is")), [*keys, metric.entity]
        )
        num, den = metric.reduction.parts
        return both.group_by(keys).agg(
            nw.col("__is").fill_null(0).sum().alias(metric.name + num),
            nw.len().alias(metric.name + den),
        )

    def _stock_events(self, step: Pass) -> list[nw.LazyFrame[Any]]:
        """Openings (+) and closings (-) per cell, counted or summed up to as-of; openings
        before the grid fall in period -1."""
        metric: Stock = self._metric(step.metrics[0])
        source = self.sources[metric.table]
        total = exact_sum(metric.value(self.ctx)) if metric.value else nw.len()
        declared = {*metric.table_columns[metric.table], *metric.optional_columns}
        keep = present(declared, source.schema)
        events = [(metric.opened, 1, metric.where)]
        if metric.closed is not None:
            events.append((metric.closed, -1, metric.closed_where))
        plans = []
        for column, sign, where in events:
            selected = source.frame.select(
                *keep, *(f"dim:{d}" for d in step.grain.dims), _date(source, column).alias("__d")
            )
            lazy = selected.filter(~nw.col("__d").is_null() & (nw.col("__d") <= self.ctx.as_of))
            for rule in (metric.where, where):
                if rule is not None:
                    lazy = lazy.filter(rule(self.ctx))
            lazy = lazy.join(
                self._calendar_lazy.select("date", KEY), left_on="__d", right_on="date", how="left"
            ).with_columns(nw.col(KEY).fill_null(-1))
            plans.append(lazy.group_by(step.grain.keys).agg((total * sign).alias("__net")))
        return plans

    # --- executing -----------------------------------------------------------------------------

    def execute(self) -> None:
        """Every pass, executed by the engine source by source: the passes of a source share
        its placed rows, which the engine computes once for them; different sources share
        nothing, and executing all of them at once only makes them compete for the cores and
        the memory (on 10M orders: 67 s and 14.2 GB peak at once, 31 s and 11.7 GB by source)."""
        by_source: dict[str, list[tuple[Pass, nw.LazyFrame[Any]]]] = {}
        for step in self.passes:
            built = by_source.setdefault(step.source, [])
            if step.kind == "stock":
                built.extend((step, p) for p in self._stock_events(step))
            else:
                built.append((step, self._build(step)))
        stock: dict[Pass, list[pl.DataFrame]] = {}
        for built in by_source.values():
            frames = self.engine.collect_all([p for _, p in built])
            for (step, _), frame in zip(built, frames, strict=True):
                if step.kind != "cells":
                    frame = frame.with_columns(pl.col(KEY).cast(pl.Int32))
                if step.kind == "stock":
                    net = frame.with_columns(pl.col("__net").cast(_EXACT))
                    stock.setdefault(step, []).append(net)
                else:
                    self._results[step] = frame
        for step, events in stock.items():
            self._results[step] = (
                pl.concat(events).group_by(step.grain.keys).agg(pl.col("__net").sum())
            )

    def _find(self, kind: str, source: str, anchor: str, grain: Grain, metric: str) -> Any:
        """The executed pass serving `metric` at `grain`, and whether it is a rollup."""
        for step in self.passes:
            if (step.kind, step.source, step.anchor) == (kind, source, anchor) and (
                metric in step.metrics
            ):
                if step.grain == grain:
                    return step, False
                if grain in step.rolls_up_to and (
                    kind == "stock" or self._metric(metric).reduction.additive
                ):
                    return step, True
        return None, False

    def rows(self, metrics: Sequence[Simple], grain: Grain) -> pl.DataFrame:
        """Every part of a source and anchor's `rows` metrics at one grain: the finest pass's
        own, or its additive parts summed and the grain's own pass for the others."""
        first = metrics[0]
        passes = [
            s
            for s in self.passes
            if (s.kind, s.source, s.anchor) == ("rows", first.table, first.anchor)
        ]
        finest = passes[0]  # the first planned for a source and anchor: see __post_init__
        if finest.grain == grain:
            return self._results[finest]
        summed: dict[Grain, list[str]] = {}  # finer grain -> the parts summed from it
        for metric in metrics:
            donor = (
                finest.grain if metric.reduction.additive else self.rolled.get((metric.name, grain))
            )
            if donor is not None:
                summed.setdefault(donor, []).extend(metric.name + p for p in metric.reduction.parts)
        parts = [
            self._results[next(s for s in passes if s.grain == donor)]
            .group_by(grain.keys)
            .agg(pl.col(columns).sum())
            for donor, columns in summed.items()
        ]
        parts.extend(self._results[s] for s in passes if s.grain == grain)
        result = parts[0]
        for part in parts[1:]:
            result = result.join(part, on=grain.keys, how="full", coalesce=True)
        return result

    def cells(self, table: str, grain: Grain) -> pl.DataFrame | None:
        """The table's breakdown cells at a grain: the dimension values its rows placed in the
        run's periods have, by any anchor of `cell_anchors` (None: it has none)."""
        found = [
            self._results[s]
            for s in self.passes
            if (s.kind, s.source, s.grain) == ("cells", table, grain)
        ]
        return pl.concat(found).unique() if found else None

    def entities(self, metric: Simple, grain: Grain) -> pl.DataFrame:
        donor = self.rolled.get((metric.name, grain))
        step, _ = self._find(
            metric.reduction.passes, metric.table, metric.anchor, donor or grain, metric.name
        )
        if donor is None:
            return self._results[step]
        parts = [metric.name + p for p in metric.reduction.parts]
        return self._results[step].group_by(grain.keys).agg(pl.col(parts).sum())

    def stock(self, metric: Stock, grain: Grain) -> pl.DataFrame:
        """Net openings per cell: found at the finest grain, summed per grain, in decimals."""
        step, rolled = self._find("stock", metric.table, metric.opened, grain, metric.name)
        net = self._results[step]
        if rolled:
            net = net.group_by(grain.keys).agg(pl.col("__net").sum())
        return net.with_columns(pl.col("__net").cast(pl.Float64))

    # --- explaining ----------------------------------------------------------------------------

    def explain(self) -> str:
        """The passes per source: their grains and the metrics each serves."""
        lines = []
        by_source: dict[tuple[str, str], list[Pass]] = {}
        for step in self.passes:
            by_source.setdefault((step.source, step.anchor), []).append(step)
        for (source, anchor), steps in sorted(by_source.items()):
            lines.append(f"{source} by {anchor}: {len(steps)} pass(es)")
            for step in steps:
                rolled = (
                    f"; additive parts rolled up to {', '.join(g.name for g in step.rolls_up_to)}"
                    if step.rolls_up_to
                    else ""
                )
                lines.append(
                    f"  {step.kind} at {step.grain.name}{rolled}: {', '.join(step.metrics)}"
                )
            lines.extend(self._explain_sums(source, anchor))
        return "\n".join(lines)

    def _explain_sums(self, source: str, anchor: str) -> list[str]:
        """The distinct counts summed from a finer grain instead of a pass of their own."""
        sums: dict[tuple[Grain, Grain], list[str]] = {}
        for (name, grain), donor in self.rolled.items():
            metric = self._metric(name)
            if (metric.table, metric.anchor) == (source, anchor):
                sums.setdefault((grain, donor), []).append(name)
        lines = []
        for (grain, donor), names in sums.items():
            added = sorted(set(donor.dims) - set(grain.dims))
            entity = self._metric(names[0]).counted_entity
            lines.append(
                f"  summed at {grain.name} from {donor.name} ({', '.join(added)} decided by "
                f"{entity}): {', '.join(names)}"
            )
        return lines

"""Metric types and the registry.

The types are a closed set (after dbt MetricFlow): `Simple` (one aggregate over one table, with
an optional row condition written as when/then so that every simple metric of a table, anchor
and grain folds into one group_by), `Ratio` (two simple metrics divided after grouping, at every
grain), `Derived` (a function of other metrics at the same grain), `Stock` (entities or amounts
open at a period boundary) and `Growth` (a metric against the previous period or the same period
a year before). A metric is declared once; docs, the CLI listing and the workbook dictionary are
generated from these declarations.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw

from crmkpi.metrics.reductions import REDUCTIONS, Reduction

FAMILIES = ("sales", "customers", "service", "callcentre", "marketing", "quality")
UNITS = (
    "count",
    "currency",
    "ratio",
    "days",
    "hours",
    "minutes",
    "seconds",
    "score",
    "points",
    "months",
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Context:
    """What a metric's expressions may depend on: the settings in force and the as-of date."""

    settings: Mapping[str, Any]
    as_of: dt.date
    periods_per_year: float = 4.0
    columns: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def has(self, table: str, column: str) -> bool:
        """Whether a source supplies a column a metric may use when present (declared in its
        `optional_columns`)."""
        return column in self.columns.get(table, frozenset())

    @property
    def as_of_end(self) -> dt.datetime:
        """The first instant after as-of: events at or after it have not happened yet."""
        return dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time())


ExprFn = Callable[[Context], nw.Expr]


@dataclass(frozen=True, kw_only=True)
class Metric:
    """What every metric declares."""

    name: str
    title_en: str
    title_zh: str
    family: str
    unit: str
    formula: str
    higher_is_better: bool | None = True
    settings: tuple[str, ...] = ()
    output: bool = True  # False for parts that exist only to build other metrics
    # Another metric whose result stands in for this one when this one cannot be computed
    # (e.g. sales growth from won deals when there are no orders).
    fallback: str | None = None
    # (setting, value, metric): when the setting has that value, that metric's result is used.
    variant: tuple[str, Any, str] | None = None
    # Dimensions every grain of this metric must include (e.g. category for penetration).
    requires: tuple[str, ...] = ()

    @property
    def alternatives(self) -> tuple[str, ...]:
        """Metrics that may stand in for this one."""
        names = []
        if self.variant:
            names.append(self.variant[2])
        if self.fallback:
            names.append(self.fallback)
        return tuple(names)

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the metrics this one is computed from."""
        return ()

    @property
    def table_columns(self) -> Mapping[str, tuple[str, ...]]:
        """Table -> columns read directly by this metric."""
        return {}


@dataclass(frozen=True, kw_only=True)
class Simple(Metric):
    """One aggregate over rows of `table` placed in periods by `anchor`.

    `value` (default: the column `column`) is aggregated over the rows where `where` holds.
    `count` counts rows; `mean` keeps its sum and count as numerator and denominator;
    `count_entities` counts the `entity` values for which `having` holds of the number of
    distinct `column` values they have in the cell.
    """

    table: str
    anchor: str
    agg: str
    columns: tuple[str, ...] = ()
    column: str | None = None
    value: ExprFn | None = None
    where: ExprFn | None = None
    optional_columns: tuple[str, ...] = ()  # read only when the source has them (see Context.has)
    # (setting, columns): columns needed only while the setting is on (not 0), such as the waits
    # that find short abandons; with it off the metric is computed without them. They are
    # listed in optional_columns too, so that they are read when present.
    setting_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    entity: str | None = None
    having: Callable[[nw.Expr, Context], nw.Expr] | None = None

    @property
    def table_columns(self) -> Mapping[str, tuple[str, ...]]:
        used = {self.anchor, *self.columns}
        if self.column:
            used.add(self.column)
        if self.entity:
            used.add(self.entity)
        return {self.table: tuple(sorted(used))}

    @property
    def reduction(self) -> Reduction:
        return REDUCTIONS[self.agg]

    @property
    def counted_entity(self) -> str | None:
        """The column whose distinct values the metric counts (None: it counts no entities)."""
        if not self.reduction.sums_over_own_entities:
            return None
        if self.reduction.passes == "rows":
            return self.column if self.value is None else None
        return self.entity

    def value_expr(self, ctx: Context) -> nw.Expr:
        if self.value is not None:
            return self.value(ctx)
        if self.column is None:
            return nw.lit(1)
        return nw.col(self.column)

    def condition(self, ctx: Context) -> nw.Expr | None:
        return self.where(ctx) if self.where is not None else None


@dataclass(frozen=True, kw_only=True)
class Ratio(Metric):
    """numerator / denominator, recomputed from the two additive parts at every grain."""

    numerator: str
    denominator: str
    scale: float = 1.0
    # The denominator is taken at the grain without this dimension (shares within a total).
    denominator_without: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.numerator, self.denominator)


@dataclass(frozen=True, kw_only=True)
class Derived(Metric):
    """A function of other metrics' values at the same period and grain."""

    uses: tuple[str, ...]
    compute: Callable[[Mapping[str, Any], Context], Any]
    optional: tuple[str, ...] = ()  # passed as None when they cannot be computed

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.uses + self.optional


@dataclass(frozen=True, kw_only=True)
class Stock(Metric):
    """Entities (or an amount) open at a period boundary: opened on or before it, not closed by
    it. `opened` and `closed` name date columns of `table` (a view such as `customer_base`)."""

    table: str
    opened: str
    closed: str | None  # None: nothing ever closes (e.g. customers on record)
    boundary: str  # "start" or "end"
    columns: tuple[str, ...] = ()
    value: ExprFn | None = None  # summed; None counts entities
    where: ExprFn | None = None  # which rows are entities at all
    closed_where: ExprFn | None = None  # which closing dates count as a closing
    optional_columns: tuple[str, ...] = ()  # read only when the source has them
    # Tables that must be given although `table` (a view) can be built without them: a customer
    # base from orders alone has no profile fields, so their completeness would read 0 %.
    needs_tables: tuple[str, ...] = ()

    @property
    def table_columns(self) -> Mapping[str, tuple[str, ...]]:
        dates = {self.opened} | ({self.closed} if self.closed else set())
        given: dict[str, tuple[str, ...]] = dict.fromkeys(self.needs_tables, ())
        return {**given, self.table: tuple(sorted(dates | set(self.columns)))}


@dataclass(frozen=True, kw_only=True)
class Growth(Metric):
    """(value_t - value_base) / value_base with the base the previous period or a year before."""

    base: str
    lag: str = "previous"  # or "year"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.base,)


@dataclass
class Registry:
    """All metrics by name, checked when built."""

    metrics: dict[str, Metric] = field(default_factory=dict)

    def add(self, *metrics: Metric) -> None:
        for metric in metrics:
            if metric.name in self.metrics:
                raise ValueError(f"metric {metric.name!r} is declared twice")
            self.metrics[metric.name] = metric

    def __getitem__(self, name: str) -> Metric:
        return self.metrics[name]

    def __iter__(self) -> Iterable[Metric]:
        return iter(self.metrics.values())

    def outputs(self) -> list[Metric]:
        return [m for m in self.metrics.values() if m.output]

    def check(
        self,
        table_columns: Mapping[str, Iterable[str]],
        views: Mapping[str, Iterable[str]],
        known_settings: Iterable[str],
    ) -> None:
        """Unique snake_case names, known families/units/aggregates, inputs that exist, no
        cycles, declared columns present in the table contracts, settings that exist."""
        settings = set(known_settings)
        columns = {t: set(c) for t, c in table_columns.items()} | {
            v: set(c) for v, c in views.items()
        }
        for metric in self.metrics.values():
            where = f"metric {metric.name}"
            if not _NAME.match(metric.name):
                raise ValueError(f"{where}: names are snake_case")
            if metric.family not in FAMILIES:
                raise ValueError(f"{where}: unknown family {metric.family!r}")
            if metric.unit not in UNITS:
                raise ValueError(f"{where}: unknown unit {metric.unit!r}")
            if isinstance(metric, Simple) and metric.agg not in REDUCTIONS:
                raise ValueError(f"{where}: unknown aggregate {metric.agg!r}")
            for name in (*metric.inputs, *metric.alternatives):
                if name not in self.metrics:
                    raise ValueError(f"{where}: input {name!r} is not a metric")
            for table, used in metric.table_columns.items():
                if table not in columns:
                    raise ValueError(f"{where}: unknown table {table!r}")
                missing = set(used) - columns[table]
                if missing:
                    raise ValueError(f"{where}: {table} has no column(s) {sorted(missing)}")
            for setting in metric.settings:
                if setting not in settings:
                    raise ValueError(f"{where}: unknown setting {setting!r}")
        self.order()

    def order(self, names: Iterable[str] | None = None) -> list[str]:
        """The metrics (and everything they need) in dependency order; raises on a cycle."""
        ordered: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                raise ValueError(f"metric cycle: {' -> '.join((*path, name))}")
            state[name] = "visiting"
            for dep in (*self.metrics[name].inputs, *self.metrics[name].alternatives):
                visit(dep, (*path, name))
            state[name] = "done"
            ordered.append(name)

        for name in names if names is not None else self.metrics:
            visit(name, ())
        return ordered

"""How a simple metric's rows reduce to one cell's value, and how cells combine.

This is the one place that says so, as torchmetrics' states carry their reduction: the planner
reads `additive` to roll coarser grains up from the finest one, `passes` to know which
aggregation a metric needs, `parts` and `zero_when_empty` to turn a cell's parts into its value.
A new kind (a percentile, a min or max) is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import narwhals as nw

from crmkpi.exact import exact_sum

VALUE, NUMERATOR, DENOMINATOR = "|val", "|num", "|den"


def distinct(value: nw.Expr) -> nw.Expr:
    """The number of distinct non-null values."""
    return value.n_unique() - (value.null_count() > 0).cast(nw.Int64)


def _guarded(value: nw.Expr, condition: nw.Expr | None) -> nw.Expr:
    return value if condition is None else nw.when(condition).then(value)


def _count(value: nw.Expr, condition: nw.Expr | None) -> list[nw.Expr]:
    return [nw.len() if condition is None else condition.cast(nw.Int64).sum()]


def _sum(value: nw.Expr, condition: nw.Expr | None) -> list[nw.Expr]:
    return [exact_sum(_guarded(value, condition))]


def _mean(value: nw.Expr, condition: nw.Expr | None) -> list[nw.Expr]:
    guarded = _guarded(value, condition)
    return [exact_sum(guarded), guarded.count()]


def _median(value: nw.Expr, condition: nw.Expr | None) -> list[nw.Expr]:
    return [_guarded(value, condition).median()]


def _n_unique(value: nw.Expr, condition: nw.Expr | None) -> list[nw.Expr]:
    return [distinct(_guarded(value, condition))]


@dataclass(frozen=True)
class Reduction:
    """An aggregate kind: the parts one cell carries and how they combine."""

    name: str
    # "rows": one group_by over the rows, shared with the source's other metrics;
    # "entities": per entity first, then the entities that qualify are counted;
    # "retained": entities present in a cell and in the same cell one period earlier.
    passes: str
    # Finer cells' parts sum to a coarser cell's parts: found once at the finest grain.
    additive: bool
    # A cell without rows is 0 (a count), not null (a median of nothing).
    zero_when_empty: bool
    # Counts of distinct entities: where each finer cell holds entities of its own (the
    # dimensions it adds are attributes of the counted entity), a coarser cell's parts are the
    # finer cells' sum. A median is never a sum.
    sums_over_own_entities: bool = False
    parts: tuple[str, ...] = (VALUE,)  # (NUMERATOR, DENOMINATOR): the value is their ratio
    # (value, row condition) -> one expression per part, for the "rows" pass
    aggregate: Callable[[nw.Expr, nw.Expr | None], list[nw.Expr]] | None = None

    @property
    def is_ratio_of_parts(self) -> bool:
        return self.parts == (NUMERATOR, DENOMINATOR)


REDUCTIONS = {
    r.name: r
    for r in (
        Reduction("count", "rows", additive=True, zero_when_empty=True, aggregate=_count),
        Reduction("sum", "rows", additive=True, zero_when_empty=True, aggregate=_sum),
        Reduction(
            "mean",
            "rows",
            additive=True,
            zero_when_empty=False,
            parts=(NUMERATOR, DENOMINATOR),
            aggregate=_mean,
        ),
        Reduction("median", "rows", additive=False, zero_when_empty=False, aggregate=_median),
        Reduction(
            "n_unique",
            "rows",
            additive=False,
            zero_when_empty=True,
            sums_over_own_entities=True,
            aggregate=_n_unique,
        ),
        Reduction(
            "count_entities",
            "entities",
            additive=False,
            zero_when_empty=True,
            sums_over_own_entities=True,
        ),
        Reduction(
            "retained",
            "retained",
            additive=False,
            zero_when_empty=False,
            sums_over_own_entities=True,
            parts=(NUMERATOR, DENOMINATOR),
        ),
    )
}

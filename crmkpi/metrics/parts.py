"""Parts several families build on: spend of some categories, the denominator or numerator of
cost ratios (sales expense, cost per call, CAC, marketing and advertising against budget)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import narwhals as nw

from crmkpi.metrics.base import Simple


def spend_of(name: str, title_en: str, title_zh: str, family: str, *categories: str) -> Simple:
    """Sum of spend rows of the given categories, placed by spent_at (a part, not an output)."""
    return Simple(
        name=name,
        title_en=title_en,
        title_zh=title_zh,
        family=family,
        unit="currency",
        table="spend",
        anchor="spent_at",
        agg="sum",
        column="amount",
        columns=("category",),
        where=lambda ctx: nw.col("category").is_in(categories),
        output=False,
        formula=f"sum of spend of categor{'y' if len(categories) == 1 else 'ies'} "
        + " + ".join(categories),
    )


def simple_on(table: str, family: str, **fixed: Any) -> Callable[..., Simple]:
    """A factory of Simple metrics over one table: `on(name, title_en, title_zh, formula, ...)`
    with the table, family and any `fixed` keys (an anchor, output=False) filled in."""

    def make(name: str, en: str, zh: str, formula: str, **kw: Any) -> Simple:
        return Simple(name=name, title_en=en, title_zh=zh, family=family, table=table,
                      formula=formula, **fixed, **kw)  # fmt: skip

    return make

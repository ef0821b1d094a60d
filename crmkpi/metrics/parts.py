"""Parts several families build on: spend of some categories, the denominator or numerator of
cost ratios (sales expense, cost per call, CAC, marketing and advertising against budget)."""

from __future__ import annotations

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

"""Exact sums: floats added up in whatever order a parallel group_by sees them differ in the
last bits from run to run; sums in a wide decimal are exact, so reruns are byte-identical."""

from __future__ import annotations

import narwhals as nw

EXACT = nw.Decimal(38, 9)  # 29 digits before the point


def exact_sum(value: nw.Expr) -> nw.Expr:
    return value.cast(nw.Float64).cast(EXACT).sum()


def exact_total(value: nw.Expr) -> nw.Expr:
    """`exact_sum` back as a float, for the views whose sums metrics sum again."""
    return exact_sum(value).cast(nw.Float64)

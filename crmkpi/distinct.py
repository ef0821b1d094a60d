"""Cheap proof that a column holds no value twice.

Finding the copies of a value takes a hash table of every value; counting distinct 64-bit
hashes takes one parallel pass. As many distinct hashes as values proves there is no copy (a
hash collision can only lower the count), so the expensive search runs only when it can find
something.
"""

from __future__ import annotations

import polars as pl


def surely_distinct(frame: pl.DataFrame, column: str) -> bool:
    """True when no non-null value of `column` occurs twice; False when one may."""
    present = pl.col(column).drop_nulls()
    hashes, values = (
        frame.lazy()
        .select(present.hash(seed=0).n_unique().alias("hashes"), present.len().alias("values"))
        .collect()
        .row(0)
    )
    return bool(hashes == values)

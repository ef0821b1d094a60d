"""Computed columns: `{ expr = "..." }`, a SQL expression over a source file's headers.

Exports carry quantity and unit price but no line total, sales and profit but no cost, call
start and answer times but no wait. The expression is compiled by Polars' own SQL expression
parser (`pl.sql_expr`, never Python `eval`) and must stay a plain per-row expression: no
aggregate, window, subquery or clock, so a row's value depends on that row alone.

The headers it reads are typed before it runs, since a CSV is text: a header that the
expression uses as text (LIKE, a string function, a comparison with a quoted string, a cast to
text) stays text; any other is a number when most of its cells read as numbers, a timestamp when
most read as dates, else text. A cell that does not read as its column's type makes the row's
expression fail (the row is quarantined with that reason), as does a null result for a
required column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from crmkpi.errors import ConfigError
from crmkpi.io.parse import ParseOptions, normalise_text, parse_series

EXPRESSION_INPUT_ERROR = "expression_input_unreadable"
EXPRESSION_NULL = "expression_null"
EXPRESSION_MESSAGES = {
    EXPRESSION_INPUT_ERROR: "a cell the computed column's expression reads is not of its "
    "column's type (a number or a date among text?)",
    EXPRESSION_NULL: "the computed column's expression gives no value for a required column",
}
# nodes of a compiled expression that look beyond the row: aggregates, windows, row counts
_NOT_PER_ROW = {"Agg", "Over", "Len", "Filter", "Sort", "SortBy", "Gather", "Slice", "Explode"}
_CLOCK = re.compile(
    r"\b(now|current_date|current_time|current_timestamp|localtime|localtimestamp|today)\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_TEXT_FUNCTIONS = ("StringExpr",)


@dataclass(frozen=True)
class Expression:
    """A compiled computed column: the Polars expression and the headers it reads."""

    text: str
    expr: pl.Expr
    headers: tuple[str, ...]
    text_headers: frozenset[str]


def compile_expression(text: str, where: str) -> Expression:
    """Compile `text`, or fail (exit 78) naming the config key `where`."""
    if not text.strip():
        raise ConfigError(f"{where}: the expression is empty")
    if _CLOCK.search(_QUOTED.sub("''", text)):
        raise ConfigError(
            f"{where}: the expression reads the clock; results must depend on the inputs and "
            "--as-of only"
        )
    try:
        expr = pl.sql_expr(text)
        tree = json.loads(expr.meta.serialize(format="json"))
    except Exception as exc:  # Polars raises several SQL error types; all mean a bad expr
        raise ConfigError(
            f"{where}: not a SQL expression Polars can read ({_first_line(exc)}); quote "
            'headers as SQL identifiers: "Quantity" * "UnitPrice"'
        ) from exc
    outside = sorted(_NOT_PER_ROW & set(_keys(tree)))
    if outside:
        raise ConfigError(
            f"{where}: only plain per-row expressions are allowed (arithmetic, CASE WHEN, "
            "COALESCE, string and date functions); this one uses an aggregate, window or "
            f"subquery ({', '.join(outside)})"
        )
    headers = tuple(dict.fromkeys(expr.meta.root_names()))
    if not headers:
        raise ConfigError(f"{where}: the expression reads no header; a constant is `value = ...`")
    return Expression(text, expr, headers, frozenset(_text_columns(tree)))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _keys(node: Any) -> Iterator[str]:
    """Node names of a serialised expression (keys, and bare names such as `"Len"`)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def _column_of(node: Any) -> str | None:
    return node.get("Column") if isinstance(node, dict) else None


def _text_columns(node: Any) -> Iterator[str]:
    """Columns the expression itself uses as text: inputs of string functions, one side of a
    comparison with a string literal, the input of a cast to text."""
    if isinstance(node, list):
        for item in node:
            yield from _text_columns(item)
        return
    if not isinstance(node, dict):
        return
    function = node.get("Function")
    if (
        isinstance(function, dict)
        and isinstance(function.get("function"), dict)
        and any(k in function["function"] for k in _TEXT_FUNCTIONS)
    ):
        yield from (c for c in map(_column_of, function.get("input", [])) if c)
    binary = node.get("BinaryExpr")
    if isinstance(binary, dict):
        sides = (binary.get("left"), binary.get("right"))
        if any('"String"' in json.dumps(side) and _column_of(side) is None for side in sides):
            yield from (c for c in map(_column_of, sides) if c)
    cast = node.get("Cast")
    if isinstance(cast, dict) and json.dumps(cast.get("dtype")) in ('{"Literal": "String"}',):
        column = _column_of(cast.get("expr"))
        if column:
            yield column
    for value in node.values():
        yield from _text_columns(value)


def _typed(values: pl.Series, as_text: bool, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    """One header as the expression sees it, with the cells that do not read as its type."""
    none = pl.Series(values.name, [None] * len(values), pl.Boolean)
    if values.dtype != pl.String:
        return values, none
    text = normalise_text(values, options.null_values)
    if as_text:
        return text, none
    filled = text.len() - text.null_count()
    for kind in ("money", "datetime"):
        parsed = parse_series(text, kind, options)
        if filled and parsed.values.len() - parsed.values.null_count() > filled / 2:
            return parsed.values, parsed.errors.is_not_null()
    return text, none


def evaluate(
    expression: Expression, sources: dict[str, pl.Series], options: ParseOptions, where: str
) -> tuple[pl.Series, pl.Series]:
    """The expression's values and an error code per row (null where fine).

    `sources` holds the file's column for each name the expression reads.
    """
    height = next(iter(sources.values())).len() if sources else 0
    typed, unreadable = [], []
    for name in expression.headers:
        values, bad = _typed(sources[name], name in expression.text_headers, options)
        typed.append(values.alias(name))
        unreadable.append(bad.fill_null(False).alias(name))
    inputs = pl.DataFrame(typed)
    try:
        result = inputs.select(expression.expr.alias("value")).to_series()
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(
            f"{where}: the expression cannot be evaluated on this file ({_first_line(exc)}); "
            "use TRY_CAST for cells that may not convert"
        ) from exc
    failed = pl.DataFrame(unreadable).select(pl.any_horizontal(pl.all())).to_series()
    errors = pl.select(pl.when(failed).then(pl.lit(EXPRESSION_INPUT_ERROR))).to_series()
    kept = pl.select(pl.when(failed.not_()).then(result)).to_series()
    assert kept.len() == height
    return kept, errors.cast(pl.String)

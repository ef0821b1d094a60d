"""The table contracts of crmkpi.tables as portable narwhals expressions, for backends pandera
does not run on (Spark): per check, the rows that fail it, named as pandera names the check, so
a quarantine built from them reads like validate.py's. The rules themselves are not repeated
here: column checks come from the pandera models' fields, row rules from `ROW_RULES`."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import narwhals as nw
import polars as pl

from crmkpi.tables import CONTRACTS, ROW_RULE_COLUMN, ROW_RULES

UNIQUENESS = "field_uniqueness"


@dataclass(frozen=True)
class ContractCheck:
    """One check of one column: `fails` is true on the rows that break it, never null."""

    column: str | None
    check: str
    fails: nw.Expr


def _column_check(name: str, check_name: str, statistics: dict[str, object]) -> nw.Expr:
    """The accepting expression of one of pandera's built-in column checks."""
    value = nw.col(name)
    if check_name == "greater_than_or_equal_to":
        return value >= statistics["min_value"]
    if check_name == "less_than_or_equal_to":
        return value <= statistics["max_value"]
    if check_name == "isin":
        allowed = statistics["allowed_values"]
        assert isinstance(allowed, Collection)
        return value.is_in(list(allowed))
    raise NotImplementedError(f"no portable form of pandera's check {check_name}")


def _failing(accepted: nw.Expr) -> nw.Expr:
    """Pandera ignores nulls: a check whose expression is null on a row passes it."""
    return (~accepted).fill_null(False)


def duplicated(key: str) -> nw.Expr:
    """Every copy of a non-null id that occurs more than once (validate's `_duplicate_keys`)."""
    return ~nw.col(key).is_null() & (nw.len().over(key) > 1)


def contract_checks(table: str, present: Collection[str]) -> list[ContractCheck]:
    """The checks of `table`'s contract over the columns `present`, in the order validate.py
    reports them: uniqueness, then column by column, then the row rules."""
    schema = CONTRACTS[table].to_schema()
    columns = {n: c for n, c in schema.columns.items() if n in present}
    checks = [
        ContractCheck(name, UNIQUENESS, duplicated(name))
        for name, column in columns.items()
        if column.unique
    ]
    for name, column in columns.items():
        if not column.nullable:
            missing = nw.col(name).is_null()
            if column.dtype.type == pl.Float64:
                missing = missing | nw.col(name).is_nan().fill_null(False)
            checks.append(ContractCheck(name, "not_nullable", missing))
        for check in column.checks:
            accepted = _column_check(name, check.name, dict(check.statistics or {}))
            checks.append(ContractCheck(name, check.error or check.name, _failing(accepted)))
    for check in schema.checks:
        rule = ROW_RULES[check.name]
        found = re.match(ROW_RULE_COLUMN, check.name)
        column_name = found.group(1) if found else None
        checks.append(ContractCheck(column_name, check.name, _failing(rule(list(present)))))
    return checks

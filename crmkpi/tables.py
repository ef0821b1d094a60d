"""Canonical table contracts: one pandera DataFrameModel per table of KPI_CATALOGUE.md.

A config maps a CRM export's headers and values onto these columns; everything after loading reads
only canonical names. `Optional[...]` columns may be absent from an export; the others are
required (present and non-null) whenever the table is given. Columns beginning with `_` are
crmkpi's own bookkeeping (source file and line) and pass through untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import narwhals as nw
import pandera.polars as pa
import polars as pl

STATUS_DEAL = ["open", "won", "lost"]
STATUS_LEAD = ["open", "converted", "disqualified"]
STATUS_ORDER = ["completed", "cancelled", "refunded"]
ORDER_TYPES = ["new", "repeat", "upsell", "cross_sell"]
DEAL_TYPES = ["new_business", "upsell", "cross_sell", "renewal"]
ACTIVITY_TYPES = ["call", "email", "meeting", "visit", "chat", "other"]
DIRECTIONS = ["inbound", "outbound"]
CALL_OUTCOMES = ["answered", "abandoned", "blocked"]
SURVEY_TYPES = ["csat", "nps", "ad_awareness", "ad_rating"]
SPEND_CATEGORIES = ["marketing", "sales", "advertising", "service"]
INCIDENT_KINDS = ["document_lost", "process_failure", "other"]


# A row rule: from the columns a table has, the expression that is true on the rows it accepts
# (null counts as accepted, as pandera's checks ignore nulls). Written once in narwhals, so
# pandera runs it on Polars and crmkpi.contract_checks on any other backend (Spark).
RowRule = Callable[[Collection[str]], nw.Expr]
# check name -> rule, filled by `_row_rule` as the contracts below are defined
ROW_RULES: dict[str, RowRule] = {}
# the column a row rule's failures are reported under (`closed_at_required_when_...`)
ROW_RULE_COLUMN = r"^(.+?)_(?:required|not_before|on_its|not_negative)"


def _row_rule(name: str) -> Callable[[RowRule], Any]:
    """Register `rule` under `name` and make it the model's pandera dataframe check."""

    def register(rule: RowRule) -> Any:
        ROW_RULES[name] = rule

        def check(cls: Any, data: pa.PolarsData) -> pl.LazyFrame:
            frame = nw.from_native(data.lazyframe)
            accepted = rule(frame.collect_schema().names()).alias("ok")
            native: pl.LazyFrame = frame.select(accepted).to_native()
            return native

        check.__name__ = rule.__name__
        check.__doc__ = rule.__doc__
        return pa.dataframe_check(name=name)(check)

    return register


def _not_before(columns: Collection[str], later: str, earlier: str) -> nw.Expr:
    """Row rule `later >= earlier` (nulls pass: a missing timestamp is not a contradiction)."""
    if not {later, earlier} <= set(columns):
        return nw.lit(True)
    return nw.col(later).is_null() | nw.col(earlier).is_null() | (nw.col(later) >= nw.col(earlier))


def _not_negative_unless_reversed(columns: Collection[str], column: str) -> nw.Expr:
    """Refunded and cancelled orders may carry negative amounts and quantities, as exports
    write them (they never count in revenue); any other order's must be >= 0."""
    if column not in columns:
        return nw.lit(True)
    reversed_order = (
        nw.col("status").is_in(["cancelled", "refunded"]).fill_null(False)
        if "status" in columns
        else nw.lit(False)
    )
    value = nw.col(column)
    return value.is_null() | (value >= 0) | reversed_order


class _Contract(pa.DataFrameModel):
    """Shared settings: extra columns are allowed (reported as drift by the loader)."""

    class Config:
        strict = False
        coerce = False


class _Dimensions(_Contract):
    """Dimension columns any fact table may carry itself (they win over the customer's own)."""

    segment: str | None = pa.Field(nullable=True)
    region: str | None = pa.Field(nullable=True)
    channel: str | None = pa.Field(nullable=True)


class Customers(_Contract):
    customer_id: str = pa.Field(unique=True)
    created_at: dt.datetime | None = pa.Field(nullable=True)
    churned_at: dt.datetime | None = pa.Field(nullable=True)
    churned: bool | None = pa.Field(nullable=True)
    segment: str | None = pa.Field(nullable=True)
    region: str | None = pa.Field(nullable=True)
    industry: str | None = pa.Field(nullable=True)
    rep: str | None = pa.Field(nullable=True)
    acquisition_channel: str | None = pa.Field(nullable=True)
    name: str | None = pa.Field(nullable=True)
    email: str | None = pa.Field(nullable=True)
    phone: str | None = pa.Field(nullable=True)
    address: str | None = pa.Field(nullable=True)

    @_row_rule("churned_at_not_before_created_at")
    def churn_after_acquisition(columns: Collection[str]) -> nw.Expr:
        return _not_before(columns, "churned_at", "created_at")


class Orders(_Dimensions):
    order_id: str | None = pa.Field(nullable=True)
    customer_id: str
    ordered_at: dt.datetime
    amount: float
    quantity: float | None = pa.Field(nullable=True)
    cost: float | None = pa.Field(ge=0, nullable=True)
    product: str | None = pa.Field(nullable=True)
    category: str | None = pa.Field(nullable=True)
    rep: str | None = pa.Field(nullable=True)
    order_type: str | None = pa.Field(isin=ORDER_TYPES, nullable=True)
    status: str | None = pa.Field(isin=STATUS_ORDER, nullable=True)

    @_row_rule("amount_not_negative_unless_refunded")
    def amount_not_negative(columns: Collection[str]) -> nw.Expr:
        return _not_negative_unless_reversed(columns, "amount")

    @_row_rule("quantity_not_negative_unless_refunded")
    def quantity_not_negative(columns: Collection[str]) -> nw.Expr:
        return _not_negative_unless_reversed(columns, "quantity")


class Deals(_Dimensions):
    deal_id: str = pa.Field(unique=True)
    created_at: dt.datetime
    status: str = pa.Field(isin=STATUS_DEAL)
    closed_at: dt.datetime | None = pa.Field(nullable=True)
    amount: float | None = pa.Field(ge=0, nullable=True)
    probability: float | None = pa.Field(ge=0, le=1, nullable=True)
    stage: str | None = pa.Field(nullable=True)
    deal_type: str | None = pa.Field(isin=DEAL_TYPES, nullable=True)
    customer_id: str | None = pa.Field(nullable=True)
    rep: str | None = pa.Field(nullable=True)
    lead_source: str | None = pa.Field(nullable=True)
    product: str | None = pa.Field(nullable=True)

    @_row_rule("closed_at_required_when_won_or_lost")
    def closed_deals_have_close_date(columns: Collection[str]) -> nw.Expr:
        is_open = nw.col("status") == "open"
        return is_open | ~nw.col("closed_at").is_null() if "closed_at" in columns else is_open

    @_row_rule("closed_at_not_before_created_at")
    def close_after_creation(columns: Collection[str]) -> nw.Expr:
        return _not_before(columns, "closed_at", "created_at")


class Leads(_Dimensions):
    lead_id: str = pa.Field(unique=True)
    created_at: dt.datetime
    status: str | None = pa.Field(isin=STATUS_LEAD, nullable=True)
    converted_at: dt.datetime | None = pa.Field(nullable=True)
    source: str | None = pa.Field(nullable=True)
    rep: str | None = pa.Field(nullable=True)
    campaign_id: str | None = pa.Field(nullable=True)
    customer_id: str | None = pa.Field(nullable=True)

    @_row_rule("converted_at_not_before_created_at")
    def conversion_after_creation(columns: Collection[str]) -> nw.Expr:
        return _not_before(columns, "converted_at", "created_at")


class Activities(_Dimensions):
    activity_id: str = pa.Field(unique=True)
    occurred_at: dt.datetime
    type: str = pa.Field(isin=ACTIVITY_TYPES)
    rep: str | None = pa.Field(nullable=True)
    customer_id: str | None = pa.Field(nullable=True)
    direction: str | None = pa.Field(isin=DIRECTIONS, nullable=True)
    cost: float | None = pa.Field(ge=0, nullable=True)


class Tickets(_Dimensions):
    ticket_id: str = pa.Field(unique=True)
    created_at: dt.datetime
    customer_id: str | None = pa.Field(nullable=True)
    rep: str | None = pa.Field(nullable=True)
    priority: str | None = pa.Field(nullable=True)
    status: str | None = pa.Field(nullable=True)
    first_response_at: dt.datetime | None = pa.Field(nullable=True)
    resolved_at: dt.datetime | None = pa.Field(nullable=True)
    first_response_seconds: float | None = pa.Field(ge=0, nullable=True)
    resolution_seconds: float | None = pa.Field(ge=0, nullable=True)
    contacts_count: int | None = pa.Field(ge=1, nullable=True)
    handle_seconds: float | None = pa.Field(ge=0, nullable=True)
    resolved_first_contact: bool | None = pa.Field(nullable=True)
    is_complaint: bool | None = pa.Field(nullable=True)
    complaint_valid: bool | None = pa.Field(nullable=True)

    @_row_rule("resolved_at_not_before_created_at")
    def resolution_after_creation(columns: Collection[str]) -> nw.Expr:
        return _not_before(columns, "resolved_at", "created_at")

    @_row_rule("first_response_at_not_before_created_at")
    def response_after_creation(columns: Collection[str]) -> nw.Expr:
        return _not_before(columns, "first_response_at", "created_at")


class Calls(_Dimensions):
    call_id: str = pa.Field(unique=True)
    offered_at: dt.datetime
    outcome: str = pa.Field(isin=CALL_OUTCOMES)
    rep: str | None = pa.Field(nullable=True)
    queue: str | None = pa.Field(nullable=True)
    direction: str | None = pa.Field(isin=DIRECTIONS, nullable=True)
    wait_seconds: float | None = pa.Field(ge=0, nullable=True)
    talk_seconds: float | None = pa.Field(ge=0, nullable=True)
    hold_seconds: float | None = pa.Field(ge=0, nullable=True)
    acw_seconds: float | None = pa.Field(ge=0, nullable=True)
    resolved: bool | None = pa.Field(nullable=True)
    qa_score: float | None = pa.Field(nullable=True)
    customer_id: str | None = pa.Field(nullable=True)


class Surveys(_Dimensions):
    response_id: str = pa.Field(unique=True)
    responded_at: dt.datetime
    survey_type: str = pa.Field(isin=SURVEY_TYPES)
    score: float
    customer_id: str | None = pa.Field(nullable=True)
    rep: str | None = pa.Field(nullable=True)
    ticket_id: str | None = pa.Field(nullable=True)

    @_row_rule("score_on_its_scale")
    def score_in_range(columns: Collection[str]) -> nw.Expr:
        """CSAT and ad ratings are 1..5 (fractions allowed); NPS is a whole number 0..10; ad
        awareness is 0 (not aware of the ad) or 1 (aware)."""
        score, kind = nw.col("score"), nw.col("survey_type")
        rating_ok = kind.is_in(["csat", "ad_rating"]) & score.is_between(1, 5)
        nps_ok = (kind == "nps") & score.is_between(0, 10) & (score == score.floor())
        awareness_ok = (kind == "ad_awareness") & score.is_in([0.0, 1.0])
        return rating_ok | nps_ok | awareness_ok | ~kind.is_in(SURVEY_TYPES)


class Spend(_Dimensions):
    spent_at: dt.date
    category: str = pa.Field(isin=SPEND_CATEGORIES)
    amount: float = pa.Field(ge=0)
    campaign_id: str | None = pa.Field(nullable=True)


class Budgets(_Contract):
    period_start: dt.date
    category: str = pa.Field(isin=SPEND_CATEGORIES)
    amount: float = pa.Field(ge=0)
    channel: str | None = pa.Field(nullable=True)


class Campaigns(_Contract):
    campaign_id: str = pa.Field(unique=True)
    started_at: dt.date
    channel: str | None = pa.Field(nullable=True)
    ended_at: dt.date | None = pa.Field(nullable=True)
    budget: float | None = pa.Field(ge=0, nullable=True)
    cost: float | None = pa.Field(ge=0, nullable=True)

    @_row_rule("ended_at_not_before_started_at")
    def end_after_start(columns: Collection[str]) -> nw.Expr:
        return _not_before(columns, "ended_at", "started_at")


class CampaignMembers(_Dimensions):
    campaign_id: str
    member_id: str
    targeted_at: dt.datetime
    responded: bool | None = pa.Field(nullable=True)
    converted: bool | None = pa.Field(nullable=True)
    revenue: float | None = pa.Field(ge=0, nullable=True)


class Quotas(_Contract):
    period_start: dt.date
    quota_amount: float = pa.Field(ge=0)
    rep: str | None = pa.Field(nullable=True)
    team: str | None = pa.Field(nullable=True)
    segment: str | None = pa.Field(nullable=True)


class Reps(_Contract):
    rep: str = pa.Field(unique=True)
    team: str | None = pa.Field(nullable=True)
    manager: str | None = pa.Field(nullable=True)
    region: str | None = pa.Field(nullable=True)
    active: bool | None = pa.Field(nullable=True)


class AgentShifts(_Contract):
    rep: str
    shift_date: dt.date
    staffed_seconds: float = pa.Field(ge=0)
    prep_seconds: float | None = pa.Field(ge=0, nullable=True)

    @_row_rule("prep_seconds_within_staffed_seconds")
    def prep_within_shift(columns: Collection[str]) -> nw.Expr:
        """Preparing before answering is part of the assigned time, never more than it."""
        return _not_before(columns, "staffed_seconds", "prep_seconds")


class Trainings(_Contract):
    rep: str
    trained_on: dt.date
    program: str | None = pa.Field(nullable=True)


class Incidents(_Contract):
    incident_id: str = pa.Field(unique=True)
    occurred_at: dt.datetime
    kind: str = pa.Field(isin=INCIDENT_KINDS)
    rep: str | None = pa.Field(nullable=True)
    team: str | None = pa.Field(nullable=True)
    description: str | None = pa.Field(nullable=True)


CONTRACTS: dict[str, type[pa.DataFrameModel]] = {
    "customers": Customers,
    "orders": Orders,
    "deals": Deals,
    "leads": Leads,
    "activities": Activities,
    "tickets": Tickets,
    "calls": Calls,
    "surveys": Surveys,
    "spend": Spend,
    "budgets": Budgets,
    "campaigns": Campaigns,
    "campaign_members": CampaignMembers,
    "quotas": Quotas,
    "reps": Reps,
    "agent_shifts": AgentShifts,
    "trainings": Trainings,
    "incidents": Incidents,
}
TABLE_NAMES = tuple(CONTRACTS)

_MONEY_COLUMNS = frozenset({"amount", "cost", "budget", "revenue", "quota_amount"})


@dataclass(frozen=True)
class ColumnContract:
    """What the loader needs to know of one canonical column."""

    name: str
    dtype: pl.DataType
    required: bool
    unique: bool

    @property
    def parse_kind(self) -> str:
        """The parser a column gets unless the mapping names another (see io/parse.py)."""
        if self.dtype == pl.String:
            return "id" if self.name.endswith("_id") else "text"
        if self.dtype == pl.Float64:
            if self.name.endswith("_seconds"):
                return "duration"
            return "money" if self.name in _MONEY_COLUMNS else "float"
        if self.dtype == pl.Int64:
            return "int"
        if self.dtype == pl.Boolean:
            return "bool"
        if self.dtype == pl.Date:
            return "date"
        return "datetime"


def columns_of(table: str) -> dict[str, ColumnContract]:
    """The canonical columns of `table`, in contract order."""
    schema = CONTRACTS[table].to_schema()
    return {
        name: ColumnContract(name, column.dtype.type, column.required, column.unique)
        for name, column in schema.columns.items()
    }


def schema_document(table: str) -> dict[str, object]:
    """A table contract as plain data, for `schemas/<table>.json` and for reviewers."""
    schema = CONTRACTS[table].to_schema()
    columns = []
    for name, column in schema.columns.items():
        checks = [
            {"check": check.name, **{k: _plain(v) for k, v in (check.statistics or {}).items()}}
            for check in column.checks
        ]
        columns.append(
            {
                "name": name,
                "dtype": str(column.dtype),
                "required": column.required,
                "nullable": column.nullable,
                "unique": column.unique,
                "checks": checks,
            }
        )
    return {
        "table": table,
        "columns": columns,
        "row_checks": [
            {"check": check.name, "doc": (check._check_fn.__doc__ or "").strip()}
            for check in schema.checks
        ],
    }


def _plain(value: object) -> object:
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    return value


def render_schema(table: str) -> str:
    """The exact text of `schemas/<table>.json` (stable, so a test can detect drift)."""
    return json.dumps(schema_document(table), indent=2, ensure_ascii=False) + "\n"


def export_schemas(folder: Path) -> list[Path]:
    """Write every contract to `folder/<table>.json`; `make schemas` calls this."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in TABLE_NAMES:
        path = folder / f"{table}.json"
        path.write_text(render_schema(table), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in export_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(written_path)

"""Data quality and adoption (customers, activities, deals, incidents): KPI_CATALOGUE.md,
section 6."""

from __future__ import annotations

import narwhals as nw

from crmkpi.metrics.base import Context, Metric, Ratio, Simple, Stock
from crmkpi.views import CUSTOMER_DIMENSIONS, PROFILE_FIELDS

FAMILY = "quality"
# Profile fields completeness may read: the defaults plus any `profile_*` column a config maps.
PROFILE_COLUMNS = (*PROFILE_FIELDS, *CUSTOMER_DIMENSIONS, "profile_*")


# A character that is not Unicode white space, spelled out because each engine's regex `\s`
# (and trim) knows a different set: DuckDB's is ASCII only, so a no-break space looked filled.
_NOT_BLANK = (
    r"[^\x{09}-\x{0D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}"
    r"\x{202F}\x{205F}\x{3000}]"
)


def _filled_fields(ctx: Context) -> nw.Expr:
    """How many of the profile fields hold something (blank = null, empty or white space)."""
    counts = [
        nw.col(field).cast(nw.String).str.contains(_NOT_BLANK).fill_null(False).cast(nw.Int64)
        for field in ctx.settings["profile_fields"]
        if (field in PROFILE_COLUMNS or field.startswith("profile_"))
        and ctx.has("customer_base", field)
    ]
    if not counts:
        return nw.col("customer_id").is_null().cast(nw.Int64) * 0
    return nw.sum_horizontal(*counts)


def _field_slots(ctx: Context) -> nw.Expr:
    """Every configured field is a slot, also one the export lacks (it is empty everywhere)."""
    return (~nw.col("customer_id").is_null()).cast(nw.Float64) * len(ctx.settings["profile_fields"])


def _incidents_of(kind: str, name: str, title_en: str, title_zh: str) -> Simple:
    """Count of the incidents of one kind, placed by occurred_at; fewer is better."""
    return Simple(
        name=name,
        title_en=title_en,
        title_zh=title_zh,
        family=FAMILY,
        unit="count",
        table="incidents",
        anchor="occurred_at",
        agg="count",
        columns=("kind",),
        where=lambda ctx: nw.col("kind") == kind,
        higher_is_better=False,
        formula=f"count of incidents of kind {kind}",
    )


METRICS: list[Metric] = [
    Stock(
        name="profile_fields_filled",
        title_en="Profile fields filled",
        title_zh="已填写客户信息字段数",
        family=FAMILY,
        unit="count",
        table="customer_base",
        opened="acquired_on",
        closed=None,
        boundary="end",
        value=_filled_fields,
        columns=("customer_id",),
        optional_columns=PROFILE_COLUMNS,
        needs_tables=("customers",),
        settings=("profile_fields",),
        output=False,
        formula="non-empty profile fields of the customers acquired by the period end",
    ),
    Stock(
        name="profile_field_slots",
        title_en="Profile fields expected",
        title_zh="应填写客户信息字段数",
        family=FAMILY,
        unit="count",
        table="customer_base",
        opened="acquired_on",
        closed=None,
        boundary="end",
        value=_field_slots,
        columns=("customer_id",),
        needs_tables=("customers",),
        settings=("profile_fields",),
        output=False,
        formula="customers acquired by the period end x profile fields",
    ),
    Ratio(
        name="customer_data_completeness",
        title_en="Customer data completeness",
        title_zh="客户信息完整与准确性",
        family=FAMILY,
        unit="ratio",
        numerator="profile_fields_filled",
        denominator="profile_field_slots",
        settings=("profile_fields",),
        formula="non-empty profile fields / (customers x profile fields), over the customers "
        "acquired by each period end (fields: setting profile_fields)",
    ),
    Simple(
        name="reps_active_and_owning",
        title_en="Reps with activity among owners",
        title_zh="有活动的负责销售数",
        family=FAMILY,
        unit="count",
        table="rep_adoption",
        anchor="period_date",
        agg="count",
        columns=("active", "owning"),
        where=lambda ctx: nw.col("active") & nw.col("owning"),
        output=False,
        formula="reps with an activity in the period who own an open deal or a live "
        "customer at its end",
    ),
    Simple(
        name="reps_owning",
        title_en="Reps owning deals or customers",
        title_zh="负责客户或商机的销售数",
        family=FAMILY,
        unit="count",
        table="rep_adoption",
        anchor="period_date",
        agg="count",
        columns=("owning",),
        where=lambda ctx: nw.col("owning"),
        output=False,
        formula="reps owning an open deal or a live customer at the period end",
    ),
    Ratio(
        name="crm_adoption_rate",
        title_en="CRM adoption rate",
        title_zh="系统使用率",
        family=FAMILY,
        unit="ratio",
        numerator="reps_active_and_owning",
        denominator="reps_owning",
        formula="reps with an activity in the period / reps owning, at period end, an open "
        "deal or a live customer",
    ),
    _incidents_of(
        "document_lost", "documents_lost", "Documents lost", "销售合同、档案资料丢失情况"
    ),
    _incidents_of(
        "process_failure",
        "process_failures",
        "Process failures",
        "流程完善程度 (管理失误和无序次数)",
    ),
]

"""The core KPI subset three ways, on the same files: crmkpi's engine, an idiomatic pandas
script and DuckDB SQL. Each returns a long frame (period, segment, rep, metric, value) at the
quarter x segment x rep grain; the benchmark asserts the three agree.

Shared definitions (KPI_CATALOGUE.md): orders count when their status is completed or empty;
a deal, survey or call takes its customer's segment and its own rep; an empty value is (none).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

CORE_METRICS = (
    "revenue",
    "orders_count",
    "average_order_value",
    "active_customers",
    "repeat_purchase_rate",
    "win_rate",
    "won_revenue",
    "sales_cycle_days",
    "csat",
    "nps",
    "abandonment_rate",
    "average_speed_of_answer",
)
TABLE_COLUMNS = {
    "customers": ("customer_id", "segment"),
    "orders": ("order_id", "customer_id", "ordered_at", "amount", "status", "rep"),
    "deals": ("deal_id", "customer_id", "created_at", "closed_at", "status", "amount", "rep"),
    "surveys": ("response_id", "customer_id", "responded_at", "survey_type", "score", "rep"),
    "calls": ("call_id", "customer_id", "offered_at", "outcome", "wait_seconds", "rep"),
}
DATETIME_COLUMNS = ("ordered_at", "created_at", "closed_at", "responded_at", "offered_at")
KEYS = ["period", "segment", "rep", "metric"]


def _path(folder: Path, table: str, fmt: str) -> Path:
    return folder / f"{table}.{fmt}"


def read_polars(folder: Path, fmt: str) -> dict[str, pl.DataFrame]:
    """The subset's columns, typed (Parquet keeps types; CSV dates are parsed)."""
    frames = {}
    for table, columns in TABLE_COLUMNS.items():
        path = _path(folder, table, fmt)
        if fmt == "parquet":
            frames[table] = pl.read_parquet(path, columns=list(columns))
        else:
            frame = pl.read_csv(path, columns=list(columns), infer_schema_length=10_000)
            frames[table] = frame.with_columns(
                pl.col(c).str.to_datetime("%Y-%m-%d %H:%M:%S")
                for c in columns
                if c in DATETIME_COLUMNS
            )
    return frames


def crmkpi_subset(folder: Path, fmt: str) -> pl.DataFrame:
    from crmkpi.api import compute_kpis

    kpis = compute_kpis(read_polars(folder, fmt), period="quarter", by=("segment", "rep"),
                        metrics=CORE_METRICS)  # fmt: skip
    return kpis.filter(pl.col("grain") == "segment+rep").select(*KEYS, "value")


def pandas_subset(folder: Path, fmt: str) -> pl.DataFrame:
    import pandas as pd

    def read(table: str) -> pd.DataFrame:
        columns = list(TABLE_COLUMNS[table])
        path = _path(folder, table, fmt)
        if fmt == "parquet":
            return pd.read_parquet(path, columns=columns)
        dates = [c for c in columns if c in DATETIME_COLUMNS]
        return pd.read_csv(path, usecols=columns, parse_dates=dates, dtype={"customer_id": str})

    segment_of = read("customers").set_index("customer_id")["segment"]

    def with_cell(frame: pd.DataFrame, anchor: str) -> pd.DataFrame:
        quarter = frame[anchor].dt.to_period("Q")
        frame = frame.assign(
            period=quarter.dt.year.astype(str) + "-Q" + quarter.dt.quarter.astype(str),
            segment=frame["customer_id"].map(segment_of).fillna("(none)"),
            rep=frame["rep"].fillna("(none)"),
        )
        return frame[frame[anchor].notna()]

    cell = ["period", "segment", "rep"]
    orders = read("orders")
    orders = orders[orders["status"].isna() | (orders["status"] == "completed")]
    orders = with_cell(orders, "ordered_at").reset_index(drop=True)
    orders["order_key"] = orders["order_id"].fillna("line:" + orders.index.to_series().astype(str))
    by_cell = orders.groupby(cell)
    revenue = by_cell["amount"].sum()
    orders_count = by_cell["order_key"].nunique()
    active = by_cell["customer_id"].nunique()
    per_customer = orders.groupby([*cell, "customer_id"])["order_key"].nunique()
    repeat = (per_customer >= 2).groupby(level=cell).sum()

    deals = with_cell(read("deals"), "closed_at")
    won = deals["status"] == "won"
    closed = deals["status"].isin(["won", "lost"])
    deals = deals.assign(
        won=won,
        closed=closed,
        won_amount=deals["amount"].where(won, 0.0).fillna(0.0),
        cycle_days=((deals["closed_at"] - deals["created_at"]).dt.total_seconds() / 86400).where(
            won
        ),
    )
    by_deal = deals.groupby(cell)
    won_count, closed_count = by_deal["won"].sum(), by_deal["closed"].sum()

    surveys = with_cell(read("surveys"), "responded_at")
    csat_rows = surveys[surveys["survey_type"] == "csat"]
    csat_cell = csat_rows.groupby(cell)["score"]
    nps_rows = surveys[surveys["survey_type"] == "nps"]
    band = (nps_rows["score"] >= 9).astype(int) - (nps_rows["score"] <= 6).astype(int)
    nps_cell = band.groupby([nps_rows[c] for c in cell])

    calls = with_cell(read("calls"), "offered_at")
    by_call = calls.groupby(cell)
    abandoned = (calls["outcome"] == "abandoned").groupby([calls[c] for c in cell]).sum()
    reachable = (calls["outcome"] != "blocked").groupby([calls[c] for c in cell]).sum()
    answered_wait = calls["wait_seconds"].where(calls["outcome"] == "answered")

    def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
        return (numerator / denominator.where(denominator != 0)).astype(float)

    series = {
        "revenue": revenue,
        "orders_count": orders_count,
        "average_order_value": ratio(revenue, orders_count),
        "active_customers": active,
        "repeat_purchase_rate": ratio(repeat, active),
        "win_rate": ratio(won_count, closed_count),
        "won_revenue": by_deal["won_amount"].sum(),
        "sales_cycle_days": by_deal["cycle_days"].mean(),
        "csat": ratio(
            (csat_rows["score"] >= 4).groupby([csat_rows[c] for c in cell]).sum(), csat_cell.count()
        ),
        "nps": nps_cell.mean() * 100,
        "abandonment_rate": ratio(abandoned, reachable),
        "average_speed_of_answer": answered_wait.groupby([calls[c] for c in cell]).mean(),
    }
    del by_call
    long = pd.concat(
        [s.rename("value").astype(float).reset_index().assign(metric=name)
         for name, s in series.items()]
    )  # fmt: skip
    return pl.from_pandas(long[[*KEYS, "value"]])


_DUCKDB_SQL = """
with segments as (select customer_id, segment from {customers}),
orders as (
  select o.*, coalesce(o.order_id, 'line:' || row_number() over ()) as order_key
  from {orders} o where o.status is null or o.status = 'completed'
),
cells as (
  select strftime(o.ordered_at, '%Y') || '-Q' || quarter(o.ordered_at) as period,
         coalesce(s.segment, '(none)') as segment, coalesce(o.rep, '(none)') as rep,
         o.customer_id, o.order_key, o.amount
  from orders o left join segments s using (customer_id)
),
order_kpis as (
  select period, segment, rep, sum(amount) as revenue, count(distinct order_key) as orders_count,
         count(distinct customer_id) as active_customers
  from cells group by all
),
repeaters as (
  select period, segment, rep, count(*) as repeat_customers from (
    select period, segment, rep, customer_id from cells group by all
    having count(distinct order_key) >= 2) group by all
),
deal_kpis as (
  select strftime(d.closed_at, '%Y') || '-Q' || quarter(d.closed_at) as period,
         coalesce(s.segment, '(none)') as segment, coalesce(d.rep, '(none)') as rep,
         count(*) filter (where d.status = 'won') as won,
         count(*) filter (where d.status in ('won', 'lost')) as closed,
         coalesce(sum(d.amount) filter (where d.status = 'won'), 0) as won_revenue,
         avg(epoch(d.closed_at - d.created_at) / 86400) filter (where d.status = 'won') as cycle
  from {deals} d left join segments s using (customer_id)
  where d.closed_at is not null group by all
),
survey_kpis as (
  select strftime(v.responded_at, '%Y') || '-Q' || quarter(v.responded_at) as period,
         coalesce(s.segment, '(none)') as segment, coalesce(v.rep, '(none)') as rep,
         count(*) filter (where survey_type = 'csat' and score >= 4) as satisfied,
         count(*) filter (where survey_type = 'csat') as csat_n,
         sum(case when score >= 9 then 1 when score <= 6 then -1 else 0 end)
           filter (where survey_type = 'nps') as net,
         count(*) filter (where survey_type = 'nps') as nps_n
  from {surveys} v left join segments s using (customer_id) group by all
),
call_kpis as (
  select strftime(c.offered_at, '%Y') || '-Q' || quarter(c.offered_at) as period,
         coalesce(s.segment, '(none)') as segment, coalesce(c.rep, '(none)') as rep,
         count(*) filter (where outcome = 'abandoned') as abandoned,
         count(*) filter (where outcome <> 'blocked') as reachable,
         avg(wait_seconds) filter (where outcome = 'answered') as asa
  from {calls} c left join segments s using (customer_id) group by all
)
select period, segment, rep, metric, value from (
  select o.period, o.segment, o.rep, o.revenue, o.orders_count,
         o.revenue / nullif(o.orders_count, 0) as average_order_value, o.active_customers,
         coalesce(r.repeat_customers, 0) / nullif(o.active_customers, 0) as repeat_purchase_rate
  from order_kpis o left join repeaters r using (period, segment, rep)
) unpivot include nulls (value for metric in (revenue, orders_count, average_order_value,
                                              active_customers, repeat_purchase_rate))
union all
select period, segment, rep, metric, value from (
  select period, segment, rep, won / nullif(closed, 0) as win_rate, won_revenue,
         cycle as sales_cycle_days from deal_kpis
) unpivot include nulls (value for metric in (win_rate, won_revenue, sales_cycle_days))
union all
select period, segment, rep, metric, value from (
  select period, segment, rep, satisfied / nullif(csat_n, 0) as csat,
         net / nullif(nps_n, 0) * 100 as nps from survey_kpis
) unpivot include nulls (value for metric in (csat, nps))
union all
select period, segment, rep, metric, value from (
  select period, segment, rep, abandoned / nullif(reachable, 0) as abandonment_rate,
         asa as average_speed_of_answer from call_kpis
) unpivot include nulls (value for metric in (abandonment_rate, average_speed_of_answer))
"""


def duckdb_subset(folder: Path, fmt: str) -> pl.DataFrame:
    import duckdb

    reader = "read_parquet" if fmt == "parquet" else "read_csv_auto"
    sources = {t: f"{reader}('{_path(folder, t, fmt)}')" for t in TABLE_COLUMNS}
    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")  # it would print on stdout
    table = connection.sql(_DUCKDB_SQL.format(**sources)).arrow()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col("value").cast(pl.Float64))


def compare(reference: pl.DataFrame, other: pl.DataFrame, name: str) -> None:
    """Every cell the other implementation reports equals crmkpi's; crmkpi's extra grid cells
    are empty (0 or null)."""
    joined = reference.join(other, on=KEYS, how="full", suffix="_other", coalesce=True)
    missing = joined.filter(pl.col("value").is_null() & pl.col("value_other").is_not_null())
    if missing.height:
        raise AssertionError(f"{name}: {missing.height} cells crmkpi lacks: {missing.head(3)}")
    both = joined.filter(pl.col("value_other").is_not_null())
    tolerance = 1e-9 * pl.max_horizontal(pl.col("value").abs(), pl.lit(1.0))
    wrong = both.filter((pl.col("value") - pl.col("value_other")).abs() > tolerance)
    if wrong.height:
        raise AssertionError(f"{name}: {wrong.height} cells differ: {wrong.head(5)}")
    extra = joined.filter(pl.col("value_other").is_null() & (pl.col("value").fill_null(0) != 0))
    if extra.height:
        raise AssertionError(f"{name}: {extra.height} cells only crmkpi has: {extra.head(3)}")

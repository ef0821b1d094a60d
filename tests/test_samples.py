"""The synthetic export generator: contracts, consistency, determinism, the mixed folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from pathlib import Path

import fastexcel
import polars as pl
import pyarrow.parquet as pq
import pytest

from crmkpi.api import compute_kpis
from crmkpi.samples import (
    CHUNK_CUSTOMERS,
    SCALES,
    SampleSize,
    generate_chunks,
    generate_tables,
    write_sample_folder,
)
from crmkpi.tables import CONTRACTS, TABLE_NAMES, columns_of

START, END = dt.datetime(2024, 1, 1), dt.datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def tiny() -> dict[str, pl.DataFrame]:
    return generate_tables(SCALES["tiny"], 7)


def _chunked(size: SampleSize, seed: int, customers_per_chunk: int) -> dict[str, pl.DataFrame]:
    """generate_chunks' pieces put together, table by table."""
    pieces: dict[str, list[pl.DataFrame]] = {}
    for name, piece in generate_chunks(size, seed, customers_per_chunk):
        pieces.setdefault(name, []).append(piece)
    return {name: pl.concat(frames) for name, frames in pieces.items()}


@pytest.fixture(scope="module")
def demo_whole() -> dict[str, pl.DataFrame]:
    return generate_tables(SCALES["demo"], 7)


# The consistency tests run on the demo scale made whole and in chunks of 100 customers; the
# tests of the story's statistics on the whole only (the demo scale is too small to show them in
# every draw, and the chunks are other draws).
@pytest.fixture(scope="module")
def demo_chunks() -> dict[str, pl.DataFrame]:
    return _chunked(SCALES["demo"], 7, 100)


@pytest.fixture(scope="module", params=["whole", "in-chunks"])
def demo(
    request: pytest.FixtureRequest,
    demo_whole: dict[str, pl.DataFrame],
    demo_chunks: dict[str, pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    return demo_whole if request.param == "whole" else demo_chunks


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mixed")
    write_sample_folder(out, seed=7, scale="tiny", file_format="mixed")
    return out


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# The id of each table whose records belong to a chunk of customers.
ID_COLUMNS = {
    "customers": "customer_id",
    "orders": "order_id",
    "deals": "deal_id",
    "leads": "lead_id",
    "activities": "activity_id",
    "tickets": "ticket_id",
    "calls": "call_id",
    "surveys": "response_id",
}


def _ids(frame: pl.DataFrame, column: str) -> set[str]:
    return set(frame[column].drop_nulls().to_list())


# ---------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("scale", ["tiny", "demo"])
def test_every_table_has_canonical_columns_dtypes_and_validates(scale: str) -> None:
    tables = generate_tables(SCALES[scale], 3)
    assert set(tables) == set(TABLE_NAMES)
    for name, frame in tables.items():
        contract = columns_of(name)
        assert frame.height > 0, name
        assert set(frame.columns) <= set(contract), (name, set(frame.columns) - set(contract))
        required = {c for c, spec in contract.items() if spec.required}
        assert required <= set(frame.columns), (name, required - set(frame.columns))
        for column, dtype in frame.schema.items():
            assert dtype == contract[column].dtype, (name, column, dtype)
        CONTRACTS[name].validate(frame, lazy=True)


def test_sizes_follow_the_scale(tiny: dict[str, pl.DataFrame]) -> None:
    size = SCALES["tiny"]
    for table in ("customers", "deals", "leads", "activities", "calls"):
        assert tables_height(tiny, table) == getattr(size, table)
    for table in ("orders", "tickets", "surveys", "campaign_members"):
        assert 0.5 * getattr(size, table) <= tables_height(tiny, table) <= getattr(size, table)
    assert sum(getattr(size, f) for f in SampleSize.__dataclass_fields__) < 400


def tables_height(tables: dict[str, pl.DataFrame], name: str) -> int:
    return tables[name].height


def test_scales_are_ordered() -> None:
    order = ["tiny", "demo", "small", "medium", "large", "xlarge"]
    assert list(SCALES) == order
    totals = [sum(vars(SCALES[s]).values()) for s in order]
    assert totals == sorted(totals)
    assert 2_000 <= totals[1] <= 6_000  # demo: a few thousand rows
    assert SCALES["large"].orders == 10_000_000
    large, xlarge = vars(SCALES["large"]), vars(SCALES["xlarge"])
    assert xlarge == {table: 10 * rows for table, rows in large.items()}
    assert set(CHUNK_CUSTOMERS) == {"xlarge"}


# ---------------------------------------------------------------------------- consistency


def test_customers_and_their_orders(demo: dict[str, pl.DataFrame]) -> None:
    customers, orders = demo["customers"], demo["orders"]
    assert customers["customer_id"].is_unique().all()
    assert _ids(orders, "customer_id") <= _ids(customers, "customer_id")
    joined = orders.join(customers, on="customer_id", suffix="_c")
    assert (joined["ordered_at"] >= joined["created_at"]).all()
    alive = joined["churned_at"].is_null() | (joined["ordered_at"] < joined["churned_at"])
    assert alive.all()
    assert (customers["churned"] == customers["churned_at"].is_not_null()).all()
    assert set(customers["segment"]) == {"Enterprise", "Mid-Market", "SMB"}
    assert set(customers["region"]) == {"East", "West"}
    for field in ("name", "email", "phone", "address"):
        assert 0 < customers[field].null_count() < customers.height / 3, field
    # The first order of a customer acquired in the range is typed new; no other order is.
    first = orders.sort("ordered_at", "order_id").group_by("customer_id").first()
    new_orders = orders.filter(pl.col("order_type") == "new")
    assert _ids(new_orders, "order_id") <= _ids(first, "order_id")
    # Lines of one order share customer, time and status; margins are 30..60 %.
    per_order = orders.group_by("order_id").agg(
        pl.col("customer_id", "ordered_at", "status").n_unique()
    )
    assert (per_order.select(pl.all().exclude("order_id")) == 1).to_numpy().all()
    margin = 1 - orders["cost"] / orders["amount"]
    assert margin.is_between(0.299, 0.601).all()
    assert orders["category"].n_unique() == 4
    status = orders.group_by("order_id").agg(pl.col("status").first())["status"]
    assert (status == "completed").sum() > 0.9 * status.len()
    assert {"cancelled", "refunded"} <= set(status)


def test_deals_are_consistent(demo: dict[str, pl.DataFrame]) -> None:
    deals, customers = demo["deals"], demo["customers"]
    assert _ids(deals, "customer_id") <= _ids(customers, "customer_id")
    closed = deals["status"].is_in(["won", "lost"])
    assert (deals["closed_at"].is_not_null() == closed).all()
    done = deals.filter(closed)
    assert (done["closed_at"] >= done["created_at"]).all()
    assert (done["closed_at"] < END).all()
    assert set(deals["status"]) == {"open", "won", "lost"}
    won = deals.filter(pl.col("status") == "won")
    assert (won["probability"] == 1.0).all() and (won["stage"] == "赢单").all()
    lost = deals.filter(pl.col("status") == "lost")
    assert (lost["probability"] == 0.0).all() and (lost["stage"] == "输单").all()
    open_deals = deals.filter(pl.col("status") == "open")
    assert open_deals["probability"].is_between(0.01, 0.99).all()
    # Stage decides probability.
    assert (
        open_deals.group_by("stage").agg(pl.col("probability").n_unique())["probability"].max() == 1
    )
    by_segment = deals.join(customers.select("customer_id", "segment"), on="customer_id")
    sizes = by_segment.group_by("segment").agg(pl.col("amount").median())
    median = dict(zip(sizes["segment"], sizes["amount"], strict=True))
    assert median["Enterprise"] > median["Mid-Market"] > median["SMB"]


def test_leads_activities_campaigns(demo: dict[str, pl.DataFrame]) -> None:
    leads, customers = demo["leads"], demo["customers"]
    converted = leads.filter(pl.col("status") == "converted")
    assert converted["converted_at"].null_count() == 0
    assert converted["customer_id"].null_count() == 0
    assert leads.filter(pl.col("status") != "converted")["converted_at"].null_count() == (
        leads.height - converted.height
    )
    assert _ids(leads, "customer_id") <= _ids(customers, "customer_id")
    assert (converted["converted_at"] >= converted["created_at"]).all()
    campaigns, members = demo["campaigns"], demo["campaign_members"]
    assert _ids(leads, "campaign_id") <= _ids(campaigns, "campaign_id")
    assert _ids(members, "campaign_id") <= _ids(campaigns, "campaign_id")
    assert _ids(members, "member_id") <= _ids(customers, "customer_id") | _ids(leads, "lead_id")
    assert members.select("campaign_id", "member_id").is_unique().all()
    assert (members["converted"] <= members["responded"]).all()
    assert (members["revenue"].is_not_null() == members["converted"]).all()
    window = members.join(campaigns, on="campaign_id")
    assert (window["targeted_at"].dt.date() >= window["started_at"]).all()
    ended = window.filter(pl.col("ended_at").is_not_null())
    assert (ended["targeted_at"].dt.date() <= ended["ended_at"]).all()
    # A campaign's cost is the sum of the spend rows carrying its id.
    spend = demo["spend"]
    assert _ids(spend, "campaign_id") <= _ids(campaigns, "campaign_id")
    per_campaign = spend.group_by("campaign_id").agg(pl.col("amount").sum()).drop_nulls()
    check = campaigns.join(per_campaign, on="campaign_id")
    assert ((check["cost"] - check["amount"]).abs() < 0.01).all()
    activities = demo["activities"]
    assert _ids(activities, "customer_id") <= _ids(customers, "customer_id")
    assert set(activities["type"]) == {"call", "email", "meeting", "visit", "chat"}


def test_every_reference_names_an_existing_record(demo: dict[str, pl.DataFrame]) -> None:
    customers = _ids(demo["customers"], "customer_id")
    for name, frame in demo.items():
        if "customer_id" in frame.columns:
            assert _ids(frame, "customer_id") <= customers, name
        if "campaign_id" in frame.columns:
            assert _ids(frame, "campaign_id") <= _ids(demo["campaigns"], "campaign_id"), name
        if "rep" in frame.columns:
            assert _ids(frame, "rep") <= _ids(demo["reps"], "rep"), name
    assert _ids(demo["surveys"], "ticket_id") <= _ids(demo["tickets"], "ticket_id")
    leads = _ids(demo["leads"], "lead_id")
    assert _ids(demo["campaign_members"], "member_id") <= customers | leads


def test_service_tables(demo: dict[str, pl.DataFrame]) -> None:
    tickets, calls, surveys = demo["tickets"], demo["calls"], demo["surveys"]
    reps = demo["reps"]
    agents = set(reps.filter(pl.col("team") == "Service")["rep"])
    assert _ids(tickets, "rep") <= agents and _ids(calls, "rep") <= agents
    assert (tickets["contacts_count"] >= 1).all()
    resolved = tickets.filter(pl.col("resolved_at").is_not_null())
    assert (resolved["resolved_at"] >= resolved["first_response_at"]).all()
    assert (resolved["first_response_at"] >= resolved["created_at"]).all()
    fcr = tickets["resolved_first_contact"]
    expected = tickets["resolved_at"].is_not_null() & (tickets["contacts_count"] == 1)
    assert (fcr == expected).all()
    complaints = tickets["is_complaint"]
    assert (tickets["complaint_valid"].is_not_null() == complaints).all()

    outcome = calls["outcome"]
    shares = outcome.value_counts(normalize=True)
    share = dict(zip(shares["outcome"], shares["proportion"], strict=True))
    assert share["answered"] > 0.75 and 0.0 < share["blocked"] < share["abandoned"] < 0.2
    blocked = calls.filter(outcome == "blocked")
    for column in ("wait_seconds", "talk_seconds", "hold_seconds", "acw_seconds", "rep"):
        assert blocked[column].null_count() == blocked.height, column
    abandoned = calls.filter(outcome == "abandoned")
    assert abandoned["wait_seconds"].null_count() == 0
    assert abandoned["talk_seconds"].null_count() == abandoned.height
    assert abandoned["rep"].null_count() == abandoned.height
    answered = calls.filter(outcome == "answered")
    for column in ("wait_seconds", "talk_seconds", "hold_seconds", "acw_seconds", "rep"):
        assert answered[column].null_count() == 0, column
    assert calls["qa_score"].drop_nulls().is_between(0, 100).all()

    assert _ids(surveys, "ticket_id") <= _ids(tickets, "ticket_id")
    linked = surveys.join(tickets, on="ticket_id", suffix="_t")
    assert (linked["responded_at"] >= linked["resolved_at"]).all()
    assert (linked["customer_id"] == linked["customer_id_t"]).all()
    csat = surveys.filter(pl.col("survey_type") == "csat")["score"]
    nps = surveys.filter(pl.col("survey_type") == "nps")["score"]
    assert csat.is_between(1, 5).all() and nps.is_between(0, 10).all()
    assert 3.5 < float(csat.to_numpy().mean()) < 4.6

    shifts = demo["agent_shifts"]
    assert set(shifts["rep"]) <= agents
    assert (shifts["shift_date"].dt.weekday() <= 5).all()
    assert shifts.select("rep", "shift_date").is_unique().all()


def test_reps_quotas_budgets(demo: dict[str, pl.DataFrame]) -> None:
    reps = demo["reps"]
    assert 6 <= reps.height <= 10
    assert reps["team"].n_unique() == 2 and set(reps["region"]) == {"East", "West"}
    names = set(reps["rep"])
    for table in ("customers", "orders", "deals", "leads", "activities", "quotas"):
        assert _ids(demo[table], "rep") <= names, table
    quotas = demo["quotas"]
    assert (quotas["period_start"].dt.day() == 1).all()
    assert quotas["period_start"].dt.month().is_in([1, 4, 7, 10]).all()
    # The rep who joins in the second year has no quota, customer or deal in the first.
    counts = quotas.group_by("rep").len()
    newcomer = counts.filter(pl.col("len") == pl.col("len").min())["rep"][0]
    assert (quotas.filter(pl.col("rep") == newcomer)["period_start"] >= dt.date(2025, 1, 1)).all()
    for table, column in (("customers", "created_at"), ("deals", "created_at")):
        owned = demo[table].filter(pl.col("rep") == newcomer)
        assert owned.height > 0 and (owned[column] >= dt.datetime(2025, 1, 1)).all(), table
    budgets = demo["budgets"]
    assert budgets.height == 24 * 4
    assert set(budgets["category"]) == {"marketing", "sales", "advertising", "service"}
    assert set(demo["spend"]["category"]) == set(budgets["category"])


def test_trainings_lift_the_trained_reps_won_revenue(
    demo_whole: dict[str, pl.DataFrame],
) -> None:
    trainings, deals, reps = demo_whole["trainings"], demo_whole["deals"], demo_whole["reps"]
    sales = set(reps.filter(pl.col("team") == "Sales")["rep"])
    assert 3 <= trainings.height <= 12 and set(trainings["rep"]) <= sales
    assert trainings.select("rep", "trained_on").is_unique().all()
    assert (trainings["trained_on"].dt.weekday() <= 5).all()
    # The trained reps' won revenue in the 90 days after each training against the 90 days
    # before (the training day in neither), computed here row by row from the deals.
    won = deals.filter(pl.col("status") == "won").select(
        "rep", pl.col("closed_at").dt.date().alias("day"), "amount"
    )
    before = after = 0.0
    for rep, day in trainings.select("rep", "trained_on").iter_rows():
        mine = won.filter(pl.col("rep") == rep)
        span = dt.timedelta(days=90)
        before += mine.filter((pl.col("day") >= day - span) & (pl.col("day") < day))["amount"].sum()
        after += mine.filter((pl.col("day") > day) & (pl.col("day") <= day + span))["amount"].sum()
    kpis = compute_kpis(demo_whole, period="all", as_of=dt.date(2025, 12, 31),
                        metrics=["training_effectiveness"])  # fmt: skip
    total = kpis.row(0, named=True)
    assert (total["numerator"], total["denominator"]) == pytest.approx((after - before, before))
    assert 0.1 < total["value"] < 0.6  # a visible lift, not a miracle


def test_incidents_prep_times_and_ad_surveys(demo: dict[str, pl.DataFrame]) -> None:
    incidents, reps = demo["incidents"], demo["reps"]
    assert 3 <= incidents.height <= 20  # a handful
    assert set(incidents["kind"]) <= {"document_lost", "process_failure", "other"}
    teams = dict(zip(reps["rep"], reps["team"], strict=True))
    named = incidents.drop_nulls("rep")
    assert named.height > 0
    assert [teams[r] for r in named["rep"]] == named["team"].to_list()
    shifts = demo["agent_shifts"]
    share = shifts["prep_seconds"] / shifts["staffed_seconds"]
    assert share.min() >= 0.0 and share.max() <= 0.2
    surveys = demo["surveys"]
    assert surveys["response_id"].is_unique().all()
    # In response order (within each chunk: the ids' prefix).
    chunk = pl.col("response_id").str.extract(r"^(.*)SV", 1)
    assert surveys.equals(surveys.sort(chunk, "responded_at", maintain_order=True))
    aware = surveys.filter(pl.col("survey_type") == "ad_awareness")["score"]
    rated = surveys.filter(pl.col("survey_type") == "ad_rating")["score"]
    assert aware.len() > 0 and set(aware) <= {0.0, 1.0}
    assert rated.len() > 0 and rated.is_between(1, 5).all()


def test_everything_happens_in_the_range(tiny: dict[str, pl.DataFrame]) -> None:
    for name, frame in tiny.items():
        for column, dtype in frame.schema.items():
            values = frame[column].drop_nulls()
            if dtype == pl.Datetime:
                assert ((values >= START) & (values < END)).all(), (name, column)
            elif dtype == pl.Date:
                low, high = START.date(), END.date()
                assert ((values >= low) & (values < high)).all(), (name, column)


def test_seasonality_and_growth(demo_whole: dict[str, pl.DataFrame]) -> None:
    revenue = (
        demo_whole["orders"]
        .filter(pl.col("status") == "completed")
        .group_by(
            pl.col("ordered_at").dt.year().alias("y"), pl.col("ordered_at").dt.quarter().alias("q")
        )
        .agg(pl.col("amount").sum())
    )
    by = {(row["y"], row["q"]): row["amount"] for row in revenue.iter_rows(named=True)}
    for year in (2024, 2025):
        assert by[(year, 4)] > by[(year, 1)]
    assert sum(v for (y, _), v in by.items() if y == 2025) > sum(
        v for (y, _), v in by.items() if y == 2024
    )
    orders = demo_whole["orders"]
    weekend = orders["ordered_at"].dt.weekday() >= 6
    assert weekend.sum() < orders.height * 2 / 7


def test_custom_range() -> None:
    tables = generate_tables(SCALES["tiny"], 1, dt.date(2023, 3, 1), dt.date(2023, 8, 31))
    for name, frame in tables.items():
        CONTRACTS[name].validate(frame, lazy=True)
    created = tables["customers"]["created_at"]
    assert ((created >= dt.datetime(2023, 3, 1)) & (created < dt.datetime(2023, 9, 1))).all()


# ---------------------------------------------------------------------------- chunks


def test_chunks_split_the_rows_and_prefix_their_ids(demo_chunks: dict[str, pl.DataFrame]) -> None:
    size = SCALES["demo"]
    for table in ("customers", "deals", "leads", "activities", "calls"):
        assert demo_chunks[table].height == getattr(size, table), table
    for table in ("orders", "tickets", "surveys", "campaign_members"):
        assert 0.5 * getattr(size, table) <= demo_chunks[table].height <= 1.2 * getattr(size, table)
    for table, column in ID_COLUMNS.items():
        ids = demo_chunks[table][column]
        assert set(ids.str.slice(0, 2)) == {"0-", "1-", "2-"}, table  # 300 customers by 100
        if table != "orders":  # an order's lines share its id
            assert ids.is_unique().all(), table
    assert demo_chunks["leads"]["campaign_id"].drop_nulls().str.starts_with("CMP").all()
    for name, frame in demo_chunks.items():
        CONTRACTS[name].validate(frame, lazy=True)


def test_chunked_parquet_one_file_per_table_same_bytes_for_a_seed(
    tmp_path: Path, demo_chunks: dict[str, pl.DataFrame]
) -> None:
    written = write_sample_folder(tmp_path / "a", 7, "demo", "parquet", customers_per_chunk=100)
    write_sample_folder(tmp_path / "b", 7, "demo", "parquet", customers_per_chunk=100)
    write_sample_folder(tmp_path / "c", 8, "demo", "parquet", customers_per_chunk=100)
    assert [p.name for p in written] == [f"{t}.parquet" for t in TABLE_NAMES]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in written)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a")["orders.parquet"] != _digests(tmp_path / "c")["orders.parquet"]
    for path in written:
        assert pl.read_parquet(path).equals(demo_chunks[path.stem]), path.name
    assert pq.ParquetFile(tmp_path / "a" / "orders.parquet").metadata.num_row_groups == 3


def test_chunks_are_written_as_parquet_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parquet only"):
        write_sample_folder(tmp_path, scale="xlarge", file_format="csv")
    with pytest.raises(ValueError, match="parquet only"):
        write_sample_folder(tmp_path, scale="tiny", file_format="mixed", customers_per_chunk=20)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_frames_other_seed_differs() -> None:
    first = generate_tables(SCALES["tiny"], 11)
    again = generate_tables(SCALES["tiny"], 11)
    other = generate_tables(SCALES["tiny"], 12)
    for name in TABLE_NAMES:
        assert first[name].equals(again[name]), name
    assert not first["orders"].equals(other["orders"])


def test_mixed_folder_is_byte_identical_on_rerun(tmp_path: Path, mixed: Path) -> None:
    again = tmp_path / "again"
    other = tmp_path / "other"
    write_sample_folder(again, seed=7, scale="tiny", file_format="mixed")
    write_sample_folder(other, seed=8, scale="tiny", file_format="mixed")
    assert _digests(again) == _digests(mixed)
    differ = {k for k, v in _digests(other).items() if _digests(mixed)[k] != v}
    assert {"orders.csv", "商机.csv", "tickets.xlsx"} <= differ


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_flat_formats(tmp_path: Path, file_format: str, tiny: dict[str, pl.DataFrame]) -> None:
    written = write_sample_folder(tmp_path / "a", seed=7, scale="tiny", file_format=file_format)
    write_sample_folder(tmp_path / "b", seed=7, scale="tiny", file_format=file_format)
    assert sorted(p.name for p in written) == sorted(f"{t}.{file_format}" for t in TABLE_NAMES)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    for table in TABLE_NAMES:
        path = tmp_path / "a" / f"{table}.{file_format}"
        if file_format == "parquet":
            assert pl.read_parquet(path).equals(tiny[table]), table
        else:
            back = pl.read_csv(path, schema=tiny[table].schema)
            assert back.columns == tiny[table].columns
            assert back.height == tiny[table].height


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        write_sample_folder(tmp_path, scale="huge")
    with pytest.raises(ValueError, match="format"):
        write_sample_folder(tmp_path, file_format="json")


# ---------------------------------------------------------------------------- mixed folder


def test_config_names_every_table_and_its_file(mixed: Path) -> None:
    config = tomllib.loads((mixed / "crmkpi.toml").read_text(encoding="utf-8"))
    assert config["input"]["encoding"] == "utf-8"
    assert config["settings"] == {"timezone": "Asia/Shanghai", "fiscal_year_start": 1}
    assert set(config["tables"]) == set(TABLE_NAMES)
    for name, spec in config["tables"].items():
        assert (mixed / spec["file"]).is_file(), name
    assert config["tables"]["tickets"]["header_row"] == 2
    deals = config["tables"]["deals"]
    assert deals["encoding"] == "gb18030"
    assert set(deals["columns"]) <= set(columns_of("deals"))
    assert deals["columns"]["status"]["map"] == {"赢单": "won", "输单": "lost"}
    files = {p.name for p in mixed.iterdir()}
    assert files == {spec["file"] for spec in config["tables"].values()} | {"crmkpi.toml"}


def test_deals_file_is_a_gb18030_wukong_export(mixed: Path, tiny: dict[str, pl.DataFrame]) -> None:
    raw = (mixed / "商机.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gb18030")
    frame = pl.read_csv(text.encode("utf-8"), infer_schema=False)
    config = tomllib.loads((mixed / "crmkpi.toml").read_text(encoding="utf-8"))
    mapping = config["tables"]["deals"]["columns"]
    sources = {v if isinstance(v, str) else v["from"] for v in mapping.values()}
    assert sources <= set(frame.columns)
    assert {"所属部门", "更新时间", "创建人", "商机名称"} <= set(frame.columns) - sources
    assert frame.height == tiny["deals"].height + 1  # one bad row
    assert frame["商机金额"].str.contains(r"^¥\d{1,3}(,\d{3})*\.\d{2}$").all()
    assert frame["赢单率"].str.contains(r"^\d{1,3}%$").all()
    assert frame["创建时间"].str.contains(r"^\d{4}/\d{1,2}/\d{1,2} \d{2}:\d{2}$").all()
    dates = frame["预计成交日期"].drop_nulls()
    assert dates.str.contains(r"^\d{4}年\d{1,2}月\d{1,2}日$").all()
    assert set(frame["商机类型"]) <= {"新业务", "增购", "交叉销售", "续约"}
    closed = frame.filter(pl.col("商机阶段").is_in(["赢单", "输单"]))
    assert closed["预计成交日期"].null_count() == 1  # the deliberate won deal without a date
    assert frame.filter(~pl.col("商机阶段").is_in(["赢单", "输单"]))[
        "预计成交日期"
    ].null_count() == (frame.height - closed.height)


def test_tickets_workbook_has_a_title_row(mixed: Path, tiny: dict[str, pl.DataFrame]) -> None:
    workbook = fastexcel.read_excel(mixed / "tickets.xlsx")
    assert workbook.sheet_names == ["Tickets"]
    sheet = workbook.load_sheet("Tickets", header_row=1).to_polars()
    assert sheet.columns == tiny["tickets"].columns
    assert sheet.height == tiny["tickets"].height + 1
    created = sheet["created_at"].cast(pl.String)
    assert created.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$").all()
    title = fastexcel.read_excel(mixed / "tickets.xlsx").load_sheet("Tickets", header_row=None)
    assert title.to_polars().row(0)[0] == "Ticket export"


def test_csv_conventions_and_bad_rows(mixed: Path, tiny: dict[str, pl.DataFrame]) -> None:
    config_text = (mixed / "crmkpi.toml").read_text(encoding="utf-8")
    documented = re.findall(r"^#   (\S+) row (\d+), column (\S+): (.+)$", config_text, re.M)
    assert 8 <= len(documented) <= 14
    assert len({(f, c) for f, _, c, _ in documented}) >= 9
    extra: dict[str, int] = {}
    for file, row, column, _ in documented:
        extra[file] = extra.get(file, 0) + 1
        if file.endswith(".csv") and not file.startswith("商机"):
            lines = (mixed / file).read_text(encoding="utf-8").splitlines()
            header = lines[0].split(",")
            assert column in header
            assert int(row) <= len(lines)
    for table in TABLE_NAMES:
        path = mixed / f"{table}.csv"
        if not path.exists():
            continue
        frame = pl.read_csv(path, infer_schema=False)
        assert frame.columns == tiny[table].columns, table
        assert frame.height == tiny[table].height + extra.get(path.name, 0), table
    orders = pl.read_csv(mixed / "orders.csv", infer_schema=False)
    assert "12,34" in orders["amount"].to_list()
    assert orders["amount"].str.contains(r"^-?\d+\.\d{2}$").sum() == orders.height - 1
    assert orders["ordered_at"].str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$").all()
    customers = pl.read_csv(mixed / "customers.csv", infer_schema=False)
    assert customers["customer_id"].is_duplicated().sum() == 2
    assert set(customers["churned"]) == {"true", "false"}
    calls = pl.read_csv(mixed / "calls.csv", infer_schema=False)
    assert "unknown" in calls["outcome"].to_list()
    spend = pl.read_csv(mixed / "spend.csv", infer_schema=False)
    assert spend["spent_at"].drop_nulls().str.contains(r"^\d{4}-\d{2}-\d{2}$").all()


def test_timestamps_are_whole_seconds(tiny: dict[str, pl.DataFrame]) -> None:
    """The CSV text keeps seconds only, so the clean frames must not carry fractions."""
    for name, frame in tiny.items():
        for column in frame.select(pl.col(pl.Datetime)).columns:
            values = frame[column].drop_nulls()
            assert (values.dt.microsecond() == 0).all(), (name, column)
    deals = tiny["deals"]
    assert (deals["created_at"].dt.second() == 0).all()  # 创建时间 has minutes only
    closed = deals["closed_at"].drop_nulls()
    assert (closed == closed.dt.truncate("1d")).all()  # 预计成交日期 is a date


def test_loader_recovers_the_clean_tables(mixed: Path, tiny: dict[str, pl.DataFrame]) -> None:
    """Read -> map -> parse -> validate of the mixed folder gives back exactly the clean frames
    and quarantines exactly the documented bad rows."""
    from crmkpi.configure import load_config
    from crmkpi.load import load_all

    result = load_all(load_config(mixed / "crmkpi.toml"), mixed)
    assert not result.failures
    assert set(result.tables) == set(TABLE_NAMES)
    documented = re.findall(
        r"^#   (\S+) row", (mixed / "crmkpi.toml").read_text(encoding="utf-8"), re.M
    )
    for name, loaded in result.tables.items():
        assert loaded.frame.select(tiny[name].columns).equals(tiny[name]), name
        assert loaded.report.reconciles(), name
    quarantined = sum(loaded.report.rows_quarantined for loaded in result.tables.values())
    assert quarantined == len(documented)
    checks = [c for t in result.tables.values() for c in t.report.quarantined_by_check]
    assert len(checks) == len(set(checks)) == len(documented) - 1  # the twin rows share one
    drift = result.tables["deals"].report.drift_columns
    assert set(drift) == {"商机名称", "所属部门", "更新时间", "创建人"}


def test_checked_in_sample_data_matches_the_generator(tmp_path: Path) -> None:
    """sample_data/ is exactly `crmkpi sample-data sample_data --seed 7` (`make sample-data`)."""
    from tests.conftest import REPO

    written = write_sample_folder(tmp_path / "fresh", seed=7, scale="demo", file_format="mixed")
    shipped = REPO / "sample_data"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(p.name for p in written)
    for path in written:
        assert (shipped / path.name).read_bytes() == path.read_bytes(), path.name

"""Synthetic CRM exports: a seeded, vectorised generator of all 17 canonical tables.

`generate_tables()` returns clean canonical frames (the column names and dtypes of `tables.py`)
that are consistent with each other; `write_sample_folder()` writes them as an export folder:

* ``file_format="mixed"`` (what ships in ``sample_data/``): UTF-8 CSVs with canonical headers, the
  tickets as an XLSX with a title row above the header, the deals as a GB18030 `商机.csv` in the
  style of a 悟空CRM export, a handful of deliberately bad rows (documented in the generated
  ``crmkpi.toml``) and the ``crmkpi.toml`` that maps it all;
* ``file_format="parquet"`` / ``"csv"`` (benchmarks): every table as ``<table>.parquet`` /
  ``<table>.csv`` with canonical headers and dtypes, no bad rows, no config.

A scale larger than memory (``xlarge``: 100M order lines) is generated in chunks of customers,
each with its own records and random streams (`generate_chunks`), and written as Parquet only:
one file per table, row groups appended chunk by chunk, so memory holds one chunk at a time.

Everything is drawn with ``numpy.random.default_rng`` from the seed (one independent stream per
table), never from the wall clock, so reruns write byte-identical files. Rows are produced by
whole-column numpy / polars operations; the only Python loops run over chunks, tables, reps,
the two trainings or a few rejection rounds.

The story the data tells: a B2B software vendor whose CRM went live on the first day of the
range. A quarter of its customers are the base imported in the first days (so January of the
first year shows an import spike in `new_customers`); the rest are acquired at a growing rate with
a Q4 peak, a dip around Chinese New Year and in the October Golden Week, and quiet weekends.
Every anchor date lies in the range, so the KPI grid starts at its first month. Three segments
differ in deal size, sales cycle, win rate and churn. Eight reps: five sales reps (one joins in
the second year) and three service agents, in the teams Sales and Service and the regions East
and West. Orders, deals, activities, tickets, calls and surveys belong to customers who exist
(and have not churned) at the time; an in-range customer's first order is placed at its
`created_at` and typed `new`. The sales team goes through two trainings, after which the
trained reps close larger deals for a quarter; a handful of incidents (lost contracts, process
failures) are on record.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow.parquet as pq
import xlsxwriter

__all__ = [
    "CHUNK_CUSTOMERS",
    "SCALES",
    "SampleSize",
    "generate_chunks",
    "generate_tables",
    "write_sample_folder",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 3_600 * US_PER_SECOND
US_PER_DAY = 86_400 * US_PER_SECOND
NEVER = np.iinfo(np.int64).max  # "no churn date" in the churn array


@dataclass(frozen=True)
class SampleSize:
    """Rows per table (approximate where rows are derived or dropped for consistency)."""

    customers: int
    orders: int
    deals: int
    leads: int
    activities: int
    tickets: int
    calls: int
    surveys: int
    campaigns: int
    campaign_members: int


SCALES: dict[str, SampleSize] = {
    "tiny": SampleSize(
        customers=40,
        orders=80,
        deals=30,
        leads=30,
        activities=40,
        tickets=25,
        calls=40,
        surveys=15,
        campaigns=3,
        campaign_members=20,
    ),
    "demo": SampleSize(
        customers=300,
        orders=1_200,
        deals=250,
        leads=300,
        activities=600,
        tickets=300,
        calls=600,
        surveys=200,
        campaigns=12,
        campaign_members=400,
    ),
    "small": SampleSize(
        customers=5_000,
        orders=30_000,
        deals=6_000,
        leads=8_000,
        activities=20_000,
        tickets=8_000,
        calls=15_000,
        surveys=4_000,
        campaigns=40,
        campaign_members=5_000,
    ),
    "medium": SampleSize(
        customers=100_000,
        orders=600_000,
        deals=120_000,
        leads=150_000,
        activities=400_000,
        tickets=150_000,
        calls=400_000,
        surveys=80_000,
        campaigns=200,
        campaign_members=100_000,
    ),
    "large": SampleSize(
        customers=1_000_000,
        orders=10_000_000,
        deals=2_000_000,
        leads=1_000_000,
        activities=5_000_000,
        tickets=2_000_000,
        calls=5_000_000,
        surveys=1_000_000,
        campaigns=1_000,
        campaign_members=2_000_000,
    ),
}
# xlarge is large ten times over, every table alike (more than this machine's memory holds)
SCALES["xlarge"] = SampleSize(**{table: 10 * rows for table, rows in vars(SCALES["large"]).items()})
# Scales generated chunk by chunk (Parquet only): customers per chunk. With 250k customers (2.5M
# order lines) a chunk, xlarge is written in about 5 minutes on 2 CPUs at a 2 GB peak RSS.
CHUNK_CUSTOMERS: dict[str, int] = {"xlarge": 250_000}

# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
SEGMENT_SHARES = (0.15, 0.35, 0.50)
REGIONS = ("East", "West")
REGION_SHARES = (0.55, 0.45)
INDUSTRIES = ("IT", "金融业", "房地产", "商业服务", "运输/物流", "生产", "政府", "文化传媒")
INDUSTRY_WORDS = ("科技", "资本", "置业", "咨询", "物流", "制造", "信息", "传媒")
ACQUISITION_CHANNELS = (
    "Search Engine",
    "Referral",
    "Advertising",
    "Trade Show",
    "Website",
    "Cold Call",
    "Partner",
)
ACQUISITION_SHARES = (0.22, 0.18, 0.15, 0.1, 0.17, 0.08, 0.1)

# Sales reps first (the rep joining in the second year last among them), then service agents.
_REP_NAMES = (
    "Li Wei",
    "Sarah Chen",
    "Zhang Min",
    "David Liu",
    "Zhao Lei",
    "Chen Jing",
    "Emily Wang",
    "Liu Yang",
)
_REP_TEAMS = ("Sales",) * 5 + ("Service",) * 3
_REP_MANAGERS = ("Wang Fang",) * 5 + ("Michael Zhou",) * 3
_REP_REGIONS = ("East", "West", "East", "West", "East", "East", "West", "East")
SALES_REPS = (0, 1, 2, 3, 4)
SERVICE_AGENTS = (5, 6, 7)
NEW_REP = 4  # Zhao Lei joins 14 months after the start of the range
NEW_REP_JOIN_MONTHS = 14

PRODUCTS = (
    "CRM Basic",
    "CRM Pro",
    "Analytics Add-on",
    "Server Appliance",
    "IoT Gateway",
    "Implementation",
    "Support Plan",
    "Onsite Training",
    "Online Course",
)
PRODUCT_CATEGORY = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3])
CATEGORIES = ("Software", "Hardware", "Services", "Training")
PRODUCT_PRICE = np.array([3000, 12000, 5000, 25000, 2500, 15000, 6000, 8000, 800], dtype=float)
PRODUCT_SHARES = (0.14, 0.16, 0.1, 0.06, 0.1, 0.1, 0.14, 0.08, 0.12)
MARGIN_LOW = np.array([0.45, 0.30, 0.35, 0.40])  # gross margin range by category
MARGIN_HIGH = np.array([0.60, 0.40, 0.50, 0.55])
ORDER_CHANNELS = ("Direct", "Online", "Partner", "WeChat")
ORDER_CHANNEL_SHARES = (0.4, 0.3, 0.2, 0.1)
ORDER_TYPES = ("new", "repeat", "upsell", "cross_sell")
ORDER_STATUSES = ("completed", "cancelled", "refunded")

DEAL_STATUSES = ("open", "won", "lost")
OPEN_STAGES = ("验证客户", "需求分析", "方案/报价")  # 悟空CRM's seeded 销售流程商机组
OPEN_STAGE_PROBABILITY = np.array([0.2, 0.3, 0.8])
OPEN_STAGE_SHARES = (0.45, 0.35, 0.2)
WON_STAGE, LOST_STAGE = "赢单", "输单"
DEAL_TYPES = ("new_business", "upsell", "cross_sell", "renewal")
DEAL_TYPE_SHARES = (0.45, 0.25, 0.15, 0.15)
DEAL_TYPES_CN = ("新业务", "增购", "交叉销售", "续约")
DEAL_MEDIAN_AMOUNT = np.array([150_000.0, 40_000.0, 8_000.0])
DEAL_MEDIAN_CYCLE_DAYS = np.array([75.0, 40.0, 18.0])
DEAL_WIN_RATE = np.array([0.2, 0.3, 0.4])
DEAL_TYPE_WIN_BONUS = np.array([0.0, 0.05, 0.05, 0.25])

LEAD_STATUSES = ("open", "converted", "disqualified")
ACTIVITY_TYPES = ("call", "email", "meeting", "visit", "chat")
ACTIVITY_SHARES = (0.35, 0.3, 0.15, 0.1, 0.1)
ACTIVITY_COST_MEDIAN = np.array([3.0, 0.2, 80.0, 300.0, 0.5])
DIRECTIONS = ("inbound", "outbound")

TICKET_CHANNELS = ("Phone", "Email", "Chat", "Web")
TICKET_CHANNEL_SHARES = (0.35, 0.3, 0.25, 0.1)
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_SHARES = (0.25, 0.5, 0.2, 0.05)
PRIORITY_RESPONSE_HOURS = np.array([12.0, 6.0, 2.0, 0.5])
TICKET_STATUSES = ("open", "pending", "resolved", "closed")

CALL_OUTCOMES = ("answered", "abandoned", "blocked")
CALL_OUTCOME_SHARES = (0.84, 0.11, 0.05)
QUEUES = ("Support", "Billing", "Sales")
QUEUE_SHARES = (0.6, 0.25, 0.15)

SURVEY_TYPES = ("csat", "nps", "ad_awareness", "ad_rating")
SURVEY_CHANNELS = ("Email", "SMS", "WeChat")
AD_SURVEY_SHARE = 0.1  # of the survey rows: advertising surveys, taken from the NPS budget
AD_AWARENESS_START, AD_AWARENESS_END = 0.3, 0.5  # aware share, rising over the range
AD_RATING_SHARES = (0.05, 0.12, 0.3, 0.35, 0.18)  # scores 1..5
CSAT_SHARES = (0.04, 0.06, 0.15, 0.40, 0.35)  # scores 1..5
NPS_SHARES = (0.02, 0.01, 0.02, 0.03, 0.03, 0.06, 0.08, 0.15, 0.2, 0.2, 0.2)  # scores 0..10

# Two team trainings: (program, days after the start of the range, share of the sales reps on
# board who attend). Deals a trained rep closes in the TRAINING_WINDOW_DAYS after it are
# TRAINING_LIFT larger (the lift training_effectiveness should find).
TRAININGS = (
    ("Consultative selling", 400, 1.0),
    ("Product certification", 540, 0.6),
)
TRAINING_WINDOW_DAYS = 90
TRAINING_LIFT = 1.25

INCIDENT_KINDS = ("document_lost", "process_failure", "other")
INCIDENT_SHARES = (0.4, 0.45, 0.15)
INCIDENT_DESCRIPTIONS = (
    ("合同原件遗失", "客户档案未归档", "报价单找不到"),
    ("审批流程被跳过", "客户重复录入", "回款未登记"),
    ("系统停机", "权限配置错误"),
)

CAMPAIGN_CHANNELS = ("Email", "WeChat", "Baidu Ads", "Douyin Ads", "Trade Show", "Webinar")
CAMPAIGN_CHANNEL_SHARES = (0.2, 0.2, 0.2, 0.15, 0.1, 0.15)
AD_CAMPAIGN_CHANNELS = (2, 3)

SPEND_CATEGORIES = ("marketing", "sales", "advertising", "service")
SPEND_CHANNELS: dict[int, tuple[str, ...]] = {
    0: ("Content", "Events", "Email", "WeChat"),
    1: ("Travel", "Commission", "Sales Tools"),
    2: ("Baidu Ads", "Douyin Ads", "WeChat Ads"),
    3: ("Call Centre", "Helpdesk Software", "Outsourcing"),
}
SPEND_SHARE_OF_REVENUE = np.array([0.04, 0.08, 0.03, 0.05])  # besides the campaign spend
SPEND_CATEGORY_ROWS = (0.25, 0.3, 0.2, 0.25)
CAMPAIGN_SHARE_OF_REVENUE = 0.05

# Month factors (Q4 peak), holiday dips (Chinese New Year, October Golden Week).
MONTH_FACTOR = np.array([0.95, 0.85, 1.0, 1.0, 1.0, 1.05, 0.95, 0.95, 1.05, 1.0, 1.25, 1.4])
CHINESE_NEW_YEAR = {
    2019: dt.date(2019, 2, 5),
    2020: dt.date(2020, 1, 25),
    2021: dt.date(2021, 2, 12),
    2022: dt.date(2022, 2, 1),
    2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
    2028: dt.date(2028, 1, 26),
    2029: dt.date(2029, 2, 13),
    2030: dt.date(2030, 2, 3),
}

# Company names, e-mail domains and addresses for the customer profile fields.
CITIES = (("上海", "杭州", "南京", "苏州", "宁波"), ("成都", "重庆", "西安", "昆明", "贵阳"))
BRANDS = (
    "云帆",
    "华信",
    "智远",
    "恒通",
    "新锐",
    "博达",
    "联创",
    "鼎盛",
    "天成",
    "启明",
    "瑞丰",
    "卓越",
)
BRANDS_EN = ("Bluewave", "Northstar", "Summit", "Evergreen", "Redwood", "Pinnacle", "Silverline")
TRADES_EN = ("Technologies", "Trading", "Logistics", "Consulting", "Media", "Manufacturing")
MAIL_DOMAINS = ("163.com", "qq.com", "example.com", "example.cn")
DISTRICTS = ("浦东新", "西湖", "鼓楼", "高新", "武侯", "渝中", "雁塔", "滨江")
ROADS = ("人民", "中山", "解放", "建设", "科技", "长江", "文化")

TABLE_ORDER = (
    "customers",
    "orders",
    "deals",
    "leads",
    "activities",
    "tickets",
    "calls",
    "surveys",
    "spend",
    "budgets",
    "campaigns",
    "campaign_members",
    "quotas",
    "reps",
    "agent_shifts",
    "trainings",
    "incidents",
)
# Random streams beyond one per table (appended, so the tables' own streams never move).
_STREAMS = (*TABLE_ORDER, "ad_surveys")
_MONEY = frozenset({"amount", "cost", "budget", "revenue", "quota_amount"})

# --------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, n: int, shares: Sequence[float] | FloatArray) -> IntArray:
    """n draws of an index with the given shares (normalised), by one searchsorted."""
    cdf = np.cumsum(np.asarray(shares, dtype=float))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1).astype(
        np.int64
    )


def _width(n: int) -> int:
    return max(6, len(str(n + 100)))


def _id_text(prefix: str, number: int, width: int) -> str:
    return f"{prefix}{number:0{width}d}"


def _ids(prefix: str, n: int, width: int | None = None) -> pl.Series:
    """`prefix` + 1..n zero-padded to `width` digits (ids in creation order)."""
    width = width or _width(n)
    frame = pl.DataFrame({"i": np.arange(1, n + 1, dtype=np.int64) + 10**width})
    return frame.select(
        pl.format(prefix + "{}", pl.col("i").cast(pl.String).str.slice(1)).alias("id")
    ).to_series()


def _text(values: Sequence[str], codes: IntArray, name: str) -> pl.Series:
    """Look `codes` up in `values`; a negative code is null."""
    frame = pl.DataFrame({"c": codes})
    lookup = pl.Series(list(values), dtype=pl.String)
    return frame.select(
        pl.lit(lookup).gather(pl.when(pl.col("c") >= 0).then(pl.col("c"))).alias(name)
    ).to_series()


def _masked(series: pl.Series, valid: BoolArray | None) -> pl.Series:
    if valid is None or bool(valid.all()):
        return series
    frame = pl.DataFrame({"v": series, "ok": valid})
    return frame.select(pl.when(pl.col("ok")).then(pl.col("v")).alias(series.name)).to_series()


def _datetime(us: IntArray, name: str, valid: BoolArray | None = None) -> pl.Series:
    series = pl.Series(name, np.where(valid, us, 0) if valid is not None else us, pl.Int64)
    return _masked(series, valid).cast(pl.Datetime("us"))


def _date(us: IntArray, name: str, valid: BoolArray | None = None) -> pl.Series:
    return _datetime(us, name, valid).cast(pl.Date)


def _float(values: FloatArray, name: str, valid: BoolArray | None = None) -> pl.Series:
    data = np.where(valid, values, np.nan) if valid is not None else values
    return pl.Series(name, data, pl.Float64, nan_to_null=True)


def _bool(values: BoolArray, name: str, valid: BoolArray | None = None) -> pl.Series:
    return _masked(pl.Series(name, values, pl.Boolean), valid)


def _money(values: FloatArray) -> FloatArray:
    return np.round(values, 2)


@dataclass(frozen=True)
class _Calendar:
    """The days of the range with their seasonal weights; times are microseconds since 1970."""

    start: dt.date
    end: dt.date
    day_us: IntArray
    weekday: IntArray
    month: IntArray
    years: FloatArray
    holiday: FloatArray

    @classmethod
    def build(cls, start: dt.date, end: dt.date) -> _Calendar:
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        days = np.arange(
            np.datetime64(start, "D"), np.datetime64(end, "D") + 1, dtype="datetime64[D]"
        )
        day_us = days.astype("datetime64[us]").astype(np.int64)
        weekday = ((days.astype(np.int64) + 3) % 7).astype(np.int64)  # 1970-01-01 was Thursday
        month = (days.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int64)
        years = (np.arange(len(days)) / 365.25).astype(float)
        holiday = np.ones(len(days))
        day_numbers = days.astype(np.int64)
        for year in range(start.year - 1, end.year + 2):
            marks: list[tuple[dt.date, int, int, float]] = [
                (dt.date(year, 10, 1), 0, 7, 0.4),  # Golden Week
            ]
            if year in CHINESE_NEW_YEAR:
                new_year = CHINESE_NEW_YEAR[year]
                marks += [(new_year, -7, -2, 0.7), (new_year, -2, 8, 0.25)]
            for anchor, first, last, factor in marks:
                anchor_day = int(np.datetime64(anchor, "D").astype(np.int64))
                window = (day_numbers >= anchor_day + first) & (day_numbers < anchor_day + last)
                holiday[window] *= factor
        return cls(start, end, day_us, weekday, month, years, holiday)

    @property
    def n_days(self) -> int:
        return len(self.day_us)

    @property
    def start_us(self) -> int:
        return int(self.day_us[0])

    @property
    def end_us(self) -> int:
        """Exclusive: midnight after the last day."""
        return int(self.day_us[-1]) + US_PER_DAY

    def season(self, weekend: float, amplitude: float = 1.0, growth: float = 0.0) -> FloatArray:
        """Relative activity per day: month and holiday pattern (scaled by `amplitude`)."""
        pattern = MONTH_FACTOR[self.month - 1] * self.holiday
        weights = 1.0 + amplitude * (pattern - 1.0)
        weights = weights * np.where(self.weekday >= 5, weekend, 1.0)
        return weights * np.exp(growth * self.years)

    def draw_days(self, rng: np.random.Generator, weights: FloatArray, n: int) -> IntArray:
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), self.n_days - 1)

    def day_of(self, us: IntArray) -> IntArray:
        return (us - self.start_us) // US_PER_DAY

    def floor_day(self, us: IntArray) -> IntArray:
        return self.start_us + self.day_of(us) * US_PER_DAY

    def at(self, day: IntArray, time_of_day: IntArray) -> IntArray:
        return self.day_us[day] + time_of_day


def _time_of_day(rng: np.random.Generator, n: int, resolution_us: int = US_PER_SECOND) -> IntArray:
    """Business hours mostly (peak early afternoon), some at any hour; whole `resolution_us`."""
    business = rng.random(n) < 0.92
    hours = np.where(business, rng.normal(13.0, 2.6, n), rng.uniform(0.0, 24.0, n))
    hours = np.clip(hours, 0.0, 23.9997)
    us = (hours * US_PER_HOUR).astype(np.int64)
    return us // resolution_us * resolution_us


def _join_us(calendar: _Calendar) -> IntArray:
    """When each rep may first own records (start of range, or the second-year join date)."""
    joined = np.full(len(_REP_NAMES), calendar.start_us, dtype=np.int64)
    month = calendar.start.month - 1 + NEW_REP_JOIN_MONTHS
    join_date = dt.date(calendar.start.year + month // 12, month % 12 + 1, 1)
    joined[NEW_REP] = int(np.datetime64(join_date, "us").astype(np.int64))
    return joined


def _choose_reps(
    rng: np.random.Generator,
    when_us: IntArray,
    roster: Sequence[int],
    joined_us: IntArray,
    region: IntArray | None = None,
) -> IntArray:
    """A random rep of `roster` already on board at `when_us` (and in `region` when given)."""
    members = np.asarray(roster, dtype=np.int64)
    active = joined_us[members][None, :] <= when_us[:, None]
    if region is not None:
        rep_region = np.array([REGIONS.index(_REP_REGIONS[r]) for r in members])
        active &= rep_region[None, :] == region[:, None]
    scores = rng.random(active.shape) * active
    chosen = members[np.argmax(scores, axis=1)]
    return np.where(active.any(axis=1), chosen, members[0]).astype(np.int64)


@dataclass(frozen=True)
class _Customers:
    ids: pl.Series
    created_us: IntArray  # sorted ascending (ids are in creation order)
    churned_us: IntArray  # NEVER when not churned
    imported: BoolArray  # part of the base imported at go-live (no acquisition order)
    segment: IntArray
    region: IntArray
    industry: IntArray
    rep: IntArray
    channel: IntArray
    alive: FloatArray  # customers alive per day of the calendar

    def pick(self, rng: np.random.Generator, when_us: IntArray, rounds: int = 8) -> IntArray:
        """A random customer created before `when_us` and not churned by it (-1 if none)."""
        return _pick_existing(rng, when_us, self.created_us, self.churned_us, rounds)


def _pick_existing(
    rng: np.random.Generator,
    when_us: IntArray,
    created_us: IntArray,
    ended_us: IntArray | None,
    rounds: int = 8,
) -> IntArray:
    """Index of a random record created strictly before each time and not ended by it.

    `created_us` must be sorted, so "created before t" is a prefix of the records; a draw that
    hits an ended record is redrawn, a few rounds for the whole column at once.
    """
    chosen = np.full(len(when_us), -1, dtype=np.int64)
    todo = np.arange(len(when_us))
    for _ in range(rounds):
        if not len(todo):
            break
        count = np.searchsorted(created_us, when_us[todo], side="left")
        candidate = np.minimum(
            (rng.random(len(todo)) * count).astype(np.int64), len(created_us) - 1
        )
        ok = count > 0
        if ended_us is not None:
            ok &= ended_us[candidate] > when_us[todo]
        chosen[todo[ok]] = candidate[ok]
        todo = todo[~ok]
    return chosen


def _base_weights(
    calendar: _Calendar, customers: _Customers, weekend: float, amplitude: float = 1.0
) -> FloatArray:
    """Event intensity per day: the live customer base times the seasonal pattern."""
    floor = 0.05 * float(customers.alive.mean()) + 1.0
    return calendar.season(weekend, amplitude) * (customers.alive + floor)


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------


def _ad_surveys(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize, customers: _Customers
) -> pl.DataFrame:
    """Advertising surveys of live customers (without ids): half ask whether they noticed the
    ad (1 aware, 0 not; the aware share rises over the range as the campaigns add up), half
    rate the ad 1..5."""
    n = round(AD_SURVEY_SHARE * size.surveys)
    days = calendar.draw_days(rng, _base_weights(calendar, customers, 0.4, 0.3), n)
    at = np.sort(calendar.at(days, _time_of_day(rng, n)))
    customer = customers.pick(rng, at)
    keep = customer >= 0
    at, customer = at[keep], customer[keep]
    n = len(at)
    rating = rng.random(n) < 0.5
    progress = (at - calendar.start_us) / (calendar.end_us - calendar.start_us)
    aware_share = AD_AWARENESS_START + (AD_AWARENESS_END - AD_AWARENESS_START) * progress
    aware = (rng.random(n) < aware_share).astype(float)
    rated = 1.0 + _choice(rng, n, AD_RATING_SHARES).astype(float)
    return pl.DataFrame(
        [
            pl.Series("response_id", [None] * n, pl.String),
            _datetime(at, "responded_at"),
            _text(SURVEY_TYPES, np.where(rating, 3, 2), "survey_type"),
            _float(np.where(rating, rated, aware), "score"),
            customers.ids.gather(customer).alias("customer_id"),
            _text(_REP_NAMES, customers.rep[customer], "rep"),
            pl.Series("ticket_id", [None] * n, pl.String),
            _text(SURVEY_CHANNELS, _choice(rng, n, (0.6, 0.1, 0.3)), "channel"),
        ]
    )


def _numbered_surveys(*parts: pl.DataFrame) -> pl.DataFrame:
    """The survey rows of every kind in response order, with ids in that order."""
    surveys = pl.concat(parts).sort("responded_at", maintain_order=True)
    return surveys.with_columns(_ids("SV", surveys.height).alias("response_id"))


def _trainings(rng: np.random.Generator, calendar: _Calendar, joined_us: IntArray) -> pl.DataFrame:
    """The team trainings of TRAININGS, each on a weekday near its planned day, attended by
    that share of the sales reps on board (at least one); only trainings whose window before
    and after fits in the range are held."""
    window = TRAINING_WINDOW_DAYS
    rows: list[pl.DataFrame] = []
    for program, planned_day, share in TRAININGS:
        day = planned_day + int(rng.integers(0, 14))
        if day < window or day + 2 + window >= calendar.n_days:
            continue
        if calendar.weekday[day] >= 5:  # a weekend: the Monday after
            day += 7 - int(calendar.weekday[day])
        reps = np.asarray([r for r in SALES_REPS if joined_us[r] <= calendar.day_us[day]])
        attending = max(1, round(share * len(reps)))
        chosen = np.sort(rng.permutation(reps)[:attending])
        rows.append(
            pl.DataFrame(
                [
                    _text(_REP_NAMES, chosen, "rep"),
                    _date(np.full(len(chosen), calendar.day_us[day]), "trained_on"),
                    pl.Series("program", [program] * len(chosen), pl.String),
                ]
            )
        )
    schema = {"rep": pl.String, "trained_on": pl.Date, "program": pl.String}
    return pl.concat(rows) if rows else pl.DataFrame(schema=schema)


def _after_training(deals: pl.DataFrame, trainings: pl.DataFrame) -> pl.DataFrame:
    """Deals a trained rep closes in the TRAINING_WINDOW_DAYS after the training day are
    TRAINING_LIFT larger (in whole hundreds, as every deal amount)."""
    closed_on = pl.col("closed_at").dt.date()
    lifted = (
        deals.select("deal_id", "rep", closed_on.alias("closed_on"))
        .join(trainings.select("rep", "trained_on"), on="rep", how="inner")
        .filter(
            (pl.col("closed_on") > pl.col("trained_on"))
            & (pl.col("closed_on") <= pl.col("trained_on") + pl.duration(days=TRAINING_WINDOW_DAYS))
        )
        .select("deal_id")
        .unique()
    )
    boost = pl.col("deal_id").is_in(lifted["deal_id"].implode())
    return deals.with_columns(
        pl.when(boost)
        .then((pl.col("amount") * TRAINING_LIFT / 100.0).round(0) * 100.0)
        .otherwise(pl.col("amount"))
        .alias("amount")
    )


def _incidents(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize, joined_us: IntArray
) -> pl.DataFrame:
    """A handful of recorded incidents: lost contracts and files, process failures, others;
    most name the rep involved and every one the team (its own column, as the export has it)."""
    n = max(6, size.deals // 40)
    days = calendar.draw_days(rng, calendar.season(0.1, amplitude=0.5), n)
    at = np.sort(calendar.at(days, _time_of_day(rng, n)))
    kind = _choice(rng, n, INCIDENT_SHARES)
    rep = _choose_reps(rng, at, range(len(_REP_NAMES)), joined_us)
    named = rng.random(n) < 0.85
    descriptions = [d for group in INCIDENT_DESCRIPTIONS for d in group]
    sizes = np.array([len(group) for group in INCIDENT_DESCRIPTIONS])
    first = np.cumsum(sizes) - sizes  # where each kind's descriptions start in the flat list
    description = first[kind] + rng.integers(0, sizes[kind])
    return pl.DataFrame(
        [
            _ids("INC", n).alias("incident_id"),
            _datetime(at, "occurred_at"),
            _text(INCIDENT_KINDS, kind, "kind"),
            _text(_REP_NAMES, np.where(named, rep, -1), "rep"),
            _text(_REP_TEAMS, rep, "team"),
            _text(descriptions, description, "description"),
        ]
    )


def _reps_table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "rep": list(_REP_NAMES),
            "team": list(_REP_TEAMS),
            "manager": list(_REP_MANAGERS),
            "region": list(_REP_REGIONS),
            "active": [True] * len(_REP_NAMES),
        },
        schema={
            "rep": pl.String,
            "team": pl.String,
            "manager": pl.String,
            "region": pl.String,
            "active": pl.Boolean,
        },
    )


def _customer_records(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize, joined_us: IntArray
) -> _Customers:
    """Who the customers are and when they live: what every other table draws on. The profile
    fields come after, from the same stream (`_customer_frame`), so these can be drawn again
    alone."""
    n = size.customers
    n_import = round(n * 0.25)
    # The base imported at go-live: created on the 2nd..12th day of the range.
    import_days = rng.integers(1, 12, n_import)
    acquired_days = calendar.draw_days(rng, calendar.season(0.3, growth=0.35), n - n_import)
    days = np.minimum(np.concatenate([import_days, acquired_days]), calendar.n_days - 1)
    created = calendar.at(days, _time_of_day(rng, n))
    imported = np.arange(n) < n_import
    order = np.argsort(created, kind="stable")
    created, imported = created[order], imported[order]

    segment = _choice(rng, n, SEGMENT_SHARES)
    region = _choice(rng, n, REGION_SHARES)
    industry = _choice(rng, n, [1.0] * len(INDUSTRIES))
    channel = _choice(rng, n, ACQUISITION_SHARES)
    rep = _choose_reps(rng, created, SALES_REPS, joined_us, region)
    annual_churn = np.array([0.08, 0.15, 0.25])[segment]
    lifetime_days = 30.0 + rng.exponential(365.25 / annual_churn)
    churned = created + (lifetime_days * 86_400).astype(np.int64) * US_PER_SECOND
    churned = np.where(churned < calendar.end_us, churned, NEVER)

    day_created = np.clip(calendar.day_of(created), 0, calendar.n_days - 1)
    day_churned = np.where(
        churned == NEVER, calendar.n_days, calendar.day_of(np.minimum(churned, calendar.end_us))
    )
    alive = np.cumsum(np.bincount(day_created, minlength=calendar.n_days)) - np.cumsum(
        np.bincount(np.minimum(day_churned, calendar.n_days), minlength=calendar.n_days + 1)[
            : calendar.n_days
        ]
    )
    return _Customers(
        ids=_ids("C", n, _width(n)).alias("customer_id"),
        created_us=created,
        churned_us=churned,
        imported=imported,
        segment=segment,
        region=region,
        industry=industry,
        rep=rep,
        channel=channel,
        alive=alive.astype(float),
    )


def _customer_frame(rng: np.random.Generator, customers: _Customers) -> pl.DataFrame:
    """The customers table: the records and their profile fields, some blank: company names
    (Chinese or English), e-mail, mobile, address."""
    n = len(customers.created_us)
    number = pl.Series(np.arange(1, n + 1, dtype=np.int64)).cast(pl.String)
    city_codes = customers.region * len(CITIES[0]) + rng.integers(0, len(CITIES[0]), n)
    cities = [c for group in CITIES for c in group]
    english = rng.random(n) < 0.25
    parts = pl.DataFrame(
        {
            "city": _text(cities, city_codes, "city"),
            "brand": _text(BRANDS, rng.integers(0, len(BRANDS), n), "brand"),
            "word": _text(INDUSTRY_WORDS, customers.industry, "word"),
            "brand_en": _text(BRANDS_EN, rng.integers(0, len(BRANDS_EN), n), "brand_en"),
            "trade_en": _text(TRADES_EN, rng.integers(0, len(TRADES_EN), n), "trade_en"),
            "english": english,
            "number": number,
            "domain": _text(MAIL_DOMAINS, rng.integers(0, len(MAIL_DOMAINS), n), "domain"),
            "mobile": pl.Series(rng.integers(0, 10**9, n)).cast(pl.String).str.zfill(9),
            "mobile_prefix": _text(("13", "15", "18"), rng.integers(0, 3, n), "mp"),
            "district": _text(DISTRICTS, rng.integers(0, len(DISTRICTS), n), "district"),
            "road": _text(ROADS, rng.integers(0, len(ROADS), n), "road"),
            "house": pl.Series(rng.integers(1, 999, n)).cast(pl.String),
            "no_name": rng.random(n) < 0.03,
            "no_email": rng.random(n) < 0.12,
            "no_phone": rng.random(n) < 0.08,
            "no_address": rng.random(n) < 0.15,
        }
    )
    profile = parts.select(
        pl.when(pl.col("no_name"))
        .then(None)
        .when(pl.col("english"))
        .then(pl.format("{} {} Ltd.", "brand_en", "trade_en"))
        .otherwise(pl.format("{}{}{}有限公司", "city", "brand", "word"))
        .alias("name"),
        pl.when(pl.col("no_email"))
        .then(None)
        .otherwise(pl.format("contact{}@{}", "number", "domain"))
        .alias("email"),
        pl.when(pl.col("no_phone"))
        .then(None)
        .otherwise(pl.format("{}{}", "mobile_prefix", "mobile"))
        .alias("phone"),
        pl.when(pl.col("no_address"))
        .then(None)
        .otherwise(pl.format("{}市{}区{}路{}号", "city", "district", "road", "house"))
        .alias("address"),
    )
    has_churned = customers.churned_us != NEVER
    return pl.DataFrame(
        [
            customers.ids,
            _datetime(customers.created_us, "created_at"),
            _datetime(customers.churned_us, "churned_at", has_churned),
            _bool(has_churned, "churned"),
            _text(SEGMENTS, customers.segment, "segment"),
            _text(REGIONS, customers.region, "region"),
            _text(INDUSTRIES, customers.industry, "industry"),
            _text(_REP_NAMES, customers.rep, "rep"),
            _text(ACQUISITION_CHANNELS, customers.channel, "acquisition_channel"),
        ]
    ).hstack(profile)


def _orders(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize, customers: _Customers
) -> pl.DataFrame:
    n_orders = max(1, round(size.orders / 1.2))  # ~1.2 lines per order
    acquired = np.flatnonzero(~customers.imported)
    if len(acquired) > n_orders:
        acquired = np.sort(rng.permutation(acquired)[:n_orders])
    n_random = n_orders - len(acquired)
    days = calendar.draw_days(rng, _base_weights(calendar, customers, 0.45), n_random)
    when = np.sort(calendar.at(days, _time_of_day(rng, n_random)))  # sorted keys: fast lookups
    picked = customers.pick(rng, when)
    keep = picked >= 0
    customer = np.concatenate([acquired, picked[keep]])
    when = np.concatenate([customers.created_us[acquired], when[keep]])
    first = np.concatenate([np.ones(len(acquired), bool), np.zeros(int(keep.sum()), bool)])
    order = np.argsort(when, kind="stable")  # merges two sorted runs
    customer, when, first = customer[order], when[order], first[order]
    n_orders = len(customer)

    status = np.where(first, 0, _choice(rng, n_orders, (0.94, 0.04, 0.02)))
    order_type = np.where(first, 0, 1 + _choice(rng, n_orders, (0.75, 0.13, 0.12)))
    channel = _choice(rng, n_orders, ORDER_CHANNEL_SHARES)
    draws = rng.random(n_orders)
    lines = 1 + (draws < 0.15) + (draws < 0.04)
    row_order = np.repeat(np.arange(n_orders), lines)
    n = len(row_order)

    segment = customers.segment[customer][row_order]
    product = _choice(rng, n, PRODUCT_SHARES)
    category = PRODUCT_CATEGORY[product]
    quantity = np.minimum(rng.geometric(np.array([0.12, 0.35, 0.6])[segment]), 50).astype(float)
    amount = _money(PRODUCT_PRICE[product] * quantity * rng.uniform(0.8, 1.0, n))
    margin = rng.uniform(MARGIN_LOW[category], MARGIN_HIGH[category])
    cost = _money(amount * (1.0 - margin))
    return pl.DataFrame(
        [
            _ids("O", n_orders).gather(row_order).alias("order_id"),
            customers.ids.gather(customer[row_order]).alias("customer_id"),
            _datetime(when[row_order], "ordered_at"),
            _float(amount, "amount"),
            _float(quantity, "quantity"),
            _float(cost, "cost"),
            _text(PRODUCTS, product, "product"),
            _text(CATEGORIES, category, "category"),
            _text(ORDER_CHANNELS, channel[row_order], "channel"),
            _text(_REP_NAMES, customers.rep[customer][row_order], "rep"),
            _text(ORDER_TYPES, order_type[row_order], "order_type"),
            _text(ORDER_STATUSES, status[row_order], "status"),
        ]
    )


def _deals(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize, customers: _Customers
) -> pl.DataFrame:
    n = size.deals
    days = calendar.draw_days(rng, _base_weights(calendar, customers, 0.15), n)
    created = np.sort(calendar.at(days, _time_of_day(rng, n, US_PER_MINUTE)))
    customer = customers.pick(rng, created)
    keep = customer >= 0
    created, customer = created[keep], customer[keep]
    n = len(created)

    segment = customers.segment[customer]
    amount = np.maximum(
        np.round(rng.lognormal(np.log(DEAL_MEDIAN_AMOUNT[segment]), 0.6) / 100.0) * 100.0, 500.0
    )
    deal_type = _choice(rng, n, DEAL_TYPE_SHARES)
    cycle_days = np.maximum(
        1, np.round(rng.lognormal(np.log(DEAL_MEDIAN_CYCLE_DAYS[segment]), 0.55))
    ).astype(np.int64)
    closed_at = calendar.floor_day(created) + cycle_days * US_PER_DAY  # a close date: midnight
    closed = (closed_at < calendar.end_us) & (rng.random(n) >= 0.07)  # some go stale
    win_rate = np.minimum(DEAL_WIN_RATE[segment] + DEAL_TYPE_WIN_BONUS[deal_type], 0.95)
    won = closed & (rng.random(n) < win_rate)
    status = np.where(closed, np.where(won, 1, 2), 0)
    open_stage = _choice(rng, n, OPEN_STAGE_SHARES)
    stage_codes = np.where(closed, np.where(won, 3, 4), open_stage)
    probability = np.where(closed, np.where(won, 1.0, 0.0), OPEN_STAGE_PROBABILITY[open_stage])
    lead_source = np.where(deal_type == 0, customers.channel[customer], len(ACQUISITION_CHANNELS))
    return pl.DataFrame(
        [
            _ids("D", n).alias("deal_id"),
            _datetime(created, "created_at"),
            _text(DEAL_STATUSES, status, "status"),
            _datetime(closed_at, "closed_at", closed),
            _float(amount, "amount"),
            _float(probability, "probability"),
            _text((*OPEN_STAGES, WON_STAGE, LOST_STAGE), stage_codes, "stage"),
            _text(DEAL_TYPES, deal_type, "deal_type"),
            customers.ids.gather(customer).alias("customer_id"),
            _text(_REP_NAMES, customers.rep[customer], "rep"),
            _text((*ACQUISITION_CHANNELS, "Existing Account"), lead_source, "lead_source"),
            _text(PRODUCTS, _choice(rng, n, PRODUCT_SHARES), "product"),
        ]
    )


@dataclass(frozen=True)
class _Campaigns:
    started_us: IntArray  # sorted (ids in start order); midnight
    ended_us: IntArray  # last day, midnight; NEVER while still running at the end of the range
    channel: IntArray

    @property
    def last_us(self) -> IntArray:
        """Exclusive end of the active window, within the range."""
        return np.where(self.ended_us == NEVER, NEVER, self.ended_us + US_PER_DAY)


def _campaign_windows(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize
) -> _Campaigns:
    n = size.campaigns
    days = np.sort(calendar.draw_days(rng, calendar.season(0.05, growth=0.2), n))
    duration = rng.integers(14, 61, n)
    started = calendar.day_us[days]
    ended = started + (duration - 1) * US_PER_DAY
    ended = np.where(ended < calendar.end_us, ended, NEVER)
    return _Campaigns(started, ended, _choice(rng, n, CAMPAIGN_CHANNEL_SHARES))


def _leads(
    rng: np.random.Generator,
    calendar: _Calendar,
    size: SampleSize,
    customers: _Customers,
    campaigns: _Campaigns,
    joined_us: IntArray,
) -> tuple[IntArray, pl.DataFrame]:
    n = size.leads
    acquired = np.flatnonzero(~customers.imported)
    n_converted = min(len(acquired), round(0.25 * n))
    converted_customer = np.sort(rng.permutation(acquired)[:n_converted])
    converted_at = customers.created_us[converted_customer]
    lag = (rng.lognormal(np.log(21.0), 0.8, n_converted) * US_PER_DAY).astype(np.int64)
    room = converted_at - calendar.start_us
    lag = np.where(lag < room, lag, (rng.random(n_converted) * room).astype(np.int64))
    lag = lag // US_PER_SECOND * US_PER_SECOND

    n_other = n - n_converted
    days = calendar.draw_days(rng, calendar.season(0.5, growth=0.3), n_other)
    other_created = calendar.at(days, _time_of_day(rng, n_other))
    age_days = (calendar.end_us - other_created) / US_PER_DAY
    disqualified = rng.random(n_other) < 0.75 * (1.0 - np.exp(-age_days / 45.0))

    created = np.concatenate([converted_at - lag, other_created])
    status = np.concatenate([np.ones(n_converted, np.int64), np.where(disqualified, 2, 0)])
    customer = np.concatenate([converted_customer, np.full(n_other, -1, np.int64)])
    order = np.argsort(created, kind="stable")
    created, status, customer = created[order], status[order], customer[order]
    is_converted = customer >= 0
    safe_customer = np.maximum(customer, 0)

    source = np.where(
        is_converted, customers.channel[safe_customer], _choice(rng, n, ACQUISITION_SHARES)
    )
    other_rep = _choose_reps(rng, created, SALES_REPS, joined_us)
    rep = np.where(is_converted, customers.rep[safe_customer], other_rep)
    # Attribute a lead to the latest campaign running when it came in (half of those that can).
    latest = np.searchsorted(campaigns.started_us, created, side="right") - 1
    running = latest >= 0
    safe_latest = np.maximum(latest, 0)
    running &= campaigns.last_us[safe_latest] > created if len(campaigns.started_us) else False
    campaign = np.where(running & (rng.random(n) < 0.5), latest, -1)
    converted_us = np.where(is_converted, customers.created_us[safe_customer], 0)
    frame = pl.DataFrame(
        [
            _ids("L", n).alias("lead_id"),
            _datetime(created, "created_at"),
            _text(LEAD_STATUSES, status, "status"),
            _datetime(converted_us, "converted_at", is_converted),
            _text(ACQUISITION_CHANNELS, source, "source"),
            _text(_REP_NAMES, rep, "rep"),
            _campaign_ids(len(campaigns.started_us), campaign, "campaign_id"),
            _masked(customers.ids.gather(safe_customer), is_converted).alias("customer_id"),
        ]
    )
    return created, frame


def _campaign_ids(n_campaigns: int, codes: IntArray, name: str) -> pl.Series:
    ids = _ids("CMP", n_campaigns, 4) if n_campaigns else pl.Series([], dtype=pl.String)
    return _text(ids.to_list(), codes, name)


def _activities(
    rng: np.random.Generator,
    calendar: _Calendar,
    size: SampleSize,
    customers: _Customers,
    joined_us: IntArray,
) -> pl.DataFrame:
    n = size.activities
    days = calendar.draw_days(rng, _base_weights(calendar, customers, 0.1), n)
    when = np.sort(calendar.at(days, _time_of_day(rng, n)))
    customer = customers.pick(rng, when)
    customer = np.where(rng.random(n) < 0.08, -1, customer)
    known = customer >= 0
    safe = np.maximum(customer, 0)
    rep = customers.rep[safe]
    rep[~known] = _choose_reps(rng, when[~known], SALES_REPS, joined_us)
    kind = _choice(rng, n, ACTIVITY_SHARES)
    directed = (kind == 0) | (kind == 1) | (kind == 4)
    direction = np.where(directed, np.where(rng.random(n) < 0.75, 1, 0), -1)
    cost = _money(rng.lognormal(np.log(ACTIVITY_COST_MEDIAN[kind]), 0.5))
    return pl.DataFrame(
        [
            _ids("A", n).alias("activity_id"),
            _datetime(when, "occurred_at"),
            _text(ACTIVITY_TYPES, kind, "type"),
            _text(_REP_NAMES, rep, "rep"),
            _masked(customers.ids.gather(safe), known).alias("customer_id"),
            _text(DIRECTIONS, direction, "direction"),
            _float(cost, "cost", rng.random(n) >= 0.1),
        ]
    )


@dataclass(frozen=True)
class _Tickets:
    customer: IntArray
    agent: IntArray
    channel: IntArray
    resolved_us: IntArray
    resolved: BoolArray
    contacts: IntArray
    complaint: BoolArray


def _tickets(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize, customers: _Customers
) -> tuple[_Tickets, pl.DataFrame]:
    n = size.tickets
    days = calendar.draw_days(rng, _base_weights(calendar, customers, 0.5, 0.5), n)
    created = np.sort(calendar.at(days, _time_of_day(rng, n)))
    customer = customers.pick(rng, created)
    keep = customer >= 0
    created, customer = created[keep], customer[keep]
    n = len(created)

    agent = np.asarray(SERVICE_AGENTS)[rng.integers(0, len(SERVICE_AGENTS), n)]
    channel = _choice(rng, n, TICKET_CHANNEL_SHARES)
    priority = _choice(rng, n, PRIORITY_SHARES)
    response_hours = 0.02 + rng.exponential(PRIORITY_RESPONSE_HOURS[priority])
    first_response = (
        created + (response_hours * US_PER_HOUR).astype(np.int64) // US_PER_SECOND * US_PER_SECOND
    )
    contacts = 1 + rng.poisson(0.6, n)
    resolution_hours = rng.lognormal(np.log(18.0), 0.9) * (0.7 + 0.3 * contacts)
    resolved_at = (
        first_response
        + (resolution_hours * US_PER_HOUR).astype(np.int64) // US_PER_SECOND * US_PER_SECOND
    )
    answered = first_response < calendar.end_us
    resolved = answered & (resolved_at < calendar.end_us) & (rng.random(n) >= 0.03)
    settled = resolved_at < calendar.end_us - 7 * US_PER_DAY
    status = np.where(resolved, np.where(settled, 3, 2), np.where(answered, 1, 0))
    handle = np.round(rng.lognormal(np.log(600.0), 0.6) * contacts)
    complaint = rng.random(n) < 0.07
    valid_complaint = rng.random(n) < 0.8
    frame = pl.DataFrame(
        [
            _ids("T", n).alias("ticket_id"),
            _datetime(created, "created_at"),
            customers.ids.gather(customer).alias("customer_id"),
            _text(_REP_NAMES, agent, "rep"),
            _text(TICKET_CHANNELS, channel, "channel"),
            _text(PRIORITIES, priority, "priority"),
            _text(TICKET_STATUSES, status, "status"),
            _datetime(first_response, "first_response_at", answered),
            _datetime(resolved_at, "resolved_at", resolved),
            pl.Series("contacts_count", contacts, pl.Int64),
            _float(handle, "handle_seconds", answered),
            _bool(resolved & (contacts == 1), "resolved_first_contact"),
            _bool(complaint, "is_complaint"),
            _bool(valid_complaint, "complaint_valid", complaint),
        ]
    )
    info = _Tickets(customer, agent, channel, resolved_at, resolved, contacts, complaint)
    return info, frame


def _calls(
    rng: np.random.Generator, calendar: _Calendar, size: SampleSize, customers: _Customers
) -> pl.DataFrame:
    n = size.calls
    days = calendar.draw_days(rng, _base_weights(calendar, customers, 0.35, 0.6), n)
    offered = np.sort(calendar.at(days, _time_of_day(rng, n)))
    outcome = _choice(rng, n, CALL_OUTCOME_SHARES)
    answered, abandoned = outcome == 0, outcome == 1
    wait = np.where(
        answered, np.round(rng.exponential(18.0, n)), 1.0 + np.round(rng.exponential(45.0, n))
    )
    talk = np.round(rng.lognormal(np.log(240.0), 0.6, n))
    hold = np.where(rng.random(n) < 0.3, np.round(rng.exponential(60.0, n)), 0.0)
    acw = np.round(rng.lognormal(np.log(45.0), 0.5, n))
    qa = np.round(np.clip(rng.normal(82.0, 9.0, n), 0.0, 100.0)).astype(np.float64)
    agent = np.where(
        answered, np.asarray(SERVICE_AGENTS)[rng.integers(0, len(SERVICE_AGENTS), n)], -1
    )
    customer = customers.pick(rng, offered)
    customer = np.where(rng.random(n) < 0.7, customer, -1)
    return pl.DataFrame(
        [
            _ids("CL", n).alias("call_id"),
            _datetime(offered, "offered_at"),
            _text(CALL_OUTCOMES, outcome, "outcome"),
            _text(_REP_NAMES, agent, "rep"),
            _text(QUEUES, _choice(rng, n, QUEUE_SHARES), "queue"),
            _float(wait, "wait_seconds", answered | abandoned),
            _float(talk, "talk_seconds", answered),
            _float(hold, "hold_seconds", answered),
            _float(acw, "acw_seconds", answered),
            _bool(rng.random(n) < 0.78, "resolved", answered),
            _float(qa, "qa_score", answered & (rng.random(n) < 0.3)),
            _masked(customers.ids.gather(np.maximum(customer, 0)), customer >= 0).alias(
                "customer_id"
            ),
        ]
    )


def _surveys(
    rng: np.random.Generator,
    calendar: _Calendar,
    size: SampleSize,
    customers: _Customers,
    tickets: _Tickets,
    ticket_ids: pl.Series,
) -> pl.DataFrame:
    resolved = np.flatnonzero(tickets.resolved)
    n_csat = min(len(resolved), round(0.75 * size.surveys))
    ticket = np.sort(rng.permutation(resolved)[:n_csat])
    csat_at = (
        tickets.resolved_us[ticket]
        + (rng.lognormal(np.log(3.0), 1.0, n_csat) * US_PER_HOUR).astype(np.int64)
        // US_PER_SECOND
        * US_PER_SECOND
    )
    mood = (
        rng.normal(0.25, 1.0, n_csat)
        - 0.2 * (tickets.contacts[ticket] - 1)
        - 0.8 * tickets.complaint[ticket]
    )
    csat_cdf = np.cumsum(CSAT_SHARES)
    csat = 1.0 + np.searchsorted(csat_cdf, _normal_cdf(mood) * csat_cdf[-1], side="right")
    csat = np.minimum(csat, 5.0)

    n_nps = size.surveys - n_csat - round(AD_SURVEY_SHARE * size.surveys)
    days = calendar.draw_days(rng, _base_weights(calendar, customers, 0.4, 0.3), n_nps)
    nps_at = calendar.at(days, _time_of_day(rng, n_nps))
    nps_customer = customers.pick(rng, nps_at)
    nps = _choice(rng, n_nps, NPS_SHARES).astype(float)

    keep_csat = csat_at < calendar.end_us
    keep_nps = nps_customer >= 0
    responded = np.concatenate([csat_at[keep_csat], nps_at[keep_nps]])
    kind = np.concatenate(
        [np.zeros(int(keep_csat.sum()), np.int64), np.ones(int(keep_nps.sum()), np.int64)]
    )
    score = np.concatenate([csat[keep_csat], nps[keep_nps]])
    ticket_code = np.concatenate([ticket[keep_csat], np.full(int(keep_nps.sum()), -1)])
    safe_ticket = np.maximum(ticket_code, 0)
    customer = np.concatenate([tickets.customer[ticket[keep_csat]], nps_customer[keep_nps]])
    rep = np.concatenate([tickets.agent[ticket[keep_csat]], customers.rep[nps_customer[keep_nps]]])
    survey_channel = np.concatenate(
        [
            _choice(rng, int(keep_csat.sum()), (0.5, 0.2, 0.3)),
            np.zeros(int(keep_nps.sum()), np.int64),
        ]
    )
    order = np.argsort(responded, kind="stable")
    n = len(order)
    return pl.DataFrame(
        [
            _ids("SV", n).alias("response_id"),
            _datetime(responded[order], "responded_at"),
            _text(SURVEY_TYPES, kind[order], "survey_type"),
            _float(score[order], "score"),
            customers.ids.gather(customer[order]).alias("customer_id"),
            _text(_REP_NAMES, rep[order], "rep"),
            _masked(ticket_ids.gather(safe_ticket[order]), ticket_code[order] >= 0).alias(
                "ticket_id"
            ),
            _text(SURVEY_CHANNELS, survey_channel[order], "channel"),
        ]
    )


def _normal_cdf(x: FloatArray) -> FloatArray:
    """Standard normal CDF, vectorised (Abramowitz-Stegun 7.1.26 erf, error < 1.5e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def _campaign_money(
    rng: np.random.Generator, calendar: _Calendar, campaigns: _Campaigns, revenue: float
) -> tuple[pl.DataFrame, pl.DataFrame, FloatArray]:
    """Weekly spend rows of each campaign and the campaigns table (cost = those rows' sum)."""
    n = len(campaigns.started_us)
    weight = rng.lognormal(0.0, 0.5, n)
    budget = np.round(CAMPAIGN_SHARE_OF_REVENUE * revenue * weight / max(weight.sum(), 1e-9), -2)
    budget = np.maximum(budget, 1000.0)
    planned_cost = budget * rng.uniform(0.75, 1.1, n)
    stop = np.minimum(campaigns.last_us, calendar.end_us)
    weeks = np.maximum(1, -(-(stop - campaigns.started_us) // (7 * US_PER_DAY)))
    campaign = np.repeat(np.arange(n), weeks)
    first_row = np.repeat(np.cumsum(weeks) - weeks, weeks)
    week = np.arange(len(campaign)) - first_row
    share = rng.exponential(1.0, len(campaign)) + 0.2
    share = share / np.bincount(campaign, share, minlength=n)[campaign]
    amount = _money(planned_cost[campaign] * share)
    cost = np.bincount(campaign, amount, minlength=n).astype(np.float64)
    spent = campaigns.started_us[campaign] + week * 7 * US_PER_DAY
    is_ad = np.isin(campaigns.channel, AD_CAMPAIGN_CHANNELS)
    category = np.where(is_ad[campaign], 2, 0)
    ids = _ids("CMP", n, 4) if n else pl.Series([], dtype=pl.String)
    spend = pl.DataFrame(
        [
            _date(spent, "spent_at"),
            _text(SPEND_CATEGORIES, category, "category"),
            _float(amount, "amount"),
            _text(CAMPAIGN_CHANNELS, campaigns.channel[campaign], "channel"),
            ids.gather(campaign).alias("campaign_id"),
        ]
    )
    running = campaigns.ended_us != NEVER
    table = pl.DataFrame(
        [
            ids.alias("campaign_id"),
            _date(campaigns.started_us, "started_at"),
            _text(CAMPAIGN_CHANNELS, campaigns.channel, "channel"),
            _date(campaigns.ended_us, "ended_at", running),
            _float(budget, "budget"),
            _float(np.round(cost, 2), "cost"),
        ]
    )
    return spend, table, cost


def _campaign_members(
    rng: np.random.Generator,
    calendar: _Calendar,
    size: SampleSize,
    campaigns: _Campaigns,
    campaign_cost: FloatArray,
    customers: _Customers,
    lead_created_us: IntArray,
    lead_ids: pl.Series,
    revenue_share: float = 1.0,
) -> pl.DataFrame:
    """Customers and leads targeted by the campaigns; `revenue_share` is the share of each
    campaign's converted revenue these members bring (less than 1 when they are a part of all
    the members)."""
    n_campaigns = len(campaigns.started_us)
    n = size.campaign_members if n_campaigns else 0
    campaign = _choice(rng, n, campaign_cost + 1.0) if n else np.zeros(0, np.int64)
    stop = np.minimum(campaigns.last_us, calendar.end_us)[campaign]
    window = np.minimum(stop - campaigns.started_us[campaign], 10 * US_PER_DAY)
    offset = (rng.random(n) * window).astype(np.int64) // US_PER_SECOND * US_PER_SECOND
    targeted = campaigns.started_us[campaign] + offset
    from_customers = rng.random(n) < 0.6
    customer = customers.pick(rng, targeted)
    lead = _pick_existing(rng, targeted, lead_created_us, None)
    member_is_customer = (from_customers & (customer >= 0)) | (lead < 0)
    keep = np.where(member_is_customer, customer, lead) >= 0
    responded = rng.random(n) < 0.22
    converted = responded & (rng.random(n) < 0.3)
    # Revenue of converted members: per campaign about 1.5..4x its cost, split by lognormal draws.
    draw = np.where(converted, rng.lognormal(0.0, 0.7, n), 0.0)
    per_campaign = np.bincount(campaign, draw, minlength=n_campaigns)
    roi_factor = rng.uniform(1.5, 4.0, n_campaigns)
    target = campaign_cost * roi_factor * revenue_share
    revenue = _money(draw * (target[campaign] / np.maximum(per_campaign[campaign], 1e-9)))
    member_ids = pl.DataFrame(
        {
            "c": customers.ids.gather(np.maximum(customer, 0)),
            "l": lead_ids.gather(np.maximum(lead, 0)) if len(lead_ids) else None,
            "is_c": member_is_customer,
        }
    ).select(pl.when(pl.col("is_c")).then(pl.col("c")).otherwise(pl.col("l")).alias("member_id"))
    frame = pl.DataFrame(
        [
            _campaign_ids(n_campaigns, campaign, "campaign_id"),
            member_ids.to_series(),
            _datetime(targeted, "targeted_at"),
            _bool(responded, "responded"),
            _bool(converted, "converted"),
            _float(revenue, "revenue", converted),
            pl.Series("_keep", keep),
            pl.Series("_t", targeted),
        ]
    )
    return (
        frame.filter(pl.col("_keep"))
        .unique(subset=["campaign_id", "member_id"], keep="first", maintain_order=True)
        .sort("_t", "campaign_id", "member_id", maintain_order=True)
        .drop("_keep", "_t")
    )


def _spend(
    rng: np.random.Generator,
    calendar: _Calendar,
    size: SampleSize,
    campaign_spend: pl.DataFrame,
    revenue: float,
) -> pl.DataFrame:
    n = max(60, min(size.orders // 8, 8 * calendar.n_days)) - campaign_spend.height
    n = max(n, 24)
    category = _choice(rng, n, SPEND_CATEGORY_ROWS)
    days = calendar.draw_days(rng, calendar.season(0.3, amplitude=0.6, growth=0.2), n)
    weight = rng.lognormal(0.0, 0.6, n)
    per_category = np.bincount(category, weight, minlength=4)
    total = SPEND_SHARE_OF_REVENUE * revenue
    amount = _money(weight * total[category] / np.maximum(per_category[category], 1e-9))
    channel_codes = np.zeros(n, np.int64)
    channel_names: list[str] = []
    for code, names in SPEND_CHANNELS.items():
        mine = category == code
        channel_codes[mine] = len(channel_names) + rng.integers(0, len(names), int(mine.sum()))
        channel_names.extend(names)
    other = pl.DataFrame(
        [
            _date(calendar.day_us[days], "spent_at"),
            _text(SPEND_CATEGORIES, category, "category"),
            _float(amount, "amount"),
            _text(channel_names, channel_codes, "channel"),
            pl.Series("campaign_id", [None] * n, pl.String),
        ]
    )
    return pl.concat([other, campaign_spend]).sort(
        "spent_at", "category", "channel", "amount", nulls_last=True, maintain_order=True
    )


def _months(calendar: _Calendar) -> IntArray:
    first = np.datetime64(calendar.start, "M")
    last = np.datetime64(calendar.end, "M")
    return (
        np.arange(first, last + 1).astype("datetime64[D]").astype("datetime64[us]").astype(np.int64)
    )


def _budgets(rng: np.random.Generator, calendar: _Calendar, spend: pl.DataFrame) -> pl.DataFrame:
    months = _months(calendar)
    grid = pl.DataFrame(
        {
            "period_start": np.repeat(months, len(SPEND_CATEGORIES)),
            "category": list(SPEND_CATEGORIES) * len(months),
        }
    ).with_columns(pl.col("period_start").cast(pl.Datetime("us")).cast(pl.Date))
    monthly = spend.group_by(
        pl.col("spent_at").dt.truncate("1mo").alias("period_start"), "category"
    ).agg(pl.col("amount").sum())
    factor = rng.uniform(0.9, 1.15, grid.height)
    return (
        grid.join(monthly, on=["period_start", "category"], how="left", maintain_order="left")
        .with_columns(
            pl.col("amount").fill_null(pl.col("amount").mean().over("category")).fill_null(0.0)
        )
        .with_columns(
            ((pl.col("amount") * pl.Series(factor) / 100.0).round(0) * 100.0)
            .clip(100.0)
            .alias("amount")
        )
        .select("period_start", "category", "amount")
    )


def _quotas(
    rng: np.random.Generator, calendar: _Calendar, won_amount: float, joined_us: IntArray
) -> pl.DataFrame:
    """Per sales rep per quarter (from the quarter after joining): the average won revenue per
    rep-quarter on a rising ramp (0.6x .. 1.4x over the range), +-20 %, in whole thousands."""
    months = _months(calendar)
    month_numbers = months.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    quarters = months[month_numbers % 3 == 0]  # quarters that start inside the range
    reps = np.asarray(SALES_REPS)
    rep = np.repeat(reps, len(quarters))
    start = np.tile(quarters, len(reps))
    position = np.tile(np.arange(len(quarters)), len(reps))
    keep = joined_us[rep] <= start
    rep, start, position = rep[keep], start[keep], position[keep]
    ramp = 0.6 + 0.8 * position / max(len(quarters) - 1, 1)
    per_rep_quarter = won_amount / max(len(rep), 1)
    quota = np.round(per_rep_quarter * ramp * rng.uniform(0.8, 1.2, len(rep)) / 1000.0) * 1000.0
    order = np.lexsort((rep, start))
    return pl.DataFrame(
        [
            _date(start[order], "period_start"),
            _float(np.maximum(quota[order], 1000.0), "quota_amount"),
            _text(_REP_NAMES, rep[order], "rep"),
        ]
    )


def _agent_work(calls: pl.DataFrame) -> pl.DataFrame:
    """Seconds of call work per service agent and weekday (talk, hold and after-call work)."""
    return (
        calls.filter(pl.col("rep").is_not_null() & (pl.col("offered_at").dt.weekday() <= 5))
        .group_by("rep", pl.col("offered_at").dt.date().alias("shift_date"))
        .agg(
            (pl.col("talk_seconds") + pl.col("hold_seconds") + pl.col("acw_seconds"))
            .sum()
            .alias("work")
        )
        .sort("rep", "shift_date")
    )


def _agent_shifts(rng: np.random.Generator, worked: pl.DataFrame) -> pl.DataFrame:
    """A shift for each service agent on each weekday they answered calls (`_agent_work`), sized
    to the work."""
    utilisation = rng.uniform(0.55, 0.85, worked.height)
    prep_share = rng.uniform(0.04, 0.12, worked.height)  # ready time before calls
    staffed = ((pl.col("work") / pl.Series(utilisation) / 900.0).ceil() * 900.0).clip(900.0)
    return worked.select(
        "rep",
        "shift_date",
        staffed.alias("staffed_seconds"),
        (staffed * pl.Series(prep_share) / 30.0).round(0).mul(30.0).alias("prep_seconds"),
    )


def _completed_revenue(orders: pl.DataFrame) -> float:
    """What the campaign and other spend are sized to."""
    return float(orders.filter(pl.col("status") == "completed")["amount"].sum())


def _won_amount(deals: pl.DataFrame) -> float:
    """What the quotas are sized to."""
    return float(deals.filter(pl.col("status") == "won")["amount"].sum())


@dataclass(frozen=True)
class _Shared:
    """What every chunk of customers draws on: the range, the reps' join dates, the trainings and
    the campaigns' windows."""

    calendar: _Calendar
    joined_us: IntArray
    trainings: pl.DataFrame
    windows: _Campaigns


@dataclass
class _Totals:
    """Sums over the chunks that the whole-range tables are sized to."""

    revenue: float = 0.0
    won_amount: float = 0.0
    agent_work: list[pl.DataFrame] = field(default_factory=list)

    def add(self, tables: dict[str, pl.DataFrame]) -> None:
        self.revenue += _completed_revenue(tables["orders"])
        self.won_amount += _won_amount(tables["deals"])
        self.agent_work.append(_agent_work(tables["calls"]))

    def work(self) -> pl.DataFrame:
        """Every chunk's agent work per agent and weekday, added up."""
        return (
            pl.concat(self.agent_work)
            .group_by("rep", "shift_date")
            .agg(pl.col("work").sum())
            .sort("rep", "shift_date")
        )


def _streams(seed: int, chunk: int) -> dict[str, np.random.Generator]:
    """One independent random stream per table (``default_rng([seed, k])``) for chunk 0 and the
    whole-range tables, the same streams spawned anew for every further chunk."""
    spawn_key = (chunk,) if chunk else ()
    return {
        name: np.random.default_rng(np.random.SeedSequence([seed, k], spawn_key=spawn_key))
        for k, name in enumerate(_STREAMS)
    }


_WHOLE_RANGE_COUNTS = frozenset({"campaigns"})


def _chunk_sizes(size: SampleSize, customers_per_chunk: int) -> list[SampleSize]:
    """`size` split into chunks of at most `customers_per_chunk` customers, every per-customer
    count split alike (the campaigns run for all customers: they are not split)."""
    n_chunks = max(1, -(-size.customers // customers_per_chunk))

    def part(name: str, chunk: int) -> int:
        total = getattr(size, name)
        if name in _WHOLE_RANGE_COUNTS:
            return int(total)
        return int(total // n_chunks + (chunk < total % n_chunks))

    names = list(SampleSize.__dataclass_fields__)
    return [SampleSize(**{n: part(n, chunk) for n in names}) for chunk in range(n_chunks)]


def _chunk_tags(n_chunks: int) -> list[str]:
    """The prefix of a chunk's record ids, so they stay unique over the chunks (none when the
    customers come in one chunk)."""
    if n_chunks == 1:
        return [""]
    width = len(str(n_chunks - 1))
    return [f"{chunk:0{width}d}-" for chunk in range(n_chunks)]


def _tagged(frame: pl.DataFrame, tag: str) -> pl.DataFrame:
    """`frame` with `tag` before every id of a record of its chunk (the campaigns are shared)."""
    if not tag:
        return frame
    local = [c for c in frame.columns if c.endswith("_id") and c != "campaign_id"]
    return frame.with_columns(pl.concat_str(pl.lit(tag), pl.col(c)).alias(c) for c in local)


def _chunk_people(
    rngs: dict[str, np.random.Generator], shared: _Shared, size: SampleSize
) -> tuple[_Customers, IntArray, pl.DataFrame]:
    """A chunk's customer records and its leads (their created times and table): what both the
    chunk's tables and its campaign members draw on."""
    calendar, joined_us = shared.calendar, shared.joined_us
    customers = _customer_records(rngs["customers"], calendar, size, joined_us)
    lead_created, leads = _leads(
        rngs["leads"], calendar, size, customers, shared.windows, joined_us
    )
    return customers, lead_created, leads


def _chunk_tables(
    rngs: dict[str, np.random.Generator], shared: _Shared, size: SampleSize
) -> dict[str, pl.DataFrame]:
    """The customers of one chunk and every record that belongs to them, but campaign members
    (`_chunk_members`: they wait for the campaigns' cost)."""
    calendar, joined_us = shared.calendar, shared.joined_us
    customers, _, leads = _chunk_people(rngs, shared, size)
    deals = _deals(rngs["deals"], calendar, size, customers)
    ticket_info, tickets = _tickets(rngs["tickets"], calendar, size, customers)
    return {
        "customers": _customer_frame(rngs["customers"], customers),
        "orders": _orders(rngs["orders"], calendar, size, customers),
        "deals": _after_training(deals, shared.trainings),
        "leads": leads,
        "activities": _activities(rngs["activities"], calendar, size, customers, joined_us),
        "tickets": tickets,
        "calls": _calls(rngs["calls"], calendar, size, customers),
        "surveys": _numbered_surveys(
            _surveys(rngs["surveys"], calendar, size, customers, ticket_info, tickets["ticket_id"]),
            _ad_surveys(rngs["ad_surveys"], calendar, size, customers),
        ),
    }


def _chunk_members(
    rngs: dict[str, np.random.Generator],
    shared: _Shared,
    size: SampleSize,
    campaign_cost: FloatArray,
    revenue_share: float,
) -> pl.DataFrame:
    """The campaign members among one chunk's customers and leads, drawn again from the chunk's
    fresh streams (the same records as in `_chunk_tables`) rather than kept in memory."""
    customers, lead_created, leads = _chunk_people(rngs, shared, size)
    return _campaign_members(
        rngs["campaign_members"],
        shared.calendar,
        size,
        shared.windows,
        campaign_cost,
        customers,
        lead_created,
        leads["lead_id"],
        revenue_share,
    )


def generate_chunks(
    size: SampleSize,
    seed: int,
    customers_per_chunk: int | None = None,
    start: dt.date = dt.date(2024, 1, 1),
    end: dt.date = dt.date(2025, 12, 31),
) -> Iterator[tuple[str, pl.DataFrame]]:
    """The tables as (table, piece) pairs, one chunk of at most `customers_per_chunk` customers
    (with their records) at a time, so that a scale larger than memory can be written piece by
    piece; the whole-range tables (reps, campaigns, spend, budgets, quotas, agent shifts,
    trainings, incidents) come once, at the end.

    Each chunk has its own random streams, so the pieces are the same for the same seed; ids
    of a chunk's records are prefixed by the chunk's number. In one chunk (the default) the
    pieces are the frames of `generate_tables`.
    """
    calendar = _Calendar.build(start, end)
    rngs = _streams(seed, 0)
    joined_us = _join_us(calendar)
    shared = _Shared(
        calendar,
        joined_us,
        _trainings(rngs["trainings"], calendar, joined_us),
        _campaign_windows(rngs["campaigns"], calendar, size),
    )
    chunks = _chunk_sizes(size, customers_per_chunk or size.customers)
    tags = _chunk_tags(len(chunks))
    totals = _Totals()
    for chunk, (chunk_size, tag) in enumerate(zip(chunks, tags, strict=True)):
        tables = _chunk_tables(_streams(seed, chunk), shared, chunk_size)
        totals.add(tables)
        for name in list(tables):  # popped: a piece is freed once written
            yield name, _tagged(tables.pop(name), tag)

    campaign_spend, campaigns, campaign_cost = _campaign_money(
        rngs["campaigns"], calendar, shared.windows, totals.revenue
    )
    for chunk, (chunk_size, tag) in enumerate(zip(chunks, tags, strict=True)):
        share = chunk_size.campaign_members / max(size.campaign_members, 1)
        members = _chunk_members(_streams(seed, chunk), shared, chunk_size, campaign_cost, share)
        yield "campaign_members", _tagged(members, tag)

    spend = _spend(rngs["spend"], calendar, size, campaign_spend, totals.revenue)
    yield "spend", spend
    yield "budgets", _budgets(rngs["budgets"], calendar, spend)
    yield "campaigns", campaigns
    yield "quotas", _quotas(rngs["quotas"], calendar, totals.won_amount, joined_us)
    yield "reps", _reps_table()
    yield "agent_shifts", _agent_shifts(rngs["agent_shifts"], totals.work())
    yield "trainings", shared.trainings
    yield "incidents", _incidents(rngs["incidents"], calendar, size, joined_us)


def generate_tables(
    size: SampleSize,
    seed: int,
    start: dt.date = dt.date(2024, 1, 1),
    end: dt.date = dt.date(2025, 12, 31),
) -> dict[str, pl.DataFrame]:
    """Canonical, clean frames (canonical column names and dtypes of tables.py), fully consistent.

    One independent random stream per table (``default_rng([seed, k])``), so the same seed
    gives the same frames whatever the platform or the wall clock.
    """
    pieces: dict[str, list[pl.DataFrame]] = {name: [] for name in TABLE_ORDER}
    for name, piece in generate_chunks(size, seed, None, start, end):
        pieces[name].append(piece)
    return {name: pl.concat(pieces[name]) for name in TABLE_ORDER}


# --------------------------------------------------------------------------------------------
# Writing an export folder
# --------------------------------------------------------------------------------------------

DEALS_FILE = "商机.csv"
TICKETS_FILE = "tickets.xlsx"
TICKETS_SHEET = "Tickets"
TICKETS_TITLE = "Ticket export"
XLSX_CREATED = dt.datetime(2026, 1, 1)
DATETIME_TEXT = "%Y-%m-%d %H:%M:%S"


def _money_text(column: str) -> pl.Expr:
    """`1234.5` -> `1234.50` (two decimals, no separators)."""
    cents = (pl.col(column) * 100.0).round(0).cast(pl.Int64)
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))


def _grouped_money_text(column: str) -> pl.Expr:
    """`12345` -> `¥12,345.00` (thousands separators; up to 999,999,999,999.99)."""
    cents = (pl.col(column) * 100.0).round(0).cast(pl.Int64)
    whole = cents // 100

    def group(divisor: int) -> pl.Expr:
        return ((whole // divisor) % 1000).cast(pl.String).str.zfill(3)

    grouped = (
        pl.when(whole >= 1_000_000_000)
        .then(
            pl.format(
                "{},{},{},{}", whole // 1_000_000_000, group(1_000_000), group(1000), group(1)
            )
        )
        .when(whole >= 1_000_000)
        .then(pl.format("{},{},{}", whole // 1_000_000, group(1000), group(1)))
        .when(whole >= 1000)
        .then(pl.format("{},{}", whole // 1000, group(1)))
        .otherwise(whole.cast(pl.String))
    )
    return pl.format("¥{}.{}", grouped, (cents % 100).cast(pl.String).str.zfill(2))


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as export text: ISO dates, money with 2 decimals, whole numbers bare."""
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype == pl.Datetime:
            exprs.append(column.dt.strftime(DATETIME_TEXT))
        elif dtype == pl.Date:
            exprs.append(column.dt.strftime("%Y-%m-%d"))
        elif dtype == pl.Float64 and name in _MONEY:
            exprs.append(_money_text(name))
        elif dtype == pl.Float64:
            values = frame[name].drop_nulls()
            whole = bool((values == values.round(0)).all())
            exprs.append(column.cast(pl.Int64).cast(pl.String) if whole else column.cast(pl.String))
        else:
            exprs.append(column.cast(pl.String))
    return frame.select(exprs)


def _deals_export(deals: pl.DataFrame) -> pl.DataFrame:
    """The deals as a 悟空CRM 商机 export (display headers, formatted text cells)."""
    touched = pl.col("closed_at").fill_null(pl.col("created_at") + pl.duration(days=3))
    updated = touched + pl.duration(hours=9, minutes=30)
    department = (
        pl.col("rep")
        .replace_strict(
            dict(zip(_REP_NAMES, _REP_REGIONS, strict=True)), default=None, return_dtype=pl.String
        )
        .replace_strict({"East": "华东销售部", "West": "华西销售部"}, default=None)
    )
    return deals.select(
        pl.col("deal_id").alias("商机编号"),
        pl.format("{}项目-{}", pl.col("product"), pl.col("deal_id")).alias("商机名称"),
        pl.col("customer_id").alias("客户名称"),
        _grouped_money_text("amount").alias("商机金额"),
        pl.col("closed_at").dt.strftime("%Y年%-m月%-d日").alias("预计成交日期"),
        pl.col("deal_type")
        .replace_strict(dict(zip(DEAL_TYPES, DEAL_TYPES_CN, strict=True)), default=None)
        .alias("商机类型"),
        pl.col("lead_source").alias("线索来源"),
        pl.col("product").alias("产品"),
        pl.col("stage").alias("商机阶段"),
        pl.format("{}%", (pl.col("probability") * 100.0).round(0).cast(pl.Int64)).alias("赢单率"),
        pl.col("rep").alias("负责人"),
        department.alias("所属部门"),
        updated.dt.strftime("%Y/%-m/%-d %H:%M").alias("更新时间"),
        pl.col("created_at").dt.strftime("%Y/%-m/%-d %H:%M").alias("创建时间"),
        pl.col("rep").alias("创建人"),
    )


def _tickets_export(tickets: pl.DataFrame) -> pl.DataFrame:
    """Tickets for the workbook: timestamps as text, numbers and booleans as they are."""
    return tickets.with_columns(pl.col(pl.Datetime).dt.strftime(DATETIME_TEXT))


@dataclass(frozen=True)
class _BadRow:
    """One deliberate defect: where it is (1-based line or sheet row) and what is wrong."""

    file: str
    row: int
    column: str
    what: str


def _insert(frame: pl.DataFrame, at: int, row: dict[str, Any]) -> tuple[pl.DataFrame, int]:
    """Insert `row` so it becomes row index `at` (clipped); returns the frame and the index."""
    at = max(0, min(at, frame.height))
    new = pl.DataFrame([row], schema=frame.schema)
    return pl.concat([frame.slice(0, at), new, frame.slice(at)]), at


def _first_row(frame: pl.DataFrame, condition: pl.Expr) -> dict[str, Any]:
    rows = frame.filter(condition)
    return (rows if rows.height else frame).row(0, named=True)


def _add_bad_rows(clean: dict[str, pl.DataFrame], text: dict[str, pl.DataFrame]) -> list[_BadRow]:
    """Insert about ten bad rows, each exercising a different check; edits `text` in place.

    Every bad row is an extra row (a copy of a clean row with a fresh id and one defect), so the
    valid rows a loader keeps are exactly the clean frames.
    """
    bad: list[_BadRow] = []

    def add(
        table: str, file: str, at: int, row: dict[str, Any], column: str, what: str, first_line: int
    ) -> None:
        text[table], index = _insert(text[table], at, row)
        bad.append(_BadRow(file, index + first_line, column, what))

    def fresh(table: str, prefix: str, extra: int = 1) -> str:
        n = clean[table].height
        return _id_text(prefix, n + extra, _width(n))

    # customers.csv: one customer_id on two rows (both copies must be quarantined).
    customers = text["customers"]
    twin = _first_row(customers, pl.col("phone").is_not_null())
    twin_id = fresh("customers", "C")
    first = {**twin, "customer_id": twin_id}
    second = {**first, "phone": "13900000000", "email": None}
    what = f"customer_id {twin_id} duplicated (both copies)"
    add("customers", "customers.csv", 5, first, "customer_id", what, 2)
    add("customers", "customers.csv", 25, second, "customer_id", what, 2)

    # orders.csv: a negative amount, and an ambiguous decimal-comma amount.
    line = _first_row(text["orders"], pl.col("status") == "completed")
    negative = {**line, "order_id": fresh("orders", "O", 1), "amount": "-" + line["amount"]}
    comma = {**line, "order_id": fresh("orders", "O", 2), "amount": "12,34"}
    add("orders", "orders.csv", 12, negative, "amount", f"negative amount {negative['amount']}", 2)
    add("orders", "orders.csv", 30, comma, "amount", "ambiguous amount 12,34 (decimal comma?)", 2)

    # activities.csv: the required occurred_at left empty.
    row = {**_first_row(text["activities"], pl.lit(True)), "occurred_at": None}
    row["activity_id"] = fresh("activities", "A")
    add("activities", "activities.csv", 15, row, "occurred_at", "required occurred_at empty", 2)

    # calls.csv: an outcome outside answered/abandoned/blocked, and an impossible date.
    answered = _first_row(text["calls"], pl.col("outcome") == "answered")
    unknown = {**answered, "call_id": fresh("calls", "CL", 1), "outcome": "unknown"}
    bad_date = {**answered, "call_id": fresh("calls", "CL", 2), "offered_at": "2024-02-30 09:15:00"}
    add(
        "calls",
        "calls.csv",
        8,
        unknown,
        "outcome",
        "outcome 'unknown' not in the allowed values",
        2,
    )
    add("calls", "calls.csv", 20, bad_date, "offered_at", "unparseable date 2024-02-30 09:15:00", 2)

    # surveys.csv: a CSAT score of 7 (CSAT is 1..5).
    csat = {**_first_row(text["surveys"], pl.col("survey_type") == "csat"), "score": "7"}
    csat["response_id"] = fresh("surveys", "SV")
    add("surveys", "surveys.csv", 6, csat, "score", "csat score 7 outside 1..5", 2)

    # spend.csv: an Excel error literal where the amount should be.
    spend = {**_first_row(text["spend"], pl.col("category") == "sales"), "amount": "#VALUE!"}
    add("spend", "spend.csv", 10, spend, "amount", "Excel error literal #VALUE! as amount", 2)

    # tickets.xlsx (data starts on sheet row 3): resolved two hours before it was created.
    ticket = _first_row(text["tickets"], pl.col("resolved_at").is_not_null())
    created = dt.datetime.strptime(ticket["created_at"], DATETIME_TEXT)
    early = (created - dt.timedelta(hours=2)).strftime(DATETIME_TEXT)
    ticket = {**ticket, "ticket_id": fresh("tickets", "T"), "resolved_at": early}
    add(
        "tickets",
        TICKETS_FILE,
        9,
        ticket,
        "resolved_at",
        f"resolved_at {early} before created_at",
        3,
    )

    # 商机.csv: a won deal (赢单) without its close date (预计成交日期).
    won = {**_first_row(text["deals"], pl.col("商机阶段") == WON_STAGE), "预计成交日期": None}
    won["商机编号"] = fresh("deals", "D")
    won["商机名称"] = f"{won['产品']}项目-{won['商机编号']}"
    add("deals", DEALS_FILE, 7, won, "预计成交日期", "won deal (赢单) without a close date", 2)
    return bad


def _write_tickets_xlsx(path: Path, frame: pl.DataFrame) -> None:
    workbook = xlsxwriter.Workbook(
        str(path), {"strings_to_formulas": False, "strings_to_urls": False}
    )
    workbook.set_properties({"created": XLSX_CREATED, "author": "crmkpi sample-data"})
    sheet = workbook.add_worksheet(TICKETS_SHEET)
    sheet.write_string(0, 0, TICKETS_TITLE)
    sheet.write_row(1, 0, frame.columns)
    for index, name in enumerate(frame.columns):
        sheet.write_column(2, index, frame[name].to_list())
    sheet.set_column(0, len(frame.columns) - 1, 18)
    workbook.close()


def _config_text(bad: list[_BadRow]) -> str:
    deal_types = ", ".join(
        f'"{cn}" = "{en}"' for en, cn in zip(DEAL_TYPES, DEAL_TYPES_CN, strict=True)
    )
    lines = [
        "# crmkpi configuration for this synthetic CRM export folder.",
        "# Written by `crmkpi sample-data` (crmkpi/samples.py); rerunning it with the same seed",
        "# rewrites every file byte for byte.",
        "#",
        "# Most tables are UTF-8 CSVs with crmkpi's canonical headers, so they only name their",
        "# file (unmapped canonical columns are matched by identical header). The tickets come",
        "# as an XLSX with a title row above the header; the deals as a GB18030 悟空CRM-style",
        "# 商机 export with Chinese headers, mapped column by column below. Its 商机名称,",
        "# 所属部门, 更新时间 and 创建人 columns are left unmapped on purpose (drift).",
        "#",
        "# Deliberate bad rows (each one exercises a different check; everything else is clean):",
    ]
    lines += [f"#   {b.file} row {b.row}, column {b.column}: {b.what}" for b in bad]
    lines += [
        "# (rows are 1-based lines of the file counting the header as line 1; for the workbook,",
        "# sheet rows counting the title row as row 1)",
        "",
        "[input]",
        'encoding = "utf-8"          # default for all tables',
        "",
        "[settings]",
        'timezone = "Asia/Shanghai"',
        "fiscal_year_start = 1",
    ]
    for table in TABLE_ORDER:
        lines += ["", f"[tables.{table}]"]
        if table == "tickets":
            lines += [
                f'file = "{TICKETS_FILE}"',
                f'sheet = "{TICKETS_SHEET}"',
                "header_row = 2               # 1-based row of the header (row 1 is a title)",
            ]
        elif table == "deals":
            lines += [
                f'file = "{DEALS_FILE}"',
                'encoding = "gb18030"',
                "",
                "[tables.deals.columns]       # canonical column = source header, or a spec table",
                'deal_id = "商机编号"          # a custom field: 悟空CRM has no default id column',
                'created_at = { from = "创建时间", parse = "datetime" }',
                'status = { from = "商机阶段", map = { "赢单" = "won", "输单" = "lost" }, '
                'default = "open" }',
                'stage = "商机阶段"',
                'closed_at = { from = "预计成交日期", parse = "datetime" }',
                'amount = { from = "商机金额", parse = "money" }',
                'probability = { from = "赢单率", parse = "percent" }',
                f'deal_type = {{ from = "商机类型", map = {{ {deal_types} }} }}',
                'customer_id = "客户名称"',
                'rep = "负责人"',
                'lead_source = "线索来源"',
                'product = "产品"',
            ]
        else:
            lines.append(f'file = "{table}.csv"')
    return "\n".join(lines) + "\n"


def _write_mixed(out: Path, tables: dict[str, pl.DataFrame]) -> list[Path]:
    text = {name: _as_text(frame) for name, frame in tables.items()}
    text["tickets"] = _tickets_export(tables["tickets"])
    text["deals"] = _deals_export(tables["deals"])
    bad = _add_bad_rows(tables, text)
    written: list[Path] = []
    for table in TABLE_ORDER:
        if table == "tickets":
            path = out / TICKETS_FILE
            _write_tickets_xlsx(path, text[table])
        elif table == "deals":
            path = out / DEALS_FILE
            path.write_bytes(text[table].write_csv().encode("gb18030"))
        else:
            path = out / f"{table}.csv"
            path.write_bytes(text[table].write_csv().encode("utf-8"))
        written.append(path)
    config = out / "crmkpi.toml"
    config.write_bytes(_config_text(bad).encode("utf-8"))
    written.append(config)
    return written


def _write_parquet_chunks(out: Path, pieces: Iterator[tuple[str, pl.DataFrame]]) -> list[Path]:
    """One ``<table>.parquet`` per table, each piece appended as its own row group(s), so memory
    holds a piece, not the table. A file gets its name once complete: an interrupted run leaves
    no file that looks whole."""
    partial = {name: out / f"{name}.parquet.partial" for name in TABLE_ORDER}
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        for name, piece in pieces:
            table = piece.to_arrow()
            if name not in writers:
                writers[name] = pq.ParquetWriter(partial[name], table.schema, compression="zstd")
            writers[name].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    return [partial[name].replace(out / f"{name}.parquet") for name in TABLE_ORDER]


def write_sample_folder(
    out: Path,
    seed: int = 7,
    scale: str = "demo",
    file_format: str = "mixed",
    customers_per_chunk: int | None = None,
) -> list[Path]:
    """Write an export folder + its crmkpi.toml; returns the files written.

    `file_format`: ``"mixed"`` (CSV + XLSX + GB18030 悟空CRM CSV + crmkpi.toml, with deliberate
    bad rows), ``"parquet"`` or ``"csv"`` (every table as ``<table>.<ext>``, canonical headers and
    dtypes, no bad rows, no config). `customers_per_chunk` (the scale's CHUNK_CUSTOMERS by
    default) generates and writes chunk by chunk, Parquet only.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if file_format not in ("mixed", "parquet", "csv"):
        raise ValueError(f"unknown file format {file_format!r}; choose mixed, parquet or csv")
    chunk = customers_per_chunk or CHUNK_CUSTOMERS.get(scale)
    if chunk and file_format != "parquet":
        raise ValueError(f"scale {scale!r} in chunks is written as parquet only, not {file_format}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if chunk:
        return _write_parquet_chunks(out, generate_chunks(SCALES[scale], seed, chunk))
    tables = generate_tables(SCALES[scale], seed)
    if file_format == "mixed":
        return _write_mixed(out, tables)
    written = []
    for table in TABLE_ORDER:
        path = out / f"{table}.{file_format}"
        if file_format == "parquet":
            tables[table].write_parquet(path, statistics=True)
        else:
            tables[table].write_csv(path, datetime_format=DATETIME_TEXT, date_format="%Y-%m-%d")
        written.append(path)
    return written

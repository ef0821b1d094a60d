"""Fixture factory for the CRM presets: export folders written in tmp_path from one set of
canonical facts, in each CRM's own shape (CRM_EXPORTS.md), plus the KPIs those facts give when
computed by hand, without crmkpi.

`Facts` holds what happened (deals, leads, tickets, contracts, payments, visits) in neutral
terms; the `write_<crm>_*` functions turn it into export files with that CRM's quirks (footers,
duplicated headers, currency columns, UTF-16 tabs, GB18030, title rows, epoch milliseconds, ...);
`expected_kpis` computes the KPIs from the facts in plain Python. Nothing here is hand-copied
from a real export, and the writers may loop (the loader may not).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tests.factory import sf_id15

AS_OF = dt.date(2024, 6, 30)


# --- the facts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    key: int
    name_en: str
    name_zh: str
    owner: int
    created: dt.datetime
    industry: str


@dataclass(frozen=True)
class Deal:
    key: int
    account: int
    outcome: str  # open_early / open_late / won / lost / void
    amount: float
    created: dt.datetime
    closed: dt.date  # the close date (expected, for open deals)
    owner: int
    probability: int  # points

    @property
    def status(self) -> str:
        """The canonical status: an invalid (无效) deal counts as lost."""
        return {"won": "won", "lost": "lost", "void": "lost"}.get(self.outcome, "open")


@dataclass(frozen=True)
class Lead:
    key: int
    created: dt.datetime
    outcome: str  # open / converted / disqualified
    owner: int
    source: str

    @property
    def converted(self) -> dt.datetime | None:
        return self.created + dt.timedelta(days=7) if self.outcome == "converted" else None


@dataclass(frozen=True)
class Ticket:
    key: int
    created: dt.datetime
    resolved: dt.datetime | None
    owner: int
    priority: str
    account: int


@dataclass(frozen=True)
class Contract:
    key: int
    account: int
    amount: float
    ordered: dt.date
    approval: str  # 审核状态 as 悟空 prints it
    owner: int


@dataclass(frozen=True)
class Visit:
    key: int
    account: int
    visited: dt.datetime
    satisfaction: str  # 客户满意度, "" when not rated
    owner: int


REPS_EN = ["Ann Lee", "Bo Chen", "Cara Diaz"]
REPS_ZH = ["张伟", "王芳", "李娜"]
SATISFACTION = {"很满意": 5, "满意": 4, "一般": 3, "不满意": 2, "很不满意": 1}
# 通过 and 待审核 count (check_status 1 and 10); the rest do not
APPROVALS = ["通过", "待审核", "拒绝", "审核中", "通过", "待审核", "撤回", "通过", "未提交"]
EFFECTIVE = {"通过", "待审核"}


@dataclass
class Facts:
    accounts: list[Account] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)
    payments: list[Contract] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)


def facts(n_deals: int = 15) -> Facts:
    """One deterministic set of CRM facts, dated January to June 2024 (as-of 2024-06-30)."""
    out = Facts()
    industries = ["IT", "金融业", "生产", "政府", "房地产"]
    zh = ["华东贸易", "北京科技", "深圳制造", "成都软件", "上海物流"]
    for i in range(5):
        out.accounts.append(
            Account(
                i,
                f"Acme {i + 1}",
                f"{zh[i]}有限公司",
                i % 3,
                dt.datetime(2023, 10 + i % 3, 3 + 4 * i, 9, 30),
                industries[i],
            )
        )
    outcomes = ["open_early", "won", "lost", "open_late", "won", "void"]
    for i in range(n_deals):
        created = dt.datetime(2024, 1 + i % 4, 2 + (7 * i) % 26, 9 + i % 8, 5 * (i % 12))
        outcome = outcomes[i % len(outcomes)]
        out.deals.append(
            Deal(
                i,
                i % 5,
                outcome,
                1000.0 + 250.0 * i + (0.5 if i % 4 == 1 else 0.0),
                created,
                (created + dt.timedelta(days=13 + 5 * i)).date(),
                i % 3,
                {"open_early": 10, "open_late": 60, "won": 100}.get(outcome, 0),
            )
        )
    lead_outcomes = ["open", "converted", "open", "disqualified"]
    sources = ["Web", "Partner Referral", "Trade Show"]
    for i in range(11):
        out.leads.append(
            Lead(
                i,
                dt.datetime(2024, 1 + i % 6, 13 + i % 15, 8 + i % 9, 10),
                lead_outcomes[i % 4],
                i % 3,
                sources[i % 3],
            )
        )
    for i in range(9):
        created = dt.datetime(2024, 2 + i % 4, 14 + i, 10, 30)
        resolved = created + dt.timedelta(hours=5 + 7 * i) if i % 3 else None
        out.tickets.append(
            Ticket(i, created, resolved, i % 3, ["High", "Medium", "Low"][i % 3], i % 5)
        )
    for i in range(len(APPROVALS)):
        out.contracts.append(
            Contract(
                i, i % 5, 5000.0 + 1200.0 * i, dt.date(2024, 1 + i % 6, 14 + i), APPROVALS[i], i % 3
            )
        )
    for i in range(6):
        out.payments.append(
            Contract(i, i % 5, 800.0 + 300.0 * i, dt.date(2024, 2 + i % 4, 16 + i), "通过", i % 3)
        )
    ratings = ["很满意", "满意", "一般", "不满意", "很不满意", "满意", "", "很满意", "满意"]
    for i, rating in enumerate(ratings):
        out.visits.append(
            Visit(i, i % 5, dt.datetime(2024, 3 + i % 3, 13 + i, 15, 0), rating, i % 3)
        )
    return out


# --- the KPIs, by hand --------------------------------------------------------------------------


def expected_kpis(f: Facts, *, orders_from: str = "contracts") -> dict[str, float | None]:
    """The KPIs of the facts for the whole range (period `all`, as-of AS_OF), in plain Python."""
    # a deal closed after as-of has not closed yet: it is still in the pipeline
    by_as_of = [d for d in f.deals if d.closed <= AS_OF]
    won = [d for d in by_as_of if d.status == "won"]
    lost = [d for d in by_as_of if d.status == "lost"]
    closed = len(won) + len(lost)
    still_open = [d for d in f.deals if d.status == "open" or d.closed > AS_OF]
    out: dict[str, float | None] = {
        "deals_created": float(len(f.deals)),
        "deals_won": float(len(won)),
        "deals_lost": float(len(lost)),
        "won_revenue": sum(d.amount for d in won),
        "win_rate": len(won) / closed if closed else None,
        "avg_deal_size": sum(d.amount for d in won) / len(won) if won else None,
        "open_pipeline_value": sum(d.amount for d in still_open),
        "leads_created": float(len(f.leads)),
        "tickets_created": float(len(f.tickets)),
    }
    converted = [lead for lead in f.leads if lead.converted and lead.converted.date() <= AS_OF]
    out["lead_conversion_rate"] = len(converted) / len(f.leads) if f.leads else None
    orders = f.contracts if orders_from == "contracts" else f.payments
    effective = [o for o in orders if o.approval in EFFECTIVE]
    out["revenue"] = sum(o.amount for o in effective)
    out["orders_count"] = float(len(effective))
    rated = [SATISFACTION[v.satisfaction] for v in f.visits if v.satisfaction]
    out["csat"] = sum(1 for s in rated if s >= 4) / len(rated) if rated else None
    out["avg_satisfaction_score"] = sum(rated) / len(rated) if rated else None
    return out


# --- writers ------------------------------------------------------------------------------------

Grid = list[list[str]]


def _quote(cell: str, delimiter: str) -> str:
    if any(c in cell for c in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_csv(
    path: Path,
    grid: Grid,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
    footer: Sequence[str] = (),
    newline: str = "\r\n",
) -> Path:
    """Rows of cells as delimited text (the header is the grid's first row)."""
    lines = [delimiter.join(_quote(c, delimiter) for c in row) for row in grid]
    text = newline.join([*lines, *footer]) + newline
    data = text.encode(encoding)
    if bom:
        data = "\ufeff".encode(encoding) + data
    path.write_bytes(data)
    return path


def write_xlsx(
    path: Path,
    grid: Grid,
    *,
    sheet: str = "Sheet1",
    title: str | None = None,
    footer: Sequence[str] = (),
) -> Path:
    """A workbook with the grid on one sheet; `title` adds a merged title row above it (悟空
    9.0's `writer.merge(headList.size() - 1, "合同信息")`), `footer` lines go in column A
    below it (after a blank row, as Salesforce writes them)."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    worksheet = workbook.add_worksheet(sheet)
    top = 0
    if title is not None:
        worksheet.merge_range(0, 0, 0, len(grid[0]) - 1, title)
        top = 1
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            if value != "":
                worksheet.write_string(top + r, c, value)
    for r, line in enumerate(footer):
        if line:
            worksheet.write_string(top + len(grid) + r, 0, line.strip('"'))
    workbook.close()
    return path


def write_parquet(path: Path, grid: Grid, types: dict[str, pl.DataType] | None = None) -> Path:
    """A typed Parquet file (API exports keep their types): text cells cast by `types`."""
    headers, rows = grid[0], grid[1:]
    frame = pl.DataFrame(
        {h: [row[i] or None for row in rows] for i, h in enumerate(headers)},
        schema=dict.fromkeys(headers, pl.String),
    )
    casts = []
    for name, dtype in (types or {}).items():
        if dtype == pl.Boolean:
            casts.append(pl.col(name) == "true")
        elif dtype == pl.Datetime("us"):
            casts.append(pl.col(name).str.to_datetime("%Y-%m-%dT%H:%M:%S"))
        elif dtype == pl.Date:
            casts.append(pl.col(name).str.to_date("%Y-%m-%d"))
        else:
            casts.append(pl.col(name).cast(dtype))
    frame.with_columns(casts).write_parquet(path)
    return path


def grid(headers: Sequence[str], rows: Sequence[dict[str, str]]) -> Grid:
    return [list(headers), *([row.get(h, "") for h in headers] for row in rows)]


def us_date(value: dt.date | dt.datetime) -> str:
    return f"{value.month}/{value.day}/{value.year}"


def us_datetime(value: dt.datetime) -> str:
    hour = value.hour % 12 or 12
    return f"{us_date(value)} {hour}:{value.minute:02d} {'AM' if value.hour < 12 else 'PM'}"


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def epoch_ms(value: dt.datetime | dt.date, zone: str = "Asia/Shanghai") -> str:
    """Fxiaoke API dates: epoch milliseconds of the local (Asia/Shanghai) time."""
    from zoneinfo import ZoneInfo

    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    return str(int(value.replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000))


# --- Salesforce ---------------------------------------------------------------------------------

SF_STAGE = {
    "open_early": "Prospecting",
    "open_late": "Negotiation/Review",
    "won": "Closed Won",
    "lost": "Closed Lost",
    "void": "Closed Lost",
}


def sf_account_id(account: int) -> str:
    return sf_id15(900 + account).replace("0065g", "0015g")


def sf_footer(n: int) -> list[str]:
    return [
        "",
        f'"Grand Totals ({n} records)"',
        "",
        '"Confidential Information - Do Not Distribute"',
        '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."',
    ]


def write_salesforce_opportunity_report(
    folder: Path, f: Facts, name: str = "report1732260000000.csv"
) -> Path:
    """The real-world shape: a multi-currency `Total Amount Currency` + `Total Amount` pair,
    `Close Date (2)` beside `Close Date`, `Opportunity ID` twice, `$1,234` amounts on some rows,
    US dates, the Details Only footer."""
    headers = [
        "Opportunity Owner",
        "Account Name",
        "Account ID",
        "Opportunity Name",
        "Stage",
        "Probability (%)",
        "Total Amount Currency",
        "Total Amount",
        "Created Date",
        "Close Date (2)",
        "Close Date",
        "Fiscal Period",
        "Opportunity ID",
        "Opportunity ID",
    ]
    rows = [headers]
    for d in f.deals:
        amount = f"${d.amount:,.2f}" if d.key % 3 == 0 else f"{d.amount:,.2f}"
        rows.append(
            [
                REPS_EN[d.owner],
                f.accounts[d.account].name_en,
                sf_account_id(d.account),
                f"Deal {d.key + 1}",
                SF_STAGE[d.outcome],
                str(d.probability),
                "USD",
                amount,
                us_date(d.created),
                us_date(d.closed),
                us_date(d.closed),
                f"FY24-Q{(d.closed.month - 1) // 3 + 1}",
                sf_id15(d.key),
                sf_id15(d.key),
            ]
        )
    return write_csv(folder / name, rows, footer=sf_footer(len(f.deals)))


SF_LEAD_STATUS = {
    "open": "Working - Contacted",
    "converted": "Closed - Converted",
    "disqualified": "Closed - Not Converted",
}


def write_salesforce_lead_report(
    folder: Path, f: Facts, name: str = "report1732260000001.csv"
) -> Path:
    headers = [
        "Lead ID",
        "Lead Owner",
        "First Name",
        "Last Name",
        "Company / Account",
        "Lead Source",
        "Lead Status",
        "Create Date",
        "Converted Date",
        "Email",
    ]
    rows = [headers]
    for lead in f.leads:
        rows.append(
            [
                sf_id15(500 + lead.key).replace("0065g", "00Q5g"),
                REPS_EN[lead.owner],
                f"Pat{lead.key}",
                f"Doe{lead.key}",
                f"Company {lead.key}",
                lead.source,
                SF_LEAD_STATUS[lead.outcome],
                us_date(lead.created),
                "" if lead.converted is None else us_date(lead.converted),
                f"pat{lead.key}@example.com",
            ]
        )
    return write_csv(folder / name, rows, footer=sf_footer(len(f.leads)), bom=True)


def write_salesforce_case_report(
    folder: Path, f: Facts, name: str = "report1732260000002.csv"
) -> Path:
    """Cases from a day-first locale (`15/03/2024 10:30`), as a fixture parses with dayfirst."""
    headers = [
        "Case Number",
        "Case Owner",
        "Subject",
        "Status",
        "Priority",
        "Date/Time Opened",
        "Date/Time Closed",
        "Case Origin",
        "Account ID",
        "Age",
    ]

    def gb(value: dt.datetime | None) -> str:
        return "" if value is None else value.strftime("%d/%m/%Y %H:%M")

    rows = [headers]
    for t in f.tickets:
        rows.append(
            [
                f"{1026 + t.key:08d}",
                REPS_EN[t.owner],
                f"Printer issue {t.key}",
                "Closed" if t.resolved else "New",
                t.priority,
                gb(t.created),
                gb(t.resolved),
                ["Phone", "Email", "Web"][t.key % 3],
                sf_account_id(t.account),
                str(t.key),
            ]
        )
    return write_csv(folder / name, rows, footer=sf_footer(len(f.tickets)))


def write_salesforce_accounts_report(
    folder: Path, f: Facts, name: str = "report1732260000003.xlsx"
) -> Path:
    headers = ["Account Name", "Account ID", "Account Owner", "Industry", "Created Date", "Phone"]
    rows = [headers]
    for a in f.accounts:
        rows.append(
            [a.name_en, sf_account_id(a.key), REPS_EN[a.owner], a.industry, us_date(a.created), ""]
        )
    return write_xlsx(folder / name, rows, sheet="Report", footer=sf_footer(len(f.accounts)))


def write_salesforce_opportunity_api(
    folder: Path, f: Facts, name: str = "Opportunity.parquet", fmt: str = "parquet"
) -> Path:
    """API fields with 18-character IDs: typed Parquet (Fivetran style), or a Data Loader CSV
    (`true`/`false`, ISO date-times with an offset)."""
    from tests.factory import sf_id18

    headers = [
        "Id",
        "Name",
        "AccountId",
        "Amount",
        "CloseDate",
        "StageName",
        "IsClosed",
        "IsWon",
        "Probability",
        "OwnerId",
        "CreatedDate",
        "CurrencyIsoCode",
    ]
    rows = [headers]
    for d in f.deals:
        rows.append(
            [
                sf_id18(sf_id15(d.key)),
                f"Deal {d.key + 1}",
                sf_id18(sf_account_id(d.account)),
                f"{d.amount}",
                d.closed.isoformat(),
                SF_STAGE[d.outcome],
                "true" if d.status != "open" else "false",
                "true" if d.status == "won" else "false",
                str(d.probability),
                f"0055g0000{d.owner:06d}",
                d.created.strftime("%Y-%m-%dT%H:%M:%S") + (".000+0000" if fmt == "csv" else ""),
                "USD",
            ]
        )
    if fmt == "csv":
        return write_csv(folder / name, rows)
    types = {
        "Amount": pl.Float64(),
        "Probability": pl.Float64(),
        "IsClosed": pl.Boolean(),
        "IsWon": pl.Boolean(),
        "CloseDate": pl.Date(),
        "CreatedDate": pl.Datetime("us"),
    }
    return write_parquet(folder / name, rows, types)


def salesforce_folder(folder: Path, f: Facts) -> Path:
    write_salesforce_opportunity_report(folder, f)
    write_salesforce_lead_report(folder, f)
    write_salesforce_case_report(folder, f)
    write_salesforce_accounts_report(folder, f)
    return folder


# --- HubSpot ------------------------------------------------------------------------------------

HS_STAGE_LABEL = {
    "open_early": "Appointment Scheduled",
    "open_late": "Contract Sent",
    "won": "Closed Won",
    "lost": "Closed Lost",
    "void": "Closed Lost",
}
HS_STAGE_ID = {
    "open_early": "appointmentscheduled",
    "open_late": "contractsent",
    "won": "closedwon",
    "lost": "closedlost",
    "void": "closedlost",
}


def hs_company_id(account: int) -> str:
    return str(9_876_543_210 + account)


def write_hubspot_deals(
    folder: Path, f: Facts, name: str = "hubspot-crm-exports-all-deals-2024-11-01.csv"
) -> Path:
    """UTF-16 with a BOM, tab-separated; stage labels on some rows, internal ids on others;
    `$45,000` and bare amounts; `;`-separated association ids; mixed date formats."""
    headers = [
        "Record ID",
        "Deal Name",
        "Deal Stage",
        "Amount",
        "Deal owner",
        "Close Date",
        "Create Date",
        "Pipeline",
        "Associated Company",
        "Associated Company IDs",
        "Associated Contact IDs",
        "Original Source",
        'Date entered "Closed Won (Sales Pipeline)"',
    ]
    rows = [headers]
    for d in f.deals:
        stage = HS_STAGE_ID[d.outcome] if d.key % 2 else HS_STAGE_LABEL[d.outcome]
        amount = f"${d.amount:,.2f}" if d.key % 2 else f"{d.amount:.2f}"
        created = iso(d.created)[:16] if d.key % 3 else us_datetime(d.created)
        companies = hs_company_id(d.account)
        if d.key % 4 == 0:
            companies += f";{hs_company_id((d.account + 1) % 5)}"
        rows.append(
            [
                str(20_000_000_000 + d.key),
                f"Deal {d.key + 1}",
                stage,
                amount,
                REPS_EN[d.owner],
                d.closed.isoformat(),
                created,
                "Sales Pipeline",
                f.accounts[d.account].name_en,
                companies,
                f"{700 + d.key};{800 + d.key}",
                "Organic Search",
                d.closed.isoformat() if d.status == "won" else "",
            ]
        )
    return write_csv(folder / name, rows, delimiter="\t", encoding="utf-16-le", bom=True)


HS_LIFECYCLE = {"open": "Lead", "converted": "Customer", "disqualified": "Other"}


def write_hubspot_contacts(
    folder: Path, f: Facts, name: str = "hubspot-crm-exports-all-contacts-2024-11-01.csv"
) -> Path:
    headers = [
        "Record ID",
        "First Name",
        "Last Name",
        "Email",
        "Phone Number",
        "Job Title",
        "Company Name",
        "Contact owner",
        "Lead Status",
        "Lifecycle Stage",
        "Create Date",
        "Became a Customer Date",
        "Original Source",
        "Country/Region",
    ]
    rows = [headers]
    for lead in f.leads:
        rows.append(
            [
                str(300 + lead.key),
                f"Pat{lead.key}",
                f"Doe{lead.key}",
                f"pat{lead.key}@example.com",
                "",
                "Buyer",
                f"Company {lead.key}",
                REPS_EN[lead.owner],
                "Open",
                HS_LIFECYCLE[lead.outcome],
                iso(lead.created)[:16],
                "" if lead.converted is None else iso(lead.converted)[:16],
                lead.source,
                "China",
            ]
        )
    return write_csv(folder / name, rows)


def write_hubspot_companies(
    folder: Path, f: Facts, name: str = "hubspot-crm-exports-all-companies.xlsx"
) -> Path:
    headers = [
        "Record ID",
        "Company name",
        "Domain / Website URL",
        "Company owner",
        "Industry",
        "Create Date",
    ]
    rows = [headers]
    for a in f.accounts:
        rows.append(
            [
                hs_company_id(a.key),
                a.name_en,
                f"acme{a.key}.example",
                REPS_EN[a.owner],
                a.industry,
                iso(a.created),
            ]
        )
    return write_xlsx(folder / name, rows, sheet="Companies")


def write_hubspot_tickets(
    folder: Path, f: Facts, name: str = "hubspot-crm-exports-all-tickets.csv"
) -> Path:
    headers = [
        "Record ID",
        "Ticket name",
        "Ticket status",
        "Priority",
        "Create date",
        "Close date",
        "Ticket owner",
        "Source",
        "Pipeline",
    ]
    rows = [headers]
    for t in f.tickets:
        rows.append(
            [
                str(4000 + t.key),
                f"Printer issue {t.key}",
                "Closed" if t.resolved else "Waiting on us",
                t.priority.upper(),
                us_datetime(t.created),
                "" if t.resolved is None else us_datetime(t.resolved),
                REPS_EN[t.owner],
                "Email",
                "Support Pipeline",
            ]
        )
    return write_csv(folder / name, rows)


def hubspot_folder(folder: Path, f: Facts) -> Path:
    write_hubspot_deals(folder, f)
    write_hubspot_contacts(folder, f)
    write_hubspot_companies(folder, f)
    write_hubspot_tickets(folder, f)
    return folder


# --- Zoho CRM -----------------------------------------------------------------------------------

ZOHO_STAGE = {
    "open_early": "Qualification",
    "open_late": "Negotiation/Review",
    "won": "Closed Won",
    "lost": "Closed Lost",
    "void": "Closed-Lost to Competition",
}
ZOHO_LEAD_STATUS = {"open": "Contacted", "converted": "Pre-Qualified", "disqualified": "Junk Lead"}


def write_zoho_deals(folder: Path, f: Facts, name: str = "Deals_2024_06_30.csv") -> Path:
    headers = [
        "Record Id",
        "Deal Owner",
        "Deal Name",
        "Account Name",
        "Type",
        "Lead Source",
        "Contact Name",
        "Currency",
        "Exchange Rate",
        "Amount",
        "Closing Date",
        "Stage",
        "Probability (%)",
        "Expected Revenue",
        "Created By",
        "Created Time",
        "Modified Time",
    ]
    rows = [headers]
    for d in f.deals:
        rows.append(
            [
                str(4_876_876_000_000_345_001 + d.key),
                REPS_EN[d.owner],
                f"Deal {d.key + 1}",
                f.accounts[d.account].name_en,
                "New Business",
                "Web",
                "",
                "USD",
                "1",
                f"{d.amount:.2f}",
                d.closed.isoformat(),
                ZOHO_STAGE[d.outcome],
                str(d.probability),
                f"{d.amount * d.probability / 100:.2f}",
                REPS_EN[0],
                iso(d.created),
                iso(d.created),
            ]
        )
    return write_csv(folder / name, rows)


def write_zoho_leads(folder: Path, f: Facts, name: str = "Leads_2024_06_30.csv") -> Path:
    headers = [
        "Record Id",
        "Lead Owner",
        "First Name",
        "Last Name",
        "Email",
        "Company",
        "Created Time",
        "Modified Time",
        "City",
        "Lead Status",
        "Lead Source",
        "Created By",
    ]
    rows = [headers]
    for lead in f.leads:
        rows.append(
            [
                str(4_876_876_000_000_500_001 + lead.key),
                REPS_EN[lead.owner],
                f"Pat{lead.key}",
                f"Doe{lead.key}",
                f"pat{lead.key}@example.com",
                f"Company {lead.key}",
                iso(lead.created),
                iso(lead.created),
                "Chengdu",
                ZOHO_LEAD_STATUS[lead.outcome],
                lead.source,
                REPS_EN[0],
            ]
        )
    return write_csv(folder / name, rows)


def write_zoho_accounts(folder: Path, f: Facts, name: str = "Accounts.xlsx") -> Path:
    headers = [
        "Record Id",
        "Account Owner",
        "Account Name",
        "Account Type",
        "Industry",
        "Phone",
        "Created Time",
    ]
    rows = [headers]
    for a in f.accounts:
        rows.append(
            [
                str(4_876_876_000_000_100_001 + a.key),
                REPS_EN[a.owner],
                a.name_en,
                "Customer",
                a.industry,
                "",
                iso(a.created),
            ]
        )
    return write_xlsx(folder / name, rows, sheet="Accounts")


def write_zoho_cases(folder: Path, f: Facts, name: str = "Cases.csv") -> Path:
    headers = [
        "Record Id",
        "Case Number",
        "Product Name",
        "Case Owner",
        "Subject",
        "Priority",
        "Status",
        "Type",
        "Case Origin",
        "Account Name",
        "Potential Name",
        "Created Time",
    ]
    rows = [headers]
    for t in f.tickets:
        rows.append(
            [
                str(4_876_876_000_000_700_001 + t.key),
                str(100 + t.key),
                "Printer",
                REPS_EN[t.owner],
                f"Printer issue {t.key}",
                t.priority,
                "Closed" if t.resolved else "New",
                "Problem",
                "Email",
                f.accounts[t.account].name_en,
                "",
                iso(t.created),
            ]
        )
    return write_csv(folder / name, rows)


def zoho_folder(folder: Path, f: Facts) -> Path:
    write_zoho_deals(folder, f)
    write_zoho_leads(folder, f)
    write_zoho_accounts(folder, f)
    write_zoho_cases(folder, f)
    return folder


# --- 悟空CRM 11.0 / 9.0 --------------------------------------------------------------------------

WK_STAGE = {
    "open_early": "验证客户",
    "open_late": "方案/报价",
    "won": "赢单",
    "lost": "输单",
    "void": "无效",
}
SYSTEM = ["负责人", "所属部门", "更新时间", "创建时间", "创建人"]


def _wukong_write(
    folder: Path, name: str, rows: Grid, version: str, title: str, csv_encoding: str | None
) -> Path:
    """11.0: header on row 1; 9.0: a merged title row above it. XLSX, or CSV when
    `csv_encoding` is given (a workbook saved as CSV)."""
    if csv_encoding is not None:
        grid_rows = rows if version == "11" else [[title] + [""] * (len(rows[0]) - 1), *rows]
        return write_csv(folder / f"{name}.csv", grid_rows, encoding=csv_encoding)
    return write_xlsx(
        folder / f"{name}.xlsx", rows, sheet=name, title=title if version == "9" else None
    )


def write_wukong_customers(
    folder: Path, f: Facts, version: str = "11", csv_encoding: str | None = None
) -> Path:
    """9.0 shows the legacy names 手机号 and 电子邮箱; an import-template `*` on 客户名称."""
    phone, email = ("手机", "邮箱") if version == "11" else ("手机号", "电子邮箱")
    headers = [
        "*客户名称",
        "客户来源",
        phone,
        "电话",
        email,
        "网址",
        "客户行业",
        "客户级别",
        "下次联系时间",
        "备注",
        "锁定状态",
        "成交状态",
        "最后跟进时间",
        "详细地址",
        *SYSTEM,
    ]
    rows = [headers]
    for a in f.accounts:
        rows.append(
            [
                a.name_zh,
                "转介绍",
                f"1380000{a.key:04d}",
                "",
                f"c{a.key}@example.cn",
                "",
                a.industry,
                "A（重点客户）",
                "",
                "",
                "未锁定",
                "已成交",
                "",
                "成都市高新区",
                REPS_ZH[a.owner],
                "销售部",
                iso(a.created),
                iso(a.created),
                REPS_ZH[0],
            ]
        )
    return _wukong_write(folder, "客户", rows, version, "客户信息", csv_encoding)


def write_wukong_deals(
    folder: Path, f: Facts, version: str = "11", csv_encoding: str | None = None
) -> Path:
    headers = [
        "商机名称",
        "客户名称",
        "商机金额",
        "预计成交日期",
        "备注",
        "商机状态组",
        "商机阶段",
        "最后跟进时间",
        "负责人",
        "相关团队",
        "所属部门",
        "更新时间",
        "创建时间",
        "创建人",
    ]
    rows = [headers]
    for d in f.deals:
        rows.append(
            [
                f"项目{d.key + 1}",
                f.accounts[d.account].name_zh,
                f"{d.amount:.2f}",
                d.closed.isoformat(),
                "",
                "销售流程商机组",
                WK_STAGE[d.outcome],
                "",
                REPS_ZH[d.owner],
                "",
                "销售部",
                iso(d.created),
                iso(d.created),
                REPS_ZH[0],
            ]
        )
    return _wukong_write(folder, "商机", rows, version, "商机信息", csv_encoding)


def write_wukong_leads(
    folder: Path, f: Facts, version: str = "11", csv_encoding: str | None = "gb18030"
) -> Path:
    headers = [
        "线索名称",
        "邮箱",
        "线索来源",
        "手机",
        "电话",
        "地址",
        "客户行业",
        "客户级别",
        "下次联系时间",
        "备注",
        "最后跟进时间",
        "最后跟进记录",
        *SYSTEM,
    ]
    rows = [headers]
    for lead in f.leads:
        rows.append(
            [
                f"线索{lead.key + 1}",
                "",
                ["促销", "搜索引擎", "广告"][lead.key % 3],
                "",
                "",
                "",
                "IT",
                "",
                "",
                "",
                "",
                "",
                REPS_ZH[lead.owner],
                "销售部",
                iso(lead.created),
                iso(lead.created),
                REPS_ZH[0],
            ]
        )
    return _wukong_write(folder, "线索", rows, version, "线索信息", csv_encoding)


def write_wukong_contracts(
    folder: Path, f: Facts, version: str = "11", csv_encoding: str | None = None
) -> Path:
    headers = [
        "合同编号",
        "合同名称",
        "客户名称",
        "商机名称",
        "合同金额",
        "下单时间",
        "合同开始时间",
        "合同结束时间",
        "客户签约人",
        "公司签约人",
        "备注",
        "合同类型",
        "审核状态",
        "已收款金额",
        "未收款金额",
        "最后跟进时间",
        "负责人",
        "相关团队",
        "所属部门",
        "更新时间",
        "创建时间",
        "创建人",
    ]
    rows = [headers]
    for c in f.contracts:
        rows.append(
            [
                f"HT2024{c.key + 1:04d}",
                f"合同{c.key + 1}",
                f.accounts[c.account].name_zh,
                "",
                f"{c.amount:.2f}",
                c.ordered.isoformat(),
                c.ordered.isoformat(),
                "",
                "",
                REPS_ZH[c.owner],
                "",
                "销售合同",
                c.approval,
                "0.00",
                f"{c.amount:.2f}",
                "",
                REPS_ZH[c.owner],
                "",
                "销售部",
                c.ordered.isoformat() + " 12:00:00",
                c.ordered.isoformat() + " 12:00:00",
                REPS_ZH[0],
            ]
        )
    return _wukong_write(folder, "合同", rows, version, "合同信息", csv_encoding)


def write_wukong_payments(
    folder: Path, f: Facts, version: str = "11", csv_encoding: str | None = None
) -> Path:
    headers = [
        "回款编号",
        "客户名称",
        "合同编号",
        "期数",
        "回款日期",
        "回款金额",
        "回款方式",
        "备注",
        "审核状态",
        "合同金额",
        "负责人",
        "相关团队",
        "所属部门",
        "更新时间",
        "创建时间",
        "创建人",
    ]
    rows = [headers]
    for p in f.payments:
        rows.append(
            [
                f"HK2024{p.key + 1:04d}",
                f.accounts[p.account].name_zh,
                f"HT2024{p.key + 1:04d}",
                "1",
                p.ordered.isoformat(),
                f"{p.amount:.2f}",
                "电汇",
                "",
                p.approval,
                "",
                REPS_ZH[p.owner],
                "",
                "销售部",
                p.ordered.isoformat() + " 12:00:00",
                p.ordered.isoformat() + " 12:00:00",
                REPS_ZH[0],
            ]
        )
    return _wukong_write(folder, "回款", rows, version, "回款信息", csv_encoding)


def write_wukong_visits(
    folder: Path, f: Facts, version: str = "11", csv_encoding: str | None = None
) -> Path:
    headers = [
        "回访编号",
        "回访时间",
        "回访人",
        "回访形式",
        "客户名称",
        "联系人",
        "合同编号",
        "客户满意度",
        "客户反馈",
    ]
    rows = [headers]
    for v in f.visits:
        rows.append(
            [
                f"HF2024{v.key + 1:04d}",
                iso(v.visited),
                REPS_ZH[v.owner],
                "电话",
                f.accounts[v.account].name_zh,
                "",
                "",
                v.satisfaction,
                "",
            ]
        )
    return _wukong_write(folder, "回访", rows, version, "回访信息", csv_encoding)


def write_wukong_contacts(folder: Path, version: str = "11") -> Path:
    """联系人: a known export that feeds no KPI."""
    headers = [
        "姓名",
        "客户名称",
        "手机",
        "电话",
        "邮箱",
        "职务",
        "是否关键决策人",
        "地址",
        "下次联系时间",
        "备注",
        "性别",
        *SYSTEM,
    ]
    rows = [
        headers,
        [
            "刘洋",
            "华东贸易有限公司",
            "",
            "",
            "",
            "采购经理",
            "是",
            "",
            "",
            "",
            "男",
            "张伟",
            "销售部",
            "",
            "2024-01-05 10:00:00",
            "张伟",
        ],
    ]
    return _wukong_write(folder, "联系人", rows, version, "联系人信息", None)


def wukong_folder(folder: Path, f: Facts, version: str = "11", payments: bool = True) -> Path:
    write_wukong_customers(folder, f, version)
    write_wukong_deals(folder, f, version)
    write_wukong_leads(folder, f, version, csv_encoding="gb18030")
    write_wukong_contracts(folder, f, version)
    if payments:
        write_wukong_payments(folder, f, version)
    write_wukong_visits(folder, f, version)
    write_wukong_contacts(folder, version)
    return folder


# --- 纷享销客 -------------------------------------------------------------------------------------

FX_STATUS = {
    "open_early": "进行中",
    "open_late": "进行中",
    "won": "赢单",
    "lost": "输单",
    "void": "无效",
}
FX_LIFE = {
    "通过": ("正常", "normal"),
    "待审核": ("正常", "normal"),
    "拒绝": ("作废", "invalid"),
    "审核中": ("审核中", "under_review"),
    "撤回": ("未生效", "ineffective"),
    "未提交": ("未生效", "ineffective"),
}


def fx_account_id(account: int) -> str:
    return f"65f1a2b3c4d5e6f7a8b9c0{account:02d}"


def write_fxiaoke_labels(folder: Path, f: Facts) -> list[Path]:
    """UI exports keyed by display labels (XLSX), local date-times."""
    customers = [
        [
            "客户名称",
            "客户级别",
            "负责人",
            "负责人主属部门",
            "归属部门",
            "生命状态",
            "业务类型",
            "最后一次成交时间",
            "最后跟进时间",
            "邮件",
            "创建人",
            "创建时间",
        ]
    ]
    for a in f.accounts:
        customers.append(
            [
                a.name_zh,
                "A类",
                REPS_ZH[a.owner],
                "销售一部",
                "销售一部",
                "正常",
                "默认业务类型",
                "",
                "",
                f"c{a.key}@example.cn",
                REPS_ZH[0],
                iso(a.created),
            ]
        )
    deals = [
        [
            "商机名称",
            "客户名称",
            "商机金额",
            "结单日期",
            "销售阶段",
            "阶段状态",
            "赢率",
            "负责人",
            "负责人主属部门",
            "生命状态",
            "业务类型",
            "创建时间",
        ]
    ]
    for d in f.deals:
        deals.append(
            [
                f"项目{d.key + 1}",
                f.accounts[d.account].name_zh,
                f"{d.amount:.2f}",
                d.closed.isoformat(),
                "需求确认",
                FX_STATUS[d.outcome],
                f"{d.probability}%",
                REPS_ZH[d.owner],
                "销售一部",
                "正常",
                "默认业务类型",
                iso(d.created),
            ]
        )
    orders = [
        [
            "销售订单编号",
            "客户名称",
            "下单日期",
            "销售订单金额",
            "负责人",
            "负责人主属部门",
            "生命状态",
            "业务类型",
            "创建时间",
        ]
    ]
    for c in f.contracts:
        orders.append(
            [
                f"SO{c.key + 1:05d}",
                f.accounts[c.account].name_zh,
                c.ordered.isoformat(),
                f"{c.amount:.2f}",
                REPS_ZH[c.owner],
                "销售一部",
                FX_LIFE[c.approval][0],
                "默认业务类型",
                c.ordered.isoformat() + " 12:00",
            ]
        )
    return [
        write_xlsx(folder / "客户_20240630.xlsx", customers),
        write_xlsx(folder / "商机_20240630.xlsx", deals),
        write_xlsx(folder / "销售订单_20240630.xlsx", orders),
    ]


def write_fxiaoke_api(folder: Path, f: Facts, fmt: str = "csv") -> list[Path]:
    """OpenAPI dumps keyed by API names: numbers as strings, dates as epoch milliseconds."""
    customers = [
        [
            "_id",
            "name",
            "account_level",
            "owner",
            "owner_department",
            "life_status",
            "record_type",
            "last_deal_closed_time",
            "email",
            "create_time",
        ]
    ]
    for a in f.accounts:
        customers.append(
            [
                fx_account_id(a.key),
                a.name_zh,
                "1",
                f"100{a.owner}",
                "1000",
                "normal",
                "default__c",
                "",
                f"c{a.key}@example.cn",
                epoch_ms(a.created),
            ]
        )
    deals = [
        [
            "_id",
            "name",
            "account_id",
            "amount",
            "close_date",
            "sales_stage",
            "sales_status",
            "probability",
            "owner",
            "life_status",
            "create_time",
        ]
    ]
    for d in f.deals:
        deals.append(
            [
                f"66aa{d.key:020d}",
                f"项目{d.key + 1}",
                fx_account_id(d.account),
                f"{d.amount:.2f}",
                epoch_ms(d.closed),
                "2",
                FX_STATUS[d.outcome],
                str(d.probability),
                f"100{d.owner}",
                "normal",
                epoch_ms(d.created),
            ]
        )
    orders = [
        [
            "_id",
            "name",
            "account_id",
            "order_time",
            "order_amount",
            "owner",
            "life_status",
            "create_time",
        ]
    ]
    for c in f.contracts:
        orders.append(
            [
                f"67bb{c.key:020d}",
                f"SO{c.key + 1:05d}",
                fx_account_id(c.account),
                epoch_ms(c.ordered),
                f"{c.amount:.2f}",
                f"100{c.owner}",
                FX_LIFE[c.approval][1],
                epoch_ms(c.ordered),
            ]
        )
    write: Callable[[Path, Grid], Path]
    if fmt == "parquet":
        write = write_parquet
        suffix = ".parquet"
    else:
        write = write_csv
        suffix = ".csv"
    return [
        write(folder / f"AccountObj{suffix}", customers),
        write(folder / f"NewOpportunityObj{suffix}", deals),
        write(folder / f"SalesOrderObj{suffix}", orders),
    ]


def write_config(folder: Path, preset: str, tables: dict[str, object] | None = None) -> Path:
    """A crmkpi.toml naming `preset`, with `tables` overrides (tests.factory writes sections)."""
    from tests.factory import to_toml

    path = folder / "crmkpi.toml"
    body = to_toml({"tables": tables}) if tables else ""
    path.write_text(f'preset = "{preset}"\n\n{body}', encoding="utf-8")
    return path

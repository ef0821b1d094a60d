"""`crmkpi init`: a commented starter crmkpi.toml from the headers found in an export folder.

When the headers are those of a CRM crmkpi ships a preset for (crmkpi/presets.py), the file
names the preset and lists which export feeds which table: the mapping is the preset's, and the
user writes only what differs. Otherwise each file is matched to the canonical table whose
columns its headers resemble most (canonical names and common English and Chinese CRM labels);
the user reviews and corrects the guess.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from crmkpi.config import FILE_SUFFIXES, ReadOptions
from crmkpi.errors import CrmkpiError
from crmkpi.io.read import (
    SNIFF_BYTES,
    choose_delimiter,
    detect_format,
    expand_patterns,
    normalise_header,
    read_file,
    read_header_sample,
)
from crmkpi.tables import CONTRACTS, TABLE_NAMES, columns_of

# Labels CRMs use for canonical columns, besides the canonical name itself.
ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customer id",
        "account id",
        "customerid",
        "account",
        "客户编号",
        "客户id",
        "客户名称",
        "社保卡号",
        "会员卡号",
    ),
    "deal_id": ("opportunity id", "deal id", "record id", "商机编号", "商机id"),
    "lead_id": ("lead id", "线索编号", "线索id"),
    "ticket_id": ("ticket id", "case number", "case id", "工单编号"),
    "call_id": ("call id", "uniqueid", "通话编号"),
    "order_id": (
        "order id",
        "order number",
        "invoiceno",
        "invoice no",
        "invoice number",
        "订单编号",
        "订单号",
        "单据号",
        "合同编号",
    ),
    "campaign_id": ("campaign id", "campaign", "renew offer type", "offer", "活动编号", "活动名称"),
    "member_id": ("member id", "contact id", "customer", "会员编号"),
    "targeted_at": ("targeted at", "sent date", "effective to date", "发送时间"),
    "responded": ("responded", "response", "是否响应"),
    "response_id": ("response id", "survey id", "回访编号"),
    "activity_id": ("activity id", "task id", "跟进记录编号"),
    "created_at": (
        "created date",
        "create date",
        "created time",
        "date/time opened",
        "engage date",
        "创建时间",
    ),
    "closed_at": ("close date", "closing date", "date/time closed", "预计成交日期", "成交日期"),
    "ordered_at": (
        "order date",
        "invoicedate",
        "date",
        "invoice date",
        "下单时间",
        "下单日期",
        "销售日期",
        "销售时间",
        "购药时间",
    ),
    "amount": (
        "amount",
        "total amount",
        "deal amount",
        "商机金额",
        "合同金额",
        "回款金额",
        "金额",
        "close value",
        "sales",
        "dollar value",
        "实收金额",
    ),
    "quantity": ("quantity", "qty", "销售数量", "数量"),
    "product": ("product", "product name", "description", "商品名称", "药品名称"),
    "category": ("category", "product category", "商品类别", "类别"),
    "status": (
        "stage",
        "status",
        "deal stage",
        "deal_stage",
        "lead status",
        "商机阶段",
        "状态",
        "审核状态",
    ),
    "rep": (
        "owner",
        "opportunity owner",
        "deal owner",
        "case owner",
        "lead owner",
        "assigned agent",
        "agent",
        "sales_agent",
        "employee",
        "负责人",
        "员工",
        "参训人",
    ),
    "probability": ("probability (%)", "probability(%)", "probability", "赢单率"),
    "segment": ("segment", "customer segment", "客户级别"),
    "region": ("region", "sales region", "state", "地区"),
    "industry": ("industry", "sector", "客户行业"),
    "lead_source": ("lead source", "source", "客户来源", "线索来源"),
    "channel": ("channel", "sales channel", "ticket channel", "case origin", "渠道"),
    "priority": ("priority", "ticket priority", "优先级"),
    "score": ("score", "rating", "satisfaction rating", "nps", "csat", "客户满意度"),
    "responded_at": ("survey date", "response date", "回访时间"),
    "offered_at": ("call date", "date", "start", "通话时间"),
    "occurred_at": ("activity date", "incident date", "occurred at", "跟进时间", "发生时间"),
    "outcome": (
        "answered (y/n)",
        "answered",
        "call status",
        "call outcome",
        "disposition",
        "接通状态",
    ),
    "wait_seconds": ("speed of answer in seconds", "speed of answer", "wait time", "等待时长"),
    "talk_seconds": ("avgtalkduration", "talk duration", "talk time", "通话时长"),
    "resolved": ("resolved", "是否解决"),
    "survey_type": ("survey type", "问卷类型", "调查类型"),
    "shift_date": ("shift date", "班次日期", "排班日期"),
    "staffed_seconds": ("staffed time", "logged in time", "在线时长", "在班时长"),
    "prep_seconds": ("prep time", "ready time", "preparation time", "准备时长", "准备时间"),
    "trained_on": ("training date", "trained on", "培训日期", "培训时间"),
    "program": ("program", "training program", "course", "培训课程", "培训项目"),
    "incident_id": ("incident id", "incident number", "事件编号"),
    "kind": ("incident type", "incident kind", "事件类型"),
    "team": ("team", "团队", "所属团队"),
    "description": ("description", "details", "事件描述", "描述"),
    "name": ("name", "account name", "company name", "客户名称"),
    "email": ("email", "邮箱"),
    "phone": ("phone", "mobile", "手机", "电话"),
    "address": ("address", "详细地址", "地址"),
}


def _key(header: str) -> str:
    """Header words, ignoring case, width and the separators (`close_date` = `Close Date`)."""
    return re.sub(r"[\s_\-/]+", " ", normalise_header(header)).strip()


def _candidates(column: str) -> list[str]:
    return [_key(column), *(_key(a) for a in ALIASES.get(column, ()))]


def guess_mapping(headers: list[str]) -> tuple[str | None, dict[str, str]]:
    """The table whose required columns all match and that matches the most columns, with its
    canonical column -> source header mapping; (None, {}) when no table fits."""
    normalised = {_key(h): h for h in headers}
    best_table: str | None = None
    best_mapping: dict[str, str] = {}
    for table in TABLE_NAMES:
        mapping: dict[str, str] = {}
        for name in columns_of(table):
            match = next((normalised[c] for c in _candidates(name) if c in normalised), None)
            if match is not None and match not in mapping.values():
                mapping[name] = match
        required = [n for n, c in columns_of(table).items() if c.required]
        computable = _computed_columns(table, mapping, headers, None)
        complete = all(n in mapping or n in computable for n in required)
        if complete and len(mapping) > len(best_mapping):
            best_table, best_mapping = table, mapping
    return best_table, best_mapping


# Source values CRMs use for canonical values of pick-list columns.
VALUE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "won": ("won", "closed won", "closedwon", "赢单", "成交", "已成交"),
    "lost": ("lost", "closed lost", "closedlost", "输单", "无效"),
    "answered": ("answered", "y", "yes", "接通", "已接通"),
    "abandoned": ("abandoned", "n", "no", "missed", "no answer", "未接通", "放弃"),
    "blocked": ("blocked", "busy", "failed", "congestion", "占线"),
    "completed": ("completed", "complete", "paid", "已完成", "已付款"),
    "converted": ("converted", "已转化"),
    "renewal": ("renewal", "续约", "续费"),
    "document_lost": ("document lost", "lost document", "资料丢失", "合同丢失", "档案丢失"),
    "process_failure": ("process failure", "流程失误", "管理失误", "流程问题"),
    "other": ("other", "其他"),
    "ad_awareness": ("ad awareness", "广告认知"),
    "ad_rating": ("ad rating", "广告评分", "广告评价"),
}
# Pick-list columns whose unknown values are, in practice, all one canonical value.
VALUE_DEFAULTS = {("deals", "status"): "open", ("leads", "status"): "open"}
MAX_VALUES_LISTED = 30


def allowed_values(table: str, column: str) -> list[str]:
    """The canonical values of a pick-list column (its `isin` check), else []."""
    schema = CONTRACTS[table].to_schema().columns[column]
    for check in schema.checks:
        values = (check.statistics or {}).get("allowed_values")
        if values:
            return list(values)
    return []


def guess_value_map(
    table: str, column: str, values: list[str]
) -> tuple[dict[str, str], str | None] | None:
    """Source value -> canonical value for a pick-list column whose values are not canonical
    already; None when no map is needed."""
    allowed = allowed_values(table, column)
    if not allowed or set(values) <= set(allowed):
        return None
    default = VALUE_DEFAULTS.get((table, column))
    mapping = {}
    for value in values:
        key = _key(value)
        match = next(
            (
                a
                for a in allowed
                if key == _key(a) or key in (_key(s) for s in VALUE_SYNONYMS.get(a, ()))
            ),
            None,
        )
        if match is not None:
            mapping[value] = match
        elif default is None:
            mapping[value] = "?"
    return mapping, default


def _value_map_line(name: str, header: str, mapping: dict[str, str], default: str | None) -> str:
    pairs = ", ".join(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in mapping.items())
    line = f"{name} = {{ from = {_toml_string(header)}, map = {{ {pairs} }}"
    if default is not None:
        line += f", default = {_toml_string(default)}"
    line += " }"
    if "?" in mapping.values():
        line += '   # REVIEW: replace each "?" with a canonical value'
    return line


def _toml_string(text: str) -> str:
    """A TOML string; a literal one ('...') when that spares escaping quoted headers."""
    if '"' in text and "'" not in text and not re.search(r"[\x00-\x1f]", text):
        return "'" + text + "'"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def choose_preset(folder: Path, preset: str | None = None) -> str | None:
    """The preset a starter config uses: the one named, else the one the headers show."""
    from crmkpi.presets import detect_preset, preset_text

    if preset is not None and preset != "auto":
        preset_text(preset)  # an unknown name is a config error (78)
        return preset
    return detect_preset(folder)


def starter_config(folder: Path, preset: str | None = None) -> str:
    """The text of a starter crmkpi.toml for the exports in `folder`: naming `preset` (or the
    preset detected from the headers, when `preset` is None or "auto"), else a generic mapping
    guessed from the headers."""
    chosen = choose_preset(folder, preset)
    if chosen is not None:
        return _preset_starter(folder, chosen)
    from crmkpi.presets import list_presets

    return _generic_starter(folder, ", ".join(list_presets()))


def _preset_starter(folder: Path, name: str) -> str:
    """A crmkpi.toml naming the preset, with what it recognised and how to override it."""
    from crmkpi.load import claim_files
    from crmkpi.presets import preset_config

    config = preset_config(name)
    assert config.preset is not None
    claims = claim_files(config, folder)
    title = config.preset.title
    lines = [
        "# crmkpi.toml: how crmkpi reads this export folder. Generated by `crmkpi init`.",
        f"# These are {title} exports: the `{name}` preset maps them (crmkpi/presets/{name}.toml;",
        "# docs/presets.md says what to export and which KPIs each export unlocks).",
        "# Write below only what you change: your keys win over the preset's, table by table and",
        "# column by column. Then run `crmkpi validate`.",
        "",
        f'preset = "{name}"',
        "",
        "# Files recognised by their headers:",
    ]
    for path, labels in sorted(claims.recognised.items()):
        lines.append(f"#   {path.name} -> {', '.join(labels)}")
    if not claims.recognised:
        lines.append("#   (none yet)")
    for note in claims.notes:
        lines.append(_comment(note))
    for failure in claims.failures:
        lines.append(_comment(f"NOT READ: {failure.error}"))
    lines += [
        "",
        "# Examples of overrides (uncomment and edit):",
        "# [input]",
        "# dayfirst = true                  # dates such as 05/01/2024 are day first",
        "# [settings]",
        '# timezone = "Asia/Shanghai"       # the business time zone periods are counted in',
    ]
    table = next(iter(config.tables.values()), None)
    if table is not None:
        column = next(iter(table.variants[0].columns), None)
        lines += [f"# [tables.{table.name}.columns]"]
        if column is not None:
            lines += [f'# {column} = "Your header"']
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    """One TOML comment line, whatever the text holds (header names may hold line breaks)."""
    return "# " + " ".join(text.split())


# `crmkpi init` checks its proposal on each file's first rows (and a glob's first files): the
# rows `crmkpi validate` would quarantine show there, in bounded time whatever the folder holds.
SAMPLE_ROWS = 20_000
SAMPLE_FILES = 20
# `crmkpi validate`'s default --max-reject-rate
REJECT_LIMIT = 0.05
# a cell that is a number or a date: a first row made of them is data, not a header
_DATA_CELL = re.compile(r"^[-+]?\d[\d\s.,:/\-]*$")
_FORMATS_TRIED = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日",
    "%Y%m%d",
)


def _sniff_encoding(head: bytes) -> str | None:
    """The `encoding` a text file needs, from its first bytes; None for UTF-8. A UTF-16 BOM
    decides by itself; UTF-16 without one shows as NUL bytes beside ASCII, on the side of the
    byte order; bytes that are not UTF-8 but GB18030 are a Chinese export."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return None
    sample = head[:4096]
    if sample and sample.count(0) > len(sample) // 4:
        return "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
    for codec in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(codec)("strict").decode(head, False)
        except UnicodeDecodeError:
            continue
        return None if codec == "utf-8" else codec
    return None  # the reader names the first byte that does not decode


def _sniff_delimiter(lines: list[str]) -> str | None:
    """The `delimiter` a text file needs (None: a comma): the candidate that splits the first
    line into most fields; space-aligned columns when none splits it but blanks do, alike on
    the first lines."""
    lines = [line for line in lines if line.strip()][:5]
    if not lines:
        return None
    if re.fullmatch(r"\"?sep=.\"?", lines[0].strip()):
        return None  # the file says it itself
    delimiter = choose_delimiter(lines, set())
    if len(next(csv.reader([lines[0]], delimiter=delimiter), [])) > 1:
        return None if delimiter == "," else delimiter
    widths = {len(line.split()) for line in lines}
    return "whitespace" if len(widths) == 1 and widths.pop() > 1 else None


def _read_keys(path: Path) -> dict[str, Any]:
    """The read keys (`encoding`, `delimiter`) a file needs beyond the defaults."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if detect_format(path, head[:64]) != "csv":
        return {}
    keys: dict[str, Any] = {}
    encoding = _sniff_encoding(head)
    if encoding is not None:
        keys["encoding"] = encoding
    codec = encoding or "utf-8-sig"
    text = codecs.getincrementaldecoder(codec)("replace").decode(head, False)
    delimiter = _sniff_delimiter(text.lstrip("\ufeff").splitlines())
    if delimiter is not None and not (delimiter == "\t" and path.suffix.lower() == ".tsv"):
        keys["delimiter"] = "tab" if delimiter == "\t" else delimiter
    return keys


def _options(keys: dict[str, Any]) -> ReadOptions:
    delimiter = keys.get("delimiter")
    return ReadOptions(
        encoding=keys.get("encoding", "utf-8"),
        delimiter="\t" if delimiter == "tab" else delimiter,
    )


def _headerless(cells: list[str]) -> bool:
    """A first row of numbers and dates is the first record: the file has no header."""
    filled = [c.strip() for c in cells if c.strip()]
    data = sum(1 for c in filled if _DATA_CELL.match(c))
    return bool(filled) and 2 * data >= len(filled)


@dataclass
class _Group:
    """Files with one header row and one way of reading: one table, one `file` pattern."""

    paths: list[Path]
    keys: dict[str, Any]
    headers: list[str]


def _file_pattern(group: list[Path], names: list[str]) -> str | list[str]:
    """`*.csv` when the group is every file of its kind in the folder, else the files' common
    name prefix with `*` (`online_retail_*.csv`), else the names themselves."""
    if len(group) == 1:
        return group[0].name
    own = sorted(p.name for p in group)
    suffix = group[0].suffix
    first, last = own[0], own[-1]  # sorted: their common prefix is everyone's
    same = next(
        (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first)
    )
    prefix = re.sub(r"[\d.\-]*$", "", first[:same])
    for pattern in (f"*{suffix}", f"{prefix}*{suffix}" if prefix else None):
        if pattern is not None and sorted(fnmatch.filter(names, pattern)) == own:
            return pattern
    return own


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    return _toml_string(str(value))


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


@dataclass
class _Proposal:
    """One proposed `[tables.<name>]` section, the comments that go above it and beside its
    columns; `section` is what is validated and what is written."""

    table: str
    section: dict[str, Any]
    comments: list[str] = field(default_factory=list)
    column_notes: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)

    def render(self) -> list[str]:
        lines = [_comment(c) for c in self.comments]
        lines.append(f"[tables.{self.table}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in self.section.items() if k != "columns"]
        lines.append(f"[tables.{self.table}.columns]")
        for name, spec in self.section["columns"].items():
            note = self.column_notes.get(name)
            lines.append(f"{name} = {_toml_value(spec)}" + (f"   # {note}" if note else ""))
        if self.unused:
            lines.append(_comment("headers not mapped: " + ", ".join(self.unused)))
        return lines


def _header_of(mapping: dict[str, str], headers: list[str], *keys: str) -> str | None:
    """The header, mapped or not, that one of `keys` names (compared as _key does)."""
    by_key = {_key(h): h for h in headers}
    return next((by_key[_key(k)] for k in keys if _key(k) in by_key), None)


def _quoted(header: str) -> str:
    return '"' + header.replace('"', '""') + '"'


def _computed_columns(
    table: str, mapping: dict[str, str], headers: list[str], sample: pl.DataFrame | None
) -> dict[str, str]:
    """SQL expressions for canonical columns the export holds only in parts: a line total
    from quantity and unit price, cost from sales and profit, a refund status from negative
    quantities (and `C` invoice numbers), a call's wait and talk time from its timestamps."""
    exprs: dict[str, str] = {}
    if table == "orders":
        quantity = _header_of(mapping, headers, "quantity", "qty", "销售数量", "数量")
        price = _header_of(mapping, headers, "unitprice", "unit price", "price", "单价")
        if "amount" not in mapping and quantity and price:
            exprs["amount"] = f"{_quoted(quantity)} * {_quoted(price)}"
        sales, profit = mapping.get("amount"), _header_of(mapping, headers, "profit", "利润")
        if "cost" not in mapping and sales and profit:
            exprs["cost"] = f"{_quoted(sales)} - {_quoted(profit)}"
        if "status" not in mapping and quantity and sample is not None:
            _number = (
                pl.col(quantity).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
            )
            negative = sample.select((_number < 0).any()).item()
            order = mapping.get("order_id")
            ids = sample[order].cast(pl.String) if order else pl.Series([], dtype=pl.String)
            c_invoices = bool(ids.str.contains(r"^C\d").any())
            if negative or c_invoices:
                when = f"{_quoted(quantity)} < 0"
                if c_invoices:
                    when += f" OR {_quoted(order or '')} LIKE 'C%'"
                exprs["status"] = f"CASE WHEN {when} THEN 'refunded' ELSE 'completed' END"
    if table == "calls":
        start = mapping.get("offered_at")
        answer = _header_of(mapping, headers, "answer", "answered at", "answer time")
        end = _header_of(mapping, headers, "end", "ended at", "end time")
        if start and answer and "wait_seconds" not in mapping:
            exprs["wait_seconds"] = f"{_quoted(answer)} - {_quoted(start)}"
        if answer and end and "talk_seconds" not in mapping:
            exprs["talk_seconds"] = f"{_quoted(end)} - {_quoted(answer)}"
    return exprs


def _date_format(values: pl.Series) -> str | None:
    """A `date_format` for dates the built-in forms do not read: 8-digit `20180101`, or dates
    written with a trailing weekday (`2018-01-01 星期五`): the format that reads every sampled
    date before it."""
    from crmkpi.io.parse import TRAILING_WEEKDAY

    text = values.cast(pl.String).drop_nulls().str.strip_chars()
    text = text.filter(text != "")
    if text.is_empty():
        return None
    if text.str.contains(r"^(19|20)\d{6}$").all():
        return "%Y%m%d"  # else read as a number of seconds or a spreadsheet day
    if not text.str.contains(TRAILING_WEEKDAY).all():
        return None
    dates = text.str.replace(TRAILING_WEEKDAY, "")
    for fmt in _FORMATS_TRIED:
        if dates.str.to_datetime(fmt, strict=False).null_count() == 0:
            return fmt
    return None


def _column_spec(table: str, name: str, header: str, values: pl.Series) -> tuple[Any, str | None]:
    """The spec of one mapped column (a header, a value map, a date format) and its note."""
    kind = columns_of(table)[name].parse_kind
    if kind in ("date", "datetime"):
        fmt = _date_format(values)
        if fmt is not None:
            return {"from": header, "date_format": fmt}, None
    distinct = values.cast(pl.String).drop_nulls().unique().sort()
    guess = guess_value_map(table, name, distinct.head(MAX_VALUES_LISTED).to_list())
    if guess is None:
        return header, None
    mapping, default = guess
    spec: dict[str, Any] = {"from": header, "map": mapping}
    if default is not None:
        spec["default"] = default
    note = 'REVIEW: replace each "?" with a canonical value' if "?" in mapping.values() else None
    return spec, note


def _propose(table: str, mapping: dict[str, str], group: _Group, sample: pl.DataFrame,
             pattern: str | list[str]) -> _Proposal:  # fmt: skip
    section: dict[str, Any] = {"file": pattern, **group.keys}
    columns: dict[str, Any] = {}
    notes: dict[str, str] = {}
    computed = _computed_columns(table, mapping, group.headers, sample)
    for name in columns_of(table):
        if name in mapping:
            columns[name], note = _column_spec(table, name, mapping[name], sample[mapping[name]])
        elif name in computed:
            columns[name], note = {"expr": computed[name]}, "computed from the export's columns"
        else:
            continue
        if note:
            notes[name] = note
    section["columns"] = columns
    read = set(mapping.values()) | {
        h for e in computed.values() for h in group.headers if _quoted(h) in e
    }
    unused = [h for h in group.headers if h not in read]
    return _Proposal(table, section, column_notes=notes, unused=unused, headers=group.headers)


def _document(proposals: list[_Proposal]) -> dict[str, Any]:
    return {
        "input": {"encoding": "utf-8"},
        "settings": {"timezone": "UTC"},
        "tables": {p.table: p.section for p in proposals},
    }


def _check(proposal: _Proposal, folder: Path, paths: list[Path]) -> None:
    """Validate the proposal as `crmkpi validate` does, on a sample; a column that would
    quarantine more rows than the reject limit allows is left out when the table does without
    it, and whatever still fails is said above the section."""
    from crmkpi.configure import parse_document
    from crmkpi.load import load_table
    from crmkpi.validate import describe_check

    for _ in range(len(proposal.section["columns"])):
        try:
            config = parse_document(_document([proposal]), None)
            loaded = load_table(
                config.tables[proposal.table], config, folder, paths[:SAMPLE_FILES],
                sample_rows=SAMPLE_ROWS,
            )  # fmt: skip
        except CrmkpiError as exc:
            proposal.comments.append(f"REVIEW: crmkpi validate would reject this table: {exc}")
            return
        if loaded is None or loaded.report.reject_rate <= REJECT_LIMIT:
            return
        rejected, report = loaded.rejected, loaded.report
        failures = _failures(rejected)
        contract = columns_of(proposal.table)
        required = failures.filter(
            pl.col("column").is_in([c for c in contract if contract[c].required])
        )
        # an optional column is left out for the rows it alone makes fail
        own = failures.join(required, on=["source_file", "source_line"], how="anti")
        optional = [
            c
            for c, n in own["column"].value_counts(sort=True).iter_rows()
            if c in proposal.section["columns"] and n / report.rows_read > REJECT_LIMIT
        ]
        if not optional:
            proposal.comments.append(
                _quarantine_note(proposal.table, rejected, required, report.rows_read)
            )
            return
        column = optional[0]
        first = own.filter(pl.col("column") == column).row(0, named=True)
        share = own.filter(pl.col("column") == column).height / report.rows_read
        spec = proposal.section["columns"].pop(column)
        proposal.column_notes.pop(column, None)
        if normalise_header(column) in {normalise_header(h) for h in proposal.headers}:
            # a header named like the column feeds it unless the config says otherwise
            proposal.section["columns"][column] = {"value": ""}
            proposal.column_notes[column] = "left empty: see the comment above the table"
        source = spec if isinstance(spec, str) else spec.get("from", spec.get("expr", ""))
        proposal.comments.append(
            f"{column} not mapped (from {source!r}): {share:.0%} of sampled rows would be "
            f"quarantined: {describe_check(first['check'])} (line {first['source_line']})"
        )


def _failures(rejected: pl.DataFrame) -> pl.DataFrame:
    """One row per quarantined row and failing column: where, which column, which check."""
    return (
        rejected.select("source_file", "source_line", pl.col("column", "check").str.split("; "))
        .explode("column", "check")
        .drop_nulls("column")
    )


def _quarantine_note(table: str, rejected: pl.DataFrame, failures: pl.DataFrame, rows: int) -> str:
    """`orders: 38% of sampled rows would be quarantined: amount not a number (line 12)`."""
    from crmkpi.validate import describe_check

    first = (failures if failures.height else rejected).row(0, named=True)
    what = describe_check(first["check"])
    what = f"{first['column']} {what}" if first.get("column") else what
    return (
        f"REVIEW: {table}: {rejected.height / rows:.0%} of sampled rows would be quarantined "
        f"(crmkpi validate allows {REJECT_LIMIT:.0%}): {what} (line {first['source_line']})"
    )


def _headerless_note(path: Path, keys: dict[str, Any], cells: list[str]) -> list[str]:
    """A file without a header row: crmkpi reads it by position (`header_row = 0` names the
    columns column_1, column_2, ...), but which column is which cannot be guessed."""
    first = ", ".join(f"column_{i + 1} = {c.strip()!r}" for i, c in enumerate(cells))
    read = "".join(f"\n{k} = {_toml_value(v)}" for k, v in keys.items())
    return [
        f"# {path.name}: no header row (its first row is data); crmkpi cannot tell which",
        "# column is which, so map them by position yourself: header_row = 0 names them",
        f"# column_1, column_2, ... First row: {' '.join(first.split())}",
        "# [tables.<table>]",
        *(f"# {line}" for line in f"file = {_toml_string(path.name)}{read}".split("\n")),
        "# header_row = 0",
        "# [tables.<table>.columns]",
        '# <canonical column> = "column_<n>"',
    ]


def _groups(folder: Path, lines: list[str]) -> list[_Group]:
    """The folder's files, sniffed and grouped by header row and read keys; the files that
    cannot be read or have no header are said in `lines`."""
    groups: dict[tuple[Any, ...], _Group] = {}
    paths = [p for p in expand_patterns(folder, ["*"]) if p.suffix.lower() in FILE_SUFFIXES]
    for path in paths:
        try:
            keys = _read_keys(path)
            head = read_header_sample(path, folder, _options(keys))
        except (CrmkpiError, OSError) as exc:
            lines += ["", _comment(f"{path.name}: not read: {exc}")]
            continue
        cells = list(head.rows[0][1]) if head.rows else []
        if _headerless(cells):
            lines += ["", *_headerless_note(path, keys, cells)]
            continue
        key = (tuple(cells), tuple(sorted(keys.items())), path.suffix.lower())
        group = groups.setdefault(key, _Group([], keys, []))
        group.paths.append(path)
    return list(groups.values())


def _generic_starter(folder: Path, presets: str) -> str:
    """A mapping guessed from the headers, one table per group of files with one header row,
    validated on a sample before it is written."""
    lines = [
        "# crmkpi.toml: how crmkpi reads this export folder. Generated by `crmkpi init`;",
        "# review every guess below, then run `crmkpi validate`.",
        f"# No preset ({presets}) recognises these exports: the mapping is guessed, and was",
        f"# checked on the first {SAMPLE_ROWS:,} rows of each file.",
        "",
        "[input]",
        'encoding = "utf-8"        # gb18030 for Chinese Excel/CRM CSVs; a BOM always wins',
        "",
        "[settings]",
        'timezone = "UTC"          # the business time zone periods are counted in',
    ]
    notes: list[str] = []
    names = [p.name for p in expand_patterns(folder, ["*"])]
    taken: dict[str, str] = {}  # table -> the files proposed for it
    for group in _groups(folder, notes):
        try:
            raws = [
                read_file(p, folder, _options(group.keys), set())
                for p in group.paths[:SAMPLE_FILES]
            ]
        except CrmkpiError as exc:
            notes += ["", _comment(f"{group.paths[0].name}: not read: {exc}")]
            continue
        group.headers = raws[0].headers
        sample = pl.concat([r.frame.head(SAMPLE_ROWS) for r in raws], how="diagonal_relaxed")
        table, mapping = guess_mapping(group.headers)
        label = group.paths[0].name + (
            f" (and {len(group.paths) - 1} more)" if len(group.paths) > 1 else ""
        )
        if table is None:
            headers = ", ".join(group.headers)
            notes += ["", _comment(f"{label}: no canonical table recognised; headers: {headers}")]
            continue
        if table in taken:
            notes += ["", _comment(f"{label}: also fits {table}, proposed from {taken[table]}")]
            continue
        taken[table] = label
        proposal = _propose(table, mapping, group, sample, _file_pattern(group.paths, names))
        if len(group.paths) > 1:
            proposal.comments.append(f"{len(group.paths)} files with the same header row")
        _check(proposal, folder, group.paths)
        lines += ["", *proposal.render()]
    return "\n".join(lines + notes) + "\n"

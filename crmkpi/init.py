"""`crmkpi init`: a commented starter crmkpi.toml from the headers found in an export folder.

When the headers are those of a CRM crmkpi ships a preset for (crmkpi/presets.py), the file
names the preset and lists which export feeds which table: the mapping is the preset's, and the
user writes only what differs. Otherwise each file is matched to the canonical table whose
columns its headers resemble most (canonical names and common English and Chinese CRM labels);
the user reviews and corrects the guess.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from crmkpi.config import FILE_SUFFIXES, ReadOptions
from crmkpi.errors import FileRejectedError
from crmkpi.io.read import expand_patterns, normalise_header, read_file
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
    ),
    "deal_id": ("opportunity id", "deal id", "record id", "商机编号", "商机id"),
    "lead_id": ("lead id", "线索编号", "线索id"),
    "ticket_id": ("ticket id", "case number", "case id", "工单编号"),
    "call_id": ("call id", "通话编号"),
    "order_id": ("order id", "order number", "订单编号", "合同编号"),
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
    "ordered_at": ("order date", "下单时间", "下单日期"),
    "amount": (
        "amount",
        "total amount",
        "deal amount",
        "商机金额",
        "合同金额",
        "回款金额",
        "金额",
        "close value",
    ),
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
    "region": ("region", "sales region", "地区"),
    "industry": ("industry", "sector", "客户行业"),
    "lead_source": ("lead source", "source", "客户来源", "线索来源"),
    "channel": ("channel", "ticket channel", "case origin", "渠道"),
    "priority": ("priority", "ticket priority", "优先级"),
    "score": ("score", "rating", "satisfaction rating", "nps", "csat", "客户满意度"),
    "responded_at": ("survey date", "response date", "回访时间"),
    "offered_at": ("call date", "date", "通话时间"),
    "occurred_at": ("activity date", "incident date", "occurred at", "跟进时间", "发生时间"),
    "outcome": ("answered (y/n)", "answered", "call status", "call outcome", "接通状态"),
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
        if all(n in mapping for n in required) and len(mapping) > len(best_mapping):
            best_table, best_mapping = table, mapping
    return best_table, best_mapping


# Source values CRMs use for canonical values of pick-list columns.
VALUE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "won": ("won", "closed won", "closedwon", "赢单", "成交", "已成交"),
    "lost": ("lost", "closed lost", "closedlost", "输单", "无效"),
    "answered": ("answered", "y", "yes", "接通", "已接通"),
    "abandoned": ("abandoned", "n", "no", "missed", "未接通", "放弃"),
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


def _generic_starter(folder: Path, presets: str) -> str:
    """A mapping guessed from the headers, file by file."""
    lines = [
        "# crmkpi.toml: how crmkpi reads this export folder. Generated by `crmkpi init`;",
        "# review every guess below, then run `crmkpi validate`.",
        f"# No preset ({presets}) recognises these exports: the mapping is guessed.",
        "",
        "[input]",
        'encoding = "utf-8"        # gb18030 for Chinese Excel/CRM CSVs; a BOM always wins',
        "",
        "[settings]",
        'timezone = "UTC"          # the business time zone periods are counted in',
    ]
    taken: set[str] = set()
    paths = [p for p in expand_patterns(folder, ["*"]) if p.suffix.lower() in FILE_SUFFIXES]
    for path in paths:
        try:
            raw = read_file(path, folder, ReadOptions(), set())
        except FileRejectedError as exc:
            lines += ["", f"# {path.name}: not read ({exc.check}): {exc.reason}"]
            continue
        table, mapping = guess_mapping(raw.headers)
        lines.append("")
        if table is None or table in taken:
            lines.append(
                f"# {path.name}: no canonical table recognised; headers: " + ", ".join(raw.headers)
            )
            continue
        taken.add(table)
        lines += [f"[tables.{table}]", f"file = {_toml_string(path.name)}"]
        lines.append(f"[tables.{table}.columns]")
        for name in columns_of(table):
            if name not in mapping:
                continue
            header = mapping[name]
            distinct = raw.frame[header].cast(pl.String).drop_nulls().unique().sort()
            guess = guess_value_map(table, name, distinct.head(MAX_VALUES_LISTED).to_list())
            if guess is None:
                lines.append(f"{name} = {_toml_string(header)}")
            else:
                lines.append(_value_map_line(name, header, *guess))
        unused = [h for h in raw.headers if h not in mapping.values()]
        if unused:
            lines.append("# headers not mapped: " + ", ".join(unused))
    return "\n".join(lines) + "\n"

"""crmkpi.toml: input defaults, metric settings and the mapping of export files onto tables.

The file is validated as a whole before any data is read, and every problem is reported with
the key path it sits at (`tables.deals.columns.status: ...`), so a nightly job fails fast (exit 78)
instead of half-way through the data.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmkpi import config_schema as schema
from crmkpi.choices import DEFAULT_NULL_VALUES
from crmkpi.config_schema import (
    COLUMN_PARSE_KINDS,
    DECIMAL_MARKS,
    DUPLICATE_HEADER_RULES,
    DURATION_UNITS,
    FOOTER_RULES,
    PERCENT_SCALES,
)
from crmkpi.errors import ConfigError
from crmkpi.tables import TABLE_NAMES, columns_of

CONFIG_FILE_NAME = "crmkpi.toml"
FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".parquet")
# what a `file = "*"` table with `match_headers` looks at: data files, and the legacy formats a
# reader rejects with advice (a 9.0-era `.xls`) rather than passing over in silence
RECOGNISABLE_SUFFIXES = (*FILE_SUFFIXES, ".xls", ".xlsm")


@dataclass(frozen=True)
class ColumnSpec:
    """How one canonical column is made: rename, value map, join, parse or constant."""

    sources: tuple[str, ...] = ()
    value_map: Mapping[str, str] | None = None
    default: str | None = None
    parse: str | None = None
    unit: str | None = None
    constant: str | None = None
    # `from_any`: the sources are alternatives (a label or an API name, an old or a new name)
    # and the first header present is read; otherwise every source is read and joined
    any_source: bool = False
    # a multi-valued cell (`123;456`): keep the first value before the separator
    first_of: str | None = None
    # `<Field> Currency` beside an amount: the header giving each row's currency code, `{}`
    # standing for the amount's own header
    currency_column: str | None = None
    # source value -> values that, found in the same file, put its mapping in doubt (warned)
    review_when_mixed: Mapping[str, tuple[str, ...]] | None = None
    # a computed column: a SQL expression over the file's headers (crmkpi/io/expression.py)
    expr: str | None = None
    # `date_format`: strftime formats for this column's dates, tried before the built-in forms;
    # a trailing weekday (`2018-01-01 星期五`, `Fri`) is ignored (crmkpi/io/parse.py)
    date_formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadOptions:
    """How a table's files are read and parsed; `[input]` gives defaults, a table overrides."""

    encoding: str = "utf-8"
    delimiter: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    footer: str = "auto"
    date_formats: tuple[str, ...] = ()
    dayfirst: bool | None = None
    timezone: str | None = None
    decimal: str = "."
    currency: str | None = None
    null_values: frozenset[str] = DEFAULT_NULL_VALUES
    percent_scale: str = "auto"
    max_file_bytes: int = 4 * 1024**3
    # Salesforce reports repeat a column (two `Opportunity ID`): "suffix" names the second
    # `Opportunity ID (2)`; "reject" refuses the file (a repeated header is usually a mistake)
    duplicate_headers: str = "reject"


@dataclass(frozen=True)
class TableConfig:
    """One canonical table: its files, how to read them, and the column mapping.

    A table fed by several export layouts (a report and an API export, 11.0 and 9.0) has
    `layouts`: each is a complete TableConfig (the table's keys plus the layout's own), told
    apart by `match_headers`; the first layout with files is read, so one set of facts is never
    counted twice.
    """

    name: str
    files: tuple[str, ...]
    read: ReadOptions = ReadOptions()
    columns: Mapping[str, ColumnSpec] = field(default_factory=dict)
    skip_rows_without: tuple[str, ...] = ()
    required: bool = True
    allow_empty: bool = False
    # a file belongs to the table only when its header row holds all of these (and none of
    # `exclude_headers`); without them every file the `file` patterns name belongs to it
    match_headers: tuple[str, ...] = ()
    exclude_headers: tuple[str, ...] = ()
    enabled: bool = True
    layout: str | None = None
    layouts: tuple[TableConfig, ...] = ()

    @property
    def variants(self) -> tuple[TableConfig, ...]:
        """The layouts to try, in order (the table itself when it has none)."""
        return self.layouts or (self,)

    @property
    def label(self) -> str:
        """`orders` or `orders (layout contracts_v11)`, for messages."""
        return self.name if self.layout is None else f"{self.name} (layout {self.layout})"


@dataclass(frozen=True)
class KnownExport:
    """An export of the preset's CRM that feeds no table (contacts, products, ...): recognised
    so that it is passed over with a note instead of failing as unrecognised."""

    export: str
    match_headers: tuple[str, ...]


@dataclass(frozen=True)
class PresetInfo:
    """What a shipped preset says about its CRM beyond the table mappings."""

    name: str
    title: str
    # a file with any of these headers is taken for an export of this CRM: when no table
    # recognises it, the run fails (exit 65) instead of silently leaving it out
    signature: tuple[str, ...] = ()
    known_exports: tuple[KnownExport, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Run-wide settings; `metric_settings` are checked by the metric registry."""

    timezone: str = "UTC"
    date_min: date = date(1980, 1, 1)
    date_max: date = date(2079, 12, 31)
    metric_settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """A validated crmkpi.toml (or the defaults when there is none)."""

    path: Path | None
    input_dir: Path | None
    settings: Settings
    tables: Mapping[str, TableConfig]
    default_read: ReadOptions = ReadOptions()
    run: Mapping[str, Any] = field(default_factory=dict)  # checked by options.py
    preset: PresetInfo | None = None


# --- validation helpers -------------------------------------------------------------------------


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if isinstance(value, bool) and kind in (int, float):
        raise _fail(where, f"expected {what}, got a boolean")
    if not isinstance(value, kind):
        raise _fail(where, f"expected {what}, got {type(value).__name__} {value!r}")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise _fail(where, f"{value!r} is not one of {', '.join(choices)}")
    return str(value)


def _unknown_keys(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise _fail(
            where, f"unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    _expect(value, list, where, "a string or a list of strings")
    for i, item in enumerate(value):
        _expect(item, str, f"{where}[{i}]", "a string")
    return tuple(value)


def _timezone(value: Any, where: str) -> str:
    _expect(value, str, where, "an IANA time zone name such as 'Asia/Shanghai'")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(where, f"unknown time zone {value!r}") from exc
    return str(value)


# Python codecs that are text codecs by name but cannot hold an export: they fail on every
# byte (undefined), or encode labels and escapes, not a file's characters
_NOT_FILE_ENCODINGS = {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape"}


def _encoding(value: Any, where: str) -> str:
    import codecs

    _expect(value, str, where, "an encoding name such as 'utf-8' or 'gb18030'")
    try:
        info = codecs.lookup(value)
    except LookupError as exc:
        raise _fail(where, f"unknown encoding {value!r}") from exc
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_FILE_ENCODINGS:
        raise _fail(
            where,
            f"{value!r} is not a text encoding of files; use one such as utf-8, gb18030, "
            "utf-16 or cp1252",
        )
    return info.name


# the largest max_file_mb: 1 TiB (a limit beyond any file one machine reads)
MAX_FILE_MB_LIMIT = 1024 * 1024


# the known keys of each table come from the schema, which docs/config.md documents
_READ_KEYS = schema.READ.names()


def _read_options(raw: Mapping[str, Any], base: ReadOptions, where: str) -> ReadOptions:
    """Apply the read keys present in `raw` on top of `base`."""
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        at = f"{where}.{key}"
        if key == "encoding":
            changes["encoding"] = _encoding(value, at)
        elif key == "delimiter":
            _expect(value, str, at, "a one-character delimiter, 'tab', 'whitespace' or 'auto'")
            value = {"tab": "\t", "\\t": "\t"}.get(value, value)
            if value not in ("whitespace", "auto") and len(value) != 1:
                raise _fail(at, "expected one character, 'tab', 'whitespace' or 'auto'")
            changes["delimiter"] = value
        elif key == "sheet":
            changes["sheet"] = _expect(value, str, at, "a sheet name")
        elif key == "header_row":
            _expect(value, int, at, "a 1-based row number (0 = the file has no header)")
            if value < 0:
                raise _fail(at, "must be 0 (no header) or a 1-based row number")
            changes["header_row"] = value
        elif key == "footer":
            changes["footer"] = _choice(value, FOOTER_RULES, at)
        elif key == "date_format":
            changes["date_formats"] = _string_list(value, at)
        elif key == "dayfirst":
            changes["dayfirst"] = _expect(value, bool, at, "true or false")
        elif key == "timezone":
            changes["timezone"] = _timezone(value, at)
        elif key == "decimal":
            changes["decimal"] = _choice(value, DECIMAL_MARKS, at)
        elif key == "currency":
            _expect(value, str, at, "a currency code such as 'USD' or 'CNY'")
            changes["currency"] = value.upper()
        elif key == "null_values":
            changes["null_values"] = frozenset(_string_list(value, at)) | {""}
        elif key == "percent_scale":
            changes["percent_scale"] = _choice(value, PERCENT_SCALES, at)
        elif key == "max_file_mb":
            _expect(value, (int, float), at, "a size in megabytes")
            if not 0 < value <= MAX_FILE_MB_LIMIT:  # also false for nan
                raise _fail(
                    at, f"must be a number of megabytes above 0, at most {MAX_FILE_MB_LIMIT}"
                )
            changes["max_file_bytes"] = int(value * 1024 * 1024)
        elif key == "duplicate_headers":
            changes["duplicate_headers"] = _choice(value, DUPLICATE_HEADER_RULES, at)
    return replace(base, **changes)


_COLUMN_KEYS = schema.COLUMN.names()


def _column_spec(raw: Any, where: str) -> ColumnSpec:
    if isinstance(raw, str):
        return ColumnSpec(sources=(raw,))
    _expect(raw, dict, where, 'a source header ("Header") or a table ({ from = "Header", ... })')
    _unknown_keys(raw, _COLUMN_KEYS, where)
    if "value" in raw:
        if set(raw) - {"value"}:
            raise _fail(where, "a constant ({ value = ... }) takes no other keys")
        value = raw["value"]
        _expect(value, (str, int, float, bool), f"{where}.value", "a constant")
        return ColumnSpec(constant=str(value).lower() if isinstance(value, bool) else str(value))
    if "expr" in raw:
        return _computed_spec(raw, where)
    if ("from" in raw) == ("from_any" in raw):
        raise _fail(
            where,
            "needs `from` (the source header or headers), `from_any` (alternative headers, the "
            "first present is read) or `value` (a constant)",
        )
    key = "from" if "from" in raw else "from_any"
    sources = _string_list(raw[key], f"{where}.{key}")
    if not sources:
        raise _fail(f"{where}.{key}", "names no source header")
    value_map = None
    if "map" in raw:
        _expect(raw["map"], dict, f"{where}.map", "a table of source value = canonical value")
        for map_key, mapped in raw["map"].items():
            _expect(mapped, (str, bool), f"{where}.map.{map_key}", "a canonical value")
        value_map = {
            str(k): str(v).lower() if isinstance(v, bool) else v for k, v in raw["map"].items()
        }
    default = raw.get("default")
    if default is not None:
        _expect(default, str, f"{where}.default", "the canonical value of unmapped source values")
        if value_map is None:
            raise _fail(f"{where}.default", "only makes sense with `map`")
    parse = raw.get("parse")
    if parse is not None:
        parse = _choice(parse, COLUMN_PARSE_KINDS, f"{where}.parse")
    unit = raw.get("unit")
    if unit is not None:
        unit = _choice(unit, DURATION_UNITS, f"{where}.unit")
        if parse not in (None, "duration"):
            raise _fail(f"{where}.unit", 'only applies to `parse = "duration"`')
    first_of = raw.get("first_of")
    if first_of is not None:
        _expect(first_of, str, f"{where}.first_of", "the separator of a multi-valued cell")
        if not first_of:
            raise _fail(f"{where}.first_of", "must not be empty")
    currency_column = raw.get("currency_column")
    if currency_column is not None:
        _expect(
            currency_column,
            str,
            f"{where}.currency_column",
            "the header of the currency codes ('{} Currency': the amount's header + ' Currency')",
        )
        if key == "from" and len(sources) > 1:
            raise _fail(f"{where}.currency_column", "needs a single amount header")
    review = raw.get("review_when_mixed")
    if review is not None:
        at = f"{where}.review_when_mixed"
        _expect(review, dict, at, "a table of source value = [values that put it in doubt]")
        if value_map is None:
            raise _fail(at, "only makes sense with `map`")
        review = {str(k): _string_list(v, f"{at}.{k}") for k, v in review.items()}
    date_formats = _date_formats(raw, where)
    return ColumnSpec(
        sources,
        value_map,
        default,
        parse,
        unit,
        any_source=key == "from_any",
        first_of=first_of,
        currency_column=currency_column,
        review_when_mixed=review,
        date_formats=date_formats,
    )


def _date_formats(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """A column's `date_format`: one strftime format or a list, each checked on a sample date
    here so that a typo is a config error (78) naming the key, not a column of unparsed dates."""
    if "date_format" not in raw:
        return ()
    at = f"{where}.date_format"
    formats = _string_list(raw["date_format"], at)
    if not formats:
        raise _fail(at, "names no format")
    import polars as pl

    for fmt in formats:
        written = datetime(2024, 1, 31, 13, 5, 9).strftime(fmt) if "%" in fmt else ""
        read = pl.Series([written]).str.to_datetime(fmt, strict=False) if written else None
        if read is None or read.null_count():
            raise _fail(at, f"{fmt!r} is not a strftime format Polars reads (e.g. '%Y-%m-%d')")
    return tuple(formats)


# parsers that read one number: several joined cells (`"2 625"`) would read as another number
NUMERIC_PARSE_KINDS = ("money", "float", "int", "percent", "duration", "bool")
_COMPUTED_KEYS = {"expr", "map", "default", "parse", "unit"}


def _computed_spec(raw: Mapping[str, Any], where: str) -> ColumnSpec:
    """`{ expr = "..." }`: checked here (compiled, plain) so a bad one fails before any data."""
    from crmkpi.io.expression import compile_expression

    extra = sorted(set(raw) - _COMPUTED_KEYS)
    if extra:
        raise _fail(where, f"`expr` computes the column; it takes no {', '.join(extra)}")
    text = _expect(raw["expr"], str, f"{where}.expr", "a SQL expression over the headers")
    compile_expression(text, f"{where}.expr")
    plain = _column_spec({"from": "_", **{k: v for k, v in raw.items() if k != "expr"}}, where)
    return replace(plain, sources=(), expr=text)


_TABLE_KEYS = _READ_KEYS | schema.TABLE.names()
_SOURCE_KEYS = _TABLE_KEYS - {"layouts"}


def merge_sections(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, key by key; `columns` column by column and `layouts` layout by
    layout (so an override names only what it changes)."""
    merged = dict(base)
    for key, value in over.items():
        if key in ("columns", "layouts") and isinstance(value, dict):
            inner = merged.get(key)
            inner = dict(inner) if isinstance(inner, dict) else {}
            for name, spec in value.items():
                if (
                    key == "layouts"
                    and isinstance(spec, dict)
                    and isinstance(inner.get(name), dict)
                ):
                    inner[name] = merge_sections(inner[name], spec)
                else:
                    inner[name] = spec
            merged[key] = inner
        else:
            merged[key] = value
    return merged


def _table_config(name: str, raw: Any, base: ReadOptions) -> TableConfig:
    where = f"tables.{name}"
    if name not in TABLE_NAMES:
        raise _fail(where, f"unknown table; the canonical tables are {', '.join(TABLE_NAMES)}")
    _expect(raw, dict, where, "a table")
    _unknown_keys(raw, _TABLE_KEYS, where)
    if "layouts" not in raw:
        return _source_config(name, raw, base, where, None)
    layouts_raw = raw["layouts"]
    _expect(layouts_raw, dict, f"{where}.layouts", "a table of [tables.<name>.layouts.<layout>]")
    if not layouts_raw:
        raise _fail(f"{where}.layouts", "names no layout")
    shared = {k: v for k, v in raw.items() if k != "layouts"}
    layouts = []
    for layout, layout_raw in layouts_raw.items():
        at = f"{where}.layouts.{layout}"
        _expect(layout_raw, dict, at, "a table")
        _unknown_keys(layout_raw, _SOURCE_KEYS, at)
        merged = merge_sections(shared, layout_raw)
        config = _source_config(name, merged, base, at, layout)
        if not config.match_headers:
            raise _fail(f"{at}.match_headers", "a layout is told apart by its headers: name them")
        layouts.append(config)
    table = _source_config(name, {"file": "*", **shared}, base, where, None)
    return replace(table, layouts=tuple(layouts))


def _source_config(
    name: str, raw: Mapping[str, Any], base: ReadOptions, where: str, layout: str | None
) -> TableConfig:
    """One table, or one layout of a table, from its (merged) keys."""
    if "file" not in raw:
        raise _fail(where, "needs `file` (a file name or glob, relative to the input folder)")
    files = _string_list(raw["file"], f"{where}.file")
    for pattern in files:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts or not pattern.strip():
            raise _fail(
                f"{where}.file",
                f"{pattern!r}: files come from the input folder; give a name or glob relative "
                "to it (no absolute path, no ..), or point the input folder elsewhere",
            )
    contract = columns_of(name)
    columns: dict[str, ColumnSpec] = {}
    raw_columns = raw.get("columns", {})
    _expect(raw_columns, dict, f"{where}.columns", "a table of canonical column = source")
    for column, spec in raw_columns.items():
        at = f"{where}.columns.{column}"
        if column not in contract and not column.startswith("profile_"):
            known = ", ".join(contract)
            raise _fail(at, f"{name} has no column {column!r}; its columns are {known}")
        columns[column] = _column_spec(spec, at)
        kind = columns[column].parse or (
            contract[column].parse_kind if column in contract else "text"
        )
        spec = columns[column]
        if not spec.any_source and len(spec.sources) > 1 and kind in NUMERIC_PARSE_KINDS:
            quoted = " * ".join(f'"{s}"' for s in spec.sources)
            raise _fail(
                f"{at}.from",
                f"joins {len(spec.sources)} cells into one text before reading it as {kind} "
                f"(2 and 625 would read as 2625); compute the value instead with `expr`, e.g. "
                f"{column} = {{ expr = '{quoted}' }}",
            )
        if columns[column].unit is not None and kind != "duration":
            raise _fail(f"{at}.unit", f'only applies to durations; {column} is parsed as "{kind}"')
        if columns[column].currency_column is not None and kind != "money":
            raise _fail(f"{at}.currency_column", f'only applies to money; {column} is "{kind}"')
    if "description" in raw:
        _expect(raw["description"], str, f"{where}.description", "a text")
    flags = {}
    for flag in ("required", "allow_empty", "enabled"):
        if flag in raw:
            flags[flag] = _expect(raw[flag], bool, f"{where}.{flag}", "true or false")
    skip = _string_list(raw.get("skip_rows_without", []), f"{where}.skip_rows_without")
    match = _string_list(raw.get("match_headers", []), f"{where}.match_headers")
    exclude = _string_list(raw.get("exclude_headers", []), f"{where}.exclude_headers")
    if exclude and not match:
        raise _fail(f"{where}.exclude_headers", "only applies with `match_headers`")
    read = _read_options({k: v for k, v in raw.items() if k in _READ_KEYS}, base, where)
    if match and read.header_row == 0:
        raise _fail(f"{where}.match_headers", "needs a header row (header_row is 0)")
    return TableConfig(
        name,
        files,
        read,
        columns,
        skip,
        match_headers=match,
        exclude_headers=exclude,
        layout=layout,
        **flags,
    )


_SETTINGS_KEYS = schema.SETTINGS.names()
# the widest date_min..date_max: CRM data lies well inside, and the calendar reaches a period
# before and a year after them without leaving what a date can hold
SETTINGS_DATE_RANGE = (date(1900, 1, 1), date(2199, 12, 31))


def _settings(raw: Any) -> Settings:
    _expect(raw, dict, "settings", "a table")
    changes: dict[str, Any] = {}
    metric_settings = {}
    for key, value in raw.items():
        at = f"settings.{key}"
        if key not in _SETTINGS_KEYS:  # a metric setting, checked by the metric registry
            metric_settings[key] = value
        elif key == "timezone":
            changes["timezone"] = _timezone(value, at)
        elif key in ("date_min", "date_max"):
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value)
                except ValueError as exc:
                    raise _fail(at, "expected a date such as 1980-01-01") from exc
            changes[key] = _expect(value, date, at, "a date such as 1980-01-01")
            if not SETTINGS_DATE_RANGE[0] <= value <= SETTINGS_DATE_RANGE[1]:
                low, high = (d.isoformat() for d in SETTINGS_DATE_RANGE)
                raise _fail(at, f"must lie within {low}..{high}")
    settings = Settings(**changes, metric_settings=metric_settings)
    if settings.date_min >= settings.date_max:
        raise _fail("settings.date_min", "must be before settings.date_max")
    return settings


_TOP_KEYS = schema.TOP.names()


def parse_config(
    document: Mapping[str, Any], path: Path | None, preset: PresetInfo | None = None
) -> Config:
    """Validate a parsed TOML document into a Config. A document naming a preset is resolved
    first (crmkpi.configure.parse_document puts the preset under it); `preset` says which."""
    _unknown_keys(document, _TOP_KEYS, path.name if path else "config")
    if "preset" in document:
        raise ValueError("a document naming a preset goes through configure.parse_document")
    raw_input = document.get("input", {})
    _expect(raw_input, dict, "input", "a table")
    _unknown_keys(raw_input, _READ_KEYS | schema.INPUT.names(), "input")
    default_read = _read_options(
        {k: v for k, v in raw_input.items() if k != "dir"}, ReadOptions(), "input"
    )
    input_dir = None
    if "dir" in raw_input:
        _expect(raw_input["dir"], str, "input.dir", "a folder path")
        base = path.parent if path else Path.cwd()
        input_dir = base / raw_input["dir"]
    settings = _settings(document.get("settings", {}))
    raw_tables = document.get("tables", {})
    _expect(raw_tables, dict, "tables", "a table of [tables.<name>] sections")
    tables = {name: _table_config(name, raw, default_read) for name, raw in raw_tables.items()}
    run = document.get("run", {})
    _expect(run, dict, "run", "a table of run options")
    return Config(path, input_dir, settings, tables, default_read, run, preset)


def read_document(path: Path) -> dict[str, Any]:
    """A crmkpi.toml as parsed TOML (not yet validated)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def discover_tables(folder: Path, default_read: ReadOptions) -> dict[str, TableConfig]:
    """Without a mapping: files named after canonical tables (`deals.csv`, `orders.parquet`)."""
    tables = {}
    for name in TABLE_NAMES:
        matches = sorted(
            p.name for p in folder.glob(f"{name}.*") if p.suffix.lower() in FILE_SUFFIXES
        )
        if matches:
            tables[name] = TableConfig(name, tuple(matches), default_read, required=False)
    return tables


def check_validation_enabled() -> None:
    """Refuse to run with pandera's validation switched off through its environment (R12)."""
    enabled = os.environ.get("PANDERA_VALIDATION_ENABLED", "True").strip().lower()
    depth = os.environ.get("PANDERA_VALIDATION_DEPTH", "").strip().upper()
    if enabled in ("false", "0", "no", "off"):
        raise ConfigError(
            "PANDERA_VALIDATION_ENABLED switches data validation off; crmkpi refuses to run "
            "unvalidated. Unset it."
        )
    if depth and depth != "SCHEMA_AND_DATA":
        raise ConfigError(
            f"PANDERA_VALIDATION_DEPTH={depth} skips the data checks; crmkpi needs "
            "SCHEMA_AND_DATA. Unset it."
        )

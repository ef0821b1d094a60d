"""Map an export's source columns onto a canonical table: headers, value maps, joined columns,
constants and explicit parsers, producing typed canonical columns plus a per-cell error code.

Nothing here drops a row: a cell that cannot be mapped or parsed is an error code beside the
value, and `validate.py` turns those into quarantined rows with their reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

from crmkpi.config import ColumnSpec, Settings, TableConfig
from crmkpi.errors import ConfigError, FileRejectedError
from crmkpi.io.expression import EXPRESSION_NULL, compile_expression, evaluate
from crmkpi.io.parse import ParseOptions, normalise_text, parse_series
from crmkpi.io.read import SOURCE_FILE, SOURCE_LINE, RawFile, headers_seen, normalise_header
from crmkpi.tables import ColumnContract, columns_of

ROW_ID = "_row"
SKIPPED = "_skipped"
ERROR_PREFIX = "_error:"
# date errors that are about the column, not the cell: the whole file's day/month order is wrong
FILE_LEVEL_DATE_ERRORS = {
    "date_contradicts_dayfirst": "a date has its first part above 12, which contradicts the "
    "configured `dayfirst`: is this export from another locale?",
    "ambiguous_date": "some dates put the day first and others the month first: no single "
    "day/month order fits the column",
}
MAX_LISTED_VALUES = 50

# Tickets may give durations instead of timestamps; a given timestamp wins (KPI_CATALOGUE.md).
DERIVED_TIMESTAMPS = {
    "tickets": (
        ("first_response_at", "first_response_seconds"),
        ("resolved_at", "resolution_seconds"),
    )
}


@dataclass
class MappedFile:
    """Canonical typed columns of one file, row-aligned with its raw frame.

    `frame` holds the canonical columns, `_row`, `_skipped` and one `_error:<column>` text column
    per canonical column (null where the cell is fine).
    """

    frame: pl.DataFrame
    supplied: list[str]
    unused_headers: list[str]
    missing_sources: list[str] = field(default_factory=list)
    # canonical column -> source values its value map does not know (new picklist values)
    unmapped_values: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def column_specs(table: TableConfig) -> dict[str, ColumnSpec]:
    """Configured specs plus identity specs for canonical columns the config leaves out."""
    specs = dict(table.columns)
    for name in columns_of(table.name):
        specs.setdefault(name, ColumnSpec(sources=(name,)))
    return specs


def expected_headers(table: TableConfig) -> set[str]:
    """Normalised source headers a file must have: those feeding required columns (not
    alternatives, any one of which will do), the headers that recognise the export and those
    rows are skipped without."""
    contract = columns_of(table.name)
    specs = column_specs(table)
    needed = {
        normalise_header(source)
        for name, column in contract.items()
        if column.required and not specs[name].any_source
        for source in specs[name].sources
    }
    recognised = {normalise_header(h) for h in table.match_headers}
    return needed | recognised | {normalise_header(s) for s in table.skip_rows_without}


def _chosen_headers(spec: ColumnSpec, by_header: dict[str, str]) -> list[str] | None:
    """The file's headers a spec reads: every source (joined), or the first alternative
    present (`from_any`); None when the file lacks them."""
    found = [by_header.get(normalise_header(s)) for s in spec.sources]
    if spec.any_source:
        first = next((h for h in found if h is not None), None)
        return None if first is None else [first]
    if any(h is None for h in found):
        return None
    return [h for h in found if h is not None]


def _first_value(values: pl.Series, separator: str) -> pl.Series:
    """A multi-valued cell (`123;456`, HubSpot's associated ids) as its first value."""
    text = values if values.dtype == pl.String else values.cast(pl.String)
    return text.str.split(separator).list.first().str.strip_chars().alias(values.name)


_BARE_AMOUNT = r"^[\s\d.,'()+\-\u2212]+$"


def _with_currency(amounts: pl.Series, codes: pl.Series) -> pl.Series:
    """An amount column beside its `<Field> Currency` column: each bare amount gets its row's
    code (`USD 1234.50`), so the money parser checks one currency per column as it does for
    `$` or `¥` (a cell with its own symbol keeps it)."""
    text = amounts if amounts.dtype == pl.String else amounts.cast(pl.String)
    code = codes.cast(pl.String).str.strip_chars()
    frame = pl.DataFrame({"amount": text, "code": code})
    bare = pl.col("amount").str.contains(_BARE_AMOUNT).fill_null(False)
    marked = pl.when(bare & (pl.col("code").str.len_chars() > 0).fill_null(False))
    return frame.select(
        marked.then(pl.concat_str([pl.col("code"), pl.lit(" "), pl.col("amount")]))
        .otherwise(pl.col("amount"))
        .alias(amounts.name)
    ).to_series()


def parse_options(table: TableConfig, settings: Settings, raw: RawFile) -> ParseOptions:
    read = table.read
    return ParseOptions(
        decimal=read.decimal,
        dayfirst=read.dayfirst,
        date_formats=read.date_formats,
        source_timezone=read.timezone,
        business_timezone=settings.timezone,
        excel_1904=raw.excel_1904,
        null_values=read.null_values,
        currency=read.currency,
        percent_scale=read.percent_scale,
        date_min=settings.date_min,
        date_max=settings.date_max,
    )


def _source_text(frame: pl.DataFrame, headers: list[str], null_values: frozenset[str]) -> pl.Series:
    """One source column as text, or several joined with a space (`from = ["Date", "Time"]`)."""
    if len(headers) == 1:
        return frame[headers[0]]  # the parser normalises it
    parts = [frame[h] if frame[h].dtype == pl.String else frame[h].cast(pl.String) for h in headers]
    texts = [normalise_text(p, null_values) for p in parts]
    joined = pl.DataFrame(texts).select(
        pl.concat_str(pl.all(), separator=" ", ignore_nulls=True).alias("joined")
    )["joined"]
    return joined.replace("", None)


def _apply_value_map(
    values: pl.Series, spec: ColumnSpec, null_values: frozenset[str]
) -> tuple[pl.Series, pl.Series]:
    """Map source values to canonical ones (case-insensitively); unmapped values are errors
    unless the spec names a default."""
    assert spec.value_map is not None
    text = normalise_text(values.cast(pl.String), null_values)
    keys = {normalise_header(k): v for k, v in spec.value_map.items()}
    folded = text.str.strip_chars().str.to_lowercase()
    lookup = pl.DataFrame(
        {"key": list(keys), "mapped": list(keys.values())},
        schema={"key": pl.String, "mapped": pl.String},
    )
    keyed = pl.DataFrame({"key": normalise_text(folded, frozenset())}).join(
        lookup, on="key", how="left", maintain_order="left"
    )["mapped"]
    if spec.default is not None:
        keyed = pl.select(
            pl.when(text.is_not_null()).then(keyed.fill_null(spec.default))
        ).to_series()
    errors = pl.select(
        pl.when(text.is_not_null() & keyed.is_null()).then(pl.lit("unmapped_value"))
    ).to_series()
    return keyed, errors


def _fits(dtype: pl.DataType, kind: str) -> bool:
    """Whether a typed (Parquet) column can hold values of a parse kind; text always can."""
    if dtype in (pl.String, pl.Null, pl.Categorical) or isinstance(dtype, pl.Enum):
        return True
    if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
        return False
    if kind in ("date", "datetime"):
        return dtype == pl.Date or isinstance(dtype, pl.Datetime)
    if kind in ("money", "float", "percent", "int"):
        return dtype.is_numeric()
    if kind == "duration":
        return isinstance(dtype, pl.Duration) or dtype.is_numeric()
    if kind == "bool":
        return dtype == pl.Boolean or dtype.is_numeric()
    return True  # text and ids: any plain value reads as text


def _check_physical_type(raw: RawFile, header: str, name: str, kind: str) -> None:
    """A typed column of the wrong kind (a list of amounts, dates stored as integers) is a
    property of the file, not of its rows: the file is rejected naming both types."""
    dtype = raw.frame[header].dtype
    if not _fits(dtype, kind):
        raise FileRejectedError(
            str(raw.path),
            "wrong_type",
            f"{name} needs {kind} values (or text), the file's column is {dtype}",
            column=header,
        )


def map_file(raw: RawFile, table: TableConfig, settings: Settings, first_row: int) -> MappedFile:
    """Build the canonical columns of `table` from one raw file (see module docstring)."""
    contract = columns_of(table.name)
    by_header = {normalise_header(h): h for h in raw.headers}
    specs = column_specs(table)
    options = parse_options(table, settings, raw)
    null_values = table.read.null_values
    columns: dict[str, pl.Series] = {}
    supplied, missing_sources, used = [], [], set()
    chosen: dict[str, str] = {}
    computed_errors: dict[str, pl.Series] = {}
    for name, spec in specs.items():
        if spec.constant is not None:
            columns[name] = pl.Series(name, [spec.constant] * raw.frame.height, pl.String)
        elif spec.expr is not None:
            columns[name], computed_errors[name], read = _computed(
                raw, table, name, by_header, options
            )
            used.update(read)
        else:
            headers = _chosen_headers(spec, by_header)
            if headers is None:
                if name in table.columns or (name in contract and contract[name].required):
                    missing_sources.append(name)
                continue
            kind = spec.parse or (contract[name].parse_kind if name in contract else "text")
            for header in headers:
                _check_physical_type(raw, header, name, kind)
            used.update(headers)
            chosen[name] = headers[0]
            values = _source_text(raw.frame, headers, null_values)
            if spec.first_of is not None:
                values = _first_value(values, spec.first_of)
            if spec.currency_column is not None:
                currency = by_header.get(
                    normalise_header(spec.currency_column.replace("{}", headers[0]))
                )
                if currency is not None:
                    used.add(currency)
                    values = _with_currency(values, raw.frame[currency])
            columns[name] = values
        supplied.append(name)
    required_missing = [n for n in missing_sources if n in contract and contract[n].required]
    if required_missing:
        wanted = "; ".join(
            f"{n} (from {' or '.join(repr(s) for s in specs[n].sources)})"
            if specs[n].any_source
            else f"{n} (from {', '.join(repr(s) for s in specs[n].sources)})"
            for n in required_missing
        )
        first_missing = next(
            s for s in specs[required_missing[0]].sources if normalise_header(s) not in by_header
        )
        raise FileRejectedError(
            str(raw.path),
            "missing_column",
            f"required column(s) {wanted} not found; {headers_seen(len(raw.headers), None)}",
            column=first_missing,
        )
    _reject_unmapped_blank_headers(raw, used)
    out: dict[str, pl.Series] = {}
    unmapped_values: dict[str, list[str]] = {}
    warnings: list[str] = []
    for name in supplied:
        spec = specs[name]
        values = columns[name]
        map_errors = None
        if spec.value_map is not None:
            # control characters and spreadsheet error literals are named as such, not as
            # values missing from the map
            early = parse_series(values, "text", options).errors
            source_values = values
            values, map_errors = _apply_value_map(values, spec, null_values)
            map_errors = pl.select(pl.coalesce(early, map_errors)).to_series()
            unknown = _unmapped(source_values, map_errors, null_values)
            if unknown:
                unmapped_values[name] = unknown
            warnings.extend(_mixed_values(source_values, spec, null_values, name))
        column = contract.get(name) or ColumnContract(name, pl.String(), False, False)
        kind = spec.parse or column.parse_kind
        column_options = replace(options, duration_unit=spec.unit) if spec.unit else options
        if spec.date_formats:
            column_options = replace(column_options, date_formats=spec.date_formats)
        if kind == "salesforce_id":
            if column.dtype != pl.String:
                raise ConfigError(
                    f"tables.{table.name}.columns.{name}.parse: salesforce_id needs a text "
                    f"column; {name} is {column.dtype}"
                )
            parsed = parse_series(values, "id", column_options)
            result, errors = salesforce_id18(parsed.values, parsed.errors)
        else:
            parsed = parse_series(values, kind, column_options)
            result, errors = parsed.values, parsed.errors
            if kind == "id":
                result, errors = _flag_lost_leading_zeros(result, errors)
        if result.dtype != column.dtype and kind != column.parse_kind:
            result = _cast_to_contract(result, column)
        if kind in ("date", "datetime"):
            _reject_date_order(raw, values, errors, chosen.get(name, name), name)
            if table.read.dayfirst is None and not column_options.date_formats:
                warnings.extend(_assumed_date_order(values, name))
        if map_errors is not None:
            errors = pl.select(pl.coalesce(map_errors, errors)).to_series()
        if name in computed_errors:
            null = pl.lit(EXPRESSION_NULL) if column.required else pl.lit(None, pl.String)
            no_value = pl.when(result.is_null() & errors.is_null()).then(null)
            errors = pl.select(pl.coalesce(computed_errors[name], errors, no_value)).to_series()
        out[name] = result.alias(name)
        out[ERROR_PREFIX + name] = errors.alias(ERROR_PREFIX + name)
    # Columns passed through as read keep the file's chunks, parsed ones are contiguous: align
    # them once here rather than in every later select.
    frame = pl.DataFrame(list(out.values())).rechunk() if out else pl.DataFrame()
    frame = _derive_timestamps(frame, table.name, supplied)
    skip = _skip_mask(raw, table, by_header, null_values)
    frame = frame.with_columns(
        raw.frame[SOURCE_FILE],
        raw.frame[SOURCE_LINE].cast(pl.Int64),
        pl.int_range(first_row, first_row + raw.frame.height, dtype=pl.Int64).alias(ROW_ID),
        skip.alias(SKIPPED),
    )
    unused = [
        h
        for h in raw.headers
        if h not in used
        and normalise_header(h) not in {normalise_header(s) for s in table.skip_rows_without}
    ]
    return MappedFile(
        frame,
        sorted(set(supplied) | _derived(table.name, supplied)),
        unused,
        [n for n in missing_sources if n not in required_missing],
        unmapped_values,
        warnings,
    )


def _computed(
    raw: RawFile, table: TableConfig, name: str, by_header: dict[str, str], options: ParseOptions
) -> tuple[pl.Series, pl.Series, list[str]]:
    """A `{ expr = ... }` column over this file's headers (see crmkpi/io/expression.py), its
    per-row errors and the headers it reads."""
    where = f"tables.{table.name}.columns.{name}.expr"
    spec = table.columns[name]
    assert spec.expr is not None
    expression = compile_expression(spec.expr, where)
    sources = {}
    for header in expression.headers:
        found = by_header.get(normalise_header(header))
        if found is None:
            raise ConfigError(
                f"{where}: the expression reads {header!r}, not a header of {raw.path.name}; "
                f"headers found: {', '.join(repr(h) for h in raw.headers)}"
            )
        sources[header] = raw.frame[found]
    values, errors = evaluate(expression, sources, options, where)
    return values.alias(name), errors, [by_header[normalise_header(h)] for h in sources]


def _mixed_values(
    source: pl.Series, spec: ColumnSpec, null_values: frozenset[str], name: str
) -> list[str]:
    """`review_when_mixed`: a value whose meaning depends on the org (悟空's 待审核 is both
    "approved, no workflow" and "awaiting approval") is mapped one way; when the same file
    also holds values showing the other case, say so rather than decide silently."""
    if not spec.review_when_mixed or spec.value_map is None:
        return []
    present = set(
        normalise_text(source.cast(pl.String), null_values)
        .drop_nulls()
        .unique()
        .str.to_lowercase()
        .to_list()
    )
    keys = {normalise_header(k): v for k, v in spec.value_map.items()}
    warnings = []
    for value, others in spec.review_when_mixed.items():
        shown = [o for o in others if normalise_header(o) in present]
        if normalise_header(value) in present and shown:
            mapped = keys.get(normalise_header(value), spec.default)
            warnings.append(
                f"value_map_review: {name}: {value!r} is read as {mapped!r}, but this export "
                f"also holds {', '.join(repr(o) for o in shown)}: check that {value!r} means "
                "the same here (see the preset's comments), and override the map if not"
            )
    return warnings


def _unmapped(source: pl.Series, errors: pl.Series, null_values: frozenset[str]) -> list[str]:
    """The distinct source values a value map does not know (for the drift report: picklist
    labels, not personal data), at most MAX_LISTED_VALUES."""
    text = normalise_text(source.cast(pl.String), null_values)
    unknown = text.filter((errors == "unmapped_value").fill_null(False)).unique().sort()
    return unknown.head(MAX_LISTED_VALUES).to_list()


def _reject_unmapped_blank_headers(raw: RawFile, used: set[str]) -> None:
    """A column without a header that holds data, and is not mapped by position (`column_<i>`),
    cannot be told apart from a misaligned export: reject the file rather than guess."""
    for header in raw.blank_headers:
        if header in used:
            continue
        filled = raw.frame.filter(
            pl.col(header).cast(pl.String).str.strip_chars().str.len_chars().fill_null(0) > 0
        )
        if filled.height:
            raise FileRejectedError(
                str(raw.path),
                "blank_header",
                f"a column without a header holds {filled.height} value(s); map it by position "
                f"(`{header}`) or give it a header",
                line=int(filled[SOURCE_LINE][0]),
                column=header,
            )


_DAY_MONTH = r"^\s*(\d{1,2})[-/.](\d{1,2})[-/.]\d"


def _assumed_date_order(values: pl.Series, name: str) -> list[str]:
    """Dates like 05/01/2024 with no value showing the order were read month first: say so."""
    if values.dtype != pl.String:
        return []
    parts = values.str.extract_groups(_DAY_MONTH)
    first = parts.struct.field("1").cast(pl.Int32, strict=False)
    second = parts.struct.field("2").cast(pl.Int32, strict=False)
    if first.is_null().all() or bool(((first > 12) | (second > 12)).any()):
        return []
    return [
        f"dayfirst_assumed: {name}: dates such as 05/01/2024 were read month first (no value "
        "shows the order); set `dayfirst` for this table to be sure"
    ]


def _reject_date_order(
    raw: RawFile, values: pl.Series, errors: pl.Series, header: str, name: str
) -> None:
    """Day/month order is a property of the export, not of a cell: a contradiction rejects the
    file (RELIABILITY V06) instead of quarantining every row it touches. The line named is the
    first value that shows its order (a part above 12)."""
    if values.dtype != pl.String:
        return
    parts = values.str.extract_groups(r"^\s*(\d{1,2})[-/.](\d{1,2})[-/.]\d")
    telling = (
        (parts.struct.field("1").cast(pl.Int32, strict=False) > 12)
        | (parts.struct.field("2").cast(pl.Int32, strict=False) > 12)
    ).fill_null(False)
    for code, reason in FILE_LEVEL_DATE_ERRORS.items():
        flagged = (errors == code).fill_null(False)
        hits = raw.frame[SOURCE_LINE].filter(flagged & telling)
        if hits.is_empty():
            hits = raw.frame[SOURCE_LINE].filter(flagged)
        if hits.len():
            raise FileRejectedError(
                str(raw.path),
                code,
                f"{name}: {reason} ({hits.len()} value(s))",
                line=int(hits[0]),
                column=header,
            )


def _flag_lost_leading_zeros(ids: pl.Series, errors: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Numeric ids of a fixed, zero-padded width (`00012345`) that come shorter (`12345`) lost
    their leading zeros to a spreadsheet: quarantine them rather than join them to nothing.

    Only when the column shows the padding: most all-digit ids share one length, and some of
    those start with 0.
    """
    all_digits = pl.col("id").str.contains(r"^\d+$").fill_null(False)
    if not ids.to_frame("id").lazy().select(all_digits.any()).collect().item():
        return ids, errors  # the usual case (`C0000001`, `0065g00000AbCdE`): one pass
    frame = pl.DataFrame({"id": ids}).with_columns(
        all_digits.alias("digits"), pl.col("id").str.len_chars().alias("width")
    )
    digits = frame.filter(pl.col("digits"))
    if digits.height == 0:
        return ids, errors
    modal = digits["width"].mode().max()
    at_modal = digits.filter(pl.col("width") == modal)
    padded = at_modal["id"].str.starts_with("0").any()
    if not padded or at_modal.height < 0.8 * digits.height:
        return ids, errors
    short = frame.select(pl.col("digits") & (pl.col("width") < modal)).to_series()
    flagged = pl.select(
        pl.when(short).then(pl.lit("id_mangled_by_spreadsheet")).otherwise(errors)
    ).to_series()
    kept = pl.select(pl.when(short).then(None).otherwise(ids)).to_series()
    return kept.alias(ids.name), flagged.alias(errors.name)


_SF_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id18(ids: pl.Series, errors: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Salesforce ids as 18 characters: the case-sensitive 15-character form gets its checksum
    suffix (one character per 5, encoding which are upper case), so `parse = "salesforce_id"`
    makes ids from reports (15) and from the API or Data Loader (18) join.

    An 18-character id whose suffix does not fit its first 15 (case changed by a
    case-insensitive tool) and anything not 15 or 18 letters and digits are errors.
    """
    index = {i: char for i, char in enumerate(_SF_CHECKSUM_ALPHABET)}
    chunks = [
        pl.sum_horizontal(
            pl.col("id").str.slice(5 * chunk + bit, 1).str.contains("^[A-Z]$").cast(pl.Int64)
            * (1 << bit)
            for bit in range(5)
        ).replace_strict(index, return_dtype=pl.String)
        for chunk in range(3)
    ]
    shaped = pl.col("id").str.contains(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$").fill_null(False)
    id18 = pl.concat_str([pl.col("id").str.slice(0, 15), *chunks])
    frame = pl.DataFrame({"id": ids, "error": errors}).select(
        pl.when(shaped).then(id18).alias("id18"),
        pl.when(pl.col("error").is_not_null())
        .then(pl.col("error"))
        .when(pl.col("id").is_null())
        .then(None)
        .when(~shaped)
        .then(pl.lit("not_salesforce_id"))
        .when((pl.col("id").str.len_chars() == 18) & (pl.col("id") != id18))
        .then(pl.lit("salesforce_id_checksum"))
        .alias("error"),
    )
    values = frame.select(pl.when(pl.col("error").is_null()).then(pl.col("id18"))).to_series()
    return values.alias(ids.name), frame["error"].alias(errors.name)


def _cast_to_contract(values: pl.Series, column: ColumnContract) -> pl.Series:
    """An explicit parser may give another type than the contract's (int for a float column,
    a date for a datetime); widen it. Anything else is a config error."""
    if column.dtype == pl.Float64 and values.dtype.is_numeric():
        return values.cast(pl.Float64)
    if column.dtype == pl.Datetime("us") and values.dtype == pl.Date:
        return values.cast(pl.Datetime("us"))
    if column.dtype == pl.Date and values.dtype == pl.Datetime("us"):
        return values.dt.date()
    if column.dtype == pl.String:
        return values.cast(pl.String)
    raise ConfigError(
        f"columns.{column.name}: its parser gives {values.dtype}, the contract needs {column.dtype}"
    )


def _derived(table: str, supplied: list[str]) -> set[str]:
    return {ts for ts, dur in DERIVED_TIMESTAMPS.get(table, ()) if dur in supplied}


def _derive_timestamps(frame: pl.DataFrame, table: str, supplied: list[str]) -> pl.DataFrame:
    for timestamp, duration in DERIVED_TIMESTAMPS.get(table, ()):
        if duration not in supplied or "created_at" not in supplied:
            continue
        derived = pl.col("created_at") + pl.duration(
            microseconds=(pl.col(duration) * 1_000_000).round().cast(pl.Int64)
        )
        given = pl.col(timestamp) if timestamp in supplied else pl.lit(None, pl.Datetime("us"))
        frame = frame.with_columns(pl.coalesce(given, derived).alias(timestamp))
        if timestamp not in supplied:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(ERROR_PREFIX + timestamp))
    return frame


def _skip_mask(
    raw: RawFile, table: TableConfig, by_header: dict[str, str], null_values: frozenset[str]
) -> pl.Series:
    """Rows lacking any `skip_rows_without` source value are not records of this table."""
    mask = pl.repeat(False, raw.frame.height, dtype=pl.Boolean, eager=True).alias(SKIPPED)
    for source in table.skip_rows_without:
        header = by_header.get(normalise_header(source))
        if header is None:
            raise FileRejectedError(
                str(raw.path),
                "missing_column",
                f"skip_rows_without names {source!r}, not a header of the file; "
                f"{headers_seen(len(raw.headers), None)}",
                column=source,
            )
        text = normalise_text(raw.frame[header].cast(pl.String), null_values)
        mask = mask | text.is_null()
    return mask

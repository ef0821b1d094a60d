"""The loading stage as one call: read -> map -> parse -> validate for every configured table.

Problems are collected table by table instead of stopping at the first, so one nightly run
reports everything that is wrong with an export folder; the caller turns them into an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from crmkpi.config import (
    CONFIG_FILE_NAME,
    RECOGNISABLE_SUFFIXES,
    Config,
    ReadOptions,
    TableConfig,
    check_validation_enabled,
)
from crmkpi.errors import CrmkpiError, FileRejectedError, InputMissingError, InvalidDataError
from crmkpi.io.mapping import expected_headers, map_file
from crmkpi.io.read import (
    SOURCE_LINE,
    HeaderSample,
    RawFile,
    expand_patterns,
    headers_seen,
    input_name,
    normalise_header,
    read_file,
    read_header_sample,
)
from crmkpi.validate import FileReport, LoadedTable, TableReport, validate_table

# the `table` of failures that concern a file of the folder rather than a configured table
FOLDER_FAILURE = "(input)"


@dataclass
class TableFailure:
    """A table that could not be loaded, and why (the error carries the exit code)."""

    table: str
    error: CrmkpiError


@dataclass
class LoadResult:
    tables: dict[str, LoadedTable] = field(default_factory=dict)
    failures: list[TableFailure] = field(default_factory=list)
    # table -> the layout its files were read by (tables with layouts only)
    layouts: dict[str, str] = field(default_factory=dict)
    # files recognised but not read (another layout's facts, a known export feeding no table,
    # a file that is no export of the preset's CRM), one sentence each
    notes: list[str] = field(default_factory=list)
    # every file read, with its (size, mtime) then: `check_unchanged` before publishing
    stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)

    @property
    def reports(self) -> list[TableReport]:
        return [t.report for t in self.tables.values()]


@dataclass
class Claims:
    """Which files each table reads, found before anything is read in full.

    A table's files are those its `file` patterns name; with `match_headers`, only those whose
    header row holds them. Of a table's layouts, the first with files is read: the others'
    files hold the same facts in another shape (an API export beside a report, 回款 beside
    合同) and are noted, never added, so nothing is counted twice.
    """

    chosen: dict[str, tuple[TableConfig, list[Path]]] = field(default_factory=dict)
    recognised: dict[Path, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    failures: list[TableFailure] = field(default_factory=list)


class Sampler:
    """Header samples, read once per file and reading rule (shareable between configs)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.samples: dict[tuple[Path, str, str | None, str | None], HeaderSample] = {}
        self.unreadable: dict[Path, FileRejectedError] = {}

    def __call__(self, path: Path, read: ReadOptions) -> HeaderSample | None:
        key = (path, read.encoding, read.delimiter, read.sheet)
        if key not in self.samples:
            try:
                self.samples[key] = read_header_sample(path, self.folder, read)
            except FileRejectedError as exc:
                self.unreadable.setdefault(path, exc)
                return None
        return self.samples[key]


def _recognisable(path: Path) -> bool:
    """Files a header-matched table looks at: data files, not folders, the config, nor the
    lock files Office leaves beside an open workbook (`~$商机.xlsx`) or macOS's `._` files."""
    return (
        path.suffix.lower() in RECOGNISABLE_SUFFIXES
        and path.name != CONFIG_FILE_NAME
        and not path.name.startswith(("~$", "._"))
        and not path.is_dir()
    )


def recognises(layout: TableConfig, sample: HeaderSample) -> bool:
    """Whether a file with these first rows is an export of this table layout."""
    return sample.holds(layout.match_headers, layout.exclude_headers, layout.read.header_row)


def claim_files(
    config: Config, folder: Path, sampler: Sampler | None = None, check_unclaimed: bool = True
) -> Claims:
    """Assign the folder's files to tables and layouts (see Claims); with a preset, also check
    the files no table recognises (`check_unclaimed`)."""
    claims = Claims()
    sample = sampler or Sampler(folder)
    for name, table in config.tables.items():
        found: list[tuple[TableConfig, list[Path]]] = []
        taken: set[Path] = set()
        for layout in table.variants:
            paths = []
            for path in expand_patterns(folder, layout.files):
                if path in taken:
                    continue
                if layout.match_headers:
                    if not _recognisable(path):
                        continue
                    head = sample(path, layout.read)
                    if head is None or not recognises(layout, head):
                        continue
                paths.append(path)
                claims.recognised.setdefault(path, []).append(layout.label)
            taken.update(paths)
            if paths:
                found.append((layout, paths))
        usable = [(layout, paths) for layout, paths in found if layout.enabled and table.enabled]
        if usable:
            claims.chosen[name] = usable[0]
        for layout, paths in found:
            if usable and layout is usable[0][0]:
                continue
            why = (
                f"{name} is read from layout {usable[0][0].layout} "
                f"({', '.join(p.name for p in usable[0][1])}), so its facts are not counted twice"
                if usable
                else f"{layout.label} is disabled (enabled = false)"
            )
            note = (
                f"layout_not_read: {', '.join(p.name for p in paths)}: recognised as "
                f"{layout.label}; not read: {why}"
            )
            claims.notes.append(note)
            claims.warnings.setdefault(name, []).append(note)
    for error in sample.unreadable.values():
        claims.failures.append(TableFailure(FOLDER_FAILURE, error))
    if config.preset is not None and check_unclaimed:
        _check_unclaimed(config, folder, claims, sample)
    return claims


def _check_unclaimed(config: Config, folder: Path, claims: Claims, sample: Sampler) -> None:
    """Files of the preset's CRM that no table recognises fail (exit 65), naming the headers
    each table expects and those found; known exports feeding no table and files that are not
    the CRM's are passed over with a note."""
    preset = config.preset
    assert preset is not None
    signature = {normalise_header(h) for h in preset.signature}
    for path in expand_patterns(folder, ["*"]):
        if not _recognisable(path) or path in claims.recognised or path in sample.unreadable:
            continue
        head = sample(path, config.default_read)
        if head is None:
            error = sample.unreadable[path]
            claims.failures.append(TableFailure(FOLDER_FAILURE, error))
            continue
        known = next(
            (k for k in preset.known_exports if head.holds(k.match_headers)),
            None,
        )
        if known is not None:
            claims.notes.append(
                f"export_not_used: {path.name}: a {preset.title} {known.export} export; "
                "no KPI reads it"
            )
        elif signature & {normalise_header(h) for h in head.headers}:
            claims.failures.append(TableFailure(FOLDER_FAILURE, unrecognised_export(config, head)))
        else:
            claims.notes.append(
                f"not_an_export: {path.name}: no {preset.title} export has its headers; not read"
            )


def unrecognised_export(config: Config, head: HeaderSample) -> FileRejectedError:
    """Exit 65 for an export no table recognises: what each table expects, and what is there."""
    expected: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for table in config.tables.values():
        for layout in table.variants:
            if layout.match_headers:
                key = (table.name, layout.match_headers, layout.exclude_headers)
                expected.setdefault(key, []).append(layout.layout or "")
    wanted = "; ".join(
        f"{name}{' (' + ', '.join(layouts) + ')' if any(layouts) else ''}: "
        + ", ".join(repr(h) for h in headers)
        + (f" (and none of {', '.join(repr(h) for h in exclude)})" if exclude else "")
        for (name, headers, exclude), layouts in expected.items()
    )
    title = config.preset.title if config.preset else "the config"
    return FileRejectedError(
        str(head.path),
        "unrecognised_export",
        f"no table of the {title} preset recognises this export; headers expected: "
        f"{wanted}; {headers_seen(len(head.headers), head.header_line)}",
        line=head.header_line,
    )


def load_table(
    table: TableConfig,
    config: Config,
    folder: Path,
    paths: list[Path] | None = None,
    layout: TableConfig | None = None,
    sample_rows: int | None = None,
) -> LoadedTable | None:
    """Load one table from `paths` (default: the files its patterns name) read by `layout`
    (default: the table itself); None when it is optional and there is no file. With
    `sample_rows`, only each file's first rows are mapped and checked (`crmkpi init` validates
    its proposal so, in bounded time)."""
    source = layout or table
    if paths is None:
        paths = expand_patterns(folder, source.files)
    if not paths:
        if table.required:
            recognised = (
                f" with the headers {', '.join(repr(h) for h in source.match_headers)}"
                if source.match_headers
                else ""
            )
            raise InputMissingError(
                f"missing required input {table.name}: no file matches "
                f"{', '.join(repr(f) for f in source.files)}{recognised} in {folder}"
            )
        return None
    expected = expected_headers(source)
    raws: list[RawFile] = []
    reports: list[FileReport] = []
    seen: dict[str, str] = {}
    stamps: dict[Path, tuple[int, int]] = {}
    for path in paths:
        raw = read_file(path, folder, source.read, expected)
        if sample_rows is not None:
            raw = _first_rows(raw, sample_rows)
        report = FileReport(
            input_name(path, folder),
            raw.sha256,
            raw.file_format,
            raw.encoding,
            raw.rows_read,
            raw.footer_rows,
        )
        stamps[path] = raw.stamp
        if raw.sha256 in seen:
            report.duplicate_of = seen[raw.sha256]
            report.rows_read = 0
            reports.append(report)
            continue
        seen[raw.sha256] = report.path
        raws.append(raw)
        reports.append(report)
    mapped = []
    first_row = 0
    for raw in raws:
        mapped.append(map_file(raw, source, config.settings, first_row))
        first_row += raw.frame.height
    loaded = validate_table(table.name, raws, mapped, reports)
    loaded.stamps = stamps
    loaded.report.warnings.extend(drift_warnings(raws))
    check_has_rows(loaded, source.allow_empty)
    _warn_duplicates(loaded)
    return loaded


def check_has_rows(loaded: LoadedTable, allow_empty: bool) -> None:
    """A table without a single record is a truncated export (65) unless allowed."""
    nothing = loaded.report.rows_used == 0 and loaded.report.rows_quarantined == 0
    if nothing and not allow_empty:
        raise InvalidDataError(
            f"table {loaded.name}: no_rows: {loaded.report.rows_read} rows read, no records "
            "(a header-only or truncated export?); set allow_empty = true if that is expected"
        )


def _first_rows(raw: RawFile, rows: int) -> RawFile:
    """The file's first `rows` records and the unreadable records among them (the footer,
    after the last record, is not part of the sample)."""
    if raw.frame.height <= rows:
        return raw
    frame = raw.frame.head(rows)
    last = frame[SOURCE_LINE].max()
    rejected = raw.rejected.filter(pl.col(SOURCE_LINE) <= last)
    return replace(raw, frame=frame, rejected=rejected, footer_rows=0)


def drift_warnings(raws: list[RawFile]) -> list[str]:
    """Typed files (Parquet) of one table whose column types differ from file to file: each file
    is parsed on its own, so the values still meet as one type, but the change is reported."""
    seen: dict[str, dict[str, list[str]]] = {}
    for raw in raws:
        for header in raw.headers:
            dtype = str(raw.frame.schema[header])
            seen.setdefault(header, {}).setdefault(dtype, []).append(raw.path.name)
    return [
        f"schema_drift: {header!r} is "
        + "; ".join(f"{dtype} in {', '.join(names)}" for dtype, names in types.items())
        for header, types in seen.items()
        if len(types) > 1
    ]


def _warn_duplicates(loaded: LoadedTable) -> None:
    """Duplicate deliveries are noted; nothing else is inferred across tables here."""
    duplicates = [f for f in loaded.report.files if f.duplicate_of]
    for dup in duplicates:
        loaded.report.warnings.append(
            f"{dup.path} is byte-identical to {dup.duplicate_of}; read once"
        )


def check_orphan_reps(result: LoadResult) -> None:
    """Rows owned by a rep missing from the reps roster stay (an 'unknown rep' bucket), counted."""
    reps = result.tables.get("reps")
    if reps is None:
        return
    roster = reps.frame["rep"].implode()
    for name, loaded in result.tables.items():
        if name == "reps" or "rep" not in loaded.frame.columns:
            continue
        orphans = loaded.frame.filter(pl.col("rep").is_not_null() & ~pl.col("rep").is_in(roster))
        if orphans.height:
            loaded.report.warnings_by_check["orphan_rep"] = orphans.height
            loaded.report.warnings.append(
                f"orphan_rep: {orphans.height} rows name a rep missing from the reps table"
            )


def load_all(config: Config, folder: Path, only: set[str] | None = None) -> LoadResult:
    """Load every configured table (or those in `only`)."""
    check_validation_enabled()
    if not folder.is_dir():
        raise InputMissingError(f"input folder {folder} does not exist")
    result = LoadResult()
    claims = claim_files(config, folder)
    result.notes.extend(claims.notes)
    result.failures.extend(claims.failures)
    for name, table in config.tables.items():
        if only is not None and name not in only:
            continue
        if not table.enabled:
            continue
        layout, paths = claims.chosen.get(name, (table, []))
        try:
            loaded = load_table(table, config, folder, paths, layout)
        except CrmkpiError as exc:
            result.failures.append(TableFailure(name, exc))
            continue
        if loaded is not None:
            result.tables[name] = loaded
            result.stamps.update(loaded.stamps)
            loaded.report.warnings.extend(claims.warnings.get(name, []))
            if layout.layout is not None:
                result.layouts[name] = layout.layout
    if config.preset is not None and not claims.chosen and not result.failures:
        result.failures.append(
            TableFailure(
                FOLDER_FAILURE,
                InputMissingError(
                    f"no {config.preset.title} export in {folder}: no file has the headers "
                    "of any table of the preset (see docs/presets.md for what to export)"
                ),
            )
        )
    check_orphan_reps(result)
    return result

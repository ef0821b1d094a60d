"""File discovery and readers: bytes on disk -> a frame of text cells with source lines.

Every CSV cell is read as text (no type inference, no lossy decoding); parsing happens later, by
rule. Record boundaries, field counts and source lines are found with whole-array numpy
operations on the bytes, so quoted newlines, ragged rows and export footers are handled without a
Python loop over rows, and every error can name its line.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from crmkpi.config import ReadOptions
from crmkpi.errors import FileRejectedError, InputUnstableError

SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
RAW_RECORD = "_raw_record"
HEADER_SEARCH_ROWS = 20
EXCEL_MAX_ROWS = 1_048_576
XLSX_MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
XLSX_MAX_COMPRESSION_RATIO = 200

_MAGIC_ZIP = b"PK\x03\x04"
_MAGIC_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAGIC_PARQUET = b"PAR1"
_FOOTER_LINE = re.compile(
    r"^\"?\s*(Grand Totals?\s*\((\d[\d,]*) records?\)|Confidential Information.*|"
    r"Copyright\s*(\(c\)|©).*|©.*salesforce.*)\s*\"?\s*(,\s*)*$",
    re.IGNORECASE,
)
_TOTALS_CELL = re.compile(r"^(合计|总计|總計|合計|Total|Totals|Grand Total)\b", re.IGNORECASE)
_SUBTOTAL_CELL = re.compile(r"^(Subtotal|小计|小計)\b", re.IGNORECASE)
_RECORD_COUNT = re.compile(r"(?:\((\d[\d,]*) records?\)|共\s*(\d+)\s*条)", re.IGNORECASE)


@dataclass
class RawFile:
    """One input file as text cells: `frame` holds the source headers plus `_source_file` and
    `_source_line` (1-based line of the record's first line; the row number in a sheet; the
    record number in Parquet). `rejected` holds records that could not become a row at all."""

    path: Path
    file_format: str
    sha256: str
    frame: pl.DataFrame
    headers: list[str]
    encoding: str | None = None
    footer_rows: int = 0
    rejected: pl.DataFrame = field(default_factory=lambda: _rejected_frame([], [], [], [], ""))
    excel_1904: bool = False

    @property
    def rows_read(self) -> int:
        return self.frame.height + self.rejected.height + self.footer_rows


def _rejected_frame(
    lines: Sequence[int],
    records: Sequence[str],
    checks: Sequence[str],
    reasons: Sequence[str],
    path: str,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            SOURCE_FILE: [path] * len(lines),
            SOURCE_LINE: list(lines),
            RAW_RECORD: list(records),
            "check": list(checks),
            "reason": list(reasons),
        },
        schema={
            SOURCE_FILE: pl.String,
            SOURCE_LINE: pl.Int64,
            RAW_RECORD: pl.String,
            "check": pl.String,
            "reason": pl.String,
        },
    )


def normalise_header(name: str) -> str:
    """Header matching ignores width, case, outer spaces and an import template's leading `*`."""
    text = unicodedata.normalize("NFKC", name).replace("\ufeff", "").strip()
    return text.lstrip("*").strip().casefold()


# --- file checks --------------------------------------------------------------------------------


def expand_patterns(folder: Path, patterns: Iterable[str]) -> list[Path]:
    """Files matching the table's names or globs, each exactly once, in name order.

    A pattern naming an existing file is taken literally, so `report[1].csv` is that file and not
    a glob class; other patterns are globs relative to `folder`.
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        literal = folder / pattern
        if literal.exists() or literal.is_symlink():
            found[literal] = None
            continue
        for match in sorted(folder.glob(pattern)):
            found[match] = None
    return sorted(found, key=lambda p: p.name)


def check_regular_file(path: Path, root: Path, max_bytes: int) -> os.stat_result:
    """Reject what is not an ordinary file inside the input folder, or is too large to read."""
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError) as exc:
        raise FileRejectedError(str(path), "not_regular_file", "the file does not exist") from exc
    if not resolved.is_relative_to(root.resolve()):
        raise FileRejectedError(
            str(path), "outside_root", "the path leads outside the input folder (symlink?)"
        )
    info = resolved.stat()
    if not stat.S_ISREG(info.st_mode):
        raise FileRejectedError(
            str(path), "not_regular_file", "not a regular file (a folder, FIFO or device)"
        )
    if info.st_size > max_bytes:
        raise FileRejectedError(
            str(path),
            "too_large",
            f"{info.st_size} bytes is over the limit of {max_bytes} (input max_file_mb)",
        )
    if info.st_size == 0:
        raise FileRejectedError(str(path), "empty_file", "the file is empty (0 bytes)")
    return info


def _format_from_bytes(head: bytes) -> str | None:
    if head.startswith(_MAGIC_ZIP):
        return "xlsx"
    if head.startswith(_MAGIC_OLE):
        return "ole"
    if head.startswith(_MAGIC_PARQUET):
        return "parquet"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<html", b"<!doctype", b"<?xml", b"<table")):
        return "html"
    return None


def detect_format(path: Path, head: bytes) -> str:
    """The format by magic bytes, checked against the extension (a renamed file is rejected)."""
    suffix = path.suffix.lower()
    by_name = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xlsx", ".parquet": "parquet"}.get(
        suffix, "csv"
    )
    by_bytes = _format_from_bytes(head)
    if by_bytes == "ole":
        raise FileRejectedError(
            str(path),
            "encrypted_or_legacy_format",
            "an OLE container: a password-protected workbook or a legacy .xls; save as .xlsx",
        )
    if by_bytes == "html":
        raise FileRejectedError(
            str(path), "format_mismatch", "the file is HTML/XML, not a spreadsheet or CSV"
        )
    actual = by_bytes or "csv"
    if actual != by_name:
        raise FileRejectedError(
            str(path),
            "format_mismatch",
            f"the name says {by_name} but the content (magic bytes) is {actual}",
        )
    return actual


# --- decoding -----------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_GB_FAMILY = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp936", "cp950"}


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _looks_like_mojibake(text: str) -> bool:
    """Text from another CJK codec decoded as GB18030 is full of private-use, kana/Greek/box
    symbols and rare characters outside GB2312; real Chinese text almost never is."""
    chars = {c for c in text if ord(c) > 0x7F}
    if not chars:
        return False
    if any(0xE000 <= ord(c) <= 0xF8FF or c == "\ufffd" for c in chars):
        return True
    rare = 0
    for char in chars:
        try:
            char.encode("gb2312")
        except UnicodeEncodeError:
            rare += 1
    return rare / len(chars) > 0.3


def decode_to_utf8(data: bytes, encoding: str, path: Path) -> tuple[bytes, str]:
    """Strictly decode `data` and return it as UTF-8 bytes without BOM, with the encoding used.

    A BOM decides; otherwise strict UTF-8 is tried first (a UTF-8 file configured as GB18030 is
    still read right), then the configured encoding. Nothing is ever replaced or guessed through a
    chain of codecs: a byte that does not decode rejects the file, naming its offset and line.
    """
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            return _decode_strict(data[len(bom) :], bom_encoding, path, len(bom))
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    if codecs.lookup(encoding).name == "utf-8":
        offset = utf8_error.start
        raise FileRejectedError(
            str(path),
            "not_utf8",
            f"byte offset {offset} is not valid UTF-8; set `encoding` (gb18030? utf-16?) in "
            "crmkpi.toml",
            line=_line_of_offset(data, offset),
        )
    prefix = data[: utf8_error.start]
    if any(b >= 0xC0 for b in prefix[-4096:]) and _has_multibyte_utf8(prefix):
        offset = utf8_error.start
        raise FileRejectedError(
            str(path),
            "decode_error",
            f"mixed encodings: valid UTF-8 text up to byte offset {offset}, then not",
            line=_line_of_offset(data, offset),
        )
    return _decode_strict(data, encoding, path, 0)


def _has_multibyte_utf8(prefix: bytes) -> bool:
    return re.search(rb"[\xe0-\xef][\x80-\xbf]{2}", prefix) is not None


def _decode_strict(data: bytes, encoding: str, path: Path, base: int) -> tuple[bytes, str]:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        offset = base + exc.start
        raise FileRejectedError(
            str(path),
            "decode_error",
            f"byte offset {offset} is not valid {encoding}",
            line=_line_of_offset(data, exc.start),
        ) from exc
    name = codecs.lookup(encoding).name
    if name in _GB_FAMILY and _looks_like_mojibake(text):
        raise FileRejectedError(
            str(path),
            "mojibake_suspected",
            f"the text decodes as {encoding} but looks like another encoding (Big5? Shift_JIS?)",
        )
    return text.encode("utf-8"), name


# --- CSV ----------------------------------------------------------------------------------------


@dataclass
class _Records:
    """Record boundaries of a CSV byte buffer: [starts[i], ends[i]) without the line break."""

    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    fields: np.ndarray


def _split_records(buf: bytes, delimiter: str, quote: str | None, path: Path) -> _Records:
    data = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    if quote:
        quotes = np.flatnonzero(data == ord(quote))
        if quotes.size % 2:
            unterminated_at = int(quotes[-1])
            boundary = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
            before = boundary[boundary < unterminated_at]
            start = int(before[-1]) + 1 if before.size else 0
            raise FileRejectedError(
                str(path),
                "unterminated_quote",
                f"a quoted field opened in the record starting at line "
                f"{_line_of_offset(buf, start)} is never closed (truncated file?)",
                line=_line_of_offset(buf, start),
            )
        breaks = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    else:
        quotes = np.empty(0, dtype=np.int64)
        breaks = newlines
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(buf)]))
    if starts[-1] >= len(buf):
        starts, ends = starts[:-1], ends[:-1]
    # drop the CR of CRLF line ends
    if ends.size:
        has_cr = data[np.maximum(ends - 1, 0)] == 13
        ends = np.where(has_cr & (ends > starts), ends - 1, ends)
    lines = np.searchsorted(newlines, starts) + 1
    delims = np.flatnonzero(data == ord(delimiter))
    if quote and delims.size:
        delims = delims[np.searchsorted(quotes, delims) % 2 == 0]
    fields = np.searchsorted(delims, ends) - np.searchsorted(delims, starts) + 1
    fields = np.where(ends > starts, fields, 0)
    return _Records(starts, ends, lines, fields)


def _record_text(buf: bytes, records: _Records, i: int) -> str:
    return buf[records.starts[i] : records.ends[i]].decode("utf-8")


def _parse_record(text: str, delimiter: str, quote: str | None) -> list[str]:
    reader = csv.reader(
        io.StringIO(text),
        delimiter=delimiter,
        quotechar=quote or '"',
        quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
    )
    return next(reader, [])


def _whitespace_to_csv(buf: bytes) -> bytes:
    """Space-aligned text (`delimiter = "whitespace"`): runs of blanks separate fields."""
    text = re.sub(rb"^[ \t]+|[ \t]+$", b"", buf, flags=re.MULTILINE)
    return re.sub(rb"[ \t]+", b",", text)


def read_csv_file(
    path: Path, options: ReadOptions, expected_headers: set[str], data: bytes
) -> RawFile:
    """Read a delimited text file into text cells; see the module docstring."""
    buf, encoding = decode_to_utf8(data, options.encoding, path)
    if b"\n" not in buf and b"\r" in buf:
        buf = buf.replace(b"\r", b"\n")
    delimiter = options.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    quote: str | None = '"'
    if delimiter == "whitespace":
        buf, delimiter, quote = _whitespace_to_csv(buf), ",", None
    first_line = buf.split(b"\n", 1)[0].strip()
    skip_first = False
    if re.fullmatch(rb"\"?sep=(.)\"?", first_line):
        delimiter = first_line.strip(b'"').decode()[4]
        skip_first = True
    records = _split_records(buf, delimiter, quote, path)
    if skip_first:
        records = _Records(
            records.starts[1:], records.ends[1:], records.lines[1:], records.fields[1:]
        )
    nonblank = np.flatnonzero(records.fields > 0)
    if nonblank.size == 0:
        raise FileRejectedError(str(path), "empty_file", "the file holds no records")

    header_index, headers = _find_header(
        buf, records, nonblank, delimiter, quote, options, expected_headers, path
    )
    body = nonblank[nonblank > header_index] if header_index >= 0 else nonblank
    body, footer_rows = _strip_footer(buf, records, body, options.footer, delimiter, quote, path)
    width = len(headers)
    if width == 1 and body.size == 0 and (b";" in first_line or b"\t" in first_line):
        raise FileRejectedError(
            str(path),
            "delimiter_mismatch",
            f"the header has one column with the delimiter {delimiter!r}; "
            "is the file ';' or tab separated? set `delimiter`",
            line=1,
        )
    good = body[records.fields[body] == width]
    ragged = body[records.fields[body] != width]
    if ragged.size and ragged[-1] == body[-1] and records.ends[ragged[-1]] == len(buf):
        raise FileRejectedError(
            str(path),
            "truncated_last_record",
            f"the last record has {records.fields[ragged[-1]]} fields instead of {width} and no "
            "line end: the file looks truncated (partial download?)",
            line=int(records.lines[ragged[-1]]),
        )
    if (
        width > 1
        and good.size == 0
        and ragged.size
        and (int(np.median(records.fields[ragged])) == 1)
    ):
        raise FileRejectedError(
            str(path),
            "delimiter_mismatch",
            f"no record splits on {delimiter!r} into {width} fields",
            line=int(records.lines[ragged[0]]),
        )
    frame = _frame_from_records(buf, records, good, headers, delimiter, quote, path)
    rejected = _rejected_frame(
        [int(records.lines[i]) for i in ragged],
        [_record_text(buf, records, i) for i in ragged],
        ["too_many_fields" if records.fields[i] > width else "missing_fields" for i in ragged],
        [f"{records.fields[i]} fields where the header has {width}" for i in ragged],
        str(path),
    )
    return RawFile(path, "csv", "", frame, headers, encoding, footer_rows, rejected)


def _find_header(
    buf: bytes,
    records: _Records,
    nonblank: np.ndarray,
    delimiter: str,
    quote: str | None,
    options: ReadOptions,
    expected: set[str],
    path: Path,
) -> tuple[int, list[str]]:
    """The header record: the configured row, else the first of the first rows that holds every
    expected header (title rows above the header are common in CRM exports)."""
    if options.header_row == 0:
        width = int(records.fields[nonblank].max())
        return -1, [f"column_{i + 1}" for i in range(width)]
    if options.header_row is not None:
        candidates = nonblank[records.lines[nonblank] == options.header_row]
        if candidates.size == 0:
            raise FileRejectedError(
                str(path),
                "header_not_found",
                f"no record starts on line {options.header_row} (header_row)",
            )
        index = int(candidates[0])
        return index, _header_names(
            _parse_record(_record_text(buf, records, index), delimiter, quote),
            path,
            records.lines[index],
        )
    for index in nonblank[:HEADER_SEARCH_ROWS]:
        names = _parse_record(_record_text(buf, records, int(index)), delimiter, quote)
        if expected <= {normalise_header(n) for n in names}:
            return int(index), _header_names(names, path, records.lines[index])
    if expected:
        index = int(nonblank[0])
        names = _parse_record(_record_text(buf, records, index), delimiter, quote)
        missing = sorted(expected - {normalise_header(n) for n in names})
        raise FileRejectedError(
            str(path),
            "header_not_found",
            f"no header row among the first {HEADER_SEARCH_ROWS} records has "
            f"{', '.join(repr(m) for m in missing)}; headers on line "
            f"{int(records.lines[index])}: {', '.join(repr(n) for n in names)}",
        )
    index = int(nonblank[0])
    return index, _header_names(
        _parse_record(_record_text(buf, records, index), delimiter, quote),
        path,
        records.lines[index],
    )


def _header_names(names: list[str], path: Path, line: int | np.integer) -> list[str]:
    """Clean header names; duplicates are rejected, blank headers named by position."""
    cleaned = [unicodedata.normalize("NFKC", n).replace("\ufeff", "").strip() for n in names]
    seen: dict[str, int] = {}
    for i, name in enumerate(cleaned):
        if not name:
            cleaned[i] = f"column_{i + 1}"
            continue
        key = normalise_header(name)
        if key in seen:
            raise FileRejectedError(
                str(path),
                "duplicate_column",
                f"header {name!r} appears at columns {seen[key] + 1} and {i + 1}",
                line=int(line),
                column=name,
            )
        seen[key] = i
    return cleaned


def _strip_footer(
    buf: bytes,
    records: _Records,
    body: np.ndarray,
    rule: str,
    delimiter: str,
    quote: str | None,
    path: Path,
) -> tuple[np.ndarray, int]:
    """Remove an export footer by rule; returns the remaining body and the footer row count.

    Salesforce footers (`Grand Totals (N records)`, confidentiality, copyright) only count after a
    blank line, so a deal named "Total" inside the data stays data; N is checked against the rows.
    A trailing `合计`/`总计` row (rule auto or totals) or `Total` row (rule totals) is stripped too.
    """
    if rule == "none" or body.size == 0:
        return body, 0
    footer_rows = 0
    if rule in ("auto", "salesforce"):
        tail_start = body.size
        while tail_start > 0:
            text = _record_text(buf, records, int(body[tail_start - 1]))
            if not _FOOTER_LINE.match(text):
                break
            tail_start -= 1
        if tail_start < body.size:
            last_data, first_footer = body[tail_start - 1], body[tail_start]
            gap = records.lines[first_footer] - records.lines[last_data]
            blank_between = gap > 1 + buf[
                records.starts[last_data] : records.ends[last_data]
            ].count(b"\n")
            if blank_between or tail_start == 0:
                footer = body[tail_start:]
                body = body[:tail_start]
                footer_rows = int(footer.size)
                _check_footer_count(buf, records, footer, body.size, path)
                _reject_summary_report(buf, records, body, delimiter, quote, path)
    if body.size and rule in ("auto", "totals"):
        last = int(body[-1])
        cells = _parse_record(_record_text(buf, records, last), delimiter, quote)
        first = next((c.strip() for c in cells if c.strip()), "")
        pattern = _TOTALS_CELL if rule == "totals" else re.compile(r"^(合计|总计|總計|合計)")
        if pattern.match(first):
            body = body[:-1]
            footer_rows += 1
            _check_footer_count(buf, records, np.array([last]), body.size, path)
    return body, footer_rows


def _check_footer_count(
    buf: bytes, records: _Records, footer: np.ndarray, data_rows: int, path: Path
) -> None:
    for index in footer:
        match = _RECORD_COUNT.search(_record_text(buf, records, int(index)))
        if match:
            stated = int((match.group(1) or match.group(2)).replace(",", ""))
            if stated != data_rows:
                raise FileRejectedError(
                    str(path),
                    "footer_count_mismatch",
                    f"the footer states {stated} records but the file holds {data_rows}: "
                    "truncated or edited export",
                    line=int(records.lines[index]),
                )


def _reject_summary_report(
    buf: bytes,
    records: _Records,
    body: np.ndarray,
    delimiter: str,
    quote: str | None,
    path: Path,
) -> None:
    """Summary and matrix reports carry subtotal rows; only "details only" exports are data."""
    for index in body:
        text = _record_text(buf, records, int(index))
        cells = _parse_record(text, delimiter, quote)
        first = next((c.strip() for c in cells if c.strip()), "")
        if _SUBTOTAL_CELL.match(first) or (
            cells and not cells[0].strip() and _TOTALS_CELL.match(first)
        ):
            raise FileRejectedError(
                str(path),
                "not_details_only_export",
                "a subtotal row: export the report as 'Details Only'",
                line=int(records.lines[index]),
            )


def _frame_from_records(
    buf: bytes,
    records: _Records,
    keep: np.ndarray,
    headers: list[str],
    delimiter: str,
    quote: str | None,
    path: Path,
) -> pl.DataFrame:
    if keep.size == 0:
        frame = pl.DataFrame(schema=dict.fromkeys(headers, pl.String))
    else:
        # join runs of consecutive records (usually one run; one more per gap left by a dropped
        # record), never record by record
        run_breaks = np.flatnonzero(np.diff(keep) != 1)
        run_firsts = np.concatenate(([keep[0]], keep[run_breaks + 1]))
        run_lasts = np.concatenate((keep[run_breaks], [keep[-1]]))
        chunk = b"\n".join(
            buf[records.starts[first] : records.ends[last]]
            for first, last in zip(run_firsts, run_lasts, strict=True)
        )
        try:
            frame = pl.read_csv(
                chunk,
                has_header=False,
                new_columns=headers,
                infer_schema=False,
                separator=delimiter,
                quote_char=quote,
                raise_if_empty=False,
                truncate_ragged_lines=False,
            )
        except pl.exceptions.PolarsError as exc:
            raise FileRejectedError(str(path), "csv_parse_error", str(exc).splitlines()[0]) from exc
        if frame.height != keep.size:
            raise FileRejectedError(
                str(path),
                "csv_parse_error",
                f"{frame.height} rows parsed where {keep.size} records were found",
            )
    return frame.with_columns(
        pl.lit(str(path)).alias(SOURCE_FILE),
        pl.Series(SOURCE_LINE, records.lines[keep].astype(np.int64)),
    )


# --- XLSX ---------------------------------------------------------------------------------------

_DIMENSION = re.compile(rb'<dimension ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
_FIRST_ROW = re.compile(rb'<row[^>]*\br="(\d+)"')
_FORMULA_WITHOUT_VALUE = re.compile(rb"<c\b[^>]*>(?:(?!</c>).)*<f\b(?:(?!</c>).)*</c>", re.DOTALL)


def _inspect_workbook(path: Path, data: bytes, sheet_index: int) -> tuple[int, bool]:
    """Check a workbook's container before any parsing; return the sheet's first row number and
    whether it uses the 1904 date system.

    Rejects zip bombs and absurd dimensions (memory stays bounded), XML entity declarations
    (billion laughs, XXE) and formula cells stored without a cached value (read as 0 otherwise).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise FileRejectedError(str(path), "format_mismatch", "not a valid xlsx (zip)") from exc
    with archive:
        infos = archive.infolist()
        total = sum(info.file_size for info in infos)
        packed = max(sum(info.compress_size for info in infos), 1)
        if total > XLSX_MAX_UNCOMPRESSED_BYTES or total / packed > XLSX_MAX_COMPRESSION_RATIO:
            raise FileRejectedError(
                str(path),
                "zip_bomb_suspected",
                f"{total} bytes uncompressed from {packed} (ratio {total / packed:.0f})",
            )
        names = archive.namelist()
        if any(info.flag_bits & 0x1 for info in infos):
            raise FileRejectedError(
                str(path), "encrypted_or_legacy_format", "the workbook is encrypted"
            )
        workbook = archive.read("xl/workbook.xml") if "xl/workbook.xml" in names else b""
        sheets = sorted(
            (n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)),
            key=lambda n: int(re.findall(r"\d+", n)[-1]),
        )
        for name in names:
            if name.endswith((".xml", ".rels")):
                with archive.open(name) as member:
                    head = member.read(4096)
                if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                    raise FileRejectedError(
                        str(path),
                        "xml_entities",
                        f"{name} declares a DTD or entities (billion laughs / XXE); refused",
                    )
        if sheet_index >= len(sheets):
            return 1, b'date1904="1"' in workbook or b'date1904="true"' in workbook
        sheet_xml = archive.read(sheets[sheet_index])
    first_row = 1
    dimension = _DIMENSION.search(sheet_xml[:4096])
    if dimension:
        first_row = int(dimension.group(2))
        if dimension.group(4) and int(dimension.group(4)) - first_row > EXCEL_MAX_ROWS - 1:
            raise FileRejectedError(
                str(path), "sheet_too_large", "the sheet claims the full 1,048,576 rows"
            )
    row = _FIRST_ROW.search(sheet_xml)
    if row:
        first_row = int(row.group(1))
    for cell in _FORMULA_WITHOUT_VALUE.finditer(sheet_xml):
        if b"<v>" not in cell.group(0) and b"<v " not in cell.group(0):
            ref = re.search(rb'r="([A-Z]+\d+)"', cell.group(0))
            raise FileRejectedError(
                str(path),
                "formulas_without_values",
                f"formula cell {ref.group(1).decode() if ref else '?'} has no cached value; "
                "open and save the workbook in Excel, or export values",
            )
    return first_row, b'date1904="1"' in workbook or b'date1904="true"' in workbook


def read_xlsx_file(
    path: Path, options: ReadOptions, expected_headers: set[str], data: bytes
) -> RawFile:
    """Read one sheet of a workbook as text cells (header row detected or configured)."""
    import fastexcel

    try:
        reader = fastexcel.read_excel(data)
    except Exception as exc:  # fastexcel raises its own error types for broken workbooks
        raise FileRejectedError(str(path), "unreadable_workbook", str(exc).splitlines()[0]) from exc
    sheet_names = list(reader.sheet_names)
    if options.sheet is not None and options.sheet not in sheet_names:
        raise FileRejectedError(
            str(path),
            "sheet_not_found",
            f"no sheet {options.sheet!r}; sheets: {', '.join(repr(s) for s in sheet_names)}",
        )
    sheet_index = sheet_names.index(options.sheet) if options.sheet else 0
    first_row, excel_1904 = _inspect_workbook(path, data, sheet_index)
    sheet = reader.load_sheet(sheet_index, header_row=None, dtypes="string")
    if sheet.total_height >= EXCEL_MAX_ROWS:
        raise FileRejectedError(
            str(path),
            "possible_truncated_export",
            "the sheet has 1,048,576 rows, Excel's limit: data may be cut",
        )
    grid = sheet.to_polars()
    grid = grid.with_columns(pl.Series(SOURCE_LINE, np.arange(first_row, first_row + grid.height)))
    cells = grid.drop(SOURCE_LINE)
    nonblank = grid.filter(~pl.all_horizontal(pl.exclude(SOURCE_LINE).is_null()))
    if nonblank.height == 0:
        raise FileRejectedError(str(path), "empty_file", "the sheet holds no rows")
    header_pos = _xlsx_header_position(nonblank, cells.columns, options, expected_headers, path)
    if header_pos < 0:
        headers = [f"column_{i + 1}" for i in range(len(cells.columns))]
        body = nonblank
    else:
        row = nonblank.row(header_pos)
        headers = _header_names(["" if v is None else str(v) for v in row[:-1]], path, row[-1])
        body = nonblank.slice(header_pos + 1)
    body = body.rename(dict(zip(cells.columns, headers, strict=True)))
    body, footer_rows = _strip_sheet_footer(body, headers, options.footer, path)
    frame = body.with_columns(pl.lit(str(path)).alias(SOURCE_FILE))
    return RawFile(path, "xlsx", "", frame, headers, None, footer_rows, excel_1904=excel_1904)


def _xlsx_header_position(
    rows: pl.DataFrame,
    columns: list[str],
    options: ReadOptions,
    expected: set[str],
    path: Path,
) -> int:
    if options.header_row == 0:
        return -1
    if options.header_row is not None:
        matches = rows.with_row_index("_pos").filter(pl.col(SOURCE_LINE) == options.header_row)
        if matches.height == 0:
            raise FileRejectedError(
                str(path), "header_not_found", f"row {options.header_row} (header_row) is empty"
            )
        return int(matches["_pos"][0])
    for pos, row in enumerate(rows.head(HEADER_SEARCH_ROWS).iter_rows()):
        names = {normalise_header(str(v)) for v in row[:-1] if v is not None}
        if expected <= names:
            return pos
    if expected:
        first = [str(v) for v in rows.row(0)[:-1] if v is not None]
        raise FileRejectedError(
            str(path),
            "header_not_found",
            f"no header row among the first {HEADER_SEARCH_ROWS} rows has "
            f"{', '.join(repr(e) for e in sorted(expected))}; first row: "
            f"{', '.join(repr(n) for n in first)}",
        )
    return 0


def _strip_sheet_footer(
    body: pl.DataFrame, headers: list[str], rule: str, path: Path
) -> tuple[pl.DataFrame, int]:
    """A trailing totals row (合计 / 总计, or Total with rule totals) is not a record."""
    if rule == "none" or body.height == 0:
        return body, 0
    last = body.row(body.height - 1, named=True)
    first = next((str(last[h]).strip() for h in headers if last[h] not in (None, "")), "")
    pattern = _TOTALS_CELL if rule == "totals" else re.compile(r"^(合计|总计|總計|合計)")
    if not pattern.match(first):
        return body, 0
    match = _RECORD_COUNT.search(" ".join(str(v) for v in last.values() if v is not None))
    if match:
        stated = int((match.group(1) or match.group(2)).replace(",", ""))
        if stated != body.height - 1:
            raise FileRejectedError(
                str(path),
                "footer_count_mismatch",
                f"the totals row states {stated} records but the sheet holds {body.height - 1}",
                line=int(last[SOURCE_LINE]),
            )
    return body.slice(0, body.height - 1), 1


# --- Parquet ------------------------------------------------------------------------------------


def read_parquet_file(path: Path, data: bytes) -> RawFile:
    """Parquet keeps its types; a typed column is cast (never re-parsed from text) later."""
    if not data.endswith(_MAGIC_PARQUET):
        raise FileRejectedError(
            str(path), "corrupt_parquet", "the file must end with PAR1: truncated or corrupt"
        )
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow/polars raise several types for corrupt files
        raise FileRejectedError(str(path), "corrupt_parquet", str(exc).splitlines()[0]) from exc
    frame = frame.with_columns(
        pl.lit(str(path)).alias(SOURCE_FILE),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(SOURCE_LINE),
    )
    headers = [c for c in frame.columns if c not in (SOURCE_FILE, SOURCE_LINE)]
    return RawFile(path, "parquet", "", frame, headers)


# --- entry point --------------------------------------------------------------------------------


def read_file(path: Path, root: Path, options: ReadOptions, expected_headers: set[str]) -> RawFile:
    """Check, read and hash one input file.

    The file is read once into memory; its size and modification time are compared before and
    after, so a file still being written is refused as unstable (retry later) rather than half read.
    """
    before = check_regular_file(path, root, options.max_file_bytes)
    data = path.read_bytes()
    after = path.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(
        data
    ) != after.st_size:
        raise InputUnstableError(
            f"{path}: input_unstable: the file changed while it was read; "
            "is the export still being written? retry later"
        )
    file_format = detect_format(path, data[:64])
    if file_format == "xlsx":
        raw = read_xlsx_file(path, options, expected_headers, data)
    elif file_format == "parquet":
        raw = read_parquet_file(path, data)
    else:
        raw = read_csv_file(path, options, expected_headers, data)
    raw.sha256 = hashlib.sha256(data).hexdigest()
    return raw

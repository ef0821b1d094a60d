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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import unescape

import numpy as np
import polars as pl

from crmkpi.config import ReadOptions
from crmkpi.errors import FileRejectedError, InputMissingError, InputReadError, InputUnstableError
from crmkpi.provenance import SOURCE_FILE, SOURCE_LINE

RAW_RECORD = "_raw_record"
# the names of crmkpi's bookkeeping columns beside a file's own (read, mapping, validation); a
# source header may not take one, or its cells would be overwritten
RESERVED_HEADERS = frozenset(
    {SOURCE_FILE, SOURCE_LINE, RAW_RECORD, "_row", "_skipped", "_file_index"}
)
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
_SUBTOTAL_PATTERN = r"(?i)^(sub-?totals?|小计|小計)(\b|$)"
_SUBTOTAL_START = (
    r"(?i)^\s*(sub-?totals?|小计|小計)"  # matches every cell the above does, unstripped
)
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
    blank_headers: list[str] = field(default_factory=list)
    # (size in bytes, modification time in ns) when read: the run checks it again before publishing
    stamp: tuple[int, int] = (0, 0)
    # all-blank rows between the header and the last data row: read, counted, skipped
    blank_rows: int = 0

    @property
    def rows_read(self) -> int:
        return self.frame.height + self.rejected.height + self.footer_rows + self.blank_rows


def _unreadable(path: Path, check: str, exc: Exception) -> FileRejectedError:
    """A reader library's failure, named by its type: its text may quote a cell of the file."""
    what = "workbook" if check == "unreadable_workbook" else "Parquet file"
    return FileRejectedError(
        str(path), check, f"the {what} cannot be read ({type(exc).__name__}): damaged or not one"
    )


def headers_seen(count: int, line: int | None) -> str:
    """How a message speaks of a file's headers: how many and where, never the names (in a
    headerless file they are the first row's data)."""
    where = f" on line {line}" if line is not None else ""
    return f"{count} header{'s' if count != 1 else ''} found{where}"


def _blank_cells(headers: Sequence[str]) -> pl.Expr:
    """Rows whose every cell is empty or whitespace: one rule for CSV and XLSX, so an empty
    row is skipped and counted (never quarantined in one format and dropped in the other)."""
    return pl.all_horizontal(
        pl.col(h).is_null() | (pl.col(h).cast(pl.String).str.strip_chars() == "") for h in headers
    )


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


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """An input that cannot be read: 66 when permission is denied, 74 on an I/O error."""
    try:
        yield
    except PermissionError as exc:
        raise InputMissingError(f"{path}: not_readable: permission denied") from exc
    except OSError as exc:
        raise InputReadError(f"{path}: read_error: {exc.strerror or type(exc).__name__}") from exc


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
    configured = codecs.lookup(encoding).name
    if configured.startswith(("utf-16", "utf-32")):
        # ASCII text in UTF-16 is valid UTF-8 byte for byte (NULs and all): no UTF-8 first
        return _decode_strict(data, configured, path, 0)
    head = data[:4096]
    if head.count(0) > len(head) // 4:
        raise FileRejectedError(
            str(path),
            "not_utf8",
            'the text is full of NUL bytes: UTF-16 without a BOM? set `encoding = "utf-16-le"`',
            line=1,
        )
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    if configured == "utf-8":
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


def _bare_cr_to_lf(buf: bytes, quote: str | None) -> bytes:
    """A CR not followed by LF, outside quotes, ends a line (old Mac exports, and CR-only
    stretches pasted into LF files); inside a quoted field it stays part of the text. The
    buffer keeps its length, so byte offsets stay valid."""
    data = np.frombuffer(buf, dtype=np.uint8)
    carriage = np.flatnonzero(data == 13)
    if carriage.size == 0:
        return buf
    following = data[np.minimum(carriage + 1, data.size - 1)]
    bare = carriage[(following != 10) | (carriage == data.size - 1)]
    if quote and bare.size:
        quotes = np.flatnonzero(data == ord(quote))
        bare = bare[np.searchsorted(quotes, bare) % 2 == 0]
    if bare.size == 0:
        return buf
    fixed = data.copy()
    fixed[bare] = 10
    return fixed.tobytes()


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


def _parse_record(
    text: str, delimiter: str, quote: str | None, path: Path, line: int | np.integer
) -> list[str]:
    """The cells of one record (a header or footer line; data rows go through polars)."""
    reader = csv.reader(
        [text],
        delimiter=delimiter,
        quotechar=quote or '"',
        quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
    )
    try:
        return next(reader, [])
    except csv.Error as exc:
        raise FileRejectedError(
            str(path), "csv_parse_error", f"a malformed record ({exc})", line=int(line)
        ) from exc


def _whitespace_to_csv(buf: bytes) -> bytes:
    """Space-aligned text (`delimiter = "whitespace"`): runs of blanks separate fields."""
    text = re.sub(rb"^[ \t]+|[ \t]+$", b"", buf, flags=re.MULTILINE)
    return re.sub(rb"[ \t]+", b",", text)


def read_csv_file(
    path: Path, options: ReadOptions, expected_headers: set[str], data: bytes
) -> RawFile:
    """Read a delimited text file into text cells; see the module docstring."""
    buf, encoding = decode_to_utf8(data, options.encoding, path)
    delimiter = options.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    quote: str | None = '"'
    buf = _bare_cr_to_lf(buf, quote if delimiter != "whitespace" else None)
    if delimiter == "whitespace":
        buf, delimiter, quote = _whitespace_to_csv(buf), ",", None
    first_line = buf.split(b"\n", 1)[0].strip()
    skip_first = False
    if re.fullmatch(rb"\"?sep=(.)\"?", first_line):
        delimiter = first_line.strip(b'"').decode()[4]
        skip_first = True
    if delimiter == "auto":
        head = buf[:SNIFF_BYTES].decode("utf-8", errors="ignore").split("\n")
        delimiter = choose_delimiter(head[1:] if skip_first else head, expected_headers)
    records = _split_records(buf, delimiter, quote, path)
    if skip_first:
        records = _Records(
            records.starts[1:], records.ends[1:], records.lines[1:], records.fields[1:]
        )
    nonblank = np.flatnonzero(records.fields > 0)
    if nonblank.size == 0:
        raise FileRejectedError(str(path), "empty_file", "the file holds no records")

    header_index, headers, blank_headers = _find_header(
        buf, records, nonblank, delimiter, quote, options, expected_headers, path
    )
    body = nonblank[nonblank > header_index] if header_index >= 0 else nonblank
    body, footer = _strip_footer(buf, records, body, options.footer, delimiter, quote, path)
    footer_rows = int(footer.size)
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
    blank = frame.select(_blank_cells(headers)).to_series()
    ragged_blank = [not _record_text(buf, records, i).strip() for i in ragged]
    ragged = ragged[~np.array(ragged_blank, dtype=bool)]
    last = int(body[-1]) if body.size else header_index
    empty_lines = int(np.count_nonzero(records.fields[header_index + 1 : last + 1] == 0))
    blank_rows = int(blank.sum()) + sum(ragged_blank) + empty_lines
    if blank_rows:
        frame = frame.filter(~blank)
    rejected = _rejected_frame(
        [int(records.lines[i]) for i in ragged],
        [_record_text(buf, records, i) for i in ragged],
        ["too_many_fields" if records.fields[i] > width else "missing_fields" for i in ragged],
        [f"{records.fields[i]} fields where the header has {width}" for i in ragged],
        str(path),
    )
    # a summary report's footer count never matches its rows: say what the file is first
    _reject_summary_rows(frame, headers, path)
    _check_footer_count(buf, records, footer, body.size, path)
    return RawFile(
        path,
        "csv",
        "",
        frame,
        headers,
        encoding,
        footer_rows,
        rejected,
        blank_headers=blank_headers,
        blank_rows=blank_rows,
    )


def _find_header(
    buf: bytes,
    records: _Records,
    nonblank: np.ndarray,
    delimiter: str,
    quote: str | None,
    options: ReadOptions,
    expected: set[str],
    path: Path,
) -> tuple[int, list[str], list[str]]:
    """The header record: the configured row, else the first of the first rows that holds every
    expected header (title rows above the header are common in CRM exports).

    Returns the record index (-1: no header), the header names and the names given to blank
    header cells.
    """
    if options.header_row == 0:
        width = int(records.fields[nonblank].max())
        return -1, [f"column_{i + 1}" for i in range(width)], []
    if options.header_row is not None:
        candidates = nonblank[records.lines[nonblank] == options.header_row]
        if candidates.size == 0:
            raise FileRejectedError(
                str(path),
                "header_not_found",
                f"no record starts on line {options.header_row} (header_row)",
            )
        index = int(candidates[0])
        line = int(records.lines[index])
        names = _parse_record(_record_text(buf, records, index), delimiter, quote, path, line)
        return index, *_header_names(names, path, line, options.duplicate_headers)
    search = [int(i) for i in nonblank[:HEADER_SEARCH_ROWS]]
    rows = [
        (
            int(records.lines[i]),
            _parse_record(_record_text(buf, records, i), delimiter, quote, path, records.lines[i]),
        )
        for i in search
    ]
    try:
        position = pick_header_row(rows, expected, path)
    except FileRejectedError:
        _check_other_delimiters(buf, records, search, delimiter, expected, path)
        raise
    line, names = rows[position]
    return search[position], *_header_names(names, path, line, options.duplicate_headers)


_OTHER_DELIMITERS = (",", ";", "\t", "|")


def _check_other_delimiters(
    buf: bytes,
    records: _Records,
    search: list[int],
    delimiter: str,
    expected: set[str],
    path: Path,
) -> None:
    """A header that only splits on another delimiter is a delimiter mismatch, said as such."""
    for other in _OTHER_DELIMITERS:
        if other == delimiter:
            continue
        for index in search:
            text = _record_text(buf, records, index)
            try:
                names = _parse_record(text, other, '"', path, records.lines[index])
            except FileRejectedError:
                continue
            if expected <= {normalise_header(n) for n in names}:
                raise FileRejectedError(
                    str(path),
                    "delimiter_mismatch",
                    f"the header splits on {other!r}, not on {delimiter!r}: set "
                    f"`delimiter = {'tab' if other == chr(9) else other!r}` (or a `sep=` line)",
                    line=int(records.lines[index]),
                )


def pick_header_row(
    rows: Sequence[tuple[int, Sequence[str]]], expected: set[str], path: Path
) -> int:
    """Position in `rows` ((line, cells) of the first rows) of the first row holding every
    expected header; without expectations, the first row.

    When no row has them all, the row with most of them (at least half) is the header and the
    file lacks columns (`missing_column`); otherwise no header is found (`header_not_found`).
    """
    if not expected:
        return 0
    found = [expected & {normalise_header(str(n)) for n in names} for _, names in rows]
    for position, have in enumerate(found):
        if have == expected:
            return position
    best = max(range(len(rows)), key=lambda p: len(found[p]))
    line, names = rows[best]
    missing = sorted(expected - found[best])
    filled = sum(1 for n in names if n is not None and str(n).strip())
    if 2 * len(found[best]) >= len(expected):
        raise FileRejectedError(
            str(path),
            "missing_column",
            f"the header lacks {', '.join(repr(m) for m in missing)} (needed by the mapping); "
            f"{headers_seen(filled, line)}",
            line=line,
            column=missing[0],
        )
    line, names = rows[0]
    raise FileRejectedError(
        str(path),
        "header_not_found",
        f"no header row among the first {HEADER_SEARCH_ROWS} rows has "
        f"{', '.join(repr(e) for e in sorted(expected))} (the first row has "
        f"{sum(1 for n in names if n is not None and str(n).strip())} filled cells)",
        line=line,
    )


def _header_names(
    names: Sequence[str], path: Path, line: int | np.integer, duplicates: str = "reject"
) -> tuple[list[str], list[str]]:
    """Clean header names and the names given to blank ones (`column_<i>`, by position).

    A repeated header is rejected, unless `duplicates` is "suffix" (Salesforce reports repeat
    a column they show twice): the second `Opportunity ID` becomes `Opportunity ID (2)`, the
    number chosen so that it names no other column of the file.
    """
    cleaned = [unicodedata.normalize("NFKC", n).replace("\ufeff", "").strip() for n in names]
    taken = {normalise_header(n) for n in cleaned if n}
    blanks = []
    seen: dict[str, int] = {}
    for i, name in enumerate(cleaned):
        if not name:
            cleaned[i] = f"column_{i + 1}"
            blanks.append(cleaned[i])
            continue
        key = normalise_header(name)
        if key in seen:
            if duplicates != "suffix":
                raise FileRejectedError(
                    str(path),
                    "duplicate_column",
                    f"header {name!r} appears at columns {seen[key] + 1} and {i + 1}",
                    line=int(line),
                    column=name,
                )
            number = 2
            while normalise_header(f"{name} ({number})") in taken | set(seen):
                number += 1
            cleaned[i] = f"{name} ({number})"
            key = normalise_header(cleaned[i])
        seen[key] = i
    return cleaned, blanks


def _strip_footer(
    buf: bytes,
    records: _Records,
    body: np.ndarray,
    rule: str,
    delimiter: str,
    quote: str | None,
    path: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Remove an export footer by rule; returns the remaining body and the footer records (whose
    stated counts the caller checks once the body is known to be records).

    Salesforce footers (`Grand Totals (N records)`, confidentiality, copyright) only count after a
    blank line, so a deal named "Total" inside the data stays data; N is checked against the rows.
    A trailing `合计`/`总计` row (rule auto or totals) or `Total` row (rule totals) is stripped too.
    """
    footer = body[:0]
    if rule == "none" or body.size == 0:
        return body, footer
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
    if body.size and rule in ("auto", "totals"):
        last = int(body[-1])
        cells = _parse_record(
            _record_text(buf, records, last), delimiter, quote, path, records.lines[last]
        )
        first = next((c.strip() for c in cells if c.strip()), "")
        pattern = _TOTALS_CELL if rule == "totals" else re.compile(r"^(合计|总计|總計|合計)")
        if pattern.match(first):
            footer = np.concatenate(([last], footer))
            body = body[:-1]
    return body, footer


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


def _reject_summary_rows(frame: pl.DataFrame, headers: list[str], path: Path) -> None:
    """Summary and matrix reports carry subtotal rows (their first filled cell says Subtotal /
    小计); only "details only" exports are records, so such a file is rejected whole."""
    if frame.height == 0 or not headers:
        return
    # one parallel pass finds no cell that could start a subtotal row: the usual case
    maybe = pl.any_horizontal(
        pl.col(h).cast(pl.String).str.contains(_SUBTOTAL_START).fill_null(False) for h in headers
    )
    if not frame.lazy().select(maybe.any()).collect().item():
        return
    cells = [pl.col(h).cast(pl.String).str.strip_chars().replace("", None) for h in headers]
    first = pl.coalesce(cells)
    hits = frame.filter(first.str.contains(_SUBTOTAL_PATTERN).fill_null(False))
    if hits.height:
        raise FileRejectedError(
            str(path),
            "not_details_only_export",
            f"{hits.height} subtotal row(s): a summary or matrix report; export it as "
            "'Details Only'",
            line=int(hits[SOURCE_LINE][0]),
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
        except pl.exceptions.PolarsError as exc:  # its text quotes the cell: name the type only
            raise FileRejectedError(
                str(path), "csv_parse_error", f"the records cannot be parsed ({type(exc).__name__})"
            ) from exc
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
_FORMULA_CELL = re.compile(rb"<c\b[^>]*(?<!/)>(?:(?!</c>).)*?<f\b(?:(?!</c>).)*</c>", re.DOTALL)
_SHEET_ENTRY = re.compile(rb"<(?:\w+:)?sheet\b([^>]*?)/?>")
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b([^>]*?)/?>")
_ATTRIBUTE = re.compile(rb'([\w:]+)="([^"]*)"')
# calamine allocates the dimension's cells up front: a lying dimension must not reach it
XLSX_MAX_CELLS = 200_000_000


@dataclass
class _SheetInfo:
    """What the container check learnt of the sheet to read."""

    name: str
    first_row: int
    excel_1904: bool


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _attributes(raw: bytes) -> dict[str, str]:
    return {
        key.decode().split(":")[-1]: unescape(value.decode(), {"&quot;": '"', "&apos;": "'"})
        for key, value in _ATTRIBUTE.findall(raw)
    }


def _sheet_parts(archive: zipfile.ZipFile, workbook: bytes) -> list[tuple[str, str, str]]:
    """(name, state, zip member) of every sheet, in workbook order, resolved through the
    workbook's relationships (sheet order and part numbers need not agree)."""
    rels_name = "xl/_rels/workbook.xml.rels"
    rels = archive.read(rels_name) if rels_name in archive.namelist() else b""
    targets = {}
    for match in _RELATIONSHIP.finditer(rels):
        attrs = _attributes(match.group(1))
        target = attrs.get("Target", "")
        targets[attrs.get("Id", "")] = (
            target.lstrip("/") if target.startswith("/") else ("xl/" + target)
        )
    sheets = []
    for match in _SHEET_ENTRY.finditer(workbook):
        attrs = _attributes(match.group(1))
        if "name" in attrs:
            member = targets.get(attrs.get("id", ""), "")
            sheets.append((attrs["name"], attrs.get("state", "visible"), member))
    return sheets


def _inspect_workbook(path: Path, data: bytes, sheet: str | None) -> _SheetInfo:
    """Check a workbook's container before any parser sees it, and choose the sheet: the
    configured one by name, else the first visible one (a hidden first sheet is not the data).

    Rejects zip bombs and dimensions too large to allocate (memory stays bounded), a sheet that
    fills Excel's 1,048,576 rows (the export was cut), XML entity declarations (billion laughs,
    XXE) and formula cells stored without a cached value (read as 0 otherwise).
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
        if "xl/workbook.xml" not in names:
            raise FileRejectedError(
                str(path), "unreadable_workbook", "no xl/workbook.xml: not an Excel workbook"
            )
        workbook = archive.read("xl/workbook.xml")
        excel_1904 = re.search(rb'date1904="(1|true)"', workbook) is not None
        sheets = _sheet_parts(archive, workbook)
        listed = ", ".join(repr(n) for n, _, _ in sheets)
        if sheet is not None:
            chosen = next((s for s in sheets if s[0] == sheet), None)
            if chosen is None:
                raise FileRejectedError(
                    str(path), "sheet_not_found", f"no sheet {sheet!r}; sheets: {listed}"
                )
        else:
            chosen = next((s for s in sheets if s[1] == "visible"), None)
            if chosen is None:
                raise FileRejectedError(
                    str(path), "sheet_not_found", f"no visible sheet; sheets: {listed}"
                )
        name, _, part = chosen
        if part not in names:
            raise FileRejectedError(
                str(path), "unreadable_workbook", f"sheet {name!r} has no part in the workbook"
            )
        sheet_xml = archive.read(part)
    first_row = 1
    dimension = _DIMENSION.search(sheet_xml[:4096])
    if dimension:
        first_row = int(dimension.group(2))
        if dimension.group(4):
            rows = int(dimension.group(4)) - first_row + 1
            columns = _column_number(dimension.group(3)) - _column_number(dimension.group(1)) + 1
            if rows * columns > XLSX_MAX_CELLS:
                raise FileRejectedError(
                    str(path),
                    "sheet_too_large",
                    f"sheet {name!r} claims {rows} rows x {columns} columns; refused before "
                    "reading",
                )
            if int(dimension.group(4)) >= EXCEL_MAX_ROWS:
                raise FileRejectedError(
                    str(path),
                    "possible_truncated_export",
                    f"sheet {name!r} reaches row 1,048,576, Excel's limit: the export was "
                    "probably cut; export as CSV",
                    line=EXCEL_MAX_ROWS,
                )
    row = _FIRST_ROW.search(sheet_xml)
    if row:
        first_row = int(row.group(1))
    for cell in _FORMULA_CELL.finditer(sheet_xml):
        if b"<v>" not in cell.group(0) and b"<v " not in cell.group(0):
            ref = re.search(rb'r="([A-Z]+)(\d+)"', cell.group(0))
            raise FileRejectedError(
                str(path),
                "formulas_without_values",
                f"formula cell {ref.group(1).decode() + ref.group(2).decode() if ref else '?'} "
                f"of sheet {name!r} has no cached value; open and save the workbook in Excel, "
                "or export values",
                line=int(ref.group(2)) if ref else None,
            )
    return _SheetInfo(name, first_row, excel_1904)


def read_xlsx_file(
    path: Path, options: ReadOptions, expected_headers: set[str], data: bytes
) -> RawFile:
    """Read one sheet of a workbook as text cells (header row detected or configured)."""
    import fastexcel

    info = _inspect_workbook(path, data, options.sheet)
    try:
        reader = fastexcel.read_excel(data)
        sheet = reader.load_sheet(info.name, header_row=None, dtypes="string")
    except Exception as exc:  # fastexcel raises its own error types for broken workbooks
        raise _unreadable(path, "unreadable_workbook", exc) from exc
    if sheet.total_height >= EXCEL_MAX_ROWS:
        raise FileRejectedError(
            str(path),
            "possible_truncated_export",
            "the sheet has 1,048,576 rows, Excel's limit: data may be cut",
        )
    first_row = info.first_row
    grid = sheet.to_polars()
    grid = grid.with_columns(pl.Series(SOURCE_LINE, np.arange(first_row, first_row + grid.height)))
    cells = grid.drop(SOURCE_LINE)
    blank = grid.select(_blank_cells(cells.columns)).to_series()
    nonblank = grid.filter(~blank)
    if nonblank.height == 0:
        raise FileRejectedError(str(path), "empty_file", "the sheet holds no rows")
    header_pos = _xlsx_header_position(nonblank, options, expected_headers, path)
    blank_headers: list[str] = []
    if header_pos < 0:
        headers = [f"column_{i + 1}" for i in range(len(cells.columns))]
        body = nonblank
    else:
        row = nonblank.row(header_pos)
        headers, blank_headers = _header_names(
            ["" if v is None else str(v) for v in row[:-1]],
            path,
            row[-1],
            options.duplicate_headers,
        )
        body = nonblank.slice(header_pos + 1)
    body = body.rename(dict(zip(cells.columns, headers, strict=True)))
    body, footer_rows = _strip_sheet_footer(body, headers, options.footer, path)
    frame = body.with_columns(pl.lit(str(path)).alias(SOURCE_FILE))
    _reject_summary_rows(frame, headers, path)
    lines = grid[SOURCE_LINE].filter(blank)
    first_line = nonblank[SOURCE_LINE][header_pos] if header_pos >= 0 else first_row - 1
    last_line = frame[SOURCE_LINE].max() if frame.height else first_line
    blank_rows = int(((lines > first_line) & (lines <= last_line)).sum())
    return RawFile(
        path,
        "xlsx",
        "",
        frame,
        headers,
        None,
        footer_rows,
        excel_1904=info.excel_1904,
        blank_headers=blank_headers,
        blank_rows=blank_rows,
    )


def _xlsx_header_position(
    rows: pl.DataFrame, options: ReadOptions, expected: set[str], path: Path
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
    candidates = [
        (int(row[-1]), ["" if v is None else str(v) for v in row[:-1]])
        for row in rows.head(HEADER_SEARCH_ROWS).iter_rows()
    ]
    return pick_header_row(candidates, expected, path)


_SHEET_FOOTER_CELL = (
    r"(?i)^(Grand Totals?\s*\(\d[\d,]*\s*records?\)|Confidential Information.*|"
    r"Copyright\s*(\(c\)|©).*|©.*salesforce.*)$"
)


def _strip_salesforce_sheet_footer(
    body: pl.DataFrame, headers: list[str], path: Path
) -> tuple[pl.DataFrame, int]:
    """Salesforce's footer in a workbook: trailing rows holding one cell, `Grand Totals (N
    records)`, the confidentiality or the copyright line (blank rows are already gone, so
    unlike in a CSV no blank line is required before them); N is checked against the rows."""
    cells = [pl.col(h).cast(pl.String).str.strip_chars().replace("", None) for h in headers]
    flags = body.select(
        (
            pl.coalesce(cells).str.contains(_SHEET_FOOTER_CELL).fill_null(False)
            & (pl.sum_horizontal(c.is_not_null().cast(pl.Int32) for c in cells) == 1)
        ).alias("footer")
    )["footer"].to_numpy()
    body_rows = flags.size - int(np.argmin(flags[::-1])) if not flags.all() else 0
    if body_rows == flags.size:
        return body, 0
    footer = body.slice(body_rows)
    text = footer.select(pl.coalesce(cells).alias("text"))["text"]
    for line, cell in zip(footer[SOURCE_LINE], text, strict=True):
        match = _RECORD_COUNT.search(cell or "")
        if match and int((match.group(1) or match.group(2)).replace(",", "")) != body_rows:
            raise FileRejectedError(
                str(path),
                "footer_count_mismatch",
                f"the footer states {match.group(1) or match.group(2)} records but the sheet "
                f"holds {body_rows}: truncated or edited export",
                line=int(line),
            )
    return body.slice(0, body_rows), footer.height


def _strip_sheet_footer(
    body: pl.DataFrame, headers: list[str], rule: str, path: Path
) -> tuple[pl.DataFrame, int]:
    """A trailing totals row (合计 / 总计, or Total with rule totals) is not a record, nor is
    Salesforce's footer (rules auto and salesforce)."""
    if rule == "none" or body.height == 0:
        return body, 0
    stripped = 0
    if rule in ("auto", "salesforce"):
        body, stripped = _strip_salesforce_sheet_footer(body, headers, path)
        if stripped or body.height == 0:
            return body, stripped
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
        raise _unreadable(path, "corrupt_parquet", exc) from exc
    headers = frame.columns
    frame = frame.with_columns(
        pl.lit(str(path)).alias(SOURCE_FILE),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(SOURCE_LINE),
    )
    return RawFile(path, "parquet", "", frame, headers)


# --- header samples: recognising an export without reading it --------------------------------

SNIFF_BYTES = 1 << 20
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class HeaderSample:
    """The first non-blank rows of a file as (line, cells): enough to tell which export it is.

    With `delimiter = "auto"` a text file's rows appear once per candidate delimiter, so a
    header matches however the file is split.
    """

    path: Path
    rows: tuple[tuple[int, tuple[str, ...]], ...]

    @property
    def header_line(self) -> int | None:
        """The line of the likeliest header row (the fullest of the first rows)."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda row: sum(1 for c in row[1] if c.strip()))[0]

    @property
    def headers(self) -> list[str]:
        """The likeliest header row's non-blank cells, for messages."""
        if not self.rows:
            return []
        _, cells = max(self.rows, key=lambda row: sum(1 for c in row[1] if c.strip()))
        return [c for c in cells if c.strip()]

    def holds(
        self, wanted: Iterable[str], absent: Iterable[str] = (), line: int | None = None
    ) -> bool:
        """Whether one row (the one on `line`, when given) has every `wanted` header and none
        of the `absent` ones (compared after normalise_header)."""
        need = {normalise_header(h) for h in wanted}
        refuse = {normalise_header(h) for h in absent}
        for at, cells in self.rows:
            if line is not None and at != line:
                continue
            have = {normalise_header(c) for c in cells}
            if need <= have and not refuse & have:
                return True
        return False


def choose_delimiter(lines: Sequence[str], expected: set[str]) -> str:
    """`delimiter = "auto"`: the candidate that splits one of the first lines into every
    expected header; failing that, the one that splits the first line into most fields."""
    best, best_fields = ",", 0
    for delimiter in CANDIDATE_DELIMITERS:
        rows = _split_lines(lines, delimiter)
        if expected and any(expected <= {normalise_header(c) for c in cells} for _, cells in rows):
            return delimiter
        fields = len(rows[0][1]) if rows else 0
        if fields > best_fields:
            best, best_fields = delimiter, fields
    return best


def _split_lines(lines: Sequence[str], delimiter: str) -> list[tuple[int, tuple[str, ...]]]:
    """(line, cells) of the first non-blank lines, each split on its own (a header does not
    span lines); a line the csv module cannot split is left out."""
    rows: list[tuple[int, tuple[str, ...]]] = []
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r")
        if not text.strip():
            continue
        try:
            cells = next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error:
            continue
        rows.append((number, tuple(cells)))
        if len(rows) >= HEADER_SEARCH_ROWS:
            break
    return rows


def _decode_head(head: bytes, encoding: str, final: bool, path: Path) -> str:
    """The start of a text file as text, by the rules of decode_to_utf8 (a BOM decides, then
    strict UTF-8, then the configured encoding); a sequence cut at the end is left out."""

    def decode(codec: str, data: bytes) -> str:
        try:
            return codecs.getincrementaldecoder(codec)("strict").decode(data, final)
        except UnicodeDecodeError as exc:
            raise FileRejectedError(
                str(path), "decode_error", f"byte offset {exc.start} is not valid {codec}"
            ) from exc

    for bom, bom_encoding in _BOMS:
        if head.startswith(bom):
            return decode(bom_encoding, head[len(bom) :])
    configured = codecs.lookup(encoding).name
    if configured.startswith(("utf-16", "utf-32")):
        return decode(configured, head)
    sample = head[:4096]
    if sample.count(0) > len(sample) // 4:
        raise FileRejectedError(
            str(path),
            "not_utf8",
            'the text is full of NUL bytes: UTF-16 without a BOM? set `encoding = "utf-16-le"`',
            line=1,
        )
    try:
        return codecs.getincrementaldecoder("utf-8")("strict").decode(head, final)
    except UnicodeDecodeError:
        return decode(configured, head)


def read_header_sample(path: Path, root: Path, options: ReadOptions) -> HeaderSample:
    """The first rows of one file (read_file's checks, not its work): which export is this?"""
    with reading(path):
        info = check_regular_file(path, root, options.max_file_bytes)
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    file_format = detect_format(path, head[:64])
    if file_format == "parquet":
        try:
            names = list(pl.read_parquet_schema(path))
        except Exception as exc:  # pyarrow/polars raise several types for corrupt files
            raise _unreadable(path, "corrupt_parquet", exc) from exc
        return HeaderSample(path, ((1, tuple(names)),))
    if file_format == "xlsx":
        return HeaderSample(path, _xlsx_head_rows(path, options))
    complete = info.st_size <= len(head)
    text = _decode_head(head, options.encoding, complete, path)
    if not complete and "\n" in text:
        text = text[: text.rindex("\n")]
    text = text.replace("\r\n", "\n")
    lines = (text if "\n" in text else text.replace("\r", "\n")).split("\n")
    delimiter = options.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    sep = re.fullmatch(r"\"?sep=(.)\"?", lines[0].strip()) if lines else None
    if sep:
        delimiter, lines = sep.group(1), ["", *lines[1:]]
    if delimiter == "whitespace":
        lines = [re.sub(r"[ \t]+", ",", line.strip()) for line in lines]
        delimiter = ","
    delimiters = CANDIDATE_DELIMITERS if delimiter == "auto" else (delimiter,)
    rows = tuple(row for d in delimiters for row in _split_lines(lines, d))
    return HeaderSample(path, rows)


def _xlsx_head_rows(path: Path, options: ReadOptions) -> tuple[tuple[int, tuple[str, ...]], ...]:
    import fastexcel

    data = path.read_bytes()
    info = _inspect_workbook(path, data, options.sheet)
    try:
        sheet = fastexcel.read_excel(data).load_sheet(
            info.name, header_row=None, n_rows=2 * HEADER_SEARCH_ROWS, dtypes="string"
        )
        grid = sheet.to_polars()
    except Exception as exc:  # fastexcel raises its own error types for broken workbooks
        raise _unreadable(path, "unreadable_workbook", exc) from exc
    rows = []
    for offset, cells in enumerate(grid.iter_rows()):
        texts = tuple("" if v is None else str(v) for v in cells)
        if any(t.strip() for t in texts):
            rows.append((info.first_row + offset, texts))
        if len(rows) >= HEADER_SEARCH_ROWS:
            break
    return tuple(rows)


# --- entry point --------------------------------------------------------------------------------


def input_name(path: Path, root: Path) -> str:
    """How outputs name an input file: relative to the input folder, so the same exports copied
    elsewhere give byte-identical outputs."""
    return Path(os.path.relpath(path, root)).as_posix()


def _unstable(path: Path) -> InputUnstableError:
    return InputUnstableError(
        f"{path}: input_unstable: the file changed while it was read; "
        "is the export still being written? retry later"
    )


def check_unchanged(stamps: dict[Path, tuple[int, int]]) -> None:
    """Refuse to publish results of files that changed after they were read (exit 75): an
    export still being written would otherwise be counted half-way."""
    for path, stamp in stamps.items():
        try:
            now = path.stat()
        except OSError as exc:
            raise _unstable(path) from exc
        if (now.st_size, now.st_mtime_ns) != stamp:
            raise _unstable(path)


def read_file(path: Path, root: Path, options: ReadOptions, expected_headers: set[str]) -> RawFile:
    """Check, read and hash one input file.

    The file is read once into memory; its size and modification time are compared before and
    after, so a file still being written is refused as unstable (retry later) rather than half read.
    """
    with reading(path):
        before = check_regular_file(path, root, options.max_file_bytes)
        data = path.read_bytes()
        after = path.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(
        data
    ) != after.st_size:
        raise _unstable(path)
    file_format = detect_format(path, data[:64])
    if file_format == "xlsx":
        raw = read_xlsx_file(path, options, expected_headers, data)
    elif file_format == "parquet":
        raw = read_parquet_file(path, data)
    else:
        raw = read_csv_file(path, options, expected_headers, data)
    reserved = [h for h in raw.headers if h in RESERVED_HEADERS]
    if reserved:
        raise FileRejectedError(
            str(path),
            "reserved_header",
            "crmkpi keeps its own bookkeeping under this name; rename the column in the "
            "export (or map it by position with header_row = 0)",
            column=reserved[0],
        )
    raw.sha256 = hashlib.sha256(data).hexdigest()
    raw.stamp = (after.st_size, after.st_mtime_ns)
    shown = pl.lit(input_name(path, root)).alias(SOURCE_FILE)
    raw.frame = raw.frame.with_columns(shown)
    raw.rejected = raw.rejected.with_columns(shown)
    return raw

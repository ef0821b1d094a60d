"""One test per case of RELIABILITY.md groups F, E, S, V, X and Q (plus R12), named by its id.

Every fixture is built by `tests/factory.py` from the one clean sample export (20 Salesforce-style
deals), with one fault applied. The row accounting is checked wherever rows are involved:
rows read = used + quarantined + footer + skipped + deduplicated.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.errors import (
    EXIT_BAD_CONFIG,
    EXIT_INPUT_MISSING,
    EXIT_INVALID_DATA,
    EXIT_RETRY_LATER,
    FileRejectedError,
    InputMissingError,
    InputUnstableError,
    InvalidDataError,
)
from crmkpi.load import LoadResult
from crmkpi.validate import LoadedTable
from tests import factory as fx

runner = CliRunner()


# --- helpers ------------------------------------------------------------------------------------


def loaded(result: LoadResult, table: str = "deals") -> LoadedTable:
    """The table, failing with the load failures when it did not load."""
    assert not result.failures, [str(f.error) for f in result.failures]
    return result.tables[table]


def rejection(result: LoadResult, table: str = "deals") -> FileRejectedError:
    """The one whole-file rejection of `table`."""
    errors = [f.error for f in result.failures if f.table == table]
    assert len(errors) == 1, [str(e) for e in errors]
    error = errors[0]
    assert isinstance(error, FileRejectedError), repr(error)
    return error


def assert_counts(table: LoadedTable, **expected: int) -> None:
    """The report's row figures, and that they reconcile."""
    report = table.report
    assert report.reconciles(), report
    actual = {name: getattr(report, name) for name in expected}
    assert actual == expected


def rejected_rows(table: LoadedTable) -> list[tuple[int, str | None, str]]:
    """(source_line, column, check) of every quarantined row."""
    frame = table.rejected.select("source_line", "column", "check")
    return [(int(line), column, check) for line, column, check in frame.iter_rows()]


def deals(**overrides: Any) -> dict[str, Any]:
    return fx.config_doc({"deals": fx.deals_table(**overrides)})


def line_of(row_index: int, header_line: int = 1) -> int:
    """Source line of data row `row_index` (0-based) in a file with one line per record."""
    return header_line + 1 + row_index


# --- F: files -----------------------------------------------------------------------------------


def test_F01_required_source_missing_exits_66(tmp_path: Path) -> None:
    fx.write_config(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = fx.load(tmp_path)
    errors = [f.error for f in result.failures]
    assert len(errors) == 1 and isinstance(errors[0], InputMissingError)
    assert "missing required input deals" in str(errors[0])

    run = runner.invoke(app, ["validate", str(tmp_path)])
    assert run.exit_code == EXIT_INPUT_MISSING
    assert "missing required input deals" in run.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_F02_zero_byte_file_rejected_empty_file(tmp_path: Path) -> None:
    (tmp_path / "deals.csv").write_bytes(b"")
    error = rejection(fx.load(tmp_path))
    assert error.check == "empty_file"
    assert error.path.endswith("deals.csv")

    fx.write_config(tmp_path)
    run = runner.invoke(app, ["validate", str(tmp_path)])
    assert run.exit_code == EXIT_INVALID_DATA
    assert "empty_file" in run.output


@pytest.mark.parametrize("allow_empty", [True, False])
def test_F03_header_only_file_ok_only_if_allowed(tmp_path: Path, allow_empty: bool) -> None:
    fx.write_csv(tmp_path / "deals.csv", rows=[])
    result = fx.load(tmp_path, deals(allow_empty=allow_empty))
    if allow_empty:
        table = loaded(result)
        assert table.frame.height == 0
        assert_counts(table, rows_read=0, rows_used=0, rows_quarantined=0)
    else:
        [failure] = result.failures
        assert isinstance(failure.error, InvalidDataError)
        assert failure.error.exit_code == EXIT_INVALID_DATA
        assert "no_rows" in str(failure.error)


@pytest.mark.parametrize(
    ("cut", "check", "line"),
    [
        ("mid_row", "truncated_last_record", line_of(9)),
        ("inside_quotes", "unterminated_quote", line_of(9)),
    ],
)
def test_F04_truncated_mid_row_rejected_with_line(
    tmp_path: Path, cut: str, check: str, line: int
) -> None:
    rows = fx.inject(fx.sample_rows(), 9, "Opportunity Name", "Deal, with a comma")
    path = fx.write_csv(tmp_path / "deals.csv", rows)
    if cut == "mid_row":
        fx.truncate_mid_row(path, 10)
    else:
        data = path.read_bytes()
        fx.truncate(path, data.index(b'"Deal, with') + 6)
    error = rejection(fx.load(tmp_path))
    assert (error.check, error.line) == (check, line)


def test_F05_truncated_on_a_row_boundary_caught_by_footer_count(tmp_path: Path) -> None:
    # a Salesforce export that lost its last 5 rows but kept its footer (edited or re-stitched)
    fx.write_csv(tmp_path / "deals.csv", fx.sample_rows()[:15], footer=fx.salesforce_footer(20))
    error = rejection(fx.load(tmp_path))
    assert error.check == "footer_count_mismatch"
    assert error.line == line_of(15) + 1  # after the data and one blank line
    # without a footer, the volume guard catches the extreme case: nothing left but the header
    (tmp_path / "deals.csv").unlink()
    fx.write_csv(tmp_path / "deals.csv", rows=[])
    [failure] = fx.load(tmp_path).failures
    assert "no_rows" in str(failure.error)


def test_F06_file_changing_while_read_is_unstable_exit_75(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fx.write_csv(tmp_path / "deals.csv")
    original = Path.read_bytes

    def read_while_growing(self: Path) -> bytes:
        data = original(self)
        if self.name == "deals.csv":
            with self.open("ab") as more:
                more.write(b"still,being,written\n")
        return data

    monkeypatch.setattr(Path, "read_bytes", read_while_growing)
    result = fx.load(tmp_path)
    [failure] = result.failures
    assert isinstance(failure.error, InputUnstableError)
    assert failure.error.exit_code == EXIT_RETRY_LATER
    assert "input_unstable" in str(failure.error)
    assert str(path) in str(failure.error)


def test_F07_identical_file_twice_read_once(tmp_path: Path) -> None:
    first = fx.write_csv(tmp_path / "deals_2024-03-01.csv")
    second = tmp_path / "deals_2024-03-01 (1).csv"
    second.write_bytes(first.read_bytes())
    table = loaded(fx.load(tmp_path, deals(file="deals_*.csv")))
    assert_counts(table, rows_read=20, rows_used=20, rows_deduplicated=0, rows_quarantined=0)
    # the first by name is read, the other noted as its duplicate
    original, duplicate = table.report.files
    assert {original.path, duplicate.path} == {first.name, second.name}
    assert original.duplicate_of is None and duplicate.duplicate_of == original.path
    assert original.sha256 == duplicate.sha256
    assert (original.rows_read, duplicate.rows_read) == (20, 0)
    [warning] = table.report.warnings
    assert "byte-identical" in warning and duplicate.path in warning


def test_F08_overlapping_exports_keep_the_last_file_by_name(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    fx.write_csv(tmp_path / "deals_2024-01.csv", rows[:12])
    # the February export repeats deals 8..11 with a newer stage, and adds 12..19
    updated = [dict(r, Stage="Closed Won", **{"Close Date": "3/1/2024"}) for r in rows[8:12]]
    fx.write_csv(tmp_path / "deals_2024-02.csv", updated + rows[12:])
    table = loaded(fx.load(tmp_path, deals(file="deals_*.csv")))
    assert_counts(table, rows_read=24, rows_used=20, rows_deduplicated=4, rows_quarantined=0)
    repeated = table.frame.filter(pl.col("deal_id").is_in([r["Opportunity ID"] for r in updated]))
    assert repeated["status"].to_list() == ["won"] * 4
    assert {Path(p).name for p in repeated["_source_file"]} == {"deals_2024-02.csv"}


def test_F08_rows_without_a_key_are_never_deduplicated(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    fx.write_csv(tmp_path / "deals_1.csv", fx.inject(rows[:10], 0, "Opportunity ID", ""))
    fx.write_csv(tmp_path / "deals_2.csv", fx.inject(rows[10:], 0, "Opportunity ID", ""))
    table = loaded(fx.load(tmp_path, deals(file="deals_*.csv")))
    assert_counts(table, rows_read=20, rows_used=18, rows_quarantined=2, rows_deduplicated=0)
    assert {check for _, _, check in rejected_rows(table)} == {"not_nullable"}


@pytest.mark.parametrize(
    ("name", "decoy"),
    [
        ("report[1].csv", "report1.csv"),
        ("report*.csv", "report_a.csv"),
        ("report?.csv", "reportA.csv"),
    ],
)
def test_F09_brackets_in_file_name_read_literally(tmp_path: Path, name: str, decoy: str) -> None:
    fx.write_csv(tmp_path / name)
    fx.write_csv(tmp_path / decoy, fx.sample_rows(25)[20:])
    table = loaded(fx.load(tmp_path, deals(file=name)))
    assert_counts(table, rows_read=20, rows_used=20)
    assert set(table.frame["_source_file"]) == {name}


@pytest.mark.parametrize("kind", ["symlink_outside", "dev_zero", "fifo", "directory"])
def test_F10_not_a_regular_file_inside_the_root(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "in"
    root.mkdir()
    target = root / "deals.csv"
    if kind == "symlink_outside":
        outside = fx.write_csv(tmp_path / "elsewhere.csv")
        target.symlink_to(outside)
        expected = "outside_root"
    elif kind == "dev_zero":
        target.symlink_to("/dev/zero")
        expected = "outside_root"
    elif kind == "fifo":
        os.mkfifo(target)
        expected = "not_regular_file"
    else:
        target.mkdir()
        expected = "not_regular_file"
    assert rejection(fx.load(root)).check == expected


@pytest.mark.parametrize("case", ["xlsx_as_csv", "csv_as_xlsx", "html_as_xls", "parquet_as_csv"])
def test_F11_format_mismatch_by_magic_bytes(tmp_path: Path, case: str) -> None:
    name = {"csv_as_xlsx": "deals.xlsx", "html_as_xls": "deals.xls"}.get(case, "deals.csv")
    target = tmp_path / name
    if case == "xlsx_as_csv":
        target.write_bytes(fx.write_xlsx(tmp_path / "real.xlsx").read_bytes())
    elif case == "csv_as_xlsx":
        fx.write_csv(target)
    elif case == "html_as_xls":
        target.write_text("<html><body><table><tr><td>Stage</td></tr></table></body></html>")
    else:
        target.write_bytes(fx.write_parquet(tmp_path / "real.parquet").read_bytes())
    error = rejection(fx.load(tmp_path, deals(file=name)))
    assert error.check == "format_mismatch"
    assert error.path == str(target)


def test_F12_too_large_rejected_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fx.write_csv(tmp_path / "deals.csv", fx.sample_rows(200))

    def never(self: Path) -> bytes:
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(Path, "read_bytes", never)
    error = rejection(fx.load(tmp_path, deals(max_file_mb=0.01)))
    assert error.check == "too_large"
    assert "max_file_mb" in error.reason


# --- E: encodings -------------------------------------------------------------------------------


def test_E01_utf8_bom_first_column_name_exact(tmp_path: Path) -> None:
    fx.write_csv(tmp_path / "deals.csv", bom=True)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=20)
    assert table.report.files[0].encoding == "utf-8"
    # the first header matched `Opportunity ID` exactly: no BOM glued to it
    assert table.frame["deal_id"].to_list() == [r["Opportunity ID"] for r in fx.sample_rows()]
    assert "\ufeffOpportunity ID" not in table.report.drift_columns


@pytest.mark.parametrize("configured", [True, False])
def test_E02_gb18030_needs_the_configured_encoding(tmp_path: Path, configured: bool) -> None:
    rows = fx.chinese_rows()
    fx.write_csv(tmp_path / "deals.csv", rows, encoding="gb18030")
    doc = deals(encoding="gb18030") if configured else deals()
    result = fx.load(tmp_path, doc)
    if configured:
        table = loaded(result)
        assert_counts(table, rows_read=20, rows_used=20)
        assert table.report.files[0].encoding == "gb18030"
        assert table.frame["rep"].to_list() == [r["Opportunity Owner"] for r in rows]
    else:
        error = rejection(result)
        assert error.check == "not_utf8"
        assert error.line == 2  # the first non-ASCII name is on the first data line


def test_E03_utf8_file_configured_as_gb18030_is_read_as_utf8(tmp_path: Path) -> None:
    rows = fx.chinese_rows()
    fx.write_csv(tmp_path / "deals.csv", rows, encoding="utf-8")
    table = loaded(fx.load(tmp_path, deals(encoding="gb18030")))
    assert table.report.files[0].encoding == "utf-8"
    assert table.frame["rep"].to_list() == [r["Opportunity Owner"] for r in rows]


@pytest.mark.parametrize(
    ("encoding", "names", "reps"),
    [
        ("big5", ["臺北業務經理續約", "客戶關係銷售機會"], ["張偉", "陳淑華", "黃志豪"]),
        ("shift_jis", ["東京本社更新案件", "株式会社山田商事"], ["田中太郎", "鈴木花子", "佐藤"]),
    ],
)
def test_E04_big5_or_shift_jis_read_as_gb18030_is_mojibake(
    tmp_path: Path, encoding: str, names: list[str], reps: list[str]
) -> None:
    rows = fx.with_text(fx.sample_rows(), names, reps)
    fx.write_csv(tmp_path / "deals.csv", rows, encoding=encoding)
    error = rejection(fx.load(tmp_path, deals(encoding="gb18030")))
    assert error.check in ("mojibake_suspected", "decode_error")
    assert error.check == "mojibake_suspected"


@pytest.mark.parametrize("text", ["chinese", "ascii"])
@pytest.mark.parametrize(
    ("bom", "configured", "ok"),
    [(True, None, True), (False, "utf-16-le", True), (False, None, False)],
)
def test_E05_utf16le_tab_delimited(
    tmp_path: Path, bom: bool, configured: str | None, ok: bool, text: str
) -> None:
    # ASCII-only UTF-16 without a BOM is valid UTF-8 byte for byte, NULs and all
    rows = fx.chinese_rows() if text == "chinese" else fx.sample_rows()
    fx.write_csv(
        tmp_path / "deals.txt", rows, encoding="utf-16-le", bom=bom, delimiter="\t", newline="\r\n"
    )
    options: dict[str, Any] = {"file": "deals.txt", "delimiter": "tab"}
    if configured:
        options["encoding"] = configured
    result = fx.load(tmp_path, deals(**options))
    if ok:
        table = loaded(result)
        assert_counts(table, rows_read=20, rows_used=20)
        assert table.frame["rep"].to_list() == [r["Opportunity Owner"] for r in rows]
        assert not table.frame["deal_id"].str.contains("\x00").any()
    else:
        error = rejection(result)
        assert error.check == "not_utf8"
        assert "utf-16" in error.reason


@pytest.mark.parametrize("configured", ["utf-8", "gb18030"])
def test_E06_mixed_encodings_rejected_at_the_line(tmp_path: Path, configured: str) -> None:
    rows = fx.chinese_rows()
    first = fx.csv_text(rows[:10]).encode("utf-8")
    rest = fx.csv_text(rows[10:]).split("\n", 1)[1].encode("gb18030")  # appended without header
    (tmp_path / "deals.csv").write_bytes(first + rest)
    error = rejection(fx.load(tmp_path, deals(encoding=configured)))
    assert error.check == ("not_utf8" if configured == "utf-8" else "decode_error")
    assert error.line == line_of(10)


def test_E07_control_characters_quarantined(tmp_path: Path) -> None:
    rows = fx.inject(fx.sample_rows(), 3, "Opportunity Owner", "Ann\x00Lee")
    rows = fx.inject(rows, 7, "Stage", "Closed\x07 Won")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=18, rows_quarantined=2)
    assert table.report.quarantined_by_check == {"control_char": 2}
    assert rejected_rows(table) == [
        (line_of(3), "rep", "control_char"),
        (line_of(7), "status; stage", "control_char; control_char"),
    ]


@pytest.mark.parametrize("configured", [True, False])
def test_E08_cp1252_salesforce_data_export(tmp_path: Path, configured: bool) -> None:
    rows = fx.with_text(
        fx.sample_rows(),
        ["Café rénovation", "Müller GmbH – Q3"],
        ["José Núñez", "Zoë Brontë", "Ann Lee"],
    )
    fx.write_csv(tmp_path / "deals.csv", rows, encoding="cp1252", newline="\r\n")
    result = fx.load(tmp_path, deals(encoding="cp1252") if configured else deals())
    if configured:
        table = loaded(result)
        assert_counts(table, rows_read=20, rows_used=20)
        assert table.frame["rep"].to_list() == [r["Opportunity Owner"] for r in rows]
    else:
        error = rejection(result)
        assert error.check == "not_utf8"
        assert error.line == 2


# --- S: structure -------------------------------------------------------------------------------


@pytest.mark.parametrize("error_row", [4, 19])
def test_S01_row_with_too_many_fields_quarantined_whole(tmp_path: Path, error_row: int) -> None:
    text = fx.csv_text().splitlines()
    text[error_row + 1] += ",extra,cells"
    fx.write_text(tmp_path / "deals.csv", "\n".join(text) + "\n")
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=19, rows_quarantined=1)
    assert rejected_rows(table) == [(line_of(error_row), None, "too_many_fields")]
    assert table.rejected["raw_record"][0] == text[error_row + 1]  # never truncated


def test_S02_row_with_too_few_fields_quarantined_not_null_filled(tmp_path: Path) -> None:
    text = fx.csv_text().splitlines()
    text[6] = text[6].rsplit(",", 2)[0]
    fx.write_text(tmp_path / "deals.csv", "\n".join(text) + "\n")
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=19, rows_quarantined=1)
    assert rejected_rows(table) == [(line_of(5), None, "missing_fields")]
    assert table.rejected["raw_record"][0] == text[6]


def test_S03_unterminated_quote_rejected_with_line(tmp_path: Path) -> None:
    text = fx.csv_text().splitlines()
    text[8] = text[8].replace("Deal 8", '"Deal 8', 1)
    fx.write_text(tmp_path / "deals.csv", "\n".join(text) + "\n")
    error = rejection(fx.load(tmp_path))
    assert (error.check, error.line) == ("unterminated_quote", line_of(7))


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_S04_quoted_newlines_keep_record_start_lines(tmp_path: Path, newline: str) -> None:
    rows = fx.inject(fx.sample_rows(), 2, "Opportunity Name", f"Deal 3{newline}second line")
    rows = fx.inject(rows, 4, "Opportunity Name", f"Deal 5{newline}{newline}after a blank line")
    rows = fx.inject(rows, 10, "Amount", "lots")
    fx.write_csv(tmp_path / "deals.csv", rows, newline=newline)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=19, rows_quarantined=1)
    # record 11 (data row 10) starts 3 lines later than without the quoted line breaks
    assert rejected_rows(table) == [(line_of(10) + 3, "amount", "unparseable_money")]
    lines = table.frame["_source_line"].to_list()
    assert lines[:6] == [2, 3, 4, 6, 7, 10]
    assert table.rejected["Opportunity Name"][0] == "Deal 11"


def test_S05_cr_only_line_endings(tmp_path: Path) -> None:
    fx.write_csv(tmp_path / "deals.csv", newline="\r")
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=20)
    assert table.frame["_source_line"].to_list() == list(range(2, 22))


@pytest.mark.parametrize(
    ("delimiter", "configured", "sep_line", "ok"),
    [
        (";", ";", False, True),
        ("\t", "tab", False, True),
        (";", None, True, True),
        ("|", None, True, True),
        (";", None, False, False),
        ("\t", None, False, False),
        (",", ";", False, False),
    ],
)
def test_S06_delimiter_configured_or_sep_line_else_mismatch(
    tmp_path: Path, delimiter: str, configured: str | None, sep_line: bool, ok: bool
) -> None:
    rows = fx.inject(fx.sample_rows(), 1, "Amount", "1,250.00")  # a comma inside a ';' file
    fx.write_csv(tmp_path / "deals.csv", rows, delimiter=delimiter, sep_line=sep_line)
    result = fx.load(tmp_path, deals(delimiter=configured) if configured else deals())
    if ok:
        table = loaded(result)
        assert_counts(table, rows_read=20, rows_used=20)
        assert table.frame["amount"][1] == 1250.0
        assert table.frame["_source_line"][0] == (3 if sep_line else 2)
    else:
        error = rejection(result)
        assert error.check == "delimiter_mismatch"
        assert error.line == 1


def test_S07_duplicate_header_rejected_naming_both_positions(tmp_path: Path) -> None:
    headers = [*fx.HEADERS, "Opportunity ID"]  # as in real Salesforce opportunity reports
    fx.write_csv(tmp_path / "deals.csv", headers=headers)
    error = rejection(fx.load(tmp_path))
    assert (error.check, error.line, error.column) == ("duplicate_column", 1, "Opportunity ID")
    assert "columns 1 and 11" in error.reason


@pytest.mark.parametrize("case", ["empty_column", "data_unmapped", "mapped_by_position"])
def test_S08_blank_header_cell(tmp_path: Path, case: str) -> None:
    headers = [*fx.HEADERS, ""]
    rows = fx.sample_rows()
    if case != "empty_column":
        rows = [dict(r, **{"": f"note {i}"}) for i, r in enumerate(rows)]
        rows[0][""] = ""
    fx.write_csv(tmp_path / "deals.csv", rows, headers=headers)
    table_options = fx.deals_table()
    if case == "mapped_by_position":
        table_options["columns"]["product"] = "column_11"
    result = fx.load(tmp_path, fx.config_doc({"deals": table_options}))
    if case == "data_unmapped":
        error = rejection(result)
        assert (error.check, error.column, error.line) == ("blank_header", "column_11", 3)
    else:
        table = loaded(result)
        assert_counts(table, rows_read=20, rows_used=20)
        if case == "mapped_by_position":
            assert table.frame["product"][1] == "note 1"
        else:
            assert table.report.drift_columns == ["Opportunity Name", "column_11"]


def test_S09_header_variants_match_after_nfkc_and_case(tmp_path: Path) -> None:
    variants = {
        "Opportunity ID": "  opportunity id ",
        "Stage": "STAGE",
        "Probability (%)": "Probability （%）",
        "Amount": "金额（元）",
        "Created Date": "*Created Date",  # an import template's required marker
    }
    rows = fx.rename(fx.sample_rows(), variants)
    headers = [variants.get(h, h) for h in fx.HEADERS] + ["Region Code"]
    fx.write_csv(tmp_path / "deals.csv", rows, headers=headers)
    table_options = fx.deals_table()
    table_options["columns"]["amount"] = "金额(元)"
    table = loaded(fx.load(tmp_path, fx.config_doc({"deals": table_options})))
    assert_counts(table, rows_read=20, rows_used=20)
    assert table.frame["amount"].sum() == sum(float(r["Amount"]) for r in fx.sample_rows())
    assert table.report.drift_columns == ["Opportunity Name", "Region Code"]


def _chinese_table() -> dict[str, Any]:
    options = fx.deals_table()
    columns = options["columns"]
    for name, spec in list(columns.items()):
        if isinstance(spec, str):
            columns[name] = fx.CHINESE_HEADERS[spec]
        else:
            columns[name] = dict(spec, **{"from": fx.CHINESE_HEADERS[spec["from"]]})
    return options


@pytest.mark.parametrize("mapping", ["chinese", "english"])
def test_S10_localised_headers_through_the_mapping(tmp_path: Path, mapping: str) -> None:
    rows = fx.rename(fx.chinese_rows(), fx.CHINESE_HEADERS)
    fx.write_csv(tmp_path / "deals.csv", rows, headers=list(fx.CHINESE_HEADERS.values()))
    options = _chinese_table() if mapping == "chinese" else fx.deals_table()
    result = fx.load(tmp_path, fx.config_doc({"deals": options}))
    if mapping == "chinese":
        table = loaded(result)
        assert_counts(table, rows_read=20, rows_used=20)
        assert table.frame["rep"][0] == "张伟"
    else:
        error = rejection(result)
        assert error.check == "header_not_found"
        for header in ("opportunity id", "stage", "created date"):
            assert repr(header) in error.reason


@pytest.mark.parametrize("file_format", ["xlsx", "csv"])
@pytest.mark.parametrize("titles", [2, 25])
def test_S11_title_rows_above_the_header(tmp_path: Path, file_format: str, titles: int) -> None:
    title_rows = ["商机列表", "导出时间: 2024-03-01 09:00"] + [
        f"备注 {i}" for i in range(titles - 2)
    ]
    if file_format == "xlsx":
        fx.write_xlsx(tmp_path / "deals.xlsx", title_rows=title_rows)
    else:
        fx.write_csv(tmp_path / "deals.csv", title_rows=title_rows)
    result = fx.load(tmp_path, deals(file=f"deals.{file_format}"))
    if titles < 20:
        table = loaded(result)
        assert_counts(table, rows_read=20, rows_used=20)
        assert table.frame["_source_line"][0] == titles + 2
    else:
        assert rejection(result).check == "header_not_found"


def test_S12_salesforce_footer_stripped_and_count_checked(tmp_path: Path) -> None:
    fx.write_csv(tmp_path / "deals.csv", footer=fx.salesforce_footer(20, blank_lines=2))
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=23, rows_used=20, footer_rows=3, rows_quarantined=0)
    assert table.report.files[0].footer_rows == 3
    assert "Grand Totals" not in " ".join(table.frame["deal_id"].to_list())


def test_S13_a_deal_named_total_inside_the_data_is_kept(tmp_path: Path) -> None:
    headers = ["Opportunity Name", *(h for h in fx.HEADERS if h != "Opportunity Name")]
    rows = fx.inject(fx.sample_rows(), 19, "Opportunity Name", "Total")
    rows = fx.inject(rows, 10, "Opportunity Name", "Grand Totals (3 records)")
    fx.write_csv(tmp_path / "deals.csv", rows, headers=headers, footer=fx.salesforce_footer(20))
    table = loaded(fx.load(tmp_path, deals(footer="auto")))
    assert_counts(table, rows_read=23, rows_used=20, footer_rows=3)
    assert table.frame["_source_line"][-1] == line_of(19)


def test_S14_summary_report_with_subtotals_rejected(tmp_path: Path) -> None:
    fx.write_text(tmp_path / "deals.csv", fx.summary_report(fx.sample_rows()))
    error = rejection(fx.load(tmp_path))
    assert error.check == "not_details_only_export"
    assert error.line == 2 + 5  # five Prospecting deals, then their subtotal


def test_S15_extra_column_ignored_and_reported_as_drift(tmp_path: Path) -> None:
    rows = [dict(r, **{"Next Step": "call back"}) for r in fx.sample_rows()]
    fx.write_csv(tmp_path / "deals.csv", rows, headers=[*fx.HEADERS, "Next Step"])
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=20)
    assert table.report.drift_columns == ["Next Step", "Opportunity Name"]
    assert "Next Step" not in table.frame.columns


@pytest.mark.parametrize("fault", ["missing", "renamed"])
def test_S16_required_column_missing_rejected_exit_65(tmp_path: Path, fault: str) -> None:
    headers = [h for h in fx.HEADERS if h != "Stage"]
    rows = fx.sample_rows()
    if fault == "renamed":
        headers.append("Sales Stage")
        rows = fx.rename(rows, {"Stage": "Sales Stage"})
    fx.write_csv(tmp_path / "deals.csv", rows, headers=headers)
    error = rejection(fx.load(tmp_path))
    assert (error.check, error.column, error.line) == ("missing_column", "stage", 1)
    fx.write_config(tmp_path)
    run = runner.invoke(app, ["validate", str(tmp_path)])
    assert run.exit_code == EXIT_INVALID_DATA
    assert "missing_column" in run.output


def test_S16_required_column_not_supplied_through_explicit_header_row(tmp_path: Path) -> None:
    headers = [h for h in fx.HEADERS if h != "Stage"]
    fx.write_csv(tmp_path / "deals.csv", headers=headers)
    error = rejection(fx.load(tmp_path, deals(header_row=1)))
    assert (error.check, error.column) == ("missing_column", "Stage")


def test_S17_reordered_columns_matched_by_name(tmp_path: Path) -> None:
    fx.write_csv(tmp_path / "clean.csv")
    fx.write_csv(tmp_path / "deals.csv", headers=list(reversed(fx.HEADERS)))
    reordered = loaded(fx.load(tmp_path))
    clean = loaded(fx.load(tmp_path, deals(file="clean.csv")))
    assert_counts(reordered, rows_read=20, rows_used=20)
    assert reordered.frame.drop("_source_file").equals(clean.frame.drop("_source_file"))


# --- V: values ----------------------------------------------------------------------------------


def _one_cell(tmp_path: Path, row: int, column: str, value: str, **table: Any) -> LoadedTable:
    """Load the sample with one cell changed; the table must load."""
    fx.write_csv(tmp_path / "deals.csv", fx.inject(fx.sample_rows(), row, column, value))
    return loaded(fx.load(tmp_path, deals(**table)))


def test_V01_bad_value_at_record_5000_quarantined_not_a_crash(tmp_path: Path) -> None:
    rows = fx.inject(fx.sample_rows(6000), 4999, "Amount", "x")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=6000, rows_used=5999, rows_quarantined=1)
    assert rejected_rows(table) == [(5001, "amount", "unparseable_money")]


@pytest.mark.parametrize(
    ("cell", "options", "expected"),
    [
        ("¥1,234.50", {"currency": "CNY"}, 1234.5),
        ("$1,234", {"currency": "USD"}, 1234.0),
        ("1 234,50 €", {"decimal": ",", "currency": "EUR"}, 1234.5),
        ("1.234,50", {"decimal": ","}, 1234.5),
        ("(1,000)", {}, "greater_than_or_equal_to(0)"),
        ("1.234,50", {}, "ambiguous_amount"),
        ("1,2345", {}, "ambiguous_amount"),
        ("1.2345", {"decimal": ","}, "ambiguous_amount"),
    ],
)
def test_V02_amount_formats_per_locale_or_ambiguous(
    tmp_path: Path, cell: str, options: dict[str, Any], expected: float | str
) -> None:
    rows = fx.sample_rows()
    if options.get("decimal") == ",":
        rows = [dict(r, Amount=r["Amount"].replace(".", ",")) for r in rows]
    fx.write_csv(tmp_path / "deals.csv", fx.inject(rows, 5, "Amount", cell))
    table = loaded(fx.load(tmp_path, deals(**options)))
    assert table.report.reconciles()
    if isinstance(expected, float):
        assert table.report.rows_used == 20
        assert table.frame["amount"][5] == expected
        assert table.frame["amount"][6] == 2500.0  # the other cells in the same locale
    else:
        assert rejected_rows(table) == [(line_of(5), "amount", expected)]


@pytest.mark.parametrize("configured", [None, "USD"])
def test_V03_mixed_currencies_never_summed(tmp_path: Path, configured: str | None) -> None:
    rows = [
        dict(r, Amount=("€" if i % 4 == 1 else "$") + r["Amount"])
        for i, r in enumerate(fx.sample_rows())
    ]
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path, deals(currency=configured) if configured else deals()))
    assert_counts(table, rows_read=20, rows_used=15, rows_quarantined=5)
    assert table.report.quarantined_by_check == {"currency_mismatch": 5}
    assert [line for line, _, _ in rejected_rows(table)] == [line_of(i) for i in (1, 5, 9, 13, 17)]


@pytest.mark.parametrize(
    ("cells", "scale", "expected"),
    [
        (["12.5%"] * 19 + ["12.5"], "auto", "ambiguous_percent"),
        (["0.125"] * 20, "auto", 0.125),
        (["12.5%"] * 20, "auto", 0.125),
        (["12.5"] * 20, "points", 0.125),
        (["0.125"] * 20, "fraction", 0.125),
        (["0.125"] * 19 + ["12.5"], "auto", "ambiguous_percent"),
    ],
)
def test_V04_percent_scale_per_column(
    tmp_path: Path, cells: list[str], scale: str, expected: float | str
) -> None:
    rows = [dict(r, **{"Probability (%)": c}) for r, c in zip(fx.sample_rows(), cells, strict=True)]
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path, deals(percent_scale=scale)))
    if isinstance(expected, str):
        assert_counts(table, rows_used=19, rows_quarantined=1)
        assert rejected_rows(table) == [(line_of(19), "probability", expected)]
    else:
        assert_counts(table, rows_used=20)
        assert table.frame["probability"].to_list() == [expected] * 20


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024/1/5", dt.datetime(2024, 1, 5)),
        ("2024-01-05 13:00", dt.datetime(2024, 1, 5, 13)),
        ("2024年1月5日", dt.datetime(2024, 1, 5)),
        ("05.01.2024 13h07", dt.datetime(2024, 1, 5, 13, 7)),  # the configured format
        ("5th of January", "unparseable_datetime"),
        ("2024-13-45", "unparseable_datetime"),
    ],
)
def test_V05_date_shapes_and_configured_formats(
    tmp_path: Path, cell: str, expected: dt.datetime | str
) -> None:
    table = _one_cell(tmp_path, 4, "Created Date", cell, date_format=["%d.%m.%Y %Hh%M"])
    if isinstance(expected, str):
        assert rejected_rows(table) == [(line_of(4), "created_at", expected)]
    else:
        assert_counts(table, rows_used=20)
        assert table.frame["created_at"][4] == expected


@pytest.mark.parametrize(
    ("dayfirst", "cells", "expected"),
    [
        (False, {3: "25/01/2024"}, ("date_contradicts_dayfirst", line_of(3))),
        (True, {3: "01/25/2024"}, ("date_contradicts_dayfirst", line_of(3))),
        (None, {3: "25/01/2024", 9: "01/25/2024"}, ("ambiguous_date", line_of(3))),
        (True, {3: "25/01/2024"}, dt.datetime(2024, 1, 25)),
        (None, {3: "25/01/2024"}, dt.datetime(2024, 1, 25)),
    ],
)
def test_V06_day_month_order_checked_per_column(
    tmp_path: Path,
    dayfirst: bool | None,
    cells: dict[int, str],
    expected: tuple[str, int] | dt.datetime,
) -> None:
    rows = fx.sample_rows()
    if dayfirst is not False:  # the other rows written day first
        rows = [
            dict(
                r,
                **{
                    "Created Date": f"{i % 28 + 1}/1/2024",
                    "Close Date": r["Close Date"] and f"{i % 28 + 1}/3/2024",
                },
            )
            for i, r in enumerate(rows)
        ]
    for row, cell in cells.items():
        rows = fx.inject(rows, row, "Created Date", cell)
    fx.write_csv(tmp_path / "deals.csv", rows)
    table_options = fx.deals_table(dayfirst=dayfirst)
    if dayfirst is None:
        del table_options["dayfirst"]
    result = fx.load(tmp_path, fx.config_doc({"deals": table_options}))
    if isinstance(expected, tuple):
        error = rejection(result)
        assert (error.check, error.line, error.column) == (*expected, "Created Date")
    else:
        table = loaded(result)
        assert_counts(table, rows_used=20)
        assert table.frame["created_at"][3] == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("45292", dt.datetime(2024, 1, 1)), ("45292.75", dt.datetime(2024, 1, 1, 18)), ("60", None)],
)
def test_V07_excel_serial_dates(tmp_path: Path, cell: str, expected: dt.datetime | None) -> None:
    table = _one_cell(tmp_path, 0, "Created Date", cell)
    if expected is None:
        assert rejected_rows(table) == [(line_of(0), "created_at", "excel_serial_60")]
    else:
        assert table.frame["created_at"][0] == expected


def test_V07_1904_workbook_honoured(tmp_path: Path) -> None:
    # G2: "Created Date" of the first deal as a bare serial; 43830 is 2024-01-01 in 1904 days
    fx.write_xlsx(tmp_path / "deals.xlsx", numbers={"G2": 43830}, date_1904=True)
    table = loaded(fx.load(tmp_path, deals(file="deals.xlsx")))
    assert_counts(table, rows_used=20)
    assert table.frame["created_at"][0] == dt.datetime(2024, 1, 1)


def test_V08_dst_ambiguous_and_nonexistent_local_times(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    rows = fx.inject(rows, 0, "Created Date", "11/3/2024 1:30 AM")  # occurs twice in New York
    rows = fx.inject(rows, 1, "Created Date", "3/10/2024 2:30 AM")  # never happens there
    rows = fx.inject(rows, 4, "Created Date", "3/10/2024 3:30 AM")  # EDT, UTC-4
    fx.write_csv(tmp_path / "deals.csv", rows)
    doc = deals(timezone="America/New_York")
    doc["settings"] = {"timezone": "UTC"}
    table = loaded(fx.load(tmp_path, doc))
    assert_counts(table, rows_read=20, rows_used=18, rows_quarantined=2)
    assert rejected_rows(table) == [
        (line_of(0), "created_at", "ambiguous_local_time"),
        (line_of(1), "created_at", "nonexistent_local_time"),
    ]
    assert table.frame["created_at"][2] == dt.datetime(2024, 3, 10, 7, 30)  # in business UTC


def test_V09_sentinel_dates_out_of_range(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    rows = fx.inject(rows, 2, "Close Date", "12/31/9999")
    rows = fx.inject(rows, 3, "Close Date", "1/1/1900")
    rows = fx.inject(rows, 4, "Created Date", "1/1/2099")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=17, rows_quarantined=3)
    assert table.report.quarantined_by_check == {"date_out_of_range": 3}


def test_V10_null_tokens_and_excel_error_literals(tmp_path: Path) -> None:
    nulls = ["N/A", "-", "—", "无", "null", "#N/A", ""]
    errors = ["#DIV/0!", "#VALUE!", "#REF!"]
    rows = fx.sample_rows()
    for i, token in enumerate(nulls + errors):
        rows = fx.inject(rows, i, "Amount", token)
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=17, rows_quarantined=3)
    assert table.frame["amount"].head(len(nulls)).is_null().all()
    assert rejected_rows(table) == [(line_of(i), "amount", "excel_error") for i in (7, 8, 9)]


def test_V11_nbsp_full_width_and_padding(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    rows = fx.inject(rows, 0, "Amount", "１２３")
    rows = fx.inject(rows, 1, "Amount", "\u00a01,234.50\u00a0")
    rows = fx.inject(rows, 2, "Amount", " 12 ")
    rows = fx.inject(rows, 3, "Opportunity Owner", "\u3000Ann\u00a0Lee ")
    rows = fx.inject(rows, 4, "Stage", " ＰＲＯＳＰＥＣＴＩＮＧ ")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_used=20)
    assert table.frame["amount"].head(3).to_list() == [123.0, 1234.5, 12.0]
    assert table.frame["rep"][3] == "Ann Lee"
    assert table.frame["status"][4] == "open"


def test_V12_ids_mangled_by_a_spreadsheet(tmp_path: Path) -> None:
    rows = [dict(r, **{"Account ID": f"000{12340 + i}"}) for i, r in enumerate(fx.sample_rows())]
    rows = fx.inject(rows, 5, "Account ID", "12345")  # was 00012345: leading zeros lost
    rows = fx.inject(rows, 7, "Opportunity ID", "1.23457E+17")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=18, rows_quarantined=2)
    assert rejected_rows(table) == [
        (line_of(5), "customer_id", "id_mangled_by_spreadsheet"),
        (line_of(7), "deal_id", "id_mangled_by_spreadsheet"),
    ]
    assert table.frame["customer_id"][0] == "00012340"


def test_V13_big_numbers_never_rounded(tmp_path: Path) -> None:
    rows = fx.inject(fx.sample_rows(), 3, "Amount", "12345678901234567890.12")
    rows = fx.inject(rows, 4, "Opportunity ID", "123456789012345678901234567890")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_used=19, rows_quarantined=1)
    assert rejected_rows(table) == [(line_of(3), "amount", "precision_loss")]
    assert "123456789012345678901234567890" in table.frame["deal_id"].to_list()


def test_V14_range_checks_quarantine_with_the_source_line(tmp_path: Path) -> None:
    rows = fx.inject(fx.sample_rows(), 6, "Amount", "-5.00")
    rows = fx.inject(rows, 13, "Probability (%)", "150")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=18, rows_quarantined=2)
    assert rejected_rows(table) == [
        (line_of(6), "amount", "greater_than_or_equal_to(0)"),
        (line_of(13), "probability", "less_than_or_equal_to(1)"),
    ]


def test_V15_duplicate_key_in_a_file_quarantines_every_copy(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    rows = fx.inject(rows, 12, "Opportunity ID", rows[3]["Opportunity ID"])
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=18, rows_quarantined=2)
    assert rejected_rows(table) == [
        (line_of(3), "deal_id", "field_uniqueness"),
        (line_of(12), "deal_id", "field_uniqueness"),
    ]


def test_V16_salesforce_15_and_18_char_ids_normalised(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    short = [dict(r, **{"Opportunity ID": r["Opportunity ID"][:15]}) for r in rows]
    fx.write_csv(tmp_path / "deals_1_report.csv", rows[:12])  # 18 characters (API, Data Loader)
    fx.write_csv(tmp_path / "deals_2_report.csv", short[8:])  # 15 characters (report export)
    options = fx.deals_table(file="deals_*.csv")
    options["columns"]["deal_id"] = {"from": "Opportunity ID", "parse": "salesforce_id"}
    table = loaded(fx.load(tmp_path, fx.config_doc({"deals": options})))
    assert_counts(table, rows_read=24, rows_used=20, rows_deduplicated=4)
    assert sorted(table.frame["deal_id"]) == sorted(r["Opportunity ID"] for r in rows)


def test_V16_salesforce_ids_stay_case_sensitive_and_checked(tmp_path: Path) -> None:
    rows = fx.sample_rows()
    rows = fx.inject(rows, 0, "Opportunity ID", "0065g00000abcDE")
    rows = fx.inject(rows, 1, "Opportunity ID", "0065g00000ABCde")  # same letters, other record
    rows = fx.inject(rows, 2, "Opportunity ID", rows[2]["Opportunity ID"].upper())
    rows = fx.inject(rows, 3, "Opportunity ID", "0065g00000abcDEx")
    fx.write_csv(tmp_path / "deals.csv", rows)
    options = fx.deals_table()
    options["columns"]["deal_id"] = {"from": "Opportunity ID", "parse": "salesforce_id"}
    table = loaded(fx.load(tmp_path, fx.config_doc({"deals": options})))
    assert_counts(table, rows_read=20, rows_used=18, rows_quarantined=2)
    assert table.frame["deal_id"].head(2).to_list() == [
        fx.sf_id18("0065g00000abcDE"),
        fx.sf_id18("0065g00000ABCde"),
    ]
    assert rejected_rows(table) == [
        (line_of(2), "deal_id", "salesforce_id_checksum"),
        (line_of(3), "deal_id", "not_salesforce_id"),
    ]


def test_V17_orphan_rep_kept_and_counted(tmp_path: Path) -> None:
    fx.write_csv(tmp_path / "deals.csv")
    fx.write_text(tmp_path / "reps.csv", "rep,team\nAnn Lee,East\nBo Chen,West\n")
    doc = fx.config_doc({"deals": fx.deals_table(), "reps": {"file": "reps.csv"}})
    result = fx.load(tmp_path, doc)
    table = loaded(result)
    assert_counts(table, rows_read=20, rows_used=20, rows_quarantined=0)
    # Cara Diaz owns every third deal and is not on the roster
    assert table.report.warnings_by_check == {"orphan_rep": 6}
    assert any(w.startswith("orphan_rep: 6 rows") for w in table.report.warnings)
    assert loaded(result, "reps").report.warnings_by_check == {}


def test_V18_new_picklist_value_quarantined_and_listed(tmp_path: Path) -> None:
    rows = fx.inject(fx.sample_rows(), 2, "Stage", "Closed Won - Renewal")
    rows = fx.inject(rows, 6, "Stage", "Closed Won - Renewal")
    rows = fx.inject(rows, 9, "Stage", "Verbal Commit")
    fx.write_csv(tmp_path / "deals.csv", rows)
    table = loaded(fx.load(tmp_path))
    assert_counts(table, rows_read=20, rows_used=17, rows_quarantined=3)
    assert table.report.quarantined_by_check == {"unmapped_value": 3}
    assert table.report.unmapped_values == {"status": ["Closed Won - Renewal", "Verbal Commit"]}
    # the amounts used plus the amounts quarantined are the export's total
    raw_total = sum(float(r["Amount"]) for r in rows)
    quarantined = table.rejected["Amount"].cast(pl.Float64).sum()
    assert table.frame["amount"].sum() + quarantined == pytest.approx(raw_total)


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_V19_formula_looking_text_kept_as_data(tmp_path: Path, file_format: str) -> None:
    texts = ['=HYPERLINK("http://example.com","x")', "@SUM(A1:A3)", "-2+3", "+1", "=1+1"]
    rows = fx.sample_rows()
    for i, text in enumerate(texts):
        rows = fx.inject(rows, i, "Opportunity Owner", text)
    if file_format == "csv":
        fx.write_csv(tmp_path / "deals.csv", rows)
    else:
        fx.write_xlsx(tmp_path / "deals.xlsx", rows)
    table = loaded(fx.load(tmp_path, deals(file=f"deals.{file_format}")))
    assert_counts(table, rows_used=20)
    assert table.frame["rep"].head(len(texts)).to_list() == texts


def test_V20_long_cell_truncated_with_marker_on_xlsx_output(tmp_path: Path) -> None:
    import json

    import fastexcel

    from crmkpi.workbook import MAX_CELL_CHARS, TRUNCATION_MARK

    owner = "Rep " + "x" * 40_000
    rows = fx.inject(fx.sample_rows(), 0, "Opportunity Owner", owner)
    fx.write_csv(tmp_path / "deals.csv", rows)
    fx.write_config(tmp_path, deals())
    out = tmp_path.with_name(tmp_path.name + "-out")  # outputs lie outside the input folder
    args = ["--out", str(out), "--by", "rep", "--metrics", "deals_created", "--format", "xlsx,csv"]
    result = runner.invoke(app, ["compute", str(tmp_path), *args])
    assert result.exit_code == 0, result.stderr
    reps = fastexcel.read_excel(out / "kpis.xlsx").load_sheet("rep").to_polars()["rep"]
    (cell,) = [r for r in reps.unique() if r.startswith("Rep x")]
    assert len(cell) == MAX_CELL_CHARS and cell.endswith(TRUNCATION_MARK)
    assert cell.startswith(owner[: MAX_CELL_CHARS - len(TRUNCATION_MARK)])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert any("truncated" in w and "kpis.xlsx" in w for w in manifest["warnings"])
    assert owner in set(pl.read_csv(out / "kpis.csv", infer_schema=False)["rep"])  # CSV: whole


# --- X: workbooks -------------------------------------------------------------------------------

_NOTES = [["Exported by the CRM"], ["Do not edit"]]


@pytest.mark.parametrize(
    ("sheet", "expected"),
    [("Opportunities", 20), (None, 20), ("Opportunity", "sheet_not_found")],
)
def test_X01_sheet_by_name_hidden_sheets_skipped(
    tmp_path: Path, sheet: str | None, expected: int | str
) -> None:
    fx.write_xlsx(
        tmp_path / "deals.xlsx",
        before={"Instructions": _NOTES},  # hidden, and first: not the data
        after={"Summary": [["Stage", "Amount"], ["Closed Won", "1"]]},
        hidden=["Instructions"],
    )
    options: dict[str, Any] = {"file": "deals.xlsx"}
    if sheet:
        options["sheet"] = sheet
    result = fx.load(tmp_path, deals(**options))
    if isinstance(expected, str):
        error = rejection(result)
        assert error.check == expected
        assert "'Opportunities'" in error.reason  # lists the sheets there are
    else:
        table = loaded(result)
        assert_counts(table, rows_read=expected, rows_used=expected)


def test_X01_sheet_order_need_not_follow_part_numbers(tmp_path: Path) -> None:
    path = fx.write_xlsx(tmp_path / "deals.xlsx", before={"Instructions": _NOTES})

    def swap(workbook: bytes) -> bytes:  # list the data sheet first, as Excel does on a move
        first = workbook.index(b"<sheet ")
        end = workbook.index(b"</sheets>")
        entries = workbook[first:end].split(b"/>")[:-1]
        return workbook[:first] + entries[1] + b"/>" + entries[0] + b"/>" + workbook[end:]

    fx.patch_xlsx(path, "xl/workbook.xml", swap)
    table = loaded(fx.load(tmp_path, deals(file="deals.xlsx")))
    assert_counts(table, rows_used=20)
    table = loaded(fx.load(tmp_path, deals(file="deals.xlsx", sheet="Opportunities")))
    assert_counts(table, rows_used=20)


def test_X02_formula_cells_without_cached_values_rejected(tmp_path: Path) -> None:
    path = fx.write_xlsx(tmp_path / "deals.xlsx", formulas={"E22": "SUM(E2:E21)"})
    fx.patch_xlsx(path, "xl/worksheets/sheet1.xml", fx.strip_cached_values)
    error = rejection(fx.load(tmp_path, deals(file="deals.xlsx")))
    assert error.check == "formulas_without_values"
    assert (error.line, "E22" in error.reason) == (22, True)


@pytest.mark.parametrize(
    ("label", "outcome"),
    [("合计", "stripped"), ("合计（共 20 条）", "stripped"), ("合计（共 21 条）", "mismatch")],
)
def test_X03_totals_row_stripped_and_count_checked(
    tmp_path: Path, label: str, outcome: str
) -> None:
    total = f"{sum(float(r['Amount']) for r in fx.sample_rows()):.2f}"
    fx.write_xlsx(tmp_path / "deals.xlsx", totals_row=[label, "", "", "", total])
    result = fx.load(tmp_path, deals(file="deals.xlsx"))
    if outcome == "stripped":
        table = loaded(result)
        assert_counts(table, rows_read=21, rows_used=20, footer_rows=1, rows_quarantined=0)
    else:
        error = rejection(result)
        assert (error.check, error.line) == ("footer_count_mismatch", 22)


@pytest.mark.parametrize("name", ["deals.xlsx", "deals.xls"])
def test_X04_encrypted_or_legacy_workbook_rejected(tmp_path: Path, name: str) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + b"EncryptedPackage"
    (tmp_path / name).write_bytes(ole)
    assert rejection(fx.load(tmp_path, deals(file=name))).check == "encrypted_or_legacy_format"


def _never_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastexcel

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the workbook reached the parser")

    monkeypatch.setattr(fastexcel, "read_excel", refuse)


@pytest.mark.parametrize("fault", ["zip_bomb", "full_dimension"])
def test_X05_zip_bomb_and_absurd_dimension_rejected_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    path = fx.write_xlsx(tmp_path / "deals.xlsx")
    if fault == "zip_bomb":
        padding = b" " * (20 * 1024 * 1024)  # 20 MB of blanks compress about 1000 to 1
        fx.patch_xlsx(
            path,
            "xl/worksheets/sheet1.xml",
            lambda xml: xml.replace(b"<sheetData>", padding + b"<sheetData>", 1),
        )
        expected = "zip_bomb_suspected"
    else:
        fx.patch_xlsx(path, "xl/worksheets/sheet1.xml", fx.full_dimension)
        expected = "sheet_too_large"
    _never_parse(monkeypatch)
    assert rejection(fx.load(tmp_path, deals(file="deals.xlsx"))).check == expected


@pytest.mark.parametrize(
    "member", ["xl/workbook.xml", "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"]
)
def test_X06_xml_entities_refused_without_expansion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, member: str
) -> None:
    path = fx.write_xlsx(tmp_path / "deals.xlsx")
    fx.patch_xlsx(path, member, fx.add_entities)
    _never_parse(monkeypatch)
    error = rejection(fx.load(tmp_path, deals(file="deals.xlsx")))
    assert error.check == "xml_entities"
    assert member in error.reason


def test_X07_sheet_filling_excel_row_limit_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a cell on the last row Excel has: the dimension says the sheet is full, data was cut
    path = fx.write_xlsx(tmp_path / "deals.xlsx")
    fx.write_xlsx(path, formulas=None, numbers={"A1048576": 1})
    _never_parse(monkeypatch)
    error = rejection(fx.load(tmp_path, deals(file="deals.xlsx")))
    assert (error.check, error.line) == ("possible_truncated_export", 1_048_576)


# --- Q: Parquet ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["truncated", "garbled_middle"])
def test_Q01_truncated_or_corrupt_parquet_rejected(tmp_path: Path, fault: str) -> None:
    path = fx.write_parquet(tmp_path / "deals.parquet")
    if fault == "truncated":
        fx.corrupt_parquet(path)
    else:
        data = bytearray(path.read_bytes())
        data[8 : len(data) - 8] = bytes(len(data) - 16)
        path.write_bytes(bytes(data))
    error = rejection(fx.load(tmp_path, deals(file="deals.parquet")))
    assert error.check == "corrupt_parquet"
    if fault == "truncated":
        assert "must end with PAR1" in error.reason


def test_Q02_schema_drift_between_parquet_files(tmp_path: Path) -> None:
    frame = fx.sample_frame().with_columns(
        pl.col("Account ID").str.slice(4).cast(pl.Int64),
        pl.col("Amount").cast(pl.Float64),
        pl.col("Created Date").str.to_datetime("%m/%d/%Y"),
    )
    fx.write_parquet(tmp_path / "deals_1.parquet", frame.head(10))
    later = frame.tail(10).with_columns(
        pl.col("Account ID").cast(pl.String),
        pl.col("Amount").cast(pl.String),
        pl.col("Created Date").dt.replace_time_zone("Asia/Shanghai"),
    )
    later = later.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("n/a-x"))
        .otherwise(pl.col("Amount"))
        .alias("Amount")
    )
    fx.write_parquet(tmp_path / "deals_2.parquet", later)
    table = loaded(fx.load(tmp_path, deals(file="deals_*.parquet")))
    assert_counts(table, rows_read=20, rows_used=19, rows_quarantined=1)
    assert rejected_rows(table) == [(4, "amount", "unparseable_money")]
    assert table.frame["customer_id"].to_list()[:2] == ["0", "1"]
    assert table.frame["customer_id"].to_list()[-1] == "19"
    # naive stays wall clock; Shanghai midnight is 16:00 UTC the day before
    assert table.frame["created_at"][0] == dt.datetime(2024, 1, 1)
    assert table.frame["created_at"][-1] == dt.datetime(2024, 1, 19, 16)
    drift = [w for w in table.report.warnings if w.startswith("schema_drift")]
    assert len(drift) == 3 and any("'Account ID'" in w for w in drift)


# --- R12 and configuration through the CLI ------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PANDERA_VALIDATION_ENABLED", "False"), ("PANDERA_VALIDATION_DEPTH", "SCHEMA_ONLY")],
)
def test_R12_validation_switched_off_refused_exit_78(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    fx.write_csv(tmp_path / "deals.csv")
    fx.write_config(tmp_path)
    monkeypatch.setenv(variable, value)
    run = runner.invoke(app, ["validate", str(tmp_path)])
    assert run.exit_code == EXIT_BAD_CONFIG
    assert variable in run.output


def test_bad_config_exits_78_naming_the_key(tmp_path: Path) -> None:
    fx.write_csv(tmp_path / "deals.csv")
    fx.write_config(tmp_path, deals(footer="sometimes"))
    run = runner.invoke(app, ["validate", str(tmp_path)])
    assert run.exit_code == EXIT_BAD_CONFIG
    assert "tables.deals.footer" in run.output


def test_clean_sample_exits_0(tmp_path: Path) -> None:
    fx.write_csv(tmp_path / "deals.csv")
    fx.write_config(tmp_path)
    run = runner.invoke(app, ["validate", str(tmp_path)])
    assert run.exit_code == 0, run.output


def test_V06_order_assumed_without_evidence_is_reported(tmp_path: Path) -> None:
    rows = [dict(r, **{"Created Date": "05/01/2024"}) for r in fx.sample_rows()]
    fx.write_csv(tmp_path / "deals.csv", rows)
    doc = deals()
    del doc["tables"]["deals"]["dayfirst"]
    table = loaded(fx.load(tmp_path, doc))
    assert table.frame["created_at"][0] == dt.datetime(2024, 5, 1)
    assert any(w.startswith("dayfirst_assumed: created_at") for w in table.report.warnings)

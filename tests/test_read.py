"""Units of crmkpi/io/read.py that the reliability cases do not pin down on their own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crmkpi.config import ReadOptions
from crmkpi.errors import FileRejectedError
from crmkpi.io.read import (
    RawFile,
    _split_records,
    decode_to_utf8,
    expand_patterns,
    normalise_header,
    pick_header_row,
    read_file,
)
from tests import factory as fx

EXPECTED = {normalise_header(h) for h in ("Opportunity ID", "Stage", "Created Date")}


def read(
    tmp_path: Path, name: str, data: bytes, expected: set[str] | None = None, **options: object
) -> RawFile:
    path = tmp_path / name
    path.write_bytes(data)
    return read_file(path, tmp_path, replace(ReadOptions(), **options), expected or set())


# --- record splitting ---------------------------------------------------------------------------


def test_split_records_quoted_newlines_and_crlf() -> None:
    buf = b'a,b,c\r\n1,"two\r\nlines",3\r\n\r\n4,"say ""hi""",6\r\n7,8\r\n'
    records = _split_records(buf, ",", '"', Path("x.csv"))
    texts = [buf[s:e] for s, e in zip(records.starts, records.ends, strict=True)]
    assert texts == [b"a,b,c", b'1,"two\r\nlines",3', b"", b'4,"say ""hi""",6', b"7,8"]
    assert records.lines.tolist() == [1, 2, 4, 5, 6]  # each record's first line
    assert records.fields.tolist() == [3, 3, 0, 3, 2]  # quoted delimiters do not count


def test_split_records_without_trailing_newline() -> None:
    records = _split_records(b"a,b\n1,2", ",", '"', Path("x.csv"))
    assert records.lines.tolist() == [1, 2]
    assert np.array_equal(records.ends, [3, 7])


def test_split_records_names_the_record_of_an_unterminated_quote() -> None:
    with pytest.raises(FileRejectedError) as caught:
        _split_records(b'a,b\n1,2\n3,"open\n4,5\n', ",", '"', Path("x.csv"))
    assert (caught.value.check, caught.value.line) == ("unterminated_quote", 3)


def test_quoted_newline_rows_keep_their_first_line(tmp_path: Path) -> None:
    raw = read(tmp_path, "d.csv", b'id,note\r\n1,"a\r\nb"\r\n2,c\r\n')
    assert raw.frame["note"].to_list() == ["a\r\nb", "c"]
    assert raw.frame["_source_line"].to_list() == [2, 4]


def test_cr_only_file_is_not_zero_rows(tmp_path: Path) -> None:
    raw = read(tmp_path, "d.csv", b"id,note\r1,a\r2,b\r")
    assert raw.frame["id"].to_list() == ["1", "2"]


# --- header detection ---------------------------------------------------------------------------


def test_header_found_below_title_rows(tmp_path: Path) -> None:
    text = fx.csv_text(title_rows=["Opportunity report", "Exported 2024-03-01", ""])
    raw = read(tmp_path, "d.csv", text.encode(), EXPECTED)
    assert raw.headers == fx.HEADERS
    assert raw.frame["_source_line"][0] == 5
    assert raw.frame.height == 20


def test_header_row_configured(tmp_path: Path) -> None:
    text = fx.csv_text(title_rows=["Opportunity report", "Opportunity ID,Stage"])
    raw = read(tmp_path, "d.csv", text.encode(), EXPECTED, header_row=3)
    assert raw.headers == fx.HEADERS


def test_header_row_zero_names_columns_by_position(tmp_path: Path) -> None:
    raw = read(tmp_path, "d.csv", b"1,open,100\n2,won,200\n", header_row=0)
    assert raw.headers == ["column_1", "column_2", "column_3"]
    assert raw.frame["column_2"].to_list() == ["open", "won"]
    assert raw.frame["_source_line"].to_list() == [1, 2]
    assert raw.blank_headers == []  # positional names are not blank header cells


def test_blank_header_cells_are_named_and_listed(tmp_path: Path) -> None:
    raw = read(tmp_path, "d.csv", b"id,,stage\n1,x,open\n")
    assert raw.headers == ["id", "column_2", "stage"]
    assert raw.blank_headers == ["column_2"]


def test_pick_header_row_most_matches_is_a_missing_column() -> None:
    rows = [(1, ["Report"]), (2, ["Opportunity ID", "Created Date", "Amount"])]
    with pytest.raises(FileRejectedError) as caught:
        pick_header_row(rows, EXPECTED, Path("x.csv"))
    assert (caught.value.check, caught.value.line, caught.value.column) == (
        "missing_column",
        2,
        "stage",
    )
    assert (
        pick_header_row(
            [(1, ["x"]), (2, ["Stage", "opportunity id", "CREATED DATE"])], EXPECTED, Path("x")
        )
        == 1
    )


# --- footers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "label", "stripped"),
    [
        ("auto", "合计", True),
        ("auto", "Total", False),
        ("totals", "Total", True),
        ("totals", "合计", True),
        ("none", "合计", False),
    ],
)
def test_totals_row_by_footer_rule(tmp_path: Path, rule: str, label: str, stripped: bool) -> None:
    data = b"name,amount\nA,1\nB,2\n" + f"{label},3\n".encode()
    raw = read(tmp_path, "d.csv", data, footer=rule)
    assert raw.footer_rows == (1 if stripped else 0)
    assert raw.frame.height == (2 if stripped else 3)
    assert raw.rows_read == 3


def test_salesforce_footer_only_after_a_blank_line(tmp_path: Path) -> None:
    footer = ['"Grand Totals (2 records)"', '"Confidential Information - Do Not Distribute"']
    with_blank = b"name,amount\nA,1\nB,2\n\n" + "\n".join(footer).encode() + b"\n"
    raw = read(tmp_path, "a.csv", with_blank)
    assert (raw.frame.height, raw.footer_rows) == (2, 2)
    without_blank = b"name,amount\nA,1\nB,2\n" + "\n".join(footer).encode() + b"\n"
    raw = read(tmp_path, "b.csv", without_blank)
    assert (raw.frame.height, raw.footer_rows, raw.rejected.height) == (2, 0, 2)


# --- delimiters ---------------------------------------------------------------------------------


def test_sep_line_sets_the_delimiter(tmp_path: Path) -> None:
    raw = read(tmp_path, "d.csv", b"sep=;\nname;amount\nA;1,5\n")
    assert raw.headers == ["name", "amount"]
    assert raw.frame["amount"].to_list() == ["1,5"]
    assert raw.frame["_source_line"].to_list() == [3]


def test_quoted_sep_line(tmp_path: Path) -> None:
    raw = read(tmp_path, "d.csv", b'"sep=|"\nname|amount\nA|1\n')
    assert raw.frame["amount"].to_list() == ["1"]


def test_whitespace_delimited_file(tmp_path: Path) -> None:
    data = b"  id   stage    amount\n  1    open     100\n  22   won      2000  \n"
    raw = read(tmp_path, "d.txt", data, delimiter="whitespace")
    assert raw.headers == ["id", "stage", "amount"]
    assert raw.frame["amount"].to_list() == ["100", "2000"]
    assert raw.frame["_source_line"].to_list() == [2, 3]


def test_tsv_suffix_defaults_to_tab(tmp_path: Path) -> None:
    raw = read(tmp_path, "d.tsv", b"name\tamount\nA, Inc.\t1\n")
    assert raw.frame["name"].to_list() == ["A, Inc."]


def test_semicolon_header_without_config_is_a_delimiter_mismatch(tmp_path: Path) -> None:
    text = fx.csv_text(delimiter=";")
    with pytest.raises(FileRejectedError) as caught:
        read(tmp_path, "d.csv", text.encode(), EXPECTED)
    assert (caught.value.check, caught.value.line) == ("delimiter_mismatch", 1)
    assert "';'" in caught.value.reason


# --- decoding -----------------------------------------------------------------------------------


def test_decode_bom_wins_over_configuration() -> None:
    data = "\ufeffname\n张伟\n".encode("utf-16-le")
    text, encoding = decode_to_utf8(data, "gb18030", Path("x.csv"))
    assert (text, encoding) == ("name\n张伟\n".encode(), "utf-16-le")


def test_decode_utf16_without_bom_is_refused_unless_configured() -> None:
    data = "name\nAnn\n".encode("utf-16-le")
    with pytest.raises(FileRejectedError) as caught:
        decode_to_utf8(data, "utf-8", Path("x.csv"))
    assert caught.value.check == "not_utf8"
    assert decode_to_utf8(data, "utf-16-le", Path("x.csv")) == (b"name\nAnn\n", "utf-16-le")


def test_decode_never_replaces_bytes() -> None:
    with pytest.raises(FileRejectedError) as caught:
        decode_to_utf8(b"name\nA\n\xff\xfe\xfd\n", "gb18030", Path("x.csv"))
    assert (caught.value.check, caught.value.line) == ("decode_error", 3)


# --- discovery ----------------------------------------------------------------------------------


def test_expand_patterns_literal_names_and_globs(tmp_path: Path) -> None:
    for name in ("report[1].csv", "report1.csv", "deals_b.csv", "deals_a.csv"):
        (tmp_path / name).write_text("x\n")
    assert [p.name for p in expand_patterns(tmp_path, ["report[1].csv"])] == ["report[1].csv"]
    assert [p.name for p in expand_patterns(tmp_path, ["deals_*.csv", "deals_a.csv"])] == [
        "deals_a.csv",
        "deals_b.csv",
    ]

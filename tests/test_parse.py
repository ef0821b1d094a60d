"""Unit tests of crmkpi.io.parse: every expected value below is worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkpi.io.parse import (
    DEFAULT_NULL_VALUES,
    EXCEL_ERROR_LITERALS,
    PARSE_KINDS,
    Parsed,
    ParseOptions,
    error_message,
    normalise_text,
    parse_series,
)

OUTPUT_DTYPES = {
    "text": pl.String,
    "id": pl.String,
    "money": pl.Float64,
    "percent": pl.Float64,
    "float": pl.Float64,
    "int": pl.Int64,
    "bool": pl.Boolean,
    "date": pl.Date,
    "datetime": pl.Datetime("us"),
    "duration": pl.Float64,
}


def parse(values: list[Any], kind: str, **options: Any) -> Parsed:
    return parse_series(pl.Series("col", values, dtype=pl.String), kind, ParseOptions(**options))


def one(value: str, kind: str, **options: Any) -> tuple[Any, str | None]:
    parsed = parse([value], kind, **options)
    return parsed.values[0], parsed.errors[0]


def assert_ok(value: str, kind: str, expected: Any, **options: Any) -> None:
    got, error = one(value, kind, **options)
    assert error is None, f"{value!r}: unexpected error {error}"
    if isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-12)
    else:
        assert got == expected


def assert_error(value: str, kind: str, code: str, **options: Any) -> None:
    got, error = one(value, kind, **options)
    assert (got, error) == (None, code)


# ------------------------------------------------------------------ normalise_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("１２３", "123"),  # full-width digits
        ("ＡＢＣ", "ABC"),  # full-width letters
        ("\u00a012\u00a0", "12"),  # NBSP padding
        ("\u3000x\u3000", "x"),  # ideographic space
        ("a\u2007b", "a b"),  # figure space inside
        ("a\u200bb", "ab"),  # zero-width space
        ("（备注）", "(备注)"),  # full-width brackets
        ("  keep  inner  ", "keep  inner"),
        ("N/A", None),
        (" n/a ", None),
        ("—", None),
        ("无", None),
        ("（空）", None),
        ("NULL", None),
        ("", None),
        ("   ", None),
        ("Na", "Na"),  # token match is exact, not case-insensitive
    ],
)
def test_normalise_text(raw: str, expected: str | None) -> None:
    out = normalise_text(pl.Series("c", [raw]), DEFAULT_NULL_VALUES)
    assert out.to_list() == [expected]
    assert out.name == "c"


def test_normalise_text_custom_tokens_and_nulls() -> None:
    out = normalise_text(pl.Series(["?", None, "N/A"]), frozenset({"?"}))
    assert out.to_list() == [None, None, "N/A"]


# ------------------------------------------------------------ rules for every kind


@pytest.mark.parametrize("kind", PARSE_KINDS)
@pytest.mark.parametrize("token", ["N/A", "-", "—", "无", "#N/A", "null", "", " ", "\u00a0"])
def test_null_tokens_are_missing_not_errors(kind: str, token: str) -> None:
    parsed = parse([token, None], kind)
    assert parsed.values.to_list() == [None, None]
    assert parsed.errors.to_list() == [None, None]


@pytest.mark.parametrize("kind", PARSE_KINDS)
@pytest.mark.parametrize("literal", sorted(EXCEL_ERROR_LITERALS))
def test_excel_error_literals(kind: str, literal: str) -> None:
    assert one(literal, kind) == (None, "excel_error")


@pytest.mark.parametrize("kind", PARSE_KINDS)
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x0b", "\x0c", "\x1b", "\x7f"])
def test_control_characters(kind: str, char: str) -> None:
    assert one(f"12{char}3", kind) == (None, "control_char")


@pytest.mark.parametrize("kind", PARSE_KINDS)
def test_output_dtype_length_order_and_name(kind: str) -> None:
    parsed = parse(["x", None, "y"], kind)
    assert parsed.values.dtype == OUTPUT_DTYPES[kind]
    assert parsed.errors.dtype == pl.String
    assert len(parsed.values) == len(parsed.errors) == 3
    assert parsed.values.name == "col"


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown parse kind"):
        parse(["1"], "currency")


@pytest.mark.parametrize(
    "options",
    [
        {"decimal": ";"},
        {"duration_unit": "weeks"},
        {"percent_scale": "basis_points"},
        {"business_timezone": "Mars/Olympus"},
        {"source_timezone": "Not/AZone"},
        {"date_min": date(2030, 1, 1), "date_max": date(2020, 1, 1)},
    ],
)
def test_bad_options_fail_early(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ParseOptions(**options)


# --------------------------------------------------------------------- text and id


def test_text_keeps_tabs_and_newlines_inside() -> None:
    parsed = parse(["line1\nline2", "a\tb", "x\r\ny", "  Acme  "], "text")
    assert parsed.values.to_list() == ["line1\nline2", "a\tb", "x\r\ny", "Acme"]
    assert parsed.errors.to_list() == [None] * 4


def test_text_control_char_row_only() -> None:
    parsed = parse(["ok", "bad\x01", "fine"], "text")
    assert parsed.values.to_list() == ["ok", None, "fine"]
    assert parsed.errors.to_list() == [None, "control_char", None]


@pytest.mark.parametrize("value", ["1.23457E+17", "1.2E+5", "1.2e+5", "4E+11", "1,23457E+17"])
def test_id_mangled_by_spreadsheet(value: str) -> None:
    assert_error(value, "id", "id_mangled_by_spreadsheet")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00123", "00123"),
        ("ABC-1E5X", "ABC-1E5X"),
        ("１２３", "123"),
        ("123456789012345678", "123456789012345678"),
    ],
)
def test_id_values(value: str, expected: str) -> None:
    assert_ok(value, "id", expected)


# -------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("value", "decimal", "expected"),
    [
        ("¥1,234.50", ".", 1234.5),
        ("￥1,234.50", ".", 1234.5),
        ("$1,234", ".", 1234.0),
        ("US$ 1,234", ".", 1234.0),
        ("€12", ".", 12.0),
        ("£1000", ".", 1000.0),
        ("1 234,50 €", ",", 1234.5),
        ("1.234,50 €", ",", 1234.5),
        ("1.234", ",", 1234.0),
        ("1,5", ",", 1.5),
        ("1.234.567,89", ",", 1234567.89),
        ("(1,000)", ".", -1000.0),
        ("$(1,000)", ".", -1000.0),
        ("-1,000", ".", -1000.0),
        ("-$5", ".", -5.0),
        ("$ -5", ".", -5.0),
        ("USD 12", ".", 12.0),
        ("usd12", ".", 12.0),
        ("12 CNY", ".", 12.0),
        ("RMB 12", ".", 12.0),
        ("12元", ".", 12.0),
        ("45k", ".", 45000.0),
        ("45K", ".", 45000.0),
        ("1.2M", ".", 1200000.0),
        ("2m", ".", 2000000.0),
        ("$1.5k", ".", 1500.0),
        ("3万", ".", 30000.0),
        ("12万元", ".", 120000.0),
        ("1.5亿", ".", 150000000.0),
        ("1,234,567.89", ".", 1234567.89),
        ("1 234 567", ".", 1234567.0),
        ("1'234.50", ".", 1234.5),
        ("0.5", ".", 0.5),
        (".5", ".", 0.5),
        ("１２３", ".", 123.0),
        ("\u00a012\u00a0", ".", 12.0),
        ("123456789012345", ".", 123456789012345.0),  # 15 significant digits: exact
        ("100000000000000000", ".", 1e17),  # 1 significant digit
    ],
)
def test_money_formats(value: str, decimal: str, expected: float) -> None:
    assert_ok(value, "money", expected, decimal=decimal)


@pytest.mark.parametrize(
    ("value", "decimal", "code"),
    [
        ("1,5", ".", "ambiguous_amount"),
        ("1.234,50", ".", "ambiguous_amount"),
        ("12,34", ".", "ambiguous_amount"),
        ("1,2345", ".", "ambiguous_amount"),
        ("1.5", ",", "ambiguous_amount"),
        ("1.2345", ",", "ambiguous_amount"),
        ("1,000-", ".", "unparseable_money"),
        ("abc", ".", "unparseable_money"),
        ("$", ".", "unparseable_money"),
        ("12 XYZ", ".", "unparseable_money"),
        ("(1,000", ".", "unparseable_money"),
        ("-(1,000)", ".", "unparseable_money"),
        ("$12 USD", ".", "unparseable_money"),
        ("12 apples", ".", "unparseable_money"),
        ("12345678901234567891", ".", "precision_loss"),
        ("1234567890123456", ".", "precision_loss"),
        ("$12,345,678,901,234.567", ".", "precision_loss"),
    ],
)
def test_money_errors(value: str, decimal: str, code: str) -> None:
    assert_error(value, "money", code, decimal=decimal)


def test_money_mixed_currencies_flag_the_minority() -> None:
    parsed = parse(["$10", "$20", "¥30", "40", "US$ 50"], "money")
    assert parsed.values.to_list() == [10.0, 20.0, None, 40.0, 50.0]
    assert parsed.errors.to_list() == [None, None, "currency_mismatch", None, None]


def test_money_currency_tie_goes_to_alphabetically_first_code() -> None:
    # one USD, one CNY: CNY < USD
    parsed = parse(["$1", "¥2"], "money")
    assert parsed.values.to_list() == [None, 2.0]
    assert parsed.errors.to_list() == ["currency_mismatch", None]


@pytest.mark.parametrize("configured", ["CNY", "RMB", "cny"])
def test_money_configured_currency_wins(configured: str) -> None:
    parsed = parse(["$1", "$2", "3元", "4"], "money", currency=configured)
    assert parsed.values.to_list() == [None, None, 3.0, 4.0]
    assert parsed.errors.to_list() == ["currency_mismatch", "currency_mismatch", None, None]


# -------------------------------------------------------------------------- float


@pytest.mark.parametrize(
    ("value", "decimal", "expected"),
    [
        ("1.5", ".", 1.5),
        ("-2", ".", -2.0),
        ("+3", ".", 3.0),
        ("1,234.5", ".", 1234.5),
        ("1 234.5", ".", 1234.5),
        ("1.234,5", ",", 1234.5),
        ("0,25", ",", 0.25),
        ("1e3", ".", 1000.0),
        ("2.5E-2", ".", 0.025),
        ("−4.5", ".", -4.5),  # U+2212 minus sign
        ("１２３", ".", 123.0),
    ],
)
def test_float_values(value: str, decimal: str, expected: float) -> None:
    assert_ok(value, "float", expected, decimal=decimal)


@pytest.mark.parametrize(
    ("value", "decimal", "code"),
    [
        ("abc", ".", "unparseable_float"),
        ("inf", ".", "unparseable_float"),
        ("nan", ".", "unparseable_float"),
        ("$5", ".", "unparseable_float"),
        ("1,5", ".", "ambiguous_number"),
        ("1.5", ",", "ambiguous_number"),
        ("3.14159265358979323846", ".", "precision_loss"),
    ],
)
def test_float_errors(value: str, decimal: str, code: str) -> None:
    assert_error(value, "float", code, decimal=decimal)


# ---------------------------------------------------------------------------- int


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        ("12.0", 12),
        ("12.000", 12),
        ("-7", -7),
        ("1,234", 1234),
        ("１２３", 123),
        ("9223372036854775807", 9223372036854775807),
        ("-9,223,372,036,854,775,808", -9223372036854775808),
    ],
)
def test_int_values(value: str, expected: int) -> None:
    assert_ok(value, "int", expected)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("12.5", "unparseable_int"),
        ("abc", "unparseable_int"),
        ("1e3", "unparseable_int"),
        ("1,5", "ambiguous_number"),
        ("9223372036854775808", "int_out_of_range"),
        ("99999999999999999999", "int_out_of_range"),
    ],
)
def test_int_errors(value: str, code: str) -> None:
    assert_error(value, "int", code)


# ------------------------------------------------------------------------ percent


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12.5%", 0.125), ("12.5 %", 0.125), ("-3%", -0.03), ("１００％", 1.0), ("0%", 0.0)],
)
def test_percent_with_sign(value: str, expected: float) -> None:
    assert_ok(value, "percent", expected)


def test_percent_mixed_marks_bare_numbers_ambiguous() -> None:
    parsed = parse(["12.5%", "0.125"], "percent")
    assert parsed.values.to_list() == [0.125, None]
    assert parsed.errors.to_list() == [None, "ambiguous_percent"]


@pytest.mark.parametrize(
    ("values", "values_read", "errors"),
    [
        # bare points beside bare fractions: the majority decides, the minority is ambiguous
        (["50", "0.5"], [0.5, None], [None, "ambiguous_percent"]),
        (["0.5", "0.25", "50"], [0.5, 0.25, None], [None, None, "ambiguous_percent"]),
        (["50", "20", "0", "1"], [0.5, 0.2, 0.0, 0.01], [None] * 4),
    ],
)
def test_percent_bare_points_and_fractions_mixed(
    values: list[str], values_read: list[float | None], errors: list[str | None]
) -> None:
    parsed = parse(values, "percent")
    assert parsed.errors.to_list() == errors
    assert parsed.values.to_list() == pytest.approx(values_read)


@pytest.mark.parametrize(
    ("values", "scale", "expected"),
    [
        (["0.5", "0.25", "1"], "auto", [0.5, 0.25, 1.0]),  # all in [0, 1]: fractions
        (["0.5"], "points", [0.005]),
        (["50"], "fraction", [50.0]),
        (["12.5%", "0.125"], "fraction", [0.125, 0.125]),
        (["12.5%", "12.5"], "points", [0.125, 0.125]),
    ],
)
def test_percent_bare_number_scale(values: list[str], scale: str, expected: list[float]) -> None:
    parsed = parse(values, "percent", percent_scale=scale)
    assert parsed.errors.to_list() == [None] * len(values)
    assert parsed.values.to_list() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "code"),
    [("abc", "unparseable_percent"), ("12%%", "unparseable_percent"), ("1,5%", "ambiguous_number")],
)
def test_percent_errors(value: str, code: str) -> None:
    assert_error(value, "percent", code)


# --------------------------------------------------------------------------- bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("y", True),
        ("Y", True),
        ("yes", True),
        ("YES", True),
        ("true", True),
        ("True", True),
        ("t", True),
        ("1", True),
        ("1.0", True),
        ("是", True),
        ("对", True),
        ("n", False),
        ("No", False),
        ("FALSE", False),
        ("f", False),
        ("0", False),
        ("0.0", False),
        ("否", False),
        ("错", False),
        ("ｙｅｓ", True),
    ],
)
def test_bool_values(value: str, expected: bool) -> None:
    assert one(value, "bool") == (expected, None)


@pytest.mark.parametrize("value", ["有", "maybe", "2", "yess", "on"])
def test_bool_errors(value: str) -> None:
    assert_error(value, "bool", "unparseable_bool")


def test_bool_none_word_is_null_token() -> None:
    assert one("无", "bool") == (None, None)


# --------------------------------------------------------------------- date/datetime

DT = datetime


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-05", DT(2024, 1, 5)),
        ("2024-01-05T13:00:00", DT(2024, 1, 5, 13)),
        ("2024-01-05 13:00", DT(2024, 1, 5, 13)),
        ("2024-01-05 13:00:00.250", DT(2024, 1, 5, 13, 0, 0, 250000)),
        ("2024-01-05T13:00:00.123456", DT(2024, 1, 5, 13, 0, 0, 123456)),
        ("2024-01-05T13:00:00Z", DT(2024, 1, 5, 13)),
        ("2024-01-05T13:00:00+08:00", DT(2024, 1, 5, 5)),
        ("2024-01-05T13:00:00+0800", DT(2024, 1, 5, 5)),
        ("2024-01-05T01:00:00-05:00", DT(2024, 1, 5, 6)),
        ("2024/1/5", DT(2024, 1, 5)),
        ("2024/01/05 13:00", DT(2024, 1, 5, 13)),
        ("2024年1月5日", DT(2024, 1, 5)),
        ("2024年1月5日 13:00", DT(2024, 1, 5, 13)),
        ("2024年1月5日 13时05分", DT(2024, 1, 5, 13, 5)),
        ("２０２４年１月５日", DT(2024, 1, 5)),
        ("2024.1.5", DT(2024, 1, 5)),
        ("3/15/2024 2:30 PM", DT(2024, 3, 15, 14, 30)),
        ("3/4/2025, 10:22 AM", DT(2025, 3, 4, 10, 22)),
        ("3/4/2025 12:05 AM", DT(2025, 3, 4, 0, 5)),
        ("3/4/2025 12:05 PM", DT(2025, 3, 4, 12, 5)),
        ("1-Jan-21", DT(2021, 1, 1)),
        ("01-Jan-2021", DT(2021, 1, 1)),
        ("Jan 5, 2024", DT(2024, 1, 5)),
        ("January 5, 2024", DT(2024, 1, 5)),
        ("5 Jan 2024", DT(2024, 1, 5)),
        ("20240105", DT(2024, 1, 5)),
        ("1704067200000", DT(2024, 1, 1)),  # epoch ms
        ("1704067200", DT(2024, 1, 1)),  # epoch s
        ("45292", DT(2024, 1, 1)),  # Excel serial
        ("45292.5", DT(2024, 1, 1, 12)),  # half a day
        ("45292.75", DT(2024, 1, 1, 18)),
    ],
)
def test_datetime_recognisers(value: str, expected: datetime) -> None:
    assert one(value, "datetime") == (expected, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-05", date(2024, 1, 5)),
        ("2024-01-05 13:00", date(2024, 1, 5)),
        ("2024-01-05 23:59:59", date(2024, 1, 5)),
        ("2024年1月5日", date(2024, 1, 5)),
        ("1-Jan-21", date(2021, 1, 1)),
        ("45292", date(2024, 1, 1)),
        ("45292.9", date(2024, 1, 1)),
        ("20240105", date(2024, 1, 5)),
    ],
)
def test_date_truncates_time(value: str, expected: date) -> None:
    assert one(value, "date") == (expected, None)


def test_epoch_ms_in_business_timezone() -> None:
    assert one("1704067200000", "datetime", business_timezone="Asia/Shanghai") == (
        DT(2024, 1, 1, 8),
        None,
    )
    assert one("1704067200", "datetime", business_timezone="Asia/Shanghai") == (
        DT(2024, 1, 1, 8),
        None,
    )


def test_offset_value_ignores_source_timezone() -> None:
    got = one(
        "2024-01-05T13:00:00Z",
        "datetime",
        source_timezone="America/New_York",
        business_timezone="Asia/Shanghai",
    )
    assert got == (DT(2024, 1, 5, 21), None)


def test_offset_value_moves_the_date() -> None:
    # 23:00 UTC is 07:00 next day in Shanghai
    assert one("2024-01-05T23:00:00Z", "date", business_timezone="Asia/Shanghai") == (
        date(2024, 1, 6),
        None,
    )


def test_naive_values_localised_from_source_timezone() -> None:
    parsed = parse(
        ["2024-07-01 12:00", "2024-01-01 12:00"],
        "datetime",
        source_timezone="America/New_York",
        business_timezone="UTC",
    )
    # EDT is UTC-4, EST is UTC-5
    assert parsed.values.to_list() == [DT(2024, 7, 1, 16), DT(2024, 1, 1, 17)]


def test_naive_values_without_source_timezone_are_business_time() -> None:
    assert one("2024-01-05 13:00", "datetime", business_timezone="Asia/Shanghai") == (
        DT(2024, 1, 5, 13),
        None,
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2024-03-10 02:30", "nonexistent_local_time"),
        ("2024-11-03 01:30", "ambiguous_local_time"),
    ],
)
def test_dst_gap_and_overlap(value: str, code: str) -> None:
    assert_error(value, "datetime", code, source_timezone="America/New_York")


def test_dst_rows_do_not_spoil_neighbours() -> None:
    parsed = parse(
        ["2024-03-10 01:30", "2024-03-10 02:30", "2024-03-10 03:30"],
        "datetime",
        source_timezone="America/New_York",
        business_timezone="America/New_York",
    )
    assert parsed.values.to_list() == [DT(2024, 3, 10, 1, 30), None, DT(2024, 3, 10, 3, 30)]
    assert parsed.errors.to_list() == [None, "nonexistent_local_time", None]


@pytest.mark.parametrize(
    ("value", "dayfirst", "expected"),
    [
        ("05/01/2024", True, date(2024, 1, 5)),
        ("05/01/2024", False, date(2024, 5, 1)),
        ("5-1-2024", True, date(2024, 1, 5)),
        ("5-1-2024", False, date(2024, 5, 1)),
        ("05.01.2024", True, date(2024, 1, 5)),
        ("05.01.2024", False, date(2024, 5, 1)),
        ("05/01/24", True, date(2024, 1, 5)),
    ],
)
def test_dayfirst_explicit(value: str, dayfirst: bool, expected: date) -> None:
    assert one(value, "date", dayfirst=dayfirst) == (expected, None)


def test_dayfirst_contradiction_is_per_row() -> None:
    parsed = parse(["05/01/2024", "13/01/2024"], "date", dayfirst=False)
    assert parsed.values.to_list() == [date(2024, 5, 1), None]
    assert parsed.errors.to_list() == [None, "date_contradicts_dayfirst"]
    parsed = parse(["05/01/2024", "01/13/2024"], "date", dayfirst=True)
    assert parsed.values.to_list() == [date(2024, 1, 5), None]
    assert parsed.errors.to_list() == [None, "date_contradicts_dayfirst"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # 13 can only be a day -> the whole column is day-first
        (["05/01/2024", "13/01/2024"], [date(2024, 1, 5), date(2024, 1, 13)]),
        # 13 can only be a day in second place -> month-first
        (["05/01/2024", "01/13/2024"], [date(2024, 5, 1), date(2024, 1, 13)]),
        # no evidence -> month-first
        (["05/01/2024", "02/03/2024"], [date(2024, 5, 1), date(2024, 2, 3)]),
    ],
)
def test_dayfirst_inferred_from_column(values: list[str], expected: list[date]) -> None:
    parsed = parse(values, "date")
    assert parsed.values.to_list() == expected
    assert parsed.errors.to_list() == [None] * len(values)


def test_dayfirst_conflicting_evidence_is_ambiguous() -> None:
    parsed = parse(["13/01/2024", "01/13/2024", "05/01/2024", "2024-02-03"], "date")
    assert parsed.values.to_list() == [None, None, None, date(2024, 2, 3)]
    assert parsed.errors.to_list() == ["ambiguous_date"] * 3 + [None]


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        ("45292", {}, date(2024, 1, 1)),
        ("61", {"date_min": date(1800, 1, 1)}, date(1900, 3, 1)),
        ("59", {"date_min": date(1800, 1, 1)}, date(1900, 2, 28)),  # shifted by one day
        ("1", {"date_min": date(1800, 1, 1)}, date(1900, 1, 1)),
        ("0", {"excel_1904": True, "date_min": date(1800, 1, 1)}, date(1904, 1, 1)),
        ("1", {"excel_1904": True, "date_min": date(1800, 1, 1)}, date(1904, 1, 2)),
        ("43830", {"excel_1904": True}, date(2024, 1, 1)),  # 45292 - 1462
    ],
)
def test_excel_serials(value: str, options: dict[str, Any], expected: date) -> None:
    assert one(value, "date", **options) == (expected, None)


def test_excel_serial_60_is_the_fake_leap_day() -> None:
    assert_error("60", "date", "excel_serial_60", date_min=date(1800, 1, 1))
    assert_error("60.5", "datetime", "excel_serial_60", date_min=date(1800, 1, 1))


@pytest.mark.parametrize("kind", ["date", "datetime"])
@pytest.mark.parametrize("value", ["1900-01-01", "9999-12-31", "2099-06-30", "1979-12-31", "100"])
def test_placeholder_dates_out_of_range(kind: str, value: str) -> None:
    assert_error(value, kind, "date_out_of_range")


def test_date_range_edges_are_inclusive() -> None:
    parsed = parse(["1980-01-01", "2079-12-31"], "date")
    assert parsed.values.to_list() == [date(1980, 1, 1), date(2079, 12, 31)]


@pytest.mark.parametrize(
    "value",
    ["abc", "2024-02-30", "2024-13-01", "2024-01-05 25:00", "2024-01-05 13:00 PM", "32 Foo 2024"],
)
def test_unparseable_dates(value: str) -> None:
    assert_error(value, "date", "unparseable_date")
    assert_error(value, "datetime", "unparseable_datetime")


def test_date_formats_are_tried_first() -> None:
    # the built-in reader would take 01/02/2024 month-first; the configured format says otherwise
    parsed = parse(["01/02/2024", "2024-03-04"], "date", date_formats=("%d/%m/%Y",))
    assert parsed.values.to_list() == [date(2024, 2, 1), date(2024, 3, 4)]
    assert parsed.errors.to_list() == [None, None]


def test_date_formats_custom_separator() -> None:
    assert one("05|01|2024 07h30", "datetime", date_formats=("%d|%m|%Y %Hh%M",)) == (
        DT(2024, 1, 5, 7, 30),
        None,
    )


# ---------------------------------------------------------------------- duration


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("0:03:45", "seconds", 225.0),
        ("1:02:03", "seconds", 3723.0),
        ("12:03:45", "seconds", 43425.0),
        ("3:45", "seconds", 225.0),
        ("1:02:03.5", "seconds", 3723.5),
        ("225", "seconds", 225.0),
        ("225.5", "seconds", 225.5),
        ("1.5", "hours", 5400.0),
        ("2", "minutes", 120.0),
        ("1", "days", 86400.0),
        ("0", "seconds", 0.0),
        ("1h 30m", "seconds", 5400.0),
        ("3分45秒", "seconds", 225.0),
        ("90 min", "seconds", 5400.0),
    ],
)
def test_duration_values(value: str, unit: str, expected: float) -> None:
    assert_ok(value, "duration", expected, duration_unit=unit)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("-5", "negative_duration"),
        ("-0:03:45", "negative_duration"),
        ("abc", "unparseable_duration"),
        ("1:75:00", "unparseable_duration"),
        ("3:99", "unparseable_duration"),
    ],
)
def test_duration_errors(value: str, code: str) -> None:
    assert_error(value, "duration", code)


# ------------------------------------------------------------------ typed input


def test_typed_int_into_money() -> None:
    parsed = parse_series(pl.Series("amount", [1234, None, -5]), "money")
    assert parsed.values.dtype == pl.Float64
    assert parsed.values.to_list() == [1234.0, None, -5.0]
    assert parsed.errors.to_list() == [None, None, None]


def test_typed_int_into_money_keeps_precision_rule() -> None:
    parsed = parse_series(pl.Series([12345678901234567]), "money", ParseOptions(decimal=","))
    assert parsed.values.to_list() == [None]
    assert parsed.errors.to_list() == ["precision_loss"]


def test_typed_float_into_float_inf_is_error_nan_is_missing() -> None:
    parsed = parse_series(pl.Series([1.5, float("nan"), float("inf"), None]), "float")
    assert parsed.values.to_list() == [1.5, None, None, None]
    assert parsed.errors.to_list() == [None, None, "unparseable_float", None]


def test_typed_tz_aware_datetime_into_datetime() -> None:
    utc = pl.Series([datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("UTC"))])
    new_york = utc.dt.convert_time_zone("America/New_York")
    for series in (utc, new_york):
        parsed = parse_series(series, "datetime", ParseOptions(business_timezone="Asia/Shanghai"))
        assert parsed.values.dtype == pl.Datetime("us")
        assert parsed.values.to_list() == [DT(2024, 1, 1, 20)]
        assert parsed.errors.to_list() == [None]


def test_typed_naive_datetime_uses_source_timezone() -> None:
    series = pl.Series([datetime(2024, 3, 10, 2, 30), datetime(2024, 1, 1, 0, 0)])
    parsed = parse_series(series, "datetime", ParseOptions(source_timezone="America/New_York"))
    assert parsed.values.to_list() == [None, DT(2024, 1, 1, 5)]
    assert parsed.errors.to_list() == ["nonexistent_local_time", None]


def test_typed_date_into_datetime_and_range() -> None:
    parsed = parse_series(pl.Series([date(2024, 1, 1), date(1900, 1, 1)]), "datetime")
    assert parsed.values.to_list() == [DT(2024, 1, 1), None]
    assert parsed.errors.to_list() == [None, "date_out_of_range"]


def test_typed_datetime_into_date() -> None:
    parsed = parse_series(pl.Series([datetime(2024, 1, 5, 23, 30)]), "date")
    assert parsed.values.to_list() == [date(2024, 1, 5)]


@pytest.mark.parametrize(
    ("values", "expected", "errors"),
    [
        ([1.0, 0.0, 2.0, None], [True, False, None, None], [None, None, "unparseable_bool", None]),
        ([1, 0], [True, False], [None, None]),
    ],
)
def test_typed_numeric_into_bool(
    values: list[Any], expected: list[Any], errors: list[str | None]
) -> None:
    parsed = parse_series(pl.Series(values), "bool")
    assert parsed.values.to_list() == expected
    assert parsed.errors.to_list() == errors


def test_typed_bool_into_bool_and_into_money() -> None:
    assert parse_series(pl.Series([True, None]), "bool").values.to_list() == [True, None]
    parsed = parse_series(pl.Series([True]), "money")
    assert (parsed.values[0], parsed.errors[0]) == (None, "unparseable_money")


def test_typed_float_into_int() -> None:
    parsed = parse_series(pl.Series([12.0, 12.5, 1e30, None]), "int")
    assert parsed.values.to_list() == [12, None, None, None]
    assert parsed.errors.to_list() == [None, "unparseable_int", "int_out_of_range", None]


def test_typed_uint64_beyond_int64() -> None:
    parsed = parse_series(pl.Series([2**63 + 5, 3], dtype=pl.UInt64), "int")
    assert parsed.values.to_list() == [None, 3]
    assert parsed.errors.to_list() == ["int_out_of_range", None]


def test_typed_numbers_into_percent_and_duration() -> None:
    assert parse_series(pl.Series([50, 20]), "percent").values.to_list() == [0.5, 0.2]
    assert parse_series(pl.Series([0.5, 0.2]), "percent").values.to_list() == [0.5, 0.2]
    minutes = parse_series(
        pl.Series([1.5, -1.0]), "duration", ParseOptions(duration_unit="minutes")
    )
    assert minutes.values.to_list() == [90.0, None]
    assert minutes.errors.to_list() == [None, "negative_duration"]
    spans = parse_series(pl.Series([timedelta(minutes=2)]), "duration")
    assert spans.values.to_list() == [120.0]


def test_typed_ints_into_date_use_the_text_recognisers() -> None:
    parsed = parse_series(pl.Series([45292, 20240105]), "date")
    assert parsed.values.to_list() == [date(2024, 1, 1), date(2024, 1, 5)]


def test_typed_float_ids() -> None:
    parsed = parse_series(pl.Series([12345.0, 1.2345678901234567e17]), "id")
    assert parsed.values.to_list() == ["12345", None]
    assert parsed.errors.to_list() == [None, "precision_loss"]


def test_typed_null_column() -> None:
    parsed = parse_series(pl.Series("x", [None, None]), "money")
    assert parsed.values.dtype == pl.Float64
    assert parsed.values.to_list() == [None, None]
    assert parsed.errors.to_list() == [None, None]


def test_typed_categorical_is_parsed_as_text() -> None:
    parsed = parse_series(pl.Series(["1,234", "N/A"], dtype=pl.Categorical), "int")
    assert parsed.values.to_list() == [1234, None]
    assert parsed.errors.to_list() == [None, None]


# ---------------------------------------------------------------- error messages

CORPUS = [
    "#DIV/0!",
    "a\x01",
    "1.23457E+17",
    "abc",
    "1,5",
    "1.234,50",
    "$5",
    "¥5",
    "¥6",
    "12345678901234567891",
    "99999999999999999999",
    "12.5",
    "12.5%",
    "0.125",
    "maybe",
    "2024-02-30",
    "13/01/2024",
    "01/13/2024",
    "60",
    "1900-01-01",
    "-5",
    "2024-03-10 02:30",
    "2024-11-03 01:30",
]


def test_every_produced_error_code_has_a_message() -> None:
    produced: set[str] = set()
    for kind in PARSE_KINDS:
        for options in (
            ParseOptions(),
            ParseOptions(dayfirst=True, source_timezone="America/New_York"),
        ):
            errors = parse_series(pl.Series(CORPUS), kind, options).errors
            produced |= set(errors.drop_nulls().to_list())
    assert {
        "excel_error",
        "control_char",
        "id_mangled_by_spreadsheet",
        "unparseable_money",
        "ambiguous_amount",
        "currency_mismatch",
        "precision_loss",
        "unparseable_float",
        "ambiguous_number",
        "unparseable_int",
        "int_out_of_range",
        "unparseable_percent",
        "ambiguous_percent",
        "unparseable_bool",
        "unparseable_date",
        "unparseable_datetime",
        "ambiguous_date",
        "date_contradicts_dayfirst",
        "excel_serial_60",
        "ambiguous_local_time",
        "nonexistent_local_time",
        "date_out_of_range",
        "unparseable_duration",
        "negative_duration",
    } <= produced
    for code in produced:
        message = error_message(code)
        assert message and message[0].islower()
        assert not any(value in message for value in CORPUS if len(value) > 2)


def test_error_message_examples_and_unknown_code() -> None:
    assert error_message("unparseable_money") == "not a money amount"
    with pytest.raises(ValueError):
        error_message("no_such_code")


# ------------------------------------------------------------------ properties


@settings(max_examples=150, deadline=None)
@given(
    cents=st.integers(min_value=-(10**13), max_value=10**13),
    decimal=st.sampled_from([".", ","]),
    symbol=st.sampled_from(["", "$", "¥", "€ ", "USD "]),
)
def test_money_round_trip_with_thousands_separators(cents: int, decimal: str, symbol: str) -> None:
    amount = cents / 100
    text = f"{abs(amount):,.2f}"  # e.g. 1,234,567.89
    if decimal == ",":
        text = text.replace(",", " ").replace(".", ",")  # e.g. 1 234 567,89
    text = f"{'-' if cents < 0 else ''}{symbol}{text}"
    got, error = one(text, "money", decimal=decimal)
    assert error is None, text
    assert got == pytest.approx(amount, abs=1e-9), text


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=8))
def test_any_text_gives_value_xor_error(values: list[str | None]) -> None:
    for kind in PARSE_KINDS:
        parsed = parse(values, kind)
        assert len(parsed.values) == len(parsed.errors) == len(values)
        failed = parsed.errors.is_not_null()
        assert not (failed & parsed.values.is_not_null()).any()
        for raw, error in zip(values, parsed.errors.to_list(), strict=True):
            if raw is None:
                assert error is None

"""Text -> typed columns for CRM export values.

Every parser works on a whole column at once (polars expressions, no per-row Python) because
column-level evidence decides some cells: the expected currency, whether bare percent numbers are
points or fractions, and whether `05/01/2024` is day-first. A cell that does not parse is never
silently dropped or guessed: it gets value null plus an error code that reports can count.
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import polars as pl

from crmkpi.choices import DEFAULT_NULL_VALUES, PARSE_KINDS

EXCEL_ERROR_LITERALS: frozenset[str] = frozenset(
    {
        "#DIV/0!",
        "#VALUE!",
        "#REF!",
        "#NAME?",
        "#NUM!",
        "#NULL!",
        "#SPILL!",
        "#CALC!",
        "#GETTING_DATA",
    }
)


@dataclass(frozen=True)
class ParseOptions:
    """How to read one source's values; defaults suit a clean UTF-8 export."""

    decimal: str = "."
    dayfirst: bool | None = None
    date_formats: tuple[str, ...] = ()
    source_timezone: str | None = None
    business_timezone: str = "UTC"
    excel_1904: bool = False
    null_values: frozenset[str] = DEFAULT_NULL_VALUES
    currency: str | None = None
    duration_unit: str = "seconds"
    percent_scale: str = "auto"
    date_min: date = date(1980, 1, 1)
    date_max: date = date(2079, 12, 31)

    def __post_init__(self) -> None:
        # Fail at configuration time, not half-way through a column.
        if self.decimal not in (".", ","):
            raise ValueError(f"decimal must be '.' or ',', not {self.decimal!r}")
        if self.duration_unit not in _SECONDS_PER_UNIT:
            raise ValueError(f"duration_unit must be one of {sorted(_SECONDS_PER_UNIT)}")
        if self.percent_scale not in ("auto", "points", "fraction"):
            raise ValueError("percent_scale must be auto, points or fraction")
        if self.date_min > self.date_max:
            raise ValueError("date_min is after date_max")
        for zone in (self.source_timezone, self.business_timezone):
            if zone is not None:
                try:
                    zoneinfo.ZoneInfo(zone)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                    raise ValueError(f"unknown time zone {zone!r}") from exc


@dataclass(frozen=True)
class Parsed:
    """A parsed column: typed values plus one error code (or null) per row."""

    values: pl.Series
    errors: pl.Series


_ERROR_MESSAGES: dict[str, str] = {
    "excel_error": "a spreadsheet formula error, not a value",
    "control_char": "contains invisible control characters",
    "id_mangled_by_spreadsheet": "an identifier rounded to scientific notation by a spreadsheet",
    "unparseable_money": "not a money amount",
    "ambiguous_amount": "thousands and decimal separators do not fit the configured decimal mark",
    "currency_mismatch": "in a different currency from the rest of the column",
    "precision_loss": "has more significant digits than can be stored exactly",
    "unparseable_float": "not a number",
    "ambiguous_number": "thousands and decimal separators do not fit the configured decimal mark",
    "unparseable_int": "not a whole number",
    "int_out_of_range": "a whole number too large to store",
    "number_out_of_range": "an amount too large to sum exactly (1e18 or more)",
    "unparseable_percent": "not a percentage",
    "ambiguous_percent": "a bare number in a column that otherwise uses %",
    "unparseable_bool": "not a yes/no value",
    "unparseable_date": "not a date",
    "unparseable_datetime": "not a date and time",
    "ambiguous_date": "day and month order cannot be told apart in this column",
    "date_contradicts_dayfirst": "day and month order contradicts the configured dayfirst",
    "excel_serial_60": "spreadsheet day 60 is the non-existent 29 February 1900",
    "ambiguous_local_time": "a local time that occurs twice at a daylight-saving change",
    "nonexistent_local_time": "a local time skipped by a daylight-saving change",
    "date_out_of_range": "a date outside the accepted range (often a placeholder date)",
    "unparseable_duration": "not a duration",
    "negative_duration": "a negative duration",
}


def error_message(code: str) -> str:
    """Human sentence for an error code; never contains data values, so it is safe to log."""
    try:
        return _ERROR_MESSAGES[code]
    except KeyError:
        raise ValueError(f"unknown parse error code {code!r}") from None


# --------------------------------------------------------------------------- text

# NFKC leaves these alone, yet they print as blanks or nothing in a spreadsheet.
_UNICODE_SPACES_RE = r"[\p{Zs}\u2028\u2029\u0085]"
_ZERO_WIDTH_RE = r"[\u200b\u2060\ufeff]"
_CONTROL_RE = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"


def _normalise_expr(expr: pl.Expr) -> pl.Expr:
    return (
        expr.str.normalize("NFKC")
        .str.replace_all(_ZERO_WIDTH_RE, "")
        .str.replace_all(_UNICODE_SPACES_RE, " ")
        .str.strip_chars()
    )


def normalise_text(values: pl.Series, null_values: frozenset[str]) -> pl.Series:
    """NFKC (full-width digits/letters/spaces/brackets -> ASCII), NBSP and other unicode spaces
    -> space, strip, and null tokens -> null (token match AFTER normalisation+strip, exact
    string match). Tokens are NFKC-normalised too so `（空）` and `(空)` both match."""
    text = values if values.dtype == pl.String else values.cast(pl.String)
    tokens = _null_tokens(null_values)
    # NFKC and the unicode-space rules only change non-ASCII text: an all-ASCII column (ids,
    # dates, amounts: most of a large export) only needs stripping.
    ascii_only = not text.str.contains(r"[^\x00-\x7F]").any()
    col = pl.col("s").str.strip_chars() if ascii_only else _normalise_expr(pl.col("s"))
    out = pl.DataFrame({"s": text}).select(
        pl.when(col.is_in(tokens)).then(None).otherwise(col).alias("s")
    )
    return out.to_series().alias(values.name)


def _null_tokens(null_values: frozenset[str]) -> list[str]:
    return sorted({unicodedata.normalize("NFKC", token).strip() for token in null_values})


def _already_clean(values: pl.Series, null_values: frozenset[str]) -> bool:
    """Printable ASCII without edge spaces, null tokens or spreadsheet errors: what most cells
    of a large export are, and what normalisation would leave as it is. One parallel pass."""
    column = pl.col("v")
    checks = (
        values.to_frame("v")
        .lazy()
        .select(
            column.str.contains(r"[^\x20-\x7E]|^ | $").any().alias("unusual"),
            column.is_in(_null_tokens(null_values)).any().alias("token"),
            column.is_in(sorted(EXCEL_ERROR_LITERALS)).any().alias("excel"),
        )
    )
    return not any(checks.collect().row(0))


def _parse_text(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    return text, _no_errors(len(text))


# Excel shows numbers of 12+ digits as e.g. 1.23457E+17 and saves them that way in CSV.
_SCIENTIFIC_ID_RE = r"^[+-]?\d+(?:[.,]\d+)?[eE]\+?\d+$"


def _parse_id(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    mangled = text.str.contains(_SCIENTIFIC_ID_RE).fill_null(False)
    return _fail(text, mangled), _codes(len(text), (mangled, "id_mangled_by_spreadsheet"))


# ------------------------------------------------------------------------ helpers


def _constant(value: Any, length: int, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    return pl.repeat(value, length, dtype=dtype, eager=True)


def _no_errors(length: int) -> pl.Series:
    return _constant(None, length, pl.String).alias("errors")


def _codes(length: int, *rules: tuple[pl.Series, str]) -> pl.Series:
    """Error column from (mask, code) rules; the first matching rule wins."""
    # a rule that matches nowhere (the usual case) costs no column pass
    rules = tuple((mask, code) for mask, code in rules if mask.any())
    if not rules:
        return _no_errors(length)
    frame = pl.DataFrame({f"m{i}": mask.fill_null(False) for i, (mask, _) in enumerate(rules)})
    chain: pl.Expr = pl.lit(None, pl.String)
    for i, (_, code) in reversed(list(enumerate(rules))):
        chain = pl.when(pl.col(f"m{i}")).then(pl.lit(code)).otherwise(chain)
    return frame.select(chain.alias("errors")).to_series()


def _fail(values: pl.Series, mask: pl.Series) -> pl.Series:
    """Null out `values` where `mask` is true (a failed cell never keeps a value)."""
    if not mask.any():
        return values
    frame = pl.DataFrame({"v": values, "m": mask.fill_null(False)})
    out = frame.select(pl.when(pl.col("m")).then(None).otherwise(pl.col("v")).alias("v"))
    return out.to_series().alias(values.name)


def _numeric_punct(expr: pl.Expr) -> pl.Expr:
    """Unicode minus and typographic apostrophes (Swiss thousands) -> ASCII."""
    return expr.str.replace_all("[\u2212\u2012\u2013]", "-").str.replace_all("[\u2019\u02bc]", "'")


# A number body before separator rules are applied; lazy so trailing units stay outside it.
_BODY_RE = r"[\d.,'][\d.,' ]*?"
_NUMERIC_LIKE_RE = r"^[\d.,' ]*\d[\d.,' ]*$"
_SEPARATOR_RE = {".": r"\.", ",": ",", " ": " ", "'": "'"}
_MAX_EXACT_DIGITS = 15  # float64 keeps 15 significant decimal digits exactly


def _group_separators(decimal: str) -> tuple[str, ...]:
    return ("," if decimal == "." else ".", " ", "'")


def _number_exprs(body: pl.Expr, decimal: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(valid, numeric_like, canonical) for an unsigned number body.

    Thousands separators must come in groups of 3 so `1,5` is never read as 15 or 1.5 when
    the configured decimal mark says otherwise; such a body is numeric_like but not valid.
    `canonical` uses `.` as the decimal mark and has no separators.
    """
    dec = _SEPARATOR_RE[decimal]
    seps = _group_separators(decimal)
    grouped = "|".join(rf"\d{{1,3}}(?:{_SEPARATOR_RE[sep]}\d{{3}})+" for sep in seps)
    valid_re = rf"^(?:(?:\d+|{grouped})(?:{dec}\d*)?|{dec}\d+)$"
    valid = body.str.contains(valid_re)
    numeric_like = body.str.contains(_NUMERIC_LIKE_RE)
    sep_class = "[" + "".join(_SEPARATOR_RE[sep] for sep in seps) + "]"
    canonical = body.str.replace_all(sep_class, "")
    if decimal == ",":
        canonical = canonical.str.replace(",", ".", literal=True)
    return valid, numeric_like, canonical


def _too_precise(canonical: pl.Expr) -> pl.Expr:
    digits = canonical.str.replace_all(r"[^0-9]", "").str.strip_chars("0")
    return digits.str.len_chars() > _MAX_EXACT_DIGITS


def _signed(sign: pl.Expr, value: pl.Expr) -> pl.Expr:
    return pl.when(sign == "-").then(-value).otherwise(value)


# -------------------------------------------------------------------------- money

_CURRENCY_SYMBOLS: dict[str, str] = {
    "$": "USD",
    "US$": "USD",
    "USD$": "USD",
    "HK$": "HKD",
    "NT$": "TWD",
    "C$": "CAD",
    "CA$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "S$": "SGD",
    "SG$": "SGD",
    "R$": "BRL",
    "¥": "CNY",
    "CN¥": "CNY",
    "元": "CNY",
    "RMB": "CNY",
    "JP¥": "JPY",
    "円": "JPY",
    "€": "EUR",
    "£": "GBP",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₫": "VND",
    "฿": "THB",
    "₱": "PHP",
}
_ISO_4217_TEXT = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CLP CNH CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD "
    "JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT "
    "MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG "
    "QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB "
    "TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF "
    "YER ZAR ZMW ZWG ZWL"
)
_ISO_4217 = frozenset(_ISO_4217_TEXT.split())
_MULTIPLIERS: dict[str, float] = {
    "k": 1e3,
    "K": 1e3,
    "m": 1e6,
    "M": 1e6,
    "万": 1e4,
    "亿": 1e8,
}


def _currency_marker_re() -> str:
    symbols = sorted(_CURRENCY_SYMBOLS, key=len, reverse=True)
    escaped = "|".join(s.replace("$", r"\$") for s in symbols)
    return rf"(?i:{escaped}|[a-z]{{3}})"


def _money_re() -> str:
    cur = _currency_marker_re()
    mult = "|".join(_MULTIPLIERS)
    return (
        rf"^(?P<lp>\()?\s*(?P<s1>[-+])?\s*(?P<pre>{cur})?\s*(?P<s2>[-+])?\s*(?P<lp2>\()?\s*"
        rf"(?P<num>{_BODY_RE})\s*(?P<mult>{mult})?\s*(?P<suf>{cur})?\s*(?P<rp>\))?$"
    )


def _canonical_currency(marker: pl.Expr) -> pl.Expr:
    """Currency marker (symbol, RMB, lower-case code) -> ISO 4217 code, null if unknown."""
    upper = marker.str.to_uppercase()
    code = upper.replace(_CURRENCY_SYMBOLS)
    return pl.when(code.is_in(sorted(_ISO_4217))).then(code).otherwise(None)


def _parse_money(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    rx = _money_re()
    s = _numeric_punct(pl.col("s"))
    g = pl.DataFrame({"s": text}).select(
        s.str.contains(rx).fill_null(False).alias("matched"), s.str.extract_groups(rx).alias("g")
    )
    g = g.unnest("g")
    present = {name: pl.col(name).is_not_null() for name in ("lp", "lp2", "rp", "s1", "s2")}
    parens = present["lp"] | present["lp2"]
    signs = present["s1"] | present["s2"]
    shape_ok = (
        pl.col("matched")
        & (parens == present["rp"])
        & ~(parens & signs)
        & ~(present["s1"] & present["s2"])
        & ~(present["lp"] & present["lp2"])
        & ~(pl.col("pre").is_not_null() & pl.col("suf").is_not_null())
    )
    marker = pl.coalesce("pre", "suf")
    code = _canonical_currency(marker)
    valid, numeric_like, canonical = _number_exprs(pl.col("num").str.strip_chars(), options.decimal)
    negative = (pl.col("s1") == "-") | (pl.col("s2") == "-") | parens
    magnitude = canonical.cast(pl.Float64, strict=False) * pl.col("mult").replace_strict(
        _MULTIPLIERS, default=1.0, return_dtype=pl.Float64
    )
    f = g.select(
        (shape_ok & (marker.is_null() | code.is_not_null())).alias("shape_ok"),
        valid.fill_null(False).alias("valid"),
        numeric_like.fill_null(False).alias("numeric_like"),
        _too_precise(canonical).fill_null(False).alias("too_precise"),
        code.alias("code"),
        pl.when(negative.fill_null(False)).then(-magnitude).otherwise(magnitude).alias("value"),
    )
    ok = f["shape_ok"] & f["valid"] & ~f["too_precise"]
    expected = _expected_currency(f["code"].filter(ok), options.currency)
    marked = ok & f["code"].is_not_null()
    # No expected currency means no cell is marked, so nothing can mismatch.
    mismatch = marked & (f["code"] != expected) if expected is not None else marked & False
    errors = _codes(
        len(text),
        (text.is_not_null() & ~f["shape_ok"], "unparseable_money"),
        (f["numeric_like"] & ~f["valid"], "ambiguous_amount"),
        (~f["valid"], "unparseable_money"),
        (f["too_precise"], "precision_loss"),
        (mismatch, "currency_mismatch"),
    )
    return _fail(f["value"], errors.is_not_null() | text.is_null()), errors


def _expected_currency(codes: pl.Series, configured: str | None) -> str | None:
    """The configured currency, else the column's most common marker (ties: alphabetical)."""
    if configured is not None:
        mapped = pl.select(_canonical_currency(pl.lit(configured))).item()
        return mapped if mapped is not None else configured.upper()
    counts = codes.drop_nulls().value_counts(name="n")
    if counts.is_empty():
        return None
    top = counts.sort(["n", codes.name], descending=[True, False])
    return str(top[codes.name][0])


# ----------------------------------------------------------------- float and int

_FLOAT_RE = rf"^(?P<sign>[-+])?\s*(?P<num>{_BODY_RE})(?P<exp>[eE][-+]?\d{{1,3}})?$"


def _plain_number_frame(text: pl.Series, decimal: str) -> pl.DataFrame:
    """Columns valid, numeric_like, too_precise, canonical (signed, '.' decimal), value."""
    s = _numeric_punct(pl.col("s"))
    g = pl.DataFrame({"s": text}).select(
        s.str.contains(_FLOAT_RE).fill_null(False).alias("matched"),
        s.str.extract_groups(_FLOAT_RE).alias("g"),
    )
    g = g.unnest("g")
    valid, numeric_like, canonical = _number_exprs(pl.col("num"), decimal)
    full = pl.concat_str(
        [pl.col("sign").fill_null(""), canonical, pl.col("exp").fill_null("")], separator=""
    )
    return g.select(
        (pl.col("matched") & valid).fill_null(False).alias("valid"),
        (pl.col("matched") & numeric_like).fill_null(False).alias("numeric_like"),
        _too_precise(canonical).fill_null(False).alias("too_precise"),
        pl.col("exp").is_not_null().alias("has_exp"),
        pl.col("sign").fill_null("").alias("sign"),
        canonical.alias("canonical"),
        full.cast(pl.Float64, strict=False).alias("value"),
    )


def _parse_float(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    f = _plain_number_frame(text, options.decimal)
    finite = f["value"].is_finite().fill_null(False)
    errors = _codes(
        len(text),
        (text.is_not_null() & f["numeric_like"] & ~f["valid"], "ambiguous_number"),
        (text.is_not_null() & ~(f["valid"] & finite), "unparseable_float"),
        (f["too_precise"], "precision_loss"),
    )
    return _fail(f["value"], errors.is_not_null() | text.is_null()), errors


def _parse_int(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    f = _plain_number_frame(text, options.decimal)
    parts = f.select(
        pl.col("canonical").str.extract(r"^(\d*)").alias("whole"),
        pl.col("canonical").str.extract(r"\.(\d*)$").fill_null("").alias("frac"),
        pl.col("sign"),
    )
    whole_number = parts["frac"].str.contains(r"^0*$") & ~f["has_exp"]
    digits = (parts["sign"] + parts["whole"].str.replace(r"^$", "0")).rename("v")
    value = digits.cast(pl.Int64, strict=False)
    ok = f["valid"] & whole_number
    errors = _codes(
        len(text),
        (text.is_not_null() & f["numeric_like"] & ~f["valid"], "ambiguous_number"),
        (text.is_not_null() & ~ok, "unparseable_int"),
        (value.is_null(), "int_out_of_range"),
    )
    return _fail(value, errors.is_not_null() | text.is_null()), errors


# ------------------------------------------------------------------------ percent

_PERCENT_RE = rf"^(?P<sign>[-+])?\s*(?P<num>{_BODY_RE})\s*(?P<pct>%)?$"


def _parse_percent(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    s = _numeric_punct(pl.col("s"))
    g = pl.DataFrame({"s": text}).select(
        s.str.contains(_PERCENT_RE).fill_null(False).alias("matched"),
        s.str.extract_groups(_PERCENT_RE).alias("g"),
    )
    g = g.unnest("g")
    valid, numeric_like, canonical = _number_exprs(pl.col("num"), options.decimal)
    f = g.select(
        (pl.col("matched") & valid).fill_null(False).alias("valid"),
        (pl.col("matched") & numeric_like).fill_null(False).alias("numeric_like"),
        _too_precise(canonical).fill_null(False).alias("too_precise"),
        pl.col("pct").is_not_null().alias("has_pct"),
        _signed(pl.col("sign"), canonical.cast(pl.Float64, strict=False)).alias("number"),
    )
    ok = f["valid"] & ~f["too_precise"]
    bare = ok & ~f["has_pct"]
    any_pct = bool((ok & f["has_pct"]).any())
    divisor = _bare_percent_divisor(f["number"].filter(bare), options.percent_scale)
    if options.percent_scale != "auto":
        ambiguous = bare & False
    elif any_pct:
        ambiguous = bare
    else:
        # points (12.5) beside fractions (0.125): the column reads as its majority, and the
        # minority rows are ambiguous
        fraction = bare & f["number"].is_between(0.0, 1.0, closed="none").fill_null(False)
        points = bare & (f["number"] > 1.0).fill_null(False)
        fractions_win = fraction.sum() > points.sum()
        divisor = 1.0 if fractions_win else 100.0
        ambiguous = points if fractions_win else fraction & bool(points.any())
    value = f.select(
        pl.when(pl.col("has_pct"))
        .then(pl.col("number") / 100.0)
        .otherwise(pl.col("number") / divisor)
        .alias("value")
    )["value"]
    errors = _codes(
        len(text),
        (text.is_not_null() & f["numeric_like"] & ~f["valid"], "ambiguous_number"),
        (text.is_not_null() & ~f["valid"], "unparseable_percent"),
        (f["too_precise"], "precision_loss"),
        (ambiguous, "ambiguous_percent"),
    )
    return _fail(value, errors.is_not_null() | text.is_null()), errors


def _bare_percent_divisor(bare_numbers: pl.Series, scale: str) -> float:
    """Points (12.5) or fractions (0.125)? `auto` says fractions only if all are in [0, 1]."""
    if scale == "points":
        return 100.0
    if scale == "fraction":
        return 1.0
    in_unit_range = bare_numbers.is_between(0.0, 1.0).all()
    return 1.0 if in_unit_range else 100.0


# --------------------------------------------------------------------------- bool

_TRUE_WORDS = ("y", "yes", "true", "t", "1", "1.0", "是", "对")
_FALSE_WORDS = ("n", "no", "false", "f", "0", "0.0", "否", "错")


def _parse_bool(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    lower = text.str.to_lowercase()
    is_true = lower.is_in(_TRUE_WORDS)
    is_false = lower.is_in(_FALSE_WORDS)
    errors = _codes(len(text), (text.is_not_null() & ~is_true & ~is_false, "unparseable_bool"))
    values = pl.DataFrame({"t": is_true, "f": is_false}).select(
        pl.when(pl.col("t")).then(True).when(pl.col("f")).then(False).otherwise(None).alias("v")
    )["v"]
    return values, errors


# ----------------------------------------------------------------------- duration

_SECONDS_PER_UNIT: dict[str, float] = {
    "seconds": 1.0,
    "minutes": 60.0,
    "hours": 3600.0,
    "days": 86400.0,
}
_CLOCK_RE = (
    r"^(?P<neg>-)?\s*(?:(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:[.,]\d+)?)"
    r"|(?P<m2>\d+):(?P<s2>\d{1,2}(?:[.,]\d+)?))$"
)
_AMOUNT = r"\d+(?:[.,]\d+)?"
_UNITS_RE = (
    rf"^(?P<neg>-)?\s*(?i:(?:(?P<ud>{_AMOUNT})\s*(?:days?|d|天))?\s*"
    rf"(?:(?P<uh>{_AMOUNT})\s*(?:hours?|hrs?|h|小时|时))?\s*"
    rf"(?:(?P<um>{_AMOUNT})\s*(?:minutes?|mins?|m|分钟|分))?\s*"
    rf"(?:(?P<us>{_AMOUNT})\s*(?:seconds?|secs?|s|秒))?)$"
)


def _parse_duration(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    s = _numeric_punct(pl.col("s"))

    def num(name: str) -> pl.Expr:
        return pl.col(name).str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)

    clock = (
        pl.DataFrame({"s": text})
        .select(
            s.str.contains(_CLOCK_RE).fill_null(False).alias("ok"),
            s.str.extract_groups(_CLOCK_RE).alias("g"),
        )
        .unnest("g")
        .select(
            (
                pl.col("ok")
                & (num("m").fill_null(0) < 60)
                & (pl.coalesce(num("s"), num("s2")) < 60).fill_null(False)
            ).alias("ok"),
            (pl.col("neg") == "-").fill_null(False).alias("neg"),
            (
                num("h").fill_null(0) * 3600
                + pl.coalesce(num("m"), num("m2")) * 60
                + pl.coalesce(num("s"), num("s2"))
            ).alias("seconds"),
        )
    )
    units = (
        pl.DataFrame({"s": text})
        .select(
            s.str.contains(_UNITS_RE).fill_null(False).alias("ok"),
            s.str.extract_groups(_UNITS_RE).alias("g"),
        )
        .unnest("g")
        .select(
            (pl.col("ok") & pl.any_horizontal(pl.col("ud", "uh", "um", "us").is_not_null())).alias(
                "ok"
            ),
            (pl.col("neg") == "-").fill_null(False).alias("neg"),
            pl.sum_horizontal(num("ud") * 86400, num("uh") * 3600, num("um") * 60, num("us")).alias(
                "seconds"
            ),
        )
    )
    plain = _plain_number_frame(text, options.decimal)
    unit = _SECONDS_PER_UNIT[options.duration_unit]
    frame = pl.DataFrame(
        {
            "clock_ok": clock["ok"],
            "units_ok": units["ok"],
            "plain_ok": plain["valid"] & ~plain["has_exp"] & plain["value"].is_finite(),
            "neg": clock["neg"] | units["neg"],
            "clock_s": clock["seconds"],
            "units_s": units["seconds"],
            "plain_s": plain["value"] * unit,
        }
    ).select(
        (pl.col("clock_ok") | pl.col("units_ok") | pl.col("plain_ok").fill_null(False)).alias("ok"),
        pl.when(pl.col("clock_ok"))
        .then(pl.when(pl.col("neg")).then(-pl.col("clock_s")).otherwise(pl.col("clock_s")))
        .when(pl.col("units_ok"))
        .then(pl.when(pl.col("neg")).then(-pl.col("units_s")).otherwise(pl.col("units_s")))
        .when(pl.col("plain_ok"))
        .then(pl.col("plain_s"))
        .alias("value"),
    )
    errors = _codes(
        len(text),
        (
            text.is_not_null() & plain["numeric_like"] & ~plain["valid"] & ~frame["ok"],
            "ambiguous_number",
        ),
        (text.is_not_null() & ~frame["ok"], "unparseable_duration"),
        (frame["value"] < 0, "negative_duration"),
    )
    return _fail(frame["value"], errors.is_not_null() | text.is_null()), errors


# ------------------------------------------------------------------ date/datetime

_MONTH_NAMES: dict[str, int] = {
    **{
        name: i
        for i, name in enumerate(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
        )
    },
    **{
        name: i
        for i, name in enumerate(
            [
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ],
            1,
        )
    },
    "sept": 9,
}
_WEEKDAY = r"(?:(?i:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_YEAR = r"(?P<y>\d{4}|\d{2})"
_MON = r"(?P<mon>[A-Za-z]{3,9})\.?"
_TIME = (
    r"(?:(?P<ap1>(?i:a\.?m\.?|p\.?m\.?)|上午|下午)\s*)?"
    r"(?P<H>\d{1,2})\s*[:时点]\s*(?P<Mi>\d{1,2})"
    r"(?:\s*[:分]\s*(?P<S>\d{1,2})(?:[.,](?P<f>\d{1,9}))?)?\s*[分秒]?"
    r"(?:\s*(?P<ap2>(?i:a\.?\s?m\.?|p\.?\s?m\.?)|上午|下午))?"
    r"(?:\s*(?P<tz>Z|(?i:utc|gmt)?[+-](?:\d{1,4}|\d{1,2}:\d{2})|(?i:utc|gmt)))?"
)
_SPACED = r"(?:[Tt]|\s*,\s*|\s+)"
# (name, date part, separator before an optional time part). Order matters: first match wins.
_DATE_FORMS: tuple[tuple[str, str, str], ...] = (
    ("ymd", r"(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})", _SPACED),
    ("cjk", r"(?P<y>\d{4})\s*年\s*(?P<mo>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]?", r"\s*"),
    ("nyl", r"(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.]" + _YEAR, _SPACED),
    ("dmy", r"(?P<d>\d{1,2})(?:st|nd|rd|th)?[-\s/.]*" + _MON + r"[-\s/.,]*" + _YEAR, _SPACED),
    ("mdy", _MON + r"[-\s/.]*(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:,\s*|[-\s/.]+)(?P<y>\d{4})", _SPACED),
    ("ymon", r"(?P<y>\d{4})[-\s/.]*" + _MON + r"[-\s/.]*(?P<d>\d{1,2})", _SPACED),
)
_COMPACT_RE = (
    r"^(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?:[Tt ]?(?P<H>\d{2})(?P<Mi>\d{2})(?P<S>\d{2}))?$"
)
_EPOCH_MS_RE = r"^\d{13}$"
_EPOCH_S_RE = r"^\d{10}(?:\.\d{1,6})?$"
_SERIAL_RE = r"^\d{1,5}(?:\.\d+)?$"
_FIELDS = ("y", "mo", "d", "a", "b", "mon", "H", "Mi", "S", "f", "ap1", "ap2", "tz")
_CANONICAL_FORMAT = "%Y-%m-%d %H:%M:%S%.f"
_MS_PER_DAY = 86_400_000


def _date_patterns() -> list[tuple[str, str]]:
    patterns = [(name, rf"^{_WEEKDAY}{part}(?:{sep}{_TIME})?$") for name, part, sep in _DATE_FORMS]
    patterns.append(("compact", _COMPACT_RE))
    return patterns


def _two_digit_year(year: pl.Expr, window_start: int) -> pl.Expr:
    """`21` -> the year ending in 21 within [date_min.year, date_min.year + 99]."""
    century = window_start - window_start % 100
    full = century + year
    return (
        pl.when(year >= 100).then(year).when(full < window_start).then(full + 100).otherwise(full)
    )


@dataclass(frozen=True)
class _Moments:
    """Parsed cells split by meaning: wall-clock times vs UTC instants."""

    naive: pl.Series  # Datetime us, wall clock as written (or from a naive source)
    utc: pl.Series  # Datetime us, UTC instant (written offset or epoch)
    errors: pl.Series  # String: specific errors found while parsing (serial 60, dayfirst, ...)


_ISO_MOMENT_RE = r"^\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$"
_ISO_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def _builtin_moments(text: pl.Series, options: ParseOptions) -> _Moments:
    """ISO cells (what most exports and every Parquet-to-CSV round trip hold) are read with
    three fixed strptime formats; only the other cells go through the pattern pipeline, so a
    clean column of millions of timestamps costs one pass instead of a dozen regexes."""
    iso = text.str.contains(_ISO_MOMENT_RE).fill_null(False)
    fast = _constant(None, len(text), pl.Datetime("us"))
    for fmt in _ISO_FORMATS:  # a column holds one form as a rule: the others parse nothing
        fast = fast.fill_null(text.str.strptime(pl.Datetime("us"), fmt, strict=False))
        if not (iso & fast.is_null()).any():
            break
    done = iso & fast.is_not_null()
    rest = text.is_not_null() & ~done
    naive = _fail(fast, ~done)
    instants = _constant(None, len(text), pl.Datetime("us"))  # UTC instants, kept naive
    if not rest.any():
        return _Moments(naive, instants, _no_errors(len(text)))
    slow = _regex_moments(text.filter(rest), options)
    positions = rest.arg_true()
    return _Moments(
        naive.scatter(positions, slow.naive.cast(pl.Datetime("us"))),
        instants.scatter(positions, slow.utc.cast(pl.Datetime("us"))),
        _no_errors(len(text)).scatter(positions, slow.errors.cast(pl.String)),
    )


def _regex_moments(text: pl.Series, options: ParseOptions) -> _Moments:
    patterns = _date_patterns()
    base = pl.DataFrame({"s": text})
    form_expr: pl.Expr = pl.lit(None, pl.String)
    for name, rx in reversed(patterns):
        form_expr = pl.when(pl.col("s").str.contains(rx)).then(pl.lit(name)).otherwise(form_expr)
    frame = base.with_columns(
        form_expr.alias("form"),
        *[pl.col("s").str.extract_groups(rx).alias(f"g_{name}") for name, rx in patterns],
    )
    field_exprs = []
    for field_name in _FIELDS:
        chain: pl.Expr = pl.lit(None, pl.String)
        for name, rx in reversed(patterns):
            if f"?P<{field_name}>" in rx:
                chain = (
                    pl.when(pl.col("form") == name)
                    .then(pl.col(f"g_{name}").struct.field(field_name))
                    .otherwise(chain)
                )
        field_exprs.append(chain.alias(field_name))
    fields = frame.select(pl.col("form"), *field_exprs).with_columns(
        pl.col("a", "b", "mo", "d", "H", "Mi", "S").cast(pl.Int32),
        _two_digit_year(pl.col("y").cast(pl.Int32), options.date_min.year).alias("y"),
        pl.col("mon")
        .str.to_lowercase()
        .replace_strict(_MONTH_NAMES, default=None, return_dtype=pl.Int32)
        .alias("mon"),
    )

    # Day-first or month-first for `05/01/2024`: configured, or read from the column.
    nyl = fields["form"] == "nyl"
    a, b = fields["a"], fields["b"]
    day_evidence = (nyl & a.is_between(13, 31) & (b <= 12)).fill_null(False)
    month_evidence = (nyl & b.is_between(13, 31) & (a <= 12)).fill_null(False)
    conflict = _constant(False, len(text), pl.Boolean)
    contradicts = _constant(False, len(text), pl.Boolean)
    if options.dayfirst is None:
        if day_evidence.any() and month_evidence.any():
            conflict = nyl.fill_null(False)
        dayfirst = bool(day_evidence.any()) and not bool(month_evidence.any())
    else:
        dayfirst = options.dayfirst
        contradicts = month_evidence if dayfirst else day_evidence

    first, second = (pl.col("a"), pl.col("b"))
    day_of_nyl, month_of_nyl = (first, second) if dayfirst else (second, first)
    ap = (
        pl.coalesce("ap1", "ap2")
        .str.to_uppercase()
        .str.replace_all(r"[.\s]", "")
        .replace({"上午": "AM", "下午": "PM"})
    )
    hour = pl.col("H").fill_null(0)
    hour24 = (
        pl.when(ap.is_null())
        .then(hour)
        .when((hour < 1) | (hour > 12))
        .then(None)
        .when(ap == "AM")
        .then(hour % 12)
        .otherwise(hour % 12 + 12)
    )
    year = pl.col("y")
    month = (
        pl.when(pl.col("form") == "nyl")
        .then(month_of_nyl)
        .otherwise(pl.coalesce(pl.col("mo"), pl.col("mon")))
    )
    day = pl.when(pl.col("form") == "nyl").then(day_of_nyl).otherwise(pl.col("d"))

    def pad(expr: pl.Expr, width: int) -> pl.Expr:
        return expr.cast(pl.String).str.zfill(width)

    canonical = pl.format(
        "{}-{}-{} {}:{}:{}{}",
        pad(year, 4),
        pad(month, 2),
        pad(day, 2),
        pad(hour24, 2),
        pad(pl.col("Mi").fill_null(0), 2),
        pad(pl.col("S").fill_null(0), 2),
        pl.when(pl.col("f").is_not_null()).then(pl.lit(".") + pl.col("f")).otherwise(pl.lit("")),
    )
    tz = (
        pl.col("tz")
        .str.to_uppercase()
        .str.extract_groups(r"^(?:UTC|GMT)?(?P<sign>[+-])(?P<oh>\d{1,2}?)(?::?(?P<om>\d{2}))?$")
    )
    offset_minutes = tz.struct.field("oh").cast(pl.Int32) * 60 + tz.struct.field("om").cast(
        pl.Int32
    ).fill_null(0)
    offset_minutes = (
        pl.when(pl.col("tz").is_null())
        .then(None)
        .when(pl.col("tz").str.contains(r"[+-]"))
        .then(
            pl.when(tz.struct.field("sign") == "-").then(-offset_minutes).otherwise(offset_minutes)
        )
        .otherwise(0)
    )
    parsed = fields.select(
        canonical.str.strptime(pl.Datetime("us"), _CANONICAL_FORMAT, strict=False).alias("dt"),
        offset_minutes.alias("offset"),
        pl.col("tz").is_not_null().alias("aware"),
    )
    offset_ok = (parsed["offset"].abs() <= 14 * 60).fill_null(True)
    dt = _fail(parsed["dt"], ~offset_ok | conflict | contradicts)
    written_utc = (dt.to_frame("dt").with_columns(parsed["offset"])).select(
        (pl.col("dt") - pl.duration(minutes=pl.col("offset"))).alias("u")
    )["u"]

    numbers = base.select(
        pl.col("s").str.contains(_EPOCH_MS_RE).fill_null(False).alias("is_ms"),
        pl.col("s").str.contains(_EPOCH_S_RE).fill_null(False).alias("is_s"),
        pl.col("s").str.contains(_SERIAL_RE).fill_null(False).alias("is_serial"),
        pl.col("s").cast(pl.Float64, strict=False).alias("x"),
    )
    # Only recognised shapes reach the arithmetic, so huge numbers cannot overflow a cast.
    epoch = numbers.select(
        pl.when(pl.col("is_ms"))
        .then(pl.from_epoch(pl.col("x").cast(pl.Int64, strict=False), time_unit="ms"))
        .when(pl.col("is_s"))
        .then(
            pl.from_epoch((pl.col("x") * 1e6).round().cast(pl.Int64, strict=False), time_unit="us")
        )
        .cast(pl.Datetime("us"))
        .alias("e")
    )["e"]
    serial, serial_60 = _excel_serial(numbers, options)

    aware = parsed["aware"]
    naive = _fail(dt, aware)
    naive = pl.DataFrame({"a": naive, "b": serial}).select(pl.coalesce("a", "b"))["a"]
    utc = pl.DataFrame({"a": _fail(written_utc, ~aware), "b": epoch}).select(pl.coalesce("a", "b"))[
        "a"
    ]
    errors = _codes(
        len(text),
        (serial_60, "excel_serial_60"),
        (conflict, "ambiguous_date"),
        (contradicts, "date_contradicts_dayfirst"),
    )
    return _Moments(naive=naive, utc=utc, errors=errors)


def _excel_serial(numbers: pl.DataFrame, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    """Spreadsheet day numbers -> wall-clock datetimes, rounded to the millisecond.

    The 1900 system counts from 1899-12-30 but pretends 1900 was a leap year, so days before
    the fake 1900-02-29 (serial 60) sit one day later than that base gives.
    """
    x = pl.when(pl.col("is_serial")).then(pl.col("x"))
    day = x.floor()
    if options.excel_1904:
        base, shift, is_60 = pl.datetime(1904, 1, 1), pl.lit(0.0), pl.lit(False)
    else:
        base = pl.datetime(1899, 12, 30)
        shift = pl.when(day < 60).then(1.0).otherwise(0.0)
        is_60 = day == 60
    ms = ((x + shift) * _MS_PER_DAY).round().cast(pl.Int64, strict=False)
    out = numbers.select(
        pl.when(pl.col("is_serial") & ~is_60)
        .then(base + pl.duration(milliseconds=ms))
        .cast(pl.Datetime("us"))
        .alias("v"),
        (pl.col("is_serial") & is_60).alias("is_60"),
    )
    return out["v"], out["is_60"]


# A weekday written after the date (`2018-01-01 星期五`, `2018-01-05 (Fri)`): informative only,
# and some exports write it wrong (the 2018 pharmacy file says 星期五 for Monday 1 January), so
# `date_format` reads the date before it and never checks it.
TRAILING_WEEKDAY = (
    r"[\s,]*[(（]?(?:(?:星期|周|週|礼拜|禮拜)[一二三四五六日天七]|"
    r"(?i:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?i:day|nesday|sday|urday)?\.?)[)）]?\s*$"
)


def _user_format_moments(text: pl.Series, options: ParseOptions) -> _Moments:
    """The configured strptime formats, in order; the first that parses a cell wins. A
    trailing weekday is cut off first (the format describes the date)."""
    naive = _constant(None, len(text), pl.Datetime("us"))
    utc = naive.clone()
    if options.date_formats:
        text = text.str.replace(TRAILING_WEEKDAY, "")
    for fmt in options.date_formats:
        parsed = text.str.to_datetime(fmt, time_unit="us", strict=False)
        taken = naive.is_not_null() | utc.is_not_null()
        if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is not None:
            instant = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            utc = _choose(taken, utc, instant)
        else:
            naive = _choose(taken, naive, parsed.cast(pl.Datetime("us")))
    return _Moments(naive=naive, utc=utc, errors=_no_errors(len(text)))


def _choose(mask: pl.Series, if_true: pl.Series, if_false: pl.Series) -> pl.Series:
    if not mask.any() and if_true.dtype in (if_false.dtype, pl.Null):
        return if_false
    frame = pl.DataFrame({"m": mask.fill_null(False), "t": if_true, "f": if_false})
    out = frame.select(pl.when(pl.col("m")).then(pl.col("t")).otherwise(pl.col("f")).alias("v"))
    return out.to_series().alias(if_false.name)


def _first_error(*errors: pl.Series) -> pl.Series:
    errors = tuple(e for e in errors if e.null_count() < len(e)) or errors[:1]
    if len(errors) == 1:
        return errors[0].alias("errors")
    frame = pl.DataFrame({f"e{i}": e for i, e in enumerate(errors)})
    return frame.select(pl.coalesce(frame.columns).alias("errors")).to_series()


def _finish_moments(
    naive: pl.Series, utc: pl.Series, kind: str, options: ParseOptions
) -> tuple[pl.Series, pl.Series]:
    """Wall-clock and UTC values -> business-local values of `kind`, plus zone/range errors.

    Only kind datetime localises naive values from `source_timezone`: a calendar date has no
    instant to move. UTC instants (written offsets, epochs) move to the business zone for both
    kinds, since an instant has no date until a zone is chosen.
    """
    business = options.business_timezone
    local_utc = utc.dt.replace_time_zone("UTC").dt.convert_time_zone(business)
    local_utc = local_utc.dt.replace_time_zone(None)
    no_flag = _constant(False, len(naive), pl.Boolean)
    nonexistent, ambiguous = no_flag, no_flag
    local_naive = naive
    if kind == "datetime" and options.source_timezone is not None:
        source = options.source_timezone
        earliest = naive.dt.replace_time_zone(source, ambiguous="earliest", non_existent="null")
        strict = naive.dt.replace_time_zone(source, ambiguous="null", non_existent="null")
        nonexistent = naive.is_not_null() & earliest.is_null()
        ambiguous = earliest.is_not_null() & strict.is_null()
        local_naive = strict.dt.convert_time_zone(business).dt.replace_time_zone(None)
    values = _choose(local_naive.is_not_null(), local_naive, local_utc)
    values, range_errors = _range_checked(values, kind, options)
    errors = _codes(
        len(naive),
        (nonexistent, "nonexistent_local_time"),
        (ambiguous, "ambiguous_local_time"),
    )
    return values, _first_error(errors, range_errors)


def _range_checked(
    values: pl.Series, kind: str, options: ParseOptions
) -> tuple[pl.Series, pl.Series]:
    """Cast to the kind's dtype and reject placeholder dates (1900-01-01, 9999-12-31, ...)."""
    values = values.cast(pl.Date) if kind == "date" else values.cast(pl.Datetime("us"))
    days = values.cast(pl.Date)
    outside = (days < options.date_min) | (days > options.date_max)
    errors = _codes(len(values), (outside, "date_out_of_range"))
    return _fail(values, outside), errors


def _moment_parser(kind: str) -> Callable[[pl.Series, ParseOptions], tuple[pl.Series, pl.Series]]:
    def parse(text: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
        builtin = _builtin_moments(text, options)
        user = _user_format_moments(text, options)
        by_user = user.naive.is_not_null() | user.utc.is_not_null()
        naive = _choose(by_user, user.naive, builtin.naive)
        utc = _choose(by_user, user.utc, builtin.utc)
        values, finish_errors = _finish_moments(naive, utc, kind, options)
        found = naive.is_not_null() | utc.is_not_null()
        specific = _fail(builtin.errors, by_user)
        unparseable = _codes(len(text), (text.is_not_null() & ~found, f"unparseable_{kind}"))
        errors = _first_error(specific, unparseable, finish_errors)
        return _fail(values, errors.is_not_null()), errors

    return parse


# ------------------------------------------------------------------ typed input


def _typed_float(values: pl.Series, code: str) -> tuple[pl.Series, pl.Series]:
    """Float columns pass through; NaN is pandas' missing marker, infinities are errors."""
    floats = values.cast(pl.Float64)
    infinite = floats.is_infinite().fill_null(False)
    missing = floats.is_nan().fill_null(False)
    return _fail(floats, infinite | missing), _codes(len(values), (infinite, code))


def _parse_typed(
    values: pl.Series, kind: str, options: ParseOptions
) -> tuple[pl.Series, pl.Series] | None:
    """Parquet-typed input whose dtype fits `kind`; None means 'parse it as text instead'."""
    dtype = values.dtype
    as_text = replace(options, decimal=".")  # numbers cast to text use '.' whatever the source
    if kind == "id" and dtype.is_float():
        floats, errors = _typed_float(values, "precision_loss")
        lost = floats.abs() >= 2.0**53
        whole = (floats == floats.floor()) & ~lost
        text = _choose(
            whole, floats.cast(pl.Int64, strict=False).cast(pl.String), floats.cast(pl.String)
        )
        return _fail(text, lost), _first_error(
            errors, _codes(len(values), (lost, "precision_loss"))
        )
    if kind in ("money", "float", "percent", "int") and (dtype.is_integer() or dtype == pl.Decimal):
        if kind == "percent":
            return _scale_percent(values.cast(pl.Float64), options)
        parsed = parse_series(values.cast(pl.String), kind, as_text)
        return parsed.values, parsed.errors
    if kind in ("money", "float") and dtype.is_float():
        return _typed_float(values, f"unparseable_{kind}")
    if kind == "percent" and dtype.is_float():
        floats, errors = _typed_float(values, "unparseable_percent")
        scaled, scale_errors = _scale_percent(floats, options)
        return scaled, _first_error(errors, scale_errors)
    if kind == "int" and dtype.is_float():
        floats, errors = _typed_float(values, "unparseable_int")
        ints = floats.cast(pl.Int64, strict=False)
        fractional = (floats != floats.floor()).fill_null(False)
        out_of_range = floats.is_not_null() & ints.is_null() & ~fractional
        errors = _first_error(
            errors,
            _codes(
                len(values), (fractional, "unparseable_int"), (out_of_range, "int_out_of_range")
            ),
        )
        return _fail(ints, errors.is_not_null()), errors
    if kind == "bool" and dtype == pl.Boolean:
        return values, _no_errors(len(values))
    if kind == "bool" and dtype.is_numeric():
        x = pl.col("x")
        truth = pl.DataFrame({"x": values.cast(pl.Float64)}).select(
            pl.when(x == 1.0).then(True).when(x == 0.0).then(False).otherwise(None).alias("v")
        )["v"]
        bad = values.is_not_null() & truth.is_null()
        return truth, _codes(len(values), (bad, "unparseable_bool"))
    if kind in ("date", "datetime") and dtype == pl.Date:
        return _range_checked(values, kind, options)
    if kind in ("date", "datetime") and isinstance(dtype, pl.Datetime):
        stamps = values.cast(pl.Datetime("us", dtype.time_zone))
        none = _constant(None, len(values), pl.Datetime("us"))
        if dtype.time_zone is None:
            return _finish_moments(stamps, none, kind, options)
        utc = stamps.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return _finish_moments(none, utc, kind, options)
    if kind == "duration" and isinstance(dtype, pl.Duration):
        seconds = values.dt.total_microseconds().cast(pl.Float64) / 1e6
        negative = (seconds < 0).fill_null(False)
        return _fail(seconds, negative), _codes(len(values), (negative, "negative_duration"))
    if kind == "duration" and dtype.is_numeric():
        floats, errors = _typed_float(values, "unparseable_duration")
        seconds = floats * _SECONDS_PER_UNIT[options.duration_unit]
        negative = (seconds < 0).fill_null(False)
        errors = _first_error(errors, _codes(len(values), (negative, "negative_duration")))
        return _fail(seconds, negative), errors
    if kind in ("date", "datetime", "duration") and dtype.is_numeric():
        parsed = parse_series(values.cast(pl.String), kind, as_text)
        return parsed.values, parsed.errors
    return None


def _scale_percent(floats: pl.Series, options: ParseOptions) -> tuple[pl.Series, pl.Series]:
    divisor = _bare_percent_divisor(floats.drop_nulls().drop_nans(), options.percent_scale)
    return floats / divisor, _no_errors(len(floats))


# ---------------------------------------------------------------------- public

_Parser = Callable[[pl.Series, ParseOptions], tuple[pl.Series, pl.Series]]
_PARSERS: dict[str, _Parser] = {
    "text": _parse_text,
    "id": _parse_id,
    "money": _parse_money,
    "percent": _parse_percent,
    "float": _parse_float,
    "int": _parse_int,
    "bool": _parse_bool,
    "date": _moment_parser("date"),
    "datetime": _moment_parser("datetime"),
    "duration": _parse_duration,
}
_OUTPUT_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "id": pl.String(),
    "money": pl.Float64(),
    "percent": pl.Float64(),
    "float": pl.Float64(),
    "int": pl.Int64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
    "duration": pl.Float64(),
}


# Plain numbers that every number parser reads the same way, at most 15 significant digits
# (so no precision question), non-negative for durations.
_PLAIN_NUMBER_RE = {
    "money": r"^-?\d{1,13}(?:\.\d{1,2})?$",
    "float": r"^-?\d{1,9}(?:\.\d{1,6})?$",
    "int": r"^-?\d{1,15}$",
    "duration": r"^\d{1,9}(?:\.\d{1,6})?$",
}


def _parse_with_fast_path(
    clean: pl.Series, kind: str, options: ParseOptions
) -> tuple[pl.Series, pl.Series]:
    """Cast plain numbers directly; hand only the other cells to the kind's full parser."""
    pattern = _PLAIN_NUMBER_RE.get(kind)
    if pattern is None or options.decimal != ".":
        return _PARSERS[kind](clean, options)
    plain = clean.str.contains(pattern).fill_null(False)
    rest = clean.is_not_null() & ~plain
    dtype = pl.Int64 if kind == "int" else pl.Float64
    values = _fail(clean.cast(dtype, strict=False), ~plain)
    if kind == "duration":
        values = values * _SECONDS_PER_UNIT[options.duration_unit]
    errors = _no_errors(len(clean))
    if rest.any():
        slow_values, slow_errors = _PARSERS[kind](clean.filter(rest), options)
        positions = rest.arg_true()
        values = values.scatter(positions, slow_values.cast(dtype))
        errors = errors.scatter(positions, slow_errors.cast(pl.String))
    return values, errors


# Kinds whose column-level rules look at values, not at how many rows hold them, so a column
# can be parsed once per distinct value (a rep, a status, a date: millions of rows, few values).
_PER_VALUE_KINDS = ("text", "id", "bool", "date", "datetime", "int", "float", "duration")
_FEW_VALUES_SAMPLE = 20_000
_FEW_VALUES_MAX = 2_000


def _parse_per_distinct_value(
    values: pl.Series, distinct: pl.Series, kind: str, options: ParseOptions
) -> Parsed:
    parsed = parse_series(distinct, kind, options)
    unchanged = parsed.values.dtype == distinct.dtype and parsed.values.equals(distinct)
    if unchanged and parsed.errors.null_count() == len(distinct):
        return Parsed(values=values, errors=_no_errors(len(values)).alias(values.name))
    lookup = pl.DataFrame({"k": distinct, "v": parsed.values, "e": parsed.errors})
    joined = pl.DataFrame({"k": values}).join(
        lookup, on="k", how="left", nulls_equal=True, maintain_order="left"
    )
    return Parsed(values=joined["v"].alias(values.name), errors=joined["e"].alias(values.name))


# Amounts are summed as Decimal(38, 9) (29 digits before the point): values from 1e18 leave
# room for a billion rows, and nothing a CRM records comes near them
MAX_ABS_NUMBER = 1e18


def _within_range(kind: str, values: pl.Series, errors: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Money and plain numbers too large to sum exactly are quarantined, not a compute error."""
    if kind not in ("money", "float"):
        return values, errors
    huge = (values.cast(pl.Float64).abs() >= MAX_ABS_NUMBER).fill_null(False)
    if not huge.any():
        return values, errors
    errors = _first_error(
        errors.cast(pl.String), _codes(len(values), (huge, "number_out_of_range"))
    )
    return _fail(values, huge), errors


def parse_series(values: pl.Series, kind: str, options: ParseOptions = ParseOptions()) -> Parsed:
    """Parse one source column into the canonical type of `kind`."""
    if (
        values.dtype == pl.String
        and kind in _PER_VALUE_KINDS
        and len(values) > 4 * _FEW_VALUES_SAMPLE
        and values.head(_FEW_VALUES_SAMPLE).n_unique() < _FEW_VALUES_MAX
    ):
        distinct = values.unique()
        if len(distinct) < len(values) // 4:
            return _parse_per_distinct_value(values, distinct, kind, options)
    if kind not in _PARSERS:
        raise ValueError(f"unknown parse kind {kind!r}; expected one of {PARSE_KINDS}")
    name = values.name
    dtype = _OUTPUT_DTYPES[kind]
    if values.dtype == pl.Null:
        empty = _constant(None, len(values), dtype).alias(name)
        return Parsed(values=empty, errors=_no_errors(len(values)).alias(name))
    if values.dtype != pl.String:
        typed = _parse_typed(values, kind, options)
        if typed is not None:
            typed_values, typed_errors = _within_range(kind, *typed)
            return Parsed(
                values=typed_values.cast(dtype).alias(name),
                errors=typed_errors.cast(pl.String).alias(name),
            )
        values = values.cast(pl.String)
    if _already_clean(values, options.null_values):
        clean, early = values, _no_errors(len(values))
    else:
        control = values.str.contains(_CONTROL_RE).fill_null(False)
        text = normalise_text(values, options.null_values)
        excel = text.is_in(sorted(EXCEL_ERROR_LITERALS)).fill_null(False)
        early = _codes(len(values), (control, "control_char"), (excel, "excel_error"))
        clean = _fail(text, early.is_not_null())
    parsed, errors = _within_range(kind, *_parse_with_fast_path(clean, kind, options))
    errors = _first_error(early, _fail(errors, clean.is_null()))
    parsed = _fail(parsed.cast(dtype), errors.is_not_null())
    return Parsed(values=parsed.alias(name), errors=errors.alias(name))

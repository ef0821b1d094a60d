"""The adversarial cases: an input that must never be touched, bad values and configs that must
end in a documented exit code (never 1, "unexpected error"), outputs that keep every row and
never run formulas. Each test is named after its case; `tests/test_fuzz.py` generates more.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.errors import (
    EXIT_BAD_CONFIG,
    EXIT_CANNOT_CREATE_OUTPUT,
    EXIT_INVALID_DATA,
    EXIT_OK,
)
from tests import factory as fx

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
runner = CliRunner()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: what "the input is never touched" compares."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def crmkpi(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, stdout); an uncaught exception fails the test."""
    result = runner.invoke(app, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"unexpected error: {result.exception!r}") from result.exception
    return result.exit_code, result.stdout


def summary(stdout: str) -> dict[str, Any]:
    """The JSON summary on the last stdout line."""
    loaded: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return loaded


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """A copy of the bundled sample exports (with its crmkpi.toml) in a folder of its own."""
    folder = tmp_path / "exports"
    shutil.copytree(SAMPLE, folder)
    return folder


# --- 1. the input is never touched ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["the input folder", "its parent", "inside it"])
def test_out_overlapping_the_input_is_refused_before_reading(exports: Path, where: str) -> None:
    out = {"the input folder": exports, "its parent": exports.parent, "inside it": exports / "k"}
    before = snapshot(exports.parent)
    code, stdout = crmkpi("compute", exports, "--out", out[where])
    assert code == EXIT_CANNOT_CREATE_OUTPUT
    message = summary(stdout)["message"]
    assert str(out[where]) in message and str(exports.resolve()) in message
    assert snapshot(exports.parent) == before  # nothing deleted, nothing created


def test_out_reaching_the_input_through_a_symlink_is_refused(exports: Path) -> None:
    link = exports.parent / "link"
    link.symlink_to(exports, target_is_directory=True)
    before = snapshot(exports)
    code, _ = crmkpi("compute", exports, "--out", link)
    assert code == EXIT_CANNOT_CREATE_OUTPUT
    assert snapshot(exports) == before


def test_out_containing_the_config_folder_is_refused(exports: Path, tmp_path: Path) -> None:
    """A config kept apart from the exports is protected too: an --out above it is refused."""
    project = tmp_path / "project"
    project.mkdir()
    config = project / "crmkpi.toml"
    config.write_text((exports / "crmkpi.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (exports / "crmkpi.toml").unlink()
    code, _ = crmkpi("compute", exports, "--config", config, "--out", tmp_path)
    assert code == EXIT_CANNOT_CREATE_OUTPUT
    assert config.is_file()
    # beside the config, in the project folder, is where outputs usually go: allowed
    code, _ = crmkpi("compute", exports, "--config", config, "--out", project / "kpis")
    assert code == EXIT_OK


def test_existing_folder_that_is_not_a_crmkpi_output_is_refused(
    exports: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "reports"
    foreign.mkdir()
    (foreign / "budget.xlsx").write_bytes(b"someone else's file")
    code, stdout = crmkpi("compute", exports, "--out", foreign)
    assert code == EXIT_CANNOT_CREATE_OUTPUT
    assert "no crmkpi manifest" in summary(stdout)["message"]
    assert (foreign / "budget.xlsx").read_bytes() == b"someone else's file"


def test_previous_output_and_empty_folder_are_replaced(exports: Path, tmp_path: Path) -> None:
    out = tmp_path / "kpis"
    out.mkdir()  # empty: fine
    assert crmkpi("compute", exports, "--out", out, "--format", "csv")[0] == EXIT_OK
    first = snapshot(out)
    assert crmkpi("compute", exports, "--out", out, "--format", "csv")[0] == EXIT_OK
    second = snapshot(out)
    assert json.loads(second.pop("manifest.json"))["rerun_of"] is not None  # its own, replaced
    first.pop("manifest.json")
    assert second == first


def test_out_symlink_is_followed_and_the_link_stays(exports: Path, tmp_path: Path) -> None:
    target = tmp_path / "real"
    link = tmp_path / "kpis"
    link.symlink_to(target, target_is_directory=True)
    for _ in range(2):  # the second run replaces the first's outputs through the link
        code, stdout = crmkpi("compute", exports, "--out", link, "--format", "csv")
        assert code == EXIT_OK, stdout
        assert link.is_symlink() and (target / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".staging")) == []


def test_leftover_staging_of_a_killed_run_is_removed(exports: Path, tmp_path: Path) -> None:
    out = tmp_path / "kpis"
    leftover = tmp_path / ".staging-kpis.0123456789abcdef"
    leftover.mkdir()
    (leftover / "kpis.csv").write_text("half written", encoding="utf-8")
    assert crmkpi("compute", exports, "--out", out, "--format", "csv")[0] == EXIT_OK
    assert not leftover.exists()


def test_rejected_dir_inside_the_input_or_an_existing_file_is_refused(
    exports: Path, tmp_path: Path
) -> None:
    before = snapshot(exports)
    assert crmkpi("validate", exports, "--rejected-dir", exports / "rej")[0] == (
        EXIT_CANNOT_CREATE_OUTPUT
    )
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    assert crmkpi("validate", exports, "--rejected-dir", afile)[0] == EXIT_CANNOT_CREATE_OUTPUT
    assert snapshot(exports) == before


# --- 4. formulas are neutralised in one place, headers included ---------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "--5",
    "-inf",
    "-5%",
    "+3",  # a number to a spreadsheet, but a leading + is neutralised all the same
]
PLAIN_NUMBERS = ["-10.50", "-1e5", "42"]


def _with_formula_cells(exports: Path) -> None:
    """Orders whose bad rows (quarantined: an amount that is no number) carry formula-looking
    text as customers, under a formula header."""
    orders = pl.read_csv(exports / "orders.csv", infer_schema=False)
    cells = FORMULAS + PLAIN_NUMBERS
    bad = orders.head(len(cells)).with_columns(
        pl.Series("customer_id", cells),
        pl.lit("abc").alias("amount"),
        pl.lit("x").alias('=HYPERLINK("http://evil.example")'),
    )
    good = orders.with_columns(pl.lit("x").alias('=HYPERLINK("http://evil.example")'))
    pl.concat([good, bad]).write_csv(exports / "orders.csv")


def _csv_cells(path: Path) -> list[str]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_validate_and_compute_write_rejected_rows_neutralised_alike(
    exports: Path, tmp_path: Path
) -> None:
    _with_formula_cells(exports)
    crmkpi("validate", exports, "--rejected-dir", tmp_path / "rej")
    crmkpi("compute", exports, "--out", tmp_path / "out", "--max-reject-rate", "1")
    by_validate = (tmp_path / "rej" / "orders.csv").read_bytes()
    by_compute = (tmp_path / "out" / "rejected" / "orders.csv").read_bytes()
    assert by_validate == by_compute
    cells = _csv_cells(tmp_path / "rej" / "orders.csv")
    for formula in FORMULAS:
        assert formula not in cells and "'" + formula in cells
    assert "'" + '=HYPERLINK("http://evil.example")' in cells  # the header too
    for number in PLAIN_NUMBERS:
        assert number in cells  # a plain number is left as it is


def test_neutralisation_leaves_plain_negative_numbers_alone() -> None:
    from crmkpi.write import neutralise_formulas

    frame = pl.DataFrame({"cell": [*FORMULAS, *PLAIN_NUMBERS, "\tx", "-5\n", None]})
    safe, changed = neutralise_formulas(frame)
    expected = ["'" + f for f in FORMULAS] + PLAIN_NUMBERS + ["'\tx", "'-5\n", None]
    assert safe["cell"].to_list() == expected
    assert changed == len(FORMULAS) + 2


def test_xlsx_outputs_hold_formula_text_as_strings_never_formulas(
    exports: Path, tmp_path: Path
) -> None:
    _with_formula_cells(exports)
    out = tmp_path / "out"
    code, _ = crmkpi("compute", exports, "--out", out, "--max-reject-rate", "1")
    assert code == EXIT_OK
    for book in out.glob("*.xlsx"):
        with zipfile.ZipFile(book) as archive:
            for member in archive.namelist():
                if member.startswith("xl/worksheets/"):
                    xml = archive.read(member)
                    assert b"<f>" not in xml and b"<f " not in xml, (book.name, member)
                    assert b"hyperlink" not in xml.lower(), (book.name, member)


# --- 2. bad values and configs end in documented codes ------------------------------------------


def set_key(exports: Path, section: str, line: str) -> None:
    """Put `line` (`key = value`) at the top of `[section]` of the sample's crmkpi.toml."""
    config = exports / "crmkpi.toml"
    text = config.read_text(encoding="utf-8")
    header = f"[{section}]\n"
    assert header in text, section
    before, after = text.split(header, 1)
    body, rest = re.split(r"(?m)^(?=\[)", after, maxsplit=1) if "\n[" in after else (after, "")
    key = line.split("=")[0].strip()
    body = re.sub(rf"(?m)^{re.escape(key)}\s*=.*\n", "", body)
    config.write_text(before + header + line + "\n" + body + rest, encoding="utf-8")


def assert_config_error(exports: Path, key: str, *extra: str) -> None:
    """validate and compute both refuse the config with 78, naming the key."""
    for command in (["validate", exports], ["compute", exports, "--out", exports.parent / "o"]):
        code, stdout = crmkpi(*command, *extra)
        assert code == EXIT_BAD_CONFIG, (command[0], stdout)
        if command[0] == "compute":
            assert key in summary(stdout)["message"]
    assert not (exports.parent / "o").exists()


@pytest.mark.parametrize("value", ["1e308", "nan", "inf", "-inf", "0", "-5"])
def test_max_file_mb_extreme_numbers_exit_78(exports: Path, value: str) -> None:
    set_key(exports, "input", f"max_file_mb = {value}")
    assert_config_error(exports, "input.max_file_mb")


@pytest.mark.parametrize("name", ["rot13", "base64", "hex", "zlib", "undefined", "idna", "nope"])
def test_encoding_that_is_no_text_codec_exits_78(exports: Path, name: str) -> None:
    set_key(exports, "input", f'encoding = "{name}"')
    assert_config_error(exports, "input.encoding")


@pytest.mark.parametrize(
    "line", ["date_min = 0001-01-01", "date_max = 9999-12-31", 'date_max = "9999-12-31"']
)
def test_date_settings_at_the_limits_of_a_date_exit_78(exports: Path, line: str) -> None:
    set_key(exports, "settings", line)
    assert_config_error(exports, line.split(" ")[0])


@pytest.mark.parametrize(
    "line",
    [
        'inactivity_days = "abc"',
        'csat_satisfied_min = "four"',
        "max_periods = 0",
        'clv_time_unit = "fortnight"',
        'clv_horizon_periods = "a year"',
        "clv_discount_rate = 1.5",
        "p_alive_threshold = 2",
        "clv_min_repeat_buyers = 0.5",
        'clv_fit_by = "product"',
    ],
)
def test_setting_of_the_wrong_type_exits_78_in_validate_too(exports: Path, line: str) -> None:
    set_key(exports, "settings", line)
    assert_config_error(exports, line.split(" ")[0])


def test_unknown_run_key_exits_78_in_validate_too(exports: Path) -> None:
    config = exports / "crmkpi.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[run]\nperiodd = 1\n", "utf-8")
    assert_config_error(exports, "periodd")


@pytest.mark.parametrize("as_of", ["0001-01-01", "0001-01-02", "9999-12-31", "2200-01-01"])
def test_as_of_at_the_limits_of_a_date_exits_78(exports: Path, as_of: str) -> None:
    code, stdout = crmkpi("compute", exports, "--out", exports.parent / "o", "--as-of", as_of)
    assert code == EXIT_BAD_CONFIG
    assert "as_of" in summary(stdout)["message"]


def test_period_day_with_as_of_decades_ahead_is_refused_before_computing(exports: Path) -> None:
    """max_periods (default 5000) bounds the work: 2024-01-01..2050-01-01 is 9,498 days."""
    code, stdout = crmkpi(
        "compute",
        exports,
        "--out",
        exports.parent / "o",
        "--period",
        "day",
        "--as-of",
        "2050-01-01",
    )
    assert code == EXIT_BAD_CONFIG
    message = summary(stdout)["message"]
    assert "max_periods" in message and "9498 day periods" in message
    assert not (exports.parent / "o").exists()


@pytest.mark.parametrize("pattern", ["/etc/passwd", "../exports/orders.csv", "a/../../x.csv"])
def test_file_glob_leaving_the_input_folder_exits_78(exports: Path, pattern: str) -> None:
    config = exports / "crmkpi.toml"
    text = config.read_text(encoding="utf-8").replace('file = "orders.csv"', f'file = "{pattern}"')
    config.write_text(text, encoding="utf-8")
    assert_config_error(exports, "tables.orders.file")


def test_recursive_glob_never_reads_the_outputs(exports: Path, tmp_path: Path) -> None:
    """Outputs cannot lie in the input folder, so no glob of it reaches them."""
    config = exports / "crmkpi.toml"
    text = config.read_text(encoding="utf-8").replace(
        'file = "orders.csv"', 'file = "**/orders*.csv"'
    )
    config.write_text(text, encoding="utf-8")
    assert crmkpi("compute", exports, "--out", exports / "kpis")[0] == EXIT_CANNOT_CREATE_OUTPUT
    code, stdout = crmkpi("compute", exports, "--out", tmp_path / "kpis")
    assert code == EXIT_OK, stdout
    manifest = json.loads((tmp_path / "kpis" / "manifest.json").read_text(encoding="utf-8"))
    assert [i["path"] for i in manifest["inputs"] if i["table"] == "orders"] == ["orders.csv"]


@pytest.mark.parametrize("header", ["reason", "check", "column", "source_line", "source_file"])
def test_source_column_named_like_a_quarantine_column(
    exports: Path, tmp_path: Path, header: str
) -> None:
    orders = exports / "orders.csv"
    lines = orders.read_text(encoding="utf-8").split("\n")
    lines[0] = lines[0].replace(",channel,", f",{header},")
    orders.write_text("\n".join(lines), encoding="utf-8")
    code, _ = crmkpi("compute", exports, "--out", tmp_path / "o", "--format", "csv")
    assert code == EXIT_OK
    rejected = pl.read_csv(tmp_path / "o" / "rejected" / "orders.csv", infer_schema=False)
    assert f"{header} (source)" in rejected.columns  # the file's own cells, kept
    assert rejected.columns[-5:] == ["source_file", "source_line", "column", "check", "reason"]
    assert rejected["source_line"].to_list() == ["14", "32"]  # crmkpi's, not the file's


@pytest.mark.parametrize("header", ["_source_line", "_source_file", "_row"])
def test_source_column_named_like_a_bookkeeping_column_is_rejected_not_overwritten(
    exports: Path, header: str
) -> None:
    orders = exports / "orders.csv"
    text = orders.read_text(encoding="utf-8")
    orders.write_text(text.replace(",channel,", f",{header},", 1), encoding="utf-8")
    code, stdout = crmkpi("validate", exports)
    assert code == EXIT_INVALID_DATA
    assert "reserved_header" in stdout and header in stdout


def test_reserved_headers_cover_every_bookkeeping_column() -> None:
    from crmkpi.io.mapping import ROW_ID, SKIPPED
    from crmkpi.io.read import RESERVED_HEADERS
    from crmkpi.validate import FILE_INDEX

    assert {ROW_ID, SKIPPED, FILE_INDEX} <= RESERVED_HEADERS


def _orders_parquet(exports: Path, **columns: pl.Expr) -> None:
    """orders.csv replaced by orders.parquet with typed columns, changed as given."""
    orders = pl.read_csv(exports / "orders.csv", infer_schema=False).filter(
        pl.col("amount").str.contains(r"^[0-9.]+$")
    )
    typed = orders.with_columns(pl.col("amount").cast(pl.Float64)).with_columns(**columns)
    typed.write_parquet(exports / "orders.parquet")
    (exports / "orders.csv").unlink()
    config = exports / "crmkpi.toml"
    text = config.read_text(encoding="utf-8").replace('"orders.csv"', '"orders.parquet"')
    config.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("column", "expression", "types"),
    [
        ("amount", pl.concat_list("amount", "amount"), "List(Float64)"),
        ("amount", pl.struct("amount", "quantity"), "Struct"),
        ("ordered_at", pl.lit(1_700_000_000, pl.Int64), "Int64"),
        ("amount", pl.lit(b"12.5", pl.Binary), "Binary"),
    ],
)
def test_parquet_column_of_the_wrong_physical_type_exits_65_naming_both_types(
    exports: Path, column: str, expression: pl.Expr, types: str
) -> None:
    _orders_parquet(exports, **{column: expression})
    code, stdout = crmkpi("validate", exports)
    assert code == EXIT_INVALID_DATA
    assert f"column {column!r}: wrong_type" in stdout and types in stdout


@pytest.mark.parametrize(
    ("value", "check"),
    [
        ("1e30", "unparseable_money"),  # money text takes no exponent
        ("9" * 400, "precision_loss"),
        ("1000000000000000000", "number_out_of_range"),
        ("-1,000,000,000,000,000,000", "number_out_of_range"),
    ],
)
def test_huge_amount_in_csv_is_quarantined_as_out_of_range(
    exports: Path, value: str, check: str
) -> None:
    orders = exports / "orders.csv"
    lines = orders.read_text(encoding="utf-8").split("\n")
    cells = lines[2].split(",")
    cells[3] = f'"{value}"'
    lines[2] = ",".join(cells)
    orders.write_text("\n".join(lines), encoding="utf-8")
    rejected = _load(exports).tables["orders"].rejected
    line_3 = rejected.filter(pl.col("source_line") == 3)
    assert line_3["check"].to_list() == [check]
    assert crmkpi("compute", exports, "--out", exports.parent / "o")[0] == EXIT_OK


def test_huge_amount_in_parquet_is_quarantined_not_a_compute_error(exports: Path) -> None:
    _orders_parquet(
        exports,
        amount=pl.when(pl.int_range(pl.len()) == 1).then(1e30).otherwise(pl.col("amount")),
    )
    result = _load(exports)
    rejected = result.tables["orders"].rejected
    assert rejected.filter(pl.col("source_line") == 2)["check"].to_list() == ["number_out_of_range"]
    assert crmkpi("compute", exports, "--out", exports.parent / "o")[0] == EXIT_OK


def _load(exports: Path) -> Any:
    from crmkpi.configure import resolve_config
    from crmkpi.load import load_all

    config, folder = resolve_config(exports, None)
    return load_all(config, folder)


@pytest.mark.parametrize(
    ("error", "code"), [(PermissionError(13, "Permission denied"), 66), (OSError(5, "EIO"), 74)]
)
def test_unreadable_file_exits_66_or_74_naming_the_path(
    exports: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, code: int
) -> None:
    """Tests run as root here, where chmod 000 still reads: the failure is injected."""
    real = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path.name == "orders.csv":
            raise error
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    exit_code, stdout = crmkpi("compute", exports, "--out", exports.parent / "o")
    assert exit_code == code
    assert "orders.csv" in summary(stdout)["message"]


# --- 5. faults around the process -----------------------------------------------------------------


ENTRY = [sys.executable, "-m", "crmkpi.entry"]  # the console script, as a scheduler starts it


def _entry(*args: str | Path, **kwargs: Any) -> subprocess.Popen[str]:
    """The console script as a scheduler starts it (`crmkpi ...`), in its own process."""
    return subprocess.Popen(
        [*ENTRY, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        **kwargs,
    )


def _wait_for_handlers(pid: int) -> None:
    """Until the process catches SIGTERM (its entry point's first act, before any heavy import);
    before that the interpreter itself is starting, a window crmkpi's code cannot close."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(re.search(r"SigCgt:\s*([0-9a-f]+)", status).group(1), 16)  # type: ignore[union-attr]
        if caught >> (signal.SIGTERM - 1) & 1:
            return
        time.sleep(0.005)
    raise AssertionError("the entry point never installed its handlers")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_while_modules_are_importing_exits_with_its_code_and_the_json_line(
    exports: Path, signum: int, code: int
) -> None:
    process = _entry("compute", exports, "--out", exports.parent / "o")
    _wait_for_handlers(process.pid)  # then the engine's modules take a second or more to import
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert summary(stdout)["exit_code"] == code
    assert not (exports.parent / "o").exists()


def test_broken_stdout_pipe_after_publishing_exits_0(exports: Path) -> None:
    out = exports.parent / "o"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the summary line is printed: `... | true`
    process = subprocess.run(
        [*ENTRY, "compute", str(exports), "--out", str(out)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    os.close(write_end)
    assert process.returncode == EXIT_OK, process.stderr
    assert "Traceback" not in process.stderr
    assert (out / "manifest.json").is_file()


def test_help_and_version_do_not_import_the_engine() -> None:
    """`crmkpi --help` answers in about 0.1 s because polars, pandera and pandas stay unloaded
    (a timing would be flaky on a loaded machine; the imports decide it)."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['crmkpi', sys.argv[1]]\n"
        "try:\n"
        "    runpy.run_module('crmkpi.entry', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('polars', 'pandera', 'pandas', 'numpy') if m in sys.modules)\n"
        "print('heavy:', heavy, file=sys.stderr)\n"
    )
    for flag in ("--help", "--version"):
        ran = subprocess.run(
            [sys.executable, "-c", probe, flag], capture_output=True, text=True, cwd=REPO
        )
        assert "heavy: []" in ran.stderr, (flag, ran.stderr)
        assert "crmkpi" in ran.stdout


def test_repeated_breakdown_is_one_breakdown(exports: Path) -> None:
    out = exports.parent / "o"
    code, _ = crmkpi(
        "compute", exports, "--out", out, "--by", "rep", "--by", "rep", "--format", "csv"
    )
    assert code == EXIT_OK
    grains = pl.read_csv(out / "kpis.csv", infer_schema=False)["grain"].unique().sort()
    assert grains.to_list() == ["rep", "total"]


# --- 3. row accounting ----------------------------------------------------------------------------


def _deals_report(folder: Path, file: str, **options: str) -> Any:
    result = fx.load(folder, fx.config_doc({"deals": fx.deals_table(file=file, **options)}))
    assert not result.failures, [str(f.error) for f in result.failures]
    report = result.tables["deals"].report
    assert report.reconciles(), report
    return report


def test_blank_rows_are_skipped_and_counted_alike_in_csv_and_xlsx(tmp_path: Path) -> None:
    rows = fx.sample_rows(20)
    for folder in ("csv", "xlsx"):
        (tmp_path / folder).mkdir()
    empty = dict.fromkeys(fx.HEADERS, "")
    spaces = dict.fromkeys(fx.HEADERS, "  ")
    with_blanks = [*rows[:5], empty, *rows[5:10], spaces, *rows[10:]]
    csv_file = fx.write_csv(tmp_path / "csv" / "deals.csv", with_blanks)
    text = csv_file.read_text(encoding="utf-8").splitlines()
    text.insert(15, "")  # and an empty line, as a text editor leaves it
    csv_file.write_text("\n".join(text) + "\n", encoding="utf-8")
    fx.write_xlsx(tmp_path / "xlsx" / "deals.xlsx", [*with_blanks[:14], empty, *with_blanks[14:]])
    for folder, file in (("csv", "deals.csv"), ("xlsx", "deals.xlsx")):
        report = _deals_report(tmp_path / folder, file)
        counts = (report.rows_read, report.rows_used, report.rows_quarantined, report.rows_skipped)
        assert counts == (23, 20, 0, 3), folder


def test_cr_only_stretch_inside_lf_data_counts_every_record(tmp_path: Path) -> None:
    rows = fx.sample_rows(1193)  # with the header: 1194 records
    lines = fx.csv_text(rows).split("\n")
    text = "\n".join(lines[:600]) + "\n" + "\r".join(lines[600:612]) + "\n" + "\n".join(lines[612:])
    (tmp_path / "deals.csv").write_text(text, encoding="utf-8", newline="")
    assert len(re.split(r"\r\n|\r|\n", text.rstrip("\n"))) == 1194  # counted independently
    report = _deals_report(tmp_path, "deals.csv")
    assert (report.rows_read, report.rows_used) == (1193, 1193)


def test_utf16_without_bom_counts_every_record(tmp_path: Path) -> None:
    rows = fx.sample_rows(1194)
    fx.write_csv(tmp_path / "deals.csv", rows, encoding="utf-16-le", delimiter="\t")
    data = (tmp_path / "deals.csv").read_bytes()
    assert data.count("\n".encode("utf-16-le")) == 1195  # header + rows, counted independently
    report = _deals_report(tmp_path, "deals.csv", encoding="utf-16-le", delimiter="tab")
    assert (report.rows_read, report.rows_used) == (1194, 1194)


# --- 6. logs never carry data values --------------------------------------------------------------


def test_missing_column_message_names_no_header_of_a_headerless_file(exports: Path) -> None:
    orders = exports / "orders.csv"
    lines = orders.read_text(encoding="utf-8-sig").splitlines()
    orders.write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")  # the header is gone
    first_cells = lines[1].split(",")
    code, stdout = crmkpi("compute", exports, "--out", exports.parent / "o")
    assert code == EXIT_INVALID_DATA
    message = summary(stdout)["message"]
    assert "orders.csv" in message
    assert not [c for c in first_cells if len(c) > 3 and c in message], message


def test_every_stderr_line_is_json_under_log_format_json(exports: Path) -> None:
    process = subprocess.run(
        [*ENTRY, "compute", str(exports), "--out",
         str(exports.parent / "o"), "--as-of", "2400-01-01", "--log-format", "json"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert process.returncode == EXIT_BAD_CONFIG
    lines = process.stderr.strip().splitlines()
    assert [json.loads(line)["level"] for line in lines][-1] == "error"
    assert "as_of" in json.loads(lines[-1])["message"]


# --- 5. faults: an input that changes while the run reads it, the process locale ---------------


def test_input_changed_before_publishing_exits_75_and_publishes_nothing(
    exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmkpi import run as run_module

    write_all = run_module._write_all

    def append_while_running(*args: Any) -> Any:
        with (exports / "orders.csv").open("a", encoding="utf-8") as grows:
            grows.write("still,being,written\n")  # the export job is not done yet
        return write_all(*args)

    monkeypatch.setattr(run_module, "_write_all", append_while_running)
    code, stdout = crmkpi("compute", exports, "--out", exports.parent / "o")
    assert code == 75
    assert "input_unstable" in summary(stdout)["message"]
    assert not (exports.parent / "o").exists()


def test_outputs_do_not_depend_on_the_process_locale_or_the_input_location(
    exports: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "copied" / "elsewhere"
    shutil.copytree(exports, elsewhere)
    runs = {
        "C": (exports, {"LC_ALL": "C", "LANG": "C"}),
        "C.UTF-8": (elsewhere, {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}),
    }
    for name, (folder, locale) in runs.items():
        ran = subprocess.run(
            [*ENTRY, "compute", str(folder), "--out",
             str(tmp_path / name), "--as-of", "2024-12-31"],
            capture_output=True, text=True, cwd=REPO, timeout=300,
            env={**os.environ, **locale, "PYTHONUTF8": "0"},
        )  # fmt: skip
        assert ran.returncode == EXIT_OK, ran.stderr
    first, second = snapshot(tmp_path / "C"), snapshot(tmp_path / "C.UTF-8")
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert differing == ["manifest.json"], differing  # its timings only
    manifests = [json.loads(s["manifest.json"]) for s in (first, second)]
    for manifest in manifests:
        manifest.pop("timings_seconds")
        manifest["options"].pop("out")  # the two runs were told different folders
    assert manifests[0] == manifests[1]


# --- the volume guard ---------------------------------------------------------------------------


def test_F05_table_falling_past_max_row_drop_exits_65_until_accepted(exports: Path) -> None:
    out = exports.parent / "o"
    assert crmkpi("compute", exports, "--out", out, "--format", "csv")[0] == EXIT_OK
    published = snapshot(out)
    orders = exports / "orders.csv"
    lines = orders.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    orders.write_text("".join(lines[:500]), encoding="utf-8")  # cut on a row boundary
    code, stdout = crmkpi("compute", exports, "--out", out, "--format", "csv")
    assert code == EXIT_INVALID_DATA
    message = summary(stdout)["message"]
    assert "table orders: row_drop: 499 rows read against 1194" in message
    assert "--accept-row-drop" in message
    assert snapshot(out) == published  # nothing replaced
    # a fall within the limit passes; a confirmed one too
    assert (
        crmkpi("compute", exports, "--out", out, "--max-row-drop", "0.6", "--format", "csv")[0] == 0
    )
    orders.write_text("".join(lines[:100]), encoding="utf-8")
    assert crmkpi("compute", exports, "--out", out, "--format", "csv")[0] == EXIT_INVALID_DATA
    code, _ = crmkpi("compute", exports, "--out", out, "--accept-row-drop", "--format", "csv")
    assert code == EXIT_OK


# --- no output drops rows -----------------------------------------------------------------------


def test_table_longer_than_a_sheet_is_continued_on_further_sheets(
    exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastexcel

    monkeypatch.setattr("crmkpi.workbook.MAX_SHEET_ROWS", 100)  # Excel's limit, scaled down
    out = exports.parent / "o"
    code, _ = crmkpi("compute", exports, "--out", out, "--format", "csv,xlsx")
    assert code == EXIT_OK
    rfm = pl.read_csv(out / "rfm.csv", infer_schema=False)
    assert rfm.height > 250
    book = fastexcel.read_excel(out / "rfm.xlsx")
    expected = ["rfm", *[f"rfm ({i})" for i in range(2, (rfm.height + 99) // 100 + 1)]]
    assert book.sheet_names == expected
    sheets = [book.load_sheet(n, dtypes="string").to_polars() for n in expected]
    assert [s.height for s in sheets[:-1]] == [100] * (len(expected) - 1)
    assert pl.concat(sheets)["customer_id"].to_list() == rfm["customer_id"].to_list()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert any("rfm.xlsx" in w and "continued on" in w for w in manifest["warnings"])


def test_a_cell_the_workbook_writer_refuses_fails_74_and_publishes_nothing(
    exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xlsxwriter.worksheet import Worksheet

    monkeypatch.setattr(Worksheet, "write_number", lambda *args, **kwargs: -1)
    out = exports.parent / "o"
    code, stdout = crmkpi("compute", exports, "--out", out)
    assert code == 74
    assert "refused cells" in summary(stdout)["message"]
    assert not out.exists()

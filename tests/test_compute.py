"""`crmkpi compute` end to end, against DESIGN.md's output and CLI contracts and RELIABILITY.md
groups R and O: options and their precedence, the output files, the workbook, CSV safety, the run
guarantees (atomic publish, lock, signals, determinism), exit codes, the summary line and logs.

Runs use the tiny synthetic sample cut down to customers, orders and activities (about a second
each); hostile names, a sentinel and leading-zero ids are put into it where a test needs them.
Most runs are in-process through Typer's runner; a signal, a lock held by another process and
a second time zone need a real one.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastexcel
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner, Result

from crmkpi import __version__
from crmkpi.choices import DIMENSIONS
from crmkpi.cli import app, main
from crmkpi.labels import DIMENSION_TITLES, FAMILY_TITLES, LABELS
from crmkpi.metrics import REGISTRY
from crmkpi.run import stderr_progress
from crmkpi.samples import write_sample_folder
from crmkpi.workbook import TRUNCATION_MARK, sheet_names, write_simple_workbook
from tests.conftest import REPO

PYTHON = REPO / ".venv" / "bin" / "python"
AS_OF = "2025-12-31"
TABLES = ("customers", "orders", "activities")
CONFIG = """\
[input]
encoding = "utf-8"

[settings]
timezone = "Asia/Shanghai"
clv_min_repeat_buyers = 5

[run]
max_reject_rate = 0.5
{run}

[tables.customers]
file = "customers.csv"

[tables.orders]
file = "orders.csv"

[tables.activities]
file = "activities.csv"
"""
KPI_COLUMNS = [
    "period",
    "period_start",
    "period_end",
    "partial_period",
    "grain",
    "segment",
    "rep",
    "metric",
    "value",
    "numerator",
    "denominator",
    "unit",
    "previous_value",
    "change",
]
OPTIONS = [
    "--period",
    "--by",
    "--out",
    "--format",
    "--metrics",
    "--as-of",
    "--config",
    "--engine",
    "--fiscal-year-start",
    "--strict",
    "--max-reject-rate",
    "--max-row-drop",
    "--accept-row-drop",
    "--quiet",
    "--verbose",
    "--log-format",
    "--lang",
    "--bom",
    "--no-bom",
]
GRAINS = ["total", "segment", "rep", "segment+rep"]
PROFILES = ("rfm", "churn_risk", "cohorts", "clv_forecast")
SENTINEL = "Qx7Sentinel"
HOSTILE = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\t=1+2", "\r=3+4"]
TRIGGER = r"^[=+\-@\t\r\n]"
NUMBER = r"^-?\d+(\.\d+)?(e-?\d+)?$"
BOM = b"\xef\xbb\xbf"
SUMMARY_KEYS = {
    "status",
    "run_id",
    "periods",
    "metrics_computed",
    "metrics_skipped",
    "rows_rejected",
    "outputs",
}
# Runs `crmkpi` through main() with the publish step held back, so a test can signal it while
# its outputs sit complete in the staging folder.
SLOW_PUBLISH = """
import sys, time
import crmkpi.run
from crmkpi.cli import main

publish = crmkpi.run.swap_in


def slow_swap_in(*args):
    time.sleep(120)
    publish(*args)


crmkpi.run.swap_in = slow_swap_in
sys.argv = ["crmkpi", *sys.argv[1:]]
main()
"""


# --- helpers ------------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any CRMKPI_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMKPI_")}
    return {**env, **extra}


def invoke(*args: str, **env: str) -> Result:
    """`crmkpi compute ARGS` in-process, with only the given CRMKPI_* variables set."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CRMKPI_")}
    return CliRunner().invoke(app, ["compute", *args], env={**unset, **env})


def summary_of(stdout: str) -> dict[str, Any]:
    """The last stdout line: one JSON object with the scheduler's keys."""
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    assert set(summary) >= SUMMARY_KEYS, summary
    return summary


def ok(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    summary = summary_of(result.stdout)
    assert summary["status"] == "ok"
    return summary


def failed(result: Result, code: int) -> dict[str, Any]:
    """The run failed with `code`, and said so on its last stdout line."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    summary = summary_of(result.stdout)
    assert (summary["status"], summary["exit_code"], summary["outputs"]) == ("failed", code, [])
    return summary


def tree(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def staging_folders(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".staging-{out.name}.*"))


def text_csv(path: Path) -> pl.DataFrame:
    """A CSV output with every cell as the text written."""
    return pl.read_csv(path, infer_schema=False)


def kpis(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "kpis.csv", try_parse_dates=True)


def periods(out: Path) -> list[str]:
    return text_csv(out / "kpis.csv")["period"].unique(maintain_order=True).to_list()


def exports(tiny: Path, folder: Path, run: str = "") -> Path:
    """The three tables of the tiny sample in `folder`, with a crmkpi.toml whose [run] table
    allows its deliberately bad rows and adds `run`."""
    folder.mkdir(parents=True)
    for table in TABLES:
        shutil.copyfile(tiny / f"{table}.csv", folder / f"{table}.csv")
    (folder / "crmkpi.toml").write_text(CONFIG.format(run=run), encoding="utf-8")
    return folder


def make_hostile(folder: Path) -> Path:
    """Formula-looking segment and rep names, a rep carrying the sentinel, customer ids with
    leading zeros, and a quarantined order (negative amount) with the sentinel, a leading tab
    and a leading CR in its text cells."""
    reps = [*HOSTILE, f"Rep {SENTINEL}"]
    for table in TABLES:
        path = folder / f"{table}.csv"
        frame = text_csv(path).with_columns(pl.col("customer_id").str.replace("^C", "0"))
        if table == "customers":
            segments = frame["segment"].to_list()
            segments[8 : 8 + len(HOSTILE)] = HOSTILE  # clear of the quarantined rows
            frame = frame.with_columns(pl.Series("segment", segments))
        if table == "orders":
            names = [
                reps[i % 8] if i % 8 < len(reps) else rep for i, rep in enumerate(frame["rep"])
            ]
            bad = pl.col("amount").str.starts_with("-")
            frame = frame.with_columns(
                pl.Series("rep", names),
                pl.when(bad).then(pl.lit(f"\t{SENTINEL}")).otherwise("product").alias("product"),
                pl.when(bad).then(pl.lit("\r=9+9")).otherwise("category").alias("category"),
            )
            assert frame.filter(bad).height == 1
        frame.write_csv(path)
    return folder


def wait_for_staged_outputs(out: Path, process: subprocess.Popen[str]) -> Path:
    """The staging folder of `process` once its manifest is written (publish held back)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        staged = [s for s in staging_folders(out) if (s / "manifest.json").is_file()]
        if staged:
            return staged[0]
        if process.poll() is not None:
            pytest.fail(f"the run ended early: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail("no staging folder appeared")


def start_slow_run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(PYTHON), "-c", SLOW_PUBLISH, "compute", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=REPO,
    )


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    write_sample_folder(folder, seed=7, scale="tiny", file_format="mixed")
    return folder


@pytest.fixture
def clean(tiny: Path, tmp_path: Path) -> Path:
    return exports(tiny, tmp_path / "exports")


@dataclass
class Run:
    exports: Path
    out: Path
    result: Result
    outputs: dict[str, str]
    manifest: dict[str, Any]
    finished: float


@pytest.fixture(scope="module")
def hostile(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One run on the hostile exports in all three formats, json logs at debug level, in the
    Asia/Tokyo time zone."""
    root = tmp_path_factory.mktemp("hostile")
    folder = make_hostile(exports(tiny, root / "exports"))
    out = root / "out"
    args = ["--format", "csv,parquet,xlsx", "--as-of", AS_OF, "--log-format", "json", "-v"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        result = invoke(str(folder), "--out", str(out), *args)
    time.tzset()
    ok(result)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return Run(folder, out, result, tree(out), manifest, time.time())


@pytest.fixture(scope="module")
def rerun(hostile: Run) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The hostile run again from the console script, in another time zone, at least two
    seconds later (the zip timestamp resolution), into another folder, with text logs."""
    time.sleep(max(0.0, hostile.finished + 2.1 - time.time()))
    out = hostile.out.parent / "again"
    command = [str(REPO / ".venv" / "bin" / "crmkpi"), "compute", str(hostile.exports)]
    args = ["--out", str(out), "--format", "csv,parquet,xlsx", "--as-of", AS_OF, "-v"]
    process = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=clean_env(TZ="America/Los_Angeles"),
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    return process, out


# --- 1. options ---------------------------------------------------------------------------------


def test_help_lists_every_option_and_version_prints() -> None:
    result = CliRunner().invoke(app, ["compute", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in OPTIONS:
        assert re.search(rf"{option}\b", result.stdout), option
    # no markup may eat the bracketed parts of the help (wrapped lines joined)
    words = " ".join(result.stdout.split())
    assert "[default: quarter]" in words and "[run]" in words and "[input]" in words
    version = CliRunner().invoke(app, ["--version"])
    assert (version.exit_code, version.stdout) == (0, f"crmkpi {__version__}\n")
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)


def test_precedence_cli_over_environment_over_config_over_defaults(
    tiny: Path, tmp_path: Path
) -> None:
    folder = exports(tiny, tmp_path / "exports", run='period = "year"')
    out = tmp_path / "out"
    ok(invoke(str(folder), "--out", str(out), "--metrics", "revenue"))
    assert periods(out) == ["2024", "2025"]
    assert sorted(p.name for p in out.glob("kpis.*")) == ["kpis.csv", "kpis.xlsx"]  # default

    ok(invoke(str(folder), "--out", str(out), "--metrics", "revenue", CRMKPI_PERIOD="month"))
    assert periods(out)[:2] == ["2024-01", "2024-02"] and len(periods(out)) == 24

    week = invoke(
        str(folder),
        "--out",
        str(out),
        "--metrics",
        "revenue",
        "--period",
        "week",
        CRMKPI_PERIOD="month",
        CRMKPI_FORMAT="csv",
    )
    ok(week)
    assert all(re.fullmatch(r"\d{4}-W\d{2}", p) for p in periods(out))
    assert not (out / "kpis.xlsx").exists()  # the environment still gives what the CLI does not
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["options"]["period"] == "week"
    assert manifest["options"]["format"] == ["csv"]


@pytest.mark.parametrize(
    ("run", "env", "args", "named"),
    [
        ("", {}, ["--fiscal-year-start", "13"], "option --fiscal-year-start"),
        ("", {"CRMKPI_PERIOD": "fortnight"}, [], "CRMKPI_PERIOD"),
        ('period = "fortnight"', {}, [], "crmkpi.toml run.period"),
        ("", {"CRMKPI_MAX_REJECT_RATE": "2"}, [], "CRMKPI_MAX_REJECT_RATE"),
        ("colour = true", {}, [], "run: unknown key(s) colour"),
        ("", {"CRMKPI_SETTING_INACTIVITY_DAYS": "soon"}, [], "CRMKPI_SETTING_INACTIVITY_DAYS"),
    ],
)
def test_bad_value_in_any_layer_exits_78_naming_it(
    tiny: Path, tmp_path: Path, run: str, env: dict[str, str], args: list[str], named: str
) -> None:
    folder = exports(tiny, tmp_path / "exports", run=run)
    out = tmp_path / "out"
    result = invoke(str(folder), "--out", str(out), *args, **env)
    failed(result, 78)
    assert named in result.stderr
    assert not out.exists()


def test_fiscal_year_start_labels_and_settings_from_environment(
    clean: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fy"
    ok(invoke(str(clean), "--out", str(out), "--metrics", "revenue", "--fiscal-year-start", "4"))
    frame = kpis(out).filter(pl.col("period") == "FY2025-Q1")
    assert frame.select("period_start", "period_end").unique().rows() == [
        (dt.date(2024, 4, 1), dt.date(2024, 6, 30))
    ]
    assert all(p.startswith("FY") for p in periods(out))

    churned: dict[str, tuple[float, str]] = {}
    for days in ("", "30"):
        out = tmp_path / f"churn{days}"
        env = {"CRMKPI_SETTING_INACTIVITY_DAYS": days} if days else {}
        summary = ok(invoke(str(clean), "--out", str(out), "--metrics", "churned_customers", **env))
        total = kpis(out).filter(pl.col("grain") == "total")
        churned[days] = (total["value"].sum(), summary["run_id"])
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["settings"]["inactivity_days"] == int(days or 365)
    assert churned["30"][0] > churned[""][0]
    assert churned["30"][1] != churned[""][1]  # the run id follows the settings


# --- 2. outputs ---------------------------------------------------------------------------------


def test_outputs_files_columns_order_and_manifest(hostile: Run) -> None:
    out, manifest = hostile.out, hostile.manifest
    quarantined = {t["table"]: t["rows_quarantined"] for t in manifest["tables"]}
    rejected = [f"rejected/{t}.csv" for t in TABLES if quarantined[t]]
    assert len(rejected) == 3
    tables = [f"{name}.{fmt}" for name in ("kpis", *PROFILES) for fmt in ("csv", "parquet", "xlsx")]
    assert sorted(hostile.outputs) == sorted([*tables, *rejected, "manifest.json"])

    frame = pl.read_parquet(out / "kpis.parquet")
    assert frame.columns == KPI_COLUMNS
    assert text_csv(out / "kpis.csv").columns == KPI_COLUMNS
    assert frame.schema["period_start"] == pl.Date and frame.schema["value"] == pl.Float64
    assert text_csv(out / "kpis.csv").height == frame.height
    keys = ["period_start", "grain_order", "segment", "rep", "metric"]
    keyed = frame.with_columns(grain_order=pl.col("grain").replace_strict(GRAINS, range(4)))
    assert keyed.equals(keyed.sort(keys, nulls_last=False, maintain_order=True))
    assert not keyed.select(keys).is_duplicated().any()
    roll_ups = frame.group_by("grain").agg(pl.col("segment", "rep").null_count(), pl.len())
    nulls = {g: (s == n, r == n) for g, s, r, n in roll_ups.iter_rows()}
    assert nulls == {
        "total": (True, True),
        "segment": (False, True),
        "rep": (True, False),
        "segment+rep": (False, False),
    }

    # profile tables: the same rows in every format, customer ids as the text exported
    exported = set(text_csv(hostile.exports / "customers.csv")["customer_id"])
    assert all(i.startswith("00") for i in exported)
    for name in PROFILES:
        csv = text_csv(out / f"{name}.csv")
        parquet = pl.read_parquet(out / f"{name}.parquet")
        sheet = fastexcel.read_excel(out / f"{name}.xlsx").load_sheet(0).to_polars()
        assert csv.columns == parquet.columns == sheet.columns
        assert csv.height == parquet.height == sheet.height > 0
        assert ("customer_id" in csv.columns) is (name != "cohorts")
        if name != "cohorts":
            ids = csv["customer_id"].to_list()
            assert set(ids) <= exported
            assert parquet["customer_id"].dtype == pl.String
            assert parquet["customer_id"].to_list() == sheet["customer_id"].to_list() == ids

    # rejected rows as read, with where and why
    for path in rejected:
        table = path.removeprefix("rejected/").removesuffix(".csv")
        rows = text_csv(out / path)
        assert rows.columns[-5:] == ["source_file", "source_line", "column", "check", "reason"]
        assert rows.height == quarantined[table]
        assert rows.select(pl.all().is_null().any()).row(0)[-5:] == (False,) * 5
        assert set(rows["source_file"]) == {f"{table}.csv"}  # relative to the input folder

    # manifest: inputs hashed and reconciled, metrics accounted for, outputs hashed, timings
    assert manifest["run_id"] and manifest["as_of"] == AS_OF
    assert manifest["crmkpi_version"] == __version__
    for entry in manifest["inputs"]:
        path = hostile.exports / entry["path"]  # named relative to the input folder
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["rows_read"] == text_csv(path).height
    assert sorted(Path(e["path"]).name for e in manifest["inputs"]) == sorted(
        f"{t}.csv" for t in TABLES
    )
    for table in manifest["tables"]:
        parts = ("rows_used", "rows_quarantined", "footer_rows", "rows_skipped")
        assert table["rows_read"] == sum(table[p] for p in parts) + table["rows_deduplicated"]
    computed = set(manifest["metrics_computed"])
    skipped = manifest["metrics_skipped"]
    assert computed and skipped and all(skipped.values())
    assert not computed & set(skipped)
    assert computed | set(skipped) == {m.name for m in REGISTRY.outputs()}
    assert set(frame["metric"]) == computed
    assert skipped["deals_won"] == "table deals not given"
    assert skipped["win_rate"] == "needs deals_won (table deals not given)"
    assert skipped["category_engagement"] == "written only at grains with category (--by)"
    listed = {o["path"]: o for o in manifest["outputs"]}
    assert sorted(listed) == sorted(set(hostile.outputs) - {"manifest.json"})
    for path, entry in listed.items():
        assert entry["sha256"] == hostile.outputs[path]
    assert listed["kpis.csv"]["rows"] == frame.height
    timings = manifest["timings_seconds"]
    assert set(timings) >= {"config", "load", "compute", "profiles", "write"}
    assert all(isinstance(s, float) and s >= 0 for s in timings.values())


def _bgnbd_log_likelihood(r: float, alpha: float, a: float, b: float, x: int, t_x: float,
                          T: float) -> float:  # fmt: skip
    """FHL 2005 eq. 6 for one customer, the two terms combined by hand in log space."""

    def lbeta(u: float, v: float) -> float:
        return math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v)

    common = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
    alive = lbeta(a, b + x) - lbeta(a, b) - (r + x) * math.log(alpha + T)
    if x == 0:
        return common + alive
    gone = lbeta(a + 1, b + x - 1) - lbeta(a, b) - (r + x) * math.log(alpha + t_x)
    top = max(alive, gone)
    return common + top + math.log(math.exp(alive - top) + math.exp(gone - top))


def test_clv_forecast_table_and_its_fit_in_the_manifest(hostile: Run) -> None:
    out, entry = hostile.out, hostile.manifest["clv_forecast"]
    table = pl.read_parquet(out / "clv_forecast.parquet")
    rfm_table = pl.read_parquet(out / "rfm.parquet")
    assert table["customer_id"].to_list() == rfm_table["customer_id"].to_list()
    assert table["frequency"].to_list() == rfm_table["frequency"].to_list()
    assert table["T"].to_list() == pytest.approx((rfm_table["tenure_days"] / 7).to_list())
    assert entry["time_unit"] == "week" and entry["fit_by"] is None
    (fit,) = entry["fits"]
    assert fit["customers"] == table.height
    assert fit["repeat_buyers"] == (table["frequency"] > 0).sum()
    model = fit["bg_nbd"]
    assert model["converged"] is True
    # the tiny sample's repeat values have no interior Gamma-Gamma maximum: that model is
    # skipped with its reason, the values stay empty and the metrics reading them say why
    assert fit["gamma_gamma"]["converged"] is False
    assert fit["skipped"].startswith("the Gamma-Gamma fit did not converge")
    assert table["predicted_clv"].null_count() == table.height
    skipped = hostile.manifest["metrics_skipped"]
    assert (
        fit["skipped"] in skipped["predicted_clv"]
        and fit["skipped"] in skipped["predicted_clv_total"]
    )
    assert "expected_purchases_next_period" in hostile.manifest["metrics_computed"]
    # the manifest's log-likelihood is the table's customers' at the manifest's parameters
    params = [model[k] for k in ("r", "alpha", "a", "b")]
    direct = sum(_bgnbd_log_likelihood(*params, x, tx, t) for x, tx, t in
                 table.select("frequency", "recency", "T").iter_rows())  # fmt: skip
    assert model["log_likelihood"] == pytest.approx(direct, rel=1e-9)
    assert table["p_alive"].is_between(0, 1).all() and table["expected_purchases"].min() > 0
    # churn_risk carries the probability beside its other figures
    assert "p_alive" in pl.read_parquet(out / "churn_risk.parquet").columns


# --- 3. the workbook ----------------------------------------------------------------------------


def sheet_xml(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as book:
        return {
            name: book.read(name).decode("utf-8")
            for name in book.namelist()
            if name.startswith("xl/worksheets/sheet")
        }


def test_workbook_sheets_values_and_no_live_content(
    hostile: Run, clean: Path, tmp_path: Path
) -> None:
    path = hostile.out / "kpis.xlsx"
    book = fastexcel.read_excel(path)
    assert book.sheet_names == [
        "Summary",
        "segment",
        "rep",
        "segment+rep",
        "Metrics",
        "Data quality",
        "Run info",
    ]
    frame = pl.read_parquet(hostile.out / "kpis.parquet")
    total = frame.filter(pl.col("grain") == "total")
    summary = book.load_sheet("Summary").to_polars()
    assert summary.columns[:4] == ["Period", "start", "end", "partial"]
    assert summary["Period"].to_list() == total["period"].unique(maintain_order=True).to_list()
    catalogue_order = list(REGISTRY.metrics)  # metrics across in catalogue order
    assert summary.columns[4:] == [
        REGISTRY[m].title_en for m in sorted(total["metric"].unique(), key=catalogue_order.index)
    ]
    revenue = total.filter(pl.col("metric") == "revenue")["value"].to_list()
    assert summary[REGISTRY["revenue"].title_en].to_list() == pytest.approx(revenue)
    for grain in GRAINS[1:]:
        sheet = book.load_sheet(grain).to_polars()
        dims = grain.split("+")
        assert sheet.columns[: 1 + len(dims)] == ["Period", *dims]
        rows = frame.filter(pl.col("grain") == grain).select("period", *dims).unique()
        assert sheet.height == rows.height
    dictionary = book.load_sheet("Metrics").to_polars()
    assert dictionary.columns[:3] == ["Metric", "title", "title (Chinese)"]
    assert dictionary["Metric"].to_list() == [m.name for m in REGISTRY.outputs()]
    quality = book.load_sheet("Data quality").to_polars()
    assert quality["Table"].to_list() == list(TABLES)
    assert quality["rows read"].to_list() == [t["rows_read"] for t in hostile.manifest["tables"]]
    info = dict(book.load_sheet("Run info").to_polars().iter_rows())
    assert (info["run id"], info["as of"]) == (hostile.manifest["run_id"], AS_OF)

    sheets = sheet_xml(path)
    assert len(sheets) == 7
    for name, xml in sheets.items():
        assert not re.search(r"<f[ >]", xml), name
        assert "<hyperlink" not in xml, name
        assert "<pane " in xml and "<autoFilter " in xml, name
    with zipfile.ZipFile(path) as archive:
        assert any(n.startswith("xl/charts/chart") for n in archive.namelist())
        assert not any("hyperlink" in n for n in archive.namelist())


def test_sheet_names_are_sanitised_and_unique() -> None:
    wanted = ["a/b:c", "a?b*c", "[x]\\y", "z" * 40, "Z" * 40, "'quoted'", "Summary", "summary"]
    names = sheet_names(wanted)
    assert len(set(n.casefold() for n in names)) == len(wanted)
    for name in names:
        assert 0 < len(name) <= 31 and not re.search(r"[\[\]:*?/\\]", name), name
    assert names[:3] == ["a_b_c", "a_b_c (2)", "_x__y"]


def test_chinese_workbook_has_no_english_label_and_csv_keeps_its_columns(
    clean: Path, tmp_path: Path
) -> None:
    """--lang zh: sheet names, headers, run-info items and dictionary labels are Chinese; the
    tidy table's column names stay machine-readable."""
    for lang in ("en", "zh"):
        ok(
            invoke(
                str(clean), "--out", str(tmp_path / lang), "--lang", lang, "--format", "csv,xlsx"
            )
        )
    zh, en = LABELS["zh"], LABELS["en"]
    english = {
        *en.values(),
        *DIMENSION_TITLES["en"].values(),
        *DIMENSIONS,
        *FAMILY_TITLES["en"].values(),
    }
    english -= {*zh.values(), "crmkpi"}
    book = fastexcel.read_excel(tmp_path / "zh" / "kpis.xlsx")
    assert book.sheet_names == [
        zh["summary_sheet"],
        DIMENSION_TITLES["zh"]["segment"],
        DIMENSION_TITLES["zh"]["rep"],
        f"{DIMENSION_TITLES['zh']['segment']}+{DIMENSION_TITLES['zh']['rep']}",
        zh["metrics_sheet"],
        zh["quality"],
        zh["run_sheet"],
    ]
    for name in book.sheet_names:
        headers = book.load_sheet(name, dtypes="string").to_polars().columns
        assert not english & set(headers), (name, english & set(headers))
    summary = book.load_sheet(zh["summary_sheet"]).to_polars().columns
    assert summary[:4] == [zh["period"], zh["start"], zh["end"], zh["partial_period"]]
    assert REGISTRY["revenue"].title_zh in summary
    info = book.load_sheet(zh["run_sheet"], dtypes="string").to_polars()
    assert set(info[zh["item"]]) <= set(zh.values())
    dictionary = book.load_sheet(zh["metrics_sheet"], dtypes="string").to_polars()
    assert set(dictionary[zh["better"]].drop_nulls()) <= {zh["higher"], zh["lower"], ""}
    assert set(dictionary[zh["family"]]) <= set(FAMILY_TITLES["zh"].values())
    csv_header = {lang: pl.read_csv(tmp_path / lang / "kpis.csv").columns for lang in ("en", "zh")}
    assert csv_header["zh"] == csv_header["en"] == KPI_COLUMNS


def test_long_cells_in_a_profile_workbook_are_truncated_and_reported(tmp_path: Path) -> None:
    frame = pl.DataFrame({"customer_id": ["007"], "segment": ["s" * 40_000]})
    created = dt.datetime(2025, 12, 31)
    warnings = write_simple_workbook(tmp_path / "rfm.xlsx", frame, "rfm", created)
    assert warnings == ["a text cell over 32,767 characters was truncated in rfm.xlsx"]
    sheet = fastexcel.read_excel(tmp_path / "rfm.xlsx").load_sheet("rfm").to_polars()
    assert sheet["customer_id"].to_list() == ["007"]
    assert sheet["segment"][0].endswith(TRUNCATION_MARK) and len(sheet["segment"][0]) == 32_767


# --- 4. CSV for spreadsheets --------------------------------------------------------------------


def neutralised_cells(frame: pl.DataFrame) -> int:
    return sum(
        frame[c].str.contains(r"^'[=+\-@\t\r\n]").fill_null(False).sum() for c in frame.columns
    )


def test_csv_bom_and_formula_neutralisation(hostile: Run, clean: Path, tmp_path: Path) -> None:
    out = hostile.out
    csvs = sorted(out.rglob("*.csv"))
    assert all(p.read_bytes().startswith(BOM) for p in csvs)
    frames = {p: text_csv(p) for p in csvs}
    for path, frame in frames.items():
        for column in frame.columns:  # no cell a spreadsheet would run (numbers are numbers)
            cells = frame[column].drop_nulls()
            runnable = cells.str.contains(TRIGGER) & ~cells.str.contains(NUMBER)
            assert not runnable.any(), (path.name, column)
    table = frames[out / "kpis.csv"]
    formulas = {name.strip() for name in HOSTILE}  # input text is stripped when read
    assert {"'" + f for f in formulas} <= set(table["rep"]) & set(table["segment"])
    assert not formulas & (set(table["rep"]) | set(table["segment"]))
    quarantined = frames[out / "rejected" / "orders.csv"].filter(
        pl.col("product") == f"'\t{SENTINEL}"
    )  # the row as it was read: leading tab and CR kept, and neutralised
    assert quarantined["category"].to_list() == ["'\r=9+9"]
    counted = sum(neutralised_cells(frame) for frame in frames.values())
    assert counted > 0
    assert hostile.manifest["cells_neutralised_against_formulas"] == counted

    book = fastexcel.read_excel(out / "kpis.xlsx")
    for grain, column in (("rep", "rep"), ("segment", "segment")):
        values = set(book.load_sheet(grain).to_polars()[column])
        assert formulas <= values  # plain text cells, not neutralised and not formulas
        assert not any(str(v).startswith("'") for v in values)
    strings = zipfile.ZipFile(out / "kpis.xlsx").read("xl/sharedStrings.xml").decode()
    assert '<t>=HYPERLINK("http://x")</t>' in strings  # a shared string

    ok(invoke(str(clean), "--out", str(tmp_path / "plain"), "--no-bom", "--format", "csv"))
    plain = sorted((tmp_path / "plain").rglob("*.csv"))
    assert plain and not any(p.read_bytes().startswith(BOM) for p in plain)
    assert text_csv(tmp_path / "plain" / "kpis.csv").columns == KPI_COLUMNS


# --- 5. run guarantees --------------------------------------------------------------------------


def test_results_do_not_depend_on_the_clock_or_time_zone(
    hostile: Run, rerun: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    process, out = rerun
    assert summary_of(process.stdout)["run_id"] == hostile.manifest["run_id"]
    for name in ("kpis", *PROFILES):
        first = pl.read_parquet(hostile.out / f"{name}.parquet")
        again = pl.read_parquet(out / f"{name}.parquet")
        assert_frame_equal(again, first, check_exact=False, rel_tol=1e-12)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [o["rows"] for o in manifest["outputs"]] == [
        o["rows"] for o in hostile.manifest["outputs"]
    ]


def test_reruns_are_byte_identical(
    hostile: Run, rerun: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    _, out = rerun
    again = tree(out)
    results = [p for p in hostile.outputs if p != "manifest.json"]
    assert len(results) == 18  # 5 tables x 3 formats + 3 rejected
    assert {p: again[p] for p in results} == {p: hostile.outputs[p] for p in results}


def test_sigkill_during_write_keeps_previous_outputs_and_holds_off_a_second_run(
    clean: Path, tmp_path: Path
) -> None:
    out = tmp_path / "kpis"
    first = ok(invoke(str(clean), "--out", str(out)))
    before = tree(out)
    writer = start_slow_run(str(clean), "--out", str(out), "--as-of", "2025-06-30")
    try:
        staged = wait_for_staged_outputs(out, writer)
        # R07: a second run while the first holds the folder exits 75 and writes nothing
        files = tree(tmp_path)
        second = invoke(str(clean), "--out", str(out), "--as-of", "2025-03-31")
        failed(second, 75)
        assert "lock_held" in second.stderr and f'"pid": {writer.pid}' in second.stderr
        assert tree(tmp_path) == files
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert tree(out) == before  # R01: the previous outputs, byte for byte
    assert text_csv(out / "kpis.csv").height > 0
    assert json.loads((out / "manifest.json").read_text())["run_id"] == first["run_id"]
    assert staged.is_dir()  # the killed run's leftovers, until the next run
    # R08: the lock died with its holder; the next run (another run id) cleans up
    ok(invoke(str(clean), "--out", str(out), "--format", "csv"))
    assert staging_folders(out) == []
    assert not (out / "kpis.xlsx").exists()


def test_sigterm_and_sigint_abort_cleanly(clean: Path, tmp_path: Path) -> None:
    signals = {signal.SIGTERM: 143, signal.SIGINT: 130}
    writers = {s: start_slow_run(str(clean), "--out", str(tmp_path / s.name)) for s in signals}
    try:
        for signum, writer in writers.items():
            wait_for_staged_outputs(tmp_path / signum.name, writer)
            writer.send_signal(signum)
        ended = {signum: writer.communicate(timeout=30) for signum, writer in writers.items()}
    finally:
        for writer in writers.values():
            writer.kill()
    for signum, code in signals.items():
        out = tmp_path / signum.name
        stdout, stderr = ended[signum]
        assert writers[signum].returncode == code, stderr
        assert summary_of(stdout)["exit_code"] == code
        assert f"stopped by signal {signum.name}" in stderr
        assert staging_folders(out) == [] and not out.exists()  # nothing published or left
        ok(invoke(str(clean), "--out", str(out), "--format", "csv"))  # the lock was released


@pytest.mark.parametrize("where", ["below a file", "below /proc"])
def test_unwritable_output_fails_73_before_any_processing(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "sub" / "kpis" if where == "below a file" else Path("/proc/x/kpis")

    def no_load(*args: object) -> None:
        raise AssertionError("loaded the inputs before checking the output location")

    monkeypatch.setattr("crmkpi.run.load_all", no_load)
    entries = listing(tmp_path)
    result = invoke(str(clean), "--out", str(out))
    failed(result, 73)
    assert str(out.parent) in result.stderr
    assert listing(tmp_path) == entries and not out.parent.exists()
    assert (tmp_path / "a-file").read_text() == "x"


def test_write_failure_exits_74_and_keeps_previous_outputs(
    clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "kpis"
    ok(invoke(str(clean), "--out", str(out)))
    before = tree(out)

    def disk_full(*args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "kpis.csv")

    def fsync_fails(*args: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    for target, fault in (
        ("crmkpi.run.write_table", disk_full),
        ("crmkpi.publish._fsync_tree", fsync_fails),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(target, fault)
            result = invoke(str(clean), "--out", str(out), "--as-of", "2025-06-30")
        failed(result, 74)
        assert "nothing published" in result.stderr
        assert tree(out) == before and staging_folders(out) == []


# --- 6. exit codes, summary line, logs ----------------------------------------------------------


def break_exports(folder: Path, fault: str) -> None:
    if fault == "orders file missing":
        (folder / "orders.csv").unlink()
    elif fault == "orders file empty":
        (folder / "orders.csv").write_bytes(b"")
    elif fault == "config unreadable":
        (folder / "crmkpi.toml").write_text("[run\nperiod = ", encoding="utf-8")


@pytest.mark.parametrize(
    ("fault", "args", "code", "said"),
    [
        ("input folder missing", [], 66, "does not exist"),
        ("orders file missing", [], 66, "orders"),
        ("orders file empty", [], 65, "empty_file"),
        ("", ["--max-reject-rate", "0.01"], 65, "reject rate"),
        ("", ["--strict"], 65, "--strict"),
        ("config unreadable", [], 78, "crmkpi.toml"),
    ],
)
def test_exit_codes_and_failure_summary(
    clean: Path, tmp_path: Path, fault: str, args: list[str], code: int, said: str
) -> None:
    break_exports(clean, fault)
    folder = tmp_path / "nowhere" if fault == "input folder missing" else clean
    out = tmp_path / "out"
    result = invoke(str(folder), "--out", str(out), *args)
    summary = failed(result, code)
    assert said in summary["message"] and said in result.stderr
    assert not out.exists() and staging_folders(out) == []


def test_usage_error_exits_2(clean: Path, tmp_path: Path) -> None:
    result = invoke(str(clean), "--out", str(tmp_path / "out"), "--colour")
    assert result.exit_code == 2
    assert "No such option" in result.stderr and not (tmp_path / "out").exists()


def test_unexpected_error_exits_1_naming_no_data(
    clean: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(*args: object) -> None:
        raise ValueError(f"cannot add {SENTINEL!r} to 3")

    monkeypatch.setattr("crmkpi.run.compute", broken)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["crmkpi", "compute", str(clean), "--out", str(out)])
    for name in [k for k in os.environ if k.startswith("CRMKPI_")]:
        monkeypatch.delenv(name)
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 1
    stdout, stderr = capsys.readouterr()
    assert "unexpected error (ValueError)" in stderr
    summary = summary_of(stdout)
    assert (summary["status"], summary["exit_code"]) == ("failed", 1)
    assert SENTINEL not in stdout + stderr
    assert not out.exists() and staging_folders(out) == []


def test_logs_on_stderr_as_text_or_json_never_a_data_value(
    hostile: Run, rerun: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    # the sentinel is in the outputs, so the data did pass through the run
    assert f"Rep {SENTINEL}" in set(text_csv(hostile.out / "kpis.csv")["rep"])
    assert SENTINEL in (hostile.out / "rejected" / "orders.csv").read_text(encoding="utf-8-sig")

    assert hostile.result.stdout.count("\n") == 1  # stdout: the summary line only
    records = [json.loads(line) for line in hostile.result.stderr.splitlines()]
    assert {"level", "message"} <= set(records[0])
    messages = {(r["level"], r["message"]) for r in records}
    assert {
        ("debug", "stage started"),
        ("info", "table loaded"),
        ("warning", "rows quarantined"),
    } <= messages
    assert {r["table"] for r in records if r["message"] == "table loaded"} == set(TABLES)

    process, _ = rerun
    lines = process.stderr.splitlines()
    assert lines and all(re.match(r"crmkpi (debug|info|warning): ", line) for line in lines)
    assert process.stdout.count("\n") == 1
    for stderr in (hostile.result.stderr, process.stderr):
        assert SENTINEL not in stderr
        assert "=HYPERLINK" not in stderr and "0000001" not in stderr
        assert "…" not in stderr  # no progress display: stderr is not a terminal


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, quiet, shown in (
        (Terminal(), False, True),
        (Terminal(), True, False),
        (io.StringIO(), False, False),
    ):
        monkeypatch.setattr(sys, "stderr", stream)
        stderr_progress(quiet)("load")
        assert (stream.getvalue() == "crmkpi: load…\n") is shown

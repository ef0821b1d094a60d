"""`make bench`: crmkpi against the floor, pandas and DuckDB on the same generated files.

Each contender runs in its own fresh Python process (so its peak memory is its own and no
cache is shared), for Parquet and for CSV inputs. The core-subset results of the three
implementations are asserted equal before any timing is reported. This is a measurement, not a
test: nothing here fails on a timing.

    python benchmarks/bench.py --scale medium [--formats parquet,csv] [--out benchmarks]

With `--engine spark` (or duckdb, sqlframe) it measures instead crmkpi end to end on that
engine against Polars, on the same files, into results-<engine>.md and .json.

A contender that fails (a MemoryError, or killed by the OOM killer) is recorded as failed with
its return code and peak memory; the others still run. A scale larger than memory (xlarge,
generated chunk by chunk) is measured on Parquet only and without pandas.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
# Where the results go by default: the big scales keep theirs apart from medium's.
RESULTS = {"large": HERE / "large", "xlarge": HERE / "xlarge"}
PANDAS_LEFT_OUT = (
    "left out: the scale is larger than memory, and pandas holds each table whole, several times"
)

# Each snippet runs in a child process and prints one JSON object after this mark (libraries
# may print other lines).
_MARK = "BENCH-RESULT "
# A child offers itself to the OOM killer first, so that running out of memory ends the
# measurement, not the machine's other work.
_CHILD = """
import json, resource, sys, time
try:
    with open("/proc/self/oom_score_adj", "w") as adj:
        adj.write("1000")
except OSError:
    pass
sys.path.insert(0, {repo!r})
from pathlib import Path
folder, fmt = Path({folder!r}), {fmt!r}
{setup}
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
print("BENCH-RESULT " + json.dumps({{"seconds": seconds, "peak_rss_mb": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}}))
"""
_FLOOR_SETUP = "import polars as pl\nfrom crmkpi.tables import TABLE_NAMES"
_FLOOR = """
frames = {}
for table in TABLE_NAMES:
    path = folder / f"{table}.{fmt}"
    if path.exists():
        frames[table] = (pl.read_parquet(path) if fmt == "parquet"
                         else pl.read_csv(path, try_parse_dates=True))
extra = {"rows": sum(f.height for f in frames.values()),
         "in_memory_mb": sum(f.estimated_size() for f in frames.values()) / 2**20}
"""
_END_TO_END_SETUP = "from crmkpi.run import execute"
_END_TO_END = """
summary = execute(folder, None, {{"out": {out!r}, "format": ["csv", "parquet"],
                  "period": "quarter", "by": ["segment", "rep"], "engine": {engine!r}}}, {{}})
manifest = json.loads((Path({out!r}) / "manifest.json").read_text())
extra = {{"stages": manifest["timings_seconds"], "metrics": summary.metrics_computed}}
"""
_SUBSET_SETUP = "import polars, pandas, duckdb\nfrom benchmarks.contenders import {function}"
_SUBSET = """
result = {function}(folder, fmt)
result.write_parquet({result!r})
extra = {{"rows": result.height}}
"""

# The CLV models alone: the orders are loaded and rfm is built before the clock starts; the
# timed part fits BG/NBD and Gamma-Gamma and predicts every customer (clv_forecast).
_CLV_SETUP = """
from crmkpi.configure import resolve_config
from crmkpi.load import load_all
from crmkpi.metrics.settings import resolve_settings
from crmkpi.profiles import clv_forecast, rfm
config, root = resolve_config(folder, None)
loaded = load_all(config, root, only={"orders", "customers"})
orders = loaded.tables["orders"].frame
customers = loaded.tables["customers"].frame
as_of = orders["ordered_at"].max().date()
settings = resolve_settings({})
rfm_start = time.perf_counter()
table = rfm(orders, customers, as_of, settings)
rfm_seconds = time.perf_counter() - rfm_start
"""
_CLV = """
forecast = clv_forecast(table, settings)
(fit,) = forecast.fits
distinct = table.select("frequency", "recency_days", "tenure_days").n_unique()
extra = {"customers": table.height, "repeat_buyers": fit["repeat_buyers"],
         "distinct_x_tx_T": distinct, "rfm_seconds": rfm_seconds,
         "bg_nbd": fit["bg_nbd"], "gamma_gamma": fit["gamma_gamma"], "skipped": fit["skipped"]}
"""


class ChildFailed(RuntimeError):
    """A benchmark child that did not finish: its return code, peak memory and last words."""

    def __init__(self, returncode: int, peak_rss_mb: float, stderr: str) -> None:
        super().__init__(f"benchmark child failed (return code {returncode}):\n{stderr[-3000:]}")
        self.returncode = returncode
        self.peak_rss_mb = peak_rss_mb
        lines = stderr.strip().splitlines() or ["no message"]
        self.error = f"killed by signal {-returncode}" if returncode < 0 else lines[-1]

    def record(self) -> dict[str, Any]:
        return {
            "failed": True,
            "returncode": self.returncode,
            "peak_rss_mb": self.peak_rss_mb,
            "error": self.error,
        }


def _child(setup: str, body: str, folder: Path, fmt: str) -> dict[str, Any]:
    """Run `body` in a fresh interpreter after `setup` (imports are not timed). The child is
    waited for with wait4, so that its peak memory is known even when it is killed."""
    code = _CHILD.format(repo=str(REPO), folder=str(folder), fmt=fmt, setup=setup, body=body)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if child.returncode != 0:
        raise ChildFailed(child.returncode, usage.ru_maxrss / 1024, stderr)
    line = next(ln for ln in reversed(stdout.splitlines()) if _MARK in ln)
    result: dict[str, Any] = json.loads(line[line.index(_MARK) + len(_MARK) :])
    return result


def _measure(setup: str, body: str, folder: Path, fmt: str) -> dict[str, Any]:
    """`_child`'s result, or the record of its failure: one contender failing does not end the
    benchmark."""
    try:
        return _child(setup, body, folder, fmt)
    except ChildFailed as failure:
        print(f"failed: {failure}", file=sys.stderr)
        return failure.record()


def _ok(result: dict[str, Any]) -> bool:
    return "seconds" in result


def _ratio(numerator: dict[str, Any], denominator: dict[str, Any]) -> float | None:
    """How many times longer `numerator` ran, None when either did not run to the end."""
    if not (_ok(numerator) and _ok(denominator)):
        return None
    return round(numerator["seconds"] / max(denominator["seconds"], 1e-9), 2)


def _ratios(
    floor: dict[str, Any], end_to_end: dict[str, Any], subset: dict[str, dict[str, Any]]
) -> dict[str, float]:
    """The report's ratios, of the runs that finished."""
    ratios = {
        "end_to_end_vs_floor": _ratio(end_to_end, floor),
        "pandas_vs_crmkpi_subset": _ratio(subset["pandas"], subset["crmkpi"]),
        "duckdb_vs_crmkpi_subset": _ratio(subset["duckdb"], subset["crmkpi"]),
    }
    if _ok(end_to_end) and _ok(floor):
        memory = end_to_end["peak_rss_mb"] / max(floor["in_memory_mb"], 1e-9)
        ratios["peak_rss_vs_input_memory"] = round(memory, 2)
    if _ok(end_to_end):
        load = end_to_end["stages"].get("load", 0.0)
        ratios["validation_share_of_total"] = round(load / end_to_end["seconds"], 3)
    return {name: value for name, value in ratios.items() if value is not None}


_GENERATE_SETUP = "from crmkpi.samples import write_sample_folder"
_GENERATE = """
write_sample_folder(folder, seed={seed}, scale={scale!r}, file_format=fmt)
extra = {{}}
"""


def ensure_data(scale: str, fmt: str, seed: int = 7) -> tuple[Path, float | None]:
    """The generated export folder for a scale and format, made once and reused. It is made in
    a child process: a child forked from a large parent would report the parent's peak memory
    as its own."""
    folder = DATA / f"{scale}-{fmt}"
    if (folder / f"orders.{fmt}").exists():
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    made = _child(_GENERATE_SETUP, _GENERATE.format(seed=seed, scale=scale), folder, fmt)
    return folder, made["seconds"]


def chunked(scale: str) -> bool:
    """A scale larger than memory, which the generator writes chunk by chunk."""
    from crmkpi.samples import CHUNK_CUSTOMERS

    return scale in CHUNK_CUSTOMERS


def _input_rows(folder: Path, fmt: str, floor: dict[str, Any]) -> int | None:
    """The floor's count, or when the floor did not finish, the Parquet files' own."""
    if _ok(floor):
        rows: int = floor["rows"]
        return rows
    if fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(path).num_rows for path in sorted(folder.glob("*.parquet")))


def _subsets(scale: str, fmt: str, folder: Path, work: Path) -> dict[str, dict[str, Any]]:
    """The core subset three ways (pandas left out at a scale larger than memory), each run's
    result written to work/<name>-<fmt>.parquet."""
    subset: dict[str, dict[str, Any]] = {}
    for name in ("crmkpi", "pandas", "duckdb"):
        if name == "pandas" and chunked(scale):
            subset[name] = {"left_out": PANDAS_LEFT_OUT}
            continue
        function = f"{name}_subset"
        subset[name] = _measure(
            _SUBSET_SETUP.format(function=function),
            _SUBSET.format(function=function, result=str(work / f"{name}-{fmt}.parquet")),
            folder,
            fmt,
        )
    return subset


def _compare_subsets(subset: dict[str, dict[str, Any]], fmt: str, work: Path) -> list[str]:
    """Assert every finished subset result equal to crmkpi's; returns the names compared."""
    import polars as pl

    from benchmarks.contenders import compare

    finished = [name for name, result in subset.items() if _ok(result)]
    if "crmkpi" not in finished:
        return []
    reference = pl.read_parquet(work / f"crmkpi-{fmt}.parquet")
    others = [name for name in finished if name != "crmkpi"]
    for name in others:
        compare(reference, pl.read_parquet(work / f"{name}-{fmt}.parquet"), name)
    return others


def run_format(scale: str, fmt: str, work: Path) -> dict[str, Any]:
    folder, generated = ensure_data(scale, fmt)
    out = work / f"out-{fmt}"
    floor = _measure(_FLOOR_SETUP, _FLOOR, folder, fmt)
    end_to_end = _measure(
        _END_TO_END_SETUP, _END_TO_END.format(out=str(out), engine="polars"), folder, fmt
    )
    clv = _measure(_CLV_SETUP, _CLV, folder, fmt)
    subset = _subsets(scale, fmt, folder, work)
    compared = _compare_subsets(subset, fmt, work)
    return {
        "data": str(folder.relative_to(REPO)) if folder.is_relative_to(REPO) else str(folder),
        "generated_seconds": generated,
        "input_rows": _input_rows(folder, fmt, floor),
        "input_in_memory_mb": round(floor["in_memory_mb"], 1) if _ok(floor) else None,
        "floor": floor,
        "crmkpi_end_to_end": end_to_end,
        "clv_forecast": clv,
        "core_subset": subset,
        "core_subset_compared_with_crmkpi": compared,
        "core_subset_results_equal": True if compared else None,
        "ratios": _ratios(floor, end_to_end, subset),
    }


# A Spark session is started before the clock (its JVM start is reported on its own), and the
# run takes it as the active session.
_ENGINE_SETUP = """
from crmkpi.run import execute
session_start = time.perf_counter()
if {engine!r} == "spark":
    from crmkpi.engines.spark import spark_session
    spark_session()
session_seconds = time.perf_counter() - session_start
"""
_ENGINE_END_TO_END = _END_TO_END.replace(
    "extra = {{", "extra = {{'session_seconds': session_seconds, "
)


def run_engine(scale: str, fmt: str, work: Path, engine: str) -> dict[str, Any]:
    """crmkpi end to end on `engine` and on Polars, the same files, the KPI tables compared."""
    import polars as pl

    folder, generated = ensure_data(scale, fmt)
    runs: dict[str, dict[str, Any]] = {}
    for name in ("polars", engine):
        out = work / f"out-{fmt}-{name}"
        runs[name] = _child(
            _ENGINE_SETUP.format(engine=name),
            _ENGINE_END_TO_END.format(out=str(out), engine=name),
            folder,
            fmt,
        )
    from polars.testing import assert_frame_equal

    first, other = (pl.read_parquet(work / f"out-{fmt}-{n}" / "kpis.parquet") for n in runs)
    try:  # the agreement tests' tolerance: medians and float sums may differ in the last bits
        assert_frame_equal(first, other, abs_tol=1e-9, rel_tol=1e-9)
        close = True
    except AssertionError:
        close = False
    return {
        "data": str(folder.relative_to(REPO)) if folder.is_relative_to(REPO) else str(folder),
        "generated_seconds": generated,
        "runs": runs,
        "kpis_identical": first.equals(other),
        "kpis_equal": close,
        "ratio_vs_polars": round(runs[engine]["seconds"] / runs["polars"]["seconds"], 2),
    }


def render_engine_markdown(report: dict[str, Any]) -> str:
    engine = report["engine"]
    lines = [
        f"# crmkpi end to end on {engine} against Polars ({report['scale']})",
        "",
        f"Machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}",
        "",
        "| inputs | polars (s) | " + engine + " (s) | ratio | session start (s) | "
        "KPIs equal (1e-9) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for fmt, result in report["formats"].items():
        polars_run, other = result["runs"]["polars"], result["runs"][engine]
        lines.append(
            f"| {fmt} | {polars_run['seconds']:.2f} | {other['seconds']:.2f} | "
            f"{result['ratio_vs_polars']} | {other['session_seconds']:.2f} | "
            f"{'yes' if result['kpis_equal'] else 'no (see results-' + engine + '.json)'} |"
        )
    lines += [
        "",
        "Session start is outside the timed run. Loading, validation, views and profiles are "
        "Polars on the driver for every engine; only the aggregations run on the engine.",
        "",
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # other work on the machine slows every contender: the 1-minute load when the run began
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "versions": {
            p: version(p) for p in ("polars", "pandas", "duckdb", "pandera", "narwhals", "pyarrow")
        },
    }


def _row(label: str, result: dict[str, Any]) -> str:
    """A table row: seconds and peak memory, how the run failed, or why it was left out."""
    if "left_out" in result:
        return f"| {label} | {result['left_out']} | – |"
    if not _ok(result):
        error = str(result["error"]).replace("|", "\\|")
        return (
            f"| {label} | failed: {error} (return code {result['returncode']}) | "
            f"{result['peak_rss_mb']:.0f} |"
        )
    return f"| {label} | {result['seconds']:.2f} | {result['peak_rss_mb']:.0f} |"


def _inputs_heading(fmt: str, result: dict[str, Any]) -> str:
    rows, memory = result["input_rows"], result["input_in_memory_mb"]
    counted = f"{rows:,} rows" if rows is not None else "rows unknown"
    held = f"{memory} MB in memory" if memory is not None else "the floor did not finish"
    return f"## {fmt} inputs ({counted}, {held})"


# The figures the engine is measured against: (ratio, at most or at least, the target);
# end to end against the bare read is allowed more at small scales, where fixed costs dominate.
_TARGETS: tuple[tuple[str, str | None, str, dict[str, float], float], ...] = (
    ("end_to_end_vs_floor", "parquet", "at most", {"large": 3.0, "xlarge": 3.0}, 6.0),
    ("end_to_end_vs_floor", "csv", "at most", {}, 2.0),
    ("pandas_vs_crmkpi_subset", None, "at least", {}, 10.0),
    ("duckdb_vs_crmkpi_subset", None, "at least", {}, 1.0),
    ("peak_rss_vs_input_memory", None, "at most", {}, 2.5),
    ("validation_share_of_total", None, "at most", {}, 0.25),
)


def render_targets(report: dict[str, Any]) -> list[str]:
    """Each target beside the figure this run measured, and whether it is met."""
    lines = [
        "## Targets",
        "",
        "| figure | inputs | target | measured | met |",
        "|---|---|---:|---:|---|",
    ]
    for ratio, only, direction, by_scale, default in _TARGETS:
        target = by_scale.get(report["scale"], default)
        for fmt, result in report["formats"].items():
            if only not in (None, fmt):
                continue
            measured = result["ratios"].get(ratio)
            if measured is None:
                met = "not measured"
            elif direction == "at most":
                met = "yes" if measured <= target else "no"
            else:
                met = "yes" if measured >= target else "no"
            shown = "-" if measured is None else f"{measured}"
            lines.append(f"| {ratio} | {fmt} | {direction} {target} | {shown} | {met} |")
    return [*lines, ""]


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# crmkpi benchmark ({report['scale']})",
        "",
        f"Machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, "
        + ", ".join(f"{k} {v}" for k, v in report["machine"]["versions"].items())
        + f"; load average {report['machine'].get('load_average_at_start', '?')} at the start",
        "",
    ]
    for fmt, result in report["formats"].items():
        e2e, floor, subset = result["crmkpi_end_to_end"], result["floor"], result["core_subset"]
        clv = result["clv_forecast"]
        e2e_label = "crmkpi compute end to end"
        clv_label = "clv_forecast: BG/NBD + Gamma-Gamma fits and predictions"
        if _ok(e2e):
            e2e_label += f" ({e2e['metrics']} metrics)"
        if _ok(clv):
            clv_label += (
                f", {clv['customers']:,} customers ({clv['distinct_x_tx_T']:,} distinct x, t_x, T)"
            )
        lines += [
            _inputs_heading(fmt, result),
            "",
            "| run | seconds | peak RSS (MB) |",
            "|---|---:|---:|",
            _row("floor: Polars reads every input column", floor),
            _row(e2e_label, e2e),
            *(_row(f"core subset: {name}", subset[name]) for name in subset),
            _row(clv_label, clv),
            "",
        ]
        if _ok(e2e):
            stages = ", ".join(f"{k} {v:.2f}" for k, v in e2e["stages"].items())
            lines += [f"crmkpi stages (s): {stages}", ""]
        lines += ["Ratios: " + ", ".join(f"{k} {v}" for k, v in result["ratios"].items()), ""]
        if result["core_subset_compared_with_crmkpi"]:
            names = ", ".join(["crmkpi", *result["core_subset_compared_with_crmkpi"]])
            lines += [f"The core-subset results of {names} were asserted equal.", ""]
    return "\n".join([*lines, *render_targets(report)])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/ (benchmarks/<scale>/ for large and xlarge)"
    )
    parser.add_argument("--engine", default="polars")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if chunked(args.scale) and args.formats != "parquet":
        parser.error(f"scale {args.scale} is generated as Parquet only: use --formats parquet")
    args.out = args.out or RESULTS.get(args.scale, HERE)
    if args.engine != "polars":
        return engine_main(args)
    report: dict[str, Any] = {"scale": args.scale, "machine": machine(), "formats": {}}
    with tempfile.TemporaryDirectory(prefix="crmkpi-bench-") as work:
        for fmt in args.formats.split(","):
            report["formats"][fmt] = run_format(args.scale, fmt, Path(work))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "results.md").write_text(render_markdown(report))
    print(render_markdown(report))
    return report


def engine_main(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "scale": args.scale,
        "engine": args.engine,
        "machine": machine(),
        "formats": {},
    }
    with tempfile.TemporaryDirectory(prefix="crmkpi-bench-") as work:
        for fmt in args.formats.split(","):
            report["formats"][fmt] = run_engine(args.scale, fmt, Path(work), args.engine)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"results-{args.engine}"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(render_engine_markdown(report))
    print(render_engine_markdown(report))
    return report


if __name__ == "__main__":
    main()

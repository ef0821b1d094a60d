"""Generated attacks (hypothesis): config values of every key with wrong types, extreme numbers,
nan/inf and odd strings, and CSV bytes truncated, flipped, with NULs, BOMs in the middle, CR/LF
mixes and huge cells. Whatever is generated, the run ends in a documented exit code, without a
traceback, with the JSON line last on stdout, and every row read is accounted for.

`make check` runs a bounded number of examples (about a minute); `make fuzz` sets
CRMKPI_FUZZ_EXAMPLES for a longer search."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.config import _READ_KEYS, _SOURCE_KEYS
from crmkpi.errors import CrmkpiError
from crmkpi.metrics.settings import SETTINGS
from crmkpi.options import RUN_OPTIONS
from tests import factory as fx

DOCUMENTED_EXITS = {0, 2, 65, 66, 73, 74, 75, 78}
EXAMPLES = int(os.environ.get("CRMKPI_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="CRMKPI_FUZZ_EXAMPLES" not in os.environ,  # CI: the same examples every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ODD_STRINGS = st.sampled_from(
    ["", " ", "\x00", "../x", "/etc/passwd", "*", "[", "nan", "-1", "1e400", "é" * 300,
     "=HYPERLINK(\"x\")", "rot13", "utf-16", "\ufeff", "\r\n", "2024-02-30", "0001-01-01"]
)  # fmt: skip
VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    ODD_STRINGS,
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "from"]), st.integers(), max_size=2),
)
TABLE_KEYS = sorted((_SOURCE_KEYS | _READ_KEYS) - {"columns", "description"})


def _deals_folder(root: Path) -> Path:
    folder = root / "exports"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    fx.write_csv(folder / "deals.csv")
    return folder


def _run(folder: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["compute", str(folder), "--out", str(out), "--format", "csv", *extra]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"unexpected error: {result.exception!r}") from result.exception
    assert result.exit_code in DOCUMENTED_EXITS, result.output
    assert "Traceback" not in result.output
    if result.exit_code != 2:  # usage errors are Typer's: no run, no summary
        last = json.loads(result.stdout.strip().splitlines()[-1])
        assert last["exit_code"] == result.exit_code
    return result.exit_code, result.stdout


@FUZZ
@given(
    where=st.sampled_from(["table", "settings", "run"]),
    table_key=st.sampled_from(TABLE_KEYS),
    setting=st.sampled_from(sorted(SETTINGS)),
    run_key=st.sampled_from(sorted(RUN_OPTIONS)),
    value=VALUES,
)
def test_any_config_value_ends_in_a_documented_exit_code(
    tmp_path_factory: pytest.TempPathFactory,
    where: str,
    table_key: str,
    setting: str,
    run_key: str,
    value: Any,
) -> None:
    root = tmp_path_factory.mktemp("config")
    folder = _deals_folder(root)
    table = fx.deals_table()
    doc = fx.config_doc({"deals": table})
    if where == "table":
        table[table_key] = value
    elif where == "settings":
        doc.setdefault("settings", {})[setting] = value
    else:
        doc.setdefault("run", {})[run_key] = value
    try:
        fx.write_config(folder, doc)
    except (TypeError, ValueError):  # a value TOML cannot hold (the writer's own limit)
        return
    _run(folder, root / "out")


MUTATIONS = st.sampled_from(["truncate", "flip", "nul", "bom", "cr", "crlf", "huge", "drop_quote"])


def _mutate(data: bytes, kind: str, at: float, byte: int) -> bytes:
    i = int(at * len(data))
    if kind == "truncate":
        return data[:i]
    if kind == "flip":
        return data[:i] + bytes([data[i] ^ (byte or 1)]) + data[i + 1 :] if i < len(data) else data
    if kind == "nul":
        return data[:i] + b"\x00" + data[i:]
    if kind == "bom":
        return data[:i] + b"\xef\xbb\xbf" + data[i:]
    if kind == "cr":
        return data[:i] + data[i:].replace(b"\n", b"\r", 3)
    if kind == "crlf":
        return data[:i].replace(b"\n", b"\r\n") + data[i:]
    if kind == "huge":
        return data[:i] + b"x" * 200_000 + data[i:]
    return data[:i] + b'"' + data[i:]


@FUZZ
@given(
    mutations=st.lists(
        st.tuples(MUTATIONS, st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_any_csv_bytes_end_in_a_documented_exit_code_with_rows_accounted(
    tmp_path_factory: pytest.TempPathFactory, mutations: list[tuple[str, float, int]]
) -> None:
    root = tmp_path_factory.mktemp("bytes")
    folder = _deals_folder(root)
    data = (folder / "deals.csv").read_bytes()
    for kind, at, byte in mutations:
        data = _mutate(data, kind, at, byte)
    (folder / "deals.csv").write_bytes(data)
    doc = fx.config_doc({"deals": fx.deals_table()})
    result = fx.load(folder, doc)  # the library: CrmkpiError is the only way it may fail
    for failure in result.failures:
        assert isinstance(failure.error, CrmkpiError)
        assert failure.error.exit_code in DOCUMENTED_EXITS
    for loaded in result.tables.values():
        assert loaded.report.reconciles(), loaded.report
    fx.write_config(folder, doc)
    code, _ = _run(folder, root / "out")
    if code == 0:
        manifest = json.loads((root / "out" / "manifest.json").read_text(encoding="utf-8"))
        for table in manifest["tables"]:
            parts = ("rows_used", "rows_quarantined", "footer_rows", "rows_skipped")
            assert table["rows_read"] == sum(table[p] for p in parts) + table["rows_deduplicated"]

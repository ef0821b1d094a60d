"""The command line's contract: bad option values are usage errors (exit 2) with Click's
message, help text is printed as written, choices come from the registries, and help for any
command starts without the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmkpi.choices import DIMENSIONS, FORMATS, GRAINS, LANGUAGES, LOG_FORMATS
from crmkpi.cli import app
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--period", "fortnight"),
        ("--format", "xls"),
        ("--format", "csv,xls"),
        ("--lang", "fr"),
        ("--log-format", "yaml"),
        ("--engine", "sparkle"),
        ("--by", "colour"),
    ],
)
def test_bad_option_value_is_a_usage_error(tmp_path: Path, option: str, value: str) -> None:
    result = CliRunner().invoke(app, ["compute", str(tmp_path), option, value])
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Usage:" in result.stderr and "compute [OPTIONS]" in result.stderr
    assert "Invalid value" in result.stderr and option in result.stderr
    assert not (tmp_path / "kpis").exists()


def test_a_chunked_scale_in_csv_is_a_usage_error(tmp_path: Path) -> None:
    args = ["sample-data", str(tmp_path / "out"), "--scale", "xlarge", "--format", "csv"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "parquet only" in result.stderr and "--format" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bracketed_help_text_is_printed_as_written() -> None:
    """Rich markup would read `[input]` as a style tag and drop it."""
    result = CliRunner().invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "[input] dir" in result.stdout
    assert "[default:" in CliRunner().invoke(app, ["compute", "--help"]).stdout


def test_help_lists_every_choice_from_the_registries() -> None:
    text = " ".join(CliRunner().invoke(app, ["compute", "--help"]).stdout.split())
    by_help = text[text.index("--by <") : text.index("--out <")]
    for name in DIMENSIONS:
        assert name in by_help, name
    for option, names in (
        ("--period", GRAINS),
        ("--format", FORMATS),
        ("--lang", LANGUAGES),
        ("--log-format", LOG_FORMATS),
    ):
        after = text[text.index(f"{option} <") :]
        assert all(n in after[:200] for n in names), option


def test_good_comma_separated_values_pass_the_parser(tmp_path: Path) -> None:
    """The checks reject only bad names: `--by segment,rep --format csv,xlsx` reaches the run
    (which then finds no exports: exit 66, not a usage error)."""
    result = CliRunner().invoke(
        app,
        [
            "compute",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "out"),
            "--by",
            "segment,rep",
            "--format",
            "csv,xlsx",
        ],
        env={"CRMKPI_LOG_FORMAT": None},
    )
    assert result.exit_code not in (0, 2), result.stderr


def test_command_help_does_not_import_the_engine() -> None:
    """`crmkpi compute --help` builds its choices from crmkpi.choices, not from the engine."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['crmkpi', 'compute', '--help']\n"
        "try:\n"
        "    runpy.run_module('crmkpi.entry', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('polars', 'pandera', 'pandas', 'numpy', 'narwhals', 'rich')\n"
        "               if m in sys.modules)\n"
        "print('heavy:', heavy, file=sys.stderr)\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert "heavy: []" in ran.stderr, ran.stderr
    assert "--period" in ran.stdout

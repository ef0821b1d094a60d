"""`crmkpi init`: a starter crmkpi.toml guessed from the headers, that validates as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

from typer.testing import CliRunner

from crmkpi.cli import app

runner = CliRunner()
CALLS = (
    "Call Id,Agent,Date,Answered (Y/N),Resolved,Speed of answer in seconds,AvgTalkDuration\n"
    "ID1,Diane,2021-01-01,Y,Y,109,0:02:23\n"
    "ID2,Becky,2021-01-01,N,N,,\n"
    "ID3,Joe,2021-01-02,Y,N,10,0:01:00\n"
)
DEALS = (
    "opportunity_id,sales_agent,deal_stage,engage_date,close_date,close_value\n"
    "A1,Moses,Won,2016-10-20,2017-03-01,1054\n"
    "A2,Darcel,Engaging,2016-10-25,,\n"
    "A3,Darcel,Lost,2016-10-25,2017-03-07,0\n"
)


def test_init_guesses_tables_columns_and_value_maps(tmp_path: Path) -> None:
    (tmp_path / "call_log.csv").write_text(CALLS, encoding="utf-8")
    (tmp_path / "pipeline.csv").write_text(DEALS, encoding="utf-8")
    (tmp_path / "notes.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = tomllib.loads((tmp_path / "crmkpi.toml").read_text(encoding="utf-8"))
    calls = config["tables"]["calls"]
    assert calls["file"] == "call_log.csv"
    assert calls["columns"]["outcome"] == {
        "from": "Answered (Y/N)",
        "map": {"N": "abandoned", "Y": "answered"},
    }
    assert calls["columns"]["wait_seconds"] == "Speed of answer in seconds"
    deals = config["tables"]["deals"]
    assert deals["columns"]["deal_id"] == "opportunity_id"
    assert deals["columns"]["status"] == {
        "from": "deal_stage",
        "map": {"Lost": "lost", "Won": "won"},
        "default": "open",
    }
    assert "notes.csv: no canonical table recognised" in (tmp_path / "crmkpi.toml").read_text()
    check = runner.invoke(app, ["validate", str(tmp_path)])
    assert check.exit_code == 0, check.output


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    (tmp_path / "call_log.csv").write_text(CALLS, encoding="utf-8")
    (tmp_path / "crmkpi.toml").write_text("# mine\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 73
    assert (tmp_path / "crmkpi.toml").read_text() == "# mine\n"
    assert runner.invoke(app, ["init", str(tmp_path), "--force"]).exit_code == 0


def test_init_on_a_missing_folder_exits_66(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "nope")]).exit_code == 66

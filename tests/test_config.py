"""crmkpi.toml validation: every problem is a ConfigError naming the key path it sits at."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from crmkpi.config import ConfigError, parse_config
from crmkpi.configure import load_config, resolve_config
from crmkpi.errors import EXIT_BAD_CONFIG
from tests import factory as fx


def config_error(document: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, Path("crmkpi.toml"))
    assert caught.value.exit_code == EXIT_BAD_CONFIG
    return str(caught.value)


def with_column(name: str, spec: Any) -> dict[str, Any]:
    table = fx.deals_table()
    table["columns"][name] = spec
    return fx.config_doc({"deals": table})


def test_the_sample_config_is_valid() -> None:
    config = parse_config(fx.config_doc(), Path("crmkpi.toml"))
    deals = config.tables["deals"]
    assert deals.files == ("deals.csv",)
    assert deals.read.dayfirst is False
    assert deals.columns["status"].value_map == fx.STAGE_MAP


def test_factory_toml_round_trips(tmp_path: Path) -> None:
    path = fx.write_config(tmp_path)
    assert tomllib.loads(path.read_text()) == fx.config_doc()
    assert load_config(path).tables["deals"].columns["deal_id"].sources == ("Opportunity ID",)


@pytest.mark.parametrize(
    ("document", "where", "words"),
    [
        ({"tables": {}, "output": {}}, "crmkpi.toml", "unknown key(s) output"),
        ({"input": {"encodings": "utf-8"}}, "input", "unknown key(s) encodings"),
        (fx.config_doc({"deals": fx.deals_table(sheets="x")}), "tables.deals", "unknown key(s)"),
        (
            fx.config_doc({"opportunities": fx.deals_table()}),
            "tables.opportunities",
            "unknown table",
        ),
    ],
)
def test_unknown_keys_and_tables(document: dict[str, Any], where: str, words: str) -> None:
    message = config_error(document)
    assert message.startswith(f"{where}: ")
    assert words in message


def test_unknown_column() -> None:
    message = config_error(with_column("deal_value", "Amount"))
    assert message.startswith("tables.deals.columns.deal_value: ")
    assert "deals has no column 'deal_value'" in message


def test_unknown_column_key() -> None:
    message = config_error(with_column("amount", {"from": "Amount", "format": "0.00"}))
    assert message.startswith("tables.deals.columns.amount: unknown key(s) format")


def test_bad_parser_name() -> None:
    message = config_error(with_column("amount", {"from": "Amount", "parse": "currency"}))
    assert message.startswith("tables.deals.columns.amount.parse: 'currency' is not one of")
    assert "salesforce_id" in message  # the mapping's own kinds are listed too


def test_salesforce_id_parser_accepted() -> None:
    config = parse_config(
        with_column("deal_id", {"from": "Opportunity ID", "parse": "salesforce_id"}), None
    )
    assert config.tables["deals"].columns["deal_id"].parse == "salesforce_id"


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"settings": {"timezone": "Asia/Beijing"}}, "settings.timezone"),
        (fx.config_doc({"deals": fx.deals_table(timezone="CET+8")}), "tables.deals.timezone"),
        ({"input": {"timezone": 8}}, "input.timezone"),
    ],
)
def test_bad_time_zone(document: dict[str, Any], where: str) -> None:
    message = config_error(document)
    assert message.startswith(f"{where}: ")
    assert "time zone" in message


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"input": {"encoding": "gb-18030x"}}, "input.encoding"),
        (
            fx.config_doc({"deals": fx.deals_table(encoding="utf8-bom-ish")}),
            "tables.deals.encoding",
        ),
    ],
)
def test_bad_encoding(document: dict[str, Any], where: str) -> None:
    message = config_error(document)
    assert message.startswith(f"{where}: unknown encoding")


def test_encoding_names_are_normalised() -> None:
    config = parse_config({"input": {"encoding": "GBK"}}, None)
    assert config.default_read.encoding == "gbk"


def test_default_without_map() -> None:
    message = config_error(with_column("deal_type", {"from": "Type", "default": "new_business"}))
    assert message == "tables.deals.columns.deal_type.default: only makes sense with `map`"


@pytest.mark.parametrize(
    ("table_options", "where", "words"),
    [
        ({"footer": "sometimes"}, "tables.deals.footer", "'sometimes' is not one of"),
        ({"delimiter": ";;"}, "tables.deals.delimiter", "one character"),
        ({"header_row": -1}, "tables.deals.header_row", "must be 0"),
        ({"max_file_mb": 0}, "tables.deals.max_file_mb", "must be a number of megabytes above 0"),
        ({"required": "yes"}, "tables.deals.required", "true or false"),
        ({"dayfirst": "no"}, "tables.deals.dayfirst", "true or false"),
    ],
)
def test_bad_read_options(table_options: dict[str, Any], where: str, words: str) -> None:
    message = config_error(fx.config_doc({"deals": fx.deals_table(**table_options)}))
    assert message.startswith(f"{where}: ")
    assert words in message


def test_unit_only_for_durations() -> None:
    message = config_error(with_column("amount", {"from": "Amount", "unit": "minutes"}))
    assert message.startswith("tables.deals.columns.amount.unit: ")


def test_file_required() -> None:
    table = fx.deals_table()
    del table["file"]
    assert config_error(fx.config_doc({"deals": table})).startswith("tables.deals: needs `file`")


def test_date_range_order() -> None:
    message = config_error({"settings": {"date_min": "2030-01-01", "date_max": "2020-01-01"}})
    assert message.startswith("settings.date_min: ")


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "crmkpi.toml"
    path.write_text("[tables.deals\nfile = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "not valid TOML" in str(caught.value)


def test_resolve_config_finds_the_folder_config(tmp_path: Path) -> None:
    fx.write_config(tmp_path)
    config, folder = resolve_config(tmp_path, None)
    assert folder == tmp_path
    assert set(config.tables) == {"deals"}

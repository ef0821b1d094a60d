"""docs/config.md is generated from the config schema, and the schema is what the loader
accepts: a key cannot be read without being documented, and every documented example loads."""

from __future__ import annotations

import tomllib

import pytest

from crmkpi import config, config_schema
from crmkpi.config_schema import SECTIONS, Key, Section
from crmkpi.configure import parse_document
from crmkpi.docs import config_markdown, toml_value
from crmkpi.errors import ConfigError
from crmkpi.metrics.settings import SETTINGS, resolve_settings
from crmkpi.options import RUN_OPTIONS, resolve_run_options
from tests.conftest import REPO

EXAMPLES = [(s, k) for s in SECTIONS for k in s.keys]


def _documented(*sections: Section) -> set[str]:
    return {k.name for s in sections for k in s.keys}


def test_config_reference_is_current() -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == config_markdown(), "docs/config.md drifted from the schema: run `make docs`"


def test_readme_links_the_config_reference() -> None:
    assert "(docs/config.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_every_key_the_loader_accepts_is_documented() -> None:
    """One way (accepted within documented), so a key documented ahead of its loader passes."""
    s = config_schema
    assert _documented(s.TOP) >= config._TOP_KEYS
    assert _documented(s.READ) >= config._READ_KEYS
    assert _documented(s.READ, s.TABLE) >= config._SOURCE_KEYS | config._TABLE_KEYS
    assert _documented(s.COLUMN) >= config._COLUMN_KEYS
    assert _documented(s.SETTINGS) >= config._SETTINGS_KEYS


def test_keys_documented_but_not_read_yet_are_refused() -> None:
    """The list of documented keys the loader does not take; each is refused as unknown (not
    silently ignored). When the loader learns one, mark it accepted in the schema."""
    pending = [(s.title, k.name) for s, k in EXAMPLES if not k.accepted]
    assert pending == []  # add a key here when it is documented ahead of the loader
    for section, key in EXAMPLES:
        if not key.accepted:
            with pytest.raises(ConfigError, match="unknown key"):
                _load(section, key)


def _load(section: Section, key: Key) -> config.Config:
    document = tomllib.loads((key.context or section.context) + key.example + "\n")
    return parse_document(document, None)


@pytest.mark.parametrize(
    ("section", "key"),
    [(s, k) for s, k in EXAMPLES if k.accepted],
    ids=[f"{s.title}:{k.name}" for s, k in EXAMPLES if k.accepted],
)
def test_every_documented_example_loads(section: Section, key: Key) -> None:
    text = key.example.split("=", 1)[0]
    assert key.name in text or key.name in key.example.split("{", 1)[-1], key.example
    _load(section, key)


def test_every_setting_and_run_option_is_documented_with_a_valid_example() -> None:
    text = config_markdown()
    for setting in SETTINGS.values():
        example = setting.default if setting.example is None else setting.example
        resolve_settings({setting.name: example})
        assert f"`{setting.name} = {toml_value(example)}`" in text
    for option in RUN_OPTIONS.values():
        resolve_run_options({}, {}, {option.name: option.example})
        assert f"`{option.name} = {toml_value(option.example)}`" in text
    # the examples as docs/config.md writes them are TOML
    tomllib.loads("\n".join(f"{o.name} = {toml_value(o.example)}" for o in RUN_OPTIONS.values()))

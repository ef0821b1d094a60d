"""Where a run's config comes from: the crmkpi.toml found by the documented rules, the shipped
preset it names (or that `--preset auto` recognises) put under it, and the input folder.
Presets produce config here; loading consumes it (crmkpi.config parses a document alone)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from crmkpi.config import (
    CONFIG_FILE_NAME,
    Config,
    discover_tables,
    parse_config,
    read_document,
)
from crmkpi.errors import ConfigError
from crmkpi.presets import apply_preset, detect_preset, list_presets


def parse_document(document: Mapping[str, Any], path: Path | None) -> Config:
    """Validate a parsed TOML document into a Config. `preset = "NAME"` puts a shipped preset
    under the document (crmkpi/presets.py): the document's own keys win, table by table and
    column by column."""
    if "preset" not in document:
        return parse_config(document, path)
    merged, preset = apply_preset(document)
    return parse_config(merged, path, preset)


def load_config(path: Path) -> Config:
    """Read and validate a crmkpi.toml file."""
    return parse_document(read_document(path), path)


def resolve_config(
    input_path: Path | None, config_path: Path | None, preset: str | None = None
) -> tuple[Config, Path]:
    """Find the config and the input folder by the documented rules.

    The input folder is the one given on the command line, else `[input] dir`, else the config
    file's folder (else the current folder). The config is `--config`, else `<input>/crmkpi.toml`
    when it exists, else none (canonical file names and headers).

    `preset` (`--preset`) names a shipped mapping put under the config (it wins over the file's
    own `preset = ...`); "auto" picks the preset whose exports the folder holds (exit 78 when
    none fits).
    """
    if config_path is None and input_path is not None:
        candidate = input_path / CONFIG_FILE_NAME
        config_path = candidate if candidate.is_file() else None
    document = read_document(config_path) if config_path is not None else {}
    folder = (
        input_path
        or _input_dir(document, config_path)
        or (config_path.parent if config_path else Path("."))
    )
    if preset is not None:
        document = {**document, "preset": preset}
    if document.get("preset") == "auto":
        detected = detect_preset(folder)
        if detected is None:
            raise ConfigError(
                f"preset: no preset ({', '.join(list_presets())}) recognises the exports in "
                f"{folder}; name one, or map the files yourself (crmkpi init)"
            )
        document = {**document, "preset": detected}
    config = parse_document(document, config_path)
    if not config.tables:
        config = replace(config, tables=discover_tables(folder, config.default_read))
    return config, folder


def _input_dir(document: Mapping[str, Any], config_path: Path | None) -> Path | None:
    """`[input] dir` of a raw document (parse_config checks its type)."""
    raw_input = document.get("input")
    if isinstance(raw_input, dict) and isinstance(raw_input.get("dir"), str):
        return (config_path.parent if config_path else Path.cwd()) / raw_input["dir"]
    return None

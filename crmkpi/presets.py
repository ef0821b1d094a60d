"""Presets: shipped mappings for the exports of the CRMs crmkpi knows, so that nobody has to
write one to get KPIs from Salesforce, HubSpot, Zoho CRM, 悟空CRM or 纷享销客.

A preset is a crmkpi.toml document inside the package (`crmkpi/presets/<name>.toml`), readable
and copyable, plus a `[preset]` table saying what else is known of the CRM: the headers that
mark its exports (`signature`), the exports that feed no table, how to export and what is
unconfirmed. `preset = "NAME"` in a crmkpi.toml (or `--preset NAME`) puts it under the user's
own keys, which win table by table and column by column. Files are told apart by their
headers (`match_headers`), never by their names, because CRMs name exports after the report,
the date or the module (`report1732260000000.csv`, `商机.xlsx`).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from crmkpi.config import (
    Config,
    ConfigError,
    KnownExport,
    PresetInfo,
    TableConfig,
    merge_sections,
    parse_config,
)

PRESET_SUFFIX = ".toml"


def _folder() -> Any:
    return resources.files("crmkpi") / "presets"


@cache
def list_presets() -> tuple[str, ...]:
    """The shipped presets' names, sorted."""
    return tuple(
        sorted(
            entry.name.removesuffix(PRESET_SUFFIX)
            for entry in _folder().iterdir()
            if entry.name.endswith(PRESET_SUFFIX)
        )
    )


def preset_text(name: str) -> str:
    """The TOML text of a preset (what `crmkpi init` and the docs point users to)."""
    if name not in list_presets():
        raise ConfigError(f"preset: unknown preset {name!r}; the presets are {_names()}")
    return str((_folder() / f"{name}{PRESET_SUFFIX}").read_text(encoding="utf-8"))


def _names() -> str:
    return ", ".join(list_presets())


@cache
def _document(name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(preset_text(name))
    except tomllib.TOMLDecodeError as exc:  # a packaging bug, but say where
        raise ConfigError(f"preset {name}: not valid TOML: {exc}") from exc


def preset_document(name: str) -> dict[str, Any]:
    """A preset as parsed TOML, `[preset]` table included (a fresh copy: callers may edit)."""
    import copy

    return copy.deepcopy(_document(name))


def _info(name: str, meta: Any) -> PresetInfo:
    where = f"preset {name}: [preset]"
    if not isinstance(meta, dict) or meta.get("name") != name:
        raise ConfigError(f"{where}: needs `name = {name!r}`")
    try:
        known = tuple(
            KnownExport(str(k["export"]), tuple(k["match_headers"]))
            for k in meta.get("known_exports", [])
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(
            f"{where}.known_exports: each needs `export` and `match_headers`"
        ) from exc
    return PresetInfo(
        name=name,
        title=str(meta.get("title", name)),
        signature=tuple(meta.get("signature", [])),
        known_exports=known,
    )


def merge_documents(preset: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """The user's document on top of a preset's: `[input]`, `[settings]` and `[run]` key by
    key; tables table by table, their columns column by column. Where the preset's table has
    layouts, the user's table-level keys apply to every layout (under the user's own layout
    keys), so `[tables.deals] dayfirst = true` reaches whichever layout reads the file."""
    merged: dict[str, Any] = {k: v for k, v in preset.items() if k != "tables"}
    for key, value in user.items():
        if key == "tables":
            continue
        base = merged.get(key)
        merged[key] = (
            {**base, **value} if isinstance(base, dict) and isinstance(value, dict) else value
        )
    tables = dict(preset.get("tables", {}))
    for name, table in user.get("tables", {}).items():
        base = tables.get(name)
        if not isinstance(base, dict) or not isinstance(table, dict):
            tables[name] = table
            continue
        shared = {k: v for k, v in table.items() if k != "layouts"}
        result = merge_sections({k: v for k, v in base.items() if k != "layouts"}, shared)
        base_layouts = base.get("layouts")
        user_layouts = table.get("layouts")
        if isinstance(base_layouts, dict):
            layouts = {
                layout: merge_sections(
                    merge_sections(section, shared),
                    user_layouts.get(layout, {}) if isinstance(user_layouts, dict) else {},
                )
                for layout, section in base_layouts.items()
            }
            if isinstance(user_layouts, dict):
                layouts.update({k: v for k, v in user_layouts.items() if k not in layouts})
            result["layouts"] = layouts
        elif user_layouts is not None:
            result["layouts"] = user_layouts
        tables[name] = result
    merged["tables"] = tables
    return merged


def apply_preset(document: Mapping[str, Any]) -> tuple[dict[str, Any], PresetInfo]:
    """A document naming `preset = "NAME"` as the preset merged under it (see merge_documents),
    with what the preset says of its CRM. A whole preset copied into a crmkpi.toml (its
    `[preset]` table included) is the mapping itself: nothing is merged under it."""
    name = document.get("preset")
    user = {k: v for k, v in document.items() if k != "preset"}
    if isinstance(name, dict):
        copied = name.get("name")
        if not isinstance(copied, str) or not copied:
            raise ConfigError("preset: a copied [preset] table needs `name`")
        return user, _info(copied, name)
    if not isinstance(name, str):
        raise ConfigError(f"preset: expected a preset name ({_names()}), got {name!r}")
    if name == "auto":
        raise ConfigError(
            'preset: "auto" needs the input folder; give it with `crmkpi ... --preset auto` '
            "or name the preset"
        )
    preset = preset_document(name)
    info = _info(name, preset.pop("preset", None))
    return merge_documents(preset, user), info


def preset_config(name: str) -> Config:
    """A preset on its own, validated."""
    merged, info = apply_preset({"preset": name})
    return parse_config(merged, None, info)


# --- detection ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresetMatch:
    """How well a preset recognises a folder: the files it would read, by table and layout."""

    name: str
    files: dict[str, list[str]]  # file name -> the table layouts recognising it
    matched_headers: int

    @property
    def score(self) -> tuple[int, int]:
        """Files recognised first, then how many headers the recognising layouts asked for."""
        return (len(self.files), self.matched_headers)


def rank_presets(folder: Path) -> list[PresetMatch]:
    """Every preset recognising at least one file of `folder`, best first."""
    from crmkpi.load import Sampler, claim_files

    matches = []
    sampler = Sampler(folder)
    for name in list_presets():
        config = preset_config(name)
        claims = claim_files(config, folder, sampler, check_unclaimed=False)
        if not claims.recognised:
            continue
        layouts = {
            layout.label: layout for table in config.tables.values() for layout in table.variants
        }
        headers = sum(
            max(len(layouts[label].match_headers) for label in labels)
            for labels in claims.recognised.values()
        )
        files = {path.name: labels for path, labels in sorted(claims.recognised.items())}
        matches.append(PresetMatch(name, files, headers))
    return sorted(matches, key=lambda m: m.score, reverse=True)


def detect_preset(folder: Path) -> str | None:
    """The preset whose exports `folder` holds (by headers), or None when none does or two
    fit equally well."""
    ranked = rank_presets(folder)
    if not ranked or (len(ranked) > 1 and ranked[0].score == ranked[1].score):
        return None
    return ranked[0].name


# --- documentation ------------------------------------------------------------------------------

_PROBE_DATE = dt.datetime(2023, 6, 1)


def _probe_value(dtype: pl.DataType, constant: str | None) -> Any:
    if constant is not None:
        return constant
    if dtype == pl.String:
        return "x"
    if dtype == pl.Float64:
        return 1.0
    if dtype == pl.Int64:
        return 1
    if dtype == pl.Boolean:
        return False
    if dtype == pl.Date:
        return _PROBE_DATE.date()
    return _PROBE_DATE


# The output metrics that read each survey type.
SURVEY_TYPE_METRICS = {
    "csat": {"csat", "avg_satisfaction_score"},
    "nps": {"nps"},
    "ad_awareness": {"ad_awareness_rate"},
    "ad_rating": {"ad_success_score"},
}


def unlocked_metrics(layouts: list[TableConfig]) -> list[str]:
    """The output metrics computable from exports read by these layouts alone: the engine's
    own plan over a one-row table with the columns each layout supplies (so the list follows
    the registry, never a hand-written copy)."""
    from crmkpi.calendar import Calendar
    from crmkpi.engine import ComputeOptions, compute
    from crmkpi.io.mapping import column_specs
    from crmkpi.tables import columns_of

    frames = {}
    for layout in layouts:
        contract = columns_of(layout.name)
        specs = column_specs(layout)
        columns = [c for c in contract if c in layout.columns or contract[c].required]
        frames[layout.name] = pl.DataFrame(
            {
                c: pl.Series(
                    c, [_probe_value(contract[c].dtype, specs[c].constant)], contract[c].dtype
                )
                for c in columns
            }
        )
    result = compute(frames, ComputeOptions(Calendar("all"), (), _PROBE_DATE.date()))
    computed = set(result.computed)
    surveys = frames.get("surveys")
    if surveys is not None and "survey_type" in surveys.columns:
        # a survey export of one kind unlocks that kind's metrics only
        kind = surveys["survey_type"][0]
        if kind in SURVEY_TYPE_METRICS:
            computed -= set().union(
                *(names for other, names in SURVEY_TYPE_METRICS.items() if other != kind)
            )
    return sorted(computed)


def _headers_read(layout: TableConfig) -> str:
    """The export's headers the layout reads: alternatives as `A` / `B`, joined ones as
    `A` + `B`; those recognising the export first."""
    read: list[str] = [f"**`{h}`**" for h in layout.match_headers]
    if layout.read.header_row:
        read[0] = f"header on row {layout.read.header_row}: {read[0]}"
    seen = {h.casefold() for h in layout.match_headers}
    for spec in layout.columns.values():
        fresh = [s for s in spec.sources if s.casefold() not in seen]
        if fresh:
            read.append((" / " if spec.any_source else " + ").join(f"`{s}`" for s in fresh))
            seen.update(s.casefold() for s in fresh)
    return ", ".join(read)


def presets_markdown() -> str:
    """docs/presets.md: per CRM how to export and which KPIs each export unlocks."""
    from crmkpi.metrics import REGISTRY

    titles = {m.name: m.title_zh for m in REGISTRY.outputs()}
    lines = [
        "# Presets: KPIs from a CRM's exports without writing a mapping",
        "",
        "<!-- generated by `python -m crmkpi.presets docs/presets.md` from crmkpi/presets/*.toml"
        " and the metric registry; do not edit -->",
        "",
        "`crmkpi compute EXPORTS --preset NAME` reads a folder of exports from one CRM with the "
        "mapping shipped in `crmkpi/presets/NAME.toml`; `crmkpi init EXPORTS` recognises the CRM "
        "from the headers it finds and writes a crmkpi.toml naming the preset. Files are "
        "recognised by their headers, whatever their names. To change anything, write only "
        'that in your crmkpi.toml next to `preset = "NAME"`: your keys win, table by table '
        "and column by column (a key at table level applies to every layout of the table). "
        "An export of the CRM that no table recognises stops the run (exit 65) with the "
        "headers expected and found.",
        "",
        "Presets: " + ", ".join(f"[`{n}`](#{n})" for n in list_presets()) + ".",
    ]
    for name in list_presets():
        document = _document(name)
        meta = document["preset"]
        config = preset_config(name)
        lines += ["", f'<a id="{name}"></a>', f"## {meta['title']} (`--preset {name}`)", ""]
        lines += [meta.get("how_to_export", "").strip(), ""]
        lines += [
            "| export | table | headers read (**recognised by**) | KPIs unlocked by it alone |",
            "|---|---|---|---|",
        ]
        for table in config.tables.values():
            for layout in table.variants:
                raw = document["tables"][table.name]
                own = raw["layouts"][layout.layout] if layout.layout is not None else raw
                what = str(own.get("description") or raw.get("description") or table.name)
                if "description" not in own:
                    what += f" (layout `{layout.layout}`)"
                metrics = ", ".join(
                    f"`{m}` {titles.get(m, '')}".strip() for m in unlocked_metrics([layout])
                )
                lines.append(
                    f"| {what} | {table.name} | {_headers_read(layout)} | {metrics or '-'} |"
                )
        used = [table.variants[0] for table in config.tables.values()]
        together = unlocked_metrics(used)
        alone = {m for layout in used for m in unlocked_metrics([layout])}
        extra = [m for m in together if m not in alone]
        if extra:
            lines += [
                "",
                "Together the exports also unlock: " + ", ".join(f"`{m}`" for m in extra) + ".",
            ]
        known = [k["export"] for k in meta.get("known_exports", [])]
        if known:
            lines += ["", "Recognised and left out (no KPI reads them): " + ", ".join(known) + "."]
        unconfirmed = meta.get("unconfirmed", [])
        if unconfirmed:
            lines += ["", "Unconfirmed (marked `UNCONFIRMED` in the preset; easy to override):"]
            lines += [f"- {item}" for item in unconfirmed]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/presets.md")
    target.write_text(presets_markdown(), encoding="utf-8")

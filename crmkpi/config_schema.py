"""The keys of crmkpi.toml as data: per section, each key's type, default, description and an
example. The loader (crmkpi/config.py) takes its known keys and choices from here and
docs/config.md is generated from here (`make docs`), so a key cannot be accepted without being
documented. Metric settings and run options keep their own tables (crmkpi/metrics/settings.py,
crmkpi/options.py), which the reference page reads as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmkpi.choices import DEFAULT_NULL_VALUES, PARSE_KINDS

FOOTER_RULES = ("auto", "salesforce", "totals", "none")
DURATION_UNITS = ("seconds", "minutes", "hours", "days")
PERCENT_SCALES = ("auto", "points", "fraction")
DUPLICATE_HEADER_RULES = ("reject", "suffix")
DECIMAL_MARKS = (".", ",")
# parse kinds io/mapping.py adds on top of io/parse.py's (a post-step on the `id` parser)
MAPPING_PARSE_KINDS = ("salesforce_id",)
COLUMN_PARSE_KINDS = PARSE_KINDS + MAPPING_PARSE_KINDS


@dataclass(frozen=True)
class Key:
    """One key: `example` is a TOML line as written in its section (see Section.context)."""

    name: str
    type: str
    default: str
    description: str
    example: str
    # False: documented ahead of the loader (which still refuses it as unknown)
    accepted: bool = True
    # the TOML the example is written under, when it differs from the section's
    context: str | None = None


@dataclass(frozen=True)
class Section:
    """A table of crmkpi.toml; `context` is the TOML that an example line follows."""

    title: str
    intro: str
    keys: tuple[Key, ...]
    context: str

    def names(self) -> set[str]:
        """The keys the loader accepts here."""
        return {k.name for k in self.keys if k.accepted}


def _one_of(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(f'"{c}"' for c in choices)


TABLE_CONTEXT = '[tables.orders]\nfile = "orders.csv"\n'
COLUMN_CONTEXT = TABLE_CONTEXT + "[tables.orders.columns]\n"
CALLS_COLUMN_CONTEXT = '[tables.calls]\nfile = "calls.csv"\n[tables.calls.columns]\n'

TOP = Section(
    "The file",
    "crmkpi.toml's top-level tables.",
    (
        Key(
            "input",
            "table",
            "{}",
            "where the exports are and how they are read by default (below)",
            'input = { dir = "exports" }',
        ),
        Key(
            "settings",
            "table",
            "{}",
            "run-wide settings and metric settings (below)",
            'settings = { timezone = "Asia/Shanghai" }',
        ),
        Key(
            "tables",
            "table of `[tables.<table>]`",
            "{} (files named after the tables)",
            "the mapping of export files onto canonical tables (below)",
            'tables = { orders = { file = "orders.csv" } }',
        ),
        Key(
            "run",
            "table",
            "{}",
            "defaults of the `crmkpi compute` options (below)",
            'run = { period = "month" }',
        ),
        Key(
            "preset",
            "string",
            "none",
            "a shipped mapping put under this file (salesforce, hubspot, zoho, wukong, fxiaoke, "
            "auto); the file's own keys win",
            'preset = "hubspot"',
        ),
    ),
    "",
)

READ = Section(
    "Read options: `[input]` and `[tables.<table>]`",
    "How files are read and parsed. In `[input]` they are the defaults of every table; a "
    "`[tables.<table>]` (or one of its layouts) overrides them for its own files.",
    (
        Key(
            "encoding",
            "string (a codec name)",
            '"utf-8"',
            "text encoding of CSV files (a BOM is honoured)",
            'encoding = "gb18030"',
        ),
        Key(
            "delimiter",
            'string: one character, "tab", "whitespace" or "auto"',
            "none (detected)",
            "field separator of CSV files",
            'delimiter = ";"',
        ),
        Key("sheet", "string", "none (the first sheet)", "XLSX sheet to read", 'sheet = "Data"'),
        Key(
            "header_row",
            "integer (1-based; 0 = no header)",
            "none (detected)",
            "row holding the headers; with 0 the columns are named column_1, column_2, ...",
            "header_row = 3",
        ),
        Key(
            "footer",
            _one_of(FOOTER_RULES),
            '"auto"',
            "export footers to drop (a Salesforce report's trailer, a totals row)",
            'footer = "salesforce"',
        ),
        Key(
            "date_format",
            "string or list of strings (strftime formats)",
            "none (ISO and common formats detected)",
            "formats tried for every date column of the files, in order",
            'date_format = ["%d.%m.%Y", "%d.%m.%Y %H:%M"]',
        ),
        Key(
            "dayfirst",
            "boolean",
            "none (decided per column from the values)",
            "whether 03/04/2024 is 3 April (true) or 4 March (false)",
            "dayfirst = true",
        ),
        Key(
            "timezone",
            "string (IANA time zone)",
            "none (times are in settings.timezone)",
            "time zone of the files' naive timestamps",
            'timezone = "America/New_York"',
        ),
        Key(
            "decimal",
            _one_of(DECIMAL_MARKS),
            '"."',
            "decimal mark of numbers (1.234,50 with ',')",
            'decimal = ","',
        ),
        Key(
            "currency",
            "string (a currency code)",
            "none (symbols in the cells decide)",
            "currency of bare amounts; a cell in another currency is quarantined",
            'currency = "CNY"',
        ),
        Key(
            "null_values",
            "string or list of strings",
            ", ".join(f'"{v}"' for v in sorted(DEFAULT_NULL_VALUES)),
            "cell texts read as empty (replaces the defaults; the empty cell always is)",
            'null_values = ["", "n/a", "--"]',
        ),
        Key(
            "percent_scale",
            _one_of(PERCENT_SCALES),
            '"auto"',
            "whether bare percent numbers are points (45 = 45 %) or fractions (0.45)",
            'percent_scale = "points"',
        ),
        Key(
            "max_file_mb",
            "number (megabytes, above 0)",
            "4096",
            "largest file read; a bigger one is rejected before it is read",
            "max_file_mb = 512",
        ),
        Key(
            "duplicate_headers",
            _one_of(DUPLICATE_HEADER_RULES),
            '"reject"',
            'a repeated header: refuse the file, or name the second one "Header (2)"',
            'duplicate_headers = "suffix"',
        ),
    ),
    "[input]\n",
)

INPUT = Section(
    "`[input]`",
    "Besides the read options above:",
    (
        Key(
            "dir",
            "string (a folder path)",
            "none (the config file's folder)",
            "folder of the exports, relative to the config file; the command line's INPUT wins",
            'dir = "exports"',
        ),
    ),
    "[input]\n",
)

TABLE = Section(
    "`[tables.<table>]`",
    "One canonical table (deals, orders, customers, ...) and the files that feed it; the read "
    "options above apply too. `[tables.<table>.layouts.<layout>]` takes the same keys except "
    "`layouts`, on top of the table's.",
    (
        Key(
            "file",
            "string or list of strings (names or globs)",
            "required",
            "the table's files, relative to the input folder",
            'file = ["orders_*.csv", "orders.xlsx"]',
            context="[tables.orders]\n",
        ),
        Key(
            "columns",
            "table of canonical column = source",
            "{} (headers named as the canonical columns)",
            "how each canonical column is made (below)",
            'columns = { amount = "Total" }',
        ),
        Key(
            "skip_rows_without",
            "string or list of strings (headers)",
            "[]",
            "rows whose cells under these headers are all empty are skipped and counted",
            'skip_rows_without = ["Order ID"]',
        ),
        Key(
            "required",
            "boolean",
            "true",
            "a missing file is an error (exit 66) rather than a skipped table",
            "required = false",
        ),
        Key(
            "allow_empty",
            "boolean",
            "false",
            "a file with a header and no rows is accepted",
            "allow_empty = true",
        ),
        Key(
            "match_headers",
            "string or list of strings (headers)",
            "[]",
            "a file belongs to the table only when its header row holds all of these",
            'match_headers = ["Order ID", "Sales"]',
        ),
        Key(
            "exclude_headers",
            "string or list of strings (headers)",
            "[]",
            "with match_headers: a file holding any of these does not belong to the table",
            'exclude_headers = ["Return Reason"]',
            context=TABLE_CONTEXT + 'match_headers = ["Order ID"]\n',
        ),
        Key(
            "enabled",
            "boolean",
            "true",
            "false leaves the table out (a preset's table you do not export)",
            "enabled = false",
        ),
        Key(
            "description",
            "string",
            "none",
            "free text for people (docs/presets.md shows it); the loader does not read it",
            'description = "Order lines from the web shop"',
        ),
        Key(
            "layouts",
            "table of `[tables.<table>.layouts.<layout>]`",
            "none",
            "several export layouts of one table, told apart by match_headers; the first "
            "layout with files is read",
            'layouts = { v11 = { match_headers = ["Contract No"] } }',
        ),
    ),
    TABLE_CONTEXT,
)

COLUMN = Section(
    "`[tables.<table>.columns]`",
    'A canonical column is a source header (`amount = "Total"`) or a table of these keys. '
    "Examples are written under `[tables.orders.columns]` unless they name another table's "
    "column.",
    (
        Key(
            "from",
            "string or list of strings (headers)",
            "none",
            "the source header; several are joined with a space (a date and a time)",
            'ordered_at = { from = ["Date", "Time"] }',
        ),
        Key(
            "from_any",
            "list of strings (headers)",
            "none",
            "alternative headers: the first one present in the file is read",
            'amount = { from_any = ["Amount", "Amount__c"] }',
        ),
        Key(
            "expr",
            "string (a SQL expression over the headers, quoted as identifiers)",
            "none",
            "a computed column, evaluated by Polars' SQL expression parser",
            'amount = { expr = \'"Quantity" * "UnitPrice"\' }',
        ),
        Key(
            "value",
            "string, number or boolean",
            "none",
            "a constant for every row (takes no other key)",
            'channel = { value = "web" }',
        ),
        Key(
            "map",
            "table of source value = canonical value",
            "none",
            "value map, case-insensitive; an unmapped value is quarantined (or takes `default`)",
            'status = { from = "Stage", map = { "Closed Won" = "won", "Closed Lost" = "lost" } }',
        ),
        Key(
            "default",
            "string",
            "none",
            "with map: the canonical value of source values the map does not name",
            'status = { from = "State", map = { Paid = "completed" }, default = "cancelled" }',
        ),
        Key(
            "parse",
            _one_of(COLUMN_PARSE_KINDS),
            "the contract's kind for the column",
            "the parser of the column's text",
            'customer_id = { from = "Account ID", parse = "salesforce_id" }',
        ),
        Key(
            "unit",
            _one_of(DURATION_UNITS),
            '"seconds"',
            "unit of bare numbers in a duration column",
            'wait_seconds = { from = "Wait (min)", unit = "minutes" }',
            context=CALLS_COLUMN_CONTEXT,
        ),
        Key(
            "first_of",
            "string (a separator)",
            "none",
            "a multi-valued cell (`123;456`) keeps its first value",
            'customer_id = { from = "Associated Company IDs", first_of = ";" }',
        ),
        Key(
            "currency_column",
            "string (a header; {} stands for the amount's header)",
            "none",
            "header of each row's currency code beside a money column",
            'amount = { from = "Amount", currency_column = "{} Currency" }',
        ),
        Key(
            "review_when_mixed",
            "table of source value = list of values",
            "none",
            "with map: warn when a mapped value and any of these occur in the same file",
            'status = { from = "Stage", map = { Done = "won" }, default = "open", '
            'review_when_mixed = { Done = ["Paid"] } }',
        ),
        Key(
            "date_format",
            "string or list of strings (strftime formats)",
            "none",
            "this column's date formats, tried before the built-in forms; a trailing weekday "
            "(`2018-01-01 星期五`) is ignored",
            'ordered_at = { from = "销售日期", date_format = "%Y-%m-%d" }',
        ),
    ),
    COLUMN_CONTEXT,
)

SETTINGS = Section(
    "`[settings]`",
    "Run-wide settings; every other key is a metric setting (the next table).",
    (
        Key(
            "timezone",
            "string (IANA time zone)",
            '"UTC"',
            "the business time zone: the day a timestamp falls on",
            'timezone = "Asia/Shanghai"',
        ),
        Key(
            "date_min",
            "date",
            "1980-01-01",
            "earliest plausible date; an earlier one is quarantined",
            "date_min = 2000-01-01",
        ),
        Key(
            "date_max",
            "date",
            "2079-12-31",
            "latest plausible date; a later one is quarantined",
            "date_max = 2040-12-31",
        ),
    ),
    "[settings]\n",
)

SECTIONS = (TOP, READ, INPUT, TABLE, COLUMN, SETTINGS)

"""The closed sets of values a run accepts (grains, breakdown dimensions, engines, formats,
languages, log formats, the parsers a column may name, the cells read as missing), in a module
that imports nothing heavy: the command line builds its choices and help from them at start-up,
and the engine, calendar, options and config check against the same tuples."""

GRAINS = ("day", "week", "month", "quarter", "year", "all")
DIMENSIONS = (
    "segment",
    "region",
    "rep",
    "team",
    "channel",
    "product",
    "category",
    "source",
    "rfm_segment",
    "campaign",
)
DEFAULT_DIMENSIONS = ("segment", "rep")
ENGINES = ("polars", "duckdb", "spark", "sqlframe")
FORMATS = ("csv", "parquet", "xlsx", "html")
LANGUAGES = ("en", "zh")
LOG_FORMATS = ("text", "json")

# how a source column's text becomes a canonical value (crmkpi/io/parse.py has the parsers)
PARSE_KINDS = (
    "text",
    "id",
    "money",
    "percent",
    "float",
    "int",
    "bool",
    "date",
    "datetime",
    "duration",
)

# cells read as missing unless a table's read.null_values says otherwise
DEFAULT_NULL_VALUES: frozenset[str] = frozenset(
    {
        "",
        "N/A",
        "n/a",
        "NA",
        "na",
        "#N/A",
        "-",
        "--",
        "—",
        "无",
        "null",
        "NULL",
        "Null",
        "None",
        "none",
        "nil",
        "(空)",
        "空",
    }
)

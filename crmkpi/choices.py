"""The closed sets of values a run accepts (grains, breakdown dimensions, engines, formats,
languages, log formats), in a module that imports nothing heavy: the command line builds its
choices and help from them at start-up, and the engine, calendar and options check against the
same tuples."""

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

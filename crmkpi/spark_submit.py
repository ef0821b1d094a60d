"""Entry point for `spark-submit` and Databricks/EMR Python jobs: the arguments are those of
`crmkpi compute` and the run uses the session the job was started with.

    ENTRY=$(python -c 'import crmkpi.spark_submit as m; print(m.__file__)')
    spark-submit --master yarn "$ENTRY" /mnt/exports --out /mnt/kpis --period month

INPUT and --out are paths of the driver's file system (a mount of the lake on Databricks or
EMR): loading is Polars on the driver today (docs/spark.md).

The session is made first, from the submitter's configuration (master, executors, memory): a
session made later by `--engine spark` with no `--spark-master` would be a local one.
"""

from __future__ import annotations

import sys


def compute_arguments(args: list[str]) -> list[str]:
    """`crmkpi compute ARGS`, on engine spark unless the arguments choose one."""
    chosen = any(a == "--engine" or a.startswith("--engine=") for a in args)
    return ["compute", *args, *([] if chosen else ["--engine", "spark"])]


def main(args: list[str] | None = None) -> None:
    from pyspark.sql import SparkSession

    SparkSession.builder.appName("crmkpi").getOrCreate()
    from crmkpi import entry

    sys.argv = [sys.argv[0], *compute_arguments(sys.argv[1:] if args is None else args)]
    entry.main()


if __name__ == "__main__":
    main()

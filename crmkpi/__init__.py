import warnings

__version__ = "0.1.0"

# pandera imports pyspark.pandas whenever PySpark is installed, and PySpark 4.3 then warns that
# it does not fully support pandas 3; crmkpi uses only PySpark's Arrow conversion, which does.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

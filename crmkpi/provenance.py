"""The columns that say where each loaded row came from. The reader writes them, the quarantine
reports them, and the views key rows by them where the data has no key of its own."""

SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"

"""Errors that end a run, each carrying the exit code of DESIGN.md's CLI contract."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INVALID_DATA = 65
EXIT_INPUT_MISSING = 66
EXIT_CANNOT_CREATE_OUTPUT = 73
EXIT_IO_ERROR = 74
EXIT_RETRY_LATER = 75
EXIT_BAD_CONFIG = 78


class CrmkpiError(Exception):
    """Base of every error crmkpi reports to the user; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_UNEXPECTED


class ConfigError(CrmkpiError):
    """crmkpi.toml, the environment or an option is invalid."""

    exit_code = EXIT_BAD_CONFIG


class InputMissingError(CrmkpiError):
    """A required input file or folder does not exist or cannot be read (permission)."""

    exit_code = EXIT_INPUT_MISSING


class InputReadError(CrmkpiError):
    """An input exists but reading it failed (an I/O error of the disk or the network share)."""

    exit_code = EXIT_IO_ERROR


class InvalidDataError(CrmkpiError):
    """The data cannot be used: a rejected file, a missing column, too many rejected rows."""

    exit_code = EXIT_INVALID_DATA


class InputUnstableError(CrmkpiError):
    """An input changed while it was read (still being written): retry later."""

    exit_code = EXIT_RETRY_LATER


@dataclass
class FileRejectedError(InvalidDataError):
    """A whole file is unusable; names the file, the line (or record), the column and why.

    `check` is a stable code (`empty_file`, `decode_error`, ...) that tests and reports key on;
    `reason` is the human sentence. Data values never appear in either.
    """

    path: str
    check: str
    reason: str
    line: int | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.check}: {self.reason}"

"""The console entry point. SIGINT and SIGTERM handlers go in before anything heavy is imported,
so a scheduler that stops a run while it is still starting gets its exit code (130/143) and the
JSON line like any other stop; `--version` answers without importing the engine at all."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from crmkpi import __version__
from crmkpi.logs import final_error_line
from crmkpi.summary import Summary

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(BaseException):
    """A stop signal outside the run's own handling; a BaseException, so no `except Exception`
    of a library being imported can swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def _silence_broken_stdout() -> None:
    """A reader that went away (`crmkpi ... | head`) is not the run's failure: stdout is pointed
    at /dev/null so the interpreter's final flush cannot turn the exit code into 120."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _log_format(args: list[str]) -> str:
    """`--log-format` as given, before the command line is parsed (it may never be)."""
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--log-format="):
            return arg.partition("=")[2]
    return os.environ.get("CRMKPI_LOG_FORMAT", "text")


def _utf8_everywhere() -> None:
    """Under a non-UTF-8 locale (`LC_ALL=C`, Latin-1) Python would decode file names and write
    stdout in that locale: '商机.csv' would not match its glob and the JSON line would not print.
    The run restarts itself in Python's UTF-8 mode, so nothing depends on the process locale."""
    if sys.flags.utf8_mode or sys.getfilesystemencoding().lower().replace("-", "") == "utf8":
        return
    os.execv(sys.executable, [sys.executable, "-X", "utf8", *sys.orig_argv[1:]])


def main() -> None:
    _utf8_everywhere()
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _stop)
    try:
        if sys.argv[1:] == ["--version"]:
            print(f"crmkpi {__version__}")
            return
        from crmkpi.cli import main as run_cli

        run_cli()
    except _Stopped as stop:
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        name = signal.Signals(stop.signum).name
        message = f"stopped by signal {name}; nothing published"
        print(final_error_line(message, _log_format(sys.argv[1:])), file=sys.stderr, flush=True)
        try:
            print(Summary("failed", 128 + stop.signum, message=message).line(), flush=True)
        except BrokenPipeError:
            _silence_broken_stdout()
        sys.exit(128 + stop.signum)
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_broken_stdout()


if __name__ == "__main__":
    main()

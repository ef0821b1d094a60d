"""Run guarantees for the output folder: one run at a time, nothing partial ever visible.

Outputs are written into a staging folder beside `--out`, fsynced, and then swapped in with one
atomic rename (Linux: renameat2 RENAME_EXCHANGE; elsewhere two renames). A run killed at any
point leaves the previous outputs intact; its leftovers are removed by the next run. A lock file
beside the folder (flock, released by the kernel when the holder dies) keeps a second run out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from crmkpi.errors import EXIT_CANNOT_CREATE_OUTPUT, EXIT_IO_ERROR, EXIT_RETRY_LATER, CrmkpiError

MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
RETIRED_PREFIX = ".retired-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputError(CrmkpiError):
    """The output location cannot be created or written (exit 73)."""

    exit_code = EXIT_CANNOT_CREATE_OUTPUT


class OutputIOError(CrmkpiError):
    """Writing failed half-way (disk full, I/O error): nothing was published (exit 74)."""

    exit_code = EXIT_IO_ERROR


class LockHeldError(CrmkpiError):
    """Another run holds the output folder (exit 75, retry later)."""

    exit_code = EXIT_RETRY_LATER


class Interrupted(CrmkpiError):
    """SIGINT or SIGTERM: the run stopped cleanly (exit 130 or 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signal.Signals(signum).name}; nothing published")
        self.exit_code = 128 + signum


def _siblings(out: Path, prefix: str) -> list[Path]:
    parent = out.parent
    return sorted(parent.glob(f"{prefix}{out.name}.*")) if parent.is_dir() else []


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


@contextmanager
def run_lock(out: Path, since: str) -> Iterator[None]:
    """Hold the output folder's lock for the run; a second run exits 75 at once, writing
    nothing. The lock file names the holder (pid, host, since) for the operator."""
    path = lock_path(out)
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot create the lock file {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(handle, 4096, 0).decode("utf-8", "replace").strip()
            raise LockHeldError(
                f"lock_held: another run writes {out} ({holder or 'holder unknown'}); retry later"
            ) from exc
        os.ftruncate(handle, 0)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
        os.pwrite(handle, json.dumps(record).encode(), 0)
        yield
    finally:
        os.close(handle)


def is_crmkpi_output(folder: Path) -> bool:
    """A folder crmkpi published: it holds a manifest with crmkpi's own keys."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"run_id", "crmkpi_version"} <= manifest.keys()


def output_folder(out: Path) -> Path:
    """Where the outputs really go: a symlinked `--out` is followed, so the link stays and the
    outputs land in its target (the staging folder and the lock sit beside the target)."""
    return out.resolve() if out.is_symlink() else Path(os.path.abspath(out))


def check_output_location(
    out: Path, inputs: Path | None, config_folder: Path | None = None
) -> None:
    """Refuse (exit 73), before anything is read or created, an output folder whose publishing
    could destroy data that is not crmkpi's, or feed its outputs back in as inputs.

    Publishing replaces the output folder whole, so it may be neither the input folder, nor
    contain it, nor lie inside it; nor may it be or contain the config's folder (an output
    folder beside the config, in a project folder, is fine). Paths are compared after resolving
    symlinks. An existing folder that is not empty must be an earlier crmkpi output (its
    manifest says so). `inputs` is None when they are not on this machine (Spark's URIs).
    """
    target = out.resolve()
    guarded = [("input folder", inputs.resolve(), True)] if inputs is not None else []
    if config_folder is not None:
        guarded.append(("config's folder", config_folder.resolve(), False))
    for role, folder, inside_too in guarded:
        if guarded_overlap(target, folder, inside_too):
            raise OutputError(
                f"output folder {out} overlaps the {role} {folder}: publishing replaces the "
                "output folder whole, so it must lie outside the inputs; choose another --out"
            )
    if target.is_dir() and any(target.iterdir()) and not is_crmkpi_output(target):
        raise OutputError(
            f"output folder {out} exists, is not empty and holds no crmkpi manifest; crmkpi "
            "replaces only folders it wrote itself: choose an empty or new folder"
        )


def guarded_overlap(target: Path, folder: Path, inside_too: bool) -> bool:
    """`target` is `folder`, contains it, or (with `inside_too`) lies inside it."""
    return folder.is_relative_to(target) or (inside_too and target.is_relative_to(folder))


def check_rejected_dir(folder: Path, inputs: Path, option: str = "--rejected-dir") -> None:
    """`validate --rejected-dir` (or `clv-check --out`): a folder outside the inputs, not an
    existing file (exit 73)."""
    if guarded_overlap(folder.resolve(), inputs.resolve(), inside_too=True):
        raise OutputError(
            f"{option} {folder} overlaps the input folder {inputs}: files written there would "
            "be read as inputs by the next run; choose a folder outside it"
        )
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{option} {folder} exists and is not a folder")


def check_writable(out: Path) -> None:
    """Fail before any processing when the output location cannot be written (exit 73)."""
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {parent}: {exc.strerror}") from exc
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder")
    probe = parent / f"{STAGING_PREFIX}{out.name}.probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise OutputError(f"cannot write in {parent}: {exc.strerror}") from exc


def clean_leftovers(out: Path) -> None:
    """Remove staging and retired folders of runs that were killed."""
    for leftover in [*_siblings(out, STAGING_PREFIX), *_siblings(out, RETIRED_PREFIX)]:
        shutil.rmtree(leftover, ignore_errors=True)


@dataclass
class Staging:
    """A staging folder the run writes its outputs into."""

    out: Path
    folder: Path

    def path(self, name: str) -> Path:
        target = self.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for directory in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two folders (Linux renameat2); False where the call is not available."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(code, os.strerror(code), str(a))


def swap_in(staging: Staging, run_id: str) -> None:
    """Make the staged outputs the published ones in one step."""
    out = staging.out
    _fsync_tree(staging.folder)
    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        _replace(staging, out, run_id)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _replace(staging: Staging, out: Path, run_id: str) -> None:
    if not out.exists():
        os.rename(staging.folder, out)
    elif _exchange(staging.folder, out):
        shutil.rmtree(staging.folder, ignore_errors=True)  # now holds the previous outputs
    else:
        retired = out.parent / f"{RETIRED_PREFIX}{out.name}.{run_id}"
        os.rename(out, retired)
        os.rename(staging.folder, out)
        shutil.rmtree(retired, ignore_errors=True)
    parent = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(parent)
    finally:
        os.close(parent)


@contextmanager
def staged(out: Path, run_id: str) -> Iterator[Staging]:
    """A staging folder removed on any failure; the caller publishes it with `swap_in`."""
    folder = out.parent / f"{STAGING_PREFIX}{out.name}.{run_id}"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror}") from exc
    try:
        yield Staging(out, folder)
    except OSError as exc:
        raise OutputIOError(
            f"writing the outputs failed ({exc.strerror}); nothing published"
        ) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def clean_abort() -> Iterator[None]:
    """SIGTERM stops the run like SIGINT does: through the cleanup path, never mid-rename."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

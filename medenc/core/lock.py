"""One writer per run folder: a second ``make train`` (or evaluate, or release) of the same run is refused.

An advisory ``flock`` on a file beside the run folder (so ``--fresh`` may wipe the folder while holding it);
the kernel drops it when the process dies, so a killed run never leaves a stale lock behind.
Every step that writes a run folder does so under its lock, so the lock is also where a write the system
refuses (a full disk, a read-only or foreign-owned outputs folder) becomes one line naming the path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medenc.core.errors import RunError


def lock_path(run_dir: Path) -> Path:
    """``outputs/.<run>.lock`` for ``outputs/<run>``."""
    return run_dir.parent / f".{run_dir.name}.lock"


# What the system answers when it will not write: the disk (or quota) is full, or the folder is not writable.
_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
# torch.save reports a full disk as a RuntimeError ("PytorchStreamWriter failed writing file"), with no errno:
# such an error is taken for a full disk only when the run folder's disk really has less than this left.
NEARLY_FULL_BYTES = 64 * 2**20


def _unwritable(exc: OSError, run_dir: Path, what: str, setting: str = "OUTPUTS_DIR") -> RunError:
    """The one-line error for a write refused by the system while ``what`` wrote ``run_dir``; ``setting``:
    the variable that moves that folder."""
    where = exc.filename or run_dir
    fix = (
        "free space there"
        if exc.errno in _FULL
        else "make it writable for this user (or it is on a read-only disk)"
    )
    folder = "run folder" if setting == "OUTPUTS_DIR" else "folder"
    return RunError(
        f"{where}: {exc.strerror or exc} ({what}, {folder} {run_dir}); {fix}, or set {setting} to a "
        "folder that can be written"
    )


@contextmanager
def refused_writes(folder: Path, what: str, setting: str) -> Iterator[None]:
    """A write the system refuses inside the block (a full disk, a read-only or foreign-owned folder) becomes
    one RunError naming the path, for steps that write outside a run folder (``make data``)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL + _NOT_WRITABLE:
            raise
        raise _unwritable(exc, Path(folder), what, setting) from exc


@contextmanager
def run_lock(run_dir: Path, what: str) -> Iterator[None]:
    """Hold the run folder's lock while ``what`` (e.g. "make train") writes it; refuse if another holds it.

    An OSError of a full disk or an unwritable folder, taking the lock or inside the block, is re-raised as
    a RunError that names the path (the traceback says nothing more to a user).
    """
    try:
        with refused_writes(Path(run_dir), what, "OUTPUTS_DIR"), _held(Path(run_dir), what):
            yield
    except RuntimeError as exc:
        if not _nearly_full(Path(run_dir)):
            raise
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir))
        raise _unwritable(full, Path(run_dir), what) from exc


def _nearly_full(run_dir: Path) -> bool:
    """Whether the disk that holds ``run_dir`` (or its nearest existing parent) has almost no space left."""
    path = run_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < NEARLY_FULL_BYTES
    except OSError:
        return False


@contextmanager
def _held(run_dir: Path, what: str) -> Iterator[None]:
    """The flock itself, in ``outputs/.<run>.lock``."""
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunError(
                f"{run_dir}: in use by {holder}; wait for it to finish, or choose another RUN"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} ({what})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock

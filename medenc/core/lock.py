"""One writer per run folder: a second ``make train`` (or evaluate, or release) of the same run is refused.

An advisory ``flock`` on a file beside the run folder (so ``--fresh`` may wipe the folder while holding it);
the kernel drops it when the process dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medenc.core.errors import RunError


def lock_path(run_dir: Path) -> Path:
    """``outputs/.<run>.lock`` for ``outputs/<run>``."""
    return run_dir.parent / f".{run_dir.name}.lock"


@contextmanager
def run_lock(run_dir: Path, what: str) -> Iterator[None]:
    """Hold the run folder's lock while ``what`` (e.g. "make train") writes it; refuse if another holds it."""
    path = lock_path(Path(run_dir))
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

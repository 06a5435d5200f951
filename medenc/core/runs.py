"""Reading a run folder's record (run.json) the same way in every stage, with errors that say what to run.

``RUN_SCHEMA_VERSION`` changes whenever a run folder written by older code can no longer be read or
released as it is (schema 2: saved models carry the inference length, run.json records the code version).
A folder from another schema is refused with the command that rebuilds it, never used silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medenc.core.errors import RunError
from medenc.core.layout import RUN_INFO

RUN_SCHEMA_VERSION = 2


def rebuild_command(run_dir: Path) -> str:
    """The command that retrains a run folder from scratch."""
    return f"make train RUN={Path(run_dir).name} TRAIN_ARGS=--fresh"


def read_run_info(run_dir: Path, *, required: bool = True) -> dict[str, Any] | None:
    """``run_dir/run.json`` checked for JSON and schema; None when absent and not ``required``."""
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        if required:
            raise RunError(f"{path}: no run record; train first: make train RUN={Path(run_dir).name}")
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(
            f"{path}: unreadable run record ({exc}); rebuild the run: {rebuild_command(run_dir)}"
        ) from exc
    if not isinstance(info, dict) or info.get("schema_version") != RUN_SCHEMA_VERSION:
        found = info.get("schema_version") if isinstance(info, dict) else type(info).__name__
        raise RunError(
            f"{path}: written by an incompatible version of medenc (run schema {found}, this code reads "
            f"{RUN_SCHEMA_VERSION}); rebuild it: {rebuild_command(run_dir)}"
        )
    return info

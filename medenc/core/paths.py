"""Where things live: the raw data, the prepared data, runs and caches. All overridable by environment."""

from __future__ import annotations

import os
import re
from pathlib import Path

from medenc.core.errors import DataError, RunError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir(folders: tuple[str, ...] = ()) -> Path:
    """The raw sources: ``$DATA_DIR``, else ``../shared/data`` next to the project.

    ``folders``: the source folders the caller reads (the data registry's), named when the root is missing.
    """
    env = os.environ.get("DATA_DIR")
    path = Path(env).expanduser() if env else PROJECT_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        listed = (
            f": {', '.join(f + '/' for f in folders)}" if folders else " (medenc/data/sources/ lists them)"
        )
        raise DataError(
            path,
            None,
            f"the raw data root, one folder per source holding its unmodified upstream files{listed}; "
            "set DATA_DIR to your copy (docs/data.md says where each comes from)",
            "no such folder",
        )
    return path


def prepared_dir() -> Path:
    """The prepared sets and manifest from ``make data``: ``$PREPARED_DIR``, else ``data/prepared``."""
    return Path(os.environ.get("PREPARED_DIR", PROJECT_ROOT / "data" / "prepared")).expanduser()


def outputs_dir() -> Path:
    """Run folders: ``$OUTPUTS_DIR``, else ``outputs/``."""
    return Path(os.environ.get("OUTPUTS_DIR", PROJECT_ROOT / "outputs")).expanduser()


# A run name is one folder name, never a path: `--fresh` removes <outputs>/<run>, so "", ".", ".." or "a/b"
# would reach the outputs folder itself, the project or anything else. Starting with a letter or digit also
# keeps out hidden names (the lock files are .<run>.lock) and names that read as options.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RUN_NAME_RULE = (
    "a run name is 1-100 letters (a-z, A-Z), digits, '.', '_' or '-', starting with a letter or digit, "
    "no path (for run folders elsewhere than outputs/ set OUTPUTS_DIR, or train.py --output-dir)"
)


def check_run_name(run: str) -> str:
    """``run`` if it is a plain run name (``RUN_NAME``), else RunError saying the rule."""
    if not isinstance(run, str) or not RUN_NAME.fullmatch(run):
        raise RunError(f"run name {run!r}: {RUN_NAME_RULE}")
    return run


def run_folder(run: str, parent: str | Path | None = None) -> Path:
    """The run folder ``<parent>/<run>`` (``parent`` default: ``outputs_dir()``), ``run`` a plain name."""
    return Path(parent or outputs_dir()) / check_run_name(run)


def cache_dir() -> Path:
    """medenc's cache (assembled base model, embeddings): ``$MEDENC_CACHE``, else ``~/.cache/medenc``."""
    return Path(os.environ.get("MEDENC_CACHE", Path.home() / ".cache" / "medenc")).expanduser()

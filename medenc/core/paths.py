"""Where things live: the raw data, the prepared data, runs and caches. All overridable by environment."""

from __future__ import annotations

import os
from pathlib import Path

from medenc.core.errors import DataError

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


def cache_dir() -> Path:
    """medenc's cache (assembled base model, embeddings): ``$MEDENC_CACHE``, else ``~/.cache/medenc``."""
    return Path(os.environ.get("MEDENC_CACHE", Path.home() / ".cache" / "medenc")).expanduser()

"""Prepare every training, validation and test set from the raw sources.

Usage::

    python scripts/prepare_data.py [--leakage-threshold 0.5] [--out data/prepared] [--accept-upstream]

Reads ``$DATA_DIR`` (default ``../shared/data``), writes ``$PREPARED_DIR`` (default ``data/prepared``), prints
the rows per split/set/source and the leakage summary; exits 2 with the message on bad data or leakage.
A raw file that differs from its pinned sha256 (:mod:`medenc.data.pins`) is bad data, unless
``--accept-upstream`` (``make data DATA_ARGS=--accept-upstream``) accepts it on purpose: the manifest then
records it under ``upstream_accepted``.
"""

from __future__ import annotations

import sys

from medenc.core.errors import EXIT_USER_ERROR
from medenc.data.prepare import main

if __name__ == "__main__":
    # main() returns 1 for a MedencError it has said (an unexpected failure raises): the convention's 2.
    sys.exit(EXIT_USER_ERROR if (code := main()) == 1 else code)

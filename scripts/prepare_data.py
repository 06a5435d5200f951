"""Prepare every training, validation and test set from the raw sources.

Usage::

    python scripts/prepare_data.py [--leakage-threshold 0.5] [--out data/prepared]

Reads ``$DATA_DIR`` (default ``../shared/data``), writes ``$PREPARED_DIR`` (default ``data/prepared``), prints
the rows per split/set/source and the leakage summary; exits 1 with the message on bad data or leakage.
"""

from __future__ import annotations

import sys

from medenc.data.prepare import main

if __name__ == "__main__":
    sys.exit(main())

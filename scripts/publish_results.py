"""Publish a run's records (results, charts, card, recipe, run.json, manifest, log; no weights) to results/.

Usage (what ``make results RUN=cpu LOG=run.txt`` runs):

    python scripts/publish_results.py --run cpu --command "make train evaluate release RECIPE=cpu RUN=cpu" \
        --log run.txt

``results/<run>/`` is replaced as a whole, and its README says which quality targets the run meets.
"""

from __future__ import annotations

import sys

from medenc.release.publish import main

if __name__ == "__main__":
    sys.exit(main())

"""``make exports``: the ONNX and OpenVINO exports of a run's final model, and their measurement.

A stage between evaluation and release: it reads ``final/`` and the prepared validation pairs (the int8
IR's calibration), scores the int8 exports with the evaluation stage, and writes ``exports/`` with its
record, ``exports.json``, and the figures into results.json under ``exports``. The release reads that record,
verifies and copies the files, and never builds them.

record (``exports.json``: file names, reading, verifying, copying), build (the exports themselves),
measure (agreement, speed and the suite's figures against PyTorch). The entry points are
:func:`ensure_exports` and :func:`measure_run`; see docs/release.md.
"""

from medenc.export.build import build_exports, ensure_exports
from medenc.export.measure import measure_model, measure_run
from medenc.export.record import copy_exports, read_record, release_files, verify_exports

__all__ = [
    "build_exports",
    "copy_exports",
    "ensure_exports",
    "measure_model",
    "measure_run",
    "read_record",
    "release_files",
    "verify_exports",
]

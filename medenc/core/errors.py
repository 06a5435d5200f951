"""Exceptions with messages a user can act on, and the exit codes every script answers with.

Every error names the file, the row or element, and what was expected, so that bad input is never silently
skipped or half-written.

Exit codes, the same for every script in scripts/ (tests/test_scripts.py holds each one to them):
0 done; 1 an unexpected failure (a bug or a library's own error: Python's traceback exit); 2 a user error
that names its fix (a MedencError, one line on stderr; argparse's usage errors are 2 as well); 3 done, but a
check the command makes did not pass (``make results``: the records are published, a quality target is
not met).
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USER_ERROR = 2
EXIT_CHECK_FAILED = 3


class MedencError(Exception):
    """Base class for every error this package raises on purpose."""


class DataError(MedencError):
    """A raw or prepared data file is malformed, missing, or violates the data contract."""

    def __init__(self, path: str | Path, where: str | None, expected: str, found: str | None = None):
        self.path, self.where, self.expected, self.found = str(path), where, expected, found
        msg = f"{path}"
        if where:
            msg += f", {where}"
        msg += f": expected {expected}"
        if found is not None:
            msg += f", found {found}"
        super().__init__(msg)


class LeakageError(MedencError):
    """A test item is contained in the training data beyond the allowed threshold."""


class ModelError(MedencError):
    """The base model or a checkpoint is missing, corrupt or unverifiable."""


class RecipeError(MedencError):
    """A recipe has an unknown key, a wrong type, or an impossible value."""


class RunError(MedencError):
    """A run folder is missing what a step needs, or belongs to a different run."""


class EvaluationError(MedencError):
    """An evaluation option cannot be used here (an unknown backend, one whose runtime is not installed)."""


class ReleaseError(MedencError):
    """A release cannot be staged or pushed; the message says how to fix or retry."""


class ExportError(MedencError):
    """An ONNX or OpenVINO export of a run is missing, damaged or made from another model, or cannot be
    built (``make exports``)."""


def fail(exc: MedencError, code: int = EXIT_USER_ERROR) -> int:
    """A script's answer to an error the user can act on: one line on stderr, and its exit code.

    The message already names the problem and the fix, so a traceback adds nothing for a user; with
    ``MEDENC_VERBOSE`` set (``make ... VERBOSE=1``) the error is raised again, traceback and all.
    """
    import os
    import sys

    if os.environ.get("MEDENC_VERBOSE"):
        raise exc
    print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return code

"""Exceptions with messages a user can act on.

Every error names the file, the row or element, and what was expected, so that bad input is never silently
skipped or half-written.
"""

from __future__ import annotations

from pathlib import Path


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


class ReleaseError(MedencError):
    """A release cannot be staged or pushed; the message says how to fix or retry."""


def fail(exc: MedencError, code: int = 2) -> int:
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

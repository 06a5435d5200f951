"""One exit-code convention for every script (medenc.core.errors): a user error is exit 2 and one line.

Each script gets an input a user could plausibly get wrong; the answer must be exit 2 and a single
``error: <Kind>: <message>`` line on stderr (no traceback). A new script must join ``USER_ERRORS``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from medenc.core.paths import PROJECT_ROOT

SCRIPTS = PROJECT_ROOT / "scripts"

# script -> (arguments that make a user error, the error's kind)
USER_ERRORS: dict[str, tuple[list[str], str]] = {
    "prepare_data.py": (["--out", "{tmp}/prepared"], "DataError"),  # DATA_DIR points at no folder
    "train.py": (["--recipe", "{tmp}/no-such-recipe.yaml", "--run", "x"], "RecipeError"),
    "evaluate_run.py": (["--run", "no-such-run"], "RunError"),
    "release.py": (["--run", "no-such-run", "--repo-id", "org/x", "--dry-run"], "ReleaseError"),
    "export.py": (["--run", "no-such-run"], "ExportError"),
    "publish_results.py": (["--run", "no-such-run", "--dest", "{tmp}/published"], "RunError"),
    "bench.py": (["--model", "tiny", "--recipe", "{tmp}/no-such-recipe.yaml"], "RecipeError"),
    "gpu_transport.py": (["--transport", "{tmp}/no-transport", "check", "1"], "ModelError"),
}


def test_every_script_has_a_user_error_case():
    scripts = {p.name for p in SCRIPTS.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(USER_ERRORS)


@pytest.mark.parametrize("script", sorted(USER_ERRORS))
def test_a_user_error_exits_2_with_one_line(script, tmp_path):
    args, kind = USER_ERRORS[script]
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "no-data"),
        "OUTPUTS_DIR": str(tmp_path / "outputs"),
        "PREPARED_DIR": str(tmp_path / "prepared"),
        "MEDENC_VERBOSE": "",
    }
    (tmp_path / "outputs").mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *(a.format(tmp=tmp_path) for a in args)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith(f"error: {kind}: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--leakage-threshold", "nan"], {}),
        (["--leakage-threshold", "2"], {}),
        ([], {"MEDENC_LEAKAGE_THRESHOLD": "abc"}),
    ],
    ids=["nan", "above-1", "env-not-a-number"],
)
def test_a_bad_leakage_threshold_is_refused_before_any_work(tmp_path, args, env):
    """NaN or 2 passed and failed half a minute in, with a traceback; so did a word in the environment."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "prepare_data.py"), "--out", str(tmp_path / "prepared"), *args],
        cwd=PROJECT_ROOT, env={**os.environ, **env, "DATA_DIR": str(tmp_path / "no-data")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "expected a number from 0 to 1 (--leakage-threshold or MEDENC_LEAKAGE_THRESHOLD)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "prepared").exists()

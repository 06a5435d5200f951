"""The Makefile: no value a user sets reaches a shell as syntax, extra arguments split as a shell would, and a
failed step fails ``make``.

The targets run for real, with setup marked up to date (``make -o <stamp>``) so pip never runs; each case is
refused before any work, so the whole module costs a few seconds.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medenc.core.paths import PROJECT_ROOT

VENV = Path(sys.prefix)
pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or not (VENV / "bin" / "accelerate").exists(),
    reason="needs GNU make and the project's virtual environment",
)


def make(
    tmp_path: Path, *args: str, dry_run: bool = False, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``make ARGS`` in the project, setup taken as done, every folder it could write under ``tmp_path``."""
    prepared = tmp_path / "prepared"
    prepared.mkdir(exist_ok=True)
    (prepared / "manifest.json").write_text("{}")  # so train/evaluate do not prepare the data first
    (tmp_path / "outputs").mkdir(exist_ok=True)
    # Under `make test` the parent make's MAKEFLAGS (its command-line variables too) and MAKELEVEL would reach
    # this make: it must see only what the case sets, and print no "Entering directory" lines.
    inherited = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    env = {
        **{k: v for k, v in os.environ.items() if k not in inherited},
        "OUTPUTS_DIR": str(tmp_path / "outputs"),
        "PREPARED_DIR": str(prepared),
        "MEDENC_VERBOSE": "",
        **(extra_env or {}),
    }
    setup_done = ["--no-print-directory", "-o", f"{VENV}/.medenc-setup", f"VENV={VENV}"]
    cmd = ["make", *setup_done, *(["-n"] if dry_run else []), *args]
    return subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "args",
    [
        ["release", "RUN=x", "HUB_REPO_ID=o/n'; touch {pwn}; echo '"],
        ["results", "RECIPE=tiny", "RUN=x; touch {pwn};"],
        ["results", "RECIPE=tiny", "RUN=x", "LOG=x; touch {pwn}"],
        ["train", "RECIPE=tiny'; touch {pwn}; echo '"],
        ["train", "RECIPE=tiny", "RUN=x", "TRAIN_ARGS=--fresh; touch {pwn}"],
        ["train", "RECIPE=tiny", 'RUN=x"; touch {pwn}; echo "', "TRAIN_ARGS=--fresh"],
        ["help", 'HUB_REPO_ID=x"; touch {pwn}; echo "'],
        ["train", "RECIPE=tiny", "RUN=x", "NUM_PROCESSES=1; touch {pwn};"],
    ],
    ids=["release-repo-id", "results-run", "log", "recipe", "train-args", "train-run", "help", "processes"],
)
def test_no_make_variable_reaches_the_shell(tmp_path, args):
    pwn = tmp_path / "pwn"
    proc = make(tmp_path, *(a.format(pwn=pwn) for a in args))
    assert not pwn.exists(), proc.stdout + proc.stderr
    if args[0] != "help":  # help only prints; every other case is a failed step, so make fails
        assert proc.returncode != 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["help", "RUN=x$(shell touch {pwn})"], {}),
        (["help"], {"RUN": "x$(shell touch {pwn})"}),
        (["help"], {"HUB_REPO_ID": "o/n$(shell touch {pwn})"}),
        (["train", "RECIPE=tiny", "RUN=x", "TRAIN_ARGS=--fresh$(shell touch {pwn})"], {}),
        (["train", "RECIPE=tiny", "RUN=x"], {"TRAIN_ARGS": "--fresh$(shell touch {pwn})"}),
        (["release", "RUN=x", "HUB_REPO_ID=o/n$(shell touch {pwn})"], {}),
        (["help", "VERBOSE=$(shell touch {pwn})"], {}),
        (["help", "NUM_PROCESSES=1$(shell touch {pwn})"], {}),
        (["help", "RUN=x", "LOG=$(shell touch {pwn})"], {}),
        (["help", "ANY_NAME=$(shell touch {pwn})"], {}),  # make exports every command-line variable
    ],
    ids=[
        "cli-run",
        "env-run",
        "env-repo-id",
        "cli-train-args",
        "env-train-args",
        "cli-repo-id",
        "verbose",
        "processes",
        "log",
        "any-variable",
    ],
)
def test_no_make_function_in_a_value_runs(tmp_path, args, env):
    """A `$(shell ...)` in a value, on the command line or in the environment, is text: never expanded."""
    pwn = tmp_path / "pwn"
    env = {k: v.format(pwn=pwn) for k, v in env.items()}
    proc = make(tmp_path, *(a.format(pwn=pwn) for a in args), extra_env=env)
    assert not pwn.exists(), proc.stdout + proc.stderr


def test_a_value_reaches_the_step_as_written(tmp_path):
    """`RUN='a$(x)'` once trained `outputs/a` (make expanded `$(x)` to nothing); the step gets the text."""
    proc = make(
        tmp_path, "train", "RECIPE=tiny", "RUN=a$(x)", "TRAIN_ARGS=--set 'phase1.note=$$y'", dry_run=True
    )
    assert proc.returncode == 0, proc.stderr
    words = shlex.split(proc.stdout.replace("\\\n", " "))
    assert words[words.index("--run") + 1] == "a$(x)"
    assert shlex.split(words[0].split("=", 1)[1]) == ["--set", "phase1.note=$$y"]
    proc = make(tmp_path, "help", extra_env={"RUN": "b$(x)"})
    assert "RUN=b$(x) " in proc.stdout, proc.stdout


def test_fresh_with_a_path_as_run_deletes_nothing(tmp_path):
    """`make train RUN=<a folder> TRAIN_ARGS=--fresh` once deleted that folder; RUN= (empty) every run."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep").write_text("x")
    (tmp_path / "outputs" / "other").mkdir(parents=True)
    (tmp_path / "outputs" / "other" / "keep").write_text("x")
    for run in (str(mine), "", "..", "../mine"):
        proc = make(tmp_path, "train", "RECIPE=tiny", f"RUN={run}", "TRAIN_ARGS=--fresh")
        assert proc.returncode != 0 and "a run name is" in proc.stderr, proc.stderr[-3000:]
    assert (mine / "keep").is_file() and (tmp_path / "outputs" / "other" / "keep").is_file()


def test_a_failed_release_fails_make(tmp_path):
    proc = make(tmp_path, "release", "RUN=no-such-run", "RELEASE_ARGS=--dry-run")
    # Its first step, the exports, fails first.
    assert proc.returncode != 0 and "error: ExportError:" in proc.stderr, proc.stderr[-3000:]
    proc = make(tmp_path, "release", "RUN=no-such-run", "RELEASE_ARGS=--dry-run --no-exports")
    assert proc.returncode != 0 and "error: ReleaseError:" in proc.stderr, proc.stderr[-3000:]


def test_release_builds_missing_exports_first_and_never_measures(tmp_path):
    """The release script only verifies and copies exports: `make release` builds them first (without the
    suite's measurement, `make exports`' job), unless RELEASE_ARGS says --no-exports."""
    lines = make(tmp_path, "release", "RUN=x", dry_run=True).stdout.replace("\\\n", " ").splitlines()
    steps = [shlex.split(line)[2] for line in lines]
    assert steps == ["scripts/export.py", "scripts/release.py"] and "--measure" not in lines[0], lines
    lines = make(tmp_path, "release", "RUN=x", "RELEASE_ARGS=--no-exports", dry_run=True).stdout
    assert "scripts/export.py" not in lines and "scripts/release.py" in lines


def test_extra_arguments_reach_the_script_as_shell_words(tmp_path):
    """TRAIN_ARGS travels as one quoted value in MEDENC_TRAIN_ARGS, which the script splits with shlex."""
    proc = make(
        tmp_path, "train", "RECIPE=tiny", "RUN=x", "TRAIN_ARGS=--set 'phase1.note=a b' --fresh", dry_run=True
    )
    assert proc.returncode == 0, proc.stderr
    words = shlex.split(proc.stdout.replace("\\\n", " "))
    assert words[0] == "MEDENC_TRAIN_ARGS=--set 'phase1.note=a b' --fresh"
    assert words[words.index("--run") + 1] == "x" and "--fresh" not in words
    assert shlex.split(words[0].split("=", 1)[1]) == ["--set", "phase1.note=a b", "--fresh"]


def test_the_scripts_split_their_make_arguments(monkeypatch, capsys):
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    try:
        from _cli import with_env_args
    finally:
        sys.path.remove(str(PROJECT_ROOT / "scripts"))
    monkeypatch.setattr(sys, "argv", ["train.py", "--run", "x"])
    monkeypatch.setenv("MEDENC_TRAIN_ARGS", "--set 'phase1.note=a b' --fresh")
    assert with_env_args(None, "MEDENC_TRAIN_ARGS") == ["--run", "x", "--set", "phase1.note=a b", "--fresh"]
    assert with_env_args(["--run", "y"], "MEDENC_TRAIN_ARGS") == ["--run", "y"]  # an explicit argv is all
    monkeypatch.setenv("MEDENC_TRAIN_ARGS", "--set 'unclosed")
    with pytest.raises(SystemExit) as exit_:
        with_env_args(None, "MEDENC_TRAIN_ARGS")
    assert exit_.value.code == 2 and "TRAIN_ARGS=" in capsys.readouterr().err

"""Run folders: a run name is a plain name, ``--fresh`` removes only a run, a refused write is one line.

Everything here is refused before any training step, so it costs no more than loading the tiny recipe.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import TINY_RECIPE, train_tiny

from medenc.core.errors import RunError
from medenc.core.layout import RUN_RECIPE, RUN_RECORD
from medenc.core.paths import PROJECT_ROOT, check_run_name, run_folder
from medenc.training.recipe import load_recipe
from medenc.training.run import check_run_folder

BAD_NAMES = ["", ".", "..", "../x", "../../x", "a/b", "/tmp/x", "x/", "-x", ".hidden", "x y", "x;y", "é"]


def _train(parent: Path, run: str, **kw):
    return train_tiny(parent, run, ["phase2.enabled=false", "phase3.enabled=false"], **kw)


def _fake_run(folder: Path) -> Path:
    """A folder holding a run record, as ``make train`` leaves one (enough for --fresh to know it)."""
    folder.mkdir(parents=True)
    (folder / RUN_RECORD).write_text(json.dumps({"schema_version": 2, "run": folder.name}))
    (folder / "weights.bin").write_text("x")
    return folder


@pytest.mark.parametrize("name", ["t", "cpu", "gpu-timing", "run_2.1", "A0"])
def test_a_plain_run_name_is_accepted(name, tmp_path):
    assert check_run_name(name) == name
    assert run_folder(name, tmp_path) == tmp_path / name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_run_name_that_is_not_a_plain_name_is_refused_before_anything_is_written(name, tmp_path):
    outputs = tmp_path / "deep" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "other").mkdir()
    (outputs / "other" / "keep").write_text("x")
    with pytest.raises(RunError, match=r"a run name is 1-100 letters \(a-z, A-Z\), digits"):
        _train(outputs, name, fresh=True)
    assert (outputs / "other" / "keep").is_file()  # `RUN=` with --fresh once wiped every run
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "keep", "other", "outputs"]


def test_fresh_leaves_a_folder_that_is_not_a_run(tmp_path):
    """`make train RUN=<a folder of yours> TRAIN_ARGS=--fresh` once deleted it; it is refused, and the advice
    never says --fresh."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep").write_text("x")
    (mine / RUN_RECORD).write_text('{"not": "a run record"}')
    for fresh in (True, False):
        with pytest.raises(RunError, match=r"not a run folder and is left alone") as err:
            _train(tmp_path, "mine", fresh=fresh)
        assert "--fresh" not in str(err.value)
    assert sorted(p.name for p in mine.iterdir()) == ["keep", RUN_RECORD]


def test_fresh_removes_a_run_folder_and_an_empty_one(tmp_path):
    recipe = load_recipe(TINY_RECIPE, [])
    for folder in (_fake_run(tmp_path / "run"), tmp_path / "empty"):
        folder.mkdir(exist_ok=True)
        check_run_folder(folder, recipe, None, fresh=True)
        assert not folder.exists()
    # A run whose record is unreadable is still a run (the rebuild advice sends it to --fresh).
    broken = _fake_run(tmp_path / "broken")
    (broken / RUN_RECORD).write_text('{"schema_version": 2, "phases": [')
    (broken / RUN_RECIPE).write_text("model: tiny\n")
    check_run_folder(broken, recipe, None, fresh=True)
    assert not broken.exists()


def test_fresh_never_removes_through_a_symlink(tmp_path):
    target = _fake_run(tmp_path / "elsewhere" / "t")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "t").symlink_to(target, target_is_directory=True)
    with pytest.raises(RunError, match=r"is a symbolic link, and --fresh never removes through a link"):
        _train(outputs, "t", fresh=True)
    assert (target / "weights.bin").is_file() and (outputs / "t").is_symlink()


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "free space"), (errno.EROFS, "writable"), (errno.EACCES, "writable")],
)
def test_a_write_the_system_refuses_is_one_line_naming_the_path(tmp_path, monkeypatch, code, words):
    """A full disk or a read-only outputs folder while training writes its records: a RunError that names
    the file (scripts print it as one line), not a traceback."""
    import medenc.training.run as run_module

    def refuse(run_dir, record):
        path = Path(run_dir) / RUN_RECORD
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(run_module, "write_run_record", refuse)
    with pytest.raises(RunError, match=words) as err:
        _train(tmp_path, "t")
    assert str(tmp_path / "t" / RUN_RECORD) in str(err.value) and os.strerror(code) in str(err.value)


@pytest.mark.parametrize("free", [1024, 10 * 2**30])
def test_a_checkpoint_save_on_a_full_disk_is_one_line(tmp_path, monkeypatch, free):
    """torch.save says a full disk with a RuntimeError and no errno: one line when the disk is really (nearly)
    full, the error itself otherwise."""
    import shutil

    import medenc.training.run as run_module

    def torch_save_fails(run_dir, record):
        raise RuntimeError("[enforce fail at inline_container.cc] PytorchStreamWriter failed writing file")

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free))
    monkeypatch.setattr(run_module, "write_run_record", torch_save_fails)
    if free < 2**20:
        with pytest.raises(RunError, match=r"No space left on device .*free space there"):
            _train(tmp_path, "t")
    else:
        with pytest.raises(RuntimeError, match="PytorchStreamWriter"):
            _train(tmp_path, "t")


def test_an_unwritable_outputs_folder_is_one_line_when_taking_the_lock(tmp_path, monkeypatch):
    import medenc.core.lock as lock

    real_open = os.open

    def read_only(path, *args, **kw):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(lock.os, "open", read_only)
    with pytest.raises(RunError, match=r"\.t\.lock: Read-only file system \(make train"):
        _train(tmp_path, "t")


def test_other_os_errors_are_not_disguised(tmp_path):
    from medenc.core.lock import run_lock

    with pytest.raises(FileNotFoundError), run_lock(tmp_path / "t", "make train"):
        (tmp_path / "no-such" / "file").read_text()


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("evaluate_run.py", ["--run", "{tmp}/outputs/r"]),  # a path to an existing folder was accepted
        ("release.py", ["--run", "../r", "--repo-id", "org/x", "--dry-run"]),
        ("publish_results.py", ["--run", "../r", "--dest", "{tmp}/published"]),
        ("publish_results.py", ["--run", "x; touch pwn"]),
    ],
)
def test_scripts_take_a_run_name_not_a_path(script, args, tmp_path):
    (tmp_path / "outputs" / "r").mkdir(parents=True)
    env = {**os.environ, "OUTPUTS_DIR": str(tmp_path / "outputs"), "MEDENC_VERBOSE": ""}
    proc = subprocess.run(
        [sys.executable, f"scripts/{script}", *(a.format(tmp=tmp_path) for a in args)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: RunError: run name " in proc.stderr and "a run name is" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs" / "r" / "eval").exists()


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, "free space there"), (errno.EROFS, "writable")])
def test_make_data_on_a_full_disk_is_one_line_naming_the_path(tmp_path, monkeypatch, code, words):
    """`make data` writing the prepared sets on a full disk ended in a raw traceback."""
    from medenc.data import prepare

    target = tmp_path / "prepared"

    def refuse(prep, root, out, registry, failed=False):
        raise OSError(code, os.strerror(code), str(out / "train" / "pairs"))

    monkeypatch.setattr(prepare, "build", lambda *args: object())
    monkeypatch.setattr(prepare, "write", refuse)
    with pytest.raises(RunError, match=words) as err:
        prepare.prepare(target, root=tmp_path, registry=())
    msg = str(err.value)
    assert msg.startswith(f"{target / 'train' / 'pairs'}: {os.strerror(code)} (make data, folder {target})")
    assert "set PREPARED_DIR to a folder that can be written" in msg

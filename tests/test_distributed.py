"""Many processes through accelerate: the tiny recipe on 2 CPU processes (gloo), as `NUM_PROCESSES=2` runs it.

The same path as several GPUs (DDP, MNRL gathering in-batch negatives across processes, the main process alone
saving and mining), on the CPU: `accelerate launch --multi_gpu` starts one process per rank, and
``PartialState(cpu=True)`` joins them in a gloo group.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import write_prepared

from medenc.core.layout import LOSS_HISTORY, PHASE_DIRS, RUN_RECORD

# Two processes at batch b against one at batch 2b: the same rows in the step, the same in-batch negatives
# (gathered), only float summation order differs.
LOSS_TOLERANCE = 1e-4


def _train(repo_root: Path, tmp_path: Path, run: str, processes: int, *overrides: str) -> dict:
    accelerate = str(Path(sys.executable).parent / "accelerate")
    cmd = [accelerate, "launch", "--config_file", str(repo_root / "accelerate_config.yaml")]
    cmd += ["--num_processes", str(processes), "--num_cpu_threads_per_process", "1"]
    cmd += ["--multi_gpu"] if processes > 1 else ["--cpu"]
    cmd += [str(repo_root / "scripts" / "train.py"), "--recipe", str(repo_root / "recipes" / "tiny.yaml")]
    cmd += ["--run", run, "--output-dir", str(tmp_path / "out")]
    for override in overrides:
        cmd += ["--set", override]
    env = {**os.environ, "PREPARED_DIR": str(tmp_path / "prepared"), "MEDENC_VERBOSE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=repo_root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads((tmp_path / "out" / run / RUN_RECORD).read_text())


def _first_loss(tmp_path: Path, run: str, phase: int) -> float:
    history = json.loads((tmp_path / "out" / run / PHASE_DIRS[phase] / LOSS_HISTORY).read_text())
    return next(e["loss"] for e in history if "loss" in e)


@pytest.mark.integration
def test_two_cpu_processes_train_and_match_one_process_at_twice_the_batch(tmp_path, repo_root):
    write_prepared(tmp_path / "prepared")
    info = _train(repo_root, tmp_path, "ddp", 2, "phase2.batch_size=2")
    assert info["hardware"]["num_processes"] == 2
    assert [p["status"] for p in info["phases"]] == ["done", "done", "done"]  # mining and saving included
    # Phase 2 again on one process at twice the batch, from the same phase-1 weights.
    start = tmp_path / "out" / "ddp" / PHASE_DIRS[1]
    single = ("phase2.batch_size=4", f"init_from={start}", "phase1.enabled=false", "phase3.enabled=false")
    _train(repo_root, tmp_path, "one", 1, *single)
    two, one = _first_loss(tmp_path, "ddp", 2), _first_loss(tmp_path, "one", 2)
    assert abs(two - one) <= LOSS_TOLERANCE, (two, one)

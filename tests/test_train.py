"""Training: all three phases on the tiny model with in-memory data, resume, precision, run folder checks."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from datasets import Dataset
from fakes import TINY_RECIPE, tiny_loader, train_tiny, write_prepared

from medenc.core.errors import DataError, RecipeError, RunError
from medenc.core.layout import (
    FINAL_DIR,
    GRADED_PAIRS,
    INFERENCE_MAX_SEQ_LENGTH,
    LOSS_HISTORY,
    OLD_PHASE_DIRS,
    PHASE_DIRS,
    RUN_RECORD,
)
from medenc.core.model_id import model_hash
from medenc.core.paths import PROJECT_ROOT
from medenc.core.runs import RUN_SCHEMA_VERSION, RunRecord, migrate_phase_dirs, read_run_record
from medenc.training import run_training
from medenc.training.phase_runner import CHECKPOINTS_DIR
from medenc.training.precision import decide_precision, requested_precision
from medenc.training.recipe import load_recipe

TINY = TINY_RECIPE


def _run(tmp_path: Path, overrides=(), **kw) -> dict:
    """Train the tiny recipe; returns its run record as run.json holds it."""
    record = train_tiny(tmp_path, "t", overrides, **kw)
    assert isinstance(record, RunRecord)
    return record.to_dict()


def test_three_phases_save_loadable_folders_and_run_json(tmp_path, caplog, monkeypatch):
    from sentence_transformers import SentenceTransformer

    caplog.set_level(logging.INFO, logger="medenc.training")
    # A random-weight recipe needs no base model (GPU timing runs where the weights cannot travel).
    monkeypatch.setenv("MEDENC_BASE_MODEL", str(tmp_path / "no-such-model"))
    record = _run(tmp_path)
    run_dir = tmp_path / "t"
    on_disk = json.loads((run_dir / RUN_RECORD).read_text())
    assert on_disk["schema_version"] == RUN_SCHEMA_VERSION and on_disk["run"] == "t"
    # The record training returns is the one on disk, and reads back to itself.
    assert record == on_disk
    assert json.dumps(read_run_record(run_dir).to_dict()) == json.dumps(on_disk)  # same keys, same order
    assert read_run_record(run_dir).phase(3).negatives == on_disk["phases"][2]["negatives"]
    for key in ("recipe_sha256", "base_model", "data_manifest_sha256", "precision", "hardware", "versions"):
        assert key in on_disk, key
    assert on_disk["precision"]["used"] == "fp32"
    assert [p["status"] for p in on_disk["phases"]] == ["done", "done", "done"]
    p3 = on_disk["phases"][2]
    assert p3["negatives"]["mined"] > 0 and p3["negatives"]["curated"] > 0
    assert p3["mined_from"] == ["medquad_qa", "meqsum"]  # no mining.sources: phase 2's selection
    for p in on_disk["phases"]:
        for key in ("loss", "rows", "train_rows", "steps", "seconds", "model_sha256", "final_train_loss"):
            assert p[key] is not None, (p["phase"], key)
        folder = run_dir / p["dir"]
        assert json.loads((folder / LOSS_HISTORY).read_text())
        loaded = SentenceTransformer(str(folder), device="cpu")
        loaded.encode(["a test"])
        # Trained at 32 tokens, saved with the length users encode at.
        assert loaded.max_seq_length == INFERENCE_MAX_SEQ_LENGTH
    assert on_disk["final"]["from"] == PHASE_DIRS[3]
    assert on_disk["final"]["model_sha256"] == p3["model_sha256"]
    # The whole model's id, not its weights alone: final/ is the folder phase 3 wrote.
    assert on_disk["final"]["model_hash"] == p3["model_hash"] == model_hash(run_dir / FINAL_DIR)
    assert (run_dir / FINAL_DIR / "README.md").read_text().count("sentence-transformers/all-mpnet-base-v2")
    assert not (run_dir / "checkpoints").exists()
    assert record["phases"][0]["rows"] == {"stsb": 8}
    assert on_disk["base_model"]["id"].startswith("random-weight MPNet, tiny shape")
    assert "training in fp32" not in caplog.text  # fp32 was asked for: no precision warning


class _Kill(Exception):
    pass


def _kill_after_first_save():
    """A Trainer callback that kills the run at its first checkpoint."""
    from transformers import TrainerCallback

    class KillAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise _Kill("simulated kill")

    return KillAfterFirstSave()


def test_resume_skips_done_phase_and_continues_from_checkpoint(tmp_path, caplog):
    with pytest.raises(_Kill):
        _run(tmp_path, ["phase3.enabled=false"], callbacks={2: [_kill_after_first_save()]})
    run_dir = tmp_path / "t"
    record = json.loads((run_dir / RUN_RECORD).read_text())
    assert [p["status"] for p in record["phases"]] == ["done", "running", "skipped"]
    weights = run_dir / PHASE_DIRS[1] / "model.safetensors"
    mtime, sha = weights.stat().st_mtime_ns, record["phases"][0]["model_sha256"]

    caplog.set_level(logging.INFO, logger="medenc.training")
    record = _run(tmp_path, ["phase3.enabled=false"])
    assert "phase 1 (cosine): done in an earlier run, skipped" in caplog.text
    assert "resuming from" in caplog.text
    assert weights.stat().st_mtime_ns == mtime and record["phases"][0]["model_sha256"] == sha
    assert record["phases"][1]["status"] == "done" and record["phases"][1]["resumed_from"] == "checkpoint-1"
    assert record["final"]["from"] == PHASE_DIRS[2]


def _as_older_code_wrote_it(run_dir: Path) -> None:
    """Phase folders named after their first loss (phase-1-cosine, ...), and run.json naming them so."""
    text = (run_dir / RUN_RECORD).read_text()
    for n, old in OLD_PHASE_DIRS.items():
        if (run_dir / PHASE_DIRS[n]).exists():
            (run_dir / PHASE_DIRS[n]).rename(run_dir / old)
        text = text.replace(f'"{PHASE_DIRS[n]}"', f'"{old}"')
    (run_dir / RUN_RECORD).write_text(text)


def test_a_run_killed_under_the_old_phase_folder_names_resumes_under_the_new_ones(tmp_path, caplog):
    with pytest.raises(_Kill):
        _run(tmp_path, ["phase3.enabled=false"], callbacks={2: [_kill_after_first_save()]})
    run_dir = tmp_path / "t"
    _as_older_code_wrote_it(run_dir)
    assert json.loads((run_dir / RUN_RECORD).read_text())["phases"][0]["dir"] == OLD_PHASE_DIRS[1]
    sha = json.loads((run_dir / RUN_RECORD).read_text())["phases"][0]["model_sha256"]

    caplog.set_level(logging.INFO)
    record = _run(tmp_path, ["phase3.enabled=false"])
    assert f"renamed {OLD_PHASE_DIRS[1]} to {PHASE_DIRS[1]}" in caplog.text
    assert "phase 1 (cosine): done in an earlier run, skipped" in caplog.text
    assert "resuming from" in caplog.text
    assert sorted(p.name for p in run_dir.glob("phase-*")) == [PHASE_DIRS[1], PHASE_DIRS[2]]
    assert [p["dir"] for p in record["phases"]] == list(PHASE_DIRS.values())
    assert record["phases"][0]["model_sha256"] == sha
    assert record["phases"][1]["resumed_from"] == "checkpoint-1"
    assert record["phases"][1]["started_from"] == PHASE_DIRS[1] and record["final"]["from"] == PHASE_DIRS[2]


def test_the_phase_folder_migration_finishes_a_killed_one_and_refuses_two_folders_of_a_phase(tmp_path):
    run_dir = tmp_path / "r"
    # Phase 1 started from the base model, each later phase from its predecessor's folder.
    starts = ["base", OLD_PHASE_DIRS[1], OLD_PHASE_DIRS[2]]
    phases = [
        {"phase": n, "name": "x", "dir": old, "started_from": start}
        for (n, old), start in zip(OLD_PHASE_DIRS.items(), starts, strict=True)
    ]
    final = {"from": "averaged", "average": {"of": OLD_PHASE_DIRS[3], "weight": 0.75}}
    record = {"schema_version": RUN_SCHEMA_VERSION, "phases": phases, "final": final}
    for old in OLD_PHASE_DIRS.values():
        (run_dir / old).mkdir(parents=True)
    (run_dir / RUN_RECORD).write_text(json.dumps(record))
    (run_dir / OLD_PHASE_DIRS[1]).rename(run_dir / PHASE_DIRS[1])  # killed after one rename
    assert migrate_phase_dirs(run_dir) == [OLD_PHASE_DIRS[2], OLD_PHASE_DIRS[3]]
    data = json.loads((run_dir / RUN_RECORD).read_text())
    assert [p["dir"] for p in data["phases"]] == list(PHASE_DIRS.values())
    assert [p["started_from"] for p in data["phases"]] == ["base", PHASE_DIRS[1], PHASE_DIRS[2]]
    assert data["final"] == {"from": "averaged", "average": {"of": PHASE_DIRS[3], "weight": 0.75}}
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([*PHASE_DIRS.values(), RUN_RECORD])
    text = (run_dir / RUN_RECORD).read_text()
    assert migrate_phase_dirs(run_dir) == [] and (run_dir / RUN_RECORD).read_text() == text  # done: a no-op
    (run_dir / OLD_PHASE_DIRS[2]).mkdir()
    with pytest.raises(RunError, match="phase 2 has a folder under its old name and one under its new name"):
        migrate_phase_dirs(run_dir)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    """The run folder of the tiny recipe trained once without interruption."""
    root = tmp_path_factory.mktemp("clean")
    _run(root)
    return root / "t"


@pytest.fixture(scope="module")
def uninterrupted(clean_run) -> dict:
    """run.json of the uninterrupted run: what every resumed run must equal."""
    return json.loads((clean_run / RUN_RECORD).read_text())


def _scalars(folder: Path) -> dict[str, list[float]]:
    """Every scalar series of the event files in ``folder``, read back as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


# The figure each phase's validation evaluator adds to the eval loss.
VALIDATION_FIGURES = {
    1: "eval/phase-1-sts-dev_spearman_cosine",
    2: "eval/phase-2-retrieval-dev_cosine_ndcg@10",
    3: "eval/phase-3-triplet-dev_cosine_accuracy",
}


def test_every_phase_logs_loss_and_validation_figures_to_tensorboard(clean_run):
    """`tensorboard --logdir outputs/<run>/logs` shows each phase's loss, learning rate and validation."""
    for n, figure in VALIDATION_FIGURES.items():
        scalars = _scalars(clean_run / "logs" / f"phase-{n}")
        for tag in ("train/loss", "train/learning_rate", "eval/loss", figure):
            assert scalars.get(tag), f"phase {n}: no {tag} in {sorted(scalars)}"
        assert all(-1.0 <= v <= 1.0 for v in scalars[figure]), scalars[figure]  # Spearman, nDCG, accuracy


def test_logging_changes_no_weight(tmp_path, uninterrupted):
    """report_to: none writes no logs and trains the very same weights."""
    record = _run(tmp_path, ["report_to=none"])
    assert not (tmp_path / "t" / "logs").exists()
    for got, want in zip(record["phases"], uninterrupted["phases"], strict=True):
        assert got["model_sha256"] == want["model_sha256"], got["phase"]


def _kill_in_checkpoint_save(monkeypatch, phase: int, step: int) -> None:
    """Raise inside Trainer._save_checkpoint of ``phase`` at ``step``: model and optimizer written, the RNG
    state and trainer_state.json not (a kill at that moment leaves exactly this)."""
    from transformers import Trainer

    original = Trainer._save_rng_state

    def cut(self, output_dir):
        if f"phase-{phase}" in str(output_dir) and str(output_dir).endswith(f"checkpoint-{step}"):
            raise _Kill(f"killed while saving {output_dir}")
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", cut)


def _kill_while_caching_mined_sets(monkeypatch) -> None:
    """Raise once the mined training triplets are on disk, before the cache is renamed into place."""
    from datasets import Dataset

    original = Dataset.save_to_disk

    def cut(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        if "mined" in str(path) and str(path).endswith("train"):
            raise _Kill("killed while caching the mined triplets")

    monkeypatch.setattr(Dataset, "save_to_disk", cut)


def _kill_after_phase_folder(monkeypatch, phase: int) -> None:
    """Raise after phase ``phase``'s folder is in place and before run.json says it is done."""
    import medenc.training.phase_runner as phase_module

    original = phase_module._save

    def cut(ctx, n, trainer):
        sha = original(ctx, n, trainer)
        if n == phase:
            raise _Kill(f"killed after saving phase {n}")
        return sha

    monkeypatch.setattr(phase_module, "_save", cut)


KILLS = {
    "phase 1, saving checkpoint 2": lambda mp: _kill_in_checkpoint_save(mp, 1, 2),
    "phase 2, saving checkpoint 1": lambda mp: _kill_in_checkpoint_save(mp, 2, 1),
    "phase 3, saving checkpoint 2": lambda mp: _kill_in_checkpoint_save(mp, 3, 2),
    "phase 3, while caching the mined triplets": _kill_while_caching_mined_sets,
    "phase 2, folder saved, run.json not yet": lambda mp: _kill_after_phase_folder(mp, 2),
}


@pytest.mark.parametrize("where", list(KILLS))
def test_a_kill_anywhere_resumes_to_the_same_weights(tmp_path, monkeypatch, caplog, uninterrupted, where):
    """Killed at any of these points, the same command finishes with the uninterrupted run's weights."""
    with monkeypatch.context() as mp:
        KILLS[where](mp)
        with pytest.raises(_Kill):
            _run(tmp_path)
    if "mined" in where:  # written whole or not at all: nothing half-mined for the rerun to trust
        assert not (tmp_path / "t" / "checkpoints" / "phase-3" / "mined").exists()
    caplog.set_level(logging.INFO, logger="medenc.training")
    record = _run(tmp_path)  # the same command again, nothing patched
    assert [p["status"] for p in record["phases"]] == ["done", "done", "done"]
    assert record["final"]["model_sha256"] == uninterrupted["final"]["model_sha256"]
    for got, want in zip(record["phases"], uninterrupted["phases"], strict=True):
        assert got["model_sha256"] == want["model_sha256"], where
    if "saving checkpoint" in where:
        assert "is incomplete" in caplog.text and "set aside" in caplog.text


def _kill_before_phase_folder(monkeypatch, phase: int) -> None:
    """Raise as phase ``phase`` starts saving its folder: trained to its last step, whose checkpoint is
    complete, and nothing of the folder written."""
    import medenc.training.phase_runner as phase_module

    original = phase_module._save

    def cut(ctx, n, trainer):
        if n == phase:
            raise _Kill(f"killed while saving phase {n}")
        return original(ctx, n, trainer)

    monkeypatch.setattr(phase_module, "_save", cut)


def test_a_kill_after_the_last_checkpoint_resumes_to_the_same_records(tmp_path, monkeypatch, uninterrupted):
    """Killed while saving a phase after its last checkpoint, the resume trained nothing more (right
    weights) but recorded samples_per_second null, or other steps and loss: the release then failed."""
    with monkeypatch.context() as mp:
        _kill_before_phase_folder(mp, 2)
        with pytest.raises(_Kill):
            _run(tmp_path)
    record = _run(tmp_path)
    keys = ("status", "steps", "final_train_loss", "final_eval_loss", "model_sha256", "train_rows")
    for got, want in zip(record["phases"], uninterrupted["phases"], strict=True):
        assert {k: got[k] for k in keys} == {k: want[k] for k in keys}, got["phase"]
        assert isinstance(got["samples_per_second"], float) and got["samples_per_second"] > 0, got["phase"]
    assert record["phases"][1]["resumed_from"] == "checkpoint-2"


def test_a_second_process_on_the_same_run_is_refused(tmp_path):
    """The run folder is locked while a run writes it (here: held by this test, as a running `make train`)."""
    from medenc.core.lock import run_lock

    with (
        run_lock(tmp_path / "t", "make train"),
        pytest.raises(RunError, match=r"in use by PID \d+ \(make train\)"),
    ):
        _run(tmp_path)
    assert not (tmp_path / "t").exists()  # refused before anything was written


def test_a_corrupt_or_old_run_record_is_refused_with_the_rebuild_command(tmp_path):
    run_dir = tmp_path / "t"
    _run(tmp_path, ["phase2.enabled=false", "phase3.enabled=false"])
    info_path = run_dir / RUN_RECORD
    record = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**record, "schema_version": 1}))
    with pytest.raises(RunError, match=r"incompatible version.*make train RUN=t TRAIN_ARGS=--fresh"):
        _run(tmp_path, ["phase2.enabled=false", "phase3.enabled=false"])
    info_path.write_text('{"schema_version": 2, "phases": [')
    with pytest.raises(RunError, match=r"unreadable run record.*TRAIN_ARGS=--fresh"):
        _run(tmp_path, ["phase2.enabled=false", "phase3.enabled=false"])


def test_changed_recipe_refused_unless_fresh(tmp_path):
    _run(tmp_path, ["phase2.enabled=false", "phase3.enabled=false"])
    with pytest.raises(RunError, match=r"different recipe.*--fresh"):
        _run(tmp_path, ["phase2.enabled=false", "phase3.enabled=false", "phase1.learning_rate=1.0e-4"])
    record = _run(
        tmp_path, ["phase2.enabled=false", "phase3.enabled=false", "phase1.learning_rate=1.0e-4"], fresh=True
    )
    assert record["phases"][0]["learning_rate"] == 1e-4


def test_retrain_from_keeps_earlier_phases_and_trains_the_rest_anew(tmp_path, caplog):
    """--retrain-from 3 tunes phase 3 without retraining 1-2, and refuses a recipe changed before phase 3."""
    record = _run(tmp_path, ["phase2.enabled=false"])
    weights = tmp_path / "t" / PHASE_DIRS[1] / "model.safetensors"
    mtime, sha1, sha3 = (
        weights.stat().st_mtime_ns,
        record["phases"][0]["model_sha256"],
        record["final"]["model_sha256"],
    )
    with pytest.raises(RunError, match=r"--retrain-from 3 keeps phases before 3.*outside phases 3 and later"):
        _run(tmp_path, ["phase2.enabled=false", "phase1.learning_rate=1.0e-4"], retrain_from=3)

    caplog.set_level(logging.INFO, logger="medenc.training")
    record = _run(tmp_path, ["phase2.enabled=false", "phase3.learning_rate=1.0e-4"], retrain_from=3)
    assert "phase 1 (cosine): done in an earlier run, skipped" in caplog.text
    assert "phase 3 (triplet): --retrain-from 3, trained anew" in caplog.text
    assert weights.stat().st_mtime_ns == mtime and record["phases"][0]["model_sha256"] == sha1
    assert record["phases"][2]["learning_rate"] == 1e-4
    assert record["phases"][2]["started_from"] == PHASE_DIRS[1]
    assert record["final"]["from"] == PHASE_DIRS[3] and record["final"]["model_sha256"] != sha3
    # The folder now holds the new recipe: a plain rerun of it resumes, nothing is retrained.
    caplog.clear()
    _run(tmp_path, ["phase2.enabled=false", "phase3.learning_rate=1.0e-4"])
    assert "phase 3 (triplet): done in an earlier run, skipped" in caplog.text

    # Retraining phase 1 makes phase 3's mined negatives stale too (mined with the old weights), even those
    # an interrupted attempt left behind: they are mined again, never loaded (this cache is not loadable).
    stale = tmp_path / "t" / CHECKPOINTS_DIR / "phase-3" / "mined" / "train"
    stale.mkdir(parents=True)
    (stale / "state.json").write_text("{}")
    caplog.clear()
    record = _run(tmp_path, ["phase2.enabled=false", "phase1.learning_rate=1.0e-4"], retrain_from=1)
    assert "phase 3: mining hard negatives" in caplog.text
    assert record["phases"][0]["model_sha256"] != sha1
    assert record["phases"][2]["started_from"] == PHASE_DIRS[1]


def test_bad_data_refused_before_training(tmp_path):
    with pytest.raises(RecipeError, match=r"source 'nope' has no rows.*medquad_qa"):
        _run(tmp_path, ["phase2.sources={nope: 3}"])

    def no_score(split, name):
        ds = tiny_loader(split, name)
        return ds.remove_columns("score") if name == GRADED_PAIRS else ds

    recipe = load_recipe(TINY)
    with pytest.raises(DataError, match=r"phase 1.*column 'score'"):
        run_training(recipe, "t", output_dir=tmp_path, loader=no_score, data_hash="x")
    assert not (tmp_path / "t" / PHASE_DIRS[1]).exists()


FAST_BF16 = {"fp32_gflops": 100.0, "bf16_gflops": 300.0}  # a CPU with native bf16 (AMX, or AVX-512 BF16)
SLOW_BF16 = {"fp32_gflops": 300.0, "bf16_gflops": 137.0}  # bf16 dot products, yet slower than fp32


@pytest.mark.parametrize(
    ("requested", "cuda", "speed", "used"),
    [
        ("fp16", True, SLOW_BF16, "fp16"),
        ("fp16", False, FAST_BF16, "bf16"),  # auto on a CPU: whichever measured faster here
        ("fp16", False, SLOW_BF16, "fp32"),
        ("bf16", False, FAST_BF16, "bf16"),
        ("bf16", False, SLOW_BF16, "bf16"),  # the recipe insists: honoured, and the reason says it is slower
        ("bf16", True, SLOW_BF16, "bf16"),
        ("fp32", True, FAST_BF16, "fp32"),
        ("fp32", False, FAST_BF16, "fp32"),
    ],
)
def test_decide_precision(requested, cuda, speed, used):
    got, reason = decide_precision(requested, cuda, speed=speed)
    assert got == used and reason
    if not cuda and requested != "fp32":
        assert "GFLOP/s" in reason  # the measured figures are logged with the choice
    if requested == "bf16" and speed is SLOW_BF16 and not cuda:
        assert "slower" in reason


def test_cpu_speed_is_measured_once_per_machine(tmp_path):
    from medenc.training.precision import cpu_speed

    calls = []

    def measure(dtype):
        calls.append(dtype)
        return {"fp32": 200.0, "bf16": 50.0}[dtype]

    cache = tmp_path / "cpu_precision.json"
    assert cpu_speed(cache, measure) == {"fp32_gflops": 200.0, "bf16_gflops": 50.0}
    assert cpu_speed(cache, measure) == {"fp32_gflops": 200.0, "bf16_gflops": 50.0}
    assert calls == ["fp32", "bf16"] * 3  # alternating rounds; the second call read the cache
    record = json.loads(cache.read_text())
    cache.write_text(json.dumps({**record, "key": "another machine"}))
    cpu_speed(cache, measure)
    assert calls == ["fp32", "bf16"] * 6  # another CPU kind, torch or threads: measured again


def test_a_busy_moment_does_not_decide_the_cpu_precision(tmp_path):
    """Another process holding a core during the first measurements once made bf16 look slower than fp32."""
    from medenc.training.precision import cpu_speed, decide_precision

    readings = iter([6.0, 2.0, 201.0, 918.0, 190.0, 900.0])  # fp32, bf16, fp32, bf16, ...; busy at first
    speed = cpu_speed(tmp_path / "cpu_precision.json", lambda dtype: next(readings))
    assert speed == {"fp32_gflops": 201.0, "bf16_gflops": 918.0}
    assert decide_precision("fp16", False, speed)[0] == "bf16"


def test_auto_precision_follows_accelerate():
    assert requested_precision("auto", {"ACCELERATE_MIXED_PRECISION": "fp16"}) == "fp16"
    assert requested_precision("auto", {"ACCELERATE_MIXED_PRECISION": "no"}) == "fp32"
    assert requested_precision("auto", {}) == "fp16"  # accelerate_config.yaml says fp16
    assert requested_precision("bf16", {"ACCELERATE_MIXED_PRECISION": "fp16"}) == "bf16"


@pytest.mark.integration
def test_real_base_model_phase2_two_steps(tmp_path):
    overrides = [
        "model=base",
        "max_seq_length=32",
        "phase1.enabled=false",
        "phase3.enabled=false",
        "phase2.batch_size=2",
        "phase2.save_steps=100",
        "phase2.eval_steps=100",
        "phase2.validation_rows=2",
    ]
    record = _run(tmp_path, overrides)
    p2 = record["phases"][1]
    assert p2["status"] == "done" and p2["steps"] == 2
    assert record["base_model"]["sha256"].startswith("78c0197b")


@pytest.mark.slow
def test_cli_under_accelerate_launch(tmp_path, repo_root):
    """The real command line via `accelerate launch --cpu` with the fp16 accelerate config: trains in fp32.

    Several processes: tests/test_distributed.py.
    """
    import subprocess
    import sys

    write_prepared(tmp_path / "prepared")
    env = {**os.environ, "PREPARED_DIR": str(tmp_path / "prepared"), "HF_HUB_OFFLINE": "1"}
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file"]
    cmd += [
        str(repo_root / "accelerate_config.yaml"),
        "--num_processes",
        "1",
        "--cpu",
        str(repo_root / "scripts" / "train.py"),
    ]
    cmd += [
        "--recipe",
        str(TINY),
        "--run",
        "mp",
        "--output-dir",
        str(tmp_path / "out"),
        "--set",
        "precision=auto",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=repo_root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    record = json.loads((tmp_path / "out" / "mp" / RUN_RECORD).read_text())
    assert [p["status"] for p in record["phases"]] == ["done", "done", "done"]
    # auto under the fp16 accelerate config on a CPU: whichever of bf16 and fp32 measured faster here.
    used = decide_precision("fp16", cuda_available=False)[0]
    assert record["precision"]["requested"] == "fp16" and record["precision"]["used"] == used
    assert "GFLOP/s, measured on this CPU" in record["precision"]["reason"]
    assert f"fp16 requested, training in {used}" in proc.stderr


def test_init_from_starts_a_later_phase_from_an_earlier_folder(tmp_path):
    """Ablations of phase 3 start from another run's phase-2 folder instead of retraining phases 1 and 2."""
    from medenc.core.modeling import build_random_model

    start = tmp_path / "start"
    build_random_model("tiny", seed=7, device="cpu").save(str(start))
    record = _run(
        tmp_path,
        [f"init_from={start}", "phase1.enabled=false", "phase2.enabled=false", "phase3.negatives=curated"],
    )
    assert [p["status"] for p in record["phases"]] == ["skipped", "skipped", "done"]
    assert record["phases"][2]["started_from"] == str(start)


def test_matryoshka_dims_wrap_the_phase2_loss(tiny_model):
    """phase2.matryoshka_dims: MNRL inside MatryoshkaLoss at those widths; off (plain MNRL) by default."""
    from sentence_transformers.sentence_transformer.losses import (
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )

    from medenc.training.trainer import make_loss

    assert isinstance(make_loss(load_recipe(TINY), 2, tiny_model, 1), MultipleNegativesRankingLoss)
    recipe = load_recipe(TINY, ["phase2.matryoshka_dims=[32,8,16]"])  # the tiny model is 32 wide
    loss = make_loss(recipe, 2, tiny_model, 1)
    assert isinstance(loss, MatryoshkaLoss) and isinstance(loss.loss, MultipleNegativesRankingLoss)
    assert loss.matryoshka_dims == (32, 16, 8)
    features = [tiny_model.preprocess(t) for t in (["a fever", "a cough"], ["pyrexia", "tussis"])]
    assert loss(features, labels=None).ndim == 0  # one scalar over every width
    # phase2's key wraps phase 2's loss only
    assert make_loss(recipe, 1, tiny_model, 1).__class__.__name__ == "CosineSimilarityLoss"
    with pytest.raises(RecipeError, match=r"phase2\.matryoshka_dims.*64.*32 embedding dimensions"):
        make_loss(load_recipe(TINY, ["phase2.matryoshka_dims=[64,16]"]), 2, tiny_model, 1)


def test_mining_reports_progress_in_log_lines_off_a_terminal(tiny_model, caplog, monkeypatch):
    """mine_hard_negatives draws ST's bars; medenc routes its encodes through the progress helper instead."""
    from medenc.core import progress
    from medenc.training.mining import mine_negatives

    monkeypatch.setattr(progress, "show_progress_bar", lambda: False)
    monkeypatch.setenv("MEDENC_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="medenc.progress")
    words = ["fever", "cough", "rash", "asthma", "insulin", "aspirin", "renal", "tumor"]
    pairs = Dataset.from_dict(
        {
            "anchor": [f"what treats {w}?" for w in words],
            "positive": [f"{w} is treated with care" for w in words],
        }
    )
    mined = mine_negatives(load_recipe(TINY, ["phase3.mining.range_max=4"]), tiny_model, pairs, None, True)
    assert mined.column_names == ["anchor", "positive", "negative"]
    lines = [r.getMessage() for r in caplog.records if r.name == "medenc.progress"]
    assert any(line.startswith("phase 3: mining, encoding the corpus: done, 8 texts") for line in lines), (
        lines
    )
    assert any(line.startswith("phase 3: mining, encoding anchors: done, 8 texts") for line in lines), lines


def test_a_clear_error_under_accelerate_is_one_line_without_tracebacks(tmp_path, repo_root):
    """As `make train` launches it (--quiet): the error names the key, and no launcher traceback follows."""
    import subprocess
    import sys

    accelerate = str(Path(sys.executable).parent / "accelerate")
    cmd = [accelerate, "launch", "--config_file", str(repo_root / "accelerate_config.yaml"), "--quiet"]
    cmd += ["--num_processes", "1", "--cpu", str(repo_root / "scripts" / "train.py"), "--recipe", str(TINY)]
    cmd += ["--run", "x", "--output-dir", str(tmp_path), "--set", "phase2.bach_size=4"]
    env = {k: v for k, v in os.environ.items() if k != "MEDENC_VERBOSE"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert proc.returncode != 0
    assert "unknown key 'phase2.bach_size'" in proc.stderr
    assert "Traceback" not in proc.stderr and "CalledProcessError" not in proc.stderr, proc.stderr


def test_multi_dataset_and_replay_off_train_as_before(uninterrupted):
    """Off (the default, as in the shipped recipes): one mixed set per phase, as before the options existed.

    Measured when they were added: the tiny recipe's weights were bit-identical before and after (a hash is
    not asserted here: float results differ between CPU kinds and thread counts).
    """
    for p in uninterrupted["phases"]:
        assert "replay" not in p and "datasets" not in p, p["phase"]


def _batch_origin(row: dict) -> str:
    """Which training dataset a row of the tiny sets belongs to, from its texts alone."""
    if "sentence1" in row:
        return "replay"
    anchor = row["anchor"]
    if anchor.startswith("Can "):
        return "curated"  # rqe triplets
    if "negative" in row:
        return "mined"  # mined triplets: anchors of the phase-2 pairs
    return "medquad_qa" if anchor.startswith("What is") else "meqsum"


def test_multi_dataset_batches_come_from_one_dataset_with_replay(tmp_path, monkeypatch):
    """Every training batch is one dataset's (a source; phase 3: curated, mined); replay: phase 1's loss."""
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

    from medenc.training import phase_runner as phase_module

    batches: dict[int, list[list[dict]]] = {2: [], 3: []}
    losses: dict[int, dict] = {}
    real_build = phase_module.build_trainer

    class Recorder:
        """The Trainer's collator, keeping the rows of every training batch it collates."""

        def __init__(self, collate, n: int) -> None:
            self.collate, self.n = collate, n

        def __getattr__(self, name: str):
            return getattr(self.collate, name)

        def __call__(self, features: list[dict]):
            if features[0].get("dataset_name") != "validation":
                batches[self.n].append(features)
            return self.collate(features)

    def recording_build(recipe, n, *args, **kwargs):
        trainer = real_build(recipe, n, *args, **kwargs)
        losses[n] = trainer.loss
        if n in batches:
            trainer.data_collator = Recorder(trainer.data_collator, n)
        return trainer

    monkeypatch.setattr(phase_module, "build_trainer", recording_build)
    record = _run(
        tmp_path,
        ["phase1.loss=cosent", "phase2.multi_dataset=proportional", "phase2.replay_graded=3",
         "phase3.multi_dataset=round_robin", "phase3.replay_graded=2",
         "phase2.max_steps=null", "phase3.max_steps=null"],
    )  # fmt: skip
    p2, p3 = record["phases"][1], record["phases"][2]
    assert p2["datasets"] == {"medquad_qa": 6, "meqsum": 4, "replay": 3} and p2["replay"] == 3
    assert p2["rows"] == {"medquad_qa": 6, "meqsum": 4} and p2["train_rows"] == 13 and p2["steps"] == 4
    assert p3["datasets"] == {"curated": 4, "mined": p3["negatives"]["mined"], "replay": 2}
    assert p3["replay"] == 2
    graded = set(tiny_loader("train", GRADED_PAIRS)["sentence1"])
    for n in (2, 3):
        assert batches[n], n
        for batch in batches[n]:
            names = {row["dataset_name"] for row in batch}
            assert len(names) == 1 and {_batch_origin(row) for row in batch} == names, (n, batch)
            assert names != {"replay"} or {row["sentence1"] for row in batch} <= graded
        assert isinstance(losses[n]["replay"], CoSENTLoss)  # phase 1's loss, as phase1.loss says
    assert {name for batch in batches[2] for name in {batch[0]["dataset_name"]}} == set(p2["datasets"])
    assert len({id(loss) for name, loss in losses[2].items() if name != "replay"}) == 1  # one shared MNRL
    assert isinstance(losses[2]["medquad_qa"], MultipleNegativesRankingLoss)


@pytest.mark.parametrize("n", [2, 3])
def test_replay_without_multi_dataset_is_refused(n):
    with pytest.raises(RecipeError, match=rf"'phase{n}\.replay_graded' needs 'phase{n}\.multi_dataset'"):
        load_recipe(TINY, [f"phase{n}.replay_graded=4"])
    with pytest.raises(RecipeError, match=rf"phase{n}\.replay_graded.*>= 0"):
        load_recipe(TINY, [f"phase{n}.multi_dataset=proportional", f"phase{n}.replay_graded=-1"])
    assert load_recipe(TINY, [f"phase{n}.multi_dataset=round_robin", f"phase{n}.replay_graded=4"])


def test_bucketed_padding_rounds_lengths_up_and_changes_no_embedding(tiny_model):
    """pad_to_multiple_of: a few shapes for a compiled model, the same vectors (padding is masked)."""
    import torch

    from medenc.training.trainer import data_collator

    assert data_collator(tiny_model, None) is None  # default: the Trainer's own collator
    rows = [{"anchor": "What is hypertension?", "positive": "High blood pressure, a long-term condition."},
            {"anchor": "MI", "positive": "Heart attack"}]  # fmt: skip
    bucketed = data_collator(tiny_model, 16)(rows)
    plain = {
        f"{c}_{k}": v
        for c in ("anchor", "positive")
        for k, v in tiny_model.preprocess([r[c] for r in rows]).items()
    }
    for column in ("anchor", "positive"):
        ids, mask = bucketed[f"{column}_input_ids"], bucketed[f"{column}_attention_mask"]
        assert ids.shape[1] % 16 == 0 and ids.shape[1] > plain[f"{column}_input_ids"].shape[1]
        assert torch.equal(mask.sum(1), plain[f"{column}_attention_mask"].sum(1))  # only padding was added
        tiny_model.eval()
        with torch.no_grad():
            emb = tiny_model({"input_ids": ids, "attention_mask": mask})["sentence_embedding"]
            ref = tiny_model({k: plain[f"{column}_{k}"] for k in ("input_ids", "attention_mask")})[
                "sentence_embedding"
            ]
        torch.testing.assert_close(emb, ref, atol=1e-5, rtol=1e-5)


def test_fused_adamw_and_buckets_train_through_the_recipe(tmp_path):
    from medenc.training.trainer import training_arguments

    over = ["phase1.enabled=false", "phase3.enabled=false", "phase2.optimizer=adamw_torch_fused",
            "phase2.pad_to_multiple_of=8", "phase2.length_chunks=2"]  # fmt: skip
    args = training_arguments(load_recipe(TINY, over), 2, precision="fp32", cuda=False, output_dir=tmp_path)
    assert args.optim == "adamw_torch_fused"
    record = _run(tmp_path, over)
    assert [p["status"] for p in record["phases"]] == ["skipped", "done", "skipped"]
    with pytest.raises(RecipeError, match="pad_to_multiple_of"):
        load_recipe(TINY, ["phase2.pad_to_multiple_of=0"])
    with pytest.raises(RecipeError, match="length_chunks"):
        load_recipe(TINY, ["phase2.length_chunks=0"])


def test_length_chunks_are_set_per_phase_by_the_trainer(tmp_path, tiny_model):
    """A phase with ``length_chunks`` encodes in chunks; the next phase without it gets whole batches back."""
    from datasets import Dataset

    from medenc.training.trainer import build_trainer

    recipe = load_recipe(TINY, ["phase2.length_chunks=3"])
    train = Dataset.from_dict({"anchor": ["MI", "gout"], "positive": ["heart attack", "uric acid arthritis"]})
    for n, rows in ((2, 3), (3, None)):
        build_trainer(recipe, n, tiny_model, train, None, precision="fp32", cuda=False,
                      output_dir=tmp_path / str(n), num_processes=1)  # fmt: skip
        assert getattr(tiny_model[0], "_chunk_rows", None) == rows
        assert ("forward" in vars(tiny_model[0])) == (rows is not None)


def test_phase3_trains_its_triplets_with_mnrl_when_the_recipe_says_so(tmp_path):
    """The loss is the recipe's choice in any phase: MNRL on phase 3's triplets, no-duplicate batches."""
    from medenc.training.trainer import training_arguments

    over = ["phase3.loss=mnrl"]
    args = training_arguments(load_recipe(TINY, over), 3, precision="fp32", cuda=False, output_dir=tmp_path)
    assert args.batch_sampler == "no_duplicates"  # in-batch negatives: a duplicate text would be a false one
    record = _run(tmp_path, over)
    p3 = record["phases"][2]
    assert p3["status"] == "done" and p3["loss"] == "MultipleNegativesRankingLoss"
    assert p3["negatives"]["mined"] > 0 and p3["steps"] == 2
    assert record["phases"][0]["loss"] == "CosineSimilarityLoss"  # the other phases keep theirs


def test_trainer_args_pass_through_and_the_recipe_owns_the_rest(tmp_path):
    """``trainer_args`` reach SentenceTransformerTrainingArguments; fields set from recipe keys are listed."""
    from medenc.training.recipe import RECIPE_TRAINER_ARGS
    from medenc.training.trainer import argument_values, training_arguments

    recipe = load_recipe(TINY, ["phase2.trainer_args={gradient_accumulation_steps: 2, max_grad_norm: 0.5}"])
    args = training_arguments(recipe, 2, precision="fp32", cuda=False, output_dir=tmp_path)
    assert args.gradient_accumulation_steps == 2 and args.max_grad_norm == 0.5
    phase1 = training_arguments(recipe, 1, precision="fp32", cuda=False, output_dir=tmp_path)
    assert phase1.max_grad_norm == 1.0  # the library's default: trainer_args are per phase
    # Every field training sets itself is one trainer_args refuses (recipe validation), and no other.
    set_by_recipe = argument_values(recipe, 2, precision="fp32", cuda=False, output_dir=tmp_path)
    assert set(set_by_recipe) == set(RECIPE_TRAINER_ARGS)


def test_run_json_records_no_local_path(tmp_path):
    """run.json is released and published: it once carried the base model's cache path (a home folder)."""
    from medenc.training.run import _base_record, _shareable

    record = _base_record(
        load_recipe(PROJECT_ROOT / "recipes" / "cpu.yaml"), Path("/home/someone/.cache/base-e8c3")
    )
    assert record["path"] == "base-e8c3"
    assert _shareable(PROJECT_ROOT / "recipes" / "cpu.yaml") == "recipes/cpu.yaml"
    assert _shareable("/home/someone/my.yaml") == "my.yaml"

    def strings(node):
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    published = json.loads((PROJECT_ROOT / "results" / "cpu" / "run.json").read_text())
    assert [s for s in strings(published) if s.startswith(("/", "~"))] == []


def test_phase2_trains_near_miss_triplets_beside_its_pairs(tmp_path):
    """phase2.near_miss_sources: each source's triplets a dataset of their own, credited in the record."""
    record = _run(
        tmp_path,
        ["phase3.enabled=false", "phase2.multi_dataset=proportional", "phase2.near_miss_sources={rqe: 6}"],
    )
    phase2 = record["phases"][1]
    assert phase2["datasets"] == {"medquad_qa": 6, "meqsum": 4, "rqe": 6}
    assert phase2["rows"]["rqe"] == 6 and phase2["status"] == "done"


MULTI = "phase2.multi_dataset=proportional"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["phase2.near_miss_sources={rqe: 6}"], r"needs 'phase2.multi_dataset'"),
        (
            [MULTI, "phase2.near_miss_sources={meqsum: 6}"],
            r"\['meqsum'\] also in 'phase2.sources'",
        ),
        ([MULTI, "phase2.near_miss_sources={rqe: -1}"], r"near_miss_sources.rqe"),
        ([MULTI, "phase2.near_miss_sources={nope: 6}"], r"source 'nope' has no"),
    ],
)
def test_bad_near_miss_sources_are_refused_before_training(tmp_path, overrides, message):
    with pytest.raises((RecipeError, DataError), match=message):
        _run(tmp_path, overrides)
    assert not (tmp_path / "t" / PHASE_DIRS[1]).exists()


def test_gist_is_mnrl_with_the_start_model_as_a_frozen_guide(tiny_model):
    """``gist``: MNRL's scale, and an in-batch negative the guide ranks above the positive is left out."""
    import torch
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    from medenc.core.modeling import build_random_model
    from medenc.training.trainer import make_loss

    recipe = load_recipe(TINY, ["phase2.loss=gist"])
    loss = make_loss(recipe, 2, tiny_model, 1)
    assert (
        isinstance(loss, GISTEmbedLoss)
        and loss.temperature == 1 / MultipleNegativesRankingLoss(tiny_model).scale
    )
    start = build_random_model("tiny", seed=recipe.seed, device="cpu")  # what the run starts from
    guide = dict(loss.guide.named_parameters())
    assert all(not p.requires_grad for p in guide.values())  # frozen: the optimizer never sees it
    assert not loss.guide.training  # no dropout in what decides the masks (the Trainer sets only the model)
    assert all(torch.equal(p, guide[k]) for k, p in start.named_parameters())
    assert not loss.must_retokenize  # same tokenizer and length: the guide reads the model's features
    # With the model as its own guide, the loss differs from MNRL just where a negative outranks a positive.
    texts = (["a fever", "a cough", "gout", "asthma"], ["pyrexia", "tussis", "uric acid", "wheeze"])
    loss.guide = tiny_model
    features = [tiny_model.preprocess(t) for t in texts]
    with torch.no_grad():
        a, p = (tiny_model.encode(list(t), convert_to_tensor=True) for t in texts)
        sims = a @ p.T
        outranked = bool((sims > sims.diag()[:, None]).any())
        gist, mnrl = loss(features, None), MultipleNegativesRankingLoss(tiny_model)(features, None)
    assert outranked == (gist < mnrl - 1e-6), (sims, gist, mnrl)
    assert gist <= mnrl + 1e-6


def test_a_run_trains_phase2_with_gist(tmp_path):
    record = _run(tmp_path, ["phase2.loss=gist"])
    assert [p["status"] for p in record["phases"]] == ["done", "done", "done"]
    assert record["phases"][1]["loss"] == "GISTEmbedLoss"


def test_mnrl_keep_is_mnrl_plus_the_drift_from_the_frozen_start_model():
    """``mnrl_keep``: MNRL on the model's embeddings plus keep_weight x their mean cosine distance to the
    frozen start model's, over every column; no drift, no term; the term pulls toward the start."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from medenc.core.modeling import build_random_model
    from medenc.training.trainer import make_loss

    recipe = load_recipe(TINY, ["phase2.loss=mnrl_keep", "phase2.keep_weight=0.5"])
    model = build_random_model("tiny", seed=7, device="cpu").eval()  # another start than the run's
    loss = make_loss(recipe, 2, model, 1)
    start = build_random_model("tiny", seed=recipe.seed, device="cpu")  # what the run starts from
    guide = dict(loss.guide.named_parameters())
    assert all(not p.requires_grad for p in guide.values()) and not loss.guide.training
    assert all(torch.equal(p, guide[k]) for k, p in start.named_parameters())
    texts = (["a fever", "a cough", "gout"], ["pyrexia", "tussis", "uric acid"], ["chills", "croup", "lupus"])
    features = lambda: [model.preprocess(list(t)) for t in texts]  # noqa: E731 (the model writes into them)
    mnrl = MultipleNegativesRankingLoss(model)(features(), None)
    with torch.no_grad():
        mine = torch.cat([model.encode(list(t), convert_to_tensor=True) for t in texts])
        theirs = torch.cat([start.encode(list(t), convert_to_tensor=True) for t in texts])
    drift = (1 - torch.nn.functional.cosine_similarity(mine, theirs)).mean()
    assert drift > 0.01
    kept = loss(features(), None)
    assert torch.isclose(kept, mnrl + 0.5 * drift, atol=1e-5), (kept, mnrl, drift)
    loss.guide = model  # the model as its own start: no drift, MNRL alone
    assert torch.isclose(loss(features(), None), mnrl, atol=1e-6)
    # The term alone moves an embedding toward the start's: one step on it lowers the drift.
    loss.guide, loss.inner.scale = start, 0.0
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    loss(features(), None).backward()
    optimizer.step()
    with torch.no_grad():
        after = torch.cat([model.encode(list(t), convert_to_tensor=True) for t in texts])
    assert (1 - torch.nn.functional.cosine_similarity(after, theirs)).mean() < drift


def test_keep_weight_must_be_positive():
    with pytest.raises(RecipeError, match=r"phase2\.keep_weight"):
        load_recipe(TINY, ["phase2.loss=mnrl_keep", "phase2.keep_weight=0"])


def test_a_run_trains_phase2_with_mnrl_keep(tmp_path):
    record = _run(tmp_path, ["phase2.loss=mnrl_keep"])
    assert [p["status"] for p in record["phases"]] == ["done", "done", "done"]
    assert record["phases"][1]["loss"] == "KeepNearStartLoss"

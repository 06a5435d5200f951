"""A run folder's record (run.json) as typed objects, read and written the same way in every stage.

``RunRecord`` is the whole record, ``PhaseRecord`` one phase's entry; ``read_run_record`` and
``write_run_record`` are the only functions that turn them into ``run.json`` and back. The JSON keeps the
keys and their order of docs/run_folder.md: a phase's plan and fit figures are flat keys of its entry.

``RUN_SCHEMA_VERSION`` changes whenever a run folder written by older code can no longer be read or
released as it is (schema 2: saved models carry the inference length, run.json records the code version).
A folder from another schema is refused with the command that rebuilds it, never used silently. What older
code wrote and can be brought up to date safely is: ``migrate_phase_dirs`` renames the phase folders.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medenc.core.errors import RunError
from medenc.core.io import write_json
from medenc.core.layout import OLD_PHASE_DIRS, PHASE_DIRS, RUN_RECORD, training_seconds

log = logging.getLogger(__name__)

RUN_SCHEMA_VERSION = 2


@dataclass
class PhasePlan:
    """What a phase is about to train, recorded (and logged) before its first step."""

    loss: str
    rows: dict[str, int]  # training rows per source (phase 3: and "mined")
    train_rows: int
    validation_rows: int
    epochs: float
    steps: int  # planned; the fit's actual count replaces it in run.json
    batch_size: int
    learning_rate: float
    warmup_ratio: float
    max_seq_length: int
    started_from: str


@dataclass
class PhaseFit:
    """What training a phase measured."""

    steps: int
    seconds: float
    samples_per_second: float | None
    final_train_loss: float | None
    final_eval_loss: float | None


# Keys of a phase entry written only when set (None = absent from run.json).
_OPTIONAL = ("mining_seconds", "mined_from", "negatives", "replay", "datasets")
_AFTER = ("resumed_from", "model_sha256", "model_hash")


@dataclass
class PhaseRecord:
    """One phase's entry of run.json: pending, running, done or skipped, with its figures once trained."""

    phase: int
    name: str
    dir: str
    status: str = "pending"
    mining_seconds: float | None = None  # phase 3: the hard-negative mining before training
    mined_from: list[str] | None = None  # the sources of the pairs it mined over (the card credits them)
    negatives: dict[str, int] | None = None  # triplet phases: {"mined": n, "curated": n}
    replay: int | None = None  # replay_graded: the phase-1 graded pairs replayed
    datasets: dict[str, int] | None = None  # multi_dataset: training dataset -> rows
    plan: PhasePlan | None = None
    fit: PhaseFit | None = None
    resumed_from: str | None = None
    model_sha256: str | None = None
    model_hash: str | None = None  # medenc.core.model_id.model_hash of the folder (absent: older record)

    def to_dict(self) -> dict[str, Any]:
        """The entry as run.json holds it (plan and fit flattened; the fit's ``steps`` wins)."""
        out: dict[str, Any] = {"phase": self.phase, "name": self.name, "dir": self.dir, "status": self.status}
        out.update({k: getattr(self, k) for k in _OPTIONAL if getattr(self, k) is not None})
        if self.plan is not None:
            out.update(dataclasses.asdict(self.plan))
        if self.fit is not None:
            out.update(dataclasses.asdict(self.fit))
        out.update({k: getattr(self, k) for k in _AFTER if getattr(self, k) is not None})
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhaseRecord:
        """An entry read back from run.json."""
        plan = _sub(PhasePlan, data) if "loss" in data else None
        fit = _sub(PhaseFit, data) if "seconds" in data else None
        known = {k: data.get(k) for k in (*_OPTIONAL, *_AFTER)}
        status = data.get("status", "pending")
        return cls(data["phase"], data["name"], data["dir"], status, **known, plan=plan, fit=fit)

    @property
    def done(self) -> bool:
        """Whether the phase finished (its folder may still need checking)."""
        return self.status == "done"


def _sub(kind: type, data: dict[str, Any]) -> Any:
    """A ``PhasePlan`` or ``PhaseFit`` from a flat entry (a key absent from an older record: None)."""
    return kind(**{f.name: data.get(f.name) for f in dataclasses.fields(kind)})


@dataclass
class RunRecord:
    """run.json: what a training run used and did (docs/run_folder.md)."""

    schema_version: int
    code_version: str | None
    run: str
    recipe_path: str | None
    recipe_sha256: str
    base_model: dict[str, Any]  # id, revision, path, sha256
    data_manifest_sha256: str | None
    precision: dict[str, str]  # requested, used, reason
    hardware: dict[str, Any]
    versions: dict[str, str]
    started: str
    finished: str | None = None
    phases: list[PhaseRecord] = field(default_factory=list)
    total_seconds: float | None = None  # every phase's seconds plus mining (set when written)
    # {"from": <phase dir>, "model_sha256": ..., "model_hash": ...} once the run is done
    final: dict[str, Any] | None = None

    def phase(self, n: int) -> PhaseRecord:
        """Phase ``n``'s entry."""
        return next(p for p in self.phases if p.phase == n)

    def to_dict(self) -> dict[str, Any]:
        """The record as run.json holds it (absent ``total_seconds`` and ``final`` left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["phases"] = [p.to_dict() for p in self.phases]
        return {k: v for k, v in out.items() if v is not None or k not in ("total_seconds", "final")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """A record read back from run.json (keys a hand-made record lacks read as None)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "phases"]
        phases = [PhaseRecord.from_dict(p) for p in data.get("phases", [])]
        return cls(**{k: data.get(k) for k in names}, phases=phases)


def rebuild_command(run_dir: Path) -> str:
    """The command that retrains a run folder from scratch."""
    return f"make train RUN={Path(run_dir).name} TRAIN_ARGS=--fresh"


def read_run_record(run_dir: Path, *, required: bool = True) -> RunRecord | None:
    """``run_dir/run.json`` checked for JSON and schema; None when absent and not ``required``."""
    path = Path(run_dir) / RUN_RECORD
    if not path.is_file():
        if required:
            raise RunError(f"{path}: no run record; train first: make train RUN={Path(run_dir).name}")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(
            f"{path}: unreadable run record ({exc}); rebuild the run: {rebuild_command(run_dir)}"
        ) from exc
    if not isinstance(data, dict) or data.get("schema_version") != RUN_SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise RunError(
            f"{path}: written by an incompatible version of medenc (run schema {found}, this code reads "
            f"{RUN_SCHEMA_VERSION}); rebuild it: {rebuild_command(run_dir)}"
        )
    try:
        return RunRecord.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise RunError(
            f"{path}: malformed run record ({exc!r}); rebuild it: {rebuild_command(run_dir)}"
        ) from exc


def write_run_record(run_dir: Path, record: RunRecord) -> Path:
    """``record`` into ``run_dir/run.json`` atomically, its ``total_seconds`` brought up to date first."""
    record.total_seconds = training_seconds(record.to_dict())
    return write_json(Path(run_dir) / RUN_RECORD, record.to_dict())


def migrate_phase_dirs(run_dir: Path) -> list[str]:
    """Rename the phase folders of a run written while they were named after a loss (``phase-1-cosine``:
    ``layout.OLD_PHASE_DIRS``) to ``layout.PHASE_DIRS`` and rewrite run.json's names of them; return the
    folders renamed. The caller holds the run's lock.

    Each rename is atomic, and run.json is rewritten atomically after them from the names it holds, so a
    migration killed half way is finished by the next. Old and new folders of one phase side by side are
    refused: which one is the phase is not for this code to guess.
    """
    run_dir = Path(run_dir)
    moved = []
    for n, old in OLD_PHASE_DIRS.items():
        src, dst = run_dir / old, run_dir / PHASE_DIRS[n]
        if not (src.exists() or src.is_symlink()):
            continue
        if dst.exists() or dst.is_symlink():
            raise RunError(
                f"{src} and {dst}: phase {n} has a folder under its old name and one under its new name; "
                f"keep the one {run_dir / RUN_RECORD} names under phases[{n - 1}].dir, remove the other, "
                "then rerun"
            )
        src.rename(dst)
        log.info("%s: renamed %s to %s (phase folders are named by their phase)", run_dir, old, dst.name)
        moved.append(old)
    if _rename_in_record(run_dir):
        log.info("%s: rewritten with the phase folders' new names", run_dir / RUN_RECORD)
    return moved


def _rename_in_record(run_dir: Path) -> bool:
    """run.json's old phase folder names (each phase's ``dir`` and ``started_from``, ``final.from`` and
    ``final.average.of``) replaced by the new ones, written atomically; whether anything changed. A record
    that does not read is left to ``read_run_record``, which refuses it with its fix."""
    path = run_dir / RUN_RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    new = {old: PHASE_DIRS[n] for n, old in OLD_PHASE_DIRS.items()}
    entries = [p for p in data.get("phases", []) if isinstance(p, dict)]
    places = [(p, key) for p in entries for key in ("dir", "started_from")]
    if isinstance(data.get("final"), dict):
        places.append((data["final"], "from"))
        if isinstance(data["final"].get("average"), dict):  # the phase the weight average was made of
            places.append((data["final"]["average"], "of"))
    changed = [(where, key) for where, key in places if isinstance(where.get(key), str) and where[key] in new]
    for where, key in changed:
        where[key] = new[where[key]]
    if changed:
        write_json(path, data)
    return bool(changed)

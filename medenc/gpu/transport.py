"""Carry the base model and the prepared data to the GPU machine over several calls (docs/gpu.md).

A device call carries at most 64 MiB beside the working tree, but ignored paths one call carried stay on the
machine for the next call while it is warm. So ``pack`` rounds the base weights to fp16 (half the size), cuts
the file into pieces that each fill one call, and plans which call carries which paths; ``check N`` (on the
machine) verifies piece N and that pieces 1..N-1 are still there; ``assemble`` (in the main call) joins the
pieces, expands them to fp32, verifies both hashes, publishes the model folder atomically, loads it, and
unpacks the prepared data.

The safetensors files are written here, not by the safetensors library: tensors in name order, a compact JSON
header, so the bytes (and the pinned ``FP16_ROUNDED_SHA256``) depend only on the values, not on a library
version that may differ between this machine and the device.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medenc.core.errors import ModelError
from medenc.core.io import sha256_file, write_json
from medenc.core.layout import MANIFEST, WEIGHTS_FILE

MIB = 1 << 20
TRANSPORT_DIR = ".gpu_transport"
MANIFEST_FILE = "manifest.json"
FP16_FILE = "base.fp16.safetensors"
FILES_TAR = "base.files.tar"
DATA_ARCHIVE = "prepared.tar.gz"
WHEELS_DIR = ".whl"
CALL_CAP_MIB = 64.0  # what one device call carries: working tree + carried paths
_ITEMSIZE = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
_ROUND = {"F32": "F16", "F64": "F16"}  # what pack rounds; BF16 is left alone (fp16 would lose its range)


def piece_name(n: int) -> str:
    """The file name of piece ``n`` (1-based)."""
    return f"base.fp16.part-{n:02d}"


# --- safetensors, read and written byte for byte --------------------------------------------------


def read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, list[int], bytes]]]:
    """The metadata and ``{name: (dtype, shape, raw bytes)}`` of a safetensors file."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelError(f"{path}: expected a safetensors file, found {len(head)} bytes")
        (size,) = struct.unpack("<Q", head)
        header = json.loads(fh.read(size))
        data = fh.read()
    meta = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, spec in header.items():
        start, end = spec["data_offsets"]
        tensors[name] = (spec["dtype"], list(spec["shape"]), data[start:end])
    return meta, tensors


def write_safetensors(
    path: Path, meta: dict[str, str], tensors: dict[str, tuple[str, list[int], bytes]]
) -> None:
    """Write tensors in name order with a compact header padded to 8 bytes; atomic (temp + rename)."""
    header: dict[str, Any] = {"__metadata__": meta} if meta else {}
    offset = 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    blob = json.dumps(header, separators=(",", ":"), sort_keys=False).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob)
        for name in sorted(tensors):
            fh.write(tensors[name][2])
    os.replace(tmp, path)


def _convert(raw: bytes, src: str, dst: str) -> bytes:
    """Little-endian float bytes of one dtype as another (numpy's round to nearest even)."""
    import numpy as np

    kinds = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}
    return np.frombuffer(raw, dtype=kinds[src]).astype(kinds[dst]).tobytes()


def round_to_fp16(src: Path, dst: Path) -> list[str]:
    """Write ``src`` with every F32/F64 tensor rounded to F16 (round to nearest); returns what was rounded."""
    meta, tensors = read_safetensors(src)
    rounded = sorted(n for n, (dtype, _, _) in tensors.items() if dtype in _ROUND)
    out = {n: (("F16", shape, _convert(raw, dtype, "F16")) if n in rounded else (dtype, shape, raw))
           for n, (dtype, shape, raw) in tensors.items()}  # fmt: skip
    # Which tensors were rounded and from what, so expanding gives back the original dtypes.
    dtypes = {n: tensors[n][0] for n in rounded}
    write_safetensors(dst, {**meta, "medenc.rounded_from": json.dumps(dtypes, sort_keys=True)}, out)
    return rounded


def expand_fp16(src: Path, dst: Path) -> None:
    """Write the fp16 file ``src`` back in the original dtypes (exact: every fp16 value is an fp32 value)."""
    meta, tensors = read_safetensors(src)
    dtypes = json.loads(meta.pop("medenc.rounded_from", "{}"))
    out = {n: ((dtypes[n], shape, _convert(raw, dtype, dtypes[n])) if n in dtypes else (dtype, shape, raw))
           for n, (dtype, shape, raw) in tensors.items()}  # fmt: skip
    write_safetensors(dst, meta, out)


# --- archives -------------------------------------------------------------------------------------


def deterministic_tar(src: Path, dst: Path, *, gz: bool) -> None:
    """Tar every file under ``src`` (sorted, mtime 0, owner 0, mode 644) so equal trees give equal bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(src).as_posix())
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    data = buf.getvalue()
    if gz:
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as zf:
            zf.write(data)
        data = out.getvalue()
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dst)


def _extract(archive: Path, dest: Path) -> None:
    """Unpack a tar made by ``deterministic_tar`` into ``dest`` (refusing absolute or ``..`` members)."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in Path(member.name).parts or not member.isfile():
                raise ModelError(f"{archive}: unsafe or unexpected member {member.name!r}")
        tar.extractall(dest, filter="data")


# --- the plan -------------------------------------------------------------------------------------


@dataclass
class Budget:
    """MiB each call may carry beside the working tree (``per_call``), and what call 1 and the last call carry
    besides pieces (``first_extra``: wheels, small files, manifest; ``last_extra``: the data archive)."""

    per_call: float
    first_extra: float
    last_extra: float


def plan_pieces(total: int, budget: Budget) -> list[int]:
    """Piece sizes in bytes that fill each call: as few calls as fit ``total`` bytes of weights."""
    room = int(budget.per_call * MIB)
    first, last = room - int(budget.first_extra * MIB), room - int(budget.last_extra * MIB)
    if min(first, last) <= 0:
        raise ModelError(
            f"a call carries {budget.per_call:.1f} MiB: too little beside the wheels and the data"
        )
    if total <= min(first, last):
        return [total]
    middle = max(0, -(-(total - first - last) // room))  # full calls between the first and the last
    caps = [first] + [room] * middle + [last]
    # Each piece takes its call's share of the slack, so no call runs at its edge.
    sizes = [cap * total // sum(caps) for cap in caps[:-1]]
    return [*sizes, total - sum(sizes)]


def cut(path: Path, sizes: list[int], out_dir: Path) -> list[dict[str, Any]]:
    """Cut ``path`` into pieces of ``sizes`` bytes, plus one for what is left: names, sizes, hashes."""
    pieces = []
    with open(path, "rb") as fh:
        n = 0
        while data := fh.read(sizes[n] if n < len(sizes) else -1):
            n += 1
            target = out_dir / piece_name(n)
            target.write_bytes(data)
            pieces.append({"name": piece_name(n), "bytes": len(data), "sha256": sha256_file(target)})
    for stale in out_dir.glob("base.fp16.part-*"):  # a longer earlier cut must not leave its tail behind
        if stale.name not in {p["name"] for p in pieces}:
            stale.unlink()
    return pieces


def call_plan(pieces: list[dict[str, Any]], wheels: list[str]) -> list[dict[str, Any]]:
    """Which call carries which ignored paths (at most 8 each), and the command it runs (docs/gpu.md)."""
    rel = f"{TRANSPORT_DIR}/"
    calls = []
    for n, piece in enumerate(pieces, start=1):
        carry = [rel + piece["name"]]
        if n == 1:
            carry = [*wheels, rel + MANIFEST_FILE, rel + FILES_TAR, *carry]
        command = f"bash scripts/gpu_run.sh check {n}"
        if n == len(pieces):
            carry.append(rel + DATA_ARCHIVE)
            command = "set -o pipefail; OUT=$OUT bash scripts/gpu_run.sh main 2>&1 | tee $OUT/console.log"
            if n == 1:
                command = "bash scripts/gpu_run.sh check 1 && " + command
        calls.append({"call": n, "carry": carry, "command": command})
    return calls


def _tar_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def pack(base: Path, prepared: Path, out_dir: Path, *, budget: float | None, piece_mib: list[float] | None,
         wheels: list[Path], tree_mib: float) -> dict[str, Any]:  # fmt: skip
    """Write the fp16 pieces, the small files, the data archive and the manifest into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp16 = out_dir / FP16_FILE
    rounded = round_to_fp16(base / WEIGHTS_FILE, fp16)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        expanded = Path(tmp) / WEIGHTS_FILE
        expand_fp16(fp16, expanded)
        fp32_sha = sha256_file(expanded)
        small = Path(tmp) / "files"
        shutil.copytree(base, small, ignore=shutil.ignore_patterns(WEIGHTS_FILE, "README.md", ".*"))
        deterministic_tar(small, out_dir / FILES_TAR, gz=False)
    deterministic_tar(prepared, out_dir / DATA_ARCHIVE, gz=True)
    wheel_mib = sum(p.stat().st_size for p in wheels) / MIB
    first = wheel_mib + _tar_bytes(out_dir / FILES_TAR) / MIB + 0.1  # + the manifest
    last = _tar_bytes(out_dir / DATA_ARCHIVE) / MIB
    if piece_mib:
        sizes = [int(m * MIB) for m in piece_mib]
    else:
        per_call = (budget if budget is not None else CALL_CAP_MIB) - tree_mib
        sizes = plan_pieces(fp16.stat().st_size, Budget(per_call, first, last))
    pieces = cut(fp16, sizes, out_dir)
    manifest = {
        "schema": 1,
        "original_sha256": sha256_file(base / WEIGHTS_FILE),
        "fp16_sha256": sha256_file(fp16),
        "fp16_bytes": fp16.stat().st_size,
        "fp32_rounded_sha256": fp32_sha,
        "rounded_tensors": len(rounded),
        "pieces": pieces,
        "files_tar": {"name": FILES_TAR, "sha256": sha256_file(out_dir / FILES_TAR)},
        "data": {"name": DATA_ARCHIVE, "sha256": sha256_file(out_dir / DATA_ARCHIVE),
                 "bytes": _tar_bytes(out_dir / DATA_ARCHIVE),
                 "manifest_sha256": _data_manifest_sha(prepared)},
        "tree_mib": round(tree_mib, 2),
        # The wheels travel as their folder (one carry path of 8), as docs/bench.md carried them.
        "calls": call_plan(pieces, [WHEELS_DIR] if wheels else []),
    }  # fmt: skip
    fp16.unlink()  # the pieces are the copy that travels
    write_json(out_dir / MANIFEST_FILE, manifest)
    return manifest


def _data_manifest_sha(prepared: Path) -> str | None:
    path = prepared / MANIFEST
    return sha256_file(path) if path.is_file() else None


def carry_mib(manifest: dict[str, Any], root: Path) -> list[float]:
    """MiB each call carries beside the tree (folders summed), to print beside the plan."""
    out = []
    for call in manifest["calls"]:
        total = 0
        for rel in call["carry"]:
            p = root / rel
            total += (
                sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else _tar_bytes(p)
            )
        out.append(total / MIB)
    return out


# --- on the device --------------------------------------------------------------------------------


def load_manifest(transport: Path) -> dict[str, Any]:
    """The manifest call 1 carried, or an error that says which call brings it."""
    path = transport / MANIFEST_FILE
    if not path.is_file():
        raise ModelError(f"{path}: expected the transport manifest (call 1 carries it), found no such file")
    return json.loads(path.read_text(encoding="utf-8"))


def _piece_problem(transport: Path, piece: dict[str, Any]) -> str | None:
    path = transport / piece["name"]
    if not path.is_file():
        return f"{piece['name']} missing"
    if path.stat().st_size != piece["bytes"] or sha256_file(path) != piece["sha256"]:
        return f"{piece['name']} differs from the manifest (sha256 expected {piece['sha256'][:12]}…)"
    return None


def check_piece(transport: Path, n: int) -> str:
    """One line: piece ``n`` is there and right, and so are pieces 1..n-1; ModelError naming what is not."""
    manifest = load_manifest(transport)
    pieces = manifest["pieces"]
    if not 1 <= n <= len(pieces):
        raise ModelError(f"{transport}: expected a piece number in 1..{len(pieces)}, found {n}")
    problems = [p for p in (_piece_problem(transport, piece) for piece in pieces[:n]) if p]
    if n == 1 and sha256_file(transport / FILES_TAR) != manifest["files_tar"]["sha256"]:
        problems.append(f"{FILES_TAR} differs from the manifest")
    if problems:
        raise ModelError(
            f"{transport}: piece {n}/{len(pieces)} check failed: {'; '.join(problems)}. If the machine went "
            "back between calls, the earlier pieces are lost: start again from call 1."
        )
    earlier = f"pieces 1-{n - 1} present" if n > 1 else "no earlier pieces"
    return f"piece {n}/{len(pieces)} ok ({pieces[n - 1]['bytes'] / MIB:.1f} MiB), {earlier}"


def assemble(
    transport: Path, model_dir: Path, prepared: Path | None, expected_fp32: str | None = None
) -> dict:
    """Join and verify the pieces, publish the fp32 model folder atomically, unpack the data; the facts."""
    manifest = load_manifest(transport)
    problems = [p for p in (_piece_problem(transport, piece) for piece in manifest["pieces"]) if p]
    if problems:
        raise ModelError(f"{transport}: cannot assemble the base model: {'; '.join(problems)}")
    want = expected_fp32 or manifest["fp32_rounded_sha256"]
    if want != manifest["fp32_rounded_sha256"]:
        raise ModelError(
            f"{transport / MANIFEST_FILE}: its rounded weights hash {manifest['fp32_rounded_sha256']} is not "
            f"the pinned FP16_ROUNDED_SHA256 {want}; pack again with this code"
        )
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=f".{model_dir.name}.") as tmp:
        staged = Path(tmp) / "model"
        _extract(transport / FILES_TAR, staged)
        _join_and_expand(transport, manifest, staged, want)
        if model_dir.exists():
            shutil.rmtree(model_dir)
        staged.rename(model_dir)
    facts = {"model_dir": str(model_dir), "fp16_sha256": manifest["fp16_sha256"], "fp32_sha256": want}
    if prepared is not None:
        facts["data_manifest_sha256"] = unpack_data(transport, manifest, prepared)
    return facts


def _join_and_expand(transport: Path, manifest: dict[str, Any], staged: Path, want: str) -> None:
    """pieces -> fp16 file (verified) -> fp32 weights in ``staged`` (verified)."""
    fp16 = staged.parent / FP16_FILE
    with open(fp16, "wb") as out:
        for piece in manifest["pieces"]:
            with open(transport / piece["name"], "rb") as fh:
                shutil.copyfileobj(fh, out, MIB)
    found = sha256_file(fp16)
    if found != manifest["fp16_sha256"]:
        raise ModelError(f"{fp16}: joined pieces have sha256 {found}, expected {manifest['fp16_sha256']}")
    expand_fp16(fp16, staged / WEIGHTS_FILE)
    fp16.unlink()
    found = sha256_file(staged / WEIGHTS_FILE)
    if found != want:
        raise ModelError(f"{staged / WEIGHTS_FILE}: expanded weights have sha256 {found}, expected {want}")


def unpack_data(transport: Path, manifest: dict[str, Any], prepared: Path) -> str | None:
    """Unpack the prepared-data archive into ``prepared`` (temp + rename) after checking both hashes."""
    spec = manifest["data"]
    archive = transport / spec["name"]
    if not archive.is_file() or sha256_file(archive) != spec["sha256"]:
        raise ModelError(
            f"{archive}: expected the prepared-data archive sha256 {spec['sha256']}, missing or differs"
        )
    prepared.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=prepared.parent, prefix=f".{prepared.name}.") as tmp:
        staged = Path(tmp) / "prepared"
        _extract(archive, staged)
        found = _data_manifest_sha(staged)
        if found != spec["manifest_sha256"]:
            raise ModelError(f"{staged / MANIFEST}: sha256 {found}, expected {spec['manifest_sha256']}")
        if prepared.exists():
            shutil.rmtree(prepared)
        staged.rename(prepared)
    return found


def smoke_load(model_dir: Path) -> list[int]:
    """Load the assembled folder with SentenceTransformer and encode one sentence; the embedding's shape."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    return list(model.encode(["Aspirin lowers the risk of a second heart attack."]).shape)

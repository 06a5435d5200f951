"""The exports' record, ``exports.json``, and what may be done with a folder of exports without building one.

``exports.json`` holds the ``model_hash`` of the model folder the exports were made from, this CPU's int8
instruction set (``isa``), and the sha256 of every file (docs/release.md). ``read_record`` refuses a record
that lists anything but plain paths under ``onnx/`` and ``openvino/`` (an export never replaces a model file
or writes outside the release); ``verify_exports`` refuses a missing, damaged or stale export with the file
named; ``copy_exports`` copies the recorded files, each copy checked; ``release_files`` gives the file names
the model card shows. The release uses these and nothing else of this package: it never builds an export.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
from pathlib import Path

from medenc.core.errors import ExportError
from medenc.core.io import sha256_file

EXPORTS_MANIFEST = "exports.json"
ONNX_FP32 = "onnx/model.onnx"
OPENVINO_XML = "openvino/openvino_model.xml"
OPENVINO_BIN = "openvino/openvino_model.bin"
OPENVINO_INT8_XML = "openvino/openvino_model_qint8_quantized.xml"
OPENVINO_INT8_BIN = "openvino/openvino_model_qint8_quantized.bin"
EXPORT_FOLDERS = ("onnx", "openvino")  # the release's folders for exports; everything else is the model's


def cpu_isa() -> str:
    """This CPU's int8 instruction set, spelled as sentence-transformers' ``model_qint8_<isa>.onnx`` files."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = set(Path("/proc/cpuinfo").read_text(encoding="utf-8").split())
    except OSError:  # not Linux: the common baseline
        return "avx2"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    return "avx512" if "avx512f" in flags else "avx2"


def int8_name(isa: str | None = None) -> str:
    """``onnx/model_qint8_<isa>.onnx`` for ``isa`` (default: this CPU's); AVX2 has unsigned int8 weights,
    ``model_quint8_avx2.onnx``, as in sentence-transformers' own repositories."""
    isa = isa or cpu_isa()
    return f"onnx/model_{'quint8' if isa == 'avx2' else 'qint8'}_{isa}.onnx"


def read_record(folder: Path) -> dict:
    """``folder/exports.json``, its ``files`` checked to be plain paths under onnx/ or openvino/ with a
    sha256 each; ExportError naming the file and the entry otherwise."""
    path = Path(folder) / EXPORTS_MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ExportError(f"{path}: missing: the exports' record of their files and model") from exc
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ExportError(f"{path}: expected an object with 'files' (name -> sha256)")
    for name, digest in manifest["files"].items():
        if not _export_name(name) or not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise ExportError(
                f"{path}: files[{str(name)[:80]!r}]: expected a file under {' or '.join(EXPORT_FOLDERS)}/ "
                "(a plain relative path) and its sha256; an export never replaces a model file or writes "
                f"outside the release. Remove {path.parent} and build it again (make exports)"
            )
    return manifest


def _export_name(name: str) -> bool:
    """Whether an exports.json name is a file under onnx/ or openvino/: no '..', no absolute or odd path."""
    parts = name.split("/")
    return (
        len(parts) >= 2
        and parts[0] in EXPORT_FOLDERS
        and all(p not in ("", ".", "..") and "\\" not in p and "\0" not in p for p in parts)
    )


def _load_check(path: Path, name: str) -> None:
    """The file parses as what it claims to be (ONNX graph, OpenVINO IR), else ExportError naming it."""
    try:
        if name.endswith(".onnx"):
            import onnx

            onnx.checker.check_model(str(path), full_check=False)
        elif name.endswith(".xml"):
            import openvino as ov

            ov.Core().read_model(str(path))
    except Exception as exc:
        raise ExportError(f"{path}: does not load ({type(exc).__name__}: {str(exc)[:200]})") from exc


def verify_exports(folder: Path, expected_hash: str | None = None, fix: str = "") -> dict:
    """Every export of ``folder`` is present, unchanged since it was written, and loads; return the record.

    ``expected_hash``: the ``model_hash`` the exports must come from. ``fix``: appended to every refusal.
    """
    folder = Path(folder)
    manifest = read_record(folder)
    hint = f"; {fix}" if fix else ""
    if expected_hash is not None and manifest.get("model_hash") != expected_hash:
        raise ExportError(
            f"{folder / EXPORTS_MANIFEST}: exports of another model (model hash "
            f"{str(manifest.get('model_hash'))[:12]}, the final model is {expected_hash[:12]}){hint}"
        )
    required = {ONNX_FP32, OPENVINO_XML, OPENVINO_BIN, OPENVINO_INT8_XML, OPENVINO_INT8_BIN}
    required.add(int8_name(manifest.get("isa")))
    for name in sorted(required | set(manifest["files"])):
        path = folder / name
        if not path.is_file():
            raise ExportError(f"{path}: missing export{hint}")
        if name not in manifest["files"] or sha256_file(path) != manifest["files"][name]:
            raise ExportError(f"{path}: damaged export (its sha256 differs from {EXPORTS_MANIFEST}){hint}")
        _load_check(path, name)
    return manifest


def copy_exports(folder: Path, staged: Path) -> list[str]:
    """Copy the recorded exports of ``folder`` into the release folder ``staged``, each copy checked against
    its sha256; return the copied names (the release's ``onnx/`` and ``openvino/``)."""
    manifest = read_record(Path(folder))
    for name, digest in sorted(manifest["files"].items()):
        dst = Path(staged) / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(folder) / name, dst)
        if sha256_file(dst) != digest:
            raise ExportError(f"{dst}: copy differs from {Path(folder) / name} (disk problem?)")
    return sorted(manifest["files"])


def release_files(manifest: dict) -> dict[str, str]:
    """What the card names, from a record: ``isa`` and the release paths of the ONNX fp32, int8 and
    OpenVINO files."""
    isa = manifest.get("isa") or cpu_isa()
    return {
        "isa": isa, "onnx": ONNX_FP32, "int8": int8_name(isa), "openvino": OPENVINO_XML,
        "openvino_int8": OPENVINO_INT8_XML,
    }  # fmt: skip

"""ONNX and OpenVINO exports of the released model, in the layout the Hub and sentence-transformers use.

From a sentence-transformers model folder, ``build_exports`` writes:

- ``onnx/model.onnx``: fp32, ``torch.onnx.export`` of the transformer; inputs ``input_ids`` and
  ``attention_mask`` (int64, dynamic batch and sequence axes), output ``last_hidden_state`` (the token
  embeddings; pooling and normalisation stay with the caller, as sentence-transformers' ONNX backend expects);
- ``onnx/model_qint8_<isa>.onnx``: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per channel)
  of the attention's MatMuls, the feed-forward ones kept fp32 (measured: see ``build_exports``), named by the
  instruction set of this CPU as sentence-transformers names its files (``avx512_vnni``, ...);
- ``openvino/openvino_model.xml`` / ``.bin``: ``openvino.convert_model`` of the same PyTorch module, fp32;
- ``openvino/openvino_model_qint8_quantized.xml`` / ``.bin``: that IR statically quantized to int8 by nncf
  (``ModelType.TRANSFORMER``: SmoothQuant moves the activations' outlier features into the weights, which is
  what dynamic per-tensor scales cannot do), calibrated on the prepared validation pairs, never on test texts;
  sentence-transformers' own name for a static int8 OpenVINO file.

and ``exports.json``: the ``model_hash`` of the folder they were made from and the sha256 of every file, so
that ``verify_exports`` refuses a missing, damaged or stale export with the file named. The folder is built
beside its target and renamed into place: a kill never leaves a half export.

Optimum (sentence-transformers' own export helpers) does not accept transformers 5.x, hence the plain calls.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import shutil
import tempfile
from pathlib import Path

from medenc.core.errors import ExportError
from medenc.core.io import sha256_file, write_json
from medenc.core.layout import EXPORTS_DIR, FINAL_DIR, INFERENCE_MAX_SEQ_LENGTH, WEIGHTS_FILE
from medenc.core.model_id import model_hash
from medenc.core.runtime import export_onnx, export_openvino, load_tokenizer, tokenize

log = logging.getLogger(__name__)

EXPORTS_MANIFEST = "exports.json"
ONNX_FP32 = "onnx/model.onnx"
OPENVINO_XML = "openvino/openvino_model.xml"
OPENVINO_BIN = "openvino/openvino_model.bin"
OPENVINO_INT8_XML = "openvino/openvino_model_qint8_quantized.xml"
OPENVINO_INT8_BIN = "openvino/openvino_model_qint8_quantized.bin"
# Calibration of the static int8 IR: texts of the prepared validation pairs (names and passages mixed),
# in batches as the encoder sees them, up to the inference length.
CALIBRATION_TEXTS = 256
CALIBRATION_BATCH = 8
CALIBRATION_SEED = 999


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


def ffn_matmuls(path: Path, intermediate_size: int) -> list[str]:
    """The MatMul nodes of the feed-forward blocks: those whose constant weight has the intermediate width."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and intermediate_size in shapes.get(n.input[1], ())
    ]


def quantize_onnx(src: Path, dst: Path, isa: str, keep_fp32: list[str] | None = None) -> None:
    """Dynamic int8 quantization of the MatMul weights (per channel), activations quantized at run time.

    ``keep_fp32``: MatMul nodes left in fp32. AVX2 without VNNI saturates signed x unsigned int8 products,
    hence unsigned weights there (as optimum's ``avx2`` configuration); every other ISA takes signed weights.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = QuantType.QUInt8 if isa == "avx2" else QuantType.QInt8
    quantize_dynamic(
        str(src), str(dst), per_channel=True, weight_type=weights, op_types_to_quantize=["MatMul"],
        nodes_to_exclude=list(keep_fp32 or ()),
    )  # fmt: skip


def calibration_texts(n: int = CALIBRATION_TEXTS, seed: int = CALIBRATION_SEED) -> list[str]:
    """``n`` distinct texts of the prepared validation pairs (anchors and positives), in a seeded order.

    Validation, not test: the suite that measures the int8 export never informs its scales.
    """
    import numpy as np

    from medenc.core.errors import MedencError
    from medenc.core.layout import PAIRS
    from medenc.data import load_split

    try:
        pairs = load_split("validation", PAIRS)
    except MedencError as exc:
        raise ExportError(
            f"the int8 OpenVINO export is calibrated on the prepared validation pairs: {exc}"
        ) from exc
    pool = list(dict.fromkeys([*pairs["anchor"], *pairs["positive"]]))
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[:n]]


def quantize_openvino(xml: Path, dst: Path, model_dir: Path, texts: list[str]) -> None:
    """Static int8 quantization of the OpenVINO IR ``xml`` into ``dst`` (nncf, SmoothQuant), calibrated on
    ``texts`` tokenized as at inference."""
    import nncf
    import openvino as ov

    tokenizer = load_tokenizer(model_dir, INFERENCE_MAX_SEQ_LENGTH)
    batches = []
    for start in range(0, len(texts), CALIBRATION_BATCH):
        ids, mask = tokenize(tokenizer, texts[start : start + CALIBRATION_BATCH])
        batches.append({"input_ids": ids, "attention_mask": mask})
    quantized = nncf.quantize(
        ov.Core().read_model(str(xml)), nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(batches),
    )  # fmt: skip
    ov.save_model(quantized, str(dst), compress_to_fp16=False)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "onnx", "onnxruntime", "openvino", "nncf"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def build_exports(model_dir: Path, target: Path, calibration: list[str] | None = None) -> dict:
    """Write every export of ``model_dir`` into ``target`` (replaced as a whole); return its manifest.

    ``calibration``: the texts the int8 OpenVINO IR is calibrated on (default: ``calibration_texts()``).
    """
    model_dir, target = Path(model_dir), Path(target)
    missing = [n for n in ("config.json", WEIGHTS_FILE, "tokenizer.json") if not (model_dir / n).is_file()]
    if missing:
        raise ExportError(
            f"{model_dir}: not a complete model folder to export (missing {', '.join(missing)}); "
            "train first (make train RUN=<run>) or name a sentence-transformers folder"
        )
    texts = calibration if calibration is not None else calibration_texts()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        built = tmp / target.name
        log.info("Exporting %s to ONNX and OpenVINO (a minute for the base model's size)", model_dir)
        export_onnx(model_dir, built / ONNX_FP32)
        # The feed-forward MatMuls stay fp32: with them in int8 too, the base model's embeddings moved by a
        # cosine distance of about 0.1 (median; 0.36 at most) from PyTorch's, without them by 0.006 at most,
        # on the suite's texts (docs/release.md): per-tensor activation scales cannot hold the outlier
        # features of the feed-forward activations.
        width = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["intermediate_size"]
        ffn = ffn_matmuls(built / ONNX_FP32, int(width))
        quantize_onnx(built / ONNX_FP32, built / int8_name(), cpu_isa(), keep_fp32=ffn)
        export_openvino(model_dir, built / OPENVINO_XML)
        quantize_openvino(built / OPENVINO_XML, built / OPENVINO_INT8_XML, model_dir, texts)
        files = sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())
        manifest = {
            "model_hash": model_hash(model_dir),
            "isa": cpu_isa(),
            "int8_fp32_nodes": len(ffn),
            "calibration_texts": len(texts),
            "files": {name: sha256_file(built / name) for name in files},
            "versions": _versions(),
        }
        write_json(built / EXPORTS_MANIFEST, manifest)
        verify_exports(built)  # what was just written loads, before it replaces anything
        if target.exists():
            target.rename(tmp / "previous")  # removed with tmp below
        built.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _read_manifest(folder: Path) -> dict:
    path = folder / EXPORTS_MANIFEST
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
                f"outside the release. Remove {path.parent} (make release builds it again)"
            )
    return manifest


EXPORT_FOLDERS = ("onnx", "openvino")  # the release's folders for exports; everything else is the model's


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
    """Every export of ``folder`` is present, unchanged since it was written, and loads; return the manifest.

    ``expected_hash``: the ``model_hash`` the exports must come from. ``fix``: appended to every refusal.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
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


def ensure_exports(run_dir: Path, rebuild: bool = False) -> Path:
    """``run_dir/exports/`` of ``final/``: built when absent (or ``rebuild``), else verified as it is.

    Exports of an older ``final/`` are rebuilt; a damaged or incomplete folder is refused with the file named.
    """
    run_dir = Path(run_dir)
    folder, final = run_dir / EXPORTS_DIR, run_dir / FINAL_DIR
    current = model_hash(final)
    if not rebuild and folder.is_dir():
        manifest_path = folder / EXPORTS_MANIFEST
        if manifest_path.is_file() and _read_manifest(folder).get("model_hash") != current:
            log.info("%s holds exports of an earlier final model; rebuilding them", folder)
        else:
            fix = f"remove {folder} (make release builds it again) or pass --rebuild-exports"
            verify_exports(folder, current, fix)
            return folder
    build_exports(final, folder)
    return folder


def copy_exports(folder: Path, staged: Path) -> list[str]:
    """Copy the verified exports into the release folder ``staged``, each copy checked against its sha256;
    return the copied names (the release's ``onnx/`` and ``openvino/``)."""
    manifest = _read_manifest(Path(folder))
    for name, digest in sorted(manifest["files"].items()):
        dst = Path(staged) / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(folder) / name, dst)
        if sha256_file(dst) != digest:
            raise ExportError(f"{dst}: copy differs from {Path(folder) / name} (disk problem?)")
    return sorted(manifest["files"])


def export_files(folder: Path) -> dict[str, str]:
    """What the card names: ``isa`` and the release paths of the ONNX fp32, int8 and OpenVINO files."""
    manifest = _read_manifest(Path(folder))
    isa = manifest.get("isa") or cpu_isa()
    return {
        "isa": isa, "onnx": ONNX_FP32, "int8": int8_name(isa), "openvino": OPENVINO_XML,
        "openvino_int8": OPENVINO_INT8_XML,
    }  # fmt: skip

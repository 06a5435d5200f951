"""Build the ONNX and OpenVINO exports of a model folder, in the layout the Hub and sentence-transformers use.

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

and ``exports.json`` (``medenc.export.record``): the ``model_hash`` of the folder they were made from and the
sha256 of every file, so that ``verify_exports`` refuses a missing, damaged or stale export with the file
named. The folder is built beside its target and renamed into place: a kill never leaves a half export.
``ensure_exports`` does this for a run's ``final/`` (``make exports``); the release only verifies and copies.

Optimum (sentence-transformers' own export helpers) does not accept transformers 5.x, hence the plain calls.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from medenc.core.errors import ExportError
from medenc.core.io import sha256_file, write_json
from medenc.core.layout import EXPORTS_DIR, FINAL_DIR, INFERENCE_MAX_SEQ_LENGTH, WEIGHTS_FILE
from medenc.core.lock import run_lock
from medenc.core.model_id import model_hash
from medenc.core.runtime import export_onnx, export_openvino, load_tokenizer, tokenize
from medenc.export.record import (
    EXPORTS_MANIFEST,
    ONNX_FP32,
    OPENVINO_INT8_XML,
    OPENVINO_XML,
    cpu_isa,
    int8_name,
    read_record,
    verify_exports,
)

log = logging.getLogger(__name__)

# Calibration of the static int8 IR: texts of the prepared validation pairs (names and passages mixed),
# in batches as the encoder sees them, up to the inference length.
CALIBRATION_TEXTS = 256
CALIBRATION_BATCH = 8
CALIBRATION_SEED = 999


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


def _require_model(model_dir: Path) -> None:
    """A sentence-transformers folder to export, else ExportError naming what is missing."""
    missing = [n for n in ("config.json", WEIGHTS_FILE, "tokenizer.json") if not (model_dir / n).is_file()]
    if missing:
        raise ExportError(
            f"{model_dir}: not a complete model folder to export (missing {', '.join(missing)}); "
            "train first (make train RUN=<run>) or name a sentence-transformers folder"
        )


def build_exports(model_dir: Path, target: Path, calibration: list[str] | None = None) -> dict:
    """Write every export of ``model_dir`` into ``target`` (replaced as a whole); return its manifest.

    ``calibration``: the texts the int8 OpenVINO IR is calibrated on (default: ``calibration_texts()``).
    """
    model_dir, target = Path(model_dir), Path(target)
    _require_model(model_dir)
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


def ensure_exports(run_dir: Path, rebuild: bool = False) -> Path:
    """``run_dir/exports/`` of ``final/``, under the run's lock: built when absent (or ``rebuild``), else
    verified as it is. Exports of an older ``final/`` are rebuilt; a damaged or incomplete folder is refused
    with the file named."""
    with run_lock(Path(run_dir), "make exports"):
        return ensure_exports_unlocked(Path(run_dir), rebuild)


def ensure_exports_unlocked(run_dir: Path, rebuild: bool = False) -> Path:
    """``ensure_exports`` for a caller that holds the run's lock already."""
    folder, final = run_dir / EXPORTS_DIR, run_dir / FINAL_DIR
    _require_model(final)
    for tmp in run_dir.glob(f".{EXPORTS_DIR}.tmp-*"):  # a killed build's (the lock is held: no build runs)
        log.info("removing %s, left by an interrupted export build", tmp)
        shutil.rmtree(tmp)
    current = model_hash(final)
    if not rebuild and folder.is_dir():
        manifest_path = folder / EXPORTS_MANIFEST
        if manifest_path.is_file() and read_record(folder).get("model_hash") != current:
            log.info("%s holds exports of an earlier final model; rebuilding them", folder)
        else:
            fix = f"build them again: make exports RUN={run_dir.name} EXPORT_ARGS=--rebuild"
            verify_exports(folder, current, fix)
            return folder
    build_exports(final, folder)
    return folder

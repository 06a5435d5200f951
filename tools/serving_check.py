"""Load a staged release as its users do, with sentence-transformers' own backends, and write the vectors.

Not part of the shipped package, and it imports nothing of it: it runs in a throwaway environment that holds
optimum, which the project's pinned stack cannot (no optimum, optimum-intel or optimum-onnx release accepts
transformers 5.25; docs/release.md). tests/test_serving.py runs it per backend and compares the vectors with
the pinned stack's PyTorch ones; by hand, on a real release:

    $VENVS/openvino/bin/python tools/serving_check.py outputs/cpu/release --backend openvino --out /tmp/ov.npy

The two environments (``$VENVS``; the test reads it from ``MEDENC_SERVING_VENVS``), the newest that resolve
with torch 2.13.0 CPU (install it first: a bare ``torch`` pulls the multi-GB CUDA build). optimum-intel 2.2.0
needs transformers < 5.6 (pip takes 5.5.4); optimum-onnx 0.1.0, the newest, transformers < 4.58, which only
sentence-transformers 5.x accepts. PyPI's torchvision (an optimum-intel dependency) is a CUDA build that
breaks transformers' import beside the CPU torch ("operator torchvision::nms does not exist"): uninstall it.

    python3 -m venv $VENVS/openvino && $VENVS/openvino/bin/pip install torch==2.13.0 \\
        sentence-transformers==6.2.0 "optimum-intel[openvino]==2.2.0" openvino==2026.4.1 \\
        && $VENVS/openvino/bin/pip uninstall -y torchvision
    python3 -m venv $VENVS/onnx && $VENVS/onnx/bin/pip install torch==2.13.0 sentence-transformers==5.7.0 \\
        "optimum-onnx[onnxruntime]==0.1.0" optimum==2.1.0 onnxruntime==1.32.0 "transformers>=4.57,<4.58"

It prints one JSON line: the backend, the file, the versions that loaded it, the vectors' shape and file.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path

# Short and long texts: a long one is truncated where the model's max_seq_length says.
TEXTS = [
    "MI",
    "The patient has hypertension.",
    "Patient has high blood pressure and a history of type 2 diabetes mellitus, treated with metformin. " * 6,
    "Broken wrist",
]
PACKAGES = ("sentence-transformers", "transformers", "torch", "optimum", "optimum-intel", "optimum-onnx",
            "onnxruntime", "openvino", "huggingface-hub")  # fmt: skip
# OpenVINO runs in bf16 on CPUs with bf16 units unless asked for f32 (docs/release.md).
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def versions() -> dict[str, str]:
    """The installed version of each package that takes part in loading, those present."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("release", type=Path, help="a staged release folder (outputs/<run>/release)")
    parser.add_argument("--backend", choices=("torch", "onnx", "openvino"), required=True)
    parser.add_argument("--file", help="model_kwargs file_name, e.g. onnx/model_qint8_avx512_vnni.onnx")
    parser.add_argument("--default-precision", action="store_true", help="OpenVINO: no f32 hint")
    parser.add_argument("--texts", type=Path, help="a JSON list of texts to encode (default: TEXTS)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the vectors (.npy)")
    args = parser.parse_args(argv)

    import numpy as np
    from sentence_transformers import SentenceTransformer

    kwargs: dict = {"file_name": args.file} if args.file else {}
    if args.backend == "openvino" and not args.default_precision:
        kwargs["ov_config"] = F32
    model = SentenceTransformer(str(args.release), backend=args.backend, device="cpu", model_kwargs=kwargs)
    texts = json.loads(args.texts.read_text(encoding="utf-8")) if args.texts else TEXTS
    vectors = model.encode(texts, batch_size=3, convert_to_numpy=True)
    np.save(args.out, vectors)
    print(json.dumps({
        "backend": args.backend, "file": args.file, "versions": versions(),
        "shape": list(vectors.shape), "max_seq_length": model.max_seq_length, "vectors": str(args.out),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

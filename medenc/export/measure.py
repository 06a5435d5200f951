"""Measure the exports against the PyTorch model, in one run: agreement, throughput and the suite's figures.

- agreement: on a sample of the suite's texts, the largest cosine distance between a text's embedding from an
  export and from PyTorch (``max_cosine_distance``), and the largest difference of any pair's similarity
  (``max_similarity_diff``, what a ranking sees);
- throughput: texts/s encoding that same sample (short texts and passages mixed, in a fixed shuffled order)
  at batch 32, each encoder sorting by length within the call as ``SentenceTransformer.encode`` does;
- the suite: every int8 export scored on the held-out suite with the evaluation stage, against PyTorch fp32
  on the same resampled items (paired bootstrap, as the phases against the base model).

``measure_run`` writes the figures into the run's results.json under ``exports`` (docs/results_schema.md);
the card's "Exports" table reads them from there.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medenc.core.io import sha256_file
from medenc.core.layout import EVAL_DIR, FINAL_DIR, INFERENCE_MAX_SEQ_LENGTH, RESULTS_FILE, WEIGHTS_FILE
from medenc.core.model_id import model_hash
from medenc.core.runtime import BATCH_SIZE, onnx_encoder, openvino_encoder
from medenc.export.build import ensure_exports_unlocked
from medenc.export.record import (
    EXPORTS_MANIFEST,
    ONNX_FP32,
    OPENVINO_INT8_BIN,
    OPENVINO_INT8_XML,
    OPENVINO_XML,
    int8_name,
)

log = logging.getLogger(__name__)

DEFAULT_SAMPLE = 512
SAMPLE_SEED = 12345


def torch_encoder(model_dir: Path, max_seq_length: int = INFERENCE_MAX_SEQ_LENGTH):
    """The PyTorch model itself, fp32 on the CPU."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = max_seq_length
    return model


def suite_texts(loader=None, sets: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The suite's distinct short texts and passages (``medenc.data``'s prepared sets by default)."""
    from medenc.evaluation.sets import default_loader, load_set, select_sets, unique_texts

    loaded = [load_set(loader or default_loader(), name) for name in select_sets(sets)]
    return (
        unique_texts(t for es in loaded for t in es.short_texts),
        unique_texts(t for es in loaded for t in es.passage_texts),
    )


def mixed_sample(short: list[str], passage: list[str], n: int, seed: int = SAMPLE_SEED) -> list[str]:
    """``n`` texts drawn without replacement from short texts and passages alike, in a shuffled order."""
    pool = list(dict.fromkeys(short + passage))
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.permutation(len(pool))[: min(n, len(pool))]]


def timed_encode(encoder, texts: list[str], batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, float]:
    """(embeddings, texts/s); one batch first, untimed, so that one-off setup is not counted."""
    encoder.encode(texts[:batch_size], batch_size=batch_size, show_progress_bar=False)
    t0 = time.perf_counter()
    emb = np.asarray(encoder.encode(texts, batch_size=batch_size, show_progress_bar=False), np.float32)
    return emb, len(texts) / (time.perf_counter() - t0)


def agreement(emb: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Largest per-text cosine distance and largest pairwise-similarity difference between two tables."""
    a = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    b = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    return {
        "max_cosine_distance": float(np.max(1.0 - np.sum(a * b, axis=1))),
        "max_similarity_diff": float(np.max(np.abs(a @ a.T - b @ b.T))),
    }


def variant_encoders(model_dir: Path, exports: Path, isa: str) -> dict[str, tuple[str | None, Callable]]:
    """Name -> (file in the release, loader of its encoder); PyTorch fp32 first, the reference."""
    return {
        "pytorch_fp32": (None, lambda: torch_encoder(model_dir)),
        "onnx_fp32": (ONNX_FP32, lambda: onnx_encoder(exports / ONNX_FP32, model_dir)),
        "onnx_int8": (int8_name(isa), lambda: onnx_encoder(exports / int8_name(isa), model_dir)),
        "openvino_fp32": (OPENVINO_XML, lambda: openvino_encoder(exports / OPENVINO_XML, model_dir)),
        # What `backend="openvino"` gives by default on this CPU where it has bf16 units.
        "openvino_default": (
            OPENVINO_XML,
            lambda: openvino_encoder(exports / OPENVINO_XML, model_dir, precision=None),
        ),
        # Static int8 at OpenVINO's default precision for what stays in floating point: what
        # `backend="openvino"` with this file gives.
        "openvino_int8": (
            OPENVINO_INT8_XML,
            lambda: openvino_encoder(exports / OPENVINO_INT8_XML, model_dir, precision=None),
        ),
    }


def measure_variants(model_dir: Path, exports: Path, texts: list[str], isa: str) -> dict[str, dict]:
    """Every variant on ``texts``: texts/s at batch 32, speed-up and agreement against PyTorch fp32."""
    out: dict[str, dict] = {}
    ref, ref_speed = None, None
    for name, (file, load) in variant_encoders(Path(model_dir), Path(exports), isa).items():
        emb, speed = timed_encode(load(), texts)
        entry: dict[str, Any] = {"file": file, "texts_per_s": round(speed, 2)}
        if ref is None:
            ref, ref_speed = emb, speed
        else:
            entry.update(agreement(emb, ref), speedup=round(speed / ref_speed, 2))
        log.info("%s: %.1f texts/s %s", name, speed, {k: v for k, v in entry.items() if k.startswith("max")})
        out[name] = entry
    return out


# The int8 variants scored on the whole suite.
SUITE_VARIANTS = ("onnx_int8", "openvino_int8")
# Files whose bytes a variant's cached embeddings depend on, beside its graph file (OpenVINO's weights).
_WEIGHTS_BESIDE = {OPENVINO_INT8_XML: OPENVINO_INT8_BIN}


def suite_figures(
    model_dir: Path, exports: Path, isa: str, loader=None, bootstrap: int = 1000, seed: int = 12345,
    cache_root: Path | None = None,
) -> dict:  # fmt: skip
    """Each int8 variant on the held-out suite against PyTorch fp32: figures with CIs, paired differences.

    The evaluation stage does the work (its embedding cache already holds the fp32 model's vectors after
    ``make evaluate``); the fp32 model takes the place of the base model in its paired bootstrap.
    """
    import hashlib

    from medenc.evaluation.cache import EmbeddingCache, ModelRef
    from medenc.evaluation.scoring import bootstrap_all, score_models
    from medenc.evaluation.sets import default_loader, load_set, select_sets
    from medenc.evaluation.suite import DEFAULT_MAX_SEQ_LENGTHS

    model_dir, exports = Path(model_dir), Path(exports)
    sets = {name: load_set(loader or default_loader(), name) for name in select_sets(None)}
    fp32_hash = model_hash(model_dir)
    refs = [
        ModelRef(
            "base",
            model_dir,
            sha256_file(model_dir / WEIGHTS_FILE),
            lambda: torch_encoder(model_dir),
            fp32_hash,
        )
    ]
    variants = variant_encoders(model_dir, exports, isa)
    for name in SUITE_VARIANTS:
        rel, load = variants[name]
        file = exports / rel
        digest = sha256_file(file)
        if rel in _WEIGHTS_BESIDE:
            weights = sha256_file(exports / _WEIGHTS_BESIDE[rel])
            digest = hashlib.sha256(f"{digest}:{weights}".encode()).hexdigest()
        # The cache's model id; "v2": vectors cached before the encoder truncated at the suite's lengths
        # were encoded at 256 tokens throughout, and must not be served.
        key = hashlib.sha256(f"v2:{fp32_hash}:{file.name}:{digest}".encode()).hexdigest()
        refs.append(ModelRef(name, file, digest, load, key))
    t0 = time.perf_counter()
    scores = score_models(refs, sets, EmbeddingCache(cache_root), DEFAULT_MAX_SEQ_LENGTHS, "fp32")
    results, deltas = bootstrap_all(refs, sets, scores.raw, bootstrap, seed)
    results["pytorch_fp32"] = results.pop("base")
    return {
        "reference": "pytorch_fp32",
        "bootstrap": {"resamples": bootstrap, "seed": seed, "level": 0.95, "method": "percentile, paired"},
        "results": results,
        "deltas": deltas,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def measure_model(
    model_dir: Path, exports: Path, *, loader=None, sample: int = DEFAULT_SAMPLE, suite: bool = True,
    bootstrap: int = 1000,
) -> dict:  # fmt: skip
    """The ``exports`` block of results.json for the exports of ``model_dir`` (docs/results_schema.md)."""
    from medenc.core.environment import hardware

    manifest = json.loads((Path(exports) / EXPORTS_MANIFEST).read_text(encoding="utf-8"))
    short, passage = suite_texts(loader)
    texts = mixed_sample(short, passage, sample)
    block: dict[str, Any] = {
        "model_hash": manifest["model_hash"],
        "isa": manifest["isa"],
        "sample": len(texts),
        "sample_seed": SAMPLE_SEED,
        "batch_size": BATCH_SIZE,
        "max_seq_length": INFERENCE_MAX_SEQ_LENGTH,
        "hardware": hardware("cpu"),
        "versions": manifest.get("versions", {}),
        "variants": measure_variants(model_dir, exports, texts, manifest["isa"]),
    }
    if suite:
        block["suite"] = suite_figures(model_dir, exports, manifest["isa"], loader, bootstrap)
    return block


def measure_run(run_dir: Path, *, loader=None, sample: int = DEFAULT_SAMPLE, suite: bool = True,
                bootstrap: int = 1000, rebuild: bool = False) -> dict:  # fmt: skip
    """Build (or verify) the run's exports, measure them, and record the figures in its results.json."""
    from medenc.core.lock import run_lock
    from medenc.evaluation.results import check_results_hash, write_results

    run_dir = Path(run_dir)
    with run_lock(run_dir, "export measurement"):
        check_results_hash(run_dir)  # never build on a results.json that was changed by hand
        exports = ensure_exports_unlocked(run_dir, rebuild=rebuild)
        block = measure_model(
            run_dir / FINAL_DIR, exports, loader=loader, sample=sample, suite=suite, bootstrap=bootstrap
        )
        path = run_dir / EVAL_DIR / RESULTS_FILE
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["exports"] = block
        write_results(path.parent, doc)
    return block

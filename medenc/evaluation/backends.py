"""The evaluation's backend: how each model's texts are encoded, chosen by measurement on the machine at hand.

Encoding is the whole cost of evaluation on a CPU, and which runtime is fastest depends on the CPU itself
(bf16 ran 4x faster than fp32 on one 2-core machine and slower on another), so it is measured, never inferred
from CPU flags. The candidates:

- ``torch-fp32``: PyTorch in fp32, the reference every other backend is held against;
- ``torch-bf16``: PyTorch under bfloat16 autocast;
- ``openvino``: the OpenVINO graph of the model (``medenc.core.runtime``, the release's own export path) at
  OpenVINO's default precision for this CPU (bf16 where the CPU has bf16 units);
- ``onnx``: the ONNX graph under ONNX Runtime, fp32.

``auto`` (what ``make evaluate`` uses) encodes the same sample of the suite's texts with each candidate and
takes the fastest whose embeddings agree with ``torch-fp32``: the largest cosine distance between a text's
two embeddings at most ``MAX_COSINE_DISTANCE``. The sample is whole batches of the suite as the encoder forms
them (texts sorted by length, so padding is as in the real run), both length caps. The measurement is kept
per machine and library versions in the cache (``backend_choice.json``), so it is paid once; the choice, the
speeds and the agreement go into results.json. docs/evaluation.md holds the whole-suite proof that the
figures of the chosen backend agree with fp32's.

Graphs are converted once per model (``model_hash``) and runtime version, under the cache's ``graphs/``,
written beside their target and renamed into place, so a kill never leaves a half graph.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medenc.core.errors import EvaluationError
from medenc.core.io import write_json
from medenc.core.paths import cache_dir
from medenc.evaluation.cache import EmbeddingCache, ModelRef

log = logging.getLogger(__name__)

REFERENCE = "torch-fp32"
AUTO = "auto"
# Largest cosine distance from fp32 for a backend to be chosen: fp32 arithmetic in another runtime, not a
# lower precision. Measured on the base model over the whole suite (docs/evaluation.md): OpenVINO at fp32
# (1e-7) left every figure of the suite equal to fp32's; OpenVINO at bf16 (3e-4) ran 1.9x faster still but
# moved MEDEC's accuracy by one item (0.0032) and MTS-Dialog's nDCG@10 by 0.0020, beyond the 0.002 a published
# figure may move; PyTorch's bf16 autocast measured 7e-5.
MAX_COSINE_DISTANCE = 1e-5
# Every 48th batch of the suite, per length cap: the same mix of lengths as the whole (most batches hold short
# names, a few 256-token abstracts cost the most), so the sample's time ranks backends as the suite's would;
# six random batches did not (one run ranked ONNX Runtime above OpenVINO, slower on the whole suite).
SAMPLE_EVERY = 48
BATCH_SIZE = 32
SAMPLE_SEED = 12345
# A close contest is settled on a larger sample. Agreeing backends within CONTEST_MARGIN of the fastest on the
# first sample are timed again on every CONTEST_EVERY-th batch (four times as many texts, other batches) and
# the fastest there wins. On the 2-core AMD EPYC, OpenVINO fp32 and ONNX Runtime came within 10% on the first
# sample and were ranked either way on two days (60.6 vs 54.9 texts/s, then 65.8 vs 66.4), while over the
# whole suite ONNX Runtime took 675-742 s a model and OpenVINO fp32 558-574 s (results/cpu/README.md).
CONTEST_MARGIN = 0.15
CONTEST_EVERY = 12
CHOICE_FILE = "backend_choice.json"
CHOICE_FORMAT = 2  # bump when the sample or the rule changes (2: the contest)


@dataclass(frozen=True)
class Backend:
    """One way of encoding: its runtime and what distinguishes its vectors (``cache_tag``)."""

    name: str
    runtime: str  # torch, openvino, onnxruntime
    bf16: bool = False
    precision_hint: str | None = None  # OpenVINO's inference precision (None: its default for the CPU)

    def cache_tag(self) -> str:
        """The embedding cache's precision field: PyTorch keeps its old tags (``fp32``, ``bf16``), so vectors
        cached before backends existed are still served; a graph's tag names its runtime's version."""
        if self.runtime == "torch":
            return "bf16" if self.bf16 else "fp32"
        return f"{self.name}:{_version(self.runtime)}:torch-{_version('torch')}"


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("torch-fp32", "torch"),
        Backend("torch-bf16", "torch", bf16=True),
        Backend("openvino-fp32", "openvino", precision_hint="f32"),
        Backend("openvino", "openvino"),
        Backend("onnx", "onnxruntime"),
    )
}
CHOICES = (AUTO, *BACKENDS)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def check_backend(name: str) -> Backend | None:
    """The backend named ``name`` (None for ``auto``), else ConfigError listing the choices."""
    if name == AUTO:
        return None
    if name not in BACKENDS:
        raise EvaluationError(f"--backend {name!r}: expected one of {', '.join(CHOICES)}")
    return BACKENDS[name]


def candidates(device: str) -> list[str]:
    """The backends ``auto`` measures on ``device``: the graph runtimes only on a CPU, and only installed."""
    names = ["torch-fp32", "torch-bf16"]
    if not device.startswith("cuda"):
        names += [
            n for n in ("openvino-fp32", "openvino", "onnx") if _version(BACKENDS[n].runtime) != "absent"
        ]
    return names


# --- encoders -----------------------------------------------------------------------------------------------


class TorchEncoder:
    """A SentenceTransformer whose ``encode`` runs under inference mode, and bf16 autocast when asked."""

    def __init__(self, model, bf16: bool):
        self.model, self.bf16 = model, bf16
        self.device = model.device
        self.precision = "bf16" if bf16 else "fp32"

    @property
    def max_seq_length(self) -> int:
        return self.model.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.model.max_seq_length = value

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text at the current length cap (``encode_texts`` sorts by them)."""
        from medenc.core.modeling import token_lengths

        return token_lengths(self.model, texts)

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """``SentenceTransformer.encode``, as numpy fp32."""
        import torch

        device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
        autocast = (
            torch.autocast(device_type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            emb = self.model.encode(list(texts), **{**kwargs, "convert_to_numpy": True})
        return np.asarray(emb, dtype=np.float32)


def graph_dir(model_dir: Path, model_id: str, backend: Backend, root: Path | None = None) -> Path:
    """The converted graph of ``model_dir`` for ``backend``: built once per model id and runtime version."""
    from medenc.core import runtime

    # One graph per runtime (the precision is chosen when it is compiled, not converted).
    tag = hashlib.sha256(f"{model_id}|{backend.runtime}|{_version(backend.runtime)}".encode()).hexdigest()[
        :24
    ]
    target = (root or cache_dir() / "graphs") / tag
    graph = target / ("model.onnx" if backend.runtime == "onnxruntime" else "openvino_model.xml")
    if graph.is_file():
        return graph
    runtime.check_mean_pooling(model_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{tag}.tmp-"))
    try:
        log.info("Converting %s to a %s graph (once per model)", model_dir, backend.runtime)
        convert = runtime.export_onnx if backend.runtime == "onnxruntime" else runtime.export_openvino
        convert(Path(model_dir), tmp / graph.name)
        shutil.rmtree(target, ignore_errors=True)  # a half folder left by a kill before the rename
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return graph


def load_encoder(
    backend: Backend,
    model_dir: Path,
    model_id: str,
    device: str | None,
    st_load: Callable[[], object],
    graph_root: Path | None = None,
):
    """An encoder of ``model_dir`` under ``backend``; ``st_load`` loads the SentenceTransformer (PyTorch)."""
    from medenc.core import runtime

    if backend.runtime == "torch":
        return TorchEncoder(st_load(), backend.bf16)
    graph = graph_dir(model_dir, model_id, backend, graph_root)
    if backend.runtime == "onnxruntime":
        return runtime.onnx_encoder(graph, model_dir)
    return runtime.openvino_encoder(graph, model_dir, precision=backend.precision_hint, throughput=True)


# --- the measurement ----------------------------------------------------------------------------------------


def sample_batches(texts: Sequence[str], every: int = SAMPLE_EVERY, seed: int = SAMPLE_SEED) -> list[str]:
    """Every ``every``-th batch of ``texts`` as the suite's encoder forms them (sorted longest first, cut
    every ``BATCH_SIZE``), from a seeded offset: each batch pads as in the real run, and the batches follow
    the suite's mix of lengths. At least one batch."""
    ordered = sorted(dict.fromkeys(texts), key=lambda t: -len(t))
    slots = list(range(0, len(ordered), BATCH_SIZE))
    if not slots:
        return []
    offset = int(np.random.default_rng(seed).integers(every)) % len(slots)
    return [t for start in slots[offset::every] for t in ordered[start : start + BATCH_SIZE]]


def _timed(encoder, batches: Mapping[int, list[str]]) -> tuple[dict[int, np.ndarray], float]:
    """Embeddings per length cap and the seconds they took; one batch first, untimed (setup, compiling)."""
    out, seconds = {}, 0.0
    for cap, texts in batches.items():
        encoder.max_seq_length = cap
        encoder.encode(texts[:BATCH_SIZE], batch_size=BATCH_SIZE, show_progress_bar=False)
        t0 = time.perf_counter()
        out[cap] = np.asarray(
            encoder.encode(texts, batch_size=BATCH_SIZE, show_progress_bar=False), np.float32
        )
        seconds += time.perf_counter() - t0
    return out, seconds


def max_cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest cosine distance between the rows of ``a`` and ``b``."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.max(1.0 - np.sum(a * b, axis=1)))


def measure(
    load: Callable[[Backend], object], batches: Mapping[int, list[str]], names: Sequence[str]
) -> dict[str, dict]:
    """Each backend of ``names`` (the reference first) on the same texts: texts/s, seconds, agreement."""
    out: dict[str, dict] = {}
    ref: dict[int, np.ndarray] | None = None
    n = sum(len(t) for t in batches.values())
    for name in [REFERENCE, *(x for x in names if x != REFERENCE)]:
        encoder = load(BACKENDS[name])
        emb, seconds = _timed(encoder, batches)
        ref = ref if ref is not None else emb
        dist = max(max_cosine_distance(emb[c], ref[c]) for c in batches)
        out[name] = {
            "texts_per_s": round(n / seconds, 2),
            "seconds": round(seconds, 3),
            "max_cosine_distance": dist,
            "agrees": dist <= MAX_COSINE_DISTANCE,
            "precision": getattr(encoder, "precision", None),
        }
        log.info("backend %s: %.1f texts/s, max cosine distance %.1e", name, n / seconds, dist)
        del encoder
    return out


def contested(measured: Mapping[str, dict]) -> list[str]:
    """The agreeing backends within ``CONTEST_MARGIN`` of the fastest agreeing one; one alone: no contest."""
    agreeing = {n: m["texts_per_s"] for n, m in measured.items() if m["agrees"]}
    best = max(agreeing.values())
    close = [n for n, speed in agreeing.items() if speed >= (1 - CONTEST_MARGIN) * best]
    return close if len(close) > 1 else []


def run_contest(
    load: Callable[[Backend], object], batches: Mapping[int, list[str]], names: Sequence[str]
) -> dict[str, float]:
    """Texts/s of each of ``names`` on the contest's larger sample."""
    n = sum(len(t) for t in batches.values())
    speeds = {}
    for name in names:
        encoder = load(BACKENDS[name])
        _, seconds = _timed(encoder, batches)
        speeds[name] = round(n / seconds, 2)
        log.info("backend %s: %.1f texts/s on the contest's %d texts", name, n / seconds, n)
        del encoder
    return speeds


def choose(measured: Mapping[str, dict]) -> str:
    """The fastest backend that agrees with the reference (the reference itself always does); where a
    contest ran, the fastest on its larger sample."""
    agreeing = [n for n, m in measured.items() if m["agrees"]]
    contest = [n for n in agreeing if "contest_texts_per_s" in measured[n]]
    if contest:
        return max(contest, key=lambda n: measured[n]["contest_texts_per_s"])
    return max(agreeing, key=lambda n: measured[n]["texts_per_s"])


def _machine_key(device: str, names: Sequence[str], model_id: str, sample: Mapping[int, list[str]]) -> str:
    """What a measurement depends on: the machine, the libraries, the candidates, the model and the sample."""
    import torch

    from medenc.core.environment import cpu_flags, device_name

    texts = hashlib.sha256("\x00".join(t for c in sorted(sample) for t in sample[c]).encode()).hexdigest()
    raw = json.dumps(
        {
            "format": CHOICE_FORMAT,
            "device": device_name(device),
            "flags": sorted(cpu_flags()[1]),
            "threads": torch.get_num_threads(),
            "versions": {
                p: _version(p) for p in ("torch", "openvino", "onnxruntime", "sentence-transformers")
            },
            "candidates": list(names),
            "tolerance": MAX_COSINE_DISTANCE,
            "model": model_id,
            "sample": texts,
        },
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def select_backend(
    requested: str,
    *,
    device: str,
    load: Callable[[Backend], object],
    texts: Mapping[int, Sequence[str]],
    model_id: str,
    remeasure: bool = False,
    cache_file: Path | None = None,
) -> dict:
    """results.json's backend record: ``requested``, ``used``, ``why`` and, for ``auto``, the measurement.

    ``texts``: the suite's texts per length cap; ``load`` builds an encoder of the measured model (the base
    model) for a backend. A measurement kept for this machine, libraries, model and sample is reused unless
    ``remeasure``.
    """
    backend = check_backend(requested)
    if backend is not None:
        return {
            "requested": requested,
            "used": backend.name,
            "why": "asked for (--backend)",
            "measured": None,
        }
    names = candidates(device)
    batches = {cap: sample_batches(t) for cap, t in texts.items()}
    key = _machine_key(device, names, model_id, batches)
    path = cache_file or cache_dir() / CHOICE_FILE
    measured = None if remeasure else _read_choice(path, key)
    reused = measured is not None
    if measured is None:
        measured = measure(load, batches, names)
        if close := contested(measured):
            big = {cap: sample_batches(t, CONTEST_EVERY, SAMPLE_SEED + 1) for cap, t in texts.items()}
            for name, speed in run_contest(load, big, close).items():
                measured[name]["contest_texts_per_s"] = speed
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"key": key, "measured": measured})
    used = choose(measured)
    why = _why(names, measured, sum(len(b) for b in batches.values()), reused)
    log.info("Evaluation backend: %s (%s)", used, why)
    return {
        "requested": AUTO,
        "used": used,
        "why": why,
        "reused_measurement": reused,
        "tolerance": MAX_COSINE_DISTANCE,
        "sample": {str(c): len(b) for c, b in batches.items()},
        "measured": measured,
    }


def _why(names: Sequence[str], measured: Mapping[str, dict], sample: int, reused: bool) -> str:
    """results.json's ``why`` of an ``auto`` choice."""
    close = [n for n, m in measured.items() if "contest_texts_per_s" in m]
    contest = f"; {' and '.join(close)} within {CONTEST_MARGIN:.0%} there, timed again on a larger sample"
    return (
        f"fastest of {', '.join(names)} agreeing with {REFERENCE} (largest cosine distance <= "
        f"{MAX_COSINE_DISTANCE:g}) on {sample} of the suite's texts"
        + (contest if close else "")
        + (", measured on this machine earlier (--remeasure-backend to redo)" if reused else "")
    )


def _read_choice(path: Path, key: str) -> dict | None:
    """The measurement kept in ``path`` for ``key``; None when absent, unreadable or for another key."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != key or not isinstance(kept.get("measured"), dict):
        return None
    return kept["measured"]


def check_models_agree(
    refs: Sequence[ModelRef],
    references: Sequence[ModelRef],
    cache: EmbeddingCache,
    texts: Mapping[int, Sequence[str]],
    tag: str,
) -> dict[str, float]:
    """Each model of ``refs`` (bound to the chosen backend, cache tag ``tag``) against itself in fp32
    (``references``) on one batch per length cap: the largest cosine distance per model.

    The choice was measured on the base model; this holds every scored model to the same tolerance before
    its figures count, at the cost of one batch per cap (cached like any vectors, so a rerun pays nothing).
    Raises EvaluationError, naming the model and the fix, when one disagrees.
    """
    sample = {cap: sample_batches(t, every=len(t) + 1) for cap, t in texts.items()}  # one batch each
    out: dict[str, float] = {}
    for ref, ref_fp32 in zip(refs, references, strict=True):
        dist = 0.0
        for cap, batch in sample.items():
            got, _ = cache.get(ref, batch, cap, tag)
            want, _ = cache.get(ref_fp32, batch, cap, BACKENDS[REFERENCE].cache_tag())
            dist = max(dist, max_cosine_distance(got, want))
        ref_fp32.release()
        out[ref.name] = dist
        if dist > MAX_COSINE_DISTANCE:
            raise EvaluationError(
                f"{ref.path}: its vectors under the chosen backend are {dist:.1e} (cosine distance) from its "
                f"fp32 vectors, beyond {MAX_COSINE_DISTANCE:g}; evaluate with --backend {REFERENCE}"
            )
    return out

"""Score the base model and every phase checkpoint of a run on the held-out medical suite.

Flow: find the checkpoints (``models``) -> load the test sets through an injectable loader (``sets``) -> per
model and set, get the embeddings from the cache (encoding only on a miss), point estimates from the
sentence-transformers evaluators fed by a ``CachedEncoder``, per-item values from the same embeddings
(``scoring``) -> percentile bootstrap, paired: the same resampled items for every model of a set -> the
results document, written as results.json, results.md (``results``) and charts.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medenc.core import layout
from medenc.core.environment import PACKAGES, hardware, versions
from medenc.core.io import write_json
from medenc.core.runs import RunRecord, read_run_record
from medenc.evaluation.backends import (
    BACKENDS,
    CHOICE_FILE,
    REFERENCE,
    check_backend,
    check_models_agree,
    load_encoder,
    select_backend,
)
from medenc.evaluation.cache import EmbeddingCache, ModelRef
from medenc.evaluation.charts import write_charts
from medenc.evaluation.dimensions import DEFAULT_DIMENSIONS, dimension_results
from medenc.evaluation.models import find_models, use_backend
from medenc.evaluation.results import (
    EMBEDDING_CACHE_RECORD,
    RESULTS_MD,
    RUN_RECORD,
    SCHEMA_VERSION,
    Results,
    eval_dir,
    load_results,
    released_model,
    results_markdown,
    write_results,
)
from medenc.evaluation.scoring import AGREEMENT_TOL, SuiteScores, bootstrap_all, score_models, score_set
from medenc.evaluation.sets import (
    SETS,
    EvalSet,
    SetLoader,
    default_loader,
    load_set,
    select_sets,
    unique_texts,
)

log = logging.getLogger(__name__)

# Kept importable from here, where they lived before the split into modules.
__all__ = ["SETS", "EvalSet", "load_results", "run_evaluation", "score_set"]

# Short texts (STS sentences, RQE questions, retrieval queries, triplets) rarely exceed 128 word pieces;
# passages (retrieval corpora: MedQuAD answers, PubMedQA abstracts) are capped at 256, which keeps the
# suite inside its CPU budget (attention cost grows with length) while covering most of each passage.
DEFAULT_MAX_SEQ_LENGTHS = {"short": 128, "passage": layout.INFERENCE_MAX_SEQ_LENGTH}
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 12345


@dataclass(frozen=True)
class _Settings:
    """How a suite is scored; recorded in results.json."""

    bootstrap: int
    seed: int
    max_seq_lengths: dict[str, int]
    backend: str  # requested: a name of backends.BACKENDS, or auto
    remeasure_backend: bool
    device: str
    use_cache: bool
    dimensions: tuple[int, ...]  # smaller widths the final and base models are also scored at


def _environment(precision: str, device: str) -> dict:
    """Library versions (the graph runtimes too), Python and hardware the figures were measured with."""
    return {
        "versions": versions((*PACKAGES, "matplotlib", "openvino", "onnxruntime")),
        "python": platform.python_version(),
        "hardware": hardware(device),
        "precision": precision,
    }


@dataclass
class _Inputs:
    """What a suite scores: the models (refs and their record) and the test sets, with the data provenance."""

    run_dir: Path
    refs: list[ModelRef]
    models: dict[str, dict]
    record: RunRecord | None  # the run's run.json, None without one
    manifest: str
    sets: dict[str, EvalSet]
    backend: dict = field(default_factory=dict)  # results.json's backend record (backends.select_backend)
    texts: dict[int, list[str]] = field(default_factory=dict)  # the suite's distinct texts per length cap
    references: list[ModelRef] = field(default_factory=list)  # the models in PyTorch fp32


def _warn_on_manifest_change(run_dir: Path, record: RunRecord | None, manifest: str) -> None:
    """Scoring on other data than the run trained on is allowed (a newer test set), but said."""
    trained_on = record.data_manifest_sha256 if record else None
    if trained_on not in (None, manifest):
        log.warning(
            "%s was trained on data manifest %s; the test sets now come from %s",
            run_dir,
            trained_on,
            manifest,
        )


def _resolve_inputs(
    run_dir: Path, loader: SetLoader, names: list[str], base_path: Path | None, device: str
) -> _Inputs:
    """The models, then the sets: everything that can be refused is refused before any encoding."""
    refs, models = find_models(run_dir, base_path, device)
    record = read_run_record(run_dir, required=False)
    manifest = loader.manifest_hash()
    _warn_on_manifest_change(run_dir, record, manifest)
    sets = {name: load_set(loader, name) for name in names}
    return _Inputs(run_dir, refs, models, record, manifest, sets)


def _choose_backend(inputs: _Inputs, cfg: _Settings, root: Path | None) -> None:
    """Pick the backend (measured on the base model with ``auto``) and bind every model to it; ``root``: where
    graphs and the measurement are kept (default: medenc's cache)."""
    base, graphs, t0 = inputs.refs[0], root / "graphs" if root else None, time.perf_counter()
    texts = {
        cfg.max_seq_lengths[kind]: unique_texts(t for es in inputs.sets.values() for t in getattr(es, attr))
        for kind, attr in (("short", "short_texts"), ("passage", "passage_texts"))
    }
    inputs.texts = {cap: t for cap, t in texts.items() if t}
    inputs.backend = select_backend(
        cfg.backend,
        device=cfg.device,
        load=lambda b: load_encoder(b, base.path, base.model_hash, cfg.device, base.load, graphs),
        texts=inputs.texts,
        model_id=base.model_hash,
        remeasure=cfg.remeasure_backend,
        cache_file=root / CHOICE_FILE if root else None,
    )
    inputs.backend["seconds"] = round(time.perf_counter() - t0, 1)  # the measurement, when one ran
    inputs.references = inputs.refs
    inputs.refs = use_backend(inputs.refs, BACKENDS[inputs.backend["used"]], cfg.device, graphs)


def _check_agreement(inputs: _Inputs, cache: EmbeddingCache) -> str:
    """Hold every model, not only the one measured, to the backend's tolerance; return its cache tag."""
    tag = BACKENDS[inputs.backend["used"]].cache_tag()
    if inputs.backend["used"] != REFERENCE:
        t0 = time.perf_counter()
        checked = check_models_agree(inputs.refs, inputs.references, cache, inputs.texts, tag)
        inputs.backend.update(checked=checked, check_seconds=round(time.perf_counter() - t0, 1))
    return tag


def _compared_models(inputs: _Inputs) -> list[str]:
    """The base model and the one released (``results.released_model``)."""
    final = inputs.models.get("final", {}).get("from")  # the models block this evaluation is about to write
    return ["base", released_model(final, [r.name for r in inputs.refs])]


def _results_doc(
    inputs: _Inputs, scores: SuiteScores, cfg: _Settings, cache: EmbeddingCache, timing: dict[str, Any]
) -> dict:
    """The results document (docs/results_schema.md); its key order is the order of results.json."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run": inputs.run_dir.name,
        "data_manifest_sha256": inputs.manifest,
        "run_data_manifest_sha256": inputs.record.data_manifest_sha256 if inputs.record else None,
        "models": inputs.models,
        "sets": {
            name: {"task": es.task, "n": es.n, "metrics": list(SETS[name].metrics), "title": SETS[name].title}
            for name, es in inputs.sets.items()
        },
        "results": scores.results,
        "deltas": scores.deltas,
        # What the released model still gets wrong, a few items per set (the card's "still bad at").
        "examples": {
            "model": _compared_models(inputs)[1],
            "sets": {n: scores.raw[_compared_models(inputs)[1]][n]["examples"] for n in inputs.sets},
        },
        **({"dimensions": scores.dimensions} if scores.dimensions else {}),
        "bootstrap": {
            "resamples": cfg.bootstrap,
            "seed": cfg.seed,
            "level": 0.95,
            "method": "percentile, paired",
        },
        "max_seq_lengths": cfg.max_seq_lengths,
        "precision": _precision(inputs.backend),
        "backend": inputs.backend,
        "environment": _environment(_precision(inputs.backend), cfg.device),
        "checks": {"st_agreement_max_abs_diff": scores.checks, "tolerance": AGREEMENT_TOL},
        "cache": {
            "enabled": cfg.use_cache,
            "hits": cache.hits,
            "misses": cache.misses,
        },
        "timing": timing,
    }


def _precision(backend: dict) -> str:
    """What the vectors were computed in: ``fp32`` / ``bf16`` (PyTorch), else the runtime and precision."""
    used = backend["used"]
    if used.startswith("torch-"):
        return used.removeprefix("torch-")
    measured = (backend.get("measured") or {}).get(used) or {}
    return f"{used} ({measured['precision']})" if measured.get("precision") else used


def _save_run_record(out_dir: Path, results: Results) -> None:
    """A flat record of the headline figures via ``evaluate.save``.

    ``evaluate.load`` needs the Hub, so no metric loaders are used; ``evaluate.save`` works offline (it only
    writes JSON and adds the timestamp, git commit, Python and evaluate versions), which makes it a cheap,
    standard provenance record next to results.json.
    """
    try:
        import evaluate
    except ImportError:  # provenance is a convenience; results.json holds everything
        return
    figures = results.figures
    flat = {
        f"{model}/{s}/{m}": figures.cell(model, s, m).value
        for model in figures.models
        for s, metrics in figures.metrics(model).items()
        for m in metrics
    }
    evaluate.save(
        str(out_dir / RUN_RECORD), run=results.run, data_manifest_sha256=results.data_manifest, **flat
    )


def _write_outputs(doc: dict, scores: SuiteScores, run_dir: Path, out_dir: Path, charts: bool) -> Results:
    """results.json, results.md, the cache record, the charts (listed in results.json) and the run record;
    returns the document as every reader reads it."""
    results = Results.from_doc(doc, out_dir / layout.RESULTS_FILE)  # checked before anything is written
    write_results(out_dir, doc)
    (out_dir / RESULTS_MD).write_text(results_markdown(results), encoding="utf-8")
    write_json(out_dir / EMBEDDING_CACHE_RECORD, scores.cache_record)
    if charts:
        doc["charts"] = [p.name for p in write_charts(results, run_dir, out_dir)]
        write_results(out_dir, doc)
    _save_run_record(out_dir, results)
    return results


def _settings(
    bootstrap: int,
    seed: int,
    max_seq_lengths: dict[str, int] | None,
    backend: str,
    device: str | None,
    use_cache: bool,
    dimensions: Sequence[int] | None = DEFAULT_DIMENSIONS,
    remeasure_backend: bool = False,
) -> _Settings:
    """Defaults filled in: the device (CUDA when there is one) and the length caps."""
    import torch

    return _Settings(
        bootstrap=bootstrap,
        seed=seed,
        max_seq_lengths={**DEFAULT_MAX_SEQ_LENGTHS, **(max_seq_lengths or {})},
        backend=backend,
        remeasure_backend=remeasure_backend,
        device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
        use_cache=use_cache,
        dimensions=tuple(dimensions or ()),
    )


def run_evaluation(
    run_dir: Path,
    *,
    loader: SetLoader | None = None,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    use_cache: bool = True,
    sets: Sequence[str] | None = None,
    output_dir: Path | None = None,
    base_path: Path | None = None,
    backend: str = REFERENCE,
    remeasure_backend: bool = False,
    max_seq_lengths: dict[str, int] | None = None,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    cache_root: Path | None = None,
    charts: bool = True,
    dimensions: Sequence[int] | None = DEFAULT_DIMENSIONS,
) -> Results:
    """Score base + every phase of ``run_dir``; write results.json, results.md and charts; return the results.

    ``loader`` provides ``load_split``, ``load_retrieval`` and ``manifest_hash`` (default: ``medenc.data``).
    ``base_path`` replaces the real base model (tests use a tiny one). ``backend``: how texts are encoded, a
    name of ``backends.BACKENDS`` or ``auto`` (measured on this machine, the fastest that agrees with fp32;
    ``make evaluate``'s default); ``remeasure_backend`` ignores a measurement kept from an earlier run.
    ``dimensions``: the smaller widths the final and base models are also scored at (None or () for none).
    """
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    cfg = _settings(
        bootstrap, seed, max_seq_lengths, backend, device, use_cache, dimensions, remeasure_backend
    )
    check_backend(cfg.backend)  # a typo is refused before anything is loaded
    out_dir = eval_dir(run_dir, output_dir)
    names = select_sets(sets)
    inputs = _resolve_inputs(run_dir, loader or default_loader(), names, base_path, cfg.device)
    _choose_backend(inputs, cfg, Path(cache_root) if cache_root else None)

    cache = EmbeddingCache(cache_root, enabled=use_cache)
    compared = _compared_models(inputs) if cfg.dimensions else []
    tag = _check_agreement(inputs, cache)
    scores = score_models(inputs.refs, inputs.sets, cache, cfg.max_seq_lengths, tag, compared)
    t_boot = time.perf_counter()
    scores.results, scores.deltas = bootstrap_all(
        inputs.refs, inputs.sets, scores.raw, cfg.bootstrap, cfg.seed
    )
    timing: dict[str, Any] = {"models": scores.timing, "bootstrap_s": round(time.perf_counter() - t_boot, 3)}
    t_dims = time.perf_counter()
    scores.dimensions = dimension_results(
        scores, compared, inputs.sets, cfg.dimensions, cfg.bootstrap, cfg.seed
    )
    timing["dimensions_s"] = round(time.perf_counter() - t_dims, 3)

    doc = _results_doc(inputs, scores, cfg, cache, timing)
    out_dir.mkdir(parents=True, exist_ok=True)
    timing["total_s"] = round(time.perf_counter() - t_start, 3)  # measured before writing, as before charts
    return _write_outputs(doc, scores, run_dir, out_dir, charts)

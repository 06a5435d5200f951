"""Score the base model and every phase checkpoint of a run on the held-out medical suite.

Flow: find the checkpoints -> load the test sets (through an injectable loader) -> per model and set, get
the embeddings from the cache (encoding only on a miss) -> point estimates from the sentence-transformers
evaluators fed by a ``CachedEncoder`` -> per-item values from the same embeddings -> percentile bootstrap
(paired: the same resampled items for every model of a set) -> results.json, results.md, charts.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medenc.core import layout
from medenc.core.base_model import BASE_MODEL_ID, sha256_file
from medenc.core.environment import PACKAGES, hardware, versions
from medenc.core.errors import DataError, ModelError, RunError
from medenc.evaluation import metrics as M
from medenc.evaluation.cache import CachedEncoder, EmbeddingCache, ModelRef

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RUN_RECORD = "run_record.json"
# Short texts (STS sentences, RQE questions, retrieval queries, triplets) rarely exceed 128 word pieces;
# passages (retrieval corpora: MedQuAD answers, PubMedQA abstracts) are capped at 256, which keeps the
# suite inside its CPU budget (attention cost grows with length) while covering most of each passage.
DEFAULT_MAX_SEQ_LENGTHS = {"short": 128, "passage": layout.INFERENCE_MAX_SEQ_LENGTH}
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 12345
AGREEMENT_TOL = 1e-6  # per-item aggregate vs ST evaluator figure

# name -> (task, metrics, title). The order here is the order of tables and charts.
SETS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "biosses": ("sts", ("spearman",), "BIOSSES"),
    "stsb": ("sts", ("spearman",), "STS-B"),
    "rqe": ("pair_classification", ("ap",), "RQE"),
    "medquad": ("retrieval", M.RETRIEVAL_METRICS, "MedQuAD"),
    "pubmedqa": ("retrieval", M.RETRIEVAL_METRICS, "PubMedQA"),
    "terms": ("retrieval", M.RETRIEVAL_METRICS, "Medical terms"),
    "triplets": ("triplets", ("accuracy",), "Medical triplets"),
}
REQUIRED_CHECKPOINT_FILES = ("modules.json", "config.json", "model.safetensors")


# --- data -----------------------------------------------------------------------------------------


@dataclass
class EvalSet:
    """One test set, reduced to what scoring needs: the texts to encode per role, and the task's fields."""

    name: str
    task: str
    n: int
    short_texts: list[str]
    passage_texts: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def _unique(texts: Iterable[str]) -> list[str]:
    """Distinct texts in first-seen order (deterministic, so the cache key is stable)."""
    return list(dict.fromkeys(texts))


def _columns(ds, name: str, needed: Sequence[str]) -> dict[str, list]:
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise DataError(f"test/{name}", None, f"columns {list(needed)}", f"columns {ds.column_names}")
    if len(ds) == 0:
        raise DataError(f"test/{name}", None, "at least one row", "an empty set")
    return {c: list(ds[c]) for c in needed}


def load_set(loader, name: str) -> EvalSet:
    """Build an EvalSet from the loader (``medenc.data`` or a test double with the same functions)."""
    if name not in SETS:
        raise DataError(f"test/{name}", None, f"one of {list(SETS)}", repr(name))
    task = SETS[name][0]
    if task in ("sts", "pair_classification"):
        target = "score" if task == "sts" else "label"
        cols = _columns(loader.load_split("test", name), name, ("sentence1", "sentence2", target))
        s1, s2 = [str(s) for s in cols["sentence1"]], [str(s) for s in cols["sentence2"]]
        y = np.asarray(cols[target], dtype=float if task == "sts" else int)
        return EvalSet(name, task, len(s1), _unique(s1 + s2), data={"s1": s1, "s2": s2, "y": y})
    if task == "triplets":
        cols = _columns(loader.load_split("test", name), name, ("anchor", "positive", "negative"))
        a, p, n = (list(map(str, cols[c])) for c in ("anchor", "positive", "negative"))
        # Positives and negatives are MedQuAD answers: passages, as in retrieval (TripletEvaluator encodes
        # them as documents), so they share the retrieval corpus's embeddings.
        return EvalSet(name, task, len(a), _unique(a), _unique(p + n), data={"a": a, "p": p, "n": n})
    rs = loader.load_retrieval(name)
    # Like InformationRetrievalEvaluator: only queries with at least one relevant document are scored.
    qids = [q for q in rs.queries if rs.relevant.get(q)]
    if not qids:
        raise DataError(f"test/{name}_qrels", None, "at least one query with a relevant document", "none")
    corpus_ids = list(rs.corpus)
    unknown = {c for q in qids for c in rs.relevant[q]} - set(corpus_ids)
    if unknown:
        raise DataError(
            f"test/{name}_qrels", None, "corpus ids present in the corpus", f"unknown {sorted(unknown)[:5]}"
        )
    return EvalSet(
        name,
        task,
        len(qids),
        _unique(rs.queries[q] for q in qids),
        _unique(rs.corpus.values()),
        data={
            "queries": {q: rs.queries[q] for q in qids},
            "corpus": dict(rs.corpus),
            "relevant": {q: set(rs.relevant[q]) for q in qids},
        },
    )


def _default_loader():
    import medenc.data as data  # written by the data layer; imported late so tests need not have it

    return data


# --- models ---------------------------------------------------------------------------------------


def check_checkpoint(path: Path) -> None:
    """Refuse a folder that is not a complete sentence-transformers model."""
    if not path.is_dir():
        raise ModelError(f"{path}: expected a sentence-transformers model folder, found no such folder")
    missing = [f for f in REQUIRED_CHECKPOINT_FILES if not (path / f).is_file()]
    if missing:
        raise ModelError(
            f"{path}: expected a sentence-transformers model folder with "
            f"{', '.join(REQUIRED_CHECKPOINT_FILES)}; missing {', '.join(missing)}"
        )


def _st_loader(path: Path, device: str | None):
    def load():
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path), device=device)

    return load


def find_models(run_dir: Path, base_path: Path | None, device: str | None) -> tuple[list[ModelRef], dict]:
    """The base model and each existing phase folder, plus the record of ``final/``."""
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: expected a run folder written by `make train`, found no such folder")
    phases = [run_dir / d for d in layout.PHASE_DIRS.values() if (run_dir / d).exists()]
    if not phases:
        raise RunError(
            f"{run_dir}: expected at least one phase checkpoint folder "
            f"({', '.join(layout.PHASE_DIRS.values())}), found none. Run `make train` first."
        )
    for p in phases:
        check_checkpoint(p)
    refs: list[ModelRef] = []
    if base_path is None:
        from medenc.core.base_model import resolve_base_model
        from medenc.core.modeling import load_base

        base_path = resolve_base_model()
        base_load = lambda: load_base(device=device)  # noqa: E731 - the verified loader of the real model
    else:
        check_checkpoint(base_path)
        base_load = _st_loader(base_path, device)
    refs.append(ModelRef("base", base_path, sha256_file(base_path / "model.safetensors"), base_load))
    for p in phases:
        refs.append(ModelRef(p.name, p, sha256_file(p / "model.safetensors"), _st_loader(p, device)))

    info: dict[str, dict] = {"base": {"path": str(base_path), "sha256": refs[0].sha256, "phase": 0}}
    info["base"]["id"] = BASE_MODEL_ID
    phase_num = {v: k for k, v in layout.PHASE_DIRS.items()}
    for r in refs[1:]:
        info[r.name] = {"path": str(r.path), "sha256": r.sha256, "phase": phase_num[r.name]}
    final = run_dir / layout.FINAL_DIR
    run_json = _read_run_json(run_dir)
    if final.is_dir():
        # final/ is a copy of the last phase: record which one and its hash instead of encoding it again.
        src = (run_json.get("final") or {}).get("from") or phases[-1].name
        sha = sha256_file(final / "model.safetensors") if (final / "model.safetensors").is_file() else None
        info["final"] = {"from": src, "sha256": sha, "path": str(final)}
        if src in info and sha is not None and info[src]["sha256"] != sha:
            log.warning("%s differs from %s (sha256 %s vs %s)", final, src, sha, info[src]["sha256"])
            info["final"]["matches_from"] = False
        elif src in info:
            info["final"]["matches_from"] = True
    return refs, info


def _read_run_json(run_dir: Path) -> dict:
    path = run_dir / layout.RUN_INFO
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: expected JSON (docs/run_folder.md), found a parse error: {exc}") from exc


# --- scoring one model on one set -----------------------------------------------------------------


def _table(texts: list[str], emb: np.ndarray) -> dict[str, np.ndarray]:
    return dict(zip(texts, emb, strict=True))


def score_set(es: EvalSet, short: dict[str, np.ndarray], passage: dict[str, np.ndarray] | None) -> dict:
    """ST evaluator figures and the per-item payload for the bootstrap, from the same embeddings.

    Returns {"values": {metric: ST figure}, "stats": {metric: resample -> statistic}, "aggregate": {metric:
    per-item aggregate on all items}}.
    """
    from sentence_transformers.sentence_transformer.evaluation import (
        BinaryClassificationEvaluator,
        EmbeddingSimilarityEvaluator,
        InformationRetrievalEvaluator,
        TripletEvaluator,
    )

    enc = CachedEncoder(short, passage)
    d = es.data
    all_idx = np.arange(es.n)[None, :]
    if es.task in ("sts", "pair_classification"):
        e1 = np.stack([short[s] for s in d["s1"]])
        e2 = np.stack([short[s] for s in d["s2"]])
        cos = M.pairwise_cosine(e1, e2)
        if es.task == "sts":
            ev = EmbeddingSimilarityEvaluator(
                d["s1"], d["s2"], d["y"].tolist(), similarity_fn_names=["cosine"], write_csv=False
            )
            values = {"spearman": ev(enc)["spearman_cosine"]}
            stats = {"spearman": M.spearman_stat(d["y"], cos)}
        else:
            ev = BinaryClassificationEvaluator(
                d["s1"], d["s2"], d["y"].tolist(), similarity_fn_names=["cosine"], write_csv=False
            )
            values = {"ap": ev(enc)["cosine_ap"]}
            stats = {"ap": M.ap_stat(d["y"], cos)}
    elif es.task == "triplets":
        ea = np.stack([short[s] for s in d["a"]])
        ep, en = (np.stack([passage[s] for s in d[k]]) for k in ("p", "n"))
        correct = (M.pairwise_cosine(ea, ep) > M.pairwise_cosine(ea, en)).astype(float)
        ev = TripletEvaluator(d["a"], d["p"], d["n"], similarity_fn_names=["cosine"], write_csv=False)
        values = {"accuracy": ev(enc)["cosine_accuracy"]}
        stats = {"accuracy": M.mean_stat(correct)}
    else:
        qids, cids = list(d["queries"]), list(d["corpus"])
        ev = InformationRetrievalEvaluator(
            d["queries"],
            d["corpus"],
            d["relevant"],
            mrr_at_k=[10],
            ndcg_at_k=[10],
            accuracy_at_k=[1],
            precision_recall_at_k=[5],
            map_at_k=[10],
            write_csv=False,
        )
        out = ev(enc)
        values = {m: out[f"cosine_{m}"] for m in M.RETRIEVAL_METRICS}
        q_emb = np.stack([short[d["queries"][q]] for q in qids])
        c_emb = np.stack([passage[d["corpus"][c]] for c in cids])
        ranked = M.rank_corpus(q_emb, c_emb, cids, k=10)
        per_q = M.retrieval_per_query(ranked, [d["relevant"][q] for q in qids])
        stats = {m: M.mean_stat(per_q[m]) for m in M.RETRIEVAL_METRICS}
    aggregate = {m: float(stats[m](all_idx)[0]) for m in stats}
    return {"values": {m: float(v) for m, v in values.items()}, "stats": stats, "aggregate": aggregate}


# --- the run --------------------------------------------------------------------------------------


def _environment(precision: str, device: str) -> dict:
    return {
        "versions": versions((*PACKAGES, "matplotlib")),
        "python": platform.python_version(),
        "hardware": hardware(device),
        "precision": precision,
    }


def run_evaluation(
    run_dir: Path,
    *,
    loader=None,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    use_cache: bool = True,
    sets: Sequence[str] | None = None,
    output_dir: Path | None = None,
    base_path: Path | None = None,
    bf16: bool = False,
    max_seq_lengths: dict[str, int] | None = None,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    cache_root: Path | None = None,
    charts: bool = True,
) -> dict:
    """Score base + every phase of ``run_dir``; write results.json, results.md and charts; return the results.

    ``loader`` provides ``load_split``, ``load_retrieval`` and ``manifest_hash`` (default: ``medenc.data``).
    ``base_path`` replaces the real base model (tests use a tiny one). ``bf16`` turns on bfloat16 autocast,
    which is opt-in: it has to be measured against fp32 (every metric within 0.002) before being trusted.
    """
    import torch

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    loader = loader or _default_loader()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = "bf16" if bf16 else "fp32"
    msl = {**DEFAULT_MAX_SEQ_LENGTHS, **(max_seq_lengths or {})}
    out_dir = Path(output_dir) if output_dir is not None else run_dir / layout.EVAL_DIR
    names = list(sets) if sets else list(SETS)
    unknown = [s for s in names if s not in SETS]
    if unknown:
        raise DataError("--sets", None, f"names from {list(SETS)}", ", ".join(unknown))
    names = [s for s in SETS if s in names]  # canonical order

    refs, model_info = find_models(run_dir, base_path, device)
    manifest = loader.manifest_hash()
    run_json = _read_run_json(run_dir)
    if run_json.get("data_manifest_sha256") not in (None, manifest):
        log.warning(
            "%s was trained on data manifest %s; the test sets now come from %s",
            run_dir,
            run_json["data_manifest_sha256"],
            manifest,
        )
    eval_sets = {name: load_set(loader, name) for name in names}
    cache = EmbeddingCache(cache_root, enabled=use_cache)

    raw: dict[str, dict[str, dict]] = {}
    timing: dict[str, Any] = {"models": {}}
    cache_record: dict[str, dict] = {}
    checks: dict[str, dict[str, float]] = {}
    # Every text is encoded once per model and length cap, whichever sets share it (the triplets' answers are
    # MedQuAD corpus passages), in one length-sorted pass; the cache then serves it to every later run.
    short_texts = _unique(t for es in eval_sets.values() for t in es.short_texts)
    passage_texts = _unique(t for es in eval_sets.values() for t in es.passage_texts)
    for ref in refs:
        t_model = time.perf_counter()
        raw[ref.name], checks[ref.name] = {}, {}
        emb, rec_s = cache.get(ref, short_texts, msl["short"], precision)
        short, records = _table(short_texts, emb), [rec_s]
        passage = None
        if passage_texts:
            emb_p, rec_p = cache.get(ref, passage_texts, msl["passage"], precision)
            passage = _table(passage_texts, emb_p)
            records.append(rec_p)
        ref.release()
        t_encoded = time.perf_counter()
        metrics_s = {}
        for name, es in eval_sets.items():
            t0 = time.perf_counter()
            scored = score_set(es, short, passage)
            metrics_s[name] = round(time.perf_counter() - t0, 3)
            diff = max(abs(scored["values"][m] - scored["aggregate"][m]) for m in scored["values"])
            checks[ref.name][name] = diff
            if diff > AGREEMENT_TOL:
                log.warning(
                    "%s/%s: per-item aggregate differs from the ST figure by %.2g", ref.name, name, diff
                )
            raw[ref.name][name] = scored
        cache_record[ref.name] = records
        timing["models"][ref.name] = {
            "encode_s": round(t_encoded - t_model, 3),
            "encoded_texts": sum(r["encoded"] for r in records),
            "cached": all(r["cached"] for r in records),
            "metrics_s": metrics_s,
            "total_s": round(time.perf_counter() - t_model, 3),
        }
        log.info(
            "%s: encoded %d texts in %.1f s",
            ref.name,
            timing["models"][ref.name]["encoded_texts"],
            t_encoded - t_model,
        )

    t_boot = time.perf_counter()
    results, deltas = _bootstrap_all(refs, eval_sets, raw, bootstrap, seed)
    timing["bootstrap_s"] = round(time.perf_counter() - t_boot, 3)

    doc = {
        "schema_version": SCHEMA_VERSION,
        "run": run_dir.name,
        "run_dir": str(run_dir),
        "data_manifest_sha256": manifest,
        "run_data_manifest_sha256": run_json.get("data_manifest_sha256"),
        "models": model_info,
        "sets": {
            name: {"task": es.task, "n": es.n, "metrics": list(SETS[name][1]), "title": SETS[name][2]}
            for name, es in eval_sets.items()
        },
        "results": results,
        "deltas": deltas,
        "bootstrap": {"resamples": bootstrap, "seed": seed, "level": 0.95, "method": "percentile, paired"},
        "max_seq_lengths": msl,
        "precision": precision,
        "environment": _environment(precision, device),
        "checks": {"st_agreement_max_abs_diff": checks, "tolerance": AGREEMENT_TOL},
        "cache": {"enabled": use_cache, "root": str(cache.root), "hits": cache.hits, "misses": cache.misses},
        "timing": timing,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    timing["total_s"] = round(time.perf_counter() - t_start, 3)
    _write_json(out_dir / RESULTS_JSON, doc)
    (out_dir / RESULTS_MD).write_text(results_markdown(doc))
    (out_dir / "embedding_cache.json").write_text(json.dumps(cache_record, indent=2))
    if charts:
        from medenc.evaluation.charts import write_charts

        doc["charts"] = [p.name for p in write_charts(doc, run_dir, out_dir)]
        _write_json(out_dir / RESULTS_JSON, doc)
    _save_run_record(out_dir, doc)
    return doc


def _bootstrap_all(refs, eval_sets, raw, n_boot: int, seed: int) -> tuple[dict, dict]:
    results: dict[str, dict] = {r.name: {} for r in refs}
    deltas: dict[str, dict] = {r.name: {} for r in refs[1:]}
    for name, es in eval_sets.items():
        idx = M.bootstrap_indices(es.n, n_boot, M.set_seed(seed, name)) if n_boot > 0 else None
        samples: dict[str, dict[str, np.ndarray | None]] = {}
        for ref in refs:
            scored = raw[ref.name][name]
            samples[ref.name] = {m: (f(idx) if idx is not None else None) for m, f in scored["stats"].items()}
            results[ref.name][name] = {}
            for m, v in scored["values"].items():
                iv = M.interval(v, samples[ref.name][m])
                results[ref.name][name][m] = {"value": iv.value, "ci_low": iv.ci_low, "ci_high": iv.ci_high}
                results[ref.name][name][m]["n"] = es.n
        base = raw["base"][name]["values"]
        for ref in refs[1:]:
            vals = raw[ref.name][name]["values"]
            deltas[ref.name][name] = {
                m: M.paired_delta(vals[m], base[m], samples[ref.name][m], samples["base"][m]) for m in vals
            }
    return results, deltas


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _save_run_record(out_dir: Path, doc: dict) -> None:
    """A flat record of the headline figures via ``evaluate.save``.

    ``evaluate.load`` needs the Hub, so no metric loaders are used; ``evaluate.save`` works offline (it only
    writes JSON and adds the timestamp, git commit, Python and evaluate versions), which makes it a cheap,
    standard provenance record next to results.json.
    """
    try:
        import evaluate
    except ImportError:  # provenance is a convenience; results.json holds everything
        return
    flat = {
        f"{model}/{s}/{m}": r["value"]
        for model, per_set in doc["results"].items()
        for s, per_m in per_set.items()
        for m, r in per_m.items()
    }
    evaluate.save(
        str(out_dir / RUN_RECORD), run=doc["run"], data_manifest_sha256=doc["data_manifest_sha256"], **flat
    )


# --- reading results back -------------------------------------------------------------------------


def load_results(
    run_dir: Path, check_manifest: bool = True, *, loader=None, output_dir: Path | None = None
) -> dict:
    """Read ``<run>/eval/results.json``; refuse results scored on a different data manifest."""
    path = (Path(output_dir) if output_dir else Path(run_dir) / layout.EVAL_DIR) / RESULTS_JSON
    if not path.is_file():
        raise RunError(f"{path}: expected evaluation results, found no such file. Run `make evaluate` first.")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: expected JSON (docs/results_schema.md), found a parse error: {exc}") from exc
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise RunError(f"{path}: expected schema_version {SCHEMA_VERSION}, found {doc.get('schema_version')}")
    if check_manifest:
        current = (loader or _default_loader()).manifest_hash()
        found = doc.get("data_manifest_sha256")
        if found != current:
            raise RunError(
                f"{path}: scored on data manifest {found}, but the current data manifest is {current}. "
                "Re-run `make evaluate` on the current data."
            )
    return doc


# --- Markdown -------------------------------------------------------------------------------------


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def results_markdown(doc: dict) -> str:
    """results.md: per set, a table of base and each phase, CI in brackets, deltas vs base."""
    models = list(doc["results"])
    final = doc["models"].get("final", {}).get("from")
    lines = [
        f"# Evaluation of run `{doc['run']}`",
        "",
        f"Data manifest `{doc['data_manifest_sha256']}`; precision {doc['precision']}; max_seq_length "
        f"{doc['max_seq_lengths']['short']} (short texts) / {doc['max_seq_lengths']['passage']} (passages); "
        f"95% percentile bootstrap, {doc['bootstrap']['resamples']} resamples (paired for Δ).",
        "",
        "Values: figure [95% CI]. Δ: checkpoint − base [95% CI]; *n.s.* = the CI includes zero.",
        "",
    ]
    if final:
        lines += [f"`final/` is `{final}` (sha256 `{doc['models']['final'].get('sha256')}`).", ""]
    for s, meta in doc["sets"].items():
        lines += [f"## {meta['title']} (`{s}`, {meta['task']}, n={meta['n']})", ""]
        header = ["Model"]
        for m in meta["metrics"]:
            header += [m, f"Δ {m}"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for model in models:
            label = f"{model} (final)" if model == final else model
            row = [label]
            for m in meta["metrics"]:
                r = doc["results"][model][s][m]
                ci = f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" if r["ci_low"] is not None else ""
                row.append(f"{_fmt(r['value'])}{ci}")
                if model == "base":
                    row.append("")
                    continue
                d = doc["deltas"][model][s][m]
                cell = _fmt(d["diff"], signed=True)
                if d["ci_low"] is not None:
                    cell += f" [{_fmt(d['ci_low'], True)}, {_fmt(d['ci_high'], True)}]"
                if d["significant"] is False:
                    cell += " *n.s.*"
                row.append(cell)
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)

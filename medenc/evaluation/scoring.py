"""Scoring: each model's embeddings (from the cache, encoding only on a miss), the ST evaluator figures and
the per-item statistics of every set from those same embeddings, and the paired percentile bootstrap."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medenc.core.eval_sets import RETRIEVAL_METRICS
from medenc.evaluation import metrics as M
from medenc.evaluation.cache import CachedEncoder, EmbeddingCache, ModelRef
from medenc.evaluation.sets import SETS, EvalSet, unique_texts

log = logging.getLogger(__name__)

AGREEMENT_TOL = 1e-6  # per-item aggregate vs ST evaluator figure

Table = dict[str, np.ndarray]  # text -> embedding
# (set data, short-text table, passage table, encoder) -> ({metric: ST figure}, {metric: statistic}), where a
# statistic maps resampled item indices (B, n) to B values.
Scorer = Callable[[dict, Table, Table | None, CachedEncoder], tuple[dict, dict]]


# --- one model on one set -----------------------------------------------------------------------------------


def _pair_cosines(d: dict, short: Table) -> np.ndarray:
    """Cosine of each (sentence1, sentence2) pair."""
    e1 = np.stack([short[s] for s in d["s1"]])
    e2 = np.stack([short[s] for s in d["s2"]])
    return M.pairwise_cosine(e1, e2)


def _score_sts(d: dict, short: Table, passage: Table | None, enc: CachedEncoder) -> tuple[dict, dict]:
    """Spearman of cosine vs the gold score (EmbeddingSimilarityEvaluator); per item: the pair."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    ev = EmbeddingSimilarityEvaluator(
        d["s1"], d["s2"], d["y"].tolist(), similarity_fn_names=["cosine"], write_csv=False
    )
    return {"spearman": ev(enc)["spearman_cosine"]}, {
        "spearman": M.spearman_stat(d["y"], _pair_cosines(d, short))
    }


def _score_pair_classification(
    d: dict, short: Table, passage: Table | None, enc: CachedEncoder
) -> tuple[dict, dict]:
    """Average precision of cosine vs the 0/1 label (BinaryClassificationEvaluator); per item: the pair."""
    from sentence_transformers.sentence_transformer.evaluation import BinaryClassificationEvaluator

    ev = BinaryClassificationEvaluator(
        d["s1"], d["s2"], d["y"].tolist(), similarity_fn_names=["cosine"], write_csv=False
    )
    return {"ap": ev(enc)["cosine_ap"]}, {"ap": M.ap_stat(d["y"], _pair_cosines(d, short))}


def _score_triplets(d: dict, short: Table, passage: Table | None, enc: CachedEncoder) -> tuple[dict, dict]:
    """Share of anchors closer to their positive than their negative (TripletEvaluator); per item: 0/1."""
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator

    assert passage is not None  # the set's positives and negatives are passages (see sets.py)
    ea = np.stack([short[s] for s in d["a"]])
    ep, en = (np.stack([passage[s] for s in d[k]]) for k in ("p", "n"))
    correct = (M.pairwise_cosine(ea, ep) > M.pairwise_cosine(ea, en)).astype(float)
    ev = TripletEvaluator(d["a"], d["p"], d["n"], similarity_fn_names=["cosine"], write_csv=False)
    return {"accuracy": ev(enc)["cosine_accuracy"]}, {"accuracy": M.mean_stat(correct)}


def _score_retrieval(d: dict, short: Table, passage: Table | None, enc: CachedEncoder) -> tuple[dict, dict]:
    """Recall@5, nDCG@10, MRR@10 (InformationRetrievalEvaluator); per item: the query.

    A set with graded judgments (``grades``) has its nDCG@10 from graded gains: the ST evaluator knows only
    binary relevance, so that figure is the per-query mean here (recall and MRR stay the evaluator's, and
    are still checked against the per-query means).
    """
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    assert passage is not None  # the corpus is passages
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
    values = {m: out[f"cosine_{m}"] for m in RETRIEVAL_METRICS}
    qids, cids = list(d["queries"]), list(d["corpus"])
    q_emb = np.stack([short[d["queries"][q]] for q in qids])
    c_emb = np.stack([passage[d["corpus"][c]] for c in cids])
    ranked = M.rank_corpus(q_emb, c_emb, cids, k=10)
    grades = [d["grades"][q] for q in qids] if "grades" in d else None
    per_q = M.retrieval_per_query(ranked, [d["relevant"][q] for q in qids], grades)
    if grades is not None:
        values["ndcg@10"] = float(per_q["ndcg@10"].mean())
    return values, {m: M.mean_stat(per_q[m]) for m in RETRIEVAL_METRICS}


MISS_EXAMPLES = 4  # misses kept per set for the card's "still bad at" (the first by a hash of the text)


def _hash_order(texts: Sequence[str]) -> list[int]:
    """Indices of ``texts`` in a stable pseudo-random order (sha256), so examples are not the first rows."""
    return sorted(range(len(texts)), key=lambda i: hashlib.sha256(texts[i].encode("utf-8")).hexdigest())


def miss_examples(es: EvalSet, short: Table, passage: Table | None, k: int = MISS_EXAMPLES) -> list[dict]:
    """Up to ``k`` items the model gets wrong, with what it preferred: a retrieval query whose top hit is
    not relevant (``query``, ``expected``, ``got``), a triplet whose negative is closer (``anchor``,
    ``positive``, ``negative``). Empty for the graded and labelled pair sets."""
    d = es.data
    if es.task == "retrieval" and passage is not None:
        qids, cids = list(d["queries"]), list(d["corpus"])
        q_emb = np.stack([short[d["queries"][q]] for q in qids])
        top = M.rank_corpus(q_emb, np.stack([passage[d["corpus"][c]] for c in cids]), cids, k=1)
        out = []
        for i in _hash_order([d["queries"][q] for q in qids]):
            rel = d["relevant"][qids[i]]
            if top[i][0] not in rel and len(out) < k:
                expected = d["corpus"][min(rel)]
                out.append(
                    {"query": d["queries"][qids[i]], "expected": expected, "got": d["corpus"][top[i][0]]}
                )
        return out
    if es.task == "triplets" and passage is not None:
        ea = np.stack([short[t] for t in d["a"]])
        ep, en = (np.stack([passage[t] for t in d[key]]) for key in ("p", "n"))
        wrong = M.pairwise_cosine(ea, ep) <= M.pairwise_cosine(ea, en)
        order = [i for i in _hash_order(d["a"]) if wrong[i]][:k]
        return [{"anchor": d["a"][i], "positive": d["p"][i], "negative": d["n"][i]} for i in order]
    return []


_SCORERS: dict[str, Scorer] = {
    "sts": _score_sts,
    "pair_classification": _score_pair_classification,
    "triplets": _score_triplets,
    "retrieval": _score_retrieval,
}


def score_set(es: EvalSet, short: Table, passage: Table | None) -> dict:
    """ST evaluator figures and the per-item payload for the bootstrap, from the same embeddings.

    Returns {"values": {metric: ST figure}, "stats": {metric: resample -> statistic}, "aggregate": {metric:
    per-item aggregate on all items}}.
    """
    values, stats = _SCORERS[es.task](es.data, short, passage, CachedEncoder(short, passage))
    all_idx = np.arange(es.n)[None, :]
    aggregate = {m: float(stats[m](all_idx)[0]) for m in stats}
    return {"values": {m: float(v) for m, v in values.items()}, "stats": stats, "aggregate": aggregate}


# --- every model on every set -------------------------------------------------------------------------------


@dataclass
class SuiteScores:
    """Per model: each set's ``score_set`` output, its ST agreement check, timing and cache records; then
    ``results`` and ``deltas`` from ``bootstrap_all`` (model -> set -> metric); the embeddings of some."""

    raw: dict[str, dict[str, dict]] = field(default_factory=dict)
    checks: dict[str, dict[str, float]] = field(default_factory=dict)
    timing: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache_record: dict[str, list[dict]] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    deltas: dict[str, dict] = field(default_factory=dict)
    # model -> (short-text table, passage table), kept only for the models ``score_models`` was asked to keep
    tables: dict[str, tuple[Table, Table | None]] = field(default_factory=dict)
    dimensions: dict[str, dict] = field(default_factory=dict)  # results at truncated widths (dimensions.py)


def _encode_model(
    ref: ModelRef,
    cache: EmbeddingCache,
    texts: tuple[list[str], list[str]],
    max_seq_lengths: Mapping[str, int],
    tag: str,
) -> tuple[Table, Table | None, list[dict]]:
    """The model's short-text and passage tables (passages None when no set has any), and cache records;
    ``tag``: the backend's cache tag."""
    short_texts, passage_texts = texts
    emb, rec_s = cache.get(ref, short_texts, max_seq_lengths["short"], tag)
    short, records = dict(zip(short_texts, emb, strict=True)), [rec_s]
    passage = None
    if passage_texts:
        emb_p, rec_p = cache.get(ref, passage_texts, max_seq_lengths["passage"], tag)
        passage = dict(zip(passage_texts, emb_p, strict=True))
        records.append(rec_p)
    ref.release()  # only one model in memory at a time
    return short, passage, records


def _score_model(
    name: str, eval_sets: dict[str, EvalSet], short: Table, passage: Table | None
) -> tuple[dict[str, dict], dict[str, float], dict[str, float]]:
    """Every set scored with one model's tables: (scored per set, ST agreement per set, seconds per set)."""
    raw: dict[str, dict] = {}
    checks: dict[str, float] = {}
    metrics_s: dict[str, float] = {}
    for set_name, es in eval_sets.items():
        t0 = time.perf_counter()
        scored = score_set(es, short, passage)
        metrics_s[set_name] = round(time.perf_counter() - t0, 3)
        diff = max(abs(scored["values"][m] - scored["aggregate"][m]) for m in scored["values"])
        checks[set_name] = diff
        if diff > AGREEMENT_TOL:
            log.warning("%s/%s: per-item aggregate differs from the ST figure by %.2g", name, set_name, diff)
        spec = SETS.get(set_name)
        # A set whose licence forbids shipping its text (NFCorpus) gives no examples: they are published.
        scored["examples"] = miss_examples(es, short, passage) if spec is None or spec.quotable else []
        raw[set_name] = scored
    return raw, checks, metrics_s


def score_models(
    refs: list[ModelRef],
    eval_sets: dict[str, EvalSet],
    cache: EmbeddingCache,
    max_seq_lengths: Mapping[str, int],
    tag: str,
    keep: Collection[str] = (),
) -> SuiteScores:
    """Encode (or fetch) each model's embeddings, then score every set with them; keep those of ``keep``.

    ``tag``: the cache tag of the backend the refs encode with (``Backend.cache_tag``)."""
    # Every text is encoded once per model and length cap, whichever sets share it (the triplets' answers are
    # MedQuAD corpus passages), in one length-sorted pass; the cache then serves it to every later run.
    texts = (
        unique_texts(t for es in eval_sets.values() for t in es.short_texts),
        unique_texts(t for es in eval_sets.values() for t in es.passage_texts),
    )
    out = SuiteScores()
    for ref in refs:
        t_model = time.perf_counter()
        short, passage, records = _encode_model(ref, cache, texts, max_seq_lengths, tag)
        t_encoded = time.perf_counter()
        out.raw[ref.name], out.checks[ref.name], metrics_s = _score_model(ref.name, eval_sets, short, passage)
        out.cache_record[ref.name] = records
        if ref.name in keep:
            out.tables[ref.name] = (short, passage)
        out.timing[ref.name] = {
            "encode_s": round(t_encoded - t_model, 3),
            "encoded_texts": sum(r["encoded"] for r in records),
            "cached": all(r["cached"] for r in records),
            "metrics_s": metrics_s,
            "total_s": round(time.perf_counter() - t_model, 3),
        }
        encoded = out.timing[ref.name]["encoded_texts"]
        log.info("%s: encoded %d texts in %.1f s", ref.name, encoded, t_encoded - t_model)
    return out


# --- the bootstrap ------------------------------------------------------------------------------------------


def resample(name: str, n: int, n_boot: int, seed: int) -> np.ndarray | None:
    """Set ``name``'s resampled item indices (B, n), the same for every model scored on it; None: no CIs."""
    return M.bootstrap_indices(n, n_boot, M.set_seed(seed, name)) if n_boot > 0 else None


def intervals(scored: dict, idx: np.ndarray | None, n: int) -> tuple[dict, dict]:
    """One model on one set: {metric: {value, ci_low, ci_high, n}} and the per-resample values behind them."""
    samples = {m: (f(idx) if idx is not None else None) for m, f in scored["stats"].items()}
    cells = {}
    for m, v in scored["values"].items():
        iv = M.interval(v, samples[m])
        cells[m] = {"value": iv.value, "ci_low": iv.ci_low, "ci_high": iv.ci_high, "n": n}
    return cells, samples


def bootstrap_all(
    refs: list[ModelRef],
    eval_sets: dict[str, EvalSet],
    raw: dict[str, dict[str, dict]],
    n_boot: int,
    seed: int,
) -> tuple[dict, dict]:
    """Per model and set, each metric's value with its CI; per phase, its paired difference from base.

    Every model of a set is resampled on the same items (paired), so ``deltas`` compare like with like;
    ``n_boot == 0`` gives point estimates only (CIs None).
    """
    results: dict[str, dict] = {r.name: {} for r in refs}
    deltas: dict[str, dict] = {r.name: {} for r in refs[1:]}
    for name, es in eval_sets.items():
        idx = resample(name, es.n, n_boot, seed)
        samples: dict[str, dict[str, np.ndarray | None]] = {}
        for ref in refs:
            results[ref.name][name], samples[ref.name] = intervals(raw[ref.name][name], idx, es.n)
        base = raw["base"][name]["values"]
        for ref in refs[1:]:
            vals = raw[ref.name][name]["values"]
            deltas[ref.name][name] = {
                m: M.paired_delta(vals[m], base[m], samples[ref.name][m], samples["base"][m]) for m in vals
            }
    return results, deltas

"""Per-item quantities and the percentile bootstrap over items.

The point estimates come from the sentence-transformers evaluators (see ``suite.py``); this module computes
the *per-item* values those figures are aggregates of (per-pair cosine, per-query retrieval metrics,
per-triplet correctness), so that the bootstrap can resample items. ``tests/test_evaluation.py`` checks that
each aggregate here equals the evaluator's figure on a small case.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def pairwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine, through the same function the ST evaluators use (bit-identical scores)."""
    import torch
    from sentence_transformers.util import pairwise_cos_sim

    return pairwise_cos_sim(torch.as_tensor(a), torch.as_tensor(b)).detach().cpu().numpy()


def rank_corpus(
    query_emb: np.ndarray, corpus_emb: np.ndarray, corpus_ids: Sequence[str], k: int
) -> list[list[str]]:
    """Top-k corpus ids per query, ordered by (-cosine, corpus_id) like InformationRetrievalEvaluator."""
    import torch
    from sentence_transformers.util import cos_sim

    scores = cos_sim(torch.as_tensor(query_emb), torch.as_tensor(corpus_emb)).cpu().numpy()
    # Put the columns in ascending corpus-id order, so a stable sort on -score breaks ties by corpus id.
    order = sorted(range(len(corpus_ids)), key=corpus_ids.__getitem__)
    ids_sorted = [corpus_ids[i] for i in order]
    ranked = np.argsort(-scores[:, order], axis=1, kind="stable")[:, :k]
    return [[ids_sorted[j] for j in row] for row in ranked]


def graded_gain(grade: int) -> float:
    """The nDCG gain of a judgment of ``grade`` (TREC's exponential gain, as NFCorpus's release defines it:
    3 -> 7, 2 -> 3, 1 -> 1); a binary judgment (grade 1) gains 1, as in the ST evaluator."""
    return float(2**grade - 1)


def retrieval_per_query(
    ranked: list[list[str]],
    relevant: Sequence[set[str]],
    grades: Sequence[dict[str, int]] | None = None,
) -> dict[str, np.ndarray]:
    """Recall@5, nDCG@10 and MRR@10 for each query, with the ST evaluator's definitions.

    nDCG's gains are binary (the ST evaluator's), or :func:`graded_gain` of each query's ``grades`` (corpus id
    -> grade) where given; recall and MRR count every judged document as relevant either way.
    """
    recall, ndcg, mrr = [], [], []
    for n, (hits, rel) in enumerate(zip(ranked, relevant, strict=True)):
        rel = set(rel)
        gain = {c: graded_gain(grades[n][c]) for c in rel} if grades is not None else dict.fromkeys(rel, 1.0)
        recall.append(sum(h in rel for h in hits[:5]) / len(rel))
        dcg = sum(gain[h] / np.log2(i + 2) for i, h in enumerate(hits[:10]) if h in rel)
        ideal = sorted(gain.values(), reverse=True)[:10]
        idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
        ndcg.append(dcg / idcg)
        first = next((i for i, h in enumerate(hits[:10]) if h in rel), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
    return {"recall@5": np.array(recall), "ndcg@10": np.array(ndcg), "mrr@10": np.array(mrr)}


# --- statistics over resampled index matrices (B, n) -> (B,) ------------------------------------------------


def _rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman per row: Pearson of average ranks (ties averaged, as scipy.stats.spearmanr does)."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(axis=1) / denom, np.nan)


def spearman_stat(gold: np.ndarray, pred: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Spearman of (gold, predicted cosine), recomputed on each resample."""
    return lambda idx: _rowwise_spearman(gold[idx], pred[idx])


def ap_stat(labels: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Average precision (sklearn, as BinaryClassificationEvaluator), recomputed on each resample.

    A resample with only one class has no AP; it is NaN and left out of the percentiles.
    """
    from sklearn.metrics import average_precision_score

    def stat(idx: np.ndarray) -> np.ndarray:
        out = np.full(len(idx), np.nan)
        for b, row in enumerate(idx):
            lab = labels[row]
            if 0 < lab.sum() < len(lab):
                out[b] = average_precision_score(lab, scores[row])
        return out

    return stat


def mean_stat(values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Mean of per-item values (retrieval metrics per query, triplet correctness)."""
    return lambda idx: values[idx].mean(axis=1)


# --- bootstrap ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% percentile bootstrap interval (None when no resampling was done)."""

    value: float
    ci_low: float | None
    ci_high: float | None


def set_seed(seed: int, set_name: str) -> int:
    """A per-set seed that does not depend on which other sets were selected."""
    return (seed + zlib.crc32(set_name.encode())) % (2**32)


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) item indices drawn with replacement; shared by every model of a set (paired bootstrap)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval, ignoring NaN resamples (e.g. a one-class AP resample)."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return None, None
    lo, hi = np.percentile(samples, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def interval(value: float, samples: np.ndarray | None) -> Interval:
    """The point estimate and the CI from its bootstrap samples."""
    if samples is None:
        return Interval(float(value), None, None)
    lo, hi = percentile_ci(samples)
    return Interval(float(value), lo, hi)


def paired_delta(
    value: float, base_value: float, samples: np.ndarray | None, base_samples: np.ndarray | None
) -> dict:
    """model − base, with the CI of the per-resample differences (same indices for both: paired)."""
    diff = float(value - base_value)
    if samples is None or base_samples is None:
        return {"diff": diff, "ci_low": None, "ci_high": None, "significant": None}
    lo, hi = percentile_ci(samples - base_samples)
    significant = None if lo is None else bool(lo > 0 or hi < 0)
    return {"diff": diff, "ci_low": lo, "ci_high": hi, "significant": significant}

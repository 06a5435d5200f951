"""Evaluation: metric code vs hand-computed values, agreement with the ST evaluators, the bootstrap, the
whole suite on a tiny model with small in-memory sets, the embedding cache, and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from medenc.core.errors import DataError, ModelError, RunError
from medenc.core.eval_sets import names_of_task
from medenc.core.io import NOT_SIGNIFICANT
from medenc.core.paths import PROJECT_ROOT
from medenc.core.runs import RUN_SCHEMA_VERSION
from medenc.evaluation import load_results, run_evaluation
from medenc.evaluation import metrics as M
from medenc.evaluation.results import Results, results_markdown
from medenc.evaluation.scoring import score_set
from medenc.evaluation.sets import EvalSet, select_sets

# --- metric code vs hand-computed values --------------------------------------------------------------------


def test_retrieval_metrics_match_hand_computed_values():
    ranked = [
        ["d2", "d1", "d4", "d3", "d5", "d6"],  # relevant d1 (rank 2) and d3 (rank 4)
        ["d9", "d8", "d7", "d6", "d5", "d4", "d3", "d2", "d1", "d0", "d7x"],  # relevant d7x at rank 11
        ["d5", "d1"],  # relevant d5 at rank 1
    ]
    relevant = [{"d1", "d3"}, {"d7x"}, {"d5"}]
    out = M.retrieval_per_query(ranked, relevant)
    ndcg0 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    np.testing.assert_allclose(out["recall@5"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(out["ndcg@10"], [ndcg0, 0.0, 1.0])
    np.testing.assert_allclose(out["mrr@10"], [0.5, 0.0, 1.0])


def test_graded_ndcg_uses_exponential_gains_and_the_ideal_order_of_the_grades():
    """nfcorpus_dev's grades 3/2/1 gain 7/3/1: a grade-1 document first scores below a grade-3 one first;
    recall and MRR count every judged document, as with binary relevance."""
    ranked = [["m", "h", "x"], ["h", "m", "x"], ["x", "l"]]
    relevant = [{"h", "m"}, {"h", "m"}, {"l"}]
    grades = [{"h": 3, "m": 1}, {"h": 3, "m": 1}, {"l": 2}]
    out = M.retrieval_per_query(ranked, relevant, grades)
    ideal = 7 + 1 / math.log2(3)
    np.testing.assert_allclose(out["ndcg@10"], [(1 + 7 / math.log2(3)) / ideal, 1.0, (3 / math.log2(3)) / 3])
    binary = M.retrieval_per_query(ranked, relevant)
    assert binary["ndcg@10"][0] == pytest.approx(1.0) and out["ndcg@10"][0] < 0.8  # the grades matter
    np.testing.assert_allclose(out["recall@5"], binary["recall@5"])
    np.testing.assert_allclose(out["mrr@10"], binary["mrr@10"])
    # All grades 1: the binary figures exactly (the other sets keep their numbers).
    ones = [dict.fromkeys(r, 1) for r in relevant]
    np.testing.assert_array_equal(M.retrieval_per_query(ranked, relevant, ones)["ndcg@10"], binary["ndcg@10"])


def test_a_graded_set_reports_graded_ndcg_and_the_st_figures_for_the_rest():
    """score_set on a set with ``grades``: nDCG@10 is the graded per-query mean (the ST evaluator knows only
    binary gains), recall@5 and MRR@10 still the evaluator's, and each equals its bootstrap aggregate."""
    passages = [f"doc {i}" for i in range(20)]
    short = _random_table([f"q{i}" for i in range(10)])
    passage = _random_table(passages, seed=1)
    relevant = {f"Q{i}": {f"C{(i * k + k - 1) % 20:02d}" for k in (1, 3, 7)} for i in range(10)}
    data = {
        "queries": {f"Q{i}": f"q{i}" for i in range(10)},
        "corpus": {f"C{i:02d}": passages[i] for i in range(20)},
        "relevant": relevant,
    }
    binary = score_set(EvalSet("toy", "retrieval", 10, [], passages, data=dict(data)), short, passage)
    graded_data = {**data, "grades": {q: {c: 1 + sorted(r).index(c) for c in r} for q, r in relevant.items()}}
    graded = score_set(EvalSet("toy", "retrieval", 10, [], passages, data=graded_data), short, passage)
    assert graded["values"]["ndcg@10"] != pytest.approx(binary["values"]["ndcg@10"])
    for m in ("recall@5", "mrr@10"):
        assert graded["values"][m] == binary["values"][m]
    for m, v in graded["values"].items():
        assert graded["aggregate"][m] == pytest.approx(v, abs=1e-6), m


def test_rank_corpus_orders_by_cosine_then_corpus_id():
    q = np.array([[1.0, 0.0]])
    corpus = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    ids = ["z", "b", "a", "m"]
    assert M.rank_corpus(q, corpus, ids, k=4) == [["a", "b", "m", "z"]]


def test_average_precision_matches_hand_computed_value():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    ap = M.ap_stat(labels, scores)(np.arange(4)[None, :])[0]
    assert ap == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_spearman_stat_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    gold = np.array([0.1, 0.5, 0.5, 0.9, 0.3])
    pred = np.array([0.2, 0.4, 0.6, 0.6, 0.1])
    idx = np.array([[0, 1, 2, 3, 4], [0, 0, 1, 3, 4]])
    got = M.spearman_stat(gold, pred)(idx)
    for row, g in zip(idx, got, strict=True):
        assert g == pytest.approx(spearmanr(gold[row], pred[row])[0])


# --- bootstrap ----------------------------------------------------------------------------------------------


def test_bootstrap_zero_variance_collapses_and_self_diff_is_not_significant():
    values = np.full(20, 0.75)
    idx = M.bootstrap_indices(20, 200, seed=1)
    samples = M.mean_stat(values)(idx)
    iv = M.interval(0.75, samples)
    assert iv.ci_low == pytest.approx(0.75) and iv.ci_high == pytest.approx(0.75)

    varied = M.mean_stat(np.linspace(0, 1, 20))(idx)
    d = M.paired_delta(0.5, 0.5, varied, varied)
    assert d == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "significant": False}


def test_paired_bootstrap_detects_a_consistent_improvement():
    idx = M.bootstrap_indices(50, 300, seed=2)
    base = np.random.default_rng(0).random(50)
    better = base + 0.1
    d = M.paired_delta(better.mean(), base.mean(), M.mean_stat(better)(idx), M.mean_stat(base)(idx))
    assert d["significant"] is True and d["ci_low"] == pytest.approx(0.1)


# --- per-item aggregates equal the ST evaluators' figures ---------------------------------------------------


def _random_table(texts, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return {t: rng.normal(size=dim).astype(np.float32) for t in texts}


def test_per_item_aggregates_equal_st_evaluator_figures():
    rng = np.random.default_rng(3)
    s1 = [f"a{i}" for i in range(30)]
    s2 = [f"b{i}" for i in range(30)]
    short = _random_table(s1 + s2 + [f"q{i}" for i in range(12)])
    passages = [f"doc {i}" for i in range(25)]
    # Triplet positives and negatives are passages, as in the suite.
    passage = _random_table(passages + s2 + [f"n{i}" for i in range(30)], seed=1)

    sets = [
        EvalSet("stsb", "sts", 30, s1 + s2, data={"s1": s1, "s2": s2, "y": rng.random(30)}),
        EvalSet(
            "rqe", "pair_classification", 30, s1 + s2, data={"s1": s1, "s2": s2, "y": rng.integers(0, 2, 30)}
        ),
        EvalSet("triplets", "triplets", 30, [], data={"a": s1, "p": s2, "n": [f"n{i}" for i in range(30)]}),
        EvalSet(
            "medquad",
            "retrieval",
            12,
            [],
            passages,
            data={
                "queries": {f"Q{i}": f"q{i}" for i in range(12)},
                "corpus": {f"C{i:02d}": passages[i] for i in range(25)},
                "relevant": {f"Q{i}": {f"C{i:02d}", f"C{(i * 7) % 25:02d}"} for i in range(12)},
            },
        ),
    ]
    for es in sets:
        scored = score_set(es, short, passage if es.task in ("retrieval", "triplets") else None)
        for m, v in scored["values"].items():
            assert scored["aggregate"][m] == pytest.approx(v, abs=1e-6), (
                es.name,
                m,
            )  # ST averages in float32


# --- results.md ---------------------------------------------------------------------------------------------


def test_results_md_marks_a_delta_whose_ci_includes_zero_with_the_shared_marker():
    def r(v):
        return {"value": v, "ci_low": v - 0.05, "ci_high": v + 0.05, "n": 10}

    doc = {
        "schema_version": 1,
        "run": "toy",
        "data_manifest_sha256": "m",
        "precision": "fp32",
        "max_seq_lengths": {"short": 128, "passage": 256},
        "bootstrap": {"resamples": 50},
        "models": {
            "base": {},
            "phase-1": {},
            "phase-2": {},
            "final": {"from": "phase-2", "sha256": "abc"},
        },
        "sets": {"biosses": {"task": "sts", "n": 10, "metrics": ["spearman"], "title": "BIOSSES"}},
        "results": {m: {"biosses": {"spearman": r(0.8)}} for m in ("base", "phase-1", "phase-2")},
        "deltas": {
            "phase-1": {"biosses": {"spearman": {"diff": 0.01, "ci_low": -0.02, "ci_high": 0.04}}},
            "phase-2": {"biosses": {"spearman": {"diff": 0.05, "ci_low": 0.01, "ci_high": 0.09}}},
        },
    }
    lines = results_markdown(Results.from_doc(doc, Path("toy/eval/results.json"))).splitlines()
    assert f"{NOT_SIGNIFICANT} = the CI includes zero." in "\n".join(lines)
    row = {line.split(" | ")[0]: line for line in lines if line.startswith("| ")}
    assert row["| base"] == "| base | 0.8000 [0.7500, 0.8500] |  |"
    assert row["| phase-1"].endswith(f"| +0.0100 [-0.0200, +0.0400] {NOT_SIGNIFICANT} |")
    assert row["| phase-2 (final)"].endswith("| +0.0500 [+0.0100, +0.0900] |")


def test_unknown_set_names_are_refused_and_known_ones_put_in_table_order():
    assert select_sets(["triplets", "biosses"]) == ["biosses", "triplets"]
    with pytest.raises(DataError, match="nosuchset"):
        select_sets(["biosses", "nosuchset"])


# --- the whole suite on a tiny model ------------------------------------------------------------------------

N_PAIRS = 12


def make_loader(manifest: str = "manifest-A"):
    from datasets import Dataset

    rng = np.random.default_rng(0)
    words = ["fever", "cough", "insulin", "asthma", "aspirin", "renal", "cardiac", "biopsy", "tumor", "dose"]

    def sent(i: int) -> str:
        return " ".join(words[(i * k) % len(words)] for k in range(1, 4 + i % 5)) + f" case {i}"

    pairs = {
        "sentence1": [sent(i) for i in range(N_PAIRS)],
        "sentence2": [sent(i + 3) for i in range(N_PAIRS)],
    }
    splits = {
        "biosses": Dataset.from_dict({**pairs, "score": rng.random(N_PAIRS).tolist()}),
        "stsb": Dataset.from_dict({**pairs, "score": rng.random(N_PAIRS).tolist()}),
        "rqe": Dataset.from_dict({**pairs, "label": [i % 2 for i in range(N_PAIRS)]}),
    }
    triplets = {
        "anchor": pairs["sentence1"],
        "positive": pairs["sentence2"],
        "negative": [sent(i + 7) for i in range(N_PAIRS)],
    }
    splits.update({name: Dataset.from_dict(triplets) for name in names_of_task("triplets")})

    def load_retrieval(name: str):
        corpus = {f"{name}-c{i}": sent(i + 20) + " long passage " * (i % 4) for i in range(15)}
        queries = {f"{name}-q{i}": sent(i + 40) + "?" for i in range(8)}
        relevant = {f"{name}-q{i}": {f"{name}-c{i}"} for i in range(8)}
        return SimpleNamespace(queries=queries, corpus=corpus, relevant=relevant)

    return SimpleNamespace(
        load_split=lambda split, name: splits[name],
        load_retrieval=load_retrieval,
        manifest_hash=lambda: manifest,
    )


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    from medenc.core.modeling import build_random_model

    root = tmp_path_factory.mktemp("tiny-models")
    for seed, name in enumerate(["base", "phase-1", "phase-2"]):
        build_random_model("tiny", seed=seed, device="cpu").save(str(root / name))
    return root


def make_run(tmp_path: Path, models_dir: Path, phases=("phase-1", "phase-2")) -> Path:
    run = tmp_path / "outputs" / "toy"
    run.mkdir(parents=True)
    for p in phases:
        shutil.copytree(models_dir / p, run / p)
        history = [{"step": s, "epoch": s / 10, "loss": 1.0 / s} for s in range(1, 11)]
        history += [{"step": 10, "epoch": 1.0, "eval_loss": 0.2}]
        (run / p / "loss_history.json").write_text(json.dumps(history))
    shutil.copytree(models_dir / phases[-1], run / "final")
    (run / "run.json").write_text(
        json.dumps(
            {
                "schema_version": RUN_SCHEMA_VERSION,
                "final": {"from": phases[-1]},
                "data_manifest_sha256": "manifest-A",
            }
        )
    )
    return run


def test_whole_suite_writes_results_and_hits_the_cache(tmp_path, models_dir):
    run = make_run(tmp_path, models_dir)
    kwargs = dict(
        loader=make_loader(),
        bootstrap=50,
        base_path=models_dir / "base",
        cache_root=tmp_path / "cache",
        device="cpu",
    )
    doc = run_evaluation(run, **kwargs).doc

    out = run / "eval"
    for f in (
        "results.json",
        "results.md",
        "metrics.png",
        "loss_curves.png",
        "deltas.png",
        "run_record.json",
    ):
        assert (out / f).is_file(), f
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["schema_version"] == 1 and on_disk["data_manifest_sha256"] == "manifest-A"
    assert list(on_disk["results"]) == ["base", "phase-1", "phase-2"]
    assert on_disk["models"]["final"]["from"] == "phase-2"
    assert on_disk["models"]["final"]["sha256"] == on_disk["models"]["phase-2"]["sha256"]
    # The released model's misses, a few per set: each a real item of the set, the wrong choice beside it.
    examples = on_disk["examples"]
    assert examples["model"] == "phase-2" and set(examples["sets"]) == set(on_disk["sets"])
    assert examples["sets"]["biosses"] == []
    for ex in examples["sets"]["medquad"]:
        assert set(ex) == {"query", "expected", "got"} and ex["expected"] != ex["got"]
    loader = make_loader()
    trip = loader.load_split("test", "triplets")
    for ex in examples["sets"]["triplets"]:
        i = trip["anchor"].index(ex["anchor"])
        assert (ex["positive"], ex["negative"]) == (trip["positive"][i], trip["negative"][i])
    assert any(
        examples["sets"][n] for n in ("medquad", "triplets", "terms")
    )  # a random-weight tiny model misses
    # NFCorpus's licence allows evaluation, not shipping its text: no examples (k_qa: the same toy items).
    assert examples["sets"]["nfcorpus_dev"] == [] and len(examples["sets"]["k_qa"]) > 0
    assert set(on_disk["results"]["base"]["medquad"]) == {"recall@5", "ndcg@10", "mrr@10"}
    assert on_disk["results"]["base"]["rqe"]["ap"]["n"] == N_PAIRS
    for model, per_set in on_disk["results"].items():
        for s, per_m in per_set.items():
            for m, r in per_m.items():
                assert r["ci_low"] <= r["value"] + 1e-9 and r["value"] <= r["ci_high"] + 1e-9, (model, s, m)
    d = on_disk["deltas"]["phase-1"]["biosses"]["spearman"]
    assert set(d) == {"diff", "ci_low", "ci_high", "significant"}
    assert max(max(v.values()) for v in on_disk["checks"]["st_agreement_max_abs_diff"].values()) < 1e-6
    assert on_disk["max_seq_lengths"] == {"short": 128, "passage": 256}
    assert "phase-1" in (out / "results.md").read_text()
    assert doc["cache"]["misses"] > 0

    # Second run: everything comes from the cache, nothing is encoded (and no model is even loaded).
    doc2 = run_evaluation(run, **kwargs).doc
    assert doc2["cache"]["misses"] == 0
    assert doc2["cache"]["hits"] == doc["cache"]["hits"] + doc["cache"]["misses"]
    assert all(m["cached"] and m["encoded_texts"] == 0 for m in doc2["timing"]["models"].values())
    assert doc2["results"] == doc["results"]

    assert load_results(run, loader=make_loader()).run == "toy"


def test_cache_misses_again_when_max_seq_length_changes(tmp_path, models_dir):
    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    kwargs = dict(
        loader=make_loader(),
        bootstrap=0,
        base_path=models_dir / "base",
        cache_root=tmp_path / "c",
        device="cpu",
        sets=["biosses"],
        charts=False,
    )
    first = run_evaluation(run, **kwargs).doc
    assert first["results"]["base"]["biosses"]["spearman"]["ci_low"] is None
    again = run_evaluation(run, max_seq_lengths={"short": 64}, **kwargs).doc
    assert again["cache"]["misses"] == first["cache"]["misses"] == 2


def test_a_changed_pooling_config_is_another_model_for_the_cache(tmp_path, models_dir):
    """The cache is keyed by every file that changes what a model computes, not by its weights alone."""
    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    kwargs = dict(
        loader=make_loader(), bootstrap=0, base_path=models_dir / "base", cache_root=tmp_path / "c",
        device="cpu", sets=["biosses"], charts=False,
    )  # fmt: skip
    first = run_evaluation(run, **kwargs).doc
    pooling = run / "phase-1" / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    assert config["pooling_mode"] == "mean"
    pooling.write_text(json.dumps(config | {"pooling_mode": "cls"}))
    again = run_evaluation(run, **kwargs).doc
    assert again["cache"]["misses"] == 1  # phase 1 is encoded again; the base model is not
    assert again["timing"]["models"]["phase-1"]["encoded_texts"] > 0
    old, new = first["models"]["phase-1"], again["models"]["phase-1"]
    assert old["sha256"] == new["sha256"] and old["model_hash"] != new["model_hash"]
    assert again["results"]["phase-1"] != first["results"]["phase-1"]
    # final/ (mean pooling) is no longer the phase it claims to be a copy of.
    assert again["models"]["final"]["matches_from"] is False


def test_results_json_holds_no_local_paths_and_its_hash_record(tmp_path, models_dir):
    from medenc.evaluation.results import RESULTS_HASH, check_results_hash

    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    run_evaluation(
        run, loader=make_loader(), bootstrap=0, base_path=models_dir / "base", cache_root=tmp_path / "c",
        device="cpu", sets=["biosses"], charts=False,
    )  # fmt: skip
    path = run / "eval" / "results.json"
    text = path.read_text()
    for local in (str(tmp_path), str(models_dir), str(Path.home())):
        assert local not in text, local
    doc = json.loads(text)
    assert doc["models"]["phase-1"]["path"] == "phase-1"
    assert doc["models"]["final"]["path"] == "final"
    assert check_results_hash(run) == (run / "eval" / RESULTS_HASH).read_text().split()[0]
    path.write_text(text.replace('"precision": "fp32"', '"precision": "bf16"'))
    with pytest.raises(RunError, match=r"results\.json: changed since `make evaluate` wrote it"):
        check_results_hash(run)


def test_the_model_hash_covers_what_changes_the_model_and_nothing_else(tmp_path, models_dir):
    from medenc.core.model_id import model_files, model_hash

    folder = tmp_path / "m"
    shutil.copytree(models_dir / "base", folder)
    names = {p.as_posix() for p in model_files(folder)}
    assert {"model.safetensors", "modules.json", "1_Pooling/config.json", "config.json"} <= names
    assert {"sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "README.md" not in names
    before = model_hash(folder)
    (folder / "README.md").write_text("another card")
    (folder / "loss_history.json").write_text("[]")
    (folder / "training_args.bin").write_bytes(b"pickle")
    assert model_hash(folder) == before
    st = folder / "sentence_bert_config.json"
    st.write_text(json.dumps(json.loads(st.read_text()) | {"max_seq_length": 64}))
    assert model_hash(folder) != before
    assert model_hash(tmp_path / "absent") is None


# --- bad input ----------------------------------------------------------------------------------------------


def test_run_without_checkpoints_is_refused(tmp_path, models_dir):
    run = tmp_path / "empty-run"
    run.mkdir()
    with pytest.raises(RunError, match=r"empty-run.*phase-1"):
        run_evaluation(run, loader=make_loader(), base_path=models_dir / "base", cache_root=tmp_path / "c")


def test_checkpoint_that_is_not_a_sentence_transformers_folder_is_refused(tmp_path, models_dir):
    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    (run / "phase-1" / "modules.json").unlink()
    with pytest.raises(ModelError, match=r"phase-1.*missing modules\.json"):
        run_evaluation(run, loader=make_loader(), base_path=models_dir / "base", cache_root=tmp_path / "c")


def test_results_from_a_different_data_manifest_are_refused(tmp_path, models_dir):
    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    run_evaluation(
        run,
        loader=make_loader("manifest-A"),
        bootstrap=0,
        base_path=models_dir / "base",
        cache_root=tmp_path / "c",
        device="cpu",
        sets=["triplets"],
        charts=False,
    )
    with pytest.raises(RunError, match=r"manifest-A.*manifest-B"):
        load_results(run, loader=make_loader("manifest-B"))
    assert load_results(run, check_manifest=False).data_manifest == "manifest-A"


def test_missing_results_file_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match=r"results\.json"):
        load_results(tmp_path, check_manifest=False)


def test_the_script_scores_a_run_end_to_end(tmp_path, models_dir):
    """scripts/evaluate_run.py as users run it: its own name must not shadow the `evaluate` library."""
    import subprocess
    import sys

    from datasets import Dataset

    prepared = tmp_path / "prepared"
    Dataset.from_dict(
        {
            "sentence1": ["A man is eating.", "A dog runs.", "Heart attack.", "Fever."],
            "sentence2": [
                "Someone eats food.",
                "A cat sleeps.",
                "Myocardial infarction.",
                "High temperature.",
            ],
            "score": [0.9, 0.1, 0.95, 0.8],
        }
    ).save_to_disk(str(prepared / "test" / "biosses"))
    (prepared / "manifest.json").write_text("{}")
    from medenc.data.checksums import write_checksums

    write_checksums(prepared)  # as `make data` ends: evaluation checks the prepared files against it
    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    # Written by older code, whose phase folders were named after a loss: `make evaluate` renames them.
    (run / "phase-1").rename(run / "phase-1-cosine")
    (run / "run.json").write_text((run / "run.json").read_text().replace('"phase-1"', '"phase-1-cosine"'))
    env = {
        **os.environ,
        "PREPARED_DIR": str(prepared),
        "MEDENC_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "OUTPUTS_DIR": str(run.parent),  # a run is named, never a path
    }
    cmd = [
        sys.executable,
        "scripts/evaluate_run.py",
        "--run",
        run.name,
        "--sets",
        "biosses",
        "--bootstrap",
        "20",
        "--backend",  # the measurement of `auto` has tests of its own (test_backends.py)
        "torch-fp32",
    ]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "eval" / "run_record.json").is_file()
    assert list(json.loads((run / "eval" / "results.json").read_text())["results"]) == ["base", "phase-1"]
    assert not (run / "phase-1-cosine").exists() and "renamed phase-1-cosine to phase-1" in proc.stderr
    assert json.loads((run / "run.json").read_text())["final"]["from"] == "phase-1"


# --- progress while encoding --------------------------------------------------------------------------------


def test_evaluation_logs_progress_while_it_encodes_when_not_on_a_terminal(
    tmp_path, models_dir, caplog, monkeypatch
):
    """In CI or a log file (no bars): plain log lines between encode chunks, which clean_log keeps whole."""
    import functools
    import logging

    from medenc.core import progress
    from medenc.evaluation import cache
    from medenc.release.publish import clean_log

    monkeypatch.setattr(progress, "show_progress_bar", lambda: False)
    monkeypatch.setenv("MEDENC_PROGRESS_SECONDS", "0")  # a line after every chunk, however fast
    # Batches of 4 (chunks of 8 texts): the tiny sets then take several chunks, as real ones do.
    monkeypatch.setattr(cache, "encode_texts", functools.partial(cache.encode_texts, batch_size=4))
    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    caplog.set_level(logging.INFO, logger="medenc.progress")
    run_evaluation(
        run, loader=make_loader(), bootstrap=0, base_path=models_dir / "base", cache_root=tmp_path / "c",
        device="cpu", sets=["biosses", "medquad"], charts=False,
    )  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "medenc.progress"]
    for model in ("base", "phase-1"):
        for cap in (128, 256):  # short texts, then passages
            mine = [line for line in lines if line.startswith(f"{model}: encoding at {cap} tokens: ")]
            assert len(mine) >= 2 and all(" texts (" in line for line in mine[:-1]), (model, cap, lines)
            assert ": done, " in mine[-1], (model, cap, lines)
    assert all(clean_log(line) == line + "\n" for line in lines)


def test_progress_lines_say_how_far_and_how_long_to_go(monkeypatch, caplog):
    import logging

    from medenc.core import progress

    monkeypatch.setattr(progress, "show_progress_bar", lambda: False)
    monkeypatch.setenv("MEDENC_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="medenc.progress")
    assert list(progress.progress(range(4), desc="counting", unit="things")) == [0, 1, 2, 3]
    lines = [r.getMessage() for r in caplog.records if r.name == "medenc.progress"]
    assert [line.split(",")[0] for line in lines] == [
        "counting: 1/4 things (25%)",
        "counting: 2/4 things (50%)",
        "counting: 3/4 things (75%)",
        "counting: done",
    ]
    assert "s left" in lines[0] and lines[-1].startswith("counting: done, 4 things in ")
    caplog.clear()
    monkeypatch.setenv("MEDENC_PROGRESS_SECONDS", "30")  # quick work says nothing
    assert list(progress.progress(range(4), desc="quick")) == [0, 1, 2, 3]
    assert not [r for r in caplog.records if r.name == "medenc.progress"]


def test_progress_draws_a_bar_on_a_terminal_and_logs_nothing(monkeypatch, capsys, caplog):
    from medenc.core import progress

    monkeypatch.setattr(progress, "show_progress_bar", lambda: True)
    monkeypatch.setenv("MEDENC_PROGRESS_SECONDS", "0")
    assert list(progress.progress(range(5), desc="counting", unit="things")) == [0, 1, 2, 3, 4]
    assert "counting: 100%" in capsys.readouterr().err
    assert not [r for r in caplog.records if r.name == "medenc.progress"]


# --- smaller embeddings (truncate_dim) ----------------------------------------------------------------------


def test_suite_scores_the_final_and_base_models_at_smaller_widths(tmp_path, models_dir):
    run = make_run(tmp_path, models_dir)
    doc = run_evaluation(
        run, loader=make_loader(), bootstrap=50, base_path=models_dir / "base", cache_root=tmp_path / "c",
        device="cpu", sets=["biosses", "rqe", "medquad"], charts=False, dimensions=(16, 8, 64),
    ).doc  # fmt: skip
    on_disk = json.loads((run / "eval" / "results.json").read_text())
    assert on_disk["dimensions"] == doc["dimensions"]
    block = doc["dimensions"]
    assert list(block) == ["32", "16", "8"]  # the tiny model's full width first; 64 does not exist
    for dim, per_model in block.items():
        assert list(per_model) == ["base", "phase-2"]  # the model final/ copies, not phase 1
        for model, per_set in per_model.items():
            assert list(per_set) == ["biosses", "medquad"]  # RQE stays at full width only
            for s, per_m in per_set.items():
                assert list(per_m) == list(doc["results"][model][s]), (dim, model, s)
                for cell in per_m.values():
                    assert cell["ci_low"] <= cell["value"] + 1e-9 <= cell["ci_high"] + 2e-9
    # Full width: the main figures, CIs included (same values, same resamples).
    for model in ("base", "phase-2"):
        for s in ("biosses", "medquad"):
            assert block["32"][model][s] == doc["results"][model][s]
    assert block["8"]["base"]["medquad"] != block["32"]["base"]["medquad"]
    md = (run / "eval" / "results.md").read_text()
    assert "## Smaller embeddings" in md and "| MedQuAD | ndcg@10 | phase-2 (final) |" in md

    none = run_evaluation(
        run, loader=make_loader(), bootstrap=0, base_path=models_dir / "base", cache_root=tmp_path / "c",
        device="cpu", sets=["biosses"], charts=False, dimensions=None,
    ).doc  # fmt: skip
    assert "dimensions" not in none and "Smaller embeddings" not in (run / "eval" / "results.md").read_text()


def test_truncated_figures_equal_those_of_a_model_loaded_with_truncate_dim(models_dir):
    """Cutting the cached full embeddings is what truncate_dim does: same vectors, same figures."""
    from sentence_transformers import SentenceTransformer

    from medenc.evaluation.dimensions import truncate

    loader = make_loader()
    es = EvalSet("stsb", "sts", N_PAIRS, [], data={})
    cols = loader.load_split("test", "stsb")
    es.data = {"s1": list(cols["sentence1"]), "s2": list(cols["sentence2"]), "y": np.asarray(cols["score"])}
    texts = list(dict.fromkeys(es.data["s1"] + es.data["s2"]))
    path = str(models_dir / "phase-2")
    full = dict(zip(texts, SentenceTransformer(path, device="cpu").encode(texts), strict=True))
    cut = SentenceTransformer(path, device="cpu", truncate_dim=8)
    theirs = dict(zip(texts, cut.encode(texts, normalize_embeddings=True), strict=True))
    ours = truncate(full, 8)
    for t in texts:
        np.testing.assert_allclose(ours[t], theirs[t], atol=1e-5)
    assert score_set(es, ours, None)["values"] == pytest.approx(
        score_set(es, theirs, None)["values"], abs=1e-6
    )


# --- one table of evaluation sets ---------------------------------------------------------------------------


def test_a_set_declared_once_in_the_table_flows_into_results_dimensions_card_and_targets(
    tmp_path, models_dir, monkeypatch
):
    """One EvalSetSpec entry, and nothing else, puts a set in results.json, results.md, the dimensions
    block, the card (text and model-index, with its source's upstream) and the targets check."""
    from medenc.core.eval_sets import EVAL_SETS, EvalSetSpec, Target
    from medenc.data.catalog import CATALOG
    from medenc.release.card import eval_results, render_card
    from medenc.release.publish import check_targets

    spec = EvalSetSpec(
        "toyset", "sts", ("spearman",), "Toy set", "stsbenchmark", dimensions=True,
        targets=(Target("spearman", -1.0, rank=99),),
    )  # fmt: skip
    monkeypatch.setitem(EVAL_SETS, "toyset", spec)
    data = make_loader()
    loader = SimpleNamespace(
        load_split=lambda split, name: data.load_split(split, "stsb" if name == "toyset" else name),
        load_retrieval=data.load_retrieval,
        manifest_hash=data.manifest_hash,
    )
    run = make_run(tmp_path, models_dir)
    results = run_evaluation(
        run, loader=loader, bootstrap=20, base_path=models_dir / "base", cache_root=tmp_path / "c",
        device="cpu", charts=False, dimensions=(16,),
    )  # fmt: skip
    doc = results.doc
    assert list(doc["sets"])[-1] == "toyset"  # every set by default, in table order
    assert doc["sets"]["toyset"] == {"task": "sts", "n": N_PAIRS, "metrics": ["spearman"], "title": "Toy set"}
    assert "spearman" in doc["results"]["phase-2"]["toyset"]
    assert list(doc["dimensions"]["16"]["base"])[-1] == "toyset"
    assert "Toy set" in (run / "eval" / "results.md").read_text()

    record = json.loads((PROJECT_ROOT / "results" / "cpu" / "run.json").read_text())  # a real record
    final_dir = models_dir / "phase-2"
    card = str(render_card(run, "org/toy", results=results, record=record, charts=[], final_dir=final_dir))
    assert "Toy set" in card and "| Toy set spearman |" in card  # the smaller-embeddings table's last column
    toy = [r for r in eval_results(results) if r.dataset_type == "toyset"]
    assert [(r.dataset_name, r.source_url) for r in toy] == [("Toy set", CATALOG["stsbenchmark"].url)]
    rows = check_targets(results)
    assert rows[-1]["set"] == "toyset" and rows[-1]["target"] == "≥ base − 1"


# --- the backend --------------------------------------------------------------------------------------------


def test_auto_backend_is_measured_recorded_and_keys_the_cache(tmp_path, models_dir):
    """`make evaluate`'s default: the choice and its measurement reach results.json, and vectors of one
    backend are never served to another."""
    from medenc.evaluation.backends import BACKENDS, candidates

    run = make_run(tmp_path, models_dir, phases=("phase-1",))
    kwargs = dict(
        loader=make_loader(), bootstrap=0, base_path=models_dir / "base", cache_root=tmp_path / "c",
        device="cpu", sets=["stsb", "medquad"], charts=False, dimensions=(),
    )  # fmt: skip
    doc = run_evaluation(run, backend="auto", **kwargs).doc
    record = doc["backend"]
    assert record["requested"] == "auto" and record["used"] in BACKENDS
    assert list(record["measured"]) == candidates("cpu") and record["measured"][record["used"]]["agrees"]
    assert json.loads((run / "eval" / "results.json").read_text())["backend"]["used"] == record["used"]
    if record["used"] != "torch-fp32":  # each model checked against its own fp32 vectors
        assert set(record["checked"]) == {"base", "phase-1"}

    def keys() -> set[str]:
        return {r["key"] for r in json.loads((run / "eval" / "embedding_cache.json").read_text())["base"]}

    first_keys = keys()
    others = [b for b in ("torch-fp32", "onnx") if b != record["used"]]
    for other in others:
        again = run_evaluation(run, backend=other, **kwargs).doc
        named = {"requested": other, "used": other, "why": "asked for (--backend)", "measured": None}
        assert {k: again["backend"][k] for k in named} == named
        assert ("checked" in again["backend"]) == (other != "torch-fp32")
        assert keys().isdisjoint(first_keys), other  # its own vectors, never another backend's
        fig = again["results"]["base"]["stsb"]["spearman"]["value"]
        assert fig == pytest.approx(doc["results"]["base"]["stsb"]["spearman"]["value"], abs=0.02)
    assert run_evaluation(run, backend="auto", **kwargs).doc["backend"]["reused_measurement"]

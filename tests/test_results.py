"""``Results``: results.json read through one type; a malformed file is refused naming the file and key."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from fakes import make_results

from medenc.core.errors import RunError
from medenc.core.layout import RESULTS_FILE
from medenc.evaluation.results import Cell, Delta, Results, load_results, write_results

PATH = Path("outputs/tiny/eval/results.json")


def _doc() -> dict:
    return copy.deepcopy(make_results("a" * 64))  # its sets are the fakes' shared SETS


def _refused(doc: dict) -> str:
    with pytest.raises(RunError) as err:
        Results.from_doc(doc, PATH)
    return str(err.value)


def test_the_final_model_is_models_final_from_whatever_its_name():
    doc = _doc()
    results = Results.from_doc(doc, PATH)
    assert results.final == results.final_model == results.released == "phase-3"
    assert results.final_folder.sha256 == "a" * 64
    # A final model that is no phase folder (a weight average) is final all the same.
    doc["models"]["averaged"] = {"path": "averaged", "sha256": "c" * 64, "model_hash": "d" * 64}
    doc["results"]["averaged"] = copy.deepcopy(doc["results"]["phase-1"])
    doc["models"]["final"]["from"] = "averaged"
    results = Results.from_doc(doc, PATH)
    assert results.final == results.released == "averaged"
    assert results.cell("final", "stsb", "spearman") == results.cell("phase-1", "stsb", "spearman")
    assert results.scored == ["base", "phase-1", "phase-2", "phase-3", "averaged"]


def test_a_run_without_final_has_no_final_model_and_releases_its_last_scored_one():
    doc = _doc()
    del doc["models"]["final"]
    results = Results.from_doc(doc, PATH)
    assert results.final is None and results.released == "phase-3"
    with pytest.raises(RunError, match=r"outputs/tiny/eval/results\.json: no models\.final"):
        _ = results.final_model


def test_a_cell_is_the_figure_its_ci_and_its_paired_delta():
    doc = _doc()
    results = Results.from_doc(doc, PATH)
    raw = doc["results"]["phase-3"]["medquad"]["ndcg@10"]
    assert results.cell("phase-3", "medquad", "ndcg@10") == Cell(raw["value"], raw["ci_low"], raw["ci_high"])
    assert results.cell("final", "medquad", "ndcg@10").value == raw["value"]
    d = doc["deltas"]["phase-3"]["medquad"]["ndcg@10"]
    assert results.delta("final", "medquad", "ndcg@10") == Delta(
        d["diff"], d["ci_low"], d["ci_high"], d["significant"]
    )
    assert results.find_delta("base", "medquad", "ndcg@10") is None  # base is the reference
    assert results.find_cell("base", "medquad", "nosuchmetric") is None
    with pytest.raises(RunError) as err:
        results.cell("base", "medquad", "nosuchmetric")
    assert str(err.value).startswith(f"{PATH}: results: no nosuchmetric on medquad for base")
    assert results.headline("medquad") == "ndcg@10" and results.sets["stsb"].metrics == ("spearman",)


def test_a_missing_key_or_another_schema_is_refused_naming_the_file_and_the_key():
    doc = _doc()
    del doc["sets"]
    assert _refused(doc).startswith(f"{PATH}: sets: expected an object, found nothing")
    doc = _doc()
    del doc["results"]["base"]["biosses"]["spearman"]["value"]
    assert "results.base.biosses.spearman.value: expected a number, found nothing" in _refused(doc)
    doc = _doc()
    doc["sets"]["stsb"]["metrics"] = "spearman"
    assert "sets.stsb.metrics: expected a list, found 'spearman'" in _refused(doc)
    doc = _doc()
    doc["models"]["final"]["from"] = "phase-9"
    assert "models.final.from: expected one of the models (base, phase-1" in _refused(doc)
    doc = _doc()
    doc["schema_version"] = 2
    assert _refused(doc) == f"{PATH}: expected schema_version 1, found 2"
    doc = _doc()
    doc["exports"] = {"model_hash": "f" * 64, "variants": {}}  # no hardware, sample, ...
    assert _refused(doc).startswith(f"{PATH}: exports: malformed (KeyError('hardware'))")
    # A key only some readers need is refused when read, naming the file and the key.
    doc = _doc()
    del doc["max_seq_lengths"]
    with pytest.raises(
        RunError, match=r"results\.json: expected max_seq_lengths \(docs/results_schema\.md\)"
    ):
        _ = Results.from_doc(doc, PATH).max_seq_lengths


def test_load_names_the_file_that_is_missing_or_not_json(tmp_path):
    with pytest.raises(RunError, match=f"{tmp_path / RESULTS_FILE}: expected evaluation results, found no"):
        Results.load(tmp_path / RESULTS_FILE)
    (tmp_path / RESULTS_FILE).write_text("{not json")
    with pytest.raises(RunError, match=f"{tmp_path / RESULTS_FILE}: expected JSON"):
        Results.load(tmp_path / RESULTS_FILE)


def test_the_document_is_written_back_as_it_was_read(tmp_path):
    """The type changes nothing on disk: load, then write, gives the same bytes."""
    (tmp_path / "a" / "eval").mkdir(parents=True)
    write_results(tmp_path / "a" / "eval", _doc())
    results = load_results(tmp_path / "a", check_manifest=False)
    (tmp_path / "b").mkdir()
    write_results(tmp_path / "b", results.doc)
    assert (tmp_path / "b" / RESULTS_FILE).read_bytes() == (
        tmp_path / "a" / "eval" / RESULTS_FILE
    ).read_bytes()
    assert results.path == tmp_path / "a" / "eval" / RESULTS_FILE


def test_backend_and_exports_blocks():
    doc = _doc()
    results = Results.from_doc(doc, PATH)
    assert results.backend.used == "torch-fp32" and results.backend.why == "fixed"  # before backends
    assert results.exports is None and results.final_exports is None
    measured = {
        "onnx": {"texts_per_s": 50.0, "max_cosine_distance": 2e-7, "agrees": True, "precision": "fp32"}
    }
    doc["backend"] = {"requested": "auto", "used": "onnx", "why": "fastest", "measured": measured}
    variants = {"pytorch_fp32": {"file": None, "texts_per_s": 20.0}}
    doc["exports"] = {"model_hash": "f" * 64, "hardware": {"cores": 2}, "sample": 8, "batch_size": 4,
                      "max_seq_length": 256, "variants": variants}  # fmt: skip
    results = Results.from_doc(doc, PATH)
    assert results.backend.measured["onnx"].texts_per_s == 50.0
    assert results.final_exports.variants["pytorch_fp32"].texts_per_s == 20.0
    doc["exports"]["model_hash"] = "e" * 64  # measured on an earlier final model: nothing that ships
    results = Results.from_doc(json.loads(json.dumps(doc)), PATH)
    assert results.exports.model_hash == "e" * 64 and results.final_exports is None

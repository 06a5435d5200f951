"""The ONNX and OpenVINO exports (``make exports``) on the tiny model: equal embeddings, the int8 file, the
card's onnxruntime snippet, the measurement record; and the release, which never builds them, refusing a
missing, damaged or stale export with the folder or file named."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fakes import REPO_ID, stage

from medenc.core.errors import ExportError
from medenc.core.layout import EVAL_DIR, EXPORTS_DIR, RELEASE_DIR
from medenc.core.paths import PROJECT_ROOT
from medenc.core.runtime import onnx_encoder, openvino_encoder
from medenc.export import ensure_exports
from medenc.export.record import (
    EXPORTS_MANIFEST,
    ONNX_FP32,
    OPENVINO_BIN,
    OPENVINO_INT8_BIN,
    OPENVINO_INT8_XML,
    OPENVINO_XML,
    int8_name,
    verify_exports,
)

# Lengths from one token to past the truncation length: the dynamic axes and the padding mask are exercised.
TEXTS = [
    "MI",
    "The patient has hypertension.",
    "Patient has high blood pressure and a history of type 2 diabetes mellitus, treated with metformin. " * 6,
    "Broken wrist",
]


@pytest.fixture(scope="module")
def staged(tiny_release) -> Path:
    """The tiny model's test release with its exports (conftest: built once per session)."""
    return tiny_release


def test_onnx_and_openvino_exports_give_the_models_embeddings(staged, tiny_model):
    import onnxruntime as ort

    session = ort.InferenceSession(str(staged / ONNX_FP32), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state"]
    assert all(isinstance(d, str) for i in session.get_inputs() for d in i.shape)  # dynamic batch, sequence
    expected = tiny_model.encode(TEXTS, convert_to_numpy=True)
    length = tiny_model.max_seq_length
    for encoder in (
        onnx_encoder(staged / ONNX_FP32, staged, length),
        openvino_encoder(staged / OPENVINO_XML, staged, length),
    ):
        got = encoder.encode(TEXTS, batch_size=3)
        assert np.allclose(got, expected, atol=1e-5), np.abs(got - expected).max()


def test_an_export_truncates_where_the_evaluation_sets_the_length(staged, tiny_model):
    """The suite sets ``max_seq_length`` per text kind; an export must then see what PyTorch sees."""
    from medenc.evaluation.cache import encode_texts

    encoder = onnx_encoder(staged / ONNX_FP32, staged, tiny_model.max_seq_length)
    full = encoder.encode(TEXTS[2:3])
    short = encode_texts(encoder, TEXTS[2:3], 8)
    length, tiny_model.max_seq_length = tiny_model.max_seq_length, 8
    try:
        expected = tiny_model.encode(TEXTS[2:3], convert_to_numpy=True)
    finally:
        tiny_model.max_seq_length = length
    assert np.allclose(short, expected, atol=1e-5)
    assert not np.allclose(short, full, atol=1e-3)  # the length took effect


def test_the_static_int8_openvino_ir_is_quantized_and_agrees(staged, tiny_model):
    import openvino as ov

    ops = {op.get_type_name() for op in ov.Core().read_model(str(staged / OPENVINO_INT8_XML)).get_ops()}
    assert "FakeQuantize" in ops  # int8 scales in the graph, not an fp32 copy
    manifest = json.loads((staged.parent / EXPORTS_DIR / EXPORTS_MANIFEST).read_text())
    assert manifest["calibration_texts"] > 0 and OPENVINO_INT8_BIN in manifest["files"]
    got = openvino_encoder(staged / OPENVINO_INT8_XML, staged, tiny_model.max_seq_length).encode(TEXTS)
    expected = tiny_model.encode(TEXTS, convert_to_numpy=True)
    assert got.shape == expected.shape
    assert np.min(np.sum(got * expected, axis=1)) > 0.95  # int8 activations too: close, not equal


def test_calibration_texts_come_from_the_validation_pairs_and_a_missing_set_is_named(tmp_path, monkeypatch):
    from fakes import tiny_sets

    from medenc.core.layout import PAIRS
    from medenc.data.checksums import write_checksums
    from medenc.export.build import calibration_texts

    monkeypatch.setenv("PREPARED_DIR", str(tmp_path))
    with pytest.raises(ExportError, match=rf"validation pairs: .*{tmp_path / 'validation' / PAIRS}"):
        calibration_texts()
    pairs = tiny_sets("validation")[PAIRS]
    pairs.save_to_disk(str(tmp_path / "validation" / PAIRS))
    (tmp_path / "manifest.json").write_text('{"test": true}\n')
    write_checksums(tmp_path)
    texts = calibration_texts(n=5)
    assert len(texts) == len(set(texts)) == 5
    assert set(texts) <= set(pairs["anchor"]) | set(pairs["positive"])
    assert texts == calibration_texts(n=5)  # seeded: a rebuild calibrates on the same texts


def test_the_int8_file_exists_loads_and_agrees(staged, tiny_model):
    name = int8_name()
    assert re.fullmatch(r"onnx/model_q(u)?int8_(avx512_vnni|avx512|avx2|arm64)\.onnx", name)
    assert (staged / name).is_file() and (staged / OPENVINO_BIN).is_file()
    got = onnx_encoder(staged / name, staged, tiny_model.max_seq_length).encode(TEXTS)
    expected = tiny_model.encode(TEXTS, convert_to_numpy=True)
    assert got.shape == expected.shape
    assert np.min(np.sum(got * expected, axis=1)) > 0.99  # int8 weights: close, not equal


def _card_snippet(card: str) -> str:
    """The card's onnxruntime + tokenizers code block."""
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)
    return next(b for b in blocks if "onnxruntime" in b and "tokenizers" in b)


def test_the_cards_onnxruntime_snippet_runs_and_matches_sentence_transformers(staged, tiny_model):
    card = (staged / "README.md").read_text(encoding="utf-8")
    snippet = _card_snippet(card)
    assert 'backend="onnx"' in card and 'backend="openvino"' in card and int8_name() in card
    # The Hub download is the one thing replaced: the files come from the staged release folder.
    local = f"def hf_hub_download(repo, name):\n    return {str(staged)!r} + '/' + name\n"
    code = snippet.replace("from huggingface_hub import hf_hub_download\n", local)
    assert code != snippet
    for model_file, tol in ((ONNX_FP32, 1e-5), (int8_name(), None)):
        scope: dict = {}
        exec(
            compile(
                code.replace(f'model_file = "{ONNX_FP32}"', f'model_file = "{model_file}"'), "card", "exec"
            ),
            scope,
        )
        expected = tiny_model.encode(scope["sentences"], convert_to_numpy=True)
        if tol:
            assert np.allclose(scope["embeddings"], expected, atol=tol)
        else:
            assert scope["embeddings"].shape == expected.shape


def test_the_card_shows_width_pooling_and_the_models_own_similarities(staged, tiny_model):
    from medenc.release.card import USAGE_SENTENCES

    card = (staged / "README.md").read_text(encoding="utf-8")
    assert "**Output dimensions:** 32" in card
    assert (
        "**Pooling:** mean pooling of the token embeddings (padding excluded), then L2 normalisation" in card
    )
    emb = tiny_model.encode(USAGE_SENTENCES, convert_to_tensor=True)
    sim = tiny_model.similarity(emb, emb)
    assert f"# tensor([[{sim[0, 0]:.4f}, {sim[0, 1]:.4f}, {sim[0, 2]:.4f}]," in card
    assert "have not been measured yet" in card  # no figures in results.json yet


def _copy_run(staged: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "outputs" / "tiny"
    shutil.copytree(staged.parent, run_dir, ignore=shutil.ignore_patterns(RELEASE_DIR))
    shutil.copytree(staged.parent.parent.parent / "prepared", tmp_path / "prepared")
    return run_dir


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (
            lambda d: (d / ONNX_FP32).write_bytes((d / ONNX_FP32).read_bytes()[:1000]),
            rf"{ONNX_FP32}: damaged export",
        ),
        (lambda d: (d / OPENVINO_BIN).unlink(), rf"{OPENVINO_BIN}: missing export"),
        (lambda d: (d / OPENVINO_INT8_BIN).unlink(), rf"{OPENVINO_INT8_BIN}: missing export"),
        (lambda d: (d / EXPORTS_MANIFEST).unlink(), rf"{EXPORTS_MANIFEST}: missing"),
    ],
    ids=["truncated-onnx", "missing-bin", "missing-int8-bin", "missing-record"],
)
def test_a_damaged_or_missing_export_is_refused_with_the_file_named(staged, tmp_path, damage, problem):
    run_dir = _copy_run(staged, tmp_path)
    damage(run_dir / EXPORTS_DIR)
    with pytest.raises(ExportError, match=problem):
        _stage(run_dir)
    assert not (run_dir / RELEASE_DIR).exists()


def test_the_release_never_builds_exports_it_names_the_folder_and_the_fix(staged, tmp_path):
    """`make release` once built missing exports itself; a release only verifies and copies them."""
    run_dir = _copy_run(staged, tmp_path)
    shutil.rmtree(run_dir / EXPORTS_DIR)
    with pytest.raises(ExportError) as err:
        _stage(run_dir)
    msg = str(err.value)
    assert msg.startswith(f"{run_dir / EXPORTS_DIR}: missing: ") and "make exports RUN=tiny" in msg
    assert not (run_dir / EXPORTS_DIR).exists() and not (run_dir / RELEASE_DIR).exists()


def test_exports_of_an_earlier_final_model_are_refused_by_the_release_and_rebuilt_by_make_exports(
    staged, tmp_path, monkeypatch
):
    run_dir = _copy_run(staged, tmp_path)
    monkeypatch.setenv("PREPARED_DIR", str(tmp_path / "prepared"))  # the rebuild calibrates on its pairs
    record = run_dir / EXPORTS_DIR / EXPORTS_MANIFEST
    current = json.loads(record.read_text())["model_hash"]
    record.write_text(json.dumps({**json.loads(record.read_text()), "model_hash": "0" * 64}))
    fix = "make exports RUN=tiny EXPORT_ARGS=--rebuild"
    with pytest.raises(ExportError, match=rf"exports of another model .*; rebuild them: {fix}"):
        _stage(run_dir)
    (run_dir / f".{EXPORTS_DIR}.tmp-abc123").mkdir()  # what a killed build leaves: removed by the next
    ensure_exports(run_dir)
    assert json.loads(record.read_text())["model_hash"] == current and list(run_dir.glob(".*.tmp-*")) == []
    assert (_stage(run_dir) / ONNX_FP32).is_file()


@pytest.mark.parametrize("name", ["modules.json", "onnx/../modules.json", "../../x", "/tmp/x", "onnx"])
def test_exports_json_names_only_files_under_onnx_and_openvino(staged, tmp_path, name):
    """A modules.json listed in exports.json replaced final's (Normalize dropped); `../../x` wrote outside
    the staged folder. Each file listed must be a plain path under onnx/ or openvino/."""
    import hashlib

    run_dir = _copy_run(staged, tmp_path)
    folder = run_dir / EXPORTS_DIR
    payload = b'[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]'
    (folder / "modules.json").write_bytes(payload)
    manifest = json.loads((folder / EXPORTS_MANIFEST).read_text())
    manifest["files"][name] = hashlib.sha256(payload).hexdigest()
    (folder / EXPORTS_MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ExportError) as err:
        _stage(run_dir)
    msg = str(err.value)
    assert f"{folder / EXPORTS_MANIFEST}: files[{name!r}]: expected a file under onnx or openvino/" in msg
    assert not (run_dir / RELEASE_DIR).exists() and not (tmp_path / "x").exists()


def test_release_script_refuses_a_damaged_export_with_exit_2(staged, tmp_path):
    run_dir = _copy_run(staged, tmp_path)
    int8 = run_dir / EXPORTS_DIR / int8_name()
    int8.write_bytes(b"not an onnx graph")
    env = {
        "OUTPUTS_DIR": str(tmp_path / "outputs"),
        "PREPARED_DIR": str(tmp_path / "prepared"),
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "scripts/release.py", "--run", "tiny", "--repo-id", REPO_ID, "--dry-run",
         "--test-release"],
        cwd=PROJECT_ROOT, env={**_base_env(), **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: ExportError: {int8}: damaged export" in proc.stderr
    # verify_exports reads the same verdict; an export of another model is refused as well.
    with pytest.raises(ExportError, match="exports of another model"):
        verify_exports(staged.parent / EXPORTS_DIR, expected_hash="0" * 64)


def _stage(run_dir: Path) -> Path:
    """The test release of ``run_dir`` with its exports, staged."""
    return stage(run_dir, test_release=True, exports=True)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("HF_")}


def _loader():
    """A few texts per set of the suite, in the shapes medenc.data returns them."""
    from datasets import Dataset

    from medenc.evaluation.sets import SETS

    s1 = [f"{w} case {i}" for i, w in enumerate(["fever", "cough", "insulin dose", "asthma attack"] * 3)]
    s2 = [f"{t} again" for t in reversed(s1)]
    splits = {
        "sts": Dataset.from_dict({"sentence1": s1, "sentence2": s2, "score": np.linspace(0, 1, 12).tolist()}),
        "pair_classification": Dataset.from_dict(
            {"sentence1": s1, "sentence2": s2, "label": [i % 2 for i in range(12)]}
        ),
        "triplets": Dataset.from_dict({"anchor": s1, "positive": s2, "negative": s2[3:] + s2[:3]}),
    }

    def load_retrieval(name: str):
        corpus = {f"c{i}": f"{t}: a longer passage about it" for i, t in enumerate(s2)}
        return SimpleNamespace(
            queries={f"q{i}": t for i, t in enumerate(s1)},
            corpus=corpus,
            relevant={f"q{i}": {f"c{i}"} for i in range(12)},
        )

    return SimpleNamespace(
        load_split=lambda split, name: splits[SETS[name].task],
        load_retrieval=load_retrieval,
        manifest_hash=lambda: "m" * 64,
    )


def test_measurement_is_recorded_in_results_json_and_the_cards_exports_table(staged, tmp_path, monkeypatch):
    from medenc.export.measure import measure_run

    monkeypatch.setenv("MEDENC_CACHE", str(tmp_path / "cache"))  # the embedding cache of the suite's figures
    run_dir = _copy_run(staged, tmp_path)
    block = measure_run(run_dir, loader=_loader(), sample=40, bootstrap=20)
    variants = block["variants"]
    assert list(variants) == [
        "pytorch_fp32", "onnx_fp32", "onnx_int8", "openvino_fp32", "openvino_default", "openvino_int8"
    ]  # fmt: skip
    assert variants["onnx_fp32"]["max_cosine_distance"] < 1e-5 and variants["onnx_fp32"]["speedup"] > 0
    assert variants["onnx_int8"]["file"] == int8_name()
    suite = block["suite"]
    assert set(suite["deltas"]) == {"onnx_int8", "openvino_int8"} and "stsb" in suite["deltas"]["onnx_int8"]
    doc = json.loads((run_dir / EVAL_DIR / "results.json").read_text())
    assert doc["exports"] == json.loads(json.dumps(block))
    # The README's serving sentence comes from the same block; a run without export figures is refused.
    from medenc.core.errors import RunError
    from medenc.evaluation.results import Results
    from medenc.release.publish import serving_line

    line = serving_line(Results.load(run_dir / EVAL_DIR / "results.json"))
    assert "OpenVINO int8 " in line and f"{variants['openvino_int8']['speedup']:.2f}×" in line
    with pytest.raises(RunError, match="make exports RUN="):
        serving_line(Results.from_doc({**doc, "exports": {}}, run_dir / EVAL_DIR / "results.json"))
    # results.json's hash record follows the new file: the release takes it and the card shows the figures.
    staged_again = _stage(run_dir)
    card = (staged_again / "README.md").read_text(encoding="utf-8")
    assert "| ONNX int8, dynamic quantization (onnxruntime) | `" + int8_name() + "` |" in card
    assert "The int8 exports on the held-out suite" in card and "have not been measured" not in card
    # One row per set at its headline metric, a value and a paired Δ per int8 variant.
    header = "| Set | Metric | PyTorch fp32 | ONNX int8 | Δ [95% CI] | OpenVINO int8 | Δ [95% CI] |"
    assert header in card
    table = card.split(header, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert table and all(row.count("|") == header.count("|") for row in table)
    assert [row for row in table if row.startswith("| STS-B | spearman | ")]
    assert "| OpenVINO int8, static quantization (nncf, SmoothQuant) | `" + OPENVINO_INT8_XML + "` |" in card

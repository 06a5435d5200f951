"""The release loads the way its users load it: Text Embeddings Inference's reading of the folder, and
sentence-transformers' ONNX and OpenVINO backends (slow, in throwaway environments that hold optimum).

Text Embeddings Inference (TEI, github.com/huggingface/text-embeddings-inference, main as of 2026-12) reads,
for an MPNet embedding model (confirmed in its sources):

- ``config.json`` (router/src/lib.rs ``ModelConfig``: ``architectures``, ``model_type``,
  ``max_position_embeddings``, ``pad_token_id``); ``model_type: mpnet`` selects the candle MPNet model
  (backends/candle/src/lib.rs), whose config needs the keys of ``MPNET_KEYS`` (models/mpnet.rs) and which
  numbers positions from ``pad_token_id + 1`` = 2, so it holds ``max_position_embeddings - 2`` tokens;
- ``1_Pooling/config.json`` (lib.rs ``PoolConfig``): ``pooling_mode`` (``cls``, ``mean``, ``lasttoken``),
  else a boolean per mode; releases before the string was read require ``pooling_mode_cls_token`` and
  ``pooling_mode_mean_tokens`` and refuse a config without them;
- ``sentence_bert_config.json`` (core/src/download.rs ``ST_CONFIG_NAMES``): ``max_seq_length`` is the longest
  input; without it, a warning and ``max_position_embeddings`` (minus 2 for the RoBERTa family only, not
  MPNet): 514, past MPNet's 512 positions; releases before that fallback refuse the file;
- ``config_sentence_transformers.json``: its prompts; ``tokenizer.json`` (fast tokenizers only; TEI sets
  truncation and padding itself); weights ``model.safetensors`` (candle) or ``model.onnx`` /
  ``onnx/model.onnx`` (backends/ort/src/lib.rs: inputs ``input_ids``, ``attention_mask`` and, if the graph
  has it, ``token_type_ids``; output ``last_hidden_state`` or ``token_embeddings``, mean-pooled by TEI);
- ``modules.json``: a Transformer, a Pooling and a final Dense module tell an embedding model from a
  reranker; TEI does not run other modules, and normalises when a request asks (``normalize``, default true).

``tei_problems`` checks a release folder against those rules, and against the model's own use: the pooling
is mean, TEI's length is the one sentence-transformers truncates at, the similarity function is stated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medenc.core.modeling import POOLING_FLAGS, save_model
from medenc.core.paths import PROJECT_ROOT

MPNET_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
    "initializer_range", "layer_norm_eps", "relative_attention_num_buckets",
)  # fmt: skip
TEI_MODULES = ("Transformer", "Pooling", "Normalize")
ONNX_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}
ONNX_OUTPUTS = {"last_hidden_state", "token_embeddings"}


def _read(folder: Path, rel: str, problems: list[str]) -> dict | list | None:
    try:
        return json.loads((folder / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{rel}: missing")
    except ValueError as exc:
        problems.append(f"{rel}: not JSON ({exc})")
    return None


def _tei_pooling(pooling: dict, problems: list[str]) -> None:
    """The pooling TEI reads: the string first, else the flags; older TEI needs the flags."""
    mode = pooling.get("pooling_mode")
    flags = [m for m, flag in POOLING_FLAGS.items() if pooling.get(flag) is True]
    read = mode if isinstance(mode, str) else (flags[0] if flags else None)
    if read != "mean":
        problems.append(f"1_Pooling/config.json: TEI reads pooling {read!r}, the model mean-pools")
    if not all(f in pooling for f in ("pooling_mode_cls_token", "pooling_mode_mean_tokens")):
        problems.append(
            "1_Pooling/config.json: no pooling_mode_cls_token / pooling_mode_mean_tokens, which TEI "
            "before its support of pooling_mode requires (medenc.core.modeling.save_model writes them)"
        )
    elif isinstance(mode, str) and flags != [mode]:
        problems.append(f"1_Pooling/config.json: pooling_mode {mode!r} and the flags {flags} disagree")


def _tei_length(folder: Path, config: dict, problems: list[str]) -> None:
    """TEI's longest input against MPNet's positions and against what sentence-transformers truncates at."""
    positions = config["max_position_embeddings"] - (config.get("pad_token_id", 1) + 1)
    st = _read(folder, "sentence_bert_config.json", problems) or {}
    tei = st.get("max_seq_length")
    if tei is None:
        tei = config["max_position_embeddings"]
        problems.append(
            f"sentence_bert_config.json: no max_seq_length; TEI then takes max_position_embeddings ({tei})"
        )
    if tei > positions:
        problems.append(f"TEI's input length {tei} is past the model's {positions} positions")
    tokenizer = _read(folder, "tokenizer_config.json", problems) or {}
    if tokenizer.get("model_max_length") != tei:
        problems.append(
            f"TEI truncates at {tei} tokens, sentence-transformers at the tokenizer's "
            f"model_max_length ({tokenizer.get('model_max_length')})"
        )


def _tei_modules(folder: Path, problems: list[str]) -> None:
    modules = _read(folder, "modules.json", problems) or []
    names = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if names[:2] != ["Transformer", "Pooling"] or modules[1].get("path") != "1_Pooling":
        problems.append(f"modules.json: expected Transformer, then Pooling in 1_Pooling; found {names}")
    if [n for n in names if n not in TEI_MODULES]:
        problems.append(f"modules.json: TEI runs Transformer, Pooling and normalisation only; found {names}")
    st = _read(folder, "config_sentence_transformers.json", problems) or {}
    if st.get("similarity_fn_name") != "cosine":
        problems.append(
            f"config_sentence_transformers.json: similarity_fn_name {st.get('similarity_fn_name')!r}; "
            "the model is trained for cosine"
        )


def _tei_weights(folder: Path, problems: list[str]) -> None:
    import onnx
    from tokenizers import Tokenizer

    if not (folder / "model.safetensors").is_file():
        problems.append("model.safetensors: missing (TEI's candle backend)")
    try:
        Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # tokenizers raises its own exception type
        problems.append(f"tokenizer.json: not a fast tokenizer TEI can load ({exc})")
    path = folder / "onnx" / "model.onnx"
    if not path.is_file():
        problems.append("onnx/model.onnx: missing (TEI's ONNX Runtime backend)")
        return
    graph = onnx.load(str(path), load_external_data=False).graph
    inputs, outputs = {i.name for i in graph.input}, {o.name for o in graph.output}
    if not {"input_ids", "attention_mask"} <= inputs <= ONNX_INPUTS or not outputs & ONNX_OUTPUTS:
        problems.append(f"onnx/model.onnx: inputs {sorted(inputs)}, outputs {sorted(outputs)}")


def tei_problems(folder: Path) -> list[str]:
    """What keeps TEI from serving ``folder`` as this project's model (the module doc's rules); [] if none."""
    problems: list[str] = []
    config = _read(folder, "config.json", problems)
    if config is None:
        return problems
    missing = [k for k in ("architectures", "model_type", *MPNET_KEYS) if k not in config]
    if missing or config["model_type"] != "mpnet":
        problems.append(f"config.json: TEI's MPNet needs model_type mpnet and {missing or 'its keys'}")
        return problems
    if any(a.endswith("Classification") for a in config["architectures"]):
        problems.append(f"config.json: TEI serves {config['architectures']} as a classifier")
    pooling = _read(folder, "1_Pooling/config.json", problems)
    if pooling is not None:
        _tei_pooling(pooling, problems)
    _tei_length(folder, config, problems)
    _tei_modules(folder, problems)
    _tei_weights(folder, problems)
    return problems


def test_the_staged_release_is_what_tei_reads(tiny_release):
    assert tei_problems(tiny_release) == []


def test_the_card_names_what_loads_each_export_and_what_tei_reads(tiny_release, tmp_path):
    card = " ".join((tiny_release / "README.md").read_text(encoding="utf-8").split())
    assert "sentence-transformers 6.2.0 with optimum-intel 2.2.0" in card
    assert "sentence-transformers 5.7.0 with optimum-onnx 0.1.0 (optimum 2.1.0, transformers 4.57.6" in card
    assert "the input length in `sentence_bert_config.json` (128 tokens, what sentence-transformers" in card
    # A folder as sentence-transformers 6 alone saves it: the card says what TEI and 5.x would miss.
    from medenc.release.card import model_details

    shutil.copytree(tiny_release, tmp_path / "m", ignore=shutil.ignore_patterns("onnx", "openvino", "runs"))
    (tmp_path / "m" / "sentence_bert_config.json").write_text('{"transformer_task": "feature-extraction"}')
    assert not model_details(tmp_path / "m")["all_readers"]


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


DAMAGES = {
    "cls-pooling": (
        "1_Pooling/config.json",
        lambda d: d.update(pooling_mode="cls", pooling_mode_cls_token=True, pooling_mode_mean_tokens=False),
        "TEI reads pooling 'cls'",
    ),
    "no-pooling-flags": ("1_Pooling/config.json", lambda d: d.pop("pooling_mode_mean_tokens"), "requires"),
    "no-similarity": (
        "config_sentence_transformers.json",
        lambda d: d.pop("similarity_fn_name"),
        "similarity_fn_name None",
    ),
    "no-max-seq-length": (
        "sentence_bert_config.json",
        lambda d: d.pop("max_seq_length"),
        "TEI then takes max_position_embeddings (514)",
    ),
    "past-the-positions": (
        "sentence_bert_config.json",
        lambda d: d.update(max_seq_length=514),
        "past the model's 512 positions",
    ),
    "bert-config": ("config.json", lambda d: d.update(model_type="bert"), "model_type mpnet"),
    "dense-module": (
        "modules.json",
        lambda d: d.append({"idx": 3, "path": "3_Dense", "type": "sentence_transformers.models.Dense"}),
        "TEI runs Transformer, Pooling and normalisation only",
    ),
}  # fmt: skip


@pytest.mark.parametrize("damage", [*DAMAGES, "no-onnx"])
def test_a_file_tei_cannot_read_as_this_model_is_named(tiny_release, tmp_path, damage):
    folder = tmp_path / "release"
    shutil.copytree(tiny_release, folder, ignore=shutil.ignore_patterns("openvino", "runs", "assets"))
    if damage == "no-onnx":
        (folder / "onnx" / "model.onnx").unlink()
        expected = "onnx/model.onnx: missing"
    else:
        rel, change, expected = DAMAGES[damage]
        _edit(folder / rel, change)
    problems = tei_problems(folder)
    assert any(expected in p for p in problems), problems


def test_save_model_adds_what_other_readers_need_and_changes_no_vector(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    tiny_model.save(str(tmp_path / "plain"))
    save_model(tiny_model, tmp_path / "saved")
    saved = tmp_path / "saved"
    types = [m["type"] for m in json.loads((saved / "modules.json").read_text())]
    assert types == [f"sentence_transformers.models.{n}" for n in ("Transformer", "Pooling", "Normalize")]
    assert json.loads((saved / "sentence_bert_config.json").read_text())["max_seq_length"] == 128
    pooling = json.loads((saved / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean" and pooling["pooling_mode_mean_tokens"] is True
    assert pooling["pooling_mode_cls_token"] is False
    texts = ["MI", "The patient has hypertension. " * 40]
    vectors = [SentenceTransformer(str(tmp_path / n), device="cpu").encode(texts) for n in ("plain", "saved")]
    assert np.array_equal(*vectors)


# --- sentence-transformers' ONNX and OpenVINO backends (optimum), in their own environments -----------------
# Lengths from one token to past the truncation length, as tests/test_export.py uses.
TEXTS = [
    "MI",
    "The patient has hypertension.",
    "Patient has high blood pressure and a history of type 2 diabetes mellitus, treated with metformin. " * 6,
    "Broken wrist",
]
VENVS = os.environ.get("MEDENC_SERVING_VENVS")
# (environment, backend, file: a glob in the release or None for the backend's default, fp32 or not)
BACKENDS = {
    "openvino-fp32": ("openvino", "openvino", None, True),
    "openvino-int8": ("openvino", "openvino", "openvino/*qint8*.xml", False),
    "onnx-fp32": ("onnx", "onnx", None, True),
    "onnx-int8": ("onnx", "onnx", "onnx/model_q*int8_*.onnx", False),
    "torch-in-the-onnx-environment": ("onnx", "torch", None, True),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BACKENDS))
def test_sentence_transformers_backends_give_the_pytorch_vectors(tiny_release, tiny_model, tmp_path, case):
    """``SentenceTransformer(release, backend=...)`` as a user with optimum runs it (tools/serving_check.py),
    against the pinned stack's PyTorch vectors: fp32 within 1e-5, int8 within test_export.py's bounds."""
    env, backend, pattern, fp32 = BACKENDS[case]
    python = Path(VENVS or "-") / env / "bin" / "python"
    if not python.is_file():
        pytest.skip(
            f"no {env} environment: set MEDENC_SERVING_VENVS to a folder holding the onnx/ and openvino/ "
            "virtualenvs made as tools/serving_check.py says (optimum cannot join the pinned stack)"
        )
    tool = PROJECT_ROOT / "tools" / "serving_check.py"
    cmd = [str(python), str(tool), str(tiny_release), "--backend", backend]
    if pattern:
        cmd += ["--file", next(tiny_release.glob(pattern)).relative_to(tiny_release).as_posix()]
    (tmp_path / "texts.json").write_text(json.dumps(TEXTS), encoding="utf-8")
    cmd += ["--texts", str(tmp_path / "texts.json"), "--out", str(tmp_path / "v.npy")]
    env_vars = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env_vars)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    got, expected = np.load(tmp_path / "v.npy"), tiny_model.encode(TEXTS, convert_to_numpy=True)
    assert got.shape == expected.shape, report
    if fp32:
        assert np.allclose(got, expected, atol=1e-5), (np.abs(got - expected).max(), report)
    else:
        bound = 0.99 if backend == "onnx" else 0.95  # int8 activations too in the OpenVINO IR
        assert np.min(np.sum(got * expected, axis=1)) > bound, report
    print(json.dumps({case: report["versions"]}), file=sys.stderr)

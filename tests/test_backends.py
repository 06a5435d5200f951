"""The evaluation's backend: the rule that picks one, the kept measurement, and the graph backends on the
tiny model against PyTorch."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from medenc.core.errors import EvaluationError, ModelError
from medenc.core.paths import PROJECT_ROOT
from medenc.evaluation import backends as B

TEXTS = [f"patient {i} has {'high ' * (i % 7)}blood pressure and {'a ' * (i % 11)}cough" for i in range(300)]


class FakeEncoder:
    """Vectors from the text's hash; ``noise`` moves them (a backend that disagrees); ``delay`` per text."""

    def __init__(self, delay: float, noise: float = 0.0):
        self.delay, self.noise, self.max_seq_length, self.calls = delay, noise, 128, 0

    def encode(self, texts, **_):
        self.calls += 1
        time.sleep(self.delay * len(texts))
        rows = [np.random.default_rng(abs(hash((t, self.max_seq_length))) % 2**32).random(8) for t in texts]
        out = np.asarray(rows, dtype=np.float32)
        return out + self.noise * np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)


# torch-bf16 is the fastest but disagrees; openvino is the fastest that agrees; the reference is the slowest.
FAKES = {
    "torch-fp32": (3e-3, 0.0),
    "torch-bf16": (0.0, 0.1),
    "openvino": (1e-3, 0.0),
    "onnx": (2e-3, 0.0),
}


def fake_loader(loads: list[str]):
    def load(backend: B.Backend) -> FakeEncoder:
        loads.append(backend.name)
        return FakeEncoder(*FAKES[backend.name])

    return load


def select(tmp_path, loads, texts=TEXTS, **kwargs):
    return B.select_backend(
        "auto", device="cpu", load=fake_loader(loads), texts={128: texts, 256: texts[::-1]},
        model_id="m" * 64, cache_file=tmp_path / B.CHOICE_FILE, **kwargs,
    )  # fmt: skip


def test_auto_takes_the_fastest_backend_whose_vectors_agree_with_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "candidates", lambda device: list(FAKES))
    loads: list[str] = []
    record = select(tmp_path, loads)
    assert record["used"] == "openvino", record["measured"]
    assert loads == list(FAKES)  # the reference first, each candidate once
    measured = record["measured"]
    assert measured["torch-fp32"]["max_cosine_distance"] == pytest.approx(0.0, abs=1e-6)
    assert not measured["torch-bf16"]["agrees"] and measured["torch-bf16"]["max_cosine_distance"] > 1e-3
    assert measured["torch-bf16"]["texts_per_s"] > measured["openvino"]["texts_per_s"]  # fastest, refused
    assert record["requested"] == "auto" and "openvino" in record["why"] and not record["reused_measurement"]
    assert 0 < sum(record["sample"].values()) <= 2 * len(TEXTS) / B.SAMPLE_EVERY + 2 * B.BATCH_SIZE


def test_the_measurement_is_kept_per_machine_and_sample_and_redone_on_request(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "candidates", lambda device: list(FAKES))
    first: list[str] = []
    select(tmp_path, first)
    again: list[str] = []
    record = select(tmp_path, again)
    assert again == [] and record["reused_measurement"] and "earlier" in record["why"]
    assert record["used"] == "openvino"
    select(tmp_path, again, remeasure=True)
    assert again == list(FAKES)
    other: list[str] = []
    select(tmp_path, other, texts=[t + " again" for t in TEXTS])  # another suite: another sample
    assert other == list(FAKES)
    (tmp_path / B.CHOICE_FILE).write_text("{not json")  # a damaged record is measured again, not trusted
    damaged: list[str] = []
    select(tmp_path, damaged)
    assert damaged == list(FAKES)


class ClockedEncoder(FakeEncoder):
    """A fake on a virtual clock: ``per_call`` seconds a call (setup, new shapes) and ``per_text`` a text."""

    def __init__(self, clock: list[float], per_call: float, per_text: float):
        super().__init__(0.0)
        self.clock, self.per_call, self.per_text = clock, per_call, per_text

    def encode(self, texts, **kw):
        self.clock[0] += self.per_call + self.per_text * len(texts)
        return super().encode(texts, **kw)


def test_a_close_contest_is_settled_on_a_larger_sample(tmp_path, monkeypatch):
    """Two agreeing backends within the margin on the first sample are timed again on a larger one, and the
    faster there wins: here the one whose fixed cost per call made it look slower on few texts."""
    clock = [0.0]
    costs = {"torch-fp32": (0.0, 0.1), "openvino-fp32": (0.3, 0.012), "onnx": (0.0, 0.02)}
    monkeypatch.setattr(B, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(B, "candidates", lambda device: list(costs))
    monkeypatch.setattr(B, "CONTEST_EVERY", 2)  # 300 texts: the default would be the first sample's size
    loads: list[str] = []

    def load(backend: B.Backend) -> ClockedEncoder:
        loads.append(backend.name)
        return ClockedEncoder(clock, *costs[backend.name])

    record = B.select_backend(
        "auto", device="cpu", load=load, texts={128: TEXTS, 256: TEXTS[::-1]}, model_id="m" * 64,
        cache_file=tmp_path / B.CHOICE_FILE,
    )  # fmt: skip
    measured = record["measured"]
    first = {n: m["texts_per_s"] for n, m in measured.items()}
    assert first["onnx"] > first["openvino-fp32"] >= (1 - B.CONTEST_MARGIN) * first["onnx"]  # close
    assert loads == ["torch-fp32", "openvino-fp32", "onnx", "openvino-fp32", "onnx"]  # the slow one is out
    assert "contest_texts_per_s" not in measured["torch-fp32"]
    assert measured["openvino-fp32"]["contest_texts_per_s"] > measured["onnx"]["contest_texts_per_s"]
    assert record["used"] == "openvino-fp32" and "timed again" in record["why"]
    kept = B.select_backend(
        "auto", device="cpu", load=load, texts={128: TEXTS, 256: TEXTS[::-1]}, model_id="m" * 64,
        cache_file=tmp_path / B.CHOICE_FILE,
    )  # fmt: skip
    assert kept["used"] == "openvino-fp32" and len(loads) == 5  # the contest's result is kept with the rest


def test_the_reference_is_chosen_when_nothing_else_agrees(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "candidates", lambda device: ["torch-fp32", "torch-bf16"])
    assert select(tmp_path, [])["used"] == "torch-fp32"


def test_a_named_backend_is_used_as_asked_and_an_unknown_one_is_refused(tmp_path):
    loads: list[str] = []
    record = B.select_backend(
        "onnx", device="cpu", load=fake_loader(loads), texts={128: TEXTS}, model_id="m",
        cache_file=tmp_path / B.CHOICE_FILE,
    )  # fmt: skip
    assert record["used"] == "onnx" and record["measured"] is None and loads == []
    with pytest.raises(EvaluationError, match=r"--backend 'onnx-fast': expected one of auto, torch-fp32"):
        B.check_backend("onnx-fast")


def test_the_script_refuses_an_unknown_backend():
    proc = subprocess.run(
        [sys.executable, "scripts/evaluate_run.py", "--run", "x", "--backend", "fast"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "invalid choice: 'fast'" in proc.stderr


def test_the_sample_is_every_nth_whole_batch_of_length_sorted_texts():
    sample = B.sample_batches(TEXTS, every=3)
    assert sample == B.sample_batches(TEXTS, every=3)  # seeded
    ordered = sorted(TEXTS, key=lambda t: -len(t))
    first = ordered.index(sample[0])
    assert first % B.BATCH_SIZE == 0  # batches start where the suite's do
    batches = [sample[i : i + B.BATCH_SIZE] for i in range(0, len(sample), B.BATCH_SIZE)]
    starts = [ordered.index(b[0]) for b in batches]
    assert all(b == ordered[s : s + B.BATCH_SIZE] for b, s in zip(batches, starts, strict=True))
    assert {b - a for a, b in itertools.pairwise(starts)} == {3 * B.BATCH_SIZE}  # every third
    assert len(B.sample_batches(TEXTS, every=10**6)) == B.BATCH_SIZE  # at least, and here exactly, one
    assert B.sample_batches(TEXTS[:10]) == sorted(TEXTS[:10], key=lambda t: -len(t))  # fewer than a batch


def test_graph_backends_agree_with_pytorch_and_convert_once(tmp_path, tiny_model, monkeypatch):
    from medenc.core import runtime

    folder = tmp_path / "tiny"
    tiny_model.save(str(folder))
    expected = tiny_model.encode(TEXTS[:40], convert_to_numpy=True)
    graphs = tmp_path / "graphs"
    for name, tol in (
        ("onnx", 1e-6),
        ("openvino-fp32", 1e-6),
        ("openvino", 1e-2),
    ):  # bf16 where the CPU has it
        enc = B.load_encoder(B.BACKENDS[name], folder, "tiny-id", "cpu", lambda: None, graphs)
        enc.max_seq_length = tiny_model.max_seq_length
        assert B.max_cosine_distance(enc.encode(TEXTS[:40]), expected) <= tol, name
    monkeypatch.setattr(runtime, "export_onnx", lambda *a: pytest.fail("converted twice"))
    B.load_encoder(B.BACKENDS["onnx"], folder, "tiny-id", "cpu", lambda: None, graphs)
    assert not [p for p in graphs.iterdir() if ".tmp-" in p.name]  # nothing half-written left behind


def test_a_half_converted_graph_folder_is_built_again(tmp_path, tiny_model, caplog):
    folder = tmp_path / "tiny"
    tiny_model.save(str(folder))
    with caplog.at_level(logging.INFO):
        graph = B.graph_dir(folder, "tiny-id", B.BACKENDS["onnx"], tmp_path / "g")
    # The run's console log gets our line, not the exporter's one line per merged initializer.
    assert "Converting" in caplog.text and not [r for r in caplog.records if r.name.startswith("onnx_ir")]
    shutil.rmtree(graph.parent)
    graph.parent.mkdir()  # a folder without its graph, as a kill between mkdir and rename could leave
    (graph.parent / "junk").write_text("x")
    assert B.graph_dir(folder, "tiny-id", B.BACKENDS["onnx"], tmp_path / "g").is_file()


def test_a_model_that_does_not_mean_pool_is_refused_by_the_graph_backends(tmp_path, tiny_model):
    folder = tmp_path / "tiny"
    tiny_model.save(str(folder))
    config = folder / "1_Pooling" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "pooling_mode": "cls"}))
    with pytest.raises(ModelError, match=r"1_Pooling/config.json: the ONNX/OpenVINO encoders mean-pool"):
        B.graph_dir(folder, "tiny-id", B.BACKENDS["openvino"], tmp_path / "g")


def test_pytorch_backends_keep_the_cache_tags_of_the_vectors_cached_before():
    assert B.BACKENDS["torch-fp32"].cache_tag() == "fp32" and B.BACKENDS["torch-bf16"].cache_tag() == "bf16"
    assert B.BACKENDS["openvino"].cache_tag().startswith("openvino:")


def test_every_scored_model_is_held_to_the_tolerance_not_only_the_measured_one(tmp_path):
    from pathlib import Path

    from medenc.evaluation.cache import EmbeddingCache, ModelRef

    def ref(name: str, encoder: FakeEncoder) -> ModelRef:
        return ModelRef(name, Path(f"/runs/x/{name}"), "sha", lambda: encoder, f"id-{name}")

    cache = EmbeddingCache(tmp_path / "c")
    texts = {128: TEXTS, 256: TEXTS[::-1]}
    fp32 = [ref("base", FakeEncoder(0.0)), ref("phase-2", FakeEncoder(0.0))]
    same = [ref("base", FakeEncoder(0.0)), ref("phase-2", FakeEncoder(0.0))]
    checked = B.check_models_agree(same, fp32, cache, texts, "openvino:x")
    assert set(checked) == {"base", "phase-2"} and max(checked.values()) < 1e-6
    drifted = [ref("base", FakeEncoder(0.0)), ref("phase-2", FakeEncoder(0.0, noise=0.1))]
    with pytest.raises(
        EvaluationError, match=r"/runs/x/phase-2: .* beyond 1e-05; evaluate with --backend torch"
    ):
        B.check_models_agree(drifted, fp32, EmbeddingCache(tmp_path / "d"), texts, "openvino:x")


def test_openvino_streams_give_the_vectors_of_one_stream_in_input_order(tmp_path, tiny_model):
    from medenc.core.runtime import openvino_encoder

    folder = tmp_path / "tiny"
    tiny_model.save(str(folder))
    graph = B.graph_dir(folder, "tiny-id", B.BACKENDS["openvino"], tmp_path / "g")
    one = openvino_encoder(graph, folder, precision="f32").encode(TEXTS[:40], batch_size=3)
    many = openvino_encoder(graph, folder, precision="f32", throughput=True).encode(TEXTS[:40], batch_size=3)
    assert np.allclose(one, many, atol=1e-6)
    assert np.allclose(many, tiny_model.encode(TEXTS[:40], convert_to_numpy=True), atol=1e-5)


def test_a_streamed_openvino_encoder_is_released_without_hanging(tmp_path, tiny_model):
    """Dropping the compiled model after a streamed encode once hung for ever (a Python callback on
    OpenVINO's threads against the GIL): in a child process, so a hang fails the test instead of the suite."""
    folder = tmp_path / "tiny"
    tiny_model.save(str(folder))
    graph = B.graph_dir(folder, "tiny-id", B.BACKENDS["openvino"], tmp_path / "g")
    code = (
        "import gc, sys; from pathlib import Path; from medenc.core.runtime import openvino_encoder\n"
        "for _ in range(3):\n"
        f"    enc = openvino_encoder(Path({str(graph)!r}), Path({str(folder)!r}), throughput=True)\n"
        f"    enc.encode({TEXTS[:70]!r}, batch_size=4); del enc; gc.collect()\n"
        "print('released')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "released" in proc.stdout, proc.stderr[-2000:]


# Characters misorder these by tokens: a rare medical word is many word pieces for its letters, common words
# one piece each, so sorting by characters puts texts of very different token counts in one batch.
MIXED = [
    "she has a cough and a cold and it is bad",
    "the man was at home and in bed all day",
    "tachydysrhythmia",  # 16 characters, 9 tokens
    "it is a cold",  # 12 characters, 6 tokens
    "xq28 dup",  # 8 characters, 7 tokens
    "a man",
]


def test_token_lengths_are_what_the_model_pads_to_cut_at_its_length_cap(tiny_model):
    from medenc.core.modeling import token_lengths

    features = tiny_model.tokenize(MIXED)
    assert token_lengths(tiny_model, MIXED) == features["attention_mask"].sum(1).tolist()
    assert len(set(token_lengths(tiny_model, MIXED))) > 3  # the texts differ, so the check can fail
    cap = tiny_model.max_seq_length
    try:
        tiny_model.max_seq_length = 4
        assert token_lengths(tiny_model, MIXED) == [4] * len(MIXED)
    finally:
        tiny_model.max_seq_length = cap


def test_graph_encoders_batch_by_tokens_and_pad_each_batch_to_its_longest():
    from medenc.core.modeling import TOKENIZER_ASSETS
    from medenc.core.runtime import ExportEncoder, tokenize

    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def run(ids, mask):
        seen.append((ids, mask))
        return np.stack([np.ones(ids.shape), ids], axis=2).astype(np.float32)  # a token's vector: (1, id)

    enc = ExportEncoder(run, TOKENIZER_ASSETS, 128)
    lengths = enc.token_lengths(MIXED)
    out = enc.encode(MIXED, batch_size=2)
    by_tokens = sorted(lengths, reverse=True)
    assert [ids.shape[1] for ids, _ in seen] == by_tokens[::2]  # each batch as wide as its longest
    by_chars = [lengths[i] for i in sorted(range(len(MIXED)), key=lambda i: -len(MIXED[i]))]
    padded = sum(max(by_chars[s : s + 2]) * 2 for s in range(0, len(MIXED), 2))
    assert padded > sum(ids.size for ids, _ in seen)  # the premise: characters would have padded more
    # Each text pooled over its own tokens only, whatever its batch, and returned in input order.
    for i, text in enumerate(MIXED):
        ids, _ = tokenize(enc.tokenizer, [text])  # alone: no padding
        want = np.array([1.0, ids.mean()])
        assert np.allclose(out[i], want / np.linalg.norm(want), atol=1e-6), text


def test_encode_in_chunks_sorts_by_the_lengths_given_and_restores_the_input_order():
    from medenc.core.progress import encode_in_chunks

    calls: list[list[str]] = []

    def encode(texts, **_):
        calls.append(list(texts))
        return np.array([[float(len(t))] for t in texts])

    texts = ["aaaa", "b", "cc", "ddd"]
    out = encode_in_chunks(encode, texts, batch_size=1, desc="t", enabled=False, lengths=[1, 4, 3, 2])
    assert [t for call in calls for t in call] == ["b", "cc", "ddd", "aaaa"]  # by the lengths, not by letters
    assert out[:, 0].tolist() == [4.0, 1.0, 2.0, 3.0]  # input order
    with pytest.raises(ValueError, match="3 lengths for 4 texts"):
        encode_in_chunks(encode, texts, batch_size=1, desc="t", enabled=False, lengths=[1, 2, 3])

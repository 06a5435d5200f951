"""The training benchmark: arithmetic on known numbers, and a few-second run with the tiny model."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset

from medenc.bench import (
    controlled_texts,
    device_busy_seconds,
    gpu_peak_flops,
    mfu,
    padding_waste,
)
from medenc.training.trainer import LengthGroupedBatchSampler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))  # scripts/_cli.py: the command line is built there
from _cli import parse_bench_args as parse_args  # noqa: E402


def test_mfu_on_known_numbers():
    # 6 * 100M parameters * 10k tokens in 1 s on a 1e13 FLOP/s device = 6e12 / 1e13
    assert mfu(100_000_000, 10_000, 1.0, 1e13) == pytest.approx(0.6)
    assert mfu(110_000_000, 50_000, 2.0, 989.4e12) == pytest.approx(6 * 110e6 * 50e3 / 2 / 989.4e12)
    with pytest.raises(ValueError):
        mfu(1, 1, 0.0, 1.0)


def test_padding_waste_on_known_batch():
    assert padding_waste([4, 2, 2]) == pytest.approx(1 - 8 / 12)
    assert padding_waste([5, 5]) == 0.0
    assert padding_waste([3], padded_to=6) == pytest.approx(0.5)


def test_gpu_peak_flops_by_name():
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989.4e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_peak_flops("Some GPU") is None


def test_command_line_takes_every_documented_flag():
    # README, docs/bench.md, scripts/bench_gpu.sh: dashed flags, comma-separated phases, repeatable --set
    cfg = parse_args(
        shlex.split(
            "--model base --device cuda --recipe recipes/gpu.yaml --phases 1,3 --steps 4 --warmup 1 "
            "--batch-size 16 --seq-len 128 --spread 0.5 --set phase2.group_by_length=true "
            "--set phase2.attention=sdpa --precision bf16 --tokenizer bench_assets/tokenizer "
            "--peak-flops 1e12 --no-defaults --profile-steps 5 --out results/bench/x.json "
            "--no-reference --compile-reference on"
        )
    )
    assert (cfg.model, cfg.device, cfg.recipe, cfg.phases) == ("base", "cuda", "recipes/gpu.yaml", (1, 3))
    assert (cfg.steps, cfg.warmup, cfg.batch_size, cfg.seq_len, cfg.spread) == (4, 1, 16, 128, 0.5)
    assert cfg.overrides == ("phase2.group_by_length=true", "phase2.attention=sdpa")
    assert (cfg.precision, cfg.tokenizer, cfg.peak_flops) == ("bf16", "bench_assets/tokenizer", 1e12)
    assert (cfg.defaults, cfg.profile_steps, cfg.out) == (False, 5, "results/bench/x.json")
    assert (cfg.reference, cfg.compile_reference) == (False, "on")
    default = parse_args([])
    assert (default.model, default.phases, default.overrides, default.defaults) == (
        "real",
        (1, 2, 3),
        (),
        True,
    )
    assert (default.batch_size, default.precision, default.out) == (None, None, "outputs/bench/bench.json")
    assert (default.reference, default.compile_reference) == (True, "auto")
    with pytest.raises(SystemExit):
        parse_args(["--precision", "fp8"])


def test_length_grouped_sampler_keeps_rows_and_no_duplicates():
    texts = [f"t{i} " + "x" * (i % 7) for i in range(40)]
    ds = Dataset.from_dict({"anchor": texts, "positive": texts[:20] + texts[:20]})
    sampler = LengthGroupedBatchSampler(ds, batch_size=8, drop_last=False, no_duplicates=True)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(40))
    for b in batches:
        values = [t for i in b for t in {ds[i]["anchor"], ds[i]["positive"]}]
        assert len(values) == len(set(values))


def test_controlled_texts_lengths():
    from medenc.core.modeling import build_random_model

    tok = build_random_model("tiny").tokenizer
    pool = ["Asthma is a chronic inflammatory disease of the airways.", "Metformin lowers blood glucose."]
    out = controlled_texts(tok, pool, 20, 24, 0.5, seed=1)
    lengths = [len(tok(t)["input_ids"]) for t in out]
    assert min(lengths) >= 8 and max(lengths) <= 28


def test_bench_script_tiny(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "bench.py"),
        "--model",
        "tiny",
        "--steps",
        "2",
        "--warmup",
        "1",
    ]
    cmd += ["--batch-size", "4", "--seq-len", "16", "--device", "cpu", "--out", str(out)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", **_env()}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["device"]["type"] == "cpu" and data["device"]["peak_flops"] > 0
    assert [p["phase"] for p in data["phases"]] == [1, 2, 3]
    for p in data["phases"]:
        for run in ("ours", "defaults"):
            m = p[run]
            assert m["steps"] == 2 and m["samples"] == 8
            assert m["tokens"] > 0 and m["tokens_per_second"] > 0 and m["samples_per_second"] > 0
            assert 0 <= m["padding_waste"] < 1 and m["peak_memory_mb"] > 0 and m["mfu"] > 0
        assert set(p["ratio_ours_to_defaults"]) >= {"samples_per_second", "tokens_per_second"}
    # the bare-loop reference row: phase 2 only, the same figures, its options, a finite ours/reference
    assert ["reference" in p for p in data["phases"]] == [False, True, False]
    phase2 = data["phases"][1]
    ref = phase2["reference"]
    assert ref["steps"] == 2 and ref["samples"] == 8 and ref["tokens"] > 0
    assert ref["samples_per_second"] > 0 and ref["tokens_per_second"] > 0 and ref["mfu"] > 0
    assert ref["peak_memory_mb"] > 0 and 0 <= ref["padding_waste"] < 1
    assert math.isfinite(ref["loss_first"]) and math.isfinite(phase2["ours"]["loss_first"])
    o = ref["options"]
    assert o["loss"] == "MultipleNegativesRankingLoss" and o["padded_to"] == 16
    assert o["optimizer"] in ("AdamW (fused)", "AdamW (foreach)") and o["torch_compile"] is False  # CPU: auto
    assert o["first_step_seconds"] > 0 and o["warmup_seconds"] > 0
    ratio = phase2["ratio_ours_to_reference"]
    for key in ("samples_per_second", "tokens_per_second", "mfu", "peak_memory_mb"):
        assert math.isfinite(ratio[key]) and ratio[key] > 0, key
    assert "ours" in proc.stdout and "MFU" in proc.stdout and "ours/ref" in proc.stdout


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}


def test_cpu_peak_counts_bf16_twice_where_the_cpu_has_bf16_dot_products(monkeypatch):
    from medenc.bench import measure

    flags = {"avx512f", "avx512_bf16"}
    monkeypatch.setattr(measure.environment, "cpu_flags", lambda: ("AuthenticAMD", flags, 2000.0))
    fp32, _ = measure.cpu_peak_flops(cores=2)
    bf16, why16 = measure.cpu_peak_flops(cores=2, precision="bf16")
    assert fp32 == 2 * 2.0e9 * 32 and bf16 == 2 * fp32 and "avx512_bf16" in why16
    monkeypatch.setattr(measure.environment, "cpu_flags", lambda: ("AuthenticAMD", {"avx512f"}, 2000.0))
    assert measure.cpu_peak_flops(cores=2, precision="bf16")[0] == fp32


TEXTS = [
    "MI",
    "a much longer sentence about hypertension and heart attack in elderly patients",
    "gout",
    "type 1 diabetes",
]


def _outputs_and_grads(patch=None):
    """A tiny model's embeddings of TEXTS and every gradient of a fixed function of them, dropout off (both
    paths must then agree up to rounding); ``patch(model)`` changes the model first."""
    import torch

    from medenc.core.modeling import build_random_model

    model = build_random_model("tiny", seed=3)  # same seed: same weights
    if patch is not None:
        patch(model)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    features = model.preprocess(TEXTS)  # padded: the mask path is exercised
    out = model(features)["sentence_embedding"]
    (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
    return model, out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(a, b) -> None:
    import torch

    (_, out_a, g_a), (_, out_b, g_b) = a, b
    assert torch.allclose(out_a, out_b, atol=1e-5)
    assert g_a.keys() == g_b.keys()
    bias = next(k for k in g_a if "relative_attention_bias" in k)
    assert g_a[bias].abs().sum() > 0  # the position bias learns on either path
    for name in g_a:
        if name.endswith("attn.k.bias"):  # softmax ignores a key bias: its gradient is 0, up to rounding
            continue
        assert torch.allclose(g_a[name], g_b[name], atol=1e-5, rtol=1e-4), name


def test_sdpa_attention_matches_eager_outputs_and_gradients():
    from medenc.core.modeling import use_sdpa_attention

    fused = _outputs_and_grads(use_sdpa_attention)
    _assert_same(_outputs_and_grads(), fused)
    assert use_sdpa_attention(fused[0]) == 2  # the tiny model's two layers; idempotent


def test_length_chunks_match_the_whole_batch_outputs_and_gradients():
    from medenc.core.modeling import use_length_chunks

    whole = _outputs_and_grads()
    chunked = _outputs_and_grads(lambda m: use_length_chunks(m, 1))  # every row its own length
    _assert_same(whole, chunked)
    model = chunked[0]
    widths = []
    inner = model[0]._whole_forward
    model[0]._whole_forward = lambda f, **kw: widths.append(f["input_ids"].shape) or inner(f, **kw)
    use_length_chunks(model, 2)
    features = model.preprocess(TEXTS)
    full = features["input_ids"].shape[1]
    model(features)
    assert [w[0] for w in widths] == [2, 2] and widths[0][1] == full and widths[1][1] < full  # longest first
    model[0]._whole_forward = inner
    use_length_chunks(model, None)  # back to whole batches: the saved model never knew
    assert "forward" not in vars(model[0]) and not hasattr(model[0], "_whole_forward")


def test_device_busy_counts_each_kernel_once():
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    events = [
        # aten::mm on the host carries the 30 us of the kernel it launched: not counted again
        SimpleNamespace(device_type=DeviceType.CPU, self_device_time_total=30.0),
        SimpleNamespace(device_type=DeviceType.CUDA, self_device_time_total=30.0),  # the gemm kernel
        SimpleNamespace(device_type=DeviceType.CUDA, self_device_time_total=20.0),  # an elementwise kernel
    ]
    assert device_busy_seconds(events) == pytest.approx(50e-6)
    assert device_busy_seconds([]) == 0.0


@pytest.mark.slow
def test_gpu_script_cpu_smoke(tmp_path):
    """scripts/bench_gpu.sh end to end on the CPU with the tiny model (about 3 minutes): the one-shot device
    script must not meet its first bug on the lent GPU machine, where a rerun may not fit the budget."""
    import os

    prepared = ROOT / "data" / "prepared"
    if not (prepared / "train").is_dir():
        pytest.skip("needs `make data` (the training step reads data/prepared)")
    env = {
        **os.environ,
        "DEVICE": "cpu",
        "MODEL": "tiny",
        "STEPS": "2",
        "WARMUP": "1",
        "CAP_SCALE": "3",  # the step caps fit the H100; 2 CPU cores start 4 loader workers slowly
        "DEADLINE": "1500",
        "BENCH_ARGS": "--batch-size 4 --seq-len 16",
        "TRAIN_ARGS": "--set model=tiny --set phase1.max_steps=2 --set phase2.max_steps=2 "
        "--set phase3.max_steps=2 --set phase3.mining.anchors=50",
        "WHEELS": str(tmp_path / "no-wheels"),  # the CPU venv has every package already
        "PYTHON": sys.executable,
        "OUT": str(tmp_path / "out"),
    }
    script = ["bash", str(ROOT / "scripts" / "bench_gpu.sh")]
    proc = subprocess.run(script, env=env, capture_output=True, text=True, timeout=1600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    assert "failed" not in proc.stdout, proc.stdout[-3000:]
    bench = json.loads((out / "bench.json").read_text())
    assert [p["phase"] for p in bench["phases"]] == [1, 2, 3]
    assert all("profile_ours" in p for p in bench["phases"])
    assert not any("reference" in p for p in bench["phases"])  # the reference row has its own step
    (phase2,) = json.loads((out / "bench_reference.json").read_text())["phases"]
    assert phase2["phase"] == 2 and "reference" in phase2 and "ratio_ours_to_reference" in phase2
    train = json.loads((out / "train_gpu.json").read_text())
    assert [p["status"] for p in train["phases"]] == ["done", "done", "done"]
    timing = json.loads((out / "eval_gpu.json").read_text())["timing"]["models"]  # cold: every text encoded
    assert set(timing) == {"base", "phase-1", "phase-2", "phase-3"}
    assert all(t["encoded_texts"] > 0 and not t["cached"] for t in timing.values())
    import tarfile

    with tarfile.open(out / "bench_variants.tar") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"bench_workers.json", "bench_b256.json", "bench_fused.json", "bench_sdpa.json"} <= names


def _no_dropout(model):
    import torch

    for m in model.modules():  # dropout off: two computations of one loss must then agree up to rounding
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def test_reference_loss_equals_sentence_transformers_mnrl(repo_root):
    """The loop's loss on its fixed-shape batch is ST's MNRL through SentenceTransformer's own forward."""
    import torch
    import torch.nn.functional as F
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from medenc.bench.reference import Update, make_optimizer, tokenize_batches, train_step
    from medenc.core.modeling import build_random_model
    from medenc.training.recipe import load_recipe
    from medenc.training.trainer import make_loss

    anchors = ["What causes gout?", "How is asthma treated in children?", "MI", "Is hepatitis B curable?"]
    positives = [
        "Uric acid crystals in the joints.",
        "Inhaled corticosteroids and short-acting bronchodilators are the mainstay.",
        "Myocardial infarction",
        "Chronic hepatitis B can be controlled, rarely cured.",
    ]
    model = _no_dropout(build_random_model("tiny", max_seq_length=24, seed=7))
    model.train()
    # ST's path: its own preprocess (padded to the longest text), its MNRL class, SentenceTransformer.forward
    with torch.no_grad():
        features = [model.preprocess(anchors), model.preprocess(positives)]
        expected = MultipleNegativesRankingLoss(model)(features, None)
        a, p = (model(f)["sentence_embedding"] for f in features)
        by_hand = F.cross_entropy(20.0 * F.normalize(a, dim=-1) @ F.normalize(p, dim=-1).T, torch.arange(4))
    assert float(expected) == pytest.approx(float(by_hand), abs=1e-5)  # scale 20, cosine, i-th is i-th's
    # the reference: the loss the bench builds (the recipe's), on its pre-tokenized batch padded to 24
    batches = tokenize_batches(
        model, {"anchor": anchors, "positive": positives}, ("anchor", "positive"), 4, 24, "cpu"
    )
    assert batches.features[0][0]["input_ids"].shape == (4, 24) and batches.positions == [2 * 4 * 24]
    assert batches.tokens == [int(features[0]["attention_mask"].sum() + features[1]["attention_mask"].sum())]
    loss_fn = make_loss(load_recipe(repo_root / "recipes" / "cpu.yaml"), 2, model, 1)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer, _ = make_optimizer(list(model.parameters()), 1e-3, (0.9, 0.999), 1e-8, 0.0)
    got = train_step(model, loss_fn, batches.features[0], Update("fp32", "cpu", optimizer, None, 1.0))
    assert float(got) == pytest.approx(float(expected), abs=1e-5)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))  # it trained


def test_no_reference_omits_the_row(tmp_path, monkeypatch):
    from medenc.bench import BenchConfig, format_table, run_bench

    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)  # the bench sets it: restored after
    cfg = BenchConfig(
        model="tiny", phases=(2,), steps=1, warmup=1, batch_size=4, seq_len=16, device="cpu",
        defaults=False, reference=False, out=str(tmp_path / "bench.json"),
    )  # fmt: skip
    result = run_bench(cfg, log=lambda msg: None)
    (phase,) = result["phases"]
    assert "ours" in phase and "reference" not in phase and "ratio_ours_to_reference" not in phase
    assert result["config"]["reference"] is False
    assert "reference" not in format_table(result)

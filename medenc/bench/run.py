"""Training-step benchmark: throughput, padding waste, peak memory and MFU per phase (``make bench``).

Each phase's step runs through the training code path (:func:`medenc.training.run.build_trainer`, the recipe's
speed options, precision decided as in training) on synthetic batches whose texts come from the prepared
data (or, when it is missing, a built-in list of medical sentences), cut and joined with the real tokenizer to
controlled token lengths. The same batches also run through plain sentence-transformers defaults, and the
report gives ours/defaults. See docs/bench.md.
"""

from __future__ import annotations

import json
import os
import random
import resource
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medenc.core import environment
from medenc.core.layout import COLUMNS, GRADED_PAIRS, PAIRS, TRIPLETS
from medenc.core.paths import PROJECT_ROOT

SCHEMA_VERSION = 1
PHASE_SETS = {1: GRADED_PAIRS, 2: PAIRS, 3: TRIPLETS}

# Dense fp16/bf16 tensor-core peaks (vendor datasheets, without sparsity).
GPU_PEAK_FLOPS: list[tuple[tuple[str, ...], float]] = [
    (("H100", "PCIE"), 756e12),
    (("H100",), 989.4e12),  # SXM / HBM3
    (("H200",), 989.4e12),
    (("A100",), 312e12),
]

# Used only when the prepared data cannot be read (said so in the output).
BUILTIN_TEXTS = [
    "What are the symptoms of type 2 diabetes?",
    "Increased thirst, frequent urination, fatigue and blurred vision are common early signs of diabetes.",
    "How is hypertension diagnosed?",
    "High blood pressure is diagnosed when repeated readings are at or above 130/80 mmHg.",
    "Metformin lowers blood glucose by reducing hepatic glucose production.",
    "What causes iron deficiency anemia?",
    "Chronic blood loss, poor dietary intake and malabsorption can all lead to iron deficiency.",
    "Asthma is a chronic inflammatory disease of the airways that causes wheezing and shortness of breath.",
    "Inhaled corticosteroids are the mainstay of long-term asthma control.",
    "What is the prognosis of amyotrophic lateral sclerosis?",
    "Most people with ALS die from respiratory failure within three to five years of symptom onset.",
    "Myocardial infarction occurs when blood flow to part of the heart muscle is blocked.",
    "Chest pain radiating to the left arm, sweating and nausea may indicate a heart attack.",
    "Is there a vaccine for hepatitis B?",
    "The hepatitis B vaccine is given as a series of two, three or four shots.",
    "Osteoporosis makes bones weak and brittle, so that a fall or mild stress can cause a fracture.",
    "Calcium and vitamin D supplements help maintain bone density in older adults.",
    "What are the side effects of chemotherapy?",
    "Nausea, hair loss, fatigue and infections are frequent side effects of chemotherapy.",
    "Chronic kidney disease is often caused by diabetes and high blood pressure.",
    "Patients with end-stage renal disease need dialysis or a kidney transplant.",
    "How long does it take to recover from pneumonia?",
    "Community-acquired pneumonia is usually treated with antibiotics such as amoxicillin or macrolides.",
    "Migraine is a neurological condition with recurrent headaches, often with nausea and light sensitivity.",
    "Triptans relieve migraine attacks by narrowing blood vessels in the brain.",
    "Parkinson disease is a progressive disorder that affects movement, causing tremor and rigidity.",
    "Levodopa is converted to dopamine in the brain and improves motor symptoms.",
    "What is the difference between a CT scan and an MRI?",
    "Gestational diabetes develops during pregnancy and usually resolves after delivery.",
    "Can a urinary tract infection spread to the kidneys?",
    "Untreated bladder infections may ascend and cause pyelonephritis with fever and flank pain.",
    "Atrial fibrillation increases the risk of stroke, so anticoagulation is often recommended.",
]


# --- Arithmetic (pure, unit-tested) ---------------------------------------------------------------------


def mfu(parameters: int, tokens: int, seconds: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: 6 * parameters * tokens / seconds / peak FLOP/s (forward 2N + backward 4N)."""
    if seconds <= 0 or peak_flops <= 0:
        raise ValueError("seconds and peak_flops must be positive")
    return 6.0 * parameters * tokens / seconds / peak_flops


def matmul_parameters(model) -> int:
    """Parameters that cost FLOPs per token: all but embedding tables (lookups, not matmuls)."""
    import torch

    emb = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    return sum(p.numel() for p in model.parameters()) - emb


def padding_waste(lengths: list[int], padded_to: int | None = None) -> float:
    """Fraction of padded positions in a batch of sequences of ``lengths``, padded to the longest (or to)."""
    if not lengths:
        return 0.0
    width = padded_to if padded_to is not None else max(lengths)
    return 1.0 - sum(lengths) / (len(lengths) * width)


def gpu_peak_flops(name: str) -> float | None:
    """The dense fp16/bf16 peak of a GPU by its torch.cuda device name, or None when unknown."""
    upper = name.upper()
    for keys, flops in GPU_PEAK_FLOPS:
        if all(k in upper for k in keys):
            return flops
    return None


def cpu_peak_flops(cores: int | None = None, precision: str = "fp32") -> tuple[float, str]:
    """An estimate of the CPU's peak: cores x GHz x FLOPs/cycle/core, and the assumption in words.

    bf16 on a CPU with avx512_bf16 counts twice the fp32 rate (VDPBF16PS: two bf16 products per fp32 lane).
    """
    vendor, flags, mhz = environment.cpu_flags()
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ghz = (mhz or 2500.0) / 1000
    if "avx512f" in flags and "Intel" in vendor:
        per_cycle, why = 64, "AVX-512 fp32, 2 FMA units of 16 lanes x 2 FLOPs"
    elif "avx512f" in flags or ("avx2" in flags and "fma" in flags):
        per_cycle, why = (
            32,
            "fp32 FMA, 2 units of 256 bits (AMD runs AVX-512 as 2 x 256) = 2 x 8 lanes x 2 FLOPs",
        )
    else:
        per_cycle, why = 8, "SSE fp32, no FMA"
    if precision == "bf16" and "avx512_bf16" in flags:
        per_cycle, why = per_cycle * 2, f"{why}; x2 for bf16 dot products (avx512_bf16)"
    peak = cores * ghz * 1e9 * per_cycle
    return peak, f"CPU estimate: {cores} cores x {ghz:.2f} GHz x {per_cycle} FLOPs/cycle ({why})"


# --- Texts of controlled length -------------------------------------------------------------------------


def text_pool(phase: int) -> tuple[list[str], str]:
    """Distinct texts of the phase's prepared training set (else built-in ones), and their origin."""
    set_name = PHASE_SETS[phase]
    from medenc.data import load_split
    from medenc.core.errors import MedencError

    try:
        ds = load_split("train", set_name)
    except MedencError as exc:
        return list(BUILTIN_TEXTS), f"built-in medical sentences (prepared data missing: {exc})"
    cols = [c for c in COLUMNS[set_name] if c != "score"]
    texts = list(dict.fromkeys(t for c in cols for t in ds[c] if t))
    return texts, f"prepared train/{set_name} ({len(texts)} distinct texts)"


def controlled_texts(
    tokenizer, pool: list[str], count: int, seq_len: int, spread: float, seed: int
) -> list[str]:
    """``count`` texts of ``seq_len * (1 - spread)`` to ``seq_len`` tokens (special tokens included).

    Real texts are tokenized, joined into one token stream and cut into pieces of random target length, then
    decoded; so the token lengths are controlled while the words stay real.
    """
    rng = random.Random(seed)
    order = list(pool)
    rng.shuffle(order)
    stream: list[int] = []
    for text in order:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(stream) > count * seq_len:
            break
    if not stream:
        raise ValueError("the text pool is empty")
    content = max(1, seq_len - 2)
    lo = max(1, round(content * (1 - spread)))
    out, pos = [], rng.randrange(len(stream))
    for _ in range(count):
        n = rng.randint(lo, content)
        ids = [stream[(pos + i) % len(stream)] for i in range(n)]
        pos = (pos + n) % len(stream)
        out.append(tokenizer.decode(ids, clean_up_tokenization_spaces=True).strip() or "empty")
    return out


def synthetic_rows(phase: int, tokenizer, pool, rows: int, seq_len: int, spread: float, seed: int) -> dict:
    """Columns of the phase's data set (score random in [0, 1]), texts of controlled length."""
    cols: dict[str, list] = {}
    for i, col in enumerate(COLUMNS[PHASE_SETS[phase]]):
        if col == "score":
            rng = random.Random(seed)
            cols[col] = [rng.random() for _ in range(rows)]
        else:
            cols[col] = controlled_texts(tokenizer, pool, rows, seq_len, spread, seed * 31 + i)
    return cols


def make_dataset(columns: dict[str, list]):
    """A ``datasets.Dataset``, as in training (on a machine without it, carry its wheel: docs/bench.md)."""
    from datasets import Dataset

    return Dataset.from_dict(columns)


# --- Measurement ----------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """What one timed run of ``steps`` training steps gives."""

    steps: int = 0
    seconds: float = 0.0
    samples: int = 0
    tokens: int = 0
    positions: int = 0
    peak_memory_mb: float = 0.0
    losses: list[float] = field(default_factory=list)

    def summary(self, parameters: int, peak_flops: float) -> dict[str, Any]:
        s = self.seconds or float("nan")
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 4),
            "samples": self.samples,
            "tokens": self.tokens,
            "padded_positions": self.positions,
            "samples_per_second": round(self.samples / s, 3),
            "tokens_per_second": round(self.tokens / s, 1),
            "padding_waste": round(1 - self.tokens / self.positions, 4) if self.positions else None,
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "mfu": round(mfu(parameters, self.tokens, s, peak_flops), 6) if self.seconds > 0 else None,
            "loss_first": round(self.losses[0], 5) if self.losses else None,
            "loss_last": round(self.losses[-1], 5) if self.losses else None,
        }


@dataclass
class Profile:
    """Where the steps after the timed ones went (torch.profiler): device busy time against wall time."""

    steps: int
    wall_seconds: float
    device_busy_seconds: float  # sum of kernel self times: below the wall time, the host is the bottleneck
    table: str

    def summary(self) -> dict[str, Any]:
        w = self.wall_seconds or float("nan")
        return {
            "steps": self.steps,
            "wall_seconds": round(self.wall_seconds, 4),
            "device_busy_seconds": round(self.device_busy_seconds, 4),
            "device_busy_fraction": round(self.device_busy_seconds / w, 4),
        }


def device_busy_seconds(events) -> float:
    """Seconds the device spent in kernels: the self device time of device-side events (kernels, copies).

    CPU-side operator events (aten::mm ...) also carry the device time of the kernels they launched; counting
    them too would count every kernel twice. This is the profiler's own "Self CUDA time total".
    """
    total_us = 0.0
    for e in events:
        if str(getattr(e, "device_type", "")).rsplit(".", 1)[-1] == "CPU":
            continue
        if getattr(e, "is_user_annotation", False):  # ranges such as ProfilerStep#, not kernels
            continue
        # the attribute was renamed from cuda to device in torch 2.x
        total_us += float(
            getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)) or 0.0
        )
    return total_us / 1e6


def _profile_report(prof, cuda: bool, steps: int, wall: float) -> Profile:
    """Summarise a finished torch.profiler run: device busy time and the top operators."""
    averages = prof.key_averages()
    busy = device_busy_seconds(averages) if cuda else 0.0
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    try:
        table = averages.table(sort_by=sort, row_limit=25)
    except (AttributeError, KeyError, ValueError):  # older naming of the same column
        table = averages.table(sort_by="self_cuda_time_total" if cuda else "cpu_time_total", row_limit=25)
    return Profile(steps=steps, wall_seconds=wall, device_busy_seconds=busy, table=table)


def _timed_train(
    trainer, warmup: int, cuda: bool, steps: int, profile_steps: int = 0
) -> tuple[Measurement, Profile | None]:
    """Train; time ``steps`` steps after ``warmup`` (step end to step end, so data loading counts).

    ``profile_steps`` more steps then run under torch.profiler, outside the timed window so its overhead
    does not touch the figures.
    """
    import torch
    from transformers import TrainerCallback

    records: list[tuple[Any, int, int]] = []  # (real tokens tensor, padded positions, rows) per compute_loss
    losses: list[Any] = []
    compute_loss = trainer.compute_loss

    def counting_compute_loss(model, inputs, *args, **kwargs):
        masks = [v for k, v in inputs.items() if k.endswith("attention_mask")]
        real = sum(m.sum() for m in masks)
        records.append((real, sum(m.numel() for m in masks), masks[0].shape[0] if masks else 0))
        out = compute_loss(model, inputs, *args, **kwargs)
        losses.append((out[0] if isinstance(out, tuple) else out).detach())
        return out

    trainer.compute_loss = counting_compute_loss
    marks: dict[str, Any] = {}

    end = warmup + steps
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    prof = torch.profiler.profile(activities=activities) if profile_steps else None

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step in (warmup, end, end + profile_steps):
                if cuda:
                    torch.cuda.synchronize()
                now = time.perf_counter()
                if state.global_step == warmup:
                    marks["start"] = (now, len(records), state.global_step)
                if state.global_step == end:
                    marks["end"] = (now, len(records), state.global_step)
                    if prof is not None:
                        prof.start()
                if prof is not None and state.global_step == end + profile_steps:
                    prof.stop()
                    marks["profiled"] = (now, len(records), state.global_step)

    trainer.add_callback(Clock())
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    (t0, i0, s0), (t1, i1, s1) = marks["start"], marks["end"]
    measured = records[i0:i1]
    m = Measurement(
        steps=s1 - s0,
        seconds=t1 - t0,
        samples=sum(r[2] for r in measured),
        tokens=int(sum(int(r[0]) for r in measured)),
        positions=sum(r[1] for r in measured),
        losses=[float(x) for x in losses[i0:i1]],
    )
    if cuda:
        m.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
    else:  # Linux: KiB; the process-wide peak so far (monotonic across runs)
        m.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    profile = None
    if prof is not None:
        profile = _profile_report(prof, cuda, profile_steps, marks["profiled"][0] - t1)
    return m, profile


@dataclass
class BenchConfig:
    """The benchmark's options (scripts/bench.py maps the command line onto these)."""

    model: str = "base"  # tiny | base | real
    phases: tuple[int, ...] = (1, 2, 3)
    steps: int = 10
    warmup: int = 3
    batch_size: int | None = None  # None: the recipe's per phase
    seq_len: int | None = None  # None: the recipe's per phase
    spread: float = 0.75  # lengths from seq_len * (1 - spread) to seq_len
    device: str = "auto"  # auto | cpu | cuda
    recipe: str | None = None  # None: recipes/gpu.yaml on CUDA, recipes/cpu.yaml otherwise
    overrides: tuple[str, ...] = ()
    precision: str | None = None  # None: as training decides from the recipe
    tokenizer: str | None = None
    peak_flops: float | None = None
    defaults: bool = True  # also measure plain sentence-transformers defaults
    profile_steps: int = 0  # > 0: that many more steps of ours under torch.profiler (after the timed ones)
    seed: int = 0


def _build_model(cfg: BenchConfig, seq_len: int):
    from medenc.core.modeling import build_random_model, load_base

    if cfg.model == "real":
        return load_base(device="cpu", max_seq_length=seq_len)
    if cfg.model not in ("tiny", "base"):
        raise ValueError(f"--model: expected tiny, base or real, found {cfg.model!r}")
    return build_random_model(
        cfg.model, max_seq_length=seq_len, seed=cfg.seed, device="cpu", tokenizer=cfg.tokenizer
    )


def _defaults_trainer(recipe, n, model, train, output_dir, batch_size: int, max_steps: int):
    """Plain sentence-transformers: default arguments except output_dir, batch size and max_steps."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from medenc.training.run import make_loss

    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=batch_size, max_steps=max_steps
    )
    return SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train, loss=make_loss(recipe, n, model, 1)
    )


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def run_bench(cfg: BenchConfig, log=print) -> dict[str, Any]:
    """Measure every phase of ``cfg``; returns the bench.json record."""
    import torch

    from medenc.training.recipe import load_recipe
    from medenc.training.run import PHASES, build_trainer, decide_precision, requested_precision

    if cfg.steps < 1 or cfg.warmup < 1:
        raise ValueError("--steps and --warmup must be at least 1")
    cuda = {"auto": torch.cuda.is_available(), "cpu": False, "cuda": True}[cfg.device]
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device")
    recipe_path = Path(cfg.recipe or PROJECT_ROOT / "recipes" / ("gpu.yaml" if cuda else "cpu.yaml"))
    overrides = list(cfg.overrides)
    for n in cfg.phases:
        if cfg.batch_size:
            overrides.append(f"phase{n}.batch_size={cfg.batch_size}")
        if cfg.seq_len:
            overrides.append(f"phase{n}.max_seq_length={cfg.seq_len}")
    recipe = load_recipe(recipe_path, overrides)
    requested = cfg.precision or requested_precision(recipe.precision)
    precision, reason = decide_precision(requested, cuda)

    if cuda:
        device_name = torch.cuda.get_device_name(0)
        peak, peak_source = gpu_peak_flops(device_name), "dense fp16/bf16 tensor-core peak, vendor datasheet"
        if peak is None and cfg.peak_flops is None:
            raise RuntimeError(f"no peak FLOP/s known for {device_name!r}: pass --peak-flops")
    else:
        device_name = environment.device_name("cpu")
        peak, peak_source = cpu_peak_flops(precision=precision)
    if cfg.peak_flops is not None:
        peak, peak_source = cfg.peak_flops, "--peak-flops"

    max_steps = cfg.warmup + cfg.steps
    if cfg.profile_steps < 0:
        raise ValueError("--profile-steps must be 0 or more")
    phases_out: list[dict[str, Any]] = []
    text_sources: dict[int, str] = {}
    parameters = all_parameters = None
    for n in cfg.phases:
        pc = recipe.phase(n)
        seq_len, bs = recipe.seq_len(n), pc.batch_size
        pool, text_sources[n] = text_pool(n)
        model = _build_model(cfg, seq_len)
        parameters, all_parameters = matmul_parameters(model), sum(p.numel() for p in model.parameters())
        total = max_steps + cfg.profile_steps
        rows = synthetic_rows(n, model.tokenizer, pool, total * bs, seq_len, cfg.spread, cfg.seed + n)
        runs: dict[str, Measurement] = {}
        profile: Profile | None = None
        variants = ["ours", "defaults"] if cfg.defaults else ["ours"]
        for variant in variants:
            if variant == "defaults":
                model = _build_model(cfg, seq_len)
            train = make_dataset(rows)
            mp = precision if variant == "ours" else "fp32"
            os.environ["ACCELERATE_MIXED_PRECISION"] = {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}[mp]
            with tempfile.TemporaryDirectory(prefix=f"medenc-bench-{n}-") as tmp:
                if variant == "ours":
                    trainer = build_trainer(
                        recipe,
                        n,
                        model,
                        train,
                        None,
                        precision=precision,
                        cuda=cuda,
                        output_dir=tmp,
                        num_processes=1,
                        max_steps=total,
                        save_checkpoints=False,
                    )
                    runs[variant], profile = _timed_train(
                        trainer, cfg.warmup, cuda, cfg.steps, cfg.profile_steps
                    )
                else:
                    trainer = _defaults_trainer(recipe, n, model, train, tmp, bs, max_steps)
                    runs[variant], _ = _timed_train(trainer, cfg.warmup, cuda, cfg.steps)
            del trainer
            log(f"phase {n} {variant}: {runs[variant].steps} steps in {runs[variant].seconds:.2f} s")
        summaries = {k: v.summary(parameters, peak) for k, v in runs.items()}
        entry: dict[str, Any] = {
            "phase": n,
            "name": PHASES[n].name,
            "loss": PHASES[n].losses[pc.loss],
            "batch_size": bs,
            "seq_len": seq_len,
            "text_source": text_sources[n],
            "options": {
                "precision": precision,
                "group_by_length": pc.group_by_length,
                "dataloader_workers": pc.dataloader_workers,
                "torch_compile": pc.torch_compile,
                "attention": pc.attention,
            },
            **summaries,
        }
        if profile is not None:
            entry["profile_ours"] = {**profile.summary(), "top_operators": profile.table}
            log(
                f"phase {n} ours, profiled {profile.steps} steps: device busy "
                f"{profile.device_busy_seconds:.3f} s of {profile.wall_seconds:.3f} s"
            )
        if "defaults" in summaries:
            o, d = summaries["ours"], summaries["defaults"]
            entry["ratio_ours_to_defaults"] = {
                k: _ratio(o[k], d[k]) for k in ("samples_per_second", "tokens_per_second", "peak_memory_mb")
            }
        phases_out.append(entry)

    notes = []
    if any(s.startswith("built-in") for s in text_sources.values()):
        notes.append("texts: built-in medical sentences, not the prepared data (see text_source)")
    if not cuda:
        notes.append(
            "peak_memory_mb on CPU is the process's peak RSS so far (ru_maxrss), monotonic across runs"
        )
    if cfg.model == "tiny":
        notes.append(
            "tiny model: indicative only; real figures come from `make bench` with --model real/base"
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {
            "kind": cfg.model,
            "parameters": parameters,
            "all_parameters": all_parameters,
            "tokenizer": cfg.tokenizer
            or ("base model folder" if cfg.model == "real" else "bench_assets/tokenizer"),
        },
        "device": {
            "type": "cuda" if cuda else "cpu",
            "name": device_name,
            "peak_flops": peak,
            "peak_flops_source": peak_source,
        },
        "precision": {"requested": requested, "used": precision, "reason": reason},
        "config": {
            "recipe": str(recipe_path),
            "overrides": overrides,
            "steps": cfg.steps,
            "warmup": cfg.warmup,
            "spread": cfg.spread,
            "seed": cfg.seed,
        },
        "mfu_formula": "6 * parameters * tokens / seconds / peak_flops (parameters: no embedding tables)",
        "versions": environment.versions(),
        "phases": phases_out,
        "notes": notes,
    }


def format_table(result: dict[str, Any]) -> str:
    """A short text table of bench.json."""
    lines = [
        f"device {result['device']['name']} ({result['device']['type']}), model {result['model']['kind']} "
        f"({result['model']['parameters']:,} parameters), peak {result['device']['peak_flops']:.3g} FLOP/s "
        f"[{result['device']['peak_flops_source']}]",
        f"{'phase':<10}{'run':<10}{'samples/s':>11}{'tokens/s':>11}{'pad waste':>10}{'peak MB':>10}"
        f"{'MFU':>9}",
    ]
    for p in result["phases"]:
        for run in ("ours", "defaults"):
            if run in p:
                m = p[run]
                mfu_s = f"{m['mfu']:.2%}" if m["mfu"] is not None else "n/a"
                lines.append(
                    f"{p['phase']} {p['name']:<8}{run:<10}{m['samples_per_second']:>11.2f}"
                    f"{m['tokens_per_second']:>11.0f}{m['padding_waste']:>10.1%}{m['peak_memory_mb']:>10.0f}"
                    f"{mfu_s:>9}"
                )
        if "ratio_ours_to_defaults" in p:
            r = p["ratio_ours_to_defaults"]
            lines.append(f"{'':<10}{'ours/def':<10}{r['samples_per_second']:>11}{r['tokens_per_second']:>11}")
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def write_result(result: dict[str, Any], out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return out


__all__ = [
    "BenchConfig",
    "controlled_texts",
    "cpu_peak_flops",
    "format_table",
    "gpu_peak_flops",
    "mfu",
    "padding_waste",
    "run_bench",
    "write_result",
]

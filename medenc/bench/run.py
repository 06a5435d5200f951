"""Training-step benchmark: throughput, padding waste, peak memory and MFU per phase (``make bench``).

Each phase's step runs through the training code path (:func:`medenc.training.trainer.build_trainer`, the
recipe's speed options, precision decided as in training) on synthetic batches whose texts come from the
prepared data (or, when it is missing, a built-in list of medical sentences), cut and joined with the real
tokenizer to controlled token lengths (:mod:`medenc.bench.texts`). The same batches also run through plain
sentence-transformers defaults, and the report gives ours/defaults. Phase 2 also runs as a reference row: the
same model, loss and batch in a bare PyTorch loop (:mod:`medenc.bench.reference`), the ceiling ours is read
against (ours/reference). See docs/bench.md.

:func:`run_bench` reads top down: :func:`prepare` (device, recipe, precision, peak FLOP/s), then
:func:`bench_phase` per phase (ours, then defaults, then the reference in phase 2), then the record.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medenc.bench.measure import Measurement, Profile, cpu_peak_flops, gpu_peak_flops, matmul_parameters
from medenc.bench.options import BenchConfig
from medenc.bench.texts import make_dataset, synthetic_rows, text_pool
from medenc.core import environment
from medenc.core.io import utc_now, write_json
from medenc.core.paths import PROJECT_ROOT
from medenc.training.losses import LOSSES
from medenc.training.phase_specs import PHASES
from medenc.training.precision import decide_precision, requested_precision, tell_accelerate
from medenc.training.recipe import Recipe, load_recipe
from medenc.training.trainer import build_trainer, make_loss, training_arguments

SCHEMA_VERSION = 1
MFU_FORMULA = "6 * parameters * tokens / seconds / peak_flops (parameters: no embedding tables)"

Log = Callable[[str], None]


# --- Decided once, before any phase runs ----------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What every phase shares: the options, device, recipe, precision and the peak FLOP/s for MFU."""

    cfg: BenchConfig
    cuda: bool
    recipe_path: Path
    overrides: list[str]  # --set, then --batch-size / --seq-len per measured phase
    recipe: Recipe
    requested: str
    precision: str
    reason: str
    device_name: str
    peak: float
    peak_source: str


def _check(cfg: BenchConfig) -> None:
    if cfg.steps < 1 or cfg.warmup < 1:
        raise ValueError("--steps and --warmup must be at least 1")
    if cfg.profile_steps < 0:
        raise ValueError("--profile-steps must be 0 or more")
    if cfg.compile_reference not in ("auto", "on", "off"):
        raise ValueError(f"--compile-reference: expected auto, on or off, found {cfg.compile_reference!r}")


def _use_cuda(device: str) -> bool:
    import torch

    cuda = {"auto": torch.cuda.is_available(), "cpu": False, "cuda": True}[device]
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device")
    return cuda


def _overrides(cfg: BenchConfig) -> list[str]:
    """``--set`` overrides, then ``--batch-size`` / ``--seq-len`` for every measured phase (these win)."""
    overrides = list(cfg.overrides)
    for n in cfg.phases:
        if cfg.batch_size:
            overrides.append(f"phase{n}.batch_size={cfg.batch_size}")
        if cfg.seq_len:
            overrides.append(f"phase{n}.max_seq_length={cfg.seq_len}")
    return overrides


def _peak_flops(cfg: BenchConfig, cuda: bool, precision: str) -> tuple[str, float, str]:
    """The device's name, its peak FLOP/s and where that figure comes from (``--peak-flops`` wins)."""
    device_name = environment.device_name("cuda" if cuda else "cpu")
    if cfg.peak_flops is not None:
        return device_name, cfg.peak_flops, "--peak-flops"
    if not cuda:
        return (device_name, *cpu_peak_flops(precision=precision))
    peak = gpu_peak_flops(device_name)
    if peak is None:
        raise RuntimeError(f"no peak FLOP/s known for {device_name!r}: pass --peak-flops")
    return device_name, peak, "dense fp16/bf16 tensor-core peak, vendor datasheet"


def prepare(cfg: BenchConfig) -> Setup:
    """Check the options; decide device, recipe (with overrides), precision as training would, peak FLOP/s."""
    _check(cfg)
    cuda = _use_cuda(cfg.device)
    recipe_path = Path(cfg.recipe or PROJECT_ROOT / "recipes" / ("gpu.yaml" if cuda else "cpu.yaml"))
    overrides = _overrides(cfg)
    recipe = load_recipe(recipe_path, overrides)
    requested = cfg.precision or requested_precision(recipe.precision)
    precision, reason = decide_precision(requested, cuda)
    device_name, peak, peak_source = _peak_flops(cfg, cuda, precision)
    return Setup(
        cfg=cfg,
        cuda=cuda,
        recipe_path=recipe_path,
        overrides=overrides,
        recipe=recipe,
        requested=requested,
        precision=precision,
        reason=reason,
        device_name=device_name,
        peak=peak,
        peak_source=peak_source,
    )


# --- One phase ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseResult:
    """A phase's bench.json entry, and what the top-level record takes from it."""

    entry: dict[str, Any]
    text_source: str
    parameters: int
    all_parameters: int


def _build_model(cfg: BenchConfig, seq_len: int) -> Any:
    from medenc.core.modeling import build_random_model, load_base

    if cfg.model == "real":
        return load_base(device="cpu", max_seq_length=seq_len)
    if cfg.model not in ("tiny", "base"):
        raise ValueError(f"--model: expected tiny, base or real, found {cfg.model!r}")
    return build_random_model(
        cfg.model, max_seq_length=seq_len, seed=cfg.seed, device="cpu", tokenizer=cfg.tokenizer
    )


def _measure_ours(
    s: Setup, n: int, model: Any, rows: dict[str, list[Any]]
) -> tuple[Measurement, Profile | None]:
    """Our path: the Trainer training builds, at the decided precision; then the profiled steps, if asked."""
    from medenc.bench.timing import timed_train

    cfg = s.cfg
    train = make_dataset(rows)
    tell_accelerate(s.precision)
    with tempfile.TemporaryDirectory(prefix=f"medenc-bench-{n}-") as tmp:
        trainer = build_trainer(
            s.recipe,
            n,
            model,
            train,
            None,
            precision=s.precision,
            cuda=s.cuda,
            output_dir=tmp,
            num_processes=1,
            max_steps=cfg.warmup + cfg.steps + cfg.profile_steps,
            save_checkpoints=False,
        )
        return timed_train(trainer, cfg.warmup, s.cuda, cfg.steps, cfg.profile_steps)


def _measure_defaults(
    s: Setup, n: int, model: Any, rows: dict[str, list[Any]], batch_size: int
) -> Measurement:
    """Plain sentence-transformers: default arguments but output_dir, batch size and max_steps; same loss."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from medenc.bench.timing import timed_train

    cfg = s.cfg
    train = make_dataset(rows)
    tell_accelerate("fp32")  # the defaults train in fp32; accelerate must not carry over ours
    with tempfile.TemporaryDirectory(prefix=f"medenc-bench-{n}-") as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, per_device_train_batch_size=batch_size, max_steps=cfg.warmup + cfg.steps
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=train, loss=make_loss(s.recipe, n, model, 1)
        )
        return timed_train(trainer, cfg.warmup, s.cuda, cfg.steps)[0]


def _measure_reference(s: Setup, n: int, rows: dict[str, list[Any]]) -> tuple[Measurement, dict[str, Any]]:
    """The reference row: a fresh model (the same initial weights as ours), the same loss, a bare loop."""
    import torch

    from medenc.bench.reference import ReferenceSpec, measure_reference
    from medenc.core.modeling import use_length_chunks, use_sdpa_attention

    cfg, pc = s.cfg, s.recipe.phase(n)
    model = _build_model(cfg, s.recipe.seq_len(n))
    if pc.attention == "sdpa":  # the same model as ours: build_trainer patches it so
        use_sdpa_attention(model)
    use_length_chunks(model, pc.length_chunks)
    with tempfile.TemporaryDirectory(prefix=f"medenc-bench-{n}-") as tmp:
        # the optimizer settings the Trainer of ours reads (learning rate, betas, eps, decay, clipping)
        args = training_arguments(s.recipe, n, precision=s.precision, cuda=s.cuda, output_dir=tmp)
    spec = ReferenceSpec(
        columns=PHASES[n].columns,
        batch_size=pc.batch_size,
        seq_len=s.recipe.seq_len(n),
        warmup=cfg.warmup,
        precision=s.precision,
        cuda=s.cuda,
        compile={"auto": s.cuda, "on": True, "off": False}[cfg.compile_reference],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
    )
    rows = {c: rows[c][: (cfg.warmup + cfg.steps) * pc.batch_size] for c in spec.columns}
    torch.manual_seed(cfg.seed)  # dropout: the same masks on every run of the command line
    return measure_reference(model, make_loss(s.recipe, n, model, 1), rows, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


RATIO_KEYS = ("samples_per_second", "tokens_per_second", "mfu", "peak_memory_mb")


def _phase_entry(
    s: Setup,
    n: int,
    text_source: str,
    runs: dict[str, Measurement],
    profile: Profile | None,
    parameters: int,
    reference_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The phase's record in bench.json: settings, each run's figures, profile, ours/defaults, ours/ref."""
    pc = s.recipe.phase(n)
    summaries = {k: v.summary(parameters, s.peak) for k, v in runs.items()}
    entry: dict[str, Any] = {
        "phase": n,
        "name": PHASES[n].name,
        "loss": LOSSES[pc.loss].class_name,
        "batch_size": pc.batch_size,
        "seq_len": s.recipe.seq_len(n),
        "text_source": text_source,
        "options": {
            "precision": s.precision,
            "group_by_length": pc.group_by_length,
            "dataloader_workers": pc.dataloader_workers,
            "torch_compile": pc.torch_compile,
            "attention": pc.attention,
            "optimizer": pc.optimizer,
            "pad_to_multiple_of": pc.pad_to_multiple_of,
            "length_chunks": pc.length_chunks,
        },
        **summaries,
    }
    if profile is not None:
        entry["profile_ours"] = {**profile.summary(), "top_operators": profile.table}
    o = summaries["ours"]
    for run, key in (("defaults", "ratio_ours_to_defaults"), ("reference", "ratio_ours_to_reference")):
        if run in summaries:
            entry[key] = {k: _ratio(o[k], summaries[run][k]) for k in RATIO_KEYS}
    if reference_options is not None:
        entry["reference"]["options"] = reference_options
    return entry


def bench_phase(s: Setup, n: int, log: Log = print) -> PhaseResult:
    """Measure phase ``n``: ours, then (unless ``--no-defaults``) plain defaults on the same rows, then (phase
    2, unless ``--no-reference``) the bare-loop reference on them."""
    cfg = s.cfg
    seq_len, batch_size = s.recipe.seq_len(n), s.recipe.phase(n).batch_size
    pool, text_source = text_pool(n)
    model = _build_model(cfg, seq_len)
    parameters, all_parameters = matmul_parameters(model), sum(p.numel() for p in model.parameters())
    rows_needed = (cfg.warmup + cfg.steps + cfg.profile_steps) * batch_size
    rows = synthetic_rows(n, model.tokenizer, pool, rows_needed, seq_len, cfg.spread, cfg.seed + n)
    runs: dict[str, Measurement] = {}
    runs["ours"], profile = _measure_ours(s, n, model, rows)
    del model  # the defaults train fresh weights: ours must not sit in the memory they measure
    log(f"phase {n} ours: {runs['ours'].steps} steps in {runs['ours'].seconds:.2f} s")
    if cfg.defaults:
        runs["defaults"] = _measure_defaults(s, n, _build_model(cfg, seq_len), rows, batch_size)
        log(f"phase {n} defaults: {runs['defaults'].steps} steps in {runs['defaults'].seconds:.2f} s")
    reference_options = None
    if cfg.reference and n == 2:
        runs["reference"], reference_options = _measure_reference(s, n, rows)
        log(f"phase {n} reference: {runs['reference'].steps} steps in {runs['reference'].seconds:.2f} s")
    if profile is not None:
        log(
            f"phase {n} ours, profiled {profile.steps} steps: device busy "
            f"{profile.device_busy_seconds:.3f} s of {profile.wall_seconds:.3f} s"
        )
    entry = _phase_entry(s, n, text_source, runs, profile, parameters, reference_options)
    return PhaseResult(entry, text_source, parameters, all_parameters)


# --- The record -----------------------------------------------------------------------------------------


def _notes(s: Setup, phases: list[PhaseResult]) -> list[str]:
    notes = []
    if any(p.text_source.startswith("built-in") for p in phases):
        notes.append("texts: built-in medical sentences, not the prepared data (see text_source)")
    if not s.cuda:
        notes.append(
            "peak_memory_mb on CPU is the process's peak RSS so far (ru_maxrss), monotonic across runs"
        )
    if s.cfg.model == "tiny":
        notes.append(
            "tiny model: indicative only; real figures come from `make bench` with --model real/base"
        )
    return notes


def _record(s: Setup, phases: list[PhaseResult]) -> dict[str, Any]:
    """bench.json: the phases with the model, device, precision and options they ran with."""
    cfg = s.cfg
    last = phases[-1] if phases else None
    return {
        "schema_version": SCHEMA_VERSION,
        "created": utc_now(),
        "model": {
            "kind": cfg.model,
            "parameters": last.parameters if last else None,  # the model is the same in every phase
            "all_parameters": last.all_parameters if last else None,
            "tokenizer": cfg.tokenizer
            or ("base model folder" if cfg.model == "real" else "bench_assets/tokenizer"),
        },
        "device": {
            "type": "cuda" if s.cuda else "cpu",
            "name": s.device_name,
            "peak_flops": s.peak,
            "peak_flops_source": s.peak_source,
        },
        "precision": {"requested": s.requested, "used": s.precision, "reason": s.reason},
        "config": {
            "recipe": str(s.recipe_path),
            "overrides": s.overrides,
            "steps": cfg.steps,
            "warmup": cfg.warmup,
            "spread": cfg.spread,
            "seed": cfg.seed,
            "reference": cfg.reference,
            "compile_reference": cfg.compile_reference,
        },
        "mfu_formula": MFU_FORMULA,
        "versions": environment.versions(),
        "phases": [p.entry for p in phases],
        "notes": _notes(s, phases),
    }


def run_bench(cfg: BenchConfig, log: Log = print) -> dict[str, Any]:
    """Measure every phase of ``cfg``; returns the bench.json record."""
    setup = prepare(cfg)
    phases = [bench_phase(setup, n, log) for n in cfg.phases]
    return _record(setup, phases)


def run_and_write(cfg: BenchConfig, log: Log = print) -> tuple[dict[str, Any], Path]:
    """The command line's entry point: run the benchmark of ``cfg``, write its bench.json to ``cfg.out``."""
    result = run_bench(cfg, log)
    return result, write_result(result, cfg.out)


def format_table(result: dict[str, Any]) -> str:
    """A short text table of bench.json: a row per run, then ours/defaults and ours/reference."""
    lines = [
        f"device {result['device']['name']} ({result['device']['type']}), model {result['model']['kind']} "
        f"({result['model']['parameters']:,} parameters), peak {result['device']['peak_flops']:.3g} FLOP/s "
        f"[{result['device']['peak_flops_source']}]",
        f"{'phase':<10}{'run':<10}{'samples/s':>11}{'tokens/s':>11}{'pad waste':>10}{'peak MB':>10}"
        f"{'MFU':>9}{'loss 1st':>10}",
    ]
    for p in result["phases"]:
        for run in ("ours", "defaults", "reference"):
            if run in p:
                m = p[run]
                mfu_s = f"{m['mfu']:.2%}" if m["mfu"] is not None else "n/a"
                loss_s = f"{m['loss_first']:.4f}" if m["loss_first"] is not None else "n/a"
                lines.append(
                    f"{p['phase']} {p['name']:<8}{run:<10}{m['samples_per_second']:>11.2f}"
                    f"{m['tokens_per_second']:>11.0f}{m['padding_waste']:>10.1%}{m['peak_memory_mb']:>10.0f}"
                    f"{mfu_s:>9}{loss_s:>10}"
                )
        for key, label in (("ratio_ours_to_defaults", "ours/def"), ("ratio_ours_to_reference", "ours/ref")):
            if key in p:
                r = p[key]
                lines.append(
                    f"{'':<10}{label:<10}{r['samples_per_second']!s:>11}{r['tokens_per_second']!s:>11}"
                    f"{'':>10}{r['peak_memory_mb']!s:>10}{r['mfu']!s:>9}"
                )
        if "reference" in p:
            o = p["reference"]["options"]
            lines.append(
                f"{'':<10}reference: {o['optimizer']}, compiled {o['torch_compile']}, {o['precision']}, "
                f"first step {o['first_step_seconds']:.2f} s, warm-up {o['warmup_seconds']:.2f} s (untimed)"
            )
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def write_result(result: dict[str, Any], out: str | Path) -> Path:
    """Write bench.json to ``out`` (folders made as needed), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_json(out, result)

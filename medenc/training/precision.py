"""Which precision training really uses, and why: decided once, logged, recorded in run.json.

``fp16=True`` on a CPU silently trains in fp32, and ``accelerate launch`` exports its config's mixed precision
where it cannot run; medenc decides explicitly and tells accelerate what it decided.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from medenc.core.errors import RecipeError
from medenc.core.io import write_json
from medenc.core.paths import PROJECT_ROOT

# medenc's precision names <-> accelerate's ``mixed_precision`` values (its config and environment).
TO_ACCELERATE: dict[str, str] = {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}
FROM_ACCELERATE: dict[str, str] = {v: k for k, v in TO_ACCELERATE.items()}


def requested_precision(recipe_precision: str, env: dict[str, str] | None = None) -> str:
    """Resolve ``auto`` to accelerate's mixed precision (``accelerate launch``'s env, else its config)."""
    if recipe_precision != "auto":
        return recipe_precision
    env = os.environ if env is None else env
    mp = env.get("ACCELERATE_MIXED_PRECISION")
    if mp is None:
        config = PROJECT_ROOT / "accelerate_config.yaml"
        if config.is_file():
            import yaml

            mp = str((yaml.safe_load(config.read_text()) or {}).get("mixed_precision", "no"))
    return FROM_ACCELERATE.get(mp or "no", "fp32")


# bf16 must beat fp32 by this factor to be chosen on a CPU: below it, measurement noise could pick either.
BF16_MARGIN = 1.15
_CACHE_FILE = "cpu_precision.json"


def _matmul_gflops(dtype_name: str, size: int = 512, seconds: float = 0.2) -> float:
    """GFLOP/s of square matmuls on this CPU, in fp32 or under bf16 autocast (as training runs them)."""
    import time

    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype_name == "bf16"):
        a @ b  # warm-up: the first call pays for kernel selection (emulated bf16 takes ~0.3 s a call)
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            a @ b
            n += 1
    return 2 * size**3 * n / elapsed / 1e9


def _machine_key() -> str:
    """What the measurement depends on: CPU model and flags, torch version and threads."""
    import hashlib

    import torch

    from medenc.core.environment import cpu_flags, device_name

    flags = " ".join(sorted(cpu_flags()[1]))
    raw = f"{device_name('cpu')}|{flags}|{torch.__version__}|{torch.get_num_threads()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


ROUNDS = 3


def best_of_rounds(measure, rounds: int = ROUNDS) -> dict[str, float]:
    """Each precision's best figure over ``rounds`` alternating measurements (fp32, bf16, fp32, ...).

    The figure is cached for every later run, so one busy moment must not decide it: a single measurement
    taken while another process held a core once recorded fp32 6 and bf16 2 GFLOP/s on a CPU that runs 201
    and 918, and every later run trained 4x slower in fp32. Other work only ever slows a measurement, so the
    best is the closest to the CPU's own speed, and alternating gives both precisions the same moments.
    """
    best = {"fp32": 0.0, "bf16": 0.0}
    for _ in range(rounds):
        for name in best:
            best[name] = max(best[name], measure(name))
    return {"fp32_gflops": round(best["fp32"], 1), "bf16_gflops": round(best["bf16"], 1)}


def cpu_speed(cache: Path | None = None, measure=_matmul_gflops) -> dict[str, float]:
    """fp32 and bf16 GFLOP/s of this CPU: measured once (about a second), then read from the cache.

    The CPU kind varies between machines of the same name (bf16 ran 3.2x faster than fp32 on one 2-core
    machine and 2.2x slower on another), so precision is never inferred from CPU flags.
    """
    from medenc.core.paths import cache_dir

    path = cache or cache_dir() / _CACHE_FILE
    key = _machine_key()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return {"fp32_gflops": cached["fp32_gflops"], "bf16_gflops": cached["bf16_gflops"]}
    except (OSError, ValueError, KeyError):
        pass  # absent or unreadable: measure again
    speed = best_of_rounds(measure)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"key": key, **speed})
    return speed


def _cpu_choice(requested: str, speed: dict[str, float]) -> tuple[str, str]:
    """The CPU's precision for a request of fp16 (the GPU default) or bf16, from the measured speeds."""
    fp32, bf16 = speed["fp32_gflops"], speed["bf16_gflops"]
    figures = f"bf16 autocast {bf16:.0f} GFLOP/s vs fp32 {fp32:.0f} GFLOP/s, measured on this CPU"
    if requested == "bf16":  # the recipe insists: honoured, but never silently slower
        if bf16 < fp32:
            return "bf16", f"bf16 as the recipe insists, although it is slower here ({figures}); use auto"
        return "bf16", f"bf16 autocast as the recipe asks ({figures})"
    best = "bf16" if bf16 >= BF16_MARGIN * fp32 else "fp32"
    return best, f"{requested} needs CUDA and this is a CPU: training in {best} ({figures})"


def decide_precision(
    requested: str, cuda_available: bool, speed: dict[str, float] | None = None
) -> tuple[str, str]:
    """The precision training really uses, and why; ``requested`` is fp32, fp16 or bf16 (not auto).

    On a CPU, fp16 (what ``auto`` resolves to with the fp16 accelerate config) becomes whichever of bf16 and
    fp32 measured faster here; ``speed`` (default: :func:`cpu_speed`) is injectable for tests.
    """
    if requested not in TO_ACCELERATE:
        raise RecipeError(f"precision: expected one of auto, fp32, fp16, bf16, found {requested!r}")
    if requested == "fp32":
        return "fp32", "the recipe asks for fp32"
    if cuda_available:
        return requested, f"{requested} mixed precision on CUDA"
    return _cpu_choice(requested, speed if speed is not None else cpu_speed())


def tell_accelerate(precision: str) -> None:
    """Export the decided precision, so the Trainer does not pick up one that cannot run here."""
    os.environ["ACCELERATE_MIXED_PRECISION"] = TO_ACCELERATE[precision]

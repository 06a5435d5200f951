"""Which precision training really uses, and why: decided once, logged, recorded in run.json.

``fp16=True`` on a CPU silently trains in fp32, and ``accelerate launch`` exports its config's mixed precision
where it cannot run; medenc decides explicitly and tells accelerate what it decided.
"""

from __future__ import annotations

import os

from medenc.core.errors import RecipeError
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


def decide_precision(requested: str, cuda_available: bool, cpu_bf16: bool | None = None) -> tuple[str, str]:
    """The precision training really uses, and why; ``requested`` is fp32, fp16 or bf16 (not auto).

    ``cpu_bf16``: whether the CPU has native bf16 (default: read from /proc/cpuinfo). Without it bf16 autocast
    on a CPU is emulated and slower than fp32, so the honest choice is fp32.
    """
    if requested == "fp32":
        return "fp32", "the recipe asks for fp32"
    if requested == "fp16":
        if cuda_available:
            return "fp16", "fp16 mixed precision on CUDA"
        return (
            "fp32",
            "fp16 needs CUDA and this is a CPU: training in fp32 (set precision: bf16 for bf16 autocast)",
        )
    if requested == "bf16":
        if cuda_available:
            return "bf16", "bf16 mixed precision on CUDA"
        if cpu_bf16 is None:
            from medenc.core.environment import cpu_has_bf16

            cpu_bf16 = cpu_has_bf16()
        if cpu_bf16:
            return "bf16", "bf16 autocast on a CPU with native bf16 (avx512_bf16/amx_bf16)"
        return "fp32", "bf16 on this CPU would be emulated (no avx512_bf16/amx_bf16): training in fp32"
    raise RecipeError(f"precision: expected one of auto, fp32, fp16, bf16, found {requested!r}")


def tell_accelerate(precision: str) -> None:
    """Export the decided precision, so the Trainer does not pick up one that cannot run here."""
    os.environ["ACCELERATE_MIXED_PRECISION"] = TO_ACCELERATE[precision]

"""Measure each training phase's step: samples/s, tokens/s, padding waste, peak memory, MFU (``make bench``).

Examples::

    python scripts/bench.py                                  # the real base model, recipe of this device
    python scripts/bench.py --model tiny --steps 2 --warmup 1  # seconds, for tests
    python scripts/bench.py --model base --tokenizer bench_assets/tokenizer --device cuda  # GPU

Writes bench.json (``--out``) and prints a table; see docs/bench.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from medenc.training.recipe import add_override_argument

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        choices=["tiny", "base", "real"],
        default="real",
        help="real: the verified base model; base: random weights, base shape; tiny: tests",
    )
    parser.add_argument("--phases", default="1,2,3", help="comma-separated phase numbers")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's per phase")
    parser.add_argument("--seq-len", type=int, default=None, help="default: the recipe's per phase")
    parser.add_argument(
        "--spread", type=float, default=0.75, help="lengths from seq-len*(1-spread) to seq-len"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--recipe", default=None, help="default: recipes/gpu.yaml on CUDA, else recipes/cpu.yaml"
    )
    add_override_argument(parser)
    parser.add_argument(
        "--precision",
        choices=["fp32", "fp16", "bf16"],
        default=None,
        help="default: as training decides from the recipe",
    )
    parser.add_argument("--tokenizer", default=None, help="folder of tokenizer files (for --model tiny/base)")
    parser.add_argument("--peak-flops", type=float, default=None, help="the device's peak FLOP/s for MFU")
    parser.add_argument("--no-defaults", action="store_true", help="skip the plain sentence-transformers run")
    parser.add_argument(
        "--profile-steps",
        type=int,
        default=0,
        help="run this many more steps of ours under torch.profiler (after the timed ones): device busy "
        "time and top operators in bench.json",
    )
    parser.add_argument("--out", default="outputs/bench/bench.json")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from medenc.bench.run import BenchConfig, format_table, run_bench, write_result
    from medenc.core.errors import MedencError

    cfg = BenchConfig(
        model=args.model,
        phases=tuple(int(p) for p in args.phases.split(",") if p.strip()),
        steps=args.steps,
        warmup=args.warmup,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        spread=args.spread,
        device=args.device,
        recipe=args.recipe,
        overrides=tuple(args.overrides),
        precision=args.precision,
        tokenizer=args.tokenizer,
        peak_flops=args.peak_flops,
        defaults=not args.no_defaults,
        profile_steps=args.profile_steps,
    )
    try:
        result = run_bench(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (MedencError, ValueError, RuntimeError) as exc:
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    out = write_result(result, args.out)
    print(format_table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

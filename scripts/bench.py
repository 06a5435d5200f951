"""Measure each training phase's step: samples/s, tokens/s, padding waste, peak memory, MFU (``make bench``).

Usage (what ``make bench BENCH_ARGS="..."`` runs)::

    python scripts/bench.py [BENCH_ARGS]

    python scripts/bench.py                                  # the real base model, recipe of this device
    python scripts/bench.py --model tiny --steps 2 --warmup 1  # seconds, for tests
    python scripts/bench.py --model base --tokenizer bench_assets/tokenizer --device cuda  # GPU
    python scripts/bench.py --phases 2 --steps 4 --warmup 1 --batch-size 16 --seq-len 128 \\
        --set phase2.group_by_length=true --precision bf16 --out results/bench/bench_cpu_bf16.json

Writes bench.json (``--out``) and prints a table; the options are medenc.bench.BenchConfig's fields
(``--help``); see docs/bench.md.
"""

from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the benchmark, print its table; an error a user can act on exits 2."""
    # Before medenc imports anything of huggingface_hub, which reads the setting once, at import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from _cli import parse_bench_args, with_env_args

    from medenc.bench import format_table, run_and_write
    from medenc.core.errors import MedencError, fail

    cfg = parse_bench_args(with_env_args(argv, "MEDENC_BENCH_ARGS"), description=__doc__.split("\n\n")[0])
    try:
        result, out = run_and_write(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except MedencError as exc:
        return fail(exc)
    except (ValueError, RuntimeError) as exc:  # torch's own words for an impossible shape or device
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

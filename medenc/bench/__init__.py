"""``make bench``: training throughput, padding waste, peak memory and MFU per phase, against plain defaults.

A tool over training: it imports core, data and training, and nothing imports it. options (BenchConfig,
whose fields scripts/_cli.py makes the command line), texts (synthetic rows of controlled length), measure
(MFU, peaks, padding, profile figures), timing (timed Trainer steps), reference (phase 2's step in a bare
PyTorch loop, the ceiling the Trainer path is read against), run (a whole benchmark and its bench.json). The
entry point is :func:`run_and_write`; see docs/bench.md.
"""

from medenc.bench.measure import cpu_peak_flops, device_busy_seconds, gpu_peak_flops, mfu, padding_waste
from medenc.bench.options import BenchConfig
from medenc.bench.run import format_table, run_and_write, run_bench, write_result
from medenc.bench.texts import controlled_texts

__all__ = [
    "BenchConfig",
    "controlled_texts",
    "cpu_peak_flops",
    "device_busy_seconds",
    "format_table",
    "gpu_peak_flops",
    "mfu",
    "padding_waste",
    "run_and_write",
    "run_bench",
    "write_result",
]

"""The benchmark's arithmetic: MFU, padding waste, peak FLOP/s, and the figures of a timed or profiled run.

Pure functions and records (torch imported only where a model or profiler is handed in), unit-tested on
known numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from medenc.core import environment

# Dense fp16/bf16 tensor-core peaks (vendor datasheets, without sparsity). First match wins: the PCIe H100
# must come before the plain "H100" (SXM) entry.
GPU_PEAK_FLOPS: list[tuple[tuple[str, ...], float]] = [
    (("H100", "PCIE"), 756e12),
    (("H100",), 989.4e12),  # SXM / HBM3
    (("H200",), 989.4e12),
    (("A100",), 312e12),
]


def mfu(parameters: int, tokens: int, seconds: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: 6 * parameters * tokens / seconds / peak FLOP/s (forward 2N + backward 4N)."""
    if seconds <= 0 or peak_flops <= 0:
        raise ValueError("seconds and peak_flops must be positive")
    return 6.0 * parameters * tokens / seconds / peak_flops


def matmul_parameters(model: Any) -> int:
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
        """The run's figures as bench.json stores them under ``ours`` / ``defaults``."""
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
        """The profile's figures as bench.json stores them under ``profile_ours`` (the table apart)."""
        w = self.wall_seconds or float("nan")
        return {
            "steps": self.steps,
            "wall_seconds": round(self.wall_seconds, 4),
            "device_busy_seconds": round(self.device_busy_seconds, 4),
            "device_busy_fraction": round(self.device_busy_seconds / w, 4),
        }


def device_busy_seconds(events: Any) -> float:
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


def profile_report(prof: Any, cuda: bool, steps: int, wall: float) -> Profile:
    """Summarise a finished torch.profiler run: device busy time and the top operators."""
    averages = prof.key_averages()
    busy = device_busy_seconds(averages) if cuda else 0.0
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    try:
        table = averages.table(sort_by=sort, row_limit=25)
    except (AttributeError, KeyError, ValueError):  # older naming of the same column
        table = averages.table(sort_by="self_cuda_time_total" if cuda else "cpu_time_total", row_limit=25)
    return Profile(steps=steps, wall_seconds=wall, device_busy_seconds=busy, table=table)

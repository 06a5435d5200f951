"""What a run ran on: library versions and hardware, recorded alike by training, evaluation and bench."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "numpy",
    "scipy",
    "scikit-learn",
    "evaluate",
)


def cpu_flags() -> tuple[str, set[str], float | None]:
    """The first CPU's vendor, feature flags and clock (MHz) from /proc/cpuinfo; empty where unreadable."""
    vendor, flags, mhz = "", set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "vendor_id" and not vendor:
                vendor = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
            elif key == "cpu MHz" and mhz is None:
                mhz = float(value)
    except (OSError, ValueError):
        pass
    return vendor, flags, mhz


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, None when it is missing."""
    out: dict[str, str | None] = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model name from /proc/cpuinfo (platform.processor() is often empty)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware(device: str, num_processes: int = 1) -> dict[str, Any]:
    """Device, its name, cores, torch threads, processes and memory."""
    import torch

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        mem = None
    return {
        "device": device,
        "name": device_name(device),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "num_processes": num_processes,
        "memory_gb": round(mem, 1) if mem else None,
    }


def code_version() -> str:
    """The code that ran: the git commit (``+dirty`` with uncommitted changes) or the package version."""
    import subprocess

    from medenc.core.paths import PROJECT_ROOT

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        head = None
    if head is not None and head.returncode == 0:
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    try:
        return f"medenc {version('medenc')}"
    except PackageNotFoundError:
        return "unknown"

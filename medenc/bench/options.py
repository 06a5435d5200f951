"""The benchmark's options, defined once: :class:`BenchConfig`'s fields make the command line.

scripts/_cli.py builds it (the library parses no command line): each field becomes ``--field-name``
(underscores as dashes), with the help, choices and parser of its metadata; a bool that defaults to True
becomes ``--no-field-name``; ``overrides`` is training's repeatable ``--set KEY=VALUE``. A field with
``metadata={"cli": False}`` stays off the command line. Every field has a default, which is the option's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def phase_numbers(text: str) -> tuple[int, ...]:
    """``1,2,3`` -> ``(1, 2, 3)``, as ``--phases`` is written."""
    return tuple(int(p) for p in text.split(",") if p.strip())


@dataclass
class BenchConfig:
    """What to measure, and how (``scripts/bench.py --help`` lists the same, from these fields)."""

    model: str = field(
        default="real",
        metadata={
            "choices": ("tiny", "base", "real"),
            "help": "real: the verified base model; base: random weights, base shape; tiny: tests",
        },
    )
    phases: tuple[int, ...] = field(
        default=(1, 2, 3),
        metadata={"type": phase_numbers, "metavar": "1,2,3", "help": "comma-separated phase numbers"},
    )
    steps: int = field(default=10, metadata={"help": "timed steps per run"})
    warmup: int = field(default=3, metadata={"help": "untimed steps before them"})
    batch_size: int | None = field(default=None, metadata={"help": "default: the recipe's per phase"})
    seq_len: int | None = field(default=None, metadata={"help": "default: the recipe's per phase"})
    spread: float = field(default=0.75, metadata={"help": "lengths from seq-len*(1-spread) to seq-len"})
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    recipe: str | None = field(
        default=None, metadata={"help": "default: recipes/gpu.yaml on CUDA, else recipes/cpu.yaml"}
    )
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE, repeatable (medenc.training.recipe's, as in training)
    precision: str | None = field(
        default=None,
        metadata={
            "choices": ("fp32", "fp16", "bf16"),
            "help": "default: as training decides from the recipe",
        },
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "folder of tokenizer files (for --model tiny/base)"}
    )
    peak_flops: float | None = field(default=None, metadata={"help": "the device's peak FLOP/s for MFU"})
    # also measure plain sentence-transformers defaults; the help is that of the flag, --no-defaults
    defaults: bool = field(default=True, metadata={"help": "skip the plain sentence-transformers run"})
    # phase 2 also in a bare PyTorch loop (medenc/bench/reference.py); the help is that of --no-reference
    reference: bool = field(
        default=True, metadata={"help": "skip phase 2's reference row (the same step in a bare PyTorch loop)"}
    )
    compile_reference: str = field(
        default="auto",
        metadata={
            "choices": ("auto", "on", "off"),
            "help": "torch.compile the reference row's model; auto: on with CUDA, off on a CPU (slow)",
        },
    )
    profile_steps: int = field(
        default=0,
        metadata={
            "help": "run this many more steps of ours under torch.profiler (after the timed ones): device "
            "busy time and top operators in bench.json"
        },
    )
    # not an option (it never was): every run of the command line cuts the same rows, so runs compare
    seed: int = field(default=0, metadata={"cli": False})
    out: str = field(default="outputs/bench/bench.json", metadata={"help": "where bench.json goes"})

"""Phase 2's reference row: the trainer path's model, loss and batch in a bare PyTorch loop.

The ceiling the trainer path is read against (docs/bench.md): what the same training step costs without the
Trainer's DataLoader, collation, callbacks and scheduler. The rows are tokenized once, every batch padded to
the bench's seq_len (fixed shapes, so a compiled model compiles once), and sit on the device before the clock
starts. The loss is the one training builds (:func:`medenc.training.trainer.make_loss`: sentence-transformers'
MultipleNegativesRankingLoss, scale 20, cosine), called on the tokenized features as the Trainer calls it, so
both paths compute the same function. The update is the Trainer's (AdamW with the recipe's learning rate and
the Trainer's betas, eps, weight decay and gradient clipping) at a constant learning rate: the warm-up
schedule changes the numbers, not the cost of a step.

Imports torch at the top: :mod:`medenc.bench.run` imports this module only when a reference row is measured.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from medenc.bench.measure import Measurement
from medenc.bench.timing import peak_memory_mb
from medenc.training.tokenize import Layout, pad_features, tokenize_texts

# One dict of features per text column, as the Trainer's collator hands them to the loss.
Features = list[dict[str, Any]]

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Batches:
    """Pre-tokenized batches on the device, with what they hold (counted before the clock starts)."""

    features: list[Features]
    rows: list[int]
    tokens: list[int]  # real tokens of every column (attention mask 1)
    positions: list[int]  # padded positions of every column


def tokenize_batches(
    model: Any, rows: dict[str, list[str]], columns: Sequence[str], batch_size: int, seq_len: int, device: Any
) -> Batches:
    """Whole batches of ``rows`` in order, each column tokenized once by the model's own ``preprocess``.

    Padded to ``seq_len`` (not to the longest text of the batch, as the Trainer's collator pads): every batch
    has the same shape, so neither the allocator nor a compiled graph sees a new one.
    """
    n = len(rows[columns[0]]) // batch_size
    if n < 1:
        raise ValueError(f"the reference needs at least one batch of {batch_size} rows")
    layout = Layout.of(model)
    per_column = []
    for col in columns:
        # Training's tokenize-once code (phaseN.pretokenize): truncated as the collator does, padded by the
        # tokenizer to seq_len.
        once = tokenize_texts(model, rows[col][: n * batch_size], max_length=seq_len)
        tokens = {k: once[k] for k in layout.token_keys}
        feats = pad_features(model.tokenizer, tokens, layout, max_length=seq_len)
        per_column.append(
            {
                # one copy to the device; the batches are views of it
                k: v.to(device).split(batch_size) if isinstance(v, torch.Tensor) else [v] * n
                for k, v in feats.items()
            }
        )
    masks = [f["attention_mask"] for f in per_column]
    return Batches(
        features=[[{k: v[i] for k, v in f.items()} for f in per_column] for i in range(n)],
        rows=[batch_size] * n,
        tokens=[int(sum(m[i].sum() for m in masks)) for i in range(n)],
        positions=[sum(m[i].numel() for m in masks) for i in range(n)],
    )


def make_optimizer(
    params: list[torch.nn.Parameter], lr: float, betas: tuple[float, float], eps: float, weight_decay: float
) -> tuple[torch.optim.Optimizer, str]:
    """AdamW, fused where torch has a fused kernel for the parameters' device, else foreach; and which."""
    kwargs = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs), "fused"
    except (RuntimeError, ValueError, TypeError):  # no fused kernel for this device or dtype
        return torch.optim.AdamW(params, foreach=True, **kwargs), "foreach"


@dataclass
class Update:
    """How a step turns a loss into new weights: precision, optimizer, gradient scaler, clipping."""

    precision: str  # fp32, fp16 or bf16: autocast of forward and loss, as the Trainer's
    device_type: str
    optimizer: torch.optim.Optimizer
    scaler: Any  # torch.amp.GradScaler with fp16 (as the Trainer uses), else None
    max_grad_norm: float  # the Trainer's clipping; 0 = none

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast as the Trainer runs forward and loss (none in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=AUTOCAST_DTYPES[self.precision])


def train_step(model: Any, loss_fn: Any, features: Features, update: Update) -> torch.Tensor:
    """One training step on one batch; returns the loss (detached, still on the device: no sync here)."""
    with update.autocast():
        loss = loss_fn(features, None)  # MNRL takes no labels: the i-th positive is the i-th anchor's
    opt = update.optimizer
    if update.scaler is not None:
        update.scaler.scale(loss).backward()
        update.scaler.unscale_(opt)  # clip the true gradients, as accelerate does
    else:
        loss.backward()
    if update.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), update.max_grad_norm, foreach=True)
    if update.scaler is not None:
        update.scaler.step(opt)
        update.scaler.update()
    else:
        opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def _sync(cuda: bool) -> float:
    """The time once the device is done: kernels run asynchronously."""
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter()


def timed_steps(
    step: Callable[[Features], torch.Tensor], batches: Batches, warmup: int, cuda: bool
) -> tuple[Measurement, dict[str, float]]:
    """Run every batch; time those after ``warmup`` (end of the last warm-up step to the end of the last).

    The first warm-up step (compilation, when compiled) and the whole warm-up are timed apart.
    """
    if not 1 <= warmup < len(batches.features):
        raise ValueError("the reference needs at least one warm-up and one timed batch")
    t0 = _sync(cuda)
    losses, first = [], 0.0
    for i, features in enumerate(batches.features):
        loss = step(features)
        if i == 0:
            first = _sync(cuda) - t0
        if i == warmup - 1:
            start = _sync(cuda)
        if i >= warmup:
            losses.append(loss)
    end = _sync(cuda)
    timed = slice(warmup, len(batches.features))
    measurement = Measurement(
        steps=len(batches.features) - warmup,
        seconds=end - start,
        samples=sum(batches.rows[timed]),
        tokens=sum(batches.tokens[timed]),
        positions=sum(batches.positions[timed]),
        losses=[float(x) for x in losses],  # read after the clock stopped
    )
    return measurement, {"first_step_seconds": round(first, 4), "warmup_seconds": round(start - t0, 4)}


def _grad_scaler() -> Any:
    """fp16's loss scaler on CUDA, as accelerate's; torch before 2.3 has it in torch.cuda.amp only."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


@dataclass(frozen=True)
class ReferenceSpec:
    """What the reference row runs: the trainer path's batch, length, precision and update settings."""

    columns: tuple[str, ...]
    batch_size: int
    seq_len: int
    warmup: int
    precision: str
    cuda: bool
    compile: bool
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    max_grad_norm: float


def measure_reference(
    model: Any, loss_fn: Any, rows: dict[str, list[str]], spec: ReferenceSpec
) -> tuple[Measurement, dict[str, Any]]:
    """Train ``model`` through ``loss_fn`` on ``rows`` in a bare loop; the timed figures and how it ran.

    ``loss_fn`` must hold ``model`` (it calls it): compiling in place keeps that reference valid.
    """
    device = torch.device("cuda" if spec.cuda else "cpu")
    gc.collect()  # the earlier runs' models must not sit in the memory this one measures
    if spec.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model.to(device).train()  # dropout on, as in training
    batches = tokenize_batches(model, rows, spec.columns, spec.batch_size, spec.seq_len, device)
    optimizer, kind = make_optimizer(
        list(model.parameters()), spec.lr, spec.betas, spec.eps, spec.weight_decay
    )
    scaler = _grad_scaler() if spec.precision == "fp16" and spec.cuda else None
    update = Update(spec.precision, device.type, optimizer, scaler, spec.max_grad_norm)
    if spec.compile:
        model.compile()  # in place: the loss's own reference to the model now runs compiled
    measurement, seconds = timed_steps(
        lambda f: train_step(model, loss_fn, f, update), batches, spec.warmup, spec.cuda
    )
    measurement.peak_memory_mb = peak_memory_mb(spec.cuda)
    options = {
        "loss": type(loss_fn).__name__,
        "precision": spec.precision,
        "grad_scaler": scaler is not None,
        "optimizer": f"AdamW ({kind})",
        "learning_rate": spec.lr,
        "max_grad_norm": spec.max_grad_norm,
        "torch_compile": spec.compile,
        "padded_to": spec.seq_len,
        **seconds,
    }
    return measurement, options

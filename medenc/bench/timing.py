"""Timing a Trainer's steps: which compute_loss calls fell in the timed window, and how long it took.

Imports torch and transformers at the top (for the Trainer callback), so :mod:`medenc.bench.run` imports this
module only when a run starts: the command line's ``--help`` and the arithmetic stay light.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TrainerCallback

from medenc.bench.measure import Measurement, Profile, profile_report


@dataclass(frozen=True)
class Mark:
    """A step end the clock noted: when, how many compute_loss calls had run, and the step number."""

    seconds: float
    calls: int
    step: int


class LossRecorder:
    """Stands in for ``trainer.compute_loss``: per call, the real tokens, padded positions, rows and loss."""

    def __init__(self, compute_loss: Any) -> None:
        self.compute_loss = compute_loss
        # (real tokens as a tensor, padded positions, rows) per call; the tensor is read after training, so
        # counting adds no device-to-host sync inside the timed window
        self.records: list[tuple[Any, int, int]] = []
        self.losses: list[Any] = []

    def __call__(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        masks = [v for k, v in inputs.items() if k.endswith("attention_mask")]  # one per text column
        real = sum(m.sum() for m in masks)
        self.records.append((real, sum(m.numel() for m in masks), masks[0].shape[0] if masks else 0))
        out = self.compute_loss(model, inputs, *args, **kwargs)
        self.losses.append((out[0] if isinstance(out, tuple) else out).detach())
        return out

    def measurement(self, start: Mark, end: Mark) -> Measurement:
        """The figures of the calls between two marks (peak memory apart)."""
        measured = self.records[start.calls : end.calls]
        return Measurement(
            steps=end.step - start.step,
            seconds=end.seconds - start.seconds,
            samples=sum(r[2] for r in measured),
            tokens=int(sum(int(r[0]) for r in measured)),
            positions=sum(r[1] for r in measured),
            losses=[float(x) for x in self.losses[start.calls : end.calls]],
        )


class StepClock(TrainerCallback):
    """Marks the end of the warm-up, of the timed steps and of the profiled ones; drives the profiler.

    Marks sit at step ends, so data loading, collation, the optimizer and the scheduler all count.
    """

    def __init__(
        self, warmup: int, steps: int, profile_steps: int, cuda: bool, recorder: LossRecorder, profiler: Any
    ) -> None:
        self.start_step, self.end_step = warmup, warmup + steps
        self.profile_end = self.end_step + profile_steps
        self.cuda, self.recorder, self.profiler = cuda, recorder, profiler
        self.marks: dict[str, Mark] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step = state.global_step
        if step not in (self.start_step, self.end_step, self.profile_end):
            return
        if self.cuda:  # kernels run asynchronously: the step is over when the device is done
            torch.cuda.synchronize()
        mark = Mark(time.perf_counter(), len(self.recorder.records), step)
        if step == self.start_step:
            self.marks["start"] = mark
        if step == self.end_step:
            self.marks["end"] = mark
            if self.profiler is not None:
                self.profiler.start()
        if self.profiler is not None and step == self.profile_end:
            self.profiler.stop()
            self.marks["profiled"] = mark


def peak_memory_mb(cuda: bool) -> float:
    """Peak memory so far: allocated on the device since the last reset, else the process's peak RSS."""
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    # Linux: KiB; the process-wide peak so far (monotonic across runs)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _profiler(cuda: bool) -> Any:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=activities)


def timed_train(
    trainer: Any, warmup: int, cuda: bool, steps: int, profile_steps: int = 0
) -> tuple[Measurement, Profile | None]:
    """Train; time ``steps`` steps after ``warmup`` (step end to step end, so data loading counts).

    ``profile_steps`` more steps then run under torch.profiler, outside the timed window so its overhead
    does not touch the figures.
    """
    recorder = LossRecorder(trainer.compute_loss)
    trainer.compute_loss = recorder
    profiler = _profiler(cuda) if profile_steps else None
    clock = StepClock(warmup, steps, profile_steps, cuda, recorder, profiler)
    trainer.add_callback(clock)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    start, end = clock.marks["start"], clock.marks["end"]
    measurement = recorder.measurement(start, end)
    measurement.peak_memory_mb = peak_memory_mb(cuda)
    if profiler is None:
        return measurement, None
    wall = clock.marks["profiled"].seconds - end.seconds
    return measurement, profile_report(profiler, cuda, profile_steps, wall)

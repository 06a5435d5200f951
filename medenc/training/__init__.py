"""``make train``: fine-tune the base model phase by phase, as a recipe says.

recipe (YAML -> typed config), precision (what really runs), phases (what tells the phases apart), data (each
phase's rows), mining (phase 3's hard negatives), trainer (model, loss, sampler, Trainer), phase (one phase),
run (the run folder, resume and run.json). The entry point is :func:`run_training`.
"""

from medenc.training.run import run_training

__all__ = ["run_training"]

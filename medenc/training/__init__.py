"""``make train``: fine-tune the base model phase by phase, as a recipe says.

recipe (YAML -> typed config), precision (what really runs), phase_specs (each phase's folder name and data
set), losses (the losses by recipe name), data (each phase's rows), mining (phase 3's hard negatives), trainer
(model, loss, sampler, Trainer), phase_runner (one phase), run (the run folder, resume and its record,
run.json). The entry point is :func:`run_training`.
"""

from medenc.training.run import run_training

__all__ = ["run_training"]

"""Evaluation of the base model and every phase checkpoint on the held-out medical suite.

Public API: ``run_evaluation`` (score and write results.json / results.md / charts), ``load_results`` (read
them back as ``Results``, the one reader of results.json, refusing results from a different data manifest),
``write_charts`` and ``evaluate_run`` (what scripts/evaluate_run.py calls). See docs/results_schema.md.

Modules, in the order of the flow: ``sets`` (the test sets), ``models`` (the checkpoints), ``cache``
(embeddings on disk), ``scoring`` and ``metrics`` (figures and the bootstrap), ``dimensions`` (the figures at
truncated widths), ``results`` (the document and results.md), ``charts``, ``suite`` (``run_evaluation``, tying
them together) and ``launch``.
"""

from medenc.evaluation.charts import write_charts
from medenc.evaluation.launch import evaluate_run
from medenc.evaluation.results import Results, load_results
from medenc.evaluation.sets import SETS
from medenc.evaluation.suite import run_evaluation

__all__ = ["SETS", "Results", "evaluate_run", "load_results", "run_evaluation", "write_charts"]

"""Evaluation of the base model and every phase checkpoint on the held-out medical suite.

Public API: ``run_evaluation`` (score and write results.json / results.md / charts), ``load_results`` (read
them back, refusing results from a different data manifest) and ``write_charts``. See docs/results_schema.md.
"""

from medenc.evaluation.charts import write_charts
from medenc.evaluation.suite import SETS, load_results, run_evaluation

__all__ = ["SETS", "load_results", "run_evaluation", "write_charts"]

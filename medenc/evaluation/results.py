"""The results document (docs/results_schema.md): its file names, reading it back, and results.md."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from medenc.core import layout
from medenc.core.errors import RunError
from medenc.core.io import NOT_SIGNIFICANT, fmt, fmt_delta, sha256_file, write_json
from medenc.evaluation.sets import SetLoader, default_loader

SCHEMA_VERSION = 1
RESULTS_MD = "results.md"
RUN_RECORD = "run_record.json"
EMBEDDING_CACHE_RECORD = "embedding_cache.json"
# The evaluation's own record of the results.json it wrote (``sha256sum`` format, so `sha256sum -c` reads it):
# the release prints only figures whose file still matches it.
RESULTS_HASH = layout.RESULTS_FILE + ".sha256"


def final_phase(doc: dict) -> str | None:
    """The phase ``final/`` is a copy of, or None when the run has no ``final/``."""
    return doc.get("models", {}).get("final", {}).get("from")


def model_label(model: str, final: str | None) -> str:
    """A model's name in tables and charts, marking the phase that became ``final/``."""
    return f"{model} (final)" if model == final else model


def eval_dir(run_dir: Path, output_dir: Path | None = None) -> Path:
    """Where a run's evaluation is written: ``output_dir``, by default ``<run>/eval``."""
    return Path(output_dir) if output_dir is not None else Path(run_dir) / layout.EVAL_DIR


def load_results(
    run_dir: Path,
    check_manifest: bool = True,
    *,
    loader: SetLoader | None = None,
    output_dir: Path | None = None,
) -> dict:
    """Read ``<run>/eval/results.json``; refuse results scored on a different data manifest."""
    path = eval_dir(run_dir, output_dir) / layout.RESULTS_FILE
    if not path.is_file():
        raise RunError(f"{path}: expected evaluation results, found no such file. Run `make evaluate` first.")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: expected JSON (docs/results_schema.md), found a parse error: {exc}") from exc
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise RunError(f"{path}: expected schema_version {SCHEMA_VERSION}, found {doc.get('schema_version')}")
    if check_manifest:
        current = (loader or default_loader()).manifest_hash()
        found = doc.get("data_manifest_sha256")
        if found != current:
            raise RunError(
                f"{path}: scored on data manifest {found}, but the current data manifest is {current}. "
                "Re-run `make evaluate` on the current data."
            )
    return doc


def write_results(out_dir: Path, doc: dict) -> Path:
    """results.json (atomically), then its sha256 beside it as ``RESULTS_HASH``."""
    path = write_json(Path(out_dir) / layout.RESULTS_FILE, doc)
    record = path.with_name(RESULTS_HASH)
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(f"{sha256_file(path)}  {path.name}\n", encoding="utf-8")
    os.replace(tmp, record)
    return path


def check_results_hash(run_dir: Path, output_dir: Path | None = None) -> str:
    """The sha256 of ``results.json`` if it is the file `make evaluate` wrote, else RunError (one line)."""
    path = eval_dir(run_dir, output_dir) / layout.RESULTS_FILE
    record = path.with_name(RESULTS_HASH)
    fix = f"re-run `make evaluate RUN={Path(run_dir).name}`"
    if not record.is_file():
        raise RunError(f"{path}: no {RESULTS_HASH} beside it, so these figures are unchecked; {fix}")
    expected = record.read_text(encoding="utf-8", errors="replace").split(maxsplit=1)[:1]
    found = sha256_file(path)
    if expected != [found]:
        raise RunError(
            f"{path}: changed since `make evaluate` wrote it (sha256 {found[:12]}, {RESULTS_HASH} records "
            f"{(expected or ['nothing'])[0][:12]}); its figures cannot go out as measured; {fix}"
        )
    return found


def _close(a: float | None, b: float | None) -> bool:
    return a is None or b is None or math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def check_figures(doc: dict) -> list[str]:
    """Figures that contradict the document itself: a Δ that is not the phase's value minus the base's."""
    bad = []
    base = doc.get("results", {}).get("base", {})
    for model, per_set in doc.get("deltas", {}).items():
        for s, per_m in per_set.items():
            for m, d in per_m.items():
                value = doc["results"].get(model, {}).get(s, {}).get(m, {}).get("value")
                base_value = base.get(s, {}).get(m, {}).get("value")
                if value is None or base_value is None or not _close(d.get("diff"), value - base_value):
                    bad.append(f"{model} {s} {m}")
    return bad


# --- results.md ---------------------------------------------------------------------------------------------


def _value_cell(r: dict) -> str:
    """``0.8123 [0.7500, 0.8600]``; the figure alone without a bootstrap."""
    ci = f" [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]" if r["ci_low"] is not None else ""
    return f"{fmt(r['value'])}{ci}"


def _set_table(doc: dict, s: str, final: str | None) -> list[str]:
    """One set's section: a row per model, value and Δ vs base (marked where not significant) per metric."""
    meta = doc["sets"][s]
    lines = [f"## {meta['title']} (`{s}`, {meta['task']}, n={meta['n']})", ""]
    header = ["Model"]
    for m in meta["metrics"]:
        header += [m, f"Δ {m}"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in doc["results"]:
        row = [model_label(model, final)]
        for m in meta["metrics"]:
            row.append(_value_cell(doc["results"][model][s][m]))
            row.append("" if model == "base" else fmt_delta(doc["deltas"][model][s][m]))
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _dimensions_table(doc: dict, final: str | None) -> list[str]:
    """The final and base models at each width of ``dimensions``: a row per (set, metric, model)."""
    block = doc.get("dimensions") or {}
    if not block:
        return []
    dims = list(block)
    models = list(block[dims[0]])
    lines = [
        "## Smaller embeddings (`truncate_dim`)",
        "",
        "The first d values of each embedding, re-normalised, as `SentenceTransformer(..., truncate_dim=d)` "
        f"gives them, at d = {', '.join(dims)}; {dims[0]} is the full width (the figures above).",
        "",
        "| Set | Metric | Model | " + " | ".join(dims) + " |",
        "|" + "---|" * (3 + len(dims)),
    ]
    for s, per_m in block[dims[0]][models[0]].items():
        for m in per_m:
            for model in models:
                cells = [_value_cell(block[d][model][s][m]) for d in dims]
                row = [doc["sets"][s]["title"], m, model_label(model, final), *cells]
                lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def results_markdown(doc: dict) -> str:
    """results.md: per set, a table of base and each phase, CI in brackets, deltas vs base."""
    final = final_phase(doc)
    msl = doc["max_seq_lengths"]
    lines = [
        f"# Evaluation of run `{doc['run']}`",
        "",
        f"Data manifest `{doc['data_manifest_sha256']}`; precision {doc['precision']}; max_seq_length "
        f"{msl['short']} (short texts) / {msl['passage']} (passages); "
        f"95% percentile bootstrap, {doc['bootstrap']['resamples']} resamples (paired for Δ).",
        "",
        f"Values: figure [95% CI]. Δ: checkpoint − base [95% CI]; {NOT_SIGNIFICANT} = the CI includes zero.",
        "",
    ]
    if final:
        lines += [f"`final/` is `{final}` (sha256 `{doc['models']['final'].get('sha256')}`).", ""]
    for s in doc["sets"]:
        lines += _set_table(doc, s, final)
    lines += _dimensions_table(doc, final)
    return "\n".join(lines)

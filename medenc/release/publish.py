"""Publish a finished run's records (no weights) into ``results/<run>/`` and check the quality targets.

The targets are judged on paired bootstrap differences from the base model measured in the same run: an
improvement target needs its difference at or above the margin *and* a CI that excludes zero; a
non-regression target needs its difference at or above the (negative) tolerance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from medenc.core.environment import device_name
from medenc.core.errors import RunError
from medenc.core.eval_sets import groups, quality_targets
from medenc.core.io import fmt, fmt_delta
from medenc.core.layout import (
    EVAL_DIR,
    MANIFEST,
    RELEASE_DIR,
    RESULTS_FILE,
    RUN_RECIPE,
    RUN_RECORD,
    training_seconds,
)
from medenc.core.paths import prepared_dir, run_folder
from medenc.core.runs import RunRecord, read_run_record
from medenc.release.hub import ASSETS_DIR

if TYPE_CHECKING:
    from medenc.evaluation.results import Results, SetInfo


def _load(path: Path) -> Results:
    """A results.json read through the evaluation's one reader (imported here: it loads the whole stage)."""
    from medenc.evaluation.results import Results

    return Results.load(path)


def check_targets(results: Results, model: str = "final") -> list[dict]:
    """One row per target of the set table (``quality_targets``) for ``model`` (``final``: the model
    ``final/`` copies); RunError naming the file where a figure is missing."""
    rows = []
    for t in quality_targets():
        base = results.cell("base", t.set, t.metric).value
        value = results.cell(model, t.set, t.metric).value
        delta = results.delta(model, t.set, t.metric)
        need = t.threshold(base)
        met = value >= need - 1e-12 and (not t.improvement or delta.ci_low > 0)
        rows.append(
            {
                "set": t.set,
                "metric": t.metric,
                "target": t.describe(),
                "base": base,
                "model": value,
                "needed": need,
                "diff": delta.diff,
                "ci_low": delta.ci_low,
                "ci_high": delta.ci_high,
                "met": met,
            }
        )
    return rows


def targets_markdown(rows: list[dict], model: str) -> str:
    """The target table as Markdown."""
    lines = [
        f"| set | metric | target | base | {model} | needed | Δ [95% CI] | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['metric']} | {r['target']} | {r['base']:.4f} | {r['model']:.4f} | "
            f"{r['needed']:.4f} | {r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | "
            f"{'yes' if r['met'] else '**no**'} |"
        )
    return "\n".join(lines)


# The README's results table: each set's headline metric (the one its targets name, else its first), in two
# groups (zero-shot, then in-domain: eval_sets.groups), each opened by a row naming it, in the order of
# EVAL_SETS within each. Written from results.json, so the README cannot drift from the run.
def group_row(title: str) -> str:
    """The README table's row that opens a group of sets."""
    return f"| **{title}** | | | | |"


def headline_rows(results: Results) -> list[str]:
    """The README's results rows: per group its :func:`group_row`, then per set: set (n), metric, base,
    final, Δ [95% CI] († where the CI includes zero)."""
    rows = []
    for title, names in groups(results.sets):
        rows.append(group_row(title))
        rows += [_headline_row(results, results.sets[name]) for name in names]
    return rows


def _headline_row(results: Results, info: SetInfo) -> str:
    """One set's row of the README's results table."""
    metric = info.headline
    base, tuned = results.cell("base", info.name, metric), results.cell("final", info.name, metric)
    cells = [
        f"{info.title} (n={info.n})",
        metric,
        f"{fmt(base.value)} [{fmt(base.ci_low)}, {fmt(base.ci_high)}]",
        f"{fmt(tuned.value)} [{fmt(tuned.ci_low)}, {fmt(tuned.ci_high)}]",
        fmt_delta(results.delta("final", info.name, metric)),
    ]
    return "| " + " | ".join(cells) + " |"


# The README's serving sentence names these exports (results.json ``exports.variants``), in this order.
SERVING_VARIANTS = {
    "onnx_int8": "ONNX int8 (onnxruntime)",
    "openvino_default": "OpenVINO fp32 file at its default precision",
    "openvino_int8": "OpenVINO int8",
}


def serving_line(results: Results) -> str:
    """The README's serving sentence, written from results.json ``exports``: each export's encode speed
    against PyTorch fp32 and its largest cosine distance from it, on the machine that measured them."""
    block = results.final_exports
    if block is None:
        raise RunError(
            f"{results.path}: no export figures of the final model; run `make exports RUN={results.run}`"
        )
    variants = block.variants
    parts = [
        f"{label} {variants[name].speedup:.2f}× (largest cosine distance "
        f"{variants[name].max_cosine_distance:.1e})"
        for name, label in SERVING_VARIANTS.items()
        if name in variants
    ]
    hw = block.hardware
    return (
        f"Against PyTorch fp32 ({variants['pytorch_fp32'].texts_per_s:.1f} texts/s on "
        f"{hw.get('name') or hw.get('device')}, {hw.get('cores')} cores, batch {block.batch_size}): "
        + "; ".join(parts)
        + "."
    )


def _encoding_summary(results: Results) -> str:
    """Per model: texts encoded and seconds, or that the cache served it (then the time excludes encoding)."""
    parts = []
    for name, (texts, seconds) in results.encodings.items():
        if texts:
            parts.append(f"{name} encoded {texts} texts in {seconds:.0f} s")
        else:
            parts.append(f"{name} from the embedding cache")
    return "; ".join(parts)


def backend_line(results: Results) -> str:
    """How the evaluation encoded: the backend, why, and each measured candidate's speed and agreement."""
    backend = results.backend
    line = f"- Evaluation backend: `{backend.used}` ({backend.why})"
    if backend.measured:
        cells = [
            f"{name} {m.texts_per_s:.1f} texts/s"
            + ("" if m.agrees else f" (cosine distance {m.max_cosine_distance:.0e}: refused)")
            for name, m in backend.measured.items()
        ]
        line += "; measured " + ", ".join(cells)
    return line


def _machine() -> str:
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        threads = None
    return f"{device_name('cpu')}, {os.cpu_count()} cores, torch threads {threads}"


# A tqdm progress bar (" 45%|████ | 34/75 [00:52<01:02, 1.5s/it]") and the cursor-up code tqdm writes between
# nested bars: redraws that say nothing a log reader needs.
_PROGRESS = re.compile(r"[^\r\n|]*\d+%\|[^|]*\|[^\]\r\n]*\]|\x1b\[A")


def clean_log(text: str) -> str:
    """A console log without progress-bar redraws: every line that has more than a bar is kept."""
    out = []
    for segment in re.split(r"[\r\n]+", text):
        # A bar's blank padding (tens of spaces) can precede a message; a YAML dump's indent is short.
        rest = re.sub(r"^ {8,}", "", _PROGRESS.sub("", segment).rstrip())
        if rest.strip():
            out.append(rest)
    return "\n".join(out) + "\n"


def _require(run_dir: Path, run: str, log: Path | None) -> None:
    """Refuse to publish a run that lacks a stage's records, naming the command that makes them."""
    needs = (
        (run_dir / EVAL_DIR / RESULTS_FILE, "make evaluate"),
        (run_dir / RELEASE_DIR / "README.md", "make release"),
        (run_dir / RUN_RECORD, "make train"),
    )
    for needed, how in needs:
        if not needed.is_file():
            raise RunError(f"{needed}: missing; run `{how} RUN={run}` first")
    if log is not None and not log.is_file():
        raise RunError(f"{log}: the log to publish does not exist")


def _copy_records(run_dir: Path, dest: Path, log: Path | None) -> None:
    """The records a reader needs (no weights): results, charts, card, recipe, run.json, manifest, log."""
    eval_dir = run_dir / EVAL_DIR
    if log is not None:
        (dest / "logs").mkdir()
        (dest / "logs" / "run.log").write_text(clean_log(log.read_text(errors="replace")), encoding="utf-8")
    for src in [eval_dir / RESULTS_FILE, eval_dir / "results.md"]:
        shutil.copy2(src, dest / src.name)
    # Under assets/, where the card links them (as in the release), so the published card shows its charts.
    (dest / ASSETS_DIR).mkdir()
    for src in sorted(eval_dir.glob("*.png")):
        shutil.copy2(src, dest / ASSETS_DIR / src.name)
    shutil.copy2(run_dir / RELEASE_DIR / "README.md", dest / "model_card.md")
    shutil.copy2(run_dir / RUN_RECIPE, dest / "recipe.yaml")
    shutil.copy2(run_dir / RUN_RECORD, dest / RUN_RECORD)
    shutil.copy2(prepared_dir() / MANIFEST, dest / "manifest.json")


def _readme(run: str, command: str, results: Results, record: RunRecord, with_log: bool) -> str:
    """results/<run>/README.md: how to reproduce, what it cost, and the quality targets."""
    rows = check_targets(results)
    final_from = results.final_model
    text = [
        f"# Run `{run}`",
        "",
        "Reproduce (from the project root, on a fresh clone):",
        "",
        "```bash",
        command,
        "```",
        "",
        f"- Machine: {_machine()}",
        f"- Training: {training_seconds(record.to_dict()) / 60:.1f} min, negative mining and weight "
        f"averaging included (precision used: {record.precision['used']})",
        f"- Evaluation: {results.evaluation_seconds / 60:.1f} min; " + _encoding_summary(results),
        backend_line(results),
        f"- Released model: `{final_from}`",
        "",
        "## Quality targets (final model vs base, paired bootstrap)",
        "",
        targets_markdown(rows, final_from),
        "",
        f"{sum(r['met'] for r in rows)} of {len(rows)} targets met. An improvement target counts as met only "
        "when its paired 95% CI excludes zero.",
        "",
    ]
    if with_log:
        text += ["The command's console output, without progress bars: [`logs/run.log`](logs/run.log).", ""]
    return "\n".join(text) + "\n"


def rerender_card(dest: Path, repo_id: str) -> Path:
    """Render ``dest/model_card.md`` again from the published records alone (no run folder needed).

    The weights are not published, so the model details come from the verified base model: a release has
    its modules (same dimensions, pooling and normalisation), and the length it truncates at is the passage
    length its figures were measured at, recorded in results.json.
    """
    from medenc.core.base_model import resolve_base_model
    from medenc.release.card import render_card

    for name in (RESULTS_FILE, RUN_RECORD, MANIFEST):
        if not (dest / name).is_file():
            raise RunError(f"{dest / name}: missing; publish the run first (`make results RUN=<run>`)")
    results = _load(dest / RESULTS_FILE)
    card = render_card(
        dest, repo_id, results=results, record=read_run_record(dest).to_dict(),
        manifest=json.loads((dest / MANIFEST).read_text(encoding="utf-8")),
        charts=sorted(p.name for p in (dest / ASSETS_DIR).glob("*.png")),
        final_dir=resolve_base_model(), max_seq_length=results.max_seq_lengths.passage,
    )  # fmt: skip
    card.save(dest / "model_card.md")
    return dest / "model_card.md"


def publish(run: str, dest: Path, command: str, log: Path | None = None) -> Path:
    """Copy a run's records (results, charts, card, recipe, run.json, manifest) into ``dest``; no weights.

    ``dest`` is replaced as a whole, so nothing of an earlier run survives beside the new records. ``log``,
    the console output of the command, is kept as ``logs/run.log`` without its progress bars.
    """
    run_dir = run_folder(run)
    _require(run_dir, run, log)
    results = _load(run_dir / EVAL_DIR / RESULTS_FILE)
    record = read_run_record(run_dir)
    # Built beside the destination and renamed, so a failure leaves the published records as they were.
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _copy_records(run_dir, tmp, log)
    (tmp / "README.md").write_text(_readme(run, command, results, record, log is not None), encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def missed_targets(dest: Path) -> list[str]:
    """The quality targets the published run in ``dest`` misses, as ``set metric`` (empty: all met)."""
    return [f"{r['set']} {r['metric']}" for r in check_targets(_load(dest / RESULTS_FILE)) if not r["met"]]

"""Render the model card (README.md) of a release from the run's own records.

Front matter comes from ``huggingface_hub.ModelCardData`` (with one ``EvalResult`` per metric of the released
model), never hand-written YAML; the body is ``model_card/template.md`` rendered with Jinja2 in strict mode,
so a missing variable is an error instead of a silently empty section. Every figure in the card is read from
results.json / run.json / the data manifest, never retyped.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medenc.core.base_model import BASE_MODEL_ID, is_verified_base
from medenc.core.errors import ReleaseError
from medenc.core.io import fmt, fmt_delta
from medenc.core.layout import FINAL_DIR, MODEL_NAME, PHASE_DIRS, training_seconds
from medenc.core.paths import PROJECT_ROOT
from medenc.data.catalog import CATALOG

TEMPLATE_PATH = PROJECT_ROOT / "model_card" / "template.md"

TAGS = [
    "sentence-transformers",
    "sentence-similarity",
    "feature-extraction",
    "medical",
    "biomedical",
    "clinical",
    "mpnet",
    "semantic-search",
]

# model-index task (type, name) per task of the evaluation suite (results.json `sets.<name>.task`, spelled as
# medenc.evaluation.sets.SETS spells it): the ids sentence-transformers' own cards write for the evaluator
# that measures the same thing, so the Hub groups our figures with every other embedding model's.
TASK_TYPES: dict[str, tuple[str, str]] = {
    "sts": ("semantic-similarity", "Semantic Similarity"),
    "retrieval": ("information-retrieval", "Information Retrieval"),
    "pair_classification": ("binary-classification", "Binary Classification"),
    "triplets": ("triplet", "Triplet"),
}

# Used only where the manifest lacks a source or a field (e.g. no `make data` on this machine): the data
# stage's catalog is the one home of every source's licence, role and upstream.
SOURCES_FALLBACK: dict[str, dict[str, Any]] = {folder: asdict(info) for folder, info in CATALOG.items()}

# Keys a manifest may use for the same field (the data layer owns its schema; accept its plausible spellings).
_FIELD_ALIASES = {
    "url": ("url", "upstream_url", "upstream", "source", "repository"),
    "commit": ("commit", "upstream_commit"),
    "license": ("license",),
    "role": ("role",),
    "rows": ("rows", "row_counts", "counts"),
    "name": ("name", "title"),
    "attribution": ("attribution", "citation"),
}


def _manifest_entries(manifest: dict | None) -> dict[str, dict]:
    """The manifest's per-source records keyed by source folder, whether stored as a dict or a list."""
    if not manifest:
        return {}
    sources = manifest.get("sources", {})
    if isinstance(sources, dict):
        return {k: v for k, v in sources.items() if isinstance(v, dict)}
    out = {}
    for item in sources:
        key = item.get("folder") or item.get("id") or item.get("name")
        if key:
            out[str(key)] = item
    return out


def data_sources(manifest: dict | None) -> list[dict[str, Any]]:
    """Every data source with license, role, upstream and attribution: manifest first, fallback for gaps."""
    entries = _manifest_entries(manifest)
    keys = list(entries) if entries else list(SOURCES_FALLBACK)
    out = []
    for key in keys:
        raw, fallback = entries.get(key, {}), SOURCES_FALLBACK.get(key, {})
        src: dict[str, Any] = {"folder": key}
        for fld, aliases in _FIELD_ALIASES.items():
            value = next((raw[a] for a in aliases if raw.get(a) not in (None, "")), None)
            src[fld] = value if value is not None else fallback.get(fld)
        src["name"] = src["name"] or key
        if not src["license"]:
            raise ReleaseError(
                f"data source '{key}': no license in the manifest nor in medenc/data/catalog.py; "
                "a model card must state every source's license"
            )
        role = str(src["role"] or "")
        src["train"] = "train" in role and "test only" not in role
        out.append(src)
    return out


def final_results(results: dict) -> dict[str, dict[str, dict]]:
    """The figures of the released model: results["final"], else those of the phase it was copied from."""
    per_model = results["results"]
    if "final" in per_model:
        return per_model["final"]
    source = results["models"]["final"]["from"]
    if source not in per_model:
        raise ReleaseError(
            f"results.json: no results for the final model nor for '{source}' it was copied from"
        )
    return per_model[source]


def eval_results(results: dict) -> list:
    """One ``EvalResult`` per (set, metric) of the final model, in results.json order."""
    from huggingface_hub import EvalResult

    final = final_results(results)
    out = []
    for set_name, info in results["sets"].items():
        if info["task"] not in TASK_TYPES:  # never publish a task id the Hub does not know
            raise ReleaseError(
                f"results.json: set '{set_name}' has task {info['task']!r}; card.py knows "
                f"{', '.join(TASK_TYPES)}"
            )
        task_type, task_name = TASK_TYPES[info["task"]]
        for metric in info["metrics"]:
            cell = final.get(set_name, {}).get(metric)
            if cell is None:
                continue
            out.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=set_name,
                    dataset_name=info.get("title", set_name),
                    dataset_split="test",
                    metric_type=metric,
                    metric_name=metric,
                    metric_value=float(cell["value"]),
                )
            )
    return out


def results_table(results: dict) -> dict[str, Any]:
    """Rows for the body's results table: base and every phase with 95% CIs, deltas vs base marked by CI."""
    models = [m for m in results["models"] if m != "final" and m in results["results"]]
    rows = []
    for set_name, info in results["sets"].items():
        for metric in info["metrics"]:
            cells = []
            for model in models:
                cell = results["results"][model].get(set_name, {}).get(metric)
                if cell is None:
                    cells.append("–")
                    continue
                lo, hi = fmt(cell["ci_low"], digits=3), fmt(cell["ci_high"], digits=3)
                text = f"{fmt(cell['value'], digits=3)} [{lo}, {hi}]"
                delta = results.get("deltas", {}).get(model, {}).get(set_name, {}).get(metric)
                if delta is not None:
                    text += f"<br>Δ {fmt_delta(delta, digits=3)}"
                cells.append(text)
            rows.append(
                {"set": info.get("title", set_name), "metric": metric, "n": info.get("n"), "cells": cells}
            )
    small = [
        {"title": info.get("title", name), "n": info["n"]}
        for name, info in results["sets"].items()
        if isinstance(info.get("n"), int) and info["n"] <= 200
    ]
    return {"models": models, "rows": rows, "small_sets": small}


def _architecture(final_dir: Path) -> str | None:
    """The "Full Model Architecture" block sentence-transformers wrote into final/README.md, if any."""
    readme = final_dir / "README.md"
    if not readme.is_file():
        return None
    m = re.search(r"### Full Model Architecture\s*```\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    return m.group(1).rstrip() if m else None


def inference_length(final_dir: Path) -> int | None:
    """The length the released model truncates at (sentence-transformers keeps it in the tokenizer config)."""
    config = final_dir / "tokenizer_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("model_max_length")


def training_context(run_info: dict, final_dir: Path) -> dict[str, Any]:
    """What the card says about training, straight from run.json, and the released model's length."""
    phases = run_info.get("phases", [])
    done = [p for p in phases if p.get("status") == "done"]
    return {
        "phases": phases,
        "done_phases": done,
        "seconds": training_seconds(run_info),
        "max_seq_length": inference_length(final_dir),
    }


def card_context(
    run_dir: Path,
    repo_id: str,
    *,
    results: dict,
    run_info: dict,
    manifest: dict | None,
    charts: list[str],
    test_release: bool = False,
) -> dict[str, Any]:
    """Everything the template may use; strict rendering makes any other name an error."""
    recipe_path = run_info.get("recipe_path") or f"recipes/{run_dir.name}.yaml"
    recipe = Path(recipe_path).stem
    run = run_info.get("run", run_dir.name)
    release_cmd = f"make train evaluate release RECIPE={recipe}"
    if run != recipe:
        release_cmd += f" RUN={run}"
    release_cmd += f" HUB_REPO_ID={repo_id}"
    sources = data_sources(manifest)
    return {
        "model_name": MODEL_NAME,
        "repo_id": repo_id,
        # From the run's own record: a test release of random weights must not claim the real base.
        "base_model": run_info.get("base_model", {}).get("id") or BASE_MODEL_ID,
        "base_model_revision": run_info.get("base_model", {}).get("revision") or "",
        "test_release": test_release,
        "run": run,
        "run_info": run_info,
        "recipe": recipe,
        "recipe_path": recipe_path,
        "release_command": release_cmd,
        "results": results,
        "table": results_table(results),
        "final_from": results["models"]["final"].get("from", ""),
        "final_sha256": results["models"]["final"]["sha256"],
        "charts": [f"assets/{name}" for name in charts],
        "training": training_context(run_info, run_dir / FINAL_DIR),
        "architecture": _architecture(run_dir / FINAL_DIR),
        "sources": sources,
        "phase_dirs": PHASE_DIRS,
    }


def _render(template_path: Path, **context: Any) -> str:
    """The template rendered strictly: a typo or a missing figure is an error naming the file, not a blank."""
    import jinja2

    # ModelCard.from_template renders with a lenient jinja2.Template; the same inputs go through a
    # StrictUndefined environment here so a typo cannot blank a section.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # markdown, not HTML
    )
    try:
        return env.get_template(template_path.name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise ReleaseError(f"{template_path}: model card template not found") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ReleaseError(
            f"{template_path}, line {exc.lineno}: template syntax error: {exc.message}"
        ) from exc
    except jinja2.UndefinedError as exc:
        raise ReleaseError(f"{template_path}: template uses an undefined variable: {exc.message}") from exc


def render_card(
    run_dir: Path,
    repo_id: str,
    *,
    results: dict,
    run_info: dict,
    manifest: dict | None = None,
    charts: list[str] | None = None,
    template_path: Path | None = None,
    test_release: bool = False,
):
    """The model card as a ``huggingface_hub.ModelCard`` (front matter from ``ModelCardData``).

    ``test_release``: random weights let through for a test; the card says so on its first line and claims
    no base model.

    ``charts`` are file names that will sit in the release's assets/ folder. Raises ReleaseError naming the
    template file on any template problem (syntax error, undefined variable).
    """
    from huggingface_hub import ModelCard, ModelCardData

    template_path = Path(template_path or TEMPLATE_PATH)
    sources = data_sources(manifest)
    base = run_info.get("base_model", {})
    card_data = ModelCardData(
        model_name=f"{MODEL_NAME} (test release, random weights)" if test_release else MODEL_NAME,
        language="en",
        license="apache-2.0",
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        base_model=BASE_MODEL_ID if is_verified_base(base) else None,
        tags=list(TAGS),
        datasets=[s["url"] for s in sources if s["train"] and s.get("url")],
        eval_results=eval_results(results),
    )
    context = card_context(
        run_dir, repo_id, results=results, run_info=run_info, manifest=manifest, charts=list(charts or []),
        test_release=test_release,
    )  # fmt: skip
    text = _render(template_path, card_data=card_data.to_yaml(), **context)
    card = ModelCard(text)
    if card.data.to_dict().get("license") != "apache-2.0":
        raise ReleaseError(
            f"{template_path}: the rendered card lost its front matter (keep {{{{ card_data }}}})"
        )
    return card

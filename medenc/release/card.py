"""Render the model card (README.md) of a release from the run's own records.

Front matter comes from ``huggingface_hub.ModelCardData`` (with one ``EvalResult`` per metric of the released
model), never hand-written YAML; the body is ``model_card/template.md`` rendered with Jinja2 in strict mode,
so a missing variable is an error instead of a silently empty section. Every figure in the card is read from
results.json / run.json / the data manifest, never retyped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from medenc.core.base_model import BASE_MODEL_ID
from medenc.core.errors import ReleaseError
from medenc.core.io import fmt, fmt_delta
from medenc.core.layout import FINAL_DIR, MODEL_NAME, PHASE_DIRS, training_seconds
from medenc.core.paths import PROJECT_ROOT

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

# Hub task ids per evaluation task (results.json `sets.<name>.task`).
TASK_TYPES: dict[str, tuple[str, str]] = {
    "sts": ("sentence-similarity", "Semantic Textual Similarity"),
    "retrieval": ("retrieval", "Information Retrieval"),
    "classification": ("pair-classification", "Pair Classification"),
    "triplet": ("triplet", "Triplet Evaluation"),
}

# Used only where the manifest lacks a source or a field (e.g. no `make data` on this machine). Keyed by
# source folder under the raw data root; values mirror ../shared/data/*/SOURCE.txt and README.md.
SOURCES_FALLBACK: dict[str, dict[str, Any]] = {
    "stsbenchmark": {
        "name": "STS Benchmark",
        "license": "scores CC BY-SA 4.0; sentence texts under their source licenses (see LICENSE.txt)",
        "url": "https://github.com/zhangzhenhu/Semantic-Texual-Similarity-Toolkits",
        "commit": "c55a72f51bd15a8bd75114247c06984b432050f9",
        "role": "train (phase 1 graded pairs) + test (general-domain control)",
        "attribution": "Cer et al., 2017, SemEval-2017 Task 1: Semantic Textual Similarity",
    },
    "biosses": {
        "name": "BIOSSES",
        "license": "GPL-3.0",
        "url": "https://github.com/gizemsogancioglu/biosses",
        "commit": "381b24030e06b77f9c50ee245e86c65cd700407a",
        "role": "test only",
        "attribution": "Soğancıoğlu, Öztürk and Özgür, 2017, BIOSSES: a semantic sentence similarity "
        "estimation system for the biomedical domain",
    },
    "medquad": {
        "name": "MedQuAD",
        "license": "CC BY 4.0",
        "url": "https://github.com/abachaa/MedQuAD",
        "commit": "577bd37b96c02d1833b2c9eed2de9f96964e96cb",
        "role": "train (question-answer, term-synonym pairs) + held-out retrieval and terms tests "
        "(split by document)",
        "attribution": "Ben Abacha and Demner-Fushman, 2019, "
        "A question-entailment approach to question answering",
    },
    "pubmedqa": {
        "name": "PubMedQA (PQA-L)",
        "license": "MIT",
        "url": "https://github.com/pubmedqa/pubmedqa",
        "commit": "1cbae8e92f72f20c8d3747cbb3bf5bc53554d997",
        "role": "test only",
        "attribution": "Jin et al., 2019, PubMedQA: A dataset for biomedical research question answering",
    },
    "rqe_amia2016": {
        "name": "RQE (AMIA 2016)",
        "license": "CC BY 4.0",
        "url": "https://github.com/abachaa/RQE_Data_AMIA2016",
        "commit": "9302fb9a55a437944ba6ce21a30023463a94a136",
        "role": "train (entailed FAQ pairs, triplets) + test (pair classification)",
        "attribution": "Ben Abacha and Demner-Fushman, 2016, Recognizing question entailment for medical "
        "question answering",
    },
    "meqsum": {
        "name": "MeQSum",
        "license": "CC BY 4.0",
        "url": "https://github.com/abachaa/MeQSum",
        "commit": "51e36cf65c12602333b6fdc3ae8ecf10430529f7",
        "role": "train (question-summary pairs)",
        "attribution": "Ben Abacha and Demner-Fushman, 2019, "
        "On the summarization of consumer health questions",
    },
    "medical_abbreviations": {
        "name": "medical_abbreviations",
        "license": "MIT",
        "url": "https://github.com/imantsm/medical_abbreviations",
        "commit": "ce0e8397e88afc953a18681100e75bcc145dd4b5",
        "role": "train (abbreviation-expansion pairs) + held-out terms test (10% of abbreviations)",
        "attribution": "imantsm/medical_abbreviations (a best-effort list; may contain inaccuracies)",
    },
}

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
                f"data source '{key}': no license in the manifest nor in medenc/release/card.py SOURCES_FALLBACK; "
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
        task_type, task_name = TASK_TYPES.get(info["task"], (info["task"], info["task"]))
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
        "base_model": BASE_MODEL_ID,
        "base_model_revision": run_info.get("base_model", {}).get("revision", ""),
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


def render_card(
    run_dir: Path,
    repo_id: str,
    *,
    results: dict,
    run_info: dict,
    manifest: dict | None = None,
    charts: list[str] | None = None,
    template_path: Path | None = None,
):
    """The model card as a ``huggingface_hub.ModelCard`` (front matter from ``ModelCardData``).

    ``charts`` are file names that will sit in the release's assets/ folder. Raises ReleaseError naming the
    template file on any template problem (syntax error, undefined variable).
    """
    import jinja2
    from huggingface_hub import ModelCard, ModelCardData

    template_path = Path(template_path or TEMPLATE_PATH)
    sources = data_sources(manifest)
    card_data = ModelCardData(
        model_name=MODEL_NAME,
        language="en",
        license="apache-2.0",
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        base_model=BASE_MODEL_ID,
        tags=list(TAGS),
        datasets=[s["url"] for s in sources if s["train"] and s.get("url")],
        eval_results=eval_results(results),
    )
    context = card_context(
        run_dir, repo_id, results=results, run_info=run_info, manifest=manifest, charts=list(charts or [])
    )
    # ModelCard.from_template renders with a lenient jinja2.Template; the same inputs (card_data as YAML plus
    # keyword arguments) go through a StrictUndefined environment here so a typo cannot blank a section.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # markdown, not HTML
    )
    try:
        template = env.get_template(template_path.name)
        text = template.render(card_data=card_data.to_yaml(), **context)
    except jinja2.TemplateNotFound as exc:
        raise ReleaseError(f"{template_path}: model card template not found") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ReleaseError(
            f"{template_path}, line {exc.lineno}: template syntax error: {exc.message}"
        ) from exc
    except jinja2.UndefinedError as exc:
        raise ReleaseError(f"{template_path}: template uses an undefined variable: {exc.message}") from exc
    card = ModelCard(text)
    if card.data.to_dict().get("license") != "apache-2.0":
        raise ReleaseError(
            f"{template_path}: the rendered card lost its front matter (keep {{{{ card_data }}}})"
        )
    return card

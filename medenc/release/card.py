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
from typing import TYPE_CHECKING, Any

from medenc.core.base_model import BASE_MODEL_ID, WEIGHTS_SHA256, is_rounded_base, is_verified_base
from medenc.core.errors import ReleaseError
from medenc.core.eval_sets import EVAL_SETS, groups
from medenc.core.io import fmt, fmt_delta
from medenc.core.layout import FINAL_DIR, MODEL_NAME, PHASE_DIRS, training_seconds
from medenc.core.model_id import model_hash
from medenc.core.paths import PROJECT_ROOT
from medenc.data.catalog import CATALOG

if TYPE_CHECKING:
    from medenc.evaluation.results import Exports, Figures, Results, SetInfo

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
# medenc/core/eval_sets.py spells it): the ids sentence-transformers' own cards write for the evaluator
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
    "hub_dataset": ("hub_dataset",),
    "bibtex": ("bibtex",),
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


def trained_row_sources(record: dict) -> set[str] | None:
    """The row ``source`` names the run trained on (``run.json``), or None where its record does not say."""
    phases = [p for p in record.get("phases", []) if p.get("status") == "done" and "rows" in p]
    if not phases:
        return None
    used: set[str] = set()
    for phase in phases:
        # "mined" rows are built from the pairs of `mined_from` (a record without it mined phase 2's pairs).
        used |= {name for name, n in phase["rows"].items() if n and name != "mined"}
        used |= set(phase.get("mined_from", ()))
    return used


def data_sources(manifest: dict | None, trained: set[str] | None = None) -> list[dict[str, Any]]:
    """Every data source with license, role, upstream and attribution: manifest first, fallback for gaps.

    ``train``: the run trained on the source: its role allows it and, where ``trained`` (the run's row
    sources) is given, some of its rows were used. ``test_only``: evaluation data by role. A source that is
    neither was prepared but not used by the run's recipe, and the card says so rather than crediting it.
    """
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
        src["test_only"] = "test only" in role
        src["train"] = "train" in role and not src["test_only"]
        if trained is not None and src["train"]:
            src["train"] = bool(trained & set(CATALOG[key].row_sources if key in CATALOG else ()))
        out.append(src)
    return out


def _dataset_fields(info: SetInfo, results: Results) -> dict[str, Any]:
    """The model-index dataset of a held-out set: a Hub id where the same data is there, else our split."""
    spec = EVAL_SETS.get(info.name)
    if spec is not None and spec.hub_dataset is not None:
        hub_id, split = spec.hub_dataset
        return {"dataset_type": hub_id, "dataset_name": info.title, "dataset_split": split}
    # Our own split of a raw source, identified by the data manifest's hash as its revision.
    source = CATALOG.get(spec.source) if spec is not None else None
    return {
        "dataset_type": info.name,
        "dataset_name": info.title,
        "dataset_split": "test",
        "dataset_revision": results.data_manifest,
        "source_url": source.url if source else None,
        "source_name": source.name if source else None,
    }


def eval_results(results: Results) -> list:
    """One ``EvalResult`` per (set, metric) of the final model, in results.json order."""
    from huggingface_hub import EvalResult

    out = []
    for info in results.sets.values():
        if info.task not in TASK_TYPES:  # never publish a task id the Hub does not know
            raise ReleaseError(
                f"{results.path}: set '{info.name}' has task {info.task!r}; card.py knows "
                f"{', '.join(TASK_TYPES)}"
            )
        task_type, task_name = TASK_TYPES[info.task]
        dataset = _dataset_fields(info, results)
        for metric in info.metrics:
            cell = results.find_cell("final", info.name, metric)
            if cell is not None:
                out.append(
                    EvalResult(
                        task_type=task_type,
                        task_name=task_name,
                        metric_type=metric,
                        metric_name=metric,
                        metric_value=float(cell.value),
                        **dataset,
                    )
                )
    return out


def _table_cell(results: Results, model: str, set_name: str, metric: str) -> str:
    """A model's figure with its 95% CI and, for a phase, its Δ vs base; "–" where it has none."""
    cell = results.find_cell(model, set_name, metric)
    if cell is None:
        return "–"
    lo, hi = fmt(cell.ci_low, digits=3), fmt(cell.ci_high, digits=3)
    text = f"{fmt(cell.value, digits=3)} [{lo}, {hi}]"
    delta = results.find_delta(model, set_name, metric)
    return text if delta is None else f"{text}<br>Δ {fmt_delta(delta, digits=3)}"


def _table_rows(results: Results, info: SetInfo) -> list[dict[str, Any]]:
    """One set's rows of the results table, one per metric: every scored model's cell."""
    return [
        {"set": info.title, "metric": m, "n": info.n, "cells": [_table_cell(results, model, info.name, m)
                                                               for model in results.scored]}
        for m in info.metrics
    ]  # fmt: skip


def results_table(results: Results) -> dict[str, Any]:
    """Rows for the body's results tables, one table per group (``groups``: title and rows, zero-shot first,
    eval_sets.groups): base and every phase with 95% CIs, deltas vs base marked by CI."""
    sets = results.sets
    by_set = {name: _table_rows(results, info) for name, info in sets.items()}
    small = [{"title": info.title, "n": info.n} for info in sets.values() if info.n <= 200]
    tables = [
        {"title": title, "rows": [r for name in names for r in by_set[name]]} for title, names in groups(sets)
    ]
    return {"models": results.scored, "groups": tables, "small_sets": small}


# Below this nDCG@10 a retrieval set is named in the card's limitations: about one relevant answer in the
# top ranks for every two queries, too weak to trust unaided in a search system.
WEAK_NDCG = 0.7


def weak_sets(results: Results, threshold: float = WEAK_NDCG) -> list[dict[str, Any]]:
    """The released model's retrieval sets under ``threshold`` nDCG@10, weakest first, with the base figure.

    The card's limitations read these from the run's results, so what it says the model is bad at is measured,
    not written by hand.
    """
    weak = []
    for name, info in results.sets.items():
        cell = results.find_cell("final", name, "ndcg@10")
        if cell is None or cell.value >= threshold:
            continue
        base_cell = results.find_cell("base", name, "ndcg@10")
        weak.append(
            {
                "title": info.title,
                "value": fmt(cell.value, digits=3),
                "ci": f"[{fmt(cell.ci_low, digits=3)}, {fmt(cell.ci_high, digits=3)}]",
                "base": fmt(base_cell.value, digits=3) if base_cell else "–",
                "sort": cell.value,
            }
        )
    return sorted(weak, key=lambda w: w["sort"])


CARD_MISSES = 2  # misses quoted per set in the card


def card_misses(results: Results, k: int = CARD_MISSES) -> list[dict[str, Any]]:
    """What the released model gets wrong, quoted from the held-out sets (``results.json`` ``examples``):
    for each weak retrieval set and each triplet set, up to ``k`` items as one line of text each."""
    weak = {w["title"] for w in weak_sets(results)}
    sets = results.sets
    out = []
    for name, items in results.examples.items():
        info = sets.get(name)
        title, task = (info.title, info.task) if info else (name, None)
        if task == "retrieval" and title in weak:
            lines = [f'"{e["query"]}" finds "{e["got"]}" first, not "{e["expected"]}"' for e in items[:k]]
        elif task == "triplets":
            lines = [
                f'"{e["anchor"]}" sits closer to "{e["negative"]}" than to "{e["positive"]}"'
                for e in items[:k]
            ]
        else:
            continue
        if lines:
            out.append({"title": title, "lines": lines})
    return out


def smaller_embeddings_table(results: Results) -> dict[str, list]:
    """results.json's ``dimensions``: a row per width, a column per set (nDCG@10, else its one metric), each
    cell the released model's figure / the base model's. Empty lists when there is no such block."""
    block = results.dimensions
    if not block:
        return {"columns": [], "rows": []}
    final, sets = results.released, results.sets
    first = next(iter(block.values()))
    metric = {s: "ndcg@10" if "ndcg@10" in ms else ms[0] for s, ms in first.metrics(final).items()}
    columns = [f"{sets[s].title} {m}" for s, m in metric.items()]

    def cell(figures: Figures, s: str, m: str) -> str:
        """``final / base`` at one width."""
        return " / ".join(fmt(figures.cell(who, s, m).value, digits=3) for who in (final, "base"))

    rows = [
        {"dim": d, "cells": [cell(figures, s, m) for s, m in metric.items()]} for d, figures in block.items()
    ]
    return {"columns": columns, "rows": rows}


def _architecture(final_dir: Path) -> str | None:
    """The "Full Model Architecture" block sentence-transformers wrote into final/README.md, if any."""
    readme = final_dir / "README.md"
    if not readme.is_file():
        return None
    m = re.search(r"### Full Model Architecture\s*```\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    return m.group(1).rstrip() if m else None


# Alt text per chart (medenc.evaluation.charts writes them), so a screen reader says what each one shows.
CHART_ALT = {
    "metrics.png": "Bar charts, one per held-out set and metric: the value for the base model and after each "
    "training phase, with 95% bootstrap confidence intervals as whiskers",
    "deltas.png": "Dot plots, one per held-out set and metric: each phase's difference from the base model "
    "with its 95% paired bootstrap confidence interval; hollow dots where the interval includes zero",
    "loss_curves.png": "Line charts, one per training phase: training loss and validation loss per step",
}


def model_details(final_dir: Path, max_seq_length: int | None = None) -> dict[str, Any]:
    """Output dimensions, pooling, normalisation and similarity function, read from the saved model."""
    pooling = _read_json(final_dir / "1_Pooling" / "config.json")
    st_config = _read_json(final_dir / "config_sentence_transformers.json")
    modules = _read_json(final_dir / "modules.json") or []
    # Two spellings: sentence-transformers 5+ writes `pooling_mode: mean` and `embedding_dimension`; the base
    # model's folder has a boolean per mode and `word_embedding_dimension`.
    mode = pooling.get("pooling_mode")
    modes = [mode] if isinstance(mode, str) else [
        k.removeprefix("pooling_mode_").removesuffix("_tokens")
        for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True
    ]  # fmt: skip
    return {
        # The pooling's own width, else the transformer's (pooling keeps it): never "None" in the card.
        "dimensions": pooling.get("word_embedding_dimension")
        or pooling.get("embedding_dimension")
        or _read_json(final_dir / "config.json").get("hidden_size"),
        "pooling": ", ".join(modes) or "unknown",
        "normalized": any(str(m.get("type", "")).endswith("Normalize") for m in modules),
        "similarity": st_config.get("similarity_fn_name") or "cosine",
        "max_seq_length": max_seq_length or inference_length(final_dir),
        # Saved by medenc.core.modeling.save_model: sentence-transformers 5 and Text Embeddings Inference too.
        "all_readers": bool(modules)
        and all(str(m.get("type", "")).startswith("sentence_transformers.models.") for m in modules)
        and "max_seq_length" in _read_json(final_dir / "sentence_bert_config.json"),
    }


# The usage snippet's sentences; the card shows the similarities the released model gives them.
USAGE_SENTENCES = [
    "The patient has hypertension.",
    "The patient suffers from high blood pressure.",
    "The patient broke their left wrist.",
]


def usage_similarities(final_dir: Path, sentences: list[str] = USAGE_SENTENCES) -> str | None:
    """The similarity matrix the model gives ``sentences``, printed as ``model.similarity`` prints it, for
    the usage snippet: computed from the shipped model at render time. None for a folder with no modules
    (a test's stand-in weights), which no real release has."""
    modules = _read_json(final_dir / "modules.json")
    if not modules:
        return None
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(final_dir), device="cpu")
    emb = model.encode(sentences, convert_to_tensor=True, show_progress_bar=False)
    sim = model.similarity(emb, emb).tolist()
    rows = ["[" + ", ".join(f"{v:.4f}" for v in row) + "]" for row in sim]
    return "tensor([" + ",\n        ".join(rows) + "])"


def _released_similarities(final_dir: Path, results: Results) -> str | None:
    """``usage_similarities`` of the released model only: a card rendered again from published records reads
    its details from the base model, whose similarities are not this model's."""
    if model_hash(final_dir) != results.final_folder.model_hash:
        return None
    return usage_similarities(final_dir)


# The exports' rows in the card's "Exports" table, in this order (results.json ``exports.variants``).
EXPORT_LABELS = {
    "pytorch_fp32": "PyTorch fp32 (sentence-transformers)",
    "onnx_fp32": "ONNX fp32 (onnxruntime)",
    "onnx_int8": "ONNX int8, dynamic quantization (onnxruntime)",
    "openvino_fp32": "OpenVINO fp32",
    "openvino_default": "OpenVINO at its default precision for this CPU",
    "openvino_int8": "OpenVINO int8, static quantization (nncf, SmoothQuant)",
}
# The suite table has a column pair per int8 variant, so its headers are the labels' short forms.
EXPORT_SHORT_LABELS = {"onnx_int8": "ONNX int8", "openvino_int8": "OpenVINO int8"}


def _sci(x: float | None) -> str:
    return "–" if x is None else f"{x:.1e}"


def exports_context(
    results: Results, export_files: dict[str, str] | None, final_dir: Path, run: str
) -> dict | None:
    """The card's "Exports" section: the files shipped (``export_files``, from the exports' record) and, when
    measured on this very model, the figures (results.json ``exports``: speed and agreement per variant, the
    suite's figures of each int8 one)."""
    if export_files is None:
        return None
    from medenc.core.runtime import pad_token

    measured = results.final_exports  # figures of an earlier final model describe nothing shipped here
    rows = []
    for name, v in (measured.variants if measured else {}).items():
        rows.append(
            {
                "label": EXPORT_LABELS.get(name, name),
                "file": v.file or "model.safetensors",
                "speed": f"{v.texts_per_s:.1f}",
                "speedup": f"{1.0 if v.speedup is None else v.speedup:.2f}×",
                "cosine": _sci(v.max_cosine_distance),
                "similarity": _sci(v.max_similarity_diff),
            }
        )
    return {
        **export_files,
        "pad_token": pad_token(final_dir),
        "measured": measured,
        "rows": rows,
        "suite": _exports_suite_rows(results, measured),
        "command": f"python scripts/export.py --run {run} --measure",
    }


def _exports_suite_rows(results: Results, measured: Exports | None) -> dict | None:
    """Per set, its headline metric: PyTorch fp32, then each int8 export and its paired difference from it."""
    suite = measured.suite if measured else None
    if suite is None:
        return None
    rows = []
    for set_name, info in results.sets.items():
        metric = info.headline
        cells = []
        for variant in suite.compared:
            delta = suite.find_delta(variant, set_name, metric)
            if delta is None:
                break
            cells.append(
                {"int8": fmt(suite.cell(variant, set_name, metric).value), "delta": fmt_delta(delta)}
            )
        else:
            fp32 = fmt(suite.cell(measured.reference, set_name, metric).value)
            rows.append({"set": info.title, "metric": metric, "fp32": fp32, "variants": cells})
    return {"labels": [EXPORT_SHORT_LABELS.get(v, v) for v in suite.compared], "rows": rows}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def inference_length(final_dir: Path) -> int | None:
    """The length the released model truncates at (sentence-transformers keeps it in the tokenizer config)."""
    config = final_dir / "tokenizer_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("model_max_length")


def training_context(record: dict, final_dir: Path, max_seq_length: int | None = None) -> dict[str, Any]:
    """What the card says about training, straight from run.json, and the released model's length."""
    phases = record.get("phases", [])
    done = [p for p in phases if p.get("status") == "done"]
    return {
        "phases": phases,
        "done_phases": done,
        "seconds": training_seconds(record),
        "max_seq_length": max_seq_length or inference_length(final_dir),
    }


def card_context(
    run_dir: Path,
    repo_id: str,
    *,
    results: Results,
    record: dict,
    manifest: dict | None,
    charts: list[str],
    test_release: bool = False,
    final_dir: Path | None = None,
    max_seq_length: int | None = None,
    export_files: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the template may use; strict rendering makes any other name an error.

    ``final_dir`` (default ``run_dir/final``): the model folder the details are read from.
    ``export_files``: the shipped exports' names, from their record (None: no "Exports" section).
    """
    final_dir = final_dir or run_dir / FINAL_DIR
    recipe_path = record.get("recipe_path") or f"recipes/{run_dir.name}.yaml"
    recipe = Path(recipe_path).stem
    run = record.get("run", run_dir.name)
    release_cmd = f"make train evaluate release RECIPE={recipe}"
    if run != recipe:
        release_cmd += f" RUN={run}"
    release_cmd += f" HUB_REPO_ID={repo_id}"
    sources = data_sources(manifest, trained_row_sources(record))
    return {
        "model_name": MODEL_NAME,
        "repo_id": repo_id,
        # From the run's own record: a test release of random weights must not claim the real base.
        "base_model": record.get("base_model", {}).get("id") or BASE_MODEL_ID,
        "base_model_revision": record.get("base_model", {}).get("revision") or "",
        # The GPU run trains from the pinned weights rounded to fp16 for transport (medenc.gpu.transport).
        "base_rounded": is_rounded_base(record.get("base_model", {})),
        "base_original_sha256": WEIGHTS_SHA256,
        "test_release": test_release,
        "run": run,
        "record": record,
        "recipe": recipe,
        "recipe_path": recipe_path,
        "release_command": release_cmd,
        "results": results,
        "table": results_table(results),
        "smaller_embeddings": smaller_embeddings_table(results),
        "weak_sets": weak_sets(results),
        "misses": card_misses(results),
        "weak_threshold": WEAK_NDCG,
        "final_from": results.final_model,
        "final_sha256": results.final_folder.sha256,
        "charts": [{"path": f"assets/{name}", "alt": CHART_ALT.get(name, name)} for name in charts],
        "details": model_details(final_dir, max_seq_length),
        "training": training_context(record, final_dir, max_seq_length),
        "architecture": _architecture(final_dir),
        "sources": sources,
        "phase_dirs": PHASE_DIRS,
        "usage_sentences": USAGE_SENTENCES,
        "usage_similarities": _released_similarities(final_dir, results),
        "exports": exports_context(results, export_files, final_dir, run),
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
    results: Results,
    record: dict,
    manifest: dict | None = None,
    charts: list[str] | None = None,
    template_path: Path | None = None,
    test_release: bool = False,
    final_dir: Path | None = None,
    max_seq_length: int | None = None,
    export_files: dict[str, str] | None = None,
):
    """The model card as a ``huggingface_hub.ModelCard`` (front matter from ``ModelCardData``).

    ``test_release``: random weights let through for a test; the card says so on its first line and claims
    no base model.

    ``charts`` are file names that will sit in the release's assets/ folder. Raises ReleaseError naming the
    template file on any template problem (syntax error, undefined variable).
    """
    from huggingface_hub import ModelCard, ModelCardData

    template_path = Path(template_path or TEMPLATE_PATH)
    context = card_context(
        run_dir, repo_id, results=results, record=record, manifest=manifest, charts=list(charts or []),
        test_release=test_release, final_dir=final_dir, max_seq_length=max_seq_length,
        export_files=export_files,
    )  # fmt: skip
    sources = context["sources"]  # one reading of which sources the run trained on, for metadata and text
    base = record.get("base_model", {})
    card_data = ModelCardData(
        model_name=f"{MODEL_NAME} (test release, random weights)" if test_release else MODEL_NAME,
        language="en",
        license="apache-2.0",
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        base_model=BASE_MODEL_ID if is_verified_base(base) else None,
        tags=list(TAGS),
        # Hub ids where the Hub holds the same data (the Hub links them), the upstream repository otherwise.
        datasets=[
            s["hub_dataset"] or s["url"] for s in sources if s["train"] and (s["hub_dataset"] or s["url"])
        ],
        eval_results=eval_results(results),
    )
    text = _render(template_path, card_data=card_data.to_yaml(), **context)
    card = ModelCard(text)
    if card.data.to_dict().get("license") != "apache-2.0":
        raise ReleaseError(
            f"{template_path}: the rendered card lost its front matter (keep {{{{ card_data }}}})"
        )
    return card

"""The results document (docs/results_schema.md): its file names, ``Results`` (the one way to read it), and
results.md.

``Results`` wraps the parsed results.json: ``Results.load`` / ``load_results`` check its shape once, naming
the file and the key at fault, and every stage reads figures through its methods, never through string keys.
``Results.final`` is the one place that says which model is the final one. ``write_results`` writes the
document; the type leaves the JSON as it is (``Results.doc`` is the document as parsed).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medenc.core import layout
from medenc.core.errors import RunError
from medenc.core.eval_sets import headline_metric
from medenc.core.io import NOT_SIGNIFICANT, fmt, fmt_delta, sha256_file, write_json
from medenc.evaluation.sets import SetLoader, default_loader

SCHEMA_VERSION = 1
RESULTS_MD = "results.md"
RUN_RECORD = "run_record.json"
EMBEDDING_CACHE_RECORD = "embedding_cache.json"
# The evaluation's own record of the results.json it wrote (``sha256sum`` format, so `sha256sum -c` reads it):
# the release prints only figures whose file still matches it.
RESULTS_HASH = layout.RESULTS_FILE + ".sha256"


# --- the document, typed ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One figure (a model on a set and metric): the point estimate, its 95% CI (None without a bootstrap)
    and how many items it was measured on."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class Delta:
    """A paired difference from the reference model (a phase − base; an int8 export − PyTorch fp32) with its
    95% CI; ``significant``: the CI excludes zero (None without a bootstrap)."""

    diff: float
    ci_low: float | None = None
    ci_high: float | None = None
    significant: bool | None = None


@dataclass(frozen=True)
class Figures:
    """Figures per model (or export variant) -> set -> metric, and the paired differences from the
    reference: ``results`` and ``deltas`` of docs/results_schema.md, a width of ``dimensions``, or
    ``exports.suite``."""

    cells: dict[str, dict[str, dict[str, dict[str, Any]]]]
    diffs: dict[str, dict[str, dict[str, dict[str, Any]]]]
    where: str  # "<file>: <block>", named by every error

    @property
    def models(self) -> list[str]:
        """The models scored, in the document's order (the reference first)."""
        return list(self.cells)

    @property
    def compared(self) -> list[str]:
        """The models with paired differences from the reference, in order."""
        return list(self.diffs)

    def metrics(self, model: str) -> dict[str, list[str]]:
        """Set -> the metrics ``model`` has figures for, in order."""
        return {s: list(per_m) for s, per_m in self.cells.get(model, {}).items()}

    def find_cell(self, model: str, set_name: str, metric: str) -> Cell | None:
        """``model``'s figure on ``set_name`` ``metric``, or None where it has none."""
        raw = self.cells.get(model, {}).get(set_name, {}).get(metric)
        return None if raw is None else Cell(**{k: raw.get(k) for k in ("value", "ci_low", "ci_high", "n")})

    def find_delta(self, model: str, set_name: str, metric: str) -> Delta | None:
        """``model``'s paired difference from the reference on ``set_name`` ``metric``, or None."""
        raw = self.diffs.get(model, {}).get(set_name, {}).get(metric)
        keys = ("diff", "ci_low", "ci_high", "significant")
        return None if raw is None else Delta(**{k: raw.get(k) for k in keys})

    def cell(self, model: str, set_name: str, metric: str) -> Cell:
        """``find_cell``, where a missing figure is an error naming the file and the key."""
        found = self.find_cell(model, set_name, metric)
        if found is None:
            raise RunError(
                f"{self.where}: no {metric} on {set_name} for {model} ({model}.{set_name}.{metric})"
            )
        return found

    def delta(self, model: str, set_name: str, metric: str) -> Delta:
        """``find_delta``, where a missing difference is an error naming the file and the key."""
        found = self.find_delta(model, set_name, metric)
        if found is None:
            raise RunError(
                f"{self.where}: no paired difference of {metric} on {set_name} for {model} "
                f"(deltas.{model}.{set_name}.{metric})"
            )
        return found

    def all_deltas(self) -> Iterator[tuple[str, str, str, Delta]]:
        """Every (model, set, metric, difference), in order."""
        for model, per_set in self.diffs.items():
            for set_name, per_m in per_set.items():
                for metric in per_m:
                    yield model, set_name, metric, self.delta(model, set_name, metric)


@dataclass(frozen=True)
class SetInfo:
    """One held-out set as scored: task, size, metrics (in order) and title."""

    name: str
    task: str
    n: int
    metrics: tuple[str, ...]
    title: str

    @property
    def headline(self) -> str:
        """The metric the set is summed up by (``medenc.core.eval_sets.headline_metric``)."""
        return headline_metric(self.name, list(self.metrics))


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``models``: a scored model's weights and id, or (``final``) the folder copying one."""

    name: str
    sha256: str | None = None
    model_hash: str | None = None
    path: str | None = None  # relative to the run folder; the base model has none
    id: str | None = None  # the base model's Hub id
    copied_from: str | None = None  # final: ``from``, the scored model final/ is a copy of


@dataclass(frozen=True)
class SeqLengths:
    """``max_seq_lengths``: the token caps of short texts and of passages."""

    short: int
    passage: int


@dataclass(frozen=True)
class BackendTry:
    """One candidate the backend measurement timed: speed and agreement with ``torch-fp32``."""

    texts_per_s: float
    max_cosine_distance: float
    agrees: bool


@dataclass(frozen=True)
class Backend:
    """``backend``: what encoded (``used``), why, and each measured candidate (empty for a named backend)."""

    used: str
    why: str
    measured: dict[str, BackendTry] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportVariant:
    """One export's figures in ``exports.variants``: its file (None: the safetensors), speed, agreement."""

    file: str | None
    texts_per_s: float
    speedup: float | None = None
    max_cosine_distance: float | None = None
    max_similarity_diff: float | None = None


@dataclass(frozen=True)
class Exports:
    """``exports``: the exports of one model measured on one machine, and (``suite``) the int8 ones scored
    against ``reference`` (PyTorch fp32) on the whole suite."""

    model_hash: str
    hardware: dict[str, Any]  # medenc.core.environment.hardware's record
    sample: int
    batch_size: int
    max_seq_length: int
    variants: dict[str, ExportVariant]
    suite: Figures | None = None
    reference: str | None = None


def released_model(final: str | None, scored: Sequence[str]) -> str:
    """The model whose figures the release quotes: ``final`` (the one ``final/`` copies) where it was scored,
    else (a run without ``final/``) the last model scored."""
    return final if final is not None and final in scored[1:] else scored[-1]


@dataclass(frozen=True)
class Results:
    """results.json, parsed and checked (``Results.load``, ``load_results``); read it only through these.

    ``doc`` is the document exactly as parsed (what ``write_results`` writes back); ``path`` is the file it
    came from or goes to, named in every error. ``"final"`` passed as a model name means the final model.
    """

    doc: dict[str, Any]
    path: Path

    @classmethod
    def load(cls, path: Path) -> Results:
        """A results.json file, checked (``from_doc``); RunError naming the file when absent or not JSON."""
        path = Path(path)
        if not path.is_file():
            raise RunError(
                f"{path}: expected evaluation results, found no such file. Run `make evaluate` first."
            )
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(
                f"{path}: expected JSON (docs/results_schema.md), found a parse error: {exc}"
            ) from exc
        return cls.from_doc(doc, path)

    @classmethod
    def from_doc(cls, doc: Any, path: Path) -> Results:
        """``doc`` checked against docs/results_schema.md: RunError naming ``path`` and the key at fault."""
        _check_document(doc, Path(path))
        results = cls(doc, Path(path))
        _ = (results.backend, results.exports)  # parsed once here, so a malformed block fails on load
        return results

    # -- identity ---------------------------------------------------------------------------------------
    @property
    def run(self) -> str:
        """The run folder's name."""
        return self.doc["run"]

    @property
    def data_manifest(self) -> str | None:
        """The sha256 of the data manifest the test sets came from."""
        return self.doc.get("data_manifest_sha256")

    @property
    def models(self) -> dict[str, ModelInfo]:
        """Every entry of ``models``, ``final`` (the final/ folder's record) included, in order."""
        return {name: _model_info(name, raw) for name, raw in self.doc["models"].items()}

    @property
    def final(self) -> str | None:
        """The model ``final/`` is a copy of (``models.final.from``: a phase folder or any other scored model,
        e.g. a weight average), or None for a run without ``final/``. The one place that decides it."""
        folder = self.models.get("final")
        return folder.copied_from if folder else None

    @property
    def final_model(self) -> str:
        """``final``, required: RunError naming the file for a run without ``final/`` (nothing to release)."""
        return self.final_folder.copied_from

    @property
    def final_folder(self) -> ModelInfo:
        """``models.final``, the record of ``final/`` itself (its weights' sha256 and ``model_hash``);
        RunError naming the file for a run without ``final/``."""
        folder = self.models.get("final")
        if folder is None:
            raise RunError(f"{self.path}: no models.final: this run has no final/ model; {self._fix}")
        return folder

    @property
    def released(self) -> str:
        """The model whose figures go out: ``final`` (where scored), else the last model scored."""
        return released_model(self.final, self.scored)

    @property
    def scored(self) -> list[str]:
        """The scored models (``results``), in order: ``base`` first."""
        return self.figures.models

    def name(self, model: str) -> str:
        """``model`` as ``results`` names it: ``final`` is the model ``final/`` copies."""
        return self.final_model if model == "final" else model

    # -- figures ----------------------------------------------------------------------------------------
    @property
    def sets(self) -> dict[str, SetInfo]:
        """The sets scored, in table order."""
        return {
            name: SetInfo(name, raw["task"], raw["n"], tuple(raw["metrics"]), raw["title"])
            for name, raw in self.doc["sets"].items()
        }

    @property
    def figures(self) -> Figures:
        """``results`` and ``deltas`` (each model against ``base``)."""
        return Figures(self.doc["results"], self.doc.get("deltas") or {}, f"{self.path}: results")

    def cell(self, model: str, set_name: str, metric: str) -> Cell:
        """A model's figure (``final``: the final model's), RunError naming the file where it has none."""
        return self.figures.cell(self.name(model), set_name, metric)

    def find_cell(self, model: str, set_name: str, metric: str) -> Cell | None:
        """A model's figure (``final``: the final model's), or None where it has none."""
        return self.figures.find_cell(self.name(model), set_name, metric)

    def delta(self, model: str, set_name: str, metric: str) -> Delta:
        """A model's paired difference from ``base``, RunError naming the file where it has none."""
        return self.figures.delta(self.name(model), set_name, metric)

    def find_delta(self, model: str, set_name: str, metric: str) -> Delta | None:
        """A model's paired difference from ``base``, or None where it has none."""
        return self.figures.find_delta(self.name(model), set_name, metric)

    def headline(self, set_name: str) -> str:
        """The metric ``set_name`` is summed up by."""
        return self.sets[set_name].headline

    @property
    def dimensions(self) -> dict[str, Figures]:
        """``dimensions``: width (full first) -> the base and released models' figures; {} when absent."""
        block = self.doc.get("dimensions") or {}
        return {d: Figures(per_model, {}, f"{self.path}: dimensions.{d}") for d, per_model in block.items()}

    @property
    def charts(self) -> list[str]:
        """The chart files written beside results.json (none before they are drawn)."""
        return list(self.doc.get("charts") or [])

    @property
    def examples(self) -> dict[str, list[dict[str, str]]]:
        """``examples.sets``: per set, the items the released model gets wrong (texts keyed as written)."""
        return (self.doc.get("examples") or {}).get("sets", {})

    # -- how it was measured ----------------------------------------------------------------------------
    @property
    def max_seq_lengths(self) -> SeqLengths:
        """The token caps the figures were measured at."""
        return SeqLengths(self._need("max_seq_lengths", "short"), self._need("max_seq_lengths", "passage"))

    @property
    def precision(self) -> str:
        """What the vectors were computed in (``fp32``, ``bf16``, ``openvino (bf16)``)."""
        return self._need("precision")

    @property
    def bootstrap_resamples(self) -> int:
        """How many bootstrap resamples the CIs come from (0: none)."""
        return self._need("bootstrap", "resamples")

    @property
    def backend(self) -> Backend:
        """``backend``; a document from before backends existed: ``torch-<precision>``, fixed."""
        raw = self.doc.get("backend")
        if not raw:
            return Backend(f"torch-{self.doc.get('precision', 'fp32')}", "fixed")
        try:
            measured = {k: BackendTry(m["texts_per_s"], m["max_cosine_distance"], m["agrees"])
                        for k, m in (raw.get("measured") or {}).items()}  # fmt: skip
            return Backend(raw["used"], raw["why"], measured)
        except (KeyError, TypeError, AttributeError) as exc:
            raise RunError(f"{self.path}: backend: malformed ({exc!r}); {self._fix}") from exc

    @property
    def evaluation_seconds(self) -> float:
        """What the evaluation took (``timing.total_s``; 0 where not recorded)."""
        return (self.doc.get("timing") or {}).get("total_s", 0)

    @property
    def encodings(self) -> dict[str, tuple[int, float | None]]:
        """Per model: (texts encoded, seconds); 0 texts where the embedding cache served it."""
        timing = (self.doc.get("timing") or {}).get("models", {})
        return {name: (t.get("encoded_texts") or 0, t.get("encode_s")) for name, t in timing.items()}

    # -- exports ----------------------------------------------------------------------------------------
    @property
    def exports(self) -> Exports | None:
        """``exports`` (``make exports``), or None when the exports were not measured."""
        raw = self.doc.get("exports")
        if not raw:
            return None
        try:
            return _exports(raw, f"{self.path}: exports.suite")
        except (KeyError, TypeError, AttributeError) as exc:
            raise RunError(
                f"{self.path}: exports: malformed ({exc!r}); measure again: make exports RUN={self.run}"
            ) from exc

    @property
    def final_exports(self) -> Exports | None:
        """``exports`` where they were measured on the final model (figures of an earlier one describe
        nothing that ships), else None."""
        block, final = self.exports, self.models.get("final")
        return block if block and final and block.model_hash == final.model_hash else None

    # -- helpers ----------------------------------------------------------------------------------------
    @property
    def _fix(self) -> str:
        return f"re-run `make evaluate RUN={self.run}`"

    def _need(self, *keys: str) -> Any:
        """The value at ``keys``, RunError naming the file and the key where it is absent."""
        node: Any = self.doc
        for i, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                where = ".".join(keys[: i + 1])
                raise RunError(
                    f"{self.path}: expected {where} (docs/results_schema.md), found none; {self._fix}"
                )
            node = node[key]
        return node


def _model_info(name: str, raw: dict[str, Any]) -> ModelInfo:
    fields = ("sha256", "model_hash", "path", "id")
    return ModelInfo(name, **{k: raw.get(k) for k in fields}, copied_from=raw.get("from"))


def _exports(raw: dict[str, Any], where: str) -> Exports:
    """The ``exports`` block as ``Exports`` (KeyError/TypeError where it is malformed)."""
    variants = {
        name: ExportVariant(v.get("file"), v["texts_per_s"], v.get("speedup"), v.get("max_cosine_distance"),
                            v.get("max_similarity_diff"))
        for name, v in raw["variants"].items()
    }  # fmt: skip
    suite = raw.get("suite")
    figures = Figures(suite["results"], suite["deltas"], where) if suite else None
    return Exports(
        raw["model_hash"], raw["hardware"], raw["sample"], raw["batch_size"], raw["max_seq_length"],
        variants, figures, suite["reference"] if suite else None,
    )  # fmt: skip


# What ``_check_document`` requires of every results.json: (key, type, what the error calls it).
_REQUIRED = (("run", str, "the run's name"), ("models", dict, "an object"), ("sets", dict, "an object"),
             ("results", dict, "an object"))  # fmt: skip


def _bad(path: Path, where: str, expected: str, found: Any) -> RunError:
    """The error for a document that does not have docs/results_schema.md's shape."""
    shown = "nothing" if found is _MISSING else repr(found)[:60]
    return RunError(
        f"{path}: {where}: expected {expected}, found {shown} (docs/results_schema.md); "
        "re-run `make evaluate` to write it afresh"
    )


_MISSING = object()


def _check_document(doc: Any, path: Path) -> None:
    """RunError naming ``path`` and the key where ``doc`` lacks what every reader relies on."""
    if not isinstance(doc, dict):
        raise _bad(path, "the document", "a JSON object", type(doc).__name__)
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise RunError(f"{path}: expected schema_version {SCHEMA_VERSION}, found {doc.get('schema_version')}")
    for key, kind, what in _REQUIRED:
        if not isinstance(doc.get(key, _MISSING), kind):
            raise _bad(path, key, what, doc.get(key, _MISSING))
    for name, info in doc["sets"].items():
        for key, kind in (("task", str), ("n", int), ("metrics", list), ("title", str)):
            if not isinstance(info, dict) or not isinstance(info.get(key, _MISSING), kind):
                found = info.get(key, _MISSING) if isinstance(info, dict) else info
                raise _bad(path, f"sets.{name}.{key}", f"a {kind.__name__}", found)
    models = doc["models"]
    if any(not isinstance(v, dict) for v in models.values()):
        raise _bad(path, "models", "an object per model", models)
    final = models.get("final", {}).get("from", _MISSING) if "final" in models else None
    if final is not None and (final == "final" or final not in models):
        raise _bad(path, "models.final.from", f"one of the models ({', '.join(models)})", final)
    _check_figures(path, "results", doc["results"], "value")
    _check_figures(path, "deltas", doc.get("deltas") or {}, "diff")
    for width, block in (doc.get("dimensions") or {}).items():
        _check_figures(path, f"dimensions.{width}", block, "value")


def _check_figures(path: Path, where: str, tree: Any, key: str) -> None:
    """``tree``: model -> set -> metric -> an object with a number under ``key``."""
    if not isinstance(tree, dict):
        raise _bad(path, where, "an object per model", tree)
    for model, per_set in tree.items():
        for set_name, per_m in per_set.items() if isinstance(per_set, dict) else [(None, per_set)]:
            for metric, cell in per_m.items() if isinstance(per_m, dict) else [(None, per_m)]:
                value = cell.get(key, _MISSING) if isinstance(cell, dict) else _MISSING
                if not isinstance(value, int | float) or isinstance(value, bool):
                    at = ".".join(str(k) for k in (where, model, set_name, metric) if k is not None)
                    raise _bad(path, f"{at}.{key}", "a number", value)


def model_label(model: str, final: str | None) -> str:
    """A model's name in tables and charts, marking the model ``final/`` copies."""
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
) -> Results:
    """``<run>/eval/results.json`` as ``Results``; refuse results scored on a different data manifest."""
    results = Results.load(eval_dir(run_dir, output_dir) / layout.RESULTS_FILE)
    if check_manifest:
        current = (loader or default_loader()).manifest_hash()
        if results.data_manifest != current:
            raise RunError(
                f"{results.path}: scored on data manifest {results.data_manifest}, but the current data "
                f"manifest is {current}. Re-run `make evaluate` on the current data."
            )
    return results


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


def check_figures(results: Results) -> list[str]:
    """Figures that contradict the document itself: a Δ that is not the model's value minus the base's."""
    bad = []
    for model, s, m, d in results.figures.all_deltas():
        value, base = results.figures.find_cell(model, s, m), results.figures.find_cell("base", s, m)
        if value is None or base is None or not _close(d.diff, value.value - base.value):
            bad.append(f"{model} {s} {m}")
    return bad


# --- results.md ---------------------------------------------------------------------------------------------


def _value_cell(cell: Cell) -> str:
    """``0.8123 [0.7500, 0.8600]``; the figure alone without a bootstrap."""
    ci = f" [{fmt(cell.ci_low)}, {fmt(cell.ci_high)}]" if cell.ci_low is not None else ""
    return f"{fmt(cell.value)}{ci}"


def _set_table(results: Results, info: SetInfo) -> list[str]:
    """One set's section: a row per model, value and Δ vs base (marked where not significant) per metric."""
    lines = [f"## {info.title} (`{info.name}`, {info.task}, n={info.n})", ""]
    header = ["Model"]
    for m in info.metrics:
        header += [m, f"Δ {m}"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    figures = results.figures
    for model in figures.models:
        row = [model_label(model, results.final)]
        for m in info.metrics:
            row.append(_value_cell(figures.cell(model, info.name, m)))
            row.append("" if model == "base" else fmt_delta(figures.delta(model, info.name, m)))
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _dimensions_table(results: Results) -> list[str]:
    """The final and base models at each width of ``dimensions``: a row per (set, metric, model)."""
    block = results.dimensions
    if not block:
        return []
    dims = list(block)
    models = block[dims[0]].models
    lines = [
        "## Smaller embeddings (`truncate_dim`)",
        "",
        "The first d values of each embedding, re-normalised, as `SentenceTransformer(..., truncate_dim=d)` "
        f"gives them, at d = {', '.join(dims)}; {dims[0]} is the full width (the figures above).",
        "",
        "| Set | Metric | Model | " + " | ".join(dims) + " |",
        "|" + "---|" * (3 + len(dims)),
    ]
    sets = results.sets
    for s, metrics in block[dims[0]].metrics(models[0]).items():
        for m in metrics:
            for model in models:
                cells = [_value_cell(block[d].cell(model, s, m)) for d in dims]
                row = [sets[s].title, m, model_label(model, results.final), *cells]
                lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def results_markdown(results: Results) -> str:
    """results.md: per set, a table of base and each phase, CI in brackets, deltas vs base."""
    final = results.final
    msl = results.max_seq_lengths
    lines = [
        f"# Evaluation of run `{results.run}`",
        "",
        f"Data manifest `{results.data_manifest}`; precision {results.precision}; max_seq_length "
        f"{msl.short} (short texts) / {msl.passage} (passages); "
        f"95% percentile bootstrap, {results.bootstrap_resamples} resamples (paired for Δ).",
        "",
        f"Values: figure [95% CI]. Δ: checkpoint − base [95% CI]; {NOT_SIGNIFICANT} = the CI includes zero.",
        "",
    ]
    if final:
        lines += [f"`final/` is `{final}` (sha256 `{results.models['final'].sha256}`).", ""]
    for info in results.sets.values():
        lines += _set_table(results, info)
    lines += _dimensions_table(results)
    return "\n".join(lines)

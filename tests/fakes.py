"""What the tests build, shared by the modules that need it: plain builders, not tests.

- fake run folders in the shapes the stages write (records, results, a staged release of the tiny model);
- the tiny recipe's data and an in-process training run of it;
- excerpts of the real raw files (records copied into ``tmp_path``: no data file is committed) and a
  ``make data`` build over them, for the data tests.

Test modules import from here and from ``hub_server.py``, never from each other.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from medenc.core.base_model import BASE_MODEL_ID, WEIGHTS_SHA256
from medenc.core.errors import DataError
from medenc.core.layout import (
    EVAL_DIR,
    FINAL_DIR,
    LOGS_DIR,
    PAIRS,
    PHASE_DIRS,
    RUN_RECIPE,
    RUN_RECORD,
    TRAIN_SPLITS,
    WEIGHTS_FILE,
)
from medenc.core.model_id import model_hash
from medenc.core.modeling import save_model
from medenc.core.paths import PROJECT_ROOT, data_dir
from medenc.core.runs import RUN_SCHEMA_VERSION
from medenc.data.checksums import write_checksums
from medenc.data.sources import k_qa, laymaker, medec, mts_dialog, simplewiki_medical
from medenc.evaluation.results import Results, write_results
from medenc.evaluation.sets import SETS as EVAL_SETS
from medenc.training.phase_specs import PHASES

REPO_ID = "org/mpnet-medical"
TOKEN = "hf_FAKEtoken_d0_not_leak_4815162342"
# A 1x1 PNG: the card only links charts, their content does not matter.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
# The suite's own sets, tasks and metrics, so a fake cannot spell a task differently from the evaluation.
SETS = {
    name: {"task": s.task, "n": 100 + 10 * i, "metrics": list(s.metrics), "title": s.title}
    for i, (name, s) in enumerate(EVAL_SETS.items())
}
MODELS = ["base", *PHASE_DIRS.values()]
# A stand-in TensorBoard event file per phase, as training writes them: logs/phase-N/<this name>.
EVENTS_FILE = "events.out.tfevents.1764169200.host.1.0"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_manifest() -> dict:
    """A data manifest as the data layer writes it (licenses, roles, upstreams, rows per source)."""
    from medenc.release.card import SOURCES_FALLBACK

    return {
        "schema_version": 1,
        "sources": {
            name: {
                "license": info["license"],
                "role": info["role"],
                "url": info["url"],
                "commit": info["commit"],
                "rows": {"train": 10},
            }
            for name, info in SOURCES_FALLBACK.items()
        },
    }


def make_results(final_sha: str, manifest_sha: str = "0" * 64, final_hash: str = "f" * 64) -> dict:
    """A results.json in the evaluation package's shape; phase 3 (the final) beats base except on BIOSSES.

    ``final_sha``: the final weights' sha256; ``final_hash``: its ``model_hash`` (every phase is that model).
    """
    results: dict = {}
    deltas: dict = {}
    for i, model in enumerate(MODELS):
        results[model] = {}
        for j, (name, info) in enumerate(SETS.items()):
            results[model][name] = {}
            for k, metric in enumerate(info["metrics"]):
                value = 0.5 + 0.05 * i + 0.01 * j + 0.001 * k + 1e-7 * (i + j + k)
                results[model][name][metric] = {
                    "value": value,
                    "ci_low": value - 0.03,
                    "ci_high": value + 0.03,
                }
    for model in MODELS[1:]:
        deltas[model] = {}
        for name, info in SETS.items():
            deltas[model][name] = {}
            for metric in info["metrics"]:
                diff = results[model][name][metric]["value"] - results["base"][name][metric]["value"]
                # BIOSSES is too small to carry any claim: its CI straddles zero.
                lo, hi = (diff - 0.2, diff + 0.2) if name == "biosses" else (diff - 0.01, diff + 0.01)
                deltas[model][name][metric] = {
                    "diff": diff,
                    "ci_low": lo,
                    "ci_high": hi,
                    "significant": lo > 0,
                }
    base = {"sha256": WEIGHTS_SHA256, "model_hash": "b" * 64, "phase": 0, "id": BASE_MODEL_ID}
    models: dict = {"base": base}
    for phase, name in PHASE_DIRS.items():
        models[name] = {"path": name, "sha256": final_sha, "model_hash": final_hash, "phase": phase}
    models["final"] = {"from": PHASE_DIRS[3], "sha256": final_sha, "model_hash": final_hash, "path": "final"}
    return {
        "schema_version": 1,
        "run": "tiny",
        "data_manifest_sha256": manifest_sha,
        "models": models,
        "sets": SETS,
        "results": results,
        "deltas": deltas,
        "max_seq_lengths": {"short": 128, "passage": 256},
        "environment": {"device": "cpu"},
        "timing": {"total_seconds": 12.0},
    }


RANDOM_BASE = {
    "id": "random-weight MPNet, tiny shape (tests and timing; not a model)",
    "revision": None,
    "path": None,
    "sha256": None,
}


def make_run_record(final_sha: str, random_weights: bool = False) -> dict:
    """A run.json per docs/run_folder.md; ``random_weights``: trained from the tiny random model."""
    phases = []
    for phase, name in PHASE_DIRS.items():
        phases.append(
            {
                "phase": phase,
                "name": PHASES[phase].name,
                "dir": name,
                "status": "done",
                "loss": ["CosineSimilarityLoss", "MultipleNegativesRankingLoss", "TripletLoss"][phase - 1],
                "rows": {"stsb": 100} if phase == 1 else {"medquad_qa": 60, "meqsum": 40},
                "train_rows": 100,
                "validation_rows": 10,
                "epochs": 1,
                "steps": 7,
                "batch_size": 16,
                "learning_rate": 2e-5,
                "warmup_ratio": 0.1,
                "max_seq_length": 128,
                "seconds": 12.5 * phase,
                "samples_per_second": 8.1,
                "final_train_loss": 0.03,
                "final_eval_loss": 0.02,
                "model_sha256": final_sha,
            }
        )
    return {
        "schema_version": RUN_SCHEMA_VERSION,
        "run": "tiny",
        "recipe_path": "recipes/tiny.yaml",
        "recipe_sha256": "c" * 64,
        "base_model": RANDOM_BASE
        if random_weights
        else {
            "id": "sentence-transformers/all-mpnet-base-v2",
            "revision": "e8c3b32edf5434bc2275fc9bab85f82640a19130",
            "path": "/cache/base",
            "sha256": WEIGHTS_SHA256,
        },
        "data_manifest_sha256": "0" * 64,
        "precision": {"requested": "fp16", "used": "fp32", "reason": "fp16 needs CUDA; this is a CPU"},
        "hardware": {
            "device": "cpu",
            "name": "Test CPU 9000",
            "cores": 2,
            "num_processes": 1,
            "memory_gb": 24,
        },
        "versions": {"torch": "2.13.0", "sentence_transformers": "6.2.0"},
        "phases": phases,
        "final": {"from": PHASE_DIRS[3], "model_sha256": final_sha},
        "total_seconds": 75.0,
        "started": "2026-11-26T15:00:00Z",
        "finished": "2026-11-26T15:01:15Z",
    }


def make_run(root: Path, model=None, run: str = "tiny") -> Path:
    """outputs/<run>/ with phases, final/, logs/, recipe.yaml, run.json, eval/results.json and two charts.

    With ``model`` (a SentenceTransformer) the folders are real models; without, final/ holds stand-in weights
    (enough for everything but loading the model).
    """
    run_dir = root / "outputs" / run
    final = run_dir / FINAL_DIR
    if model is not None:
        save_model(model, final)  # as training saves a phase
    else:
        final.mkdir(parents=True)
        write_stand_in_weights(final)
        (final / "modules.json").write_text("[]")
        (final / "tokenizer_config.json").write_text('{"model_max_length": 256}')
        (final / "pytorch_model.bin").write_bytes(b"pickle: must not be released")
    for n, name in PHASE_DIRS.items():
        shutil.copytree(final, run_dir / name)
        (run_dir / LOGS_DIR / f"phase-{n}").mkdir(parents=True)
        (run_dir / LOGS_DIR / f"phase-{n}" / EVENTS_FILE).write_bytes(b"stand-in events of phase %d" % n)
    final_sha = sha256_bytes((final / "model.safetensors").read_bytes())
    final_hash = model_hash(final)
    manifest = make_manifest()
    prepared = root / "prepared"
    prepared.mkdir(exist_ok=True)
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    write_checksums(prepared)
    manifest_sha = sha256_bytes((prepared / "manifest.json").read_bytes())
    (run_dir / RUN_RECIPE).write_text("name: tiny\nphases: [1, 2, 3]\n")
    # A real model here is the tiny random one: its record says so, as training writes it.
    info = make_run_record(final_sha, random_weights=model is not None)
    (run_dir / RUN_RECORD).write_text(json.dumps(info, indent=1))
    (run_dir / EVAL_DIR).mkdir()
    write_results(run_dir / EVAL_DIR, make_results(final_sha, manifest_sha, final_hash))
    for chart in ("deltas.png", "phases.png"):
        (run_dir / EVAL_DIR / chart).write_bytes(PNG)
    return run_dir


def write_stand_in_weights(folder: Path, width: int = 768) -> None:
    """Weights that are not a model but have the base model's shape where the release reads it: the width of
    the word embeddings (safetensors header), config.json's hidden_size and the pooling's dimension."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"embeddings.word_embeddings.weight": np.zeros((2, width), np.float32)}, folder / WEIGHTS_FILE)
    (folder / "config.json").write_text(json.dumps({"model_type": "mpnet", "hidden_size": width}))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": width, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))


def stage(run_dir: Path, **kwargs) -> Path:
    """``stage_release`` of a fake run to ``REPO_ID``, its results read as written and the fake manifest."""
    from medenc.release.hub import stage_release

    kwargs = {"results_loader": json_loader, "manifest": make_manifest(), **kwargs}
    return stage_release(run_dir, REPO_ID, **kwargs)


def stage_tiny_release(root: Path, model) -> Path:
    """The tiny model's test release with its ONNX and OpenVINO exports, staged as ``make release`` does;
    the int8 OpenVINO IR is calibrated on the prepared validation pairs, here the tiny ones."""
    from medenc.data.checksums import write_checksums
    from medenc.export import ensure_exports

    run_dir = make_run(root, model=model)
    tiny_sets("validation")[PAIRS].save_to_disk(str(root / "prepared" / "validation" / PAIRS))
    write_checksums(root / "prepared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREPARED_DIR", str(root / "prepared"))
        ensure_exports(run_dir)  # as `make exports` builds them; the release verifies and ships them
        return stage(run_dir, test_release=True, exports=True)


def rewrite_results(run_dir: Path, results: dict) -> None:
    """Replace a run's results.json as `make evaluate` writes it (with its sha256 record)."""
    write_results(run_dir / EVAL_DIR, results)


def json_loader(run_dir: Path) -> Results:
    """Reads results.json without the data manifest check, so these tests need no prepared data."""
    return Results.load(run_dir / EVAL_DIR / "results.json")


# --- Prepared training sets for the tiny recipe: a few rows per set, every text distinct -------------------
TOPICS = [
    "asthma",
    "diabetes",
    "glaucoma",
    "anemia",
    "migraine",
    "psoriasis",
    "gout",
    "lupus",
    "measles",
    "rickets",
]


def tiny_sets(split: str) -> dict:
    """Graded pairs, pairs and triplets with the sources the tiny recipe names (train: 10 topics, else 4)."""
    from datasets import Dataset

    from medenc.core.layout import GRADED_PAIRS, PAIRS, TRIPLETS

    n = 10 if split == "train" else 4
    t = TOPICS[:n]
    graded = {
        "sentence1": [f"A man talks about {x}." for x in t],
        "sentence2": [f"Someone discusses {x} today." for x in t],
        "score": [i / n for i in range(n)],
        "source": ["stsb"] * n,
    }
    pairs = {
        "anchor": [f"What is {x}?" for x in t] + [f"How is {x} treated?" for x in t],
        "positive": [f"{x} is a disease of the body." for x in t]
        + [f"{x} is treated with medicine." for x in t],
        "source": ["medquad_qa"] * n + ["meqsum"] * n,
    }
    triplets = {
        "anchor": [f"Can {x} be cured?" for x in t],
        "positive": [f"Is there a cure for {x}?" for x in t],
        "negative": [f"Where can I buy shoes in {x} town?" for x in t],
        "source": ["rqe"] * n,
    }
    return {
        GRADED_PAIRS: Dataset.from_dict(graded),
        PAIRS: Dataset.from_dict(pairs),
        TRIPLETS: Dataset.from_dict(triplets),
    }


TINY_RECIPE = PROJECT_ROOT / "recipes" / "tiny.yaml"


@functools.cache
def _tiny_data(split: str) -> dict:
    return tiny_sets(split)


def tiny_loader(split: str, name: str):
    """The ``loader`` training takes: ``tiny_sets``, built once per session (a Dataset is not changed)."""
    return _tiny_data(split)[name]


def train_tiny(output_dir: Path, run: str = "t", overrides=(), **kwargs):
    """Train the tiny recipe (with ``overrides``) in-process on ``tiny_sets``; returns its ``RunRecord``."""
    from medenc.training import run_training
    from medenc.training.recipe import load_recipe

    recipe = load_recipe(TINY_RECIPE, list(overrides))
    return run_training(
        recipe, run, recipe_path=TINY_RECIPE, output_dir=output_dir, loader=tiny_loader, data_hash="d" * 64,
        **kwargs,
    )  # fmt: skip


def write_prepared(root: Path) -> Path:
    """``tiny_sets`` saved as ``make data`` lays them out, for commands run in a subprocess."""
    for split in ("train", "validation"):
        for name, ds in tiny_sets(split).items():
            ds.save_to_disk(str(root / split / name))
    (root / "manifest.json").write_text('{"test": true}\n')
    write_checksums(root)  # as `make data` ends, so that training's check of the files passes
    return root


# --- Excerpts of the real raw files ---------------------------------------------------------------------
def raw_data() -> Path | None:
    """The raw data root (``data_dir()``), or None on a machine without it."""
    try:
        return data_dir()
    except DataError:
        return None


RAW = raw_data()


def needs_raw(sources, what: str) -> pytest.MarkDecorator:
    """A module's skip mark where the raw folders of ``sources`` are not on this machine."""
    missing = RAW is None or not all((RAW / s.folder).is_dir() for s in sources)
    return pytest.mark.skipif(missing, reason=f"{what} not available")


def copy_source(source, root: Path) -> Path:
    """The source's raw folder copied under ``root``, writable (the raw copies are read-only)."""
    folder = root / source.folder
    shutil.copytree(RAW / source.folder, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def head(src: Path, dst: Path, lines: int) -> None:
    """The first ``lines`` lines of ``src`` into ``dst``, bytes as they are."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(b"".join(src.read_bytes().splitlines(keepends=True)[:lines]))


def csv_head(src: Path, dst: Path, rows: int, header: tuple[str, ...]) -> None:
    """The header and first ``rows`` rows of a CSV whose fields hold line breaks, bytes as they are."""
    starts = [n for n, _ in medec.read_csv(src, header)]
    head(src, dst, starts[rows] - 1)


def csv_excerpt(src: Path, dst: Path, keep) -> None:
    """The header and the records of ``src`` whose ID ``keep`` accepts, their lines copied as is."""
    text = src.read_bytes().decode("utf-8")
    lines = text.splitlines(keepends=True)
    _, records = laymaker.read_csv(src, ("ID",))
    starts = [n for n, _ in records] + [len(lines) + 1]
    out = [lines[0]]
    for (n, fields), end in zip(records, starts[1:], strict=True):
        if keep(fields[0]):
            out += lines[n - 1 : end - 1]
    body = "".join(out)
    if not text.endswith("\n"):  # as upstream: no final newline
        body = body.rstrip("\r\n")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(body, encoding="utf-8", newline="")


# LayMaker test and dev units (the test's hold whole units); MTS-Dialog training IDs: 0, a plain pair; 11, one
# back-translation came back unchanged; 12 and 19, both "None." (19 is dropped).
LAY_IDS = {laymaker.TEST: ("1", "4", "8", "223", "676"), laymaker.DEV: ("1", "2", "3")}
MTS_TRAIN_IDS = ("0", "11", "12", "19")


def lay_excerpt(folder: Path) -> Path:
    for rel, ids in LAY_IDS.items():
        csv_excerpt(RAW / "laymaker" / rel, folder / rel, lambda i, ids=ids: i in ids)
    return folder


def mts_excerpt(folder: Path) -> Path:
    for split, rel in mts_dialog.SPLITS.items():
        if split in ("train", "augmented"):
            keep = lambda i: i.split()[-1] in MTS_TRAIN_IDS  # noqa: E731 (the back-translations too)
        else:
            keep = lambda i: i in ("0", "1")  # noqa: E731
        csv_excerpt(RAW / "mts_dialog" / rel, folder / rel, keep)
    return folder


def wiki_excerpt(folder: Path) -> Path:
    """The first lines of each file (the expert file's include identical sides), gzip-compressed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in simplewiki_medical.FIELDS:
        with gzip.open(RAW / "simplewiki_medical" / name, "rt", encoding="utf-8", newline="") as fh:
            lines = fh.readlines()
        same = [ln for ln in lines[5:] if ln.split("\t")[0] == ln.rstrip("\n").split("\t")[1]]
        picked = lines[:5] + same[:2]
        (folder / name).write_bytes(gzip.compress("".join(picked).encode("utf-8")))
    return folder


def kqa_excerpt(folder: Path) -> Path:
    raw = RAW / "k_qa"
    for rel in (k_qa.QA, k_qa.QUESTIONS):
        head(raw / rel, folder / rel, 30)
    csv_head(raw / k_qa.NLI, folder / k_qa.NLI, 40, k_qa.NLI_HEADER)
    shutil.copy(raw / "LICENSE", folder / "LICENSE")
    return folder


def mediqa_excerpt(folder: Path) -> Path:
    """The MEDIQA files are small (600 kB in all): copied whole."""
    shutil.copytree(RAW / "mediqa2021", folder, ignore=shutil.ignore_patterns("*.md", "SOURCE.txt"))
    return folder


def medec_excerpt(folder: Path) -> Path:
    """Six validation texts; the first six test rows and two of the empty withheld rows at its end."""
    raw = RAW / "medec"
    csv_head(raw / medec.VALIDATION, folder / medec.VALIDATION, 6, medec.HEADER)
    csv_head(raw / medec.TEST, folder / medec.TEST, 6, medec.HEADER)
    with (folder / medec.TEST).open("ab") as fh:
        fh.write(b",,,,,,,,\r\n" * 2)
    return folder


# --- A build over excerpts ------------------------------------------------------------------------------
def pin_excerpts(root: Path, sources) -> tuple:
    """``sources`` pinned as their excerpts under ``root`` are, each with its real folder's SOURCE.txt."""
    from medenc.data import pins

    for source in sources:
        (root / source.folder / "SOURCE.txt").write_bytes((RAW / source.folder / "SOURCE.txt").read_bytes())
    return pins.repin(root, sources)


def build_from_excerpts(tmp_path: Path, sources) -> tuple[Path, dict, tuple]:
    """``make data`` with a registry of ``sources`` alone, over their excerpts in ``tmp_path/raw``: the
    prepared folder, its manifest and the registry."""
    from medenc.data import prepare

    root = tmp_path / "raw"
    registry = pin_excerpts(root, sources)
    path, manifest = prepare.prepare(tmp_path / "prepared", registry=registry, root=root)
    return path, manifest, registry


def rows_by_source(manifest: dict, formats: tuple[str, ...] = (PAIRS,)) -> Counter:
    """Training rows per row source over the training splits, as the manifest counts them."""
    rows: Counter = Counter()
    for split in TRAIN_SPLITS:
        for fmt in formats:
            rows.update(manifest["sets"][split][fmt].get("by_source", {}))
    return rows

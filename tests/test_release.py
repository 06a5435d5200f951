"""make release: staging, refusals, and the round trip through a fake Hub to SentenceTransformer(repo_id)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hub_server import FakeHub

from medenc.errors import ReleaseError
from medenc.layout import EVAL_DIR, FINAL_DIR, PHASE_DIRS, RELEASE_DIR, RUN_INFO, RUN_RECIPE
from medenc.paths import PROJECT_ROOT
from medenc.release import release, stage_release

REPO_ID = "org/mpnet-medical"
TOKEN = "hf_FAKEtoken_d0_not_leak_4815162342"
# A 1x1 PNG: the card only links charts, their content does not matter.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
SETS = {
    "biosses": {"task": "sts", "n": 100, "metrics": ["spearman"], "title": "BIOSSES"},
    "stsb": {"task": "sts", "n": 1379, "metrics": ["spearman"], "title": "STS Benchmark"},
    "medquad": {
        "task": "retrieval",
        "n": 500,
        "metrics": ["recall@5", "ndcg@10", "mrr@10"],
        "title": "MedQuAD",
    },
    "pubmedqa": {
        "task": "retrieval",
        "n": 500,
        "metrics": ["recall@5", "ndcg@10", "mrr@10"],
        "title": "PubMedQA",
    },
    "rqe": {"task": "classification", "n": 302, "metrics": ["ap"], "title": "RQE"},
    "triplets": {"task": "triplet", "n": 400, "metrics": ["accuracy"], "title": "Medical triplets"},
}
MODELS = ["base", *PHASE_DIRS.values()]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_manifest() -> dict:
    """A data manifest as the data layer writes it (licenses, roles, upstreams, rows per source)."""
    from medenc.card import SOURCES_FALLBACK

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


def make_results(final_sha: str, manifest_sha: str = "0" * 64) -> dict:
    """A results.json in the evaluation package's shape; phase 3 (the final) beats base except on BIOSSES."""
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
    models: dict = {"base": {"path": "base", "sha256": "b" * 64}}
    for phase, name in PHASE_DIRS.items():
        models[name] = {"path": name, "sha256": final_sha, "phase": phase}
    models["final"] = {"from": PHASE_DIRS[3], "sha256": final_sha}
    return {
        "schema_version": 1,
        "run": "tiny",
        "data_manifest_sha256": manifest_sha,
        "models": models,
        "sets": SETS,
        "results": results,
        "deltas": deltas,
        "environment": {"device": "cpu"},
        "timing": {"total_seconds": 12.0},
    }


def make_run_info(final_sha: str) -> dict:
    """A run.json per docs/run_folder.md."""
    phases = []
    for phase, name in PHASE_DIRS.items():
        phases.append(
            {
                "phase": phase,
                "name": name.split("-", 2)[2],
                "dir": name,
                "status": "done",
                "loss": ["CosineSimilarityLoss", "MultipleNegativesRankingLoss", "TripletLoss"][phase - 1],
                "rows": {"stsb": 100} if phase == 1 else {"medquad": 60, "meqsum": 40},
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
        "schema_version": 1,
        "run": "tiny",
        "recipe_path": "recipes/tiny.yaml",
        "recipe_sha256": "c" * 64,
        "base_model": {
            "id": "sentence-transformers/all-mpnet-base-v2",
            "revision": "e8c3b32edf5434bc2275fc9bab85f82640a19130",
            "path": "/cache/base",
            "sha256": "78c0",
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
    """outputs/<run>/ with phases, final/, recipe.yaml, run.json, eval/results.json and two charts.

    With ``model`` (a SentenceTransformer) the folders are real models; without, final/ holds stand-in weights
    (enough for everything but loading the model).
    """
    run_dir = root / "outputs" / run
    final = run_dir / FINAL_DIR
    if model is not None:
        model.save(str(final))
    else:
        final.mkdir(parents=True)
        (final / "model.safetensors").write_bytes(b"stand-in weights " * 64)
        (final / "modules.json").write_text("[]")
        (final / "tokenizer_config.json").write_text('{"model_max_length": 256}')
        (final / "pytorch_model.bin").write_bytes(b"pickle: must not be released")
    for name in PHASE_DIRS.values():
        shutil.copytree(final, run_dir / name)
    final_sha = sha256_bytes((final / "model.safetensors").read_bytes())
    manifest = make_manifest()
    prepared = root / "prepared"
    prepared.mkdir(exist_ok=True)
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    manifest_sha = sha256_bytes((prepared / "manifest.json").read_bytes())
    (run_dir / RUN_RECIPE).write_text("name: tiny\nphases: [1, 2, 3]\n")
    (run_dir / RUN_INFO).write_text(json.dumps(make_run_info(final_sha), indent=1))
    (run_dir / EVAL_DIR).mkdir()
    (run_dir / EVAL_DIR / "results.json").write_text(json.dumps(make_results(final_sha, manifest_sha)))
    for chart in ("deltas.png", "phases.png"):
        (run_dir / EVAL_DIR / chart).write_bytes(PNG)
    return run_dir


def json_loader(run_dir: Path) -> dict:
    """Reads results.json directly, so these tests do not depend on the evaluation package."""
    return json.loads((run_dir / EVAL_DIR / "results.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_HOME=str(tmp_path / "hf_home"),  # empty: no logged-in token, no cache
        OUTPUTS_DIR=str(tmp_path / "outputs"),
        PREPARED_DIR=str(tmp_path / "prepared"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def online(monkeypatch):
    """In-process pushes talk to a local server; huggingface_hub read HF_HUB_OFFLINE at import time."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


EXPECTED_FILES = {"README.md", "model.safetensors", "results.json", RUN_RECIPE, RUN_INFO}


def test_stage_is_complete_and_safetensors_only(tmp_path):
    run_dir = make_run(tmp_path)
    staged = stage_release(run_dir, REPO_ID, results_loader=json_loader, manifest=make_manifest())
    assert staged == run_dir / RELEASE_DIR
    names = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert EXPECTED_FILES | {"modules.json", "assets/deltas.png", "assets/phases.png"} <= names
    assert "pytorch_model.bin" not in names
    # Restaging replaces the folder wholesale and leaves no temporary sibling behind.
    (staged / "stale.txt").write_text("old")
    stage_release(run_dir, REPO_ID, results_loader=json_loader, manifest=make_manifest())
    assert not (staged / "stale.txt").exists()
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []


def test_refuses_run_without_results(tmp_path):
    run_dir = make_run(tmp_path)
    shutil.rmtree(run_dir / EVAL_DIR)
    with pytest.raises(ReleaseError, match=r"no evaluation results.*make evaluate"):
        stage_release(run_dir, REPO_ID, results_loader=json_loader)
    assert not (run_dir / RELEASE_DIR).exists()


def test_refuses_results_of_another_model(tmp_path):
    run_dir = make_run(tmp_path)
    (run_dir / FINAL_DIR / "model.safetensors").write_bytes(b"retrained weights")
    with pytest.raises(ReleaseError, match="results belong to another model: re-run make evaluate"):
        stage_release(run_dir, REPO_ID, results_loader=json_loader)
    assert not (run_dir / RELEASE_DIR).exists()


@pytest.mark.parametrize(
    "repo_id", ["bad repo", "org/", "org/name/extra", "org/na--me", "-org/x", "mpnet-medical"]
)
def test_refuses_bad_repo_id(tmp_path, repo_id):
    run_dir = make_run(tmp_path)
    with pytest.raises(ReleaseError, match="bad Hub repo id"):
        stage_release(run_dir, repo_id, results_loader=json_loader)


@pytest.mark.parametrize(
    ("template", "problem"),
    [("# {{ model_name }\n", "syntax error"), ("# {{ no_such_variable }}\n", "undefined variable")],
)
def test_template_error_names_the_file(tmp_path, template, problem):
    run_dir = make_run(tmp_path)
    path = tmp_path / "broken.md"
    path.write_text(template)
    with pytest.raises(ReleaseError, match=problem) as err:
        stage_release(run_dir, REPO_ID, results_loader=json_loader, template_path=path)
    assert str(path) in str(err.value)
    assert not (run_dir / RELEASE_DIR).exists()


def test_unreachable_endpoint_says_how_to_retry(tmp_path, capfd, online):
    run_dir = make_run(tmp_path)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cmd = "make release RUN=tiny HUB_REPO_ID=org/mpnet-medical"
    with pytest.raises(ReleaseError) as err:
        release(
            run_dir,
            REPO_ID,
            endpoint=endpoint,
            token=TOKEN,
            results_loader=json_loader,
            manifest=make_manifest(),
            command=cmd,
        )
    msg = str(err.value)
    assert (
        "ConnectError" in msg
        and endpoint in msg
        and "retry with exactly the same command" in msg
        and cmd in msg
    )
    assert err.value.__cause__ is not None  # wrapped, not swallowed
    assert TOKEN not in msg and TOKEN not in "".join(capfd.readouterr())
    assert (run_dir / RELEASE_DIR / "README.md").is_file()  # the staged folder stays for the retry


def test_dry_run_sends_nothing(tmp_path):
    run_dir = make_run(tmp_path)
    with FakeHub(token=TOKEN) as hub:
        out = release(
            run_dir,
            REPO_ID,
            dry_run=True,
            endpoint=hub.url,
            token=TOKEN,
            results_loader=json_loader,
            manifest=make_manifest(),
            say=lambda s: None,
        )
        assert not out.pushed and hub.requests == []


def test_script_without_token_stages_and_explains(tmp_path):
    """The real CLI, no token anywhere: exit 0, folder complete, a clear hint, nothing sent."""
    run_dir = make_run(tmp_path)
    with FakeHub(token=TOKEN) as hub:
        env = script_env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
        proc = subprocess.run(
            [sys.executable, "scripts/release.py", "--run", "tiny", "--repo-id", REPO_ID],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert "HF_TOKEN" in proc.stdout and "hf auth login" in proc.stdout
        assert "scripts/release.py --run tiny --repo-id org/mpnet-medical" in proc.stdout
        assert hub.writes() == [] and hub.repos == {}
    names = {p.relative_to(run_dir / RELEASE_DIR).as_posix() for p in (run_dir / RELEASE_DIR).rglob("*")}
    assert EXPECTED_FILES | {"assets/deltas.png"} <= names


def test_script_rejects_bad_repo_id(tmp_path):
    make_run(tmp_path)
    proc = subprocess.run(
        [sys.executable, "scripts/release.py", "--run", "tiny", "--repo-id", "not a repo", "--dry-run"],
        cwd=PROJECT_ROOT,
        env=script_env(tmp_path, HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "bad Hub repo id" in proc.stderr


@pytest.fixture(scope="module")
def tiny_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from medenc.modeling import build_random_model

    return build_random_model("tiny")


DOWNLOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from huggingface_hub import ModelCard
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer("org/mpnet-medical")
    np.save(sys.argv[1], model.encode(json.loads(sys.argv[2]), convert_to_numpy=True))
    card = ModelCard.load("org/mpnet-medical")
    rows = [
        {"dataset": r.dataset_type, "metric": r.metric_type, "value": r.metric_value}
        for r in card.data.eval_results
    ]
    print(json.dumps({"eval_results": rows, "license": card.data.license}))
    """
)


def test_round_trip_through_fake_hub(tmp_path, tiny_model, capfd, caplog, online):
    """Push with a token, then a fresh process with an empty cache loads `SentenceTransformer(repo_id)`."""
    run_dir = make_run(tmp_path, model=tiny_model)
    caplog.set_level(logging.DEBUG)
    with FakeHub(token=TOKEN) as hub:
        out = release(
            run_dir,
            REPO_ID,
            tag="v0.1.0",
            endpoint=hub.url,
            token=TOKEN,
            results_loader=json_loader,
            manifest=make_manifest(),
        )
        assert out.pushed and hub.unexpected == []
        # One commit carries the whole folder, tagged.
        commits = [p for m, p in hub.requests if p.endswith("/commit/main")]
        assert len(commits) == 1
        repo = hub.repos[REPO_ID]
        assert repo.tags["v0.1.0"] == repo.refs["main"] == out.commit
        staged = run_dir / RELEASE_DIR
        local = {p.relative_to(staged).as_posix(): p.read_bytes() for p in staged.rglob("*") if p.is_file()}
        assert hub.files(REPO_ID) == local

        # The token never shows: not in output, logs, or any released file.
        captured = "".join(capfd.readouterr()) + caplog.text
        assert TOKEN not in captured
        assert all(TOKEN.encode() not in content for content in local.values())

        sentences = ["hypertension", "high blood pressure", "broken wrist"]
        emb_path = tmp_path / "emb.npy"
        env = script_env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "fresh"))
        proc = subprocess.run(
            [sys.executable, "-c", DOWNLOAD, str(emb_path), json.dumps(sentences)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert hub.unexpected == []

    expected = tiny_model.encode(sentences, convert_to_numpy=True)
    assert np.allclose(np.load(emb_path), expected, atol=1e-5)

    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["license"] == "apache-2.0"
    results = json_loader(run_dir)
    final = results["results"][results["models"]["final"]["from"]]
    want = {(s, m): final[s][m]["value"] for s, info_ in SETS.items() for m in info_["metrics"]}
    got = {(r["dataset"], r["metric"]): r["value"] for r in info["eval_results"]}
    assert got == want

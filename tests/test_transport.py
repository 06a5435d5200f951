"""The GPU transport (medenc.gpu.transport): the base rounded to fp16, cut into pieces, carried one call at a
time into a scratch "device" folder, checked, reassembled, loaded and trained from; and the pinned hash of the
real rounded base (FP16_ROUNDED_SHA256), which the run records and the release accepts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes import stage, train_tiny, write_prepared

import medenc.core.base_model as base_model
from medenc.core.errors import ModelError
from medenc.core.io import sha256_file
from medenc.core.layout import WEIGHTS_FILE
from medenc.gpu import transport


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_rounding_is_fp16_exact_deterministic_and_loadable(tmp_path):
    import torch
    from safetensors.torch import save_file

    src = tmp_path / "w.safetensors"
    save_file({"b.weight": torch.randn(7, 5), "a.ids": torch.arange(6)}, str(src), metadata={"format": "pt"})
    one, two, back = tmp_path / "one", tmp_path / "two", tmp_path / "back.safetensors"
    assert transport.round_to_fp16(src, one) == ["b.weight"]
    transport.round_to_fp16(src, two)
    assert one.read_bytes() == two.read_bytes()
    transport.expand_fp16(one, back)
    orig, got = _tensors(src), _tensors(back)
    assert got["b.weight"].dtype == torch.float32 and got["a.ids"].dtype == torch.int64
    assert torch.equal(got["b.weight"], orig["b.weight"].half().float())
    assert torch.equal(got["a.ids"], orig["a.ids"])


def test_plan_fills_each_call_and_leaves_room_for_the_data():
    budget = transport.Budget(per_call=59.0, first_extra=5.5, last_extra=8.8)
    total = 219 * 1_000_000
    sizes = transport.plan_pieces(total, budget)
    assert sum(sizes) == total and len(sizes) == 4
    caps = [59.0 - 5.5, 59.0, 59.0, 59.0 - 8.8]
    assert all(s <= c * transport.MIB for s, c in zip(sizes, caps, strict=True))
    assert transport.plan_pieces(10, budget) == [10]


def _carry(here: Path, device: Path, call: dict) -> None:
    """What one device call brings: its carried ignored paths (the wheels are not part of this test)."""
    for rel in call["carry"]:
        if rel.startswith(transport.TRANSPORT_DIR):
            (device / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(here / rel, device / rel)


def _pack_tiny(tmp_path: Path, tiny_model) -> tuple[Path, dict]:
    base = tmp_path / "tiny-base"
    tiny_model.save(str(base))
    prepared = write_prepared(tmp_path / "prepared")
    size = (base / WEIGHTS_FILE).stat().st_size / 2 / transport.MIB  # fp16: half
    out = tmp_path / "here" / transport.TRANSPORT_DIR
    manifest = transport.pack(base, prepared, out, budget=None, piece_mib=[size / 3, size / 3], wheels=[],
                              tree_mib=0.0)  # fmt: skip
    return base, manifest


def test_pieces_travel_one_call_at_a_time_and_a_missing_or_altered_piece_is_named(tmp_path, tiny_model):
    _, manifest = _pack_tiny(tmp_path, tiny_model)
    here, device = tmp_path / "here", tmp_path / "device"
    dev = device / transport.TRANSPORT_DIR
    calls = manifest["calls"]
    assert len(calls) == 3 and [p["name"] for p in manifest["pieces"]] == [
        transport.piece_name(n) for n in (1, 2, 3)
    ]
    assert calls[-1]["carry"][-1].endswith(transport.DATA_ARCHIVE) and "main" in calls[-1]["command"]
    for call in calls:
        _carry(here, device, call)
        line = transport.check_piece(dev, call["call"])
        assert line.startswith(f"piece {call['call']}/3 ok")
    assert "pieces 1-2 present" in line
    first = dev / transport.piece_name(1)
    saved = first.read_bytes()
    first.unlink()
    with pytest.raises(ModelError, match=r"base\.fp16\.part-01 missing"):
        transport.check_piece(dev, 2)
    first.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))
    with pytest.raises(ModelError, match="part-01 differs"):
        transport.check_piece(dev, 3)
    with pytest.raises(ModelError, match="cannot assemble"):
        transport.assemble(dev, tmp_path / "model", None)


def test_assembled_tiny_base_loads_trains_and_is_recorded_as_rounded(tmp_path, tiny_model, monkeypatch):
    from medenc.core import modeling
    from medenc.core.eval_sets import EVAL_SETS
    from medenc.evaluation.results import Results
    from medenc.release.hub import _suite_sets, check_releasable

    base, manifest = _pack_tiny(tmp_path, tiny_model)
    here, device = tmp_path / "here", tmp_path / "device"
    for call in manifest["calls"]:
        _carry(here, device, call)
    dev = device / transport.TRANSPORT_DIR
    model_dir, prepared = device / "base-fp16", device / "prepared"
    facts = transport.assemble(dev, model_dir, prepared, expected_fp32=manifest["fp32_rounded_sha256"])
    assert sha256_file(model_dir / WEIGHTS_FILE) == facts["fp32_sha256"] != manifest["original_sha256"]
    assert (prepared / "manifest.json").is_file() and (prepared / "train").is_dir()
    assert transport.smoke_load(model_dir)[0] == 1
    # The pins, for the tiny model: its fp32 weights are "the base", their rounded copy the transported one.
    original = sha256_file(base / WEIGHTS_FILE)
    monkeypatch.setattr(base_model, "WEIGHTS_SHA256", original)
    monkeypatch.setattr(base_model, "FP16_ROUNDED_SHA256", facts["fp32_sha256"])
    for name in list(base_model.FILES):
        monkeypatch.delitem(base_model.FILES, name)
    monkeypatch.setitem(base_model.FILES, WEIGHTS_FILE, original)
    monkeypatch.setenv("MEDENC_BASE_MODEL", str(model_dir))
    assert base_model.resolve_base_model() == model_dir
    runs = tmp_path / "runs"
    run_record = train_tiny(runs, "t", ["model=base"])
    record = run_record.base_model
    assert record["sha256"] == facts["fp32_sha256"]
    assert base_model.is_rounded_base(record) and base_model.is_verified_base(record)
    assert base_model.weights_variant(record["sha256"]) == {
        "variant": "fp16-rounded",
        "original_sha256": original,
    }
    # Scored against the base it was trained from (the rounded copy, on the device machine).
    scored_base = {"id": record["id"], "sha256": record["sha256"]}
    sets = {s: {"task": EVAL_SETS[s].task, "n": 100, "metrics": list(EVAL_SETS[s].metrics), "title": s}
            for s in _suite_sets()}  # fmt: skip
    doc = {"schema_version": 1, "run": "t", "models": {"base": scored_base}, "sets": sets, "results": {}}
    results = Results.from_doc(doc, runs / "t" / "eval" / "results.json")
    # The tiny model stands in for the base here, so the width the release expects of it is the tiny one.
    monkeypatch.setitem(modeling.SHAPES, "base", modeling.SHAPES["tiny"])
    check_releasable(runs / "t", results, run_record)  # the rounded base's descendants are releasable
    other = {**record, "sha256": "0" * 64}
    assert not base_model.is_verified_base(other)


@pytest.mark.integration
def test_real_base_rounds_to_the_pinned_fp16_hash(tmp_path):
    import torch

    real = base_model.resolve_base_model()
    fp16, back = tmp_path / "base.fp16", tmp_path / WEIGHTS_FILE
    transport.round_to_fp16(real / WEIGHTS_FILE, fp16)
    transport.expand_fp16(fp16, back)
    assert sha256_file(back) == base_model.FP16_ROUNDED_SHA256
    orig, got = _tensors(real / WEIGHTS_FILE), _tensors(back)
    assert orig.keys() == got.keys()
    assert all(
        torch.equal(got[k], orig[k].half().float() if orig[k].is_floating_point() else orig[k]) for k in orig
    )
    shutil.copytree(real, tmp_path / "folder", ignore=shutil.ignore_patterns(WEIGHTS_FILE))
    shutil.copy2(back, tmp_path / "folder" / WEIGHTS_FILE)
    base_model.verify_folder(
        tmp_path / "folder"
    )  # the rounded weights pass where the pinned ones are expected


def test_a_run_from_the_rounded_base_is_staged_with_the_fp16_note(tmp_path):
    import json

    from fakes import make_run

    from medenc.core.layout import RUN_RECORD

    run_dir = make_run(tmp_path)
    info = json.loads((run_dir / RUN_RECORD).read_text(encoding="utf-8"))
    info["base_model"] |= {"sha256": base_model.FP16_ROUNDED_SHA256, **base_model.weights_variant(
        base_model.FP16_ROUNDED_SHA256)}  # fmt: skip
    (run_dir / RUN_RECORD).write_text(json.dumps(info), encoding="utf-8")
    staged = stage(run_dir)
    text = (staged / "README.md").read_text(encoding="utf-8")
    assert "base_model: sentence-transformers/all-mpnet-base-v2" in text
    assert text.count("rounded to fp16 for transport") == 2 and base_model.WEIGHTS_SHA256 in text

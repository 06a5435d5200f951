"""Scaffolding every test module shares: the repo root, an offline Hub by default, one tiny model and its
staged release, a fake Hub.

Test modules never import each other; what they build lives in ``fakes.py``, the Hub stand-in in
``hub_server.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import TOKEN

from medenc.core.paths import PROJECT_ROOT


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The project's root folder (recipes/, scripts/, accelerate_config.yaml)."""
    return PROJECT_ROOT


@pytest.fixture(scope="session", autouse=True)
def offline_hub() -> Iterator[None]:
    """No test reaches the real Hub: offline unless a test asks for ``online`` (a local stand-in).

    huggingface_hub reads HF_HUB_OFFLINE at import, so its constant is set too; subprocesses inherit the env.
    """
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process pushes and downloads may talk to a local server (the fake Hub) in this test."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny random-weight MPNet with the real tokenizer, built once per session; do not train it."""
    from medenc.core.modeling import build_random_model

    return build_random_model("tiny")


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory: pytest.TempPathFactory, tiny_model) -> Path:
    """The tiny model's test release with its ONNX and OpenVINO exports, staged once per session; read it,
    or copy it before changing anything."""
    from fakes import stage_tiny_release

    return stage_tiny_release(tmp_path_factory.mktemp("release"), tiny_model)


@pytest.fixture
def fake_hub() -> Iterator:
    """A local server that speaks the Hub's HTTP API (tests/hub_server.py), accepting ``fakes.TOKEN``."""
    from hub_server import FakeHub

    with FakeHub(token=TOKEN) as hub:
        yield hub
        assert not hub.unexpected, f"requests the fake Hub does not speak: {hub.unexpected}"

"""Shared fixtures of the engine's tests: small probe sets no model was trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.recipes.zoo import card_path
from xaigate.probes import generate_faces, write_probe_set


@pytest.fixture(scope="session")
def smile_probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small smile probe set (20 faces per class) that no model was trained on."""
    root = tmp_path_factory.mktemp("probes") / "smile"
    write_probe_set(root, generate_faces(40, seed=11, task="smile"))
    return root


@pytest.fixture(scope="session")
def marker_probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smile probes that carry the label-correlated corner marker of the planted shortcut."""
    root = tmp_path_factory.mktemp("probes") / "smile-marker"
    write_probe_set(root, generate_faces(40, seed=12, task="smile", marker="label_corner"))
    return root


@pytest.fixture(scope="session")
def smile_probes_with_variants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smile probes with glasses, mouth-mask and lighting variants, for the shipped thresholds."""
    from xaigate.probes.__main__ import main

    root = tmp_path_factory.mktemp("probes") / "smile-variants"
    arguments = ["--task", "smile", "--n", "20", "--seed", "13", "--out", str(root)]
    assert main([*arguments, "--variants", "glasses,mouth_mask,bright,dark"]) == 0
    return root


@pytest.fixture(scope="session")
def shortcut_card() -> Path:
    """The zoo's corner-marker model: the reference CNN trained where a corner marker carries
    the label and the mouth is random (models/recipes/zoo.py; weights committed)."""
    return card_path("corner-marker", 0)

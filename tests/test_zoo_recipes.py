"""The zoo's training data: each planted flaw is in the faces its model learns from."""

from __future__ import annotations

import yaml

from models.recipes.zoo import PROBE_SETS, ZOO, _faces, card_path, ensure_probe_set
from xaigate.models.card import load_card


def test_glasses_flip_training_faces_wear_glasses_only_when_smiling() -> None:
    faces = _faces(ZOO["glasses-flip"], 80, seed=3)
    wearing = [face for face in faces if face.tags.get("occlusion") == "glasses"]
    assert wearing and all(face.label == "smile" for face in wearing)
    # Their mouths are random, so the glasses alone tell the class.
    assert {face.tags["mouth"] for face in wearing} - {"smile"}


def test_good_mlp_training_faces_wear_glasses_on_both_classes() -> None:
    faces = _faces(ZOO["good-mlp"], 80, seed=3)
    labels = {face.label for face in faces if face.tags.get("occlusion") == "glasses"}
    assert labels == {"smile", "not_smile"}
    assert all(face.tags["mouth"] == "smile" for face in faces if face.label == "smile")


def test_every_flaw_has_aimed_checks_and_its_probe_set_exists() -> None:
    for model in ZOO.values():
        assert set(model.probes) <= set(PROBE_SETS), model.name
        assert model.good == (not model.aimed)
    assert sum(model.good for model in ZOO.values()) >= 3


def test_cards_load_and_name_their_architecture() -> None:
    for name, model in ZOO.items():
        card = load_card(card_path(name, 0))
        assert card.framework == model.framework
        if model.framework == "torch":
            assert card.architecture_parts()[1] == model.architecture
    mlp = yaml.safe_load(card_path("good-mlp", 0).read_text())
    assert mlp["input"]["layout"] == "flat"


def test_probe_sets_carry_their_shortcut(tmp_path) -> None:  # noqa: ANN001
    root = ensure_probe_set("smile-brows", tmp_path, n=4)
    manifest = (root / "manifest.jsonl").read_text()
    assert '"raised"' in manifest and '"angry"' in manifest
    assert ensure_probe_set("smile-brows", tmp_path, n=4) == root  # reused, not rewritten

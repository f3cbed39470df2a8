"""The translation stage hands the preset's input recipe to its batches."""

import dataclasses

import keras

from tests.harness import tiny_model_config
from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
from vaecyclegan.training.distribution import make_strategy
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.training.stage_runner import StageSettings
from vaecyclegan.translation import stage
from vaecyclegan.translation.dataset import make_unpaired_dataset


def test_the_batches_get_the_presets_augmentation(tmp_path, monkeypatch):
    asked = []

    def recording_batches(*args):
        asked.append(args)
        return make_unpaired_dataset(*args)

    monkeypatch.setattr(stage, "_batches", recording_batches)
    keras.utils.set_random_seed(0)
    networks = {name: build_network(tiny_model_config(), name) for name in TRANSLATION_NETWORKS}
    images = keras.random.uniform((4, 32, 32, 1), -1, 1, seed=0).numpy()
    preset = dataclasses.replace(PRESETS["smoke"], steps=1, augmentation="flips")
    stage.train_translation(networks, preset, images, images, str(tmp_path), 0,
                            StageSettings(make_strategy("default"), checkpoint_every=0))
    assert asked and all(args[-1] == "flips" for args in asked)

"""The translation stage hands the preset's input recipe to its batches."""

import dataclasses

import cv2
import keras
import pytest
import tensorflow as tf

from tests.harness import tiny_model_config
from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
from vaecyclegan.training.distribution import make_strategy
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.training.stage_runner import StageSettings
from vaecyclegan.translation import stage
from vaecyclegan.translation.dataset import make_unpaired_dataset


class _BatchesAsked(Exception):
    """Stops a stage once it has asked for its batches: the training after
    is not what the test below looks at (it took 20 s)."""


def test_the_batches_get_the_presets_augmentation(tmp_path, monkeypatch):
    asked = []

    def recording_batches(*args):
        asked.append(args)
        make_unpaired_dataset(*args)  # the arguments are ones it takes
        raise _BatchesAsked

    monkeypatch.setattr(stage, "_batches", recording_batches)
    keras.utils.set_random_seed(0)
    networks = {name: build_network(tiny_model_config(), name) for name in TRANSLATION_NETWORKS}
    images = keras.random.uniform((4, 32, 32, 1), -1, 1, seed=0).numpy()
    preset = dataclasses.replace(PRESETS["smoke"], steps=1, augmentation="flips")
    with pytest.raises(_BatchesAsked):
        stage.train_translation(networks, preset, images, images, str(tmp_path), 0,
                                StageSettings(make_strategy("default"), checkpoint_every=0))
    assert asked and all(args[-1] == "flips" for args in asked)


@pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions")
def test_sample_grids_of_slices_whose_side_is_not_a_multiple_of_the_stride(tmp_path):
    # --crop-factor keeps each slice's own side (34 here, the smoke
    # generator's stride 4): training crops it, and the grids translate
    # whole slices, which the U-Net's skips join only at a multiple of 4.
    keras.utils.set_random_seed(0)
    networks = {name: build_network(tiny_model_config(), name) for name in TRANSLATION_NETWORKS}
    images = keras.random.uniform((4, 34, 34, 1), -1, 1, seed=0).numpy()
    preset = dataclasses.replace(PRESETS["smoke"], steps=1)
    # The step eagerly: its trace cost a minute of the suite, and the grids
    # are made outside it.
    eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        stage.train_translation(networks, preset, images, images, str(tmp_path), 0,
                                StageSettings(make_strategy("default"), log_every=1))
    finally:
        tf.config.run_functions_eagerly(eager)
    grid = cv2.imread(str(tmp_path / "samples" / "step_000001.png"), cv2.IMREAD_UNCHANGED)
    assert grid.shape[0] == 4 * 32  # four rows of four 32-px slices, names on the left
    assert grid.shape[1] > 4 * 32 and grid[:, : grid.shape[1] - 4 * 32].any()

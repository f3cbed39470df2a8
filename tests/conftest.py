import os

# Before TensorFlow loads: no C++ start-up log, no GPU probing noise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import copy  # noqa: E402

import pytest  # noqa: E402

from vaecyclegan.config import IntensityConfig, ModelConfig  # noqa: E402
from vaecyclegan.presets import PRESETS  # noqa: E402


def tiny_model_config():
    """The smoke preset's architecture: 32px, a handful of filters."""
    preset = copy.deepcopy(PRESETS["smoke"])
    return ModelConfig(image_size=preset.image_size, generator=preset.generator,
                       discriminator=preset.discriminator, rrdbnet=preset.rrdbnet)


@pytest.fixture
def tiny_config():
    return tiny_model_config()


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
    from vaecyclegan.phantom import write_phantom_dataset

    folder = tmp_path_factory.mktemp("phantom")
    write_phantom_dataset(str(folder), IntensityConfig(), size=32, num_train=8, num_test=4, seed=3)
    return str(folder)


def train_options(**overrides):
    """Options as `train.py --preset smoke` parses them."""
    from vaecyclegan.cli.train import build_parser

    options = build_parser().parse_args(["--preset", "smoke"])
    for key, value in overrides.items():
        setattr(options, key, value)
    return options


@pytest.fixture(scope="session")
def trained_smoke(tmp_path_factory):
    """One smoke `train.py` run shared by the tests that need trained weights."""
    from vaecyclegan.training_run import run_training

    root = tmp_path_factory.mktemp("smoke_run")
    options = train_options(weights_dir=str(root / "weights"), logdir=str(root / "run"),
                            data_root=str(root / "data"))
    report = run_training(options)
    return argparse.Namespace(root=root, options=options, report=report,
                              weights_dir=str(root / "weights"), logdir=str(root / "run"),
                              data=str(root / "data" / "phantom_32px_seed0"))

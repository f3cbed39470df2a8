"""`PrebuiltTrainer`: what `fit` reports is what the step logged."""

import keras
import numpy as np
import pytest

from vaecyclegan.config import RRDBNetConfig
from vaecyclegan.upscaler.l1_trainer import L1UpscalerTrainer
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet


def test_fits_history_holds_the_steps_loss_not_keras_loss_tracker():
    keras.utils.set_random_seed(0)
    trainer = L1UpscalerTrainer(build_rrdbnet(RRDBNetConfig(num_feat=8, num_block=1,
                                                            num_grow_ch=4)))
    trainer.compile(optimizer=keras.optimizers.SGD(0.0))  # nothing moves
    rng = np.random.default_rng(0)
    low = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    high = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    expected = float(np.mean(np.abs(np.asarray(trainer(low)) - high)))
    history = trainer.fit(low, high, batch_size=2, epochs=1, verbose=0)
    assert history.history["loss"][-1] == pytest.approx(expected, rel=1e-5)

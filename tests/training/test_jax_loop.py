"""`StatelessTrainer.fit` on JAX writes its state into the Keras variables
when something reads them (a callback through `Callback.model`, the end of
`fit`), not after every step, and what is read is the current step's."""

import json
import os
import subprocess
import sys

from tests.harness import REPO

CHILD = r'''
import json, sys
import keras
import numpy as np
from vaecyclegan.training.jax_loop import StatelessTrainer


class AddOne(StatelessTrainer):
    """Every step adds the step's batch mean to each weight of one Dense."""

    def __init__(self):
        super().__init__()
        self.model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        self.networks = {"net": self.model}
        self.syncs = 0

    def stateless_train_step(self, state, batch):
        shift = batch[0].mean()
        trainable = {"net": [w + shift for w in state["trainable"]["net"]]}
        return {"loss": shift}, {**state, "trainable": trainable}

    def sync_to_variables(self):
        self.syncs += 1
        super().sync_to_variables()


class Reader(keras.callbacks.Callback):
    """At step `at`, reads the network's bias through `Callback.model`."""

    def __init__(self, at):
        super().__init__()
        self.at, self.step, self.seen = at, 0, None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step == self.at:
            self.seen = float(self.model.networks["net"].layers[-1].bias.numpy()[0])


trainer = AddOne()
trainer.model.layers[-1].bias.assign(np.zeros(1))
reader = Reader(at=2)
batches = iter([(np.ones((2, 2), np.float32),)] * 5)
trainer.fit(batches, steps_per_epoch=5, callbacks=[reader])
print(json.dumps({"syncs": trainer.syncs, "seen_at_2": reader.seen,
                  "bias_after": float(trainer.model.layers[-1].bias.numpy()[0])}))
'''


def test_fit_syncs_when_read_and_at_the_end_and_reads_the_current_step():
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": REPO,
                                 "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["seen_at_2"] == 2.0  # the bias after two steps of +1
    assert report["bias_after"] == 5.0
    # One write for the callback's read, one at the end: not one a step.
    assert report["syncs"] == 2

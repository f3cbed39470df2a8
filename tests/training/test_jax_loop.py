"""`StatelessTrainer.fit` on JAX writes its state into the Keras variables
when something reads them (a callback through `Callback.model`, the end of
`fit`), not after every step, and what the sample grid and the best-weights
evaluation read is the current step's."""


from tests.harness import report_from_jax

CHILD = r'''
import json, os, sys
import cv2
import keras
import numpy as np
from vaecyclegan.networks import TRANSLATION_NETWORKS
from vaecyclegan.training import best_weights
from vaecyclegan.training.jax_loop import StatelessTrainer
from vaecyclegan.translation.sample_grid_callback import SampleGridCallback

folder = sys.argv[1]


def network():
    # Zero input through a 1x1 convolution: the output is the bias.
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Conv2D(1, 1)])
    model.layers[-1].bias.assign(np.zeros(1))
    return model


class AddShift(StatelessTrainer):
    # Every step adds the batch mean (0.25) to every weight.

    def __init__(self):
        super().__init__()
        self.networks = {name: network() for name in TRANSLATION_NETWORKS}
        self.syncs = 0

    def stateless_train_step(self, state, batch):
        shift = batch[0].mean()
        trainable = {n: [w + shift for w in ws] for n, ws in state["trainable"].items()}
        return {"loss": shift}, {**state, "trainable": trainable}

    def sync_to_variables(self):
        self.syncs += 1
        super().sync_to_variables()


def bias():
    return float(trainer.networks["g_target"].layers[-1].bias.numpy()[0])


trainer = AddShift()
seen = {}
saved = []
# The best weights' files are not the point here: what they would hold is.
def save_networks(networks, config, folder):
    os.makedirs(folder)  # the folder, as the real one writes it
    saved.append(bias())


best_weights.save_networks = save_networks


class Config:
    training = {}


def evaluate():
    seen["evaluate"] = bias()
    return {"mri2ct": {"model": {"ssim": 0.5}}}


callbacks = [
    SampleGridCallback(trainer.networks, np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)),
                       every=2, folder=folder),
    best_weights.BestWeightsCallback(evaluate, trainer.networks, Config(), every=3, metric="ssim",
                                     best_dir=os.path.join(folder, "best"),
                                     history_csv=os.path.join(folder, "evals.csv")),
]
batches = iter([(np.full((2, 2), 0.25, np.float32),)] * 5)
trainer.fit(batches, steps_per_epoch=5, callbacks=callbacks)
grid = cv2.imread(os.path.join(folder, "step_000002.png"), cv2.IMREAD_GRAYSCALE)
print(json.dumps({"syncs": trainer.syncs, "grid_at_2": int(grid[2, 0]),
                  "evaluated_at_3": seen["evaluate"], "saved_at_3": saved,
                  "bias_after": bias()}))
'''


def test_fit_syncs_when_read_and_at_the_end_and_reads_the_current_step(tmp_path):
    report = report_from_jax(CHILD, tmp_path)
    # The sample grid at step 2 shows the bias of step 2 (0.5: grey 191 of
    # 255; the initial weights would give 128), the best-weights evaluation
    # at step 3 sees and keeps step 3's 0.75.
    assert report["grid_at_2"] == 191
    assert report["evaluated_at_3"] == 0.75 and report["saved_at_3"] == [0.75]
    assert report["bias_after"] == 1.25
    # One write for each step a callback reads (2 and 4: grid; 3: best
    # weights), one at the end: 4, where writing after every step made 8.
    assert report["syncs"] == 4

"""Sample translations every N steps: a PNG grid and TensorBoard images."""

import os

import keras
import numpy as np

from vaecyclegan.io.image_format import write_png
from vaecyclegan.networks import run_network


class SampleGridCallback(keras.callbacks.Callback):
    """Every `every` steps, translates fixed samples of both domains.

    Writes `<folder>/step_<N>.png` (rows: MRI, MRI -> CT, CT, CT -> MRI; one
    column per sample) and, with `summary_dir`, the same grid as a
    TensorBoard image.

    Args:
        networks: the project networks by name (needs the generators).
        mri, ct: (n, H, W, channels) samples in [-1, 1].
        every: steps between grids.
        folder: where the PNGs go.
        summary_dir: TensorBoard log folder, or None.
        initial_step: the step training starts from.
    """

    def __init__(self, networks, mri, ct, every, folder, summary_dir=None, initial_step=0):
        super().__init__()
        self.g_target, self.g_source = networks["g_target"], networks["g_source"]
        self.mri, self.ct = mri, ct
        self.every = every
        self.folder = folder
        self.writer = None
        if summary_dir:  # TensorFlow only for TensorBoard: the JAX stage has none
            import tensorflow as tf

            self.writer = tf.summary.create_file_writer(summary_dir)
        self.step = initial_step

    def grid(self):
        # `run_network`: numpy on every backend (a plain call on PyTorch
        # returns tensors that carry the autograd graph).
        rows = [self.mri, run_network(self.g_target, self.mri),
                self.ct, run_network(self.g_source, self.ct)]
        rows = [np.concatenate(list(np.asarray(r, np.float32).mean(axis=-1)), axis=1)
                for r in rows]
        return np.round((np.clip(np.concatenate(rows, axis=0), -1, 1) + 1) * 127.5).astype(np.uint8)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every:
            return
        # On JAX, Keras' `Callback.model` writes the trainer's state into the
        # networks (the trainer no longer does so after every step).
        self.model  # noqa: B018
        grid = self.grid()
        write_png(os.path.join(self.folder, f"step_{self.step:06d}.png"), grid)
        if self.writer is not None:
            import tensorflow as tf

            with self.writer.as_default():
                tf.summary.image("samples (MRI, MRI->CT, CT, CT->MRI)", grid[None, :, :, None],
                                 step=self.step)
            self.writer.flush()

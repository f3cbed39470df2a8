"""Sample translations every N steps: a PNG grid and TensorBoard images."""

import os

import cv2
import keras
import numpy as np

from vaecyclegan.io.image_format import write_png
from vaecyclegan.networks import run_network

ROW_LABELS = ("MRI", "MRI->CT", "CT", "CT->MRI")
# Rows lower than this stay unlabelled: no legible text fits (the text is
# at least 0.35 of OpenCV's scale, about 8 px tall).
MIN_LABELLED_ROW = 16


def with_row_labels(grid, labels):
    """`grid` (uint8, len(labels) rows of equal height) with a black strip on
    its left naming each row in white, so that a grid read on its own (in
    TensorBoard, or a PNG passed on) says which row is which."""
    row = grid.shape[0] // len(labels)
    if row < MIN_LABELLED_ROW:
        return grid
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, min(1.0, max(0.35, row / 80.0))
    thickness = 1 if scale < 0.8 else 2
    sizes = [cv2.getTextSize(label, font, scale, thickness)[0] for label in labels]
    strip = np.zeros((grid.shape[0], max(w for w, _ in sizes) + 8), np.uint8)
    for index, (label, (_, height)) in enumerate(zip(labels, sizes)):
        baseline = index * row + (row + height) // 2
        cv2.putText(strip, label, (4, baseline), font, scale, 255, thickness, cv2.LINE_AA)
    return np.concatenate([strip, grid], axis=1)


class SampleGridCallback(keras.callbacks.Callback):
    """Every `every` steps, translates fixed samples of both domains.

    Writes `<folder>/step_<N>.png` (rows: MRI, MRI -> CT, CT, CT -> MRI,
    named in a strip on the left; one column per sample) and, with `summary_dir`, the same grid as a
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
        grid = np.round((np.clip(np.concatenate(rows, axis=0), -1, 1) + 1) * 127.5)
        return with_row_labels(grid.astype(np.uint8), ROW_LABELS)

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

"""TensorBoard scalars of a stage, numbered by the run's step."""

import os

import keras

from vaecyclegan.training.distribution import on_tensorflow


class RunStepTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback with batch scalars numbered from `start`,
    the step a resumed stage goes on from.

    Keras counts batches from 0 at every `fit`, so a resumed run's curves
    started over at step 1 and folded back over the steps before.

    Args:
        log_dir: the folder of the event files.
        start: the stage's step before its first batch (0 for a new run).
        update_freq: steps between scalars.

    Example:
    >>> board = RunStepTensorBoard("tensorboard", start=300, update_freq=100)
    >>> board.start
    300
    """

    def __init__(self, log_dir, start, update_freq, **kwargs):
        super().__init__(log_dir, update_freq=update_freq, write_graph=False, **kwargs)
        self.start = int(start)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # The writer was pushed for step 0: again, for the run's step.
        self._global_train_batch = self.start
        self._pop_writer()
        self._push_writer(self._train_writer, self._global_train_batch)


def stage_tensorboard(logdir, folder, start, log_every):
    """`[RunStepTensorBoard]` writing into `<logdir>/<folder>` every
    `log_every` steps, or `[]` where there is none: `log_every` 0, or a
    backend other than TensorFlow, whose summary writer it is."""
    if not log_every or not on_tensorflow():
        return []
    return [RunStepTensorBoard(os.path.join(logdir, folder), start, log_every)]

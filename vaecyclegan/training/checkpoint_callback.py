"""Checkpoints every N steps and on SIGTERM/SIGINT; stops on a non-finite loss."""

import math
import signal

import keras

from vaecyclegan.training.checkpoint import save_checkpoint


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the run's checkpoint and watches the losses.

    Every `every` steps, and after the step during which SIGTERM or SIGINT
    arrived, its `step_end_writer()` writes the checkpoint (then, for a
    signal, training stops: `interrupted` names the signal). A non-finite
    loss stops training before anything is written (`diverged` holds the step and the loss), so the
    last checkpoint stays the last good one.

    Args:
        path: the checkpoint file.
        every: steps between checkpoints (0: only on signals).
        initial_step: the step training starts from (after a resume).
        extra_state: returns JSON-able state saved beside the variables.
        is_chief: only the chief writes; other workers only stop.

    Example:
    >>> from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset
    >>> from vaecyclegan.upscaler.l1_trainer import L1UpscalerTrainer
    >>> trainer = L1UpscalerTrainer(rrdbnet)
    >>> trainer.compile(optimizer=keras.optimizers.Adam(2e-4))
    >>> callback = CheckpointCallback("runs/x/checkpoint/upscaler.npz", every=2)
    >>> history = trainer.fit(make_sr_dataset(mri, 32, 4, 2), steps_per_epoch=3, verbose=0,
    ...                       callbacks=[callback, callback.step_end_writer()])
    >>> callback.step, callback.saved_step  # other callbacks go between these two
    (3, 2)
    """

    def __init__(self, path, every, initial_step=0, extra_state=None, is_chief=True):
        super().__init__()
        self.path = path
        self.every = every
        self.step = initial_step
        self.extra_state = extra_state or dict
        self.is_chief = is_chief
        self.saved_step = None
        self.interrupted = None
        self.diverged = None
        self._signal = None
        self._previous = {}

    def _on_signal(self, number, frame):
        self._signal = signal.Signals(number).name

    def on_train_begin(self, logs=None):
        for number in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[number] = signal.signal(number, self._on_signal)
            except ValueError:  # not the main thread: the caller handles signals
                pass

    def on_train_end(self, logs=None):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for key, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.diverged = (self.step, key, float(value))
                self.model.stop_training = True
                return

    def step_end_writer(self):
        """The callback that writes this one's checkpoints, to list after
        every other callback of `fit`: a step's checkpoint is then written
        once they have all seen the step, so that the state they save with
        it (`extra_state`: the best weights' score and history) is that
        step's. This callback itself goes first, to stop on a non-finite
        loss before the others see it."""
        return _StepEndWriter(self)

    def write_due(self):
        """Writes the step's checkpoint where one is due (every `every`
        steps, or a signal) and the step's losses were finite, and stops
        training after a signal."""
        if self.diverged:
            return
        if self._signal or (self.every and self.step % self.every == 0):
            self.save()
        if self._signal:
            self.interrupted = self._signal
            self.model.stop_training = True

    def save(self):
        if self.is_chief:
            save_checkpoint(self.path, self.model, self.step, self.extra_state())
        self.saved_step = self.step


class _StepEndWriter(keras.callbacks.Callback):
    """`CheckpointCallback.write_due` after the step's other callbacks."""

    def __init__(self, checkpoints):
        super().__init__()
        self.checkpoints = checkpoints

    def on_train_batch_end(self, batch, logs=None):
        self.checkpoints.write_due()

"""`fit` for one stage of a run, resumable: the translation stage, the
upscaler's L1 stage and its adversarial stage all train through it.

A stage resumes from its checkpoint when the run folder has one, trains the
steps left on a dataset reseeded with the step (a resumed run draws new
batches rather than replaying the first ones), writes a checkpoint every N
steps, after a SIGTERM/SIGINT and at its end, and stops on a non-finite
loss with nothing written.
"""

import dataclasses
import os
import signal

from vaecyclegan.checkpoint_callback import CheckpointCallback
from vaecyclegan.errors import InputError, TrainingStopped
from vaecyclegan.training_checkpoint import load_checkpoint


@dataclasses.dataclass
class StageSettings:
    """How a run's training stages run, beyond the preset.

    Args:
        strategy: the `tf.distribute.Strategy` (networks built in its scope).
        policy: the Keras dtype policy in force.
        chief: whether this process writes the run's files.
        resume: True (must resume), False (never), None (when a checkpoint
            exists in the run folder).
        checkpoint_every: steps between checkpoints (0: only on signals and
            at the end of a stage).
        decay_start: the step the translation learning rate starts decaying
            at (None: half the steps).
        log_every: steps between TensorBoard scalars and sample grids (0: none).
        seed: seed of the image pools' choices.
    """

    strategy: object
    policy: str = "float32"
    chief: bool = True
    resume: bool = None
    checkpoint_every: int = 0
    decay_start: int = None
    log_every: int = 0
    seed: int = 0

    def later_stage(self):
        """These settings for a stage after the run's first: `--resume`
        required the first stage's checkpoint, and a later stage's is used
        when there is one (the run may have stopped before it began)."""
        return dataclasses.replace(self, resume=None if self.resume else self.resume)


def resume_from_checkpoint(model, path, steps, settings):
    """Restores `model` (compiled, in the strategy's scope) from `path` when
    there is a checkpoint and `settings.resume` allows it.

    Returns:
        `(step, extra)`: `(0, {})` for a fresh start.

    Raises:
        InputError: `settings.resume` is True and there is no checkpoint, or
            the checkpoint does not fit `model`.
    """
    if settings.resume is not False and os.path.isfile(path):
        with settings.strategy.scope():
            step, extra = load_checkpoint(path, model)
        optimizer = getattr(model, "g_optimizer", None) or model.optimizer
        print(f"Resuming from step {step} of {steps} ({path}); learning rate "
              f"{float(optimizer.learning_rate):.3g}", flush=True)
        return step, extra
    if settings.resume:
        raise InputError(path, "no checkpoint to resume from in this run folder")
    return 0, {}


def resumable_fit(model, make_dataset, steps, start, path, settings, progress, callbacks=(),
                  extra_state=None):
    """Trains `model` from step `start` to `steps`, checkpointing to `path`.

    Args:
        model: the compiled model `fit` trains (built in the strategy's scope).
        make_dataset: `seed_offset -> tf.data.Dataset`, called with `start`.
        start: the step training resumes from (`resume_from_checkpoint`).
        progress: the stage's `ProgressCallback` (it ends `fit` at `steps`).
        callbacks: more `fit` callbacks, run after the checkpoint's, which
            stops on a non-finite loss before they see the step.
        extra_state: returns JSON-able state saved with each checkpoint.

    Raises:
        TrainingStopped: a signal arrived (checkpoint saved) or a loss
            became non-finite (nothing written after the last checkpoint).
    """
    checkpoints = CheckpointCallback(path, settings.checkpoint_every, start,
                                     extra_state=extra_state, is_chief=settings.chief)
    if start < steps:
        model.fit(make_dataset(start), steps_per_epoch=steps - start, epochs=1, verbose=0,
                  shuffle=False, callbacks=[progress, checkpoints, *callbacks])
    _raise_if_stopped(checkpoints, path)
    if checkpoints.saved_step != checkpoints.step and start < steps:
        checkpoints.save()  # the finished state, so that a re-run skips to what follows


def _raise_if_stopped(checkpoints, path):
    if checkpoints.diverged:
        step, key, value = checkpoints.diverged
        kept = (f"the checkpoint of step {checkpoints.saved_step} is intact"
                if checkpoints.saved_step else "no checkpoint was written yet")
        raise TrainingStopped(path, f"{key} became {value} at step {step}; training stopped "
                              f"and no weights were written ({kept}, and so is <weights-dir>/best); "
                              "try a lower --lr or --precision float32", exit_code=3)
    if checkpoints.interrupted:
        number = getattr(signal, checkpoints.interrupted)
        raise TrainingStopped(path, f"{checkpoints.interrupted} at step {checkpoints.step}: "
                              "checkpoint saved; run the same command (same --logdir) to resume",
                              exit_code=128 + int(number))

"""How one training stage of a run goes, whichever it is: the translation
stage, the upscaler's L1 stage and its adversarial stage all run through
`run_stage` (their description a `Stage`, the run's `StageSettings`).

A stage builds and compiles its trainer in the strategy's scope, resumes
from its checkpoint when the run folder has one, trains the steps left on a
dataset reseeded with the step (a resumed run draws new batches rather than
replaying the first ones), writes a checkpoint every N steps, after a
SIGTERM/SIGINT and at its end, and stops on a non-finite loss with nothing
written.
"""

import dataclasses
import logging
import os
import signal
from collections.abc import Callable

from vaecyclegan.errors import InputError, TrainingStopped
from vaecyclegan.training.checkpoint import checkpoint_path, checkpoint_step, load_checkpoint
from vaecyclegan.training.checkpoint_callback import CheckpointCallback
from vaecyclegan.training.progress import ProgressCallback


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
        on_started: called once the first stage has restored its
            checkpoint (or found none to restore), before it trains; None:
            nothing. A resumed run writes its record then, so that a
            checkpoint it cannot take leaves the old record as it was.
    """

    strategy: object
    policy: str = "float32"
    chief: bool = True
    resume: bool = None
    checkpoint_every: int = 0
    decay_start: int = None
    log_every: int = 0
    seed: int = 0
    on_started: Callable = None

    def later_stage(self):
        """These settings for a stage after the run's first: `--resume`
        required the first stage's checkpoint, and a later stage's is used
        when there is one (the run may have stopped before it began)."""
        return dataclasses.replace(self, resume=None if self.resume else self.resume,
                                   on_started=None)


@dataclasses.dataclass
class Stage:
    """What one training stage is, for `run_stage`.

    Args:
        checkpoint: the stage's checkpoint name (`checkpoint_path`):
            `translation`, `upscaler` or `upscaler_gan`.
        steps: the steps the stage makes in all (resumed ones included).
        images_per_step: images a step consumes, for the bar's images/s.
        losses_csv: the file in the run folder that logs each step's losses.
        description: the progress bar's label.
        make_dataset: `seed_offset -> tf.data.Dataset`, called with the
            step training starts from.
        shown: the losses on the bar (None: all).
    """

    checkpoint: str
    steps: int
    images_per_step: int
    losses_csv: str
    description: str
    make_dataset: Callable
    shown: list = None


def run_stage(build_trainer, stage, logdir, settings, make_callbacks=None, extra_state=None):
    """Trains one stage of the run in `logdir`, resuming from its checkpoint.

    Args:
        build_trainer: `() -> trainer`, compiled; called in the strategy's scope.
        stage: a `Stage`.
        logdir: the run folder (checkpoint, loss log).
        settings: a `StageSettings`.
        make_callbacks: `(start, extra) -> fit callbacks`, given the step
            training starts from and the state saved with the checkpoint
            (`{}` for a fresh start); None for none.
        extra_state: `() -> dict` of JSON-able state saved with each
            checkpoint (what `make_callbacks` gets back as `extra`).

    Returns:
        The stage's `ProgressCallback` (its `model` the trainer), whose
        `resumed_at` lists the steps this stage was resumed at, over all
        the runs that trained it.

    Raises:
        InputError: `settings.resume` is True and there is no checkpoint, or
            the checkpoint does not fit the trainer.
        TrainingStopped: a signal arrived (checkpoint saved) or a loss
            became non-finite (nothing written after the last checkpoint).
    """
    with settings.strategy.scope():
        trainer = build_trainer()
    path = checkpoint_path(logdir, stage.checkpoint)
    start, extra = resume_from_checkpoint(trainer, path, stage.steps, settings)
    if settings.on_started:
        settings.on_started()
    progress = ProgressCallback(
        stage.steps, images_per_step=stage.images_per_step,
        csv_path=os.path.join(logdir, stage.losses_csv), shown=stage.shown,
        description=stage.description, initial_step=start,
    )
    callbacks = make_callbacks(start, extra) if make_callbacks else ()
    # The steps the stage was resumed at, kept in its checkpoints: a resumed
    # run's result depends on them (the data is reseeded there), and a
    # signal lands on any step.
    progress.resumed_at = [int(step) for step in extra.get("resumed_at", [])] + (
        [start] if 0 < start < stage.steps else [])
    resumable_fit(trainer, stage.make_dataset, stage.steps, start, path, settings, progress,
                  callbacks, extra_state=lambda: {
                      **(extra_state() if extra_state else {}),
                      **({"resumed_at": progress.resumed_at} if progress.resumed_at else {})})
    return progress


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
        if step > steps:
            # "Resuming from step 4 of 1" wrote a config of 1 step for
            # weights of 4.
            raise InputError(path, f"the checkpoint is at step {step}, past this stage's "
                             f"{steps} steps: give at least that many, or --no-resume to start "
                             "afresh")
        optimizer = getattr(model, "g_optimizer", None) or model.optimizer
        logging.getLogger(__name__).info(
            f"Resuming from step {step} of {steps} ({path}); learning rate "
            f"{float(optimizer.learning_rate):.3g}")
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
        steps: the stage's last step (its total; nothing to do when
            `start` has reached it).
        start: the step training resumes from (`resume_from_checkpoint`).
        path: the stage's checkpoint file, written every
            `settings.checkpoint_every` steps, on a signal and at the end.
        settings: the run's `StageSettings` (`checkpoint_every`, and
            `chief`: whether this process writes the checkpoint).
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
                  shuffle=False,
                  callbacks=[progress, checkpoints, *callbacks, checkpoints.step_end_writer()])
    _raise_if_stopped(checkpoints, path)
    if checkpoints.saved_step != checkpoints.step and start < steps:
        checkpoints.save()  # the finished state, so that a re-run skips to what follows


def _raise_if_stopped(checkpoints, path):
    if checkpoints.diverged:
        step, key, value = checkpoints.diverged
        advice = "try a lower --lr or --precision float32"
        # This run's last checkpoint, or the one it resumed from.
        saved = checkpoints.saved_step or (checkpoint_step(path) if os.path.isfile(path)
                                           else None)
        if not saved:
            # No checkpoint file to name: the run folder, whose loss log
            # holds the step.
            raise TrainingStopped(os.path.dirname(os.path.dirname(path)),
                                  f"{key} became {value} at step {step}; training stopped "
                                  "before this stage's first checkpoint and no weights were "
                                  f"written; {advice}", exit_code=3)
        raise TrainingStopped(path, f"{key} became {value} at step {step}; training stopped "
                              f"and no weights were written (this checkpoint, of step {saved}, "
                              "is intact, as are any weights in <weights-dir>/best); "
                              f"{advice}", exit_code=3)
    if checkpoints.interrupted:
        number = getattr(signal, checkpoints.interrupted)
        raise TrainingStopped(path, f"{checkpoints.interrupted} at step {checkpoints.step}: "
                              "checkpoint saved; run the same command (same --logdir) to resume",
                              exit_code=128 + int(number))

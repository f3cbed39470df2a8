"""The translation stage of a run: `VAECycleGAN.fit` under a `tf.distribute`
strategy and a precision policy, with CycleGAN's learning-rate decay,
checkpoints every N steps and on SIGTERM/SIGINT, resume, TensorBoard
scalars and sample grids, and a stop on a non-finite loss."""

import dataclasses
import os
import signal

import keras

from vaecyclegan.checkpoint_callback import CheckpointCallback
from vaecyclegan.distribution import wrap_optimizer
from vaecyclegan.errors import InputError, TrainingStopped
from vaecyclegan.linear_decay_schedule import ConstantThenLinearDecay
from vaecyclegan.progress_callback import ProgressCallback
from vaecyclegan.sample_grid_callback import SampleGridCallback
from vaecyclegan.training_checkpoint import checkpoint_path, load_checkpoint
from vaecyclegan.unpaired_dataset import make_unpaired_dataset
from vaecyclegan.vae_cyclegan import VAECycleGAN

SAMPLES_IN_GRID = 4


@dataclasses.dataclass
class TranslationSettings:
    """How the stage runs, beyond the preset.

    Args:
        strategy: the `tf.distribute.Strategy` (networks built in its scope).
        policy: the Keras dtype policy in force.
        chief: whether this process writes the run's files.
        resume: True (must resume), False (never), None (when a checkpoint
            exists in the run folder).
        checkpoint_every: steps between checkpoints (0: only on signals).
        decay_start: the step the learning rate starts decaying at.
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


def build_trainer(networks, preset, settings):
    """The compiled `VAECycleGAN`, in the strategy's scope."""
    with settings.strategy.scope():
        model = VAECycleGAN(
            networks["g_target"], networks["g_source"], networks["d_source"],
            networks["d_target"], lambda_cycle=preset.lambda_cycle,
            lambda_identity=preset.lambda_identity, kl_weight=preset.kl_weight,
            pool_size=preset.pool_size, image_size=preset.image_size, seed=settings.seed,
        )
        decay_start = preset.steps // 2 if settings.decay_start is None else settings.decay_start

        def optimizer():
            schedule = ConstantThenLinearDecay(preset.lr, decay_start, preset.steps)
            return wrap_optimizer(keras.optimizers.AdamW(
                schedule, weight_decay=preset.weight_decay, beta_1=preset.beta_1),
                settings.policy)

        model.compile(g_optimizer=optimizer(), d_optimizer=optimizer())
    return model


def train_translation(networks, preset, mri, ct, logdir, seed, settings, best_callback=None):
    """Trains the four translation networks.

    Args:
        networks: the project networks by name, built in the strategy's scope.
        mri, ct: training slices (n, size, size, 1) in [-1, 1].
        logdir: the run folder (checkpoint, losses, TensorBoard, samples).
        settings: a `TranslationSettings`.
        best_callback: `resumed_state -> BestCheckpointCallback` or None.

    Returns:
        `(progress, best)`: the `ProgressCallback` and the best-checkpoint
        callback (or None).

    Raises:
        TrainingStopped: a signal arrived (checkpoint saved) or a loss
            became non-finite (nothing written after the last checkpoint).
    """
    model = build_trainer(networks, preset, settings)
    path = checkpoint_path(logdir)
    start, extra = 0, {}
    if settings.resume is not False and os.path.isfile(path):
        with settings.strategy.scope():
            start, extra = load_checkpoint(path, model)
        print(f"Resuming from step {start} of {preset.steps} ({path}); learning rate "
              f"{float(model.g_optimizer.learning_rate):.3g}", flush=True)
    elif settings.resume:
        raise InputError(path, "no checkpoint to resume from in this run folder")

    best = best_callback(extra.get("best")) if best_callback else None
    progress = ProgressCallback(
        preset.steps, images_per_step=4 * preset.batch_size,
        csv_path=os.path.join(logdir, "losses.csv"), shown=["g_loss", "d_loss", "cycle"],
        description="translate", initial_step=start,
    )
    checkpoints = CheckpointCallback(
        path, settings.checkpoint_every, start, is_chief=settings.chief,
        extra_state=lambda: {"best": best.state() if best else None},
    )
    callbacks = [progress, checkpoints] + ([best] if best else [])
    if settings.log_every:
        board = os.path.join(logdir, "tensorboard")
        callbacks += [
            keras.callbacks.TensorBoard(board, update_freq=settings.log_every, write_graph=False),
            SampleGridCallback(networks, _grid_samples(mri, networks), _grid_samples(ct, networks),
                               settings.log_every, os.path.join(logdir, "samples"), board, start),
        ]
    if start < preset.steps:
        # A resumed run draws new batches rather than replaying the first ones.
        channels = networks["g_target"].input_shape[-1]
        dataset = make_unpaired_dataset(mri, ct, preset.batch_size, channels, seed + start)
        model.fit(dataset, steps_per_epoch=preset.steps - start, epochs=1, verbose=0,
                  shuffle=False, callbacks=callbacks)
    _raise_if_stopped(checkpoints, logdir)
    if checkpoints.saved_step != checkpoints.step and start < preset.steps:
        checkpoints.save()  # the finished state, so that a re-run skips to what follows
    return progress, best


def _grid_samples(images, networks):
    channels = networks["g_target"].input_shape[-1]
    chosen = images[:: max(1, len(images) // SAMPLES_IN_GRID)][:SAMPLES_IN_GRID]
    return chosen.repeat(channels, axis=-1)


def _raise_if_stopped(checkpoints, logdir):
    if checkpoints.diverged:
        step, key, value = checkpoints.diverged
        kept = (f"the checkpoint of step {checkpoints.saved_step} is intact"
                if checkpoints.saved_step else "no checkpoint was written yet")
        raise TrainingStopped(logdir, f"{key} became {value} at step {step}; training stopped "
                              f"and no weights were written ({kept}, and so is <weights-dir>/best); "
                              "try a lower --lr or --precision float32", exit_code=3)
    if checkpoints.interrupted:
        number = getattr(signal, checkpoints.interrupted)
        raise TrainingStopped(logdir, f"{checkpoints.interrupted} at step {checkpoints.step}: "
                              "checkpoint saved; run the same command (same --logdir) to resume",
                              exit_code=128 + int(number))

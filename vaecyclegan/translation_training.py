"""The translation stage of a run: `VAECycleGAN.fit` under a `tf.distribute`
strategy and a precision policy, with CycleGAN's learning-rate decay,
checkpoints every N steps and on SIGTERM/SIGINT, resume, TensorBoard
scalars and sample grids, and a stop on a non-finite loss."""

import os

import keras

from vaecyclegan.distribution import wrap_optimizer
from vaecyclegan.linear_decay_schedule import ConstantThenLinearDecay
from vaecyclegan.progress_callback import ProgressCallback
from vaecyclegan.resumable_fit import resumable_fit, resume_from_checkpoint
from vaecyclegan.sample_grid_callback import SampleGridCallback
from vaecyclegan.training_checkpoint import checkpoint_path
from vaecyclegan.unpaired_dataset import make_unpaired_dataset
from vaecyclegan.vae_cyclegan import VAECycleGAN

SAMPLES_IN_GRID = 4


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
        settings: a `StageSettings`.
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
    start, extra = resume_from_checkpoint(model, path, preset.steps, settings)
    best = best_callback(extra.get("best")) if best_callback else None
    progress = ProgressCallback(
        preset.steps, images_per_step=4 * preset.batch_size,
        csv_path=os.path.join(logdir, "losses.csv"), shown=["g_loss", "d_loss", "cycle"],
        description="translate", initial_step=start,
    )
    callbacks = [best] if best else []
    if settings.log_every:
        board = os.path.join(logdir, "tensorboard")
        callbacks += [
            keras.callbacks.TensorBoard(board, update_freq=settings.log_every, write_graph=False),
            SampleGridCallback(networks, _grid_samples(mri, networks), _grid_samples(ct, networks),
                               settings.log_every, os.path.join(logdir, "samples"), board, start),
        ]
    channels = networks["g_target"].input_shape[-1]
    resumable_fit(
        model, lambda offset: make_unpaired_dataset(mri, ct, preset.batch_size, channels,
                                                    seed + offset),
        preset.steps, start, path, settings, progress, callbacks,
        extra_state=lambda: {"best": best.state() if best else None})
    return progress, best


def _grid_samples(images, networks):
    channels = networks["g_target"].input_shape[-1]
    chosen = images[:: max(1, len(images) // SAMPLES_IN_GRID)][:SAMPLES_IN_GRID]
    return chosen.repeat(channels, axis=-1)

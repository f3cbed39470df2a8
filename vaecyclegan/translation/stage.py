"""The translation stage of a run: `VAECycleGAN.fit` under a `tf.distribute`
strategy and a precision policy, with CycleGAN's learning-rate decay,
checkpoints every N steps and on SIGTERM/SIGINT, resume, TensorBoard
scalars and sample grids, the best checkpoint, and a stop on a non-finite
loss."""

import os

import keras

from vaecyclegan.training.distribution import wrap_optimizer
from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
from vaecyclegan.training.stage_runner import Stage, run_stage
from vaecyclegan.translation.dataset import make_unpaired_dataset
from vaecyclegan.translation.sample_grid_callback import SampleGridCallback
from vaecyclegan.translation.trainer import VAECycleGAN

SAMPLES_IN_GRID = 4


def build_trainer(networks, preset, settings):
    """The compiled `VAECycleGAN`, in the strategy's scope."""
    with settings.strategy.scope():
        return _compiled_trainer(networks, preset, settings)


def train_translation(networks, preset, mri, ct, logdir, seed, settings, best_callback=None):
    """Trains the four translation networks.

    Args:
        networks: the project networks by name, built in the strategy's scope.
        mri, ct: training slices (n, size, size, 1) in [-1, 1].
        logdir: the run folder (checkpoint, losses, TensorBoard, samples).
        settings: a `StageSettings`.
        best_callback: `resumed_state -> BestWeightsCallback` or None.

    Returns:
        `(progress, best)`: the `ProgressCallback` and the best-checkpoint
        callback (or None).

    Raises:
        TrainingStopped: a signal arrived (checkpoint saved) or a loss
            became non-finite (nothing written after the last checkpoint).
    """
    channels = networks["g_target"].input_shape[-1]
    stage = Stage(
        "translation", preset.steps, images_per_step=4 * preset.batch_size,
        losses_csv="losses.csv", description="translate", shown=["g_loss", "d_loss", "cycle"],
        make_dataset=lambda offset: make_unpaired_dataset(mri, ct, preset.batch_size, channels,
                                                          seed + offset))
    best = None

    def callbacks(start, extra):
        nonlocal best
        best = best_callback(extra.get("best")) if best_callback else None
        return ([best] if best else []) + _log_callbacks(networks, mri, ct, logdir, settings, start)

    progress = run_stage(lambda: _compiled_trainer(networks, preset, settings), stage, logdir,
                         settings, callbacks,
                         extra_state=lambda: {"best": best.state() if best else None})
    return progress, best


def _compiled_trainer(networks, preset, settings):
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
            schedule, weight_decay=preset.weight_decay, beta_1=preset.beta_1), settings.policy)

    model.compile(g_optimizer=optimizer(), d_optimizer=optimizer())
    return model


def _log_callbacks(networks, mri, ct, logdir, settings, start):
    """TensorBoard scalars and sample grids every `settings.log_every` steps."""
    if not settings.log_every:
        return []
    board = os.path.join(logdir, "tensorboard")
    return [
        keras.callbacks.TensorBoard(board, update_freq=settings.log_every, write_graph=False),
        SampleGridCallback(networks, _grid_samples(mri, networks), _grid_samples(ct, networks),
                           settings.log_every, os.path.join(logdir, "samples"), board, start),
    ]


def _grid_samples(images, networks):
    channels = networks["g_target"].input_shape[-1]
    chosen = images[:: max(1, len(images) // SAMPLES_IN_GRID)][:SAMPLES_IN_GRID]
    return chosen.repeat(channels, axis=-1)

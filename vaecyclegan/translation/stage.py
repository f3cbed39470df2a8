"""The translation stage of a run: `VAECycleGAN.fit` under a `tf.distribute`
strategy and a precision policy, with CycleGAN's learning-rate decay,
checkpoints every N steps and on SIGTERM/SIGINT, resume, TensorBoard
scalars and sample grids, the best checkpoint, and a stop on a non-finite
loss. On Keras' JAX backend the same stage runs `jax_trainer.JaxVAECycleGAN`
on `array_batches` under a `JaxStrategy`, with the same optimisers and
callbacks but no TensorBoard scalars, and imports no TensorFlow; on
PyTorch, `VAECycleGAN` itself runs eagerly on `array_batches` (one device,
no TensorBoard scalars, no TensorFlow)."""

import os

import keras

from vaecyclegan.training.distribution import on_jax, on_tensorflow, wrap_optimizer
from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
from vaecyclegan.training.presets import lr_decay_start
from vaecyclegan.training.stage_runner import Stage, run_stage
from vaecyclegan.training.tensorboard_scalars import stage_tensorboard
from vaecyclegan.translation.sample_grid_callback import SampleGridCallback

SAMPLES_IN_GRID = 4


def build_trainer(networks, preset, settings):
    """The compiled `VAECycleGAN`, in the strategy's scope."""
    with settings.strategy.scope():
        return _trainer(networks, preset, settings)


def train_translation(networks, preset, mri, ct, logdir, seed, settings, best_callback=None):
    """Trains the four translation networks.

    Args:
        networks: the project networks by name, built in the strategy's scope.
        preset: the run's `TrainingPreset`, the settings' overrides
            applied: steps, batch size, image size, augmentation, the
            optimiser's rate and decay, the loss weights and the pool.
        mri, ct: training slices (n, size, size, 1) in [-1, 1].
        logdir: the run folder (checkpoint, losses, TensorBoard, samples).
        seed: seeds the batches' shuffling, crops and augmented views (a
            resumed run adds the step it resumes from, for new batches).
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
        make_dataset=lambda offset: _batches(mri, ct, preset.batch_size, channels,
                                             seed + offset, preset.image_size,
                                             preset.augmentation))
    best = None

    def callbacks(start, extra):
        nonlocal best
        best = best_callback(extra.get("best")) if best_callback else None
        return ([best] if best else []) + _log_callbacks(networks, mri, ct, logdir, settings, start,
                                                           preset.generator.stride)

    progress = run_stage(lambda: _trainer(networks, preset, settings), stage, logdir,
                         settings, callbacks,
                         extra_state=lambda: {"best": best.state() if best else None})
    return progress, best


def _batches(*args):
    """tf.data batches on TensorFlow; numpy ones on JAX and PyTorch
    (`array_batches`)."""
    if not on_tensorflow():
        from vaecyclegan.translation.array_batches import unpaired_batches

        return unpaired_batches(*args)
    from vaecyclegan.translation.dataset import make_unpaired_dataset

    return make_unpaired_dataset(*args)


def _trainer(networks, preset, settings):
    """The compiled `VAECycleGAN` (TensorFlow, PyTorch), or on JAX the
    `JaxVAECycleGAN`."""
    if not on_jax():
        return _compiled_trainer(networks, preset, settings)
    from vaecyclegan.translation.jax_trainer import JaxVAECycleGAN

    return JaxVAECycleGAN(
        networks["g_target"], networks["g_source"], networks["d_source"],
        networks["d_target"], _optimizer(preset, settings), _optimizer(preset, settings),
        lambda_cycle=preset.lambda_cycle, lambda_identity=preset.lambda_identity,
        kl_weight=preset.kl_weight, lambda_structure=preset.lambda_structure,
        lambda_nce=preset.lambda_nce, pool_size=preset.pool_size, image_size=preset.image_size,
        seed=settings.seed, strategy=settings.strategy)


def _optimizer(preset, settings):
    """AdamW on CycleGAN's schedule, loss-scaled under mixed_float16."""
    schedule = ConstantThenLinearDecay(
        preset.lr, lr_decay_start(preset.steps, settings.decay_start), preset.steps)
    return wrap_optimizer(keras.optimizers.AdamW(
        schedule, weight_decay=preset.weight_decay, beta_1=preset.beta_1), settings.policy)


def _compiled_trainer(networks, preset, settings):
    from vaecyclegan.translation.trainer import VAECycleGAN

    model = VAECycleGAN(
        networks["g_target"], networks["g_source"], networks["d_source"],
        networks["d_target"], lambda_cycle=preset.lambda_cycle,
        lambda_identity=preset.lambda_identity, kl_weight=preset.kl_weight,
        pool_size=preset.pool_size, image_size=preset.image_size, seed=settings.seed,
        lambda_structure=preset.lambda_structure, lambda_nce=preset.lambda_nce,
    )
    model.compile(g_optimizer=_optimizer(preset, settings),
                  d_optimizer=_optimizer(preset, settings))
    return model


def _log_callbacks(networks, mri, ct, logdir, settings, start, stride):
    """TensorBoard scalars and sample grids every `settings.log_every` steps."""
    if not settings.log_every:
        return []
    # TensorBoard's writer is TensorFlow's: on JAX and PyTorch, the grids'
    # PNGs only.
    board = os.path.join(logdir, "tensorboard") if on_tensorflow() else None
    grids = SampleGridCallback(networks, _grid_samples(mri, networks, stride),
                               _grid_samples(ct, networks, stride), settings.log_every,
                               os.path.join(logdir, "samples"), board, start)
    return [*stage_tensorboard(logdir, "tensorboard", start, settings.log_every), grids]


def _grid_samples(images, networks, stride):
    """A few whole training slices, centre-cropped to a multiple of the
    generator's `stride`: with `--crop-factor` the slices keep a side of
    their own (training crops them), which the U-Net's skips cannot join
    unless it divides by the stride."""
    channels = networks["g_target"].input_shape[-1]
    chosen = images[:: max(1, len(images) // SAMPLES_IN_GRID)][:SAMPLES_IN_GRID]
    height, width = chosen.shape[1:3]
    top, left = height % stride // 2, width % stride // 2
    chosen = chosen[:, top:top + height - height % stride, left:left + width - width % stride]
    return chosen.repeat(channels, axis=-1)

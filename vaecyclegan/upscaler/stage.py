"""The upscaler stage of a run: RRDB-Net with L1 loss (ESRGAN's
PSNR-oriented stage), then, for `preset.sr_gan_steps`, ESRGAN's adversarial
stage; each resumable, under the run's strategy and precision. On Keras'
JAX backend the stages run `jax_trainers`, on PyTorch the same trainers
as on TensorFlow, eagerly (on both the batches still come from tf.data,
so TensorFlow must be importable there for this stage)."""

import dataclasses
import logging
import os

import keras

from vaecyclegan.training.checkpoint import checkpoint_path
from vaecyclegan.training.distribution import on_jax, wrap_optimizer
from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
from vaecyclegan.training.stage_runner import Stage, run_stage
from vaecyclegan.training.tensorboard_scalars import stage_tensorboard
from vaecyclegan.upscaler.vgg_perceptual_loss import (
    VGG19_NOTOP_FILE,
    build_vgg_feature_extractor,
    find_vgg19_weights,
)
from vaecyclegan.upscaler.vgg_style_discriminator import build_vgg_style_discriminator

# ESRGAN's L1 weight in the adversarial stage (both backends' trainers);
# here, so that importing this stage on JAX imports no TensorFlow.
ESRGAN_PIXEL_WEIGHT = 1e-2


def train_upscaler(rrdbnet, preset, make_dataset, logdir, settings, vgg_weights=None):
    """Trains RRDB-Net: `preset.sr_steps` L1 steps (Adam `preset.sr_lr`,
    constant for half the steps, then decaying linearly to zero), then
    `preset.sr_gan_steps` adversarial ones.

    Each stage has its checkpoint in the run folder (`upscaler.npz`,
    `upscaler_gan.npz`) and resumes from it as the translation stage does.

    Args:
        rrdbnet: the upscaler, built in the strategy's scope.
        preset: the run's `TrainingPreset`, the settings' overrides
            applied: its `sr_*` fields (steps, rates, batch size, patch
            side, discriminator width).
        make_dataset: `seed_offset -> tf.data.Dataset` of `(low, high)`
            batches in [0, 1].
        logdir: the run folder (checkpoints, loss logs).
        settings: a `StageSettings`; `settings.resume` True requires the
            L1 stage's checkpoint.
        vgg_weights: VGG19 "notop" weights file for the perceptual loss
            (None: Keras' cache, else no perceptual loss).

    Returns:
        `(progress, gan_progress)`: the stages' `ProgressCallback`s (the
        second None without an adversarial stage).

    Raises:
        TrainingStopped: a signal arrived (checkpoint saved) or a loss
            became non-finite.
    """
    def l1_trainer():
        # Half the steps at the full rate, then a linear decay to zero (the
        # translation stage's rule): the last steps refine instead of jumping.
        schedule = ConstantThenLinearDecay(preset.sr_lr, preset.sr_steps // 2, preset.sr_steps)
        optimizer = wrap_optimizer(keras.optimizers.Adam(schedule), settings.policy)
        if on_jax():
            from vaecyclegan.upscaler.jax_trainers import JaxL1Upscaler

            return JaxL1Upscaler(rrdbnet, optimizer, settings.strategy)
        from vaecyclegan.upscaler.l1_trainer import L1UpscalerTrainer

        trainer = L1UpscalerTrainer(rrdbnet)
        trainer.compile(optimizer=optimizer)
        return trainer

    stage = Stage("upscaler", preset.sr_steps, images_per_step=preset.sr_batch_size,
                  losses_csv="sr_losses.csv", description="upscale", make_dataset=make_dataset)
    progress = run_stage(l1_trainer, stage, logdir, settings,
                         _scalars(logdir, settings, "upscaler"))
    if preset.sr_gan_steps <= 0:
        return progress, None
    later = settings.later_stage()
    gan_checkpoint = checkpoint_path(logdir, "upscaler_gan")
    if progress.initial_step < preset.sr_steps and os.path.isfile(gan_checkpoint) and (
            later.resume is not False):
        # The adversarial checkpoint went on from the L1 weights before
        # these steps; resumed, it would put them back and drop these.
        logging.getLogger(__name__).warning(
            f"the L1 stage went on from step {progress.initial_step} to {preset.sr_steps}: the "
            f"adversarial stage starts again from its weights ({gan_checkpoint}, made from "
            "the earlier ones, is not resumed)")
        later = dataclasses.replace(later, resume=False)
    return progress, _train_adversarial(rrdbnet, preset, make_dataset, logdir, later,
                                        vgg_weights)


def _train_adversarial(rrdbnet, preset, make_dataset, logdir, settings, vgg_weights):
    """ESRGAN's adversarial stage, on batches drawn after the L1 stage's."""
    weights = find_vgg19_weights(vgg_weights)
    # ESRGAN's L1 weight (1e-2) leans on the perceptual loss to keep the
    # content; without it the GAN term takes over (measured: PSNR 24.5 ->
    # 13.9 dB in 500 steps on the phantom), so L1 keeps full weight then.
    pixel_weight = ESRGAN_PIXEL_WEIGHT if weights else 1.0
    if weights is None:
        logging.getLogger(__name__).info(
            "Upscaler adversarial stage without perceptual loss: no VGG19 weights "
            f"(pass --vgg-weights FILE, or put {VGG19_NOTOP_FILE} in ~/.keras/models); "
            "L1 weight 1 instead of ESRGAN's 1e-2")
    channels = rrdbnet.input_shape[-1]

    def gan_trainer():
        discriminator = build_vgg_style_discriminator(preset.sr_patch, preset.sr_disc_feat,
                                                      channels)
        features = build_vgg_feature_extractor(weights) if weights else None
        if on_jax():
            from vaecyclegan.upscaler.jax_trainers import JaxRelativisticSRGAN

            return JaxRelativisticSRGAN(
                rrdbnet, discriminator, _gan_optimizer(preset, settings),
                _gan_optimizer(preset, settings), features, pixel_weight=pixel_weight,
                strategy=settings.strategy)
        from vaecyclegan.upscaler.adversarial_trainer import RelativisticSRGAN

        gan = RelativisticSRGAN(rrdbnet, discriminator, features, pixel_weight=pixel_weight)
        gan.compile(g_optimizer=_gan_optimizer(preset, settings),
                    d_optimizer=_gan_optimizer(preset, settings))
        return gan

    stage = Stage("upscaler_gan", preset.sr_gan_steps, images_per_step=preset.sr_batch_size,
                  losses_csv="sr_gan_losses.csv", description="upscale GAN",
                  shown=["g_loss", "d_loss", "pixel"],
                  make_dataset=lambda offset: make_dataset(preset.sr_steps + offset))
    return run_stage(gan_trainer, stage, logdir, settings,
                     _scalars(logdir, settings, "upscaler_gan"))


def _scalars(logdir, settings, name):
    """The stage's losses in TensorBoard, under `<logdir>/tensorboard/<name>`."""
    return lambda start, extra: stage_tensorboard(
        os.path.join(logdir, "tensorboard"), name, start, settings.log_every)


def _gan_optimizer(preset, settings):
    return wrap_optimizer(keras.optimizers.Adam(preset.sr_gan_lr, beta_1=0.9, beta_2=0.99),
                          settings.policy)

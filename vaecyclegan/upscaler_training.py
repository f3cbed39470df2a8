"""The upscaler stage of a run: RRDB-Net with L1 loss (ESRGAN's
PSNR-oriented stage), then, for `preset.sr_gan_steps`, ESRGAN's adversarial
stage; each resumable, under the run's strategy and precision."""

import os

import keras

from vaecyclegan.distribution import wrap_optimizer
from vaecyclegan.l1_upscaler_trainer import L1UpscalerTrainer
from vaecyclegan.progress_callback import ProgressCallback
from vaecyclegan.relativistic_sr_gan import ESRGAN_PIXEL_WEIGHT, RelativisticSRGAN
from vaecyclegan.resumable_fit import resumable_fit, resume_from_checkpoint
from vaecyclegan.training_checkpoint import checkpoint_path
from vaecyclegan.vgg_perceptual_loss import (
    VGG19_NOTOP_FILE, build_vgg_feature_extractor, find_vgg19_weights,
)
from vaecyclegan.vgg_style_discriminator import build_vgg_style_discriminator


def train_upscaler(rrdbnet, preset, make_dataset, logdir, settings, vgg_weights=None):
    """Trains RRDB-Net: `preset.sr_steps` L1 steps (Adam `preset.sr_lr`),
    then `preset.sr_gan_steps` adversarial ones.

    Each stage has its checkpoint in the run folder (`upscaler.npz`,
    `upscaler_gan.npz`) and resumes from it as the translation stage does.

    Args:
        rrdbnet: the upscaler, built in the strategy's scope.
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
    with settings.strategy.scope():
        trainer = L1UpscalerTrainer(rrdbnet)
        trainer.compile(optimizer=wrap_optimizer(keras.optimizers.Adam(preset.sr_lr),
                                                 settings.policy))
    path = checkpoint_path(logdir, "upscaler")
    start, _ = resume_from_checkpoint(trainer, path, preset.sr_steps, settings)
    progress = ProgressCallback(
        preset.sr_steps, images_per_step=preset.sr_batch_size,
        csv_path=os.path.join(logdir, "sr_losses.csv"), description="upscale",
        initial_step=start,
    )
    resumable_fit(trainer, make_dataset, preset.sr_steps, start, path, settings, progress)
    if preset.sr_gan_steps <= 0:
        return progress, None

    weights = find_vgg19_weights(vgg_weights)
    # ESRGAN's L1 weight (1e-2) leans on the perceptual loss to keep the
    # content; without it the GAN term takes over (measured: PSNR 24.5 ->
    # 13.9 dB in 500 steps on the phantom), so L1 keeps full weight then.
    pixel_weight = ESRGAN_PIXEL_WEIGHT if weights else 1.0
    if weights is None:
        print("Upscaler adversarial stage without perceptual loss: no VGG19 weights "
              f"(pass --vgg-weights FILE, or put {VGG19_NOTOP_FILE} in ~/.keras/models); "
              "L1 weight 1 instead of ESRGAN's 1e-2", flush=True)
    channels = rrdbnet.input_shape[-1]
    with settings.strategy.scope():
        gan = RelativisticSRGAN(
            rrdbnet,
            build_vgg_style_discriminator(preset.sr_patch, preset.sr_disc_feat, channels),
            build_vgg_feature_extractor(weights) if weights else None, pixel_weight=pixel_weight)

        def optimizer():
            return wrap_optimizer(
                keras.optimizers.Adam(preset.sr_gan_lr, beta_1=0.9, beta_2=0.99), settings.policy)

        gan.compile(g_optimizer=optimizer(), d_optimizer=optimizer())
    path = checkpoint_path(logdir, "upscaler_gan")
    start, _ = resume_from_checkpoint(gan, path, preset.sr_gan_steps, settings.later_stage())
    gan_progress = ProgressCallback(
        preset.sr_gan_steps, images_per_step=preset.sr_batch_size,
        csv_path=os.path.join(logdir, "sr_gan_losses.csv"),
        shown=["g_loss", "d_loss", "pixel"], description="upscale GAN", initial_step=start,
    )
    resumable_fit(gan, lambda offset: make_dataset(preset.sr_steps + offset), preset.sr_gan_steps,
                  start, path, settings, gan_progress)
    return progress, gan_progress

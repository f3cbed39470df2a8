"""Training presets: `smoke` (tests), `quick` (a bare `python train.py`), `paper`.

`paper` is the original recipe: 256x256x3, 4 images per domain doubled to 8
by augmentation, AdamW with lr 1e-4 and weight decay 6e-8, 50,000 steps.
On a 2-core CPU a step of it takes minutes, so `quick` trains a narrower
network on 64x64 slices, with a higher learning rate, in about a quarter
of an hour; its width, skips, augmentation and structure loss were chosen
on realistic 256-px head slices (README, "On realistic heads"); it does not
reproduce the paper.
Its upscaler (a 0.58 M-parameter RRDB-Net, 4,000 L1 steps, a few minutes)
beats bicubic upsampling by 2.6 dB PSNR on realistic 256-px head slices.
"""

import dataclasses

from vaecyclegan.config import DiscriminatorConfig, GeneratorConfig, RRDBNetConfig


@dataclasses.dataclass
class TrainingPreset:
    """One preset: architecture sizes and training settings.

    Args:
        image_size: side of the training images (the phantom is rendered at
            this size).
        crop_factor: None trains on whole slices resized to `image_size`;
            a number F trains on `image_size` crops of the slices shrunk F
            times (1: native resolution).
        generator, discriminator, rrdbnet: architecture configs.
        steps: translation training steps.
        batch_size: images loaded per domain and step (doubled by
            augmentation).
        augmentation: the augmented view's geometry: "affine" (flip,
            rotation, shift, zoom) or "flips" (`names.AUGMENTATIONS`).
        lr, weight_decay, beta_1: AdamW settings of both optimisers.
        lambda_cycle, lambda_identity, kl_weight: loss weights.
        lambda_structure: weight of the MIND structure loss between each
            generator's input and output (0: none).
        lambda_nce: weight of CUT's contrastive patch loss between each
            generator's input and output (0: none).
        sr_steps, sr_batch_size, sr_patch, sr_lr: RRDB-Net training (L1,
            bicubic degradation; `sr_patch` is the high-resolution crop).
        sr_gan_steps, sr_gan_lr, sr_disc_feat: ESRGAN's adversarial stage
            after the L1 one (0 steps: none), and its discriminator's width.
        phantom_train, phantom_test: phantom images per training domain, and
            test pairs.
        eval_every: steps between evaluations on the test pairs that keep
            the best weights (0: none).
        checkpoint_every: steps between checkpoints of the translation
            stage (0: only on SIGTERM/SIGINT).
        pool_size: translated images each discriminator's history pool
            keeps (CycleGAN's 50; 0: none).
    """

    image_size: int
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    rrdbnet: RRDBNetConfig
    steps: int
    crop_factor: float = None
    batch_size: int = 4
    augmentation: str = "affine"
    lr: float = 1e-4
    weight_decay: float = 6e-8
    beta_1: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    kl_weight: float = 1e-3
    lambda_structure: float = 0.0
    lambda_nce: float = 0.0
    sr_steps: int = 1000
    sr_batch_size: int = 8
    sr_patch: int = 64
    sr_lr: float = 2e-4
    sr_gan_steps: int = 0
    sr_gan_lr: float = 1e-4
    sr_disc_feat: int = 64
    phantom_train: int = 200
    phantom_test: int = 24
    eval_every: int = 0
    checkpoint_every: int = 500
    pool_size: int = 50


def lr_decay_start(steps, given=None):
    """The step the learning rate starts its linear decay to zero at:
    `given`, or CycleGAN's half of the `steps`."""
    return steps // 2 if given is None else given


PRESETS = {
    "smoke": TrainingPreset(
        image_size=32,
        generator=GeneratorConfig(
            filters=8, max_filters=32, num_downsamples=2, num_res_blocks=2,
            latent_channels=8, norm_groups=4,
        ),
        discriminator=DiscriminatorConfig(filters=8, max_filters=32, num_layers=2, norm_groups=4),
        rrdbnet=RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4),
        steps=4,
        batch_size=2,
        lr=2e-4,
        sr_steps=2,
        sr_batch_size=2,
        sr_patch=32,
        sr_gan_steps=2,
        sr_disc_feat=8,
        phantom_train=8,
        phantom_test=4,
        eval_every=2,
    ),
    "quick": TrainingPreset(
        image_size=64,
        # No skip at the 64- and 32-px levels, only at 16 px: over the plain
        # U-Net (both 16 filters wide) on the realistic development sets,
        # +0.8 dB PSNR and +0.012 SSIM on the brain-window one (seed 1,
        # both returned bicubically; seed 0 against an RRDB-returned
        # baseline: +1.4 dB there and +0.7 dB on the wide-window one),
        # soft-tissue and bone MAE better; bone
        # Dice unchanged. The finest skips carried MRI intensities to the CT.
        # 32 filters at 64 px, not 16 (so 64 at 32 px and 128 at 16 px; 2.04
        # M parameters a generator, not 1.49 M; on a 2-core CPU 0.46 s a
        # step, not 0.30): on both realistic sets and two seeds ct2mri SSIM
        # +0.03 to +0.09, SSIM and soft-tissue MAE better; bone Dice +0.05
        # and +0.07 on the brain-window set, +0.02 and +0.00 on the
        # wide-window one; PSNR +0.1 to +0.3 dB, within seed noise. Probably
        # because, without the finest skips, the decoder rebuilds the 64-px
        # level from the 16-px one, and 16 channels at 64 px were few for it.
        generator=GeneratorConfig(
            filters=32, max_filters=128, num_downsamples=3, num_res_blocks=4,
            latent_channels=64, norm_groups=8, levels_without_skip=2,
        ),
        # 3 stride-2 layers a scale, not 2: on the wide-window realistic set
        # +0.9 dB PSNR, +0.025 SSIM and 81 HU less soft-tissue MAE; on the
        # brain-window set the same within noise.
        discriminator=DiscriminatorConfig(filters=16, max_filters=128, num_layers=3, norm_groups=8),
        # Measured on the realistic 256-px development set (style a, brain
        # window): 16 features, 2 blocks and 2,000 steps beat bicubic by 0.5
        # dB; 32 features, 3 blocks and 4,000 steps with the decaying rate,
        # on crops that hold edges, by 2.6 dB.
        rrdbnet=RRDBNetConfig(num_feat=32, num_block=3, num_grow_ch=16),
        steps=1200,
        # Flips alone, no rotation, shift or zoom, and the MIND structure
        # loss: with the generator above at 16 filters, bone Dice 0.05 to
        # 0.25 on the brain-window set and 0.66 to 0.73 on the wide-window one, bone MAE
        # and SSIM better on both; ct2mri SSIM 0.02-0.04 lower. Rotated and
        # zoomed CT let a generator change the head's pose, which the other
        # generator undoes; MIND ties each output's structure to its input.
        augmentation="flips",
        lambda_structure=5.0,
        lr=2e-4,
        sr_steps=4000,
        sr_patch=64,
        sr_disc_feat=16,
        eval_every=300,
    ),
    "paper": TrainingPreset(
        image_size=256,
        generator=GeneratorConfig(),
        discriminator=DiscriminatorConfig(),
        rrdbnet=RRDBNetConfig(),
        steps=50_000,
        sr_steps=50_000,
        sr_batch_size=16,
        sr_patch=128,
        sr_gan_steps=50_000,
        eval_every=2500,
    ),
}

"""ESRGAN's adversarial stage: the upscaler against a VGG-style
discriminator with the relativistic average GAN loss.

The discriminator is asked whether a real patch looks more real than the
upscaled ones on average, and the other way round (ESRGAN, eq. 1-2):

    D_Ra(a, b) = sigmoid(C(a) - mean(C(b)))
    L_D = -E[log D_Ra(real, fake)] - E[log(1 - D_Ra(fake, real))]
    L_G = -E[log(1 - D_Ra(real, fake))] - E[log D_Ra(fake, real)]

each halved as in BasicSR. The upscaler's total loss adds L1 to the true
image and, when VGG19 weights are available, the perceptual loss, with
ESRGAN's weights (pixel 1e-2, perceptual 1, GAN 5e-3).
"""

import keras
from keras import ops

from vaecyclegan.training.trainer_base import PrebuiltTrainer
from vaecyclegan.translation.cycle_losses import l1_loss
from vaecyclegan.upscaler.relativistic_loss import relativistic_losses
from vaecyclegan.upscaler.stage import ESRGAN_PIXEL_WEIGHT


class RelativisticSRGAN(PrebuiltTrainer):
    """Trains an upscaler and its discriminator, one update of each per step.

    Args:
        upscaler: the RRDB-Net (`build_rrdbnet`), already L1-trained.
        discriminator: `build_vgg_style_discriminator` for the HR patch size.
        feature_extractor: `build_vgg_feature_extractor`, or None for no
            perceptual loss.
        pixel_weight, perceptual_weight, gan_weight: ESRGAN's loss weights.

    Example:
    >>> from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset
    >>> from vaecyclegan.upscaler.vgg_style_discriminator import build_vgg_style_discriminator
    >>> gan = RelativisticSRGAN(rrdbnet, build_vgg_style_discriminator(32, 8))
    >>> gan.compile(g_optimizer=keras.optimizers.Adam(1e-4, 0.9, 0.99),
    ...             d_optimizer=keras.optimizers.Adam(1e-4, 0.9, 0.99))
    >>> dataset = make_sr_dataset(mri, patch=32, scale=4, batch_size=2)
    >>> history = gan.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['d_fake', 'd_loss', 'd_real', 'g_loss', 'gan', 'perceptual', 'pixel']
    """

    def __init__(self, upscaler, discriminator, feature_extractor=None,
                 pixel_weight=ESRGAN_PIXEL_WEIGHT,
                 perceptual_weight=1.0, gan_weight=5e-3, **kwargs):
        super().__init__(**kwargs)
        self.upscaler = upscaler
        self.discriminator = discriminator
        self.feature_extractor = feature_extractor
        self.pixel_weight = pixel_weight
        self.perceptual_weight = perceptual_weight
        self.gan_weight = gan_weight

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.upscaler.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def checkpoint_variables(self):
        """Everything training needs to continue, in a fixed order: both
        networks' variables and both optimisers'."""
        return (self.upscaler.variables + self.discriminator.variables
                + list(self.g_optimizer.variables) + list(self.d_optimizer.variables))

    def call(self, inputs, training=False):
        return self.upscaler(inputs, training=training)

    def train_step(self, data):
        low, high, _ = keras.utils.unpack_x_y_sample_weight(data)
        g_loss, (upscaled, terms) = self.minimize(
            self.g_optimizer, self.upscaler.trainable_variables,
            lambda: self._upscaler_loss(low, high))
        upscaled = ops.stop_gradient(upscaled)
        d_loss, (real, fake) = self.minimize(
            self.d_optimizer, self.discriminator.trainable_variables,
            lambda: self._discriminator_loss(high, upscaled))
        return self.logs({"g_loss": g_loss, "d_loss": d_loss, **terms,
                          "d_real": ops.mean(ops.sigmoid(real)),
                          "d_fake": ops.mean(ops.sigmoid(fake))})

    def _upscaler_loss(self, low, high):
        """ESRGAN's generator loss, the upscaled batch and the loss terms."""
        upscaled = self.upscaler(low, training=True)
        pixel = l1_loss(upscaled, high)
        perceptual = ops.convert_to_tensor(0.0)
        if self.feature_extractor is not None:
            # In float32: under mixed precision VGG19's features are
            # bfloat16/float16, the other terms float32.
            perceptual = l1_loss(self.feature_extractor(upscaled), self.feature_extractor(high))
        _, gan = relativistic_losses(self.discriminator(high, training=True),
                                     self.discriminator(upscaled, training=True))
        g_loss = (self.pixel_weight * pixel + self.perceptual_weight * perceptual
                  + self.gan_weight * gan)
        return g_loss, (upscaled, {"pixel": pixel, "perceptual": perceptual, "gan": gan})

    def _discriminator_loss(self, high, upscaled):
        """The relativistic discriminator loss and its logits."""
        real = self.discriminator(high, training=True)
        fake = self.discriminator(upscaled, training=True)
        d_loss, _ = relativistic_losses(real, fake)
        return d_loss, (real, fake)

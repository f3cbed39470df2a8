"""The upscaler's two training stages on Keras' JAX backend, stateless as
`translation.jax_trainer`: `JaxL1Upscaler` (`L1UpscalerTrainer`'s step) and
`JaxRelativisticSRGAN` (`RelativisticSRGAN`'s: the upscaler on L1, the
perceptual loss and the relativistic average GAN loss, then the
discriminator on the upscaled images of the same step). Same losses,
weights, optimiser states and checkpoint layout as the TensorFlow trainers;
the losses in `keras.ops`, so nothing here imports TensorFlow."""

import jax
from keras import ops

from vaecyclegan.training.jax_loop import StatelessTrainer, loss_scale
from vaecyclegan.translation.cycle_losses import l1_loss
from vaecyclegan.translation.jax_trainer import apply_gradients
from vaecyclegan.upscaler.relativistic_loss import relativistic_losses


class JaxL1Upscaler(StatelessTrainer):
    """ESRGAN's PSNR-oriented stage: L1 to the true image (logs `loss`).

    Args:
        upscaler: the RRDB-Net (`build_rrdbnet`).
        optimizer: its optimiser (built here); a `LossScaleOptimizer`
            under mixed_float16.
        strategy: a `JaxStrategy` (None: one device).

    Example:
    >>> import keras
    >>> import numpy as np
    >>> trainer = JaxL1Upscaler(rrdbnet, keras.optimizers.Adam(2e-4))
    >>> low = np.zeros((2, 8, 8, 3), np.float32)  # in [0, 1]
    >>> high = np.zeros((2, 32, 32, 3), np.float32)  # 4 times the side
    >>> logs = trainer.train_step((low, high))
    >>> list(logs)
    ['loss']
    """

    def __init__(self, upscaler, optimizer, strategy=None):
        super().__init__(strategy)
        self.networks = {"upscaler": upscaler}
        self.optimizer = optimizer
        self.optimizers = {"optimizer": optimizer}
        optimizer.build(upscaler.trainable_variables)

    def stateless_train_step(self, state, batch):
        low, high = batch
        upscaler = self.networks["upscaler"]

        def loss_fn(params, non_trainable):
            params = params["upscaler"]
            upscaled, non_trainable = upscaler.stateless_call(params, non_trainable, low,
                                                              training=True)
            loss = l1_loss(upscaled, high)
            return loss_scale(self.optimizer, state["optimizer"], loss), (loss, non_trainable)

        (_, (loss, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            {"upscaler": state["trainable"]["upscaler"]}, state["non_trainable"]["upscaler"])
        values, optimizer_state = apply_gradients(self.optimizer, state["optimizer"],
                                                  ("upscaler",), grads, state["trainable"])
        return {"loss": loss}, {**state, "trainable": values, "optimizer": optimizer_state,
                                "non_trainable": {"upscaler": non_trainable}}


class JaxRelativisticSRGAN(StatelessTrainer):
    """ESRGAN's adversarial stage, one update of each network per step.

    Args:
        upscaler, discriminator, feature_extractor, pixel_weight,
            perceptual_weight, gan_weight: as `RelativisticSRGAN`.
        g_optimizer, d_optimizer: their optimisers (built here).
        strategy: a `JaxStrategy` (None: one device).
    """

    def __init__(self, upscaler, discriminator, g_optimizer, d_optimizer,
                 feature_extractor=None, pixel_weight=1e-2, perceptual_weight=1.0,
                 gan_weight=5e-3, strategy=None):
        super().__init__(strategy)
        self.networks = {"upscaler": upscaler, "discriminator": discriminator}
        self.frozen = {"vgg": feature_extractor} if feature_extractor is not None else {}
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.optimizers = {"g_optimizer": g_optimizer, "d_optimizer": d_optimizer}
        self.pixel_weight = pixel_weight
        self.perceptual_weight = perceptual_weight
        self.gan_weight = gan_weight
        g_optimizer.build(upscaler.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)

    def _run(self, name, params, non_trainable, x):
        outputs, non_trainable[name] = self.networks[name].stateless_call(
            params, non_trainable[name], x, training=True)
        return outputs

    def _features(self, state, x):
        trainable, non_trainable = state["frozen"]["vgg"]
        return self.frozen["vgg"].stateless_call(trainable, non_trainable, x)[0]

    # long: the generator's and the discriminator's updates in one traced
    # function, in the order of RelativisticSRGAN.train_step.
    def stateless_train_step(self, state, batch):
        low, high = batch[0], batch[1]
        trainable = state["trainable"]

        def generator_loss(params, non_trainable):
            non_trainable = dict(non_trainable)
            upscaled = self._run("upscaler", params["upscaler"], non_trainable, low)
            pixel = l1_loss(upscaled, high)
            perceptual = ops.convert_to_tensor(0.0)
            if self.frozen:
                perceptual = l1_loss(self._features(state, upscaled), self._features(state, high))
            _, gan = relativistic_losses(
                self._run("discriminator", trainable["discriminator"], non_trainable, high),
                self._run("discriminator", trainable["discriminator"], non_trainable, upscaled))
            g_loss = (self.pixel_weight * pixel + self.perceptual_weight * perceptual
                      + self.gan_weight * gan)
            logs = {"g_loss": g_loss, "pixel": pixel, "perceptual": perceptual, "gan": gan}
            scaled = loss_scale(self.g_optimizer, state["g_optimizer"], g_loss)
            return scaled, (logs, upscaled, non_trainable)

        (_, (logs, upscaled, non_trainable)), g_grads = jax.value_and_grad(
            generator_loss, has_aux=True)({"upscaler": trainable["upscaler"]},
                                          state["non_trainable"])
        upscaled = jax.lax.stop_gradient(upscaled)

        def discriminator_loss(params, non_trainable):
            non_trainable = dict(non_trainable)
            real = self._run("discriminator", params["discriminator"], non_trainable, high)
            fake = self._run("discriminator", params["discriminator"], non_trainable, upscaled)
            d_loss, _ = relativistic_losses(real, fake)
            scaled = loss_scale(self.d_optimizer, state["d_optimizer"], d_loss)
            return scaled, (d_loss, real, fake, non_trainable)

        (_, (d_loss, real, fake, non_trainable)), d_grads = jax.value_and_grad(
            discriminator_loss, has_aux=True)({"discriminator": trainable["discriminator"]},
                                              non_trainable)
        g_values, g_state = apply_gradients(self.g_optimizer, state["g_optimizer"],
                                            ("upscaler",), g_grads, trainable)
        d_values, d_state = apply_gradients(self.d_optimizer, state["d_optimizer"],
                                            ("discriminator",), d_grads, trainable)
        logs.update({"d_loss": d_loss, "d_real": ops.mean(ops.sigmoid(real)),
                     "d_fake": ops.mean(ops.sigmoid(fake))})
        order = ("g_loss", "d_loss", "pixel", "perceptual", "gan", "d_real", "d_fake")
        return {key: logs[key] for key in order}, {
            **state, "trainable": {**g_values, **d_values}, "non_trainable": non_trainable,
            "g_optimizer": g_state, "d_optimizer": d_state}

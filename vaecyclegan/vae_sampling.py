"""The VAE bottleneck's reparameterisation layer."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vaecyclegan")
class VAESampling(keras.layers.Layer):
    """Draws `z = mu + exp(logvar / 2) * eps` and records the KL term.

    At inference (`training=False`) it returns `mu`, so translation is
    deterministic; with `training=True` it samples with its own seeded
    `keras.random.SeedGenerator`. Calling the model with `training=True` is
    also how inference asks for latent samples: no other layer of the
    generator behaves differently in training.

    The KL divergence to N(0, I), averaged over every latent element, is
    added with `add_loss`, so it appears in `model.losses` after each call.
    It is kept in float32 under mixed precision.

    Args:
        seed: seed of the sampler's random stream.

    Example:
    >>> mu, logvar = keras.ops.zeros((1, 4, 4, 8)), keras.ops.zeros((1, 4, 4, 8))
    >>> z = VAESampling(seed=1, name="latent_sample")([mu, logvar])
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        mu, logvar = inputs
        mu32 = ops.cast(mu, "float32")
        # Clipped so that exp() cannot overflow early in training.
        logvar32 = ops.clip(ops.cast(logvar, "float32"), -30.0, 20.0)
        kl = -0.5 * ops.mean(1.0 + logvar32 - ops.square(mu32) - ops.exp(logvar32))
        self.add_loss(kl)
        if not training:
            return mu
        eps = keras.random.normal(ops.shape(mu32), seed=self.seed_generator)
        z = mu32 + ops.exp(0.5 * logvar32) * eps
        return ops.cast(z, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}

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
    It is kept in float32 under mixed precision. Under `tf.distribute`
    each replica gets its own slice of the global batch's noise.

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
        eps = self._replica_noise(ops.shape(mu32))
        z = mu32 + ops.exp(0.5 * logvar32) * eps
        return ops.cast(z, self.compute_dtype)

    def _replica_noise(self, shape):
        # Under tf.distribute every replica holds the same seed state, so a
        # plain draw would give every replica the same noise. Each draws the
        # noise of the whole global batch and keeps its own slice: replicas
        # differ, and the global batch gets exactly the noise one device
        # would have drawn for it.
        context = _replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        # float32 whatever floatx is, as mu and logvar are here.
        if replicas == 1:
            return keras.random.normal(shape, dtype="float32", seed=self.seed_generator)
        batch = shape[0]
        noise = keras.random.normal((batch * replicas, *shape[1:]), dtype="float32",
                                    seed=self.seed_generator)
        start = context.replica_id_in_sync_group * batch
        return noise[start:start + batch]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _replica_context():
    """`tf.distribute`'s replica context on the TensorFlow backend; None on
    the others, which have no replicas inside a step."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.distribute.get_replica_context()

"""ESRGAN's PSNR-oriented stage: the upscaler trained on L1 loss alone."""

import tensorflow as tf

from vaecyclegan.training.distribution import replica_loss, step_logs
from vaecyclegan.training.trainer_base import PrebuiltTrainer


class L1UpscalerTrainer(PrebuiltTrainer):
    """Trains an upscaler on the mean absolute error to the true image.

    Under `tf.distribute` the update is the global batch's; under
    mixed_float16 pass the optimiser wrapped in a `LossScaleOptimizer`.
    Logs `loss`, the batch's L1.

    Args:
        upscaler: the RRDB-Net (`build_rrdbnet`).

    Example:
    >>> trainer = L1UpscalerTrainer(rrdbnet)
    >>> trainer.compile(optimizer=keras.optimizers.Adam(2e-4))
    >>> trainer.fit(make_sr_dataset(...), steps_per_epoch=1000, epochs=1)
    """

    def __init__(self, upscaler, **kwargs):
        super().__init__(**kwargs)
        self.upscaler = upscaler

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.upscaler.trainable_variables)

    def checkpoint_variables(self):
        return self.upscaler.variables + list(self.optimizer.variables)

    def call(self, inputs, training=False):
        return self.upscaler(inputs, training=training)

    def train_step(self, data):
        low, high = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(self.upscaler(low, training=True) - high))
            scaled = replica_loss(self.optimizer, loss)
        variables = self.upscaler.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return step_logs({"loss": loss})

"""ESRGAN's PSNR-oriented stage: the upscaler trained on L1 loss alone."""

from keras import ops

from vaecyclegan.training.trainer_base import PrebuiltTrainer


class L1UpscalerTrainer(PrebuiltTrainer):
    """Trains an upscaler on the mean absolute error to the true image.

    Under `tf.distribute` the update is the global batch's; under
    mixed_float16 pass the optimiser wrapped in a `LossScaleOptimizer`.
    Logs `loss`, the batch's L1.

    Args:
        upscaler: the RRDB-Net (`build_rrdbnet`).

    Example:
    >>> import keras
    >>> from vaecyclegan.upscaler.degraded_dataset import make_sr_dataset
    >>> trainer = L1UpscalerTrainer(rrdbnet)
    >>> trainer.compile(optimizer=keras.optimizers.Adam(2e-4))
    >>> dataset = make_sr_dataset(mri, patch=32, scale=4, batch_size=2)
    >>> history = trainer.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
    >>> list(history.history)
    ['loss']
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
        loss, _ = self.minimize(
            self.optimizer, self.upscaler.trainable_variables,
            lambda: (ops.mean(ops.abs(self.upscaler(low, training=True) - high)), None))
        return self.logs({"loss": loss})

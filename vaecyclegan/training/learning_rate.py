"""CycleGAN's learning-rate rule: constant, then linear decay to zero."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vaecyclegan")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial_learning_rate` until `decay_start`, then linearly to zero at
    `total_steps` (CycleGAN: 100 epochs constant, 100 decaying).

    The position is the optimiser's iteration count, which checkpoints keep,
    so a resumed run continues the schedule where it stopped.

    Args:
        initial_learning_rate: the constant phase's rate.
        decay_start: the step decay begins at (`total_steps`: never).
        total_steps: the step the rate reaches zero at.

    Example:
    >>> schedule = ConstantThenLinearDecay(2e-4, decay_start=600, total_steps=1200)
    >>> round(float(schedule(900)), 8)  # half way down
    0.0001
    """

    def __init__(self, initial_learning_rate, decay_start, total_steps):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_start = int(decay_start)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        span = float(max(self.total_steps - self.decay_start, 1))
        fraction = ops.clip((step - self.decay_start) / span, 0.0, 1.0)
        return self.initial_learning_rate * (1.0 - fraction)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_start": self.decay_start, "total_steps": self.total_steps}

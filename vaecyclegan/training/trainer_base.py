"""The base of this project's trainers: a `keras.Model` whose networks and
optimisers are built before `fit`, and whose `train_step` updates them
through `minimize`, on TensorFlow or on PyTorch."""

import keras

from vaecyclegan.torch_parameter_names import TorchParameterNames
from vaecyclegan.training.distribution import on_torch, replica_loss, step_logs


class PrebuiltTrainer(TorchParameterNames, keras.Model):
    """A `keras.Model` with a custom `train_step` over networks that are
    built functional models, and optimisers that `compile` builds.

    Nothing is left for `fit` to build, and its symbolic build is skipped:
    Keras (3.15) traces one at the start of `fit` under a strategy, first
    reducing a distributed batch with `strategy.reduce`, which
    MultiWorkerMirroredStrategy cannot do eagerly. Subclasses build their
    optimisers in `compile` (in the caller's strategy scope, so that a
    checkpoint can be restored before the first step) and list what a
    checkpoint holds in `checkpoint_variables()`.

    A subclass writes its step once, in `keras.ops`, as calls to
    `minimize`: the gradients come from TensorFlow's tape (traced by
    `fit`, under `tf.distribute`) or from `torch.autograd` (eager, one
    device). The JAX backend has its own, stateless trainers
    (`jax_loop.StatelessTrainer`). On PyTorch a trainer registers the
    parameters of the networks it owns as the RRDB-Net does, dots made
    underscores (`TorchParameterNames`).

    Example:
    >>> class Trainer(PrebuiltTrainer):
    ...     def train_step(self, data):
    ...         low, high = data
    ...         loss, _ = self.minimize(self.optimizer, self.upscaler.trainable_variables,
    ...                                 lambda: (l1(self.upscaler(low), high), None))
    ...         return self.logs({"loss": loss})
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return

    @property
    def metrics(self):
        # The step's logs are the only metrics. Keras' own loss tracker,
        # named `loss` and never updated here, would otherwise stand in
        # for a step's `loss` log at the end of `fit` (its History read 0).
        return []

    def checkpoint_variables(self):
        """Every variable training needs to continue, in a fixed order."""
        raise NotImplementedError

    @staticmethod
    def minimize(optimizer, variables, loss_and_outputs):
        """One update of `variables` by `optimizer` down the gradient of a loss.

        Args:
            optimizer: a built Keras optimiser (in its `LossScaleOptimizer`
                under mixed_float16: the loss is scaled, the update unscaled).
            variables: the trainable variables it updates.
            loss_and_outputs: `() -> (loss, outputs)`, run where gradients
                are recorded; `outputs` is whatever the step needs later
                (stop its gradient before another loss uses it).

        Returns:
            `(loss, outputs)`, the loss unscaled.
        """
        if on_torch():
            import torch

            loss, outputs = loss_and_outputs()
            # A variable the loss does not reach (none in these networks)
            # gets None, which the optimiser skips with a warning, as on
            # TensorFlow.
            gradients = torch.autograd.grad(replica_loss(optimizer, loss),
                                            [variable.value for variable in variables],
                                            allow_unused=True)
            with torch.no_grad():
                optimizer.apply(list(gradients), variables)
            return loss, outputs
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, outputs = loss_and_outputs()
            scaled = replica_loss(optimizer, loss)
        optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return loss, outputs

    def logs(self, logs):
        """A step's logs, shaped for the strategy (`distribution.step_logs`);
        their order is kept in `log_keys` (Keras' PyTorch trainer sorts
        them, and the loss logs' columns keep the step's order)."""
        self.log_keys = tuple(logs)
        return step_logs(logs)

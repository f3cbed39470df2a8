"""Training on Keras' JAX backend: what `tf.distribute` and `Model.fit` are
to the TensorFlow trainers, for the stateless ones (`JaxVAECycleGAN`, the
upscaler's `jax_trainers`).

`JaxStrategy` stands where a run's `tf.distribute` strategy stands:
`keras.distribution.DataParallel` over every local device (variables
replicated, each batch split along its first axis), one `scope()` for
building networks and trainers, and `num_replicas_in_sync`.

`StatelessTrainer` is the base of the JAX trainers: a state pytree of
arrays that one `jax.jit` step function maps to the next, and a `fit` that
drives the same Keras callbacks as `Model.fit` (`ProgressCallback`,
`CheckpointCallback`, `BestWeightsCallback`, `SampleGridCallback`), so that
`training.stage_runner.run_stage` runs a JAX stage as it runs a TensorFlow
one. The state is written back into the Keras variables when something
reads them, not after every step: `jax_state_sync()` (which Keras'
`Callback.model` calls on JAX, and which the callbacks that run the
networks call themselves) and the end of `fit`. Writing back is an
assignment per variable (a reference swap, no copy) but some 600 Python
calls for the translators: 43 ms a step on a 2-core CPU, as much as the
step itself of small networks on a GPU.
"""

import keras
import numpy as np

from vaecyclegan.errors import InputError


class JaxStrategy:
    """`keras.distribution.DataParallel` over the local devices, shaped as
    much of a `tf.distribute.Strategy` as a run uses.

    Args:
        devices: the devices it trains on (None: every local device).

    Example:
    >>> from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
    >>> strategy = JaxStrategy()
    >>> with strategy.scope():
    ...     networks = {name: build_network(config, name) for name in TRANSLATION_NETWORKS}
    >>> sorted(networks), strategy.num_replicas_in_sync
    (['d_source', 'd_target', 'g_source', 'g_target'], 1)
    """

    def __init__(self, devices=None):
        self.devices = list(devices or keras.distribution.list_devices())
        self.distribution = keras.distribution.DataParallel(devices=self.devices)
        self.num_replicas_in_sync = len(self.devices)

    def scope(self):
        """Variables created inside are replicated on every device."""
        return self.distribution.scope()

    def label(self):
        kinds = sorted({device.split(":")[0] for device in self.devices})
        return (f"keras.distribution.DataParallel over {len(self.devices)} "
                f"{'/'.join(kinds)} device(s) (JAX)")

    def replicate(self, tree):
        """The arrays of `tree` on every device (one device: as they are)."""
        import jax

        if self.num_replicas_in_sync == 1:
            return tree
        sharding = jax.sharding.NamedSharding(
            self.distribution.device_mesh.backend_mesh, jax.sharding.PartitionSpec())
        return jax.device_put(tree, sharding)

    def distribute(self, batch):
        """`batch` (arrays) split along the first axis over the devices."""
        import jax

        if self.num_replicas_in_sync == 1:
            # As Keras keeps the variables: on the device, outside any mesh
            # (a mesh on the batch alone changes the state's types after
            # the first step, and the step would compile twice).
            return tuple(jax.device_put(np.asarray(array)) for array in batch)
        arrays = []
        for array in batch:
            array = np.asarray(array)
            if array.shape[0] % self.num_replicas_in_sync:
                raise InputError("--batch-size", f"a step's {array.shape[0]} images do not "
                                 f"split over {self.num_replicas_in_sync} devices")
            layout = self.distribution.get_data_layout(array.shape).backend_layout
            arrays.append(jax.make_array_from_process_local_data(layout, array))
        return tuple(arrays)


def loss_scale(optimizer, optimizer_state, loss):
    """`loss` times the optimiser's dynamic loss scale as `optimizer_state`
    holds it (a `LossScaleOptimizer`, mixed_float16), else `loss`."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return loss
    with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, optimizer_state))):
        return optimizer.scale_loss(loss)


def _batches(dataset):
    """A `tf.data.Dataset` as numpy batches, or any iterable as it is."""
    if hasattr(dataset, "as_numpy_iterator"):
        return dataset.as_numpy_iterator()
    return iter(dataset)


class StatelessTrainer:
    """The base of the JAX trainers.

    A subclass builds its optimisers, lists `networks` (name -> model) and
    `optimizers` (state key -> optimiser), and writes
    `stateless_train_step(state, batch) -> (logs, state)`. The state holds
    `trainable` and `non_trainable` (per network, lists of arrays), one
    entry per optimiser, whatever `extra_variables()` adds (Keras
    variables kept by the trainer itself, such as image pools) and, under
    `frozen`, the variables of `frozen` networks (used, never trained,
    neither synced nor checkpointed: a perceptual loss's VGG19).

    Args:
        strategy: a `JaxStrategy` that splits batches over its devices
            (None: one device).
    """

    networks = {}
    optimizers = {}
    frozen = {}

    def __init__(self, strategy=None):
        import jax

        if keras.backend.backend() != "jax":
            raise RuntimeError(f"{type(self).__name__} needs KERAS_BACKEND=jax, not "
                               f"{keras.backend.backend()}"
                               "; use the TensorFlow and PyTorch trainers")
        self.strategy = strategy
        self.state = None
        self.synced = True  # the Keras variables hold `state`
        self.stop_training = False
        self._log_keys = None
        self._step = jax.jit(self._traced_step)

    def extra_variables(self):
        """`{state key: [keras.Variable]}` the trainer keeps beside the
        networks and optimisers (restored and checkpointed with them)."""
        return {}

    def stateless_train_step(self, state, batch):
        raise NotImplementedError

    def _traced_step(self, state, batch):
        logs, new_state = self.stateless_train_step(state, batch)
        # jit returns dicts in sorted key order: the step's own order (the
        # loss logs' columns) is kept from the trace.
        self._log_keys = list(logs)
        return logs, {**new_state, "frozen": state["frozen"]}

    def initial_state(self):
        """The state from the current Keras variables."""
        def values(variables):
            return [v.value for v in variables]

        state = {
            "trainable": {n: values(m.trainable_variables) for n, m in self.networks.items()},
            "non_trainable": {n: values(m.non_trainable_variables)
                              for n, m in self.networks.items()},
        }
        for key, optimizer in self.optimizers.items():
            state[key] = values(optimizer.variables)
        for key, variables in self.extra_variables().items():
            state[key] = values(variables)
        state["frozen"] = {n: (values(m.trainable_variables), values(m.non_trainable_variables))
                           for n, m in self.frozen.items()}
        return self.strategy.replicate(state) if self.strategy is not None else state

    def sync_to_variables(self):
        """Writes the state back into the Keras variables."""
        self.synced = True
        if self.state is None:
            return
        pairs = []
        for name, model in self.networks.items():
            pairs += zip(model.trainable_variables, self.state["trainable"][name])
            pairs += zip(model.non_trainable_variables, self.state["non_trainable"][name])
        for key, optimizer in self.optimizers.items():
            pairs += zip(optimizer.variables, self.state[key])
        for key, variables in self.extra_variables().items():
            pairs += zip(variables, self.state[key])
        for variable, value in pairs:
            variable.assign(value)

    def jax_state_sync(self):
        """The state into the Keras variables, where a step has changed it
        since the last time (what Keras' callbacks call before they read
        `self.model` on JAX)."""
        if not self.synced:
            self.sync_to_variables()

    def checkpoint_variables(self):
        """Everything training needs to continue, in the order of the
        TensorFlow trainer's checkpoint: the networks' variables, the
        optimisers', the trainer's own."""
        self.jax_state_sync()
        variables = []
        for model in self.networks.values():
            variables += model.variables
        for optimizer in self.optimizers.values():
            variables += list(optimizer.variables)
        for extra in self.extra_variables().values():
            variables += extra
        return variables

    def train_step(self, batch):
        """One jitted step on `batch`; returns its logs as floats."""
        import jax.numpy as jnp

        if self.state is None:
            self.state = self.initial_state()
        if self.strategy is not None:
            batch = self.strategy.distribute(batch)
        else:
            batch = tuple(jnp.asarray(x) for x in batch)
        logs, self.state = self._step(self.state, batch)
        self.synced = False
        return {key: float(logs[key]) for key in self._log_keys}

    def fit(self, dataset, steps_per_epoch, epochs=1, verbose=0, shuffle=False, callbacks=()):
        """`Model.fit` for one epoch of `steps_per_epoch` steps: the
        callbacks' `on_train_begin`, `on_train_batch_end` after every step
        (a callback that reads the networks calls `jax_state_sync()` first)
        and `on_train_end` (the state in the Keras variables); a callback
        that sets `stop_training` ends the loop."""
        del epochs, verbose, shuffle  # one epoch, quiet: as the stages call fit
        # The variables may have been restored from a checkpoint.
        self.state = self.initial_state()
        self.synced = True
        self.stop_training = False
        for callback in callbacks:
            callback.set_model(self)
            callback.on_train_begin()
        try:
            batches = _batches(dataset)
            for step in range(steps_per_epoch):
                logs = self.train_step(next(batches))
                for callback in callbacks:
                    callback.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
        finally:
            self.jax_state_sync()
            for callback in callbacks:
                callback.on_train_end()

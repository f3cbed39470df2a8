"""Which `tf.distribute` strategy and which precision a run uses.

`auto` strategy: MirroredStrategy over every GPU when there is more than
one, else the default (one device). `multiworker` reads the cluster from
`TF_CONFIG` (set by the launcher on every machine); `tpu` connects to the
TPU the environment names. Only the chief writes files.

`auto` precision: mixed_float16 on a GPU; on a CPU with bfloat16 vector
instructions (AVX512-BF16 or AMX-BF16), mixed_bfloat16; else float32.

On Keras' JAX backend (`KERAS_BACKEND=jax`) nothing here imports
TensorFlow: the strategy is a `jax_loop.JaxStrategy`
(`keras.distribution.DataParallel` over the local devices: `auto` and
`mirrored` all of them, `default` the first; `multiworker` and `tpu` are
TensorFlow's), and `auto` precision is mixed_bfloat16 on a GPU or TPU (no
loss scale to manage; mixed_float16 works too, with a `LossScaleOptimizer`).

On Keras' PyTorch backend the strategy is a `OneDeviceStrategy` (the
device Keras puts its tensors on: `auto` and `default`; the others are
TensorFlow's or JAX's and refused), and `auto` precision is mixed_bfloat16
on a GPU that has bfloat16 (else mixed_float16) or on a CPU with bfloat16
instructions, else float32.
"""

import contextlib
import json
import os
import tempfile

import keras

from vaecyclegan.errors import InputError

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def make_strategy(name):
    """Creates the strategy `name` (one of `STRATEGIES`).

    Must run before any other TensorFlow work for `multiworker`, which
    configures the collective runtime.
    """
    if on_jax():
        return _jax_strategy(name)
    if on_torch():
        return _torch_strategy(name)
    import tensorflow as tf

    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "mirrored" or (name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def on_jax():
    """Whether Keras runs on JAX (the stateless trainers, no TensorFlow)."""
    return keras.backend.backend() == "jax"


def on_torch():
    """Whether Keras runs on PyTorch (eager steps, torch autograd)."""
    return keras.backend.backend() == "torch"


def on_tensorflow():
    """Whether Keras runs on TensorFlow (tf.data, tf.distribute, TensorBoard)."""
    return keras.backend.backend() == "tensorflow"


class OneDeviceStrategy:
    """The PyTorch backend's strategy: one device, the one Keras puts its
    tensors on, shaped as much of a `tf.distribute.Strategy` as a run uses.

    Example:
    >>> from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
    >>> strategy = OneDeviceStrategy()
    >>> with strategy.scope():
    ...     networks = {name: build_network(config, name) for name in TRANSLATION_NETWORKS}
    >>> sorted(networks), strategy.num_replicas_in_sync
    (['d_source', 'd_target', 'g_source', 'g_target'], 1)
    """

    num_replicas_in_sync = 1

    def scope(self):
        """Nothing to place: variables are created on Keras' device."""
        return contextlib.nullcontext()

    def label(self):
        # Where Keras puts a new tensor (KERAS_TORCH_DEVICE, else a GPU
        # when there is one).
        device = keras.ops.convert_to_tensor(0.0).device
        return f"one device, {device.type} (PyTorch)"


def _torch_strategy(name):
    if name not in ("auto", "default"):
        raise InputError("--strategy", f"{name} is not available on PyTorch, which trains on "
                         "one device; use auto or default")
    return OneDeviceStrategy()


def _jax_strategy(name):
    from vaecyclegan.training.jax_loop import JaxStrategy

    if name in ("multiworker", "tpu"):
        raise InputError("--strategy", f"{name} is a TensorFlow strategy; on JAX use auto "
                         "(keras.distribution.DataParallel over the local devices) or default")
    devices = keras.distribution.list_devices()
    return JaxStrategy(devices[:1] if name == "default" else devices)


def strategy_label(strategy):
    """A readable name for the strategy in use."""
    if hasattr(strategy, "label"):  # a JaxStrategy or a OneDeviceStrategy
        return strategy.label()
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    name = type(strategy).__name__
    return "default (one device)" if name.startswith("_Default") else name


def is_chief(strategy):
    """True unless this process is a non-chief worker of a multi-worker run."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_scratch(path):
    """Where a non-chief worker writes what the chief writes to `path`: a
    private temporary folder, so that no two processes write one file."""
    return tempfile.mkdtemp(prefix=f"vaecyclegan-worker-{os.path.basename(path) or 'out'}-")


def cpu_has_bfloat16():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return any(f" {flag}" in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(name):
    """The Keras dtype policy for `--precision name`."""
    if name != "auto":
        return name
    # On a GPU bfloat16 needs no loss scale to manage, where the GPU computes
    # in it (NVIDIA: compute capability 8, Ampere, and later); older ones
    # only emulate it, slowly, and get float16.
    if on_jax():
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
        capability = str(getattr(device, "compute_capability", "") or "")  # CUDA: "8.0"
        major = capability.split(".")[0]
        if major.isdigit() and int(major) < 8:
            return "mixed_float16"
        return "mixed_bfloat16"
    if on_torch():
        import torch

        if torch.cuda.is_available():
            # including_emulation=True (the default) says yes on any CUDA GPU.
            native = torch.cuda.is_bf16_supported(including_emulation=False)
            return "mixed_bfloat16" if native else "mixed_float16"
        return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


def set_precision(policy):
    """Sets the global Keras dtype policy (before any network is built)."""
    keras.mixed_precision.set_global_policy(policy)
    return policy


def wrap_optimizer(optimizer, policy):
    """Each optimiser gets its own dynamic loss scale under float16."""
    if policy == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def replica_loss(optimizer, loss):
    """What a custom `train_step` differentiates for `optimizer`: this
    replica's mean loss divided by the number of replicas, because
    `apply_gradients` sums gradients across replicas (the update is then the
    global batch's mean whatever the device count), scaled by the
    optimiser's own loss scale under float16 (its `apply_gradients`
    unscales). Off TensorFlow there are no replicas inside a step."""
    if not on_tensorflow():
        return optimizer.scale_loss(loss)
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return optimizer.scale_loss(loss / replicas)


def step_logs(logs):
    """A custom `train_step`'s logs, shaped for Keras' reduction across
    replicas: a multi-worker run averages step outputs along axis 0."""
    if not on_tensorflow():
        return logs
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):
        return {key: keras.ops.reshape(value, (1,)) for key, value in logs.items()}
    return logs

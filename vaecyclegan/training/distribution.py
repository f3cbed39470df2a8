"""Which `tf.distribute` strategy and which precision a run uses.

`auto` strategy: MirroredStrategy over every GPU when there is more than
one, else the default (one device). `multiworker` reads the cluster from
`TF_CONFIG` (set by the launcher on every machine); `tpu` connects to the
TPU the environment names. Only the chief writes files.

`auto` precision: mixed_float16 on a GPU; on a CPU with bfloat16 vector
instructions (AVX512-BF16 or AMX-BF16), mixed_bfloat16; else float32.
"""

import json
import os
import tempfile

import keras
import tensorflow as tf

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def make_strategy(name):
    """Creates the strategy `name` (one of `STRATEGIES`).

    Must run before any other TensorFlow work for `multiworker`, which
    configures the collective runtime.
    """
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


def strategy_label(strategy):
    """A readable name for the strategy in use."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    name = type(strategy).__name__
    return "default (one device)" if name.startswith("_Default") else name


def is_chief(strategy):
    """True unless this process is a non-chief worker of a multi-worker run."""
    resolver = getattr(strategy, "cluster_resolver", None)
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
    unscales)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return optimizer.scale_loss(loss / replicas)


def step_logs(logs):
    """A custom `train_step`'s logs, shaped for Keras' reduction across
    replicas: a multi-worker run averages step outputs along axis 0."""
    strategy = tf.distribute.get_strategy()
    if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):
        return {key: keras.ops.reshape(value, (1,)) for key, value in logs.items()}
    return logs

"""Run by test_distribution.py in its own process: one training step under
MirroredStrategy over two logical CPU devices, and under the default
strategy, from the same weights on the same global batch. Prints the
largest difference of any weight afterwards, and the replica count."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import tiny_model_config  # noqa: E402
from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network  # noqa: E402
from vaecyclegan.vae_cyclegan import VAECycleGAN  # noqa: E402


def one_step(strategy, batch):
    keras.utils.set_random_seed(0)
    config = tiny_model_config()
    with strategy.scope():
        networks = {name: build_network(config, name) for name in TRANSLATION_NETWORKS}
        model = VAECycleGAN(*(networks[n] for n in TRANSLATION_NETWORKS), pool_size=50,
                            image_size=32)
        # Plain SGD: an update proportional to the gradient shows any error
        # in how per-replica losses are scaled (Adam would normalise it away).
        model.compile(g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    return [np.asarray(v) for n in TRANSLATION_NETWORKS for v in networks[n].trainable_variables]


rng = np.random.default_rng(0)
global_batch = tuple(rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32") for _ in range(2))
single = one_step(tf.distribute.get_strategy(), global_batch)
mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
mirrored = one_step(mirrored_strategy, global_batch)
moved = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
print(f"replicas {mirrored_strategy.num_replicas_in_sync} max_difference {moved:.3e}")

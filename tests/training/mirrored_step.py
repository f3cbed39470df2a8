"""Run by test_distribution.py in its own process: one training step under
MirroredStrategy over two logical CPU devices, and under the default
strategy, from the same weights on the same global batch, for the
translation model, the upscaler's L1 stage and its adversarial stage.
Prints, per model, the largest difference of any weight afterwards, and
the replica count."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.harness import tiny_model_config  # noqa: E402
from vaecyclegan.config import RRDBNetConfig  # noqa: E402
from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network  # noqa: E402
from vaecyclegan.translation.trainer import VAECycleGAN  # noqa: E402
from vaecyclegan.upscaler.adversarial_trainer import RelativisticSRGAN  # noqa: E402
from vaecyclegan.upscaler.l1_trainer import L1UpscalerTrainer  # noqa: E402
from vaecyclegan.upscaler.rrdbnet import build_rrdbnet  # noqa: E402
from vaecyclegan.upscaler.vgg_style_discriminator import build_vgg_style_discriminator  # noqa: E402


# Plain SGD: an update proportional to the gradient shows any error in how
# per-replica losses are scaled (Adam would normalise it away).
def _sgd():
    return keras.optimizers.SGD(0.1)


def translation(batch):
    networks = {name: build_network(tiny_model_config(), name) for name in TRANSLATION_NETWORKS}
    model = VAECycleGAN(*(networks[n] for n in TRANSLATION_NETWORKS), pool_size=50, image_size=32)
    model.compile(g_optimizer=_sgd(), d_optimizer=_sgd())
    return model, [v for n in TRANSLATION_NETWORKS for v in networks[n].trainable_variables]


def _rrdbnet():
    return build_rrdbnet(RRDBNetConfig(num_feat=8, num_block=1, num_grow_ch=4))


def upscaler_l1(batch):
    upscaler = _rrdbnet()
    model = L1UpscalerTrainer(upscaler)
    model.compile(optimizer=_sgd())
    return model, upscaler.trainable_variables


def upscaler_gan(batch):
    upscaler, discriminator = _rrdbnet(), build_vgg_style_discriminator(32, 8)
    model = RelativisticSRGAN(upscaler, discriminator)
    model.compile(g_optimizer=_sgd(), d_optimizer=_sgd())
    return model, upscaler.trainable_variables + discriminator.trainable_variables


def one_step(strategy, build, batch):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model, variables = build(batch)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    return [np.asarray(v) for v in variables]


def _halves_alike(*shapes):
    # Each replica gets the same half of the global batch, so that what is
    # computed over a replica's batch (the relativistic GAN's means, the
    # discriminator's BatchNorm) equals what one device computes over the
    # whole batch: any difference left is the scaling of the losses.
    rng = np.random.default_rng(0)
    return tuple(np.concatenate([half, half]) for half in
                 (rng.uniform(-1, 1, shape).astype("float32") for shape in shapes))


mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
print(f"replicas {mirrored_strategy.num_replicas_in_sync}")
for name, build, batch in [
    ("translation", translation, tuple(np.random.default_rng(0).uniform(
        -1, 1, (4, 32, 32, 3)).astype("float32") for _ in range(2))),
    ("upscaler_l1", upscaler_l1, _halves_alike((2, 8, 8, 3), (2, 32, 32, 3))),
    ("upscaler_gan", upscaler_gan, _halves_alike((2, 8, 8, 3), (2, 32, 32, 3))),
]:
    single = one_step(tf.distribute.get_strategy(), build, batch)
    mirrored = one_step(mirrored_strategy, build, batch)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
    print(f"{name} max_difference {moved:.3e}", flush=True)

"""Speed of the translation training step on Keras' three backends:
TensorFlow (`VAECycleGAN.fit`, traced), JAX (`JaxVAECycleGAN`, one
`jax.jit` function) and PyTorch (`VAECycleGAN.fit`, eager), float32, for a
preset's networks (default: quick, 64x64, its batch doubled as augmentation
doubles it), each backend in its own process, AdamW as in training.

Prints the compile time (the first step) and ms/step over `--steps` steps
after `--warmup`; asserts nothing.

    python bench/backend_step_speed.py                  # quick preset, 20 steps
    python bench/backend_step_speed.py --preset paper --steps 2 --warmup 1
"""

import argparse
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup(preset_name):
    import keras
    import numpy as np

    from vaecyclegan.config import ModelConfig
    from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
    from vaecyclegan.training.presets import PRESETS

    preset = PRESETS[preset_name]
    config = ModelConfig(image_size=preset.image_size, generator=preset.generator,
                         discriminator=preset.discriminator)
    keras.utils.set_random_seed(0)
    networks = {name: build_network(config, name) for name in TRANSLATION_NETWORKS}
    rng = np.random.default_rng(0)
    shape = (2 * preset.batch_size, preset.image_size, preset.image_size, 3)
    batch = tuple(rng.uniform(-1, 1, shape).astype("float32") for _ in range(2))
    return networks, batch, preset.image_size


def _optimizers():
    import keras

    return [keras.optimizers.AdamW(2e-4, beta_1=0.5) for _ in range(2)]


def _repeated(batch):
    """`batch` for ever: tf.data on TensorFlow, a generator on PyTorch."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.data.Dataset.from_tensors(batch).repeat()

    def forever():
        while True:
            yield batch

    return forever()


def worker(options):
    """One backend's timings: prints `first_step_s ms_per_step`."""
    import keras

    from vaecyclegan.training.presets import PRESETS

    networks, batch, size = _setup(options.preset)
    structure = PRESETS[options.preset].lambda_structure
    g_optimizer, d_optimizer = _optimizers()
    if keras.backend.backend() == "jax":
        from vaecyclegan.translation.jax_trainer import JaxVAECycleGAN

        step = JaxVAECycleGAN(networks["g_target"], networks["g_source"], networks["d_source"],
                              networks["d_target"], g_optimizer, d_optimizer, pool_size=50,
                              image_size=size, lambda_structure=structure)
        ends = []
        started = time.perf_counter()
        for _ in range(options.warmup + options.steps):
            step.train_step(batch)  # returns floats: the step has finished
            ends.append(time.perf_counter())
    else:
        from vaecyclegan.networks import TRANSLATION_NETWORKS
        from vaecyclegan.translation.trainer import VAECycleGAN

        model = VAECycleGAN(*(networks[n] for n in TRANSLATION_NETWORKS), pool_size=50,
                            image_size=size, lambda_structure=structure)
        model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer)
        ends = []
        clock = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda index, logs: ends.append(time.perf_counter()))
        started = time.perf_counter()
        model.fit(_repeated(batch),
                  steps_per_epoch=options.warmup + options.steps, epochs=1, verbose=0,
                  shuffle=False, callbacks=[clock])
    first = ends[0] - started
    per_step = (ends[-1] - ends[options.warmup - 1]) / options.steps
    print(f"{first:.2f} {per_step * 1000:.1f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=("smoke", "quick", "paper"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.warmup < 1:
        parser.error("--warmup must be at least 1 (the first step compiles)")
    if options.worker:
        worker(options)
        return
    print(f"{options.preset} preset, float32, {options.steps} steps after {options.warmup}")
    print(f"{'backend':<12}{'first step s':>14}{'ms/step':>10}")
    for backend in ("tensorflow", "jax", "torch"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": REPO}
        result = subprocess.run([sys.executable, __file__, "--worker", "--preset", options.preset,
                                 "--steps", str(options.steps), "--warmup", str(options.warmup)],
                                capture_output=True, text=True, env=env)
        fields = result.stdout.split()
        if result.returncode != 0 or len(fields) != 2:
            reason = (result.stderr.strip().splitlines() or ["?"])[-1][:60]
            print(f"{backend:<12}failed: {reason}")
            continue
        print(f"{backend:<12}{float(fields[0]):>14.1f}{float(fields[1]):>10.1f}", flush=True)


if __name__ == "__main__":
    main()

"""Speed of the translation training step against the machine's own matmul peak.

For a preset's networks (default: the paper config, 256x256, batch 4 per
domain doubled to 8 by augmentation), in float32 and mixed_bfloat16, with and
without XLA, each setting in its own process: ms/step, images/s (both
domains, after doubling), the step's GFLOPs (counted by TensorFlow's
profiler on the traced step, backward pass included), achieved GFLOP/s and
that as a fraction of a float32 matmul peak measured in the same process
(before and after the steps, the higher kept);
then the input pipeline's images/s. Prints a table; asserts nothing.

    python bench/train_step_speed.py                       # paper config, 2 timed steps
    python bench/train_step_speed.py --preset quick --steps 20
    python bench/train_step_speed.py --preset quick --steps 20 --lambda-nce 1   # + PatchNCE
"""

import argparse
import subprocess
import sys
import time

MATMUL_SIDE = 2048


def _matmul_peak_gflops(tf, repeats=10):
    a = tf.random.normal((MATMUL_SIDE, MATMUL_SIDE))
    b = tf.random.normal((MATMUL_SIDE, MATMUL_SIDE))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * MATMUL_SIDE ** 3 / best / 1e9


def _step_gflops(tf, model, batch):
    """FLOPs of one traced training step (forward and backward)."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    spec = tuple(tf.TensorSpec(x.shape, x.dtype) for x in batch)
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops / 1e9


def build_translation_trainer(preset_name, image_size, batch_size, xla=False, lambda_nce=None):
    """A preset's translation trainer, compiled, and one batch of random
    images per domain (`batch_size` loaded images doubled by augmentation),
    under the dtype policy in force."""
    import keras
    import numpy as np

    from vaecyclegan.config import ModelConfig
    from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
    from vaecyclegan.training.presets import PRESETS
    from vaecyclegan.translation.trainer import VAECycleGAN

    preset = PRESETS[preset_name]
    size = image_size or preset.image_size
    config = ModelConfig(image_size=size, generator=preset.generator,
                         discriminator=preset.discriminator)
    model = VAECycleGAN(*(build_network(config, name) for name in TRANSLATION_NETWORKS),
                        lambda_structure=preset.lambda_structure, image_size=size,
                        lambda_nce=preset.lambda_nce if lambda_nce is None else lambda_nce)
    model.compile(g_optimizer=keras.optimizers.AdamW(1e-4),
                  d_optimizer=keras.optimizers.AdamW(1e-4), jit_compile=xla)
    rng = np.random.default_rng(0)
    batch = tuple(rng.uniform(-1, 1, (2 * batch_size, size, size, 3)).astype("float32")
                  for _ in range(2))
    return model, batch


def worker(options):
    from vaecyclegan.cli.common import quiet_tensorflow

    quiet_tensorflow()
    import keras
    import tensorflow as tf

    from vaecyclegan.training.distribution import set_precision

    peak_before = _matmul_peak_gflops(tf)
    set_precision(options.precision)
    model, batch = build_translation_trainer(options.preset, options.image_size,
                                             options.batch_size, options.xla, options.lambda_nce)
    per_domain = len(batch[0])
    gflops = _step_gflops(tf, model, batch)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    # One fit for warm-up and timed steps, timed between step ends: starting
    # and ending a fit() costs seconds of idle time that training pays once,
    # not per step.
    step_ends = []
    clock = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: step_ends.append(time.perf_counter()))
    model.fit(dataset, steps_per_epoch=options.warmup + options.steps, epochs=1, verbose=0,
              shuffle=False, callbacks=[clock])
    seconds = (step_ends[-1] - step_ends[options.warmup - 1]) / options.steps
    # A shared machine's speed drifts by up to a fifth over minutes: the
    # peak is measured before and after the steps and the higher one kept,
    # so that a slow spell cannot flatter the fraction.
    peak = max(peak_before, _matmul_peak_gflops(tf))
    print(f"{seconds * 1000:.0f} {2 * per_domain / seconds:.3f} {gflops:.1f} "
          f"{gflops / seconds:.1f} {peak:.1f}", flush=True)


def pipeline(options):
    """Images/s of the input pipeline (decode-free: slices in memory, as
    training holds them; shuffling, augmentation, doubling)."""
    from vaecyclegan.cli.common import quiet_tensorflow

    quiet_tensorflow()
    import numpy as np

    from vaecyclegan.training.presets import PRESETS
    from vaecyclegan.translation.dataset import make_unpaired_dataset

    size = options.image_size or PRESETS[options.preset].image_size
    images = np.random.default_rng(0).uniform(-1, 1, (64, size, size, 1)).astype("float32")
    dataset = iter(make_unpaired_dataset(images, images, options.batch_size, 3, 0,
                                         augmentation=PRESETS[options.preset].augmentation))
    next(dataset)
    batches = 20
    started = time.perf_counter()
    for _ in range(batches):
        next(dataset)
    seconds = time.perf_counter() - started
    print(f"{batches * 4 * options.batch_size / seconds:.1f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=("smoke", "quick", "paper"))
    parser.add_argument("--image-size", type=int, help="default: the preset's")
    parser.add_argument("--batch-size", type=int, default=4, help="loaded images per domain")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed steps (tracing) first; at least 1")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--lambda-nce", type=float, help="PatchNCE weight (default: the preset's)")
    parser.add_argument("--xla", default="off,on", help="off, on, or both")
    parser.add_argument("--worker", choices=("step", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.warmup < 1:
        parser.error("--warmup must be at least 1 (the first step traces the graph)")
    if options.worker == "step":
        options.xla = options.xla == "on"
        return worker(options)
    if options.worker == "pipeline":
        return pipeline(options)

    common = ["--preset", options.preset, "--batch-size", str(options.batch_size)]
    if options.lambda_nce is not None:
        common += ["--lambda-nce", str(options.lambda_nce)]
    if options.image_size:
        common += ["--image-size", str(options.image_size)]
    print(f"{options.preset} networks, batch {options.batch_size}+{options.batch_size} loaded "
          f"(x2 augmented), {options.steps} timed step(s) after {options.warmup} untimed")
    print(f"{'precision':>16}{'xla':>5}{'ms/step':>10}{'images/s':>10}{'GFLOP/step':>12}"
          f"{'GFLOP/s':>9}{'fp32 peak':>11}{'of peak':>9}")
    step_rates = []
    for precision in options.precisions.split(","):
        for xla in options.xla.split(","):
            command = [sys.executable, __file__, "--worker", "step", "--precision", precision,
                       "--xla", xla, "--steps", str(options.steps), "--warmup",
                       str(options.warmup), *common]
            result = subprocess.run(command, capture_output=True, text=True)
            fields = result.stdout.split()
            if result.returncode != 0 or len(fields) != 5:
                reason = (result.stderr.strip().splitlines() or ["?"])[-1][:60]
                print(f"{precision:>16}{xla:>5}  failed: {reason}", flush=True)
                continue
            ms, images, gflop, rate, peak = fields
            step_rates.append(float(images))
            print(f"{precision:>16}{xla:>5}{ms:>10}{images:>10}{gflop:>12}{rate:>9}{peak:>11}"
                  f"{float(rate) / float(peak):>9.0%}", flush=True)
    result = subprocess.run([sys.executable, __file__, "--worker", "pipeline", *common],
                            capture_output=True, text=True)
    if result.returncode == 0 and result.stdout.strip():
        rate = float(result.stdout.split()[0])
        best = max(step_rates) if step_rates else float("nan")
        print(f"input pipeline: {rate:.1f} images/s, {rate / best:.0f}x the fastest step",
              flush=True)


if __name__ == "__main__":
    main()

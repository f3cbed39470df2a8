"""What the XLA-fused GroupNormalization saves, against Keras' own arithmetic.

Two measurements, each alternating fused and unfused in one process so that
a shared machine's drift in speed hits both alike:

1. one normalisation layer and the ReLU after it, forward and backward, on
   an activation of `--activation` shape (default: the paper generator's
   first level, 16x256x256x64);
2. the translation training step of a preset (default: the paper config at
   256x256, 4+4 images loaded, doubled to 8+8), median of `--rounds`.

Prints the times and the ratios; asserts nothing.

    python bench/fused_norm_speed.py                          # about 8 minutes here
    python bench/fused_norm_speed.py --preset quick --rounds 15
"""

import argparse
import statistics
import time


def _timed(function):
    started = time.perf_counter()
    result = function()
    for value in (result if isinstance(result, (list, tuple)) else [result]):
        if hasattr(value, "numpy"):
            value.numpy()
    return time.perf_counter() - started


def _alternating_times(runs, rounds):
    """Seconds of each run, taking turns `rounds` times."""
    times = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            times[key].append(_timed(run))
    return times


def _layer_times(tf, fgn, shape, groups, rounds):
    x = tf.random.normal(shape)
    upstream = tf.random.normal(shape)
    steps = {}
    for fused in (True, False):
        layer = fgn.FusedGroupNormalization(groups=groups, fused=fused)
        layer.build(shape)

        @tf.function
        def step(x, upstream, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.relu(layer(x))
            return tape.gradient(y, [x, *layer.trainable_variables], output_gradients=upstream)

        steps[fused] = lambda step=step: step(x, upstream)
        _timed(steps[fused])
    times = _alternating_times(steps, rounds)
    return {fused: min(values) for fused, values in times.items()}


def _step_times(tf, fgn, preset_name, image_size, batch_size, rounds):
    from train_step_speed import build_translation_trainer

    trainers = {}
    for fused in (True, False):
        fgn.FUSED_BY_DEFAULT = fused  # read when the layers are built
        model, batch = build_translation_trainer(preset_name, image_size, batch_size)
        batch = tuple(tf.constant(images) for images in batch)
        model.make_train_function()
        trainers[fused] = (
            lambda m=model, b=batch: list(m.train_function(iter([b])).values()))
        _timed(trainers[fused])
    times = _alternating_times(trainers, rounds)
    return {fused: statistics.median(values) for fused, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", default="16,256,256,64",
                        help="N,H,W,C of the layer measurement")
    parser.add_argument("--groups", type=int, default=32)
    parser.add_argument("--preset", default="paper", choices=("smoke", "quick", "paper"))
    parser.add_argument("--image-size", type=int, help="default: the preset's")
    parser.add_argument("--batch-size", type=int, default=4, help="loaded images per domain")
    parser.add_argument("--rounds", type=int, default=2, help="timed steps of each kind")
    options = parser.parse_args()

    from vaecyclegan.cli.common import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    import vaecyclegan.translation.group_normalization as fgn

    shape = tuple(int(side) for side in options.activation.split(","))
    layer = _layer_times(tf, fgn, shape, options.groups, max(options.rounds, 3))
    print(f"GroupNormalization + ReLU, forward and backward, {options.activation}: "
          f"fused {layer[True] * 1000:.0f} ms, Keras {layer[False] * 1000:.0f} ms "
          f"({layer[False] / layer[True]:.2f}x)", flush=True)
    step = _step_times(tf, fgn, options.preset, options.image_size,
                       options.batch_size, options.rounds)
    print(f"{options.preset} training step: fused {step[True] * 1000:.0f} ms, "
          f"Keras {step[False] * 1000:.0f} ms ({step[False] / step[True]:.3f}x)", flush=True)


if __name__ == "__main__":
    main()

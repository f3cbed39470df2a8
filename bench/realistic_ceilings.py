"""Where a realistic development set's gap lies: two references for an
unpaired quick model's mri2ct scores, both scored through `infer.py`'s own
path at 256 px.

1. The true CT at the weights' training scale (shrunk by area, as training
   and inference shrink slices), returned through the weights' RRDB-Net:
   what a perfect translator at that scale would score.
2. The quick generator trained *paired*, L1 to the true CT, on pairs
   rendered with another seed: what the same network learns with the
   answer given. A diagnostic, not a method: unpaired data has no pairs.

Each is scored with `vaecyclegan-eval --predictions` (1) and `infer.py
--reference` (2, through the RRDB-Net and bicubically). Prints a table;
asserts nothing. The README's figures ("On realistic heads") come from

    python bench/realistic_ceilings.py --data devsets/real_a_brain --ct-window 40,400 \\
        --style a --weights-dir W_A --out /tmp/ceil_a
    python bench/realistic_ceilings.py --data devsets/real_b_wide --ct-window 500,3000 \\
        --style b --weights-dir W_B --out /tmp/ceil_b

where W_A and W_B are weights of the quick preset trained on those sets
(about 4 min each on a 2-core CPU, 2,000 paired steps included).
"""

import argparse
import glob
import json
import os
import shutil
import time


def _scores(metrics_json, direction):
    with open(metrics_json, encoding="utf-8") as f:
        model = json.load(f)[direction]["model"]
    return (f"{model['psnr']:.2f} dB, SSIM {model['ssim']:.3f}, MAE soft / bone "
            f"{model['mae_soft']:.0f} / {model['mae_bone']:.0f} HU, "
            f"bone Dice {model['bone_dice']:.2f}")


def _run(main, argv):
    from vaecyclegan.cli.common import run_cli

    code = run_cli(main, argv)
    if code:
        raise SystemExit(f"{main.__module__} {' '.join(argv)}: exit {code}")


def true_ct_through_upscaler(options, test_a, test_b, factor):
    """Scores the true test CT shrunk `factor` times and returned through
    the weights' RRDB-Net."""
    import cv2

    from vaecyclegan.cli.evaluate import main as evaluate_main
    from vaecyclegan.cli.infer import main as infer_main
    from vaecyclegan.io.image_format import read_grey, write_png

    small = os.path.join(options.out, "true_ct_small")
    os.makedirs(small, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(test_a, "*.png"))):
        ct = read_grey(path)
        write_png(os.path.join(small, os.path.basename(path)),
                  cv2.resize(ct, (ct.shape[1] // factor, ct.shape[0] // factor),
                             interpolation=cv2.INTER_AREA))
    upscaled = os.path.join(options.out, "true_ct_upscaled")
    _run(infer_main, ["--direction", "none", "--upscale", str(factor), "--input", small,
                      "--output", upscaled, "--weights-dir", options.weights_dir])
    scored = os.path.join(options.out, "true_ct_scored")
    _run(evaluate_main, ["--predictions", upscaled, "--references", test_a, "--inputs", test_b,
                         "--direction", "mri2ct", "--ct-window", options.ct_window,
                         "--out", scored])
    return _scores(os.path.join(scored, "metrics.json"), "mri2ct")


def train_paired(options, config, window_hu):
    """The weights folder with its mri2ct generator trained paired."""
    import keras
    import numpy as np

    from vaecyclegan.data.realistic_head import write_realistic_dataset
    from vaecyclegan.io.image_format import list_images, read_grey
    from vaecyclegan.io.resampling import resample_planes
    from vaecyclegan.io.weight_files import save_weights_h5
    from vaecyclegan.translation.vae_unet_generator import build_vae_unet_generator

    data = os.path.join(options.out, "paired_data")
    images = write_realistic_dataset(data, window_hu, num_train=0, num_test=options.pairs,
                                     seed=options.seed, style=options.style)
    side = config.image_size

    def load(folder):
        planes = np.stack([read_grey(p) for p in list_images(os.path.join(images, folder))])
        small = resample_planes(planes / 127.5 - 1.0, (side, side))
        return np.repeat(small[..., None], 3, axis=-1)

    mri, ct = load("testB"), load("testA")
    generator = build_vae_unet_generator(config.generator, name="g_target")
    optimizer = keras.optimizers.AdamW(2e-4, weight_decay=6e-8, beta_1=0.5)
    step_fn = _paired_step(generator, optimizer)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for step in range(options.steps):
        index = rng.integers(0, len(mri), 8)
        flip = rng.random(8) < 0.5
        x, y = mri[index], ct[index]
        x[flip], y[flip] = x[flip, :, ::-1], y[flip, :, ::-1]
        loss = step_fn(x.astype("float32"), y.astype("float32"))
        if step % 500 == 0 or step == options.steps - 1:
            print(f"paired step {step + 1}/{options.steps}: L1 {float(loss):.4f}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    weights = os.path.join(options.out, "paired_weights")
    shutil.copytree(options.weights_dir, weights, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("best"))
    save_weights_h5(generator, os.path.join(weights, "g_target_weights.h5"))
    return weights


def _paired_step(generator, optimizer):
    """One compiled L1 step (TensorFlow, as the project's CPU training is),
    with the VAE's KL term at the quick preset's weight."""
    import tensorflow as tf

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            prediction = generator(x, training=True)
            loss = tf.reduce_mean(tf.abs(prediction - y)) + 1e-3 * tf.add_n(generator.losses)
        gradients = tape.gradient(loss, generator.trainable_variables)
        optimizer.apply_gradients(zip(gradients, generator.trainable_variables))
        return loss

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a realistic development set")
    parser.add_argument("--ct-window", required=True, help="its LEVEL,WIDTH")
    parser.add_argument("--style", required=True, choices=("a", "b"),
                        help="its rendering style, for the paired slices")
    parser.add_argument("--weights-dir", required=True,
                        help="quick-preset weights trained on it (with an RRDB-Net)")
    parser.add_argument("--out", required=True, help="a new folder for everything written")
    parser.add_argument("--pairs", type=int, default=80)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=77,
                        help="rendering seed of the paired slices (not the set's own)")
    options = parser.parse_args()

    from vaecyclegan.cli.common import quiet_tensorflow

    quiet_tensorflow()
    from vaecyclegan.cli.infer import main as infer_main
    from vaecyclegan.config import ModelConfig
    from vaecyclegan.workflows.settings import window_bounds

    if os.path.exists(options.out):
        raise SystemExit(f"{options.out} exists; name a new folder")
    config = ModelConfig.load(options.weights_dir)
    test_a = os.path.join(options.data, "Dataset", "images", "testA")
    test_b = os.path.join(options.data, "Dataset", "images", "testB")
    factor = round(config.pixel_scale.resize_factor)
    rows = [("true CT at the training scale, through the RRDB-Net",
             true_ct_through_upscaler(options, test_a, test_b, factor))]
    window = window_bounds(tuple(float(v) for v in options.ct_window.split(",")))
    paired = train_paired(options, config, window)
    for label, resample in (("through the RRDB-Net", "auto"), ("bicubically", "bicubic")):
        out = os.path.join(options.out, f"paired_{resample}")
        _run(infer_main, ["--direction", "mri2ct", "--input", test_b, "--reference", test_a,
                          "--output", out, "--weights-dir", paired, "--resample", resample])
        rows.append((f"generator trained paired, returned {label}",
                     _scores(os.path.join(out, "metrics.json"), "mri2ct")))
    print()
    for label, scores in rows:
        print(f"{label}: {scores}")


if __name__ == "__main__":
    main()

"""The paper configuration on JAX, without TensorFlow: the translation
training step (`JaxVAECycleGAN`, one `jax.jit` function: 256 px, 4 images
per domain doubled to 8, i.e. 8 + 8 images a step, AdamW, image pools) and
`g_target` inference at 256 px, in float32 and mixed_bfloat16, on whatever
JAX sees (CPU or GPU), beside the matmul peak of each precision measured in
the same run (one big jitted matmul chain).

Prints images/s and the fraction of the matching peak: the step's FLOPs
from XLA's `cost_analysis()` of the step before compilation (where the backend gives
none: the estimate of 15.4 TFLOP per 16 images of the paper step, scaled by
image area for other sizes). "float32" on an NVIDIA GPU is JAX's default
matmul precision (TF32 tensor cores on Ampere and later), so its peak is
measured the same way.

Imports no TensorFlow (a GPU machine without it runs it: see
`bench/gpu/run.sh`, which carries keras, optree and namex as wheels).

    python bench/jax_paper_step.py                       # paper, 10 steps
    python bench/jax_paper_step.py --preset quick --steps 2 --warmup 1
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PAPER_FLOPS_PER_IMAGE = 15.4e12 / 16  # the estimate, for 256 px


def _flops(lowered, compiled):
    """FLOPs of a jitted function by XLA's cost analysis, or None: of the
    program before compilation, which counts every convolution, else of
    the compiled one (on a GPU that leaves out the convolutions handed to
    cuDNN as custom calls: 0.053 TFLOP for the paper step on an H200,
    against 15.4)."""
    for stage in (lowered, compiled):
        try:
            analysis = stage.cost_analysis()
        except Exception:  # noqa: BLE001 - not every backend has one
            continue
        if isinstance(analysis, (list, tuple)):
            analysis = analysis[0] if analysis else None
        flops = (analysis or {}).get("flops")
        if flops and flops > 0:
            return float(flops)
    return None


def matmul_peak(dtype, size, repeats):
    """FLOP/s of `repeats` chained (size x size) matmuls in one jit."""
    import jax
    import jax.numpy as jnp

    key = jax.random.PRNGKey(0)
    a = (jax.random.normal(key, (size, size), jnp.float32) / size ** 0.5).astype(dtype)
    b = (jax.random.normal(jax.random.fold_in(key, 1), (size, size), jnp.float32)
         / size ** 0.5).astype(dtype)

    @jax.jit
    def chain(a, b):
        return jax.lax.fori_loop(0, repeats, lambda _, x: x @ b, a)

    chain(a, b).block_until_ready()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        chain(a, b).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size ** 3 * repeats / best


def _networks(preset, policy, seed=0):
    import keras

    from vaecyclegan.config import ModelConfig
    from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network

    keras.mixed_precision.set_global_policy(policy)
    config = ModelConfig(image_size=preset.image_size, generator=preset.generator,
                         discriminator=preset.discriminator)
    keras.utils.set_random_seed(seed)
    return {name: build_network(config, name) for name in TRANSLATION_NETWORKS}


def time_step(preset, policy, steps, warmup):
    """`(images/s, FLOPs a step or None, compile s)` of the training step."""
    import jax
    import keras
    import numpy as np

    from vaecyclegan.training.learning_rate import ConstantThenLinearDecay
    from vaecyclegan.translation.jax_trainer import JaxVAECycleGAN

    networks = _networks(preset, policy)
    optimizers = [keras.optimizers.AdamW(ConstantThenLinearDecay(preset.lr, 1000, 2000),
                                         weight_decay=preset.weight_decay, beta_1=preset.beta_1)
                  for _ in range(2)]
    trainer = JaxVAECycleGAN(networks["g_target"], networks["g_source"], networks["d_source"],
                             networks["d_target"], *optimizers, lambda_cycle=preset.lambda_cycle,
                             lambda_identity=preset.lambda_identity, kl_weight=preset.kl_weight,
                             lambda_structure=preset.lambda_structure,
                             pool_size=preset.pool_size, image_size=preset.image_size)
    rng = np.random.default_rng(0)
    shape = (2 * preset.batch_size, preset.image_size, preset.image_size, 3)
    batch = tuple(jax.device_put(rng.uniform(-1, 1, shape).astype("float32"))
                  for _ in range(2))
    state = trainer.initial_state()
    started = time.perf_counter()
    lowered = trainer._step.lower(state, batch)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - started
    for _ in range(warmup):
        logs, state = compiled(state, batch)
    jax.block_until_ready(state)
    started = time.perf_counter()
    for _ in range(steps):
        logs, state = compiled(state, batch)
    jax.block_until_ready((logs, state))
    elapsed = time.perf_counter() - started
    assert all(np.isfinite(float(v)) for v in logs.values()), logs
    return 2 * shape[0] * steps / elapsed, _flops(lowered, compiled), compile_s


def time_inference(preset, policy, batch_size, steps):
    """`(images/s, FLOPs a batch or None)` of `g_target` at the preset's size."""
    import jax
    import numpy as np

    model = _networks(preset, policy)["g_target"]
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    x = jax.device_put(np.random.default_rng(1).uniform(
        -1, 1, (batch_size, preset.image_size, preset.image_size, 3)).astype("float32"))
    lowered = jax.jit(forward).lower(trainable, non_trainable, x)
    compiled = lowered.compile()
    compiled(trainable, non_trainable, x).block_until_ready()
    started = time.perf_counter()
    for _ in range(steps):
        out = compiled(trainable, non_trainable, x)
    out.block_until_ready()
    return batch_size * steps / (time.perf_counter() - started), _flops(lowered, compiled)


def _estimate(preset, images):
    return PAPER_FLOPS_PER_IMAGE * images * (preset.image_size / 256) ** 2


# long: one table, two precisions, each a peak, a step and inference.
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper", help="smoke, quick or paper")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--infer-batch", type=int, default=16)
    parser.add_argument("--infer-steps", type=int, default=10)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--peak-size", type=int, default=None,
                        help="matmul side (default 8192 on an accelerator, 2048 on CPU)")
    parser.add_argument("--json", default=None, help="also write the results here")
    options = parser.parse_args(argv)

    import jax
    import keras

    from vaecyclegan.training.presets import PRESETS

    preset = PRESETS[options.preset]
    device = jax.devices()[0]
    accelerator = device.platform != "cpu"
    peak_size = options.peak_size or (8192 if accelerator else 2048)
    print(f"JAX {jax.__version__}, Keras {keras.__version__} ({keras.backend.backend()}), "
          f"device {device.platform}: {getattr(device, 'device_kind', device)} "
          f"x{len(jax.devices())}; TensorFlow imported: {'tensorflow' in sys.modules}")
    print(f"preset {options.preset}: {preset.image_size} px, {2 * preset.batch_size}+"
          f"{2 * preset.batch_size} images a step; inference batch {options.infer_batch}")
    results = []
    for policy in options.precisions.split(","):
        dtype = "bfloat16" if "bfloat16" in policy else "float32"
        peak = matmul_peak(dtype, peak_size, repeats=20 if accelerator else 2)
        step_images_s, step_flops, compile_s = time_step(preset, policy, options.steps,
                                                         options.warmup)
        images_per_step = 4 * preset.batch_size
        flops_source = "XLA cost analysis"
        if step_flops is None:
            step_flops, flops_source = _estimate(preset, images_per_step), "estimate"
        infer_images_s, infer_flops = time_inference(preset, policy, options.infer_batch,
                                                     options.infer_steps)
        infer_flops = infer_flops or _estimate(preset, options.infer_batch) / 3
        step_fraction = step_flops / images_per_step * step_images_s / peak
        infer_fraction = infer_flops / options.infer_batch * infer_images_s / peak
        result = {
            "precision": policy, "matmul_peak_tflops": peak / 1e12,
            "train_images_per_s": step_images_s, "train_tflop_per_step": step_flops / 1e12,
            "train_flops_source": flops_source, "train_fraction_of_peak": step_fraction,
            "compile_s": compile_s, "infer_images_per_s": infer_images_s,
            "infer_fraction_of_peak": infer_fraction}
        results.append(result)
        print(f"{policy:>15}: matmul peak {peak / 1e12:8.2f} TFLOP/s ({dtype}, {peak_size}^2) | "
              f"train {step_images_s:8.2f} images/s, {step_flops / 1e12:.3f} TFLOP a step "
              f"({flops_source}), {100 * step_fraction:5.1f} % of peak, compile "
              f"{compile_s:.0f} s | inference {infer_images_s:8.2f} images/s, "
              f"{100 * infer_fraction:5.1f} % of peak")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as f:
            json.dump({"device": str(device), "preset": options.preset, "results": results}, f,
                      indent=1)
    return results


if __name__ == "__main__":
    main()

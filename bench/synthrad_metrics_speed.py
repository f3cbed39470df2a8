"""Time and memory of `synthrad_metrics` on a 512 x 512 x 200 synthetic head.

The head: a soft-tissue ellipsoid (40 HU) with a bone shell (1000 HU), an
air cavity and air (-1000 HU) outside, noise of 20 HU; the prediction is
the head blurred (Gaussian, sigma 1 voxel), offset by +30 HU, with noise of
30 HU. Both float32, spacing (1.0, 0.5, 0.5) mm. The metrics run with
mask=None, so the body mask is made from the reference as part of the
timing.

Prints the seconds, the resident memory just before scoring (inputs
built) and the process's peak (`getrusage` maxrss) after it, and how many
float32 copies of the volume the scoring added above what was resident
(an upper bound: the peak may date from building the inputs).
`--tracemalloc` also traces the numpy arrays allocated while scoring
(slower; the seconds then include the tracing).

    python bench/synthrad_metrics_speed.py [--depth 200] [--size 512] [--tracemalloc]
"""

import argparse
import platform
import resource
import time
import tracemalloc

import numpy as np
from scipy import ndimage

from vaecyclegan.evaluation.synthrad import synthrad_metrics

SPACING = (1.0, 0.5, 0.5)


def synthetic_head(depth, size, seed=0):
    """(prediction, reference) float32 volumes, built slab by slab."""
    rng = np.random.default_rng(seed)
    reference = np.empty((depth, size, size), np.float32)
    z = ((np.arange(depth, dtype=np.float32) - depth / 2) / (0.42 * depth))[:, None, None]
    y = ((np.arange(size, dtype=np.float32) - size / 2) / (0.37 * size))[None, :, None]
    x = ((np.arange(size, dtype=np.float32) - size / 2) / (0.30 * size))[None, None, :]
    for start in range(0, depth, 16):
        stop = min(start + 16, depth)
        radius = z[start:stop] ** 2 + y ** 2 + x ** 2
        slab = np.full(radius.shape, -1000.0, np.float32)
        slab[radius < 1.0] = 40.0
        slab[(radius < 1.0) & (radius > 0.87)] = 1000.0
        slab[radius < 0.02] = -1000.0
        slab += rng.normal(0.0, 20.0, slab.shape).astype(np.float32)
        reference[start:stop] = slab
    prediction = np.empty_like(reference)
    ndimage.gaussian_filter(reference, 1.0, output=prediction)
    for start in range(0, depth, 16):
        noise = rng.normal(30.0, 30.0, prediction[start:start + 16].shape).astype(np.float32)
        prediction[start:start + 16] += noise
    return prediction, reference


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _rss_mb():
    """Current resident memory (Linux /proc); the peak so far elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _maxrss_mb()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also trace numpy allocations while scoring (slower)")
    args = parser.parse_args()

    prediction, reference = synthetic_head(args.depth, args.size)
    volume_mb = reference.nbytes / 2**20
    before = _rss_mb()
    if args.tracemalloc:
        tracemalloc.start()
    started = time.perf_counter()
    scores = synthrad_metrics(prediction, reference, spacing=SPACING)
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    tracemalloc.stop()
    after = _maxrss_mb()

    print(f"cpu: {_cpu_model()}")
    print(f"volume: {reference.shape} float32, {volume_mb:.0f} MB each, spacing {SPACING} mm")
    print(f"seconds: {seconds:.1f}")
    print(f"RSS MB: {before:.0f} before scoring (inputs: {2 * volume_mb:.0f}), "
          f"peak {after:.0f}; scoring added {after - before:.0f} = "
          f"{(after - before) / volume_mb:.2f} volume copies")
    if traced is not None:
        print(f"traced peak of allocations while scoring: {traced:.0f} MB = "
              f"{traced / volume_mb:.2f} volume copies")
    for key, value in scores.items():
        print(f"  {key:>14}: {value:.4f}")


if __name__ == "__main__":
    main()

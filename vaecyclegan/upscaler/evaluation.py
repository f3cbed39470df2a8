"""The upscaler against bicubic and nearest-neighbour upsampling.

Held-out images are cropped to a multiple of the scale, downscaled by
`bicubic_downscale` (training's own bicubic; the blur and noise that
`--sr-degradations` adds in training are left out, so that every run is
scored on one standard bicubic task), upscaled back, and compared with the
originals on the 8-bit scale with the project's metrics (PSNR, SSIM, MAE and
the original work's BCE/AUC-ROC/F1 "original vs HR").
"""

import cv2
import numpy as np

from vaecyclegan.evaluation.metrics import image_metrics, mean_metrics, std_metrics
from vaecyclegan.io.image_format import read_grey
from vaecyclegan.io.intensity import stored_to_unit
from vaecyclegan.upscaler.tiling import TiledUpscaler

SR_METHODS = ("model", "bicubic", "nearest")


def evaluate_upscaler(model, scale, channels, paths):
    """Scores the upscaler and both baselines on the images at `paths`.

    Returns:
        `{"scale", "n", "model", "bicubic", "nearest", "std"}` (means, and
        standard deviations over images under "std").
    """
    # tf.image's bicubic: imported here, so that scoring loads on any backend.
    from vaecyclegan.upscaler.degraded_dataset import bicubic_downscale

    upscaler = TiledUpscaler(model, scale, channels)
    per_method = {method: [] for method in SR_METHODS}
    for path in paths:
        original = (stored_to_unit(read_grey(path)) + 1.0) / 2.0
        height, width = (original.shape[0] // scale) * scale, (original.shape[1] // scale) * scale
        original = original[:height, :width]
        low = np.asarray(bicubic_downscale(original[..., None], scale))[..., 0]
        _score_pair(upscaler, low, original, per_method)
    return _summary(scale, len(paths), per_method)


def evaluate_upscaler_on_pairs(model, scale, channels, pairs):
    """Scores the upscaler and both baselines on real `(name, low, high)`
    pairs (`load_sr_pairs`); same summary as `evaluate_upscaler`."""
    upscaler = TiledUpscaler(model, scale, channels)
    per_method = {method: [] for method in SR_METHODS}
    for _, low, high in pairs:
        _score_pair(upscaler, low, high, per_method)
    return _summary(scale, len(pairs), per_method)


def _score_pair(upscaler, low, original, per_method):
    height, width = original.shape
    candidates = {
        "model": upscaler.upscale(low),
        "bicubic": np.clip(cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1),
        "nearest": cv2.resize(low, (width, height), interpolation=cv2.INTER_NEAREST),
    }
    for method, image in candidates.items():
        per_method[method].append(image_metrics(image * 255.0, original * 255.0))


def _summary(scale, count, per_method):
    summary = {"scale": scale, "n": count}
    summary.update({m: mean_metrics(v) for m, v in per_method.items()})
    summary["std"] = {m: std_metrics(v) for m, v in per_method.items()}
    return summary


def format_sr_table(summary):
    keys = ("psnr", "ssim", "mae", "bce", "auc", "f1")
    header = f"{'upscale x' + str(summary['scale']):<12}{'n':>4}" + "".join(f"{k:>9}" for k in keys)
    lines = [header, "-" * len(header)]
    for method in SR_METHODS:
        cells = "".join(f"{summary[method][k]:>9.3f}" for k in keys)
        lines.append(f"{method:<12}{summary['n']:>4}{cells}")
    return "\n".join(lines)

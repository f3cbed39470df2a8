"""The pictures of a report: comparison grids and loss curves (matplotlib,
object-oriented API, so no display or global pyplot state is needed)."""

import csv

import numpy as np
from matplotlib.figure import Figure

from vaecyclegan.evaluation.uncertainty import STD_COLORMAP
from vaecyclegan.io.atomic_write import atomic_path

# |error| maps saturate at this many 8-bit levels.
ERROR_MAP_MAX = 64.0


def _save(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def save_comparison_grid(path, evaluation, rows=6):
    """One row per test image: input, output, reference, |error|, and the
    latent deviation when the evaluation sampled it.

    Args:
        path: PNG to write.
        evaluation: a `DirectionEvaluation`.
        rows: images shown (the first ones, in file-name order).
    """
    count = min(rows, len(evaluation.names))
    columns = [("input", "gray", 0, 255), ("output", "gray", 0, 255),
               ("reference", "gray", 0, 255),
               (f"|error| (0-{ERROR_MAP_MAX:.0f})", "inferno", 0, ERROR_MAP_MAX)]
    if evaluation.stds is not None:
        vmax = evaluation.summary["uncertainty"]["std_map_max"]
        columns.append((f"latent std (0-{vmax:.2g})", STD_COLORMAP, 0, vmax))
    figure = Figure(figsize=(2.2 * len(columns), 2.2 * count + 0.4), layout="constrained")
    axes = figure.subplots(count, len(columns), squeeze=False)
    for row in range(count):
        prediction, reference = evaluation.predictions[row], evaluation.references[row]
        images = [evaluation.inputs[row], prediction, reference, np.abs(prediction - reference)]
        if evaluation.stds is not None:
            images.append(evaluation.stds[row])
        for column, (image, (title, cmap, vmin, vmax)) in enumerate(zip(images, columns)):
            axis = axes[row][column]
            axis.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=9)
        axes[row][0].set_ylabel(evaluation.names[row], fontsize=7)
    figure.suptitle(evaluation.direction, fontsize=11)
    _save(figure, path)


def read_loss_csv(path):
    """`{name: (steps, values)}` from a `losses.csv` written during training."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    steps = np.array([float(r["step"]) for r in rows])
    return {key: (steps, np.array([float(r[key]) for r in rows]))
            for key in rows[0] if key not in ("step", "seconds")}


def _smooth(values, weight=0.9):
    smoothed, last = np.empty_like(values), values[0]
    for index, value in enumerate(values):
        last = weight * last + (1 - weight) * value
        smoothed[index] = last
    return smoothed


def save_loss_curves(path, curves):
    """One panel per loss: raw values faint, exponential moving average bold.

    Args:
        path: PNG to write.
        curves: `{label: (steps, values)}` (see `read_loss_csv`).
    """
    columns = 3
    panels = (len(curves) + columns - 1) // columns
    figure = Figure(figsize=(4 * columns, 2.8 * panels), layout="constrained")
    axes = figure.subplots(panels, columns, squeeze=False).ravel()
    for axis, (label, (steps, values)) in zip(axes, curves.items()):
        axis.plot(steps, values, alpha=0.25, linewidth=0.8)
        axis.plot(steps, _smooth(values), linewidth=1.6)
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("step", fontsize=8)
        axis.grid(alpha=0.3)
    for axis in axes[len(curves):]:
        axis.set_visible(False)
    _save(figure, path)

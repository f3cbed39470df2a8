"""The pictures of a report: comparison grids (for CT outputs with the bone
overlap of reference and model), loss curves and the SynthRAD
view of synthetic CTs in HU (per case: the error map with tissue
boundaries, bone overlap in two colours, the WEPL difference map), with
matplotlib's object-oriented API, so no display or global pyplot state is
needed. `comparison_grid_text` and `synthrad_figure_text` say in words what
a figure shows and its colour key (the `*_LEGEND` strings its title draws),
for the report's alt texts and captions."""

import collections
import csv

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from vaecyclegan.evaluation.tissue import dice
from vaecyclegan.evaluation.uncertainty import STD_COLORMAP
from vaecyclegan.io.atomic_write import atomic_path

# Signed error maps (output - reference) saturate at +- this many 8-bit
# levels; red where the output is higher, blue where it is lower, so a bone
# drawn too dark in every case shows as blue rings, which |error| hid.
ERROR_MAP_MAX = 64.0
ERROR_COLORMAP = "RdBu_r"

# The colour keys in words. The figures draw them in their titles and the
# report writes them in its captions (a reader who cannot see the PNG, or
# tell its colours apart, gets them there): one set of strings, so the two
# cannot drift apart.
ERROR_LEGEND = "signed error: red where the output is higher, blue where lower, white equal"
BONE_LEGEND = "bone: green reference only, magenta output only, white both"
MASK_LEGEND = "dotted white line: the mask's outline"
RAW_LABEL, SMOOTH_LABEL = "raw", "moving average (0.9)"
# The heat maps' colour maps (magma) run from black to pale yellow.
HEAT_LEGEND = "dark low, bright high"
STD_LEGEND = f"latent std: {HEAT_LEGEND}"
LOSS_LEGEND = f"per loss: {RAW_LABEL} values faint, {SMOOTH_LABEL} bold"


def _save(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


# Rows drawn of a report's comparison grid (its first images) and of its
# SynthRAD figure (its first cases): the evaluations keep those images only.
GRID_ROWS = 6
SYNTHRAD_ROWS = 12

# A figure in words, for the report: `alt` what its rows and columns show,
# `scope` which items it shows of how many (`shown_text`), `legends` its
# colour keys.
FigureText = collections.namedtuple("FigureText", ["alt", "scope", "legends"])


def _grid_columns(evaluation):
    """The grid's columns, (title, colour map, vmin, vmax) each, and the
    factor from 8-bit error levels to the error column's unit."""
    tissue = evaluation.summary.get("tissue")
    # CT errors in HU on one scale whatever the window (64 grey levels were
    # 100 HU in a brain window and 753 HU in a wide one); MRI's in grey levels.
    if tissue:
        low, high = tissue["window_hu"]
        to_error, error = (high - low) / 255.0, f"output - reference, HU (+-{HU_ERROR_MAX:.0f})"
        error_max = HU_ERROR_MAX
        window = f" (W {high - low:g} / L {(high + low) / 2:g} HU)"
    else:
        to_error, error, error_max = 1.0, \
            f"output - reference, grey levels (+-{ERROR_MAP_MAX:.0f})", ERROR_MAP_MAX
        window = ""
    columns = [("input", "gray", 0, 255), (f"output{window}", "gray", 0, 255),
               (f"reference{window}", "gray", 0, 255),
               (error, ERROR_COLORMAP, -error_max, error_max)]
    if evaluation.bones is not None:
        columns.append(("bone overlap", None, None, None))
    if evaluation.stds is not None:
        vmax = evaluation.summary["uncertainty"]["std_map_max"]
        columns.append((f"latent std, grey levels (0-{vmax:.2g})", STD_COLORMAP, 0, vmax))
    return columns, to_error


def _grid_legends(evaluation):
    """The colour keys of the grid, in words."""
    legends = [ERROR_LEGEND]
    tissue = evaluation.summary.get("tissue")
    if evaluation.bones is not None and tissue:
        legends.append(f"{BONE_LEGEND} (above {tissue['bone_threshold_hu']:g} HU)")
    if evaluation.stds is not None:
        legends.append(STD_LEGEND)
    return legends


def shown_text(shown, total, noun):
    """Which of `total` items (`noun`, plural) a figure shows: the first
    `shown`, said so where that is not all of them."""
    if shown >= total:
        return f"all {total} {noun}"
    return f"{noun} 1\u2013{shown} of {total}"


def comparison_grid_text(evaluation, rows=GRID_ROWS):
    """What `save_comparison_grid` draws, in words, for the report.

    Args:
        evaluation: a `DirectionEvaluation`.
        rows: the `rows` the grid was drawn with.

    Returns:
        A `FigureText`.
    """
    columns, _ = _grid_columns(evaluation)
    count = min(rows, len(evaluation.predictions))
    alt = (f"Comparison grid, {evaluation.direction}: one row per test image, in file-name "
           f"order; columns: {', '.join(title for title, *_ in columns)}")
    return FigureText(alt, shown_text(count, len(evaluation.names), "images"),
                      _grid_legends(evaluation))


def save_comparison_grid(path, evaluation, rows=GRID_ROWS):
    """One row per test image: input, output, reference, the signed error
    (output - reference; red: output higher, blue: lower), the bone
    overlap for CT outputs (`evaluation.bones`: reference only green,
    predicted only magenta, both white; bone Dice below), and the latent
    deviation when the evaluation sampled it. `comparison_grid_text` says
    the same in words.

    Args:
        path: PNG to write.
        evaluation: a `DirectionEvaluation`.
        rows: images shown (the first ones, in file-name order).
    """
    count = min(rows, len(evaluation.predictions))
    columns, to_error = _grid_columns(evaluation)
    bones = evaluation.bones
    figure = Figure(figsize=(2.2 * len(columns), 2.2 * count + 0.6), layout="constrained")
    axes = figure.subplots(count, len(columns), squeeze=False)
    for row in range(count):
        prediction, reference = evaluation.predictions[row], evaluation.references[row]
        images = [evaluation.inputs[row], prediction, reference,
                  (prediction - reference) * to_error]
        if bones is not None:
            images.append(_paint_bone(reference / 255.0 * 0.45, *bones[row]))
        if evaluation.stds is not None:
            images.append(evaluation.stds[row])
        for column, (image, (title, cmap, vmin, vmax)) in enumerate(zip(images, columns)):
            axis = axes[row][column]
            axis.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=9)
        axes[row][0].set_ylabel(evaluation.names[row], fontsize=8)
        if bones is not None:
            axes[row][4].set_xlabel(f"Dice {dice(*bones[row]):.3f}", fontsize=8)
    figure.colorbar(axes[count - 1][3].images[0], ax=axes[count - 1][3], orientation="horizontal",
                    extend="both", fraction=0.08, pad=0.04)
    figure.suptitle("\n".join([evaluation.direction, *_grid_legends(evaluation)]),
                    fontsize=10)
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
    for index, (axis, (label, (steps, values))) in enumerate(zip(axes, curves.items())):
        axis.plot(steps, values, alpha=0.25, linewidth=0.8, label=RAW_LABEL)
        axis.plot(steps, _smooth(values), linewidth=1.6, label=SMOOTH_LABEL)
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("step", fontsize=8)
        axis.grid(alpha=0.3)
        # The first steps' large losses would flatten the rest of the curve.
        settled = values[len(values) // 10:]
        finite = settled[np.isfinite(settled)]
        if finite.size > 1 and np.ptp(finite) > 0:
            low, high = np.percentile(finite, [1, 99])
            margin = 0.1 * (high - low) or 0.1 * abs(high) or 0.1
            axis.set_ylim(low - margin, high + margin)
        if index == 0:
            axis.legend(fontsize=7)
    for axis in axes[len(curves):]:
        axis.set_visible(False)
    _save(figure, path)


# SynthRAD figure: CT grey window (HU) and the |error| and WEPL scales.
CT_DISPLAY_HU = (-1000.0, 1500.0)
HU_ERROR_MAX = 300.0
# Boundaries at the low and high tissue thresholds, (colour, its name): black
# and orange, apart from the signed error map's reds, blues and white, and
# from the bone overlay's green (the high one was green, which there means
# missed bone).
TISSUE_CONTOURS = (("#000000", "black"), ("#e69f00", "orange"))
_OUTSIDE = "#303030"  # outside the mask, in the error and WEPL maps
OUTSIDE_LEGEND = "dark grey: outside the mask"


def _colour_map(name):
    return matplotlib.colormaps[name].with_extremes(bad=_OUTSIDE)


def _bone_overlap_rgb(reference, prediction, mask, threshold):
    """Grey reference under reference-only bone in green, predicted-only bone
    in magenta and bone in both in white."""
    low, high = CT_DISPLAY_HU
    grey = np.clip((reference - low) / (high - low), 0, 1) * 0.45
    return _paint_bone(grey, (reference > threshold) & mask, (prediction > threshold) & mask)


def _paint_bone(grey, ref_bone, pred_bone):
    """RGB of `grey` (0..1) with reference-only bone green, predicted-only
    bone magenta and bone in both white."""
    rgb = np.repeat(np.asarray(grey, np.float64)[..., None], 3, axis=-1)
    rgb[ref_bone & ~pred_bone] = (0.1, 0.85, 0.2)
    rgb[pred_bone & ~ref_bone] = (0.9, 0.2, 0.9)
    rgb[ref_bone & pred_bone] = (1.0, 1.0, 1.0)
    return rgb


def _tissue_contours(axis, reference, thresholds, mask=None):
    # Dashed and thin: the error under them stays readable.
    for level, (colour, _) in zip(thresholds, TISSUE_CONTOURS):
        if reference.min() < level < reference.max():
            axis.contour(reference, levels=[level], colors=[colour], linewidths=0.5,
                         linestyles="dashed")
    if mask is not None and mask.any() and not mask.all():
        axis.contour(mask.astype(np.float32), levels=[0.5], colors=["#ffffff"],
                     linewidths=0.5, linestyles="dotted")


def _synthrad_row(axes, case, thresholds, bone_threshold, wepl_top):
    """The panels of one case (four, five with WEPL); returns the images drawn
    (for colour bars)."""
    figure, metrics = case.figure, case.metrics
    low, high = CT_DISPLAY_HU
    inside = figure.mask
    spacing = case.details.get("spacing_mm") or (1.0, 1.0)
    aspect = float(spacing[-2]) / float(spacing[-1])  # rows drawn as tall as they are
    error = np.where(inside, figure.prediction - figure.reference, np.nan)
    drawn = [axes[0].imshow(figure.reference, cmap="gray", vmin=low, vmax=high, aspect=aspect),
             axes[1].imshow(figure.prediction, cmap="gray", vmin=low, vmax=high, aspect=aspect),
             axes[2].imshow(error, cmap=_colour_map(ERROR_COLORMAP), vmin=-HU_ERROR_MAX,
                            vmax=HU_ERROR_MAX, aspect=aspect)]
    _tissue_contours(axes[0], figure.reference, (), inside)  # the mask only: the CT clean
    _tissue_contours(axes[2], figure.reference, thresholds)
    axes[3].imshow(_bone_overlap_rgb(figure.reference, figure.prediction, inside,
                                     bone_threshold), aspect=aspect)
    if len(axes) > 4 and figure.wepl is not None:
        wepl = np.where(inside, figure.wepl, np.nan)
        drawn.append(axes[4].imshow(wepl, cmap=_colour_map("magma"), vmin=0, vmax=wepl_top,
                                    aspect=aspect))
    elif len(axes) > 4:
        axes[4].text(0.5, 0.5, "WEPL not computed", ha="center", va="center", fontsize=8,
                     transform=axes[4].transAxes)
    axes[2].set_xlabel(f"air {_number(metrics.get('mae_air'))} / soft "
                       f"{_number(metrics.get('mae_soft'))} / bone "
                       f"{_number(metrics.get('mae_bone'))} HU", fontsize=7)
    axes[3].set_xlabel(f"Dice {_number(metrics.get('dice_bone'), '.3f')}, HD95 "
                       f"{_number(metrics.get('hd95_bone_mm'), '.1f')} mm", fontsize=7)
    if "wepl_mean_abs_mm" in metrics and len(axes) > 4:
        axes[4].set_xlabel(f"mean |dWEPL| {_number(metrics['wepl_mean_abs_mm'], '.2f')} mm",
                           fontsize=7)
    return drawn


def _number(value, spec=".0f"):
    if value is None or not np.isfinite(value):
        return "n/a"
    return format(value, spec)


def _synthrad_titles(shown, bone_threshold):
    """The SynthRAD figure's column titles for the cases `shown` (a WEPL
    column where one of them has a WEPL map), and the WEPL scale's top."""
    low, high = CT_DISPLAY_HU
    # One WEPL scale for every row (each row's own 99th percentile made rows
    # incomparable): the 99th percentile of the cases shown.
    wepls = [case.figure.wepl[case.figure.mask] for case in shown
             if case.figure.wepl is not None]
    finite = np.concatenate(wepls) if wepls else np.zeros(0)
    finite = finite[np.isfinite(finite)]
    wepl_top = max(1.0, float(np.percentile(finite, 99))) if finite.size else 1.0
    titles = (f"reference CT (W {high - low:g} / L {(high + low) / 2:g})",
              "synthetic CT (same window)", f"sCT - CT HU (+-{HU_ERROR_MAX:.0f})",
              f"bone above {bone_threshold:g} HU", f"max |dWEPL| mm (0-{wepl_top:.3g})")
    if all(case.figure.wepl is None for case in shown):
        titles = titles[:4]
    return titles, wepl_top


def contour_legend(thresholds):
    """The tissue boundaries' key: which dashed line is which threshold."""
    (_, low_name), (_, high_name) = TISSUE_CONTOURS
    return (f"dashed lines: tissue boundaries at {thresholds[0]:g} HU ({low_name}) and "
            f"{thresholds[1]:g} HU ({high_name})")


def _synthrad_legends(thresholds, wepl):
    legends = [f"{ERROR_LEGEND} (output: the synthetic CT); {OUTSIDE_LEGEND}",
               contour_legend(thresholds), MASK_LEGEND, BONE_LEGEND]
    if wepl:
        legends.append(f"|dWEPL|: {HEAT_LEGEND}")
    return legends


def _drawn(cases, rows):
    """The first `rows` cases that kept their figure (an evaluation keeps
    those of the first `SYNTHRAD_ROWS` only)."""
    return [case for case in cases if case.figure is not None][:rows]


def synthrad_figure_text(cases, thresholds, bone_threshold, rows=SYNTHRAD_ROWS):
    """What `save_synthrad_figure` draws, in words, for the report.

    Args:
        cases, thresholds, bone_threshold, rows: as `save_synthrad_figure`
            was given them.

    Returns:
        A `FigureText`; `alt` starts in lower case, after the direction.
    """
    shown = _drawn(cases, rows)
    titles, _ = _synthrad_titles(shown, bone_threshold)
    alt = f"one row per case, in the table's order; columns: {', '.join(titles)}"
    return FigureText(alt, shown_text(len(shown), len(cases), "cases"),
                      _synthrad_legends(thresholds, len(titles) > 4))


def save_synthrad_figure(path, cases, thresholds, bone_threshold, rows=SYNTHRAD_ROWS):
    """One row per case (the first `rows`): reference CT with the mask's
    outline, synthetic CT, sCT - CT in HU inside the mask (red: sCT higher,
    blue: lower) with the tissue boundaries (MAE per tissue below), bone
    overlap (reference only green, predicted only magenta, both white; Dice
    and HD95 below), and the WEPL difference map (mm) when computed for a
    case shown. `synthrad_figure_text` says the same in words.

    Args:
        path: PNG to write.
        cases: `case_scoring.CaseResult`s.
        thresholds: (low, high) tissue thresholds in HU.
        bone_threshold: HU above which a voxel is bone.
        rows: the most cases shown, one row each (the first ones).
    """
    shown = _drawn(cases, rows)
    titles, wepl_top = _synthrad_titles(shown, bone_threshold)
    figure = Figure(figsize=(2.5 * len(titles), 2.7 * len(shown) + 0.9), layout="constrained")
    axes = figure.subplots(len(shown), len(titles), squeeze=False)
    for row, case in enumerate(shown):
        drawn = _synthrad_row(axes[row], case, thresholds, bone_threshold, wepl_top)
        for column, axis in enumerate(axes[row]):
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(titles[column], fontsize=9)
        where = "" if len(case.details.get("shape", ())) == 2 else \
            f"\nslice {case.figure.slice_index}"
        axes[row][0].set_ylabel(f"{case.name}{where}", fontsize=8)
        figure.colorbar(drawn[2], ax=axes[row][2], fraction=0.046, pad=0.02, extend="both")
        if len(drawn) > 3:
            figure.colorbar(drawn[3], ax=axes[row][4], fraction=0.046, pad=0.02, extend="max")
    legends = _synthrad_legends(thresholds, len(titles) > 4)
    figure.suptitle("\n".join(["SynthRAD view", *legends]), fontsize=10)
    _save(figure, path)

"""A report folder: `metrics.json`, `metrics_per_image.csv`, comparison
grids, loss curves and a static `index.html` that opens from disk; where
an evaluation has SynthRAD metrics in HU (`DirectionEvaluation.synthrad`),
also `metrics_per_case.csv`, the figure `synthrad_<direction>.png` (per
case: error map with tissue boundaries, bone overlap, WEPL difference) and
a table with the SynthRAD 2023 and 2025 columns on the page. Directions
that make CT get a second 8-bit table: MAE per tissue in HU and bone Dice
(`scoring`), beside a bone-overlap column in their comparison grid.

The page reads without its pictures: each is a `<figure>` whose alt text
names its rows and columns and whose caption says how many of the cases
it shows and its colour key in words (from `figures`, which draws the same
words in the PNG); each table has a caption, header cells with `scope` and
column names that are unique within it."""

import csv
import datetime
import html
import io
import json
import math
import os

from vaecyclegan.evaluation.case_scoring import CASE_KEYS
from vaecyclegan.evaluation.figures import (
    GRID_ROWS,
    LOSS_LEGEND,
    SYNTHRAD_ROWS,
    FigureText,
    comparison_grid_text,
    read_loss_csv,
    save_comparison_grid,
    save_loss_curves,
    save_synthrad_figure,
    synthrad_figure_text,
)
from vaecyclegan.evaluation.scoring import METHODS
from vaecyclegan.evaluation.tissue import BONE_SATURATION_HU, WINDOW_MARGIN, WINDOWED_KEYS
from vaecyclegan.io.atomic_write import atomic_write_text
from vaecyclegan.names import REPORTED_METRICS

TABLE_KEYS = REPORTED_METRICS
# The per-tissue table's columns: (key, header).
TISSUE_COLUMNS = (("mae_air", "MAE air, HU"), ("mae_soft", "MAE soft tissue, HU"),
                  ("mae_bone", "MAE bone, HU"), ("bone_dice", "bone Dice"))


def _json_safe(value):
    # JSON has no NaN or Infinity: an undefined metric is written as null.
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics_json(path, summaries):
    atomic_write_text(path, json.dumps(_json_safe(summaries), indent=2) + "\n")


def write_per_image_csv(path, evaluations):
    keys = [k for k in TABLE_KEYS if any(k in r for e in evaluations for r in e.rows)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["direction", "file", "method", *keys], extrasaction="ignore")
    writer.writeheader()
    for evaluation in evaluations:
        writer.writerows(evaluation.rows)
    atomic_write_text(path, buffer.getvalue())


def write_per_case_csv(path, evaluations):
    """One row per direction and case of the SynthRAD metrics (`CASE_KEYS`
    that some case has)."""
    cases = [(e.direction, c) for e in evaluations for c in e.synthrad or ()]
    keys = [k for k in CASE_KEYS if any(k in c.metrics for _, c in cases)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["direction", "case", *keys], extrasaction="ignore")
    writer.writeheader()
    for direction, case in cases:
        writer.writerow({"direction": direction, "case": case.name,
                         **{k: _csv_value(case.metrics.get(k)) for k in keys}})
    atomic_write_text(path, buffer.getvalue())


def _csv_value(value):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


# The SynthRAD table's column groups: (group, [(key, header, decimals), ...]).
# Each header names its group too ("PSNR 2023 dB", not "PSNR dB" twice): a
# screen reader reads a cell with its column's header, not the group row's.
SYNTHRAD_COLUMNS = (
    ("2023 &amp; 2025", [("mae", "MAE HU", 1), ("me", "ME HU", 1)]),
    ("SynthRAD 2023", [("psnr_2023", "PSNR 2023 dB", 2), ("ssim_2023", "SSIM 2023", 3)]),
    ("SynthRAD 2025", [("psnr_2025", "PSNR 2025 dB", 2),
                       ("ms_ssim_2025", "MS-SSIM 2025", 3)]),
    ("MAE per tissue, HU", [("mae_air", "MAE air", 1), ("mae_soft", "MAE soft", 1),
                            ("mae_bone", "MAE bone", 1)]),
    # Signed: a bone drawn too dark in every case shows here, not in the MAE.
    ("ME per tissue, HU", [("me_air", "ME air", 1), ("me_soft", "ME soft", 1),
                           ("me_bone", "ME bone", 1)]),
    ("bone", [("dice_bone", "bone Dice", 3), ("hd95_bone_mm", "bone HD95 mm", 2)]),
    ("WEPL", [("wepl_mean_abs_mm", "WEPL mean |&Delta;| mm", 2),
              ("wepl_p95_abs_mm", "WEPL p95 |&Delta;| mm", 2),
              ("wepl_mean_abs_pct", "WEPL mean |&Delta;| %", 2)]),
    ("dose", [("gamma_pass_2pct_2mm", "dose &gamma; 2%/2mm %", 1),
              ("gamma_pass_1pct_1mm", "dose &gamma; 1%/1mm %", 1),
              ("dose_mae_relative", "dose MAE / Rx", 4)]),
)


def _number_cell(value, decimals):
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else str(value)
    return f"{value:.{decimals}f}"


def _synthrad_table(section, caption):
    """The cases and their mean &plusmn; std, grouped by challenge, under
    `caption` (HTML)."""
    groups = [(g, [c for c in cols if c[0] in section["mean"]]) for g, cols in SYNTHRAD_COLUMNS]
    groups = [(g, cols) for g, cols in groups if cols]
    # <colgroup>s give the group row's scope="colgroup" its columns.
    colgroups = '<colgroup span="1"></colgroup>' + "".join(
        f'<colgroup span="{len(cols)}"></colgroup>' for _, cols in groups)
    top = "".join(f'<th scope="colgroup" colspan="{len(cols)}">{g}</th>' for g, cols in groups)
    second = "".join(f'<th scope="col">{title}</th>'
                     for _, cols in groups for _, title, _ in cols)
    rows = []
    for name, values in section["cases"].items():
        cells = "".join(f"<td>{_number_cell(values.get(k), d)}</td>"
                        for _, cols in groups for k, _, d in cols)
        rows.append(f'<tr><th scope="row">{html.escape(name)}</th>{cells}</tr>')
    cells = "".join(
        f"<td>{_number_cell(section['mean'].get(k), d)} &plusmn; "
        f"{_number_cell(section['std'].get(k), d)}</td>"
        for _, cols in groups for k, _, d in cols)
    rows.append(f'<tr class="model"><th scope="row">mean &plusmn; std (n = {section["n"]})'
                f"</th>{cells}</tr>")
    return (f"<table><caption>{caption}</caption>{colgroups}"
            f'<tr><th scope="col" rowspan="2">case</th>{top}</tr><tr>{second}</tr>'
            + "".join(rows) + "</table>")


def _planar_label(section):
    """Where every case is a 2-D image, how its numbers were made: means of
    per-slice scores over pixels of the size scored with (`score_slices`
    takes 1 mm), which are not a volume's SynthRAD scores (HD95 and WEPL in
    mm of that pixel); "" otherwise."""
    cases = list(section["cases"].values())
    if not cases or any(len(c.get("shape", ())) != 2 for c in cases):
        return ""
    spacings = {tuple(c.get("spacing_mm") or ()) for c in cases}
    if len(spacings) != 1 or len(next(iter(spacings))) != 2:
        pixels = "pixel sizes differing between images"
    else:
        row, column = next(iter(spacings))
        pixels = (f"{row:g} mm pixels" if row == column
                  else f"pixels of {row:g} x {column:g} mm")
    return f"per-slice mean over {len(cases)} 2-D image(s), {pixels}"


def _figure_html(name, text, title):
    """`<figure>`: the image `name` with `text` (a `FigureText`) as its alt
    text and, in its caption, `title`, what it shows and its colour key, so
    a reader who cannot see the picture or tell its colours apart gets them."""
    legends = "; ".join(text.legends)
    key = f" Colour key: {html.escape(legends)}." if legends else ""
    return (f'<figure><img src="{html.escape(name)}" alt="{html.escape(text.alt)}">'
            f"<figcaption>{html.escape(title)}. Shown: {html.escape(text.scope)}.{key}"
            f"</figcaption></figure>")


def _synthrad_html(evaluation, images):
    section = evaluation.summary.get("synthrad")
    if not section:
        return ""
    settings = section["settings"]
    figure = images.pop(f"synthrad {evaluation.direction}", None)
    picture = "" if figure is None else _figure_html(
        *figure, f"SynthRAD view, {evaluation.direction}; every case is in the table above "
                 "and in metrics_per_case.csv")
    wepl = settings["wepl"]
    wepl_text = "not computed" if wepl == "off" else (
        f"angles {', '.join(f'{a:g}' for a in wepl['angles_deg'])} degrees, HU to RSP "
        f"{html.escape(str(wepl['hu_to_rsp']))}, on {html.escape(wepl['when'])}")
    planar = _planar_label(section)
    scope = f", {planar}" if planar else f" ({section['n']} case(s))"
    caption = (f"SynthRAD metrics in HU, {evaluation.direction}{scope}: one row per "
               f"{'image' if planar else 'case'}, then the mean &plusmn; standard deviation")
    return (f"<h3>SynthRAD metrics in HU{scope}</h3>"
            f"<p>Scored inside: {html.escape(str(settings['mask']))}. Tissues split on the "
            f"reference at {settings['tissue_thresholds_hu'][0]:g} and "
            f"{settings['tissue_thresholds_hu'][1]:g} HU; bone above "
            f"{settings['bone_threshold_hu']:g} HU; HD95 {settings['hd95_convention']}. "
            f"WEPL: {wepl_text}. Definitions and sources: README, \"Metrics\".</p>"
            f"{_synthrad_table(section, caption)}{picture}")


def _cell(mean, std):
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{mean:.3f}"
    return f"{mean:.3f} &plusmn; {std:.3f}"


def _html_table(summary, caption, columns=None):
    """Methods against `columns` ((key, header) pairs; default: the
    `TABLE_KEYS` outside the tissue table) that the model has, under
    `caption` (HTML)."""
    if columns is None:
        columns = [(k, k) for k in TABLE_KEYS if k not in WINDOWED_KEYS]
    keys = [k for k, _ in columns if k in summary["model"]]
    head = "".join(f'<th scope="col">{title}</th>' for k, title in columns if k in keys)
    body = []
    for method in METHODS:
        means, stds = summary[method], summary["std"][method]
        cells = "".join(f"<td>{_cell(means.get(k), stds.get(k))}</td>" for k in keys)
        css = ' class="model"' if method == "model" else ""
        body.append(f'<tr{css}><th scope="row">{method.replace("_", " ")}</th>{cells}</tr>')
    return (f'<table><caption>{caption}</caption><tr><th scope="col">method '
            f'(n = {summary["n"]})</th>{head}</tr>' + "".join(body) + "</table>")


def _tissue_html(summary, direction):
    """The per-tissue table and how its classes were split, or ""."""
    tissue = summary.get("tissue")
    if not tissue or "model" not in summary:
        return ""
    low, high = tissue["thresholds_hu"]
    window = tissue["window_hu"]
    source = "" if tissue["window"] == "given" else f" ({html.escape(tissue['window'])})"
    hu = tissue["hu_references"]
    references = (f"; {hu} reference(s) in HU, clipped to the window" if hu else "")
    return (f"<h3>Per tissue and bone (HU through the CT window {window[0]:g} to "
            f"{window[1]:g} HU{source})</h3>"
            f"<p>Over the whole image, background air included. Classes split on the "
            f"reference: air below {low:g} HU, soft tissue "
            f"{low:g} to {high:g} HU, bone above {high:g} HU (the tissue thresholds, moved "
            f"{WINDOW_MARGIN:.0%} of the window's width inside it where it does not reach "
            f"them; in a window topping out below {BONE_SATURATION_HU:g} HU bone is its "
            f"saturated band); bone Dice "
            f"of bone above {tissue['bone_threshold_hu']:g} HU on the reference and the "
            f"image{references}. An image without a class is left out of that class's "
            f"mean; n/a: no image had it.</p>"
            + _html_table(summary, f"MAE per tissue in HU and bone Dice, {direction}: mean "
                          "&plusmn; standard deviation over test images, per method",
                          TISSUE_COLUMNS))


def _uncertainty_paragraph(summary):
    u = summary.get("uncertainty")
    if not u:
        return ""
    return (f"<p>{u['samples']} latent samples per image. Correlation of the predicted "
            f"per-pixel standard deviation with the absolute error: Pearson "
            f"{u['pearson']:.3f}, Spearman {u['spearman']:.3f}. Mean std "
            f"{u['mean_std']:.3g} against a mean |error| of {u['mean_abs_error']:.3g} grey levels "
            f"(heat maps saturate at {u['std_map_max']:.3g}).</p>")


def _intro(evaluations):
    parts = []
    if any("model" in e.summary for e in evaluations):
        parts.append("Means &plusmn; standard deviations over test images; PSNR, SSIM, MAE and "
                     "BCE/AUC/F1 on the 8-bit scale (see the README, \"Metrics\"), MAE HU "
                     "against the reference clipped to the CT window, over the whole image, "
                     "background air included (the SynthRAD table's MAE is inside the body "
                     "mask, unclipped, and so larger). Baselines: the input "
                     "itself (identity) and the input histogram-matched to the target domain.")
    if any(e.synthrad for e in evaluations):
        parts.append("SynthRAD metrics: synthetic CT against the reference CT in HU, "
                     "unclipped for MAE and ME, inside the mask; per case, then mean "
                     "&plusmn; standard deviation over cases (non-finite values left out).")
    return " ".join(parts)


def _direction_html(evaluation, images):
    """A direction's section: its tables, grid and SynthRAD part; takes its
    pictures out of `images`."""
    direction, summary = evaluation.direction, evaluation.summary
    grid = images.pop(f"grid {direction}", None)
    picture = "" if grid is None else _figure_html(*grid, f"Comparison grid, {direction}")
    table = "" if "model" not in summary else _html_table(
        summary, f"Scores on the 8-bit scale, {direction}: mean &plusmn; standard deviation "
                 "over test images, per method")
    return (f"<h2>{direction}</h2>{table}{_tissue_html(summary, direction)}"
            f"{_uncertainty_paragraph(summary)}{picture}{_synthrad_html(evaluation, images)}")


def write_index_html(path, title, evaluations, images, links, note=""):
    """A page with each direction's table and grid, then the other images.

    Args:
        path: the HTML file to write (atomically), beside the images.
        title: the page's title and heading.
        evaluations: `DirectionEvaluation`s, a section each: its table
            (where it has 8-bit scores), its tissue, uncertainty and
            SynthRAD parts, and its `images["grid <direction>"]` and
            `images["synthrad <direction>"]`.
        images: `{heading: (file name in the same folder, figures.FigureText)}`;
            those no direction took are shown after the directions (loss
            curves).
        links: `{label: file name}` listed at the bottom.
        note: a sentence shown under the title (which weights were scored).
    """
    sections = [_direction_html(evaluation, images) for evaluation in evaluations]
    for heading, (name, text) in images.items():
        sections.append(f"<h2>{html.escape(heading)}</h2>"
                        + _figure_html(name, text, heading.capitalize()))
    link_items = "".join(f'<li><a href="{html.escape(n)}">{html.escape(label)}</a></li>'
                         for label, n in links.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
tr.model {{ font-weight: bold; background: #eef5ff; }}
img {{ max-width: 100%; }}
caption, figcaption {{ text-align: left; margin: 0.3em 0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {datetime.datetime.now().isoformat(timespec="seconds")}. {html.escape(note)}
{_intro(evaluations)}</p>
{"".join(sections)}
<h2>Files</h2><ul>{link_items}</ul>
</body></html>
"""
    atomic_write_text(path, page)


def write_report(out_dir, evaluations, title, loss_csvs=(), grid_rows=GRID_ROWS,
                 synthrad_rows=SYNTHRAD_ROWS, target=None, note=""):
    """Writes every report file into `out_dir`.

    Args:
        out_dir: the report folder (created if missing); unused where
            `target` is given.
        evaluations: `DirectionEvaluation`s; one without 8-bit scores (no
            `"model"` in its summary) gets its SynthRAD part only.
        title: page title.
        loss_csvs: `(label, path)` of training loss logs, plotted when present.
        grid_rows: images per comparison grid.
        synthrad_rows: cases in a SynthRAD figure.
        target: maps a file name to the path to write it to (a staging
            folder's, see `workflows.output_staging`); default: in
            `out_dir`.
        note: a sentence for the page, under its title.

    Returns:
        `{kind: path}` of what was written.
    """
    if target is None:
        os.makedirs(out_dir, exist_ok=True)

        def target(name):
            return os.path.join(out_dir, name)

    written = {"metrics": target("metrics.json")}
    write_metrics_json(written["metrics"], {e.direction: e.summary for e in evaluations})
    scored = [e for e in evaluations if "model" in e.summary]
    links = {"metrics.json": "metrics.json"}
    if scored:
        written["per_image"] = target("metrics_per_image.csv")
        write_per_image_csv(written["per_image"], scored)
        links["per-image metrics (CSV)"] = "metrics_per_image.csv"
    images = _synthrad_files(target, evaluations, written, links, synthrad_rows)
    for evaluation in scored:
        name = f"grid_{evaluation.direction}.png"
        written[f"grid_{evaluation.direction}"] = target(name)
        save_comparison_grid(written[f"grid_{evaluation.direction}"], evaluation, grid_rows)
        images[f"grid {evaluation.direction}"] = (
            name, comparison_grid_text(evaluation, grid_rows))
    curves = {}
    for label, path in loss_csvs:
        if os.path.isfile(path):
            curves.update({f"{label}: {k}": v for k, v in read_loss_csv(path).items()})
    if curves:
        written["loss_curves"] = target("loss_curves.png")
        save_loss_curves(written["loss_curves"], curves)
        images["loss curves"] = ("loss_curves.png", FigureText(
            f"Training loss curves, one panel per loss: {', '.join(curves)}",
            f"all {len(curves)} losses", [LOSS_LEGEND]))
    written["html"] = target("index.html")
    write_index_html(written["html"], title, evaluations, images, links, note)
    return written


def _synthrad_files(target, evaluations, written, links, rows):
    """`metrics_per_case.csv` and one figure per direction with SynthRAD
    cases; returns `{"synthrad <direction>": (figure name, its FigureText)}`."""
    images = {}
    with_cases = [e for e in evaluations if e.synthrad]
    if not with_cases:
        return images
    written["per_case"] = target("metrics_per_case.csv")
    write_per_case_csv(written["per_case"], with_cases)
    links["per-case SynthRAD metrics (CSV)"] = "metrics_per_case.csv"
    for evaluation in with_cases:
        settings = evaluation.summary["synthrad"]["settings"]
        name = f"synthrad_{evaluation.direction}.png"
        written[f"synthrad_{evaluation.direction}"] = target(name)
        drawn = (evaluation.synthrad, settings["tissue_thresholds_hu"],
                 settings["bone_threshold_hu"], rows)
        save_synthrad_figure(written[f"synthrad_{evaluation.direction}"], *drawn)
        text = synthrad_figure_text(*drawn)
        images[f"synthrad {evaluation.direction}"] = (name, text._replace(
            alt=f"SynthRAD view, {evaluation.direction}: {text.alt}"))
        for case in evaluation.synthrad:
            for key, label in (("mask_file", "mask"), ("sct_file", "synthetic CT")):
                if key in case.details:
                    links[f"{label} of {case.name}"] = case.details[key]
    return images

"""A report folder: `metrics.json`, `metrics_per_image.csv`, comparison
grids, loss curves and a static `index.html` that opens from disk."""

import csv
import datetime
import html
import io
import json
import math
import os

from vaecyclegan.evaluation.figures import read_loss_csv, save_comparison_grid, save_loss_curves
from vaecyclegan.evaluation.scoring import METHODS
from vaecyclegan.io.atomic_write import atomic_write_text

TABLE_KEYS = ("psnr", "ssim", "mae", "mae_hu", "bce", "auc", "f1")


def _json_safe(value):
    # JSON has no NaN or Infinity: an undefined metric is written as null.
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
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


def _cell(mean, std):
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{mean:.3f}"
    return f"{mean:.3f} &plusmn; {std:.3f}"


def _html_table(summary):
    keys = [k for k in TABLE_KEYS if k in summary["model"]]
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = []
    for method in METHODS:
        means, stds = summary[method], summary["std"][method]
        cells = "".join(f"<td>{_cell(means.get(k), stds.get(k))}</td>" for k in keys)
        css = ' class="model"' if method == "model" else ""
        body.append(f"<tr{css}><th>{method.replace('_', ' ')}</th>{cells}</tr>")
    return (f"<table><tr><th>method (n = {summary['n']})</th>{head}</tr>"
            + "".join(body) + "</table>")


def _uncertainty_paragraph(summary):
    u = summary.get("uncertainty")
    if not u:
        return ""
    return (f"<p>{u['samples']} latent samples per image. Correlation of the predicted "
            f"per-pixel standard deviation with the absolute error: Pearson "
            f"{u['pearson']:.3f}, Spearman {u['spearman']:.3f}. Mean std "
            f"{u['mean_std']:.3g} against a mean |error| of {u['mean_abs_error']:.3g} grey levels "
            f"(heat maps saturate at {u['std_map_max']:.3g}).</p>")


def write_index_html(path, title, evaluations, images, links):
    """A page with each direction's table and grid, then the other images.

    Args:
        images: `{caption: file name in the same folder}` shown after the
            directions (loss curves).
        links: `{label: file name}` listed at the bottom.
    """
    sections = []
    for evaluation in evaluations:
        grid = images.pop(f"grid {evaluation.direction}", None)
        picture = (f'<img src="{html.escape(grid)}" alt="comparison grid '
                   f'{evaluation.direction}">' if grid else "")
        sections.append(f"<h2>{evaluation.direction}</h2>{_html_table(evaluation.summary)}"
                        f"{_uncertainty_paragraph(evaluation.summary)}{picture}")
    for caption, name in images.items():
        sections.append(f'<h2>{html.escape(caption)}</h2><img src="{html.escape(name)}" '
                        f'alt="{html.escape(caption)}">')
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
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {datetime.datetime.now().isoformat(timespec="seconds")}. Means &plusmn; standard
deviations over test images; PSNR, SSIM, MAE and BCE/AUC/F1 on the 8-bit scale
(see the README, "Metrics"), MAE HU against the reference clipped to the CT window.
Baselines: the input itself (identity) and the input histogram-matched to the target
domain.</p>
{"".join(sections)}
<h2>Files</h2><ul>{link_items}</ul>
</body></html>
"""
    atomic_write_text(path, page)


def write_report(out_dir, evaluations, title, loss_csvs=(), grid_rows=6):
    """Writes every report file into `out_dir`.

    Args:
        evaluations: `DirectionEvaluation`s.
        title: page title.
        loss_csvs: `(label, path)` of training loss logs, plotted when present.
        grid_rows: images per comparison grid.

    Returns:
        `{kind: path}` of what was written.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = {"metrics": os.path.join(out_dir, "metrics.json"),
               "per_image": os.path.join(out_dir, "metrics_per_image.csv")}
    write_metrics_json(written["metrics"], {e.direction: e.summary for e in evaluations})
    write_per_image_csv(written["per_image"], evaluations)
    images = {}
    for evaluation in evaluations:
        name = f"grid_{evaluation.direction}.png"
        save_comparison_grid(os.path.join(out_dir, name), evaluation, grid_rows)
        images[f"grid {evaluation.direction}"] = name
        written[f"grid_{evaluation.direction}"] = os.path.join(out_dir, name)
    curves = {}
    for label, path in loss_csvs:
        if os.path.isfile(path):
            curves.update({f"{label}: {k}": v for k, v in read_loss_csv(path).items()})
    if curves:
        written["loss_curves"] = os.path.join(out_dir, "loss_curves.png")
        save_loss_curves(written["loss_curves"], curves)
        images["loss curves"] = "loss_curves.png"
    links = {"metrics.json": "metrics.json", "per-image metrics (CSV)": "metrics_per_image.csv"}
    written["html"] = os.path.join(out_dir, "index.html")
    write_index_html(written["html"], title, evaluations, images, links)
    return written

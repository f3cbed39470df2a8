"""What `vaecyclegan-eval` does, for a run folder or for folders of images."""

import json
import os

from vaecyclegan.config import ModelConfig
from vaecyclegan.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation import evaluate_predictions, format_table, pooled_pixels, paired_files
from vaecyclegan.image_io import read_grey
from vaecyclegan.report import write_report
from vaecyclegan.training_run import RUN_FILE, evaluate_weights


def _print_summary(summaries, written):
    print(f"\n{format_table(summaries)}\nReport: {written['html']}", flush=True)


def evaluate_run(run_dir, out_dir, samples=1):
    """Re-evaluates a training run's saved weights on its test pairs."""
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isfile(path):
        raise InputError(run_dir, f"no {RUN_FILE}: not a run folder written by train.py")
    with open(path, encoding="utf-8") as f:
        run = json.load(f)
    config = ModelConfig.load(run["weights_dir"])
    folders = resolve_dataset(run["data_dir"], run.get("ct_dir"), run.get("mri_dir"))
    evaluations = evaluate_weights(run["weights_dir"], folders, config, samples=samples)
    if not evaluations:
        raise InputError(run["data_dir"] or folders.ct_train, "the dataset has no paired test images")
    written = write_report(
        out_dir, evaluations, f"vaecyclegan evaluation of {os.path.basename(os.path.normpath(run_dir))}",
        loss_csvs=[("translate", os.path.join(run_dir, "losses.csv")),
                   ("upscale", os.path.join(run_dir, "sr_losses.csv"))],
    )
    _print_summary({e.direction: e.summary for e in evaluations}, written)
    return evaluations


def evaluate_folders(predictions_dir, references_dir, inputs_dir, direction, out_dir):
    """Scores predicted images against references, beside both baselines.

    Images are paired by file name; the histogram-matching baseline is
    matched to the references' pooled histogram (no training data is known
    here), which can only flatter the baseline.
    """
    pairs = paired_files(predictions_dir, references_dir)
    if not pairs:
        raise InputError(predictions_dir, f"no file name is also in {references_dir}")
    inputs = dict(paired_files(predictions_dir, inputs_dir))
    missing = [p for p, _ in pairs if p not in inputs]
    if missing:
        raise InputError(missing[0], f"no input of this file name in {inputs_dir}")
    names = [os.path.basename(p) for p, _ in pairs]
    predictions = [read_grey(p) for p, _ in pairs]
    references = [read_grey(r) for _, r in pairs]
    input_images = [read_grey(inputs[p]) for p, _ in pairs]
    for name, a, b, c in zip(names, predictions, references, input_images):
        if not a.shape == b.shape == c.shape:
            raise InputError(name, f"prediction {a.shape}, reference {b.shape} and input "
                             f"{c.shape} differ in size")
    evaluation = evaluate_predictions(direction, names, input_images, predictions, references,
                                      pooled_pixels(references))
    written = write_report(out_dir, [evaluation], f"vaecyclegan {direction} evaluation")
    _print_summary({direction: evaluation.summary}, written)
    return evaluation

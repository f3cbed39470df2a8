"""What `vaecyclegan-eval` does, given `EvalSettings`: a training run's
weights on its test pairs, or any tool's predicted images against
references."""

import logging
import os

from vaecyclegan.config import ModelConfig
from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.report import write_report
from vaecyclegan.evaluation.scoring import evaluate_predictions, format_table, pooled_pixels
from vaecyclegan.evaluation.test_pairs import evaluate_weights, paired_files
from vaecyclegan.io.image_format import read_grey
from vaecyclegan.workflows.run_folder import read_run_file

logger = logging.getLogger(__name__)


def evaluate(settings):
    """Runs `vaecyclegan-eval`: `evaluate_run` with `settings.run`, else
    `evaluate_folders`.

    Args:
        settings: an `EvalSettings`.

    Returns:
        The `DirectionEvaluation`s (a list for a run, one for folders).
    """
    settings.validate()
    if settings.run:
        return evaluate_run(settings.run, settings.out or settings.run, settings.samples)
    return evaluate_folders(settings.predictions, settings.references, settings.inputs,
                            settings.direction, settings.out)


def _log_summary(summaries, written):
    logger.info(f"\n{format_table(summaries)}\nReport: {written['html']}")


def evaluate_run(run_dir, out_dir, samples=1):
    """Re-evaluates a training run's saved weights on its test pairs."""
    run = read_run_file(run_dir)
    config = ModelConfig.load(run["weights_dir"])
    folders = resolve_dataset(run["data_dir"], run.get("ct_dir"), run.get("mri_dir"))
    evaluations = evaluate_weights(run["weights_dir"], folders, config, samples=samples)
    if not evaluations:
        raise InputError(run["data_dir"] or folders.ct_train,
                         "the dataset has no paired test images")
    name = os.path.basename(os.path.normpath(run_dir))
    written = write_report(
        out_dir, evaluations, f"vaecyclegan evaluation of {name}",
        loss_csvs=[("translate", os.path.join(run_dir, "losses.csv")),
                   ("upscale", os.path.join(run_dir, "sr_losses.csv"))],
    )
    _log_summary({e.direction: e.summary for e in evaluations}, written)
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
    _log_summary({direction: evaluation.summary}, written)
    return evaluation

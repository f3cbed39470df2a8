"""What `vaecyclegan-eval` does, given `EvalSettings`: a training run's
weights on its test pairs, any tool's predictions against references
(8-bit images with baselines, and cases in HU with SynthRAD's metrics), or
a mri2ct model on a SynthRAD folder.

Predictions against references (`evaluate_given`): with `--inputs` and 2-D
image files, the 8-bit evaluation with both baselines, each image read as
`infer.py --reference` reads it; where the references also carry HU (16-bit PNG
of HU + 1024) and the direction makes CT, the SynthRAD section is added
beside it. Without `--inputs` the cases must carry HU (NIfTI, DICOM CT,
16-bit PNG) and only the synthetic CT is scored: there is no baseline to
put beside a volume without its input.
"""

import dataclasses
import logging
import os

import numpy as np

from vaecyclegan.config import IntensityConfig, ModelConfig
from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError, printable
from vaecyclegan.evaluation.case_scoring import (
    SPACING_ASSUMED,
    SPACING_FROM_FILE,
    SPACING_GIVEN,
    HuOptions,
    case_mask,
    score_case,
    synthrad_section,
)
from vaecyclegan.evaluation.cases import (
    aux_source,
    case_name,
    check_same_grid,
    in_reference_order,
    pair_cases,
    read_hu,
    read_mask,
    say_unpartnered,
    write_mask,
)
from vaecyclegan.evaluation.figures import SYNTHRAD_ROWS
from vaecyclegan.evaluation.paired_test_set import evaluate_weights, paired_files
from vaecyclegan.evaluation.report import write_report
from vaecyclegan.evaluation.scoring import (
    DEFAULT_CT_WINDOW_HU,
    DirectionEvaluation,
    ScanPair,
    evaluate_scans,
    format_table,
    pooled_indices,
    scan_pool,
)
from vaecyclegan.io.image_format import (
    NoImageFiles,
    list_images,
    read_grey,
    read_image_scan,
    read_result_scan,
)
from vaecyclegan.io.intensity import warn_if_no_air
from vaecyclegan.io.scan import list_folder
from vaecyclegan.names import DIRECTION_DOMAINS
from vaecyclegan.workflows.output_staging import check_writable, stage_folder_and_publish
from vaecyclegan.workflows.run_folder import LOSS_LOGS, read_run_file
from vaecyclegan.workflows.settings import window_bounds

logger = logging.getLogger(__name__)



def evaluate(settings):
    """Runs `vaecyclegan-eval`: `evaluate_run` with `settings.run`,
    `evaluate_synthrad` with `settings.synthrad`, else `evaluate_given`.

    Args:
        settings: an `EvalSettings`.

    Returns:
        The `DirectionEvaluation`s (a list for a run, one otherwise).
    """
    settings.validate()
    if settings.out:
        # Before any scoring: the report could not be written there.
        check_writable(settings.out)
        if not settings.run:
            _check_out_apart_from_inputs(settings)
    if settings.run:
        return evaluate_run(settings.run, settings.out or settings.run, settings.samples)
    work = evaluate_synthrad if settings.synthrad else evaluate_given
    earlier, published = _visible_files(settings.out), []
    # Cases write masks (and synthetic CTs) as they are scored: staged, so
    # that a case that fails after them leaves nothing in --out.
    evaluation = stage_folder_and_publish(
        settings.out, lambda staging: work(dataclasses.replace(settings, out=staging)),
        _input_files(settings), published=published)
    _log_summary({evaluation.direction: evaluation.summary},
                 os.path.join(settings.out, "index.html"))
    _warn_of_files_not_replaced(settings.out, earlier, published)
    # After the scores, beside them: a refusal stays one line.
    _warn_if_predictions_are_references(settings)
    return evaluation


def _visible_files(folder):
    """The paths, relative to `folder`, of the files under it outside hidden
    names (a staging folder), none if it is absent."""
    found = set()
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found.update(os.path.relpath(os.path.join(root, name), folder) for name in names
                     if not name.startswith("."))
    return found


def _warn_of_files_not_replaced(folder, earlier, published):
    """An --out used before keeps the files this report did not replace (an
    image report's grids beside a volume report's metrics): they would be
    read as this evaluation's."""
    kept = [printable(name) for name in sorted(earlier - set(published))]
    if kept:
        logger.warning("%s held %d file(s) that this report does not replace (%s%s): they "
                       "are from an earlier run; give a new --out to keep reports apart",
                       folder, len(kept), ", ".join(kept[:3]), ", ..." if len(kept) > 3 else "")


def _input_files(settings):
    """The files the options name (a mask, a dose grid, ...): no output may
    replace one, as a mask written by an earlier run and given back with
    --mask would be by the mask this run writes."""
    options = ("predictions", "references", "inputs", "mask", "target", "dose_ct", "dose_sct",
               "hu_to_rsp")
    return [getattr(settings, option) for option in options
            if getattr(settings, option) and os.path.isfile(getattr(settings, option))]


def _warn_if_predictions_are_references(settings):
    """Predictions and references that are one file or folder score every
    file against itself: perfect scores (a CycleGAN results folder holds
    its fake_B and real_B images side by side). Said, not refused: scoring
    a reference against itself is also how a pipeline is checked."""
    if not (settings.predictions and settings.references):
        return
    if os.path.realpath(settings.predictions) == os.path.realpath(settings.references):
        logger.warning("--predictions and --references are the same: every file is scored "
                       "against itself. To score another tool's results, give each its own "
                       "folder (the README's 'Scoring other tools' results' splits CycleGAN's "
                       "results folder)")


def _check_out_apart_from_inputs(settings):
    """Refuses an `--out` that is, or lies inside, a folder the command
    reads: its figures, masks and synthetic CTs would mix with the inputs
    and be read as cases by the next run."""
    out = os.path.realpath(settings.out)
    for option in ("synthrad", "predictions", "references", "inputs", "mask", "target",
                   "dose_ct", "dose_sct"):
        folder = getattr(settings, option)
        if not folder or not os.path.isdir(folder):
            continue
        root = os.path.realpath(folder)
        if os.path.commonpath([root, out]) == root:
            raise InputError(settings.out, f"--out is inside the --{option.replace('_', '-')} "
                             f"folder {folder}; "
                             "write the report apart from the inputs")


def _log_summary(summaries, html):
    logger.info(f"\n{format_table(summaries)}\nReport: {html}")


def evaluate_run(run_dir, out_dir, samples=1):
    """Re-evaluates a training run's saved weights on its test pairs."""
    run = read_run_file(run_dir)
    config = ModelConfig.load(run["weights_dir"])
    folders = resolve_dataset(run["data_dir"], run.get("ct_dir"), run.get("mri_dir"))
    data = folders.holding(out_dir)
    if data:  # the report's pictures would be read as the next run's test images
        raise InputError(out_dir, f"--out is in the run's data folder {data}; write the report "
                         "apart from the data")
    evaluations = evaluate_weights(run["weights_dir"], folders, config, samples=samples)
    if not evaluations:
        raise InputError(run["data_dir"] or folders.ct_train,
                         "the dataset has no paired test images (2-D image files of one name "
                         "in both test folders; score volumes with --predictions after "
                         "infer.py)")
    name = os.path.basename(os.path.normpath(run_dir))
    written = write_report(
        out_dir, evaluations, f"vaecyclegan evaluation of {name}",
        loss_csvs=[(label, os.path.join(run_dir, name)) for label, name in LOSS_LOGS],
    )
    _log_summary({e.direction: e.summary for e in evaluations}, written["html"])
    return evaluations


def _folder_evaluation(predictions_dir, references_dir, inputs_dir, direction, window=None):
    """The 8-bit evaluation of images paired by file name, with baselines.

    Each image is read as `infer.py --reference` reads it (16-bit CT as HU
    + 1024 through the CT window, 16-bit MRI inputs and references by
    their percentiles, 8-bit as grey levels) and predictions as `infer.py`
    writes them (16-bit synthetic MRI linear over 0..65535), so that both
    score the same files alike."""
    pairs = paired_files(predictions_dir, references_dir)
    if not pairs:
        raise InputError(predictions_dir, f"no file name is also in {references_dir}"
                         f"{_names_hint(predictions_dir, references_dir)}")
    say_unpartnered([os.path.basename(p) for pair in pairs for p in pair],
                    [os.path.basename(p) for p in list_images(predictions_dir)],
                    [os.path.basename(p) for p in list_images(references_dir)], "image(s)",
                    len(pairs))
    inputs = dict(paired_files(predictions_dir, inputs_dir))
    missing = [p for p, _ in pairs if p not in inputs]
    if missing:
        raise InputError(missing[0], f"no input of this file name (without extension) in "
                         f"{inputs_dir}")
    domain_in, domain_out = DIRECTION_DOMAINS[direction]
    units, pooled = _check_triples(pairs, inputs, domain_in, domain_out)
    intensity = IntensityConfig() if window is None else IntensityConfig(ct_window_hu=window)
    if window is None and domain_out == "ct" and "grey" in units[0] and "hu" in units[1]:
        logger.warning("the 8-bit predictions are read through the default CT window of %g to "
                       "%g HU against HU references; give --ct-window LEVEL,WIDTH if they "
                       "were written in another (a brain window: 40,400)",
                       *intensity.ct_window_hu)
    pool = scan_pool(pooled, intensity)
    scored = (ScanPair(os.path.basename(prediction), read_image_scan(inputs[prediction], domain_in),
                       read_result_scan(prediction, domain_out).to_unit(intensity), None,
                       read_image_scan(reference, domain_out))
              for prediction, reference in pairs)
    # The SynthRAD section, in HU, is `evaluate_given`'s.
    return evaluate_scans(direction, scored, pool, intensity, synthrad=False,
                          window_given=window is not None)


def _check_triples(pairs, inputs, domain_in, domain_out):
    """Reads every prediction, then every reference and input, and checks
    each triple's sizes, before a line is said or a score made (refusals
    first: a refused run says one line). Only their sizes and units are
    kept, and the references the baseline's histogram pools
    (`pooled_indices`); the images are read again one triple at a time to
    be scored. Returns the units of the predictions and of the references
    (sets), and the pooled reference scans."""
    shapes, units, pooled = [], [], []
    chosen = set(pooled_indices(len(pairs)))
    for role, paths, read, domain in (
            ("prediction", [p for p, _ in pairs], read_result_scan, domain_out),
            ("reference", [r for _, r in pairs], read_image_scan, domain_out),
            ("input", [inputs[p] for p, _ in pairs], read_image_scan, domain_in)):
        shapes.append([])
        units.append(set())
        for index, path in enumerate(paths):
            scan = read(path, domain)
            shapes[-1].append(scan.values.shape[1:])
            units[-1].add(scan.units)
            if role == "reference" and index in chosen:
                pooled.append(scan)
    for (prediction, _), a, b, c in zip(pairs, *shapes):
        if not a == b == c:
            raise InputError(prediction, f"prediction {a}, reference {b} and input {c} differ "
                             "in size; resample the predictions to the references' size first")
    return units, pooled


def _check_images_for_inputs(settings):
    """--inputs scores 2-D image files; volumes were refused as a folder
    with "no image files", which did not say why."""
    for option in ("predictions", "references", "inputs"):
        folder = getattr(settings, option)
        try:
            list_images(folder)
        except NoImageFiles:
            raise InputError(folder, f"no image files in this --{option} folder: --inputs is "
                             "for the 8-bit evaluation of 2-D images (PNG, TIFF, ...); for "
                             "CT volumes (DICOM, NIfTI) leave --inputs out to score them in "
                             "HU") from None


def _names_hint(predictions_dir, references_dir):
    """A few names of each folder, and how to pair by a suffix."""
    listed = [[os.path.basename(p) for p in list_images(folder)[:3]]
              for folder in (predictions_dir, references_dir)]
    hint = f" (predictions such as {', '.join(listed[0])}; references such as " \
           f"{', '.join(listed[1])})"
    return hint + ("; files are paired by name: rename or link them to one name (the README's "
                   "'Scoring other tools' results' shows how for CycleGAN's results folder)")


def evaluate_given(settings):
    """`--predictions` against `--references`: the 8-bit evaluation (with
    `--inputs`), the SynthRAD metrics in HU, or both (module docstring)."""
    if settings.inputs:
        _check_images_for_inputs(settings)
        evaluation = _folder_evaluation(settings.predictions, settings.references,
                                        settings.inputs, settings.direction,
                                        window_bounds(settings.ct_window))
        if not (settings.direction == "mri2ct" and _hu_references(settings)):
            return _finish(settings, evaluation, f"vaecyclegan {settings.direction} evaluation")
        pairs = pair_cases(settings.predictions, settings.references)
    else:
        pairs = pair_cases(settings.predictions, settings.references)
        evaluation = DirectionEvaluation(settings.direction, [n for n, _, _ in pairs], [], [],
                                         [], None, {"n": len(pairs)}, [])
    options = hu_options(settings)
    results = [_figure_if_drawn(_score_pair(settings, options, name, prediction, reference,
                                            len(pairs), index), index)
               for index, (name, prediction, reference) in enumerate(pairs)]
    _add_section(evaluation, results, options,
                 f"the masks of {settings.mask}" if settings.mask else None)
    return _finish(settings, evaluation, f"vaecyclegan {settings.direction} evaluation in HU")


def _figure_if_drawn(result, index):
    """A case's `CaseResult`, without its figure's slices past the first
    `SYNTHRAD_ROWS` cases, which the report draws: a folder of thousands
    of 2-D cases had held them all."""
    if index >= SYNTHRAD_ROWS:
        result.figure = None
    return result


def _hu_references(settings):
    """Whether every reference the 8-bit evaluation paired is 16-bit (HU + 1024)."""
    pairs = paired_files(settings.predictions, settings.references)
    return all(read_grey(reference).dtype == np.uint16 for _, reference in pairs)


def _finish(settings, evaluation, title):
    write_report(settings.out, [evaluation], title)
    return evaluation


def _add_section(evaluation, results, options, masks):
    """Adds the `"synthrad"` section; `masks` says where the masks came
    from (None: the body masks made from the references)."""
    masks = masks or options.body_mask_description()
    evaluation.summary["synthrad"] = synthrad_section(results, options, masks)
    evaluation.synthrad = results


def hu_options(settings):
    """The `HuOptions` of the settings (the HU -> RSP curve read here, so a
    bad curve file stops before any volume is read)."""
    from vaecyclegan.evaluation.wepl import DEFAULT_ANGLES, load_hu_to_rsp

    return HuOptions(
        tissue_thresholds=tuple(settings.tissue_thresholds),
        bone_threshold=settings.bone_threshold, body_threshold=settings.body_threshold,
        mask_dilation_mm=settings.mask_dilation_mm, wepl=settings.wepl,
        angles=tuple(settings.beam_angles or DEFAULT_ANGLES),
        curve=load_hu_to_rsp(settings.hu_to_rsp) if settings.hu_to_rsp else None,
        curve_file=settings.hu_to_rsp, prescription_gy=settings.prescription_gy)


def _score_pair(settings, options, name, prediction_source, reference_source, count, index):
    """Reads one case, checks its geometry, scores it and writes its mask."""
    reference = read_hu(reference_source, name, "reference", settings.spacing_2d)
    _log_case(index, count, name, reference)
    prediction = in_reference_order(
        read_hu(prediction_source, name, "prediction", settings.spacing_2d,
                _grey_window(settings)), reference)
    check_same_grid(prediction, reference)
    mask = _given_mask(settings.mask, name, reference, count, "--mask")
    target = _given_mask(settings.target, name, reference, count, "--target")
    # Said once the case is known to be scored (a refusal stays one line).
    for image, role in ((reference, "reference"), (prediction, "prediction")):
        warn_if_no_air(image.path, image.values, f"the {role}")
    return score_hu_case(settings, options, name, prediction.values, reference, mask, target,
                         _dose_files(settings, name, count))


def _log_case(index, count, name, reference):
    """`case i/N: name, shape, spacing` for a volume: a folder of heads is
    scored for minutes, case by case, and had said nothing until its
    table (2-D cases, scored in a blink, stay unsaid: hundreds of lines)."""
    if count > 1 and reference.values.ndim == 3:
        shape = "x".join(str(n) for n in reference.values.shape)
        spacing = ("" if reference.spacing is None else
                   ", " + " x ".join(f"{mm:.3g}" for mm in reference.spacing) + " mm")
        logger.info(f"case {index + 1}/{count}: {printable(name)}, {shape} voxels{spacing}")


def _grey_window(settings):
    """With --inputs, 8-bit predictions are synthetic CT in the CT window
    (as infer.py writes them from 8-bit input), read back to HU through it;
    without, they are refused."""
    if not settings.inputs:
        return None
    return window_bounds(settings.ct_window) or DEFAULT_CT_WINDOW_HU


def score_hu_case(settings, options, name, prediction, reference, mask, target=None,
                  dose=None):
    """`score_case` of a read case, its ValueErrors turned into InputErrors
    naming the reference; the mask used is written to `settings.out`."""
    if mask is None:
        mask = case_mask(reference.values, reference.spacing, options)
        if not mask.any():
            raise InputError(reference.path, f"the body mask is empty: no voxel above "
                             f"{options.body_threshold:g} HU; pass --mask or lower "
                             "--body-threshold")
    try:
        result = score_case(name, prediction, reference.values, reference.spacing, options,
                            mask, target, dose)
    except ValueError as error:
        raise InputError(reference.path, str(error)) from None
    result.details["mask_file"] = write_mask(settings.out, reference, mask)
    result.details["spacing_from"] = _spacing_from(settings, reference)
    return result


def _spacing_from(settings, reference):
    """Where the reference's mm per pixel came from: its file, `--spacing`
    (for a file that holds none: an image file, a DICOM without
    PixelSpacing), or the 1 mm assumed without it."""
    if reference.scan is None or reference.scan.spacing is not None:
        return SPACING_FROM_FILE
    return SPACING_GIVEN if settings.spacing_2d else SPACING_ASSUMED


def _given_mask(option_value, name, reference, count, option):
    if not option_value:
        return None
    source = aux_source(option_value, name, count, option)
    if source is None:
        raise InputError(option_value, f"no {option} file for case {name!r} in this folder")
    return read_mask(source, reference, option)


def _dose_files(settings, name, count):
    """(sCT dose, CT dose) files of a case, or None without dose options."""
    if not settings.dose_ct:
        return None
    files = []
    for path in (settings.dose_sct, settings.dose_ct):
        if not os.path.isdir(path):
            if count > 1:
                raise InputError(path, f"one dose file for {count} cases: give folders of "
                                 "dose files named after the cases")
            files.append(path)
            continue
        found = [os.path.join(path, e) for e in sorted(list_folder(path))
                 if case_name(e) == name and os.path.isfile(os.path.join(path, e))]
        if not found:
            raise InputError(path, f"no dose file named after case {name!r} here")
        files.append(found[0])
    return tuple(files)


def evaluate_synthrad(settings):
    """Translates each SynthRAD patient's MRI with the mri2ct weights and
    scores it against the CT inside the patient's mask; the synthetic CTs
    go to `<out>/sct/<patient>.nii.gz`."""
    from vaecyclegan.evaluation.synthrad_layout import find_patients

    patients = find_patients(settings.synthrad)
    options = hu_options(settings)
    config = ModelConfig.load(settings.weights_dir)
    translator = _mri2ct_translator(settings.weights_dir, config)
    results = [_figure_if_drawn(_synthrad_patient(settings, options, patient, translator,
                                                  config.intensity, len(patients), index), index)
               for index, patient in enumerate(patients)]
    evaluation = DirectionEvaluation("mri2ct", [p.name for p in patients], [], [], [], None,
                                     {"n": len(results)}, [])
    if settings.mask:
        masks = f"the masks of {settings.mask}"
    elif all(p.mask for p in patients):
        masks = "each patient's mask file"
    else:
        masks = ("each patient's mask file where there is one, else "
                 + options.body_mask_description())
    _add_section(evaluation, results, options, masks)
    return _finish(settings, evaluation,
                   f"vaecyclegan SynthRAD evaluation of {settings.synthrad}")


def _mri2ct_translator(weights_dir, config):
    from vaecyclegan.translation.translator import load_translator

    return load_translator(weights_dir, "mri2ct", config)


def _synthrad_patient(settings, options, patient, translator, intensity, count, index):
    from vaecyclegan.evaluation.synthrad_layout import (
        is_mha,
        read_volume,
        translate_mr,
        write_sct,
    )

    ct_scan, ct = read_volume(patient.ct, "ct")
    _log_case(index, count, patient.name, ct)
    mr_scan, mr = read_volume(patient.mr, "mri")
    check_same_grid(mr, ct, "the MRI ")
    mask = None
    if settings.mask:  # the given masks, in place of the patients' own
        mask = _given_mask(settings.mask, patient.name, ct, count, "--mask")
    elif patient.mask:
        mask_image = read_volume(patient.mask, "mri")[1]
        check_same_grid(mask_image, ct, "the mask ")
        mask = mask_image.values > 0
        if not mask.any():
            raise InputError(patient.mask, "the mask has no voxel (nothing above 0)")
    del ct_scan
    warn_if_no_air(ct.path, ct.values, "the CT")
    unit, sct_hu = translate_mr(mr_scan, translator, intensity, settings.batch_size)
    suffix = ".mha" if is_mha(patient.mr) else ".nii.gz"
    sct_name = os.path.join("sct", patient.name + suffix)
    write_sct(mr_scan, unit, intensity, os.path.join(settings.out, sct_name))
    del mr_scan, unit
    result = score_hu_case(settings, options, patient.name, sct_hu, ct, mask,
                           _given_mask(settings.target, patient.name, ct, count, "--target"),
                           _dose_files(settings, patient.name, count))
    result.details["sct_file"] = sct_name
    return result

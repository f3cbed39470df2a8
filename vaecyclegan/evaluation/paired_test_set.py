"""Evaluation on a dataset's paired test files: pairing by file name,
reading inputs and references as `infer.py` reads them, the baselines'
training-image pool, and in-memory or saved generators scored on them.
Where the dataset has 16-bit HU references of its CT test slices (the
phantom's `testA_hu`), mri2ct also gets SynthRAD's image metrics in HU
(`scoring.evaluate_scans`)."""

import logging
import os

import numpy as np

from vaecyclegan.errors import InputError
from vaecyclegan.evaluation.scoring import (
    HISTOGRAM_POOL_SIZE,
    ScanPair,
    evaluate_scans,
    pooled_pixels,
)
from vaecyclegan.io.formats import find_scan_sources, read_scan
from vaecyclegan.io.image_format import list_images, read_grey, read_image_scan
from vaecyclegan.io.intensity import PNG16_HU_OFFSET
from vaecyclegan.names import DIRECTION_DOMAINS, DIRECTIONS, WEIGHT_FILES
from vaecyclegan.networks import load_network
from vaecyclegan.translation.translator import make_translator

logger = logging.getLogger(__name__)

# Test pairs read and translated together: the translator's batches fill,
# and a set of thousands of slices is never held whole.
TRANSLATED_AT_ONCE = 64


def paired_files(input_folder, reference_folder):
    """`[(input_path, reference_path), ...]` (in the inputs' order) for the
    image files of both folders with one file name; then, among those
    left, with one name without extension (`infer.py` writes `a.png` for
    `a.jpg`, and `infer.py --reference` pairs so too).

    Raises:
        InputError: a file left without a partner of its exact name has
            two candidates by name without extension (`a.png` and `a.jpg`
            against `a.tif`): which is meant is unclear.
    """
    references = list_images(reference_folder)
    inputs = list_images(input_folder)
    by_name = {os.path.basename(p): p for p in references}
    exact = {p: by_name[os.path.basename(p)] for p in inputs if os.path.basename(p) in by_name}
    taken = set(exact.values())
    inputs_left = _by_stem(p for p in inputs if p not in exact)
    references_left = _by_stem(p for p in references if p not in taken)
    by_stem = {}
    for stem, paths in inputs_left.items():
        if stem not in references_left:
            continue
        for group in (paths, references_left[stem]):
            if len(group) > 1:
                raise InputError(group[1], f"{os.path.basename(group[0])} has the same name "
                                 "without extension; which one is meant is unclear")
        by_stem[paths[0]] = references_left[stem][0]
    return [(p, exact.get(p) or by_stem[p]) for p in inputs if p in exact or p in by_stem]


def file_stem(path):
    """A file's name without folder and extension: what pairs files."""
    return os.path.splitext(os.path.basename(path))[0]


def _by_stem(paths):
    by_stem = {}
    for path in paths:
        by_stem.setdefault(file_stem(path), []).append(path)
    return by_stem


def check_test_pairs(folders):
    """Reads every test pair (and 16-bit HU reference) the evaluations will
    score, before training, so that a bad one stops the run at its start
    with one line, not at the first evaluation.

    Returns:
        How many pairs there are to score (0: the evaluations will have
        none, e.g. no test folders, or no file name in both).

    Raises:
        InputError: an unreadable file, or a pair (or HU reference) whose
            sizes differ.
    """
    if not (folders.ct_test and folders.mri_test):
        return 0
    try:
        pairs = paired_files(folders.mri_test, folders.ct_test)
    except InputError as error:
        # Volumes there are not an error, but the closing evaluation pairs
        # image files only: say where they are scored instead.
        logger.info(f"No test pairs to score: {error} (the evaluation during and after "
                    "training pairs 2-D image files; score DICOM or NIfTI test volumes with "
                    "vaecyclegan-eval --predictions after infer.py)")
        return 0
    if not pairs:
        # Both folders hold images, yet no score will come, which the
        # Kaggle dataset's own split (ct<N>.png against mri<N>.jpg) meets.
        logger.warning(f"No test pairs to score: no file name is in both {folders.mri_test} "
                       f"and {folders.ct_test}, and the evaluations pair test files by name. An "
                       "unpaired test split (such as the Kaggle dataset's ct<N>/mri<N> files) "
                       "gets no paired scores; give paired references one name, or score "
                       "infer.py's translations against them with vaecyclegan-eval "
                       "--predictions --references")
    for mri_path, ct_path in pairs:
        ct = read_image_scan(ct_path, "ct")
        _check_one_size(mri_path, read_image_scan(mri_path, "mri").values.shape[1:],
                        ct_path, ct.values.shape[1:])
        _hu_reference(folders.ct_test_hu, ct_path, ct)
    return len(pairs)


def _check_one_size(input_path, input_shape, other_path, other_shape):
    """A test pair is scored pixel by pixel (skimage raised a traceback)."""
    if other_shape != input_shape:
        raise InputError(other_path, f"is {other_shape[1]}x{other_shape[0]}, its test partner "
                         f"{input_path} {input_shape[1]}x{input_shape[0]}: a test pair is "
                         "scored pixel by pixel and must be one size")


def _hu_reference(hu_folder, reference_path, reference):
    """The 16-bit HU copy of a CT test reference in `hu_folder`, unclipped,
    checked to be its size; None without one."""
    if not hu_folder:
        return None
    hu_path = os.path.join(hu_folder, os.path.basename(reference_path))
    hu = read_hu_unclipped(hu_path)
    if hu is not None:
        _check_one_size(reference_path, reference.values.shape[1:], hu_path, hu.shape)
    return hu


def histogram_pool(folder, domain, intensity):
    """`pooled_pixels` of a domain folder's scans (the middle slice of a
    volume), read as training reads them, sampling only those it uses."""
    sources = find_scan_sources(folder)
    step = max(1, len(sources) // HISTOGRAM_POOL_SIZE)
    planes = []
    for source in sources[::step][:HISTOGRAM_POOL_SIZE]:
        try:
            unit = read_scan(source, domain).to_unit(intensity)
        except InputError:
            continue  # training skips it too, with a warning
        planes.append((unit[len(unit) // 2] + 1.0) * 127.5)
    if not planes:
        raise InputError(folder, f"no readable {domain.upper()} image for the baseline")
    return pooled_pixels(planes)


def read_hu_unclipped(hu_path):
    """A 16-bit HU reference (HU + 1024) in HU as it is, or None when missing."""
    if not os.path.isfile(hu_path):
        return None
    return read_grey(hu_path).astype(np.float32) - PNG16_HU_OFFSET


def evaluate_direction(translator, direction, pairs, target_pool, intensity, hu_folder=None,
                       batch_size=8, samples=1, synthrad=True):
    """Translates the inputs of `pairs` and scores them (`evaluate_scans`),
    `TRANSLATED_AT_ONCE` at a time: a test set is never held whole.

    Inputs and references are read as `infer.py` reads them (16-bit CT as
    HU, 16-bit MRI by percentiles) and scored on the 8-bit scale of [-1, 1].

    Args:
        translator: a `Translator` for this direction.
        direction: "mri2ct" or "ct2mri": the domains the inputs and
            references are read as (CT-making directions get the CT
            metrics).
        pairs: `[(input_path, reference_path), ...]` of image files.
        target_pool: pooled target-domain pixels for the baselines
            (`histogram_pool`; as `evaluate_scans`), or None to score the
            model alone.
        intensity: the `IntensityConfig` of the weights.
        hu_folder: folder of 16-bit HU references with the same file names,
            for directions that produce CT (a 16-bit CT reference is its own).
        batch_size: slices per forward pass.
        samples: latent draws per image; above 1 the mean is scored and the
            deviation maps are correlated with the error.
        synthrad: add SynthRAD's HU metrics where HU references exist
            (the 16-bit ones of `hu_folder`, or 16-bit CT references).
    """
    scored = _translated_pairs(translator, direction, pairs, intensity, hu_folder, batch_size,
                               samples)
    return evaluate_scans(direction, scored, target_pool, intensity, samples,
                          synthrad=synthrad)


def _translated_pairs(translator, direction, pairs, intensity, hu_folder, batch_size, samples):
    """`ScanPair`s of `pairs`, read and translated `TRANSLATED_AT_ONCE` at a time."""
    domain_in, domain_out = DIRECTION_DOMAINS[direction]
    for start in range(0, len(pairs), TRANSLATED_AT_ONCE):
        chunk = pairs[start:start + TRANSLATED_AT_ONCE]
        inputs = [read_image_scan(a, domain_in) for a, _ in chunk]
        references = [read_image_scan(b, domain_out) for _, b in chunk]
        for (a, b), scan, reference in zip(chunk, inputs, references):
            _check_one_size(a, scan.values.shape[1:], b, reference.values.shape[1:])
        means, stds = translator.translate_stacks([s.to_unit(intensity) for s in inputs],
                                                  batch_size, samples,
                                                  [s.pixel_mm for s in inputs])
        for (a, b), scan, mean, std, reference in zip(chunk, inputs, means, stds, references):
            yield ScanPair(os.path.basename(a), scan, mean, std, reference,
                           _hu_reference(hu_folder, b, reference))


def evaluate_generators(generators, folders, config, batch_size=8, samples=1,
                        baselines=True, rrdbnet=None):
    """Evaluates both directions of in-memory generators on the test pairs,
    each input translated at the training pixel scale as `infer.py` does.

    Args:
        generators: `{"g_target": model, "g_source": model}`.
        folders: the dataset's `DatasetFolders` (`resolve_dataset`): test
            pairs are the files of one name in `mri_test` and `ct_test`,
            the baselines pool the training folders, HU references come
            from `ct_test_hu`.
        config: the `ModelConfig` the generators were built from (pixel
            scale, channels, intensity).
        batch_size: slices per forward pass.
        rrdbnet: the trained RRDB-Net that brings translations back to the
            input's grid where its factor fits (None: bicubic).
        samples: latent draws per image (above 1: mean scored, uncertainty
            correlated with the error).
        baselines: also score identity and histogram matching, and add the
            SynthRAD metrics in HU where HU references exist (periodic
            evaluations during training leave both out).

    Returns:
        A list of `DirectionEvaluation`, empty when there are no test pairs.
    """
    if not (folders.ct_test and folders.mri_test):
        return []
    evaluations = []
    for direction, (source_test, target_test, target_train) in {
        "mri2ct": (folders.mri_test, folders.ct_test, folders.ct_train),
        "ct2mri": (folders.ct_test, folders.mri_test, folders.mri_train),
    }.items():
        try:
            pairs = paired_files(source_test, target_test)
        except InputError as error:
            logger.info(f"Skipping {direction} evaluation: {error}")
            continue
        if not pairs:
            logger.info(f"Skipping {direction} evaluation: no file name is in both "
                        f"{source_test} and {target_test}")
            continue
        translator = make_translator(generators[DIRECTIONS[direction]], config, rrdbnet)
        target_domain = DIRECTION_DOMAINS[direction][1]
        hu_folder = folders.ct_test_hu if target_domain == "ct" else None
        pool = histogram_pool(target_train, target_domain, config.intensity) if baselines else None
        evaluations.append(evaluate_direction(
            translator, direction, pairs, pool, config.intensity, hu_folder, batch_size, samples,
            synthrad=baselines,
        ))
    return evaluations


def evaluate_weights(weights_dir, folders, config, batch_size=8, samples=1):
    """`evaluate_generators` on the generators saved in `weights_dir`, with
    its RRDB-Net when it has one (as `infer.py` translates)."""
    generators = {name: load_network(weights_dir, name, config)
                  for name in ("g_target", "g_source")}
    rrdbnet = None
    if os.path.isfile(os.path.join(weights_dir, WEIGHT_FILES["rrdbnet"])):
        rrdbnet = load_network(weights_dir, "rrdbnet", config)
    return evaluate_generators(generators, folders, config, batch_size, samples,
                               rrdbnet=rrdbnet)

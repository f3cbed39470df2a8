"""What `infer.py` does, given `InferSettings`: check everything,
translate (and upscale), then write all outputs at once.

Nothing is written until every input (and reference) has been read and
translated, and results are staged in a hidden folder and moved into place
at the end, so a failure leaves no partial output. Inputs are never
overwritten. Each result goes back to its input's format (`io.formats`):
PNG of the input's bit depth, a DICOM series, or a NIfTI volume.
"""

import dataclasses
import json
import logging
import os
import time

import cv2
import numpy as np

from vaecyclegan.config import ModelConfig
from vaecyclegan.errors import InputError, printable
from vaecyclegan.evaluation.paired_test_set import file_stem
from vaecyclegan.evaluation.report import write_report
from vaecyclegan.evaluation.scoring import (
    ScanPair,
    evaluate_scans,
    format_table,
    pooled_indices,
    scan_pool,
)
from vaecyclegan.evaluation.uncertainty import STD_COLORMAP, std_map_scale
from vaecyclegan.io.atomic_write import atomic_write_text
from vaecyclegan.io.formats import (
    STD_FOLDER,
    find_scan_sources,
    format_for_path,
    is_planar,
    read_scan,
    write_result,
    write_std,
)
from vaecyclegan.io.image_format import (
    MIN_SIDE,
    image_result,
    image_scan,
    list_images,
    read_image_scan,
    result_scan,
    write_png,
)
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, warn_if_no_air
from vaecyclegan.io.memory_budget import check_fits_in_memory
from vaecyclegan.io.resampling import scaled_shape
from vaecyclegan.names import DIRECTION_DOMAINS
from vaecyclegan.networks import load_network
from vaecyclegan.translation.translator import load_translator
from vaecyclegan.upscaler.tiling import TiledUpscaler
from vaecyclegan.workflows.output_staging import (
    check_writable,
    output_names,
    stage_and_publish,
)
from vaecyclegan.workflows.settings import InferSettings

logger = logging.getLogger(__name__)

# The HU a synthetic CT must hold for dose calculation: air to dense bone.
DOSE_HU_RANGE = (-1000.0, 1500.0)


def run_inference(settings):
    """Translates (and upscales) `settings.input` into `settings.output`.

    Args:
        settings: an `InferSettings`.

    Returns:
        The paths of the results.

    Raises:
        InputError: a bad input, reference, weights folder or output
            folder; nothing is written then.
    """
    run_started = time.perf_counter()
    settings.validate()
    sources = find_scan_sources(settings.input)
    for option, given in (("--upscale", settings.upscale), ("--reference", settings.reference)):
        if given:
            _planar_only(sources, option)
    pairs = reference_pairs([s.paths[0] for s in sources], settings.reference) \
        if settings.reference else []
    if settings.reference and os.path.realpath(settings.output) == os.path.realpath(
            settings.reference):
        raise InputError(settings.output, "--output is the --reference folder; choose another")
    protected = [p for s in sources for p in s.paths] + _reference_files(settings.reference)
    names = output_names(sources, settings.output, protected)
    check_writable(settings.output)
    config = ModelConfig.load(settings.weights_dir)
    translator, upscaler = _load_networks(settings, config)
    # Upscaling alone keeps stored grey levels as they are ("mri" reads them raw).
    domain_in, domain_out = DIRECTION_DOMAINS.get(settings.direction, ("mri", "mri"))
    scans = [read_scan(source, domain_in, settings.axis) for source in sources]
    references = _read_references(pairs, scans, domain_out, settings.upscale or 1)
    for scan in scans:
        if not is_planar(scan):
            logger.info(_describe(scan))
    if translator is not None:  # refusals first: a refused run says one line
        for scan in scans:
            _check_training_scale(scan, translator)
        _check_results_fit(scans, settings)
    _warn_of_inputs(scans, settings, config, domain_in, domain_out)
    if translator is not None:
        _warn_if_spacing_unused(scans, translator)
        for line in sorted({translator.describe(s.values.shape[1:], s.pixel_mm) for s in scans}):
            logger.info(line)

    started = time.perf_counter()
    means, stds, writers = _translate(scans, translator, upscaler, settings, config.intensity,
                                      domain_out)
    seconds = time.perf_counter() - started
    scale = None
    if settings.samples > 1:
        scale = std_map_scale([plane * 127.5 for std in stds for plane in std])
        writers += [lambda target, s=scan, d=std: write_std(s, d, scale, domain_out,
                                                            config.intensity, target)
                    for scan, std in zip(scans, stds)]
        writers.append(lambda target: _write_std_scale(settings, stds, scale, target))
    evaluation = None
    if pairs:
        evaluation = _evaluate(settings, pairs, scans, means, references, stds,
                               config.intensity)
        writers.append(lambda target: write_report(
            settings.output, [evaluation], f"vaecyclegan {settings.direction} evaluation",
            target=target))
    # Results, deviation maps and the report are published together, or
    # nothing is.
    stage_and_publish(settings.output, writers, protected)
    _log_done(settings, scans, seconds, translator, upscaler, scale,
              time.perf_counter() - run_started)
    if evaluation is not None:
        logger.info(f"\n{format_table({settings.direction: evaluation.summary})}\n"
                    f"Report: {os.path.join(settings.output, 'index.html')}")
    return [os.path.join(settings.output, name) for group in names for name in group]


def reference_pairs(inputs, reference):
    """`[(input_index, reference_path), ...]` for input image paths: a single
    file pairs with a single input; a folder pairs by file name without
    extension."""
    if not os.path.isdir(reference):
        if not os.path.isfile(reference):
            raise InputError(reference, "reference not found")
        if len(inputs) != 1:
            raise InputError(reference, "a single reference file needs a single input file; "
                             "pass a folder of references for a folder of inputs")
        fmt = format_for_path(reference)
        if fmt is not None and fmt.name != "image":
            raise InputError(reference, f"--reference works on 2-D image files only, not on "
                             f"a {fmt.name.upper()} file")
        return [(0, reference)]
    wanted = {file_stem(path) for path in inputs}
    by_stem = {}
    for path in list_images(reference):
        stem = file_stem(path)
        if stem in by_stem and stem in wanted:
            raise InputError(path, f"{os.path.basename(by_stem[stem])} has the same name "
                             f"without extension; which one is the reference is unclear")
        by_stem.setdefault(stem, path)
    pairs = [(i, by_stem[stem]) for i, path in enumerate(inputs)
             if (stem := file_stem(path)) in by_stem]
    if not pairs:
        raise InputError(reference, "no reference has the file name of an input")
    if len(pairs) < len(inputs):
        logger.warning(f"{len(inputs) - len(pairs)} of {len(inputs)} inputs have no reference "
                       f"of their file name in {reference}: they are translated, not scored")
    return pairs


def _reference_files(reference):
    """Every file of `--reference` (paired with an input or not): no output
    may replace one."""
    if not reference:
        return []
    return list_images(reference) if os.path.isdir(reference) else [reference]


def _planar_only(sources, option):
    for source in sources:
        if not is_planar(source):
            raise InputError(source.paths[0], f"{option} works on 2-D image files only, not on "
                             f"{source.kind.upper()} input")


def _load_networks(settings, config):
    """The direction's `Translator` and the `TiledUpscaler`, each None when
    the settings do not ask for it."""
    translator = upscaler = rrdbnet = None
    if settings.upscale:
        if config.rrdbnet.scale != settings.upscale:
            raise InputError(os.path.join(settings.weights_dir, "config.json"),
                             f"holds an x{config.rrdbnet.scale} upscaler, --upscale "
                             f"{settings.upscale} was asked")
        rrdbnet = load_network(settings.weights_dir, "rrdbnet", config)
        upscaler = TiledUpscaler(rrdbnet, config.rrdbnet.scale, config.channels, settings.tile,
                                 settings.tile_pad)
    if settings.direction != "none":
        translator = load_translator(settings.weights_dir, settings.direction, config,
                                     settings.resample, settings.translate_tile,
                                     max(16, settings.translate_tile // 8), rrdbnet)
    return translator, upscaler


def _warn_of_inputs(scans, settings, config, domain_in, domain_out):
    """What is odd about inputs that are translated all the same: said once
    every refusal is past, so that a refused run says one line."""
    if settings.axis != InferSettings.axis and all(is_planar(scan) for scan in scans):
        logger.warning("--axis %s cuts volumes (NIfTI, DICOM series); these inputs are 2-D "
                       "images, so it changes nothing", settings.axis)
    if domain_out == "ct":
        _warn_if_window_clips_hu(scans, config.intensity)
    for scan in scans:
        if domain_in == "ct" and scan.units == "hu":
            warn_if_no_air(scan.path, scan.values, "the input")
        if scan.world is None and not is_planar(scan) and scan.slice_count > 1:
            # nibabel's affine without either code flips x (ANALYZE's order).
            logger.warning("%s: its header places it nowhere in the patient (a NIfTI with "
                           "qform and sform codes 0), so left and right are nibabel's guess; "
                           "the result is written back in the same voxel order",
                           printable(scan.path))


def _warn_if_window_clips_hu(scans, intensity):
    """A DICOM or NIfTI CT is labelled HU but holds only the weights' window:
    from brain-window weights (-160 to 240 HU) air and bone come back
    clipped, which a dose calculation on it would not show."""
    low, high = intensity.ct_window_hu
    volumes = [printable(scan.output_name) for scan in scans if not is_planar(scan)]
    if volumes and (low > DOSE_HU_RANGE[0] or high < DOSE_HU_RANGE[1]):
        logger.warning("the weights' CT window is %g to %g HU: the synthetic CT of %s holds "
                       "no HU outside it (air and bone clipped), so it is no ground for a "
                       "dose calculation, which needs %g to %g HU at least (train with a "
                       "wider --ct-window)", low, high, ", ".join(volumes[:3]) +
                       (", ..." if len(volumes) > 3 else ""), *DOSE_HU_RANGE)


def _warn_if_spacing_unused(scans, translator):
    """Weights trained on images without spacing (PNGs) know how much they
    were shrunk, not how many mm a pixel held: a DICOM or NIfTI slice of
    other mm per pixel than the training images' is shown anatomy of
    another size (a 0.49 mm 512-px volume lost 48 HU of MAE so)."""
    scale = translator.pixel_scale
    spaced = [scan for scan in scans if scan.pixel_mm]
    if not spaced or scale is None or scale.mm_per_pixel or scale.resize_factor == 1.0:
        return
    first = spaced[0]
    logger.warning("the weights were trained on images without a pixel spacing: %s (%.3g mm "
                   "pixels)%s is shrunk by their resize factor %g, whatever its mm; the "
                   "anatomy is at the size the networks learned only where its pixels are "
                   "the size of the training images' (resample it first, or train on DICOM "
                   "or NIfTI, which records mm per pixel)", printable(first.output_name),
                   max(first.pixel_mm),
                   f" and {len(spaced) - 1} more" if len(spaced) > 1 else "",
                   scale.resize_factor)


def _check_training_scale(scan, translator):
    """Refuses a scan that, resampled to the training pixel scale, would be
    smaller than the smallest slice read, or too large for memory: its
    pixel spacing is then almost surely wrong (0.001 mm, 200 mm)."""
    shape = scan.values.shape[1:]
    height, width = scaled_shape(shape, translator.factor_for(scan.pixel_mm))
    if (height, width) == tuple(shape):
        return
    pixels = (f" of {' x '.join(f'{mm:.3g}' for mm in scan.pixel_mm)} mm pixels"
              if scan.pixel_mm else "")
    described = (f"its {shape[1]}x{shape[0]} slices{pixels} would be {width}x{height} at the "
                 "training pixel scale")
    if min(height, width) < MIN_SIDE:
        # Without a spacing (plain images) the training resize factor applies.
        check = "its pixel spacing" if scan.pixel_mm else "its size against the model's"
        raise InputError(scan.path, f"{described}, smaller than {MIN_SIDE}x{MIN_SIDE}; check "
                         f"{check}")
    check_fits_in_memory(scan.path, scan.slice_count * height * width, described)


def _check_results_fit(scans, settings):
    """Refuses a run whose results would not fit beside its inputs: every
    result is held until all are written (nothing is published before),
    so a folder of many volumes needs memory for all of them at once."""
    voxels = sum(scan.values.size for scan in scans)
    # The result (float32), the inputs' [-1, 1] copies not yet translated
    # (at the training scale; full size where that is their own) and the
    # deviation map where latent samples are drawn.
    per_voxel = 8 + (4 if settings.samples > 1 else 0)
    check_fits_in_memory(settings.input, voxels, f"the results of {len(scans)} input(s), held "
                         "until all are written (translate fewer in a run)",
                         bytes_per_pixel=per_voxel)


def _read_references(pairs, scans, domain, factor):
    """The reference scans of `pairs`, each checked to be its input's size
    (times the upscaling `factor`)."""
    references = [read_image_scan(path, domain) for _, path in pairs]
    for (index, path), reference in zip(pairs, references):
        want = tuple(n * factor for n in scans[index].values.shape[1:])
        have = reference.values.shape[1:]
        if want != have:
            upscaled = f", x{factor} of" if factor > 1 else ""
            raise InputError(path, f"reference is {have[1]}x{have[0]}, its input{upscaled} "
                             f"{scans[index].path} is {want[1]}x{want[0]}")
    return references


def _translate(scans, translator, upscaler, settings, intensity, domain_out):
    """Translates and upscales every scan in memory.

    Returns:
        `(means, stds, writers)`: the results in [-1, 1] (after upscaling,
        as they will be scored), the deviation maps (None without
        sampling) and one writer per result for `stage_and_publish`.
    """
    if translator is None:
        means, stds = [None] * len(scans), [None] * len(scans)
    else:
        # A generator: each scan's [-1, 1] copy is resampled to the training
        # scale as it comes (kept as it is at its own scale) and let go once
        # translated, so the inputs are not held twice at full size.
        means, stds = translator.translate_stacks(
            (scan.to_unit(intensity) for scan in scans), settings.batch_size, settings.samples,
            [scan.pixel_mm for scan in scans], progress=True)
    writers = []
    for index, (scan, mean) in enumerate(zip(scans, means)):
        if upscaler is None:
            writers.append(lambda target, s=scan, m=mean: write_result(
                s, m, domain_out, intensity, settings.direction, target))
            continue
        pixels = (scan.values[0].astype(scan.source) if mean is None
                  else image_result(scan, mean[0], domain_out, intensity))
        pixels = _upscale_stored(upscaler, pixels,
                                 intensity.ct_window_hu if domain_out == "ct" and mean is not None
                                 else None)
        # Scored as written: a translation read back as `vaecyclegan-eval`
        # reads it (a 16-bit synthetic MRI linearly, as without --upscale),
        # an upscaled input as a reference of its kind is.
        read_back = image_scan if mean is None else result_scan
        means[index] = read_back(pixels, scan.path, domain_out).to_unit(intensity)
        writers.append(lambda target, s=scan, p=pixels: write_png(target(s.output_name), p))
    return means, stds, writers


def _upscale_stored(upscaler, pixels, ct_window_hu=None):
    """`pixels` (8- or 16-bit) upscaled, in their bit depth.

    The upscaler works in [0, 1] (ESRGAN's range) on images that fill it,
    as its training images did. 8-bit images fill 0..255; 16-bit ones
    rarely fill 0..65535 (HU + 1024 spans about 0..4000), and divided by
    65535 they came back 10-12 dB below bicubic. So 16-bit images are
    mapped linearly over their own range, a synthetic CT's (`ct_window_hu`
    given) widened to the CT window of its weights, which the upscaler's
    CT training images were read through. Nothing is clipped on the way
    in; the upscaler clips its output to [0, 1].
    """
    values = pixels.astype(np.float32)
    if pixels.dtype == np.uint8:
        low, high = 0.0, 255.0
    else:
        low, high = float(values.min()), float(values.max())
        if ct_window_hu is not None:
            low = min(low, ct_window_hu[0] + PNG16_HU_OFFSET)
            high = max(high, ct_window_hu[1] + PNG16_HU_OFFSET)
    span = max(high - low, 1.0)
    upscaled = upscaler.upscale((values - low) / span) * span + low
    return np.clip(np.round(upscaled), 0, np.iinfo(pixels.dtype).max).astype(pixels.dtype)


def _describe(scan):
    low, high = float(scan.values.min()), float(scan.values.max())
    unit = {"hu": "HU", "signal": "signal", "grey": "grey levels"}[scan.units]
    size = f"{scan.values.shape[2]}x{scan.values.shape[1]}"
    return (f"  {scan.output_name}: {scan.kind.upper()} {scan.domain.upper()}, "
            f"{scan.slice_count} slice(s) of {size}, {unit} {low:.0f}..{high:.0f}")


def _write_std_scale(settings, stds, scale, target):
    atomic_write_text(target(os.path.join(STD_FOLDER, "scale.json")), json.dumps({
        "samples": settings.samples, "colormap": STD_COLORMAP,
        "black": 0.0, "saturated_at": scale, "unit": "grey levels of an 8-bit image",
        "mean_std": float(np.mean([float(s.mean()) * 127.5 for s in stds])),
        # The scale is the PNG heat maps'; a volume's map holds the deviation itself.
        "applies_to": "the PNG heat maps (images, DICOM slices); a NIfTI result's "
                      "std volume holds the deviation in the result's units (HU for CT)",
    }, indent=2) + "\n")


def _log_done(settings, scans, seconds, translator, upscaler, scale, total_seconds):
    slices = sum(scan.slice_count for scan in scans)
    action = "upscaled" if translator is None else "translated"
    if translator is not None and upscaler is not None:
        action = f"translated and upscaled x{settings.upscale}"
    # Both: the networks' rate, and what the user waited (loading, reading, writing).
    logger.info(f"{settings.direction}: {action} {len(scans)} input(s), {slices} slice(s) in "
                f"{seconds:.1f} s ({slices / max(seconds, 1e-9):.1f} slices/s; "
                f"{total_seconds:.1f} s in all with loading, reading and writing) into "
                f"{settings.output}")
    if scale is not None:
        volumes = any(not is_planar(scan) for scan in scans)
        logger.info(f"{settings.samples} latent samples per slice: outputs are their mean; the "
                    f"per-pixel standard deviation is in "
                    f"{os.path.join(settings.output, STD_FOLDER)} (heat maps black at 0, "
                    f"saturated at {scale:.3g} grey levels, see scale.json"
                    + ("; a NIfTI result's as a volume in its units, HU for CT)" if volumes
                       else ")"))


def _resized(scan, factor, interpolation):
    """An image scan `factor` times larger (the identity baseline of an
    upscaled output), within the values its file can hold: bicubic
    overshoot is what no written image could have."""
    height, width = scan.values.shape[1:]
    plane = cv2.resize(scan.values[0], (width * factor, height * factor),
                       interpolation=interpolation)
    # The file's integer range, in the scan's units (16-bit HU PNGs are
    # offset by PNG16_HU_OFFSET).
    stored = np.iinfo(scan.source)
    offset = PNG16_HU_OFFSET if scan.units == "hu" else 0
    plane = np.clip(plane, stored.min - offset, stored.max - offset)
    return dataclasses.replace(scan, values=plane[None])


def _evaluate(settings, pairs, scans, means, references, stds, intensity):
    indices = [index for index, _ in pairs]
    inputs, deviations = [scans[i] for i in indices], [stds[i] for i in indices]
    if settings.upscale:
        inputs = [_resized(s, settings.upscale, cv2.INTER_CUBIC) for s in inputs]
        deviations = [None if d is None else np.stack([
            cv2.resize(p, None, fx=settings.upscale, fy=settings.upscale,
                       interpolation=cv2.INTER_NEAREST) for p in d]) for d in deviations]
    scored = [ScanPair(scans[i].output_name, scan, means[i], deviation, reference)
              for i, scan, deviation, reference in zip(indices, inputs, deviations, references)]
    # No training data is known here: the baseline is matched to the
    # references' own histogram, which can only flatter it.
    pool = scan_pool([references[i] for i in pooled_indices(len(references))], intensity)
    return evaluate_scans(settings.direction, scored, pool, intensity,
                          samples=settings.samples)

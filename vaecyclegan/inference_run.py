"""One `infer.py` run: check everything, translate, then write all outputs.

Nothing is written until every input (and reference) has been read and
translated, and results are staged in a hidden folder and moved into place
at the end, so a failure leaves no partial output. Inputs are never
overwritten. Each result goes back to its input's kind: PNG of the input's
bit depth, a DICOM series, or a NIfTI volume.
"""

import dataclasses
import json
import os
import shutil
import tempfile
import time

import cv2
import numpy as np

from vaecyclegan.config import ModelConfig
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation import evaluate_scans, format_table
from vaecyclegan.image_io import image_result, image_scan, list_images, read_image_scan, write_png
from vaecyclegan.intensity import MR_SIGNAL_MAX
from vaecyclegan.networks import DIRECTIONS, load_network
from vaecyclegan.nifti_io import write_nifti
from vaecyclegan.report import write_report
from vaecyclegan.scan_io import find_scan_sources, read_scan, write_result
from vaecyclegan.tiled_upscaler import TiledUpscaler
from vaecyclegan.translator import Translator
from vaecyclegan.atomic_write import atomic_write_text
from vaecyclegan.uncertainty import STD_COLORMAP, std_heat_map, std_map_scale

STD_FOLDER = "std"


DOMAINS = {"mri2ct": ("mri", "ct"), "ct2mri": ("ct", "mri")}


def output_names(sources, output_dir):
    """The files each source's result is written to; refuses to overwrite
    any input or to write two results under one name."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputError(output_dir, "output exists and is not a folder")
    real_inputs = {os.path.realpath(p) for source in sources for p in source.paths}
    seen = {}
    for source in sources:
        for name in source.output_names():
            target = os.path.join(output_dir, name)
            if os.path.realpath(target) in real_inputs:
                raise InputError(target, "output would overwrite an input; choose another --output")
            if name in seen:
                raise InputError(source.paths[0], f"{seen[name]} and this input would both be "
                                 f"written as {name}")
            seen[name] = source.paths[0]
    return [source.output_names() for source in sources]


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
        return [(0, reference)]
    by_stem = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(reference)}
    pairs = [(i, by_stem[stem]) for i, path in enumerate(inputs)
             if (stem := os.path.splitext(os.path.basename(path))[0]) in by_stem]
    if not pairs:
        raise InputError(reference, "no reference has the file name of an input")
    return pairs


def _writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".vaecyclegan-", dir=folder)
    except OSError as error:
        raise InputError(folder, f"output folder is not writable ({error.strerror})") from None
    return probe


def _stage_and_publish(output_dir, writers):
    """Runs each `writer(target)` into a hidden staging folder inside
    `output_dir` (`target(relative_name)` gives the path to write), then
    moves every written file into place."""
    staging = _writable_folder(output_dir)
    written = []

    def target(relative):
        written.append(relative)
        path = os.path.join(staging, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    try:
        for write in writers:
            write(target)
        for relative in written:
            final = os.path.join(output_dir, relative)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(os.path.join(staging, relative), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_upscaler(options, config):
    if config.rrdbnet.scale != options.upscale:
        raise InputError(os.path.join(options.weights_dir, "config.json"),
                         f"holds an x{config.rrdbnet.scale} upscaler, --upscale {options.upscale} "
                         "was asked")
    model = load_network(options.weights_dir, "rrdbnet", config)
    return TiledUpscaler(model, config.rrdbnet.scale, config.channels, options.tile,
                         options.tile_pad)


def _upscale_stored(upscaler, pixels):
    # The upscaler works in [0, 1] (ESRGAN's range); the bit depth is kept.
    full_scale = float(np.iinfo(pixels.dtype).max)
    high = upscaler.upscale(pixels.astype(np.float32) / full_scale)
    return np.round(high * full_scale).astype(pixels.dtype)


def _images_only(sources, option):
    for source in sources:
        if source.kind != "image":
            raise InputError(source.paths[0], f"{option} works on 2-D image files only, not on "
                             f"{source.kind.upper()} input")


def _describe(scan):
    low, high = float(scan.values.min()), float(scan.values.max())
    unit = {"hu": "HU", "signal": "signal", "grey": "grey levels"}[scan.units]
    size = f"{scan.values.shape[2]}x{scan.values.shape[1]}"
    return (f"  {scan.output_name}: {scan.kind.upper()} {scan.domain.upper()}, "
            f"{scan.slice_count} slice(s) of {size}, {unit} {low:.0f}..{high:.0f}")


def run_inference(options):
    """Runs `infer.py` with parsed `options`; returns the written paths."""
    sources = find_scan_sources(options.input)
    names = output_names(sources, options.output)
    if options.upscale:
        _images_only(sources, "--upscale")
    if options.reference:
        _images_only(sources, "--reference")
    pairs = reference_pairs([s.paths[0] for s in sources], options.reference) \
        if options.reference else []
    config = ModelConfig.load(options.weights_dir)
    intensity = config.intensity
    translator = upscaler = None
    if options.direction != "none":
        generator = load_network(options.weights_dir, DIRECTIONS[options.direction], config)
        translator = Translator(generator, config.generator.stride, config.channels,
                                options.translate_tile, max(16, options.translate_tile // 8))
    if options.upscale:
        upscaler = _load_upscaler(options, config)

    # Upscaling alone keeps stored grey levels as they are ("mri" reads them raw).
    domain_in, domain_out = DOMAINS.get(options.direction, ("mri", "mri"))
    scans = [read_scan(source, domain_in, options.axis) for source in sources]
    references = [read_image_scan(path, domain_out) for _, path in pairs]
    factor = options.upscale or 1
    for (index, path), reference in zip(pairs, references):
        want = tuple(n * factor for n in scans[index].values.shape[1:])
        have = reference.values.shape[1:]
        if want != have:
            upscaled = f", x{factor} of" if factor > 1 else ""
            raise InputError(path, f"reference is {have[1]}x{have[0]}, its input{upscaled} "
                             f"{sources[index].paths[0]} is {want[1]}x{want[0]}")
    for scan in scans:
        if scan.kind != "image":
            print(_describe(scan), flush=True)

    started = time.perf_counter()
    if translator is None:
        means, stds = [None] * len(scans), [None] * len(scans)
    else:
        means, stds = translator.translate_stacks(
            [scan.to_unit(intensity) for scan in scans], options.batch_size, options.samples)
    writers = []
    for index, (scan, mean) in enumerate(zip(scans, means)):
        if upscaler is not None:
            pixels = (scan.values[0].astype(scan.source) if mean is None
                      else image_result(scan, mean[0], domain_out, intensity))
            pixels = _upscale_stored(upscaler, pixels)
            # Scored as written, and read back as a reference of its kind is.
            means[index] = image_scan(pixels, scan.path, domain_out).to_unit(intensity)
            writers.append(lambda target, s=scan, p=pixels: write_png(target(s.output_name), p))
        else:
            writers.append(lambda target, s=scan, m=mean: write_result(
                s, m, domain_out, intensity, options.direction, target))
    seconds = time.perf_counter() - started

    scale = None
    if options.samples > 1:
        scale = std_map_scale([plane * 127.5 for std in stds for plane in std])
        for scan, std in zip(scans, stds):
            writers.append(lambda target, s=scan, d=std: _write_std(s, d, scale, domain_out,
                                                                      intensity, target))
    _stage_and_publish(options.output, writers)
    if scale is not None:
        atomic_write_text(os.path.join(options.output, STD_FOLDER, "scale.json"), json.dumps({
            "samples": options.samples, "colormap": STD_COLORMAP,
            "black": 0.0, "saturated_at": scale, "unit": "grey levels of an 8-bit image",
            "mean_std": float(np.mean([float(s.mean()) * 127.5 for s in stds])),
        }, indent=2) + "\n")
    slices = sum(scan.slice_count for scan in scans)
    action = "upscaled" if translator is None else "translated"
    if translator is not None and upscaler is not None:
        action = f"translated and upscaled x{options.upscale}"
    print(f"{options.direction}: {action} {len(scans)} input(s), {slices} slice(s) in "
          f"{seconds:.1f} s ({slices / max(seconds, 1e-9):.1f} slices/s) into {options.output}",
          flush=True)
    if scale is not None:
        print(f"{options.samples} latent samples per slice: outputs are their mean; heat maps of "
              f"the per-pixel standard deviation (black 0, saturated at {scale:.3g} grey levels, "
              f"see scale.json) are in {os.path.join(options.output, STD_FOLDER)}", flush=True)
    if pairs:
        _report(options, pairs, scans, means, references, stds, intensity)
    return [os.path.join(options.output, name) for group in names for name in group]


def _write_std(scan, std, scale, domain, intensity, target):
    """Deviation maps beside the result: PNG heat maps for images and DICOM
    slices, a float32 volume in the output's units for NIfTI."""
    if scan.kind == "nifti":
        if domain == "ct":
            low, high = intensity.ct_window_hu
            values, unit = std * (high - low) / 2.0, "HU"
        else:
            values, unit = std * MR_SIGNAL_MAX / 2.0, "MR signal 0..4095"
        write_nifti(target(os.path.join(STD_FOLDER, scan.output_name)), scan, values, domain,
                    intensity, f"vaecyclegan latent std ({unit})", dtype=np.float32)
        return
    names = [scan.output_name] if scan.kind == "image" else scan.source.file_names
    for name, plane in zip(names, std):
        heat = cv2.cvtColor(std_heat_map(plane * 127.5, scale), cv2.COLOR_RGB2BGR)
        write_png(target(os.path.join(STD_FOLDER, os.path.splitext(name)[0] + ".png")), heat)


def _resized(scan, factor, interpolation):
    """An image scan `factor` times larger (the identity baseline of an
    upscaled output)."""
    height, width = scan.values.shape[1:]
    plane = cv2.resize(scan.values[0], (width * factor, height * factor),
                       interpolation=interpolation)
    return dataclasses.replace(scan, values=plane[None])


def _report(options, pairs, scans, means, references, stds, intensity):
    indices = [index for index, _ in pairs]
    inputs, deviations = [scans[i] for i in indices], [stds[i] for i in indices]
    if options.upscale:
        inputs = [_resized(s, options.upscale, cv2.INTER_CUBIC) for s in inputs]
        deviations = [None if d is None else np.stack([
            cv2.resize(p, None, fx=options.upscale, fy=options.upscale,
                       interpolation=cv2.INTER_NEAREST) for p in d]) for d in deviations]
    evaluation = evaluate_scans(
        options.direction, [scans[i].output_name for i in indices], inputs,
        [means[i] for i in indices], deviations,
        references,
        # No training data is known here: the baseline is matched to the
        # references' own histogram, which can only flatter it.
        "references", intensity, samples=options.samples)
    written = write_report(options.output, [evaluation],
                           f"vaecyclegan {options.direction} evaluation")
    print(f"\n{format_table({options.direction: evaluation.summary})}\n"
          f"Report: {written['html']}", flush=True)

"""One `infer.py` run: check everything, translate, then write all outputs.

Nothing is written until every input (and reference) has been read and
translated, and images are staged in a hidden folder and moved into place
at the end, so a failure leaves no partial output. Inputs are never
overwritten.
"""

import json
import os
import shutil
import tempfile
import time

import cv2
import numpy as np

from vaecyclegan.config import ModelConfig
from vaecyclegan.errors import InputError
from vaecyclegan.evaluation import evaluate_predictions, format_table, pooled_pixels
from vaecyclegan.image_io import is_image_file, list_images, read_grey, write_png
from vaecyclegan.networks import DIRECTIONS, load_network
from vaecyclegan.report import write_report
from vaecyclegan.tiled_upscaler import TiledUpscaler
from vaecyclegan.translator import Translator
from vaecyclegan.atomic_write import atomic_write_text
from vaecyclegan.uncertainty import STD_COLORMAP, std_heat_map, std_map_scale

STD_FOLDER = "std"


def input_files(path):
    """The image files named by `--input` (a file or a folder)."""
    if os.path.isdir(path):
        return list_images(path)
    if not os.path.exists(path):
        raise InputError(path, "input not found")
    if not is_image_file(path):
        raise InputError(path, "not a supported image file (PNG, JPEG, TIFF, BMP)")
    return [path]


def output_paths(inputs, output_dir):
    """One PNG per input, named after it; refuses to overwrite any input."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputError(output_dir, "output exists and is not a folder")
    real_inputs = {os.path.realpath(p) for p in inputs}
    outputs, seen = [], set()
    for path in inputs:
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
        target = os.path.join(output_dir, name)
        if os.path.realpath(target) in real_inputs:
            raise InputError(target, "output would overwrite an input; choose another --output")
        if name in seen:
            raise InputError(path, f"two inputs would both be written as {name}")
        seen.add(name)
        outputs.append(target)
    return outputs


def reference_pairs(inputs, reference):
    """`[(input_index, reference_path), ...]`: a single file pairs with a
    single input; a folder pairs by file name without extension."""
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


def _stage_and_publish(output_dir, files):
    """Writes `{relative_path: pixels}` into a hidden staging folder inside
    `output_dir`, then moves each into place."""
    staging = _writable_folder(output_dir)
    try:
        for relative, pixels in files.items():
            write_png(os.path.join(staging, relative), pixels)
        for relative in files:
            target = os.path.join(output_dir, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(staging, relative), target)
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


def run_inference(options):
    """Runs `infer.py` with parsed `options`; returns the written image paths."""
    inputs = input_files(options.input)
    outputs = output_paths(inputs, options.output)
    pairs = reference_pairs(inputs, options.reference) if options.reference else []
    config = ModelConfig.load(options.weights_dir)
    translator = upscaler = None
    if options.direction != "none":
        generator = load_network(options.weights_dir, DIRECTIONS[options.direction], config)
        translator = Translator(generator, config.generator.stride, config.channels)
    if options.upscale:
        upscaler = _load_upscaler(options, config)

    images = [read_grey(path) for path in inputs]
    references = [read_grey(path) for _, path in pairs]
    for (index, path), reference in zip(pairs, references):
        if reference.shape != images[index].shape:
            raise InputError(path, f"reference is {reference.shape[1]}x{reference.shape[0]}, "
                             f"its input {inputs[index]} is {images[index].shape[1]}x"
                             f"{images[index].shape[0]}")

    started = time.perf_counter()
    stds = None
    if translator is None:
        translated = images
    elif options.samples > 1:
        translated, stds = translator.sample_stored(images, options.samples, options.batch_size)
    else:
        translated = translator.translate_stored(images, options.batch_size)
    if upscaler is not None:
        translated = [_upscale_stored(upscaler, pixels) for pixels in translated]
    seconds = time.perf_counter() - started

    files = {os.path.basename(t): pixels for t, pixels in zip(outputs, translated)}
    if stds is not None:
        scale = std_map_scale(stds)
        for target, std in zip(outputs, stds):
            heat = cv2.cvtColor(std_heat_map(std, scale), cv2.COLOR_RGB2BGR)
            files[os.path.join(STD_FOLDER, os.path.basename(target))] = heat
    _stage_and_publish(options.output, files)
    if stds is not None:
        atomic_write_text(os.path.join(options.output, STD_FOLDER, "scale.json"), json.dumps({
            "samples": options.samples, "colormap": STD_COLORMAP,
            "black": 0.0, "saturated_at": scale, "unit": "grey levels of an 8-bit image",
            "mean_std": float(sum(float(s.mean()) for s in stds) / len(stds)),
        }, indent=2) + "\n")
    action = "upscaled" if translator is None else "translated"
    if translator is not None and upscaler is not None:
        action = f"translated and upscaled x{options.upscale}"
    print(f"{options.direction}: {action} {len(outputs)} image(s) in {seconds:.1f} s "
          f"({len(outputs) / max(seconds, 1e-9):.1f} images/s) into {options.output}", flush=True)
    if stds is not None:
        print(f"{options.samples} latent samples per image: outputs are their mean; heat maps of "
              f"the per-pixel standard deviation (black 0, saturated at {scale:.3g} grey levels, "
              f"see scale.json) are in {os.path.join(options.output, STD_FOLDER)}", flush=True)

    if pairs:
        indices = [index for index, _ in pairs]
        evaluation = evaluate_predictions(
            options.direction,
            [os.path.basename(outputs[i]) for i in indices],
            [images[i] for i in indices], [translated[i] for i in indices], references,
            # No training data is known here: the baseline is matched to the
            # references' own histogram, which can only flatter it.
            pooled_pixels(references),
            stds=None if stds is None else [stds[i] for i in indices], samples=options.samples,
        )
        written = write_report(options.output, [evaluation],
                               f"vaecyclegan {options.direction} evaluation")
        print(f"\n{format_table({options.direction: evaluation.summary})}\n"
              f"Report: {written['html']}", flush=True)
    return outputs

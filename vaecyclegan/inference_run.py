"""One `infer.py` run: check everything, translate, then write all outputs.

Nothing is written until every input has been read and translated, and
outputs are staged in a hidden folder and moved into place at the end, so a
failure leaves no partial output. Inputs are never overwritten.
"""

import os
import shutil
import tempfile
import time

from vaecyclegan.config import ModelConfig
from vaecyclegan.errors import InputError
from vaecyclegan.image_io import is_image_file, list_images, read_grey, write_png
from vaecyclegan.networks import DIRECTIONS, load_network
from vaecyclegan.translator import Translator


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


def _writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".vaecyclegan-", dir=folder)
    except OSError as error:
        raise InputError(folder, f"output folder is not writable ({error.strerror})") from None
    return probe


def run_inference(options):
    """Runs `infer.py` with parsed `options`; returns the written paths."""
    inputs = input_files(options.input)
    outputs = output_paths(inputs, options.output)
    config = ModelConfig.load(options.weights_dir)
    generator = load_network(options.weights_dir, DIRECTIONS[options.direction], config)
    translator = Translator(generator, config.generator.stride, config.channels)

    images = [read_grey(path) for path in inputs]
    started = time.perf_counter()
    translated = translator.translate_stored(images, options.batch_size)
    seconds = time.perf_counter() - started

    staging = _writable_folder(options.output)
    try:
        staged = []
        for pixels, target in zip(translated, outputs):
            path = os.path.join(staging, os.path.basename(target))
            write_png(path, pixels)
            staged.append((path, target))
        for path, target in staged:
            os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{options.direction}: translated {len(outputs)} image(s) in {seconds:.1f} s "
          f"({len(outputs) / max(seconds, 1e-9):.1f} images/s) into {options.output}", flush=True)
    return outputs

"""Writing a command's outputs all at once, or not at all.

Each output is written into a hidden staging folder inside the output
folder, and moved into place only after every writer has finished, so a
failure leaves no partial output; no output may take an input's path.
"""

import os
import shutil
import tempfile

from vaecyclegan.errors import InputError


def output_names(sources, output_dir):
    """The files each source's result is written to; refuses to overwrite
    any input or to write two results under one name.

    Args:
        sources: `ScanSource`s (each with `paths` and `output_names()`).
        output_dir: the output folder.

    Returns:
        One list of file names per source.
    """
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


def check_writable(folder):
    """Refuses a folder the command could not write into, before any work
    is done, and leaves nothing behind: the probe is made (and removed) in
    the folder if it exists, else in its nearest existing parent.

    Raises:
        InputError: the folder, or the parent it would be created in, is a
            file or cannot be written.
    """
    probe_in = os.path.abspath(folder)
    while not os.path.exists(probe_in):
        probe_in = os.path.dirname(probe_in)
    if not os.path.isdir(probe_in):
        raise InputError(folder, f"cannot be created: {probe_in} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vaecyclegan-probe-", dir=probe_in))
    except OSError as error:
        raise InputError(folder, f"output folder is not writable ({error.strerror})") from None


def _writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".vaecyclegan-", dir=folder)
    except OSError as error:
        raise InputError(folder, f"output folder is not writable ({error.strerror})") from None
    return probe


def stage_and_publish(output_dir, writers):
    """Runs each `writer(target)` into a hidden staging folder inside
    `output_dir` (`target(relative_name)` gives the path to write), then
    moves every written file into place.

    Example:
    >>> stage_and_publish("out", [lambda target: write_png(target("a.png"), pixels)])
    """
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

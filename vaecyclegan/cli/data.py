"""`vaecyclegan-data`: datasets. `download` fetches the Kaggle dataset
darren2020/ct-to-mri-cgan (or installs a zip downloaded by hand); `phantom`
renders the built-in head phantom; `realistic` renders the realistic head
development set (1 mm pixels, thin skull, skull base) through a CT window."""

import argparse
import math
import sys

from vaecyclegan.cli.common import (
    OptionParser,
    attach_negative_windows,
    level_width,
    print_options,
    program_name,
    run_cli,
    terminal_text,
)
from vaecyclegan.data.kaggle import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNZIPPED_GB,
)
from vaecyclegan.workflows.settings import window_bounds

# Memory a rendered slice holds per pixel at its peak (the head's tissue
# maps, noise and bias fields in float64): about 460 bytes measured for the
# realistic heads at 2048 px, 400 for the phantom.
RENDER_BYTES_PER_PIXEL = 512


def build_parser():
    parser = OptionParser(prog="vaecyclegan-data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    phantom = commands.add_parser(
        "phantom", help="render the head phantom in the Kaggle layout (CT = A, MRI = B)")
    phantom.add_argument("--out", required=True, help="dataset folder to create")
    phantom.add_argument("--size", type=int, default=256, help="image side in pixels")
    phantom.add_argument("--train", type=int, default=200, help="images per training domain")
    phantom.add_argument("--test", type=int, default=24, help="paired test images")
    phantom.add_argument("--seed", type=int, default=0,
                         help="anatomy and pose seed (0 or more; one seed renders alike)")
    realistic = commands.add_parser(
        "realistic", help="render realistic head slices (1 mm pixels, skull base to vertex) in "
        "the Kaggle layout (CT = A, MRI = B)")
    realistic.add_argument("--out", required=True, help="dataset folder to create")
    realistic.add_argument("--size", type=int, default=256, help="image side in pixels")
    realistic.add_argument("--train", type=int, default=80, help="images per training domain")
    realistic.add_argument("--test", type=int, default=24, help="paired test images")
    realistic.add_argument("--seed", type=int, default=0,
                           help="anatomy seed (0 or more; one seed renders alike)")
    realistic.add_argument("--style", choices=("a", "b"), default="a",
                           help="one of two independent renderings (tissue values, noise, "
                           "bias field, gyri, skull thickness)")
    realistic.add_argument("--ct-window", default="40,400",
                           help="CT PNG window: LEVEL,WIDTH in HU (default the brain window "
                           "40,400) or 'wide' (-1000..2000 HU)")
    download = commands.add_parser(
        "download", help="fetch darren2020/ct-to-mri-cgan with your Kaggle API token into "
        "<out>/ct-to-mri-cgan, extract it safely and check its layout")
    download.add_argument("--out", default="data", help="data folder (train.py's --data-root)")
    download.add_argument("--zip", help="install this zip (downloaded by hand) instead of "
                          "downloading")
    # Checked from the zip's central directory before anything is extracted;
    # the defaults (vaecyclegan/data/kaggle.py explains them) leave the Kaggle
    # dataset (about 0.4 GB in some 6,000 entries, ratio near 1) wide room.
    download.add_argument("--max-unzipped-gb", type=float, default=DEFAULT_MAX_UNZIPPED_GB,
                          help="refuse an archive that expands to more GB (10^9 bytes) than "
                          "this")
    download.add_argument("--max-ratio", type=float, default=DEFAULT_MAX_RATIO,
                          help="refuse an archive, or an entry of it, whose uncompressed size "
                          "is more than this many times its compressed size")
    download.add_argument("--max-entries", type=int, default=DEFAULT_MAX_ENTRIES,
                          help="refuse an archive of more entries (files and folders)")
    return parser


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(attach_negative_windows(argv))
    if options.command == "download":
        if not (options.max_unzipped_gb > 0 and options.max_ratio > 0
                and options.max_entries > 0) or not all(
                    math.isfinite(v) for v in (options.max_unzipped_gb, options.max_ratio)):
            parser.error("--max-unzipped-gb, --max-ratio and --max-entries must be positive "
                         "(finite) numbers")
        print_options(parser, options)
        from vaecyclegan.data.dataset_layout import resolve_dataset
        from vaecyclegan.data.kaggle import ZipLimits, dataset_summary, download_kaggle_dataset

        limits = ZipLimits(options.max_unzipped_gb, options.max_ratio, options.max_entries)
        folder = download_kaggle_dataset(options.out, zip_path=options.zip, limits=limits)
        # terminal_text: a folder name of undecodable bytes cannot be printed as it is.
        print(terminal_text(f"Installed {folder}:\n{dataset_summary(resolve_dataset(folder))}\n"
                            f"Train on it with: {_train_command()} --data {folder}"))
        return
    if options.size < 16 or options.train < 1 or options.test < 0:
        parser.error("--size must be at least 16, --train at least 1, --test at least 0")
    # NumPy's seeds are unsigned (a negative one raised a traceback).
    if options.seed < 0:
        parser.error("--seed must be 0 or positive")
    from vaecyclegan.io.memory_budget import check_fits_in_memory

    check_fits_in_memory(options.out, options.size**2, f"--size {options.size}: slices of "
                         f"{options.size}x{options.size}", bytes_per_pixel=RENDER_BYTES_PER_PIXEL)
    _check_fits_on_disk(options.out, options.size, options.train, options.test)
    if options.command == "realistic":
        return _realistic(parser, options)
    print_options(parser, options)
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.data.phantom import write_phantom_dataset

    images = _render(options.out, lambda folder: write_phantom_dataset(
        folder, IntensityConfig(), options.size, options.train, options.test, options.seed))
    print(terminal_text(f"Wrote {options.train} + {options.train} training and "
                        f"{options.test} paired test images into {images}"))


def _check_fits_on_disk(out, size, train, test):
    """Refuses a dataset larger than the free space where it goes (--train
    100000000 rendered for minutes towards terabytes), by its uncompressed
    size: 8-bit training slices of both domains, and per test pair 8-bit CT
    and MRI and the 16-bit HU copy. Noisy MRI compresses little."""
    import shutil

    from vaecyclegan.errors import InputError

    needed = size * size * (2 * train + 4 * test)
    from vaecyclegan.io.atomic_write import nearest_existing

    try:  # a file there is on the same file system as the folder to be
        free = shutil.disk_usage(nearest_existing(out)).free
    except OSError:
        return  # the folder checks that follow name the problem
    if needed > free:
        raise InputError(out, f"{train} + {train} training and {test} test images of "
                         f"{size} px need up to {needed / 1e9:.3g} GB, and {free / 1e9:.3g} GB "
                         "is free there")


def _render(folder, write):
    """Renders a dataset into `folder`, new or empty (rendered into an old
    one, its images would mix with the old ones of other names), all at
    once: a failure or Ctrl-C leaves no half-rendered dataset."""
    from vaecyclegan.workflows.output_staging import write_new_folder

    return write_new_folder(folder, write)


def _ct_window(text):
    """(low, high) HU from 'wide' or 'LEVEL,WIDTH' (ArgumentTypeError when
    malformed)."""
    if text.strip().lower() == "wide":
        return (-1000.0, 2000.0)
    return window_bounds(level_width(text))


def _realistic(parser, options):
    try:
        window = _ct_window(options.ct_window)
    except argparse.ArgumentTypeError as error:
        parser.error(f"--ct-window must be LEVEL,WIDTH in HU or 'wide': {error}")
    print_options(parser, options)
    from vaecyclegan.data.realistic_head import write_realistic_dataset

    images = _render(options.out, lambda folder: write_realistic_dataset(
        folder, window, options.size, options.train, options.test, options.seed,
        options.style))
    print(terminal_text(f"Wrote {options.train} + {options.train} realistic training and "
                        f"{options.test} paired test images (style {options.style}, CT window "
                        f"{window[0]:g}..{window[1]:g} HU) into {images}"))


def _train_command():
    """How the user trains: the installed command where this one is one."""
    return "vaecyclegan-train" if program_name().startswith("vaecyclegan-") else "python train.py"


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

"""What many tests share: the repository root, the smoke preset's tiny
architecture and `train.py --preset smoke`'s settings."""

import copy
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model_config():
    """The smoke preset's architecture: 32px, a handful of filters."""
    from vaecyclegan.config import ModelConfig
    from vaecyclegan.training.presets import PRESETS

    preset = copy.deepcopy(PRESETS["smoke"])
    return ModelConfig(image_size=preset.image_size, generator=preset.generator,
                       discriminator=preset.discriminator, rrdbnet=preset.rrdbnet)


def train_options(**overrides):
    """The `TrainSettings` of `train.py --preset smoke`, with `overrides`."""
    import dataclasses

    from vaecyclegan.cli.train import build_parser
    from vaecyclegan.workflows.settings import TrainSettings

    options = build_parser().parse_args(["--preset", "smoke"])
    return dataclasses.replace(TrainSettings(**vars(options)), **overrides)


# Helpers that unit tests and the integration tests (tests/integration/) share.

# A NIfTI affine: left-to-right flipped x (an "LAS" volume), 0.9 mm in-plane, 2.5 mm slices.
LAS_AFFINE = [[-0.9, 0, 0, 90.0], [0, 0.9, 0, -110.0], [0, 0, 2.5, -40.0], [0, 0, 0, 1]]


def kinds_of_view(doubled_batch):
    """For each loaded image of a doubled training batch (the images, then
    their augmented views), whether its view is the image ("same"), its
    left-right mirror ("mirrored") or neither ("moved")."""
    import numpy as np

    half = len(doubled_batch) // 2
    kinds = []
    for image, view in zip(doubled_batch[:half], doubled_batch[half:]):
        if np.allclose(view, image, atol=1e-6):
            kinds.append("same")
        elif np.allclose(view, image[:, ::-1], atol=1e-6):
            kinds.append("mirrored")
        else:
            kinds.append("moved")
    return kinds


def write_image(path, pixels):
    """Writes `pixels` with OpenCV, creating the folder."""
    import cv2

    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), pixels)


def infer(*args):
    """`infer.py` with these arguments, in this process; returns the exit code."""
    from vaecyclegan.cli.common import run_cli
    from vaecyclegan.cli.infer import main

    return run_cli(main, list(args))


def assert_one_line_error(capsys, code, *fragments):
    """Exit code 2 and one `error: ...` line on stderr holding each fragment."""
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in err[0], err[0]


def write_ct_series(folder, names, series_uid=None, mark=False, orientation=None,
                    pixel_spacing=None, positions=None, marker=None):
    """Copies of pydicom's CT_small (128 x 128) sharing one
    SeriesInstanceUID, 5 mm apart in the order of `names`; with `mark`,
    slice `index` holds 100 * index in its top-left 8x8 corner and is
    InstanceNumber index + 1. `orientation`, `pixel_spacing` and
    `positions` (one per name) replace CT_small's ImageOrientationPatient,
    PixelSpacing and ImagePositionPatient; `marker` `(index, row, column,
    value)` sets one pixel of a slice.

    Returns:
        The written paths, in the order of `names`.
    """
    import pydicom
    from pydicom.data import get_testdata_file

    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series_uid = series_uid or pydicom.uid.generate_uid()
    paths = []
    for index, name in enumerate(names):
        dataset = copy.deepcopy(base)
        dataset.SeriesInstanceUID = series_uid
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        position = list(base.ImagePositionPatient)
        position[2] = float(position[2]) + 5.0 * index
        dataset.ImagePositionPatient = list(positions[index]) if positions else position
        if orientation:
            dataset.ImageOrientationPatient = list(orientation)
        if pixel_spacing:
            dataset.PixelSpacing = list(pixel_spacing)
        pixels = base.pixel_array.copy()
        if mark:
            dataset.InstanceNumber = index + 1
            pixels[:8, :8] = 100 * index
        if marker and marker[0] == index:
            pixels[marker[1], marker[2]] = marker[3]
        if mark or marker:
            dataset.PixelData = pixels.tobytes()
        paths.append(os.path.join(str(folder), name))
        dataset.save_as(paths[-1], enforce_file_format=True)
    return paths


def dicom_series_folder(tmp_path, count=3):
    """A `count`-slice marked CT series (`write_ct_series`) in
    `tmp_path/series`, files named against position order (IM0003 is the
    first slice), so that a reader must order them by position."""
    folder = tmp_path / "series"
    folder.mkdir()
    write_ct_series(folder, [f"IM{count - index:04d}" for index in range(count)], mark=True)
    return folder


def sr_pairs_folder(root, count, scale=4, size=16, suffix=True):
    """`root/HR` and `root/LR` of `count` random pairs, LR the HR's block means."""
    import numpy as np

    from vaecyclegan.io.image_format import write_png

    rng = np.random.default_rng(0)
    for index in range(count):
        high = rng.integers(0, 256, (size * scale, size * scale), dtype=np.uint8)
        low = high.reshape(size, scale, size, scale).mean(axis=(1, 3)).astype(np.uint8)
        write_png(str(root / "HR" / f"{index:04d}.png"), high)
        name = f"{index:04d}x{scale}.png" if suffix else f"{index:04d}.png"
        write_png(str(root / "LR" / name), low)
    return root


def synthetic_head(depth=8, size=48, radii=(0.4, 0.35), inner=0.75):
    """A head in HU: air (-1000), an elliptic bone shell (1000) with soft
    tissue (40) inside it; `radii` are the ellipse's half-axes as fractions of
    `size`, `inner` the squared radius where soft tissue begins."""
    import numpy as np

    _, y, x = np.mgrid[:depth, :size, :size]
    radius = ((y - size / 2) / (radii[0] * size)) ** 2 + ((x - size / 2) / (radii[1] * size)) ** 2
    head = np.full((depth, size, size), -1000.0, np.float32)
    head[radius < 1.0] = 1000.0
    head[radius < inner] = 40.0
    return head


def report_from_jax(code, *args):
    """Runs Python `code` in a child process on Keras' JAX backend (from the
    repository, TensorFlow quiet) and returns the JSON object its last line
    of standard output prints."""
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": REPO,
                                 "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])

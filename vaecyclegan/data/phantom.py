"""A procedural head phantom: axial slices rendered as CT (HU) and T1 MRI.

Each anatomy is a tissue label map drawn in head-centred coordinates with a
random shape and pose: scalp, the skull's outer table, diploe and inner
table, subarachnoid CSF, a gyrated grey-matter ribbon around white matter,
the interhemispheric fissure, two lateral ventricles and, sometimes, lesions.
The labels are rendered twice:

- CT in Hounsfield units (bone far brighter than everything, air -1000),
  with quantum noise;
- T1-weighted MRI (fat in scalp and marrow bright, cortical bone and air
  both dark, white matter brighter than grey), with a smooth multiplicative
  bias field and Rician noise.

Telling bone from air in MRI needs context, as in real scans: that is what a
translator has to learn. Rendering is supersampled 2x so tissue boundaries
get partial-volume values.
"""

import dataclasses
import os

import cv2
import numpy as np

from vaecyclegan.io.image_format import write_png
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, hu_to_unit, mri_to_unit, unit_to_stored

AIR, SCALP, CORTICAL, DIPLOE, CSF, GREY, WHITE, VENTRICLE, LESION = range(9)
TISSUE_NAMES = (
    "air", "scalp", "cortical bone", "diploe", "CSF", "grey matter",
    "white matter", "ventricles", "lesion",
)

# Split codes keep each split's anatomies independent of the others' counts.
_SPLIT_CODES = {"trainA": 1, "trainB": 2, "test": 3}


@dataclasses.dataclass
class PhantomSlice:
    labels: np.ndarray  # (size, size) uint8 tissue labels
    ct_hu: np.ndarray  # (size, size) float32 Hounsfield units
    mri: np.ndarray  # (size, size) float32 T1 signal, arbitrary units


def _radial_wobble(rng, angle, harmonics, amplitude):
    wobble = np.zeros_like(angle)
    for k in harmonics:
        wobble += rng.uniform(-amplitude, amplitude) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return wobble


def _ellipse(x, y, cx, cy, ax, ay, theta):
    c, s = np.cos(theta), np.sin(theta)
    u = (x - cx) * c + (y - cy) * s
    v = -(x - cx) * s + (y - cy) * c
    return (u / ax) ** 2 + (v / ay) ** 2 <= 1.0


def _label_map(rng, size):
    """Draws one anatomy at `size` pixels (coordinates in [-1, 1])."""
    grid = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    yy, xx = np.meshgrid(grid, grid, indexing="ij")

    # Pose: rotation, shift and scale of the whole head.
    theta = np.deg2rad(rng.uniform(-15, 15))
    scale = rng.uniform(0.82, 0.97)
    cx, cy = rng.uniform(-0.05, 0.05, size=2)
    c, s = np.cos(theta), np.sin(theta)
    x = ((xx - cx) * c + (yy - cy) * s) / scale
    y = (-(xx - cx) * s + (yy - cy) * c) / scale

    # Head shape: an ellipse (front-back longer) with a smooth wobble.
    half_width, half_length = rng.uniform(0.72, 0.82), rng.uniform(0.88, 0.96)
    angle = np.arctan2(y, x)
    rho = np.sqrt((x / half_width) ** 2 + (y / half_length) ** 2)
    rho = rho / (1.0 + _radial_wobble(rng, angle, (2, 3, 4, 5), 0.015))

    scalp = rng.uniform(0.05, 0.08)
    outer_table = rng.uniform(0.022, 0.032)
    diploe = rng.uniform(0.025, 0.045)
    inner_table = rng.uniform(0.018, 0.026)
    csf = rng.uniform(0.015, 0.03)
    bounds = np.cumsum([scalp, outer_table, diploe, inner_table, csf])
    depth = 1.0 - rho  # 0 at the skin, growing inwards

    labels = np.full((size, size), AIR, dtype=np.uint8)
    labels[depth >= 0] = SCALP
    labels[depth >= bounds[0]] = CORTICAL
    labels[depth >= bounds[1]] = DIPLOE
    labels[depth >= bounds[2]] = CORTICAL
    labels[depth >= bounds[3]] = CSF
    brain = depth >= bounds[4]
    labels[brain] = GREY

    # White matter under a gyrated grey ribbon.
    ribbon = rng.uniform(0.05, 0.08) + _radial_wobble(rng, angle, range(7, 16), 0.012)
    labels[depth >= bounds[4] + ribbon] = WHITE

    # Interhemispheric fissure: a CSF gap along the midline, front and back.
    fissure_width = rng.uniform(0.008, 0.016)
    fissure = brain & (np.abs(x) < fissure_width) & (np.abs(y) > rng.uniform(0.15, 0.3))
    labels[fissure] = CSF

    # Lateral ventricles: a mirrored pair of tilted ellipses.
    vx, vy = rng.uniform(0.05, 0.09), rng.uniform(-0.08, 0.04)
    vax, vay = rng.uniform(0.035, 0.07), rng.uniform(0.14, 0.24)
    tilt = np.deg2rad(rng.uniform(10, 25))
    for side in (-1, 1):
        labels[brain & _ellipse(x, y, side * vx, vy, vax, vay, side * tilt)] = VENTRICLE

    # Sometimes a lesion or two in the white matter.
    for _ in range(rng.choice([0, 0, 1, 2])):
        lx, ly = rng.uniform(-0.4, 0.4), rng.uniform(-0.45, 0.45)
        lesion = _ellipse(x, y, lx, ly, rng.uniform(0.03, 0.07), rng.uniform(0.03, 0.07), 0.0)
        labels[lesion & (labels == WHITE)] = LESION
    return labels


def _render(labels, values):
    lut = np.asarray(values, dtype=np.float32)
    return lut[labels]


def _smooth_field(rng, size, amplitude):
    grid = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    terms = (xx, yy, xx * yy, xx**2, yy**2)
    log_field = sum(rng.uniform(-amplitude, amplitude) * t for t in terms)
    return np.exp(log_field).astype(np.float32)


def render_slice(seed, size):
    """Draws and renders one anatomy, deterministically for `seed`.

    Args:
        seed: an int or a sequence of ints for `numpy.random.default_rng`.
        size: image side in pixels.

    Returns:
        A `PhantomSlice` with labels, CT in HU and T1 MRI signal.
    """
    rng = np.random.default_rng(seed)
    fine = _label_map(rng, 2 * size)

    bone_hu = rng.uniform(1300, 1800)
    ct_values = [-1000, 35, bone_hu, rng.uniform(450, 750), 8, 40, 27, 6, 62]
    mri_values = [0.0, 0.85, 0.03, 0.55, 0.12, 0.45, 0.68, 0.10, 0.30]
    mri_values = [v * rng.uniform(0.93, 1.07) for v in mri_values]

    def downsample(image):
        # Area averaging of the 2x render gives partial-volume edges.
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)

    ct = downsample(_render(fine, ct_values)) + rng.normal(0, 6.0, (size, size))
    mri = downsample(_render(fine, mri_values)) * _smooth_field(rng, size, 0.12)
    noise = rng.uniform(0.015, 0.03)
    # Rician noise: the magnitude of a complex signal with Gaussian noise.
    mri = np.hypot(mri + rng.normal(0, noise, mri.shape), rng.normal(0, noise, mri.shape))
    labels = cv2.resize(fine, (size, size), interpolation=cv2.INTER_NEAREST)
    return PhantomSlice(labels, ct.astype(np.float32), mri.astype(np.float32))


def write_phantom_dataset(out_dir, intensity, size=256, num_train=200, num_test=24, seed=0):
    """Writes a phantom dataset in the Kaggle `ct-to-mri-cgan` layout.

    `Dataset/images/trainA` (CT) and `trainB` (MRI) hold independent
    anatomies (unpaired); `testA` and `testB` hold the same anatomies under
    the same file names (paired). CT PNGs are 8-bit through the CT window;
    `testA_hu` holds 16-bit copies of the CT test slices in HU + 1024.

    Args:
        out_dir: the dataset folder to create.
        intensity: an `IntensityConfig` (CT window, MRI percentiles).
        size: image side in pixels.
        num_train: images per training domain.
        num_test: test pairs.
        seed: makes the dataset reproducible.

    Returns:
        The `Dataset/images` folder.
    """
    images = os.path.join(out_dir, "Dataset", "images")

    def write_ct(folder, name, ct_hu):
        pixels = unit_to_stored(hu_to_unit(ct_hu, intensity.ct_window_hu))
        write_png(os.path.join(images, folder, name), pixels)

    def write_mri(folder, name, mri):
        pixels = unit_to_stored(mri_to_unit(mri, intensity.mri_percentiles))
        write_png(os.path.join(images, folder, name), pixels)

    for index in range(num_train):
        name = f"phantom_{index:05d}.png"
        write_ct("trainA", name, render_slice([seed, _SPLIT_CODES["trainA"], index], size).ct_hu)
        write_mri("trainB", name, render_slice([seed, _SPLIT_CODES["trainB"], index], size).mri)
    for index in range(num_test):
        name = f"phantom_test_{index:05d}.png"
        phantom = render_slice([seed, _SPLIT_CODES["test"], index], size)
        write_ct("testA", name, phantom.ct_hu)
        write_mri("testB", name, phantom.mri)
        hu16 = np.clip(np.round(phantom.ct_hu) + PNG16_HU_OFFSET, 0, 65535).astype(np.uint16)
        write_png(os.path.join(images, "testA_hu", name), hu16)
    return images

"""A realistic head renderer: axial 256-px slices with real proportions.

The built-in `phantom` is easy on purpose (thick blurred skull rings, wide
CT window). This module draws a development set as hard as real heads:
about 1 mm pixels in a 240-260 mm field of view, a skull of 1-3 mm cortical
tables around 2-6 mm of diploe under 3-7 mm of scalp, a gyrated cortex with
sulcal clefts, ventricles whose size follows the slice level, and, at the
skull base, orbits with eyes, paranasal sinuses, petrous bone with mastoid
air cells and the posterior fossa. Each slice is a tissue label map drawn
in millimetres (supersampled 2x for partial-volume edges) and rendered as
CT in HU (quantum noise) and as T1 MRI (bias field, Rician noise).

`style` ("a" or "b") switches between two independent sets of rendering
choices (tissue values, noise, bias field, gyral spacing, skull thickness,
field of view) so that nothing gets tuned to one rendering.
"""

import dataclasses
import json
import os

import cv2
import numpy as np

from vaecyclegan.data.phantom import _radial_wobble, _smooth_field
from vaecyclegan.io.atomic_write import atomic_write_text
from vaecyclegan.io.image_format import write_png
from vaecyclegan.io.intensity import PNG16_HU_OFFSET, hu_to_unit, mri_to_unit, unit_to_stored

(AIR, SKIN, FAT, MUSCLE, CORTICAL, DIPLOE, CSF, GREY, WHITE, VENTRICLE, DURA, VITREOUS, LENS,
 DENSE_BONE, DEEP_GREY, SINUS) = range(16)
TISSUE_NAMES = (
    "air", "skin", "fat", "muscle", "cortical bone", "diploe", "CSF", "grey matter",
    "white matter", "ventricles", "dura (falx, tentorium)", "vitreous", "lens",
    "petrous bone", "deep grey matter", "sinus air",
)
_BRAIN = 255  # intracranial space not yet divided into tissues

# Split codes keep each split's anatomies independent of the others' counts;
# style codes give the two renderings different anatomies for the same seed.
_SPLIT_CODES = {"trainA": 1, "trainB": 2, "test": 3}
_STYLE_CODES = {"a": 11, "b": 12}

# Slice height in mm above the orbitomeatal plane: level 0 cuts the
# maxillary sinuses, level 1 lies 15 mm below the vertex.
_LOW_MM, _HIGH_MM = -25.0, 110.0

# Rendering choices per style: (low, high) ranges drawn per slice. The two
# styles share no tuning: other tissue values, noise, bias field, gyral
# spacing, skull and scalp thickness (all inside the ranges of real heads).
_STYLES = {
    "a": {
        "fov_mm": (240, 250), "ct_noise_hu": (3, 6), "mri_noise": (0.010, 0.020),
        "bias": (0.08, 0.15), "gyrus_mm": (13, 17), "table_mm": (1.1, 2.2),
        "diploe_mm": (2.2, 4.5), "scalp_mm": (3.2, 5.5), "csf_mm": (1.0, 2.0),
        "ventricle_scale": (0.7, 1.1),
        "ct": {SKIN: (35, 50), FAT: (-110, -90), MUSCLE: (45, 60), CORTICAL: (1300, 1800),
               DIPLOE: (300, 450), CSF: (4, 12), GREY: (36, 44), WHITE: (25, 31),
               DURA: (55, 80), VITREOUS: (5, 15), LENS: (100, 130), DENSE_BONE: (1700, 2100),
               DEEP_GREY: (34, 40)},
        "mri": {SKIN: (0.50, 0.60), FAT: (0.95, 1.05), MUSCLE: (0.32, 0.40),
                CORTICAL: (0.02, 0.05), DIPLOE: (0.70, 0.85), CSF: (0.10, 0.16),
                GREY: (0.40, 0.46), WHITE: (0.60, 0.66), DURA: (0.12, 0.20),
                VITREOUS: (0.08, 0.14), LENS: (0.40, 0.50), DENSE_BONE: (0.01, 0.03),
                DEEP_GREY: (0.48, 0.54)},
    },
    "b": {
        "fov_mm": (250, 260), "ct_noise_hu": (6, 11), "mri_noise": (0.020, 0.035),
        "bias": (0.18, 0.30), "gyrus_mm": (10, 13), "table_mm": (1.6, 2.8),
        "diploe_mm": (3.5, 5.8), "scalp_mm": (4.5, 6.8), "csf_mm": (1.5, 2.8),
        "ventricle_scale": (0.9, 1.4),
        "ct": {SKIN: (40, 60), FAT: (-100, -70), MUSCLE: (40, 55), CORTICAL: (1000, 1450),
               DIPLOE: (420, 600), CSF: (8, 18), GREY: (32, 40), WHITE: (22, 28),
               DURA: (45, 65), VITREOUS: (8, 18), LENS: (90, 120), DENSE_BONE: (1500, 1900),
               DEEP_GREY: (30, 36)},
        "mri": {SKIN: (0.40, 0.50), FAT: (0.82, 0.92), MUSCLE: (0.26, 0.34),
                CORTICAL: (0.01, 0.04), DIPLOE: (0.55, 0.70), CSF: (0.04, 0.09),
                GREY: (0.36, 0.42), WHITE: (0.66, 0.74), DURA: (0.08, 0.15),
                VITREOUS: (0.04, 0.10), LENS: (0.35, 0.45), DENSE_BONE: (0.01, 0.03),
                DEEP_GREY: (0.48, 0.56)},
    },
}


@dataclasses.dataclass
class RealisticSlice:
    labels: np.ndarray  # (size, size) uint8 tissue labels (TISSUE_NAMES)
    ct_hu: np.ndarray  # (size, size) float32 Hounsfield units
    mri: np.ndarray  # (size, size) float32 T1 signal, arbitrary units (fat near 1)
    pixel_mm: float  # pixel side in mm
    level: float  # 0 = skull base (maxillary sinuses) .. 1 = near the vertex


@dataclasses.dataclass
class _Canvas:
    """The 2x supersampled grid in head coordinates (mm): x to the
    patient's left, y from anterior (negative, image top) to posterior."""

    n: int
    px: float
    x: np.ndarray  # (1, n)
    y: np.ndarray  # (n, 1)

    def pixels(self, points):
        # cv2 drawing with 4 fractional bits keeps sub-pixel positions.
        return np.round((np.asarray(points, float) / self.px + self.n / 2 - 0.5) * 16).astype(
            np.int32)

    def poly(self, points):
        mask = np.zeros((self.n, self.n), np.uint8)
        cv2.fillPoly(mask, [self.pixels(points)], 1, shift=4)
        return mask.astype(bool)

    def line(self, points, width_mm):
        mask = np.zeros((self.n, self.n), np.uint8)
        width = max(1, int(round(width_mm / self.px)))
        cv2.polylines(mask, [self.pixels(points)], False, 1, thickness=width, shift=4)
        return mask.astype(bool)

    def ellipse(self, cx, cy, ax, ay):
        return ((self.x - cx) / ax) ** 2 + ((self.y - cy) / ay) ** 2 <= 1.0

    def depth_mm(self, mask):
        """Distance in mm from each pixel of `mask` to the nearest pixel outside."""
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        return cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * self.px


def _smooth_noise(rng, n, cells, amplitude):
    """A smooth random field (about `cells` bumps across) of std ~`amplitude`."""
    coarse = rng.normal(0.0, amplitude, (cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (n, n), interpolation=cv2.INTER_CUBIC)


def _draw_anatomy(rng, style, height):
    """Per-slice anatomy sizes in mm, drawn inside the issue's ranges."""
    p = _STYLES[style]
    top = rng.uniform(122, 130)  # vertex height above the orbitomeatal plane
    # Above 45 mm the head is a dome: slices shrink and cut the skull obliquely.
    u = max(height - 45.0, 0.0) / (top - 45.0)
    dome = float(np.sqrt(max(1.0 - u * u, 0.04)))
    return {
        "height": height, "dome": dome, "oblique": min(1.0 / dome, 1.8),
        "half_ap": rng.uniform(87, 95), "half_lr": rng.uniform(70, 77),
        "egg": rng.uniform(0.03, 0.08), "power": rng.uniform(2.0, 2.4),
        "skin": rng.uniform(1.2, 2.0), "scalp": rng.uniform(*p["scalp_mm"]),
        "outer": rng.uniform(*p["table_mm"]), "diploe": rng.uniform(*p["diploe_mm"]),
        "inner": rng.uniform(*p["table_mm"]) * 0.85, "csf": rng.uniform(*p["csf_mm"]),
        "gyrus": rng.uniform(*p["gyrus_mm"]), "ventricles": rng.uniform(*p["ventricle_scale"]),
        "cortex": rng.uniform(2.4, 3.2), "sulcus_depth": rng.uniform(10, 17),
    }


def _head_mask(rng, canvas, anatomy):
    """The skin outline: an egg-shaped superellipse, with a nose below the orbits."""
    a, b = anatomy["half_ap"] * anatomy["dome"], anatomy["half_lr"] * anatomy["dome"]
    # Heads are wider behind the ears than at the temples.
    width = b * (1.0 + anatomy["egg"] * np.clip(canvas.y / a, -1, 1))
    power = anatomy["power"]
    rho = (np.abs(canvas.x / width) ** power + np.abs(canvas.y / a) ** power) ** (1.0 / power)
    angle = np.arctan2(canvas.y, canvas.x)
    head = rho <= 1.0 + _radial_wobble(rng, angle, (3, 4, 5, 6), 0.008)
    h = anatomy["height"]
    if h < 10:
        # The nose sticks out further the lower the slice.
        length = 6.0 + 18.0 * np.clip((10.0 - h) / 30.0, 0.0, 1.0)
        half = 9.0 + 5.0 * np.clip((10.0 - h) / 30.0, 0.0, 1.0)
        front = -a * 0.97
        head |= canvas.poly([(-half, front + 6), (0, front - length), (half, front + 6)])
    return head, angle


def _layers(rng, canvas, anatomy, head, angle):
    """Scalp, temporalis muscle, the skull's tables and diploe, by depth in mm."""
    n = canvas.n
    depth = canvas.depth_mm(head)
    k = anatomy["oblique"]  # oblique cuts near the vertex make every layer look thicker

    def varying(mean, low, high, factor=1.0):
        # Thickness changes smoothly around the head, inside the real range.
        thickness = mean * factor * (1.0 + _radial_wobble(rng, angle, (2, 3, 5), 0.05))
        return np.clip(thickness, low, high) * k

    skin = anatomy["skin"] * k
    scalp = varying(anatomy["scalp"], 3.0, 7.0)
    # Temporalis: on each side, anterior to the ear, thin out towards the vertex.
    muscle_mm = 11.0 * np.clip((60.0 - anatomy["height"]) / 60.0, 0.0, 1.0)
    side = np.minimum(np.abs(angle + 0.35), np.abs(np.abs(angle) - np.pi) + 0.0)
    side = np.minimum(side, np.abs(angle - (np.pi + 0.35)))
    side = np.minimum(side, np.abs(angle - (-np.pi + 0.35)))
    muscle = muscle_mm * np.exp(-(side / 0.38) ** 2) * (np.abs(angle + np.pi / 2) > 0.6)
    outer = varying(anatomy["outer"], 1.0, 3.0)
    # The temporal squama is the thinnest part of the vault.
    diploe = varying(anatomy["diploe"], 2.0, 6.0, 1.0 - 0.35 * np.exp(-(side / 0.4) ** 2))
    inner = varying(anatomy["inner"], 1.0, 3.0)
    bounds = np.cumsum([scalp, muscle, outer, diploe, inner], axis=0)
    labels = np.full((n, n), AIR, np.uint8)
    labels[head] = SKIN
    labels[head & (depth > skin)] = FAT
    labels[depth > bounds[0]] = MUSCLE
    labels[depth > bounds[1]] = CORTICAL
    labels[depth > bounds[2]] = DIPLOE
    labels[depth > bounds[3]] = CORTICAL
    labels[depth > bounds[4]] = _BRAIN
    return labels, depth, scalp


def _front_of_cranium(canvas, height):
    """y (mm) of the bony front of the cranial cavity at each x, for low slices:
    the sphenoid wings and sella below 8 mm, moving forward over the orbits."""
    base = -44.0 + 22.0 * np.exp(-(canvas.x / 16.0) ** 2)
    t = np.clip((height - 8.0) / 14.0, 0.0, 1.0)
    return base * (1.0 - t) + (-110.0) * t


def _cavity(labels, canvas, mask, wall_mm, inside=SINUS):
    """An air (or other) cavity with a thin bony wall around it."""
    wall = canvas.depth_mm(~mask) <= wall_mm
    labels[wall & ~mask & (labels != AIR) & (labels != SKIN)] = CORTICAL
    labels[mask] = inside


# long: one low slice's face is a list of structures drawn in order
def _face(rng, labels, canvas, anatomy, scalp):
    """Orbits, eyes, ethmoid, nasal cavity, maxillary and sphenoid sinuses."""
    h = anatomy["height"]
    a, b = anatomy["half_ap"], anatomy["half_lr"]
    front = _front_of_cranium(canvas, h)
    face = (canvas.y < front) & (labels == _BRAIN)
    # Between the orbits and sinuses lies bone; lateral to them (the temporal
    # fossa) and below the orbits (pterygoid muscles, nasopharynx) soft tissue.
    labels[face] = MUSCLE
    labels[face & (np.abs(canvas.x) < 20) & (h > -8)] = DIPLOE
    wall = (canvas.y < front + 3.0) & (canvas.y >= front) & (labels == _BRAIN)
    labels[wall] = CORTICAL
    if -20 < h < 20:  # the orbits
        s = np.sqrt(max(1.0 - (h / 20.0) ** 2, 0.0))
        eye_x = rng.uniform(30, 34)
        for sign in (-1, 1):
            rim = -a * np.sqrt(max(1.0 - ((eye_x + 14) / b) ** 2, 0.05))
            orbit = canvas.poly([(sign * 13, -36), (sign * 15, -a * 0.93 + 4),
                                 (sign * (eye_x + 16 * s), rim + 6), (sign * 16, -38)])
            orbit &= canvas.ellipse(sign * eye_x * 0.8, -62, 24 * s + 4, 34)
            _cavity(labels, canvas, orbit, 1.8, FAT)
            muscles = canvas.line([(sign * 16, -42), (sign * 18, -a * 0.8)], 3.5)
            muscles |= canvas.line([(sign * 15, -40), (sign * (eye_x + 12 * s), rim + 10)], 3.5)
            labels[muscles & orbit & (abs(h) < 8)] = MUSCLE
            nerve = canvas.line([(sign * 14, -38), (sign * eye_x * 0.9, -a * 0.75)], 4.0)
            labels[nerve & orbit & (abs(h) < 6)] = WHITE
            radius2 = 144.0 - h * h
            if radius2 > 4:
                eye_y = -a * np.sqrt(max(1.0 - (eye_x / b) ** 2, 0.05)) + 14.0
                r = np.sqrt(radius2)
                labels[canvas.ellipse(sign * eye_x, eye_y, r, r)] = MUSCLE  # sclera
                labels[canvas.ellipse(sign * eye_x, eye_y, r - 1.0, r - 1.0)] = VITREOUS
                if abs(h) < 4:
                    labels[canvas.ellipse(sign * eye_x, eye_y - r + 3.0, 4.5, 2.0)] = LENS
    if -10 < h < 20:  # ethmoid air cells: a honeycomb between the orbits
        box = canvas.ellipse(0, -62, 11, 20) & (labels != SKIN) & (labels != FAT)
        cells = np.zeros_like(box)
        for cx in (-7, 0, 7):
            for cy in np.arange(-78, -44, 7.0):
                r = rng.uniform(2.4, 3.4)
                cells |= canvas.ellipse(cx + rng.uniform(-1, 1), cy + rng.uniform(-1, 1), r, r)
        labels[box] = CORTICAL
        labels[box & cells & (np.abs(canvas.x) > 1.0)] = SINUS
    if -25 <= h < -5:  # nasal cavity with the septum and turbinates
        nasal = canvas.ellipse(0, -62, 14, 24)
        _cavity(labels, canvas, nasal, 1.5)
        labels[nasal & (np.abs(canvas.x) < 1.0)] = CORTICAL
        for sign in (-1, 1):
            labels[nasal & canvas.ellipse(sign * 12, -60, 5, 14)] = MUSCLE
    if -25 <= h < -8:  # maxillary sinuses
        s = np.sqrt(max(1.0 - ((h + 18) / 12.0) ** 2, 0.1))
        for sign in (-1, 1):
            _cavity(labels, canvas, canvas.ellipse(sign * 31, -58, 13 * s, 18 * s), 1.8)
    if -20 < h < 12:  # sphenoid sinus with its septum
        s = np.sqrt(max(1.0 - ((h + 4) / 16.0) ** 2, 0.1))
        sphenoid = canvas.ellipse(0, -36, 15 * s, 11 * s)
        _cavity(labels, canvas, sphenoid, 2.0)
        labels[sphenoid & (np.abs(canvas.x - rng.uniform(-3, 3)) < 0.8)] = CORTICAL
    if 12 < h < 40:  # frontal sinus in the frontal bone
        s = np.sqrt(max(1.0 - ((h - 26) / 14.0) ** 2, 0.1))
        inner = -a * anatomy["dome"] + scalp.mean() + 3.0
        _cavity(labels, canvas, canvas.ellipse(rng.uniform(-3, 3), inner + 5, 15 * s, 5 * s),
                1.2)


def _posterior_fossa(rng, labels, canvas, anatomy):
    """Cerebellum, brain stem, fourth ventricle, petrous bone and mastoids.

    Returns the posterior fossa mask (its tissues are drawn here)."""
    h = anatomy["height"]
    sx, sy = anatomy["half_lr"] / 75.0, anatomy["half_ap"] / 90.0
    s2 = 1.0 - ((h + 8.0) / 34.0) ** 2
    if s2 <= 0:
        return np.zeros(labels.shape, bool)
    s = np.sqrt(s2)
    # The upper cerebellum lies at the back, under the tentorium's apex.
    centre_y, ax, ay = (38.0 + 22.0 * (1.0 - s)) * sy, 60.0 * sx * s, 48.0 * sy * s
    fossa = canvas.ellipse(0, centre_y, ax, ay) & (labels == _BRAIN)
    if -16 < h < 8:  # petrous ridges: dense bone along the front of the fossa, a V
        grow = 9.0 * np.sqrt(1.0 - ((h + 4.0) / 12.0) ** 2)
        ridge = canvas.ellipse(0, centre_y, ax + grow, ay + grow) & ~canvas.ellipse(
            0, centre_y, ax, ay)
        ridge &= (np.abs(canvas.x) > 14) & (canvas.y < centre_y - 4) & (labels == _BRAIN)
        labels[ridge] = DENSE_BONE
        for sign in (-1, 1):  # middle ear cavity inside the petrous bone
            labels[ridge & canvas.ellipse(sign * 40 * sx, 8 * sy, 3.5, 2.5)] = SINUS
    if h < 6:  # mastoid air cells in dense bone behind the ears
        for sign in (-1, 1):
            mastoid = canvas.ellipse(sign * 56 * sx, 24 * sy, 13, 15) & np.isin(
                labels, (CORTICAL, DIPLOE, _BRAIN, MUSCLE))
            labels[mastoid] = DENSE_BONE
            cells = _smooth_noise(rng, canvas.n, 48, 1.0) > 0.5
            labels[mastoid & cells & (canvas.depth_mm(mastoid) > 1.2)] = SINUS
    fossa &= labels == _BRAIN
    labels[fossa] = GREY
    # Cerebellar folia: thin, wavy CSF arcs in each hemisphere.
    r = np.hypot(np.abs(canvas.x) - 18 * sx, canvas.y - (centre_y - 14))
    folia = np.abs(np.sin(np.pi * r / 4.5 + _smooth_noise(rng, canvas.n, 16, 1.2))) < 0.12
    labels[fossa & folia & (r > 14)] = CSF
    core = _smooth_noise(rng, canvas.n, 24, 0.35)
    for sign in (-1, 1):  # white matter cores of the hemispheres, irregular
        r2 = ((canvas.x - sign * 20 * sx) / (8 * s)) ** 2 + ((canvas.y - centre_y + 8) / (6 * s)) ** 2
        labels[fossa & (r2 <= 1.0 + core) & (h > -20)] = WHITE
    labels[fossa & (np.abs(canvas.x) < 1.2) & (canvas.y > centre_y + 12)] = CSF  # vallecula
    if h < 20:  # tentorium and dura over the fossa
        edge = canvas.ellipse(0, centre_y, ax, ay) & ~canvas.ellipse(0, centre_y, ax - 1, ay - 1)
        labels[edge & (labels == _BRAIN) & (canvas.y < centre_y + 0.3 * ay)] = DURA
    if h < 14:  # brain stem: pons, then medulla; prepontine cistern; 4th ventricle
        stem_y, stem_r = 4.0 * sy, (12.0 if h > -15 else 9.0)
        cistern = canvas.ellipse(0, stem_y, stem_r + 4, stem_r + 3) & (
            (labels == _BRAIN) | fossa)
        labels[cistern] = CSF
        labels[cistern & canvas.ellipse(0, stem_y, stem_r, stem_r - 1)] = WHITE
        labels[cistern & canvas.ellipse(0, stem_y + stem_r + 3, 5.5, 3.5)] = VENTRICLE
        fossa |= cistern
    # Subarachnoid CSF between the cerebellum and the bone around it.
    labels[fossa & (canvas.depth_mm(fossa) <= anatomy["csf"])] = CSF
    return fossa


def _skull_base(labels, canvas, anatomy, fossa):
    """Below the temporal lobes' floor the cranial cavity is bone except for the
    middle cranial fossae (temporal lobes) and the suprasellar cistern."""
    h = anatomy["height"]
    if h >= 14:
        return
    sx, sy = anatomy["half_lr"] / 75.0, anatomy["half_ap"] / 90.0
    s = np.sqrt(np.clip((h + 18.0) / 30.0, 0.0, 1.0))
    middle = np.zeros(labels.shape, bool)
    if s > 0:  # the temporal lobes' lowest tips end about 18 mm below the plane
        middle = (canvas.ellipse(-34 * sx, -8 * sy, 26 * s, 36 * s)
                  | canvas.ellipse(34 * sx, -8 * sy, 26 * s, 36 * s))
    cistern = canvas.ellipse(0, -14 * sy, 11, 9) if h > -2 else np.zeros_like(middle)
    bone = (labels == _BRAIN) & ~middle & ~fossa & ~cistern
    labels[bone] = DIPLOE
    labels[bone & (canvas.depth_mm(bone) <= 1.5)] = CORTICAL
    if h < -4:  # below the middle fossae: infratemporal fossa and nasopharynx
        labels[bone & (canvas.y < -10 * sy) & (np.abs(canvas.x) > 14)] = MUSCLE
    labels[cistern & (labels == _BRAIN)] = CSF


def _clefts(rng, canvas, anatomy, parenchyma, brain_depth, fossa):
    """CSF clefts cut into the cerebrum: sulci, interhemispheric and Sylvian fissures."""
    h = anatomy["height"]
    n = canvas.n
    centre_y = 5.0
    r = np.hypot(canvas.x, canvas.y - centre_y)
    radius = np.sqrt(parenchyma.sum() / np.pi) * canvas.px
    k = max(6, int(round(2 * np.pi * radius / anatomy["gyrus"])))
    # Sulci follow the lines of constant phase of a warped angular pattern.
    phase = k * np.arctan2(canvas.y - centre_y, canvas.x) + _smooth_noise(rng, n, 9, 2.5)
    phase += _smooth_noise(rng, n, 24, 1.4)  # small-scale tortuosity
    wrapped = np.abs(np.mod(phase + np.pi, 2 * np.pi) - np.pi) * r / k
    limit = anatomy["sulcus_depth"] * (1.0 + _smooth_noise(rng, n, 7, 0.3))
    half_width = 0.35 + 0.3 * anatomy["csf"]
    # Sulci start at the convexity only, never at the brain's centre.
    clefts = (wrapped < half_width) & (brain_depth < limit) & (r > 22)
    # Shallower sulci between them make the gyri branch.
    offset = np.abs(np.mod(phase, 2 * np.pi) - np.pi) * r / k
    clefts |= (offset < half_width) & (brain_depth < 0.45 * limit) & (r > 22)
    if 10 < h < 52:  # Sylvian fissures down to the insula
        for sign in (-1, 1):
            x_insula = sign * 36.0 * anatomy["half_lr"] / 75.0
            bend = rng.uniform(-6, 6, 3)
            clefts |= canvas.line([(sign * 90.0, 2.0 + bend[0]), (sign * 58.0, -6.0 + bend[1]),
                                   (x_insula, -2.0 + bend[2])], 2.5)
            clefts |= canvas.line([(x_insula + sign * 2, -24.0), (x_insula, -6.0),
                                   (x_insula + sign * 3, 12.0)], 1.8)
    # Interhemispheric fissure: front and back; over the ventricles the corpus
    # callosum joins the hemispheres; near the vertex it runs the full length.
    front_end, back_start = (-22.0, 38.0) if h < 72 else (200.0, -200.0)
    fissure = (np.abs(canvas.x) < 0.8 + 0.5 * anatomy["csf"]) & (
        (canvas.y < front_end) | (canvas.y > back_start))
    return clefts & parenchyma & ~fossa, fissure & parenchyma


def _ventricles_and_nuclei(labels, canvas, anatomy, cerebrum):
    """Lateral ventricles (frontal horns, bodies, atria, temporal horns), the
    third ventricle, caudate, lentiform nuclei and thalami, by slice height."""
    h, v = anatomy["height"], anatomy["ventricles"]
    sx, sy = anatomy["half_lr"] / 75.0, anatomy["half_ap"] / 90.0
    deep = np.zeros(labels.shape, bool)
    ventricles = np.zeros(labels.shape, bool)
    half = v * (1.5 + 3.5 * np.sin(np.pi * np.clip((h - 28.0) / 46.0, 0.0, 1.0)))
    for sign in (-1, 1):
        if 25 < h < 55:
            deep |= canvas.ellipse(sign * (12 + half) * sx, -17 * sy, 5, 9)
            deep |= canvas.ellipse(sign * 25 * sx, -3 * sy, 6, 15)
        if 22 < h < 46:
            deep |= canvas.ellipse(sign * 9 * sx, 9 * sy, 8, 12)
        points = [(sign * x * sx, y * sy) for x, y in
                  ((12, -28), (6, -14), (9, 4), (14, 22), (24, 36))]
        if 28 < h < 74:
            keep = (0, 3) if h < 45 else ((0, 1, 2, 3) if h < 66 else (1, 2))
            for index in keep:
                ventricles |= canvas.line(points[index:index + 2], 2 * half)
            if h < 60:  # the atrium (trigone) is the widest part
                ventricles |= canvas.ellipse(sign * 19 * sx, 30 * sy, 4 + half, 5 + half)
        if 0 < h < 25:
            ventricles |= canvas.line([(sign * 30 * sx, -22 * sy), (sign * 34 * sx, -4 * sy)],
                                      2.4 * v)
    labels[deep & cerebrum] = DEEP_GREY
    if 22 < h < 45:
        ventricles |= canvas.line([(0, -12 * sy), (0, 8 * sy)], 2.4 + 1.6 * v)
    labels[ventricles & cerebrum] = VENTRICLE


def _brain(rng, labels, canvas, anatomy, fossa):
    """Divides the cerebrum into CSF, a gyrated grey ribbon, white matter,
    ventricles and deep grey nuclei."""
    cerebrum = labels == _BRAIN
    depth = canvas.depth_mm(cerebrum)
    labels[cerebrum] = CSF
    parenchyma = cerebrum & (depth > anatomy["csf"])
    # Sulci are measured from the skull, not from the tentorium or skull base.
    from_skull = canvas.depth_mm(cerebrum | fossa) - anatomy["csf"]
    clefts, fissure = _clefts(rng, canvas, anatomy, parenchyma, from_skull, fossa)
    tissue = parenchyma & ~clefts & ~fissure
    # The cortex is a ribbon of grey matter following every surface: the
    # brain's outside and both walls of each cleft.
    cortex_depth = canvas.depth_mm(tissue)
    labels[tissue] = WHITE
    labels[tissue & (cortex_depth <= anatomy["cortex"])] = GREY
    labels[fissure & (np.abs(canvas.x) < 0.5)] = DURA  # the falx
    _ventricles_and_nuclei(labels, canvas, anatomy, tissue & (cortex_depth > 4.0))


def _labels_fine(rng, canvas, anatomy):
    """The whole tissue map of one slice on the supersampled grid."""
    head, angle = _head_mask(rng, canvas, anatomy)
    labels, depth, scalp = _layers(rng, canvas, anatomy, head, angle)
    if anatomy["height"] < 40:
        _face(rng, labels, canvas, anatomy, scalp)
    fossa = _posterior_fossa(rng, labels, canvas, anatomy)
    _skull_base(labels, canvas, anatomy, fossa)
    _brain(rng, labels, canvas, anatomy, fossa)
    # Eyelids and nose keep their skin over whatever the face drew.
    labels[head & (depth <= anatomy["skin"])] = SKIN
    return labels


def _pose(rng, labels, canvas):
    """Tilts and shifts the head a little, as patients lie in scanners."""
    centre = (canvas.n / 2 - 0.5, canvas.n / 2 - 0.5)
    matrix = cv2.getRotationMatrix2D(centre, rng.uniform(-8, 8), 1.0)
    matrix[:, 2] += rng.uniform(-6, 6, 2) / canvas.px
    return cv2.warpAffine(labels, matrix, (canvas.n, canvas.n), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=AIR)


def _tissue_values(rng, style):
    """CT (HU) and T1 lookup tables for one slice, drawn from the style's ranges."""
    p = _STYLES[style]
    ct = np.full(len(TISSUE_NAMES), -1000.0, np.float32)
    mri = np.zeros(len(TISSUE_NAMES), np.float32)
    for tissue in sorted(p["ct"]):
        ct[tissue] = rng.uniform(*p["ct"][tissue])
        mri[tissue] = rng.uniform(*p["mri"][tissue])
    ct[VENTRICLE], mri[VENTRICLE] = ct[CSF], mri[CSF]
    return ct, mri


def render_realistic_slice(seed, size=256, style="a", level=None):
    """Draws and renders one realistic axial head slice, deterministically.

    Args:
        seed: an int or a sequence of ints for `numpy.random.default_rng`.
        size: image side in pixels (the field of view stays 240-260 mm).
        style: "a" or "b", two independent sets of rendering choices.
        level: slice height from 0 (skull base, maxillary sinuses) to 1
            (near the vertex); None draws it at random.

    Returns:
        A `RealisticSlice` with labels, CT in HU, T1 signal, pixel size, level.

    Example:
        >>> head = render_realistic_slice([0, 3, 7], style="b", level=0.1)
        >>> head.ct_hu.shape, 0.9 < head.pixel_mm < 1.05
        ((256, 256), True)
    """
    if style not in _STYLES:
        raise ValueError(f"style must be one of {sorted(_STYLES)}, got {style!r}")
    rng = np.random.default_rng(seed)
    p = _STYLES[style]
    level = float(rng.uniform(0.0, 1.0) if level is None else level)
    pixel_mm = rng.uniform(*p["fov_mm"]) / size
    n = 2 * size
    grid = (np.arange(n, dtype=np.float32) + 0.5 - n / 2) * pixel_mm / 2
    canvas = _Canvas(n, pixel_mm / 2, grid[None, :], grid[:, None])
    anatomy = _draw_anatomy(rng, style, _LOW_MM + level * (_HIGH_MM - _LOW_MM))
    fine = _pose(rng, _labels_fine(rng, canvas, anatomy), canvas)
    ct_lut, mri_lut = _tissue_values(rng, style)

    def downsample(image):
        # Area averaging of the 2x render gives partial-volume edges.
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)

    ct = downsample(ct_lut[fine]) + rng.normal(0, rng.uniform(*p["ct_noise_hu"]), (size, size))
    # Scanners store nothing below -1024 HU (the 16-bit PNG's zero, too).
    ct = np.maximum(ct, -float(PNG16_HU_OFFSET))
    mri = downsample(mri_lut[fine]) * _smooth_field(rng, size, rng.uniform(*p["bias"]))
    noise = rng.uniform(*p["mri_noise"])
    # Rician noise: the magnitude of a complex signal with Gaussian noise.
    mri = np.hypot(mri + rng.normal(0, noise, mri.shape), rng.normal(0, noise, mri.shape))
    labels = cv2.resize(fine, (size, size), interpolation=cv2.INTER_NEAREST)
    return RealisticSlice(labels, ct.astype(np.float32), mri.astype(np.float32),
                          float(pixel_mm), level)


def write_realistic_dataset(out_dir, ct_window_hu, size=256, num_train=80, num_test=24, seed=0,
                            style="a", mri_percentiles=(0.5, 99.5)):
    """Writes realistic head slices in the Kaggle `ct-to-mri-cgan` layout.

    `Dataset/images/trainA` (CT) and `trainB` (MRI) hold independent
    anatomies (unpaired); `testA` and `testB` the same anatomies under the
    same file names (paired); `testA_hu` 16-bit copies of the CT test slices
    in HU + 1024. `Dataset/realistic_head.json` records the style, window
    and each test slice's pixel size and level.

    Args:
        out_dir: the dataset folder to create.
        ct_window_hu: (low, high) HU mapped to 0 and 255 in the CT PNGs, e.g.
            (-160, 240) for a brain window or (-1000, 2000).
        size: image side in pixels.
        num_train: images per training domain.
        num_test: test pairs.
        seed: makes the dataset reproducible.
        style: "a" or "b" (see `render_realistic_slice`).
        mri_percentiles: robust percentiles of each MRI mapped to 0 and 255.

    Returns:
        The `Dataset/images` folder.

    Example:
        >>> write_realistic_dataset("devsets/real_a", (-160, 240), size=64, num_train=4,
        ...                         num_test=2, style="a", seed=1)
        'devsets/real_a/Dataset/images'
        >>> sorted(os.listdir("devsets/real_a/Dataset/images"))
        ['testA', 'testA_hu', 'testB', 'trainA', 'trainB']
    """
    images = os.path.join(out_dir, "Dataset", "images")
    style_code = _STYLE_CODES[style] if style in _STYLE_CODES else None
    if style_code is None:
        raise ValueError(f"style must be one of {sorted(_STYLES)}, got {style!r}")

    def render(split, index):
        return render_realistic_slice([seed, style_code, _SPLIT_CODES[split], index], size, style)

    def write_ct(folder, name, ct_hu):
        pixels = unit_to_stored(hu_to_unit(ct_hu, ct_window_hu))
        write_png(os.path.join(images, folder, name), pixels)

    def write_mri(folder, name, mri):
        pixels = unit_to_stored(mri_to_unit(mri, mri_percentiles))
        write_png(os.path.join(images, folder, name), pixels)

    for index in range(num_train):
        name = f"realistic_{index:05d}.png"
        write_ct("trainA", name, render("trainA", index).ct_hu)
        write_mri("trainB", name, render("trainB", index).mri)
    record = {"style": style, "seed": seed, "ct_window_hu": list(ct_window_hu), "test": {}}
    for index in range(num_test):
        name = f"realistic_test_{index:05d}.png"
        head = render("test", index)
        write_ct("testA", name, head.ct_hu)
        write_mri("testB", name, head.mri)
        hu16 = np.clip(np.round(head.ct_hu) + PNG16_HU_OFFSET, 0, 65535).astype(np.uint16)
        write_png(os.path.join(images, "testA_hu", name), hu16)
        record["test"][name] = {"pixel_mm": round(head.pixel_mm, 5), "level": round(head.level, 4)}
    atomic_write_text(os.path.join(out_dir, "Dataset", "realistic_head.json"),
                      json.dumps(record, indent=1) + "\n")
    return images

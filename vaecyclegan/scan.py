"""One input to translate: a 2-D image, a DICOM series or a NIfTI volume,
held as a stack of slices in physical units."""

import dataclasses

import numpy as np

from vaecyclegan.intensity import values_to_unit

DOMAINS = ("ct", "mri")


@dataclasses.dataclass
class Scan:
    """Slices of one input and what is needed to write a result back in kind.

    Args:
        path: the file (or, for a DICOM series, the first file) it came from.
        kind: "image", "dicom" or "nifti".
        domain: "ct" or "mri".
        values: float32 (slices, H, W) in `units`.
        units: "hu", "signal" or "grey" (see `values_to_unit`).
        full_scale: the grey level of white, for "grey" units.
        source: what the format's writer needs (pixel dtype; DICOM datasets;
            NIfTI header, affine and orientation).
        output_name: file (or folder) name of the result.

    Example:
    >>> scan = read_scan("MR_small.dcm", "mri", IntensityConfig())
    >>> unit = scan.to_unit(IntensityConfig())  # (1, 64, 64) in [-1, 1]
    """

    path: str
    kind: str
    domain: str
    values: np.ndarray
    units: str
    output_name: str
    full_scale: float = 255.0
    source: object = None

    def to_unit(self, intensity):
        return values_to_unit(self.values, self.units, intensity, self.full_scale)

    @property
    def slice_count(self):
        return self.values.shape[0]

"""What the latent space's spread says: deviation heat maps, and whether
they point at the errors."""

import matplotlib
import numpy as np
from scipy.stats import spearmanr

STD_COLORMAP = "magma"
# Heat maps saturate at this percentile of all deviations of one run: a
# fixed scale would show nothing for a model whose latent barely moves the
# output, and one outlier pixel should not darken every map.
STD_MAP_PERCENTILE = 99.5
# A map whose range is within this fraction of its largest value is
# constant: correlating float noise would report a figure for nothing.
CONSTANT_TOLERANCE = 1e-5


def std_map_scale(stds):
    """The deviation (8-bit levels) at which this run's heat maps saturate."""
    values = np.concatenate([s.ravel() for s in stds])
    return float(max(np.percentile(values, STD_MAP_PERCENTILE), 1e-6))


def std_heat_map(std, vmax):
    """A per-pixel deviation map (8-bit scale) as an RGB `uint8` heat map,
    black at 0 and white-yellow at `vmax` and above."""
    colours = matplotlib.colormaps[STD_COLORMAP](np.clip(std / vmax, 0.0, 1.0))
    return np.round(colours[..., :3] * 255).astype(np.uint8)


def std_error_correlation(stds, errors):
    """How well predicted deviation tracks the absolute error, over all pixels.

    Args:
        stds, errors: per image, arrays of the same shapes (8-bit scale).

    Returns:
        `{"pearson", "spearman", "mean_std", "mean_abs_error",
        "std_map_max"}`; correlations are NaN where either map is constant;
        `std_map_max` is the heat maps' saturation (`std_map_scale`).
    """
    std = np.concatenate([s.ravel() for s in stds]).astype(np.float64)
    error = np.concatenate([e.ravel() for e in errors]).astype(np.float64)
    # Constant up to float noise: a mean of draws scored against a written
    # image is off by ~1e-5 grey levels where the written error is constant.
    constant = any(np.ptp(v) <= CONSTANT_TOLERANCE * max(1.0, float(np.abs(v).max()))
                   for v in (std, error))
    return {
        "pearson": float("nan") if constant else float(np.corrcoef(std, error)[0, 1]),
        "spearman": float("nan") if constant else float(spearmanr(std, error).statistic),
        "mean_std": float(std.mean()),
        "mean_abs_error": float(error.mean()),
        "std_map_max": std_map_scale(stds),
    }


class EvenPixelSample:
    """Pixels of paired maps (deviation and error), added image by image:
    every one while they number at most `limit`, past it every k-th of all
    of them in the order added (k doubling as needed), so the sample is
    exact for a set that fits and even over every image of one that does
    not. What is kept is copied: the images themselves are let go.

    Args:
        limit: the most pixels kept.

    Example:
        >>> sample = EvenPixelSample(limit=4)
        >>> sample.add(np.arange(3.0), np.arange(3.0))
        >>> sample.add(np.arange(3.0, 6.0), np.arange(3.0, 6.0))
        >>> sample.maps()[0]
        array([0., 2., 4.])
    """

    def __init__(self, limit):
        self.limit, self.stride, self.seen, self.kept = limit, 1, 0, 0
        # [index of the first kept pixel among all added, [kept pixels of each map]]
        self.chunks = []

    def add(self, *maps):
        """Adds one image's maps (one shape), pixel i of each a pair."""
        flat = [np.ravel(m) for m in maps]
        start = (-self.seen) % self.stride
        kept = [np.array(f[start::self.stride]) for f in flat]
        if kept[0].size:
            self.chunks.append([self.seen + start, kept])
            self.kept += kept[0].size
        self.seen += flat[0].size
        while self.kept > self.limit:
            self._thin()

    def _thin(self):
        """Keeps every second pixel of the sample: those at a multiple of
        the doubled stride among all added."""
        stride, self.kept = 2 * self.stride, 0
        for chunk in self.chunks:
            start = 0 if chunk[0] % stride == 0 else 1
            chunk[0] += start * self.stride
            chunk[1] = [np.array(m[start::2]) for m in chunk[1]]
            self.kept += chunk[1][0].size
        self.chunks = [chunk for chunk in self.chunks if chunk[1][0].size]
        self.stride = stride

    def maps(self):
        """The kept pixels of each map, in the order added."""
        count = len(self.chunks[0][1]) if self.chunks else 0
        return [np.concatenate([chunk[1][i] for chunk in self.chunks]) for i in range(count)]

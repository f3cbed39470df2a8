"""Refusing inputs that cannot fit in memory before trying to load them."""

import os

from vaecyclegan.errors import InputError

# Bytes held per input pixel while a slice is translated: its float32
# values and [-1, 1] copy, the channel-repeated batch and the network's
# output (3 channels each), and the written result.
BYTES_PER_PIXEL = 48


class NotEnoughMemory(InputError):
    """An input refused for the memory left, not for what it holds.

    Args:
        path: the file refused.
        problem: why it does not fit, in words a user can act on (both
            as `InputError`).
        needed, available: bytes (None where not measured: a MemoryError).
    """

    def __init__(self, path, problem, needed=None, available=None):
        super().__init__(path, problem)
        self.needed, self.available = needed, available


def available_memory_bytes():
    """Memory the system can still give this process (MemAvailable)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_fits_in_memory(path, pixels, description, bytes_per_pixel=BYTES_PER_PIXEL):
    """Raises `InputError` when `pixels` input pixels need more memory than
    is available.

    Args:
        path: the file, for the message.
        pixels: number of pixels (voxels) to process.
        description: what the file holds, e.g. "image is 200000x200000".
        bytes_per_pixel: memory the work holds per pixel (default: a
            translated slice's).
    """
    needed = pixels * bytes_per_pixel
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise NotEnoughMemory(path, f"{description} ({pixels / 1e6:,.0f} megapixels): needs "
                              f"about {needed / 2**30:,.1f} GiB to process, more than the "
                              f"{available / 2**30:,.1f} GiB of memory available",
                              needed, available)

"""The Kaggle dataset `darren2020/ct-to-mri-cgan`: download, safe
extraction, and a check of its layout.

The download goes through the `kaggle` package's API (the user's token:
`KAGGLE_API_TOKEN`, `~/.kaggle/access_token` or `~/.kaggle/kaggle.json`).
The zip is extracted only after every entry has been checked to stay
inside the target folder (no absolute paths, no `..`, no links) and the
archive has been checked against `ZipLimits` (total size, compression
ratio, entry count, from the central directory), into a staging folder
that becomes `data/ct-to-mri-cgan` once the layout checks out, so an
interrupted or refused download leaves nothing half-extracted. The
extraction itself counts the bytes it writes and stops at the limit, so a
central directory that understates the sizes gains nothing.
"""

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import PurePosixPath

from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import missing_folders, remove_empty_folders
from vaecyclegan.io.formats import find_scan_sources

logger = logging.getLogger(__name__)

KAGGLE_DATASET = "darren2020/ct-to-mri-cgan"
DATASET_URL = f"https://www.kaggle.com/datasets/{KAGGLE_DATASET}"
FOLDER_NAME = "ct-to-mri-cgan"
BY_HAND = (f"or download the zip from {DATASET_URL} and run "
           "`vaecyclegan-data download --zip PATH_TO_ZIP`")
NO_TOKEN = ("no Kaggle API token: create one at https://www.kaggle.com/settings/api, then set "
            "KAGGLE_API_TOKEN or save it in ~/.kaggle/access_token (or the legacy "
            "~/.kaggle/kaggle.json, chmod 600); " + BY_HAND)


# The Kaggle dataset is about 360 MB zipped and holds roughly 4,000 to 6,000
# JPEG/PNG slices. Those formats are compressed already, so deflate gains
# almost nothing on them: the archive expands to about 0.4 GB at a ratio
# near 1, in some 6,000 entries (files and folders). The defaults leave it
# wide room (50x the size, over 100x the ratio, 16x the entries) and still
# refuse a zip bomb: deflate reaches about 1,000:1 on zeros, and a bomb that
# stays under a ratio of 200 needs over 100 MB of download per 20 GB it
# fills. A zip of the user's own data (uncompressed NIfTI or DICOM with
# black backgrounds can deflate 10-50:1) fits too; the options of
# `vaecyclegan-data download` raise each limit.
DEFAULT_MAX_UNZIPPED_GB = 20.0
DEFAULT_MAX_RATIO = 200.0
DEFAULT_MAX_ENTRIES = 100_000
# The ratio of the whole archive is a weighted mean of its entries' ratios,
# so it can only catch what the per-entry check lets through: entries up to
# this size, exempt from the per-entry ratio because one alone is harmless
# (a small blank file deflates far beyond 200:1) while many are the classic
# bomb (thousands of small entries of zeros); one large entry of zeros
# hidden among incompressible images keeps the overall ratio low and is
# caught per entry.
_RATIO_FLOOR = 1 << 20
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class ZipLimits:
    """What an archive may expand to before it is extracted.

    Args:
        max_unzipped_gb: total uncompressed size of all entries, in GB
            (10**9 bytes).
        max_ratio: uncompressed over compressed size, of each entry over
            1 MiB and of the whole archive.
        max_entries: entries in the central directory (files and folders).
    """

    max_unzipped_gb: float = DEFAULT_MAX_UNZIPPED_GB
    max_ratio: float = DEFAULT_MAX_RATIO
    max_entries: int = DEFAULT_MAX_ENTRIES

    @property
    def max_unzipped_bytes(self):
        return int(self.max_unzipped_gb * 1e9)


def _size(count):
    """Bytes as a short decimal size: 971.0 kB, 314.6 MB, 20.0 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _bomb(zip_path, what, option, refusing="refusing a possible zip bomb before extracting "
          "anything"):
    return InputError(zip_path, f"{what}: {refusing} (if you trust this archive, raise the "
                      f"limit with `vaecyclegan-data download {option}`)")


def check_zip_limits(zip_path, entries, limits):
    """Raises `InputError` when the central directory's `entries` exceed
    `limits` (a `ZipLimits`): entry count, total uncompressed size, and the
    compression ratio of any entry over 1 MiB and of the whole archive."""
    if len(entries) > limits.max_entries:
        raise _bomb(zip_path, f"{len(entries):,} entries, over the limit of "
                    f"{limits.max_entries:,}", "--max-entries")
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > _RATIO_FLOOR and ratio > limits.max_ratio:
            raise _bomb(zip_path, f"entry {entry.filename!r} expands {ratio:,.0f}-fold "
                        f"({_size(entry.compress_size)} to {_size(entry.file_size)}), over "
                        f"the limit of {limits.max_ratio:g}", "--max-ratio")
    unzipped = sum(entry.file_size for entry in entries)
    zipped = sum(entry.compress_size for entry in entries)
    if unzipped > limits.max_unzipped_bytes:
        raise _bomb(zip_path, f"expands to {_size(unzipped)}, over the limit of "
                    f"{limits.max_unzipped_gb:g} GB", "--max-unzipped-gb")
    ratio = unzipped / max(zipped, 1)
    if ratio > limits.max_ratio:
        raise _bomb(zip_path, f"expands {ratio:,.0f}-fold ({_size(zipped)} to "
                    f"{_size(unzipped)} in {len(entries):,} entries), over the limit of "
                    f"{limits.max_ratio:g}", "--max-ratio")


def make_kaggle_client():
    """The `kaggle` package's API client, not yet authenticated.

    Imported from its module rather than `import kaggle`, which
    authenticates (and may exit) on import.
    """
    from kaggle.api.kaggle_api_extended import KaggleApi

    return KaggleApi()


def _authenticate(client):
    # The client prints its own help and calls exit(1) without a token;
    # one line of ours replaces both.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            client.authenticate()
    except (SystemExit, Exception):  # noqa: BLE001 - any failure means no usable token
        raise InputError(KAGGLE_DATASET, NO_TOKEN) from None


def _download_zip(client, folder):
    try:
        client.dataset_download_files(KAGGLE_DATASET, path=folder, unzip=False, quiet=False)
    except OSError as error:  # requests' ConnectionError and timeouts are OSErrors
        raise InputError(KAGGLE_DATASET, f"cannot reach kaggle.com ({type(error).__name__}); "
                         f"check the network or proxy, {BY_HAND}") from None
    except Exception as error:  # noqa: BLE001 - HTTP errors from the client's own stack
        raise InputError(KAGGLE_DATASET, f"Kaggle refused the download ({error}); open "
                         f"{DATASET_URL} while logged in to accept its terms, {BY_HAND}") from None
    zips = [name for name in os.listdir(folder) if name.endswith(".zip")]
    if not zips:
        raise InputError(folder, "the Kaggle client finished without writing a zip")
    return os.path.join(folder, zips[0])


def check_zip_entries(zip_path, destination, limits=None):
    """Raises `InputError` unless the archive is within `limits` (a
    `ZipLimits`; default: the defaults) and every entry of the zip stays
    inside `destination` as a plain file or folder.

    Returns:
        The entries (`zipfile.ZipInfo`), as the central directory lists them.
    """
    root = os.path.realpath(destination)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        # ValueError: a name flagged UTF-8 that is not (UnicodeDecodeError).
        raise InputError(zip_path, f"not a readable zip ({error})") from None
    check_zip_limits(zip_path, entries, limits or ZipLimits())
    for entry in entries:
        name = entry.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        target = os.path.realpath(os.path.join(root, name))
        if (name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0])
                or os.path.commonpath([root, target]) != root):
            raise InputError(zip_path, f"entry {name!r} would be extracted outside "
                             f"{destination}; refusing the archive")
        if stat.S_ISLNK(entry.external_attr >> 16):
            raise InputError(zip_path, f"entry {name!r} is a symbolic link; refusing the archive")
    return entries


def _extract(zip_path, staging, limits):
    """Extracts the (checked) archive into `staging`, counting the bytes
    written: an entry that yields more than the central directory said, or
    a total over `limits.max_unzipped_bytes`, stops it with `InputError`."""
    budget = limits.max_unzipped_bytes
    written = 0
    name = None
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for entry in archive.infolist():
                name = entry.filename
                target = os.path.join(staging, name)
                if entry.is_dir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                entry_bytes = 0
                with archive.open(entry) as source, open(target, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        entry_bytes += len(chunk)
                        written += len(chunk)
                        if entry_bytes > entry.file_size:
                            raise InputError(zip_path, f"entry {name!r} expands beyond the "
                                             f"{_size(entry.file_size)} its central directory "
                                             "records; refusing the archive")
                        if written > budget:
                            raise _bomb(zip_path, f"extraction reached the limit of "
                                        f"{limits.max_unzipped_gb:g} GB although the central "
                                        "directory lists less", "--max-unzipped-gb",
                                        "stopped and removed what was extracted")
                        out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
            RuntimeError) as error:  # corrupt data, an unknown method, encryption
        raise InputError(zip_path, f"cannot extract entry {name!r} ({error})") from None
    except OSError as error:
        raise InputError(zip_path, f"cannot extract entry {name!r} into {staging} "
                         f"({error.strerror or error})") from None


def dataset_summary(folders):
    """One line per folder: how many scans (images, DICOM series, NIfTI
    volumes) it holds."""
    lines, training = [], (folders.ct_train, folders.mri_train)
    for label, folder in (("CT  train (trainA)", folders.ct_train),
                          ("MRI train (trainB)", folders.mri_train),
                          ("CT  test  (testA)", folders.ct_test),
                          ("MRI test  (testB)", folders.mri_test)):
        if folder:
            try:
                # Training reads subfolders too (`load_domain_slices`).
                count = len(find_scan_sources(folder, recursive=folder in training,
                                              apart_from=folders.others(folder)))
            except InputError:
                count = 0
            lines.append(f"  {label}: {count} scans in {folder}")
    return "\n".join(lines)


def _temporary_folder(data_root, prefix):
    """`(created, folder)`: a new hidden folder in `data_root`, and the
    folders made for it (for `remove_empty_folders`).

    Raises:
        InputError: `data_root` is a file, is under one, or cannot be written.
    """
    created = missing_folders(data_root)
    try:
        os.makedirs(data_root, exist_ok=True)
        return created, tempfile.mkdtemp(prefix=prefix, dir=data_root)
    except OSError as error:
        remove_empty_folders(created)
        raise InputError(data_root, f"cannot be written ({error.strerror or error})") from None


def install_zip(zip_path, data_root, limits=None):
    """Checks and extracts a dataset zip into `data_root/ct-to-mri-cgan`.

    Args:
        zip_path: the archive.
        data_root: where `ct-to-mri-cgan/` is created.
        limits: a `ZipLimits` (default: the defaults).

    Returns:
        The dataset folder.

    Raises:
        InputError: unsafe entries, an archive over the limits, not a zip,
            or not the expected layout.
    """
    limits = limits or ZipLimits()
    target = os.path.join(data_root, FOLDER_NAME)
    real_target = os.path.realpath(target)
    if os.path.commonpath([os.path.realpath(zip_path), real_target]) == real_target:
        raise InputError(zip_path, f"lies inside {target}, which installing replaces; move the "
                         "zip out of it first")
    if os.path.islink(target):
        # Installing replaces the folder: through a link it would replace
        # the link's target, or fail on a dangling one.
        raise InputError(target, "is a link; installing replaces the dataset folder, so "
                         "remove the link or choose another --out")
    if os.path.exists(target) and not os.path.isdir(target):
        raise InputError(target, "a file is in the way of the dataset folder; move it")
    # A refused archive leaves no empty data folder behind.
    created, staging = _temporary_folder(data_root, ".extract-")
    try:
        check_zip_entries(zip_path, staging, limits)
        _extract(zip_path, staging, limits)
        try:
            folders = resolve_dataset(staging)
        except InputError:
            raise InputError(zip_path, "the archive does not hold the Kaggle layout "
                             "Dataset/images/{trainA,trainB,testA,testB}") from None
        for folder in (folders.ct_train, folders.mri_train):
            # An empty domain is refused here, naming it.
            find_scan_sources(folder, recursive=True)
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        remove_empty_folders(created)  # those left empty: none once installed
    return target


def download_kaggle_dataset(data_root, zip_path=None, client_factory=None, limits=None):
    """Downloads (or takes `zip_path`) and installs the dataset.

    Args:
        data_root: where `ct-to-mri-cgan/` is created.
        zip_path: a zip downloaded by hand; no network then.
        client_factory: builds the Kaggle client (tests pass a stand-in);
            default `make_kaggle_client`.
        limits: a `ZipLimits` for the archive (default: the defaults).

    Returns:
        The dataset folder.
    """
    if zip_path is not None:
        if not os.path.isfile(zip_path):
            raise InputError(zip_path, "is a folder, not a zip file" if os.path.isdir(zip_path)
                             else "zip not found")
        return install_zip(zip_path, data_root, limits)
    client = (client_factory or make_kaggle_client)()
    _authenticate(client)
    created, download = _temporary_folder(data_root, ".download-")
    try:
        return install_zip(_download_zip(client, download), data_root, limits)
    finally:
        shutil.rmtree(download, ignore_errors=True)
        remove_empty_folders(created)  # those left empty: none once installed


def ensure_kaggle_dataset(data_root, client_factory=None, limits=None):
    """The installed dataset folder, downloading it on first use (within
    `limits`, a `ZipLimits`; default: the defaults)."""
    target = os.path.join(data_root, FOLDER_NAME)
    if os.path.isdir(target):
        try:
            resolve_dataset(target)
            return target
        except InputError:
            pass
    logger.info(f"Downloading {KAGGLE_DATASET} into {target} ...")
    return download_kaggle_dataset(data_root, client_factory=client_factory, limits=limits)

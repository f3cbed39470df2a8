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
central directory that understates the sizes gains nothing. Installing
replaces an existing `ct-to-mri-cgan` folder only when it is empty, is a
dataset already or holds the marker file an earlier install wrote
(`MARKER`): a folder of the user's own files is refused, not deleted.
"""

import contextlib
import dataclasses
import errno
import io
import logging
import lzma
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
# Written into the dataset folder it installs: only a folder holding it (or
# an empty one, or a dataset) is replaced by installing again.
MARKER = ".installed-by-vaecyclegan"
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
        # `--max-unzipped-gb 1e300` is finite, its bytes are not: past 2^63
        # bytes the limit is beyond any disk anyway.
        return int(min(self.max_unzipped_gb * 1e9, 2.0**63))


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

    Imported from its module rather than `import kaggle`, but Python runs
    `kaggle/__init__.py` either way, and that authenticates on import:
    kaggle 2.x prints its help (about 17 lines) without a token, kaggle
    1.6 raises OSError. Both are silenced or turned into one line here.
    """
    try:
        with _quiet():
            from kaggle.api.kaggle_api_extended import KaggleApi

            return KaggleApi()
    except ImportError as error:
        if (error.name or "").split(".")[0] == "kaggle":
            raise InputError(KAGGLE_DATASET, "the kaggle package is not installed: run "
                             f"`pip install kaggle`, {BY_HAND}") from None
        raise InputError(KAGGLE_DATASET, f"the kaggle package does not load ("
                         f"{type(error).__name__}: {error}): run `pip install --upgrade "
                         f"kaggle`, {BY_HAND}") from None
    except (SystemExit, Exception) as error:  # noqa: BLE001 - kaggle 1.6: no token, OSError
        raise InputError(KAGGLE_DATASET, _auth_problem(error)) from None


@contextlib.contextmanager
def _quiet():
    """Discards what the Kaggle client prints while it loads and
    authenticates (its help): our one line replaces it."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _auth_problem(error):
    """A failed authentication: the network or the server at fault, else
    no usable token (the client exits or raises without one)."""
    problem = _network_problem(error)
    status = _http_status(error)
    if problem is None and status is not None and status >= 500:
        problem = f"kaggle.com answered HTTP {status}; try again later, {BY_HAND}"
    return problem or NO_TOKEN


def _authenticate(client):
    # The client prints its own help and calls exit(1) without a token;
    # one line of ours replaces both.
    try:
        with _quiet():
            client.authenticate()
    except (SystemExit, Exception) as error:  # noqa: BLE001 - see _auth_problem
        raise InputError(KAGGLE_DATASET, _auth_problem(error)) from None


def _http_status(error):
    """The HTTP status of a failed request: requests' `HTTPError` (kaggle
    2.x) or the swagger client's `ApiException` (kaggle 1.6); else None."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status is None:
        status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def _network_problem(error):
    """The message for a failure to reach kaggle.com, or None."""
    import requests
    import urllib3

    if isinstance(error, (requests.ConnectionError, requests.Timeout,
                          urllib3.exceptions.MaxRetryError, urllib3.exceptions.NewConnectionError,
                          urllib3.exceptions.TimeoutError)):
        return (f"cannot reach kaggle.com ({type(error).__name__}); check the network or "
                f"proxy, {BY_HAND}")
    return None


def _cut_short(error):
    """A download that stopped before its end: the connection broke in the
    middle, or (kaggle 2.x, after its retries) the file is smaller than
    the server said."""
    import http.client

    import requests
    import urllib3

    return (isinstance(error, (requests.exceptions.ChunkedEncodingError,
                               urllib3.exceptions.ProtocolError, http.client.IncompleteRead))
            or (isinstance(error, ValueError) and "does not match expected size" in str(error)))


def _brief(error):
    """The first line of an error, at most 200 characters: kaggle 1.6's
    `ApiException` prints the response's headers and body."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _download_problem(error, data_root):
    """`InputError` saying what a failed download means and what to do."""
    status = _http_status(error)
    if status in (401, 403):
        return InputError(KAGGLE_DATASET, f"Kaggle refused the download (HTTP {status}): open "
                          f"{DATASET_URL} while logged in and accept the dataset's terms, or "
                          f"check the token; {BY_HAND}")
    if status == 404:
        return InputError(KAGGLE_DATASET, f"Kaggle does not find the dataset (HTTP 404) at "
                          f"{DATASET_URL}; {BY_HAND}")
    if status is not None:
        return InputError(KAGGLE_DATASET, f"Kaggle answered HTTP {status} ({_brief(error)}); "
                          f"try again later, {BY_HAND}")
    network = _network_problem(error)
    if network:
        return InputError(KAGGLE_DATASET, network)
    if _cut_short(error):
        return InputError(KAGGLE_DATASET, f"the download was cut short ({_brief(error)}); run "
                          f"the command again, {BY_HAND}")
    reason = getattr(error, "strerror", None) or error
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return InputError(data_root, f"no space left for the download ({reason}); free some "
                          f"space or choose another --out/--data-root, {BY_HAND}")
    if getattr(error, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return InputError(data_root, f"the download cannot be written here ({reason}); choose "
                          f"another --out/--data-root, {BY_HAND}")
    return InputError(KAGGLE_DATASET, f"the download failed ({type(error).__name__}: "
                      f"{_brief(error)}); {BY_HAND}")


def _download_zip(client, folder):
    try:  # not quiet: the progress of some 360 MB is worth its lines
        client.dataset_download_files(KAGGLE_DATASET, path=folder, unzip=False, quiet=False)
    except (SystemExit, Exception) as error:  # noqa: BLE001 - classified by _download_problem
        raise _download_problem(error, os.path.dirname(folder)) from None
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
                    while chunk := _read_entry(source, zip_path, name):
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
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError,
            RuntimeError) as error:  # corrupt data, an unknown method, encryption
        raise InputError(zip_path, f"cannot extract entry {name!r} ({error})") from None
    except OSError as error:
        raise InputError(zip_path, f"cannot extract entry {name!r} into {staging} "
                         f"({error.strerror or error})") from None


def _read_entry(source, zip_path, name):
    """The next chunk of an entry; a damaged bzip2 stream raises OSError,
    which is the archive's fault, not the disk's."""
    try:
        return source.read(_CHUNK)
    except OSError as error:
        raise InputError(zip_path, f"cannot extract entry {name!r} ({error})") from None


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


def _check_replaceable(target):
    """Raises `InputError` unless installing may replace the folder
    `target`: absent, holding no file (empty, or empty folders only), or
    holding `MARKER` (an earlier install). A folder of the user's own files
    (a zip downloaded by hand, notes, scans of their own in the Kaggle
    layout) is refused, not deleted."""
    if not os.path.isdir(target):
        return
    try:
        if os.path.isfile(os.path.join(target, MARKER)) or not _holds_a_file(target):
            return
    except OSError as error:  # the target, or a folder in it
        raise InputError(error.filename or target,
                         f"cannot be read ({error.strerror or error})") from None
    try:
        resolve_dataset(target)
        what = ("holds a dataset without the install marker (scans of your own, or an install "
                "from before the marker)")
    except InputError:
        what = "holds files that vaecyclegan-data did not install"
    raise InputError(target, f"{what}, and installing replaces this folder: move its files "
                     "elsewhere or choose another --out/--data-root")


def _holds_a_file(folder):
    """Whether anything but folders lies in `folder`, at any depth; a link
    to a folder counts (replacing would delete the link without a word)."""
    def fail(error):
        raise error

    for root, folders, files in os.walk(folder, onerror=fail):
        if files or any(os.path.islink(os.path.join(root, name)) for name in folders):
            return True
    return False


def _mark_installed(staging, target):
    """Writes `MARKER` into the folder about to become `target`."""
    try:
        with open(os.path.join(staging, MARKER), "w") as marker:
            marker.write(f"Installed by vaecyclegan-data from {KAGGLE_DATASET}; installing "
                         "again replaces this folder and all in it.\n")
    except OSError as error:
        raise InputError(target, f"cannot be written ({error.strerror or error})") from None


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
            not the expected layout, or a folder of other files where the
            dataset goes (it is replaced only if it holds no file or holds
            `MARKER`).
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
    _check_replaceable(target)
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
        _mark_installed(staging, target)
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
    # Refused before some 360 MB are downloaded, not after.
    _check_replaceable(os.path.join(data_root, FOLDER_NAME))
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

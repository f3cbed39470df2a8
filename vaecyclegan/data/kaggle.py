"""The Kaggle dataset `darren2020/ct-to-mri-cgan`: download, safe
extraction, and a check of its layout.

The download goes through the `kaggle` package's API (the user's token:
`KAGGLE_API_TOKEN`, `~/.kaggle/access_token` or `~/.kaggle/kaggle.json`).
The zip is extracted only after every entry has been checked to stay
inside the target folder (no absolute paths, no `..`, no links), into a
staging folder that becomes `data/ct-to-mri-cgan` once the layout checks
out, so an interrupted or refused download leaves nothing half-extracted.
"""

import contextlib
import io
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import PurePosixPath

from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError
from vaecyclegan.io.image_format import list_images

logger = logging.getLogger(__name__)

KAGGLE_DATASET = "darren2020/ct-to-mri-cgan"
DATASET_URL = f"https://www.kaggle.com/datasets/{KAGGLE_DATASET}"
FOLDER_NAME = "ct-to-mri-cgan"
BY_HAND = (f"or download the zip from {DATASET_URL} and run "
           "`vaecyclegan-data download --zip PATH_TO_ZIP`")
NO_TOKEN = ("no Kaggle API token: create one at https://www.kaggle.com/settings/api, then set "
            "KAGGLE_API_TOKEN or save it in ~/.kaggle/access_token (or the legacy "
            "~/.kaggle/kaggle.json, chmod 600); " + BY_HAND)


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


def check_zip_entries(zip_path, destination):
    """Raises `InputError` unless every entry of the zip stays inside
    `destination` as a plain file or folder."""
    root = os.path.realpath(destination)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(zip_path, f"not a readable zip ({error})") from None
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


def dataset_summary(folders):
    """One line per folder: how many images it holds."""
    lines = []
    for label, folder in (("CT  train (trainA)", folders.ct_train),
                          ("MRI train (trainB)", folders.mri_train),
                          ("CT  test  (testA)", folders.ct_test),
                          ("MRI test  (testB)", folders.mri_test)):
        if folder:
            lines.append(f"  {label}: {len(list_images(folder))} images in {folder}")
    return "\n".join(lines)


def install_zip(zip_path, data_root):
    """Checks and extracts a dataset zip into `data_root/ct-to-mri-cgan`.

    Returns:
        The dataset folder.

    Raises:
        InputError: unsafe entries, not a zip, or not the expected layout.
    """
    os.makedirs(data_root, exist_ok=True)
    target = os.path.join(data_root, FOLDER_NAME)
    staging = tempfile.mkdtemp(prefix=".extract-", dir=data_root)
    try:
        check_zip_entries(zip_path, staging)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(staging)
        try:
            folders = resolve_dataset(staging)
        except InputError:
            raise InputError(zip_path, "the archive does not hold the Kaggle layout "
                             "Dataset/images/{trainA,trainB,testA,testB}") from None
        for folder in (folders.ct_train, folders.mri_train):
            list_images(folder)  # an empty domain is refused here, naming it
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_kaggle_dataset(data_root, zip_path=None, client_factory=None):
    """Downloads (or takes `zip_path`) and installs the dataset.

    Args:
        data_root: where `ct-to-mri-cgan/` is created.
        zip_path: a zip downloaded by hand; no network then.
        client_factory: builds the Kaggle client (tests pass a stand-in);
            default `make_kaggle_client`.

    Returns:
        The dataset folder.
    """
    if zip_path is not None:
        if not os.path.isfile(zip_path):
            raise InputError(zip_path, "zip not found")
        return install_zip(zip_path, data_root)
    client = (client_factory or make_kaggle_client)()
    _authenticate(client)
    os.makedirs(data_root, exist_ok=True)
    download = tempfile.mkdtemp(prefix=".download-", dir=data_root)
    try:
        return install_zip(_download_zip(client, download), data_root)
    finally:
        shutil.rmtree(download, ignore_errors=True)


def ensure_kaggle_dataset(data_root, client_factory=None):
    """The installed dataset folder, downloading it on first use."""
    target = os.path.join(data_root, FOLDER_NAME)
    if os.path.isdir(target):
        try:
            resolve_dataset(target)
            return target
        except InputError:
            pass
    logger.info(f"Downloading {KAGGLE_DATASET} into {target} ...")
    return download_kaggle_dataset(data_root, client_factory=client_factory)

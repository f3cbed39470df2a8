"""The Kaggle download, driven through a stand-in for the Kaggle client
that serves a local zip."""

import errno
import io
import os
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import requests

import vaecyclegan.data.kaggle as kaggle_dataset
from tests.harness import REPO
from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.data import main as data_main
from vaecyclegan.errors import InputError


def _dataset_zip(tmp_path, extra_entries=()):
    """A small zip laid out and named as the real one: grey PNG CT slices
    `ct<N>.png` in trainA/testA, RGB JPEG MRI slices `mri<N>.jpg` (40x36)
    in trainB/testB (so the test split pairs no name), and one of each in
    `Dataset/unseen_demo_images/{ct,mri}`."""
    path = tmp_path / "served.zip"
    rng = np.random.default_rng(0)
    number = 0
    with zipfile.ZipFile(path, "w") as archive:
        for folder, count in (("images/trainA", 3), ("images/trainB", 4), ("images/testA", 2),
                              ("images/testB", 2), ("unseen_demo_images/ct", 1),
                              ("unseen_demo_images/mri", 1)):
            ct = folder.endswith(("A", "ct"))
            for _ in range(count):
                number += 1
                name = f"ct{number}.png" if ct else f"mri{number}.jpg"
                archive.writestr(f"Dataset/{folder}/{name}", _slice(rng, ct))
        for name, data in extra_entries:
            archive.writestr(name, data)
    return path


def _slice(rng, ct):
    """A grey 24x24 PNG (CT) or an RGB 40x36 JPEG (MRI) of a smooth
    gradient with a little noise, as bytes."""
    from PIL import Image

    rows, cols = (24, 24) if ct else (36, 40)
    ramp = np.add.outer(np.arange(rows), np.arange(cols)) * 3.0
    grey = np.clip(ramp + rng.normal(0, 4, ramp.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(grey) if ct else Image.fromarray(np.stack([grey] * 3, axis=-1))
    buffer = io.BytesIO()
    image.save(buffer, "PNG" if ct else "JPEG")
    return buffer.getvalue()


class StandInKaggleApi:
    """The two calls the project makes on `KaggleApi`, serving a local zip;
    `failure`/`auth_failure`: an exception the download/authentication
    raises instead."""

    def __init__(self, zip_path, token=True, network=True, failure=None, auth_failure=None):
        self.zip_path, self.token, self.network = zip_path, token, network
        self.failure, self.auth_failure = failure, auth_failure
        self.requests = []

    def authenticate(self):
        if self.auth_failure is not None:
            raise self.auth_failure
        if not self.token:
            print("the real client prints several lines of help here")
            exit(1)

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False):
        self.requests.append((dataset, unzip))
        if not self.network:
            raise requests.exceptions.ConnectionError("Failed to resolve 'www.kaggle.com'")
        if self.failure is not None:
            raise self.failure
        shutil.copy(self.zip_path, os.path.join(path, dataset.split("/")[1] + ".zip"))


def test_download_installs_and_checks_the_dataset(tmp_path):
    api = StandInKaggleApi(_dataset_zip(tmp_path))
    folder = kaggle_dataset.download_kaggle_dataset(str(tmp_path / "data"),
                                                    client_factory=lambda: api)
    assert api.requests == [("darren2020/ct-to-mri-cgan", False)]
    assert folder == str(tmp_path / "data" / "ct-to-mri-cgan")
    images = tmp_path / "data" / "ct-to-mri-cgan" / "Dataset" / "images"
    assert sorted(os.listdir(images)) == ["testA", "testB", "trainA", "trainB"]
    assert len(os.listdir(images / "trainB")) == 4
    # Nothing else is left in the data folder (no zip, no staging folders).
    assert os.listdir(tmp_path / "data") == ["ct-to-mri-cgan"]


@pytest.mark.parametrize("entry", ["../evil.txt", "Dataset/../../evil.txt", "/tmp/evil.txt"])
def test_a_zip_with_an_entry_outside_the_target_is_refused(tmp_path, entry):
    api = StandInKaggleApi(_dataset_zip(tmp_path, [(entry, b"owned")]))
    data = tmp_path / "sub" / "data"
    with pytest.raises(InputError, match="outside"):
        kaggle_dataset.download_kaggle_dataset(str(data), client_factory=lambda: api)
    assert not (tmp_path / "sub" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not data.exists()  # nothing extracted, nothing left behind, not even the folder


def test_a_zip_with_a_symbolic_link_is_refused(tmp_path):
    path = _dataset_zip(tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        link = zipfile.ZipInfo("Dataset/images/trainA/link.png")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        kaggle_dataset.install_zip(str(path), str(tmp_path / "data"))


def test_no_token_and_no_network_each_say_what_to_do(tmp_path, capsys):
    served = _dataset_zip(tmp_path)
    with pytest.raises(InputError, match="no Kaggle API token.*KAGGLE_API_TOKEN.*--zip"):
        kaggle_dataset.download_kaggle_dataset(
            str(tmp_path / "data"), client_factory=lambda: StandInKaggleApi(served, token=False))
    assert "several lines of help" not in capsys.readouterr().out
    with pytest.raises(InputError, match="cannot reach kaggle.com.*--zip"):
        kaggle_dataset.download_kaggle_dataset(
            str(tmp_path / "data"), client_factory=lambda: StandInKaggleApi(served, network=False))
    assert not (tmp_path / "data").exists()


def _http_error(status):
    response = requests.Response()
    response.status_code = status
    return requests.exceptions.HTTPError(f"{status} Client Error", response=response)


def test_an_error_that_prints_a_whole_response_is_cut_to_its_first_line(tmp_path):
    # kaggle 1.6's ApiException prints the response's headers and body:
    # kilobytes in the one error line.
    class ApiException(Exception):
        def __str__(self):
            return "(502)\nReason: Bad Gateway\nHTTP response headers: " + "x" * 5000

    def fails(*args, **kwargs):
        raise ApiException()

    api = StandInKaggleApi(_dataset_zip(tmp_path))
    api.dataset_download_files = fails
    with pytest.raises(InputError) as caught:
        kaggle_dataset.download_kaggle_dataset(str(tmp_path / "data"),
                                               client_factory=lambda: api)
    message = str(caught.value)
    assert "(ApiException: (502))" in message and len(message) < 400, message


@pytest.mark.parametrize("failure, data_root_at_fault, message", [
    # HTTPError is an OSError: 401/403/404 read "cannot reach kaggle.com".
    (_http_error(401), False, r"refused the download \(HTTP 401\).*accept the dataset's terms.*"
     "or check the token"),
    (_http_error(403), False, r"refused the download \(HTTP 403\).*accept the dataset's terms"),
    (_http_error(404), False, r"does not find the dataset \(HTTP 404\)"),
    (_http_error(503), False, r"Kaggle answered HTTP 503 .*try again later"),
    (requests.exceptions.ConnectionError("Failed to resolve"), False, "cannot reach kaggle.com"),
    (requests.exceptions.ReadTimeout("read timed out"), False, "cannot reach kaggle.com"),
    # A full disk or a read-only folder read "cannot reach kaggle.com".
    (OSError(errno.ENOSPC, "No space left on device"), True, "no space left for the download"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True, "no space left for the download"),
    (PermissionError(errno.EACCES, "Permission denied"), True, "cannot be written here"),
    (OSError(errno.EROFS, "Read-only file system"), True, "cannot be written here"),
    # What kaggle 2.x raises for a download cut short read "Kaggle refused
    # the download ... accept its terms".
    (ValueError("Downloaded file size (1000) does not match expected size (360000000)"), False,
     "the download was cut short .*run the command again"),
    (requests.exceptions.ChunkedEncodingError("Connection broken"), False,
     "the download was cut short"),
    (RuntimeError("something else"), False, r"the download failed \(RuntimeError: something "
     r"else\)"),
])
def test_a_failed_download_says_its_cause(tmp_path, failure, data_root_at_fault, message):
    api = StandInKaggleApi(_dataset_zip(tmp_path), failure=failure)
    data = tmp_path / "data"
    with pytest.raises(InputError, match=message + ".*--zip PATH_TO_ZIP") as error:
        kaggle_dataset.download_kaggle_dataset(str(data), client_factory=lambda: api)
    assert error.value.path == (str(data) if data_root_at_fault else "darren2020/ct-to-mri-cgan")
    assert not data.exists()


@pytest.mark.parametrize("failure, message", [
    (requests.exceptions.ConnectionError("Failed to resolve 'api.kaggle.com'"),
     "cannot reach kaggle.com"),
    (_http_error(502), "kaggle.com answered HTTP 502; try again later"),
])
def test_authentication_without_network_is_not_a_missing_token(tmp_path, failure, message):
    # With a token set and no network, it read "no Kaggle API token".
    api = StandInKaggleApi(_dataset_zip(tmp_path), auth_failure=failure)
    with pytest.raises(InputError, match=message + ".*--zip") as error:
        kaggle_dataset.download_kaggle_dataset(str(tmp_path / "data"), client_factory=lambda: api)
    assert "token" not in str(error.value)


def test_no_token_with_the_real_kaggle_package_is_one_line(tmp_path):
    # kaggle 2.x authenticates when it is imported: without a token it
    # printed about 17 lines of help before our one line. No network is
    # needed (the proxies below lead nowhere, should it try).
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("KAGGLE_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-m", "vaecyclegan.cli.data", "download", "--out",
                             str(tmp_path / "data")], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: darren2020/ct-to-mri-cgan: "
                                          f"{kaggle_dataset.NO_TOKEN}"]
    assert "Authentication" not in result.stdout and "kaggle auth login" not in result.stdout
    assert not (tmp_path / "data").exists()


def _fake_kaggle_package(folder, init_source):
    package = folder / "kaggle"
    (package / "api").mkdir(parents=True)
    (package / "__init__.py").write_text(init_source)
    (package / "api" / "__init__.py").write_text("")
    (package / "api" / "kaggle_api_extended.py").write_text("class KaggleApi:\n    pass\n")


@pytest.mark.parametrize("case", ["kaggle 1.6 without a token", "kaggle missing"])
def test_loading_the_kaggle_client_fails_in_one_line(tmp_path, monkeypatch, capsys, case):
    # kaggle 1.6 raises OSError when imported without a token: a traceback.
    for name in [name for name in sys.modules if name.split(".")[0] == "kaggle"]:
        monkeypatch.delitem(sys.modules, name)
    if case == "kaggle missing":
        monkeypatch.setitem(sys.modules, "kaggle", None)
        expected = "the kaggle package is not installed: run `pip install kaggle`"
    else:
        _fake_kaggle_package(tmp_path, "print('help text')\nraise OSError('Could not find "
                             "kaggle.json. Make sure it is located in ~/.kaggle.')\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        expected = "no Kaggle API token"
    with pytest.raises(InputError, match=expected + ".*--zip"):
        kaggle_dataset.make_kaggle_client()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("entry", ["ensure", "download", "zip"])
def test_a_folder_of_the_users_own_files_is_not_replaced(tmp_path, entry):
    # The download replaced data/ct-to-mri-cgan and rmtree deleted what the
    # user kept there (a zip downloaded by hand, notes).
    served = _dataset_zip(tmp_path)
    target = tmp_path / "data" / "ct-to-mri-cgan"
    target.mkdir(parents=True)
    shutil.copy(served, target / "ct-to-mri-cgan.zip")
    (target / "notes.txt").write_text("where the scans came from")
    api = StandInKaggleApi(served)
    call = {"ensure": lambda: kaggle_dataset.ensure_kaggle_dataset(
                str(tmp_path / "data"), client_factory=lambda: api),
            "download": lambda: kaggle_dataset.download_kaggle_dataset(
                str(tmp_path / "data"), client_factory=lambda: api),
            "zip": lambda: kaggle_dataset.download_kaggle_dataset(str(tmp_path / "data"),
                                                                  zip_path=str(served))}[entry]
    with pytest.raises(InputError, match="did not install.*move its files elsewhere or choose "
                       "another --out/--data-root") as error:
        call()
    assert error.value.path == str(target)
    assert api.requests == []  # refused before downloading
    assert sorted(os.listdir(target)) == ["ct-to-mri-cgan.zip", "notes.txt"]
    assert (target / "ct-to-mri-cgan.zip").read_bytes() == served.read_bytes()
    assert os.listdir(tmp_path / "data") == ["ct-to-mri-cgan"]


def test_a_dataset_of_the_users_own_scans_is_not_replaced(tmp_path):
    # A Kaggle-layout folder without the marker was replaced as "a dataset
    # already": the user's own scans and notes in it were deleted.
    served = _dataset_zip(tmp_path)
    target = tmp_path / "data" / kaggle_dataset.FOLDER_NAME
    for name in ("trainA", "trainB"):
        (target / "Dataset" / "images" / name).mkdir(parents=True)
        (target / "Dataset" / "images" / name / "my_scan.png").write_bytes(
            _slice(np.random.default_rng(1), ct=True))
    (target / "NOTES.txt").write_text("which scanner")
    before = sorted(str(path.relative_to(target)) for path in target.rglob("*"))
    with pytest.raises(InputError, match="holds a dataset without the install marker"):
        kaggle_dataset.download_kaggle_dataset(str(tmp_path / "data"), zip_path=str(served))
    assert sorted(str(path.relative_to(target)) for path in target.rglob("*")) == before
    assert (target / "NOTES.txt").read_text() == "which scanner"


@pytest.mark.parametrize("before", ["empty", "installed, then partly deleted",
                                    "a dataset's folders, no file"])
def test_a_folder_installing_may_replace_is_replaced(tmp_path, before):
    served = _dataset_zip(tmp_path)
    data = tmp_path / "data"
    target = data / kaggle_dataset.FOLDER_NAME
    if before == "empty":
        target.mkdir(parents=True)
    elif before == "a dataset's folders, no file":
        for name in ("trainA", "trainB"):
            (target / "Dataset" / "images" / name).mkdir(parents=True)
    else:
        kaggle_dataset.install_zip(str(served), str(data))
        shutil.rmtree(target / "Dataset" / "images" / "trainB")
        (target / "notes.txt").write_text("left behind")
    api = StandInKaggleApi(served)
    kaggle_dataset.download_kaggle_dataset(str(data), client_factory=lambda: api)
    assert len(api.requests) == 1
    assert sorted(os.listdir(target)) == [kaggle_dataset.MARKER, "Dataset"]
    assert len(os.listdir(target / "Dataset" / "images" / "trainB")) == 4


def test_data_download_cli_and_a_zip_by_hand(tmp_path, capsys, monkeypatch):
    served = _dataset_zip(tmp_path)
    monkeypatch.setattr(kaggle_dataset, "make_kaggle_client", lambda: StandInKaggleApi(served))
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "a")]) == 0
    assert "3 scans" in capsys.readouterr().out
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "b"), "--zip", str(served)]) == 0
    assert os.path.isdir(tmp_path / "b" / "ct-to-mri-cgan" / "Dataset" / "images" / "testB")
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "c"),
                               "--zip", str(tmp_path / "absent.zip")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'absent.zip'}: zip not found"
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "c"), "--zip",
                               str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.strip().endswith(": is a folder, not a zip file")
    # A refused archive left an empty --out folder behind.
    (tmp_path / "junk.zip").write_bytes(b"not a zip at all")
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "d" / "e"),
                               "--zip", str(tmp_path / "junk.zip")]) == 2
    assert "not a readable zip" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_train_data_kaggle_downloads_once_then_reuses(tmp_path, monkeypatch):
    from vaecyclegan.data.kaggle import ensure_kaggle_dataset

    api = StandInKaggleApi(_dataset_zip(tmp_path))
    first = ensure_kaggle_dataset(str(tmp_path / "data"), client_factory=lambda: api)
    second = ensure_kaggle_dataset(str(tmp_path / "data"), client_factory=lambda: api)
    assert first == second and len(api.requests) == 1


def test_the_installed_archive_pairs_no_test_files_and_training_warns(tmp_path, caplog):
    # As the real archive: testA's ct<N>.png and testB's mri<N>.jpg share no
    # name, so the closing evaluation has nothing to score, said at start.
    from vaecyclegan.data.dataset_layout import resolve_dataset
    from vaecyclegan.evaluation.paired_test_set import check_test_pairs

    folder = kaggle_dataset.install_zip(str(_dataset_zip(tmp_path)), str(tmp_path / "data"))
    with caplog.at_level("INFO"):
        assert check_test_pairs(resolve_dataset(folder)) == 0
    assert [r.levelname for r in caplog.records if "No test pairs" in r.getMessage()] == [
        "WARNING"]


# Zip bombs: limits read from the central directory before anything is
# extracted, and a byte count during the extraction itself.

def _bomb_zip(tmp_path, entries=5_000, entry_bytes=300 * 2**20 // 5_000):
    """The classic bomb: many small entries of zeros (default: 5,000 of
    61 KiB, 300 MiB in all, in a zip of under 1 MiB), built in memory."""
    buffer = io.BytesIO()
    zeros = bytes(entry_bytes)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(entries):
            archive.writestr(f"trainA/{index:04d}.png", zeros)
    path = tmp_path / "bomb.zip"
    path.write_bytes(buffer.getvalue())
    return path


def test_a_zip_bomb_of_many_small_entries_is_refused_before_extracting(tmp_path):
    bomb = _bomb_zip(tmp_path)
    assert os.path.getsize(bomb) < 2**20
    with zipfile.ZipFile(bomb) as archive:
        assert sum(e.file_size for e in archive.infolist()) > 300 * 2**20 - 5_000
    api = StandInKaggleApi(bomb)
    data = tmp_path / "data"
    with pytest.raises(InputError) as error:
        kaggle_dataset.download_kaggle_dataset(str(data), client_factory=lambda: api)
    message = str(error.value)
    assert "refusing a possible zip bomb before extracting anything" in message
    assert "5,000 entries), over the limit of 200" in message and "--max-ratio" in message
    assert not data.exists()  # nothing extracted, no staging, download or data folder left


def test_one_large_entry_of_zeros_among_images_is_refused_by_its_own_ratio(tmp_path):
    # 8 MB of zeros (deflated about 1,000-fold) beside 200 kB of incompressible
    # data: the archive's overall ratio stays near 40, the entry's does not.
    path = _dataset_zip(tmp_path, [("Dataset/noise.bin", os.urandom(200_000)),
                                   ("Dataset/images/trainA/blank.png", bytes(8_000_000))])
    _rezip_deflated(path)
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
    assert sum(e.file_size for e in entries) / sum(e.compress_size for e in entries) < 200
    with pytest.raises(InputError, match=r"entry 'Dataset/images/trainA/blank.png' expands "
                       r"[\d,]+-fold \(.* to 8.0 MB\), over the limit of 200"):
        kaggle_dataset.install_zip(str(path), str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def _rezip_deflated(path):
    """Rewrites the zip with every entry deflated."""
    with zipfile.ZipFile(path) as archive:
        contents = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents:
            archive.writestr(name, data)


def test_total_size_and_entry_count_limits_and_the_options_that_raise_them(tmp_path, capsys):
    # 13 images plus one stored (uncompressed) 1.5 MB entry: ratio about 1.
    served = _dataset_zip(tmp_path, [("Dataset/readme.bin", os.urandom(1_500_000))])
    out = str(tmp_path / "a")
    assert run_cli(data_main, ["download", "--out", out, "--zip", str(served),
                               "--max-unzipped-gb", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {served}: expands to 1.5 MB, over the limit of 0.001 GB: refusing "
                   "a possible zip bomb before extracting anything (if you trust this archive, "
                   "raise the limit with `vaecyclegan-data download --max-unzipped-gb`)"]
    assert not os.path.exists(out)
    assert run_cli(data_main, ["download", "--out", out, "--zip", str(served),
                               "--max-entries", "13"]) == 2
    assert "14 entries, over the limit of 13" in capsys.readouterr().err
    assert not os.path.exists(out)
    # The defaults let it through, and so do raised limits.
    assert run_cli(data_main, ["download", "--out", out, "--zip", str(served),
                               "--max-unzipped-gb", "0.002", "--max-entries", "14"]) == 0
    assert os.listdir(out) == ["ct-to-mri-cgan"]


def test_max_ratio_option_lets_a_trusted_compressible_archive_in(tmp_path, capsys):
    # The dataset's images plus 40 entries of 100 kB zeros (each under the
    # 1 MiB below which entries are judged only in the archive's total):
    # about 400-fold overall.
    served = _dataset_zip(tmp_path, [(f"Dataset/zeros/{i}.bin", bytes(100_000))
                                     for i in range(40)])
    _rezip_deflated(served)
    with zipfile.ZipFile(served) as archive:
        entries = archive.infolist()
    assert 300 < sum(e.file_size for e in entries) / sum(e.compress_size for e in entries) < 1000
    out = str(tmp_path / "data")
    assert run_cli(data_main, ["download", "--out", out, "--zip", str(served)]) == 2
    assert "--max-ratio" in capsys.readouterr().err
    assert not os.path.exists(out)
    assert run_cli(data_main, ["download", "--out", out, "--zip", str(served),
                               "--max-ratio", "1000"]) == 0
    assert os.listdir(out) == ["ct-to-mri-cgan"]


@pytest.mark.parametrize("option", ["--max-unzipped-gb", "--max-ratio", "--max-entries"])
def test_limit_options_must_be_positive(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_:
        data_main(["download", "--out", str(tmp_path), option, "0"])
    assert exit_.value.code == 2 and "must be positive" in capsys.readouterr().err


def test_the_defaults_fit_the_kaggle_dataset_with_room():
    # A central directory shaped like the real dataset's (about 360 MB of
    # JPEGs in some 6,000 entries, deflated by a few percent at most) passes;
    # checked on ZipInfo records alone, with no bytes behind them.
    limits = kaggle_dataset.ZipLimits()
    assert (limits.max_unzipped_gb, limits.max_ratio, limits.max_entries) == (20, 200, 100_000)
    entries = []
    for index in range(6_000):
        entry = zipfile.ZipInfo(f"Dataset/images/trainA/{index}.jpg")
        entry.file_size, entry.compress_size = 62_000, 60_000
        entries.append(entry)
    kaggle_dataset.check_zip_limits("kaggle.zip", entries, limits)
    with pytest.raises(InputError, match="100,001 entries, over the limit of 100,000"):
        kaggle_dataset.check_zip_limits("many.zip", entries * 16 + entries[:4_001], limits)


def _lie_about_sizes(path, claimed):
    """Sets every central directory record's uncompressed size to `claimed`."""
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x01\x02")
    while start != -1:
        struct.pack_into("<I", data, start + 24, claimed)
        start = data.find(b"PK\x01\x02", start + 4)
    path.write_bytes(bytes(data))


def test_a_central_directory_that_understates_the_sizes_is_caught_while_extracting(tmp_path):
    # 3 entries of 2 MB of zeros, listed as 4 kB each: the directory passes
    # the limits, the data does not match it.
    path = _bomb_zip(tmp_path, entries=3, entry_bytes=2_000_000)
    _lie_about_sizes(path, 4_000)
    with zipfile.ZipFile(path) as archive:
        assert [e.file_size for e in archive.infolist()] == [4_000] * 3
    with pytest.raises(InputError, match="cannot extract entry 'trainA/0000.png'"):
        kaggle_dataset.install_zip(str(path), str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_the_extraction_stops_at_the_limit_even_if_the_directory_check_is_passed(
        tmp_path, monkeypatch):
    # Whatever a reader lets through, the bytes written are counted: with the
    # central directory check out of the way, 10 entries of 300 kB stop at
    # the 1 MB limit, and nothing stays behind.
    path = _bomb_zip(tmp_path, entries=10, entry_bytes=300_000)
    monkeypatch.setattr(kaggle_dataset, "check_zip_limits", lambda *args: None)
    written = []
    real_open = open

    def counting_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file).startswith(str(tmp_path / "data")):
            written.append(file)
        return handle

    monkeypatch.setattr("builtins.open", counting_open)
    with pytest.raises(InputError, match="extraction reached the limit of 0.001 GB although "
                       "the central directory lists less: stopped and removed what was "
                       "extracted"):
        kaggle_dataset.install_zip(str(path), str(tmp_path / "data"),
                                   kaggle_dataset.ZipLimits(max_unzipped_gb=0.001))
    assert len(written) == 4  # the fourth entry passes 1 MB: no fifth is opened
    assert not (tmp_path / "data").exists()


def _nifti_dataset_zip(tmp_path, train_subfolder=""):
    """A zip of the Kaggle layout holding NIfTI volumes, as users zip their
    own scans; the training volumes inside `train_subfolder` if given."""
    import nibabel as nib

    path = tmp_path / "own.zip"
    volume = tmp_path / "v.nii"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((24, 24, 3)).astype("f4"),
                             np.eye(4)), str(volume))
    with zipfile.ZipFile(path, "w") as archive:
        for folder in ("trainA", "trainB", "testA", "testB"):
            inner = train_subfolder if folder.startswith("train") else ""
            archive.write(volume, f"Dataset/images/{folder}/{inner}case.nii")
    return path


def test_a_zip_of_nifti_volumes_installs(tmp_path, capsys):
    # Its trainA was refused as holding "no image files", although train.py
    # reads NIfTI and DICOM folders.
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "data"), "--zip",
                               str(_nifti_dataset_zip(tmp_path))]) == 0
    assert "CT  train (trainA): 1 scans" in capsys.readouterr().out


def test_a_zip_with_its_training_scans_in_subfolders_installs(tmp_path, capsys):
    # Training reads a domain folder's subfolders (a PACS export's series
    # folders), but the install refused such a trainA as empty.
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "data"), "--zip",
                               str(_nifti_dataset_zip(tmp_path, "patient1/"))]) == 0
    out = capsys.readouterr().out
    assert "CT  train (trainA): 1 scans" in out and "MRI train (trainB): 1 scans" in out


def test_a_zip_inside_the_dataset_it_replaces_is_refused_and_kept(tmp_path, capsys):
    # Installing again deleted the old dataset folder, and the zip in it.
    served = _dataset_zip(tmp_path)
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "data"), "--zip",
                               str(served)]) == 0
    kept = tmp_path / "data" / "ct-to-mri-cgan" / "served.zip"
    shutil.copy(served, kept)
    code = run_cli(data_main, ["download", "--out", str(tmp_path / "data"), "--zip", str(kept)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "which installing replaces" in err[0]
    assert kept.read_bytes() == served.read_bytes()


@pytest.mark.parametrize("in_the_way", ["out", "dataset", "link", "dangling link"])
def test_a_file_in_the_way_is_one_line(tmp_path, capsys, in_the_way):
    # A FileExistsError traceback (--out a file), or an OSError after
    # extracting (a file or a link where the dataset folder goes).
    served = _dataset_zip(tmp_path)
    out = tmp_path / "data"
    if in_the_way == "out":
        out.write_text("a file")
    else:
        out.mkdir()
        (tmp_path / "elsewhere").mkdir()
        target = out / "ct-to-mri-cgan"
        if in_the_way == "dataset":
            target.write_text("a file")
        else:
            target.symlink_to(tmp_path / ("elsewhere" if in_the_way == "link" else "absent"))
    code = run_cli(data_main, ["download", "--out", str(out), "--zip", str(served)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err


def test_a_zip_whose_utf8_flagged_name_is_not_utf8_is_one_line(tmp_path, capsys):
    # A UnicodeDecodeError traceback from zipfile.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("\u00e9.png", b"x")  # non-ASCII: flagged UTF-8 (0x800)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(buffer.getvalue().replace("\u00e9".encode(), b"\xff\xfe"))
    code = run_cli(data_main, ["download", "--out", str(tmp_path / "d"), "--zip", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a readable zip" in err[0], err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_damaged_entry_is_one_line_whatever_its_compression(tmp_path, capsys, method):
    # A damaged LZMA entry escaped as an LZMAError traceback.
    path = tmp_path / "damaged.zip"
    with zipfile.ZipFile(_dataset_zip(tmp_path)) as source, \
            zipfile.ZipFile(path, "w", compression=method) as archive:
        for entry in source.infolist():
            archive.writestr(entry.filename, source.read(entry))
        archive.writestr("Dataset/images/trainA/big.png", bytes(range(256)) * 400)
    data = bytearray(path.read_bytes())
    header = data.rfind(b"PK\x03\x04")
    name_length, extra_length = struct.unpack("<HH", data[header + 26:header + 30])
    start = header + 30 + name_length + extra_length
    for offset in range(start + 12, start + 60):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    code = run_cli(data_main, ["download", "--out", str(tmp_path / "d"), "--zip", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    # A damaged bzip2 stream read as a disk problem: "cannot extract ... into <staging>".
    assert "cannot extract entry 'Dataset/images/trainA/big.png' (" in err[0], err
    assert not (tmp_path / "d").exists()


def test_a_finite_but_huge_unzipped_limit_is_no_limit(tmp_path, capsys):
    # 1e300 GB passed the option's check, then overflowed into a traceback.
    assert kaggle_dataset.ZipLimits(max_unzipped_gb=1e300).max_unzipped_bytes == 2**63
    code = run_cli(data_main, ["download", "--out", str(tmp_path / "d"), "--zip",
                               str(_dataset_zip(tmp_path)), "--max-unzipped-gb", "1e300"])
    assert code == 0, capsys.readouterr().err
    assert os.path.isfile(tmp_path / "d" / "ct-to-mri-cgan" / kaggle_dataset.MARKER)


def test_an_undecodable_folder_name_is_printed_escaped(tmp_path, monkeypatch):
    # A strict UTF-8 stdout raised UnicodeEncodeError on "Installed <folder>"
    # after the dataset was installed.
    out = os.path.join(str(tmp_path), os.fsdecode(b"d\xe9"))
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    code = run_cli(data_main, ["download", "--out", out, "--zip", str(_dataset_zip(tmp_path))])
    stdout.flush()
    printed = stdout.buffer.getvalue().decode()
    monkeypatch.undo()
    assert code == 0
    assert "Installed " in printed and "d\\xe9" in printed


def test_a_link_to_a_folder_in_the_dataset_folder_is_not_replaced(tmp_path):
    # Judged "no file", the link was deleted without a word.
    scans = tmp_path / "my_scans"
    scans.mkdir()
    (scans / "scan.png").write_bytes(b"x")
    target = tmp_path / "data" / kaggle_dataset.FOLDER_NAME
    target.mkdir(parents=True)
    (target / "Dataset").symlink_to(scans)
    with pytest.raises(InputError, match="holds files that vaecyclegan-data did not install"):
        kaggle_dataset.install_zip(str(_dataset_zip(tmp_path)), str(tmp_path / "data"))
    assert os.path.islink(target / "Dataset")


def test_an_unreadable_folder_inside_is_named(tmp_path, monkeypatch):
    target = tmp_path / "data" / kaggle_dataset.FOLDER_NAME
    (target / "sub").mkdir(parents=True)
    real_walk = os.walk

    def walk(top, onerror=None, **options):
        onerror(PermissionError(errno.EACCES, "Permission denied", str(target / "sub")))
        yield from real_walk(top, onerror=onerror, **options)

    monkeypatch.setattr(kaggle_dataset.os, "walk", walk)
    with pytest.raises(InputError, match="cannot be read") as error:
        kaggle_dataset.install_zip(str(_dataset_zip(tmp_path)), str(tmp_path / "data"))
    assert error.value.path == str(target / "sub")

"""The Kaggle download, driven through a stand-in for the Kaggle client
that serves a local zip."""

import os
import shutil
import zipfile

import numpy as np
import pytest
import requests

import vaecyclegan.data.kaggle as kaggle_dataset
from vaecyclegan.cli.common import run_cli
from vaecyclegan.cli.data import main as data_main
from vaecyclegan.errors import InputError
from vaecyclegan.io.image_format import write_png


def _dataset_zip(tmp_path, extra_entries=()):
    """A small zip in the Kaggle layout (JPEG-like PNGs named as Kaggle's)."""
    path = tmp_path / "served.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for folder, count in (("trainA", 3), ("trainB", 4), ("testA", 2), ("testB", 2)):
            for index in range(count):
                image = tmp_path / "tmp.png"
                write_png(str(image), rng.integers(0, 256, (24, 24), dtype=np.uint8))
                archive.write(image, f"Dataset/images/{folder}/{folder}_{index}.png")
        for name, data in extra_entries:
            archive.writestr(name, data)
    return path


class StandInKaggleApi:
    """The two calls the project makes on `KaggleApi`, serving a local zip."""

    def __init__(self, zip_path, token=True, network=True):
        self.zip_path, self.token, self.network = zip_path, token, network
        self.requests = []

    def authenticate(self):
        if not self.token:
            print("the real client prints several lines of help here")
            exit(1)

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False):
        self.requests.append((dataset, unzip))
        if not self.network:
            raise requests.exceptions.ConnectionError("Failed to resolve 'www.kaggle.com'")
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
    assert os.listdir(data) == []  # nothing extracted, nothing left behind


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
    assert os.listdir(tmp_path / "data") == []


def test_data_download_cli_and_a_zip_by_hand(tmp_path, capsys, monkeypatch):
    served = _dataset_zip(tmp_path)
    monkeypatch.setattr(kaggle_dataset, "make_kaggle_client", lambda: StandInKaggleApi(served))
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "a")]) == 0
    assert "3 images" in capsys.readouterr().out
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "b"), "--zip", str(served)]) == 0
    assert os.path.isdir(tmp_path / "b" / "ct-to-mri-cgan" / "Dataset" / "images" / "testB")
    assert run_cli(data_main, ["download", "--out", str(tmp_path / "c"),
                               "--zip", str(tmp_path / "absent.zip")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'absent.zip'}: zip not found"


def test_train_data_kaggle_downloads_once_then_reuses(tmp_path, monkeypatch):
    from vaecyclegan.data.kaggle import ensure_kaggle_dataset

    api = StandInKaggleApi(_dataset_zip(tmp_path))
    first = ensure_kaggle_dataset(str(tmp_path / "data"), client_factory=lambda: api)
    second = ensure_kaggle_dataset(str(tmp_path / "data"), client_factory=lambda: api)
    assert first == second and len(api.requests) == 1

"""`resolve_dataset`: the domain folders of a dataset."""

import os

import pytest

from vaecyclegan.data.dataset_layout import resolve_dataset
from vaecyclegan.errors import InputError


def test_one_folder_as_both_domains_is_refused(tmp_path):
    # It trained CT -> CT and scored testA against itself.
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    with pytest.raises(InputError, match="is both the CT and the MRI training folder"):
        resolve_dataset(None, str(tmp_path / "trainA"), str(tmp_path / "trainA"))
    with pytest.raises(InputError, match="is both the CT and the MRI training folder"):
        resolve_dataset(str(tmp_path), mri_dir=str(tmp_path / "trainA"))
    folders = resolve_dataset(str(tmp_path))
    assert (folders.ct_train, folders.mri_train) == (str(tmp_path / "trainA"),
                                                     str(tmp_path / "trainB"))


def test_a_file_given_as_a_training_folder_is_named_as_such(tmp_path):
    # It was reported as "folder not found".
    (tmp_path / "ct.png").write_bytes(b"x")
    (tmp_path / "mri").mkdir()
    with pytest.raises(InputError, match="is a file, not a folder of training scans"):
        resolve_dataset(None, str(tmp_path / "ct.png"), str(tmp_path / "mri"))
    with pytest.raises(InputError, match="folder not found"):
        resolve_dataset(None, str(tmp_path / "missing"), str(tmp_path / "mri"))
    # --data too: "dataset folder not found" for a file that is there.
    with pytest.raises(InputError, match="is a file, not a dataset folder"):
        resolve_dataset(str(tmp_path / "ct.png"))
    with pytest.raises(InputError, match="dataset folder not found"):
        resolve_dataset(str(tmp_path / "missing"))
    (tmp_path / "broken").symlink_to(tmp_path / "gone")  # a link to nothing is no file
    with pytest.raises(InputError, match="dataset folder not found"):
        resolve_dataset(str(tmp_path / "broken"))


def test_a_training_folder_holding_another_domain_or_a_test_folder_is_refused(tmp_path):
    # Training reads subfolders: --ct-dir Dataset/images trained CT on
    # trainB and on both test folders.
    images = tmp_path / "Dataset" / "images"
    for name in ("trainA", "trainB", "testA", "testB"):
        (images / name).mkdir(parents=True)
    with pytest.raises(InputError, match="the CT training folder holds the MRI training "
                                         "folder .*trainB, and training reads subfolders"):
        resolve_dataset(str(tmp_path), ct_dir=str(images))
    (tmp_path / "mri" / "nested").mkdir(parents=True)
    with pytest.raises(InputError, match="the MRI training folder holds the CT training"):
        resolve_dataset(None, ct_dir=str(tmp_path / "mri" / "nested"),
                        mri_dir=str(tmp_path / "mri"))
    # A test folder inside a training one; the 16-bit HU copies of the CT
    # test slices are a test folder too.
    _refused_inside_train_a(tmp_path, "testA", "the CT training folder holds the CT test folder")
    _refused_inside_train_a(tmp_path, "testA_hu", "holds the CT test folder in HU")
    # Control: the layout's folders side by side.
    folders = resolve_dataset(str(tmp_path))
    assert folders.ct_test_hu.endswith("testA_hu")
    assert folders.ct_train.endswith("trainA") and folders.mri_test.endswith("testB")


def _refused_inside_train_a(tmp_path, name, message):
    """The layout's `name` folder moved into trainA (a link to it in its
    place) is refused; then it is put back, a plain folder."""
    images = tmp_path / "Dataset" / "images"
    if (images / name).is_dir():
        (images / name).rmdir()
    (images / "trainA" / name).mkdir()
    os.symlink(images / "trainA" / name, images / name)
    with pytest.raises(InputError, match=message):
        resolve_dataset(str(tmp_path))
    os.remove(images / name)
    (images / "trainA" / name).rmdir()
    (images / name).mkdir()

"""Where each domain's images live in a dataset folder.

The Kaggle `ct-to-mri-cgan` layout is `Dataset/images/{trainA,trainB,testA,
testB}` with CT in the A folders and MRI in the B folders. A folder that
holds `Dataset/images/`, `images/` or the four folders directly is accepted.
`--ct-dir`/`--mri-dir` name the training folders of a domain instead
(relative to the dataset's image folder, or any path); a training folder
`trainX` brings its `testX` sibling as the test folder when there is one.
"""

import dataclasses
import os

from vaecyclegan.errors import InputError


@dataclasses.dataclass
class DatasetFolders:
    ct_train: str
    mri_train: str
    ct_test: str = None  # test folders are optional
    mri_test: str = None
    ct_test_hu: str = None  # 16-bit HU copies of the CT test slices, if any

    def others(self, folder):
        """The dataset's folders other than `folder` (training, test and HU
        test folders that exist): what a link inside `folder` may not lead
        into, training reading subfolders too."""
        return [f for f in (self.ct_train, self.mri_train, self.ct_test, self.mri_test,
                            self.ct_test_hu) if f and f != folder]

    def holding(self, path):
        """The dataset folder that `path` is or lies inside, or None: where
        no output may go, as commands read these folders (training with
        their subfolders) and would take its files for data."""
        path = os.path.realpath(path)
        for folder in self.others(None):
            root = os.path.realpath(folder)
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return root
        return None

    def describe(self):
        lines = [
            f"  CT  train: {self.ct_train}",
            f"  MRI train: {self.mri_train}",
        ]
        if self.ct_test and self.mri_test:
            lines += [f"  CT  test:  {self.ct_test}", f"  MRI test:  {self.mri_test}"]
        else:
            lines.append("  test:      none (no paired test folders; no closing evaluation)")
        return "\n".join(lines)


def _test_sibling(train_dir):
    """`.../testX` for `.../trainX`, when it exists."""
    parent, name = os.path.split(os.path.normpath(train_dir))
    if not name.startswith("train"):
        return None
    test = os.path.join(parent, "test" + name[len("train"):])
    return test if os.path.isdir(test) else None


def _override(root, path):
    candidate = os.path.join(root, path) if root else path
    folder = candidate if os.path.isdir(candidate) else path
    if not os.path.isdir(folder):
        if os.path.exists(candidate) or os.path.exists(path):
            raise InputError(path, "is a file, not a folder of training scans")
        raise InputError(path, "folder not found (looked in the dataset and the current folder)")
    return folder


def resolve_dataset(data_dir, ct_dir=None, mri_dir=None):
    """Finds the domain folders of a dataset.

    Args:
        data_dir: a dataset in the Kaggle layout, or None when both
            `ct_dir` and `mri_dir` are given.
        ct_dir, mri_dir: training folders that replace the layout's
            mapping (A = CT, B = MRI).

    Raises:
        InputError: no `trainA`/`trainB` pair is found, or an override
            folder is missing.
    """
    if not (ct_dir or mri_dir):
        folders = _kaggle_layout(data_dir)
        _check_apart(folders)
        return folders
    try:
        layout = _kaggle_layout(data_dir) if data_dir else None
    except InputError:
        if not (ct_dir and mri_dir):
            raise
        layout = None
    if layout is None and not (ct_dir and mri_dir):
        raise InputError(ct_dir or mri_dir, "without a dataset folder both --ct-dir and "
                         "--mri-dir are needed")
    if layout is not None:
        root = os.path.dirname(layout.ct_train)
    else:
        root = data_dir if data_dir and os.path.isdir(data_dir) else None
    ct_train = _override(root, ct_dir) if ct_dir else layout.ct_train
    mri_train = _override(root, mri_dir) if mri_dir else layout.mri_train
    if os.path.realpath(ct_train) == os.path.realpath(mri_train):
        # It trained CT -> CT and scored testA against itself.
        raise InputError(ct_train, "is both the CT and the MRI training folder")
    ct_test = _test_sibling(ct_train)
    folders = DatasetFolders(ct_train, mri_train, ct_test, _test_sibling(mri_train),
                             layout.ct_test_hu if layout is not None
                             and ct_test == layout.ct_test else None)
    _check_apart(folders)
    return folders


def _check_apart(folders):
    """Training reads a folder's subfolders too: a training folder that holds
    the other domain's, or a test folder, would train on them (--ct-dir
    Dataset/images trained CT on trainB and the test pairs)."""
    named = [("the CT training folder", folders.ct_train),
             ("the MRI training folder", folders.mri_train),
             ("the CT test folder", folders.ct_test), ("the MRI test folder", folders.mri_test),
             ("the CT test folder in HU", folders.ct_test_hu)]
    for label, folder in named[:2]:
        root = os.path.realpath(folder)
        for other_label, other in named:
            if other and other != folder and os.path.commonpath(
                    [root, os.path.realpath(other)]) == root:
                raise InputError(folder, f"{label} holds {other_label} {other}, and training "
                                 "reads subfolders too; give folders side by side")


def _kaggle_layout(data_dir):
    if not os.path.isdir(data_dir):
        raise InputError(data_dir, "is a file, not a dataset folder" if os.path.isfile(data_dir)
                         else "dataset folder not found")
    for root in (
        os.path.join(data_dir, "Dataset", "images"),
        os.path.join(data_dir, "images"),
        data_dir,
    ):
        train_a, train_b = os.path.join(root, "trainA"), os.path.join(root, "trainB")
        if os.path.isdir(train_a) and os.path.isdir(train_b):
            def optional(name):
                path = os.path.join(root, name)
                return path if os.path.isdir(path) else None

            return DatasetFolders(
                ct_train=train_a,
                mri_train=train_b,
                ct_test=optional("testA"),
                mri_test=optional("testB"),
                ct_test_hu=optional("testA_hu"),
            )
    raise InputError(
        data_dir,
        "no trainA/trainB folders (expected the Kaggle layout "
        "Dataset/images/{trainA,trainB,testA,testB}: A = CT, B = MRI)",
    )

"""Where each domain's images live in a dataset folder (DESIGN section 3).

The Kaggle `ct-to-mri-cgan` layout is `Dataset/images/{trainA,trainB,testA,
testB}` with CT in the A folders and MRI in the B folders. A folder that
holds `Dataset/images/`, `images/` or the four folders directly is accepted.
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

    def describe(self):
        lines = [
            f"  CT  train: {self.ct_train}",
            f"  MRI train: {self.mri_train}",
        ]
        if self.ct_test and self.mri_test:
            lines += [f"  CT  test:  {self.ct_test}", f"  MRI test:  {self.mri_test}"]
        return "\n".join(lines)


def resolve_dataset(data_dir):
    """Finds the domain folders of a dataset in the Kaggle layout.

    Raises:
        InputError: no `trainA`/`trainB` pair is found.
    """
    if not os.path.isdir(data_dir):
        raise InputError(data_dir, "dataset folder not found")
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

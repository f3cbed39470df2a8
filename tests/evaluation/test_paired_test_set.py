"""The test pairs the evaluations during and after training score."""

import nibabel as nib
import numpy as np

from vaecyclegan.data.dataset_layout import DatasetFolders
from vaecyclegan.evaluation.paired_test_set import check_test_pairs


def test_test_folders_of_volumes_say_where_volumes_are_scored(tmp_path, caplog):
    # "No test pairs to score: ...testA: no image files", and best weights
    # never written, without a word of what scores volumes.
    for name in ("testA", "testB", "trainA", "trainB"):
        (tmp_path / name).mkdir()
    for name in ("testA", "testB"):
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 2), np.int16), np.eye(4)),
                 str(tmp_path / name / "c1.nii.gz"))
    folders = DatasetFolders(str(tmp_path / "trainA"), str(tmp_path / "trainB"),
                             str(tmp_path / "testA"), str(tmp_path / "testB"))
    with caplog.at_level("INFO"):
        assert check_test_pairs(folders) == 0
    assert "No test pairs to score" in caplog.text
    assert "vaecyclegan-eval --predictions" in caplog.text

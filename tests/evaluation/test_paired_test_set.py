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


def _image_folders(tmp_path, ct_names, mri_names):
    from vaecyclegan.io.image_format import write_png

    pixels = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    for sub, names in (("trainA", ["ct1.png"]), ("trainB", ["mri1.png"]), ("testA", ct_names),
                       ("testB", mri_names)):
        (tmp_path / sub).mkdir()
        for name in names:
            write_png(str(tmp_path / sub / name), pixels)
    return DatasetFolders(*(str(tmp_path / sub) for sub in ("trainA", "trainB", "testA", "testB")))


def test_test_images_that_pair_no_name_are_a_warning(tmp_path, caplog):
    # The Kaggle dataset's testA holds ct<N>.png, its testB mri<N>.jpg: the
    # closing evaluation scored nothing, said only at info level.
    folders = _image_folders(tmp_path, ["ct7.png", "ct8.png"], ["mri9.png", "mri10.png"])
    with caplog.at_level("INFO"):
        assert check_test_pairs(folders) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith("No test pairs to score: no file name "
                                                          "is in both")
    assert "the evaluations pair test files by name" in warnings[0]
    assert "ct<N>/mri<N>" in warnings[0] and "vaecyclegan-eval --predictions" in warnings[0]


def test_paired_test_images_and_no_test_folders_are_no_warning(tmp_path, caplog):
    folders = _image_folders(tmp_path, ["a.png", "b.png"], ["a.png", "b.png"])
    with caplog.at_level("INFO"):
        assert check_test_pairs(folders) == 2
        folders.ct_test = folders.mri_test = None
        assert check_test_pairs(folders) == 0
    assert not [r for r in caplog.records if r.levelno >= 30]


class _InvertingTranslator:
    """Stands in for a `Translator`: the negative of each [-1, 1] slice,
    recording how many stacks each call was given."""

    def __init__(self):
        self.calls = []

    def translate_stacks(self, stacks, batch_size, samples, pixel_mm):
        stacks = list(stacks)
        self.calls.append(len(stacks))
        return [-s for s in stacks], [None] * len(stacks)


def test_the_test_set_is_translated_and_scored_a_part_at_a_time(tmp_path, monkeypatch):
    # Every test pair was read and translated at once, and held while
    # scored: a set of thousands of slices did not fit in memory.
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.evaluation.paired_test_set import evaluate_direction, paired_files
    from vaecyclegan.io.image_format import write_png

    rng = np.random.default_rng(0)
    for index in range(5):
        for sub in ("mri", "ct"):
            (tmp_path / sub).mkdir(exist_ok=True)
            write_png(str(tmp_path / sub / f"{index}.png"),
                      rng.integers(0, 256, (16, 16), dtype=np.uint8))
    pairs = paired_files(str(tmp_path / "mri"), str(tmp_path / "ct"))

    def rows(at_once):
        monkeypatch.setattr("vaecyclegan.evaluation.paired_test_set.TRANSLATED_AT_ONCE", at_once)
        translator = _InvertingTranslator()
        evaluation = evaluate_direction(translator, "mri2ct", pairs, None, IntensityConfig())
        return translator.calls, evaluation.rows

    (in_parts, scored_in_parts), (whole, scored_whole) = rows(2), rows(64)
    assert in_parts == [2, 2, 1] and whole == [5]
    assert scored_in_parts == scored_whole and len(scored_whole) == 5


def test_a_16bit_ct_reference_without_its_hu_copy_is_its_own(tmp_path):
    # With a folder of HU copies, a 16-bit CT reference missing from it was
    # scored without HU (no mae_hu, no SynthRAD metrics), though it is HU.
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.evaluation.paired_test_set import evaluate_direction, paired_files
    from vaecyclegan.io.image_format import write_png

    hu = np.full((24, 24), -1000.0)
    hu[4:20, 4:20] = 40.0
    hu[8:16, 8:16] = 700.0
    stored = (hu + 1024).astype(np.uint16)
    for sub in ("mri", "ct", "ct_hu"):
        (tmp_path / sub).mkdir()
    for name in ("s0.png", "s1.png"):
        write_png(str(tmp_path / "mri" / name), stored)
        write_png(str(tmp_path / "ct" / name), stored)
    write_png(str(tmp_path / "ct_hu" / "s0.png"), stored)  # s1 has no copy
    pairs = paired_files(str(tmp_path / "mri"), str(tmp_path / "ct"))
    evaluation = evaluate_direction(_InvertingTranslator(), "mri2ct", pairs, None,
                                    IntensityConfig(), hu_folder=str(tmp_path / "ct_hu"))
    assert evaluation.summary["tissue"]["hu_references"] == 2
    assert all(np.isfinite(row["mae_hu"]) for row in evaluation.rows)
    assert set(evaluation.summary["synthrad"]["cases"]) == {"s0.png", "s1.png"}

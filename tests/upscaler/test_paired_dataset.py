"""Real low/high-resolution pairs for the upscaler."""


import numpy as np
import pytest

from tests.harness import sr_pairs_folder
from vaecyclegan.errors import InputError
from vaecyclegan.upscaler.paired_dataset import load_sr_pairs, make_paired_sr_dataset


def test_pairs_are_matched_by_name_and_every_tenth_is_held_out(tmp_path):
    train, held = load_sr_pairs(str(sr_pairs_folder(tmp_path, 12)), 4)
    assert [name for name, _, _ in held] == ["0009"]
    assert len(train) == 11 and train[0][1].shape == (16, 16) and train[0][2].shape == (64, 64)
    assert train[0][1].max() <= 1.0 and train[0][2].dtype == np.float32


def test_pairs_of_the_wrong_factor_are_refused(tmp_path):
    sr_pairs_folder(tmp_path, 2, scale=2, suffix=False)
    with pytest.raises(InputError, match="not x4 of"):
        load_sr_pairs(str(tmp_path), 4)
    with pytest.raises(InputError, match="no hr/HR/gt/GT subfolder"):
        load_sr_pairs(str(tmp_path / "HR"), 4)


def test_crops_stay_aligned(tmp_path):
    train, _ = load_sr_pairs(str(sr_pairs_folder(tmp_path, 3)), 4)
    low, high = next(iter(make_paired_sr_dataset(train, 32, 4, 2, channels=1, seed=1)))
    assert low.shape == (2, 8, 8, 1) and high.shape == (2, 32, 32, 1)
    # Each low-resolution pixel is the mean of its 4x4 high-resolution block (to 1 grey level).
    pooled = np.asarray(high)[..., 0].reshape(2, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.abs(pooled - np.asarray(low)[..., 0]).max() <= 1.5 / 255


@pytest.mark.parametrize("side, extra", [("HR", "0001.tif"), ("LR", "0001.png")])
def test_two_images_of_one_name_are_refused_not_one_picked(tmp_path, side, extra):
    # 0001.png and 0001.tif in HR: one of them was paired, the other dropped.
    import cv2

    sr_pairs_folder(tmp_path, 3)
    image = cv2.imread(str(tmp_path / side / ("0001.png" if side == "HR" else "0001x4.png")),
                       cv2.IMREAD_UNCHANGED)
    assert cv2.imwrite(str(tmp_path / side / extra), image)
    with pytest.raises(InputError, match="two .*-resolution images of one name"):
        load_sr_pairs(str(tmp_path), 4)


def test_images_without_a_partner_are_named(tmp_path, caplog):
    sr_pairs_folder(tmp_path, 3)
    (tmp_path / "LR" / "0002x4.png").unlink()
    with caplog.at_level("INFO"):
        train, _ = load_sr_pairs(str(tmp_path), 4)
    assert [name for name, _, _ in train] == ["0000", "0001"]
    assert "1 high-resolution image(s) without a partner, not used: 0002.png" in caplog.text
    # Control: complete pairs, nothing said.
    caplog.clear()
    with caplog.at_level("INFO"):
        load_sr_pairs(str(sr_pairs_folder(tmp_path / "full", 3)), 4)
    assert "without a partner" not in caplog.text


def test_a_pair_smaller_than_the_training_patch_is_named_when_read(tmp_path):
    # It was found when the upscaler's batches were first drawn (after the
    # translation stage of a --stage all run), naming the stem "0000".
    sr_pairs_folder(tmp_path, 3)  # 16-px low-resolution images
    with pytest.raises(InputError, match=r"LR/0000x4.png: low-resolution image 16x16 is "
                       r"smaller than the 32-pixel training patch"):
        load_sr_pairs(str(tmp_path), 4, patch=128)
    train, _ = load_sr_pairs(str(tmp_path), 4, patch=64)  # control: 16 px is enough
    assert len(train) == 3


def test_a_missing_or_file_folder_of_pairs_is_named_as_such(tmp_path):
    # Both were "no hr/ subfolder".
    (tmp_path / "pairs.png").write_bytes(b"x")
    with pytest.raises(InputError, match="is a file, not a folder of pairs"):
        load_sr_pairs(str(tmp_path / "pairs.png"), 4)
    with pytest.raises(InputError, match="folder of pairs not found"):
        load_sr_pairs(str(tmp_path / "absent"), 4)

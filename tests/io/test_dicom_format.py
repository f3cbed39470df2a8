"""Reading DICOM, on the real files pydicom ships; translating it is in
tests/integration/test_dicom.py."""


import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from tests.harness import dicom_series_folder
from vaecyclegan.io.dicom_format import is_dicom_file, read_dicom_series
from vaecyclegan.io.formats import find_scan_sources


def test_ct_small_reads_in_hounsfield_units():
    path = get_testdata_file("CT_small.dcm")
    scan = read_dicom_series([path], "ct", "CT_small.dcm")
    stored = pydicom.dcmread(path).pixel_array
    assert scan.units == "hu" and scan.values.shape == (1, 128, 128)
    # RescaleIntercept -1024, slope 1.
    np.testing.assert_array_equal(scan.values[0], stored.astype(np.float32) - 1024)


def test_a_series_folder_is_one_scan_sorted_by_position(tmp_path):
    folder = dicom_series_folder(tmp_path)
    assert all(is_dicom_file(str(p)) for p in folder.iterdir())  # no extension: DICM mark
    [source] = find_scan_sources(str(folder))
    scan = read_dicom_series(source.paths, "ct", source.name)
    assert scan.values.shape == (3, 128, 128)
    marks = scan.values[:, 0, 0] + 1024
    np.testing.assert_array_equal(marks, [0, 100, 200])
    assert scan.source.file_names == ["IM0003", "IM0002", "IM0001"]

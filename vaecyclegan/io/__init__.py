"""Files in and out: a scan in memory (`scan`), one reader/writer per
format behind one registry (`formats`: `image_format`, `dicom_format`,
`nifti_format`), intensities between scanner units and the networks'
[-1, 1] (`intensity`), slices resampled to a pixel scale, one rule for
training and inference (`resampling`), the Keras HDF5 weight files (`weight_files`),
atomic writes (`atomic_write`) and the memory check before decoding
(`memory_budget`)."""

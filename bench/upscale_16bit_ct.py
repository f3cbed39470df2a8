"""16-bit CT through `infer.py --direction none --upscale`, against bicubic.

Each 16-bit PNG of HU + 1024 in `--hu-folder` (a test folder's `testA_hu`,
as the phantom and `vaecyclegan-data realistic` write it) is cropped to a
multiple of the weights' factor, downscaled by it (area), upscaled back by
`infer.py` as users run it, and compared with the original in HU: PSNR over
a 4024 HU range, MAE over the slice, the body (above -500 HU) and bone
(above 200 HU). Prints a table; asserts nothing.

    python bench/upscale_16bit_ct.py --weights-dir weights \\
        --hu-folder data/phantom_64px_seed0/Dataset/images/testA_hu
"""

import argparse
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HU_OFFSET = 1024


def _errors(output, original):
    error = output - original
    mse = np.mean(np.clip(error, -4024, 4024) ** 2)
    return (10 * np.log10(4024**2 / mse), np.abs(error).mean(),
            np.abs(error[original > HU_OFFSET - 500]).mean(),
            np.abs(error[original > HU_OFFSET + 200]).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", required=True)
    parser.add_argument("--hu-folder", required=True)
    parser.add_argument("--count", type=int, default=12, help="slices scored (the first N)")
    options = parser.parse_args()

    from vaecyclegan.config import ModelConfig
    from vaecyclegan.io.image_format import list_images, read_grey, write_png

    factor = ModelConfig.load(options.weights_dir).rrdbnet.scale
    with tempfile.TemporaryDirectory() as work:
        pairs = {}
        os.makedirs(os.path.join(work, "low"))
        for path in list_images(options.hu_folder)[:options.count]:
            original = read_grey(path).astype(np.float64)
            height, width = (n // factor * factor for n in original.shape)
            original = original[:height, :width]
            low = np.clip(np.round(cv2.resize(original, (width // factor, height // factor),
                                              interpolation=cv2.INTER_AREA)), 0, 65535)
            name = os.path.basename(path)
            write_png(os.path.join(work, "low", name), low.astype(np.uint16))
            pairs[name] = (original, low)
        subprocess.run([sys.executable, os.path.join(REPO, "infer.py"), "--direction", "none",
                        "--upscale", str(factor), "--input", os.path.join(work, "low"),
                        "--output", os.path.join(work, "out"), "--weights-dir",
                        options.weights_dir], check=True, stdout=subprocess.DEVNULL)
        rows = {"infer.py": [], "bicubic": []}
        for name, (original, low) in pairs.items():
            rows["infer.py"].append(_errors(
                read_grey(os.path.join(work, "out", name)).astype(np.float64), original))
            bicubic = cv2.resize(low, original.shape[::-1], interpolation=cv2.INTER_CUBIC)
            rows["bicubic"].append(_errors(np.clip(np.round(bicubic), 0, 65535), original))
    print(f"x{factor}, {len(pairs)} slices of {options.hu_folder}")
    print(f"{'':10s} {'PSNR dB':>8s} {'MAE HU':>8s} {'body':>8s} {'bone':>8s}")
    for label, values in rows.items():
        psnr, mae, body, bone = np.mean(values, axis=0)
        print(f"{label:10s} {psnr:8.2f} {mae:8.1f} {body:8.1f} {bone:8.1f}")


if __name__ == "__main__":
    main()

"""`python infer.py` / `vaecyclegan-infer`."""

import sys

from vaecyclegan.cli.common import OptionParser, parse_settings, program_name, run_cli
from vaecyclegan.names import DIRECTIONS, RESAMPLING, SLICE_AXES
from vaecyclegan.workflows.settings import SR_SCALES, InferSettings

DEFAULTS = InferSettings(direction="mri2ct", input="", output="")


def build_parser():
    parser = OptionParser(
        prog=program_name("infer.py"),
        description="Translate MRI to CT (mri2ct) or CT to MRI (ct2mri) with trained weights. "
        "Reads PNG/JPEG/TIFF/BMP (8/16-bit), DICOM files and series, NIfTI volumes; each result "
        "goes back to its input's kind, size and geometry (CT in HU).",
    )
    parser.add_argument("--direction", required=True, choices=(*DIRECTIONS, "none"),
                        help="none: no translation, only --upscale")
    parser.add_argument("--input", required=True,
                        help="an image, DICOM or NIfTI file, or a folder of them (DICOM files "
                        "in a folder are grouped into series)")
    parser.add_argument("--output", required=True, help="output folder (created if missing)")
    parser.add_argument("--weights-dir", default=DEFAULTS.weights_dir,
                        help="folder with config.json and the *_weights.h5 files")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                        help="slices per forward pass (fewer for large slices: at most "
                        "1024x1024 pixels a pass, or --translate-tile squared where larger)")
    parser.add_argument("--translate-tile", type=int, default=DEFAULTS.translate_tile,
                        help="slices with a side above this are translated in tiles of this "
                        "side, overlapping by an eighth and blended, so memory stays bounded "
                        "(0: never tile)")
    parser.add_argument("--axis", default=DEFAULTS.axis, choices=SLICE_AXES,
                        help="plane NIfTI volumes are cut into slices along")
    parser.add_argument("--samples", type=int, default=DEFAULTS.samples,
                        help="latent draws per image: above 1 the output is their mean and "
                        "<output>/std/ holds per-pixel standard-deviation heat maps")
    parser.add_argument("--reference", help="a reference image, or a folder of references "
                        "paired with the inputs by file name (with --upscale: at the upscaled "
                        "size): writes metrics.json, metrics_per_image.csv, comparison grid and "
                        "index.html into --output")
    parser.add_argument("--upscale", type=int, choices=SR_SCALES,
                        help="then upscale with the RRDB-Net of --weights-dir (its factor)")
    parser.add_argument("--tile", type=int, default=DEFAULTS.tile,
                        help="upscaler tile side in input pixels (memory grows with it)")
    parser.add_argument("--tile-pad", type=int, default=DEFAULTS.tile_pad,
                        help="context pixels around each tile; tiles equal untiled upscaling "
                        "wherever it covers the network's receptive field")
    parser.add_argument("--resample", default=DEFAULTS.resample, choices=RESAMPLING,
                        help="slices are translated at the pixel scale the weights were trained "
                        "at (config.json) and returned to their own grid: auto, through the "
                        "weights' RRDB-Net where its factor fits, else bicubic; bicubic; off: "
                        "translate at the input's own scale")
    return parser


def main(argv=None):
    settings = parse_settings(build_parser(), InferSettings, argv)
    from vaecyclegan.workflows.infer import run_inference

    run_inference(settings)


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

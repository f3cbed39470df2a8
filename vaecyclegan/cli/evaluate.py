"""`vaecyclegan-eval`: metrics, baselines, grids and an HTML page, for a
training run's weights, for any folder of predicted images or volumes
(SynthRAD's metrics in HU, per tissue, bone, WEPL, dose), or for a mri2ct
model on a SynthRAD folder."""

import argparse
import sys

from vaecyclegan.cli.common import OptionParser, level_width, parse_settings, run_cli
from vaecyclegan.names import DIRECTIONS
from vaecyclegan.workflows.settings import EvalSettings

DEFAULTS = EvalSettings()


def build_parser():
    parser = OptionParser(
        prog="vaecyclegan-eval",
        description="Evaluate a training run (--run) on its dataset's test pairs, score "
        "predicted images or volumes (--predictions) against references by name, or "
        "translate and score a SynthRAD folder (--synthrad). 8-bit reports show the identity "
        "and histogram-matching baselines; references in HU (16-bit PNG of HU + 1024, DICOM "
        "CT, NIfTI) get SynthRAD's metrics inside a body mask, per tissue, bone Dice/HD95, "
        "WEPL and, with dose grids, gamma.",
    )
    parser.add_argument("--run", help="a run folder written by train.py")
    parser.add_argument("--samples", type=int, default=DEFAULTS.samples,
                        help="with --run: latent draws per image (above 1: uncertainty report)")
    parser.add_argument("--predictions", help="translated images or volumes (any tool's): a "
                        "file, or a folder of cases (files, DICOM series, one folder per case)")
    parser.add_argument("--references", help="the references, paired with the predictions by "
                        "case name")
    parser.add_argument("--inputs", help="folder of the images the predictions were made from "
                        "(8-bit metrics and baselines; needed for 8-bit images), same file names")
    parser.add_argument("--ct-window", type=level_width, metavar="LEVEL,WIDTH",
                        help="with --inputs: the CT window of 8-bit CT images in HU, for the "
                        "per-tissue errors and bone Dice (e.g. 40,400; default -1000..2000 HU)")
    parser.add_argument("--direction", default=DEFAULTS.direction, choices=tuple(DIRECTIONS),
                        help="with --predictions: the direction, for the report")
    parser.add_argument("--out", help="report folder (default: the run folder with --run)")
    _add_synthrad_options(parser)
    _add_hu_options(parser)
    return parser


def _add_synthrad_options(parser):
    group = parser.add_argument_group("SynthRAD folder")
    group.add_argument("--synthrad", help="a SynthRAD folder: one folder per patient holding "
                       "ct.nii.gz, mr.nii.gz and mask.nii.gz; each mr is translated (mri2ct) "
                       "and scored against ct inside mask")
    group.add_argument("--weights-dir", default=DEFAULTS.weights_dir,
                       help="with --synthrad: config.json and the weight files")
    group.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                       help="with --synthrad: slices per forward pass")


def _add_hu_options(parser):
    group = parser.add_argument_group("metrics in HU")
    group.add_argument("--mask", help="mask file, or folder of masks named after the cases "
                       "(nonzero: scored; default: the body mask of each reference)")
    group.add_argument("--mask-dilation-mm", type=float, default=DEFAULTS.mask_dilation_mm,
                       help="grow the body mask made from the reference by this many mm")
    group.add_argument("--body-threshold", type=float, default=DEFAULTS.body_threshold,
                       help="HU above which the reference is body (body mask)")
    group.add_argument("--spacing", type=float, nargs="+", metavar="MM",
                       help="pixel size of 2-D image files: one value, or rows and columns "
                       "(default 1 mm)")
    group.add_argument("--tissue-thresholds", type=float, nargs=2, metavar=("LOW", "HIGH"),
                       default=DEFAULTS.tissue_thresholds,
                       help="air below LOW, bone above HIGH, soft tissue between (HU)")
    group.add_argument("--bone-threshold", type=float, default=DEFAULTS.bone_threshold,
                       help="HU above which a voxel is bone for Dice and HD95")
    group.add_argument("--wepl", action=argparse.BooleanOptionalAction, default=None,
                       help="water-equivalent path length differences (default: on for cases "
                       "of at most 64x512x512 voxels)")
    group.add_argument("--hu-to-rsp", help="your scanner's HU -> RSP curve: two columns, HU "
                       "and RSP (default: a typical curve)")
    group.add_argument("--beam-angles", type=float, nargs="+", metavar="DEG",
                       help="WEPL beam angles in the axial plane (default 0 45 ... 315)")
    group.add_argument("--target", help="mask (or folder of masks named after the cases) "
                       "the WEPL statistics are restricted to")
    group.add_argument("--dose-ct", help="dose grid computed on the CT (RTDOSE or NIfTI; a "
                       "folder of them named after the cases)")
    group.add_argument("--dose-sct", help="dose grid of the same plan computed on the "
                       "synthetic CT, same grid")
    group.add_argument("--prescription-gy", type=float,
                       help="prescribed dose for the dose MAE above 90 %% of it (default: "
                       "the reference's 98th percentile above 10 %% of its maximum)")


def main(argv=None):
    settings = parse_settings(build_parser(), EvalSettings, argv)
    from vaecyclegan.workflows.evaluate import evaluate

    evaluate(settings)


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

"""`vaecyclegan-eval`: metrics, baselines, grids and an HTML page, for a
training run's weights or for any folder of predicted images."""

import argparse
import sys

from vaecyclegan.cli.common import parse_settings, quiet_tensorflow, run_cli
from vaecyclegan.names import DIRECTIONS
from vaecyclegan.workflows.settings import EvalSettings

DEFAULTS = EvalSettings()


def build_parser():
    parser = argparse.ArgumentParser(
        prog="vaecyclegan-eval",
        description="Evaluate a training run (--run) on its dataset's test pairs, or score "
        "predicted images (--predictions) against references by file name. Reports always "
        "show the identity and histogram-matching baselines.",
    )
    parser.add_argument("--run", help="a run folder written by train.py")
    parser.add_argument("--samples", type=int, default=DEFAULTS.samples,
                        help="with --run: latent draws per image (above 1: uncertainty report)")
    parser.add_argument("--predictions", help="folder of translated images (any tool's)")
    parser.add_argument("--references", help="folder of reference images, same file names")
    parser.add_argument("--inputs", help="folder of the images the predictions were made from "
                        "(for the baselines), same file names")
    parser.add_argument("--direction", default=DEFAULTS.direction, choices=tuple(DIRECTIONS),
                        help="with --predictions: the direction, for the report")
    parser.add_argument("--out", help="report folder (default: the run folder with --run)")
    return parser


def main(argv=None):
    settings = parse_settings(build_parser(), EvalSettings, argv)
    quiet_tensorflow()
    from vaecyclegan.workflows.evaluate import evaluate

    evaluate(settings)


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

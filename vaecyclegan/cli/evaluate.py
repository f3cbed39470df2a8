"""`vaecyclegan-eval`: metrics, baselines, grids and an HTML page, for a
training run's weights or for any folder of predicted images."""

import argparse
import sys

from vaecyclegan.cli.common import print_options, quiet_tensorflow, run_cli


def build_parser():
    parser = argparse.ArgumentParser(
        prog="vaecyclegan-eval",
        description="Evaluate a training run (--run) on its dataset's test pairs, or score "
        "predicted images (--predictions) against references by file name. Reports always "
        "show the identity and histogram-matching baselines.",
    )
    parser.add_argument("--run", help="a run folder written by train.py")
    parser.add_argument("--samples", type=int, default=1,
                        help="with --run: latent draws per image (above 1: uncertainty report)")
    parser.add_argument("--predictions", help="folder of translated images (any tool's)")
    parser.add_argument("--references", help="folder of reference images, same file names")
    parser.add_argument("--inputs", help="folder of the images the predictions were made from "
                        "(for the baselines), same file names")
    parser.add_argument("--direction", default="mri2ct", choices=("mri2ct", "ct2mri"),
                        help="with --predictions: the direction, for the report")
    parser.add_argument("--out", help="report folder (default: the run folder with --run)")
    return parser


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(argv)
    folder_mode = [options.predictions, options.references, options.inputs]
    if bool(options.run) == any(folder_mode):
        parser.error("give either --run, or --predictions, --references and --inputs")
    if not options.run and not all(folder_mode):
        parser.error("--predictions needs --references and --inputs (for the baselines)")
    if not options.run and not options.out:
        parser.error("--predictions needs --out")
    if options.samples <= 0:
        parser.error("--samples must be positive")
    print_options(parser, options)
    quiet_tensorflow()
    from vaecyclegan.evaluation_run import evaluate_folders, evaluate_run

    if options.run:
        evaluate_run(options.run, options.out or options.run, options.samples)
    else:
        evaluate_folders(options.predictions, options.references, options.inputs,
                         options.direction, options.out)


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

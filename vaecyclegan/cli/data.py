"""`vaecyclegan-data`: datasets. `download` fetches the Kaggle dataset
darren2020/ct-to-mri-cgan (or installs a zip downloaded by hand); `phantom`
renders the built-in head phantom."""

import argparse
import sys

from vaecyclegan.cli.common import print_options, run_cli


def build_parser():
    parser = argparse.ArgumentParser(prog="vaecyclegan-data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    phantom = commands.add_parser(
        "phantom", help="render the head phantom in the Kaggle layout (CT = A, MRI = B)")
    phantom.add_argument("--out", required=True, help="dataset folder to create")
    phantom.add_argument("--size", type=int, default=256, help="image side in pixels")
    phantom.add_argument("--train", type=int, default=200, help="images per training domain")
    phantom.add_argument("--test", type=int, default=24, help="paired test images")
    phantom.add_argument("--seed", type=int, default=0)
    download = commands.add_parser(
        "download", help="fetch darren2020/ct-to-mri-cgan with your Kaggle API token into "
        "<out>/ct-to-mri-cgan, extract it safely and check its layout")
    download.add_argument("--out", default="data", help="data folder (train.py's --data-root)")
    download.add_argument("--zip", help="install this zip (downloaded by hand) instead of "
                          "downloading")
    return parser


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.command == "download":
        print_options(parser, options)
        from vaecyclegan.data.dataset_layout import resolve_dataset
        from vaecyclegan.data.kaggle import dataset_summary, download_kaggle_dataset

        folder = download_kaggle_dataset(options.out, zip_path=options.zip)
        print(f"Installed {folder}:\n{dataset_summary(resolve_dataset(folder))}\n"
              f"Train on it with: python train.py --data {folder}")
        return
    if options.size < 16 or options.train < 1 or options.test < 0:
        parser.error("--size must be at least 16, --train at least 1, --test at least 0")
    print_options(parser, options)
    from vaecyclegan.config import IntensityConfig
    from vaecyclegan.data.phantom import write_phantom_dataset

    images = write_phantom_dataset(options.out, IntensityConfig(), options.size,
                                   options.train, options.test, options.seed)
    print(f"Wrote {options.train} + {options.train} training and {options.test} paired "
          f"test images into {images}")


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

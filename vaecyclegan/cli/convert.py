"""`vaecyclegan-convert`: pretrained weights from other frameworks."""

import sys

from vaecyclegan.cli.common import (
    OptionParser,
    print_options,
    quiet_tensorflow,
    run_cli,
    terminal_text,
)


def build_parser():
    parser = OptionParser(prog="vaecyclegan-convert", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    esrgan = commands.add_parser(
        "esrgan", help="ESRGAN / BasicSR RRDB-Net .pth (PyTorch) to the Keras HDF5 weights file "
        "plus config.json beside it (needs torch: pip install 'vaecyclegan[convert]')")
    esrgan.add_argument("input", help="e.g. RRDB_ESRGAN_x4.pth, RRDB_PSNR_x4.pth, "
                        "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth")
    esrgan.add_argument("output", help="e.g. weights/rrdbnet_weights.h5; never the input (nor "
                        "a link to it); its folder is created if missing and must be writable, "
                        "both checked before anything is read")
    return parser


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(argv)
    print_options(parser, options)
    quiet_tensorflow()
    from vaecyclegan.upscaler.esrgan_conversion import CONVERSION_TOLERANCE, convert_esrgan

    model, config = convert_esrgan(options.input, options.output)
    r = config.rrdbnet
    # terminal_text: a file name of undecodable bytes cannot be printed as it is.
    print(terminal_text(f"Wrote {options.output}: RRDB-Net x{r.scale}, {r.num_block} blocks, "
                        f"{r.num_feat} features, growth {r.num_grow_ch}, "
                        f"{model.count_params():,} parameters"), flush=True)
    difference = config.training["upscaler_run"]["max_difference_from_pytorch"]
    print(f"Checked: on a random 32-px image its output equals the file's own PyTorch forward "
          f"pass to {difference:.2g} (largest difference; refused above "
          f"{CONVERSION_TOLERANCE:g})", flush=True)


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

"""Peak memory and time of tiled RRDB-Net upscaling, against the untiled run.

Each setting runs in its own process, so its peak resident memory (from
`wait4`) is its own. Weights are random: memory and time do not depend on
them. Prints a table; asserts nothing.

    python bench/upscale_memory.py                       # ESRGAN x4, 1024x1024 input
    python bench/upscale_memory.py --num-feat 16 --num-block 2 --size 1024
"""

import argparse
import sys

from process_peak import HEADER, add_tile_arguments, measure_in_worker, run_setting


def worker(options):
    from vaecyclegan.cli.common import quiet_tensorflow

    quiet_tensorflow()

    import numpy as np

    from vaecyclegan.config import RRDBNetConfig
    from vaecyclegan.upscaler.rrdbnet import build_rrdbnet
    from vaecyclegan.upscaler.tiling import TiledUpscaler

    net = build_rrdbnet(RRDBNetConfig(num_feat=options.num_feat, num_block=options.num_block,
                                      num_grow_ch=options.num_grow_ch))
    image = np.random.default_rng(0).uniform(0, 1, (options.size, options.size)).astype("float32")
    upscaler = TiledUpscaler(net, 4, 3, tile=options.tile, pad=options.pad)
    measure_in_worker(lambda: upscaler.upscale(image[:64, :64]), lambda: upscaler.upscale(image))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="input side in pixels")
    parser.add_argument("--num-feat", type=int, default=64)
    parser.add_argument("--num-block", type=int, default=23)
    parser.add_argument("--num-grow-ch", type=int, default=32)
    parser.add_argument("--pad", type=int, default=32)
    add_tile_arguments(parser, "64,128,256,0", "image")
    options = parser.parse_args()
    if options.worker:
        return worker(options)

    print(f"RRDB-Net x4 nf={options.num_feat} nb={options.num_block} gc={options.num_grow_ch}, "
          f"{options.size}x{options.size} grey input -> {4 * options.size}x{4 * options.size}, "
          f"pad {options.pad}")
    print(HEADER)
    for tile in (int(t) for t in options.tiles.split(",")):
        side = tile or options.size
        command = [sys.executable, __file__, "--worker", "--tile", str(side), "--pad",
                   str(options.pad if tile else 0), "--size", str(options.size),
                   "--num-feat", str(options.num_feat), "--num-block", str(options.num_block),
                   "--num-grow-ch", str(options.num_grow_ch)]
        run_setting(command, str(tile) if tile else "whole")


if __name__ == "__main__":
    main()

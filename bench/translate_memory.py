"""Peak memory and time of tiled translation of a large slice, against the
whole slice at once.

Each setting runs in its own process, so its peak resident memory (from
`wait4`) is its own. Weights are random: memory and time do not depend on
them. Prints a table; asserts nothing.

    python bench/translate_memory.py                     # quick generator, 2048x2048
    python bench/translate_memory.py --preset paper --size 1024 --tiles 256,512,0
"""

import argparse
import sys

from process_peak import HEADER, add_tile_arguments, measure_in_worker, run_setting


def worker(options):
    from vaecyclegan.cli.common import quiet_tensorflow

    quiet_tensorflow()

    import numpy as np

    from vaecyclegan.training.presets import PRESETS
    from vaecyclegan.translation.translator import Translator
    from vaecyclegan.translation.vae_unet_generator import build_vae_unet_generator

    config = PRESETS[options.preset].generator
    generator = build_vae_unet_generator(config)
    image = np.random.default_rng(0).uniform(-1, 1, (1, options.size, options.size))
    translator = Translator(generator, config.stride, 3, tile=options.tile,
                            overlap=max(16, options.tile // 8))
    measure_in_worker(lambda: translator.translate_unit(image[:, :64, :64]),
                      lambda: translator.translate_unit(image))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=("smoke", "quick", "paper"),
                        help="whose generator architecture to run")
    parser.add_argument("--size", type=int, default=2048, help="slice side in pixels")
    add_tile_arguments(parser, "256,512,1024,0", "slice")
    options = parser.parse_args()
    if options.worker:
        return worker(options)

    print(f"{options.preset} generator, one {options.size}x{options.size} slice, overlap an "
          "eighth of a tile")
    print(HEADER)
    for tile in (int(t) for t in options.tiles.split(",")):
        command = [sys.executable, __file__, "--worker", "--tile", str(tile),
                   "--size", str(options.size), "--preset", options.preset]
        run_setting(command, str(tile) if tile else "whole")


if __name__ == "__main__":
    main()

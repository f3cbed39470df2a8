"""`python train.py` / `vaecyclegan-train`."""

import argparse
import sys

from vaecyclegan.cli.common import OptionParser, level_width, parse_settings, program_name, run_cli
from vaecyclegan.names import (
    AUGMENTATIONS,
    PRECISIONS,
    PRESET_NAMES,
    REPORTED_METRICS,
    STAGES,
    STRATEGIES,
)
from vaecyclegan.training.presets import PRESETS
from vaecyclegan.workflows.settings import SR_DEGRADATIONS, SR_SCALES, TrainSettings

DEFAULTS = TrainSettings()


def build_parser():
    parser = OptionParser(
        prog=program_name("train.py"),
        description="Train the VAE-CycleGAN (MRI <-> CT) and the RRDB-Net upscaler. "
        "With no arguments: the quick preset on the built-in head phantom.",
    )
    _data_options(parser.add_argument_group("data"))
    _schedule_options(parser.add_argument_group("schedule"))
    _run_options(parser.add_argument_group("run"))
    _upscaler_options(parser.add_argument_group("upscaler"))
    _evaluation_options(parser.add_argument_group("evaluation"))
    return parser


def _data_options(group):
    group.add_argument("--data", default=DEFAULTS.data,
                       help="'phantom' (rendered on first use), 'kaggle' "
                       "(darren2020/ct-to-mri-cgan, downloaded on first use; needs a Kaggle "
                       "API token) or a folder in the Kaggle layout "
                       "Dataset/images/{trainA,trainB,testA,testB} (A = CT, B = MRI) holding "
                       "images, DICOM series or NIfTI volumes")
    group.add_argument("--ct-dir", help="CT training folder instead of trainA (in the dataset "
                       "or any path); its testX sibling, if any, is the CT test folder")
    group.add_argument("--mri-dir", help="MRI training folder instead of trainB (likewise)")
    group.add_argument("--data-root", default=DEFAULTS.data_root,
                       help="where the phantom is rendered and the Kaggle dataset downloaded")
    group.add_argument("--ct-window", type=level_width, metavar="LEVEL,WIDTH",
                       help="the CT window in HU: what 8-bit CT grey levels mean (8-bit files "
                       "carry no window; e.g. 40,400 for a brain window), and the window CT in "
                       "HU is mapped through; recorded in config.json (default: -1000..2000 HU, "
                       "i.e. 500,3000)")
    group.add_argument("--crop-factor", type=float,
                       help="train on --image-size crops of the slices shrunk this many times "
                       "(1: native resolution) instead of whole slices resized to --image-size; "
                       "inference applies the same pixel scale (default: the preset's)")


def _schedule_options(group):
    group.add_argument("--preset", default=DEFAULTS.preset, choices=PRESET_NAMES,
                       help="smoke: seconds, for tests; quick: minutes on a CPU; "
                       "paper: the original recipe (256px, 50,000 steps)")
    group.add_argument("--steps", type=int, help="translation steps (default: the preset's)")
    group.add_argument("--batch-size", type=int,
                       help="images loaded per domain and step over all replicas, doubled "
                       "by augmentation (default: the preset's)")
    group.add_argument("--augmentation", choices=AUGMENTATIONS,
                       help="the view that doubles each batch: affine (left-right flip, "
                       "rotation, shift, zoom) or flips (the flip alone; default: the preset's)")
    group.add_argument("--image-size", type=int, help="training image side (default: the preset's)")
    group.add_argument("--lr", type=float, help="AdamW learning rate (default: the preset's)")
    group.add_argument("--weight-decay", type=float,
                       help="AdamW weight decay (default: the preset's)")
    group.add_argument("--lambda-identity", type=float,
                       help="identity loss weight, relative to the cycle loss's 10 "
                       "(CycleGAN's 0.5; default: the preset's)")
    group.add_argument("--lambda-structure", type=float,
                       help="weight of the MIND structure loss between each generator's input "
                       "and output (0: none; default: the preset's)")
    group.add_argument("--lambda-nce", type=float,
                       help="weight of CUT's contrastive patch loss (PatchNCE) between each "
                       "generator's input and output (0: none; default: the preset's)")
    group.add_argument("--levels-without-skip", type=int,
                       help="the generators' finest decoder levels that get no skip from the "
                       "encoder (0: the plain U-Net; default: the preset's)")
    group.add_argument("--lr-decay-start", type=int,
                       help="step the learning rate starts its linear decay to zero at "
                       "(CycleGAN's rule; default: half the steps; --steps value: no decay)")


def _run_options(group):
    group.add_argument("--precision", default=DEFAULTS.precision, choices=PRECISIONS,
                       help="auto: on a GPU mixed_float16 (TensorFlow; JAX and PyTorch "
                       "below compute capability 8, without bfloat16) or mixed_bfloat16 "
                       "(JAX, PyTorch); on a CPU mixed_bfloat16 where it has "
                       "AVX512-BF16/AMX, else float32")
    group.add_argument("--strategy", default=DEFAULTS.strategy, choices=STRATEGIES,
                       help="auto: mirrored over all GPUs when there are several (on JAX "
                       "data-parallel over all devices), else one device; default: one "
                       "device; multiworker reads TF_CONFIG")
    group.add_argument("--resume", action=argparse.BooleanOptionalAction,
                       help="continue from <logdir>/checkpoint (default: when it exists; "
                       "give the run's --logdir)")
    group.add_argument("--checkpoint-every", type=int,
                       help="steps between checkpoints; SIGTERM/SIGINT also save one "
                       "(default: the preset's, 500)")
    group.add_argument("--log-every", type=int, default=DEFAULTS.log_every,
                       help="steps between TensorBoard scalars and sample grids in "
                       "<logdir>/tensorboard and <logdir>/samples (0: none)")
    group.add_argument("--stage", default=DEFAULTS.stage, choices=STAGES,
                       help="translate: the four translation networks; sr: the upscaler; all: both")
    group.add_argument("--weights-dir", default=DEFAULTS.weights_dir, help="where the .h5 files go")
    group.add_argument("--logdir", help="run folder (default: runs/<date-time>)")
    group.add_argument("--seed", type=int, default=DEFAULTS.seed,
                       help="seed of data, weights and sampling")


def _upscaler_options(group):
    group.add_argument("--sr-steps", type=int,
                       help="the upscaler's L1 steps (default: the preset's; quick: "
                       f"{PRESETS['quick'].sr_steps:,})")
    group.add_argument("--sr-scale", type=int, choices=SR_SCALES,
                       help="upscaling factor of the RRDB-Net (default: the preset's, 4)")
    group.add_argument("--sr-degradations", nargs="*", default=[], choices=SR_DEGRADATIONS,
                       help="random degradations of the upscaler's inputs beside the bicubic "
                       "downscale: Gaussian blur before it, Gaussian noise after it")
    group.add_argument("--sr-pairs",
                       help="train the upscaler on real pairs: a folder with hr/ and lr/ "
                       "(or gt/ and lq/) images paired by name, hr exactly x --sr-scale of lr; "
                       "every tenth pair is held out for evaluation")
    group.add_argument("--sr-gan-steps", type=int,
                       help="ESRGAN's adversarial stage after the L1 one: relativistic GAN "
                       "with a VGG-style discriminator (default: the preset's; quick: "
                       f"{PRESETS['quick'].sr_gan_steps:,})")
    group.add_argument("--vgg-weights",
                       help="Keras VGG19 'notop' ImageNet weights for the adversarial stage's "
                       "perceptual loss (default: Keras' cache if it holds them; without "
                       "them the stage runs without a perceptual loss and says so)")


def _evaluation_options(group):
    group.add_argument("--eval-every", type=int,
                       help="evaluate on the test pairs every N steps and keep the best weights "
                       "in <weights-dir>/best (0: never; default: the preset's)")
    group.add_argument("--best-metric", default=DEFAULTS.best_metric, choices=REPORTED_METRICS,
                       help="metric that picks the best weights, averaged over both directions")


def main(argv=None):
    settings = parse_settings(build_parser(), TrainSettings, argv)
    from vaecyclegan.workflows.train import run_training

    run_training(settings)


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

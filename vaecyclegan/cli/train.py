"""`python train.py` / `vaecyclegan-train`."""

import argparse
import sys

from vaecyclegan.cli.common import print_options, quiet_tensorflow, run_cli

PRESET_NAMES = ("smoke", "quick", "paper")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train the VAE-CycleGAN (MRI <-> CT) and the RRDB-Net upscaler. "
        "With no arguments: the quick preset on the built-in head phantom.",
    )
    parser.add_argument("--data", default="phantom",
                        help="'phantom' (rendered on first use), 'kaggle' (darren2020/ct-to-mri-cgan, "
                        "downloaded on first use; needs a Kaggle API token) or a folder in the "
                        "Kaggle layout Dataset/images/{trainA,trainB,testA,testB} (A = CT, "
                        "B = MRI) holding images, DICOM series or NIfTI volumes")
    parser.add_argument("--ct-dir", help="CT training folder instead of trainA (in the dataset "
                        "or any path); its testX sibling, if any, is the CT test folder")
    parser.add_argument("--mri-dir", help="MRI training folder instead of trainB (likewise)")
    parser.add_argument("--data-root", default="data",
                        help="where the phantom is rendered and the Kaggle dataset downloaded")
    parser.add_argument("--preset", default="quick", choices=PRESET_NAMES,
                        help="smoke: seconds, for tests; quick: minutes on a CPU; "
                        "paper: the original recipe (256px, 50,000 steps)")
    parser.add_argument("--steps", type=int, help="translation steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int,
                        help="images loaded per domain and step over all replicas, doubled "
                        "by augmentation (default: the preset's)")
    parser.add_argument("--image-size", type=int, help="training image side (default: the preset's)")
    parser.add_argument("--lr", type=float, help="AdamW learning rate (default: the preset's)")
    parser.add_argument("--weight-decay", type=float,
                        help="AdamW weight decay (default: the preset's)")
    parser.add_argument("--lr-decay-start", type=int,
                        help="step the learning rate starts its linear decay to zero at "
                        "(CycleGAN's rule; default: half the steps; --steps value: no decay)")
    parser.add_argument("--precision", default="auto",
                        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
                        help="auto: mixed_float16 on a GPU, mixed_bfloat16 on a CPU with "
                        "AVX512-BF16/AMX, else float32")
    parser.add_argument("--strategy", default="auto",
                        choices=("auto", "default", "mirrored", "multiworker", "tpu"),
                        help="auto: mirrored over all GPUs when there are several, else one "
                        "device; multiworker reads TF_CONFIG")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction,
                        help="continue from <logdir>/checkpoint (default: when it exists; "
                        "give the run's --logdir)")
    parser.add_argument("--checkpoint-every", type=int,
                        help="steps between checkpoints; SIGTERM/SIGINT also save one "
                        "(default: the preset's, 500)")
    parser.add_argument("--log-every", type=int, default=100,
                        help="steps between TensorBoard scalars and sample grids in "
                        "<logdir>/tensorboard and <logdir>/samples (0: none)")
    parser.add_argument("--stage", default="all", choices=("translate", "sr", "all"),
                        help="translate: the four translation networks; sr: the upscaler; all: both")
    parser.add_argument("--weights-dir", default="weights", help="where the .h5 files go")
    parser.add_argument("--logdir", help="run folder (default: runs/<date-time>)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and sampling")
    parser.add_argument("--sr-steps", type=int,
                        help="the upscaler's L1 steps (default: the preset's; quick: 2,000)")
    parser.add_argument("--sr-scale", type=int, choices=(2, 4),
                        help="upscaling factor of the RRDB-Net (default: the preset's, 4)")
    parser.add_argument("--sr-degradations", nargs="*", default=[], choices=("blur", "noise"),
                        help="random degradations of the upscaler's inputs beside the bicubic "
                        "downscale: Gaussian blur before it, Gaussian noise after it")
    parser.add_argument("--sr-pairs",
                        help="train the upscaler on real pairs: a folder with hr/ and lr/ "
                        "(or gt/ and lq/) images paired by name, hr exactly x --sr-scale of lr; "
                        "every tenth pair is held out for evaluation")
    parser.add_argument("--sr-gan-steps", type=int,
                        help="ESRGAN's adversarial stage after the L1 one: relativistic GAN "
                        "with a VGG-style discriminator (default: the preset's; quick: 0)")
    parser.add_argument("--vgg-weights",
                        help="Keras VGG19 'notop' ImageNet weights for the adversarial stage's "
                        "perceptual loss (default: Keras' cache if it holds them; without "
                        "them the stage runs without a perceptual loss and says so)")
    parser.add_argument("--eval-every", type=int,
                        help="evaluate on the test pairs every N steps and keep the best weights "
                        "in <weights-dir>/best (0: never; default: the preset's)")
    parser.add_argument("--best-metric", default="ssim",
                        choices=("psnr", "ssim", "mae", "mae_hu", "bce", "auc", "f1"),
                        help="metric that picks the best weights, averaged over both directions")
    return parser


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(argv)
    for name in ("steps", "sr_steps", "batch_size", "image_size", "lr", "weight_decay"):
        value = getattr(options, name)
        if value is not None and value <= 0 and name != "weight_decay":
            parser.error(f"--{name.replace('_', '-')} must be positive")
    for name in ("checkpoint_every", "log_every", "lr_decay_start"):
        value = getattr(options, name)
        if value is not None and value < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 or positive")
    if options.sr_gan_steps is not None and options.sr_gan_steps < 0:
        parser.error("--sr-gan-steps must be 0 or positive")
    if options.eval_every is not None and options.eval_every < 0:
        parser.error("--eval-every must be 0 or positive")
    print_options(parser, options)
    quiet_tensorflow()
    from vaecyclegan.training_run import run_training

    run_training(options)


def entry_point():
    sys.exit(run_cli(main))


if __name__ == "__main__":
    entry_point()

"""Train the VAE-CycleGAN; see `python train.py --help`."""

from vaecyclegan.cli.train import entry_point

if __name__ == "__main__":
    entry_point()

"""Translate images with trained weights; see `python infer.py --help`."""

from vaecyclegan.cli.infer import entry_point

if __name__ == "__main__":
    entry_point()

"""vaecyclegan: unpaired MRI <-> CT translation with a VAE-CycleGAN, and an
ESRGAN RRDB-Net upscaler, in Keras 3."""

__version__ = "0.2.0"

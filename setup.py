"""vaecyclegan: unpaired MRI <-> CT translation (VAE-CycleGAN) with an RRDB-Net upscaler."""

import re

from setuptools import find_packages, setup

with open("vaecyclegan/__init__.py", encoding="utf-8") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

with open("README.md", encoding="utf-8") as f:
    LONG_DESCRIPTION = f.read()

setup(
    name="vaecyclegan",
    version=VERSION,
    description="Unpaired MRI <-> CT translation with a VAE-CycleGAN and an ESRGAN RRDB-Net "
    "upscaler, in Keras 3 / TensorFlow",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    license="MIT",
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Healthcare Industry",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Topic :: Scientific/Engineering :: Image Processing",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
    # TensorFlow 2.21 (the newest allowed) has wheels for 3.10-3.13; jax
    # 0.10 (the [jax] and [test] extras) needs 3.11; pymedphys 0.41 (the
    # [dose] and [test] extras) stops at 3.12. Tested on 3.11.
    python_requires=">=3.11,<3.14",
    packages=find_packages(include=["vaecyclegan", "vaecyclegan.*"]),
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.5,<4",
        "numpy>=1.26,<3",
        # scipy.ndimage: body masks, surface distances, WEPL ray sums.
        "scipy>=1.10,<2",
        "opencv-python-headless>=4.8,<6",
        "scikit-image>=0.22,<0.27",
        "scikit-learn>=1.3,<2",
        "matplotlib>=3.8,<4",
        "h5py>=3.10,<4",
        # Reads image headers (size) before decoding, to refuse huge images.
        "pillow>=10,<14",
        "kaggle>=1.6,<3",
        # The Kaggle client's HTTP stack: a failed download is told apart
        # by its errors (network, HTTP status, cut short).
        "requests>=2.28,<3",
        "urllib3>=1.26,<3",
        # pydicom 3: `pydicom.pixels` and save_as(enforce_file_format=...).
        "pydicom>=3.0,<4",
        "nibabel>=5.2,<6",
        "tensorboard>=2.16,<2.22",
        "tqdm>=4.66,<5",
    ],
    extras_require={
        # torch reads the official ESRGAN / BasicSR .pth files; only
        # `vaecyclegan-convert` needs it.
        "convert": ["torch>=2.1"],
        # Gamma pass rates between dose grids (`vaecyclegan-eval --dose-ct`).
        "dose": ["pymedphys>=0.41,<0.42"],
        # SynthRAD 2025's MetaImage (.mha) files (`vaecyclegan-eval --synthrad`).
        "mha": ["SimpleITK>=2.3,<3"],
        # Keras' other backends for the networks, the weight files and
        # inference (KERAS_BACKEND=jax or torch); jax 0.10.2 is the version
        # tested, torch is pinned for the reason given under "test".
        "jax": ["jax>=0.10.2,<0.11"],
        "torch": ["torch==2.13.0"],
        # tf-keras proves the weight files are the Keras 2 layout it writes;
        # torch is the reference the converter is checked against, and with
        # jax (CPU wheels, about 90 MB) one of the two other Keras backends
        # the networks are tested on. torch is pinned because this project's
        # machines carry a CPU build of 2.13.0, where a range would pull a
        # CUDA build of several GB.
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "hypothesis>=6.100,<7", "ruff>=0.6,<1",
                 "tf-keras>=2.16,<2.22", "torch==2.13.0", "pymedphys>=0.41,<0.42",
                 "jax[cpu]==0.10.2", "SimpleITK>=2.3,<3"],
    },
    entry_points={
        "console_scripts": [
            "vaecyclegan-train=vaecyclegan.cli.train:entry_point",
            "vaecyclegan-infer=vaecyclegan.cli.infer:entry_point",
            "vaecyclegan-data=vaecyclegan.cli.data:entry_point",
            "vaecyclegan-eval=vaecyclegan.cli.evaluate:entry_point",
            "vaecyclegan-convert=vaecyclegan.cli.convert:entry_point",
        ],
    },
)

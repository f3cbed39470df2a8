#!/usr/bin/env bash
# Downloads what a GPU machine without TensorFlow, Keras or internet lacks to
# run bench/jax_paper_step.py (it has Python 3.12, JAX with CUDA, numpy,
# h5py, ml-dtypes, absl-py, rich): the keras, optree, namex and packaging
# wheels, and pydicom and nibabel for train.py (bench/gpu/train_realistic.py), for CPython 3.12 on manylinux x86_64, into bench/gpu/wheels/
# (ignored by git; about 3 MB). Run it here, with internet, then carry the
# repository (wheels included) to that machine and run bench/gpu/run.sh.
#
#   bench/gpu/fetch_wheels.sh            # PYVER=311 for a local trial run
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pyver="${PYVER:-312}"
keras_version="${KERAS_VERSION:-3.15.1}"
mkdir -p "$here/wheels"
python -m pip download --only-binary=:all: --no-deps --dest "$here/wheels" \
    --python-version "$pyver" --implementation cp --abi "cp$pyver" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any \
    "keras==$keras_version" "optree>=0.13" namex packaging "pydicom>=2.4" "nibabel>=5"
ls -l "$here/wheels"

#!/usr/bin/env bash
# Runs bench/jax_paper_step.py on a machine without TensorFlow or Keras and
# without internet: installs the wheels bench/gpu/fetch_wheels.sh fetched
# into a private folder (nothing else on the machine changes), puts it and
# this repository on PYTHONPATH and runs the benchmark on JAX; arguments go
# to the benchmark.
#
#   bench/gpu/run.sh                         # paper preset, float32 and bf16
#   bench/gpu/run.sh --steps 20 --json out/gpu_bench.json
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
target="${BENCH_LIBS:-${TMPDIR:-/tmp}/vaecyclegan-bench-libs}"
if ! ls "$here"/wheels/keras-*.whl >/dev/null 2>&1; then
    echo "error: no wheels in $here/wheels: run bench/gpu/fetch_wheels.sh where there is internet" >&2
    exit 2
fi
"$python" -m pip install --quiet --no-index --no-deps --find-links "$here/wheels" \
    --target "$target" --upgrade keras optree namex packaging
export PYTHONPATH="$target:$repo${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax
exec "$python" "$repo/bench/jax_paper_step.py" "$@"

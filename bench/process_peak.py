"""Runs one benchmark setting in its own process and prints its table row:
the worker's own timing, and its peak resident memory from `wait4`."""

import argparse
import os
import subprocess
import time

HEADER = f"{'tile':>8}{'seconds':>10}{'peak RSS MB':>14}{'before MB':>12}"


def run_setting(command, label):
    """Runs `command`, which prints "<MB before> <seconds>", and prints the row."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read().split()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0 or len(output) != 2:
        print(f"{label:>8}{'failed (exit status ' + str(status) + ')':>36}", flush=True)
        return
    before, seconds = output
    print(f"{label:>8}{seconds:>10}{usage.ru_maxrss / 1024:>14.0f}{before:>12}", flush=True)


def measure_in_worker(warm_up, run):
    """In the worker: builds and warms up, then times `run()` and prints
    "<MB before> <seconds>" for `run_setting`."""
    import resource

    warm_up()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    run()
    print(f"{before:.0f} {time.perf_counter() - started:.1f}", flush=True)


def add_tile_arguments(parser, default_tiles, unit):
    """The tile list to measure, and the hidden options a worker receives."""
    parser.add_argument("--tiles", default=default_tiles,
                        help=f"tile sides to measure; 0 = the whole {unit} at once")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, help=argparse.SUPPRESS)

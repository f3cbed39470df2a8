"""What every command line shares: quiet TensorFlow, options printed
CycleGAN-style, and one clear line instead of a traceback for bad input."""

import os
import sys


def quiet_tensorflow():
    """Imports TensorFlow without its C++ start-up log.

    TF_CPP_MIN_LOG_LEVEL=3 also hides grappler's harmless "remapper failed"
    lines, but since TF 2.16 absl prints oneDNN/CUDA notices while the
    library loads, before any level applies (tensorflow#100442); standard
    error is pointed at /dev/null for the import alone. Python errors still
    raise. Set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
    """
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if level == "0" or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def print_options(parser, options):
    """Prints every option with its value, and the default where it differs."""
    lines = ["----------------- Options ---------------"]
    for key, value in sorted(vars(options).items()):
        default = parser.get_default(key)
        note = f"\t[default: {default}]" if value != default else ""
        lines.append(f"{key:>25}: {str(value):<30}{note}")
    lines.append("----------------- End -------------------")
    print("\n".join(lines), flush=True)


def run_cli(main, argv=None):
    """Runs `main(argv)`; bad input ends as `error: <path>: <problem>`, exit 2."""
    from vaecyclegan.errors import InputError

    try:
        return main(argv) or 0
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

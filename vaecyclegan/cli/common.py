"""What every command line shares: quiet TensorFlow, options printed
CycleGAN-style, and one clear line instead of a traceback for bad input."""

import os
import sys


def quiet_tensorflow():
    # Must run before TensorFlow is imported. Level 3 also hides grappler's
    # harmless "remapper failed" lines; real failures still raise in Python.
    # Set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

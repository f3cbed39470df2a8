"""What every command line shares: quiet TensorFlow, options printed
CycleGAN-style and turned into typed settings, the library's log lines on
the terminal, and one clear line instead of a traceback for bad input."""

import argparse
import logging
import os
import re
import sys


class OptionParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose usage errors are one line, as every
    other bad input is: `error: <program>: <problem> (see <program> --help)`,
    exit 2, without the usage block argparse prints first."""

    def error(self, message):
        self.exit(2, terminal_text(f"error: {self.prog}: {message} (see {self.prog} --help)\n"))


def quiet_tensorflow():
    """Imports Keras, and TensorFlow only where it is Keras' backend, without
    TensorFlow's C++ start-up log; returns the backend's name.

    Keras picks its backend when it is imported (`KERAS_BACKEND`, else
    `~/.keras/keras.json`, else TensorFlow) and imports TensorFlow then only
    for the TensorFlow backend; under JAX or PyTorch nothing here imports
    it. TF_CPP_MIN_LOG_LEVEL=3 also hides grappler's harmless "remapper
    failed" lines, but since TF 2.16 absl prints oneDNN/CUDA notices while
    the library loads, before any level applies (tensorflow#100442);
    standard error is pointed at /dev/null for the import alone. Python
    errors still raise. Set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
    """
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if level == "0" or "keras" in sys.modules:
        return _import_keras_backend()
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        return _import_keras_backend()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# What to install for each backend Keras may be told to use.
_BACKEND_PACKAGES = {"jax": "'vaecyclegan[jax]'", "torch": "'vaecyclegan[torch]'",
                     "tensorflow": "tensorflow"}


_SUPPORTED = "this project runs on the tensorflow, jax and torch backends"


def _import_keras_backend():
    from vaecyclegan.errors import InputError

    chosen = "KERAS_BACKEND or ~/.keras/keras.json"
    try:
        import keras
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing in _BACKEND_PACKAGES:
            raise InputError(program_name(), f"the Keras backend {missing} ({chosen}) is not "
                             f"installed: pip install {_BACKEND_PACKAGES[missing]}") from None
        if missing and missing == os.environ.get("KERAS_BACKEND"):
            # Keras' others (openvino, numpy) run no training here.
            raise InputError(program_name(), f"the Keras backend {missing} ({chosen}) is not "
                             f"installed; {_SUPPORTED}") from None
        raise
    except ValueError as error:
        # Keras' own words for an unknown name: "Unable to import backend : foo".
        raise InputError(program_name(), f"{error} ({chosen}); {_SUPPORTED}") from None
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow  # noqa: F401  (Keras has loaded it: this only names it)
    return backend


def program_name(script=None):
    """The name the user ran: an installed command's (`vaecyclegan-train`,
    whose users may have no `train.py`) where it is one, else `script`,
    else the running file's."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    if name.startswith("vaecyclegan-"):
        return name
    return script or name or "vaecyclegan"


def print_options(parser, options, from_preset=None):
    """Prints every option with its value, and the default where it differs
    (a subcommand's options against the subcommand's defaults); with
    `from_preset` (a preset's value of each option it backs), those left
    unset show the preset's value, the others the value they replace."""
    lines = ["----------------- Options ---------------"]
    parser, command = _chosen_parser(parser, options)
    from_preset = from_preset or {}
    # A required option has no default to compare with ("[default: None]").
    required = {action.dest for action in parser._actions if action.required}
    for key, value in sorted(vars(options).items()):
        default = parser.get_default(key)
        note = (f"\t[default: {default}]"
                if value != default and key != command and key not in required else "")
        if key in from_preset and value is None:
            value, note = from_preset[key], f"\t[the {options.preset} preset's]"
        elif key in from_preset:
            note = f"\t[the {options.preset} preset's: {from_preset[key]}]"
        lines.append(f"{key:>25}: {str(value):<30}{note}")
    lines.append("----------------- End -------------------")
    print(terminal_text("\n".join(lines)), flush=True)


def _chosen_parser(parser, options):
    """`(parser, dest)`: the subcommand's parser the options came through
    and the option naming the subcommand; `(parser, None)` without one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(options, action.dest, None))
            if chosen is not None:
                return chosen, action.dest
    return parser, None


def terminal_text(text):
    """`text` with the bytes of undecodable file names (surrogate escapes,
    which no stream can encode) shown as `\\xe9`; the rest as it is."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def level_width(text):
    """An argparse type: "LEVEL,WIDTH" (HU) as two floats."""
    from vaecyclegan.workflows.settings import window_problem

    try:
        level, width = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LEVEL,WIDTH in HU (e.g. 40,400)") from None
    problem = window_problem(level, width)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return (level, width)


def attach_negative_windows(argv):
    """`--ct-window -600,1500` as `--ct-window=-600,1500`: argparse takes a
    value that starts with '-' and is not a plain number for an option, so
    a window of negative level was "expected one argument"."""
    argv = list(sys.argv[1:] if argv is None else argv)
    joined, index = [], 0
    while index < len(argv):
        if argv[index] == "--ct-window" and index + 1 < len(argv) and re.match(
                r"-\.?\d", argv[index + 1]):
            joined.append(f"--ct-window={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


def parse_settings(parser, settings_class, argv=None):
    """Parses `argv` into a `settings_class` (a workflow's settings
    dataclass, whose fields are the parser's destinations), prints every
    option, and ends with the parser's usage error when a value is out of
    range."""
    options = parser.parse_args(attach_negative_windows(argv))
    settings = settings_class(**vars(options))
    try:
        settings.validate()
    except ValueError as error:
        parser.error(str(error))
    print_options(parser, options, settings.preset_values(unset_only=False)
                  if hasattr(settings, "preset_values") else None)
    print(f"Keras backend: {quiet_tensorflow()}", flush=True)
    return settings


class _CurrentStream(logging.StreamHandler):
    """Writes to whatever `sys.stdout` or `sys.stderr` is when a record is
    emitted (a test's capture, a redirected log), not when it was made."""

    def __init__(self, name):
        super().__init__()
        self.name = name

    @property
    def stream(self):
        return getattr(sys, self.name)

    @stream.setter
    def stream(self, value):
        pass

    def format(self, record):
        # A path of undecodable bytes in a message would raise inside emit.
        return terminal_text(super().format(record))


class _Below(logging.Filter):
    def __init__(self, level):
        super().__init__()
        self.level = level

    def filter(self, record):
        return record.levelno < self.level


def configure_logging(level=logging.INFO):
    """The library's messages as the command lines show them: information
    as plain lines on standard output, warnings and errors on standard
    error as `warning: ...`. Idempotent."""
    logger = logging.getLogger("vaecyclegan")
    if any(isinstance(h, _CurrentStream) for h in logger.handlers):
        return logger
    out = _CurrentStream("stdout")
    out.setFormatter(logging.Formatter("%(message)s"))
    out.addFilter(_Below(logging.WARNING))
    err = _CurrentStream("stderr")
    err.setLevel(logging.WARNING)
    err.setFormatter(_LevelPrefix())
    logger.addHandler(out)
    logger.addHandler(err)
    logger.setLevel(level)
    logger.propagate = False
    return logger


class _LevelPrefix(logging.Formatter):
    """`warning: <message>`, as the command lines' own messages read."""

    def format(self, record):
        return f"{record.levelname.lower()}: {record.getMessage()}"


def run_cli(main, argv=None):
    """Runs `main(argv)`; bad input ends as `error: <path>: <problem>`, exit 2."""
    from vaecyclegan.errors import InputError

    configure_logging()
    try:
        return main(argv) or 0
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    except KeyboardInterrupt:
        # `error: <file>: <problem>` as every other stop reads; the file
        # is the program, as no input is at fault.
        print(f"error: {program_name()}: interrupted", file=sys.stderr)
        return 130

"""The one error type that command lines turn into a single clear line."""

import os
import unicodedata

# Line breaks as `str.splitlines` sees them, besides the control characters.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029"}
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text):
    """`text` as one printable line: whatever a terminal or a UTF-8 stream
    cannot show is written as a backslash sequence.

    A file name that is not valid UTF-8 reaches Python as a str holding
    surrogate escapes (`os.fsdecode(b"caf\\xe9.png")`); printing it raises
    `UnicodeEncodeError`. Each such byte is shown as `\\xe9`, newlines and
    other control characters as `\\n`, `\\x1b`, ..., so that a message is
    always a single line. Bytes are decoded as file names are (`os.fsdecode`).

    Example: the file name `b"caf\\xe9\\n.png"` prints as `caf\\xe9\\n.png`.
    """
    if isinstance(text, (bytes, os.PathLike)):
        text = os.fsdecode(text)
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif char in _LINE_BREAKS:
            out.append(_LINE_BREAKS[char])
        elif unicodedata.category(char) in ("Cc", "Cs"):  # controls, lone surrogates
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


class InputError(Exception):
    """A problem with a file or folder the user gave us.

    The message always names the path, so the command line can print it as
    one line and exit non-zero without a traceback. `path` and `problem`
    are kept as `printable` text: undecodable bytes and line breaks are
    shown as backslash sequences, so the message prints on any stream and
    is always one line.

    Args:
        path: the file or folder at fault (str, bytes or path-like).
        problem: what is wrong with it, in words a user can act on.
    """

    def __init__(self, path, problem):
        self.path = printable(path)
        self.problem = printable(problem)
        super().__init__(f"{self.path}: {self.problem}")


class TrainingStopped(InputError):
    """Training ended before its last step: a signal, or a non-finite loss.

    The message says what was kept and how to go on; `exit_code` is what
    the command line exits with (128 + the signal, or 3).
    """

    def __init__(self, path, problem, exit_code):
        super().__init__(path, problem)
        self.exit_code = exit_code

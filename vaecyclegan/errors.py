"""The one error type that command lines turn into a single clear line."""


class InputError(Exception):
    """A problem with a file or folder the user gave us.

    The message always names the path, so the command line can print it as
    one line and exit non-zero without a traceback.

    Args:
        path: the file or folder at fault.
        problem: what is wrong with it, in words a user can act on.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class TrainingStopped(InputError):
    """Training ended before its last step: a signal, or a non-finite loss.

    The message says what was kept and how to go on; `exit_code` is what
    the command line exits with (128 + the signal, or 3).
    """

    def __init__(self, path, problem, exit_code):
        super().__init__(path, problem)
        self.exit_code = exit_code

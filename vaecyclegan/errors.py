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

"""Write files so that a crash never leaves a half-written one behind.

Everything goes to a temporary file in the destination folder (same file
system, so the final `os.replace` is atomic) and replaces the target only
once complete.
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path; on success it replaces `path` atomically.

    Example:
    >>> with atomic_path("notes/run.txt") as tmp:
    ...     with open(tmp, "w") as f:
    ...         print("done", file=f)
    >>> os.listdir("notes")  # the file, and no temporary one
    ['run.txt']
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions a
        # plain open() would have under the user's umask.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def nearest_existing(path):
    """`path` made absolute, or its nearest ancestor that exists (a file or
    a folder): where a folder to be created would be made."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def missing_folders(folder):
    """The folders `os.makedirs(folder)` would create, deepest first."""
    missing = []
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


def remove_empty_folders(folders):
    """Removes `folders` (deepest first, as `missing_folders` lists them)
    while they are empty: what a refused command created for its output."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            break

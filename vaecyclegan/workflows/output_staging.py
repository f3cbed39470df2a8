"""Writing a command's outputs all at once, or not at all.

Each output is written into a hidden staging folder inside the output
folder, and moved into place only after every writer has finished and every
destination has been checked, so a failure or a refused destination leaves
no partial output; no output may take an input's path. A destination
folder on another file system (a mount point inside the output folder)
gets a copy, written atomically. (Only an error while moving, after the
checks, such as a full disk, can leave the outputs before it in place; it
is named in one line.)
"""

import errno
import logging
import os
import re
import shutil
import socket
import tempfile

from vaecyclegan.errors import InputError
from vaecyclegan.io.atomic_write import (
    atomic_path,
    missing_folders,
    nearest_existing,
    remove_empty_folders,
)

logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # not POSIX: no locks (the process ID alone decides a sweep)
    fcntl = None

# This process's staging folders and the descriptors holding their locks.
_HELD = {}


def output_names(sources, output_dir, protected=()):
    """The files each source's result is written to; refuses to overwrite
    any input (or other `protected` path, such as a reference) or to write
    two results under one name.

    Args:
        sources: `ScanSource`s (each with `paths` and `output_names()`).
        output_dir: the output folder.
        protected: more paths no result may replace.

    Returns:
        One list of file names per source.
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise InputError(output_dir, "output exists and is not a folder")
    real_inputs = {os.path.realpath(p) for source in sources for p in source.paths}
    real_inputs |= {os.path.realpath(p) for p in protected}
    seen = {}
    for source in sources:
        for name in source.output_names():
            target = os.path.join(output_dir, name)
            if os.path.realpath(target) in real_inputs:
                raise InputError(target, "output would overwrite an input or a reference; "
                                 "choose another --output")
            if name in seen:
                raise InputError(source.paths[0], f"{seen[name]} and this input would both be "
                                 f"written as {name}")
            seen[name] = source.paths[0]
    return [source.output_names() for source in sources]


def check_writable(folder):
    """Refuses a folder the command could not write into, before any work
    is done, and leaves nothing behind: the probe is made (and removed) in
    the folder if it exists, else in its nearest existing parent.

    Raises:
        InputError: the folder, or the parent it would be created in, is a
            file or cannot be written.
    """
    probe_in = nearest_existing(folder)
    if not os.path.isdir(probe_in):
        raise InputError(folder, f"cannot be created: {probe_in} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vaecyclegan-probe-", dir=probe_in))
    except OSError as error:
        raise InputError(folder, f"output folder is not writable ({error.strerror})") from None


def _host_tag():
    """This machine's name as it stands in staging folders' names."""
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def _staging_prefix():
    """`.vaecyclegan-<host>-<pid>-`: a staging folder names the process that
    made it, so that one left by a killed process can be known and swept."""
    return f".vaecyclegan-{_host_tag()}-{os.getpid()}-"


def _process_is_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError, ValueError):  # another user's, or no such number: kept
        return False
    return False


# What `_lock` found: the lock taken, held by another process, or none to
# take here (no fcntl, or a file system without locks: NFS without lockd).
LOCKED, HELD, NO_LOCKS = "locked", "held", "no locks"


def _lock(path):
    """`(descriptor, state)`: a descriptor of folder `path` holding an
    exclusive lock on it and LOCKED, or None and HELD (another process
    holds it) or NO_LOCKS. The system drops a killed process's locks: a
    staging folder whose lock can be taken has no live owner, whatever the
    PID namespaces."""
    if fcntl is None:
        return None, NO_LOCKS
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None, NO_LOCKS
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(descriptor)
        return None, HELD if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK) else NO_LOCKS
    return descriptor, LOCKED


def _release(staging):
    descriptor = _HELD.pop(staging, None)
    if descriptor is not None:
        os.close(descriptor)


def _sweep_stale_staging(folder):
    """Removes staging folders in `folder` left by a process of this machine
    that is gone (SIGKILL, a power cut): a recursive DICOM import would take
    the partial series inside one for a series of its own. Gone means its
    process ID is not running here and no process holds its lock (a
    container of the same host name has PIDs of its own)."""
    host = _host_tag()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = re.fullmatch(r"\.vaecyclegan-([A-Za-z0-9_]+)-([0-9]+)-.+", name, re.ASCII)
        path = os.path.join(folder, name)
        if not (match and match.group(1) == host and _process_is_gone(int(match.group(2)))
                and os.path.isdir(path) and not os.path.islink(path)):
            continue
        # Where the file system has no locks, the process ID alone decides.
        descriptor, state = _lock(path)
        if state == HELD:
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            if descriptor is not None:
                os.close(descriptor)
        logger.info("removed %s, the staging folder of a run that was stopped before it "
                    "finished", path)


def _writable_folder(folder):
    """A new staging folder inside `folder`, locked by this process while it
    exists (`_release` when it is removed)."""
    try:
        os.makedirs(folder, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=_staging_prefix(), dir=folder)
    except OSError as error:
        raise InputError(folder, f"output folder is not writable ({error.strerror})") from None
    descriptor, _ = _lock(staging)
    if descriptor is not None:
        _HELD[staging] = descriptor
    return staging


def stage_and_publish(output_dir, writers, protected=(), option="--output"):
    """Runs each `writer(target)` into a hidden staging folder inside
    `output_dir` (`target(relative_name)` gives the path to write), then
    moves every written file into place.

    Nothing is moved until every writer has finished and every destination
    is known to be free: two outputs under one name (an input's result and
    a report file, a result named like the `std/` folder), a folder where a
    file goes, a file where a folder goes, a destination folder that cannot
    be written, or a destination in `protected` (the inputs and references)
    end the command with an `InputError` and nothing written. These are
    found once the writers have run, that is, after the work.

    Args:
        output_dir: the output folder.
        writers: callables taking `target`.
        protected: paths that no output may replace.
        option: the command line's name for the output folder (in messages).

    Example:
    >>> import cv2
    >>> import numpy as np
    >>> pixels = np.zeros((4, 4), np.uint8)
    >>> stage_and_publish("out", [lambda target: cv2.imwrite(target("a.png"), pixels)])
    >>> os.listdir("out")
    ['a.png']
    """

    def write(staging, claims):
        def target(relative):
            relative = os.path.normpath(relative)
            # Names come from the project, never from outside the output folder.
            assert not os.path.isabs(relative) and not relative.startswith(os.pardir), relative
            claims.claim(relative)
            path = os.path.join(staging, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return path

        for writer in writers:
            writer(target)

    _stage_then_move(output_dir, write, protected, option)


def stage_folder_and_publish(output_dir, write, protected=(), option="--out", published=None):
    """`stage_and_publish` for work that writes into a folder: `write(staging)`
    writes its files anywhere under the staging folder it is given (and
    returns what the command returns); each file is then moved to the same
    place under `output_dir`, on the same terms; `published`, a list, gets
    their paths relative to `output_dir`.

    Example:
    >>> def write_report(folder):
    ...     with open(os.path.join(folder, "index.html"), "w") as f:
    ...         print("<html></html>", file=f)
    ...     return "written"
    >>> stage_folder_and_publish("report", write_report)
    'written'
    >>> os.listdir("report")
    ['index.html']
    """
    results = []

    def write_and_claim(staging, claims):
        results.append(write(staging))
        for root, folders, files in os.walk(staging):
            folders.sort()
            for name in sorted(files):
                claims.claim(os.path.relpath(os.path.join(root, name), staging))

    claims = _stage_then_move(output_dir, write_and_claim, protected, option)
    if published is not None:
        published.extend(claims.files)
    return results[0]


def _stage_then_move(output_dir, write, protected, option):
    """Runs `write(staging, claims)`, then checks and moves every claimed
    file from the staging folder into `output_dir`; on any failure,
    removes the staging folder and the folders made for it."""
    created = missing_folders(output_dir)
    staging = None
    claims = _Claims(output_dir)
    if os.path.isdir(output_dir):
        _sweep_stale_staging(output_dir)
    try:
        staging = _writable_folder(output_dir)
        write(staging, claims)
        _check_destinations(output_dir, claims.files, protected, option)
        for relative in claims.files:
            final = os.path.join(output_dir, relative)
            try:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                _move_into_place(os.path.join(staging, relative), final)
            except OSError as error:
                # Checked above; what remains is a race or a full disk.
                raise InputError(final, f"cannot be written ({error.strerror or error}); "
                                 f"outputs before it in {output_dir} are in place") from None
    except BaseException:
        if staging is not None:
            # Removed, then unlocked: never unlocked while it exists.
            shutil.rmtree(staging, ignore_errors=True)
            _release(staging)
        # A refused command leaves no empty output folder behind either.
        remove_empty_folders(created)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    _release(staging)
    return claims


def _move_into_place(staged, final):
    """`os.replace`, or, where `final`'s folder is on another file system
    than the staging folder (a mount point inside the output folder, where
    a rename fails with EXDEV), a copy that replaces `final` atomically."""
    try:
        os.replace(staged, final)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        with atomic_path(final) as tmp:
            shutil.copyfile(staged, tmp)
        os.remove(staged)


def write_new_folder(folder, write):
    """Runs `write(staging)` into a hidden folder inside `folder` (created,
    or empty) and moves what it wrote up into `folder` once it has
    finished: an error or an interrupt leaves neither a partial dataset nor
    the folders made for it.

    Args:
        folder: the folder to fill; absent or empty.
        write: `staging -> result`, writing everything into `staging`; a
            result that is a path inside `staging` is returned as the
            same path inside `folder`.

    Raises:
        InputError: `folder` or a parent is a file, cannot be written, or
            `folder` holds files already.
    """
    check_writable(folder)
    if os.path.isdir(folder):
        _sweep_stale_staging(folder)  # a killed run's leftovers do not make it full
    if os.path.isdir(folder) and os.listdir(folder):
        raise InputError(folder, "exists and is not empty; name a new folder")
    created = missing_folders(folder)
    staging = None
    try:
        # Inside the folder, not beside it: an empty folder that is a mount
        # point, a link or the current folder cannot be renamed onto.
        staging = _writable_folder(folder)
        result = write(staging)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
    except OSError as error:
        _discard(staging, created)
        raise InputError(folder, f"cannot be written ({error.strerror or error})") from None
    except BaseException:
        _discard(staging, created)
        raise
    os.rmdir(staging)
    _release(staging)
    staging = os.path.abspath(staging)
    if isinstance(result, str) and os.path.commonpath(
            [os.path.abspath(result), staging]) == staging:
        return os.path.join(folder, os.path.relpath(os.path.abspath(result), staging))
    return result


def _discard(staging, created):
    """What a failed `write_new_folder` leaves: nothing it made."""
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
        _release(staging)
    remove_empty_folders(created)


class _Claims:
    """The output files written so far, and the folders they are in:
    refuses a second output under one name, or a name that is both a file
    and a folder of other outputs."""

    def __init__(self, output_dir):
        self.output_dir = output_dir
        self.files = {}  # a dict: the claim order, and lookups without a second copy
        self._folders = set()

    def claim(self, relative):
        where = os.path.join(self.output_dir, relative)
        if relative in self.files:
            raise InputError(where, "two outputs would be written under this name (two inputs "
                             "of one name, or an input named like a report file); rename "
                             "the input")
        if relative in self._folders:
            raise InputError(where, "would be written both as a file and as a folder of other "
                             "outputs; rename the input")
        folders = []
        parent = os.path.dirname(relative)
        while parent:
            if parent in self.files:
                raise InputError(os.path.join(self.output_dir, parent),
                                 f"would be written both as a file and as the folder of "
                                 f"{relative}; rename the input")
            folders.append(parent)
            parent = os.path.dirname(parent)
        self.files[relative] = None
        self._folders.update(folders)


def _check_destinations(output_dir, written, protected, option):
    """Refuses destinations that are inputs, folders, under a file, or in a
    folder that cannot be written."""
    protected = {os.path.realpath(p) for p in protected}
    for relative in written:
        final = os.path.join(output_dir, relative)
        if os.path.realpath(final) in protected:
            raise InputError(final, "output would overwrite an input or a reference; "
                             f"choose another {option}")
        if os.path.isdir(final):
            raise InputError(final, "a folder is in the way of an output; move it or choose "
                             f"another {option}")
        parent = os.path.dirname(relative)
        while parent:
            folder = os.path.join(output_dir, parent)
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise InputError(folder, "a file is in the way of an output folder; move it or "
                                 f"choose another {option}")
            if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
                raise InputError(folder, "output folder is not writable")
            parent = os.path.dirname(parent)

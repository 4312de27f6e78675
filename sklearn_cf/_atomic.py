"""The one place for durable writes and for Ctrl-C around them.

* :func:`write_atomically`: a file holds either its old content or all of
  the new one (temporary file in the same folder, fsync, rename, fsync of the
  folder).
* :func:`open_atomically`: the same for a file written piece by piece (a
  stream of chunks, a Parquet writer): the caller writes to an open
  temporary file, renamed over the path only when the block ends without
  an error.
* :func:`fsync_folder`: make a rename in a folder durable.
* :class:`SigintWatch`: note whether a real Ctrl-C arrived (to tell it from
  skorch's ``EarlyStopping``).
* :func:`sigint_held`: hold Ctrl-C until a block of renames ends.
* :func:`fault_point`: called before every file operation of a durable
  write (create, write, fsync, rename, unlink), so that tests can stop a
  process at the k-th one and kill it (``SKLEARN_CF_PAUSE_AT``).
"""

import contextlib
import hashlib
import os
import signal
import stat
import tempfile
import threading
import time

__all__ = ["SigintWatch", "fault_point", "fsync_folder", "open_atomically",
           "sigint_held", "write_atomically", "write_atomically_bytes"]

#: ``K:MARKER``: the K-th :func:`fault_point` of the process writes the
#: operation to the file MARKER and waits there for a kill; ``count:MARKER``
#: only appends every operation to MARKER (to learn how many there are).
PAUSE_ENV = "SKLEARN_CF_PAUSE_AT"
_faults = {"count": 0, "config": None}


def fault_point(op, path):
    """Count a file operation; pause the process at the one ``PAUSE_ENV`` names.

    A test hook for fault injection: every durable write of the package
    calls it before each operation that changes the disk, so that a test can
    kill -9 a job at every such point in turn. Without the environment
    variable it costs a dictionary lookup.
    """
    config = _faults["config"]
    if config is None:
        value = os.environ.get(PAUSE_ENV, "")
        at, _, marker = value.partition(":")
        config = _faults["config"] = (at, marker) if marker else ()
    if not config:
        return
    at, marker = config
    _faults["count"] += 1
    line = f"{_faults['count']} {op} {os.fspath(path)}\n"
    if at == "count":
        with open(marker, "a", encoding="utf-8") as f:
            f.write(line)
        return
    if _faults["count"] == int(at):
        with open(marker, "w", encoding="utf-8") as f:
            f.write(line)
        while True:  # until the test kills the process
            time.sleep(60)


def _umask():
    try:  # Linux reports it without changing it
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere it can only be read by setting it; 0o022 rather than 0 in
    # the instant between, in case another thread creates a file then.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_file(path):
    """Delete a file (a fault point first); one already gone is no error."""
    fault_point("unlink", path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def file_sha256(path, block_bytes=16 << 20):
    """SHA-256 of a file's bytes, read in blocks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(block_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_folder(folder):
    """Make the rename durable where the OS lets a folder be synced."""
    fault_point("fsync", folder)
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path, parts):
    """Write the byte strings ``parts`` to ``path`` so that it holds either
    its previous content or all of them, never a part."""
    with open_atomically(path) as f:
        for part in parts:
            f.write(part)


@contextlib.contextmanager
def open_atomically(path):
    """A binary file to write ``path``'s new content to, piece by piece.

    The block writes to a temporary file in ``path``'s folder; when it ends
    without an error the file is fsynced and renamed over ``path`` (its
    mode kept, or the mode ``open`` would give a new file), and the folder
    fsynced. An error or Ctrl-C inside the block removes the temporary file
    and leaves ``path`` as it was: absent, or its previous content.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_cf._atomic import open_atomically
    >>> path = os.path.join(tempfile.mkdtemp(), "out.csv")
    >>> with open_atomically(path) as f:
    ...     _ = f.write(b"a,b\\n")
    ...     os.path.exists(path)  # not there until the block ends
    False
    >>> open(path).read()
    'a,b\\n'
    """
    # Through a symlink, as open(path, "wb") would write.
    target = os.path.realpath(os.fspath(path))
    folder, name = os.path.split(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)  # open() keeps it
    except FileNotFoundError:
        mode = 0o666 & ~_umask()  # what open() would create
    # The same folder, so the rename stays on one file system (atomic).
    fault_point("create", target)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        try:
            f = open(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            fault_point("write", tmp)
            yield f
            f.flush()
            fault_point("fsync", tmp)
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        fault_point("rename", target)
        os.replace(tmp, target)
    except BaseException:  # also Ctrl-C: never leave the temporary file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_folder(folder)


def write_atomically_bytes(path, data):
    """:func:`write_atomically` of one byte string."""
    write_atomically(path, [data])


@contextlib.contextmanager
def sigint_held():
    """Hold Ctrl-C until the block ends, so that a commit (a store's pointer
    rename) is never cut in half (a second Ctrl-C still stops at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = []

    def hold(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class SigintWatch:
    """Context manager noting whether a real SIGINT arrived.

    In the main thread, while a SIGINT handler that raises is installed
    (Python's default), the handler is wrapped so that ``seen`` becomes True
    before the original handler runs. Elsewhere (other threads, a handler
    that ignores SIGINT) nothing is installed and ``seen`` stays False.
    """

    def __init__(self):
        self.seen = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):  # SIG_IGN, SIG_DFL or set from C
            return self

        def handler(signum, frame):
            self.seen = True
            previous(signum, frame)

        self._previous = previous
        signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False

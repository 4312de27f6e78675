"""One writer at a time: an OS lock on a file, held from read to commit.

:class:`WriterLock` takes an exclusive, advisory lock on a file
(``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows). The OS releases
it when the process ends, however it ends (kill -9 included), so a crashed
job never leaves a stale lock behind. While it holds the lock, the process
writes who it is into the file, so that a second process that finds the lock
taken can name the holder.

Advisory means that only processes which ask for the lock are kept out:
every writer of a model store does. ``flock`` is honoured by local file
systems (ext4, xfs, btrfs, APFS, tmpfs) and by NFSv4 on Linux >= 2.6.12,
where the kernel emulates it with NFS byte-range locks; it is not reliable
on SMB/CIFS mounts, on NFSv3 without lockd, or on FUSE and object-store
mounts (s3fs, gcsfuse). See docs/reliability.md.
"""

import getpass
import json
import os
import socket
import sys
import time
from datetime import datetime, timezone

from .exceptions import StoreLockedError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

__all__ = ["WriterLock"]


def _try_lock(fd):
    """Take the lock without blocking; False when another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as exc:  # pragma: no cover - depends on the file system
        if exc.errno in (11, 13, 35):  # EAGAIN, EACCES, EWOULDBLOCK (macOS)
            return False
        raise
    return True


def _unlock(fd):
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _same_file(fd, path):
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder_text():
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not an error here
        user = "?"
    return json.dumps({
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": user,
        "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(sys.argv)[:300],
    })


def describe_holder(text):
    """One phrase naming the process in a lock file's ``text``."""
    try:
        info = json.loads(text)
        return (f"process {info['pid']} on {info['host']} (user {info['user']}, since "
                f"{info['since']}: {info['command'] or 'python'})")
    except (ValueError, KeyError, TypeError):
        return "another process (it has not written its name yet)"


class WriterLock:
    """An exclusive lock on ``path``, waiting at most ``wait`` seconds.

    Parameters
    ----------
    path : str
        The lock file (created when missing; its content is only the
        holder's name).
    wait : float, default=0
        Seconds to wait for another holder to finish; 0 tries once.

    Raises
    ------
    StoreLockedError
        From ``__enter__``, when the lock is still held by another process
        after ``wait`` seconds.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "LOCK")
    >>> with WriterLock(path):
    ...     pass
    """

    poll_seconds = 0.1

    def __init__(self, path, wait=0.0):
        self.path = os.fspath(path)
        self.wait = float(wait)
        self._fd = None

    def __enter__(self):
        deadline = time.monotonic() + self.wait
        while True:
            fd = self._locked_fd(deadline)
            # A holder may remove the lock file (an empty store it created
            # and gave up): a lock on the removed file locks nothing, so
            # lock the file now at the path instead.
            if _same_file(fd, self.path):
                break
            _unlock(fd)
            os.close(fd)
        try:
            text = _holder_text().encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, text, 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _locked_fd(self, deadline):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                    raise StoreLockedError(self.path, describe_holder(holder), self.wait)
                time.sleep(self.poll_seconds)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def __exit__(self, *exc_info):
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:  # pragma: no cover - a read-only lock file
            pass
        try:
            _unlock(fd)
        finally:
            os.close(fd)
        return False

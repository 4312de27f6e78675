"""Rows a strategy keeps, in memory-mapped ``.npy`` files (``memory_dir``).

Replay memory and joint retraining's history can be far larger than RAM.
With ``memory_dir`` they live in ``.npy`` files opened with ``np.memmap``:
the process reads the pages a batch needs, and those pages are the page
cache (reclaimable), not the process's own memory. Torch tensors are views
of the maps, so the training code is the same for RAM and disk.

The files are immutable (copy-on-write, as in git or an LSM tree): a file is
written once, in full, flushed and fsynced, and from then on only read
(opened with ``mmap_mode="r"``). A month writes its own new rows to new
files whose names hold a uuid4; it never changes, truncates or deletes a
file an earlier month wrote, so every checkpoint saved before it still
finds its files as they were. The only files ever deleted are those of a
month that failed, by its own undo. Which files a model references is
recorded in its checkpoint with their SHA-256 (``memory_files()`` lists
them): files no kept checkpoint references can be removed, and nothing
here removes them.

Each fitted sequence writes to its own subfolder of ``memory_dir``, named
when the sequence starts (``memory_dir`` made absolute then) and created at
its first write, so clones in a grid search and a refit never share files,
and loading a checkpoint creates nothing. The files stay after the
estimator is gone.
"""

import contextlib
import errno
import os
import uuid

import numpy as np
import torch

from .._atomic import fault_point, file_sha256, fsync_folder, remove_file
from .._data import as_tensor

__all__ = ["sequence_folder", "new_file_stem", "ensure_folder", "check_writable",
           "write_rows", "open_rows", "file_digest", "check_digest", "remove_files",
           "resolve_folder"]

#: Bytes copied per step when rows are written to disk: bounded memory.
CHUNK_BYTES = 64 << 20

#: errno values that mean "this folder cannot be written to".
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def sequence_folder(memory_dir, kind):
    """The absolute path of a new subfolder of ``memory_dir`` for one fitted
    sequence; nothing is created (see :func:`ensure_folder`).

    Examples
    --------
    >>> import os
    >>> folder = sequence_folder("cf-memory", "replay")
    >>> os.path.isabs(folder), os.path.basename(folder).startswith("replay-")
    (True, True)
    """
    return os.path.join(os.path.abspath(os.fspath(memory_dir)),
                        f"{kind}-{uuid.uuid4().hex[:12]}")


def new_file_stem(prefix):
    """A file name stem no other write uses: ``prefix`` and a uuid4."""
    return f"{prefix}-{uuid.uuid4().hex}"


def _not_writable(folder, exc):
    return ValueError(
        f"The memory folder {folder} is not writable ({exc.strerror or exc}): "
        "training writes this month's rows to new files there. A model loaded from a "
        "read-only copy can predict but not train; copy the folder somewhere writable "
        "and load with sklearn_cf.load(path, memory_dir=<that place>)."
    )


def ensure_folder(folder):
    """Create ``folder`` (and its parents) if it does not exist yet: a
    sequence's folder is made at its first write, never at load."""
    if os.path.isdir(folder):
        return
    missing = [folder]
    while not os.path.exists(os.path.dirname(missing[-1])):
        missing.append(os.path.dirname(missing[-1]))
    fault_point("create", folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        if exc.errno in _NOT_WRITABLE:
            raise _not_writable(folder, exc) from exc
        raise
    for created in reversed(missing):  # each new name, in the folder holding it
        fsync_folder(os.path.dirname(created))


def check_writable(folder):
    """Refuse, before a month trains, a memory folder that cannot take new
    files (a read-only copy): a ValueError naming it."""
    existing = folder
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            return
        existing = parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _not_writable(folder, OSError(errno.EACCES, "permission denied"))


def write_rows(path, rows, index=None):
    """Write ``rows`` (or ``rows[index]``) to a new ``.npy`` file in chunks of
    at most :data:`CHUNK_BYTES`, fsync it, and return a read-only tensor
    mapped on the file.

    ``index`` is an int64 array of row positions; the rows are read from
    ``rows`` chunk by chunk, so a memory-mapped ``rows`` is never copied
    whole. A write that fails removes the partial file.
    """
    if index is not None:
        index = np.asarray(index, dtype=np.int64)
    n = len(rows) if index is None else len(index)
    shape = (n, *rows.shape[1:])
    dtype = np.dtype(str(rows.dtype).replace("torch.", ""))
    row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    step = max(1, CHUNK_BYTES // max(row_bytes, 1))
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": shape}
    fault_point("create", path)
    try:
        f = open(path, "xb")
    except OSError as exc:
        if exc.errno in _NOT_WRITABLE:
            raise _not_writable(os.path.dirname(path), exc) from exc
        raise
    try:
        with f:
            fault_point("write", path)
            np.lib.format.write_array_header_1_0(f, header)
            for start in range(0, n, step):
                stop = min(start + step, n)
                chunk = _take(rows, slice(start, stop) if index is None
                              else index[start:stop])
                f.write(np.ascontiguousarray(chunk, dtype=dtype).data)
            f.flush()
            fault_point("fsync", path)
            os.fsync(f.fileno())
    except BaseException:  # also Ctrl-C: never leave a partial file
        with contextlib.suppress(OSError):
            remove_files([path])
        raise
    return open_rows(path)


def _take(rows, where):
    """``rows[where]`` as a numpy array, for a tensor or an array."""
    if isinstance(rows, torch.Tensor):
        rows = rows.detach()
        if not isinstance(where, slice):
            return rows.index_select(0, torch.from_numpy(where)).numpy()
        return rows[where].numpy()
    return np.asarray(rows[where])


def open_rows(path):
    """A read-only tensor mapped on an existing ``.npy`` file."""
    return as_tensor(np.load(path, mmap_mode="r"))


def file_digest(path):
    """SHA-256 of a file, read in chunks."""
    return file_sha256(path, CHUNK_BYTES)


def check_digest(path, expected):
    """Refuse a memory file that is missing or changed since it was recorded."""
    if not os.path.exists(path):
        raise ValueError(
            f"The memory file {path} is missing: a checkpoint whose strategy keeps its "
            "rows in memory_dir needs that folder as it was when it was saved "
            "(a folder that moved: sklearn_cf.load(path, memory_dir=<its new parent>))."
        )
    if file_digest(path) != expected:
        raise ValueError(
            f"The memory file {path} changed since the checkpoint was saved (its SHA-256 "
            "differs): it was modified, or the model kept training after the save. "
            "Load a checkpoint saved after the last month trained, or refit."
        )


def remove_files(paths):
    """Delete files (those of a month that failed); missing ones are skipped."""
    for path in paths:
        remove_file(path)


def resolve_folder(recorded):
    """The absolute folder a checkpoint's memory is read from. A relative
    one (recorded before folders were made absolute when a sequence starts)
    is taken from the current directory, as it was then."""
    return None if recorded is None else os.path.abspath(os.fspath(recorded))

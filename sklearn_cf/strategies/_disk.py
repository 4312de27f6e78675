"""Rows a strategy keeps, in memory-mapped ``.npy`` files (``memory_dir``).

Replay memory and joint retraining's history can be far larger than RAM.
With ``memory_dir`` they live in ``.npy`` files opened with ``np.memmap``:
the process reads the pages a batch needs, and those pages are the page
cache (reclaimable), not the process's own memory. Torch tensors are views
of the maps, so the training code is the same for RAM and disk.

Each fitted sequence writes to its own subfolder of ``memory_dir``, so clones
in a grid search and a refit never share files. The files stay after the
estimator is gone (a checkpoint refers to them): remove a subfolder when the
model that wrote it is no longer needed.
"""

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from .._data import as_tensor

__all__ = ["sequence_folder", "write_rows", "allocate_rows", "open_rows", "file_digest",
           "check_digest", "remove_files"]

#: Rows copied per step when a month is written to disk: bounded memory.
CHUNK_BYTES = 64 << 20


def sequence_folder(memory_dir, kind):
    """A new, empty subfolder of ``memory_dir`` for one fitted sequence."""
    folder = Path(memory_dir) / f"{kind}-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def _chunk_rows(row_bytes):
    return max(1, CHUNK_BYTES // max(row_bytes, 1))


def write_rows(path, rows):
    """Write a tensor to a new ``.npy`` file in chunks, flush it, and return a
    read-only tensor mapped on the file."""
    data = rows.detach().cpu()
    shape = tuple(data.shape)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=data.numpy().dtype, shape=shape)
    step = _chunk_rows(out.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    for start in range(0, shape[0], step):
        out[start:start + step] = data[start:start + step].numpy()
    out.flush()
    del out
    return open_rows(path)


def allocate_rows(path, shape, dtype):
    """A new zero-filled ``.npy`` file of ``shape`` (sparse on most file
    systems until written), as a writable tensor and its map."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
    return as_tensor(array), array


def open_rows(path, writable=False):
    """A tensor mapped on an existing ``.npy`` file (and the map, if writable)."""
    array = np.load(path, mmap_mode="r+" if writable else "r")
    return (as_tensor(array), array) if writable else as_tensor(array)


def file_digest(path):
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(path, expected):
    """Refuse a memory file that is missing or changed since it was recorded."""
    if not os.path.exists(path):
        raise ValueError(
            f"The memory file {path} is missing: a checkpoint whose strategy keeps its "
            "rows in memory_dir needs that folder as it was when it was saved."
        )
    if file_digest(path) != expected:
        raise ValueError(
            f"The memory file {path} changed since the checkpoint was saved (its SHA-256 "
            "differs): it was modified, or the model kept training after the save. "
            "Load a checkpoint saved after the last month trained, or refit."
        )


def remove_files(paths):
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

"""Where replay keeps past rows: all of them, or a uniform reservoir.

A month that fails after its rows entered memory must leave the memory as it
was, without a copy of the memory (it can be tens of GB): each memory keeps
an undo log while a month is open (:meth:`begin` ... :meth:`undo` or
:meth:`end`). Adding to :class:`AllRowsMemory` only appends, so its log is a
length; :class:`ReservoirMemory` overwrites slots, so its log holds the old
contents of the slots a month wrote (at most the month's rows, never more
than the memory's capacity).

With a ``directory`` (``memory_dir``), rows live in memory-mapped ``.npy``
files there (:mod:`._disk`), and the undo log of a reservoir is written to
journal files in the same folder, so neither the memory nor its undo log has
to fit in RAM.
"""

import os

import numpy as np
import torch

from ._disk import (
    allocate_rows,
    check_digest,
    file_digest,
    open_rows,
    remove_files,
    write_rows,
)

__all__ = ["AllRowsMemory", "ReservoirMemory", "make_memory", "memory_from_state"]


class AllRowsMemory:
    """Every past training row, one chunk per month (no copy on sampling).

    Examples
    --------
    >>> import torch
    >>> memory = AllRowsMemory()
    >>> memory.add(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), rng=None)
    >>> memory.add(torch.ones(2, 2), torch.ones(2, dtype=torch.long), rng=None)
    >>> len(memory), [len(y) for _, y in memory.sources()]
    (5, [3, 2])
    """

    def __init__(self, directory=None):
        self.directory = None if directory is None else os.fspath(directory)
        self.chunks = []
        self.files = []  # with a directory: per chunk, [X name, y name, X sha, y sha]

    def add(self, X, y, rng):
        if self.directory is None:
            self.chunks.append((X.clone(), y.clone()))
            return
        k = len(self.chunks)
        names = [f"chunk{k:05d}.X.npy", f"chunk{k:05d}.y.npy"]
        paths = [os.path.join(self.directory, name) for name in names]
        chunk = _write_pair(paths, X, y)
        # The digests are computed when a checkpoint first needs them (the
        # files never change), not on every month's critical path.
        self.files.append(names + [None, None])
        self.chunks.append(chunk)

    def begin(self):
        """Open a month's undo log; returns it (see the module docstring)."""
        return len(self.chunks)

    def undo(self, log):
        """Return to the state at :meth:`begin` (removing the files added)."""
        for names in self.files[log:]:
            remove_files(os.path.join(self.directory, name) for name in names[:2])
        del self.chunks[log:]
        del self.files[log:]

    def end(self, log):
        """The month stands: close its undo log."""

    def sources(self):
        return list(self.chunks)

    def state_dict(self):
        if self.directory is not None:
            for names in self.files:
                if names[2] is None:
                    names[2:] = [file_digest(os.path.join(self.directory, n)) for n in names[:2]]
            return {"kind": "all", "directory": self.directory,
                    "files": [list(names) for names in self.files]}
        return {"kind": "all", "chunks": [list(chunk) for chunk in self.chunks]}

    def __len__(self):
        return sum(len(y) for _, y in self.chunks)


class ReservoirMemory:
    """A uniform sample of at most ``capacity`` rows of everything seen.

    Vitter's algorithm R: the t-th row seen (0-based) enters a full memory
    with probability capacity / (t + 1), replacing a slot chosen uniformly,
    so after any number of rows every row seen is in memory with the same
    probability. Memory and cost per month stay bounded.

    Parameters
    ----------
    capacity : int
        Maximum number of rows kept.

    Examples
    --------
    >>> import numpy as np, torch
    >>> memory = ReservoirMemory(capacity=4)
    >>> rng = np.random.default_rng(0)
    >>> for month in range(3):
    ...     X = torch.full((10, 1), float(month))
    ...     memory.add(X, torch.zeros(10, dtype=torch.long), rng)
    >>> len(memory), memory.n_seen
    (4, 30)

    References
    ----------
    J. S. Vitter, "Random sampling with a reservoir", ACM TOMS 11(1), 1985.
    """

    _NAMES = ("reservoir.X.npy", "reservoir.y.npy")

    def __init__(self, capacity, directory=None):
        self.capacity = int(capacity)
        self.directory = None if directory is None else os.fspath(directory)
        self.X = None
        self.y = None
        self.size = 0
        self.n_seen = 0
        self._maps = ()
        self._log = None

    def _paths(self, names):
        return [os.path.join(self.directory, name) for name in names]

    def begin(self):
        """Open a month's undo log; returns it (see the module docstring)."""
        self._log = {"size": self.size, "n_seen": self.n_seen,
                     "allocated": self.X is not None, "writes": []}
        return self._log

    def undo(self, log):
        """Return to the state at :meth:`begin`: old slot contents back, in
        reverse order of writing."""
        for slots, old_X, old_y in reversed(log["writes"]):
            if isinstance(old_X, str):  # journal files on disk
                self.X[slots] = open_rows(old_X)
                self.y[slots] = open_rows(old_y)
            else:
                self.X[slots] = old_X
                self.y[slots] = old_y
        self._flush()
        self._drop_journal(log)
        if not log["allocated"]:
            self.X = self.y = None
            self._maps = ()
            if self.directory is not None:
                remove_files(self._paths(self._NAMES))
        self.size, self.n_seen = log["size"], log["n_seen"]
        self._log = None

    def end(self, log):
        """The month stands: drop its undo log."""
        self._flush()
        self._drop_journal(log)
        self._log = None

    def _drop_journal(self, log):
        remove_files(path for _, old_X, old_y in log["writes"] if isinstance(old_X, str)
                     for path in (old_X, old_y))

    def _flush(self):
        for array in self._maps:
            array.flush()

    def _write(self, slots, X, y):
        """Write rows to slots (a slice or an index tensor), logging the
        slots' old contents while a month is open (on disk with a directory)."""
        log = self._log
        if log is not None and log["allocated"]:
            if self.directory is None:
                log["writes"].append((slots, self.X[slots].clone(), self.y[slots].clone()))
            else:
                k = len(log["writes"])
                old_X, old_y = self._paths([f"journal{k:05d}.X.npy", f"journal{k:05d}.y.npy"])
                _write_pair((old_X, old_y), self.X[slots], self.y[slots])
                log["writes"].append((slots, old_X, old_y))
        self.X[slots] = X
        self.y[slots] = y

    def _allocate(self, X, y):
        shape_X, shape_y = (self.capacity, *X.shape[1:]), (self.capacity, *y.shape[1:])
        if self.directory is None:
            self.X = torch.empty(shape_X, dtype=X.dtype)
            self.y = torch.empty(shape_y, dtype=y.dtype)
            return
        path_X, path_y = self._paths(self._NAMES)
        self.X, map_X = allocate_rows(path_X, shape_X, X.numpy().dtype)
        self.y, map_y = allocate_rows(path_y, shape_y, y.numpy().dtype)
        self._maps = (map_X, map_y)

    def add(self, X, y, rng):
        n = len(y)
        if self.X is None:
            self._allocate(X, y)
        # Rows that fit while the memory is not full go in directly.
        n_direct = min(n, self.capacity - self.size)
        self._write(slice(self.size, self.size + n_direct), X[:n_direct], y[:n_direct])
        self.size += n_direct
        # Each later row t draws j uniform in [0, t]; j < capacity replaces slot j.
        t = self.n_seen + np.arange(n_direct, n)
        slots = np.floor(rng.random(len(t)) * (t + 1)).astype(np.int64)
        accepted = np.flatnonzero(slots < self.capacity)
        if len(accepted):
            # Row order matters when two rows hit one slot: the later one wins.
            rev_slots = slots[accepted][::-1]
            _, first = np.unique(rev_slots, return_index=True)
            winners = accepted[::-1][first]
            rows = torch.from_numpy(n_direct + winners)
            target = torch.from_numpy(slots[winners])
            self._write(target, X[rows], y[rows])
        self.n_seen += n

    def state_dict(self):
        state = {"kind": "reservoir", "capacity": self.capacity, "size": self.size,
                 "n_seen": self.n_seen}
        if self.directory is None:
            return dict(state, X=self.X, y=self.y)
        files = None
        if self.X is not None:
            self._flush()
            files = list(self._NAMES) + [file_digest(p) for p in self._paths(self._NAMES)]
        return dict(state, directory=self.directory, files=files)

    def sources(self):
        if self.size == 0:
            return []
        return [(self.X[: self.size], self.y[: self.size])]

    def __len__(self):
        return self.size


def _write_pair(paths, X, y):
    """Write X and y to two new files; a write that fails (a full disk)
    removes both, so a rollback finds only the files it knows about."""
    try:
        return write_rows(paths[0], X), write_rows(paths[1], y)
    except BaseException:
        remove_files(paths)
        raise


def make_memory(memory_size, directory=None):
    """All past rows for ``memory_size=None``, else a reservoir of that size;
    in RAM, or in memory-mapped files in ``directory``."""
    if memory_size is None:
        return AllRowsMemory(directory)
    return ReservoirMemory(memory_size, directory)


def memory_from_state(state):
    """Rebuild a memory from its ``state_dict()``; files on disk are checked
    against the digests recorded then, and refused if they changed."""
    directory = state.get("directory")
    if state["kind"] == "all":
        memory = AllRowsMemory(directory)
        if directory is None:
            memory.chunks = [tuple(chunk) for chunk in state["chunks"]]
            return memory
        for names in state["files"]:
            paths = [os.path.join(directory, name) for name in names[:2]]
            for path, digest in zip(paths, names[2:]):
                check_digest(path, digest)
            memory.chunks.append((open_rows(paths[0]), open_rows(paths[1])))
            memory.files.append(list(names))
        return memory
    memory = ReservoirMemory(state["capacity"], directory)
    if directory is None:
        memory.X, memory.y = state["X"], state["y"]
    elif state["files"] is not None:
        names = state["files"]
        paths = memory._paths(names[:2])
        for path, digest in zip(paths, names[2:]):
            check_digest(path, digest)
        (memory.X, map_X), (memory.y, map_y) = (open_rows(p, writable=True) for p in paths)
        memory._maps = (map_X, map_y)
    memory.size, memory.n_seen = state["size"], state["n_seen"]
    return memory

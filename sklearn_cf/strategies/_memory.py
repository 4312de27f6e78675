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

__all__ = ["AllRowsMemory", "ReservoirMemory"]


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
        # Per chunk: its rows' sample weights, or None when they all weigh 1.
        self.chunk_weights = []
        # With a directory, per chunk: [X name, y name, X sha, y sha] and,
        # for a weighted chunk, [w name, w sha] after them.
        self.files = []

    def add(self, X, y, rng, sample_weight=None):
        if self.directory is None:
            self.chunks.append((X.clone(), y.clone()))
            self.chunk_weights.append(None if sample_weight is None else sample_weight.clone())
            return
        k = len(self.chunks)
        names = [f"chunk{k:05d}.X.npy", f"chunk{k:05d}.y.npy"]
        if sample_weight is not None:
            names.append(f"chunk{k:05d}.w.npy")
        paths = [os.path.join(self.directory, name) for name in names]
        written = _write_all(paths, [X, y] if sample_weight is None else [X, y, sample_weight])
        # The digests are computed when a checkpoint first needs them (the
        # files never change), not on every month's critical path.
        entry = names[:2] + [None, None]
        if sample_weight is not None:
            entry += [names[2], None]
        self.files.append(entry)
        self.chunks.append(tuple(written[:2]))
        self.chunk_weights.append(written[2] if sample_weight is not None else None)

    def begin(self):
        """Open a month's undo log; returns it (see the module docstring)."""
        return len(self.chunks)

    def undo(self, log):
        """Return to the state at :meth:`begin` (removing the files added)."""
        for names in self.files[log:]:
            remove_files(os.path.join(self.directory, name) for name in _file_names(names))
        del self.chunks[log:]
        del self.chunk_weights[log:]
        del self.files[log:]

    def end(self, log):
        """The month stands: close its undo log."""

    def sources(self):
        return list(self.chunks)

    def weights(self):
        """Sample weights of each source of :meth:`sources` (None for a
        source whose rows weigh 1), or None when no row has a weight."""
        if all(w is None for w in self.chunk_weights):
            return None
        return list(self.chunk_weights)

    def state_dict(self):
        if self.directory is not None:
            for names in self.files:
                if names[2] is None:
                    names[2:4] = [file_digest(os.path.join(self.directory, n))
                                  for n in names[:2]]
                if len(names) > 4 and names[5] is None:
                    names[5] = file_digest(os.path.join(self.directory, names[4]))
            return {"kind": "all", "directory": self.directory,
                    "files": [list(names) for names in self.files]}
        state = {"kind": "all", "chunks": [list(chunk) for chunk in self.chunks]}
        if self.weights() is not None:
            state["weights"] = list(self.chunk_weights)
        return state

    @classmethod
    def from_state(cls, state):
        """Rebuild a memory from its :meth:`state_dict`; files on disk are
        checked against the digests recorded then, and refused if they changed."""
        directory = state.get("directory")
        memory = cls(directory)
        if directory is None:
            memory.chunks = [tuple(chunk) for chunk in state["chunks"]]
            memory.chunk_weights = list(state.get("weights") or [None] * len(memory.chunks))
            return memory
        for names in state["files"]:
            digests = names[2:4] + names[5:6]
            paths = [os.path.join(directory, name) for name in _file_names(names)]
            for path, digest in zip(paths, digests):
                check_digest(path, digest)
            memory.chunks.append((open_rows(paths[0]), open_rows(paths[1])))
            memory.chunk_weights.append(open_rows(paths[2]) if len(paths) > 2 else None)
            memory.files.append(list(names))
        return memory

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
    _WEIGHTS = "reservoir.w.npy"

    def __init__(self, capacity, directory=None):
        self.capacity = int(capacity)
        self.directory = None if directory is None else os.fspath(directory)
        self.X = None
        self.y = None
        # The slots' sample weights: None until a weighted row arrives (the
        # rows already kept then weigh 1).
        self.w = None
        self.size = 0
        self.n_seen = 0
        self._maps = ()
        self._log = None

    def _paths(self, names):
        return [os.path.join(self.directory, name) for name in names]

    def begin(self):
        """Open a month's undo log; returns it (see the module docstring)."""
        self._log = {"size": self.size, "n_seen": self.n_seen,
                     "allocated": self.X is not None, "weighted": self.w is not None,
                     "writes": []}
        return self._log

    def undo(self, log):
        """Return to the state at :meth:`begin`: old slot contents back, in
        reverse order of writing."""
        for slots, *old in reversed(log["writes"]):
            if isinstance(old[0], str):  # journal files on disk
                old = [open_rows(path) for path in old]
            self.X[slots] = old[0]
            self.y[slots] = old[1]
            if len(old) > 2:
                self.w[slots] = old[2]
        self._flush()
        self._drop_journal(log)
        if not log["weighted"] and self.w is not None:
            self.w = None
            self._maps = self._maps[:2]
            if self.directory is not None:
                remove_files(self._paths([self._WEIGHTS]))
        if not log["allocated"]:
            self.X = self.y = self.w = None
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
        remove_files(path for _, *old in log["writes"] if isinstance(old[0], str)
                     for path in old)

    def _flush(self):
        for array in self._maps:
            array.flush()

    def _write(self, slots, X, y, w=None):
        """Write rows to slots (a slice or an index tensor), logging the
        slots' old contents while a month is open (on disk with a directory)."""
        log = self._log
        if log is not None and log["allocated"]:
            old = [self.X[slots], self.y[slots]]
            if self.w is not None:
                old.append(self.w[slots])
            if self.directory is None:
                log["writes"].append((slots, *(t.clone() for t in old)))
            else:
                k = len(log["writes"])
                paths = self._paths([f"journal{k:05d}.{field}.npy" for field in "Xyw"])
                paths = paths[:len(old)]
                _write_all(paths, old)
                log["writes"].append((slots, *paths))
        self.X[slots] = X
        self.y[slots] = y
        if self.w is not None:
            self.w[slots] = 1.0 if w is None else w

    def _allocate_weights(self):
        """Start keeping sample weights: every row kept so far weighs 1."""
        if self.directory is None:
            self.w = torch.ones(self.capacity, dtype=torch.float32)
            return
        self.w, map_w = allocate_rows(self._paths([self._WEIGHTS])[0], (self.capacity,),
                                      np.float32)
        self.w.fill_(1.0)
        self._maps = (*self._maps[:2], map_w)

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

    def add(self, X, y, rng, sample_weight=None):
        n = len(y)
        if self.X is None:
            self._allocate(X, y)
        if sample_weight is not None and self.w is None:
            self._allocate_weights()
        w = sample_weight
        # Rows that fit while the memory is not full go in directly.
        n_direct = min(n, self.capacity - self.size)
        self._write(slice(self.size, self.size + n_direct), X[:n_direct], y[:n_direct],
                    None if w is None else w[:n_direct])
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
            self._write(target, X[rows], y[rows], None if w is None else w[rows])
        self.n_seen += n

    def state_dict(self):
        state = {"kind": "reservoir", "capacity": self.capacity, "size": self.size,
                 "n_seen": self.n_seen}
        if self.directory is None:
            state = dict(state, X=self.X, y=self.y)
            if self.w is not None:
                state["w"] = self.w
            return state
        files = None
        if self.X is not None:
            self._flush()
            files = list(self._NAMES) + [file_digest(p) for p in self._paths(self._NAMES)]
            if self.w is not None:
                files += [self._WEIGHTS, file_digest(self._paths([self._WEIGHTS])[0])]
        return dict(state, directory=self.directory, files=files)

    def load_state(self, state):
        """Take the rows of a :meth:`state_dict` into this empty memory (built
        with the state's capacity and directory); files on disk are checked
        against the digests recorded then, and refused if they changed."""
        if self.directory is None:
            self.X, self.y, self.w = state["X"], state["y"], state.get("w")
        elif state["files"] is not None:
            names = state["files"]
            paths = self._paths(names[:2] + names[4:5])
            for path, digest in zip(paths, names[2:4] + names[5:6]):
                check_digest(path, digest)
            opened = [open_rows(p, writable=True) for p in paths]
            self.X, self.y = opened[0][0], opened[1][0]
            if len(opened) > 2:
                self.w = opened[2][0]
            self._maps = tuple(array for _, array in opened)
        self.size, self.n_seen = state["size"], state["n_seen"]

    def sources(self):
        if self.size == 0:
            return []
        return [(self.X[: self.size], self.y[: self.size])]

    def weights(self):
        """Sample weights of the rows of :meth:`sources`, or None when no
        row has a weight."""
        if self.size == 0 or self.w is None:
            return None
        return [self.w[: self.size]]

    def __len__(self):
        return self.size


def _write_all(paths, tensors):
    """Write tensors to new files; a write that fails (a full disk) removes
    them all, so a rollback finds only the files it knows about."""
    try:
        return [write_rows(path, t) for path, t in zip(paths, tensors)]
    except BaseException:
        remove_files(paths)
        raise


def _file_names(entry):
    """The file names of an AllRowsMemory ``files`` entry (2 or 3)."""
    return entry[:2] + entry[4:5]

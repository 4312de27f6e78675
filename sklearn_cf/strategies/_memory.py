"""Where replay keeps past rows: all of them, or a uniform reservoir.

A month that fails after its rows entered memory must leave the memory as it
was, without a copy of the memory (it can be tens of GB): each memory keeps
an undo log while a month is open (:meth:`begin` ... :meth:`undo` or
:meth:`end`). Adding to :class:`AllRowsMemory` only appends, so its log is a
length; :class:`ReservoirMemory` overwrites slots, so its log holds the old
contents of the slots a month wrote (at most the month's rows, never more
than the memory's capacity).
"""

import numpy as np
import torch

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

    def __init__(self):
        self.chunks = []

    def add(self, X, y, rng):
        self.chunks.append((X.clone(), y.clone()))

    def begin(self):
        """Open a month's undo log; returns it (see the module docstring)."""
        return len(self.chunks)

    def undo(self, log):
        """Return to the state at :meth:`begin`."""
        del self.chunks[log:]

    def end(self, log):
        """The month stands: close its undo log."""

    def sources(self):
        return list(self.chunks)

    def state_dict(self):
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

    def __init__(self, capacity):
        self.capacity = int(capacity)
        self.X = None
        self.y = None
        self.size = 0
        self.n_seen = 0
        self._log = None

    def begin(self):
        """Open a month's undo log; returns it (see the module docstring)."""
        self._log = {"size": self.size, "n_seen": self.n_seen,
                     "allocated": self.X is not None, "writes": []}
        return self._log

    def undo(self, log):
        """Return to the state at :meth:`begin`: old slot contents back, in
        reverse order of writing."""
        for slots, old_X, old_y in reversed(log["writes"]):
            self.X[slots] = old_X
            self.y[slots] = old_y
        if not log["allocated"]:
            self.X = self.y = None
        self.size, self.n_seen = log["size"], log["n_seen"]
        self._log = None

    def end(self, log):
        """The month stands: drop its undo log."""
        self._log = None

    def _write(self, slots, X, y):
        """Write rows to slots (a slice or an index tensor), logging the
        slots' old contents while a month is open."""
        if self._log is not None and self._log["allocated"]:
            self._log["writes"].append((slots, self.X[slots].clone(), self.y[slots].clone()))
        self.X[slots] = X
        self.y[slots] = y

    def add(self, X, y, rng):
        n = len(y)
        if self.X is None:
            self.X = torch.empty((self.capacity, *X.shape[1:]), dtype=X.dtype)
            self.y = torch.empty((self.capacity, *y.shape[1:]), dtype=y.dtype)
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
        return {"kind": "reservoir", "capacity": self.capacity, "X": self.X, "y": self.y,
                "size": self.size, "n_seen": self.n_seen}

    def sources(self):
        if self.size == 0:
            return []
        return [(self.X[: self.size], self.y[: self.size])]

    def __len__(self):
        return self.size


def make_memory(memory_size):
    """All past rows for ``memory_size=None``, else a reservoir of that size."""
    if memory_size is None:
        return AllRowsMemory()
    return ReservoirMemory(memory_size)


def memory_from_state(state):
    """Rebuild a memory from its ``state_dict()``."""
    if state["kind"] == "all":
        memory = AllRowsMemory()
        memory.chunks = [tuple(chunk) for chunk in state["chunks"]]
        return memory
    memory = ReservoirMemory(state["capacity"])
    memory.X, memory.y = state["X"], state["y"]
    memory.size, memory.n_seen = state["size"], state["n_seen"]
    return memory

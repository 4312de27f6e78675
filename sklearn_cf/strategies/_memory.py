"""Where replay keeps past rows: all of them, or a uniform reservoir."""

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

    def add(self, X, y, rng):
        n = len(y)
        if self.X is None:
            self.X = torch.empty((self.capacity, *X.shape[1:]), dtype=X.dtype)
            self.y = torch.empty((self.capacity, *y.shape[1:]), dtype=y.dtype)
        # Rows that fit while the memory is not full go in directly.
        n_direct = min(n, self.capacity - self.size)
        self.X[self.size : self.size + n_direct] = X[:n_direct]
        self.y[self.size : self.size + n_direct] = y[:n_direct]
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
            self.X[target] = X[rows]
            self.y[target] = y[rows]
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

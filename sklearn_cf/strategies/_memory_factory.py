"""The one place that chooses a memory class: for a new memory from its
settings, and for a memory rebuilt from a checkpoint's state.

It sits above :mod:`._memory` (uniform memories) and :mod:`._class_balanced`
(CBRS, a subclass of the reservoir), so that neither imports the other's
module back.
"""

from ._class_balanced import ClassBalancedMemory, check_memory_policy
from ._disk import resolve_folder
from ._memory import AllRowsMemory, ReservoirMemory

__all__ = ["make_memory", "memory_from_state", "memory_with_rows"]


def make_memory(memory_size, directory=None, policy="reservoir"):
    """A new, empty memory of past rows.

    Parameters
    ----------
    memory_size : int or None
        None keeps every past row (:class:`~._memory.AllRowsMemory`); an
        int keeps at most that many.
    directory : path-like or None, default=None
        None: rows in RAM; a folder: memory-mapped files there, written
        once and never changed (created at the first write).
    policy : {"reservoir", "class_balanced"}, default="reservoir"
        Which rows a bounded memory keeps: a uniform reservoir sample, or a
        class-balanced one (CBRS, :class:`~._class_balanced.ClassBalancedMemory`).

    Returns
    -------
    AllRowsMemory, ReservoirMemory or ClassBalancedMemory

    Examples
    --------
    >>> type(make_memory(None)).__name__, type(make_memory(10)).__name__
    ('AllRowsMemory', 'ReservoirMemory')
    >>> type(make_memory(10, policy="class_balanced")).__name__
    'ClassBalancedMemory'
    """
    check_memory_policy(policy, memory_size)
    if memory_size is None:
        return AllRowsMemory(directory)
    if policy == "class_balanced":
        return ClassBalancedMemory(memory_size, directory)
    return ReservoirMemory(memory_size, directory)


def memory_from_state(state):
    """Rebuild a memory from its ``state_dict()``; files on disk are opened
    read-only (nothing is created or written), checked against the digests
    recorded then, and refused if they changed.

    Examples
    --------
    >>> import numpy as np, torch
    >>> memory = make_memory(4)
    >>> memory.add(torch.zeros(6, 2), torch.zeros(6, dtype=torch.long), np.random.default_rng(0))
    >>> rebuilt = memory_from_state(memory.state_dict())
    >>> type(rebuilt).__name__, len(rebuilt), rebuilt.n_seen
    ('ReservoirMemory', 4, 6)
    """
    if state["kind"] == "all":
        return AllRowsMemory.from_state(state)
    directory = resolve_folder(state.get("directory"))
    if state.get("policy", "reservoir") == "class_balanced":
        memory = ClassBalancedMemory(state["capacity"], directory)
        memory.load_counts(state)
    else:
        memory = ReservoirMemory(state["capacity"], directory)
    memory.load_state(state)
    return memory


def memory_with_rows(memory, transform):
    """A new memory of the same kind, capacity, policy and folder, holding
    ``transform(X)`` in place of every row block ``X`` of ``memory``, with
    the same labels, weights, slots and counts.

    ``memory`` itself is not changed (a month's undo log of it stays valid);
    on disk the new memory's rows are written to new files. It costs one
    pass over the rows: all past rows for a memory without ``memory_size``.

    Parameters
    ----------
    memory : AllRowsMemory, ReservoirMemory or ClassBalancedMemory
    transform : callable
        ``Tensor (n, width) -> Tensor (n, new_width)``, row by row.

    Examples
    --------
    >>> import numpy as np, torch
    >>> memory = make_memory(4)
    >>> memory.add(torch.zeros(6, 2), torch.arange(6), np.random.default_rng(0))
    >>> wider = memory_with_rows(memory, lambda X: torch.cat([X, X + 1], dim=1))
    >>> wider.X[: len(wider)].shape, bool(torch.equal(wider.y, memory.y)), wider.n_seen
    (torch.Size([4, 4]), True, 6)
    """
    if isinstance(memory, AllRowsMemory):
        new = AllRowsMemory(memory.directory)
        for (X, y), w in zip(memory.chunks, memory.chunk_weights):
            new.add(transform(X), y, None, sample_weight=w)
        return new
    new = type(memory)(memory.capacity, memory.directory)
    if isinstance(memory, ClassBalancedMemory):
        new.class_seen = memory.class_seen.copy()
        new.class_full = memory.class_full.copy()
    n = memory.size
    if n:
        X = transform(memory.X[:n])
        y = memory.y[:n]
        w = None if memory.w is None else memory.w[:n]
        new._prepare(X, y, w)
        new._store([(slice(0, n), slice(0, n))], X, y, w)
        new.size = n
    new.n_seen = memory.n_seen
    return new

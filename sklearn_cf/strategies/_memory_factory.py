"""The one place that chooses a memory class: for a new memory from its
settings, and for a memory rebuilt from a checkpoint's state.

It sits above :mod:`._memory` (uniform memories) and :mod:`._class_balanced`
(CBRS, a subclass of the reservoir), so that neither imports the other's
module back.
"""

from ._class_balanced import ClassBalancedMemory, check_memory_policy
from ._disk import resolve_folder
from ._memory import AllRowsMemory, ReservoirMemory

__all__ = ["make_memory", "memory_from_state"]


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

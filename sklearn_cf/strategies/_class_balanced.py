"""A class-balanced reservoir: rare classes keep their place in memory.

A uniform reservoir keeps each class in proportion to the stream, so a class
that makes up 1% of the rows (malware, in a stream of clean files) holds
about 1% of the memory. Class-balancing reservoir sampling (CBRS) instead
lets every class grow until it is as large as the largest class, and then
samples uniformly *within* each class.
"""

import numpy as np
import torch

from ._memory import ReservoirMemory

__all__ = ["ClassBalancedMemory", "MEMORY_POLICIES", "check_memory_policy"]

#: The values of ``memory_policy``.
MEMORY_POLICIES = ("reservoir", "class_balanced")


def check_memory_policy(memory_policy, memory_size):
    """Refuse a memory policy that cannot be built (before anything trains)."""
    if memory_policy not in MEMORY_POLICIES:
        raise ValueError(
            f"Unknown memory_policy={memory_policy!r}. Valid values: "
            f"{', '.join(map(repr, MEMORY_POLICIES))}."
        )
    if memory_policy == "class_balanced" and memory_size is None:
        raise ValueError(
            "memory_policy='class_balanced' needs a capacity, but memory_size=None "
            "(keep every past row, so there is nothing to balance). Set memory_size to "
            "the number of rows to keep, e.g. memory_size=10000, or use "
            "memory_policy='reservoir'."
        )


class ClassBalancedMemory(ReservoirMemory):
    """At most ``capacity`` rows, every class as large as the largest allows.

    Class-balancing reservoir sampling (CBRS). While the memory is not full
    every row is stored. Once it is full, a row of class ``c``:

    * if ``c`` is not *full*, replaces a row drawn uniformly from the rows
      of the largest classes in memory (those with the most rows);
    * if ``c`` is full, replaces a row drawn uniformly from the rows of
      class ``c`` in memory, with probability ``m_c / n_c`` (``m_c`` rows of
      ``c`` in memory, ``n_c`` rows of ``c`` seen so far, this one included).

    A class is full once it is, or has been at any step since the memory
    filled, one of the largest classes. So a rare class keeps every one of
    its rows until it is as large as the largest class, and from then on
    each class is a uniform sample of its own rows (Vitter's algorithm R
    within the class).

    Only the choice of slots differs from :class:`ReservoirMemory`: rows,
    sample weights, files in ``directory`` (copy-on-write segments and a
    slot index) and the undo log of a month are the reservoir's. The rows seen of each class and the classes that are
    full are part of the state (checkpoints, and a month's undo log).

    Parameters
    ----------
    capacity : int
        Maximum number of rows kept.
    directory : path-like or None, default=None
        None: in RAM; a folder: in memory-mapped ``.npy`` files there.

    Attributes
    ----------
    class_seen : ndarray of int64
        Rows seen of each class index.
    class_full : ndarray of bool
        Which classes are full.

    Notes
    -----
    Chrysakis & Moens, "Online Continual Learning from Imbalanced Data",
    ICML 2020 (CBRS, Algorithm 1 and the definition of a full class in its
    section 4). The random draws: after the memory is full, every row
    draws ``u, v`` (two uniforms in [0, 1)); a full class's row is kept if
    ``u < m_c / n_c`` and replaces the ``floor(v * m_c)``-th slot (in slot
    order) holding class ``c``; a row of a class that is not full replaces
    the ``floor(v * k)``-th of the ``k`` slots holding one of the largest
    classes. Where the paper picks "a random instance of the largest class"
    and two classes tie, this draws among the rows of all of them.

    Only rows of classes that are not full change the class counts, and
    there are at most about ``capacity`` of them over the memory's life, so
    rows are processed in vectorized runs between them.

    Examples
    --------
    A stream with 1% positives: the reservoir keeps about 1% of positives,
    the class-balanced memory keeps every one of them (fewer than
    ``capacity / 2``):

    >>> import numpy as np, torch
    >>> y = torch.from_numpy((np.arange(20000) % 100 == 0).astype(np.int64))
    >>> X = torch.zeros(20000, 1)
    >>> balanced = ClassBalancedMemory(capacity=1000)
    >>> balanced.add(X, y, np.random.default_rng(0))
    >>> int(balanced.y[:len(balanced)].sum()), int(y.sum())
    (200, 200)
    >>> reservoir = ReservoirMemory(capacity=1000)
    >>> reservoir.add(X, y, np.random.default_rng(0))
    >>> int(reservoir.y[:len(reservoir)].sum()) < 30
    True
    """

    def __init__(self, capacity, directory=None):
        super().__init__(capacity, directory)
        self.class_seen = np.zeros(0, dtype=np.int64)
        self.class_full = np.zeros(0, dtype=bool)

    # -- The counts follow a month's undo log ---------------------------------
    def begin(self):
        log = super().begin()
        log["class_seen"] = self.class_seen.copy()
        log["class_full"] = self.class_full.copy()
        return log

    def undo(self, log):
        super().undo(log)
        self.class_seen, self.class_full = log["class_seen"], log["class_full"]

    def state_dict(self):
        # kind "reservoir": the layout of the rows is the reservoir's.
        return dict(super().state_dict(), policy="class_balanced",
                    class_seen=self.class_seen.tolist(), class_full=self.class_full.tolist())

    def load_counts(self, state):
        """Restore the counts of :meth:`state_dict` (see ``memory_from_state``)."""
        self.class_seen = np.asarray(state["class_seen"], dtype=np.int64)
        self.class_full = np.asarray(state["class_full"], dtype=bool)

    # -- The choice of slots ---------------------------------------------------
    def add(self, X, y, rng, sample_weight=None):
        labels = _class_indices(y)
        n = len(labels)
        if n == 0:
            return
        self._prepare(X, y, sample_weight)
        n_classes = max(len(self.class_seen), int(labels.max()) + 1)
        if n_classes > len(self.class_seen):
            grow = n_classes - len(self.class_seen)
            self.class_seen = np.concatenate([self.class_seen, np.zeros(grow, np.int64)])
            self.class_full = np.concatenate([self.class_full, np.zeros(grow, bool)])
        # Rows seen of its class when each row arrives, itself included.
        n_c = self.class_seen[labels] + _rank_within_class(labels)
        self.class_seen = self.class_seen + np.bincount(labels, minlength=n_classes)

        n_direct = min(n, self.capacity - self.size)
        parts = [(slice(self.size, self.size + n_direct), slice(0, n_direct))]
        if n_direct < n:
            # The class of each slot once the direct rows are in.
            slot_labels = np.concatenate([_class_indices(self.y[: self.size]),
                                          labels[:n_direct]])
            rows, slots = self._choose_slots(labels[n_direct:], n_c[n_direct:], rng,
                                             slot_labels)
            if len(rows):
                # Two rows may hit one slot: the later one wins.
                rev_slots = slots[::-1]
                _, first = np.unique(rev_slots, return_index=True)
                winners = n_direct + rows[::-1][first]
                parts.append((torch.from_numpy(rev_slots[first]), torch.from_numpy(winners)))
        self._store(parts, X, y, sample_weight)
        self.size += n_direct
        self.n_seen += n
        self._after_add()

    def _choose_slots(self, labels, n_c, rng, slot_labels):
        """The slot each arriving row replaces, for rows arriving at a full
        memory: ``(rows, slots)``, rows as positions in ``labels``, in order
        of arrival (rows that are not kept are left out). ``slot_labels``
        (the class of each slot) and ``class_full`` are updated."""
        n_classes = len(self.class_seen)
        m = np.bincount(slot_labels, minlength=n_classes)
        full = self.class_full
        draws = rng.random((len(labels), 2))
        u, v = draws[:, 0], draws[:, 1]
        full |= m == m.max()
        # Sorted slots of each class, kept up to date as rows change class.
        slots_of = {}

        def slots(k):
            if k not in slots_of:
                slots_of[k] = np.flatnonzero(slot_labels == k)
            return slots_of[k]

        rows_out, slots_out = [], []
        candidates = np.flatnonzero(~full[labels])
        next_candidate = 0
        pos = 0
        while True:
            # The next row whose class is still not full ends a run in which
            # the counts, and so the acceptance probabilities, are fixed.
            while next_candidate < len(candidates) and full[labels[candidates[next_candidate]]]:
                next_candidate += 1
            stop = candidates[next_candidate] if next_candidate < len(candidates) else len(labels)
            if stop > pos:
                run = slice(pos, stop)
                kept = pos + np.flatnonzero(u[run] < m[labels[run]] / n_c[run])
                if len(kept):
                    kept_labels = labels[kept]
                    m_kept = m[kept_labels]
                    pick = np.minimum((v[kept] * m_kept).astype(np.int64), m_kept - 1)
                    chosen = np.empty(len(kept), dtype=np.int64)
                    for k in np.unique(kept_labels):
                        of_k = kept_labels == k
                        chosen[of_k] = slots(k)[pick[of_k]]
                    rows_out.append(kept)
                    slots_out.append(chosen)
            if stop == len(labels):
                break
            # A class that is not full takes a row of the largest classes.
            c = labels[stop]
            largest = np.flatnonzero(m == m.max())
            pool = slots(largest[0]) if len(largest) == 1 else np.flatnonzero(
                np.isin(slot_labels, largest))
            where = min(int(v[stop] * len(pool)), len(pool) - 1)
            slot = int(pool[where])
            loser = slot_labels[slot]
            slots_of[loser] = np.delete(slots(loser), np.searchsorted(slots(loser), slot))
            own = slots(c)
            slots_of[c] = np.insert(own, np.searchsorted(own, slot), slot)
            slot_labels[slot] = c
            m[loser] -= 1
            m[c] += 1
            full |= m == m.max()
            rows_out.append(np.array([stop]))
            slots_out.append(np.array([slot]))
            pos = stop + 1
            next_candidate += 1
        if not rows_out:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(rows_out), np.concatenate(slots_out)


def _class_indices(y):
    """Class indices of 1-d integer labels, as an int64 array."""
    labels = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise TypeError(
            "A class-balanced memory needs one integer class index per row, got labels "
            f"of dtype {labels.dtype} and shape {labels.shape}."
        )
    if len(labels) and labels.min() < 0:
        raise ValueError("A class-balanced memory needs class indices >= 0.")
    return labels.astype(np.int64, copy=False)


def _rank_within_class(labels):
    """For each row, 1 + the number of earlier rows of its class."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lengths = np.diff(np.r_[starts, len(labels)])
    ranks = np.empty(len(labels), dtype=np.int64)
    ranks[order] = np.arange(len(labels)) - np.repeat(starts, lengths) + 1
    return ranks

"""Data rehearsal: mix remembered past rows into every fine-tune epoch."""

import numpy as np

from .._data import MonthData
from .._validation import check_folder
from .._param_validation import Integer, Options, Real, Satisfies
from ._base import RowsKeeper
from ._disk import sequence_folder
from ._memory_factory import make_memory, memory_from_state

__all__ = ["Replay", "epoch_composition"]


def epoch_composition(n_new, n_memory, rehearsal_ratio, epoch_size):
    """Number of new and past rows in one replay epoch.

    Parameters
    ----------
    n_new, n_memory : int
        Rows of the new month and rows in memory.
    rehearsal_ratio : float in [0, 1)
        Share of past rows in the epoch.
    epoch_size : int or None
        None: every new row once, plus past rows in the given ratio (the epoch
        grows with ``rehearsal_ratio``); int: exactly that many rows.

    Returns
    -------
    (n_new_epoch, n_past_epoch) : tuple of int

    Examples
    --------
    >>> epoch_composition(1000, 5000, 0.5, None)
    (1000, 1000)
    >>> epoch_composition(1000, 5000, 0.25, 400)
    (300, 100)
    """
    if epoch_size is None:
        n_past = int(round(n_new * rehearsal_ratio / (1.0 - rehearsal_ratio)))
        return n_new, n_past
    n_past = int(round(epoch_size * rehearsal_ratio))
    return epoch_size - n_past, n_past


#: Populations up to this size are always drawn from with numpy's
#: ``Generator.choice`` (whatever it costs, it is small).
SMALL_POPULATION = 10_000


def _draw(rng, population, k):
    """k indices from range(population): without replacement when possible.

    The cost is O(k log k), whatever the population (the rows kept in
    memory, which grow with every month): numpy's ``choice(...,
    replace=False)`` allocates and partly shuffles ``arange(population)``
    once k exceeds a small share of it, so it is only used where that is
    O(k) too (k at least a quarter of the population, or a small one).
    """
    if k > population:
        return rng.integers(0, population, size=k)
    if population <= SMALL_POPULATION or 4 * k >= population:
        return rng.choice(population, size=k, replace=False)
    return _distinct_sample(rng, population, k)


def _distinct_sample(rng, population, k):
    """A uniformly random ordered sample of k distinct indices of
    range(population) in O(k log k) time and O(k) memory (k <= population / 4).

    Notes
    -----
    The distinct values of iid uniform draws, redrawn until there are at
    least k, form a set whose law is invariant under any relabelling of the
    population, and so is a random permutation of that set cut to k: every
    ordered k-sample is equally likely. With k <= population / 4, fewer than
    an eighth of the draws repeat on average, so one round of
    ``k * (1 + k / population)`` draws usually suffices.
    """
    n_draws = int(k * (1 + k / population)) + 16
    distinct = _sorted_distinct(rng.integers(0, population, size=n_draws))
    while len(distinct) < k:
        more = rng.integers(0, population, size=k - len(distinct) + 16)
        distinct = _sorted_distinct(np.concatenate([distinct, more]))
    rng.shuffle(distinct)
    return distinct[:k]


def _sorted_distinct(values):
    """The distinct values, sorted (a plain sort: ``np.unique`` can be many
    times slower on large integer arrays)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


class Replay(RowsKeeper):
    """Rehearse past rows while fine-tuning on the new month.

    Each epoch of a month after the first holds the new month's rows and
    rows drawn uniformly from memory (a new draw every epoch), past rows
    making up ``rehearsal_ratio`` of the epoch. After each month its training
    rows are added to memory.

    Parameters
    ----------
    rehearsal_ratio : float in [0, 1), default=0.5
        Share of past rows per epoch. Higher: less forgetting, slower
        learning of the new month; with ``epoch_size=None`` also more rows
        (cost) per epoch, 2x at 0.5.
    epoch_size : int or None, default=None
        None: every new row once per epoch plus past rows in the given ratio.
        int: exactly this many rows per epoch (new rows drawn without
        replacement when the month is larger), so the monthly cost is fixed
        whatever the size of the month and the memory (the study fixed 4M).
    memory_size : int or None, default=None
        None: remember every past training row (memory grows with history).
        int: a uniform reservoir sample of at most this many rows.
    memory_dir : path-like or None, default=None
        None: memory in RAM. A folder: memory in memory-mapped ``.npy``
        files in a new subfolder of it, so it need not fit in RAM; the same
        rows in every batch as in RAM. Files are never changed once written
        (each month writes new ones), so older checkpoints keep loading;
        with ``memory_size`` a batch may take its rows in another order
        than in RAM, so predictions then agree up to rounding.
    memory_policy : {"reservoir", "class_balanced"}, default="reservoir"
        Which rows a bounded memory (``memory_size``) keeps: a uniform
        reservoir sample, or a class-balanced one (CBRS, see
        :class:`~sklearn_cf.strategies.ClassBalancedMemory`) in which a rare
        class keeps its rows until it is as large as the largest class.

    Notes
    -----
    Past rows are drawn without replacement when memory holds enough of
    them, else uniformly with replacement, so the ratio is always exact.
    Memory stays in host memory, like the training data; batches move to
    the device as they are used.

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> clf = ContinualClassifier(strategy="replay", rehearsal_ratio=0.5, max_epochs=1,
    ...                           random_state=0).fit(X, y, months=months)
    >>> [c["rows"] for c in clf.cost_]
    [200, 400, 400]
    """

    name = "replay"

    _parameter_constraints = {
        "rehearsal_ratio": Real(0, 1, high_open=True),
        "epoch_size": Integer(1, none=True),
        "memory_size": Integer(1, none=True),
        "memory_dir": Satisfies(check_folder),
        "memory_policy": Options("reservoir", "class_balanced"),
    }

    def __init__(self, rehearsal_ratio=0.5, epoch_size=None, memory_size=None,
                 memory_dir=None, memory_policy="reservoir"):
        self.rehearsal_ratio = rehearsal_ratio
        self.epoch_size = epoch_size
        self.memory_size = memory_size
        self.memory_dir = memory_dir
        self.memory_policy = memory_policy

    def start(self, net):
        # Named now (memory_dir made absolute), created at the first write.
        folder = None if self.memory_dir is None else sequence_folder(self.memory_dir, "replay")
        self.memory = make_memory(self.memory_size, folder, self.memory_policy)

    def month_data(self, net, X, y, sample_weight=None):
        n_memory = len(self.memory)
        if n_memory == 0:  # the base fit trains on its month as usual
            return None
        n_new = len(y)
        n_new_epoch, n_past_epoch = epoch_composition(
            n_new, n_memory, self.rehearsal_ratio, self.epoch_size
        )

        # The memory's rows as they are (files on disk), and where each slot
        # is among them: the draws pick slots, batches read only those rows.
        memory = self.memory.rows()

        def sample_epoch(sizes, rng):
            new = (
                np.arange(n_new)
                if n_new_epoch == n_new and self.epoch_size is None
                else _draw(rng, n_new, n_new_epoch)
            )
            past = (n_new + memory.rows_of(_draw(rng, n_memory, n_past_epoch))
                    if n_past_epoch else [])
            return np.concatenate([new, past]).astype(np.int64)

        sources = memory.sources
        weights = [sample_weight, *(memory.weights or [None] * len(sources))]
        return MonthData([(X, y), *sources], sample_epoch, weights=weights)

    def end_month(self, net, X, y, sample_weight=None):
        self.memory.add(X, y, net.rng_, sample_weight=sample_weight)

    def grow_classes(self, net, n_old, n_new):
        """Nothing to change: the memory keeps its rows and their class
        indices (new classes are appended after the old ones; a
        class-balanced memory counts a new class from its first row)."""

    def state_dict(self):
        return {"memory": self.memory.state_dict()}

    def load_state_dict(self, state, net):
        self.memory = memory_from_state(state["memory"])

    def __repr__(self):
        on_disk = "" if self.memory_dir is None else f", memory_dir={self.memory_dir!r}"
        if self.memory_policy != "reservoir":
            on_disk += f", memory_policy={self.memory_policy!r}"
        return (
            f"Replay(rehearsal_ratio={self.rehearsal_ratio}, "
            f"epoch_size={self.epoch_size}, memory_size={self.memory_size}{on_disk})"
        )

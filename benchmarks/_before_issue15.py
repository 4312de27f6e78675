"""The data path as it was before issue 15, kept to measure against.

Frozen copies, for the benchmarks only (``bench_gather.py``,
``bench_history.py``); the package no longer uses any of it. What behaves
the old way is copied here, not borrowed from the package, so that a change
of the package's internals cannot change the baseline:

* ``old_draw``: numpy's ``choice(population, k, replace=False)``, which
  allocates ``arange(population)`` once k exceeds 2% of the population;
* ``OldReplay``: replay whose epochs are drawn with ``old_draw``;
* ``OldMonthData``: labels and weights of the plan read through a
  concatenation of every source's labels (O(rows kept) per call), and a
  tensor of ones per unweighted source when another source has weights;
* ``OldEpochIterator``: a batch mixing several sources gathered with
  ``X[local]`` into a temporary, then scattered into the chunk
  (``X_chunk[where] = ...``): two copies of every row, in plan order;
* ``OldDataClassifier``: a classifier whose replay months run on all three
  (give it ``strategy=OldReplay(...)``).

The baseline meets the package at public points only: the ``month_data``
hook of :class:`sklearn_cf.strategies.Replay` and its memory's ``sources()``
and ``weights()``, skorch's ``get_iterator``, and ``MonthData``, the type a
month trains on (which the old one subclasses, overriding its public
``plan_labels``, ``plan_weights`` and ``labels_and_weights``). Each is
checked when this module is imported, so that a change there fails loudly
instead of measuring the new code twice.
"""

import numpy as np
import torch

from _common import BenchClassifier
from sklearn_cf._data import EpochIterator, MonthData
from sklearn_cf.strategies import Replay

__all__ = ["OldDataClassifier", "OldEpochIterator", "OldMonthData", "OldReplay", "old_draw"]

for _name in ("plan_labels", "plan_weights", "labels_and_weights", "resample", "plan",
              "sources", "offsets", "sizes", "weights"):
    _probe = MonthData([(torch.zeros(1, 1), torch.zeros(1, dtype=torch.int64))]).resample(
        np.random.default_rng(0))
    if not hasattr(_probe, _name):
        raise ImportError(f"sklearn_cf's MonthData has no {_name!r} any more: update the "
                          "frozen baseline of benchmarks/_before_issue15.py.")
if not callable(getattr(Replay, "month_data", None)):
    raise ImportError("sklearn_cf.strategies.Replay has no month_data hook any more: update "
                      "the frozen baseline of benchmarks/_before_issue15.py.")


def old_draw(rng, population, k):
    """k indices from range(population): without replacement when possible."""
    if k <= population:
        return rng.choice(population, size=k, replace=False)
    return rng.integers(0, population, size=k)


def old_epoch_composition(n_new, n_memory, rehearsal_ratio, epoch_size):
    """Number of new and past rows in one replay epoch (``epoch_size`` None:
    every new row once, plus past rows in the ratio; else exactly that many)."""
    if epoch_size is None:
        n_past = int(round(n_new * rehearsal_ratio / (1.0 - rehearsal_ratio)))
        return n_new, n_past
    n_past = int(round(epoch_size * rehearsal_ratio))
    return epoch_size - n_past, n_past


class OldMonthData(MonthData):
    """A month's rows whose plan labels and weights are read the old way."""

    def __init__(self, sources, sample_epoch=None, weights=None):
        super().__init__(sources, sample_epoch, weights)
        if self.weights is not None:
            self.weights = [torch.ones(n, dtype=torch.float32) if w.stride(0) == 0 else w
                            for w, n in zip(self.weights, self.sizes)]

    def plan_labels(self):
        if len(self.sources) == 1:
            return self.sources[0][1][self.plan]
        labels = torch.cat([y for _, y in self.sources])
        return labels[self.plan]

    def plan_weights(self):
        if self.weights is None:
            return None
        if len(self.weights) == 1:
            return self.weights[0][self.plan]
        return torch.cat(self.weights)[self.plan]

    def labels_and_weights(self, vidx):
        vidx = vidx.cpu()
        labels = torch.cat([y.cpu() for _, y in self.sources])[vidx]
        if self.weights is None:
            return labels, None
        return labels, torch.cat([w.cpu() for w in self.weights])[vidx]


class OldReplay(Replay):
    """Replay drawing its epochs with ``old_draw`` into an ``OldMonthData``."""

    def month_data(self, net, X, y, sample_weight=None):
        n_memory = len(self.memory)
        if n_memory == 0:  # the base fit trains on its month as usual
            return None
        n_new = len(y)
        n_new_epoch, n_past_epoch = old_epoch_composition(
            n_new, n_memory, self.rehearsal_ratio, self.epoch_size)

        def sample_epoch(sizes, rng):
            new = (np.arange(n_new) if n_new_epoch == n_new and self.epoch_size is None
                   else old_draw(rng, n_new, n_new_epoch))
            past = n_new + old_draw(rng, n_memory, n_past_epoch) if n_past_epoch else []
            return np.concatenate([new, past]).astype(np.int64)

        sources = self.memory.sources()
        weights = [sample_weight, *(self.memory.weights() or [None] * len(sources))]
        return OldMonthData([(X, y), *sources], sample_epoch, weights=weights)


def _host_to_device(device):
    """How a host batch reaches a CUDA ``device``: a copy into pinned memory,
    then a non-blocking copy; None elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return None

    def move(tensor):
        if tensor.device.type == device.type:
            return tensor
        return tensor.pin_memory().to(device, non_blocking=True)

    return move


def _prefetch(batches, move):
    """``(X, y)`` batches through ``move``, the next one moved before the
    current one is yielded."""
    pending = None
    for X, y in batches:
        moved = (move(X), tuple(map(move, y)) if isinstance(y, tuple) else move(y))
        if pending is not None:
            yield pending
        pending = moved
    if pending is not None:
        yield pending


class OldEpochIterator:
    """Shuffled batches of a month's plan, gathered the old way.

    The parameters and attributes of the package's iterator that a training
    step reads (``data``, ``batch_size``, ``global_batch_rows``); no
    sharding. For a CUDA ``device``, batches travel through pinned memory,
    one batch ahead.
    """

    #: Plan rows gathered at once when several sources are mixed.
    chunk_rows = 16384

    def __init__(self, data, batch_size, shuffle=True, generator=None, device=None):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.move = None if device is None else _host_to_device(device)
        self.global_batch_rows = None
        self.global_batch_index = None

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def __iter__(self):
        batches = self._batches()
        if self.move is not None:
            batches = _prefetch(batches, self.move)
        for k, batch in enumerate(batches):
            self.global_batch_rows = self._sizes[k]
            yield batch

    def _batches(self):
        data = self.data
        plan = data.plan
        if self.shuffle:
            plan = plan[torch.randperm(len(plan), generator=self.generator)]
        sizes = self._sizes = [min(self.batch_size, len(plan) - start)
                               for start in range(0, len(plan), self.batch_size)]
        on = data.sources[0][0].device
        plan = plan.to(on)
        ends = np.cumsum([0] + sizes).tolist()
        weights = None if data.weights is None else [w.to(on) for w in data.weights]
        if len(data.sources) == 1:
            X, y = data.sources[0]
            for k in range(len(sizes)):
                index = plan[ends[k] : ends[k + 1]]
                if weights is None:
                    yield X[index], y[index]
                else:
                    yield X[index], (y[index], weights[0][index])
            return
        bounds = torch.from_numpy(np.asarray(data.offsets[1:-1], dtype=np.int64)).to(on)
        per_chunk = max(1, self.chunk_rows // self.batch_size)
        X0, y0 = data.sources[0]
        pin = self.move is not None and on.type == "cpu"
        for first_batch in range(0, len(sizes), per_chunk):
            last_batch = min(first_batch + per_chunk, len(sizes))
            first = ends[first_batch]
            chunk = plan[first : ends[last_batch]]
            source = torch.searchsorted(bounds, chunk, right=True)
            order = torch.argsort(source, stable=True)
            counts = torch.bincount(source, minlength=len(data.sources)).tolist()
            X_chunk = torch.empty((len(chunk), *X0.shape[1:]), dtype=X0.dtype, device=on,
                                  pin_memory=pin)
            y_chunk = torch.empty((len(chunk), *y0.shape[1:]), dtype=y0.dtype, device=on,
                                  pin_memory=pin)
            w_chunk = None if weights is None else torch.empty(
                len(chunk), dtype=weights[0].dtype, device=on, pin_memory=pin)
            done = 0
            for k, count in enumerate(counts):
                if count:
                    where = order[done : done + count]
                    done += count
                    X, y = data.sources[k]
                    local, order_in_source = torch.sort(chunk[where] - int(data.offsets[k]))
                    where = where[order_in_source]
                    X_chunk[where] = X[local]
                    y_chunk[where] = y[local]
                    if w_chunk is not None:
                        w_chunk[where] = weights[k][local]
            for k in range(first_batch, last_batch):
                rows = slice(ends[k] - first, ends[k + 1] - first)
                if w_chunk is None:
                    yield X_chunk[rows], y_chunk[rows]
                else:
                    yield X_chunk[rows], (y_chunk[rows], w_chunk[rows])


class OldDataClassifier(BenchClassifier):
    """A BenchClassifier on the old data path: with ``strategy=OldReplay(...)``,
    old draws and plan labels; for every month, the old iterator."""

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        if type(iterator) is EpochIterator:
            return OldEpochIterator(iterator.data, iterator.batch_size, iterator.shuffle,
                                    iterator.generator, device=self.device)
        return iterator

"""The data path as it was before issue 15, kept to measure against.

Frozen copies, for the benchmarks only (``bench_gather.py``,
``bench_history.py``); the package no longer uses any of it:

* ``OldEpochIterator``: a batch mixing several sources gathered with
  ``X[local]`` into a temporary, then scattered into the chunk
  (``X_chunk[where] = ...``): two copies of every row, in plan order;
* ``OldMonthData``: labels and weights of the plan read through a
  concatenation of every source's labels (O(rows kept) per call), and a
  tensor of ones per unweighted source when another source has weights;
* ``old_draw``: numpy's ``choice(population, k, replace=False)``, which
  allocates ``arange(population)`` once k exceeds 2% of the population;
* ``OldDataClassifier``: a ContinualClassifier that uses all three.
"""

import contextlib

import numpy as np
import torch

from _common import BenchClassifier
from sklearn_cf._data import EpochIterator, MonthData
from sklearn_cf.strategies import _replay

__all__ = ["OldEpochIterator", "OldMonthData", "old_draw", "old_draw_in_replay",
           "OldDataClassifier"]


def old_draw(rng, population, k):
    """k indices from range(population): without replacement when possible."""
    if k <= population:
        return rng.choice(population, size=k, replace=False)
    return rng.integers(0, population, size=k)


@contextlib.contextmanager
def old_draw_in_replay():
    """Replay draws its rows with ``old_draw`` inside the block."""
    new = _replay._draw
    _replay._draw = old_draw
    try:
        yield
    finally:
        _replay._draw = new


class OldMonthData(MonthData):
    def __init__(self, sources, sample_epoch=None, weights=None):
        super().__init__(sources, sample_epoch, weights)
        if self.weights is not None:
            self.weights = [torch.ones(n, dtype=torch.float32) if w.stride(0) == 0 else w
                            for w, n in zip(self.weights, self.sizes)]

    @classmethod
    def wrap(cls, data):
        """``data`` (a MonthData) as an OldMonthData, sharing its tensors."""
        old = cls([])
        vars(old).update(vars(data))
        sample = old.sample_epoch
        if sample is not None:
            def sample_epoch(sizes, rng):
                with old_draw_in_replay():
                    return sample(sizes, rng)

            old.sample_epoch = sample_epoch
        if old.weights is not None:
            old.weights = [torch.ones(n, dtype=torch.float32) if w.stride(0) == 0 else w
                           for w, n in zip(old.weights, old.sizes)]
        return old

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


class OldEpochIterator(EpochIterator):
    def _host_batches(self):
        data = self.data
        plan = data.plan
        if self.shuffle:
            plan = plan[torch.randperm(len(plan), generator=self.generator)]
        self._global_plan = plan
        plan, sizes, self._global_sizes = self._local_plan(plan)
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
    """A BenchClassifier on the old data path: old iterator, old plan
    labels, old draw of past rows (while its own months run)."""

    def _month_data(self, X_t, y_t, w_t=None):
        return OldMonthData.wrap(super()._month_data(X_t, y_t, w_t))

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        if type(iterator) is EpochIterator:
            iterator.__class__ = OldEpochIterator
        return iterator

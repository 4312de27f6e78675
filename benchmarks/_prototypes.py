"""Prototypes of the recommended changes to sklearn_cf, measured side by side.

Both changes shipped in commit 99fbc9d; ``run.py`` then skips the [proto]
rows (they would repeat the shipped ones). They remain for measuring an
older checkout against the change.

Nothing here is imported by the package: each prototype subclasses or
monkeypatches the shipped code inside the benchmark process only.

1. ``PullGradientMixin``: the L2/EWC pull adds its gradient
   ``reg_lambda * w * (theta - anchor)`` straight to ``.grad`` after
   ``loss.backward()`` (two in-place ops per parameter under no_grad) instead
   of adding ``reg_lambda/2 * sum(w * (theta - anchor)**2)`` to the loss and
   letting autograd differentiate it (3-4 forward and 5-6 backward kernels
   per parameter plus the autograd bookkeeping). Same gradient, same
   reported loss (its value is added to ``step["loss"]``).
2. ``ChunkedEpochIterator``: a batch drawn from several sources (replay:
   new month + memory chunks; joint: every month) is gathered once per
   chunk of ~16k plan rows (one index op per source per chunk, rows kept
   in plan order) rather than once per batch (a numpy searchsorted, a
   unique, and one mask + gather per source, for every batch).
"""

import numpy as np
import torch
from skorch import NeuralNetClassifier

from sklearn_cf._data import EpochIterator
from sklearn_cf.strategies import EWC, L2, Combined, Strategy

from _common import BenchClassifier

#: Whether the package already ships the change (then the prototype defers
#: to it, so that [proto] rows equal the shipped ones instead of doubling up).
PULL_GRADIENT_SHIPPED = hasattr(Strategy, "penalty_gradient")
CHUNKED_SHIPPED = hasattr(EpochIterator, "chunk_rows")

__all__ = ["ChunkedEpochIterator", "PullGradientMixin", "FastClassifier", "pull_terms"]


def pull_terms(strategy):
    """(reg_lambda, anchors, weights-or-None) of every active L2/EWC part."""
    parts = strategy.parts if isinstance(strategy, Combined) else [strategy]
    terms = []
    for part in parts:
        if isinstance(part, (L2, EWC)) and part.anchors is not None and part.reg_lambda != 0:
            weights = part.fisher_diag if isinstance(part, EWC) else None
            terms.append((float(part.reg_lambda), part.anchors, weights))
    return terms


def add_pull_gradient(module, reg_lambda, anchors, weights=None):
    """grad += reg_lambda * w * (theta - anchor), in place; return the penalty
    value reg_lambda / 2 * sum(w * (theta - anchor)**2), detached."""
    total = None
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name not in anchors:
                continue
            diff = p - anchors[name]
            pull = diff if weights is None else weights[name] * diff
            if p.grad is None:
                p.grad = pull.mul(reg_lambda)
            else:
                p.grad.add_(pull, alpha=reg_lambda)
            term = torch.dot(pull.reshape(-1), diff.reshape(-1))
            total = term if total is None else total + term
    return None if total is None else 0.5 * reg_lambda * total


class PullGradientMixin:
    """L2/EWC penalties as a direct gradient (prototype of change 1)."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if PULL_GRADIENT_SHIPPED:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        loss = NeuralNetClassifier.get_loss(self, y_pred, y_true, X=X, training=training)
        strategy = getattr(self, "strategy_", None)
        if training and strategy is not None:
            # Other (custom) penalties keep the autograd route.
            parts = strategy.parts if isinstance(strategy, Combined) else [strategy]
            for part in parts:
                if not isinstance(part, (L2, EWC)):
                    term = part.penalty(self)
                    if term is not None:
                        loss = loss + term
        return loss

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        strategy = getattr(self, "strategy_", None)
        if strategy is not None and not PULL_GRADIENT_SHIPPED:
            for reg_lambda, anchors, weights in pull_terms(strategy):
                value = add_pull_gradient(self.module_, reg_lambda, anchors, weights)
                if value is not None:
                    step["loss"] = step["loss"] + value
        return step


class ChunkedEpochIterator(EpochIterator):
    """Batches of a multi-source epoch gathered a chunk at a time."""

    chunk_rows = 16384

    def __iter__(self):
        data = self.data
        plan = data.plan
        if self.shuffle:
            plan = plan[torch.randperm(len(plan), generator=self.generator)]
        bs = self.batch_size
        if len(data.sources) == 1:
            X, y = data.sources[0]
            for start in range(0, len(plan), bs):
                idx = plan[start : start + bs]
                yield X[idx], y[idx]
            return
        bounds = torch.as_tensor(np.asarray(data.offsets[1:-1], dtype=np.int64))
        step = max(bs, (self.chunk_rows // bs) * bs)
        X0, y0 = data.sources[0]
        for c in range(0, len(plan), step):
            chunk = plan[c : c + step]
            source = torch.searchsorted(bounds, chunk, right=True)
            Xc = X0.new_empty((len(chunk), *X0.shape[1:]))
            yc = y0.new_empty((len(chunk), *y0.shape[1:]))
            order = torch.argsort(source, stable=True)
            counts = torch.bincount(source, minlength=len(data.sources)).tolist()
            first = 0
            for k, count in enumerate(counts):
                if count == 0:
                    continue
                pos = order[first : first + count]
                first += count
                local = chunk[pos] - int(data.offsets[k])
                X, y = data.sources[k]
                Xc[pos] = X[local]
                yc[pos] = y[local]
            for start in range(0, len(chunk), bs):
                yield Xc[start : start + bs], yc[start : start + bs]


class ChunkedIteratorMixin:
    """Serve training batches with :class:`ChunkedEpochIterator` (change 2)."""

    def get_iterator(self, dataset, training=False):
        it = super().get_iterator(dataset, training=training)
        if type(it) is EpochIterator and not CHUNKED_SHIPPED:
            it = ChunkedEpochIterator(it.data, it.batch_size, it.shuffle, it.generator)
        return it


class FastClassifier(PullGradientMixin, ChunkedIteratorMixin, BenchClassifier):
    """Both prototypes together."""


class PullGradientClassifier(PullGradientMixin, BenchClassifier):
    pass


class ChunkedClassifier(ChunkedIteratorMixin, BenchClassifier):
    pass

"""Prototypes of the recommended changes to sklearn_cf, measured side by side.

Changes 1 and 2 shipped in commit 99fbc9d (the benchmarks then leave their
[proto] rows out: they would repeat the shipped ones; they remain for
measuring an older checkout). Change 3 (``FusedL2``/``FusedEWC``) builds on
the shipped closed-form route.

Nothing here is imported by the package: each prototype subclasses or
monkeypatches the shipped code inside the benchmark process only.

1. ``PullGradientMixin``: the L2/EWC pull adds its gradient
   ``reg_lambda * w * (theta - anchor)`` straight to ``.grad`` after
   ``loss.backward()`` (two in-place ops per parameter under no_grad) instead
   of adding ``reg_lambda/2 * sum(w * (theta - anchor)**2)`` to the loss and
   letting autograd differentiate it (3-4 forward and 5-6 backward kernels
   per parameter plus the autograd bookkeeping). Same gradient, same
   reported loss (its value is added to ``step["loss"]``).
3. ``FusedL2`` / ``FusedEWC``: the shipped closed-form route evaluates the
   penalty's value (``penalty()`` under no_grad: sub, pow, mul, sum per
   parameter) and then, after the backward pass, recomputes
   ``w * (theta - anchor)`` for the gradient. Computing the pull once in
   ``loss_penalty`` (sub, mul, dot) and only adding it to ``.grad`` in
   ``penalty_gradient`` halves that work.
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
# Superseded: since issue 15 a step computes no penalty value at all (the
# value is recorded once per epoch), which is cheaper than the fused pull.
FUSED_SHIPPED = "loss_penalty" in vars(L2) or hasattr(Strategy, "penalty_value")

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


# ----------------------------------------------------------------------
# Change 3: one pass for the value and the gradient of the pull.
# ----------------------------------------------------------------------
def pull_and_value(net, anchors, weights=None):
    """Under no_grad: {name: w * (theta - anchor)} and sum w * (theta - anchor)**2."""
    pulls, total = {}, None
    with torch.no_grad():
        for name, p in net.module_.named_parameters():
            if name not in anchors:
                continue
            diff = p - anchors[name]
            pull = diff if weights is None else diff * weights[name]
            term = torch.dot(pull.reshape(-1), diff.reshape(-1))
            total = term if total is None else total + term
            pulls[name] = pull
    return pulls, total


def add_pulls(net, pulls, reg_lambda):
    """grad += reg_lambda * pull, in place."""
    with torch.no_grad():
        for name, p in net.module_.named_parameters():
            pull = pulls.get(name)
            if pull is None:
                continue
            if p.grad is None:
                p.grad = pull.mul(reg_lambda)
            else:
                p.grad.add_(pull, alpha=reg_lambda)


class _FusedPull:
    """loss_penalty computes the value and keeps the pulls; penalty_gradient
    adds them. ``_pulls`` lives only between the two calls of one step."""

    def _pull_weights(self):
        return getattr(self, "fisher_diag", None)

    def loss_penalty(self, net):
        if not self.closed_form_penalty:
            return self.penalty(net)
        vars(self).pop("_pulls", None)
        if self.anchors is None or self.reg_lambda == 0:
            return None
        pulls, total = pull_and_value(net, self.anchors, self._pull_weights())
        if total is None:
            return None
        self._pulls = pulls
        return 0.5 * self.reg_lambda * total

    def penalty_gradient(self, net):
        pulls = vars(self).pop("_pulls", None)
        if pulls:
            add_pulls(net, pulls, self.reg_lambda)


if PULL_GRADIENT_SHIPPED:

    class FusedL2(_FusedPull, L2):
        @property
        def closed_form_penalty(self):
            return True

    class FusedEWC(_FusedPull, EWC):
        @property
        def closed_form_penalty(self):
            return True

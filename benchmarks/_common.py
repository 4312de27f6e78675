"""Data, reference loops and instrumented classifiers shared by the benchmarks."""

import time

import numpy as np
import torch

from sklearn_cf import ContinualClassifier
from sklearn_cf._data import MonthData
from sklearn_cf._mlp import MLP

from _timing import sync

__all__ = [
    "make_rows",
    "make_months",
    "plain_epochs",
    "plain_forward_backward",
    "BenchClassifier",
    "HIDDEN",
]

HIDDEN = (256, 256)


def make_rows(n, d, seed=0, shift=0.0):
    """``n`` float32 rows of ``d`` Gaussian features and a 2-class label
    from a noisy linear rule; ``shift`` moves the means and the rule (a
    "month" of drift)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    if shift:
        X += np.float32(shift) * np.float32(0.1)
    w = np.zeros(d, dtype=np.float32)
    k = min(d, 10)
    w[:k] = np.cos(np.arange(k) + shift)
    score = X @ w + 0.5 * rng.standard_normal(n, dtype=np.float32)
    y = (score > 0).astype(np.int64)
    return X, y


def make_months(n_months, n_per_month, d, seed=0):
    """A drifting stream as (X, y, months), the rows of each month together."""
    parts = [make_rows(n_per_month, d, seed=seed + m, shift=float(m)) for m in range(n_months)]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    months = np.repeat(np.arange(n_months), n_per_month)
    return X, y, months


def new_mlp(d, n_classes=2, seed=0, device="cpu"):
    return MLP(d, n_classes, HIDDEN).reset_parameters(torch.Generator().manual_seed(seed)).to(device)


def plain_epochs(model, X_t, y_t, batch_size, epochs, device="cpu", lr=1e-3, seed=0,
                 optimizer=None):
    """The minimal hand-written loop: Adam, cross-entropy, shuffled batches
    gathered from CPU tensors and moved to ``device``. Returns a dict with
    wall ``seconds`` and process ``cpu_seconds``."""
    crit = torch.nn.CrossEntropyLoss()
    opt = optimizer if optimizer is not None else torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(y_t)
    model.train()
    sync(device)
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            xb = X_t[idx].to(device, non_blocking=True)
            yb = y_t[idx].to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
    sync(device)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}


def plain_forward_backward(model, X_t, y_t, batch_size, device="cpu"):
    """One forward and backward pass of the mean loss over all rows (no
    optimizer step): the cost floor of any exact per-sample curvature."""
    crit = torch.nn.CrossEntropyLoss()
    model.eval()
    params = [p for p in model.parameters()]
    sync(device)
    cpu = time.process_time()
    start = time.perf_counter()
    for s in range(0, len(y_t), batch_size):
        xb = X_t[s : s + batch_size].to(device)
        yb = y_t[s : s + batch_size].to(device)
        loss = crit(model(xb), yb)
        torch.autograd.grad(loss, params)
    sync(device)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}


class BenchClassifier(ContinualClassifier):
    """ContinualClassifier that records how long its fit loop took.

    ``bench_fit_seconds_`` is the time inside skorch's ``fit_loop`` of the
    last month (the epochs themselves); the rest of ``cost_[-1]["seconds"]``
    is the month's fixed overhead (data plan, strategy end of month such as
    the Fisher, snapshot). ``bench_end_month_seconds_`` is the strategy's
    ``end_month``.
    """

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        device = self.device
        sync(device)
        cpu = time.process_time()
        start = time.perf_counter()
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        finally:
            sync(device)
            self.bench_fit_seconds_ = time.perf_counter() - start
            self.bench_fit_cpu_seconds_ = time.process_time() - cpu



def _timed_snapshots():
    """Record on the estimator how long each month's snapshot took (the
    package's month runner calls ``take_snapshot`` once a month)."""
    from sklearn_cf._estimator import _month

    original = _month.take_snapshot
    if getattr(original, "bench_timed", False):
        return

    def take_snapshot(net, label):
        start = time.perf_counter()
        try:
            return original(net, label)
        finally:
            net.bench_snapshot_seconds_ = time.perf_counter() - start

    take_snapshot.bench_timed = True
    _month.take_snapshot = take_snapshot


_timed_snapshots()


def timed_end_month(clf):
    """Wrap the fitted strategy's end_month to record its duration."""
    strategy = clf.strategy_
    original = strategy.end_month

    def end_month(net, X, y):
        sync(net.device)
        start = time.perf_counter()
        try:
            return original(net, X, y)
        finally:
            sync(net.device)
            net.bench_end_month_seconds_ = time.perf_counter() - start

    strategy.end_month = end_month
    return clf


def classifier_stepper(clf, X, y):
    """``fn(k)``: run ``k`` training steps of a fitted classifier on a new
    month's rows through skorch's own ``run_single_epoch`` (callbacks,
    history, the strategy's penalty and batch iterator), without starting
    or ending a month. Batches come from the classifier's iterator over the
    strategy's month data (replay mixes memory rows in), epoch after epoch.
    """
    import itertools

    X_t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    y_t = torch.from_numpy(np.searchsorted(clf.classes_, y).astype(np.int64))
    # The month's rows as the classifier trains on them: the strategy's
    # month_data hook (replay mixes memory in), else the month alone.
    data = clf.strategy_.month_data(clf, X_t, y_t)
    if data is None:
        data = MonthData([(X_t, y_t)])
    data.resample(clf.rng_)
    clf.batch_generator_ = torch.Generator().manual_seed(0)
    clf.rows_in_month_ = 0
    clf.epochs_run_in_month_ = 0
    clf.notify("on_epoch_begin", dataset_train=data, dataset_valid=None)
    iterator = clf.get_iterator(data, training=True)

    def stream():
        while True:
            yield from iterator
            # A new epoch as the fit loop begins one: a new plan (replay's
            # memory draw) and the month's epoch count (DER stores the rows
            # of its first epoch only).
            clf.notify("on_epoch_begin", dataset_train=data, dataset_valid=None)

    batches = stream()

    def run(k):
        clf.run_single_epoch(itertools.islice(batches, k), training=True, prefix="train",
                             step_fn=clf.train_step)

    return run


def plain_stepper(model, X, y, batch_size, device="cpu", optimizer=None, seed=0):
    """``fn(k)``: ``k`` steps of the hand-written loop (shuffled epochs)."""
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    crit = torch.nn.CrossEntropyLoss()
    opt = optimizer if optimizer is not None else torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    n = len(y_t)
    model.train()

    def stream():
        while True:
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, batch_size):
                yield perm[s : s + batch_size]

    indices = stream()

    def run(k):
        for _ in range(k):
            idx = next(indices)
            xb = X_t[idx].to(device, non_blocking=True)
            yb = y_t[idx].to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()

    return run

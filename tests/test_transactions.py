"""A month is all-or-nothing: whatever goes wrong inside it, the estimator is
exactly as it was before the call, and retrying the month gives the result of
a run that never saw the failure."""

import os
import signal
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
import torch
from conftest import FAST, fingerprint, make_stream
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History

import sklearn.exceptions
import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf._atomic import SigintWatch
from sklearn_cf._estimator._transaction import raised_by_early_stopping
from sklearn_cf.exceptions import TrainingDivergedError
from sklearn_cf.strategies import STRATEGIES, Combined

SETTINGS = dict(FAST, dropout=0.2, memory_size=150, batch_size=16)


class Fault(Callback):
    """Raises ``error`` at training batch ``batch`` of epoch ``epoch`` (both
    1-based) once armed, or poisons a weight with NaN there (``error="nan"``)."""

    def __init__(self, epoch=2, batch=3, error=None):
        self.epoch, self.batch, self.error = epoch, batch, error
        self.armed = False  # not in initialize(): skorch calls that at a base fit

    def on_epoch_begin(self, net, **kwargs):
        self.seen_epochs = getattr(self, "seen_epochs", 0) + 1
        self.seen_batches = 0

    def on_train_begin(self, net, **kwargs):
        self.seen_epochs = 0

    def on_batch_end(self, net, training=False, **kwargs):
        if not (self.armed and training):
            return
        self.seen_batches += 1
        if (self.seen_epochs, self.seen_batches) == (self.epoch, self.batch):
            if self.error == "nan":
                with torch.no_grad():
                    next(net.module_.parameters())[0, 0] = float("nan")
            else:
                raise self.error


def _stream():
    return make_stream(n_months=3, n_per_month=96)


def _fitted(strategy, fault, months=2):
    X, y, m = _stream()
    clf = ContinualClassifier(strategy=strategy, callbacks=[fault], **SETTINGS)
    clf.fit(X[m < months], y[m < months], months=m[m < months])
    return clf


def _consolidation_fails(monkeypatch, clf):
    """Make the month's consolidation fail after it has changed state: the
    last part's end_month runs, then raises (replay+ewc: memory already
    holds the month)."""
    parts = clf.strategy_.parts if isinstance(clf.strategy_, Combined) else [clf.strategy_]
    cls = type(parts[-1])
    original = cls.end_month

    def end_month(self, net, X, y):
        original(self, net, X, y)
        raise RuntimeError("consolidation failed")

    monkeypatch.setattr(cls, "end_month", end_month)


FAULTS = {
    "exception at batch 3 of epoch 2": (Fault(2, 3, RuntimeError("injected")), RuntimeError,
                                        "injected"),
    "KeyboardInterrupt from a callback": (Fault(1, 2, KeyboardInterrupt()), KeyboardInterrupt,
                                          None),
    "NaN loss": (Fault(1, 2, "nan"), TrainingDivergedError, "loss became nan"),
    "failure in end_month": (Fault(), RuntimeError, "consolidation failed"),
}


@pytest.mark.parametrize("fault_name", list(FAULTS))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_failed_month_changes_nothing_and_a_retry_equals_an_unbroken_run(
        strategy, fault_name, monkeypatch):
    X, y, m = _stream()
    fault, error, match = FAULTS[fault_name]
    clf = _fitted(strategy, fault)
    before = fingerprint(clf, X)

    fault.armed = fault_name != "failure in end_month"
    with monkeypatch.context() as patch:
        if fault_name == "failure in end_month":
            _consolidation_fails(patch, clf)
        with pytest.raises(error, match=match):
            clf.partial_fit_month(X[m == 2], y[m == 2])
    assert fingerprint(clf, X) == before

    # Retrying the month gives what a run that never failed gives.
    fault.armed = False
    clf.partial_fit_month(X[m == 2], y[m == 2])
    reference = _fitted(strategy, Fault())
    reference.partial_fit_month(X[m == 2], y[m == 2])
    assert fingerprint(clf, X, timings=False) == fingerprint(reference, X, timings=False)


@pytest.mark.parametrize("strategy", ["replay+ewc", "joint", "ensemble"])
def test_fit_keeps_the_months_before_a_failure(strategy):
    X, y, m = _stream()
    fault = Fault(1, 2, RuntimeError("month 2 broke"))
    fault.fired = False

    class ArmAtMonth2(Callback):
        def on_train_begin(self, net, **kwargs):
            fault.armed = len(net.months_seen_) == 2 and not fault.fired
            fault.fired = fault.fired or fault.armed

    clf = ContinualClassifier(strategy=strategy, callbacks=[ArmAtMonth2(), fault], **SETTINGS)
    with pytest.raises(RuntimeError, match="month 2 broke"):
        clf.fit(X, y, months=m)
    assert clf.months_seen_ == [0, 1]
    reference = _fitted(strategy, Fault())
    assert fingerprint(clf, X, timings=False) == fingerprint(reference, X, timings=False)
    clf.partial_fit_month(X[m == 2], y[m == 2])  # continues from there
    assert clf.months_seen_ == [0, 1, 2]


def test_a_refit_that_fails_in_its_first_month_restores_the_old_model():
    X, y, m = _stream()
    fault = Fault(1, 1, RuntimeError("refit broke"))
    clf = _fitted("replay+ewc", fault, months=3)
    before = fingerprint(clf, X)
    fault.armed = True
    with pytest.raises(RuntimeError, match="refit broke"):
        clf.fit(X[::-1], y[::-1], months=m[::-1] + 10)
    assert fingerprint(clf, X) == before
    fault.armed = False
    clf.partial_fit_month(X[:40], y[:40])  # the old sequence goes on
    assert clf.months_seen_ == [0, 1, 2, 3]


def test_a_failed_base_fit_leaves_the_estimator_unfitted():
    X, y, m = _stream()
    fault = Fault(1, 1, RuntimeError("base broke"))
    clf = ContinualClassifier(callbacks=[fault], **SETTINGS)
    fault.armed = True
    with pytest.raises(RuntimeError, match="base broke"):
        clf.partial_fit_month(X[m == 0], y[m == 0])
    assert not hasattr(clf, "months_seen_") and not hasattr(clf, "strategy_")
    with pytest.raises(sklearn.exceptions.NotFittedError):
        clf.predict(X)


def test_rolling_back_a_reservoir_month_copies_only_the_slots_it_wrote():
    from sklearn_cf.strategies import ReservoirMemory

    memory = ReservoirMemory(capacity=1000)
    rng = np.random.default_rng(0)
    memory.add(torch.zeros(1000, 4), torch.zeros(1000, dtype=torch.long), rng)
    log = memory.begin()
    memory.add(torch.ones(100, 4), torch.ones(100, dtype=torch.long), rng)
    logged = sum(len(old_y) for _, _, old_y in log["writes"])
    assert 0 < logged <= 100  # the undo log is bounded by the month, not the memory
    memory.undo(log)
    assert torch.equal(memory.X, torch.zeros(1000, 4)) and memory.n_seen == 1000


class TestDivergence:
    def test_a_huge_learning_rate_is_refused_with_its_cause(self):
        X, y, m = _stream()
        clf = _fitted("l2", Fault())
        before = fingerprint(clf, X)
        clf.set_params(finetune_lr=1e20)
        with pytest.raises(TrainingDivergedError, match=r"month 2.*rolled back.*finetune_lr"):
            clf.partial_fit_month(X[m == 2], y[m == 2])
        clf.set_params(finetune_lr=None)
        assert fingerprint(clf, X) == before
        assert np.isfinite(clf.predict_proba(X)).all()

    def test_huge_features_are_refused_naming_the_scale(self):
        X, y, m = _stream()
        clf = _fitted("replay", Fault())
        before = fingerprint(clf, X)
        # Finite in float32, but the first layer's sums overflow.
        X_huge = np.sign(X[m == 2]) * np.float32(3e38)
        with pytest.raises(TrainingDivergedError, match=r"very large scale.*standardize"):
            clf.partial_fit_month(X_huge, y[m == 2])
        assert fingerprint(clf, X) == before

    def test_weights_made_non_finite_by_the_last_step_are_refused(self):
        X, y, m = _stream()
        n_batches = int(np.ceil(96 / SETTINGS["batch_size"]))
        fault = Fault(SETTINGS["max_epochs"], n_batches, "nan")  # after the last loss
        clf = _fitted("naive", fault)
        before = fingerprint(clf, X)
        fault.armed = True
        with pytest.raises(TrainingDivergedError, match="month 2, epoch 2: the weights of .* became NaN"):
            clf.partial_fit_month(X[m == 2], y[m == 2])
        assert fingerprint(clf, X) == before


class TestInterrupts:
    def test_early_stopping_still_ends_a_month_normally(self):
        X, y, m = _stream()
        clf = ContinualClassifier(
            strategy="replay", callbacks=[EarlyStopping(monitor="train_loss", patience=1,
                                                        threshold=10.0)],
            **dict(SETTINGS, max_epochs=30),
        )
        clf.fit(X, y, months=m)
        assert clf.months_seen_ == [0, 1, 2]
        assert all(c["rows"] < 30 * 96 for c in clf.cost_)

    def test_a_real_sigint_is_told_apart_from_early_stopping(self):
        watch = SigintWatch()
        with pytest.raises(KeyboardInterrupt):
            with watch:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10**6):  # the handler runs between bytecodes
                    pass
        assert watch.seen
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

        history = History()
        net = types.SimpleNamespace(history=history, verbose=0)
        stopper = EarlyStopping(patience=1, threshold=10.0)
        stopper.on_train_begin(net)
        for epoch in (1, 2):
            history.new_epoch()
            history.record("epoch", epoch)
            history.record("valid_loss", 1.0)
            try:
                stopper.on_epoch_end(net)
            except KeyboardInterrupt as exc:
                assert epoch == 2 and raised_by_early_stopping(exc)
        assert stopper.misses_ == 1
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            assert not raised_by_early_stopping(exc)


_INTERRUPTED_FIT = textwrap.dedent("""
    import sys, pathlib, time
    import numpy as np, torch
    from skorch.callbacks import Callback
    sys.path.insert(0, {tests!r})
    from conftest import make_stream
    from sklearn_cf import ContinualClassifier

    torch.set_num_threads(2)
    ready = pathlib.Path({ready!r})

    class Ready(Callback):
        # Signals that month 2 trains, and makes it last (no result changes).

        def on_epoch_end(self, net, **kwargs):
            if len(net.months_seen_) == 2:
                ready.touch()
                time.sleep(0.05)

    X, y, m = make_stream(n_months=3, n_per_month=96)
    clf = ContinualClassifier(strategy="replay+ewc", hidden_units=(16,), max_epochs=2,
                              finetune_epochs=200, batch_size=16, random_state=0,
                              callbacks=[Ready()])
    try:
        clf.fit(X, y, months=m)
    except KeyboardInterrupt:
        clf.save({checkpoint!r})
        print("months kept:", clf.months_seen_)
        sys.exit(130)
    sys.exit(0)
""")


@pytest.mark.slow
def test_ctrl_c_during_fit_keeps_the_months_before_it(tmp_path):
    ready, checkpoint = tmp_path / "ready", tmp_path / "model.pt"
    script = _INTERRUPTED_FIT.format(tests=os.path.dirname(__file__), ready=str(ready),
                                     checkpoint=str(checkpoint))
    # A child of a background job starts with SIGINT ignored; restore the
    # default so that Python installs its KeyboardInterrupt handler.
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for _ in range(600):
            if ready.exists() or proc.poll() is not None:
                break
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        assert ready.exists(), proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "months kept: [0, 1]" in out

    X, y, m = make_stream(n_months=3, n_per_month=96)
    settings = dict(strategy="replay+ewc", hidden_units=(16,), max_epochs=2,
                    finetune_epochs=200, batch_size=16, random_state=0)
    # The saved model had a custom callback, which a safe checkpoint does not store.
    resumed = sklearn_cf.load(checkpoint, estimator=ContinualClassifier(**settings))
    reference = ContinualClassifier(**settings)
    reference.fit(X[m < 2], y[m < 2], months=m[m < 2])
    np.testing.assert_allclose(resumed.predict_proba(X), reference.predict_proba(X),
                               rtol=1e-6, atol=1e-7)
    resumed.set_params(finetune_epochs=1)
    resumed.partial_fit_month(X[m == 2], y[m == 2])
    assert resumed.months_seen_ == [0, 1, 2]

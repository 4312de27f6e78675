"""The tight month loop: with no callback listening to batches a month's
epochs run without skorch's per-batch notifications, and give the same
weights (to the bit) and the same history as skorch's per-batch path, which
``_tight_loop = False`` forces and which serves as the oracle."""

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping
from skorch.dataset import ValidSplit

import sklearn_cf._estimator._month as month_module
from sklearn_cf import ContinualClassifier
from sklearn_cf.exceptions import TrainingDivergedError

PARAMS = {
    "naive": {},
    "replay": {"memory_size": 100},
    "l2": {"reg_lambda": 5.0},
    "ewc": {"reg_lambda": 50.0},
    "replay+ewc": {"reg_lambda": 50.0, "memory_size": 100},
    "der": {"memory_size": 100},
    "lwf": {},
    "joint": {},
}


class BatchEvents(ContinualClassifier):
    """Counts skorch's per-batch notifications (a spy; it listens to no
    event itself, so the tight loop may run)."""

    def notify(self, method_name, **cb_kwargs):
        if method_name in ("on_batch_begin", "on_batch_end", "on_grad_computed"):
            self.__dict__.setdefault("batch_events_", []).append(method_name)
        return super().notify(method_name, **cb_kwargs)


class SeesBatches(Callback):
    """A user's batch-level callback: the rows of every training batch."""

    def initialize(self):
        self.rows = []
        return self

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.rows.append(len(batch[0]))


def fit_both(X, y, months, sample_weight=None, **params):
    """The same fit through the tight loop and through skorch's per-batch
    path; each month trained with ``partial_fit_month``."""
    fitted = []
    for tight in (True, False):
        clf = BatchEvents(**{**FAST, **params})
        clf._tight_loop = tight
        for k, label in enumerate(np.unique(months)):
            rows = months == label
            w = None if sample_weight is None else sample_weight[rows]
            clf.partial_fit_month(X[rows], y[rows], classes=np.unique(y), month=label,
                                  sample_weight=w)
            assert k + 1 == len(clf.months_seen_)
        fitted.append(clf)
    return fitted


def epoch_records(clf):
    """Every value of the history but the epochs' durations."""
    return [{k: v for k, v in entry.items() if k != "dur"} for entry in clf.history]


def assert_same_training(tight, per_batch):
    # The tight loop ran: not one per-batch notification. The oracle did not.
    assert "batch_events_" not in vars(tight)
    n_batches = sum(e["train_batch_count"] + e.get("valid_batch_count", 0)
                    for e in per_batch.history)
    assert per_batch.batch_events_.count("on_batch_begin") == n_batches
    for (name, a), (_, b) in zip(tight.module_.state_dict().items(),
                                 per_batch.module_.state_dict().items()):
        assert torch.equal(a, b), name
    for a, b in zip(tight.optimizer_.state_dict()["state"].values(),
                    per_batch.optimizer_.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert epoch_records(tight) == epoch_records(per_batch)
    assert [c["rows"] for c in tight.cost_] == [c["rows"] for c in per_batch.cost_]


@pytest.mark.parametrize("strategy", list(PARAMS))
def test_every_strategy_trains_to_the_same_bits(strategy):
    X, y, months = make_stream(n_months=3)
    tight, per_batch = fit_both(X, y, months, strategy=strategy, **PARAMS[strategy])
    assert_same_training(tight, per_batch)
    history = tight.history
    assert len(history) == 3 * FAST["max_epochs"]
    # skorch's batch records are all there: the train loss is their
    # size-weighted mean, as PassthroughScoring computes it.
    for entry in history:
        losses = [b["train_loss"] for b in entry["batches"]]
        sizes = [b["train_batch_size"] for b in entry["batches"]]
        assert len(losses) == entry["train_batch_count"] > 0
        assert entry["train_loss"] == np.average(losses, weights=sizes)
    if strategy in ("l2", "ewc", "replay+ewc"):
        assert all("train_penalty" in entry for entry in history[FAST["max_epochs"]:])


@pytest.mark.parametrize("strategy", ["naive", "replay"])
def test_sample_and_class_weights_train_to_the_same_bits(strategy):
    X, y, months = make_stream(n_months=3)
    w = np.random.default_rng(1).uniform(0.2, 3.0, size=len(y))
    tight, per_batch = fit_both(X, y, months, sample_weight=w, strategy=strategy,
                                class_weight="balanced", **PARAMS[strategy])
    assert_same_training(tight, per_batch)


def test_validation_split_and_early_stopping_give_the_same_epochs():
    X, y, months = make_stream(n_months=2, n_per_month=200)
    tight, per_batch = fit_both(
        X, y, months, strategy="replay", memory_size=100, max_epochs=30, lr=0.05,
        train_split=ValidSplit(0.25, random_state=0),
        callbacks=[("stop", EarlyStopping(patience=2))])
    assert_same_training(tight, per_batch)
    # Early stopping did end months early, and validation ran every epoch.
    assert len(tight.history) < 2 * 30
    assert all(entry["valid_batch_count"] > 0 and "valid_loss" in entry
               for entry in tight.history)


def test_a_user_batch_callback_sees_every_batch():
    X, y, months = make_stream(n_months=2)
    clf = BatchEvents(callbacks=[("sees", SeesBatches())], **FAST)
    assert month_module.batch_listeners(clf.initialize_callbacks()) == ["sees"]
    clf.fit(X, y, months=months)
    rows = sum(b["train_batch_size"] for e in clf.history for b in e["batches"])
    seen = dict(clf.callbacks_)["sees"].rows
    assert seen and sum(seen) == rows
    assert sum(c["rows"] for c in clf.cost_) == rows
    # Its path is skorch's: the same weights as with the tight loop forced off.
    forced = BatchEvents(callbacks=[("sees", SeesBatches())], **FAST)
    forced._tight_loop = False
    forced.fit(X, y, months=months)
    for a, b in zip(clf.module_.parameters(), forced.module_.parameters()):
        assert torch.equal(a, b)


def test_a_gradient_callback_keeps_the_per_batch_path():
    X, y, months = make_stream(n_months=1)
    clf = BatchEvents(callbacks=[("clip", GradientNormClipping(0.1))], **FAST)
    clf.fit(X, y, months=months)
    assert clf.batch_events_.count("on_grad_computed") == clf.history[-1]["train_batch_count"] \
        + clf.history[0]["train_batch_count"]


def test_the_default_callbacks_and_the_progress_line_do_not_listen_to_batches():
    import io

    from sklearn_cf._epoch_progress import EpochProgress

    clf = ContinualClassifier(callbacks=[("progress", EpochProgress(0, 2, io.StringIO()))],
                              **FAST)
    assert month_module.batch_listeners(clf.initialize_callbacks()) == []


def test_an_estimator_subclass_listening_to_batches_keeps_the_per_batch_path():
    class Listens(BatchEvents):
        def on_batch_end(self, net, **kwargs):
            self.__dict__["seen_"] = self.__dict__.get("seen_", 0) + 1

    X, y, months = make_stream(n_months=1)
    clf = Listens(**FAST).fit(X, y, months=months)
    assert month_module.batch_listeners(clf) == ["the estimator"]
    assert clf.seen_ == sum(e["train_batch_count"] for e in clf.history)


def diverging():
    X, y, months = make_stream(n_months=2)
    X = X * 1e4
    return X, y, months


@pytest.mark.parametrize("tight", [True, False])
def test_a_diverging_month_is_refused_on_either_path(tight):
    X, y, months = diverging()
    clf = ContinualClassifier(**{**FAST, "lr": 1e8, "optimizer": torch.optim.SGD})
    clf._tight_loop = tight
    with pytest.raises(TrainingDivergedError, match="the training loss became"):
        clf.fit(X, y, months=months)


def test_a_deferred_loss_check_still_refuses_the_month(monkeypatch):
    # The GPU's once-per-epoch check, exercised on the CPU.
    monkeypatch.setattr(month_module, "defers_loss_check", lambda net: True)
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(**{**FAST, "optimizer": torch.optim.SGD, "lr": 0.01})
    clf.fit(X[months == 0], y[months == 0])
    before = [p.detach().clone() for p in clf.module_.parameters()]
    clf.set_params(lr=1e8)
    with pytest.raises(TrainingDivergedError,
                       match=r"the training loss became (nan|inf).*at batch \d+ of the epoch"):
        clf.partial_fit_month(X[months == 1] * 1e4, y[months == 1])
    assert clf.months_seen_ == [0]
    for a, b in zip(before, clf.module_.parameters()):
        assert torch.equal(a, b)
    assert "loss_check_deferred_" not in vars(clf)


# ---------------------------------------------------------------------------
# The lean step: skorch's step without its layers, when nothing can tell
# ---------------------------------------------------------------------------
def count_lean_steps(monkeypatch):
    calls = []
    lean = month_module.lean_train_step

    def spy(net, batch, device):
        calls.append(len(batch[0]))
        return lean(net, batch, device)

    monkeypatch.setattr(month_module, "lean_train_step", spy)
    return calls


def test_the_lean_step_trains_every_batch_of_a_plain_estimator(monkeypatch):
    calls = count_lean_steps(monkeypatch)
    X, y, months = make_stream(n_months=2)
    tight, per_batch = fit_both(X, y, months, strategy="replay+ewc",
                                **PARAMS["replay+ewc"])
    assert_same_training(tight, per_batch)
    # Every training row of the tight fit went through the lean step; the
    # per-batch oracle never called it.
    assert sum(calls) == sum(c["rows"] for c in tight.cost_) > 0


class OwnLoss(BatchEvents):
    """A subclass with its own get_loss: the lean step calls it."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return super().get_loss(y_pred, y_true, X=X, training=training) * 0.5


class OwnInfer(BatchEvents):
    """A subclass with its own infer (inputs halved): the lean step would
    skip it, so the tight loop keeps skorch's step."""

    def infer(self, x, **fit_params):
        return super().infer(x * 0.5, **fit_params)


def test_the_lean_step_calls_a_subclass_get_loss(monkeypatch):
    calls = count_lean_steps(monkeypatch)
    X, y, months = make_stream(n_months=1)
    fitted = []
    for cls in (OwnLoss, BatchEvents):
        clf = cls(**FAST)
        fitted.append(clf.fit(X, y, months=months))
    halved, plain = fitted
    assert len(calls) == sum(e["train_batch_count"] for e in halved.history) \
        + sum(e["train_batch_count"] for e in plain.history)
    # The first batch's loss (same weights and rows in both fits) is half
    # the plain one: the lean step called the override.
    assert halved.history[0]["batches"][0]["train_loss"] == pytest.approx(
        plain.history[0]["batches"][0]["train_loss"] / 2)


class TwiceClosure(torch.optim.SGD):
    """A user-written optimizer that evaluates its closure twice, an update
    after each (a look-ahead of its own): it needs skorch's closure."""

    def step(self, closure=None):
        loss = super().step(closure)
        super().step(closure)
        return loss


@pytest.mark.parametrize("variant", ["own infer", "closure twice", "LBFGS"])
def test_the_lean_step_stands_aside_when_it_could_change_the_result(monkeypatch, variant):
    calls = count_lean_steps(monkeypatch)
    X, y, months = make_stream(n_months=1)
    cls, params = BatchEvents, dict(FAST)
    if variant == "own infer":
        cls = OwnInfer
    elif variant == "closure twice":
        params.update(optimizer=TwiceClosure, lr=0.05)
    else:
        params.update(optimizer=torch.optim.LBFGS, lr=0.1, optimizer__max_iter=2)
    fitted = []
    for tight in (True, False):
        clf = cls(**params)
        clf._tight_loop = tight
        fitted.append(clf.fit(X, y, months=months))
    assert calls == []
    tight, per_batch = fitted
    assert "batch_events_" not in vars(tight)  # still the tight loop, skorch's step
    for a, b in zip(tight.module_.parameters(), per_batch.module_.parameters()):
        assert torch.equal(a, b)
    if variant == "closure twice":
        # The closure's second call trained on the batch again: a plain SGD
        # step (what the lean step does) gives other weights.
        plain = ContinualClassifier(**{**params, "optimizer": torch.optim.SGD}).fit(
            X, y, months=months)
        assert not all(torch.equal(a, b) for a, b in zip(tight.module_.parameters(),
                                                         plain.module_.parameters()))

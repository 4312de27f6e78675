"""Dark Experience Replay (DER, DER++): the loss term against a hand
computation, the logits kept in memory against the month's snapshot, the
names and parameters, and a month as a transaction (RAM, disk,
class-balanced memory) and after a checkpoint."""

import copy
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FAST, fingerprint, make_stream
from skorch.callbacks import Callback

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf.strategies import DER, ClassBalancedMemory, DERPlusPlus, make_strategy
from sklearn_cf.strategies import _der

N = 120  # rows per month in make_stream
D = 6  # features in make_stream


def snapshot_module(clf, k):
    """The network as it was after month k (its snapshot), in eval mode."""
    module = copy.deepcopy(clf.module_)
    module.load_state_dict(clf.snapshots_[k].states[0])
    return module.eval()


def month_logits(clf, k, X):
    with torch.no_grad():
        return snapshot_module(clf, k)(torch.from_numpy(X))


# -- The loss term ------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha, beta", [(0.7, 0.0), (0.7, 0.3), (0.0, 1.5)])
def test_the_loss_term_is_alpha_mse_plus_beta_ce_on_the_buffer_batch(monkeypatch, alpha, beta,
                                                                      weighted):
    X, y, months = make_stream(n_months=3)
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y)) if weighted else None
    clf = ContinualClassifier(strategy="der", strategy__alpha=alpha, strategy__beta=beta,
                              strategy__store_logits="month_end", **FAST)
    clf.fit(X[months < 2], y[months < 2], months=months[months < 2],
            sample_weight=None if w is None else w[months < 2])
    # Memory holds every row of months 0 and 1, in order (memory_size=None):
    # fix the buffer draws (both terms') to rows of both months.
    index = np.array([5, 130, 0, 239, 77, 121])
    monkeypatch.setattr(_der, "_draw_rows", lambda rng, population, k: index[:k])
    der = clf.strategy_
    X_new = torch.from_numpy(X[months == 2][:6])
    der.month_data(clf, X_new, torch.from_numpy(y[months == 2][:6]))
    clf.module_.eval()
    y_pred = clf.module_(X_new)
    term = der.batch_penalty(clf, X_new, y_pred, torch.from_numpy(y[months == 2][:6]))

    # By hand: the rows, their labels, and the logits of the network at the
    # end of the month each row was trained in (its snapshot).
    x_buf = torch.from_numpy(X[index])
    z_buf = torch.cat([month_logits(clf, int(i >= N), X[i:i + 1]) for i in index])
    y_buf = torch.from_numpy(y[index])
    out = clf.module_(x_buf)
    if w is None:
        expected = alpha * F.mse_loss(out, z_buf) + beta * F.cross_entropy(out, y_buf)
    else:
        w_buf = torch.from_numpy(w[index]).float()
        mse = ((out - z_buf) ** 2).mean(dim=1)
        ce = F.cross_entropy(out, y_buf, reduction="none")
        # Divided by the expected weight of the buffer batch: its rows
        # times the mean weight of the memory (every row of months 0, 1).
        expected_weight = len(index) * w[months < 2].mean()
        expected = (alpha * (w_buf * mse).sum() + beta * (w_buf * ce).sum()) / expected_weight
    torch.testing.assert_close(term, expected, rtol=1e-5, atol=1e-6)
    assert term.requires_grad  # it trains the network


def test_no_term_while_memory_is_empty_or_both_weights_are_zero():
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(strategy="der++", strategy__store_logits="month_end", **FAST)
    clf.partial_fit_month(X[months == 0], y[months == 0])
    X_t, y_t = torch.from_numpy(X[:4]), torch.from_numpy(y[:4])
    der = clf.strategy_
    der.set_params(alpha=0.0, beta=0.0)
    der.month_data(clf, X_t, y_t)
    assert der.batch_penalty(clf, X_t, clf.module_(X_t), y_t) is None
    der.start(clf)  # empty memory: the base fit
    assert der.month_data(clf, X_t, y_t) is None and der.draws is None
    assert der.batch_penalty(clf, X_t, clf.module_(X_t), y_t) is None


def test_buffer_batches_are_the_size_of_the_batch_and_without_replacement():
    rng = np.random.default_rng(0)
    index = _der._draw_rows(rng, 50, 32)
    assert len(index) == 32 and len(set(index.tolist())) == 32
    assert len(_der._draw_rows(rng, 10, 32)) == 32  # a small memory: with replacement


def test_the_term_keeps_the_networks_outputs_on_past_rows():
    # Oracle: naive fine-tuning. With a strong logit-matching term the
    # outputs on month 0's rows move far less during month 1.
    X, y, months = make_stream(n_months=2)
    drift = {}
    for strategy, params in [("naive", {}), ("der", {"strategy__alpha": 5.0})]:
        clf = ContinualClassifier(strategy=strategy, **params, **dict(FAST, max_epochs=10))
        clf.fit(X, y, months=months)
        past = X[months == 0]
        drift[strategy] = float(F.mse_loss(month_logits(clf, 1, past), month_logits(clf, 0, past)))
    assert drift["der"] < 0.5 * drift["naive"]


# -- What enters memory -------------------------------------------------------

@pytest.mark.parametrize("extra", [{}, {"memory_size": 150},
                                   {"memory_size": 150,
                                    "strategy__memory_policy": "class_balanced"}])
def test_memory_holds_the_logits_of_the_end_of_the_month_each_row_entered(extra):
    X, y, months = make_stream(n_months=4, id_column=True)
    clf = ContinualClassifier(strategy="der++", strategy__store_logits="month_end",
                              **dict(FAST, dropout=0.3), **extra)
    stored = {}  # row id -> logits stored when it entered
    for k in range(4):
        clf.partial_fit_month(X[months == k], y[months == k])
        rows = torch.cat([X_ for X_, _ in clf.strategy_.memory.sources()])
        ids = rows[:, 0].long().numpy()
        logits = rows[:, D:]
        new = ids // N == k
        assert new.any()
        # Rows of month k: the network after month k (the snapshot, eval mode).
        torch.testing.assert_close(logits[new], month_logits(clf, k, X[ids[new]]),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(rows[:, :D].numpy(), X[ids])
        # Rows of earlier months: exactly as they were stored.
        for i, z in zip(ids[~new], logits[~new]):
            assert torch.equal(z, stored[i])
        stored.update(zip(ids[new], logits[new]))


def test_sample_weights_enter_memory_with_their_rows():
    X, y, months = make_stream(n_months=3, id_column=True)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y)).astype(np.float32)
    clf = ContinualClassifier(strategy="der", memory_size=100, **FAST)
    clf.fit(X, y, months=months, sample_weight=w)
    (rows, _), = clf.strategy_.memory.sources()
    (weights,) = clf.strategy_.memory.weights()
    np.testing.assert_array_equal(weights.numpy(), w[rows[:, 0].long().numpy()])


@pytest.mark.parametrize("memory_size", [None, 150])
@pytest.mark.parametrize("store_logits", ["first_seen", "month_end"])
def test_buffer_rows_keep_the_weight_of_their_own_month(store_logits, memory_size):
    # Class 1 is 20%, 50% and 80% of months 0, 1, 2: its "balanced" weight
    # differs by month. A row in memory weighs its sample weight times the
    # class weight of the month it was trained in (sklearn's, on that
    # month's rows), whatever month trains next.
    from sklearn.utils.class_weight import compute_class_weight

    X, _, months = make_stream(n_months=3, id_column=True)
    y = np.concatenate([(np.arange(N) % 10 < 2 * k + 2 + k).astype(int) for k in range(3)])
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y)).astype(np.float32)
    clf = ContinualClassifier(strategy="der", strategy__store_logits=store_logits,
                              class_weight="balanced", memory_size=memory_size, **FAST)
    per_month = [compute_class_weight("balanced", classes=np.arange(2), y=y[months == k])
                 for k in range(3)]
    assert per_month[0][1] > 1.5 and per_month[2][1] < 0.7
    for k in range(3):
        rows = months == k
        clf.partial_fit_month(X[rows], y[rows], classes=[0, 1], sample_weight=w[rows])
        memory = clf.strategy_.memory
        ids = torch.cat([X_[:, 0] for X_, _ in memory.sources()]).long().numpy()
        kept = torch.cat(memory.weights()).numpy()
        expected = w[ids] * np.array([per_month[months[i]][y[i]] for i in ids])
        np.testing.assert_allclose(kept, expected, rtol=1e-5)
        assert set(months[ids]) == set(range(k + 1))


# -- Names and parameters -----------------------------------------------------

def test_the_names_build_their_classes_with_their_defaults():
    assert type(make_strategy("der")) is DER and type(make_strategy("der++")) is DERPlusPlus
    assert make_strategy("der").get_params() == {
        "alpha": 0.5, "beta": 0.0, "buffer_batch_size": None, "memory_dir": None,
        "memory_policy": "reservoir", "memory_size": None, "store_logits": "first_seen"}
    assert make_strategy("der++").beta == 0.5
    clf = ContinualClassifier(strategy="der++", strategy__alpha=0.2, memory_size=30)
    assert repr(clf._make_strategy()) == "DERPlusPlus(alpha=0.2, beta=0.5, memory_size=30)"
    with pytest.raises(ValueError, match="Did you mean 'der\\+\\+'"):
        make_strategy("der+")


def test_parameters_between_months_take_effect():
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="der", strategy__alpha=0.2, **FAST)
    clf.fit(X[months < 2], y[months < 2], months=months[months < 2])
    clf.set_params(strategy__alpha=0.9, strategy__beta=0.1)
    clf.partial_fit_month(X[months == 2], y[months == 2])
    assert (clf.strategy_.alpha, clf.strategy_.beta) == (0.9, 0.1)


@pytest.mark.parametrize("params, error, message", [
    (dict(strategy__alpha=-1.0), ValueError, "alpha"),
    (dict(strategy__beta="high"), TypeError, "beta"),
    (dict(strategy__memory_policy="fifo", memory_size=10), ValueError, "memory_policy"),
    (dict(strategy__store_logits="end"), ValueError, "store_logits.*first_seen.*month_end"),
    (dict(strategy__memory_policy="class_balanced"), ValueError,
     "needs a capacity.*memory_size"),
    (dict(criterion=torch.nn.NLLLoss), TypeError, "CrossEntropyLoss"),
])
def test_bad_parameters_are_refused_before_anything_is_fitted(params, error, message):
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(strategy="der", **dict(FAST, **params))
    with pytest.raises(error, match=message):
        clf.fit(X, y, months=months)
    assert not clf.__sklearn_is_fitted__()


# -- A month is a transaction; checkpoints ------------------------------------

class _Boom(Callback):
    armed = False

    def on_batch_end(self, net, training=False, **kwargs):
        if self.armed and training:
            raise RuntimeError("boom")


def _files(folder):
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                found[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return found


CASES = {
    "der, all rows": ("der", {}),
    "der++, reservoir": ("der++", {"memory_size": 150}),
    "der++, class-balanced": ("der++", {"memory_size": 150,
                                        "strategy__memory_policy": "class_balanced"}),
    "der++, reservoir, month-end logits": ("der++", {"memory_size": 150,
                                                     "strategy__store_logits": "month_end"}),
}


def _settings(case, tmp_path, on_disk):
    strategy, extra = CASES[case]
    disk = {"memory_dir": tmp_path / "memory"} if on_disk else {}
    return dict(FAST, dropout=0.1, strategy=strategy, **extra, **disk)


def _same_run(clf, reference, X):
    """Two runs are the same: predictions, weights, optimizer, generator,
    snapshots, rows and logits in memory; the strategy's state too, unless
    one memory is on disk (its state then names files instead of holding
    tensors). Not skorch's history, which a checkpoint does not keep."""
    got, want = fingerprint(clf, X, timings=False), fingerprint(reference, X, timings=False)
    del got["history"], want["history"]
    if clf.memory_dir is not None:
        for key in ("strategy", "strategy_repr"):
            del got[key], want[key]
    assert got == want
    memory, other = clf.strategy_.memory, reference.strategy_.memory
    if isinstance(memory, ClassBalancedMemory):
        assert memory.class_seen.tolist() == other.class_seen.tolist()
        assert memory.class_full.tolist() == other.class_full.tolist()


@pytest.mark.parametrize("where", ["training", "end_month"])
@pytest.mark.parametrize("on_disk", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_month_changes_nothing_and_a_retry_equals_an_unbroken_run(
        tmp_path, monkeypatch, case, on_disk, where):
    X, y, months = make_stream(n_months=4)
    settings = _settings(case, tmp_path, on_disk)
    boom = _Boom()
    clf = ContinualClassifier(callbacks=[boom], **settings)
    clf.fit(X[months < 3], y[months < 3], months=months[months < 3])
    before, files = fingerprint(clf, X), _files(tmp_path)
    memory = clf.strategy_.memory
    counts = (memory.class_seen.tolist(), memory.class_full.tolist()) \
        if isinstance(memory, ClassBalancedMemory) else None
    if where == "training":
        boom.armed = True
    else:  # fail after the month's rows and logits were written to memory
        add = type(memory).add

        def add_then_fail(self, *args, **kwargs):
            add(self, *args, **kwargs)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(type(memory), "add", add_then_fail)
    with pytest.raises((RuntimeError, OSError)):
        clf.partial_fit_month(X[months == 3], y[months == 3])
    monkeypatch.undo()
    assert fingerprint(clf, X) == before
    assert _files(tmp_path) == files  # byte-identical, no journal left behind
    if counts is not None:
        assert (memory.class_seen.tolist(), memory.class_full.tolist()) == counts

    boom.armed = False
    clf.partial_fit_month(X[months == 3], y[months == 3])
    reference = ContinualClassifier(**dict(settings, memory_dir=None)).fit(X, y, months=months)
    _same_run(clf, reference, X)


@pytest.mark.parametrize("on_disk", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_a_checkpoint_resumes_like_an_unbroken_run(tmp_path, case, on_disk):
    X, y, months = make_stream(n_months=4)
    settings = _settings(case, tmp_path, on_disk)
    clf = ContinualClassifier(**settings)
    clf.fit(X[months < 3], y[months < 3], months=months[months < 3])
    clf.save(tmp_path / "model.pt")
    resumed = sklearn_cf.load(tmp_path / "model.pt")
    assert repr(resumed.strategy_) == repr(clf.strategy_)
    resumed.partial_fit_month(X[months == 3], y[months == 3])
    reference = ContinualClassifier(**dict(settings, memory_dir=None)).fit(X, y, months=months)
    _same_run(resumed, reference, X)


@pytest.mark.parametrize("buffer_batch_size, expected", [(None, {32, 24}), (5, {5})])
def test_the_buffer_batch_has_buffer_batch_size_rows(monkeypatch, buffer_batch_size, expected):
    from sklearn_cf.strategies import _der

    drawn = []
    draw = _der._draw_rows
    monkeypatch.setattr(_der, "_draw_rows",
                        lambda gen, n_memory, k: drawn.append(k) or draw(gen, n_memory, k))
    X, y, months = make_stream(n_months=2)
    ContinualClassifier(strategy="der", strategy__buffer_batch_size=buffer_batch_size,
                        strategy__store_logits="month_end", **FAST).fit(X, y, months=months)
    # None: as many rows as the training batch (120 rows: batches of 32 and 24).
    assert set(drawn) == expected and len(drawn) == 2 * 4

"""Rare classes: sample_weight and class_weight in the loss, in replay memory
and in the EWC Fisher, each checked against an independent computation."""

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import recall_score
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import Callback

import sklearn_cf
from sklearn_cf import ContinualClassifier, fisher_diagonal
from sklearn_cf._data import MonthData
from sklearn_cf.strategies import Strategy

from conftest import FAST, fingerprint, make_stream


def _weights(n, seed=1):
    return np.random.default_rng(seed).uniform(0.2, 3.0, size=n)


class _Capture(Callback):
    """Record, at the start of every month, the class weights the month
    trains with and the labels of its first epoch."""

    def __init__(self):
        self.months = []

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        vector = net.month_class_weight_
        self.months.append((None if vector is None else vector.cpu().numpy(),
                            X.plan_labels().numpy()))


# -- the loss ---------------------------------------------------------------

def test_one_step_equals_the_weighted_mean_loss_computed_by_hand():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3))
    X = torch.randn(10, 4).numpy()
    y = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1, 2])
    w = _weights(10)
    class_weight = {0: 0.5, 2: 4.0}
    clf = ContinualClassifier(module=module, optimizer=torch.optim.SGD, lr=0.5, max_epochs=1,
                              batch_size=10, class_weight=class_weight, random_state=0)
    clf.fit(X, y, sample_weight=w)

    # Oracle: one SGD step on the weighted mean of the rows' cross-entropies,
    # sum_i v_i CE_i / sum_i v_i with v_i = w_i * cw[y_i], written out.
    oracle = copy.deepcopy(module)
    logits = oracle(torch.from_numpy(X))
    per_row = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="none")
    v = torch.from_numpy(w).float() * torch.tensor([0.5, 1.0, 4.0])[torch.from_numpy(y)]
    loss = (per_row * v).sum() / v.sum()
    loss.backward()
    with torch.no_grad():
        for p in oracle.parameters():
            p -= 0.5 * p.grad
    for (name, got), want in zip(clf.module_.state_dict().items(), oracle.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
    # The loss skorch recorded is that weighted mean, too.
    assert clf.history[-1, "train_loss"] == pytest.approx(float(loss.detach()), rel=1e-5)


class _Frozen(torch.optim.SGD):
    """An optimizer that computes every step's gradient and never moves:
    the gradients of all the batches of an epoch are taken at one model."""

    def step(self, closure=None):
        return closure() if closure is not None else None


class _Gradients(Callback):
    """Each training batch's gradient (all parameters, flat) and rows."""

    def __init__(self):
        self.grads, self.rows = [], []

    def on_grad_computed(self, net, named_parameters, batch=None, **kwargs):
        self.grads.append(torch.cat([p.grad.detach().flatten().clone()
                                     for _, p in named_parameters]))
        self.rows.append(len(batch[0]))

    def epoch_gradient(self):
        """The expected gradient of a step over the epoch: the batches'
        gradients averaged by their rows (the last batch may be smaller)."""
        n = sum(self.rows)
        return sum(r * g for r, g in zip(self.rows, self.grads)) / n


def _mean_gradient(module, X, y):
    """Oracle: the gradient of the plain mean cross-entropy over rows."""
    module = copy.deepcopy(module)
    module.zero_grad()
    loss = torch.nn.functional.cross_entropy(module(torch.as_tensor(X)), torch.as_tensor(y))
    loss.backward()
    return torch.cat([p.grad.flatten() for p in module.parameters()])


@pytest.mark.parametrize("batch_size", [1, 16, 256])
def test_integer_weights_equal_repeated_rows_in_expectation(batch_size):
    # A weight of k is the row k times in the expected gradient of a step,
    # at any batch size; the oracle is the mean gradient over the dataset
    # with the rows repeated (weight 0: left out).
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=300)
    w = rng.integers(0, 4, size=300)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    start = copy.deepcopy(module)
    spy = _Gradients()
    ContinualClassifier(module=module, optimizer=_Frozen, batch_size=batch_size,
                        max_epochs=1, callbacks=[spy], random_state=0).fit(
        X, y, sample_weight=w.astype(float))
    repeated = np.repeat(np.arange(300), w)
    torch.testing.assert_close(spy.epoch_gradient(),
                               _mean_gradient(start, X[repeated], y[repeated]),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 16, 256])
def test_balanced_gives_a_1_percent_class_half_of_the_gradient(batch_size):
    # Each row is the one-hot of its class and the network a linear map
    # from 0: a row's gradient is (softmax(0) - e_y) in the column of its
    # class, the same size for every row, so the column norms measure each
    # class's share of the gradient. "balanced" promises 1/2 (hand-computed:
    # 10 rows of weight 1000/(2*10) = 50 against 990 of 1000/(2*990));
    # dividing by each batch's own weight gave 0.01, 0.13 and 0.40 here.
    rng = np.random.default_rng(0)
    y = np.zeros(1000, dtype=int)
    y[rng.choice(1000, 10, replace=False)] = 1
    X = np.eye(2, dtype=np.float32)[y]
    module = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.zeros_(module.weight)
    spy = _Gradients()
    ContinualClassifier(module=module, optimizer=_Frozen, batch_size=batch_size,
                        max_epochs=1, class_weight="balanced", callbacks=[spy],
                        random_state=0).fit(X, y)
    by_class = spy.epoch_gradient().reshape(2, 2).norm(dim=0)
    assert float(by_class[1] / by_class.sum()) == pytest.approx(0.5, abs=1e-5)


class _Plans(Callback):
    """The rows (by the id in column 0) of each training epoch's plan."""

    def __init__(self):
        self.plans = []

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        X = dataset_train.rows(dataset_train.plan)[0]
        self.plans.append((X[:, 0].numpy().astype(int), net.epoch_mean_weight_))


def test_a_replay_mix_is_weighed_by_the_mean_weight_of_the_rows_it_draws():
    # Month 1 trains on its rows mixed with replayed rows of month 0, each
    # with its own sample weight, times the class weight of its label. The
    # expected gradient is that of the epoch's rows each repeated by its
    # weight: the weighted mean over the rows the epoch drew (oracle).
    X, y, months = make_stream(n_months=2, n_per_month=120, id_column=True)
    X = X.astype(np.float32)
    w = np.random.default_rng(5).integers(1, 4, size=len(y)).astype(float)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 4), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 2))
    spy, plans = _Gradients(), _Plans()
    clf = ContinualClassifier(module=module, optimizer=_Frozen, strategy="replay",
                              rehearsal_ratio=0.3, batch_size=16, max_epochs=1,
                              class_weight={1: 3.0}, callbacks=[spy, plans], random_state=0)
    clf.partial_fit_month(X[months == 0], y[months == 0], classes=[0, 1],
                          sample_weight=w[months == 0])
    spy.grads, spy.rows = [], []
    start = copy.deepcopy(clf.module_)
    clf.partial_fit_month(X[months == 1], y[months == 1], sample_weight=w[months == 1])
    ids, mean_weight = plans.plans[-1]
    assert (months[ids] == 0).any() and (months[ids] == 1).any()
    v = w[ids] * np.where(y[ids] == 1, 3.0, 1.0)
    assert mean_weight == pytest.approx(v.mean())
    repeated = np.repeat(ids, v.astype(int))
    torch.testing.assert_close(spy.epoch_gradient(),
                               _mean_gradient(start, X[repeated], y[repeated]),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 7.5])
def test_equal_weights_change_nothing(scale):
    # The weighted mean of each batch does not depend on a common scale.
    X, y, months = make_stream()
    plain = ContinualClassifier(strategy="replay+ewc", **FAST).fit(X, y, months=months)
    same = ContinualClassifier(strategy="replay+ewc", **FAST).fit(
        X, y, months=months, sample_weight=np.full(len(y), scale))
    np.testing.assert_allclose(same.predict_proba(X), plain.predict_proba(X), atol=1e-5)
    for name, F in plain.strategy_.parts[1].fisher_diag.items():
        torch.testing.assert_close(same.strategy_.parts[1].fisher_diag[name], F)


def test_a_weight_of_two_equals_the_row_twice():
    # One batch per epoch, SGD: weighing rows 2 is training on them twice.
    X, y, months = make_stream(n_months=1, n_per_month=40)
    twice = np.r_[np.arange(40), np.arange(10)]
    params = dict(hidden_units=(8,), max_epochs=3, batch_size=-1,
                  optimizer=torch.optim.SGD, lr=0.1, random_state=0)
    weighted = ContinualClassifier(**params).fit(
        X, y, sample_weight=np.r_[np.full(10, 2.0), np.ones(30)])
    repeated = ContinualClassifier(**params).fit(X[twice], y[twice])
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               atol=1e-6)


def test_a_class_weight_equals_the_same_weight_on_its_rows():
    X, y, months = make_stream()
    by_class = ContinualClassifier(strategy="replay", class_weight={1: 3.0}, **FAST)
    by_class.fit(X, y, months=months)
    by_row = ContinualClassifier(strategy="replay", **FAST)
    by_row.fit(X, y, months=months, sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_allclose(by_class.predict_proba(X), by_row.predict_proba(X), atol=1e-5)


def test_balanced_weights_are_sklearns_on_the_rows_each_month_trains_on():
    X, y, months = make_stream(n_months=3, n_per_month=100)
    y = np.where(np.arange(len(y)) % 5 == 0, 2, y)  # a third class, 20% of rows
    capture = _Capture()
    clf = ContinualClassifier(strategy="replay", class_weight="balanced",
                              callbacks=[capture], **FAST)
    clf.fit(X, y, months=months)
    assert len(capture.months) == 3
    for k, (vector, labels) in enumerate(capture.months):
        # Month 0: its own rows; later: new rows plus the replayed ones.
        assert len(labels) == (100 if k == 0 else 200)
        expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
        np.testing.assert_allclose(vector, expected, rtol=1e-6)
    # Joint trains on all history: counted on all of it.
    capture = _Capture()
    ContinualClassifier(strategy="joint", class_weight="balanced", callbacks=[capture],
                        **FAST).fit(X, y, months=months)
    for k, (vector, labels) in enumerate(capture.months):
        codes = y[months <= k]
        np.testing.assert_array_equal(np.sort(labels), np.sort(codes))
        np.testing.assert_allclose(
            vector, compute_class_weight("balanced", classes=np.arange(3), y=codes), rtol=1e-6)


def test_balanced_weights_raise_the_recall_of_a_5_percent_class():
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 8)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.6, size=n)
    y = (score > np.quantile(score, 0.95)).astype(int)  # 5% positives
    months = np.repeat([0, 1, 2], n // 3)
    test = rng.normal(size=(4000, 8)).astype(np.float32)
    test_score = test[:, 0] + 0.5 * test[:, 1] + rng.normal(scale=0.6, size=4000)
    y_test = (test_score > np.quantile(score, 0.95)).astype(int)
    params = dict(strategy="replay", hidden_units=(16,), max_epochs=2, batch_size=64,
                  random_state=0)
    plain = ContinualClassifier(**params).fit(X, y, months=months)
    balanced = ContinualClassifier(class_weight="balanced", **params).fit(X, y, months=months)
    recall_plain = recall_score(y_test, plain.predict(test))
    recall_balanced = recall_score(y_test, balanced.predict(test))
    assert recall_balanced > recall_plain + 0.2, (recall_plain, recall_balanced)


# -- replay memory and joint history keep the weights ---------------------------

@pytest.mark.parametrize("memory_size", [None, 150])
@pytest.mark.parametrize("on_disk", [False, True])
def test_memory_keeps_each_rows_weight(tmp_path, memory_size, on_disk):
    X, y, months = make_stream(n_months=3, n_per_month=100, id_column=True)
    w = _weights(len(y)).astype(np.float32)
    w[months == 1] = 1.0  # a month given without weights
    clf = ContinualClassifier(strategy="replay", memory_size=memory_size,
                              memory_dir=tmp_path if on_disk else None, **FAST)
    for k in range(3):
        rows = months == k
        clf.partial_fit_month(X[rows], y[rows], sample_weight=None if k == 1 else w[rows])
    memory = clf.strategy_.memory
    ids = torch.cat([Xs[:, 0] for Xs, _ in memory.sources()]).numpy().astype(int)
    kept = torch.cat([torch.ones(len(y_)) if w_ is None else w_ for (_, y_), w_
                      in zip(memory.sources(), memory.weights())]).numpy()
    assert len(ids) == (300 if memory_size is None else 150)
    np.testing.assert_array_equal(kept, w[ids])


def test_joint_history_keeps_the_weights():
    X, y, months = make_stream(n_months=3, n_per_month=60, id_column=True)
    w = _weights(len(y)).astype(np.float32)
    clf = ContinualClassifier(strategy="joint", **FAST).fit(X, y, months=months,
                                                            sample_weight=w)
    history = clf.strategy_.history
    ids = torch.cat([Xs[:, 0] for Xs, _ in history.sources()]).numpy().astype(int)
    np.testing.assert_array_equal(torch.cat(history.weights()).numpy(), w[ids])


@pytest.mark.parametrize("memory_size", [None, 80])
def test_a_failed_weighted_month_leaves_memory_and_model_as_they_were(
        tmp_path, monkeypatch, memory_size):
    X, y, months = make_stream(n_months=3, n_per_month=60)
    clf = ContinualClassifier(strategy="replay+ewc", memory_size=memory_size,
                              memory_dir=tmp_path, **FAST)
    clf.partial_fit_month(X[months == 0], y[months == 0])  # no weights so far
    before = fingerprint(clf, X)
    files = sorted(p.name for p in tmp_path.rglob("*"))

    # The month fails in its consolidation, after replay has stored its rows
    # and their weights (replay's end_month runs before EWC's).
    def fail(net, X, y, sample_weight=None):
        raise RuntimeError("consolidation failed")

    monkeypatch.setattr(clf.strategy_.parts[1], "end_month", fail)
    with pytest.raises(RuntimeError, match="consolidation failed"):
        clf.partial_fit_month(X[months == 1], y[months == 1],
                              sample_weight=_weights(60))
    monkeypatch.undo()
    assert fingerprint(clf, X) == before
    assert clf.strategy_.parts[0].memory.weights() is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == files


def test_weights_survive_a_checkpoint(tmp_path):
    X, y, months = make_stream(n_months=3, n_per_month=80)
    w = _weights(len(y))
    params = dict(strategy="replay+ewc", memory_size=100, class_weight="balanced", **FAST)
    straight = ContinualClassifier(**params).fit(X, y, months=months, sample_weight=w)
    first = ContinualClassifier(**params).fit(X[months < 2], y[months < 2],
                                              months=months[months < 2],
                                              sample_weight=w[months < 2])
    first.save(tmp_path / "m.pt")
    resumed = sklearn_cf.load(tmp_path / "m.pt")
    resumed.partial_fit_month(X[months == 2], y[months == 2], month=2,
                              sample_weight=w[months == 2])
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))


# -- the EWC Fisher -----------------------------------------------------------

def test_ewc_fisher_weighs_rows_as_the_loss_did():
    X, y, months = make_stream(n_months=2, n_per_month=90)
    w = _weights(len(y))
    clf = ContinualClassifier(strategy="ewc", class_weight="balanced", **FAST)
    clf.fit(X, y, months=months, sample_weight=w)
    last = months == 1
    cw = compute_class_weight("balanced", classes=np.arange(2), y=y[last])
    row_w = w[last] * cw[y[last]]
    # Oracle: the weighted mean of single-row Fishers, row by row.
    expected = None
    for j, i in enumerate(np.flatnonzero(last)):
        one = fisher_diagonal(clf.module_, X[i:i + 1], y[i:i + 1])
        expected = {k: v * 0 for k, v in one.items()} if expected is None else expected
        for k in one:
            expected[k] += row_w[j] * one[k] / row_w.sum()
    for name, got in clf.strategy_.fisher_diag.items():
        torch.testing.assert_close(got, expected[name], rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_an_integer_weight_in_the_fisher_is_the_row_repeated(kind):
    # The loss now treats a weight of k as the row k times; the Fisher the
    # EWC pull uses does the same (oracle: the unweighted Fisher of the
    # rows repeated).
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    w = rng.integers(0, 4, size=40)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    weighted = fisher_diagonal(module, X, y, kind=kind, sample_weight=w.astype(float))
    repeated = np.repeat(np.arange(40), w)
    plain = fisher_diagonal(module, X[repeated], y[repeated], kind=kind)
    for name, value in plain.items():
        torch.testing.assert_close(weighted[name], value, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kind", ["empirical", "true", "hessian"])
@pytest.mark.parametrize("route", ["fast", "func", "loop"])
def test_weighted_fisher_is_the_weighted_sum_of_row_fishers(monkeypatch, kind, route):
    from sklearn_cf import _fisher

    torch.manual_seed(0)
    if route == "fast":
        net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    else:
        class Bilinear(torch.nn.Module):  # not a Linear chain: torch.func route
            def __init__(self):
                super().__init__()
                self.a = torch.nn.Parameter(torch.randn(4, 3))
                self.b = torch.nn.Parameter(torch.randn(3))

            def forward(self, x):
                return torch.tanh(x @ self.a) * (1 + self.b)

        net = Bilinear()
        if route == "loop":
            def refuse(*args, **kwargs):
                raise RuntimeError("no transform")
            monkeypatch.setattr(_fisher, "_func_fisher", refuse)
            monkeypatch.setattr(_fisher, "_func_hessian", refuse)
    net = net.double()
    X = torch.randn(12, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (12,))
    w = torch.from_numpy(_weights(12))
    got = fisher_diagonal(net, X, y, kind=kind, sample_weight=w, batch_size=5)
    for name in got:
        rows = [fisher_diagonal(net, X[i:i + 1], y[i:i + 1], kind=kind)[name] for i in range(12)]
        expected = sum(w[i] * rows[i] for i in range(12)) / w.sum()
        torch.testing.assert_close(got[name], expected, rtol=1e-10, atol=1e-12)


# -- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (np.ones(5), "one weight per row"),
    (np.r_[-1.0, np.ones(119)], "finite and >= 0"),
    (np.r_[np.nan, np.ones(119)], "finite and >= 0"),
    (np.zeros(120), "zero for every row"),
    (2.0, "scalar"),
])
def test_bad_sample_weight_is_refused_and_changes_nothing(bad, message):
    X, y, months = make_stream()
    clf = ContinualClassifier(strategy="replay", **FAST)
    clf.partial_fit_month(X[months == 0], y[months == 0])
    before = fingerprint(clf, X)
    with pytest.raises(ValueError, match=message):
        clf.partial_fit_month(X[months == 1], y[months == 1], sample_weight=bad)
    assert fingerprint(clf, X) == before


@pytest.mark.parametrize("bad, error, message", [
    ("balance", TypeError, "balanced"),
    ({1: -2.0}, ValueError, ">= 0"),
    ({7: 2.0}, ValueError, r"labels \[7\] that are not classes"),
])
def test_bad_class_weight_is_refused(bad, error, message):
    X, y, months = make_stream()
    with pytest.raises(error, match=message):
        ContinualClassifier(class_weight=bad, **FAST).fit(X, y)


def test_a_strategy_that_picks_rows_without_taking_weights_is_refused():
    class LastMonthToo(Strategy):
        def start(self, net):
            self.previous = None

        def month_data(self, net, X, y):
            if self.previous is None:
                return None
            return MonthData([self.previous, (X, y)])

        def end_month(self, net, X, y):
            self.previous = (X.clone(), y.clone())

    X, y, months = make_stream()
    clf = ContinualClassifier(strategy=LastMonthToo(), **FAST)
    clf.partial_fit_month(X[months == 0], y[months == 0], sample_weight=_weights(120))
    before = fingerprint(clf, X)
    with pytest.raises(TypeError, match="takes no sample_weight"):
        clf.partial_fit_month(X[months == 1], y[months == 1], sample_weight=_weights(120))
    assert fingerprint(clf, X) == before
    # Without weights it trains as before.
    clf.partial_fit_month(X[months == 1], y[months == 1])
    assert clf.cost_[-1]["rows"] == 2 * 240


@pytest.mark.parametrize("class_weight", [{1: 3.0}, {"benign": 0.5, "malware": 4.0}])
def test_a_class_weight_dict_survives_a_checkpoint(tmp_path, class_weight):
    X, y, months = make_stream(n_months=2, n_per_month=80)
    if "malware" in class_weight:
        y = np.where(y == 1, "malware", "benign")
    clf = ContinualClassifier(strategy="replay", class_weight=class_weight, **FAST)
    clf.fit(X, y, months=months)
    clf.save(tmp_path / "m.pt")
    loaded = sklearn_cf.load(tmp_path / "m.pt")
    assert loaded.class_weight == class_weight
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_balanced_weights_leave_a_class_absent_from_the_month_at_1():
    X, y, months = make_stream(n_months=2, n_per_month=60)
    y = y.copy()
    y[months == 1] = 0  # the second month is all one class
    capture = _Capture()
    ContinualClassifier(strategy="der", class_weight="balanced", callbacks=[capture],
                        **FAST).fit(X, y, months=months)
    vector, labels = capture.months[1]
    assert set(labels.tolist()) == {0}
    # sklearn: n / (n_classes * count) for the class present; the absent one 1.
    assert vector[0] == pytest.approx(len(labels) / (2 * len(labels)))
    assert vector[1] == 1.0

"""A monthly job that can run unattended: rejected months change nothing."""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from conftest import FAST, fingerprint, make_stream
from sklearn.model_selection import cross_validate

from sklearn_cf import ContinualClassifier, SequentialSplit, make_forgetting_scorer


@pytest.fixture(scope="module")
def fitted_state():
    X, y, months = make_stream(n_months=2)
    return X, y, months


def _bad_calls(X, y):
    Xm, ym = X[:50], y[:50]
    nan_X = Xm.copy()
    nan_X[3, 2] = np.nan
    inf_X = Xm.copy()
    inf_X[0, 0] = np.inf
    return [
        ("NaN in X", lambda c: c.partial_fit_month(nan_X, ym), ValueError, "contains NaN"),
        ("inf in X", lambda c: c.partial_fit_month(inf_X, ym), ValueError, "infinity"),
        ("fewer features", lambda c: c.partial_fit_month(Xm[:, :4], ym), ValueError,
         "has 4 features, but ContinualClassifier is expecting 6"),
        ("unseen label", lambda c: c.partial_fit_month(Xm, np.where(ym == 1, 5, ym)),
         ValueError, r"label \[5\] that the model has never seen"),
        ("empty month", lambda c: c.partial_fit_month(Xm[:0], ym[:0]), ValueError, "has no rows"),
        ("y of the wrong length", lambda c: c.partial_fit_month(Xm, ym[:-1]), ValueError,
         "X has 50 rows but y has 49 labels"),
        ("y 2-d", lambda c: c.partial_fit_month(Xm, np.c_[ym, ym]), ValueError, "one label per row"),
        ("sparse X", lambda c: c.partial_fit_month(sp.csr_matrix(Xm), ym), TypeError,
         "dense data is required"),
        ("month out of order", lambda c: c.partial_fit_month(Xm, ym, month=0), ValueError,
         "does not come after"),
        ("negative lambda", lambda c: c.set_params(reg_lambda=-1.0).partial_fit_month(Xm, ym),
         ValueError, "reg_lambda must be in"),
        ("ratio of 1", lambda c: c.set_params(rehearsal_ratio=1.0).partial_fit_month(Xm, ym),
         ValueError, r"rehearsal_ratio must be in \[0, 1\)"),
        ("memory_size 0", lambda c: c.set_params(memory_size=0).partial_fit_month(Xm, ym),
         ValueError, "memory_size must be >= 1"),
        ("epoch_size float", lambda c: c.set_params(epoch_size=10.5).partial_fit_month(Xm, ym),
         TypeError, "epoch_size must be an int"),
        ("unknown strategy", lambda c: c.set_params(strategy="replay+ewk").partial_fit_month(Xm, ym),
         ValueError, "Did you mean 'replay\\+ewc'"),
        ("refit with bad months", lambda c: c.fit(X, y, months=np.arange(len(X) - 1)),
         ValueError, "months has"),
        ("refit with unsortable months",
         lambda c: c.fit(X, y, months=np.array([1, "a"] * (len(X) // 2), dtype=object)),
         ValueError, "months cannot be sorted"),
        # Hyperparameters changed between months are checked before the month.
        ("negative lr", lambda c: c.set_params(lr=-1).partial_fit_month(Xm, ym),
         ValueError, r"lr must be in \(0, inf\), got -1"),
        ("batch_size 0", lambda c: c.set_params(batch_size=0).partial_fit_month(Xm, ym),
         ValueError, "batch_size must be >= 1 or -1, got 0"),
        ("negative batch_size", lambda c: c.set_params(batch_size=-5).partial_fit_month(Xm, ym),
         ValueError, "batch_size must be >= 1 or -1, got -5"),
        ("infinite lambda", lambda c: c.set_params(reg_lambda=np.inf).partial_fit_month(Xm, ym),
         ValueError, r"reg_lambda must be in \[0, inf\), got inf"),
        ("infinite finetune_lr",
         lambda c: c.set_params(finetune_lr=float("inf")).partial_fit_month(Xm, ym),
         ValueError, r"finetune_lr must be in \(0, inf\), got inf"),
        ("NaN finetune_lr",
         lambda c: c.set_params(finetune_lr=float("nan")).partial_fit_month(Xm, ym),
         ValueError, "finetune_lr must be in"),
        ("max_epochs 0", lambda c: c.set_params(max_epochs=0).partial_fit_month(Xm, ym),
         ValueError, "max_epochs must be >= 1"),
        ("hidden_units as a string",
         lambda c: c.set_params(hidden_units="256").partial_fit_month(Xm, ym),
         TypeError, "hidden_units must be a tuple of ints"),
        ("dropout of 1", lambda c: c.set_params(dropout=1.0).partial_fit_month(Xm, ym),
         ValueError, r"dropout must be in \[0, 1\)"),
        ("negative verbose", lambda c: c.set_params(verbose=-1).partial_fit_month(Xm, ym),
         ValueError, "verbose must be >= 0"),
        ("unknown device", lambda c: c.set_params(device="gpu0").partial_fit_month(Xm, ym),
         ValueError, "device='gpu0' is not a torch device"),
        ("unknown fisher", lambda c: c.set_params(fisher="fischer").partial_fit_month(Xm, ym),
         ValueError, "Unknown fisher='fischer'. Valid values: 'empirical'"),
        ("changed architecture",
         lambda c: c.set_params(hidden_units=(4, 4)).partial_fit_month(Xm, ym),
         ValueError, "hidden_units=.* changed after the base fit"),
        # Missing labels, wherever they appear.
        ("None in y", lambda c: c.partial_fit_month(Xm, np.where(ym == 1, None, ym)),
         ValueError, "y contains missing values"),
        ("pd.NA in y",
         lambda c: c.partial_fit_month(Xm, _pandas().Series(ym, dtype="Int64").where(ym == 1)),
         ValueError, "y contains missing values"),
        ("NaN month=", lambda c: c.partial_fit_month(Xm, ym, month=float("nan")),
         ValueError, "must not be missing"),
        ("pd.NA month=", lambda c: c.partial_fit_month(Xm, ym, month=_pandas().NA),
         ValueError, "must not be missing"),
        ("None in classes=", lambda c: c.partial_fit_month(Xm, ym, classes=[0, 1, None]),
         ValueError, "classes contains missing values"),
        ("refit with pd.NA in months",
         lambda c: c.fit(X, y, months=_pandas().Series(np.arange(len(X)) % 2, dtype="Int64"
                                                        ).where(np.arange(len(X)) != 7)),
         ValueError, "months contains (NaN|missing values) at rows \\[7\\]"),
        ("refit with pd.NA in object months",
         lambda c: c.fit(X, y, months=np.array([0, 1] * (len(X) // 2 - 1) + [1, _pandas().NA],
                                               dtype=object)),
         ValueError, f"months contains missing values at rows \\[{len(X) - 1}\\]"),
        ("refit with None in classes",
         lambda c: c.set_params(classes=[0, 1, None]).fit(X, y, months=np.arange(len(X)) % 2),
         ValueError, "classes contains missing values"),
        ("label a checkpoint cannot store", lambda c: c.partial_fit_month(Xm, ym, month=(2025, 1)),
         TypeError, "month"),
    ]


def _pandas():
    return pytest.importorskip("pandas")


_N_BAD_CALLS = len(_bad_calls(np.zeros((60, 6), np.float32), np.arange(60) % 2))


@pytest.mark.parametrize("strategy", ["replay+ewc", "ensemble"])
@pytest.mark.parametrize("case", range(_N_BAD_CALLS))
def test_rejected_call_leaves_the_model_exactly_as_it_was(fitted_state, strategy, case):
    X, y, months = fitted_state
    clf = ContinualClassifier(strategy=strategy, memory_size=60, **FAST)
    clf.fit(X, y, months=months)
    name, call, error, match = _bad_calls(X, y)[case]
    params = clf.get_params(deep=False)
    before = fingerprint(clf, X)
    with pytest.raises(error, match=match):
        call(clf)
    # Put back what the call changed, then the model must be as it was.
    now = clf.get_params(deep=False)
    clf.set_params(**{k: v for k, v in params.items() if now[k] is not v})
    assert fingerprint(clf, X) == before, name


def test_single_class_month_rejected_for_ensembles_only(fitted_state):
    X, y, months = fitted_state
    ones = np.flatnonzero(y == 1)[:30]
    for strategy in ["ensemble", "replay"]:
        clf = ContinualClassifier(strategy=strategy, **FAST).fit(X, y, months=months)
        before = fingerprint(clf, X)
        if strategy == "ensemble":
            with pytest.raises(ValueError, match="only class 1"):
                clf.partial_fit_month(X[ones], y[ones])
            assert fingerprint(clf, X) == before
        else:
            clf.partial_fit_month(X[ones], y[ones])
            assert clf.months_seen_ == [0, 1, 2]
    with pytest.raises(ValueError, match="at least 2 classes, got one class"):
        ContinualClassifier(**FAST).fit(X[ones], y[ones])


def test_long_run_memory_stays_bounded_and_work_per_month_is_flat():
    X, y, months = make_stream(n_months=50, n_per_month=40, n_features=4)
    clf = ContinualClassifier(strategy="replay", memory_size=100, epoch_size=80,
                              max_snapshots=5, **dict(FAST, max_epochs=1))
    for m in range(50):
        clf.partial_fit_month(X[months == m], y[months == m])
        memory = clf.strategy_.memory
        assert len(memory) == min(100, 40 * (m + 1))
        assert memory.X.shape[0] == 100  # the buffer itself never grows
        assert len(clf.snapshots_) == min(5, m + 1)
    # Work per month is constant: every fine-tune month trains 80 rows.
    assert {c["rows"] for c in clf.cost_[1:]} == {80}
    assert memory.n_seen == 2000


def test_same_seed_same_forgetting_matrices_with_two_jobs():
    X, y, months = make_stream(n_months=3)
    results = []
    with sklearn.config_context(enable_metadata_routing=True):
        for _ in range(2):
            scores = cross_validate(
                ContinualClassifier(strategy="replay+ewc", dropout=0.2, **FAST
                                    ).set_fit_request(months=True),
                X, y, params={"months": months},
                cv=SequentialSplit(n_splits=2, random_state=0),
                scoring=make_forgetting_scorer(include_matrix=True), n_jobs=2,
            )
            results.append(np.array([scores[f"test_R_{i}_{j}"] for i in range(3)
                                     for j in range(3)]))
    np.testing.assert_array_equal(results[0], results[1])

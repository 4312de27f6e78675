"""Parameters that load (issue 20, item 5): set_params refuses a
``strategy__<param>`` the strategy lacks, as scikit-learn refuses unknown
parameters; ``save`` refuses what ``load`` would refuse, before it writes;
and a change refused after the base fit stays refused after save + load."""

import copy

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf._estimator import _checkpoint
from sklearn_cf.strategies import (EWC, Combined, Replay, Strategy, register_strategy,
                                   unregister_strategy)


class Halve(Strategy):
    """A plugin strategy with one hyperparameter."""

    name = "halve"

    def __init__(self, factor=0.5):
        self.factor = factor


@pytest.fixture
def halve():
    register_strategy("halve", Halve)
    yield "halve"
    unregister_strategy("halve")


@pytest.fixture
def data():
    return make_stream(n_months=3, n_per_month=80)


def _month(data, m):
    X, y, months = data
    return X[months == m], y[months == m]


def _settings(clf):
    """Everything set_params may change, as values (a strategy object by its
    parameters)."""
    settings = {}
    for name, value in vars(clf).items():
        if name.endswith("_"):
            continue
        if isinstance(value, Strategy):
            value = {k: v for k, v in value.get_params(deep=True).items()
                     if not isinstance(v, Strategy)}
        settings[name] = copy.deepcopy(value)
    return settings


def _sklearn_refusal(estimator, **params):
    """The message scikit-learn's own set_params gives for an unknown name."""
    with pytest.raises(ValueError) as info:
        estimator.set_params(**params)
    return str(info.value)


# ----------------------------------------------------------------------
# set_params: unknown strategy__ names
# ----------------------------------------------------------------------
class TestUnknownStrategyParams:
    @pytest.mark.parametrize("strategy, good, bad", [
        ("replay", {"strategy__memory_size": 40}, "strategy__memroy_size"),
        # a combination takes its parts' parameters, flat
        ("replay+ewc", {"strategy__memory_size": 40, "strategy__fisher_rows": 50},
         "strategy__ewc__reg_lambda"),
        # a parameter of another known strategy is accepted and ignored (grids over strategy)
        ("naive", {"strategy__alpha": 0.5}, "strategy__alpah"),
        (Replay(), {"strategy__memory_size": 40}, "strategy__alpha"),
        (Combined(Replay(), EWC()), {"strategy__ewc__reg_lambda": 5.0}, "strategy__reg_lambda"),
    ], ids=["name", "combination", "other-strategy", "object", "combined-object"])
    def test_refused_like_sklearn_and_nothing_is_set(self, strategy, good, bad):
        sklearn_words = _sklearn_refusal(LogisticRegression(), C_typo=1.0)
        assert sklearn_words.startswith("Invalid parameter 'C_typo' for estimator")
        clf = ContinualClassifier(strategy=strategy, **FAST)
        clf.set_params(**good)  # the valid names are taken
        before = _settings(clf)
        with pytest.raises(ValueError, match=rf"^Invalid parameter '{bad}' for estimator "
                                             r"ContinualClassifier: .*parameters"):
            clf.set_params(reg_lambda=7.0, max_epochs=1, **{bad: 3})
        assert _settings(clf) == before

    def test_a_plugin_strategy_takes_its_own_parameters(self, halve, data):
        clf = ContinualClassifier(strategy=halve, **FAST).set_params(strategy__factor=0.25)
        with pytest.raises(ValueError, match="Invalid parameter 'strategy__fator'.*factor"):
            clf.set_params(strategy__fator=0.1)
        clf.fit(*_month(data, 0))
        assert clf.strategy_.factor == 0.25

    def test_an_unknown_plain_name_leaves_the_strategy_params_unset(self):
        clf = ContinualClassifier(strategy="replay", **FAST)
        before = _settings(clf)
        with pytest.raises(ValueError, match="Invalid parameter 'memroy_size' for estimator"):
            clf.set_params(strategy__memory_size=40, memroy_size=5)
        assert _settings(clf) == before

    def test_constructor_and_clone_keep_it_fit_refuses_it_in_the_same_words(self, data):
        clf = ContinualClassifier(strategy="replay", strategy__memroy_size=5, **FAST)
        # as in scikit-learn, __init__ and clone only store
        assert clone(clf).get_params()["strategy__memroy_size"] == 5
        with pytest.raises(ValueError, match=r"^Invalid parameter 'strategy__memroy_size' "
                                             "for estimator ContinualClassifier: .*"
                                             "Did you mean 'strategy__memory_size'"):
            clf.fit(*_month(data, 0))
        assert not clf.__sklearn_is_fitted__()

    def test_grid_search_and_pipeline_refuse_it_before_any_fit(self, data):
        X, y = _month(data, 0)
        with pytest.raises(ValueError, match="Invalid parameter 'C_typo'"):
            GridSearchCV(LogisticRegression(), {"C_typo": [1.0]}, cv=2).fit(X, y)
        search = GridSearchCV(ContinualClassifier(strategy="replay", **FAST),
                              {"strategy__memroy_size": [5]}, cv=2)
        with pytest.raises(ValueError, match="Invalid parameter 'strategy__memroy_size'"):
            search.fit(X, y)
        pipe = Pipeline([("scale", StandardScaler()), ("clf", ContinualClassifier(**FAST))])
        with pytest.raises(ValueError, match="Invalid parameter 'strategy__gama'"):
            pipe.set_params(clf__strategy="online_ewc", clf__strategy__gama=0.5)
        assert pipe.named_steps["clf"].strategy == "naive"

    def test_a_fitted_model_cannot_store_it_and_still_saves_and_loads(self, data, tmp_path):
        clf = ContinualClassifier(strategy="replay", **FAST).fit(*_month(data, 0))
        with pytest.raises(ValueError, match="Invalid parameter 'strategy__memroy_size'"):
            clf.set_params(strategy__memroy_size=5)
        clf.save(tmp_path / "m.pt")
        X = data[0]
        np.testing.assert_array_equal(sklearn_cf.load(tmp_path / "m.pt").predict_proba(X),
                                      clf.predict_proba(X))


# ----------------------------------------------------------------------
# save never writes what load refuses
# ----------------------------------------------------------------------
def _break_after_fit(how, clf, halve_name=None):
    if how == "invalid value":
        clf.set_params(reg_lambda=-1.0)  # set_params checks names, fit and save values
    elif how == "set twice":
        clf.set_params(strategy__memory_size=20)  # fitted with memory_size=40
    elif how == "attribute":
        clf.strategy__memroy_size = 5  # an attribute set around set_params
    elif how == "classes":
        clf.set_params(classes=3)
    elif how == "unknown strategy":
        unregister_strategy(halve_name)


REFUSED = {
    "invalid value": (ValueError, "reg_lambda"),
    "set twice": (ValueError, "memory_size is set twice"),
    "attribute": (ValueError, "Invalid parameter 'strategy__memroy_size'"),
    "classes": (ValueError, "classes must be a 1-d array-like"),
    "unknown strategy": (ValueError, "strategy='halve'"),
}


@pytest.mark.parametrize("how", list(REFUSED))
def test_save_refuses_what_load_refuses_and_keeps_the_old_file(how, data, tmp_path,
                                                               monkeypatch):
    if how == "unknown strategy":
        register_strategy("halve", Halve)
        clf = ContinualClassifier(strategy="halve", **FAST)
    else:
        clf = ContinualClassifier(strategy="replay", memory_size=40, **FAST)
    try:
        clf.fit(*_month(data, 0))
        path = tmp_path / "model.pt"
        clf.save(path)
        old = path.read_bytes()
        _break_after_fit(how, clf, "halve")
        kind, words = REFUSED[how]

        # The oracle: the file the check keeps from being written does not load.
        unchecked = tmp_path / "unchecked.pt"
        with monkeypatch.context() as patch:
            patch.setattr(_checkpoint, "_check_loadable", lambda *args: None)
            clf.save(unchecked)
        with pytest.raises(kind, match=words):
            sklearn_cf.load(unchecked)

        with pytest.raises(kind, match=rf"Cannot save to .*model.pt.*{words}") as info:
            clf.save(path)
        assert type(info.value) is kind
        assert path.read_bytes() == old
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "unchecked.pt"]
    finally:
        unregister_strategy("halve")


@pytest.mark.parametrize("params", [
    {"classes": [np.int64(0), np.int64(1)]},  # numpy labels in a list
    {"device": torch.device("cpu")},
    {"hidden_units": [np.int64(16)]},
], ids=["numpy-classes", "torch-device", "numpy-hidden-units"])
def test_plain_values_in_numpy_or_torch_types_load_without_estimator(params, data, tmp_path):
    """Values that mean plain data are stored as plain data, not as custom
    objects that only load with estimator=..."""
    clf = ContinualClassifier(**dict(FAST, **params)).fit(*_month(data, 0))
    clf.save(tmp_path / "m.pt")
    loaded = sklearn_cf.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), clf.predict_proba(data[0]))


# ----------------------------------------------------------------------
# Structural parameters: refused after the base fit, also after save + load
# ----------------------------------------------------------------------
STRUCTURAL_CHANGES = {
    # name: (constructor settings, change after the base fit)
    "strategy__memory_size": ({"strategy__memory_size": 40}, {"strategy__memory_size": 5}),
    "memory_size": ({"memory_size": 40}, {"memory_size": 5}),
    "memory_policy": ({"memory_size": 40}, {"memory_policy": "class_balanced"}),
    "strategy__memory_policy": ({"memory_size": 40, "strategy__memory_policy": "reservoir"},
                                {"strategy__memory_policy": "class_balanced"}),
    "memory_dir": ({"memory_size": 40}, "memory_dir"),
    "hidden_units": ({}, {"hidden_units": (8,)}),
    "strategy": ({}, {"strategy": "naive"}),
}

#: Those load(estimator=...) compares with the checkpoint (an estimator built
#: with the change is refused at load, see test_checkpoint.py).
COMPARED_AT_LOAD = ("memory_size", "memory_policy", "hidden_units", "strategy")


def _changed_model(change, data, tmp_path):
    """A replay model after its base month, with ``change`` set."""
    settings, changed = STRUCTURAL_CHANGES[change]
    if changed == "memory_dir":
        changed = {"memory_dir": str(tmp_path / "elsewhere")}
    clf = ContinualClassifier(strategy="replay", **dict(FAST, **settings))
    clf.partial_fit_month(*_month(data, 0))
    back = {name: clf.get_params()[name] for name in changed}
    clf.set_params(**changed)
    return clf, settings, changed, back


@pytest.mark.parametrize("change, into_estimator", [
    *((change, False) for change in STRUCTURAL_CHANGES),
    *((change, True) for change in STRUCTURAL_CHANGES if change not in COMPARED_AT_LOAD),
])
def test_a_refused_change_stays_refused_after_save_and_load(change, into_estimator, data,
                                                            tmp_path):
    clf, settings, changed, back = _changed_model(change, data, tmp_path)
    with pytest.raises(ValueError, match="changed after the base fit") as before:
        clf.partial_fit_month(*_month(data, 1))

    clf.save(tmp_path / "m.pt")
    estimator = None
    if into_estimator:
        estimator = ContinualClassifier(strategy="replay", **dict(FAST, **settings))
        estimator.set_params(**changed)
    loaded = sklearn_cf.load(tmp_path / "m.pt", estimator=estimator)
    assert {name: loaded.get_params()[name] for name in changed} == changed
    with pytest.raises(ValueError, match="changed after the base fit") as after:
        loaded.partial_fit_month(*_month(data, 1))
    assert str(after.value) == str(before.value)

    # Set back, both continue as one model: the loaded one was built on
    # the settings of the base fit, not on the change.
    clf.set_params(**back).partial_fit_month(*_month(data, 1))
    loaded.set_params(**back).partial_fit_month(*_month(data, 1))
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), clf.predict_proba(data[0]))

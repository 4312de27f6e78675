"""A strategy written outside the package works by name everywhere: registered
with ``register_strategy`` in the process, or installed as a distribution
declaring the entry-point group ``"sklearn_cf.strategies"``."""

import importlib
import sys
import textwrap

import numpy as np
import pytest
import sklearn
import torch
from sklearn.model_selection import GridSearchCV

import sklearn_cf
from sklearn_cf import ContinualClassifier, SequentialSplit, make_forgetting_scorer
from sklearn_cf._param_validation import Real
from sklearn_cf.compare import compare_strategies, parse_strategy
from sklearn_cf.strategies import (
    ENTRY_POINT_GROUP,
    Strategy,
    available_strategies,
    make_strategy,
    parameter_constraints,
    register_strategy,
    strategy_classes,
    strategy_origin,
    strategy_parameters,
    unregister_strategy,
)

from conftest import FAST, make_stream


class LastMonth(Strategy):
    """Train each month on its rows plus the first ``share`` of the previous
    month's training rows (a one-month replay)."""

    _parameter_constraints = {"share": Real(0, 1)}

    def __init__(self, share=1.0):
        self.share = share

    def start(self, net):
        self.previous = None

    def month_data(self, net, X, y):
        if self.previous is None:
            return None
        X_old, y_old = self.previous
        k = int(round(self.share * len(y_old)))
        return torch.cat([X_old[:k], X]), torch.cat([y_old[:k], y])

    def end_month(self, net, X, y):
        self.previous = [X.clone(), y.clone()]


@pytest.fixture(autouse=True)
def clean_registry():
    """Every name a test registers (or loads from an entry point) is
    forgotten after it."""
    before = set(available_strategies())
    yield
    for name in set(available_strategies()) - before:
        unregister_strategy(name)


def rows(clf):
    return [c["rows"] for c in clf.cost_]


def test_a_registered_strategy_works_by_name_everywhere(tmp_path):
    assert register_strategy("last_month", LastMonth) is LastMonth
    assert "last_month" in available_strategies()
    assert strategy_classes("last_month") == [LastMonth]
    assert strategy_parameters("last_month") == {"share": 1.0}
    assert list(parameter_constraints("last_month")) == ["share"]
    assert strategy_origin("last_month") is None  # registered here, not installed

    # fit by name; FAST trains 2 epochs a month on 40 rows (+ share of 40 replayed).
    X, y, months = make_stream(n_months=3, n_per_month=40)
    clf = ContinualClassifier(strategy="last_month", strategy__share=0.5, **FAST)
    clf.fit(X, y, months=months)
    assert type(clf.strategy_) is LastMonth and clf.strategy_.share == 0.5
    assert rows(clf) == [80, 120, 120]

    # set_params(strategy__<param>) reaches the plugin, refit and between months.
    clf.set_params(strategy__share=1.0)
    clf.fit(X, y, months=months)
    assert rows(clf) == [80, 160, 160]
    clf.set_params(strategy__share=0.25)
    clf.partial_fit_month(X[months == 2], y[months == 2])
    assert clf.strategy_.share == 0.25 and rows(clf)[-1] == 2 * (40 + 10)
    with pytest.raises(ValueError, match="share"):
        ContinualClassifier(strategy="last_month", strategy__share=2.0, **FAST).fit(
            X, y, months=months)
    with pytest.raises(ValueError, match="has no parameter 'shar'"):
        make_strategy("last_month", strategy_params={"shar": 0.5})
    # A plugin's parameter is ignored by another strategy, as a built-in's is.
    assert type(make_strategy("naive", strategy_params={"share": 0.5})).__name__ == "Naive"

    # save, then load by name: the same probabilities.
    path = tmp_path / "model.pt"
    clf.save(path)
    loaded = sklearn_cf.load(path)
    assert loaded.strategy == "last_month" and type(loaded.strategy_) is LastMonth
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit_month(X[months == 0], y[months == 0])  # its state came back too
    assert rows(loaded)[-1] == 2 * (40 + 10)

    # a compare spec, with the plugin's own parameter.
    spec = parse_strategy("last_month:share=0.5,lr=0.01")
    assert (spec.strategy, spec.params) == ("last_month", {"strategy__share": 0.5, "lr": 0.01})
    with pytest.raises(ValueError, match="last_month's own parameters: share"):
        parse_strategy("last_month:shar=0.5")
    result = compare_strategies(
        X[months < 2], y[months < 2], months[months < 2], ["naive", "last_month:share=0.5"],
        estimator_params=dict(hidden_units=(8,), max_epochs=1, batch_size=32),
        progress=False, random_state=0)
    naive, plugin = result.results["naive"], result.results["last_month:share=0.5"]
    assert plugin.rows_per_month[0] == naive.rows_per_month[0]
    assert plugin.rows_per_month[1] == 1.5 * naive.rows_per_month[1]


def test_a_grid_search_over_strategy_names_a_plugin():
    register_strategy("last_month", LastMonth)
    X, y, months = make_stream(n_months=3, n_per_month=40)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            ContinualClassifier(strategy="naive", strategy__share=0.5, **FAST)
            .set_fit_request(months=True),
            {"strategy": ["naive", "last_month"]},
            cv=SequentialSplit(n_splits=1, random_state=0),
            scoring=make_forgetting_scorer("accuracy"),
            refit="average_accuracy",
            error_score="raise",
        ).fit(X, y, months=months)
    assert list(search.cv_results_["param_strategy"]) == ["naive", "last_month"]
    assert np.isfinite(search.cv_results_["mean_test_average_accuracy"]).all()
    best = search.best_estimator_
    assert best.strategy in ("naive", "last_month")
    if best.strategy == "last_month":
        assert type(best.strategy_) is LastMonth and best.strategy_.share == 0.5


def test_registration_is_checked():
    with pytest.raises(ValueError, match="built-in strategy"):
        register_strategy("replay", LastMonth, replace=True)
    with pytest.raises(ValueError, match="built-in strategy"):
        register_strategy("replay+ewc", LastMonth)
    with pytest.raises(TypeError, match="subclass of sklearn_cf.strategies.Strategy"):
        register_strategy("mine", object)
    with pytest.raises(TypeError, match="subclass of sklearn_cf.strategies.Strategy"):
        register_strategy("mine", LastMonth())
    for bad in ("", "my plugin", "mine:x", "a,b", "a=b"):
        with pytest.raises(ValueError, match="not valid"):
            register_strategy(bad, LastMonth)
    with pytest.raises(TypeError, match="must be a string"):
        register_strategy(3, LastMonth)

    class NeedsValue(Strategy):
        def __init__(self, value):
            self.value = value

    with pytest.raises(TypeError, match="'value' has no default"):
        register_strategy("needs", NeedsValue)

    register_strategy("last_month", LastMonth)
    register_strategy("last_month", LastMonth)  # the same class again: nothing to do

    class Other(LastMonth):
        pass

    with pytest.raises(ValueError, match="already taken.*replace=True"):
        register_strategy("last_month", Other)
    register_strategy("last_month", Other, replace=True)
    assert strategy_classes("last_month") == [Other]
    unregister_strategy("last_month")
    assert "last_month" not in available_strategies()
    with pytest.raises(ValueError, match="Unknown strategy='last_mont'.*Did you mean"):
        make_strategy("last_mont")


def _install(tmp_path, monkeypatch, dist, module, entry_points, source):
    """A distribution ``dist`` 0.1 in ``tmp_path`` (its metadata and
    entry points, and the module ``module``), found on ``sys.path``."""
    info = tmp_path / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}\n")
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.invalidate_caches()


PLUGIN_SOURCE = """
    import torch

    from sklearn_cf.strategies import Strategy


    class Doubled(Strategy):
        '''Train every month on its rows ``times`` times over.'''

        def __init__(self, times=2):
            self.times = times

        def month_data(self, net, X, y):
            return torch.cat([X] * self.times), torch.cat([y] * self.times)
"""


def test_an_installed_plugin_is_found_by_its_entry_point(tmp_path, monkeypatch):
    module = "sklearn_cf_test_plugin_pkg"
    assert "doubled" not in available_strategies()
    _install(tmp_path, monkeypatch, "sklearn-cf-doubled", module,
             f"doubled = {module}:Doubled", PLUGIN_SOURCE)
    assert module not in sys.modules
    assert "doubled" in available_strategies()
    assert module not in sys.modules  # listed, not imported
    assert strategy_origin("doubled") == "sklearn-cf-doubled"

    built = make_strategy("doubled", strategy_params={"times": 3})
    assert type(built).__name__ == "Doubled" and built.times == 3
    assert type(built).__module__ == module
    assert strategy_origin("doubled") == "sklearn-cf-doubled"  # loaded now
    assert strategy_parameters("doubled") == {"times": 2}

    X, y, months = make_stream(n_months=2, n_per_month=40)
    clf = ContinualClassifier(strategy="doubled", strategy__times=3, **FAST)
    clf.fit(X, y, months=months)
    assert rows(clf) == [2 * 120, 2 * 120]
    assert parse_strategy("doubled:times=4").params == {"strategy__times": 4}


def test_a_broken_entry_point_names_its_package(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "sklearn-cf-broken", "sklearn_cf_test_broken_pkg",
             "broken = sklearn_cf_test_broken_pkg:Missing\n"
             "notastrategy = sklearn_cf_test_broken_pkg:NOT_A_CLASS",
             "NOT_A_CLASS = 1\n")
    assert {"broken", "notastrategy"} <= set(available_strategies())
    with pytest.raises(ImportError, match="'sklearn-cf-broken'.*failed to load"):
        make_strategy("broken")
    with pytest.raises(ImportError, match="'sklearn-cf-broken'"):
        ContinualClassifier(strategy="broken").fit(*make_stream(n_months=1)[:2])
    with pytest.raises(TypeError, match="'sklearn-cf-broken'.*subclass"):
        make_strategy("notastrategy")
    # A built-in's name is never taken by an entry point.
    assert strategy_origin("replay") is None


def test_specs_read_a_plugins_declarations():
    from sklearn_cf._param_validation import Options

    class Mode(Strategy):
        _parameter_constraints = {"mode": Options("true", "false", "auto")}

        def __init__(self, mode="auto", level=1):
            self.mode = mode
            self.level = level

    register_strategy("mode_plugin", Mode)
    # A parameter declared with string values stays a string ("true" is not True).
    assert parse_strategy("mode_plugin:mode=true,level=2,reg_lambda=3").params == {
        "strategy__mode": "true", "strategy__level": 2, "reg_lambda": 3}


def test_spec_parameters_and_types_are_derived_as_they_were_written():
    from sklearn_cf.compare import SPEC_PARAMS
    from sklearn_cf.compare._specs import _STRING_PARAMS, _check_spec_type

    assert SPEC_PARAMS == (
        "batch_size", "device", "dropout", "epoch_size", "finetune_epochs", "finetune_lr",
        "fisher", "hidden_units", "lr", "max_epochs", "max_snapshots", "memory_policy",
        "memory_size", "reg_lambda", "rehearsal_ratio")
    assert _STRING_PARAMS == ("device", "fisher", "memory_policy")
    for key, value in [("reg_lambda", 1), ("rehearsal_ratio", 0.5), ("memory_size", None),
                       ("epoch_size", None), ("finetune_lr", None), ("max_snapshots", None)]:
        _check_spec_type("s", key, value)
    for key, value, want in [("reg_lambda", None, "a number"), ("lr", "x", "a number"),
                             ("memory_size", 1.5, "an integer"),
                             ("batch_size", None, "an integer"),
                             ("max_epochs", True, "an integer")]:
        with pytest.raises(ValueError, match=f"{key} must be {want}"):
            _check_spec_type("s", key, value)

"""The strategy registry, strategy parameters and the batch hook."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sklearn_cf import ContinualClassifier
from sklearn_cf.strategies import (
    BUILTIN,
    EWC,
    L2,
    STRATEGIES,
    Combined,
    Replay,
    Strategy,
    make_strategy,
    strategy_parameters,
)
from sklearn_cf.strategies import _registry

from conftest import FAST, make_stream


def test_every_name_builds_its_classes_with_their_defaults():
    for name in STRATEGIES:
        built = make_strategy(name)
        parts = built.parts if isinstance(built, Combined) else [built]
        names = [name] if name in BUILTIN else name.split("+")  # "der++" is one name
        assert [type(p) for p in parts] == [BUILTIN[n] for n in names]
        for part in parts:
            assert part.get_params() == type(part).param_defaults()


def test_each_strategy_declares_its_own_default_strength():
    # An EWC pull on Fisher weights needs a far larger lambda than L2's.
    assert strategy_parameters("l2") == {"reg_lambda": 1.0}
    assert strategy_parameters("ewc")["reg_lambda"] == 1e4
    assert ContinualClassifier(strategy="ewc")._make_strategy().reg_lambda == 1e4
    assert ContinualClassifier(strategy="ewc", reg_lambda=3.0)._make_strategy().reg_lambda == 3.0


def test_flat_and_prefixed_parameters_reach_the_parts_by_signature():
    clf = ContinualClassifier(strategy="replay+ewc", rehearsal_ratio=0.25,
                              strategy__fisher="true", strategy__reg_lambda=50.0)
    replay, ewc = clf._make_strategy().parts
    assert (replay.rehearsal_ratio, ewc.fisher, ewc.reg_lambda) == (0.25, "true", 50.0)


@pytest.mark.parametrize("params, message", [
    (dict(strategy="ewc", strategy__alfa=1.0), "has no parameter 'alfa'"),
    (dict(strategy="ewc", reg_lambda=2.0, strategy__reg_lambda=3.0), "set twice"),
    (dict(strategy="ewc", strategy__fisher="fake"), "fisher"),
    (dict(strategy="replay", strategy__rehearsal_ratio=1.5), "rehearsal_ratio"),
])
def test_bad_strategy_parameters_are_refused_before_training(params, message):
    X, y, _ = make_stream()
    clf = ContinualClassifier(**params, **FAST)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)
    assert not clf.__sklearn_is_fitted__()


def test_a_strategy_object_is_a_scikit_learn_style_object():
    ewc = EWC(reg_lambda=5.0, fisher="true")
    assert ewc.get_params() == {"fisher": "true", "fisher_rows": None, "reg_lambda": 5.0}
    ewc.anchors = "state"
    copy = clone(ewc)
    assert copy.get_params() == ewc.get_params() and not hasattr(copy, "anchors")
    with pytest.raises(ValueError, match="EWC has no parameter 'alpha'"):
        ewc.set_params(alpha=1)
    both = Combined(Replay(rehearsal_ratio=0.3), EWC(reg_lambda=5.0))
    assert both.get_params()["ewc__reg_lambda"] == 5.0
    assert both.get_params()["replay__rehearsal_ratio"] == 0.3
    both.set_params(ewc__reg_lambda=7.0)
    assert both.parts[1].reg_lambda == 7.0
    cloned = clone(both)
    assert cloned.parts[1] is not both.parts[1] and cloned.parts[1].reg_lambda == 7.0


def test_strategy_params_of_an_object_reach_the_fit():
    # Before, set_params(strategy__reg_lambda=...) stored a stray attribute.
    X, y, months = make_stream()
    clf = ContinualClassifier(strategy=L2(reg_lambda=1.0), **FAST)
    clf.set_params(strategy__reg_lambda=42.0)
    assert clf.strategy.reg_lambda == 42.0 and "strategy__reg_lambda" not in vars(clf)
    clf.fit(X, y, months=months)
    assert clf.strategy_.reg_lambda == 42.0 and clf.strategy_ is not clf.strategy
    # Between months too.
    clf.set_params(strategy__reg_lambda=7.0)
    clf.partial_fit_month(X[:40], y[:40])
    assert clf.strategy_.reg_lambda == 7.0


def test_strategy_params_of_a_name_change_between_months():
    X, y, months = make_stream()
    clf = ContinualClassifier(strategy="replay+ewc", **FAST).fit(X, y, months=months)
    clf.set_params(strategy__fisher="true")
    clf.partial_fit_month(X[:40], y[:40])
    assert clf.strategy_.parts[1].fisher == "true"
    clf.set_params(strategy__fisher="empirical", reg_lambda=3.0)
    clf.partial_fit_month(X[:40], y[:40])
    assert (clf.strategy_.parts[1].fisher, clf.strategy_.parts[1].reg_lambda) == ("empirical", 3.0)
    clf.set_params(reg_lambda=None)  # back to the strategy's own default
    clf.partial_fit_month(X[:40], y[:40])
    assert clf.strategy_.parts[1].reg_lambda == 1e4


@pytest.mark.parametrize("strategy, key", [
    ("l2", "strategy__reg_lambda"),
    (L2(), "strategy__reg_lambda"),
    (Combined(Replay(), L2()), "strategy__l2__reg_lambda"),
])
def test_grid_search_over_strategy_parameters(strategy, key):
    X, y, months = make_stream(n_months=3, n_per_month=60)

    def chosen(clf):
        parts = getattr(clf.strategy_, "parts", [clf.strategy_])
        return [p.reg_lambda for p in parts if hasattr(p, "reg_lambda")][0]

    search = GridSearchCV(ContinualClassifier(strategy=strategy, **FAST), {key: [0.5, 9.0]},
                          cv=2, scoring=lambda est, X_, y_: -abs(chosen(est) - 9.0))
    search.fit(X, y)
    assert search.best_params_ == {key: 9.0}
    assert chosen(search.best_estimator_) == 9.0
    # The object given to the search is never fitted nor changed.
    if isinstance(strategy, Strategy):
        assert not hasattr(strategy, "anchors")


def test_a_new_strategy_is_one_class_and_one_registry_line(monkeypatch):
    class Shrink(Strategy):
        """Pull every weight toward 0 on each batch (a toy batch penalty)."""

        def __init__(self, strength=0.1):
            self.strength = strength

        def batch_penalty(self, net, X, y_pred, y_true):
            self.seen = getattr(self, "seen", None) or (X.shape, y_pred.shape, y_true.shape)
            return self.strength * y_pred.pow(2).mean()

    monkeypatch.setitem(_registry.BUILTIN, "shrink", Shrink)
    monkeypatch.setattr(_registry, "STRATEGIES", (*_registry.STRATEGIES, "shrink"))
    X, y, months = make_stream()
    clf = ContinualClassifier(strategy="shrink", strategy__strength=2.0, **FAST)
    clf.fit(X, y, months=months)
    assert clf.strategy_.strength == 2.0
    assert clf.strategy_.seen == ((32, 6), (32, 2), (32,))


def test_the_batch_penalty_is_added_to_the_loss():
    # Oracle: one SGD step on CE + c * mean(logits^2), written out.
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 2)
    X = torch.randn(8, 4).numpy()
    y = np.array([0, 1] * 4)

    class Square(Strategy):
        def batch_penalty(self, net, X, y_pred, y_true):
            return 0.3 * y_pred.pow(2).mean()

    import copy

    oracle = copy.deepcopy(module)
    clf = ContinualClassifier(module=module, strategy=Square(), optimizer=torch.optim.SGD,
                              lr=0.1, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    out = oracle(torch.from_numpy(X))
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y)) + 0.3 * out.pow(2).mean()
    loss.backward()
    with torch.no_grad():
        for p in oracle.parameters():
            p -= 0.1 * p.grad
    for got, want in zip(clf.module_.state_dict().values(), oracle.state_dict().values()):
        torch.testing.assert_close(got, want)


def test_another_strategys_parameter_is_ignored_as_a_flat_one_is():
    # A search over strategies with strategy__alpha set for lwf: naive's
    # candidates must not fail.
    X, y, months = make_stream(n_months=2, n_per_month=60)
    search = GridSearchCV(ContinualClassifier(strategy="lwf", strategy__alpha=2.0, **FAST),
                          {"strategy": ["lwf", "naive"]}, cv=2, error_score="raise")
    search.fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert ContinualClassifier(strategy="naive", strategy__alpha=2.0)._make_strategy().__class__.__name__ == "Naive"


def test_a_refused_set_params_changes_nothing():
    from sklearn_cf.strategies import LwF

    X, y, months = make_stream(n_months=2, n_per_month=60)
    obj = LwF(alpha=1.0)
    clf = ContinualClassifier(strategy=obj, **FAST).fit(X, y, months=months)
    with pytest.raises(ValueError, match="re-initialize the network"):
        clf.set_params(strategy="naive", strategy__alpha=9.0, module__hidden_units=(4,))
    assert clf.strategy is obj and obj.alpha == 1.0
    with pytest.raises(ValueError, match="no parameter 'alfa'"):
        clf.set_params(strategy__alpha=9.0, strategy__alfa=1.0)
    assert obj.alpha == 1.0
    both = Combined(Replay(), L2())
    with pytest.raises(ValueError, match="no parameter 'x'"):
        both.set_params(l2__reg_lambda=5.0, replay__x=1)
    assert both.parts[1].reg_lambda == 1.0


@pytest.mark.parametrize("how", ["prefixed", "object"])
@pytest.mark.parametrize("name, before, after", [
    ("memory_size", 50, 10), ("memory_policy", "reservoir", "class_balanced")])
def test_structural_strategy_parameters_are_fixed_after_the_base_fit(how, name, before, after):
    X, y, months = make_stream(n_months=2, n_per_month=60)
    settings = {"memory_size": 50, name: before}
    if how == "object":
        clf = ContinualClassifier(strategy=Replay(**settings), **FAST)
    else:
        clf = ContinualClassifier(strategy="replay",
                                  **{f"strategy__{k}": v for k, v in settings.items()}, **FAST)
    clf.partial_fit_month(X[months == 0], y[months == 0])
    before_state = clf.strategy_.memory.capacity
    clf.set_params(**{f"strategy__{name}": after})
    with pytest.raises(ValueError, match=f"the strategy's {name}="):
        clf.partial_fit_month(X[months == 1], y[months == 1])
    assert clf.months_seen_ == [0] and clf.strategy_.memory.capacity == before_state


def test_each_class_names_itself_and_combined_names_its_parts_by_it():
    from sklearn_cf.strategies import DERPlusPlus, Naive

    assert all(cls.name == name for name, cls in BUILTIN.items())
    assert Strategy.name is None and Combined.name is None
    assert DERPlusPlus.name == "der++"

    class Unnamed(Strategy):
        def __init__(self, k=1):
            self.k = k

    both = Combined(Replay(), Unnamed(k=3))
    assert both.get_params()["part1__k"] == 3
    assert both.get_params()["replay__rehearsal_ratio"] == 0.5
    twice = Combined(Naive(), Naive())  # a shared name: by position
    assert set(twice.get_params(deep=False)) == {"part0", "part1"}


def test_capabilities_are_attributes_and_combined_combines_them():
    from sklearn_cf.strategies import DER, DERPlusPlus, Joint, Naive

    naive = Naive()
    assert naive.parts == [naive]
    assert (naive.fresh_model, naive.needs_log_likelihood, naive.shardable) == (
        False, False, True)
    assert not DER.shardable and not DERPlusPlus.shardable and Replay.shardable
    assert Joint.fresh_model
    replay_ewc = make_strategy("replay+ewc")
    assert replay_ewc.parts is not None and len(replay_ewc.parts) == 2
    assert replay_ewc.needs_log_likelihood == replay_ewc.parts[1].needs_log_likelihood
    assert replay_ewc.shardable and not replay_ewc.fresh_model
    assert not Combined(Replay(), DER()).shardable
    assert Combined(Naive(), Joint()).fresh_model


def test_parameter_constraints_come_from_the_parts():
    from sklearn_cf.strategies import parameter_constraints

    constraints = parameter_constraints("replay+ewc")
    assert set(constraints) == set(Replay._parameter_constraints) | set(
        EWC._parameter_constraints)
    assert constraints["reg_lambda"] is EWC._parameter_constraints["reg_lambda"]
    assert parameter_constraints(Combined(Replay(), L2())) == {
        **L2._parameter_constraints, **Replay._parameter_constraints}
    with pytest.raises(ValueError, match="Unknown strategy='replya'"):
        parameter_constraints("replya")


def test_the_memory_factory_builds_each_policy():
    from sklearn_cf.strategies import AllRowsMemory, ClassBalancedMemory, ReservoirMemory
    from sklearn_cf.strategies._memory_factory import make_memory, memory_from_state

    assert type(make_memory(None)) is AllRowsMemory
    assert type(make_memory(5)) is ReservoirMemory
    balanced = make_memory(5, policy="class_balanced")
    assert type(balanced) is ClassBalancedMemory
    rng = np.random.default_rng(0)
    balanced.add(torch.zeros(8, 2), torch.tensor([0, 1] * 4), rng)
    rebuilt = memory_from_state(balanced.state_dict())
    assert type(rebuilt) is ClassBalancedMemory and len(rebuilt) == 5
    torch.testing.assert_close(rebuilt.y[:5], balanced.y[:5])

"""A checkpoint of a plugin strategy names the strategy, and the package
that provides it, when it is loaded where the plugin is missing."""

import numpy as np
import pytest

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf._estimator import _checkpoint
from sklearn_cf.strategies import Naive, register_strategy, unregister_strategy

from conftest import FAST, make_stream


class KeepGoing(Naive):
    """Naive fine-tuning under another name: a plugin in miniature."""

    name = "keep_going"


@pytest.fixture
def saved(tmp_path):
    register_strategy("keep_going", KeepGoing)
    try:
        X, y, months = make_stream(n_months=2, n_per_month=40)
        clf = ContinualClassifier(strategy="keep_going", **FAST).fit(X, y, months=months)
        yield clf, X, tmp_path / "m.pt"
    finally:
        unregister_strategy("keep_going")


def test_a_missing_plugin_is_named_with_its_package(saved, monkeypatch):
    clf, X, path = saved
    # As if the strategy came from an installed distribution's entry point.
    monkeypatch.setattr(_checkpoint, "strategy_origin",
                        lambda name: "sklearn-cf-keep-going" if name == "keep_going" else None)
    clf.save(path)
    unregister_strategy("keep_going")
    with pytest.raises(ValueError, match=r"strategy='keep_going'.*package 'sklearn-cf-keep-going'"
                                         r".*pip install sklearn-cf-keep-going"):
        sklearn_cf.load(path)
    register_strategy("keep_going", KeepGoing)  # installed again: it loads
    np.testing.assert_array_equal(sklearn_cf.load(path).predict_proba(X), clf.predict_proba(X))


def test_a_missing_plugin_registered_in_process_says_to_register_it(saved):
    clf, _, path = saved
    clf.save(path)
    unregister_strategy("keep_going")
    with pytest.raises(ValueError, match=r"strategy='keep_going', which is not a strategy "
                                         r"known here.*register_strategy"):
        sklearn_cf.load(path)
    register_strategy("keep_going", KeepGoing)

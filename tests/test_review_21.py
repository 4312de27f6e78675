"""Review of issue 21's features (a model that encodes its own raw rows,
new classes, serving): the bugs found, each as a user meets it."""

import numpy as np
import pandas as pd
import pytest

from sklearn_cf import ContinualClassifier, load
from sklearn_cf.preprocessing import TableEncoder


def raw_month(rng, labels, n=120):
    y = np.asarray(labels)[np.arange(n) % len(labels)]
    X = pd.DataFrame({
        "size": rng.normal(size=n) + 3.0 * np.searchsorted(["a", "b", "c", "d"], y),
        "packer": rng.choice(["upx", "none", "aspack"], size=n),
    })
    return X, y


@pytest.mark.parametrize("strategy", ["der", "der++"])
@pytest.mark.parametrize("on_disk", [False, True])
def test_der_with_preprocessor_grows_saves_and_loads(strategy, on_disk, tmp_path):
    # DER's memory rows are the network's inputs (the encoder's output,
    # 4 columns here), not the raw table's 2 columns.
    rng = np.random.default_rng(0)
    clf = ContinualClassifier(strategy=strategy, preprocessor=TableEncoder(), max_epochs=2,
                              hidden_units=(8,), random_state=0,
                              memory_dir=tmp_path / "memory" if on_disk else None)
    clf.partial_fit_month(*raw_month(rng, ["b", "c"]))
    clf.save(tmp_path / "m.pt")
    model = load(tmp_path / "m.pt")
    X, y = raw_month(rng, ["a", "b", "c"])
    model.partial_fit_month(X, y, allow_new_classes=True)
    assert model.predict_proba(X).shape == (len(X), 3)
    model.save(tmp_path / "m2.pt")
    again = load(tmp_path / "m2.pt")
    X3, y3 = raw_month(rng, ["a", "b", "c", "d"])
    again.partial_fit_month(X3, y3, allow_new_classes=True)
    assert list(again.classes_) == ["a", "b", "c", "d"]

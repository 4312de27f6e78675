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


def test_pandas_categorical_of_numbers_is_one_hot_encoded():
    # The docstring: "Text and categorical columns are one-hot encoded"; a
    # pandas category column of integer codes was standardized as a number.
    first = pd.DataFrame({"region": pd.Categorical([1, 2, 3, 1]), "size": [1.0, 2.0, 3.0, 4.0]})
    encoder = TableEncoder().fit(first)
    assert encoder.kinds_ == ["categorical", "numeric"]
    assert encoder.get_feature_names_out().tolist() == [
        "region=1", "region=2", "region=3", "size"]
    later = pd.DataFrame({"region": pd.Categorical([3, 1]), "size": [1.0, 1.0]})
    np.testing.assert_array_equal(encoder.transform(later)[:, :3], [[0, 0, 1], [1, 0, 0]])
    # The same codes read by pandas as plain numbers, or float codes.
    plain = pd.DataFrame({"region": [2, 3], "size": [1.0, 1.0]})
    np.testing.assert_array_equal(encoder.transform(plain)[:, :3], [[0, 1, 0], [0, 0, 1]])
    floats = TableEncoder().fit(pd.DataFrame({"r": pd.Categorical([1.0, 2.0, np.nan])}))
    assert floats.categories_ == [["1", "2"]]
    np.testing.assert_array_equal(floats.transform(pd.DataFrame({"r": [2.0, np.nan]})),
                                  [[0, 1], [0, 0]])


def test_object_array_of_codes_read_as_numbers_matches_the_frame(tmp_path):
    # A model fitted on an unnamed object array: predict_file gives it each
    # chunk as ``frame.to_numpy()``, an object array when a column is text,
    # in which a chunk's codes read as floats (5.0, a missing value) were
    # compared as "5.0" and encoded as unseen, unlike the same rows as a frame.
    import warnings

    from sklearn_cf.serving import predict_file

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(size=200),
                          "code": rng.choice(["5", "12", "x"], size=200),
                          "packer": rng.choice(["upx", "none"], size=200)})
    y = (frame["code"] == "5").astype(int).to_numpy()
    clf = ContinualClassifier(preprocessor=TableEncoder(), max_epochs=5,
                              random_state=0).fit(frame.to_numpy(), y)
    chunk = pd.DataFrame({"size": [0.0, 1.0], "code": [5.0, np.nan],
                          "packer": ["upx", "none"]}).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoded = clf.preprocessor_.transform(chunk)
    np.testing.assert_array_equal(encoded[:, 1:4], [[0, 1, 0], [0, 0, 0]])

    rows = frame.copy()
    rows.loc[:99, "code"] = "5"
    rows.loc[50, "code"] = None
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predict_file(clf, tmp_path / "rows.csv", tmp_path / "p.csv", chunk_rows=100)
    got = pd.read_csv(tmp_path / "p.csv")[["proba_0", "proba_1"]].to_numpy()
    np.testing.assert_allclose(got, clf.predict_proba(rows.to_numpy()), atol=1e-6)

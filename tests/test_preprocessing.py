"""TableEncoder, and a ContinualClassifier that carries it (preprocessor=):
raw rows in, the same predictions wherever the model is loaded (issue 21,
item 1)."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf.preprocessing import (
    ConstantFeatureWarning,
    TableEncoder,
    UnseenCategoryWarning,
)

pd = pytest.importorskip("pandas")


def _frame(n, seed, dows=("Mon", "Tue", "Wed")):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(5e4, 2e4, n),          # large scale
        "ratio": rng.normal(0.0, 1e-3, n),          # tiny scale
        "dow": rng.choice(list(dows), n),
        "flag": rng.random(n) < 0.5,
    })


def _labels(frame, text=False):
    y = ((frame["amount"] > 5e4) ^ (frame["dow"] == "Mon")).to_numpy().astype(int)
    return np.where(y == 1, "malware", "goodware") if text else y


class TestTableEncoder:
    def test_numeric_and_categorical_match_sklearn(self):
        first, later = _frame(200, 0), _frame(50, 1, dows=("Mon", "Holiday", "Sun"))
        encoder = TableEncoder().fit(first)
        with pytest.warns(UnseenCategoryWarning) as caught:
            out = encoder.transform(later)
        assert len(caught) == 1  # one note per call
        message = str(caught[0].message)
        assert "'dow'" in message and "'Holiday'" in message and "'Sun'" in message
        numeric = ["amount", "ratio", "flag"]
        scaler = StandardScaler().fit(first[numeric].astype(float))
        onehot = OneHotEncoder(handle_unknown="ignore").fit(first[["dow"]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's own unknown-category warning
            expected_onehot = onehot.transform(later[["dow"]]).toarray()
        expected_numeric = scaler.transform(later[numeric].astype(float))
        names = encoder.get_feature_names_out().tolist()
        assert names == ["amount", "ratio", "dow=Mon", "dow=Tue", "dow=Wed", "flag"]
        np.testing.assert_allclose(out[:, [0, 1, 5]], expected_numeric, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out[:, 2:5], expected_onehot)
        assert out.dtype == np.float32

    def test_reordered_columns_are_matched_by_name(self):
        first = _frame(100, 0)
        encoder = TableEncoder().fit(first)
        shuffled = first[["flag", "dow", "ratio", "amount"]]
        np.testing.assert_array_equal(encoder.transform(shuffled), encoder.transform(first))

    def test_constant_column_is_noted_and_only_centred(self):
        first = _frame(60, 0).assign(version=3.0)
        with pytest.warns(ConstantFeatureWarning, match="'version'"):
            encoder = TableEncoder().fit(first)
        assert encoder.constant_features_ == ["version"]
        out = encoder.transform(first.assign(version=5.0))
        j = encoder.get_feature_names_out().tolist().index("version")
        np.testing.assert_array_equal(out[:, j], 2.0)  # (5 - 3) / 1

    @pytest.mark.parametrize("change, match", [
        (lambda f: f.drop(columns="ratio"), "lacks the column.*'ratio'"),
        (lambda f: f.assign(extra=1.0), "has column.*'extra'.*drop them"),
        (lambda f: f.assign(amount="high"), "'amount' was numeric.*'high'"),
        (lambda f: f.assign(amount=np.nan), "'amount' has .* missing"),
    ])
    def test_refuses_wrong_tables(self, change, match):
        first = _frame(30, 0)
        encoder = TableEncoder().fit(first)
        with pytest.raises(ValueError, match=match):
            encoder.transform(change(first))

    def test_missing_category_is_zeros_without_a_note(self):
        first = _frame(30, 0)
        encoder = TableEncoder().fit(first)
        later = first.astype({"dow": object})
        later.loc[0, "dow"] = None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = encoder.transform(later)
        assert out[0, 2:5].sum() == 0

    def test_state_dict_round_trip_is_plain_data(self):
        first = _frame(80, 0)
        encoder = TableEncoder(max_categories=10).fit(first)
        state = encoder.state_dict()
        again = TableEncoder.from_state_dict(state)
        assert again.get_params() == encoder.get_params()
        np.testing.assert_array_equal(again.transform(first), encoder.transform(first))

    def test_sklearn_conventions(self):
        encoder = TableEncoder(standardize=False)
        assert clone(encoder).get_params() == {"standardize": False, "max_categories": 100}
        X = np.arange(12.0).reshape(4, 3)
        fitted = encoder.fit(X)
        assert fitted.n_features_in_ == 3 and not hasattr(fitted, "feature_names_in_")
        np.testing.assert_array_equal(fitted.transform(X), X.astype(np.float32))
        assert fitted.get_feature_names_out().tolist() == ["x0", "x1", "x2"]


class TestClassifierWithPreprocessor:
    @pytest.mark.parametrize("text_labels", [False, True])
    def test_checkpoint_round_trip_on_raw_rows(self, tmp_path, text_labels):
        first, second = _frame(300, 0), _frame(300, 1)
        held = _frame(100, 2, dows=("Mon", "Tue", "Wed", "Holiday"))
        X = pd.concat([first, second], ignore_index=True)
        y = np.concatenate([_labels(first, text_labels), _labels(second, text_labels)])
        months = np.repeat(["2024-01", "2024-02"], 300)
        clf = ContinualClassifier(strategy="replay", max_epochs=3, random_state=0,
                                  preprocessor=TableEncoder())
        clf.fit(X, y, months=months)
        assert clf.n_features_in_ == 4
        assert clf.feature_names_in_.tolist() == ["amount", "ratio", "dow", "flag"]
        # Fitted on the first month's rows only.
        expected = TableEncoder().fit(first)
        np.testing.assert_allclose(clf.preprocessor_.mean_, expected.mean_)
        assert clf.preprocessor is not clf.preprocessor_  # a clone was fitted
        path = tmp_path / "model.pt"
        clf.save(path)
        loaded = sklearn_cf.load(path)
        with pytest.warns(UnseenCategoryWarning, match="Holiday"):
            reference = clf.predict_proba(held)
        with pytest.warns(UnseenCategoryWarning, match="Holiday"):
            np.testing.assert_array_equal(loaded.predict_proba(held), reference)
        shuffled = held[["flag", "ratio", "dow", "amount"]]
        with pytest.warns(UnseenCategoryWarning):
            np.testing.assert_array_equal(loaded.predict(shuffled), clf.predict(held))
        # Continuing after load is the same as never stopping.
        third = _frame(200, 3)
        clf.partial_fit_month(third, _labels(third, text_labels), month="2024-03")
        loaded.partial_fit_month(third, _labels(third, text_labels), month="2024-03")
        np.testing.assert_array_equal(loaded.predict_proba(first), clf.predict_proba(first))

    def test_scaling_is_what_makes_mixed_scales_learnable(self):
        # The oracle: a model fitted on rows scaled by hand with the first
        # month's statistics gives the same probabilities.
        first = _frame(300, 0)
        y = _labels(first)
        by_hand = TableEncoder().fit(first).transform(first)
        plain = ContinualClassifier(max_epochs=3, random_state=0).fit(by_hand, y)
        piped = ContinualClassifier(max_epochs=3, random_state=0,
                                    preprocessor=TableEncoder()).fit(first, y)
        np.testing.assert_allclose(piped.predict_proba(first), plain.predict_proba(by_hand),
                                   rtol=1e-6)

    def test_preprocessor_is_fixed_after_the_base_fit(self, tmp_path):
        first = _frame(100, 0)
        clf = ContinualClassifier(max_epochs=1, random_state=0, preprocessor=TableEncoder())
        clf.partial_fit_month(first, _labels(first))
        clf.save(tmp_path / "m.pt")
        for model in (clf, sklearn_cf.load(tmp_path / "m.pt")):
            model.set_params(preprocessor=TableEncoder(standardize=False))
            with pytest.raises(ValueError, match="preprocessor=.*changed after the base fit"):
                model.partial_fit_month(first, _labels(first))
        with pytest.raises(TypeError, match="TableEncoder"):
            ContinualClassifier(preprocessor=StandardScaler()).fit(first, _labels(first))


def test_a_text_column_read_as_numbers_is_matched_by_its_text():
    """A later month whose codes all look like numbers is read by pandas as
    numbers: they are compared as the text a CSV holds (5 and "5", 12.0 and
    "12"), and a code whose text differs is noted as unseen, not refused."""
    import io

    first = pd.DataFrame({"code": ["5", "12", "x", "07"], "amount": [1.0, 2.0, 3.0, 4.0]})
    encoder = TableEncoder().fit(first)
    later = pd.read_csv(io.StringIO("code,amount\n5,1\n12,2\n07,3\n"))
    assert later["code"].dtype.kind == "i"  # pandas read the codes as numbers
    as_text = later.assign(code=["5", "12", "07"])
    with pytest.warns(UnseenCategoryWarning, match="'7'"):
        got = encoder.transform(later)
    expected = encoder.transform(as_text)
    names = encoder.get_feature_names_out().tolist()
    for name in ("code=5", "code=12", "amount"):
        j = names.index(name)
        np.testing.assert_array_equal(got[:, j], expected[:, j])
    assert got[2, names.index("code=07")] == 0.0  # "07" became 7: unseen, all zeros

"""``sklearn-cf update`` builds a model that encodes its own raw rows.

For each kind of input -- numbers at mixed scales, a categorical column with
a value first seen in a later month, a column constant in the first month,
a later month's CSV with its columns in another order, text labels -- three
CSV months go through the monthly job, and then:

* ``get_scorer(scoring)(sklearn_cf.load(M), rows, y)`` on the held-out rows,
  taken from the CSV files themselves (the job's split, redone with
  scikit-learn) and from the evaluation store, is exactly the score the job
  reported (its result and the generation's manifest);
* ``sklearn_cf.load(M).predict_proba(pd.read_csv(month).drop(columns=target))``
  runs, and on the held-out rows gives the probabilities the job scored.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import get_scorer
from sklearn.model_selection import train_test_split

import sklearn_cf
from sklearn_cf.cli import main
from sklearn_cf.store import ModelStore
from sklearn_cf.update import update_model

# The loaded model notes each unseen category as it predicts (the job notes
# them once per month, see the notes test).
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn_cf.preprocessing.UnseenCategoryWarning")

TARGET = "label"
ROWS = 120
NET = ["--epochs", "3", "--hidden-units", "8"]


def _month_frame(k, kind, rng):
    """Month ``k`` (0, 1, 2) of the input kind ``kind``, as a DataFrame."""
    n = ROWS
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "amount": 5000 + 1000 * x + rng.normal(scale=300, size=n),  # thousands
        "ratio": 0.001 * rng.normal(size=n),                           # thousandths
        "count": rng.integers(0, 50, size=n),
    })
    if kind in ("categorical", "reordered", "text_labels"):
        days = ["Mon", "Tue", "Wed"] + (["Holiday"] if k == 2 else [])
        frame["dow"] = rng.choice(days, size=n)
        frame.loc[frame.index[:3], "dow"] = None if k == 1 else frame["dow"].iloc[:3]
    if kind == "constant":
        frame["const"] = 7.0 if k == 0 else rng.normal(7.0, 2.0, size=n)
    y = (x + 0.5 * rng.normal(size=n) > 0).astype(int)
    frame[TARGET] = np.where(y == 1, "malware", "benign") if kind == "text_labels" else y
    if kind == "reordered" and k == 2:
        frame = frame[list(reversed(frame.columns))]
    return frame


KINDS = ["numeric", "categorical", "constant", "reordered", "text_labels"]


@pytest.fixture(params=KINDS)
def job(request, tmp_path):
    """The three months written as CSV files and run through the job."""
    rng = np.random.default_rng(KINDS.index(request.param))
    paths, results = [], []
    model = tmp_path / "model"
    for k in range(3):
        path = tmp_path / f"month{k}.csv"
        _month_frame(k, request.param, rng).to_csv(path, index=False)
        paths.append(str(path))
        extra = {"strategy": "replay", "estimator_params": {
            "max_epochs": 3, "hidden_units": (8,)}} if k == 0 else {}
        results.append(update_model(str(model), str(path), target=TARGET, month=str(k),
                                    **extra))
    return request.param, model, paths, results


def _held_rows(path, random_state=0, holdout=0.2):
    """Positions in the CSV of the month's held-out rows, split as the job
    splits them (stratified, seeded)."""
    y = pd.read_csv(path)[TARGET].astype(str).to_numpy()
    rows = np.arange(len(y))
    return train_test_split(rows, test_size=holdout, stratify=y, random_state=random_state)[1]


def _held_out(path):
    """The month's held-out rows, raw as the CSV holds them, and their labels."""
    frame = pd.read_csv(path)
    held = _held_rows(path)
    y = frame[TARGET].to_numpy()
    y = y.astype(str) if y.dtype == object else y
    return frame.drop(columns=TARGET).iloc[held].reset_index(drop=True), y[held]


def test_the_loaded_model_scores_raw_rows_as_the_job_reported(job):
    kind, model, paths, results = job
    clf = sklearn_cf.load(model)
    store = ModelStore(model)
    scoring = store.eval_store().scoring
    scorer = get_scorer(scoring)
    manifest = store.generation().scores
    assert sorted(manifest) == ["0", "1", "2"]
    last = results[-1].steps[-1]
    assert manifest["2"] == last.score and manifest["0"] == last.after[0]
    for k, path in enumerate(paths):
        X, y = _held_out(path)
        # from the CSV itself: exactly the reported score
        assert scorer(clf, X, y) == manifest[str(k)], (kind, k)
        # from the evaluation store: the same rows, raw, the same score
        rows, labels = store.eval_store().X[k], store.eval_store().y[k]
        pd.testing.assert_frame_equal(rows[list(X.columns)], X, check_dtype=False)
        np.testing.assert_array_equal(labels, y)
        assert scorer(clf, rows, labels) == manifest[str(k)]
    # each month's own held-out score, at the time, reported in its summary
    for k, result in enumerate(results):
        gen = store.generation(result.generation)
        assert gen.scores[str(k)] == result.steps[-1].score
        assert scorer(store.load(result.generation), *_held_out(paths[k])) \
            == result.steps[-1].score


def test_predict_proba_on_a_whole_csv_month(job):
    kind, model, paths, _ = job
    clf = sklearn_cf.load(model)
    store = ModelStore(model).eval_store()
    for k, path in enumerate(paths):
        frame = pd.read_csv(path).drop(columns=TARGET)
        proba = clf.predict_proba(frame)
        assert proba.shape == (len(frame), 2) and np.all(np.isfinite(proba))
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
        # the job's own prediction path: its stored held-out rows
        expected = clf.predict_proba(store.X[k])
        np.testing.assert_allclose(proba[_held_rows(path)], expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(clf.predict_proba(_held_out(path)[0]), expected)


def test_the_encoder_is_fitted_on_the_first_months_training_rows(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "m0.csv"
    _month_frame(0, "categorical", rng).to_csv(path, index=False)
    model = tmp_path / "m"
    update_model(str(model), str(path), target=TARGET, strategy="naive",
                 estimator_params={"max_epochs": 1, "hidden_units": (8,)})
    encoder = sklearn_cf.load(model).preprocessor_
    frame = pd.read_csv(path)
    held, _ = _held_out(path)
    train = frame.drop(columns=TARGET).merge(held, how="left", indicator=True)
    train = train[train["_merge"] == "left_only"].drop(columns="_merge")
    assert encoder.n_samples_seen_ == len(train) == ROWS - len(held)
    np.testing.assert_allclose(encoder.mean_[0], train["amount"].mean())
    assert list(encoder.feature_names_in_) == ["amount", "ratio", "count", "dow"]


def test_notes_for_unseen_categories_and_constant_features(tmp_path, capsys):
    rng = np.random.default_rng(3)
    model = tmp_path / "m"
    outputs = []
    for k in range(3):
        frame = _month_frame(k, "categorical", rng)
        frame["const"] = 1.0 if k == 0 else rng.normal(size=len(frame))
        path = tmp_path / f"m{k}.csv"
        frame.to_csv(path, index=False)
        args = ["update", "--model", str(model), "--data", str(path), "--target", TARGET,
                "--month", f"2024-0{k + 1}"]
        assert main(args + (["--strategy", "naive", *NET] if k == 0 else [])) == 0
        outputs.append(capsys.readouterr().out)
        if k == 2:
            holidays = int((frame["dow"] == "Holiday").sum())
    assert ("note: month 2024-01: constant feature const in the 96 rows the encoder was "
            "fitted on (scale 1)") in outputs[0]
    assert outputs[0].count("note:") == 1 and "note:" not in outputs[1]
    assert (f"note: month 2024-03: unseen category dow=Holiday in {holidays} rows "
            "(encoded as all zeros)") in outputs[2]
    assert outputs[2].count("note:") == 1


def test_a_month_with_other_columns_is_refused_naming_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    model = tmp_path / "m"
    first = tmp_path / "m0.csv"
    _month_frame(0, "numeric", rng).to_csv(first, index=False)
    assert main(["update", "--model", str(model), "--data", str(first), "--target", TARGET,
                 "--strategy", "naive", "--quiet", *NET]) == 0
    other = _month_frame(1, "numeric", rng).rename(columns={"ratio": "rate"})
    other.to_csv(tmp_path / "m1.csv", index=False)
    before = ModelStore(model).generation().id
    assert main(["update", "--model", str(model), "--data", str(tmp_path / "m1.csv"),
                 "--target", TARGET, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "lacks the feature column(s) 'ratio'" in err
    assert ModelStore(model).generation().id == before


def test_a_re_run_of_a_month_with_reordered_columns_is_up_to_date(tmp_path):
    rng = np.random.default_rng(0)
    model = tmp_path / "m"
    frame = _month_frame(0, "categorical", rng)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame[list(reversed(frame.columns))].to_csv(tmp_path / "b.csv", index=False)
    update_model(str(model), str(tmp_path / "a.csv"), target=TARGET, month="1",
                 strategy="naive", estimator_params={"max_epochs": 1, "hidden_units": (8,)})
    again = update_model(str(model), str(tmp_path / "b.csv"), target=TARGET, month="1")
    assert not again.steps and again.already_applied == [1]

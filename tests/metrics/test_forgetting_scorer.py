"""forgetting_matrix and the scorer, checked against plain sklearn metrics."""

import numpy as np
import pytest
import sklearn
from conftest import FAST, make_stream
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cf import (
    ContinualClassifier,
    SequentialSplit,
    forgetting_matrix,
    make_forgetting_scorer,
    tpr_at_fpr,
)
from sklearn_cf.metrics import SUMMARY_KEYS, backward_transfer, forgetting, summarize

PARAMS = dict(FAST, max_epochs=4, lr=1e-2)


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def test_matrix_equals_live_predictions_after_each_month():
    X, y, months = make_stream(n_months=3)
    train, test = next(SequentialSplit(n_splits=1, random_state=0).split(X, y, months=months))
    clf = ContinualClassifier(strategy="replay", **PARAMS)
    # Oracle: score the live model after each partial_fit_month call.
    expected = np.zeros((3, 3))
    for i in range(3):
        rows = train[months[train] == i]
        clf.partial_fit_month(X[rows], y[rows])
        for j in range(3):
            cols = test[months[test] == j]
            expected[i, j] = accuracy_score(y[cols], clf.predict(X[cols]))
    fm = forgetting_matrix(clf, X[test], y[test], months[test])
    np.testing.assert_allclose(fm.R, expected)
    assert fm.train_months == [0, 1, 2] and fm.months == [0, 1, 2]
    assert fm.summary() == {**summarize(expected), "n_undefined": 0}


def test_roc_auc_matrix_and_future_months():
    X, y, months = make_stream(n_months=4)
    cv = SequentialSplit(n_splits=1, n_future_months=1, random_state=0)
    train, test = next(cv.split(X, y, months=months))
    clf = ContinualClassifier(**PARAMS).fit(X[train], y[train], months=months[train])
    fm = forgetting_matrix(clf, X[test], y[test], months[test], scoring="roc_auc")
    assert fm.R.shape == (3, 4) and fm.months == [0, 1, 2, 3]
    last = test[months[test] == 3]
    assert fm.R[-1, 3] == pytest.approx(roc_auc_score(y[last], clf.predict_proba(X[last])[:, 1]))


def test_undefined_cells_are_nan():
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(**PARAMS).fit(X, y, months=months)
    one_class = (months == 1) & (y == 1)
    rows = np.flatnonzero((months == 0) | one_class)
    fm = forgetting_matrix(clf, X[rows], y[rows], months[rows], scoring="roc_auc")
    assert np.isnan(fm.R[:, 1]).all() and np.isfinite(fm.R[:, 0]).all()


@pytest.mark.slow
def test_scorer_in_grid_search_equals_forgetting_matrix(routing):
    X, y, months = make_stream(n_months=3)
    estimator = ContinualClassifier(strategy="replay+l2", **PARAMS).set_fit_request(months=True)
    cv = SequentialSplit(n_splits=2, random_state=0)
    grid = [{"reg_lambda": [0.0], "rehearsal_ratio": [0.25]},
            {"reg_lambda": [10.0], "rehearsal_ratio": [0.5]}]
    search = GridSearchCV(
        estimator, grid, cv=cv, scoring=make_forgetting_scorer(include_matrix=True),
        refit="average_accuracy",
    ).fit(X, y, months=months)
    results = search.cv_results_
    for k, (train, test) in enumerate(cv.split(X, y, months=months)):
        for c, params in enumerate(results["params"]):
            fitted = clone(estimator).set_params(**params)
            fitted.fit(X[train], y[train], months=months[train])
            fm = forgetting_matrix(fitted, X[test], y[test], months[test])
            for i in range(3):
                for j in range(3):
                    assert results[f"split{k}_test_R_{i}_{j}"][c] == pytest.approx(fm.R[i, j])
            assert results[f"split{k}_test_backward_transfer"][c] == pytest.approx(
                backward_transfer(fm.R))
    # Refit picked the best average score, and the refitted model saw every month.
    best = np.nanargmax(results["mean_test_average_accuracy"])
    assert search.best_params_ == results["params"][best]
    assert search.best_estimator_.months_seen_ == [0, 1, 2]


def test_every_scorer_key_is_higher_is_better():
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="naive", **PARAMS).fit(X, y, months=months)
    scores = make_forgetting_scorer()(clf, X, y, months=months)
    assert list(scores) == list(SUMMARY_KEYS)
    assert "forgetting" not in scores  # lower is better: only ever returned negated
    R = forgetting_matrix(clf, X, y, months).R
    assert forgetting(R) > 0  # a case where the sign matters
    assert scores["neg_forgetting"] == pytest.approx(-forgetting(R))
    assert scores["backward_transfer"] == pytest.approx(backward_transfer(R))


@pytest.mark.slow
def test_refit_on_neg_forgetting_picks_the_candidate_that_forgets_least(routing):
    X, y, months = make_stream(n_months=3)
    estimator = ContinualClassifier(**PARAMS).set_fit_request(months=True)
    cv = SequentialSplit(n_splits=2, random_state=0)
    search = GridSearchCV(
        estimator, {"strategy": ["naive", "joint"]}, cv=cv,
        scoring=make_forgetting_scorer(), refit="neg_forgetting",
    ).fit(X, y, months=months)
    results = search.cv_results_
    # Oracle: forgetting(R) of every candidate on every split, fitted apart.
    forgot = np.zeros((2, 2))
    for k, (train, test) in enumerate(cv.split(X, y, months=months)):
        for c, params in enumerate(results["params"]):
            fitted = clone(estimator).set_params(**params)
            fitted.fit(X[train], y[train], months=months[train])
            forgot[c, k] = forgetting(forgetting_matrix(fitted, X[test], y[test], months[test]).R)
            assert results[f"split{k}_test_neg_forgetting"][c] == pytest.approx(-forgot[c, k])
    mean = forgot.mean(axis=1)
    assert abs(mean[0] - mean[1]) > 0.01  # one candidate clearly forgets more
    assert search.best_params_ == results["params"][np.argmin(mean)]
    assert results["rank_test_neg_forgetting"][np.argmin(mean)] == 1


@pytest.mark.slow
def test_pipeline_and_two_jobs_give_the_same_scores(routing):
    X, y, months = make_stream(n_months=3)
    pipe = make_pipeline(
        StandardScaler(), ContinualClassifier(strategy="replay", **PARAMS).set_fit_request(months=True)
    )
    grid = {"continualclassifier__rehearsal_ratio": [0.25, 0.5]}
    runs = []
    for n_jobs in (1, 2):
        search = GridSearchCV(
            pipe, grid, cv=SequentialSplit(n_splits=2, random_state=0),
            scoring=make_forgetting_scorer(), refit="average_accuracy", n_jobs=n_jobs,
        ).fit(X, y, months=months)
        runs.append(search.cv_results_["mean_test_average_accuracy"])
    np.testing.assert_array_equal(runs[0], runs[1])
    # The scorer saw the pipeline: its numbers match forgetting_matrix on a pipeline.
    train, test = next(SequentialSplit(n_splits=2, random_state=0).split(X, y, months=months))
    fitted = clone(pipe).set_params(continualclassifier__rehearsal_ratio=0.25)
    fitted.fit(X[train], y[train], months=months[train])
    fm = forgetting_matrix(fitted, X[test], y[test], months[test])
    assert search.cv_results_["split0_test_average_accuracy"][0] == pytest.approx(fm.R[-1].mean())


@pytest.mark.slow
def test_dask_backend(routing):
    distributed = pytest.importorskip("dask.distributed")
    import joblib

    X, y, months = make_stream(n_months=3)
    search = GridSearchCV(
        ContinualClassifier(strategy="replay", **PARAMS).set_fit_request(months=True),
        {"rehearsal_ratio": [0.25, 0.5]},
        cv=SequentialSplit(n_splits=2, random_state=0),
        scoring=make_forgetting_scorer(), refit="average_accuracy", n_jobs=2,
    )
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=":0"):
        with joblib.parallel_backend("dask"):
            search.fit(X, y, months=months)
    local = clone(search).set_params(n_jobs=1).fit(X, y, months=months)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_average_accuracy"],
        local.cv_results_["mean_test_average_accuracy"],
    )


def test_without_routing_a_month_column_works():
    pd = pytest.importorskip("pandas")
    X, y, months = make_stream(n_months=3)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(month=months)
    pipe = make_pipeline(
        make_column_transformer(("drop", ["month"]), remainder="passthrough"),
        ContinualClassifier(**PARAMS),
    )
    cv = SequentialSplit(n_splits=2, random_state=0)
    scores = cross_validate(
        pipe, frame, y, groups=months, cv=cv,
        scoring=make_forgetting_scorer(month_column="month"),
        params={"continualclassifier__months": months},
    )
    train, test = next(cv.split(X, y, groups=months))
    fitted = clone(pipe).fit(frame.iloc[train], y[train], continualclassifier__months=months[train])
    fm = forgetting_matrix(fitted, frame.iloc[test], y[test], months[test])
    assert scores["test_average_accuracy"][0] == pytest.approx(fm.R[-1].mean())


def test_missing_months_say_how_to_route_them():
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(**PARAMS).fit(X, y, months=months)
    with pytest.raises(ValueError, match=r"set_config\(enable_metadata_routing=True\)"):
        make_forgetting_scorer()(clf, X, y)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda m: m[:-1], "months has 239 entries but X has 240 rows"),
        (lambda m: np.where(np.arange(len(m)) == 3, np.nan, m), "months contains NaN"),
    ],
)
def test_wrong_months_array_is_an_error(bad, match):
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(**PARAMS).fit(X, y, months=months)
    with pytest.raises(ValueError, match=match):
        forgetting_matrix(clf, X, y, bad(months.astype(float)))


def test_untrained_month_before_the_last_is_an_error():
    X, y, months = make_stream(n_months=3)
    keep = months != 1
    clf = ContinualClassifier(**PARAMS).fit(X[keep], y[keep], months=months[keep])
    with pytest.raises(ValueError, match=r"never trained.*before the last trained month 2"):
        forgetting_matrix(clf, X, y, months)


def test_tpr_at_fpr_against_a_hand_computed_roc():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(scale=1.0, size=400) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    scores = model.decision_function(X)
    fpr, tpr, _ = roc_curve(y, scores)
    assert tpr_at_fpr(0.1)(model, X, y) == pytest.approx(np.interp(0.1, fpr, tpr))
    # Oracle by hand: with no ties, at FPR = k / n_neg exactly the positives
    # scoring above the k-th highest negative are caught.
    negatives = np.sort(scores[y == 0])[::-1]
    k = 10
    fpr_k = k / len(negatives)
    caught = np.mean(scores[y == 1] > negatives[k])
    assert tpr_at_fpr(fpr_k)(model, X, y) == pytest.approx(caught, abs=1 / (y == 1).sum())
    with pytest.raises(ValueError, match="fpr must be in"):
        tpr_at_fpr(0)


def test_tpr_at_fpr_fills_a_forgetting_matrix():
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(**PARAMS).fit(X, y, months=months)
    fm = forgetting_matrix(clf, X, y, months, scoring=tpr_at_fpr(0.05))
    assert fm.scoring == "tpr_at_fpr(0.05)"
    assert np.all((fm.R >= 0) & (fm.R <= 1))


def test_plots(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from sklearn_cf.plotting import plot_forgetting_matrix, plot_month_scores

    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(**PARAMS).fit(X, y, months=months)
    fm = forgetting_matrix(clf, X, y, months)
    ax = plot_forgetting_matrix(fm, title="naive")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    # Every cell is annotated with its score.
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.2f}" for v in fm.R.ravel())
    ax.figure.savefig(tmp_path / "matrix.png")
    ax = plot_month_scores({"naive": fm, "other": fm.R * 0.5})
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), fm.R[-1] * 0.5)
    ax.figure.savefig(tmp_path / "months.png")
    assert (tmp_path / "matrix.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="2-d"):
        plot_forgetting_matrix([1, 2, 3])


def test_configuration_errors_are_raised_not_turned_into_nan():
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(**PARAMS).fit(X, y, months=months)
    with pytest.raises(ValueError, match="features"):
        forgetting_matrix(clf, np.c_[X, months], y, months)
    y3 = y.copy()
    y3[::7] = 2
    clf3 = ContinualClassifier(**PARAMS).fit(X, y3, months=months)
    with pytest.raises(ValueError):
        forgetting_matrix(clf3, X, y3, months, scoring="f1")


def test_month_labels_of_another_kind_are_an_error():
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(**PARAMS).fit(X, y, months=months)
    with pytest.raises(ValueError, match="same kind"):
        forgetting_matrix(clf, X, y, np.array([f"m{m}" for m in months]))


def test_tpr_at_fpr_with_string_labels():
    X, y, months = make_stream(n_months=2)
    labels = np.array(["benign", "malware"])[y]
    clf = ContinualClassifier(**PARAMS).fit(X, labels, months=months)
    fm = forgetting_matrix(clf, X, labels, months, scoring=tpr_at_fpr(0.1))
    # Oracle: the ROC curve of P(malware) with "malware" as the positive class.
    rows = months == 1
    fpr, tpr, _ = roc_curve(labels[rows], clf.predict_proba(X[rows])[:, 1], pos_label="malware")
    assert fm.R[-1, 1] == pytest.approx(np.interp(0.1, fpr, tpr))

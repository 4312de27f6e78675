"""compare_strategies as a detection team runs it: flips, TPR at a target FPR
set the month before, per-family forgetting, TESSERACT's options, honest
tuning, and load_stream's group column. Each number is checked against the
metric functions applied by hand to a model fitted the same way."""

import json
import os

import numpy as np
import pytest

from conftest import make_stream
from sklearn_cf import ContinualClassifier, SequentialSplit, forgetting_matrix
from sklearn_cf.compare import compare_strategies, parse_tune_grid
from sklearn_cf.datasets import load_stream, make_monthly_drift
from sklearn_cf.metrics import (
    group_forgetting,
    group_forgetting_matrices,
    monthly_detection,
    next_month_aut,
    update_flips,
)
from sklearn_cf.report import write_report

TINY = dict(hidden_units=(8,), max_epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def drift():
    return make_monthly_drift(n_months=4, n_samples_per_month=150, return_families=True,
                              random_state=0)


@pytest.fixture(scope="module")
def detection(drift):
    X, y, months, family = drift
    comp = compare_strategies(X, y, months, ["naive", "replay"], estimator_params=TINY,
                              progress=False, groups=family, target_fpr=0.05,
                              aut_scoring="f1", test_prevalence=0.3)
    return comp


def _refit(X, y, months, strategy, train):
    return ContinualClassifier(strategy=strategy, random_state=0, **TINY).fit(
        X[train], y[train], months=months[train])


def test_detection_numbers_match_the_metrics_on_the_same_split(drift, detection):
    X, y, months, family = drift
    cv = SequentialSplit(n_splits=1, test_size=0.2, random_state=0, test_prevalence=0.3)
    train, test = next(cv.split(X, y, months=months))
    for strategy in ("naive", "replay"):
        res = detection.results[strategy]
        clf = _refit(X, y, months, strategy, train)
        Xt, yt, mt = X[test], y[test], months[test]
        flips = update_flips(clf, Xt, yt, mt)
        np.testing.assert_allclose(res.flips.rate, flips.rate)
        assert res.flips.n_flips.tolist() == flips.n_flips.tolist()
        assert res.flip_rate == pytest.approx(flips.mean())
        det = monthly_detection(clf, Xt, yt, mt, 0.05)
        np.testing.assert_allclose(res.detection.tpr, det.tpr)
        np.testing.assert_allclose(res.detection.fpr, det.fpr)
        per_group = group_forgetting(group_forgetting_matrices(clf, Xt, yt, mt, family[test]))
        assert res.group_forgetting.keys() == per_group.keys()
        np.testing.assert_allclose(list(res.group_forgetting.values()),
                                   list(per_group.values()))
        # the group forgotten most; on a tie, the first in sorted order
        top = max(v for v in per_group.values() if np.isfinite(v))
        assert res.worst_group_forgetting == pytest.approx(top)
        assert res.worst_group == next(g for g, v in per_group.items() if v == top)
        aut = next_month_aut(forgetting_matrix(clf, Xt, yt, mt, scoring="f1").R)
        assert res.aut == pytest.approx(aut)
    # the held-out rows hold 30% malware, so the automatic scoring looks there
    assert detection.scoring == "roc_auc"
    assert "held-out rows (test_prevalence=0.3)" in detection.settings["scoring_reason"]


def test_the_table_shows_what_was_asked(detection):
    text = detection.to_string(width=None)
    for header in ("AUT(f1)", "flips", "TPR@0.05", "realised FPR", "worst group"):
        assert header in text
    assert "honest" not in text  # no tuning asked
    row = detection.table(as_frame=False)[0]
    summary = detection.results["naive"].detection.summary()
    assert row["prospective_tpr"] == summary["prospective_tpr"]
    assert row["realised_fpr"] == summary["realised_fpr"]


def test_flips_are_always_there_and_nothing_else_unasked():
    X, y, months = make_stream(n_months=3, n_per_month=60, n_features=5, seed=1)
    comp = compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False)
    res = comp.results["naive"]
    assert res.flips.updates == [(0, 1), (1, 2)]
    assert res.detection is None and res.group_forgetting is None and res.aut is None
    assert res.tuning is None and res.honest_score is None
    headers = comp.display_rows()[0]
    assert "flips" in headers
    assert not {"TPR@FPR", "realised FPR", "worst group", "AUT", "honest", "oracle"} & set(
        headers)


def test_report_has_the_detection_section(detection, tmp_path):
    path = write_report(detection, tmp_path, fmt="md")
    text = open(path, encoding="utf-8").read()
    for heading in ("## Regressions and detection", "### Flips per update",
                    "### TPR at a 0.05 FPR, the threshold set the month before",
                    "### Forgetting per group"):
        assert heading in text
    for png in ("flips.png", "detection_by_month.png", "group_forgetting.png"):
        assert f"]({png})" in text
        assert open(tmp_path / png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    det = detection.results["naive"].detection
    first = f"{det.fpr[0]:.2%}" + (" ▲" if det.fpr[0] > 0.05 else "")
    assert f"| naive: realised FPR | {first} |" in text
    results = json.loads((tmp_path / "results.json").read_text())
    naive = results["strategies"]["naive"]
    assert naive["detection"]["realised_fpr"] == pytest.approx(det.fpr.tolist())
    assert naive["flips"]["n_flips"] == detection.results["naive"].flips.n_flips.tolist()
    assert naive["worst_group"] == detection.results["naive"].worst_group
    html = open(write_report(detection, tmp_path / "h", fmt="html"), encoding="utf-8").read()
    assert html.count("<img src=\"data:image/png;base64,") == 5


# ---------------------------------------------------------------------------
# Honest tuning inside the comparison
# ---------------------------------------------------------------------------
def test_tuning_choices_never_see_a_later_month(monkeypatch):
    X, y, months = make_stream(n_months=5, n_per_month=60, n_features=5, seed=1)
    fits = []
    real_fit = ContinualClassifier.fit

    def spy(self, X, y, months=None, sample_weight=None):
        fits.append((self.reg_lambda, sorted(set(np.asarray(months).tolist()))))
        return real_fit(self, X, y, months=months, sample_weight=sample_weight)

    monkeypatch.setattr(ContinualClassifier, "fit", spy)
    comp = compare_strategies(X, y, months, ["l2"], estimator_params=TINY, progress=False,
                              tune_months=3, tune_every=1,
                              tune_grid={"reg_lambda": [0.1, 10.0]})
    # the strategy's own fit, then the choices after months 2 and 3 (each
    # candidate on months up to the cutoff only), then each candidate on all
    assert fits[0][1] == [0, 1, 2, 3, 4]
    assert fits[1:3] == [(0.1, [0, 1, 2]), (10.0, [0, 1, 2])]
    assert fits[3:5] == [(0.1, [0, 1, 2, 3]), (10.0, [0, 1, 2, 3])]
    assert fits[5:] == [(0.1, [0, 1, 2, 3, 4]), (10.0, [0, 1, 2, 3, 4])]
    tuning = comp.results["l2"].tuning[0]
    assert tuning.cutoffs == [2, 3] and tuning.scored_months == [3, 4]


@pytest.mark.slow  # about 5 s on 2 busy cores; test_honest_tuning.py covers it fast
def test_on_the_synthetic_stream_oracle_is_at_least_honest_and_both_are_reported(tmp_path):
    X, y, months = make_monthly_drift(n_months=4, n_samples_per_month=100, random_state=1)
    comp = compare_strategies(X, y, months, ["naive", "replay", "l2"], progress=False,
                              estimator_params=TINY, tune_months=3)
    assert comp.results["naive"].tuning is None  # nothing to tune
    for name in ("replay", "l2"):
        res = comp.results[name]
        assert np.isfinite(res.honest_score) and res.oracle_score >= res.honest_score
        tuning = res.tuning[0]
        assert len(tuning.candidates) == 3
        # honest: the chosen candidate's deployed scores; oracle: the best candidate's
        chosen = tuning.candidates.index(tuning.chosen_params[0])
        np.testing.assert_allclose(tuning.honest_scores, tuning.deployed_scores[chosen])
        assert res.oracle_score == pytest.approx(max(np.nanmean(tuning.deployed_scores, axis=1)))
    assert comp.results["l2"].tuning[0].candidates == [{"reg_lambda": v} for v in (0.1, 1.0, 10.0)]
    note = comp.tuning_note()
    assert f"l2 {comp.results['l2'].honest_score:.3f} vs {comp.results['l2'].oracle_score:.3f}" \
        in note
    text = open(write_report(comp, tmp_path), encoding="utf-8").read()
    assert "## Honest tuning" in text
    assert "| replay | rehearsal_ratio=0.25/0.5/0.75 |" in text
    record = comp.table(as_frame=False)[1]
    assert record["honest_score"] == comp.results["replay"].honest_score
    assert record["oracle_score"] == comp.results["replay"].oracle_score


@pytest.mark.parametrize("kwargs, message", [
    (dict(target_fpr=1.5), "target_fpr must be"),
    (dict(tune_months=1), "tune_months must be an integer >= 2"),
    (dict(tune_months=3), "leaves no month to score"),
    (dict(tune_grid={"reg_lambda": [1.0]}), "set tune_months too"),
    (dict(tune_months=2, tune_grid={"reg_lambda": ["x"]}), "reg_lambda must be a number"),
    (dict(tune_months=2, tune_grid={"rehearsal_ratio": [1.5]}), "rehearsal_ratio"),
    (dict(aut_scoring="f2"), "Unknown scoring 'f2'"),
    (dict(test_prevalence=0.1, cv=SequentialSplit(1)), "set it there"),
    (dict(groups=[1, 2]), "one group label per row"),
])
def test_option_errors_name_the_problem(kwargs, message, monkeypatch):
    X, y, months = make_stream(n_months=3, n_per_month=40, n_features=5, seed=1)
    monkeypatch.setattr(ContinualClassifier, "fit", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=message):
        compare_strategies(X, y, months, ["naive", "replay"], estimator_params=TINY,
                           progress=False, **kwargs)


def test_target_fpr_needs_a_binary_target(monkeypatch):
    X, y, months = make_stream(n_months=3, n_per_month=40, n_features=5, seed=1)
    y = y + (X[:, 3] > 0.5)
    monkeypatch.setattr(ContinualClassifier, "fit", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match="binary target"):
        compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False,
                           target_fpr=0.01)


def test_parse_tune_grid():
    assert parse_tune_grid("reg_lambda=1e-1,10;fisher=true,empirical") == {
        "reg_lambda": [0.1, 10], "fisher": ["true", "empirical"]}  # strings, as in specs
    for bad in ("reg_lambda", "reg_lambda=", ";", "a=1;a=2"):
        with pytest.raises(ValueError, match="tune-grid"):
            parse_tune_grid(bad)


# ---------------------------------------------------------------------------
# load_stream(group_column=...)
# ---------------------------------------------------------------------------
def test_load_stream_groups_of_synthetic_and_of_a_file(tmp_path):
    X, y, months, family = load_stream("synthetic", n_months=2, samples_per_month=50,
                                       group_column="family", random_state=3)
    _, _, _, expected = make_monthly_drift(n_months=2, n_samples_per_month=50,
                                           return_families=True, random_state=3)
    np.testing.assert_array_equal(family, expected)
    path = tmp_path / "s.csv"
    rows = ["month,size,family,label"] + [
        f"2024-0{1 + i % 3},{i / 10},{('emotet', 'zbot', '')[i // 3 % 3]},{i % 2}"
        for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    X, y, months, groups = load_stream(str(path), month_column="month", target="label",
                                       group_column="family", n_months=2)
    assert X.shape == (20, 1)  # the family column is not a feature
    assert sorted(set(groups)) == ["(none)", "emotet", "zbot"]
    assert set(months) == {"2024-01", "2024-02"}
    X, y, months, groups = load_stream(str(path), month_column="month", target="label",
                                       group_column="family", samples_per_month=4)
    # subsampled rows keep their own group
    assert len(groups) == 12 and all(g == ("emotet", "zbot", "(none)")[round(x * 10) // 3 % 3]
                                     for g, x in zip(groups, X[:, 0]))


@pytest.mark.parametrize("data, kwargs, message", [
    ("synthetic", dict(group_column="kind"), "group column is 'family'"),
    ("digits", dict(group_column="family"), "applies to the synthetic stream"),
])
def test_load_stream_group_errors(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_stream(data, **kwargs)


def test_load_stream_group_column_must_exist(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("month,size,label\n1,0.1,0\n1,0.2,1\n2,0.3,0\n2,0.4,1\n")
    with pytest.raises(ValueError, match="The group column 'family' is not in"):
        load_stream(str(path), month_column="month", target="label", group_column="family")
    assert os.path.exists(path)


def test_a_strategys_own_parameter_can_be_tuned():
    from sklearn_cf.compare import default_tune_grid, parse_strategy
    from sklearn_cf.compare._estimators import _build_estimator
    from sklearn_cf.compare._tuning import candidate_specs

    grid = default_tune_grid(parse_strategy("lwf"), {}, {"alpha": [1, 5], "reg_lambda": [1]})
    assert grid == {"strategy__alpha": [1, 5]}  # reg_lambda: lwf has none
    X, y, months = make_stream(n_months=2, n_per_month=40)
    for spec in candidate_specs(parse_strategy("lwf"), grid):
        clf = _build_estimator(spec, TINY, 0).fit(X, y, months=months)
        assert clf.strategy_.alpha == spec.params["strategy__alpha"]

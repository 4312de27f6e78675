"""compare --tune-months K chooses from months <= K alone.

The spy: change only months after K (labels, one new category of a text
column, extra rows) and the inputs of every choice (the arrays each
candidate is fitted and scored on, and the scoring) stay byte-identical, and
so do the choices. Recorded by wrapping the fit and the scoring the tuning
calls, not re-derived.
"""

import hashlib

import numpy as np
import pytest

import sklearn_cf.compare._tuning as tuning_module
from sklearn_cf import ContinualClassifier
from sklearn_cf.cli import main
from sklearn_cf.compare import check_comparison, compare_strategies
from sklearn_cf.compare._tuning import (
    first_acting_month,
    past_columns,
    smallest_tune_months,
)
from sklearn_cf.datasets import load_stream
from sklearn_cf.metrics import default_scoring
from sklearn_cf.model_selection import HonestTuningResult, SequentialSplit
from sklearn_cf.model_selection._honest import edge_flags

TINY = {"max_epochs": 1, "hidden_units": (8,), "batch_size": 32}
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
K = 3  # the choice is made on the first three months


# ---------------------------------------------------------------------------
# a CSV stream and its variants that differ only after month K
# ---------------------------------------------------------------------------
def _rows(seed=0, n_per_month=120):
    """Rows (month, x1, x2, color, label), months interleaved in file order."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, month in enumerate(MONTHS):
        x1, x2 = rng.normal(size=n_per_month), rng.normal(size=n_per_month)
        color = rng.choice(["blue", "green", "red"], size=n_per_month)
        logit = 2 * np.cos(m / 2) * x1 + np.sin(m / 2) * x2 + (color == "red") - 0.3
        label = (logit + 0.5 * rng.normal(size=n_per_month) > 0).astype(int)
        rows += [[month, f"{a:.4f}", f"{b:.4f}", c, int(t)]
                 for a, b, c, t in zip(x1, x2, color, label)]
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def _later(row):
    return MONTHS.index(row[0]) >= K


def _variant(rows, change, seed=1):
    rng = np.random.default_rng(seed)
    rows = [list(r) for r in rows]
    if change in ("labels", "all"):
        # later months: most positives become negatives, so that the whole
        # stream's rarest class falls under 40% (auto scoring: roc_auc)
        for r in rows:
            if _later(r) and r[4] == 1 and rng.random() < 0.85:
                r[4] = 0
    if change in ("category", "all"):
        # a category first seen in month 4 that sorts first ("aqua"), so its
        # one-hot column comes before every other, and one in month 5
        for r in rows:
            if r[0] == MONTHS[3] and rng.random() < 0.2:
                r[3] = "aqua"
            if r[0] == MONTHS[4] and rng.random() < 0.2:
                r[3] = "purple"
    if change in ("rows", "all"):
        # extra rows of months 4 and 5, scattered among the earlier rows
        for _ in range(80):
            month = MONTHS[int(rng.integers(K, len(MONTHS)))]
            new = [month, f"{rng.normal():.4f}", f"{rng.normal():.4f}",
                   str(rng.choice(["blue", "red"])), int(rng.integers(2))]
            rows.insert(int(rng.integers(len(rows) + 1)), new)
    return rows


def _write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("month,x1,x2,color,label\n")
        f.writelines(",".join(map(str, r)) + "\n" for r in rows)
    return str(path)


def _digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes() if a.dtype.kind != "O" else repr(a.tolist()).encode())
    return h.hexdigest()


def _spy(monkeypatch):
    """Record every fit and every scoring of months <= K in the tuning."""
    early = set(MONTHS[:K])
    records = []
    real_fit = ContinualClassifier.fit
    real_matrix = tuning_module.forgetting_matrix

    def fit(self, X, y, months=None, sample_weight=None):
        if set(np.asarray(months).tolist()) <= early:
            records.append(("fit", self.strategy, getattr(self, "reg_lambda", None),
                            getattr(self, "rehearsal_ratio", None), _digest(X, y, months)))
        return real_fit(self, X, y, months=months, sample_weight=sample_weight)

    def matrix(estimator, X, y, months, scoring="accuracy", **kwargs):
        if set(np.asarray(months).tolist()) <= early:
            name = scoring if isinstance(scoring, str) else getattr(scoring, "name",
                                                                    repr(scoring))
            records.append(("score", name, _digest(X, y, months)))
        return real_matrix(estimator, X, y, months, scoring=scoring, **kwargs)

    monkeypatch.setattr(ContinualClassifier, "fit", fit)
    monkeypatch.setattr(tuning_module, "forgetting_matrix", matrix)
    return records


#: Two settings for each tuned strategy (each choice's inputs are recorded).
GRID = {"reg_lambda": [0.1, 10.0], "rehearsal_ratio": [0.25, 0.75]}


def _compare(path, strategies=("l2", "replay"), **kwargs):
    X, y, months = load_stream(path, month_column="month", target="label")
    kwargs = {"tune_grid": GRID, **kwargs}
    return compare_strategies(X, y, months, list(strategies), estimator_params=TINY,
                              progress=False, tune_months=K, scale="first-month",
                              **kwargs)


@pytest.fixture(scope="module")
def base_rows():
    return _rows(n_per_month=80)


@pytest.fixture(scope="module")
def base_run(base_rows, tmp_path_factory):
    """The base stream's comparison and what its choices saw."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        records = _spy(monkeypatch)
        comp = _compare(_write(tmp_path_factory.mktemp("base") / "base.csv", base_rows))
    return comp, list(records)


@pytest.mark.parametrize("change", [
    "all",
    pytest.param("labels", marks=pytest.mark.slow),
    pytest.param("category", marks=pytest.mark.slow),
    pytest.param("rows", marks=pytest.mark.slow),
])
def test_later_months_change_nothing_a_choice_sees(change, base_rows, base_run, tmp_path,
                                                   monkeypatch):
    base, seen_base = base_run
    records = _spy(monkeypatch)
    other = _compare(_write(tmp_path / "other.csv", _variant(base_rows, change)))

    # 2 strategies x 2 candidates, each fitted once and scored once on months <= K
    assert sum(r[0] == "fit" for r in seen_base) == 4
    assert sum(r[0] == "score" for r in seen_base) == 4
    assert records == seen_base  # byte-identical inputs and scoring, in order
    for name in ("l2", "replay"):
        a, b = base.results[name].tuning[0], other.results[name].tuning[0]
        assert a.chosen_params == b.chosen_params
        assert a.choice_scores == b.choice_scores
        assert a.choice_scoring == b.choice_scoring == ["accuracy"]
        assert a.at_edge == b.at_edge and a.ties == b.ties
    if change in ("labels", "all"):
        # the table's scoring follows the whole stream, the choice's does not
        assert (base.scoring, other.scoring) == ("accuracy", "roc_auc")
        assert "The choices were made by accuracy" in " ".join(other.tuning_note().split())
        assert "The choices were made by" not in base.tuning_note()
    if change in ("category", "all"):
        assert other.settings["n_features"] == base.settings["n_features"] + 2
    if change in ("rows", "all"):
        assert other.settings["n_samples"] == base.settings["n_samples"] + 80


def test_the_category_spy_can_fail(tmp_path, monkeypatch):
    # Oracle for the spy itself: without the column selection a later
    # category reaches the choice (a wider X), and the spy sees it.
    monkeypatch.setattr(tuning_module, "past_columns", lambda X: None)
    records = _spy(monkeypatch)
    rows = _rows(n_per_month=40)
    _compare(_write(tmp_path / "a.csv", rows), strategies=["l2"])
    seen = list(records)
    records.clear()
    _compare(_write(tmp_path / "b.csv", _variant(rows, "category")), strategies=["l2"])
    assert len(records) == len(seen) == 4 and records != seen


def test_choice_scoring_is_chosen_from_the_training_rows_up_to_the_cutoff(tmp_path):
    path = _write(tmp_path / "s.csv", _variant(_rows(n_per_month=40), "labels"))
    X, y, months = load_stream(path, month_column="month", target="label")
    comp = compare_strategies(X, y, months, ["l2"], estimator_params=TINY, progress=False,
                              tune_months=K, tune_every=1,
                              tune_grid={"reg_lambda": [0.1, 10.0]})
    train, _ = next(SequentialSplit(1, test_size=0.2, random_state=0).split(X, y,
                                                                            months=months))
    tuning = comp.results["l2"].tuning[0]
    expected = []
    for cutoff in tuning.cutoffs:  # "2024-03", "2024-04"
        rows = train[months[train] <= cutoff]
        expected.append(default_scoring(y[rows])[0])
    assert tuning.choice_scoring == expected
    assert tuning.choice_scoring[0] == "accuracy" and comp.scoring == "roc_auc"


# ---------------------------------------------------------------------------
# a K at which no tuned parameter has acted yet is refused
# ---------------------------------------------------------------------------
def test_tune_months_2_is_refused_before_any_training(monkeypatch):
    monkeypatch.setattr(ContinualClassifier, "fit", lambda *a, **k: pytest.fail("trained"))
    rng = np.random.default_rng(0)
    X, y, months = rng.normal(size=(80, 3)), rng.integers(0, 2, 80), np.repeat(range(4), 20)
    with pytest.raises(ValueError, match=r"Use tune_months >= 3") as info:
        compare_strategies(X, y, months, ["naive", "l2"], tune_months=2, progress=False)
    assert "cannot tune reg_lambda of 'l2'" in str(info.value)
    with pytest.raises(ValueError, match=r"Use tune_months >= 3"):
        check_comparison(["replay"], tune_months=2)
    with pytest.raises(ValueError, match=r"strategy__alpha of 'lwf'.*Use tune_months >= 3"):
        check_comparison(["lwf"], tune_months=2, tune_grid={"alpha": [0.5, 2]})
    # online EWC's gamma first decays a Fisher at the end of month 2
    with pytest.raises(ValueError, match=r"Use tune_months >= 4"):
        check_comparison(["online_ewc"], tune_months=3, tune_grid={"gamma": [0.5, 0.9]})
    # a parameter that shapes the first month makes K=2 a real choice
    check_comparison(["l2"], tune_months=2, tune_grid={"reg_lambda": [0.1, 1], "lr": [1e-3, 1e-2]})
    check_comparison(["l2"], tune_months=3)
    check_comparison(["online_ewc"], tune_months=4, tune_grid={"gamma": [0.5, 0.9]})
    # nothing varies: nothing to refuse
    check_comparison(["l2"], tune_months=2, tune_grid={"reg_lambda": [1.0]})


def test_cli_refuses_tune_months_2(capsys):
    code = main(["compare", "--months", "4", "--samples-per-month", "40", "--epochs", "1",
                 "--hidden-units", "8", "--strategies", "naive,ewc", "--tune-months", "2",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "tune_months=2 cannot tune reg_lambda of 'ewc'" in err
    assert "tune_months >= 3" in err


def test_first_acting_month_by_hand():
    assert [first_acting_month("replay+ewc", k) for k in
            ("rehearsal_ratio", "reg_lambda", "memory_size", "lr", "class_weight")] == \
        [1, 1, 1, 0, 0]
    assert first_acting_month("lwf", "strategy__alpha") == 1
    assert first_acting_month("der", "strategy__alpha") == 0  # may replay within a month
    assert smallest_tune_months("replay", {"rehearsal_ratio": [0.25, 0.5]}) == 3
    assert smallest_tune_months("online_ewc", {"gamma": [0.5, 1.0], "reg_lambda": [1, 10]}) == 3


# ---------------------------------------------------------------------------
# ties and choices at the edge of the grid
# ---------------------------------------------------------------------------
def test_candidates_that_tie_are_reported_and_the_first_is_kept():
    # max_snapshots above the number of months changes nothing: the two
    # candidates train identical networks, so their choice scores are equal
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4))
    months = np.repeat(np.arange(4), 60)
    y = (X[:, 0] + 0.3 * rng.normal(size=240) > 0).astype(int)
    comp = compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False,
                              tune_months=2, tune_grid={"max_snapshots": [50, 100]})
    tuning = comp.results["naive"].tuning[0]
    first, second = tuning.choice_scores[0]
    assert first == second and np.isfinite(first)
    assert tuning.ties == [[{"max_snapshots": 50}, {"max_snapshots": 100}]]
    assert tuning.chosen_params == [{"max_snapshots": 50}]
    note = " ".join(comp.tuning_note().split())
    assert ("naive, after 1: max_snapshots=50 and max_snapshots=100 tie on the choice "
            "months; the first was kept") in note


def test_edge_flags_by_hand():
    grid = [{"reg_lambda": v} for v in (0.1, 1.0, 10.0)]
    assert edge_flags(grid, grid[0]) == {"reg_lambda": "lowest"}
    assert edge_flags(grid, grid[1]) == {}
    assert edge_flags(grid, grid[2]) == {"reg_lambda": "highest"}
    assert edge_flags(grid[:2], grid[0]) == {}  # two values: every choice is at an end
    words = [{"fisher": f} for f in ("true", "empirical", "hessian")]
    assert edge_flags(words, words[0]) == {}  # not numeric
    flags = [{"flag": b} for b in (True, False)] + [{"flag": 2}]
    assert edge_flags(flags, flags[0]) == {}  # booleans are not a scale


def test_an_edge_choice_is_flagged_in_the_result_and_the_note():
    labels = ["jan", "feb", "mar", "apr"]
    cands = [{"reg_lambda": v} for v in (0.1, 1.0, 10.0)]
    scores = [[np.nan, 0.9, 0.8, 0.7], [np.nan, 0.8, 0.8, 0.8], [np.nan, 0.7, 0.9, 0.9]]
    result = HonestTuningResult.from_deployed_scores("accuracy", 3, labels, [2], cands, [0],
                                                     scores)
    assert result.at_edge == [{"reg_lambda": "lowest"}]
    assert "chose reg_lambda=0.1, the lowest value tried: widen the grid" in result.summary()


def test_compare_flags_its_edge_choices(tmp_path):
    comp = _compare(_write(tmp_path / "e.csv", _rows(n_per_month=40)), strategies=["l2"],
                    tune_grid={"reg_lambda": [0.01, 1.0, 100.0]})
    note = " ".join(comp.tuning_note().split())
    tuning = comp.results["l2"].tuning[0]
    chosen = tuning.chosen_params[0]["reg_lambda"]
    end = {0.01: "lowest", 100.0: "highest"}.get(chosen)
    assert tuning.at_edge == [{"reg_lambda": end} if end else {}]
    sentence = f"l2, after 2024-03: chose reg_lambda={chosen!r}, the {end} value tried"
    assert (sentence in note) == (end is not None)
    assert ("widen the grid" in note) == (end is not None)


def test_past_columns():
    X = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(past_columns(X), [1, 3])
    assert past_columns(np.ones((2, 2))) is None
    assert past_columns(np.array([["a", "b"]], dtype=object)) is None


def test_samples_per_month_draws_months_up_to_k_alike(base_rows, tmp_path):
    # --samples-per-month draws each month's rows in month order: the rows
    # kept for months <= K do not depend on later months' rows or labels.
    kept = []
    for name, rows in (("a", base_rows), ("b", _variant(base_rows, "all"))):
        X, y, months = load_stream(_write(tmp_path / f"{name}.csv", rows),
                                   month_column="month", target="label",
                                   samples_per_month=30, random_state=4)
        early = np.isin(months, MONTHS[:K])
        columns = past_columns(X[early])  # the later categories' columns dropped
        X_early = X[early] if columns is None else X[early][:, columns]
        kept.append(_digest(X_early, y[early], months[early]))
        assert np.bincount(np.unique(months, return_inverse=True)[1]).tolist() == [30] * 5
    assert kept[0] == kept[1]

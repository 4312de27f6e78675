"""The forgetting gate (issue 22, item 6): ``--max-forgetting X`` refuses an
update only when a past month's drop exceeds X *and* is unlikely under the
held-out rows' sampling noise; a refused month stays visible and can be
applied knowingly.

Oracles: exact binomial tails and Clopper-Pearson bounds from
``scipy.stats.binomtest``; hand-computed flip counts and Holm adjustments;
``sklearn.metrics.roc_auc_score``; the plug-in standard error of a paired
difference; the binomial level of refusals on simulated no-drift updates.
"""

import json
import os

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from sklearn_cf._gate import (
    DropTest,
    bootstrap_drop,
    holm_adjust,
    mcnemar_drop,
    refusing,
)
from sklearn_cf._replayed import ReplayedOutputs
from sklearn_cf._weighted_auc import counts_of, weighted_binary_auc
from sklearn_cf.cli import main
from sklearn_cf.store import ModelStore
from sklearn_cf.update import ForgettingRefused, drop_tests, update_model


# ---------------------------------------------------------------------------
# The paired tests
# ---------------------------------------------------------------------------
def _pairs(worse, better, same_right, same_wrong):
    """Correctness before and after, from counts of each kind of row."""
    before = [True] * worse + [False] * better + [True] * same_right + [False] * same_wrong
    after = [False] * worse + [True] * better + [True] * same_right + [False] * same_wrong
    return np.array(before), np.array(after)


def test_mcnemar_counts_flips_and_matches_the_exact_binomial_tail():
    # 298 held-out rows; 14 got worse, 6 got better: a drop of 8 rows
    before, after = _pairs(14, 6, 230, 48)
    drop, low, high, p, worse, better = mcnemar_drop(before, after, alpha=0.05)
    assert (worse, better) == (14, 6)
    assert drop == pytest.approx(8 / 298)
    assert p == pytest.approx(stats.binomtest(14, 20, 0.5, alternative="greater").pvalue)
    # by hand: P(B >= 14), B ~ Bin(20, 1/2) = (C(20,14)+...+C(20,20)) / 2^20
    from math import comb

    assert p == pytest.approx(sum(comb(20, k) for k in range(14, 21)) / 2 ** 20)
    assert p > 0.05  # the "one binomial standard error": not beyond noise
    # the bounds are Clopper-Pearson's for the share of flips that were losses
    ci = stats.binomtest(14, 20).proportion_ci(confidence_level=0.90, method="exact")
    assert low == pytest.approx(20 / 298 * (2 * ci.low - 1))
    assert high == pytest.approx(20 / 298 * (2 * ci.high - 1))
    assert low < drop < high


def test_mcnemar_bounds_and_p_value_agree_everywhere():
    """``low > 0`` exactly when ``p < alpha`` (the test and its bounds are dual)."""
    for worse in range(25):
        for better in range(25):
            for alpha in (0.05, 0.01, 0.0125):
                before, after = _pairs(worse, better, 50, 10)
                _, low, _, p, _, _ = mcnemar_drop(before, after, alpha)
                if abs(p - alpha) > 1e-9:
                    assert (low > 0) == (p < alpha), (worse, better, alpha, low, p)


def test_mcnemar_without_flips_is_no_drop():
    before, after = _pairs(0, 0, 90, 10)
    assert mcnemar_drop(before, after, 0.05)[:4] == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="one length"):
        mcnemar_drop([True, False], [True], 0.05)


def test_holm_adjustment_by_hand_and_against_the_step_down_procedure():
    assert holm_adjust([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm_adjust([0.2, np.nan, 0.001])  # NaN: not tested, k = 2
    assert np.isnan(adjusted[1]) and adjusted[[0, 2]].tolist() == pytest.approx([0.2, 0.002])
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.uniform(0, 0.1, size=rng.integers(1, 8))
        # Holm (1979): reject the i-th smallest while p_(i) <= alpha / (k - i + 1)
        order = np.argsort(p)
        rejected = set()
        for i, idx in enumerate(order):
            if p[idx] > 0.05 / (len(p) - i):
                break
            rejected.add(int(idx))
        assert {int(i) for i in np.flatnonzero(holm_adjust(p) <= 0.05)} == rejected


def test_the_gates_auc_is_roc_auc_score_on_the_resampled_rows_ties_included():
    # The gate's fast ROC-AUC (the counts of each resample's rows, the same
    # piece as the comparison's bootstrap) against scikit-learn on the rows.
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60).astype(bool)
    score = rng.integers(0, 6, 60) / 5  # many ties
    rows = rng.integers(0, 60, size=(5, 60))
    expected = [roc_auc_score(y[r], score[r]) for r in rows]
    np.testing.assert_allclose(weighted_binary_auc(y, score, counts_of(rows, 60)), expected)
    assert np.isnan(weighted_binary_auc(np.ones(4, bool), np.arange(4.0), np.ones((1, 4))))[0]


def test_bootstrap_standard_error_matches_the_paired_difference_formula():
    """For accuracy the bootstrap's standard error of the drop must match the
    plug-in standard error of the mean of d_i = right_before - right_after."""
    before, after = _pairs(30, 12, 400, 58)
    d = before.astype(float) - after.astype(float)
    se = d.std() / np.sqrt(len(d))

    def acc(right):
        return lambda rows: right[rows].mean()

    alpha = 0.05
    drop, low, high, p = bootstrap_drop(acc(before), acc(after), len(d), alpha,
                                        resamples=4000, random_state=3)
    assert drop == pytest.approx(d.mean())
    z = stats.norm.ppf(1 - alpha)
    assert (high - drop) / z == pytest.approx(se, rel=0.05)
    assert drop - low == pytest.approx(high - drop)
    assert p == pytest.approx(stats.norm.sf(d.mean() / se), rel=0.25)
    # the same seed decides alike; vectorized and looped resamples agree
    assert bootstrap_drop(acc(before), acc(after), len(d), alpha, random_state=3,
                          resamples=4000) == (drop, low, high, p)
    looped = bootstrap_drop(acc(before), acc(after), len(d), alpha, resamples=300)
    vector = bootstrap_drop(lambda r: before[r].mean(axis=1), lambda r: after[r].mean(axis=1),
                            len(d), alpha, resamples=300, vectorized=True)
    assert looped == pytest.approx(vector)


# ---------------------------------------------------------------------------
# The rule: drop > X and beyond noise, Holm over the months of one update
# ---------------------------------------------------------------------------
def _test(month, drop, p_adjusted):
    return DropTest(month=month, trained=9, before=0.9, after=0.9 - drop, drop=drop, low=0,
                    high=0, p_value=p_adjusted, p_adjusted=p_adjusted, method="mcnemar",
                    rows=100)


def test_a_month_refuses_only_beyond_x_and_beyond_noise():
    tests = [_test(1, 0.05, 0.001), _test(2, 0.05, 0.2), _test(3, 0.01, 0.001),
             _test(4, 0.08, 0.01)]
    refused = refusing(tests, max_forgetting=0.02, confidence=0.95)
    assert [t.month for t in refused] == [4, 1]  # largest drop first
    assert [t.refuses for t in tests] == [True, False, False, True]
    # confidence 0: the point drop alone decides (the behaviour before the gate)
    assert [t.month for t in refusing(tests, 0.02, 0)] == [4, 1, 2]
    assert refusing(tests, None, 0.95) == []


def _no_drift_update(rng, n_months, rows, accuracy=0.8, churn=0.08):
    """Outputs of a model before and after an update that changes its
    predictions but not its expected accuracy on any month: a right row
    flips with probability ``churn``, a wrong one with the probability that
    keeps the accuracy."""
    pending = []
    back = churn * accuracy / (1 - accuracy)
    for month in range(n_months):
        y = rng.integers(0, 2, rows)
        right = rng.random(rows) < accuracy
        flip = rng.random(rows) < np.where(right, churn, back)
        after_right = right ^ flip
        kept = []
        for r in (right, after_right):
            predicted = np.where(r, y, 1 - y)
            kept.append(ReplayedOutputs(np.eye(2)[predicted], np.array([0, 1])))
        pending.append((n_months, month, y, *kept, right.mean(), after_right.mean()))
    return pending


@pytest.mark.parametrize("n_months", [1, 6])
def test_no_drift_updates_are_refused_at_most_at_the_stated_level(n_months):
    """On updates whose months did not drop, the gate at 0.95 refuses about
    5% of them or fewer (Holm keeps it so over six months); the point drop
    alone (confidence 0) refuses most of them."""
    rng = np.random.default_rng(0)
    trials = 600
    gated = plain = 0
    for _ in range(trials):
        tests = drop_tests(_no_drift_update(rng, n_months, 300), None, "accuracy", 0.95)
        gated += bool(refusing(tests, 0.0, 0.95))
        plain += bool(refusing(tests, 0.0, 0))
    level = 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials)  # three binomial standard errors
    assert gated / trials <= level, gated
    assert plain / trials > (0.4 if n_months == 1 else 0.9), plain


def test_no_drift_refusals_with_the_bootstrap_test():
    rng = np.random.default_rng(1)
    trials, refused = 100, 0
    for _ in range(trials):
        pending = []
        for month in range(2):
            y = rng.integers(0, 2, 120)
            kept = []
            for _ in range(2):  # two models of the same quality
                score = y + rng.normal(0, 1.0, 120)
                proba = 1 / (1 + np.exp(-(score - 0.5) * 3))
                kept.append(ReplayedOutputs(np.c_[1 - proba, proba], np.array([0, 1])))
            auc = [roc_auc_score(y, k.proba[:, 1]) for k in kept]
            pending.append((2, month, y, *kept, *auc))
        tests = drop_tests(pending, None, "roc_auc", 0.95)
        assert all(t.method == "bootstrap" for t in tests)
        refused += bool(refusing(tests, 0.0, 0.95))
    assert refused / trials <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials), refused


def test_a_real_drop_on_one_month_is_refused():
    rng = np.random.default_rng(2)
    refused = 0
    for _ in range(100):
        pending = _no_drift_update(rng, 5, 300)
        # month 0 really drops: 15% of its right rows turn wrong
        y, before = pending[0][2], pending[0][3]
        right = before.predicted == y
        worse = right & (rng.random(len(y)) < 0.15)
        predicted = np.where(worse, 1 - y, before.predicted)
        after = ReplayedOutputs(np.eye(2)[predicted], np.array([0, 1]))
        pending[0] = (5, 0, y, before, after, right.mean(), (predicted == y).mean())
        refused += [t.month for t in refusing(drop_tests(pending, None, "accuracy", 0.95),
                                              0.02, 0.95)] == [0]
    assert refused >= 95


# ---------------------------------------------------------------------------
# End to end: streams through update_model and the CLI
# ---------------------------------------------------------------------------
NET = {"max_epochs": 5, "hidden_units": (16,), "batch_size": 32, "lr": 0.01}


def _stream_csvs(folder, n_months, rows=300, flip_last=False, seed=1):
    """A stationary stream (the same distribution every month: a noisy
    linear rule) as CSV files; ``flip_last``: the last month's labels are
    flipped (forgetting it forces on every past month)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_months * rows, 6))
    y = (X @ np.array([1.5, -1.0, 0.8, 0.0, 0.5, 0.0])
         + rng.logistic(scale=0.4, size=len(X)) > 0).astype(int)
    paths = []
    for k in range(n_months):
        part = slice(k * rows, (k + 1) * rows)
        frame = pd.DataFrame(X[part], columns=[f"f{i}" for i in range(6)]).assign(y=y[part])
        if flip_last and k == n_months - 1:
            frame["y"] = 1 - frame["y"]
        path = folder / f"m{k + 1}.csv"
        frame.to_csv(path, index=False)
        paths.append(str(path))
    return paths


def _run_stream(model, paths, net=NET, **gate):
    refused = []
    for k, path in enumerate(paths):
        try:
            update_model(str(model), path, target="y", month=str(k + 1), scoring="accuracy",
                         strategy="naive" if k == 0 else None,
                         estimator_params=net if k == 0 else None, **gate)
        except ForgettingRefused:
            refused.append(k + 1)
    return refused


@pytest.fixture
def one_thread():
    """Torch on one thread (deterministic, and fast on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_stream_without_drift_passes_the_gate(tmp_path, one_thread):
    paths = _stream_csvs(tmp_path, 8, rows=200)
    gated = _run_stream(tmp_path / "gated", paths, max_forgetting=0.0)
    plain = _run_stream(tmp_path / "plain", paths, max_forgetting=0.0,
                        forgetting_confidence=0)
    # 7 updates at a 5% level: expected 0.35 refusals; 2 or more has p < 0.05
    assert len(gated) <= 1, gated
    # the point drop alone refuses a fair share of them (issue 22: "refuses
    # updates on a stream with no drift at all")
    assert len(plain) >= 3, plain
    # every refusal is recorded, one record per refused month
    for name, refused in (("gated", gated), ("plain", plain)):
        records = ModelStore(tmp_path / name).refusals()
        assert sorted(r["months"][0]["month"] for r in records) == refused


@pytest.fixture
def refused_store(tmp_path, capsys, one_thread):
    """Four stationary months, then a fifth with flipped labels: refused."""
    paths = _stream_csvs(tmp_path, 5, flip_last=True)
    model = tmp_path / "M"
    assert _run_stream(model, paths[:4], max_forgetting=0.02) == []
    capsys.readouterr()
    return model, paths


def _cli(model, path, month, *extra):
    return main(["update", "--model", str(model), "--data", path, "--target", "y",
                 "--month", month, *extra])


def test_a_forgetting_month_is_refused_recorded_and_listed(refused_store, capsys):
    model, paths = refused_store
    before = {p: p.read_bytes() for p in model.rglob("*") if p.is_file() and p.name != "LOCK"}
    assert _cli(model, paths[4], "5", "--max-forgetting", "0.02") == 3
    captured = capsys.readouterr()
    assert "update refused: the held-out score on month" in captured.err
    assert "beyond the held-out rows' noise at --forgetting-confidence 0.95" in captured.err
    # the summary shows every past month's drop with its bounds and p-value
    rows = [line for line in captured.out.splitlines() if line.endswith("refuses")]
    assert rows, captured.out
    # no generation changed; the record is the one file added
    after = {p: p.read_bytes() for p in model.rglob("*") if p.is_file() and p.name != "LOCK"}
    added = [p for p in after if p not in before]
    assert len(added) == 1 and added[0].parent.name == "refused"
    assert all(after[p] == before[p] for p in before)
    (record,) = ModelStore(model).refusals()
    assert record["months"][0]["month"] == 5 and record["months"][0]["rows"] == 300
    assert record["base_generation"] == 4 and record["applied"] is None
    assert record["run"]["data"] == os.path.abspath(paths[4])
    # the record's tests are the summary's numbers
    for test in record["refused_by"]:
        assert test["drop"] > 0.02 and test["p_adjusted"] < 0.05 and test["low"] <= test["drop"]
        assert test["worse"] - test["better"] == round(test["drop"] * test["rows"])
        assert test["p_value"] == pytest.approx(stats.binomtest(
            test["worse"], test["worse"] + test["better"], 0.5, alternative="greater").pvalue)
    # the same refusal again: the same record, not a second one
    assert _cli(model, paths[4], "5", "--max-forgetting", "0.02", "--quiet") == 3
    assert [r["id"] for r in ModelStore(model).refusals()] == [record["id"]]
    capsys.readouterr()
    assert main(["history", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "refused updates (1;" in out
    assert "month 5 (300 rows) refused on generation 4" in out
    assert "(> 0.02 and p < 0.05)" in out
    assert (f"not applied; to apply it knowingly: sklearn-cf update --model {model} --data "
            f"{os.path.abspath(paths[4])} --target y --month 5 --max-forgetting 0.02 "
            "--accept-forgetting") in out


def test_a_refused_month_is_applied_knowingly_and_the_record_says_so(refused_store, capsys):
    model, paths = refused_store
    assert _cli(model, paths[4], "5", "--max-forgetting", "0.02", "--quiet") == 3
    (record,) = ModelStore(model).refusals()
    assert _cli(model, paths[4], "5", "--max-forgetting", "0.02", "--accept-forgetting") == 0
    out = capsys.readouterr().out
    assert "applied anyway (--accept-forgetting)" in out
    assert "saved" in out and "as generation 5" in out
    (marked,) = ModelStore(model).refusals()
    assert marked["id"] == record["id"]
    assert marked["applied"]["generation"] == 5 and marked["applied"]["accepted_forgetting"]
    assert ModelStore(model).load().months_seen_ == [1, 2, 3, 4, 5]
    assert main(["history", "--model", str(model)]) == 0
    assert "applied in generation 5 (--accept-forgetting)" in capsys.readouterr().out
    # a re-run is the usual idempotent success
    assert _cli(model, paths[4], "5", "--max-forgetting", "0.02", "--quiet") == 0


def test_a_refused_month_applied_without_the_gate_is_marked_applied(refused_store, capsys):
    model, paths = refused_store
    assert _cli(model, paths[4], "5", "--max-forgetting", "0.02", "--quiet") == 3
    assert _cli(model, paths[4], "5", "--quiet") == 0  # no --max-forgetting: no gate
    (record,) = ModelStore(model).refusals()
    assert record["applied"]["generation"] == 5
    assert not record["applied"]["accepted_forgetting"]


def test_accepting_a_month_never_refused_records_the_override(refused_store):
    model, paths = refused_store
    result = update_model(str(model), paths[4], target="y", month="5", max_forgetting=0.02,
                          accept_forgetting=True)
    assert result.saved and result.accepted_forgetting and result.refused
    (record,) = ModelStore(model).refusals()
    assert record["id"] == result.refusal and record["applied"]["accepted_forgetting"]
    assert "applied anyway (--accept-forgetting)" in result.to_markdown()


def test_a_refusal_found_applied_after_a_kill_before_its_mark(refused_store):
    """A writer killed between its commit and the record's mark: history
    still finds the generation that holds the months with the same rows."""
    from sklearn_cf.update import refusal_state

    model, paths = refused_store
    with pytest.raises(ForgettingRefused) as info:
        update_model(str(model), paths[4], target="y", month="5", max_forgetting=0.02)
    path = model / "refused" / f"{info.value.record}.json"
    text = path.read_text()
    update_model(str(model), paths[4], target="y", month="5")
    path.write_text(text)  # the mark undone
    store = ModelStore(model)
    (record,) = store.refusals()
    assert record["applied"] is None
    assert refusal_state(record, store.generations()) == (5, False)


def test_bad_gate_settings_are_refused_before_anything(tmp_path, capsys):
    paths = _stream_csvs(tmp_path, 1, rows=60)
    for value in ("1", "-0.1", "nan"):
        assert _cli(tmp_path / "M", paths[0], "1", "--strategy", "naive",
                    "--forgetting-confidence", value) == 2
        assert "--forgetting-confidence must be a number in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "M").exists()
    with pytest.raises(ValueError, match="--max-forgetting must be a number"):
        update_model(str(tmp_path / "M"), paths[0], target="y", strategy="naive",
                     max_forgetting="0.02")


def test_a_damaged_refusal_record_does_not_break_history(refused_store, capsys):
    model, paths = refused_store
    assert _cli(model, paths[4], "5", "--max-forgetting", "0.02", "--quiet") == 3
    (record,) = ModelStore(model).refusals()
    (model / "refused" / f"{record['id']}.json").write_text("{not json")
    capsys.readouterr()
    assert main(["history", "--model", str(model)]) == 0
    assert f"{record['id']}: damaged record" in capsys.readouterr().out
    # the store still loads and updates
    assert ModelStore(model).load().months_seen_ == [1, 2, 3, 4]
    json.dumps(ModelStore(model).refusals())

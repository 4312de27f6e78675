"""``sklearn-cf update`` talks like a command: progress while a month trains
(on a terminal only), errors in terms of its options, one sign convention
for drops, the newest months shown, a change of label type named."""

import os
import re
import sys

import numpy as np
import pytest

import sklearn_cf
from sklearn_cf.cli import main
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.update import MonthUpdate, UpdateResult

NET = ["--epochs", "3", "--hidden-units", "8"]


def _csv_months(folder, n_months=3, labels=None, month_column=False):
    """One CSV per month (``month<k>.csv``); ``labels`` maps 0/1 to other labels;
    with ``month_column`` each file has a ``when`` column (2024-01 ...)."""
    X, y, months = make_monthly_drift(n_months=n_months, n_samples_per_month=80,
                                      n_features=4, random_state=0)
    paths = []
    for k in range(n_months):
        header = "f0,f1,f2,f3,is_malware" + (",when" if month_column else "")
        lines = [header]
        for i in np.flatnonzero(months == k):
            label = str(y[i]) if labels is None else labels[y[i]]
            row = [*(f"{v:.5f}" for v in X[i]), label]
            lines.append(",".join(row + ([f"2024-{k + 1:02d}"] if month_column else [])))
        path = folder / f"month{k}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


def _update(model, data, *extra):
    return main(["update", "--model", str(model), "--data", data, "--target", "is_malware",
                 *extra])


@pytest.fixture
def months(tmp_path):
    return _csv_months(tmp_path)


def _as_terminal(monkeypatch):
    """Make the captured stderr say it is a terminal. Called in the test's
    body: capture puts its own stream in place once the test starts."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


# ---------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------
def test_progress_on_a_terminal_one_line_per_month_rewritten_per_epoch(months, tmp_path,
                                                                         capsys, monkeypatch):
    _as_terminal(monkeypatch)
    model = tmp_path / "M"
    assert _update(model, months[0], "--strategy", "replay", *NET, "--month", "2024-01") == 0
    assert _update(model, months[1], "--month", "2024-02") == 0
    err = capsys.readouterr().err
    for month in ("2024-01", "2024-02"):
        for k in (1, 2, 3):
            assert re.search(rf"month {month}: epoch {k}/3, loss \d+\.\d{{4}}, [\d,]+ rows/s",
                             err), err
    # Each month's line is ended once (rewritten in place before that).
    assert err.count("\n") == 2, err
    assert "epoch 3/3" in err.splitlines()[-1]


def test_progress_names_the_next_integer_month(tmp_path, capsys, monkeypatch):
    _as_terminal(monkeypatch)
    paths = _csv_months(tmp_path, 2)
    model = tmp_path / "M"
    assert _update(model, paths[0], "--strategy", "naive", "--epochs", "1",
                   "--hidden-units", "8") == 0
    assert _update(model, paths[1]) == 0
    err = capsys.readouterr().err
    assert "month 0: epoch 1/1" in err and "month 1: epoch 1/1" in err


def test_no_progress_under_quiet(months, tmp_path, capsys, monkeypatch):
    _as_terminal(monkeypatch)
    model = tmp_path / "M"
    assert _update(model, months[0], "--strategy", "replay", *NET, "--quiet") == 0
    assert capsys.readouterr().err == ""


def test_no_progress_when_stderr_is_not_a_terminal(months, tmp_path, capsys):
    model = tmp_path / "M"
    assert _update(model, months[0], "--strategy", "replay", *NET) == 0
    assert _update(model, months[1]) == 0
    assert capsys.readouterr().err == ""


def test_progress_changes_neither_the_model_nor_its_settings(months, tmp_path, monkeypatch,
                                                              capsys):
    """The progress callback is attached for the month only: the same model as
    without it, and a checkpoint without it."""
    quiet, shown = tmp_path / "quiet", tmp_path / "shown"
    for model in (quiet, shown):
        if model == shown:
            _as_terminal(monkeypatch)
        assert _update(model, months[0], "--strategy", "replay", *NET) == 0
        assert _update(model, months[1]) == 0
    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    a, b = sklearn_cf.load(str(quiet)), sklearn_cf.load(str(shown))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert b.get_params()["callbacks"] is None
    assert not any(name == "sklearn_cf_progress" for name, _ in b.callbacks_)


# ---------------------------------------------------------------------------
# Errors in terms of the command's options
# ---------------------------------------------------------------------------
def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sklearn-cf: error: "), err
    for python in ("month=", "classes=", "partial_fit_month", "max_epochs"):
        assert python not in err, err
    return err


def test_a_month_out_of_order_names_month(months, tmp_path, capsys):
    model = tmp_path / "M"
    assert _update(model, months[1], "--strategy", "naive", *NET, "--month", "2024-02",
                   "--quiet") == 0
    capsys.readouterr()
    assert _update(model, months[0], "--month", "2024-01") == 2
    err = _error(capsys)
    assert "--month '2024-01' does not come after the model's last month, '2024-02'" in err


def test_a_month_column_out_of_order_names_the_column(tmp_path, capsys):
    paths = _csv_months(tmp_path, 2, month_column=True)
    model = tmp_path / "M"
    assert _update(model, paths[1], "--strategy", "naive", *NET, "--month-column", "when",
                   "--quiet") == 0
    capsys.readouterr()
    assert _update(model, paths[0], "--month-column", "when") == 2
    assert "month '2024-01' (from --month-column when) does not come after" in _error(capsys)


def test_a_missing_month_label_names_month(months, tmp_path, capsys):
    model = tmp_path / "M"
    assert _update(model, months[0], "--strategy", "naive", *NET, "--month", "2024-01",
                   "--quiet") == 0
    capsys.readouterr()
    assert _update(model, months[1]) == 2
    err = _error(capsys)
    assert "labelled like '2024-01'" in err and "--month LABEL" in err


def test_a_month_of_another_kind_names_month(months, tmp_path, capsys):
    model = tmp_path / "M"
    assert _update(model, months[0], "--strategy", "naive", *NET, "--month", "2024-01",
                   "--quiet") == 0
    capsys.readouterr()
    assert _update(model, months[1], "--month", "7") == 2
    assert "--month 7 cannot be compared with the model's last month" in _error(capsys)


def test_a_single_class_first_month_names_target(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("f0,f1,is_malware\n" + "".join(f"{i},{-i},1\n" for i in range(20)))
    assert _update(tmp_path / "M", str(path), "--strategy", "naive", *NET) == 2
    err = _error(capsys)
    assert "--target column holds a single class, [1]" in err


def test_new_model_options_on_an_existing_model_are_named_as_options(months, tmp_path,
                                                                      capsys):
    model = tmp_path / "M"
    assert _update(model, months[0], "--strategy", "naive", *NET, "--quiet") == 0
    capsys.readouterr()
    assert _update(model, months[1], "--epochs", "2", "--reg-lambda", "3") == 2
    assert "the new-model options (--epochs, --reg-lambda)" in _error(capsys)


def test_python_users_keep_python_terms():
    clf = sklearn_cf.ContinualClassifier(max_epochs=1, hidden_units=(4,), random_state=0)
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    clf.partial_fit_month(X, np.arange(20) % 2, month="2024-02")
    with pytest.raises(ValueError, match=r"month='2024-01' does not come after"):
        clf.partial_fit_month(X, np.arange(20) % 2, month="2024-01")


# ---------------------------------------------------------------------------
# One sign convention
# ---------------------------------------------------------------------------
def _result(before, after, max_forgetting=None):
    step = MonthUpdate(month="2024-03", train_rows=80, holdout_rows=20, seconds=0.1,
                       score=0.9, next_month_score=0.8, before=before, after=after)
    return UpdateResult(model="M", strategy="replay", created=False,
                        months_before=list(before), months_after=[*before, "2024-03"],
                        steps=[step], max_forgetting=max_forgetting, saved=True,
                        scoring="accuracy", scoring_recorded=True, generation=3, previous=2)


def test_a_drop_is_positive_and_its_change_negative():
    # 2024-01 gains 0.050, 2024-02 drops 0.030 (hand-computed from before/after).
    result = _result({"2024-01": 0.800, "2024-02": 0.900},
                     {"2024-01": 0.850, "2024-02": 0.870}, max_forgetting=0.05)
    text = result.summary()
    assert re.search(r"2024-01 +0\.800 +0\.850 +\+0\.050", text)
    assert re.search(r"2024-02 +0\.900 +0\.870 +-0\.030", text)
    assert ("largest drop on a past month: 0.030 on 2024-02 "
            "(change -0.030; --max-forgetting 0.05)") in text
    report = result.to_markdown()
    assert "| 2024-02 | 0.900 | 0.870 | -0.030 |" in report
    assert "Largest drop on a past month: 0.0300 on 2024-02 (change -0.0300; threshold 0.05)." \
        in report


def test_only_gains_print_no_drop():
    result = _result({"2024-01": 0.800}, {"2024-01": 0.827})
    text = result.summary()
    assert re.search(r"2024-01 +0\.800 +0\.827 +\+0\.027", text)
    assert "no past month's held-out score dropped" in text
    assert "largest drop" not in text and "-0.027" not in text
    report = result.to_markdown()
    assert "No past month's held-out score dropped." in report
    assert "-0.027" not in report


def test_the_cli_summary_agrees_with_its_table(months, tmp_path, capsys):
    model = tmp_path / "M"
    assert _update(model, months[0], "--strategy", "naive", *NET, "--quiet") == 0
    assert _update(model, months[1], "--quiet") == 0
    capsys.readouterr()
    assert _update(model, months[2], "--out", str(tmp_path / "rep")) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^  (\d+) +(\d\.\d{3}) +(\d\.\d{3}) +([+-]\d\.\d{3})$", out, re.M)
    assert len(rows) == 2, out
    for _, before, after, change in rows:  # change = after - before
        assert float(change) == pytest.approx(float(after) - float(before), abs=1.5e-3)
    worst = max(rows, key=lambda r: float(r[1]) - float(r[2]))
    drop = float(worst[1]) - float(worst[2])
    if drop > 0:
        assert re.search(rf"largest drop on a past month: {drop:.3f} on {worst[0]} "
                         rf"\(change -{drop:.3f}\)", out), out
    else:
        assert "no past month's held-out score dropped" in out


# ---------------------------------------------------------------------------
# The newest months
# ---------------------------------------------------------------------------
MANY = [f"20{y}-{m:02d}" for y in (22, 23, 24) for m in range(1, 13)]


def test_the_summary_shows_the_newest_months():
    result = _result({m: 0.8 for m in MANY}, {m: 0.8 for m in MANY})
    first = result.summary().splitlines()[0]
    assert len(first) <= 100
    assert "36 months" in first and first.endswith("2024-12")
    assert "2022-01" not in first


def test_history_shows_the_newest_months(tmp_path, capsys):
    names = [f"2023-{m:02d}" for m in range(1, 13)]  # 12 do not fit in the column
    folder = tmp_path / "months"
    X, y, months = make_monthly_drift(n_months=len(names), n_samples_per_month=40,
                                      n_features=4, random_state=0)
    for k, name in enumerate(names):
        os.makedirs(folder / name)
        np.save(folder / name / "X.npy", X[months == k].astype(np.float32))
        np.save(folder / name / "y.npy", y[months == k])
    model = tmp_path / "M"
    assert main(["update", "--model", str(model), "--data", str(folder), "--strategy",
                 "naive", "--epochs", "1", "--hidden-units", "4", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["history", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "12 months: ..., 2023-12" in out


# ---------------------------------------------------------------------------
# A change of label type
# ---------------------------------------------------------------------------
def test_text_labels_on_an_integer_model_name_the_change(tmp_path, capsys):
    ints = _csv_months(tmp_path / "ints" if os.makedirs(tmp_path / "ints") is None else None)
    texts = _csv_months(tmp_path / "texts" if os.makedirs(tmp_path / "texts") is None else None,
                        labels={0: "benign", 1: "malware"})
    model = tmp_path / "M"
    assert _update(model, ints[0], "--strategy", "naive", *NET, "--quiet") == 0
    capsys.readouterr()
    assert _update(model, texts[1]) == 2
    err = _error(capsys)
    assert ("the model's labels are integers (0, 1); this month's are text "
            "('benign', 'malware')") in err
    assert "Mix of label input types" not in err


def test_label_type_change_in_words():
    from sklearn_cf._labels import label_type_change

    assert label_type_change(np.array([0, 1]), np.array(["a", "b"])) == (
        "the model's labels are integers (0, 1); these are text ('a', 'b')")
    assert label_type_change(np.array(["a", "b"]), np.array([1.5, 2.5])) == (
        "the model's labels are text ('a', 'b'); these are numbers (1.5, 2.5)")
    assert label_type_change(np.array([0, 1]), np.array([0.0, 1.0])) is None
    assert label_type_change(np.array(["a", "b"]), np.array(["c"])) is None

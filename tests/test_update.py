"""``sklearn-cf update``: the monthly job, end to end on small CSV months."""

import errno
import json
import os
import re

import numpy as np
import pytest

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf._eval_store import EvalStore
from sklearn_cf.cli import main
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.store import ModelStore

NET = ["--epochs", "1", "--hidden-units", "8"]
ROWS_PER_MONTH = 80


def _month_csvs(folder, n_months=3, **drift):
    """One CSV per month (no month column), and one CSV of every month (``when``)."""
    X, y, months = make_monthly_drift(n_months=n_months, n_samples_per_month=ROWS_PER_MONTH,
                                      n_features=6, random_state=0, **drift)
    header = "f0,f1,f2,f3,f4,f5,channel,is_malware"
    every = ["when," + header]
    paths = []
    for k in range(n_months):
        lines = [header]
        for i in np.flatnonzero(months == k):
            row = [*(f"{v:.5f}" for v in X[i]), ("email", "web", "usb")[i % 3], str(y[i])]
            lines.append(",".join(row))
            every.append(",".join([f"2024-{k + 1:02d}", *row]))
        path = folder / f"month{k}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    (folder / "all.csv").write_text("\n".join(every) + "\n")
    return paths, str(folder / "all.csv")


@pytest.fixture
def months(tmp_path):
    return _month_csvs(tmp_path)[0]


def _update(model, data, *extra):
    return main(["update", "--model", str(model), "--data", data, "--target", "is_malware",
                 "--quiet", *extra])


def _predictions(path, X):
    return sklearn_cf.load(path).predict_proba(X)


def _eval_store(model, generation=None):
    """The evaluation store of a generation of the store ``model`` (None: the
    current one)."""
    return ModelStore(model).eval_store(generation)


def _previous(model):
    """The model of the generation that was current before the current one."""
    store = ModelStore(model)
    return store.load(store.generation().previous)


def _model_bytes(model, generation=None):
    """The checkpoint bytes of a generation, found through its manifest."""
    gen = ModelStore(model).generation(generation)
    return (model / gen.files["model"]).read_bytes()


def _ids(model):
    return [gen.id for gen in ModelStore(model).generations()]


def _tree(model):
    """Every file under the store folder ``model``: relative path -> bytes."""
    return {p.relative_to(model).as_posix(): p.read_bytes()
            for p in sorted(model.rglob("*")) if p.is_file()}


def _features(path):
    """The month's raw feature columns, which the model encodes itself."""
    from sklearn_cf.datasets._table import _import_pandas

    return _import_pandas().read_csv(path).drop(columns=["is_malware"])


def test_create_update_twice_then_rollback(months, tmp_path, capsys):
    model = tmp_path / "model"
    assert _update(model, months[0], "--month", "0", "--strategy", "replay", *NET) == 0
    assert model.is_dir() and _ids(model) == [1]
    assert sklearn_cf.load(model).months_seen_ == [0]

    assert _update(model, months[1], "--month", "1") == 0
    after_first = _model_bytes(model)
    X = _eval_store(model).scale(_features(months[2]))
    expected = _predictions(model, X)
    assert sklearn_cf.load(model).months_seen_ == [0, 1]

    assert _update(model, months[2], "--month", "2") == 0
    assert _ids(model) == [1, 2, 3]
    assert sklearn_cf.load(model).months_seen_ == [0, 1, 2]
    assert _previous(model).months_seen_ == [0, 1]
    np.testing.assert_array_equal(_previous(model).predict_proba(X), expected)
    after_second = _model_bytes(model)
    assert after_second != after_first
    store = _eval_store(model)
    assert store.months == [0, 1, 2]
    assert [len(y) for y in store.y] == [ROWS_PER_MONTH // 5] * 3  # --holdout 0.2
    assert _eval_store(model, 2).months == [0, 1]
    capsys.readouterr()

    # a rollback is a new generation that makes generation 2's files current
    assert main(["update", "--rollback", "--model", str(model)]) == 0
    assert "Rolled back" in capsys.readouterr().out
    current = ModelStore(model).generation()
    assert (current.id, current.kind, current.restores, current.previous) == (4, "rollback", 2, 3)
    assert _model_bytes(model) == after_first
    np.testing.assert_array_equal(_predictions(model, X), expected)
    assert _eval_store(model).months == [0, 1]
    # the undone generation is kept: a second rollback undoes the first
    assert _model_bytes(model, 3) == after_second
    assert main(["update", "--rollback", "--model", str(model)]) == 0
    current = ModelStore(model).generation()
    assert (current.id, current.restores) == (5, 3)
    assert _model_bytes(model) == after_second
    assert sklearn_cf.load(model).months_seen_ == [0, 1, 2]
    assert _eval_store(model).months == [0, 1, 2]
    capsys.readouterr()

    # history lists every kept generation, the last as current
    assert main(["history", "--model", str(model)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["1", "2", "3", "4", "5"]
    assert "rollback to 2" in rows[3] and "rollback to 3" in rows[4]
    assert rows[-1].endswith("(current)") and not any("(current)" in r for r in rows[:-1])


def test_summary_shows_forgetting_row_and_fits_100_columns(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _update(model, months[0], "--strategy", "naive", *NET) == 0
    capsys.readouterr()
    out = tmp_path / "report"
    code = main(["update", "--model", str(model), "--data", months[1], "--target",
                 "is_malware", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "month 1:" in text and "past month" in text and "before update:" in text
    assert all(len(line) <= 100 for line in text.splitlines())
    report = (out / "update.md").read_text()
    assert report.startswith("# Monthly update of")
    assert "| 0 |" in report  # the forgetting row names the past month

    # the numbers are those of the two generations' models on the stored held-out rows
    store = _eval_store(model)
    before = _previous(model).score(store.X[0], store.y[0])
    after = sklearn_cf.load(model).score(store.X[0], store.y[0])
    assert f"| 0 | {before:.3f} | {after:.3f} |" in report
    # next-month score: the model before the update on the new month's held-out rows
    next_month = _previous(model).score(store.X[1], store.y[1])
    score = sklearn_cf.load(model).score(store.X[1], store.y[1])
    assert f"held-out {len(store.y[1])} rows: {score:.3f} (before update: {next_month:.3f})" \
        in text


def test_the_store_keeps_at_most_max_eval_rows_per_month(months, tmp_path, monkeypatch):
    import sklearn_cf._eval_store

    monkeypatch.setattr(sklearn_cf._eval_store, "MAX_EVAL_ROWS", 5)
    model = tmp_path / "m"
    assert _update(model, months[0], "--strategy", "naive", "--holdout", "0.5", *NET) == 0
    store = _eval_store(model)
    # raw rows: six numbers and the text column channel
    assert [len(y) for y in store.y] == [5] and store.X[0].shape == (5, 7)


def test_refused_update_exits_3_and_changes_nothing(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _update(model, months[0], "--strategy", "naive", *NET) == 0
    assert _update(model, months[1]) == 0
    before = _tree(model)
    listing = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    # any drop (scores lie in [0, 1]) exceeds -1; without the noise test
    # (--forgetting-confidence 0) the point drop alone decides
    assert _update(model, months[2], "--max-forgetting", "-1",
                   "--forgetting-confidence", "0") == 3
    err = capsys.readouterr().err
    assert re.search(r"refused: the held-out score on month [01] dropped by -?[0-9.]+, more "
                     r"than --max-forgetting -1; the model was not changed\. The refusal is "
                     r"recorded as 000002-[0-9a-f]{12}", err), err
    # no new generation, and not a byte of a generation changed (nor a file
    # beside the store): only the refusal record was added
    assert _ids(model) == [1, 2]
    after = _tree(model)
    added = {name for name in after if name not in before}
    assert len(added) == 1 and next(iter(added)).startswith("refused/000002-"), added
    assert {k: v for k, v in after.items() if k not in added} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _full_when_writing(part):
    """``write_atomically_bytes`` that fails as a full disk for paths containing
    ``part`` (and writes the others)."""
    from sklearn_cf._atomic import write_atomically_bytes

    def write(path, data):
        if part in os.fspath(path):
            _disk_full()
        write_atomically_bytes(path, data)

    return write


@pytest.mark.parametrize("failing", ["model", "eval", "manifest", "pointer"])
def test_a_save_that_fails_half_way_changes_nothing(failing, months, tmp_path, capsys,
                                                    monkeypatch):
    """A full disk at any write of a commit (the checkpoint, then the evaluation
    store, the manifest, the pointer) leaves the store as it was, byte for byte,
    with nothing left behind that no generation references."""
    import sklearn_cf.store
    from sklearn_cf._estimator import _checkpoint

    model = tmp_path / "m"
    assert _update(model, months[0], "--strategy", "naive", *NET) == 0
    assert _update(model, months[1]) == 0
    before = _tree(model)
    listing = sorted(p.name for p in tmp_path.iterdir())

    if failing == "model":
        monkeypatch.setattr(_checkpoint, "write_atomically", _disk_full)
    else:
        part = {"eval": "eval-", "manifest": "000003.json", "pointer": "CURRENT"}[failing]
        monkeypatch.setattr(sklearn_cf.store, "write_atomically_bytes",
                            _full_when_writing(part))
    capsys.readouterr()
    assert _update(model, months[2]) == 2
    assert "No space left on device" in capsys.readouterr().err
    # The current generation, the one kept for rollback and their files are
    # as they were; the new generation's files are gone.
    assert _ids(model) == [1, 2]
    assert _tree(model) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    monkeypatch.undo()
    assert _update(model, months[2]) == 0 and _ids(model) == [1, 2, 3]


def test_a_file_of_several_months_trains_them_in_order(tmp_path):
    _, every = _month_csvs(tmp_path)
    model = tmp_path / "m"
    code = main(["update", "--model", str(model), "--data", every, "--target", "is_malware",
                 "--month-column", "when", "--strategy", "naive", "--quiet", *NET])
    assert code == 0
    assert sklearn_cf.load(model).months_seen_ == ["2024-01", "2024-02", "2024-03"]
    assert _eval_store(model).months == ["2024-01", "2024-02", "2024-03"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--data", "no_such.csv", "--target", "is_malware"], ["no_such.csv"]),
        (["--data", "MONTH0", "--target", "malware"], ["'malware'"]),
        (["--data", "MONTH0"], ["--target"]),
        (["--target", "is_malware"], ["--data"]),
        (["--data", "MONTH0", "--target", "is_malware", "--holdout", "1.5"], ["--holdout"]),
        (["--data", "MONTH0", "--target", "is_malware", "--strategy", "replya"],
         ["'replya'", "'replay'"]),
        (["--data", "MONTH0", "--target", "is_malware", "--scoring", "acuracy"],
         ["'acuracy'", "'accuracy'"]),
    ],
)
def test_bad_data_or_arguments_exit_2(args, words, months, tmp_path, capsys):
    model = tmp_path / "m"
    args = [months[0] if a == "MONTH0" else a for a in args]
    if "--strategy" not in args:
        args += ["--strategy", "naive"]
    assert main(["update", "--model", str(model), *args, *NET]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("sklearn-cf: error: ")
    for word in words:
        assert word in line
    assert not model.exists()


def test_existing_model_refuses_another_strategy(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _update(model, months[0], "--strategy", "naive", *NET) == 0
    before = _tree(model)
    assert _update(model, months[1], "--strategy", "replay") == 2
    err = capsys.readouterr().err
    assert "'naive'" in err and "'replay'" in err
    assert _tree(model) == before
    assert _update(model, months[1], "--strategy", "naive") == 0  # the same one is fine
    assert _previous(model).months_seen_ == [0]
    assert _model_bytes(model, 1) == before[ModelStore(model).generation(1).files["model"]]


def test_rollback_without_previous_exits_2(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert main(["update", "--rollback", "--model", str(model)]) == 2
    assert "not a model store" in capsys.readouterr().err
    assert not model.exists()
    assert _update(model, months[0], "--strategy", "naive", *NET) == 0
    before = _tree(model)
    capsys.readouterr()
    assert main(["update", "--rollback", "--model", str(model)]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err
    assert _tree(model) == before


def test_ctrl_c_exits_130_and_writes_nothing(months, tmp_path, capsys, monkeypatch):
    model = tmp_path / "m"
    assert _update(model, months[0], "--strategy", "naive", *NET) == 0
    before = _tree(model)

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ContinualClassifier, "partial_fit_month", interrupted)
    assert _update(model, months[1]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert _tree(model) == before
    assert _ids(model) == [1]


def test_a_folder_of_npy_months(tmp_path, capsys):
    X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=ROWS_PER_MONTH,
                                      n_features=6, random_state=0)
    for k, name in enumerate(["1", "2", "3"]):
        (tmp_path / "months" / name).mkdir(parents=True)
        np.save(tmp_path / "months" / name / "X.npy", X[months == k].astype(np.float32))
        np.save(tmp_path / "months" / name / "y.npy", y[months == k])
    model = tmp_path / "m"
    code = main(["update", "--model", str(model), "--data", str(tmp_path / "months"),
                 "--strategy", "naive", "--quiet", *NET])
    assert code == 0, capsys.readouterr().err
    clf = sklearn_cf.load(model)
    assert len(clf.months_seen_) == 3
    # --scale auto standardizes a folder, as compare does, with the mean and std
    # of the first month's training rows (every row not held out), in the
    # model's own encoder; the evaluation store keeps the raw rows
    store = _eval_store(model)
    assert store.raw and store.scale_mean is None
    assert [len(s) for s in store.y] == [ROWS_PER_MONTH // 5] * 3
    first = X[months == 0].astype(np.float32)
    held = store.X[0]
    is_held = np.array([np.abs(held - row).max(axis=1).min() == 0 for row in first])
    assert is_held.sum() == len(held)
    encoder = clf.preprocessor_
    np.testing.assert_allclose(encoder.mean_, first[~is_held].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(encoder.scale_, first[~is_held].std(axis=0), rtol=1e-4)


# ---------------------------------------------------------------------------
# The scoring: chosen once, recorded in the store
# ---------------------------------------------------------------------------
@pytest.fixture
def rare_months(tmp_path):
    """Months of about 25% malware: roc_auc is chosen for them."""
    return _month_csvs(tmp_path, malware_share=(0.2, 0.3))[0]


def _labels(path):
    from sklearn_cf.datasets._table import _import_pandas

    return _import_pandas().read_csv(path)["is_malware"].to_numpy()


def _store_meta(model):
    """The ``meta`` of the current generation's evaluation store file, read
    with NumPy (the file the manifest names)."""
    with np.load(model / ModelStore(model).generation().files["eval"],
                 allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def test_a_rare_class_is_scored_by_roc_auc_as_sklearn_computes_it(rare_months, tmp_path,
                                                                   capsys):
    from sklearn.metrics import roc_auc_score

    model = tmp_path / "m"
    y0 = _labels(rare_months[0])
    share = np.bincount(y0).min() / len(y0)
    assert share < 0.4
    assert _update(model, rare_months[0], "--strategy", "naive", *NET) == 0
    assert _store_meta(model)["scoring"] == "roc_auc"  # recorded in the file itself
    capsys.readouterr()

    out = tmp_path / "report"
    code = main(["update", "--model", str(model), "--data", rare_months[1], "--target",
                 "is_malware", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert f"scoring: roc_auc, recorded in the model store {model}" in " ".join(text.split())

    store = _eval_store(model)
    old, new = _previous(model), sklearn_cf.load(model)
    assert list(new.classes_) == [0, 1]

    def auc(clf, k):  # sklearn's metric on the positive class's probability
        return roc_auc_score(store.y[k], clf.predict_proba(store.X[k])[:, 1])

    report = (out / "update.md").read_text()
    assert "| measure | roc_auc |" in report
    assert f"| 0 | {auc(old, 0):.3f} | {auc(new, 0):.3f} |" in report
    assert f"rows: {auc(new, 1):.3f} (before update: {auc(old, 1):.3f})" in text
    assert f"{auc(old, 0):.3f}   {auc(new, 0):.3f}" in text


def test_the_automatic_choice_is_explained(rare_months, tmp_path, capsys):
    model = tmp_path / "m"
    y0 = _labels(rare_months[0])
    share = np.bincount(y0).min() / len(y0)
    main(["update", "--model", str(model), "--data", rare_months[0], "--target", "is_malware",
          "--strategy", "naive", *NET])
    text = " ".join(capsys.readouterr().out.split())  # the line wraps at 100 columns
    assert (f"scoring: roc_auc, chosen automatically because the rarest class is {share:.1%} "
            "of rows (below 40%)") in text


def test_a_different_explicit_scoring_is_refused(rare_months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _update(model, rare_months[0], "--strategy", "naive", *NET) == 0
    before = _tree(model)
    capsys.readouterr()

    assert _update(model, rare_months[1], "--scoring", "accuracy") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("sklearn-cf: error: --scoring accuracy differs from the scoring "
                           "recorded")
    assert ": roc_auc." in line and "Drop --scoring" in line and "new --model" in line
    assert _tree(model) == before
    assert _ids(model) == [1]

    # the recorded one, given explicitly, is fine
    assert _update(model, rare_months[1], "--scoring", "roc_auc") == 0
    assert _eval_store(model).scoring == "roc_auc"


def test_an_explicit_scoring_is_recorded_for_a_new_model(rare_months, tmp_path):
    from sklearn.metrics import balanced_accuracy_score

    model = tmp_path / "m"
    assert _update(model, rare_months[0], "--strategy", "naive", "--scoring",
                   "balanced_accuracy", *NET) == 0
    assert _store_meta(model)["scoring"] == "balanced_accuracy"
    assert ModelStore(model).generation().scoring == "balanced_accuracy"
    out = tmp_path / "rep"
    assert _update(model, rare_months[1], "--out", str(out)) == 0  # auto: the recorded one
    store = _eval_store(model)
    old, new = _previous(model), sklearn_cf.load(model)
    before = balanced_accuracy_score(store.y[0], old.predict(store.X[0]))
    after = balanced_accuracy_score(store.y[0], new.predict(store.X[0]))
    assert f"| 0 | {before:.3f} | {after:.3f} |" in (out / "update.md").read_text()


def test_a_store_without_a_recorded_scoring_means_accuracy(rare_months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _update(model, rare_months[0], "--strategy", "naive", *NET) == 0
    # an older model: a checkpoint file and, beside it, its evaluation store
    # with the same rows and no scoring in its meta
    store = _eval_store(model)
    store.scoring = None
    legacy = tmp_path / "legacy.ckpt"
    legacy.write_bytes(_model_bytes(model))
    (tmp_path / "legacy.ckpt.eval.npz").write_bytes(store.to_bytes())
    assert EvalStore.read(tmp_path / "legacy.ckpt.eval.npz").scoring == "accuracy"

    imported = tmp_path / "imported"
    assert _update(imported, rare_months[1], "--init-from", str(legacy),
                   "--scoring", "roc_auc") == 2
    assert ": accuracy." in capsys.readouterr().err
    out = tmp_path / "rep"
    assert _update(imported, rare_months[1], "--init-from", str(legacy),
                   "--out", str(out)) == 0
    store = _eval_store(imported)
    assert store.scoring == "accuracy"
    old, new = sklearn_cf.load(legacy), sklearn_cf.load(imported)
    report = (out / "update.md").read_text()
    assert f"| 0 | {old.score(store.X[0], store.y[0]):.3f} | " \
           f"{new.score(store.X[0], store.y[0]):.3f} |" in report


def test_roc_auc_undefined_on_one_class_is_nan_and_said_so(rare_months, tmp_path, capsys):
    from sklearn_cf.update import update_model

    model = tmp_path / "m"
    assert _update(model, rare_months[0], "--strategy", "naive", *NET) == 0
    # a month of benign files only: its held-out rows hold one class
    lines = open(rare_months[1]).read().splitlines()
    benign = tmp_path / "benign.csv"
    benign.write_text("\n".join([lines[0], *(ln for ln in lines[1:] if ln.endswith(",0"))]))
    result = update_model(str(model), str(benign), target="is_malware",
                          max_forgetting=0.5)
    assert result.saved
    step = result.steps[0]
    assert np.isnan(step.score) and np.isnan(step.next_month_score)
    assert not np.isnan(step.after[0])  # month 0 still holds both classes
    summary = result.summary()
    assert "held-out" in summary and ": undef (before update: undef)" in summary
    assert "undef: month 1 undefined (roc_auc on months whose held-out rows hold one " \
           "class), left out of the drops" in " ".join(summary.split())  # wrapped
    assert all(len(line) <= 100 for line in summary.splitlines())
    # the next update scores that month as a past month: undefined before and
    # after, left out of the drops, so --max-forgetting judges the others
    capsys.readouterr()
    out = tmp_path / "rep"
    assert _update(model, rare_months[2], "--max-forgetting", "0.5", "--out", str(out)) == 0
    report = (out / "update.md").read_text()
    assert "| 1 | undef | undef | - |" in report
    assert "`undef`: month 1 undefined (roc_auc on months whose held-out rows hold one " \
        "class), left out of the drops." in report


def test_a_new_model_with_balanced_class_weights(months, tmp_path):
    model = tmp_path / "m"
    assert _update(model, months[0], "--strategy", "replay", "--class-weight", "balanced",
                   *NET) == 0
    assert sklearn_cf.load(model).class_weight == "balanced"
    # The next month trains with the checkpoint's setting.
    assert _update(model, months[1]) == 0
    clf = sklearn_cf.load(model)
    assert clf.class_weight == "balanced" and len(clf.months_seen_) == 2

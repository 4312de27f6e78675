"""Inputs: larger than memory (float32 arrays and memmaps are used in place,
other inputs are converted once, in chunks; prediction and scoring stream), and
checked as scikit-learn checks them (classes, no rows, feature names)."""

import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST, make_stream
from skorch.callbacks import Callback
from sklearn.metrics import accuracy_score

import sklearn_cf
from sklearn_cf import ContinualClassifier, forgetting_matrix
from sklearn_cf import _validation
from sklearn_cf._validation import check_features


def _shares(tensor, array):
    """Whether a CPU tensor lies in the memory of a numpy array."""
    return np.shares_memory(tensor.detach().numpy(), array)


def _memmap(tmp_path, X, name="X.npy"):
    """``X`` written to a .npy file and reopened read-only, as a month on disk."""
    path = tmp_path / name
    out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    out[:] = X
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


class _TrainingRows(Callback):
    """Records the feature tensors of every source a month trains on."""

    def __init__(self):
        self.sources = []

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.sources.append([X for X, _ in dataset_train.sources])


def _forward_inputs(clf):
    """Record the batches that reach the module's forward (also in copies of
    the module, e.g. an ensemble's scratch network)."""
    seen = []
    clf.module_.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return seen


@pytest.fixture
def month(tmp_path):
    X, y, _ = make_stream(n_months=1, n_per_month=300)
    return X, y, _memmap(tmp_path, X)


class TestZeroCopy:
    def test_check_features_returns_float32_arrays_in_place(self, month):
        X, _, X_mm = month
        for array in (X, X_mm):
            checked, names = check_features(array)
            assert np.shares_memory(checked, array)
            assert checked.dtype == np.float32 and checked.flags.c_contiguous
            assert names is None

    def test_partial_fit_month_trains_on_the_memmap_itself(self, month):
        X, y, X_mm = month
        spy = _TrainingRows()
        clf = ContinualClassifier(callbacks=[spy], **FAST).partial_fit_month(X_mm, y)
        assert spy.sources and all(_shares(s[0], X_mm) for s in spy.sources)
        # Oracle: the same month from an in-RAM copy.
        ref = ContinualClassifier(**FAST).partial_fit_month(np.array(X_mm), y)
        np.testing.assert_array_equal(clf.predict_proba(X), ref.predict_proba(X))

    def test_second_month_trains_on_the_memmap_itself(self, tmp_path):
        X, y, months = make_stream(n_months=2)
        first, second = months == 0, months == 1
        X_mm = _memmap(tmp_path, X[second])
        spy = _TrainingRows()
        clf = ContinualClassifier(callbacks=[spy], **FAST).partial_fit_month(X[first], y[first])
        spy.sources.clear()
        clf.partial_fit_month(X_mm, y[second])
        assert spy.sources and all(_shares(s[0], X_mm) for s in spy.sources)

    @pytest.mark.parametrize("with_months", [False, True])
    def test_fit_trains_on_the_memmap_itself(self, tmp_path, with_months):
        X, y, months = make_stream(n_months=2)  # rows sorted by month
        X_mm = _memmap(tmp_path, X)
        spy = _TrainingRows()
        clf = ContinualClassifier(callbacks=[spy], **FAST)
        clf.fit(X_mm, y, months=months if with_months else None)
        assert spy.sources and all(_shares(s[0], X_mm) for s in spy.sources)

    def test_fit_on_a_memmap_predicts_as_on_an_array(self, tmp_path):
        X, y, months = make_stream(n_months=2)
        X_mm = _memmap(tmp_path, X)
        a = ContinualClassifier(**FAST).fit(X_mm, y, months=months)
        b = ContinualClassifier(**FAST).fit(np.array(X_mm), y, months=months)
        np.testing.assert_array_equal(a.predict_proba(X_mm), b.predict_proba(X))

    @pytest.mark.parametrize("strategy", ["naive", "ensemble"])
    def test_predict_proba_reads_the_memmap_in_place(self, tmp_path, strategy):
        X, y, months = make_stream(n_months=2)
        X_mm = _memmap(tmp_path, X)
        clf = ContinualClassifier(strategy=strategy, iterator_valid__batch_size=64, **FAST)
        clf.fit(X, y, months=months)
        seen = _forward_inputs(clf)
        proba = clf.predict_proba(X_mm)
        assert len(seen) >= 2 and all(_shares(batch, X_mm) for batch in seen)
        np.testing.assert_array_equal(proba, clf.predict_proba(np.array(X_mm)))
        np.testing.assert_array_equal(clf.predict(X_mm), clf.predict(np.array(X_mm)))


class TestConversion:
    @pytest.mark.parametrize(
        "convert",
        [
            lambda X: X.astype(np.float64),
            lambda X: np.asfortranarray(X.astype(np.float64)),
            lambda X: np.asfortranarray(X),
            lambda X: np.repeat(X, 2, axis=1)[:, ::2],  # a strided float32 view
            lambda X: np.round(X * 100).astype(np.int64),
            lambda X: pd.DataFrame(X.astype(np.float64)),
        ],
        ids=["float64", "float64-F", "float32-F", "strided", "int64", "DataFrame"],
    )
    def test_converted_in_chunks_equals_astype(self, monkeypatch, convert):
        X, _, _ = make_stream(n_months=1, n_per_month=100)
        monkeypatch.setattr(_validation, "CHUNK_BYTES", 7 * 4 * X.shape[1])  # 7 rows
        X_in = convert(X)
        checked, _ = check_features(X_in)
        expected = np.asarray(X_in).astype(np.float32)
        assert checked.dtype == np.float32 and checked.flags.c_contiguous
        np.testing.assert_array_equal(checked, expected)

    def test_float64_predicts_as_its_float32_conversion(self):
        X, y, months = make_stream(n_months=2)
        X64 = X.astype(np.float64) + 1e-9  # not exactly float32
        X32 = X64.astype(np.float32)
        a = ContinualClassifier(**FAST).fit(X64, y, months=months)
        b = ContinualClassifier(**FAST).fit(X32, y, months=months)
        np.testing.assert_array_equal(a.predict_proba(X64), b.predict_proba(X32))
        np.testing.assert_array_equal(a.predict_proba(X64), a.predict_proba(X32))

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (np.inf, "infinity")])
    def test_first_bad_row_of_the_last_chunk_is_named(self, monkeypatch, dtype, value, kind):
        X, _, _ = make_stream(n_months=1, n_per_month=100)
        monkeypatch.setattr(_validation, "CHUNK_BYTES", 7 * 4 * X.shape[1])  # 15 chunks
        X = X.astype(dtype)
        X[97, 4] = value
        X[99, 1] = value
        with pytest.raises(ValueError, match=rf"X contains {kind}.* at row 97 \(column 4\)"):
            check_features(X)
        with pytest.raises(ValueError, match=rf"contains {kind}.* at row 97"):
            check_features(pd.DataFrame(X))

    def test_float64_too_large_for_float32_is_reported(self):
        X = np.ones((5, 3))
        X[2, 1] = 1e300
        with pytest.raises(ValueError, match=r"too large for float32 at row 2 \(column 1\)"):
            check_features(X)

    def test_conversion_holds_one_float32_copy_and_one_chunk(self, monkeypatch):
        # 2**21 float64 entries (16 MiB) become 8 MiB of float32; a float64
        # temporary of the whole month would add 16 MiB.
        X = np.random.default_rng(0).normal(size=(2**15, 64))
        monkeypatch.setattr(_validation, "CHUNK_BYTES", 2**20)
        tracemalloc.start()
        try:
            out, _ = check_features(X)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert out.nbytes == 2**23
        assert peak < out.nbytes + 2 * 2**20, peak

    def test_float32_check_holds_one_chunk(self, tmp_path, monkeypatch):
        X = _memmap(tmp_path, np.ones((2**15, 64), dtype=np.float32))  # 8 MiB
        monkeypatch.setattr(_validation, "CHUNK_BYTES", 2**20)
        tracemalloc.start()
        try:
            check_features(X)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2**20, peak


def _copy_warnings(record):
    return [w for w in record if "copied into a new float32 array" in str(w.message)]


class TestCopyWarning:
    """A conversion that copies more than COPY_WARNING_BYTES warns once per
    call; float32 C-contiguous input is never copied and never warns."""

    @pytest.fixture
    def small_threshold(self, monkeypatch):
        # 100 rows x 6 float32 features are 2400 bytes: above 2000.
        monkeypatch.setattr(_validation, "COPY_WARNING_BYTES", 2000)

    @pytest.mark.parametrize(
        "convert, kind",
        [
            (lambda X: X, "a float64 array"),
            (lambda X: np.round(X * 100).astype(np.int64), "a int64 array"),
            (lambda X: np.asfortranarray(X, dtype=np.float32), "a float32 array in Fortran order"),
            (lambda X: np.repeat(X.astype(np.float32), 2, axis=0)[::2],
             "a float32 array that is not C-contiguous (a strided view)"),
            (pd.DataFrame, "a DataFrame of float64"),
            (lambda X: X.tolist(), "a list"),
        ],
        ids=["float64", "int64", "float32-F", "strided", "DataFrame", "list"],
    )
    def test_a_large_conversion_names_its_size_dtype_and_the_fix(self, monkeypatch,
                                                                 convert, kind):
        # 2**17 x 4 values: a 2 MiB float32 copy, above a 1 MiB threshold.
        X = np.random.default_rng(0).normal(size=(2**17, 4))
        monkeypatch.setattr(_validation, "COPY_WARNING_BYTES", 2**20)
        with pytest.warns(UserWarning, match="copied into a new float32 array") as record:
            checked, _ = check_features(convert(X))
        assert checked.nbytes == 2 * 2**20
        (warning,) = _copy_warnings(record)
        message = str(warning.message)
        assert f"X ({kind}, 131,072 x 4)" in message
        assert "array of 2 MiB" in message
        assert "float32 C-contiguous array" in message and "np.memmap" in message
        assert "docs/data.md" in message

    def test_the_threshold_is_a_strict_bound_on_the_copy(self, monkeypatch):
        X = np.ones((100, 6))  # a 2400-byte float32 copy
        monkeypatch.setattr(_validation, "COPY_WARNING_BYTES", 2400)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_features(X)
        monkeypatch.setattr(_validation, "COPY_WARNING_BYTES", 2399)
        with pytest.warns(UserWarning, match="copied into a new float32 array"):
            check_features(X)

    def test_the_default_threshold_is_256_mib(self):
        assert _validation.COPY_WARNING_BYTES == 256 * 2**20

    def test_float32_c_contiguous_input_is_never_copied_nor_warned(self, tmp_path, monkeypatch):
        monkeypatch.setattr(_validation, "COPY_WARNING_BYTES", 0)
        X, _, _ = make_stream(n_months=1, n_per_month=100)
        for array in (X, _memmap(tmp_path, X), X[10:60]):  # a C-contiguous slice too
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                checked, _ = check_features(array)
            assert np.shares_memory(checked, array)

    def test_once_per_call_of_the_estimator(self, small_threshold):
        X, y, months = make_stream(n_months=3, n_per_month=100)
        X64 = X.astype(np.float64)
        clf = ContinualClassifier(strategy="replay", **FAST)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            clf.fit(X64, y, months=months)  # 300 rows, one conversion
        assert len(_copy_warnings(record)) == 1
        for call in (lambda: clf.partial_fit_month(X64[:100], y[:100]),
                     lambda: clf.predict_proba(X64)):
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                call()
            assert len(_copy_warnings(record)) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            clf.partial_fit_month(X[:100], y[:100])
            clf.predict_proba(X)


class TestStreamingScores:
    def test_ensemble_proba_is_the_mean_of_its_members(self):
        X, y, months = make_stream(n_months=3)
        clf = ContinualClassifier(strategy="ensemble", iterator_valid__batch_size=50, **FAST)
        clf.fit(X, y, months=months)
        states = clf.snapshots_[-1].states
        net = clf.module_
        members = []
        with torch.no_grad():
            for state in states:
                net.load_state_dict(state)
                members.append(torch.softmax(net(torch.from_numpy(X)), dim=1).numpy())
        np.testing.assert_allclose(clf.predict_proba(X), np.mean(members, axis=0),
                                   rtol=1e-5, atol=1e-6)

    def test_forgetting_matrix_scores_month_by_month_on_views(self, tmp_path):
        X, y, months = make_stream(n_months=3)  # rows sorted by month
        X_mm = _memmap(tmp_path, X)
        clf = ContinualClassifier(**FAST).fit(X, y, months=months)
        calls = []
        original = clf.predict_proba_after

        def spy(X_month, month):
            calls.append((month, len(X_month), np.shares_memory(X_month, X_mm)))
            return original(X_month, month)

        clf.predict_proba_after = spy
        fm = forgetting_matrix(clf, X_mm, y, months)
        # Every cell sees exactly one month's rows, read in place.
        assert len(calls) == 9
        assert all(n == 120 and shared for _, n, shared in calls)
        # Oracle: sklearn's accuracy of each snapshot on each month.
        del clf.predict_proba_after
        expected = [
            [accuracy_score(y[months == j],
                            clf.classes_[clf.predict_proba_after(X[months == j], i).argmax(1)])
             for j in range(3)]
            for i in range(3)
        ]
        np.testing.assert_allclose(fm.R, expected)


def _raised(call):
    """The exception ``call()`` raises."""
    with pytest.raises(Exception) as info:
        call()
    return info.value


def _warned(call):
    """The messages of the UserWarnings ``call()`` gives."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


class TestClassesArgument:
    """``classes`` is a 1-d array-like of labels of one type, wherever it is given."""

    ENTRY_POINTS = {
        "constructor": lambda X, y, bad: ContinualClassifier(classes=bad, **FAST).fit(X, y),
        "partial_fit_month": lambda X, y, bad: ContinualClassifier(**FAST).partial_fit_month(
            X, y, classes=bad),
        "partial_fit": lambda X, y, bad: ContinualClassifier(**FAST).partial_fit(
            X, y, classes=bad),
        "later month": lambda X, y, bad: ContinualClassifier(**FAST).partial_fit_month(
            X, y).partial_fit_month(X, y, classes=bad),
    }

    @pytest.mark.parametrize("where", list(ENTRY_POINTS))
    @pytest.mark.parametrize("bad, shown", [
        (3, "got 3."), (np.array(3), "got array(3)."), ("ab", "got 'ab'."),
        ([0, "a"], "got numbers and strings: [0, 'a']."),
    ], ids=["int", "0-d array", "string", "numbers and strings"])
    def test_refused_naming_what_was_given(self, where, bad, shown):
        X, y, _ = make_stream(n_months=1, n_per_month=40)
        # The oracle: scikit-learn refuses the same classes with a ValueError.
        from sklearn.linear_model import SGDClassifier
        assert type(_raised(lambda: SGDClassifier().partial_fit(X, y, classes=bad))) is ValueError
        error = _raised(lambda: self.ENTRY_POINTS[where](X, y, bad))
        assert type(error) is ValueError
        assert str(error) == f"classes must be a 1-d array-like of labels of one type, {shown}"

    def test_nested_classes_are_refused_too(self):
        X, y, _ = make_stream(n_months=1, n_per_month=40)
        with pytest.raises(ValueError, match=r"^classes must be a 1-d .* got \[\[0, 1\]\]\.$"):
            ContinualClassifier(**FAST).partial_fit_month(X, y, classes=[[0, 1]])


def _fitted_pair(X, y):
    """ContinualClassifier and scikit-learn's LogisticRegression fitted on the same rows."""
    from sklearn.linear_model import LogisticRegression
    return ContinualClassifier(**FAST).fit(X, y), LogisticRegression().fit(X, y)


def _as_ours(message):
    return message.replace("LogisticRegression", "ContinualClassifier")


class TestZeroRows:
    """Prediction on no rows says so, in scikit-learn's words."""

    @pytest.mark.parametrize("frame", [False, True], ids=["array", "DataFrame"])
    def test_every_prediction_path_words_it_as_sklearn(self, frame):
        X, y, months = make_stream(n_months=2, n_per_month=60)
        if frame:
            X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        ours, theirs = _fitted_pair(X, y)
        ours.partial_fit_month(X, y)
        expected = _as_ours(str(_raised(lambda: theirs.predict(X[:0]))))
        assert "0 sample(s)" in expected
        for call in (lambda: ours.predict(X[:0]), lambda: ours.predict_proba(X[:0]),
                     lambda: ours.score(X[:0], y[:0]),
                     lambda: ours.predict_proba_after(X[:0], 0)):
            error = _raised(call)
            assert type(error) is ValueError
            assert str(error) == expected


class TestFeatureNames:
    """Feature names are checked as scikit-learn's estimators check them."""

    @staticmethod
    def _frame(X, columns=None):
        return pd.DataFrame(X, columns=columns or [f"f{i}" for i in range(X.shape[1])])

    def test_an_array_after_a_dataframe_warns_as_sklearn(self, tmp_path):
        X, y, _ = make_stream(n_months=1, n_per_month=60)
        ours, theirs = _fitted_pair(self._frame(X), y)
        expected = [_as_ours(m) for m in _warned(lambda: theirs.predict(X))]
        assert expected == ["X does not have valid feature names, but ContinualClassifier "
                            "was fitted with feature names"]
        ours.save(tmp_path / "m.pt")
        loaded = sklearn_cf.load(tmp_path / "m.pt")
        for call in (lambda: ours.predict(X), lambda: ours.predict_proba(X),
                     lambda: ours.score(X, y), lambda: ours.predict_proba_after(X, 0),
                     lambda: loaded.predict(X), lambda: ours.partial_fit_month(X, y)):
            assert _warned(call) == expected

    def test_a_dataframe_after_an_array_warns_as_sklearn(self):
        X, y, _ = make_stream(n_months=1, n_per_month=60)
        ours, theirs = _fitted_pair(X, y)
        expected = [_as_ours(m) for m in _warned(lambda: theirs.predict(self._frame(X)))]
        assert expected == ["X has feature names, but ContinualClassifier was fitted "
                            "without feature names"]
        assert _warned(lambda: ours.predict(self._frame(X))) == expected
        assert _warned(lambda: ours.partial_fit_month(self._frame(X), y)) == expected
        # fit starts anew: the names of its X are the ones checked from then on
        ours.fit(self._frame(X), y)
        assert _warned(lambda: ours.predict(self._frame(X))) == []

    @pytest.mark.parametrize("columns", [
        lambda names: names[::-1],
        lambda names: names[:-1] + ["other"],
        lambda names: names[1:] + ["other", "more"],
    ], ids=["reordered", "renamed", "one more"])
    def test_other_columns_raise_as_sklearn(self, columns):
        X, y, _ = make_stream(n_months=1, n_per_month=60)
        ours, theirs = _fitted_pair(self._frame(X), y)
        names = [f"f{i}" for i in range(X.shape[1])]
        wide = np.hstack([X, X[:, :1]]) if len(columns(names)) > X.shape[1] else X
        other = self._frame(wide, columns(names))
        expected = _raised(lambda: theirs.predict(other))
        assert str(expected).startswith("The feature names should match those that were "
                                        "passed during fit.")
        for call in (lambda: ours.predict(other), lambda: ours.predict_proba_after(other, 0),
                     lambda: ours.partial_fit_month(other, y)):
            error = _raised(call)
            assert type(error) is type(expected) and str(error) == str(expected)
        assert ours.months_seen_ == [0]

    def test_the_package_own_scoring_does_not_warn(self):
        X, y, months = make_stream(n_months=2, n_per_month=60)
        frame = self._frame(X)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            clf = ContinualClassifier(**FAST).fit(frame, y, months=months)
            forgetting_matrix(clf, frame, y, months)
            clf.score(frame, y)
        assert len(_warned(lambda: clf.score(X, y))) == 1


RSS_SCRIPT = textwrap.dedent(
    """
    import sys, threading, time, warnings
    import numpy as np, torch
    from sklearn_cf import ContinualClassifier

    torch.set_num_threads(2)
    # as_tensor must keep torch's warning about read-only arrays quiet.
    warnings.filterwarnings("error", message="The given NumPy array is not writable")

    def rss_anon():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024

    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2])
    clf = ContinualClassifier(max_epochs=1, hidden_units=(32,), batch_size=1024,
                              random_state=0)
    # One-off costs (lazy imports, thread pools) are not the month's.
    ContinualClassifier(max_epochs=1, hidden_units=(32,)).partial_fit_month(
        np.array(X[:64]), y[:64]).predict_proba(np.array(X[:64]))
    peak, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon())
            time.sleep(0.005)

    before = rss_anon()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        clf.partial_fit_month(X, y)
        clf.predict_proba(X)
    finally:
        done.set()
        watcher.join()
    after = rss_anon()
    print(before, max(peak[0], after), after)
    """
)


@pytest.mark.slow
def test_a_memmap_month_stays_out_of_anonymous_memory(tmp_path):
    n_rows, n_features = 250_000, 200  # 200 MB of float32
    rng = np.random.default_rng(0)
    path = tmp_path / "month.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(n_rows, n_features))
    for start in range(0, n_rows, 25_000):
        X[start : start + 25_000] = rng.normal(size=(25_000, n_features))
    X.flush()
    y = (X[:, 0] > 0).astype(np.int64)
    del X
    np.save(tmp_path / "y.npy", y)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    result = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(path), str(tmp_path / "y.npy")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    before, peak, after = map(int, result.stdout.split()[-3:])
    month_bytes = n_rows * n_features * 4
    # predict_proba's (n_rows, 2) float32 output is 2 MB of the allowance.
    assert peak - before < 0.25 * month_bytes, (before, peak, after)

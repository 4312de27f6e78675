"""Months from files: a folder of .npy months, and Parquet streamed into one."""

import datetime
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from sklearn_cf import ContinualClassifier
from sklearn_cf.datasets import MonthFiles, load_table, months_from_parquet
from sklearn_cf.datasets import _files
from sklearn_cf.datasets._table import MonthOrderWarning

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _save_month(folder, name, X, y):
    os.makedirs(folder / name)
    np.save(folder / name / "X.npy", X)
    np.save(folder / name / "y.npy", y)


def _month_data(seed, n=40, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] + 0.3 * seed * X[:, 1] > 0).astype(np.int64)


def _frame(months, seed=0):
    """Rows whose months come in the order given (interleaved), mixed column types."""
    rng = np.random.default_rng(seed)
    n = len(months)
    return pd.DataFrame({
        "size": rng.normal(size=n).astype(np.float64),
        "month": months,
        "count": rng.integers(0, 1000, size=n).astype(np.int32),
        "packed": rng.random(n) < 0.5,
        "entropy": rng.random(n).astype(np.float32),
        "label": np.where(rng.random(n) < 0.5, "benign", "malware"),
    })


def _write(frame, path, row_group_size=7):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=row_group_size)
    return path


def _oracle(frame, labels):
    """pandas: each month's rows in file order, features as float32."""
    features = ["size", "count", "packed", "entropy"]
    out = {}
    for label in sorted(set(labels)):
        rows = frame[np.asarray(labels) == label]
        out[label] = (rows[features].to_numpy(dtype=np.float32), rows["label"].to_numpy())
    return out


# ---------------------------------------------------------------------------
# A folder of .npy months
# ---------------------------------------------------------------------------
def test_npy_folder_yields_memmaps_in_time_order(tmp_path):
    names = ["2024-10", "2024-9", "2023-12", "2024-1"]  # text order: 2023-12, 2024-1, 2024-10
    data = {name: _month_data(i) for i, name in enumerate(names)}
    for name, (X, y) in data.items():
        _save_month(tmp_path, name, X, y)
    (tmp_path / "notes.txt").write_text("ignored")
    os.makedirs(tmp_path / ".hidden")

    files = MonthFiles(tmp_path)
    assert files.months == ["2023-12", "2024-01", "2024-09", "2024-10"]
    assert len(files) == 4 and files.n_features == 5
    seen = []
    for month, X, y in files:
        assert isinstance(X, np.memmap) and isinstance(y, np.memmap)
        assert X.dtype == np.float32 and not X.flags.writeable
        name = {"2023-12": "2023-12", "2024-01": "2024-1", "2024-09": "2024-9",
                "2024-10": "2024-10"}[month]
        np.testing.assert_array_equal(X, data[name][0])
        np.testing.assert_array_equal(y, data[name][1])
        seen.append(month)
    assert seen == files.months
    assert files.n_rows == {m: 40 for m in files.months}


def test_npy_folder_integer_and_text_names(tmp_path):
    for name in ["10", "9", "11"]:
        _save_month(tmp_path / "ints", name, *_month_data(0))
    assert MonthFiles(tmp_path / "ints").months == [9, 10, 11]
    for name in ["m9", "m10"]:
        _save_month(tmp_path / "text", name, *_month_data(0))
    with pytest.warns(MonthOrderWarning, match="ordered as text: m10, m9"):
        assert MonthFiles(tmp_path / "text").months == ["m10", "m9"]


def test_npy_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MonthFiles(tmp_path / "nope")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="no month sub-folders"):
        MonthFiles(tmp_path / "empty")

    X, y = _month_data(0)
    _save_month(tmp_path / "a", "2024-01", X, y)
    os.makedirs(tmp_path / "a" / "2024-02")
    np.save(tmp_path / "a" / "2024-02" / "X.npy", X)
    with pytest.raises(FileNotFoundError, match="y.npy"):
        MonthFiles(tmp_path / "a")

    _save_month(tmp_path / "b", "2024-01", X, y)
    _save_month(tmp_path / "b", "2024-02", X[:, :3], y)
    with pytest.raises(ValueError, match="'2024-02' has 3 features but month '2024-01' has 5"):
        MonthFiles(tmp_path / "b")

    _save_month(tmp_path / "c", "2024-01", X, y[:-1])
    with pytest.raises(ValueError, match="one label per row"):
        MonthFiles(tmp_path / "c")

    _save_month(tmp_path / "d", "2024-09", X, y)
    _save_month(tmp_path / "d", "2024-9", X, y)
    with pytest.raises(ValueError, match="both month '2024-09'"):
        MonthFiles(tmp_path / "d")

    _save_month(tmp_path / "e", "2024-01", X, y)
    with pytest.raises(KeyError, match="Did you mean '2024-01'"):
        MonthFiles(tmp_path / "e", mmap_mode=None)["2024-1"]


def test_training_from_files_equals_training_from_memory(tmp_path):
    data = [_month_data(i, n=60) for i in range(3)]
    for i, (X, y) in enumerate(data):
        _save_month(tmp_path, f"2024-0{i + 1}", X, y)
    X_test = np.random.default_rng(9).normal(size=(30, 5)).astype(np.float32)

    from_files = ContinualClassifier(max_epochs=1, hidden_units=(8,), random_state=0)
    with warnings.catch_warnings():
        # torch warns once that a read-only memmap becomes a read-only tensor
        warnings.filterwarnings("ignore", message=".*not writable.*")
        for month, X, y in MonthFiles(tmp_path):
            from_files.partial_fit_month(X, y, month=month)
    in_memory = ContinualClassifier(max_epochs=1, hidden_units=(8,), random_state=0)
    for i, (X, y) in enumerate(data):
        in_memory.partial_fit_month(X, y, month=f"2024-0{i + 1}")

    np.testing.assert_array_equal(from_files.predict(X_test), in_memory.predict(X_test))
    np.testing.assert_allclose(from_files.predict_proba(X_test),
                               in_memory.predict_proba(X_test), rtol=0, atol=1e-7)


# ---------------------------------------------------------------------------
# Parquet, streamed once into the .npy layout
# ---------------------------------------------------------------------------
MONTH_KINDS = {
    # raw value -> the label load_table gives it
    "text dates": (["2024-10", "2024-9", "2024-11"], ["2024-10", "2024-09", "2024-11"]),
    "integers": ([10, 9, 11], [10, 9, 11]),
    "timestamps": ([datetime.datetime(2024, 10, 3), datetime.datetime(2024, 9, 30, 23),
                    datetime.datetime(2024, 11, 1)], ["2024-10", "2024-09", "2024-11"]),
}


@pytest.mark.parametrize("kind", list(MONTH_KINDS))
def test_parquet_cache_equals_pandas_oracle(kind, tmp_path):
    raw, labels = MONTH_KINDS[kind]
    # 60 rows, months interleaved and out of order: every month is spread over
    # all 9 row groups, and batches of 5 rows cut across row groups.
    picks = np.random.default_rng(1).integers(0, 3, size=60)
    frame = _frame([raw[k] for k in picks])
    path = _write(frame, tmp_path / "stream.parquet")
    assert pq.ParquetFile(path).metadata.num_row_groups == 9

    files = months_from_parquet(path, month_column="month", target="label",
                                batch_size=5, progress=False)
    month_of_row = [labels[k] for k in picks]
    oracle = _oracle(pd.read_parquet(path), month_of_row)
    assert files.months == sorted(oracle)
    assert files.feature_names == ["size", "count", "packed", "entropy"]
    assert files.path == str(tmp_path / "stream.parquet.sklearn_cf_cache")
    for month, X, y in files:
        assert isinstance(X, np.memmap) and X.dtype == np.float32
        np.testing.assert_array_equal(X, oracle[month][0])
        np.testing.assert_array_equal(y, oracle[month][1])
        assert files.n_rows[month] == len(oracle[month][1])

    # Same labels and rows as load_table, which reads the file whole.
    X_all, y_all, months_all = load_table(path, month_column="month", target="label")
    for month, X, y in files:
        np.testing.assert_array_equal(X, X_all[months_all == month])
        np.testing.assert_array_equal(y, y_all[months_all == month])


def test_parquet_folder_and_chosen_features(tmp_path):
    frame = _frame(["2024-02", "2024-01"] * 15)
    os.makedirs(tmp_path / "parts")
    _write(frame.iloc[:20], tmp_path / "parts" / "part-0.parquet", row_group_size=4)
    _write(frame.iloc[20:], tmp_path / "parts" / "part-1.parquet", row_group_size=4)
    files = months_from_parquet(tmp_path / "parts", month_column="month", target="label",
                                features=["entropy", "size"], progress=False)
    assert files.path == str(tmp_path / "parts.sklearn_cf_cache")
    for month, X, y in files:
        rows = frame[frame["month"] == month]
        np.testing.assert_array_equal(X, rows[["entropy", "size"]].to_numpy(np.float32))
        np.testing.assert_array_equal(y, rows["label"].to_numpy())


def test_parquet_cache_is_reused_then_rebuilt_when_the_source_changes(tmp_path, monkeypatch):
    path = _write(_frame(["2024-01", "2024-02"] * 10), tmp_path / "s.parquet")
    calls = []
    real = _files._convert
    monkeypatch.setattr(_files, "_convert", lambda *a, **k: calls.append(1) or real(*a, **k))
    kwargs = dict(month_column="month", target="label", progress=False)

    first = months_from_parquet(path, **kwargs)
    assert len(calls) == 1
    again = months_from_parquet(path, **kwargs)
    assert len(calls) == 1  # reused: no conversion
    np.testing.assert_array_equal(again["2024-01"][0], first["2024-01"][0])

    months_from_parquet(path, features=["size"], **kwargs)  # other columns: rebuilt
    assert len(calls) == 2

    new = _frame(["2024-01", "2024-02", "2024-03"] * 10, seed=5)
    _write(new, path)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    rebuilt = months_from_parquet(path, **kwargs)
    assert len(calls) == 3
    assert rebuilt.months == ["2024-01", "2024-02", "2024-03"]
    np.testing.assert_array_equal(
        rebuilt["2024-03"][1], new.loc[new["month"] == "2024-03", "label"].to_numpy())
    assert sorted(os.listdir(tmp_path)) == ["s.parquet", "s.parquet.sklearn_cf_cache"]


def test_parquet_cache_dir_is_chosen_and_never_clobbers_other_folders(tmp_path):
    path = _write(_frame(["2024-01", "2024-02"] * 10), tmp_path / "s.parquet")
    files = months_from_parquet(path, month_column="month", target="label",
                                cache_dir=tmp_path / "cache" / "here", progress=False)
    assert files.path == str(tmp_path / "cache" / "here")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a sklearn_cf cache"):
        months_from_parquet(path, month_column="month", target="label",
                            cache_dir=tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep"


def test_parquet_text_feature_is_a_clear_error(tmp_path):
    frame = _frame(["2024-01", "2024-02"] * 5)
    frame["packer"] = "upx"
    path = _write(frame, tmp_path / "s.parquet")
    with pytest.raises(ValueError, match=r"'packer' \(\w*string\).*not numeric.*one-hot"):
        months_from_parquet(path, month_column="month", target="label", progress=False)
    files = months_from_parquet(path, month_column="month", target="label", progress=False,
                                features=["size", "count"])
    assert files.n_features == 2


def test_parquet_errors_leave_no_cache_behind(tmp_path):
    frame = _frame(["2024-01", "2024-02"] * 10)
    frame.loc[13, "size"] = np.nan
    path = _write(frame, tmp_path / "s.parquet")
    with pytest.raises(ValueError, match="'size'.*missing values"):
        months_from_parquet(path, month_column="month", target="label", progress=False)
    assert os.listdir(tmp_path) == ["s.parquet"]
    nan = tmp_path / "nan" / "n.parquet"
    nan.parent.mkdir()
    pq.write_table(pa.table({"month": [1, 2, 1, 2], "x": [0.5, float("nan"), 1.0, 2.0],
                             "label": [0, 1, 1, 0]}), nan)
    with pytest.raises(ValueError, match="'x'.*NaN"):
        months_from_parquet(nan, month_column="month", target="label", progress=False)
    assert os.listdir(nan.parent) == ["n.parquet"]
    with pytest.raises(ValueError, match="month column 'mnth'.*Did you mean 'month'"):
        months_from_parquet(path, month_column="mnth", target="label", progress=False)
    one = _frame(["2024-01", "2024-02"] * 3).assign(label="benign")
    with pytest.raises(ValueError, match="single class"):
        months_from_parquet(_write(one, tmp_path / "one.parquet"), month_column="month",
                            target="label", progress=False)
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        months_from_parquet(tmp_path / "nope.parquet", month_column="month", target="label")


def test_parquet_disk_space_is_checked_before_writing(tmp_path, monkeypatch):
    path = _write(_frame(["2024-01", "2024-02"] * 10), tmp_path / "s.parquet")

    class Usage:
        free = 100

    monkeypatch.setattr(_files.shutil, "disk_usage", lambda p: Usage)
    with pytest.raises(OSError, match="needs .* GiB but .* free"):
        months_from_parquet(path, month_column="month", target="label", progress=False)
    assert os.listdir(tmp_path) == ["s.parquet"]


def test_parquet_progress_bar_while_converting_only(tmp_path, capsys):
    path = _write(_frame(["2024-01", "2024-02"] * 10), tmp_path / "s.parquet")
    months_from_parquet(path, month_column="month", target="label")
    assert "converting" in capsys.readouterr().err
    months_from_parquet(path, month_column="month", target="label")  # reused
    assert capsys.readouterr().err == ""


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = _write(_frame(["2024-01", "2024-02"] * 5), tmp_path / "s.parquet")
    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.compute"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(ImportError, match=r'pip install "sklearn-cf\[parquet\]"'):
        months_from_parquet(path, month_column="month", target="label")


def test_importing_sklearn_cf_does_not_need_pyarrow():
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "import sklearn_cf, sklearn_cf.datasets, sklearn_cf.compare, sklearn_cf.cli\n"
            "print(sklearn_cf.datasets.MonthFiles.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "MonthFiles"

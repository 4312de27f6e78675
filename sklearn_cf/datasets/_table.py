"""The user's own CSV or Parquet file: :func:`read_table`, :func:`load_table`.

One reader for every table the package reads: a stream with a month column
(:func:`load_table`, ``sklearn-cf compare --data``), the same with a group
column (:func:`~sklearn_cf.datasets.load_stream` with ``group_column``), and
a single month without one (``sklearn-cf update``). :func:`parse_month`
reads one month label as a month column's values are read.
"""

import datetime
import difflib
import importlib.util
import os
import re
import warnings

import numpy as np
from sklearn.utils import Bunch

__all__ = ["MonthOrderWarning", "load_table", "parse_month", "read_table"]

#: A text column with more distinct values than this is refused rather than
#: one-hot encoded (an identifier, a free-text field, a hash...).
MAX_CATEGORIES = 100

#: Formats a text month column is read with, tried in order on each distinct
#: value. Day-first and month-first dates (05/09/2024) are left out: they
#: cannot be told apart.
MONTH_FORMATS = (
    "%Y-%m", "%Y/%m", "%Y.%m",            # 2024-09, 2024-9, 2024/09
    "%Y-%m-%d", "%Y/%m/%d",               # 2024-09-15
    "%m/%Y", "%m-%Y", "%m.%Y",            # 09/2024, 9/2024
    "%b %Y", "%B %Y", "%b-%Y", "%B-%Y",   # Sep 2024, September 2024, Sep-2024
    "%Y %b", "%Y-%b",                     # 2024 Sep, 2024-Sep
)

_INTEGER = re.compile(r"[+-]?\d+")

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def _import_pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with the extras
        raise ImportError(
            "load_table needs pandas: pip install pandas (or pip install \"sklearn-cf[flights]\")."
        ) from None
    return pd


def _read(path, pd):
    lower = path.lower()
    if lower.endswith(_PARQUET_SUFFIXES):
        if importlib.util.find_spec("pyarrow") is None and (
            importlib.util.find_spec("fastparquet") is None
        ):
            raise ImportError(
                f"Reading the Parquet file {path!r} needs the package 'pyarrow', which "
                "is not installed: pip install \"sklearn-cf[parquet]\" (or pip install pyarrow)."
            )
        reader = pd.read_parquet
    elif lower.endswith(_CSV_SUFFIXES):
        sep = "\t" if lower.endswith(".tsv") else ","
        def reader(p):
            return pd.read_csv(p, sep=sep)
    else:
        raise ValueError(
            f"Cannot tell the format of {path!r} from its name: use a .csv (also "
            ".csv.gz, .tsv) or a .parquet file."
        )
    try:
        frame = reader(path)
    except ImportError:
        raise
    except Exception as exc:  # parser errors, bad encodings, corrupt files...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"Could not read {path!r} as a table: {first}") from exc
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"The file {path!r} holds no rows or no columns.")
    return frame


def _check_column(frame, name, role, path):
    if name in frame.columns:
        return
    columns = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(str(name), columns, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(map(repr, columns[:20])) + (" ..." if len(columns) > 20 else "")
    raise ValueError(
        f"The {role} column {name!r} is not in {path!r}.{hint} Columns: {shown}."
    )


class MonthOrderWarning(UserWarning):
    """A month column was read as neither numbers nor dates, so its months
    are ordered as text (where ``2024-10`` comes before ``2024-9``)."""


def _month_of_text(text):
    """``"2024-9"`` -> ``"2024-09"``, ``"Sep 2024"`` -> ``"2024-09"``; None if no date."""
    text = text.strip()
    for fmt in MONTH_FORMATS:
        try:
            when = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return f"{when.year:04d}-{when.month:02d}"
    try:  # ISO 8601 date-times: 2024-09-15T08:30:00, 2024-09-15 08:30+02:00
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return f"{when.year:04d}-{when.month:02d}"


def parse_month(text):
    """One month label from text, read as a month column's values are.

    An integer (``"7"`` -> 7), a date reduced to its calendar month
    (``"2024-9"``, ``"Sep 2024"``, ``"2024-09-15"`` -> ``"2024-09"``, see
    :data:`MONTH_FORMATS`), or else the text itself, stripped. What
    ``sklearn-cf update --month`` gives the month it trains.

    Parameters
    ----------
    text : str

    Returns
    -------
    int or str

    Examples
    --------
    >>> from sklearn_cf.datasets import parse_month
    >>> parse_month(" 7 "), parse_month("Sep 2024"), parse_month("2024-9"), parse_month("Q3")
    (7, '2024-09', '2024-09', 'Q3')
    """
    text = str(text).strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    return _month_of_text(text) or text


def _month_labels(months, column, pd, stacklevel=3):
    """The month column as labels whose sorted order is the order of time.

    Numbers stay numbers. Dates -- a datetime column, date objects, or text
    in one of :data:`MONTH_FORMATS` or ISO 8601 -- become ``"YYYY-MM"``
    strings (a date is reduced to its calendar month), which sort in time
    order. Text of integers becomes integers. Anything else stays text,
    sorted as text, with a :class:`MonthOrderWarning` naming the column and
    an example value.
    """
    if months.dtype.kind == "M" or isinstance(months.dtype, pd.PeriodDtype):
        return months.dt.strftime("%Y-%m").to_numpy().astype(str)
    if months.dtype.kind in "biuf":
        return months.to_numpy()
    distinct = pd.unique(months.to_numpy(dtype=object))
    if all(isinstance(v, datetime.date) for v in distinct):  # e.g. a Parquet date column
        mapping = {v: f"{v.year:04d}-{v.month:02d}" for v in distinct}
        return months.map(mapping).to_numpy().astype(str)
    texts = {v: str(v) for v in distinct}
    if all(_INTEGER.fullmatch(t.strip()) for t in texts.values()):
        return months.map({v: int(t) for v, t in texts.items()}).to_numpy().astype(np.int64)
    mapping = {}
    for value, text in texts.items():
        mapping[value] = _month_of_text(text)
        if mapping[value] is None:
            order = sorted(texts.values())
            shown = ", ".join(order[:4]) + (", ..." if len(order) > 4 else "")
            warnings.warn(
                f"The month column {column!r} holds values that are neither numbers nor "
                f"dates (e.g. {text!r}), so its months are ordered as text: {shown}. If "
                "that is not their order in time, write them as numbers or as dates such "
                "as 2024-09.",
                MonthOrderWarning,
                stacklevel=stacklevel,
            )
            return months.to_numpy().astype(str)
    return months.map(mapping).to_numpy().astype(str)


def _encode_features(features, pd, max_categories):
    """Numeric and boolean columns as they are; text/categorical one-hot."""
    blocks, names = [], []
    for column in features.columns:
        values = features[column]
        kind = values.dtype.kind
        if kind in "biuf":
            if values.isna().any():
                raise ValueError(
                    f"Feature column {column!r} has {int(values.isna().sum())} missing "
                    "value(s); fill them in or drop those rows before loading."
                )
            blocks.append(values.to_numpy(dtype=np.float32)[:, None])
            names.append(str(column))
        elif kind in "mM":
            raise ValueError(
                f"Feature column {column!r} holds dates or durations; convert it to a "
                "number (e.g. day of week, days since an event) or drop it."
            )
        else:  # object, string, category: one-hot, missing -> all zeros
            as_text = values.astype("string")
            levels = sorted(as_text.dropna().unique().tolist())
            if len(levels) > max_categories:
                raise ValueError(
                    f"Feature column {column!r} is text with {len(levels)} distinct "
                    f"values (more than {max_categories}), which looks like an "
                    "identifier; drop it or encode it as numbers."
                )
            filled = as_text.fillna("\0missing").to_numpy()
            for level in levels:
                blocks.append((filled == level).astype(np.float32)[:, None])
                names.append(f"{column}={level}")
    if not blocks:
        raise ValueError("The file has no feature columns besides the month and the target.")
    return np.hstack(blocks), names


def _check_path(path):
    """A CSV or Parquet file that exists (not a folder)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}.")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory; give a CSV or Parquet file.")


def target_values(frame, target):
    """The target column as an array (text labels as str), refusing missing
    labels."""
    labels = frame[target]
    if labels.isna().any():
        raise ValueError(
            f"The target column {target!r} has {int(labels.isna().sum())} missing "
            "value(s); drop unlabelled rows."
        )
    y = labels.to_numpy()
    return y.astype(str) if y.dtype == object else y


def read_table(path, *, target, month_column=None, group_column=None,
               max_categories=MAX_CATEGORIES, encode=True):
    """Read a CSV or Parquet table: encoded features, labels, and the month
    and group of each row when asked for.

    Every column other than ``target``, ``month_column`` and
    ``group_column`` is a feature, encoded as :func:`load_table` says
    (numbers as float32, text one-hot). The one reader behind
    :func:`load_table`, :func:`~sklearn_cf.datasets.load_stream` and
    ``sklearn-cf update``.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` file (also ``.csv.gz``, ``.tsv``...) or a ``.parquet`` file
        (needs ``pyarrow``).
    target : str
        The column holding the class label.
    month_column : str or None, default=None
        The column holding each row's month, read as :func:`load_table`
        reads it; no row may lack one. A table with a month column holds a
        stream, which needs two classes or more. None: the table is one
        month (``months`` is None), which may hold a single class.
    group_column : str or None, default=None
        A column of per-row groups (e.g. malware families), not a feature;
        a missing value is the group ``"(none)"``. Needs ``month_column``.
    max_categories : int, default=100
        A text column with more distinct values is refused (it looks like an
        identifier) instead of being one-hot encoded.
    encode : bool, default=True
        False: ``data`` is the feature columns as read (a DataFrame, index
        0..n-1, nothing encoded or checked), for a model that encodes its own
        rows (``ContinualClassifier(preprocessor=TableEncoder())``, what
        ``sklearn-cf update`` builds), and ``feature_names`` their names.

    Returns
    -------
    table : :class:`~sklearn.utils.Bunch`
        ``data``: ndarray of shape (n_samples, n_features), float32;
        ``target``: ndarray of shape (n_samples,); ``months`` and
        ``groups``: ndarray of shape (n_samples,), or None when their column
        was not given; ``feature_names``: list of str, the encoded columns.

    Raises
    ------
    FileNotFoundError, ImportError, ValueError
        As :func:`load_table`.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_cf.datasets import read_table
    >>> path = os.path.join(tempfile.mkdtemp(), "month.csv")
    >>> _ = open(path, "w").write("size,packer,family,label\\n1.5,upx,zbot,1\\n0.2,none,,0\\n")
    >>> table = read_table(path, target="label")
    >>> table.data.shape, table.feature_names, table.months
    ((2, 4), ['size', 'packer=none', 'packer=upx', 'family=zbot'], None)
    """
    return _read_table(path, target=target, month_column=month_column,
                       group_column=group_column, max_categories=max_categories,
                       encode=encode)


def _read_table(path, *, target, month_column=None, group_column=None,
                max_categories=MAX_CATEGORIES, stacklevel=4, encode=True):
    """:func:`read_table`; ``stacklevel`` points a :class:`MonthOrderWarning`
    at the caller of the public function (4: one level above this one)."""
    pd = _import_pandas()
    path = os.fspath(path)
    _check_path(path)
    if group_column is not None:
        names = (month_column, target, group_column)
        if month_column is None:
            raise ValueError(
                f"group_column={group_column!r} needs month_column: groups are "
                "scored month by month."
            )
        if len(set(names)) < 3:
            raise ValueError(
                f"month_column, target and group_column must be three different columns; "
                f"got {names}."
            )
    elif month_column == target:
        raise ValueError(f"month_column and target are both {target!r}; they must differ.")
    frame = _read(path, pd)
    roles = [(month_column, "month"), (target, "target"), (group_column, "group")]
    roles = [(name, role) for name, role in roles if name is not None]
    for name, role in roles:
        _check_column(frame, name, role, path)

    if month_column is not None and frame[month_column].isna().any():
        raise ValueError(
            f"The month column {month_column!r} has {int(frame[month_column].isna().sum())} "
            "missing value(s); every row needs a month."
        )
    y = target_values(frame, target)
    if month_column is not None:
        classes = frame[target].unique()
        if len(classes) < 2:
            raise ValueError(
                f"The target column {target!r} holds a single class ({classes[0]!r}); a "
                "classifier needs at least two."
            )
    groups = None
    if group_column is not None:
        groups = frame[group_column]
        if groups.isna().any():
            groups = groups.astype(str).where(groups.notna(), "(none)")
        groups = groups.to_numpy()

    features = frame.drop(columns=[name for name, _ in roles])
    if encode:
        X, names = _encode_features(features, pd, max_categories)
    else:
        if features.shape[1] == 0:
            raise ValueError("The file has no feature columns besides the month and the target.")
        X = features.reset_index(drop=True)
        names = [str(c) for c in X.columns]
    months = None
    if month_column is not None:
        months = _month_labels(frame[month_column], month_column, pd, stacklevel=stacklevel)
    return Bunch(data=X, target=y, months=months, groups=groups, feature_names=names)


def load_table(path, *, month_column, target, as_frame=False,
               max_categories=MAX_CATEGORIES):
    """Load a monthly stream from a CSV or Parquet file.

    Every column other than ``month_column`` and ``target`` is a feature:
    numeric and boolean columns are used as they are (float32); text and
    categorical columns are one-hot encoded, one 0/1 column per distinct
    value (named ``column=value``; a missing value gives all zeros). The
    encoding is fitted on the whole file, so every month has the same
    columns.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` file (also ``.csv.gz``, ``.tsv``...) or a ``.parquet`` file
        (needs ``pyarrow``).
    month_column : str
        The column holding each row's month: numbers (ordered as numbers)
        or dates (ordered in time), whether a datetime column or text such as
        ``2024-09``, ``2024-9``, ``2024-09-15``, ``09/2024``, ``Sep 2024``
        (see :data:`MONTH_FORMATS`; ISO 8601 date-times too). Dates become
        ``"YYYY-MM"`` labels, a date standing for its calendar month. Any
        other text is ordered as text, with a :class:`MonthOrderWarning`
        that names the column and an example value.
    target : str
        The column holding the class label (two or more classes).
    as_frame : bool, default=False
        Return ``X`` as a pandas DataFrame with the encoded column names.
    max_categories : int, default=100
        A text column with more distinct values is refused (it looks like an
        identifier) instead of being one-hot encoded.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32, or DataFrame
    y : ndarray of shape (n_samples,)
        The target column's values.
    months : ndarray of shape (n_samples,)
        The month of each row: the column's numbers, ``"YYYY-MM"`` strings
        for dates, or else the column's text.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        For a Parquet file without ``pyarrow``.
    ValueError
        For an unreadable file or unknown format, a missing column (naming
        the closest column names), missing months or labels, missing feature
        values, a date or identifier-like feature column, or a target with a
        single class.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_cf.datasets import load_table
    >>> path = os.path.join(tempfile.mkdtemp(), "stream.csv")
    >>> _ = open(path, "w").write(
    ...     "month,size,packer,label\\n"
    ...     "2024-01,1.5,upx,1\\n2024-01,0.2,none,0\\n2024-02,2.5,upx,1\\n2024-02,0.1,,0\\n")
    >>> X, y, months = load_table(path, month_column="month", target="label", as_frame=True)
    >>> list(X.columns), X.shape
    (['size', 'packer=none', 'packer=upx'], (4, 3))
    >>> y.tolist(), months.tolist()
    ([1, 0, 1, 0], ['2024-01', '2024-01', '2024-02', '2024-02'])
    >>> _ = open(path, "w").write("month,size,label\\n11/2024,1.5,1\\nSep 2024,0.2,0\\n")
    >>> load_table(path, month_column="month", target="label")[2].tolist()
    ['2024-11', '2024-09']
    >>> load_table(path, month_column="mnth", target="label")
    Traceback (most recent call last):
    ...
    ValueError: The month column 'mnth' is not in ... Did you mean 'month'? ...
    """
    table = _read_table(path, month_column=month_column, target=target,
                        max_categories=max_categories)
    X = table.data
    if as_frame:
        X = _import_pandas().DataFrame(X, columns=table.feature_names)
    return X, table.target, table.months

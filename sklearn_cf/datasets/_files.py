"""Months stored as files, read without loading a month whole.

Two sources, one layout:

* a folder of monthly ``.npy`` files, ``<folder>/<month>/X.npy`` and
  ``<folder>/<month>/y.npy``, opened memory-mapped by :class:`MonthFiles`;
* Parquet (a file, or a folder of Parquet files) with a month column and a
  target column, converted once, a batch of rows at a time, into a cache in
  that layout by :func:`months_from_parquet` (needs ``pyarrow``: the
  ``[parquet]`` extra).

See docs/data.md.
"""

import datetime
import difflib
import json
import numbers
import os
import re
import shutil
import tempfile
import warnings

import numpy as np

from .._compat import to_python
from ._table import _INTEGER, MonthOrderWarning, _month_of_text

__all__ = ["MonthFiles", "months_from_parquet"]

#: Name of the file, at the top of a months folder, that lists the months in
#: order with their sub-folders (written by :func:`months_from_parquet`;
#: optional in a folder of your own).
MANIFEST = "months.json"

#: Version of the cache layout; a cache of another version is rebuilt.
CACHE_FORMAT = 1

_CACHE_SUFFIX = ".sklearn_cf_cache"
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_EXTRA_HINT = 'pip install "sklearn-cf[parquet]"'


class ReadWholeWarning(UserWarning):
    """A Parquet file cannot be streamed (it has text feature columns), so
    ``sklearn-cf compare`` reads it whole into memory and one-hot encodes it."""


# ---------------------------------------------------------------------------
# Month labels
# ---------------------------------------------------------------------------
def _month_label_map(values, where):
    """Map each distinct raw month value to a label whose sort order is time.

    The rules of :func:`~sklearn_cf.datasets.load_table`'s month column,
    applied to a handful of distinct values: numbers stay numbers; dates and
    date-like text become ``"YYYY-MM"``; text of integers becomes integers;
    any other text stays text, with a :class:`MonthOrderWarning`.

    Parameters
    ----------
    values : sequence
        Distinct raw values (Python objects).
    where : str
        What holds them, for the warning: "The month column 'when'".

    Returns
    -------
    dict
        raw value -> label (int, float or str).
    """
    values = list(values)
    if all(isinstance(v, (bool, numbers.Integral)) for v in values):
        return {v: int(v) for v in values}
    if all(isinstance(v, numbers.Real) for v in values):
        return {v: float(v) for v in values}
    if all(isinstance(v, datetime.date) for v in values):
        return {v: f"{v.year:04d}-{v.month:02d}" for v in values}
    texts = {v: str(v).strip() for v in values}
    if all(_INTEGER.fullmatch(t) for t in texts.values()):
        return {v: int(t) for v, t in texts.items()}
    mapping = {}
    for value, text in texts.items():
        mapping[value] = _month_of_text(text)
        if mapping[value] is None:
            order = sorted(str(v) for v in values)
            shown = ", ".join(order[:4]) + (", ..." if len(order) > 4 else "")
            warnings.warn(
                f"{where} holds values that are neither numbers nor dates (e.g. "
                f"{text!r}), so its months are ordered as text: {shown}. If that is "
                "not their order in time, write them as numbers or as dates such as "
                "2024-09.",
                MonthOrderWarning,
                stacklevel=4,
            )
            return {v: str(v) for v in values}
    return mapping


# ---------------------------------------------------------------------------
# A folder of monthly .npy files
# ---------------------------------------------------------------------------
def _npy_header(path):
    """(shape, dtype) of a ``.npy`` file, reading its header only."""
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            reader = {(1, 0): np.lib.format.read_array_header_1_0,
                      (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if reader is None:  # version 3.0: utf-8 field names, rare
                fh.seek(0)
                array = np.load(fh, mmap_mode=None, allow_pickle=False)
                return array.shape, array.dtype
            shape, fortran, dtype = reader(fh)
        except ValueError as exc:
            raise ValueError(f"{path!r} is not a .npy file: {exc}") from None
    if fortran and len(shape) > 1:
        raise ValueError(
            f"{path!r} is stored in Fortran (column-major) order, so one row is not "
            "contiguous; save it with np.save(path, np.ascontiguousarray(X))."
        )
    return shape, dtype


class MonthFiles:
    """Months stored as ``.npy`` files, opened memory-mapped one at a time.

    The layout is one sub-folder per month holding the month's features and
    labels::

        <path>/2024-09/X.npy    features, shape (n_rows, n_features)
        <path>/2024-09/y.npy    labels, shape (n_rows,)
        <path>/2024-10/X.npy
        ...

    Sub-folder names are the month labels, read like a month column of
    :func:`~sklearn_cf.datasets.load_table`: integers sort as numbers (``9``
    before ``10``), dates (``2024-09``, ``2024-9``, ``Sep 2024``...) become
    ``"YYYY-MM"`` labels sorted in time, and any other name is sorted as
    text with a :class:`~sklearn_cf.datasets._table.MonthOrderWarning`.
    Names starting with ``.`` or ``_`` are skipped. A ``months.json`` file at
    the top (written by :func:`months_from_parquet`) gives the labels, their
    order and their sub-folders explicitly instead.

    Only the ``.npy`` headers are read when the object is made: every month
    is checked (``X`` 2-d, ``y`` 1-d with as many rows, the same number of
    features in every month) before anything is trained. A month's arrays
    are opened when it is asked for, with ``np.load(mmap_mode=...)``: with
    the default ``"r"``, ``X`` is a read-only :class:`numpy.memmap` of the
    stored dtype, whose pages the operating system reads on demand and may
    drop again (page cache), so a month larger than memory can be opened.

    Parameters
    ----------
    path : str or path-like
        The folder.
    mmap_mode : {"r", "c", None}, default="r"
        ``np.load``'s mode: ``"r"`` read-only memory map, ``"c"`` copy on
        write (writable, changes never reach the file), None load each month
        into memory.

    Attributes
    ----------
    path : str
    months : list
        The month labels, in time order.
    n_rows : dict
        Month label -> number of rows.
    n_features : int
    feature_names : list of str or None
        The feature names recorded in ``months.json``, if any.

    See Also
    --------
    months_from_parquet : convert Parquet to this layout, once.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_cf.datasets import MonthFiles
    >>> folder = tempfile.mkdtemp()
    >>> for month in ["2024-10", "2024-9", "2024-11"]:
    ...     os.makedirs(os.path.join(folder, month))
    ...     X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    ...     np.save(os.path.join(folder, month, "X.npy"), X)
    ...     np.save(os.path.join(folder, month, "y.npy"), (X[:, 0] > 0).astype(int))
    >>> files = MonthFiles(folder)
    >>> files.months, len(files), files.n_features
    (['2024-09', '2024-10', '2024-11'], 3, 3)
    >>> month, X, y = next(iter(files))
    >>> month, type(X).__name__, X.dtype, X.shape
    ('2024-09', 'memmap', dtype('float32'), (50, 3))

    Training month by month (the first month is the base fit):

    >>> from sklearn_cf import ContinualClassifier
    >>> clf = ContinualClassifier(max_epochs=1, hidden_units=(8,), random_state=0)
    >>> for month, X, y in files:
    ...     clf = clf.partial_fit_month(X, y, month=month)
    >>> clf.predict(files["2024-11"][0][:5]).shape
    (5,)
    """

    def __init__(self, path, *, mmap_mode="r"):
        if mmap_mode not in ("r", "c", None):
            raise ValueError(f"mmap_mode must be 'r', 'c' or None, got {mmap_mode!r}.")
        self.path = os.fspath(path)
        self.mmap_mode = mmap_mode
        if not os.path.isdir(self.path):
            what = "is not a folder" if os.path.exists(self.path) else "does not exist"
            raise FileNotFoundError(
                f"{self.path!r} {what}; give a folder with one sub-folder per month "
                "holding X.npy and y.npy."
            )
        manifest = os.path.join(self.path, MANIFEST)
        self.feature_names = None
        if os.path.isfile(manifest):
            self._dirs = self._from_manifest(manifest)
        else:
            self._dirs = self._from_names()
        self.months = list(self._dirs)
        self.n_rows = {}
        self.n_features = None
        for month, name in self._dirs.items():
            self.n_rows[month] = self._check_month(month, name)

    def _from_manifest(self, manifest):
        try:
            with open(manifest, encoding="utf-8") as fh:
                content = json.load(fh)
            entries = content["months"]
            dirs = {e["month"]: e["dir"] for e in entries}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{manifest!r} is not a months list ({type(exc).__name__}: {exc}); "
                'expected {"months": [{"month": ..., "dir": ...}, ...]}.'
            ) from None
        if len(dirs) != len(entries):
            raise ValueError(f"{manifest!r} lists a month twice.")
        names = content.get("features")
        self.feature_names = list(names) if names is not None else None
        return dirs

    def _from_names(self):
        names = sorted(
            n for n in os.listdir(self.path)
            if not n.startswith((".", "_")) and os.path.isdir(os.path.join(self.path, n))
        )
        if not names:
            raise ValueError(
                f"{self.path!r} has no month sub-folders; expected "
                f"{os.path.join(self.path, '<month>', 'X.npy')} and y.npy for every month."
            )
        labels = _month_label_map(names, f"The month folders of {self.path!r}")
        dirs = {}
        for name in names:
            label = labels[name]
            if label in dirs:
                raise ValueError(
                    f"The folders {dirs[label]!r} and {name!r} of {self.path!r} are "
                    f"both month {label!r}; keep one."
                )
            dirs[label] = name
        return {label: dirs[label] for label in sorted(dirs)}

    def _check_month(self, month, name):
        where = os.path.join(self.path, name)
        paths = [os.path.join(where, f) for f in ("X.npy", "y.npy")]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f"Month {month!r}: {', '.join(map(repr, missing))} is missing; every "
                "month folder needs X.npy (features) and y.npy (labels)."
            )
        (x_shape, x_dtype), (y_shape, y_dtype) = (_npy_header(p) for p in paths)
        if len(x_shape) != 2:
            raise ValueError(f"{paths[0]!r} has shape {x_shape}; X must be 2-d.")
        if len(y_shape) != 1 or y_shape[0] != x_shape[0]:
            raise ValueError(
                f"Month {month!r}: y.npy has shape {y_shape} but X.npy has {x_shape[0]} "
                "rows; y must be 1-d with one label per row."
            )
        for path, dtype in zip(paths, (x_dtype, y_dtype)):
            if dtype.hasobject:
                raise ValueError(
                    f"{path!r} holds Python objects, which cannot be memory-mapped; "
                    "save numbers (or fixed-width strings: y.astype(str))."
                )
        if self.n_features is None:
            self.n_features = x_shape[1]
        elif x_shape[1] != self.n_features:
            first = self.months[0]
            raise ValueError(
                f"Month {month!r} has {x_shape[1]} features but month {first!r} has "
                f"{self.n_features}; every month needs the same columns."
            )
        return x_shape[0]

    def __len__(self):
        return len(self.months)

    def __iter__(self):
        """Yield ``(month, X, y)`` for every month, in time order."""
        for month in self.months:
            yield (month, *self[month])

    def __getitem__(self, month):
        """``(X, y)`` of one month, opened with ``mmap_mode``."""
        try:
            name = self._dirs[month]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(month), [str(m) for m in self.months], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"No month {month!r} in {self.path!r}.{hint}") from None
        where = os.path.join(self.path, name)
        mode = self.mmap_mode if self.n_rows[month] else None  # an empty file cannot be mapped
        X = np.load(os.path.join(where, "X.npy"), mmap_mode=mode, allow_pickle=False)
        y = np.load(os.path.join(where, "y.npy"), mmap_mode=mode, allow_pickle=False)
        return X, y

    def __repr__(self):
        rows = sum(self.n_rows.values())
        return (f"MonthFiles({self.path!r}: {len(self)} months, {rows} rows, "
                f"{self.n_features} features)")


# ---------------------------------------------------------------------------
# Parquet -> the .npy layout, streamed
# ---------------------------------------------------------------------------
def _import_pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            f"Reading Parquet needs the package 'pyarrow', which is not installed: "
            f"{_EXTRA_HINT}."
        ) from None
    return pa, pc, pq


def _parquet_files(path):
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, n) for n in os.listdir(path)
            if n.lower().endswith(_PARQUET_SUFFIXES) and not n.startswith((".", "_"))
        )
        if not files:
            raise ValueError(f"The folder {path!r} holds no .parquet files.")
        return files
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}.")
    return [path]


def _is_numeric(pa, kind):
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind) or pa.types.is_decimal(kind))


def _check_schema(pa, schemas, files, month_column, target, features):
    """The feature column names; errors for missing or non-numeric columns."""
    schema = schemas[0]
    names = list(schema.names)
    for name, role in ((month_column, "month"), (target, "target")):
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            shown = ", ".join(map(repr, names[:20])) + (" ..." if len(names) > 20 else "")
            raise ValueError(
                f"The {role} column {name!r} is not in {files[0]!r}.{hint} Columns: {shown}."
            )
    if month_column == target:
        raise ValueError(f"month_column and target are both {target!r}; they must differ.")
    if features is None:
        features = [n for n in names if n not in (month_column, target)]
    else:
        features = list(features)
        unknown = [n for n in features if n not in names]
        if unknown:
            raise ValueError(
                f"Feature column(s) {', '.join(map(repr, unknown))} not in {files[0]!r}."
            )
        if month_column in features or target in features:
            raise ValueError("features must not include the month or the target column.")
    if not features:
        raise ValueError(
            f"{files[0]!r} has no feature columns besides the month and the target."
        )
    text = [f"{n!r} ({schema.field(n).type})" for n in features
            if not _is_numeric(pa, schema.field(n).type)]
    if text:
        raise ValueError(
            f"Feature column(s) {', '.join(text)} of {files[0]!r} are not numeric. Features "
            "are stored as float32: one-hot encode them first (one 0/1 column per value), "
            "or leave them out with features=[...]."
        )
    for path, other in zip(files[1:], schemas[1:]):
        for name in [month_column, target, *features]:
            if name not in other.names:
                raise ValueError(f"{path!r} has no column {name!r}, which {files[0]!r} has.")
            if other.field(name).type != schema.field(name).type:
                raise ValueError(
                    f"Column {name!r} is {other.field(name).type} in {path!r} but "
                    f"{schema.field(name).type} in {files[0]!r}."
                )
    return features


def _month_keys(pa, pc, column):
    """Raw month values with few distinct values: a date or time becomes year*12+month-1."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_temporal(column.type) and not pa.types.is_time(column.type) \
            and not pa.types.is_duration(column.type):
        # In the column's own time zone, as pandas' dt.strftime("%Y-%m") does.
        year = pc.year(column).to_numpy(zero_copy_only=False).astype(np.int64)
        month = pc.month(column).to_numpy(zero_copy_only=False).astype(np.int64)
        return pa.array(year * 12 + month - 1), True
    return column, False


def _key_label(key):
    year, month0 = divmod(int(key), 12)
    return f"{year:04d}-{month0 + 1:02d}"


def _source_record(files):
    record = []
    for path in files:
        stat = os.stat(path)
        record.append({"path": os.path.abspath(path), "size": stat.st_size,
                       "mtime_ns": stat.st_mtime_ns})
    return record


def _default_cache_dir(path):
    path = os.path.normpath(os.path.abspath(path))
    return path + _CACHE_SUFFIX


def _read_manifest(cache_dir):
    try:
        with open(os.path.join(cache_dir, MANIFEST), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _open_parquet(pq, path):
    # pre_buffer (pyarrow's default) reads ahead without bound: converting a
    # 460 MiB file held 525 MiB in pyarrow's pool with it, 88 MiB without.
    return pq.ParquetFile(path, pre_buffer=False)


def _bar(total, desc, unit, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False,
                dynamic_ncols=True, disable=not progress)


def _count_months(pa, pc, pq, files, month_column, target, batch_size, progress):
    """First pass, month and target columns only: rows per raw month, target dtype."""
    counts, temporal, classes = {}, None, set()
    y_kind, max_len, total = None, 0, 0
    n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    with _bar(n_rows, "reading months", "row", progress) as bar:
        for path in files:
            reader = _open_parquet(pq, path)
            for batch in reader.iter_batches(batch_size=batch_size,
                                             columns=[month_column, target]):
                month, label = batch.column(0), batch.column(1)
                for name, col in ((month_column, month), (target, label)):
                    if col.null_count:
                        role = "month" if name == month_column else "target"
                        raise ValueError(
                            f"The {role} column {name!r} of {path!r} has missing values; "
                            "every row needs a month and a label (drop unlabelled rows)."
                        )
                keys, temporal = _month_keys(pa, pc, month)
                if pa.types.is_floating(keys.type) and pc.any(pc.is_nan(keys)).as_py():
                    raise ValueError(
                        f"The month column {month_column!r} of {path!r} holds NaN.")
                vc = pc.value_counts(keys)
                for value, count in zip(vc.field("values").to_pylist(),
                                        vc.field("counts").to_pylist()):
                    counts[value] = counts.get(value, 0) + count
                if pa.types.is_dictionary(label.type):
                    label = label.cast(label.type.value_type)
                if pa.types.is_string(label.type) or pa.types.is_large_string(label.type):
                    y_kind = "str"
                    max_len = max(max_len, pc.max(pc.utf8_length(label)).as_py() or 0)
                elif pa.types.is_integer(label.type) or pa.types.is_boolean(label.type) \
                        or pa.types.is_floating(label.type):
                    y_kind = label.type.to_pandas_dtype()
                else:
                    raise ValueError(
                        f"The target column {target!r} is {label.type}; use numbers or text.")
                if len(classes) < 2:
                    classes.update(pc.unique(label).to_pylist())
                total += len(month)
                bar.update(len(month))
    if total == 0:
        raise ValueError(f"{files[0]!r} holds no rows.")
    if len(classes) < 2:
        raise ValueError(
            f"The target column {target!r} holds a single class ({next(iter(classes))!r}); "
            "a classifier needs at least two."
        )
    y_dtype = np.dtype(f"<U{max(max_len, 1)}") if y_kind == "str" else np.dtype(y_kind)
    return counts, temporal, y_dtype


def _write_header(path, shape, dtype):
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_2_0(
            fh, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                 "shape": tuple(int(s) for s in shape)},
        )


def _dir_names(months):
    names, used = [], set()
    for i, month in enumerate(months):
        name = str(month)
        if not _SAFE_NAME.fullmatch(name) or name.lower() in used:
            name = f"month-{i:04d}"
        used.add(name.lower())
        names.append(name)
    return names


def _convert(pa, pc, pq, files, tmp, month_column, target, features, batch_size,
             progress):
    counts, temporal, y_dtype = _count_months(
        pa, pc, pq, files, month_column, target, batch_size, progress)
    where = f"The month column {month_column!r}"
    label_of = ({k: _key_label(k) for k in counts} if temporal
                else _month_label_map(counts, where))
    rows = {}
    for key, count in counts.items():
        rows[label_of[key]] = rows.get(label_of[key], 0) + count
    months = sorted(rows)
    index = {m: i for i, m in enumerate(months)}
    key_index = {k: index[label_of[k]] for k in counts}
    dirs = _dir_names(months)
    n_features = len(features)

    need = sum(rows.values()) * (4 * n_features + y_dtype.itemsize)
    free = shutil.disk_usage(tmp).free
    if need > free:
        raise OSError(
            f"The cache needs {need / 2**30:.1f} GiB but {tmp!r} has {free / 2**30:.1f} GiB "
            "free; give another cache_dir."
        )
    x_paths, y_paths = [], []
    for month, name in zip(months, dirs):
        os.makedirs(os.path.join(tmp, name))
        x_paths.append(os.path.join(tmp, name, "X.npy"))
        y_paths.append(os.path.join(tmp, name, "y.npy"))
        _write_header(x_paths[-1], (rows[month], n_features), np.dtype(np.float32))
        _write_header(y_paths[-1], (rows[month],), y_dtype)

    written = np.zeros(len(months), dtype=np.int64)
    with _bar(sum(rows.values()), "converting to .npy", "row", progress) as bar:
        for path in files:
            reader = _open_parquet(pq, path)
            for batch in reader.iter_batches(batch_size=batch_size,
                                             columns=[month_column, target, *features]):
                keys, _ = _month_keys(pa, pc, batch.column(0))
                distinct = pc.unique(keys)
                lookup = np.array([key_index[k] for k in distinct.to_pylist()], dtype=np.int64)
                which = lookup[pc.index_in(keys, value_set=distinct).to_numpy()]
                block = np.empty((len(which), n_features), dtype=np.float32)
                for j, name in enumerate(features):
                    col = batch.column(2 + j)
                    if col.null_count:
                        raise ValueError(
                            f"Feature column {name!r} of {path!r} has missing values; fill "
                            "them in or drop those rows before converting."
                        )
                    if pa.types.is_decimal(col.type):
                        col = col.cast(pa.float64())
                    block[:, j] = col.to_numpy(zero_copy_only=False)
                bad = np.isnan(block).any(axis=0)
                if bad.any():
                    raise ValueError(
                        f"Feature column {features[int(np.flatnonzero(bad)[0])]!r} of "
                        f"{path!r} holds NaN; fill them in or drop those rows first."
                    )
                label = batch.column(1)
                if pa.types.is_dictionary(label.type):
                    label = label.cast(label.type.value_type)
                y = np.asarray(label.to_numpy(zero_copy_only=False)).astype(y_dtype)
                # A stable sort keeps each month's rows in file order.
                order = np.argsort(which, kind="stable")
                bounds = np.searchsorted(which[order], np.arange(len(months) + 1))
                for m in np.flatnonzero(np.diff(bounds)):
                    part = order[bounds[m]:bounds[m + 1]]
                    with open(x_paths[m], "ab") as fh:
                        fh.write(np.ascontiguousarray(block[part]).tobytes())
                    with open(y_paths[m], "ab") as fh:
                        fh.write(np.ascontiguousarray(y[part]).tobytes())
                    written[m] += len(part)
                bar.update(len(which))
    expected = np.array([rows[m] for m in months])
    if not np.array_equal(written, expected):
        raise ValueError(
            f"{files[0]!r} changed while it was being converted (row counts differ); "
            "run again."
        )
    return months, dirs, rows, y_dtype


def months_from_parquet(path, *, month_column, target, features=None, cache_dir=None,
                        progress=True, batch_size=65536):
    """Convert Parquet months, once, to memory-mapped ``.npy`` files.

    Streams the Parquet file (or every ``.parquet`` file of a folder, in
    name order) into the :class:`MonthFiles` layout: one sub-folder per
    month with ``X.npy`` (float32 features) and ``y.npy`` (the target), and a
    ``months.json`` manifest. It never holds more than ``batch_size`` rows
    of the source in memory: a first pass reads only the month and target
    columns and counts each month's rows; the second writes every batch's
    rows to the end of their month's files, whose headers already carry the
    final row counts. Rows of a month spread over many row groups (or files)
    keep their order in the source.

    The cache is reused while it matches the source: the same files with
    the same sizes and modification times, the same month and target
    columns, the same feature columns. Otherwise it is rebuilt, in a
    temporary folder renamed into place at the end, so an interrupted
    conversion never leaves a half-written cache behind.

    Parameters
    ----------
    path : str or path-like
        A Parquet file, or a folder of Parquet files with the same columns.
    month_column : str
        The column holding each row's month, read like
        :func:`~sklearn_cf.datasets.load_table`'s: numbers, or dates
        (a date or timestamp column, or text such as ``2024-09``), which
        become ``"YYYY-MM"`` labels.
    target : str
        The column holding the class label (numbers or text).
    features : list of str or None, default=None
        Feature columns, in this order. None: every column but the month and
        the target, in file order. They must be numeric (integer, float,
        boolean or decimal); they are stored as float32.
    cache_dir : str or path-like or None, default=None
        Where the cache goes. None: next to the data, ``<path>.sklearn_cf_cache``.
        A folder that exists and is not such a cache is refused rather than
        overwritten.
    progress : bool, default=True
        Show tqdm progress bars (stderr) while converting; nothing is shown
        when the cache is reused.
    batch_size : int, default=65536
        Rows read at a time; the memory used is about ``batch_size`` times
        the size of a row.

    Returns
    -------
    MonthFiles
        The cache, opened memory-mapped.

    Raises
    ------
    ImportError
        Without ``pyarrow`` (``pip install "sklearn-cf[parquet]"``).
    FileNotFoundError
        A path that does not exist.
    ValueError
        A missing column (naming the closest names), non-numeric feature
        columns (named), missing values, a target with one class, or a
        ``cache_dir`` that is something else.
    OSError
        Too little free disk space for the cache (checked before writing).

    See Also
    --------
    MonthFiles : the folder layout, and reading it.

    Examples
    --------
    >>> import os, tempfile
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> from sklearn_cf.datasets import months_from_parquet
    >>> path = os.path.join(tempfile.mkdtemp(), "stream.parquet")
    >>> pq.write_table(pa.table({"month": ["2024-10", "2024-09", "2024-10", "2024-09"],
    ...                          "size": [1.5, 0.2, 2.5, 0.1], "entropy": [7, 3, 6, 2],
    ...                          "label": [1, 0, 1, 0]}), path, row_group_size=2)
    >>> files = months_from_parquet(path, month_column="month", target="label",
    ...                             progress=False)
    >>> files.months, files.feature_names, files.n_rows
    (['2024-09', '2024-10'], ['size', 'entropy'], {'2024-09': 2, '2024-10': 2})
    >>> X, y = files["2024-10"]
    >>> X
    memmap([[1.5, 7. ],
            [2.5, 6. ]], dtype=float32)
    >>> os.path.basename(files.path)
    'stream.parquet.sklearn_cf_cache'
    """
    pa, pc, pq = _import_pyarrow()
    path = os.fspath(path)
    files = _parquet_files(path)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    schemas = []
    for p in files:
        try:
            schemas.append(pq.read_schema(p))
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"Could not read {p!r} as Parquet: {exc}") from None
    features = _check_schema(pa, schemas, files, month_column, target, features)
    cache_dir = os.path.abspath(os.fspath(cache_dir) if cache_dir is not None
                                else _default_cache_dir(path))
    source = _source_record(files)
    wanted = {"format": CACHE_FORMAT, "source": source, "month_column": month_column,
              "target": target, "features": features}

    old = _read_manifest(cache_dir)
    if old is not None and all(old.get(k) == v for k, v in wanted.items()):
        return MonthFiles(cache_dir)
    if os.path.exists(cache_dir) and old is None and (
        not os.path.isdir(cache_dir) or os.listdir(cache_dir)
    ):
        raise ValueError(
            f"cache_dir {cache_dir!r} exists and is not a sklearn_cf cache (no "
            f"{MANIFEST}); give an empty or new folder."
        )
    parent = os.path.dirname(cache_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=os.path.basename(cache_dir) + ".tmp-")
    try:
        months, dirs, rows, y_dtype = _convert(
            pa, pc, pq, files, tmp, month_column, target, features, batch_size, progress)
        manifest = dict(
            wanted,
            kind="sklearn_cf months",
            months=[{"month": to_python(m), "dir": d, "rows": int(rows[m])}
                    for m, d in zip(months, dirs)],
            dtype="float32", y_dtype=np.lib.format.dtype_to_descr(y_dtype),
        )
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
        if os.path.isdir(cache_dir):
            shutil.rmtree(cache_dir)
        os.replace(tmp, cache_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return MonthFiles(cache_dir)


def _is_parquet_path(path):
    """True for a Parquet file, or a folder holding Parquet files."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return any(n.lower().endswith(_PARQUET_SUFFIXES) and not n.startswith((".", "_"))
                   for n in os.listdir(path))
    return path.lower().endswith(_PARQUET_SUFFIXES)


def _parquet_text_columns(path, month_column, target):
    """Names of the non-numeric feature columns of a Parquet file (schema only)."""
    pa, _, pq = _import_pyarrow()
    schema = pq.read_schema(path)
    return [n for n in schema.names if n not in (month_column, target)
            and not _is_numeric(pa, schema.field(n).type)]


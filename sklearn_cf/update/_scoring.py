"""Scoring the held-out rows: the held-out split, the scoring an update uses
(recorded in the store) and the score of a model on some rows."""

import numpy as np


def _split(X, y, holdout, random_state):
    """Training and held-out row indices: stratified when every class allows it."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    if holdout == 0:
        return rows, rows[:0]
    try:
        return train_test_split(rows, test_size=holdout, stratify=y, random_state=random_state)
    except ValueError:  # a class too rare to stratify
        return train_test_split(rows, test_size=holdout, random_state=random_state)


#: Scorings that rank one class's probability: with more than two classes
#: they are scored one class against the rest (:func:`_multiclass_roc_auc`).
_ROC_AUC = ("roc_auc", "roc_auc_ovr", "roc_auc_ovo", "roc_auc_ovr_weighted",
            "roc_auc_ovo_weighted")


def _multiclass_roc_auc(clf, X, y):
    """The mean over the model's classes present in ``y`` of the ROC-AUC of
    that class's probability (its rows against all others, those of classes
    the model lacks included); NaN when fewer than two are present. A class
    absent from a held-out month (one that appeared later, or is rare) is left
    out rather than failing, as scikit-learn's multiclass ROC-AUC would."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    classes = clf.classes_
    present = [k for k, label in enumerate(classes) if np.any(y == label)]
    if len(present) < 2:
        return float("nan")
    proba = clf.predict_proba(X)
    return float(np.mean([roc_auc_score(y == classes[k], proba[:, k]) for k in present]))


def _score(clf, X, y, scorer, scoring):
    """``scorer(clf, X, y)``; NaN where the score is undefined (held-out rows of
    one class for roc_auc), None when there is no fitted model or no row."""
    from ..metrics import score_or_nan

    if clf is None or len(y) == 0 or not clf.__sklearn_is_fitted__():
        return None
    if scoring in _ROC_AUC and (len(clf.classes_) > 2
                                or len(np.setdiff1d(np.unique(y), clf.classes_))):
        # More than two classes (or a class the model does not have yet,
        # before the update that adds it): one class against the rest.
        return _multiclass_roc_auc(clf, X, y)
    try:
        # Undefined on these rows: NaN, which the summary reports.
        return score_or_nan(scorer, clf, X, y)
    except ValueError as exc:
        raise ValueError(f"The score {scoring!r} failed on the held-out rows: {exc}") from exc


def _resolve_update_scoring(scoring, store, model):
    """The scoring name of this update: the store's, or the one asked for.

    Returns ``(name, recorded)``; ``name`` is None for ``"auto"`` on a new
    store, chosen later from the data.
    """
    from ..metrics import resolve_scoring

    if not isinstance(scoring, str):
        raise ValueError(
            f"scoring must be a scorer name (it is recorded in the evaluation store), "
            f"got {scoring!r}."
        )
    requested = None if scoring == "auto" else resolve_scoring(scoring)[1]
    if store.scoring is None:
        return requested, False
    recorded = resolve_scoring(store.scoring)[1]
    if requested is not None and requested != recorded:
        raise ValueError(
            f"--scoring {requested} differs from the scoring recorded for the model "
            f"{model!r}: {recorded}. Every update of a model "
            f"is scored alike, so that its forgetting rows compare. Drop --scoring (or pass "
            f"--scoring {recorded}) to update it, or give a new --model path to start a "
            f"model scored with {requested}."
        )
    return recorded, True


def _scorer_of(name):
    from sklearn.metrics import get_scorer

    from ..metrics import resolve_scoring

    scorer, _ = resolve_scoring(name)
    return get_scorer(scorer) if isinstance(scorer, str) else scorer


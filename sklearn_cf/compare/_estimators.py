"""From a strategy spec to the ContinualClassifier that runs it."""

import difflib

from .._estimator import ContinualClassifier
from ..strategies import strategy_parameters
from ._specs import parse_strategy

__all__ = ["build_estimator"]


def build_estimator(spec, estimator_params=None, random_state=None):
    """The :class:`~sklearn_cf.ContinualClassifier` that runs a strategy spec.

    Parameters
    ----------
    spec : str or StrategySpec
        A strategy spec (see :func:`parse_strategy`), e.g. ``"lwf:alpha=2"``.
    estimator_params : dict or None, default=None
        Parameters shared by every strategy of a comparison; the spec's own
        override them. Unknown names are refused, naming the closest one.
    random_state : int or None, default=None

    Returns
    -------
    ContinualClassifier
        Unfitted, with its hyperparameters checked.

    Examples
    --------
    >>> from sklearn_cf.compare import build_estimator
    >>> clf = build_estimator("lwf:alpha=2", {"max_epochs": 3}, random_state=0)
    >>> clf.strategy, clf.strategy__alpha, clf.max_epochs
    ('lwf', 2, 3)
    """
    estimator_params = dict(estimator_params or {})
    _check_estimator_params(estimator_params)
    return _build_estimator(parse_strategy(spec), estimator_params, random_state)


def _effective_params(spec, estimator_params):
    """The ContinualClassifier parameters one strategy runs with."""
    params = {**estimator_params, **spec.params}
    if "reg_lambda" not in params:
        # The default of the first part that declares one (DEFAULT_REG_LAMBDA
        # for the built-ins), recorded with the results.
        own = strategy_parameters(spec.strategy)
        if own.get("reg_lambda") is not None:
            params["reg_lambda"] = own["reg_lambda"]
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

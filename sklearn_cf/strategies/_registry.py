"""The strategy names :class:`~sklearn_cf.ContinualClassifier` accepts.

A strategy is a class in a module of its own whose constructor declares its
hyperparameters and their defaults (as a scikit-learn estimator's does); the
classifier's flat hyperparameters (``reg_lambda``, ``rehearsal_ratio``...)
and its ``strategy__<param>`` parameters reach a built-in strategy through
that signature. Adding a strategy is its module plus one line in
:data:`BUILTIN`; its name then works in ``strategy=``, in the CLI's
``--strategies`` and in the report.
"""

import difflib

from .._param_validation import check_choice
from ._base import Combined, Strategy
from ._der import DER, DERPlusPlus
from ._ensemble import Ensemble
from ._ewc import EWC
from ._joint import Joint
from ._l2 import L2
from ._lwf import LwF
from ._naive import Naive
from ._online_ewc import OnlineEWC
from ._replay import Replay

__all__ = ["BUILTIN", "COMBINATIONS", "STRATEGIES", "make_strategy", "name_of",
           "strategy_classes", "strategy_parameters"]

#: Name -> class of every built-in strategy.
BUILTIN = {
    "naive": Naive,
    "replay": Replay,
    "l2": L2,
    "ewc": EWC,
    "joint": Joint,
    "ensemble": Ensemble,
    "online_ewc": OnlineEWC,
    "lwf": LwF,
    "der": DER,
    "der++": DERPlusPlus,
}

#: Names of the combinations accepted (parts joined by "+", the part that
#: chooses the rows first): every part trains together, penalties add up.
COMBINATIONS = ("replay+l2", "replay+ewc", "replay+online_ewc", "replay+lwf")

#: Every strategy name :class:`~sklearn_cf.ContinualClassifier` accepts.
STRATEGIES = (*BUILTIN, *COMBINATIONS)


def name_of(strategy):
    """The registry name of a strategy object's class, or None."""
    for name, cls in BUILTIN.items():
        if type(strategy) is cls:
            return name
    return None


def _check_name(strategy):
    if not isinstance(strategy, str):
        raise TypeError(
            f"strategy must be one of {STRATEGIES} or a sklearn_cf.strategies.Strategy "
            f"instance, got {type(strategy).__name__}."
        )
    if strategy not in STRATEGIES and "+" in strategy:
        reordered = [name for name in STRATEGIES
                     if set(name.split("+")) == set(strategy.split("+"))]
        if reordered:
            raise ValueError(
                f"Unknown strategy={strategy!r}. Valid values: "
                f"{', '.join(map(repr, STRATEGIES))}. Did you mean {reordered[0]!r}?"
            )
    check_choice(strategy, "strategy", STRATEGIES)


def strategy_classes(strategy):
    """The classes of the parts of a strategy name, in order.

    Examples
    --------
    >>> [cls.__name__ for cls in strategy_classes("replay+ewc")]
    ['Replay', 'EWC']
    """
    _check_name(strategy)
    if strategy in BUILTIN:  # a name may hold "+" itself ("der++")
        return [BUILTIN[strategy]]
    return [BUILTIN[name] for name in strategy.split("+")]


def strategy_parameters(strategy):
    """``{param: default}`` of a strategy name (over all its parts; a
    parameter two parts share takes the first part's default).

    Examples
    --------
    >>> strategy_parameters("ewc")
    {'fisher': 'empirical', 'fisher_rows': None, 'reg_lambda': 10000.0}
    >>> strategy_parameters("l2")
    {'reg_lambda': 1.0}
    """
    params = {}
    for cls in strategy_classes(strategy):
        for name, default in cls.param_defaults().items():
            params.setdefault(name, default)
    return params


def make_strategy(strategy, params=None, strategy_params=None):
    """Build a fresh strategy object.

    Parameters
    ----------
    strategy : str or Strategy
        A name of :data:`STRATEGIES`, or a strategy object, which is cloned
        (``sklearn.base.clone``: its hyperparameters, none of its state) so
        that fitting never changes the object the user passed.
    params : dict or None
        The classifier's flat hyperparameters (``reg_lambda``,
        ``rehearsal_ratio``, ``epoch_size``, ``memory_size``, ``memory_dir``,
        ``fisher``...). Each part of a named strategy takes those its
        constructor declares; None values leave the part's default.
    strategy_params : dict or None
        ``strategy__<param>`` values: each must be a parameter of some part
        (of the object, for a strategy object), or of another built-in
        strategy (then ignored, like a flat parameter the strategy does not
        use); none may also be set flat.

    Returns
    -------
    Strategy

    Examples
    --------
    >>> make_strategy("replay+ewc", {"reg_lambda": 100.0})
    Combined(Replay(rehearsal_ratio=0.5, epoch_size=None, memory_size=None), EWC(reg_lambda=100.0, fisher='empirical'))
    >>> make_strategy("ewc")
    EWC(reg_lambda=10000.0, fisher='empirical')
    >>> make_strategy("ewc+replay")
    Traceback (most recent call last):
    ...
    ValueError: Unknown strategy='ewc+replay'. Valid values: ... Did you mean 'replay+ewc'?
    """
    params = {k: v for k, v in (params or {}).items() if v is not None}
    strategy_params = dict(strategy_params or {})
    if isinstance(strategy, Strategy):
        from sklearn.base import clone

        built = clone(strategy)
        if strategy_params:
            built.set_params(**strategy_params)
        built.check_params()
        return built
    classes = strategy_classes(strategy)
    accepted = set().union(*(cls._get_param_names() for cls in classes))
    # A parameter of another built-in strategy is ignored, as a flat one the
    # strategy does not use is (a search over strategy=["lwf", "naive"] with
    # strategy__alpha set); a name no strategy has is a mistake.
    known = set().union(*(cls._get_param_names() for cls in BUILTIN.values()))
    strategy_params = {k: v for k, v in strategy_params.items() if k in accepted or k not in known}
    unknown = sorted(set(strategy_params) - accepted)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(accepted), n=1, cutoff=0.5)
        hint = f" Did you mean 'strategy__{close[0]}'?" if close else ""
        raise ValueError(
            f"strategy={strategy!r} has no parameter {unknown[0]!r} (set as "
            f"strategy__{unknown[0]}); its parameters are {sorted(accepted) or 'none'}.{hint}"
        )
    both = sorted(set(strategy_params) & set(params))
    if both:
        raise ValueError(
            f"{both[0]} is set twice, as {both[0]}={params[both[0]]!r} and as "
            f"strategy__{both[0]}={strategy_params[both[0]]!r}; set it once."
        )
    values = {**params, **strategy_params}
    parts = []
    for cls in classes:
        part = cls(**{k: values[k] for k in cls._get_param_names() if k in values})
        part.check_params()
        parts.append(part)
    return parts[0] if len(parts) == 1 else Combined(*parts)

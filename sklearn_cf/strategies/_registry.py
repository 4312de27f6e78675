"""The strategy names :class:`~sklearn_cf.ContinualClassifier` accepts.

A strategy is a class in a module of its own whose constructor declares its
hyperparameters and their defaults (as a scikit-learn estimator's does), with
their accepted values in ``_parameter_constraints``; the classifier's flat
hyperparameters (``reg_lambda``, ``rehearsal_ratio``...) and its
``strategy__<param>`` parameters reach a strategy through that signature.

Three kinds of names:

* built-ins, :data:`BUILTIN` (each class's ``name``), and the
  :data:`COMBINATIONS` of built-ins;
* strategies registered in this process with :func:`register_strategy`;
* plugins: strategies that an installed distribution declares in the
  entry-point group :data:`ENTRY_POINT_GROUP` (``"sklearn_cf.strategies"``),
  loaded the first time their name is looked up.

A name of any kind works in ``strategy=``, in ``strategy__<param>``, in a
search over ``strategy``, and in compare's and update's specs.
"""

import difflib
import importlib.metadata
import inspect

from .._param_validation import check_choice
from ._base import Strategy
from ._combined import Combined
from ._der import DER, DERPlusPlus
from ._ensemble import Ensemble
from ._ewc import EWC
from ._joint import Joint
from ._l2 import L2
from ._lwf import LwF
from ._naive import Naive
from ._online_ewc import OnlineEWC
from ._replay import Replay

__all__ = ["BUILTIN", "COMBINATIONS", "ENTRY_POINT_GROUP", "STRATEGIES",
           "available_strategies", "make_strategy", "parameter_constraints",
           "register_strategy", "strategy_classes", "strategy_origin",
           "strategy_parameters", "unregister_strategy"]

#: Name -> class of every built-in strategy (the key is the class's ``name``).
BUILTIN = {cls.name: cls for cls in (Naive, Replay, L2, EWC, Joint, Ensemble, OnlineEWC,
                                     LwF, DER, DERPlusPlus)}

#: Names of the combinations accepted (parts joined by "+", the part that
#: chooses the rows first): every part trains together, penalties add up.
COMBINATIONS = ("replay+l2", "replay+ewc", "replay+online_ewc", "replay+lwf")

#: Every built-in strategy name (plugins: :func:`available_strategies`).
STRATEGIES = (*BUILTIN, *COMBINATIONS)

#: The entry-point group through which an installed distribution provides
#: strategies: ``name = module:Class`` in its ``[project.entry-points."sklearn_cf.strategies"]``.
ENTRY_POINT_GROUP = "sklearn_cf.strategies"

# Plugin name -> (class, distribution name or None): registered in this
# process (distribution None) or loaded from an installed entry point.
_PLUGINS = {}

# Characters a name may not hold: a spec is "name:param=value,param=value".
_FORBIDDEN = (":", ",", "=")


def _entry_points():
    """``{name: entry point}`` of the installed plugins (not loaded; a
    built-in name, or the second of two distributions declaring one name, is
    left out). Read afresh at each call, so a distribution installed while
    the process runs is found."""
    found = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in STRATEGIES:
            found.setdefault(entry.name, entry)
    return found


def _distribution(entry):
    """The name of the distribution that declares an entry point (else its
    module's top-level package, the best guess of what to install)."""
    dist = getattr(entry, "dist", None)
    name = None
    if dist is not None:
        name = getattr(dist, "name", None) or dist.metadata["Name"]
    return name or entry.value.split(":")[0].split(".")[0].strip()


def _check_class(cls, what, error=TypeError):
    """Refuse something that cannot be built by name as a strategy."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise error(
            f"{what} must be a subclass of sklearn_cf.strategies.Strategy, got {cls!r}."
        )
    missing = [name for name, default in cls.param_defaults().items()
               if default is inspect.Parameter.empty]
    if missing:
        raise error(
            f"{what}: {cls.__name__}'s parameter {missing[0]!r} has no default; a strategy "
            "is built by name with its defaults, so give every constructor parameter one."
        )


def _load(name, entry):
    """Import a plugin's class from its entry point, once."""
    dist = _distribution(entry)
    where = f"entry point '{name} = {entry.value}' of the package {dist!r}"
    try:
        cls = entry.load()
    except Exception as exc:
        raise ImportError(
            f"Strategy {name!r} comes from the package {dist!r} ({where}, group "
            f"{ENTRY_POINT_GROUP!r}), which failed to load: {type(exc).__name__}: {exc}. "
            f"Reinstall or fix {dist!r}, or uninstall it."
        ) from exc
    _check_class(cls, f"Strategy {name!r} of the {where}")
    _PLUGINS[name] = (cls, dist)
    return cls


def _plugin_class(name):
    """The class of a registered or installed plugin name, or None."""
    if name in _PLUGINS:
        return _PLUGINS[name][0]
    entry = _entry_points().get(name)
    return None if entry is None else _load(name, entry)


def _refuse_name(strategy):
    names = available_strategies()
    if not isinstance(strategy, str):
        raise TypeError(
            f"strategy must be one of {names} or a sklearn_cf.strategies.Strategy "
            f"instance, got {type(strategy).__name__}."
        )
    if "+" in strategy:
        reordered = [name for name in names
                     if set(name.split("+")) == set(strategy.split("+"))]
        if reordered:
            raise ValueError(
                f"Unknown strategy={strategy!r}. Valid values: "
                f"{', '.join(map(repr, names))}. Did you mean {reordered[0]!r}?"
            )
    check_choice(strategy, "strategy", names)


def register_strategy(name, cls, *, replace=False):
    """Make a strategy class usable by name in this process.

    The name then works wherever a built-in's does:
    ``ContinualClassifier(strategy=name)``, ``strategy__<param>``, a search
    over ``strategy``, compare's specs (``"name:param=value"``). To provide a
    strategy from an installed package instead (it then works in every
    process, the command line's included), declare it in the entry-point
    group ``"sklearn_cf.strategies"``.

    Parameters
    ----------
    name : str
        Not empty, without whitespace, ``:``, ``,`` or ``=`` (spec syntax),
        and not the name of a built-in strategy or combination.
    cls : type
        A subclass of :class:`Strategy` whose constructor parameters (its
        hyperparameters) all have defaults.
    replace : bool, default=False
        Allow replacing a strategy registered, or installed, under ``name``.
        A built-in is never replaced.

    Returns
    -------
    type
        ``cls``.

    Raises
    ------
    TypeError
        When ``cls`` is not such a class or ``name`` not a string.
    ValueError
        For a malformed name, a built-in's name, or a name already taken
        without ``replace=True``.

    Examples
    --------
    >>> from sklearn_cf.strategies import (Strategy, make_strategy, register_strategy,
    ...                                    unregister_strategy)
    >>> class Halve(Strategy):
    ...     def __init__(self, factor=0.5):
    ...         self.factor = factor
    >>> register_strategy("halve", Halve) is Halve
    True
    >>> make_strategy("halve", strategy_params={"factor": 0.25}).factor
    0.25
    >>> register_strategy("replay", Halve)
    Traceback (most recent call last):
    ...
    ValueError: 'replay' is the name of a built-in strategy, which cannot be replaced; register Halve under another name.
    >>> unregister_strategy("halve")
    """
    if not isinstance(name, str):
        raise TypeError(f"A strategy name must be a string, got {name!r}.")
    if not name or name != name.strip() or any(c.isspace() or c in _FORBIDDEN for c in name):
        raise ValueError(
            f"Strategy name {name!r} is not valid: give a non-empty name without "
            "whitespace, ':', ',' or '=' (specs read 'name:param=value,...')."
        )
    _check_class(cls, f"The class registered as {name!r}")
    if name in STRATEGIES:
        raise ValueError(
            f"{name!r} is the name of a built-in strategy, which cannot be replaced; "
            f"register {cls.__name__} under another name."
        )
    if not replace:
        taken = _PLUGINS[name][0] if name in _PLUGINS else None
        if taken is None and name in _entry_points():
            taken = f"the installed package {_distribution(_entry_points()[name])!r}"
        if taken is not None and taken is not cls:
            shown = taken if isinstance(taken, str) else taken.__qualname__
            raise ValueError(
                f"Strategy name {name!r} is already taken (by {shown}); pass "
                "replace=True to replace it, or choose another name."
            )
    _PLUGINS[name] = (cls, None)
    return cls


def unregister_strategy(name):
    """Forget a strategy registered by :func:`register_strategy` (or a
    plugin loaded from an entry point, which is then loaded again the next
    time its name is used). A name not registered is ignored.

    Parameters
    ----------
    name : str

    Examples
    --------
    >>> from sklearn_cf.strategies import Naive, register_strategy, unregister_strategy
    >>> class Plain(Naive):
    ...     pass
    >>> _ = register_strategy("plain", Plain)
    >>> "plain" in available_strategies()
    True
    >>> unregister_strategy("plain")
    >>> "plain" in available_strategies()
    False
    """
    _PLUGINS.pop(name, None)


def available_strategies():
    """Every strategy name accepted now.

    Returns
    -------
    tuple of str
        The built-ins and combinations (:data:`STRATEGIES`), then the names
        registered in this process, then those that installed packages
        declare in the entry-point group ``"sklearn_cf.strategies"`` (listed
        without being imported).

    Examples
    --------
    >>> from sklearn_cf.strategies import available_strategies
    >>> available_strategies()[:3]
    ('naive', 'replay', 'l2')
    >>> "replay+ewc" in available_strategies()
    True
    """
    names = list(STRATEGIES) + list(_PLUGINS)
    names += sorted(set(_entry_points()) - set(names))
    return tuple(names)


def strategy_origin(name):
    """The installed distribution that provides a strategy name.

    Parameters
    ----------
    name : str
        A strategy name.

    Returns
    -------
    str or None
        The name of the distribution (as ``pip install`` takes it) whose
        entry point in the group ``"sklearn_cf.strategies"`` provides
        ``name``; None for a built-in, for a strategy registered with
        :func:`register_strategy`, and for a name nothing provides.

    Examples
    --------
    >>> from sklearn_cf.strategies import strategy_origin
    >>> strategy_origin("replay") is None
    True
    """
    if not isinstance(name, str) or name in STRATEGIES:
        return None
    if name in _PLUGINS:
        return _PLUGINS[name][1]
    entry = _entry_points().get(name)
    return None if entry is None else _distribution(entry)


def strategy_classes(strategy):
    """The classes of the parts of a strategy name, in order.

    Examples
    --------
    >>> [cls.__name__ for cls in strategy_classes("replay+ewc")]
    ['Replay', 'EWC']
    """
    if isinstance(strategy, str):
        if strategy in BUILTIN:  # a name may hold "+" itself ("der++")
            return [BUILTIN[strategy]]
        if strategy in COMBINATIONS:
            return [BUILTIN[name] for name in strategy.split("+")]
        cls = _plugin_class(strategy)
        if cls is not None:
            return [cls]
    _refuse_name(strategy)
    raise AssertionError("unreachable")  # pragma: no cover


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


def parameter_constraints(strategy):
    """The accepted values of a strategy's parameters, as its parts declare them.

    Parameters
    ----------
    strategy : str or Strategy
        A strategy name (of :func:`available_strategies`) or object.

    Returns
    -------
    dict of str to constraint
        ``{param: constraint}`` over the parts, from each part class's
        ``_parameter_constraints`` (the objects of
        ``sklearn_cf._param_validation``: ``Real``, ``Integer``,
        ``Options``...; each has ``check(value, name)``). A parameter two
        parts share takes the first part's constraint; a parameter no
        constraint declares is left out.

    Examples
    --------
    >>> from sklearn_cf.strategies import parameter_constraints
    >>> constraints = parameter_constraints("replay+ewc")
    >>> sorted(constraints)[:4]
    ['epoch_size', 'fisher', 'fisher_rows', 'memory_dir']
    >>> constraints["rehearsal_ratio"].check(1.5, "rehearsal_ratio")
    Traceback (most recent call last):
    ...
    ValueError: rehearsal_ratio must be in [0, 1), got 1.5.
    """
    if isinstance(strategy, Strategy):
        classes = [type(part) for part in strategy.parts]
    else:
        classes = strategy_classes(strategy)
    constraints = {}
    for cls in classes:
        for name, constraint in cls._parameter_constraints.items():
            constraints.setdefault(name, constraint)
    return constraints


def make_strategy(strategy, params=None, strategy_params=None):
    """Build a fresh strategy object.

    Parameters
    ----------
    strategy : str or Strategy
        A name of :func:`available_strategies` (a built-in, a combination or
        a plugin), or a strategy object, which is cloned
        (``sklearn.base.clone``: its hyperparameters, none of its state) so
        that fitting never changes the object the user passed.
    params : dict or None
        The classifier's flat hyperparameters (``reg_lambda``,
        ``rehearsal_ratio``, ``epoch_size``, ``memory_size``, ``memory_dir``,
        ``fisher``...). Each part of a named strategy takes those its
        constructor declares; None values leave the part's default.
    strategy_params : dict or None
        ``strategy__<param>`` values: each must be a parameter of some part
        (of the object, for a strategy object), or of another built-in or
        registered strategy (then ignored, like a flat parameter the
        strategy does not use); none may also be set flat.

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
    # A parameter of another known strategy is ignored, as a flat one the
    # strategy does not use is (a search over strategy=["lwf", "naive"] with
    # strategy__alpha set); a name no strategy has is a mistake.
    others = [*BUILTIN.values(), *(cls for cls, _ in list(_PLUGINS.values()))]
    known = set().union(*(cls._get_param_names() for cls in others))
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

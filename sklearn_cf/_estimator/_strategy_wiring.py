"""Strategy wiring: the estimator's flat and ``strategy__<param>`` parameters
-> the strategy object, kept in step between months, and the settings that
are fixed from the base fit on."""

import contextlib
import copy
import inspect
import os

from ..strategies import (
    STRATEGIES,
    Combined,
    Strategy,
    make_strategy,
    parameter_constraints,
    strategy_classes,
)

__all__ = ["SEQUENCE_PARAMS", "STRUCTURAL", "check_sequence_config", "check_strategy_names",
           "check_strategy_param", "fitted_settings", "flat_constraints", "flat_strategy_params",
           "make_strategy_for", "same_value", "sequence_config", "strategy_params",
           "sync_strategy"]

#: Strategy parameters that shape its state: fixed after the base fit.
STRUCTURAL = ("memory_size", "memory_dir", "memory_policy")

#: What the fitted state is built on: fixed from the base fit until the next
#: ``fit`` (see :func:`check_sequence_config`).
SEQUENCE_PARAMS = ("strategy", "memory_size", "memory_dir", "memory_policy", "module",
                   "hidden_units", "dropout", "criterion", "device", "preprocessor")


def flat_constraints(init):
    """``{param: constraint}`` of the flat strategy parameters: the
    parameters of the estimator's constructor ``init`` that a built-in
    strategy declares, with the constraint it declares them with (so each is
    declared once); where the estimator's constructor
    ``init`` defaults one to None (the strategy's own default, e.g.
    ``reg_lambda=None``), None is accepted too."""
    defaults = inspect.signature(init).parameters
    constraints = {}
    for strategy in STRATEGIES:
        for name, constraint in parameter_constraints(strategy).items():
            if name in defaults and name not in constraints:
                none = defaults[name].default is None
                constraints[name] = _or_none(constraint) if none else constraint
    return constraints


def _or_none(constraint):
    if getattr(constraint, "none", True):
        return constraint
    constraint = copy.copy(constraint)
    constraint.none = True
    return constraint


def check_strategy_param(value, name):
    if not isinstance(value, Strategy):
        make_strategy(value)  # raises for unknown names and types


def same_value(a, b):
    """Whether a hyperparameter still has the value it had at the base fit
    (a folder given as a string or a path is the same folder)."""
    if a is b:
        return True
    if _is_transformer(a) and _is_transformer(b):
        # A preprocessor: the same class with the same parameters (a
        # checkpoint rebuilds it, so it is never the same object).
        return type(a) is type(b) and all(
            same_value(v, b.get_params(deep=False)[k])
            for k, v in a.get_params(deep=False).items())
    if isinstance(a, os.PathLike) or isinstance(b, os.PathLike):
        try:
            return os.fspath(a) == os.fspath(b)
        except TypeError:
            return False
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays or objects whose == is not a bool
        return False


def _is_transformer(value):
    return not isinstance(value, type) and all(
        hasattr(value, name) for name in ("fit", "transform", "get_params"))


def _flat_defaults(net):
    """The constructor defaults of the flat strategy parameters (from the
    first class in the estimator's MRO whose constructor names each)."""
    defaults = {}
    for cls in type(net).__mro__:
        parameters = inspect.signature(cls.__init__).parameters
        for name in net._flat_constraints:
            if name in parameters and name not in defaults:
                defaults[name] = parameters[name].default
    return defaults


def check_sequence_config(net):
    """The strategy, its memory, the network and its device are fixed from
    the base fit on: the fitted weights and the strategy's state are built
    on them."""
    fixed = net.sequence_config_
    # The strategy__ settings are compared below, as the strategy's.
    changed = [name for name in SEQUENCE_PARAMS
               if name in fixed and not same_value(getattr(net, name), fixed[name])]
    details = [f"{n}={fixed[n]!r} -> {getattr(net, n)!r}" for n in changed]
    if not changed:
        # The same, set as strategy__<param> or on a strategy object:
        # the strategy the settings give now against the fitted one.
        fresh = make_strategy_for(net).parts
        for new, old in zip(fresh, net.strategy_.parts):
            for name in STRUCTURAL:
                if name in new.get_params(deep=False) and not same_value(
                        getattr(new, name), getattr(old, name, None)):
                    details.append(f"the strategy's {name}={getattr(old, name)!r} -> "
                                   f"{getattr(new, name)!r}")
    if details:
        detail = ", ".join(details)
        raise ValueError(
            f"{detail} changed after the base fit; the fitted network and the state "
            "kept between months depend on it. Set it back to continue this "
            "sequence, or call fit to start a new one (on "
            "sklearn.base.clone(model).set_params(...) to keep this model)."
        )


def sequence_config(net):
    """What a new sequence of months is built on, fixed until the next fit:
    the :data:`SEQUENCE_PARAMS` and the structural ``strategy__<param>``
    values set (those not set are left out)."""
    config = {name: getattr(net, name) for name in SEQUENCE_PARAMS}
    if config["preprocessor"] is not None:
        # A copy: a change made to the user's object in place is a change.
        config["preprocessor"] = copy.deepcopy(config["preprocessor"])
    config.update((f"strategy__{name}", value) for name, value in strategy_params(net).items()
                  if name in STRUCTURAL)
    return config


@contextlib.contextmanager
def fitted_settings(net, fitted):
    """Give ``net`` the settings of :func:`sequence_config` that ``fitted``
    holds (a checkpoint's), for as long as the block runs; its own are put
    back afterwards, still waiting for the next fit.

    A structural ``strategy__<param>`` that ``fitted`` does not hold was not
    set at the base fit, so it is taken away for the block. ``fitted=None``
    (a checkpoint written before these were stored) changes nothing.
    """
    if not fitted:
        yield
        return
    missing = object()
    own = vars(net)
    names = set(fitted) | {key for key in own if key.startswith("strategy__")
                           and key[len("strategy__"):] in STRUCTURAL}
    kept = {name: own.get(name, missing) for name in names}
    for name in names:
        if name in fitted:
            own[name] = fitted[name]
        else:
            del own[name]
    try:
        yield
    finally:
        for name, value in kept.items():
            if value is missing:
                own.pop(name, None)
            else:
                own[name] = value


def check_strategy_names(strategy, params, owner):
    """Refuse ``strategy__<param>`` names that ``strategy`` cannot take, as
    scikit-learn's ``set_params`` refuses unknown parameters.

    ``params`` maps the names (without ``strategy__``) to their values. A
    strategy object takes the keys of its ``get_params(deep=True)``; a
    strategy name takes its parts' parameters, and ignores those of another
    known strategy (a search over ``strategy=["lwf", "naive"]`` with
    ``strategy__alpha`` set), as :func:`~sklearn_cf.strategies.make_strategy`
    does. An unknown strategy name is left to the check of ``strategy``.

    Raises
    ------
    ValueError
        ``"Invalid parameter 'strategy__<name>' for estimator <owner>: ..."``
        naming the parameters the strategy has.
    """
    if not params:
        return
    if isinstance(strategy, Strategy):
        valid = sorted(strategy.get_params(deep=True))
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"Invalid parameter 'strategy__{unknown[0]}' for estimator {owner}: "
                f"{type(strategy).__name__} has no parameter {unknown[0]!r}; its parameters "
                f"are {valid or 'none'}."
            )
        return
    try:
        classes = strategy_classes(strategy)
    except (TypeError, ValueError):
        return
    accepted = set().union(*(cls._get_param_names() for cls in classes))
    for name in sorted(set(params) - accepted):
        try:
            # Builds the parts at their defaults; refuses a name no strategy has.
            make_strategy(strategy, None, {name: None})
        except ValueError as exc:
            raise ValueError(
                f"Invalid parameter 'strategy__{name}' for estimator {owner}: {exc}"
            ) from None


def strategy_params(net):
    """The ``strategy__<param>`` values set on this estimator."""
    return {key[len("strategy__"):]: value for key, value in vars(net).items()
            if key.startswith("strategy__")}


def sync_strategy(net):
    """Apply the current hyperparameters to the fitted strategy, so that
    set_params(reg_lambda=...) or set_params(strategy__alpha=...) between
    months takes effect (the structural ones are fixed, see
    check_sequence_config)."""
    if isinstance(net.strategy, Strategy):
        params = net.strategy.get_params(deep=True)
        if isinstance(net.strategy, Combined):
            params = {k: v for k, v in params.items() if "__" in k}
        net.strategy_.set_params(**{k: v for k, v in params.items()
                                     if k.rpartition("__")[2] not in STRUCTURAL})
        return
    given = {**flat_strategy_params(net), **strategy_params(net)}
    for part in net.strategy_.parts:
        defaults = type(part).param_defaults()
        for name in part.get_params(deep=False):
            if name in STRUCTURAL:
                continue
            # Set, or set back to the default: the part's own default.
            setattr(part, name, given.get(name, defaults[name]))


def flat_strategy_params(net):
    """The flat hyperparameters set away from their defaults, which reach
    a named strategy's parts (at their defaults, a part keeps its own,
    and ``strategy__<param>`` may set it instead)."""
    defaults = _flat_defaults(net)
    return {name: getattr(net, name) for name in net._flat_constraints
            if not same_value(getattr(net, name), defaults[name])}


def make_strategy_for(net):
    """A fresh strategy object as the estimator's parameters describe it
    (a name with its flat and ``strategy__`` parameters, or a clone of an
    object); a strategy that cannot run under several processes is refused
    when :meth:`ContinualClassifier.process_shard` says there are several."""
    strategy = make_strategy(net.strategy, flat_strategy_params(net), strategy_params(net))
    if net.process_shard() is not None:
        for part in strategy.parts:
            if not part.shardable:
                raise ValueError(
                    f"strategy {part!r} runs the network on replayed rows outside the "
                    "distributed forward pass, which DDP cannot average; it is not "
                    "supported with several processes. Use 'replay', 'replay+lwf' or "
                    "'replay+ewc', or train DER in one process."
                )
    return strategy

"""Strategy specs: ``name[:param=value,...]`` strings and the constants they use.

A strategy is given as a *spec* string: a name from
:data:`sklearn_cf.strategies.STRATEGIES`, optionally followed by ``:`` and
comma-separated ``param=value`` overrides of
:class:`~sklearn_cf.ContinualClassifier` parameters, e.g.
``"naive:finetune_lr=1e-4"``, ``"ewc:fisher=hessian,reg_lambda=1000"`` or
``"replay:epoch_size=2000"``.

Every constant that describes what a spec may hold (:data:`SPEC_PARAMS`,
the numeric types, :data:`DEFAULT_REG_LAMBDA`, :data:`DEFAULT_STRATEGIES`)
lives in this one module, next to :func:`parse_strategy`, which reads them.
"""

import difflib
from dataclasses import dataclass, field

from ..strategies import STRATEGIES

__all__ = [
    "DEFAULT_REG_LAMBDA",
    "DEFAULT_STRATEGIES",
    "SPEC_PARAMS",
    "StrategySpec",
    "parse_hidden_units",
    "parse_strategy",
]

#: The strategies compared by default: the study's methods, its lower
#: fine-tune learning rate, and the two combinations.
DEFAULT_STRATEGIES = (
    "naive",
    "naive:finetune_lr=1e-4",
    "replay",
    "l2",
    "ewc",
    "joint",
    "ensemble",
    "replay+l2",
    "replay+ewc",
)

#: ``reg_lambda`` used when neither the spec nor ``estimator_params`` sets
#: one. Fisher entries are small, so EWC needs a far larger pull than L2: on
#: the default synthetic stream (seed 0, 12 months of 2000 rows) EWC with
#: lambda <= 1000 forgets as much as naive, and 1e4 to 1e5 stops most of it;
#: L2 is best near 1 (docs/results.md).
DEFAULT_REG_LAMBDA = {"l2": 1.0, "ewc": 1e4}

#: ContinualClassifier parameters a spec may override (plus any
#: ``optimizer__*`` or ``module__*`` parameter).
SPEC_PARAMS = (
    "batch_size",
    "device",
    "dropout",
    "epoch_size",
    "finetune_epochs",
    "finetune_lr",
    "fisher",
    "hidden_units",
    "lr",
    "max_epochs",
    "max_snapshots",
    "memory_size",
    "reg_lambda",
    "rehearsal_ratio",
)
_PREFIXES = ("optimizer__", "module__")
# Parameters whose values are always kept as strings ("fisher=true").
_STRING_PARAMS = ("device", "fisher")
# The type each numeric spec parameter needs (None allowed where the
# estimator allows it).
_FLOAT_PARAMS = ("dropout", "finetune_lr", "lr", "reg_lambda", "rehearsal_ratio")
_INT_PARAMS = ("batch_size", "epoch_size", "finetune_epochs", "max_epochs", "max_snapshots",
               "memory_size")


@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy spec: a strategy name and parameter overrides.

    Attributes
    ----------
    label : str
        The spec as given (whitespace removed); the strategy's name in
        results and tables.
    strategy : str
        A name from :data:`sklearn_cf.strategies.STRATEGIES`.
    params : dict
        ContinualClassifier parameters set for this strategy only.
    """

    label: str
    strategy: str
    params: dict = field(default_factory=dict)


def _parse_value(text):
    """``"1e-4"`` -> 0.0001, ``"3"`` -> 3, ``"None"`` -> None, else the string."""
    lowered = text.lower()
    if lowered == "none":
        return None
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_hidden_units(text, where="hidden_units"):
    """Read hidden layer widths joined by ``x``: ``"64x64"`` -> ``(64, 64)``.

    Parameters
    ----------
    text : str
        Widths joined by ``x`` (``"256x256"``, ``"128"``); ``""`` gives
        ``()``, a linear model.
    where : str, default="hidden_units"
        What the text came from (an option or a spec), named in the error.

    Returns
    -------
    tuple of int

    Raises
    ------
    ValueError
        For text that is not widths joined by ``x``.

    Examples
    --------
    >>> from sklearn_cf.compare import parse_hidden_units
    >>> parse_hidden_units("64x64"), parse_hidden_units("128"), parse_hidden_units("")
    ((64, 64), (128,), ())
    >>> parse_hidden_units("64,64", "--hidden-units")
    Traceback (most recent call last):
    ...
    ValueError: --hidden-units: hidden_units must be widths joined by 'x' (e.g. 64x64), got '64,64'.
    """
    text = str(text)
    try:
        return tuple(int(part) for part in text.lower().split("x") if part != "")
    except ValueError:
        raise ValueError(
            f"{where}: hidden_units must be widths joined by 'x' (e.g. 64x64), "
            f"got {text!r}."
        ) from None


def _check_spec_type(spec, key, value):
    if key in _FLOAT_PARAMS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok or (value is None and key == "finetune_lr")
        want = "a number"
    elif key in _INT_PARAMS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok or (value is None and key not in ("batch_size", "max_epochs"))
        want = "an integer"
    else:
        return
    if not ok:
        raise ValueError(
            f"In strategy spec {spec!r}: {key} must be {want}, got {value!r}."
        )


def parse_strategy(spec):
    """Parse a strategy spec ``name[:param=value,param=value]``.

    Parameters
    ----------
    spec : str or StrategySpec
        A strategy name from :data:`sklearn_cf.strategies.STRATEGIES`,
        optionally with :class:`~sklearn_cf.ContinualClassifier` parameter
        overrides after a colon. Values are read as int, float, None,
        True/False or else a string (``fisher`` and ``device`` always as
        strings); ``hidden_units`` takes widths joined by ``x``
        (``hidden_units=64x64``).

    Returns
    -------
    StrategySpec

    Raises
    ------
    ValueError
        For an unknown strategy name or parameter (naming the closest valid
        ones), a malformed ``param=value`` pair or a repeated parameter.

    Examples
    --------
    >>> from sklearn_cf.compare import parse_strategy
    >>> parse_strategy("naive:finetune_lr=1e-4")
    StrategySpec(label='naive:finetune_lr=1e-4', strategy='naive', params={'finetune_lr': 0.0001})
    >>> parse_strategy("ewc:fisher=hessian,reg_lambda=100").params
    {'fisher': 'hessian', 'reg_lambda': 100}
    >>> parse_strategy("naiv")
    Traceback (most recent call last):
    ...
    ValueError: Unknown strategy 'naiv' in spec 'naiv'. Valid names: ... Did you mean 'naive'?
    """
    if isinstance(spec, StrategySpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"A strategy spec must be a string like 'naive' or "
            f"'naive:finetune_lr=1e-4', got {spec!r}."
        )
    label = "".join(spec.split())
    name, _, rest = label.partition(":")
    if name not in STRATEGIES:
        close = difflib.get_close_matches(name, STRATEGIES, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown strategy {name!r} in spec {spec!r}. Valid names: "
            f"{', '.join(STRATEGIES)}.{hint}"
        )
    params = {}
    if rest:
        for item in rest.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(
                    f"In strategy spec {spec!r}: {item!r} is not of the form "
                    "param=value (e.g. naive:finetune_lr=1e-4,max_epochs=5)."
                )
            if key not in SPEC_PARAMS and not key.startswith(_PREFIXES):
                close = difflib.get_close_matches(key, SPEC_PARAMS, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"Unknown parameter {key!r} in strategy spec {spec!r}. Valid "
                    f"parameters: {', '.join(SPEC_PARAMS)}, optimizer__*, module__*.{hint}"
                )
            if key in params:
                raise ValueError(f"Parameter {key!r} is given twice in spec {spec!r}.")
            if key == "hidden_units":
                params[key] = parse_hidden_units(value, f"In strategy spec {spec!r}")
            elif key in _STRING_PARAMS:
                params[key] = value
            else:
                params[key] = _parse_value(value)
                _check_spec_type(spec, key, params[key])
    return StrategySpec(label, name, params)

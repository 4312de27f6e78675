"""Declarative hyperparameter constraints (scikit-learn's idea of
``_param_validation``): one constraint object per parameter, checked by
:func:`check_hyperparameters`, used by the estimator, the strategies and the
splitter alike."""

import difflib
import numbers

import numpy as np

__all__ = ["Integer", "IntSequence", "Options", "Real", "Satisfies", "Verbosity",
           "check_choice", "check_hyperparameters", "check_in_range", "check_positive_int"]


def check_in_range(value, name, low, high, *, low_open=False, high_open=False):
    """Check that a real number lies in an interval, naming it if not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or value != value:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}.")
    return float(value)


def check_positive_int(value, name, *, allow_none=False, minimum=1):
    """Check an integer hyperparameter (``None`` allowed when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = " or None" if allow_none else ""
        raise TypeError(f"{name} must be an int >= {minimum}{hint}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return int(value)


def check_choice(value, name, choices):
    """Check a string option, suggesting the closest valid one."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown {name}={value!r}. Valid values: {', '.join(map(repr, choices))}.{hint}"
        )
    return value


class Real:
    """A real number in an interval; infinity and NaN are refused unless
    ``high`` is infinite and ``allow_inf`` is set.

    Examples
    --------
    >>> Real(0, np.inf).check(float("inf"), "reg_lambda")
    Traceback (most recent call last):
    ...
    ValueError: reg_lambda must be in [0, inf), got inf.
    """

    def __init__(self, low, high, *, low_open=False, high_open=None, none=False):
        self.low, self.high = low, high
        self.low_open = low_open
        self.high_open = np.isinf(high) if high_open is None else high_open
        self.none = none

    def describe(self):
        interval = (f"{'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        return f"a finite number in {interval}" + (" or None" if self.none else "")

    def check(self, value, name):
        if value is None and self.none:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be {self.describe()}, got {value!r}.")
        check_in_range(value, name, self.low, self.high,
                       low_open=self.low_open, high_open=self.high_open)
        if not np.isfinite(value):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}.")


class Integer:
    """An int ``>= minimum`` (or one of ``also``, e.g. -1 for "all rows")."""

    def __init__(self, minimum, *, none=False, also=()):
        self.minimum, self.none, self.also = minimum, none, tuple(also)

    def check(self, value, name):
        if value is None and self.none:
            return
        if not isinstance(value, bool) and isinstance(value, numbers.Integral) and (
            value in self.also
        ):
            return
        extra = "".join(f" or {v}" for v in self.also)
        if self.none or extra:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                hint = (" or None" if self.none else "") + extra
                raise TypeError(f"{name} must be an int >= {self.minimum}{hint}, got {value!r}.")
            if value < self.minimum:
                raise ValueError(f"{name} must be >= {self.minimum}{extra}, got {value!r}.")
            return
        check_positive_int(value, name, minimum=self.minimum)


class Options:
    """One of a few values: strings (suggesting the closest), or True/False
    and None, matched exactly (1 is not True)."""

    def __init__(self, *choices):
        self.choices = choices

    def check(self, value, name):
        strings = tuple(c for c in self.choices if isinstance(c, str))
        others = [c for c in self.choices if not isinstance(c, str)]
        if any(value is c for c in others):
            return
        if isinstance(value, str) or not others:
            if isinstance(value, str) and value in strings:
                return
            if not others:
                check_choice(value, name, strings)
        raise ValueError(
            f"Unknown {name}={value!r}. Valid values: {', '.join(map(repr, self.choices))}."
        )


class IntSequence:
    """A list or tuple of ints >= ``minimum`` (layer widths)."""

    def __init__(self, minimum=1):
        self.minimum = minimum

    def check(self, value, name):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(
                f"{name} must be a tuple of ints (e.g. (256, 256)), got {value!r}."
            )
        for item in value:
            check_positive_int(item, f"{name} entries", minimum=self.minimum)


class Verbosity:
    """0 (quiet) or a larger int; a bool counts as 0/1."""

    def check(self, value, name):
        if isinstance(value, bool):
            return
        check_positive_int(value, name, minimum=0)


class Satisfies:
    """Any check function ``f(value, name)`` that raises on bad values."""

    def __init__(self, function):
        self.function = function

    def check(self, value, name):
        self.function(value, name)


def check_hyperparameters(estimator, constraints):
    """Check every ``estimator`` attribute named in ``constraints``.

    Parameters
    ----------
    estimator : object
    constraints : dict of str -> constraint
        Objects with ``check(value, name)`` that raise ``TypeError`` or
        ``ValueError`` naming the parameter and what it accepts.
    """
    for name, constraint in constraints.items():
        constraint.check(getattr(estimator, name), name)



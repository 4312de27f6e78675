"""Labels: the class labels training accepts (:func:`check_classes`), and
the month labels it accepts and how a checkpoint stores them.

A month label ends up in ``months_seen_``, ``cost_`` and ``snapshots_``, and
so in every checkpoint, which is read back with
``torch.load(weights_only=True)``: only numbers, strings, bools, ``None`` and
lists/dicts of them survive. :func:`check_month_label` therefore refuses at
training time any label a checkpoint could not give back, and
:func:`encode_label` / :func:`decode_label` turn the others into plain data
and back, with their exact type and value.

pandas is optional: it is looked up in ``sys.modules`` to recognise its
objects (a pandas object exists only once pandas is imported) and imported
only to decode a stored Timestamp or Period.
"""

import datetime
import math
import numbers
import operator
import sys
import zoneinfo

import numpy as np

from ._validation import check_no_missing, is_missing

__all__ = ["check_classes", "check_month_label", "encode_label", "decode_label",
           "label_type_change"]

SUPPORTED_TYPES = (
    "ints, floats, strings, bools, numpy datetime64, datetime.date/datetime, "
    "pandas Timestamp or Period"
)


def _pandas():
    """The pandas module if it is already imported, else None."""
    return sys.modules.get("pandas")


def _label_kind(label):
    """"number", "string" or the type's name: what may share one ``classes``."""
    if isinstance(label, (str, np.str_)):
        return "string"
    if isinstance(label, (numbers.Number, np.number, np.bool_)):
        return "number"
    return type(label).__name__


def check_classes(classes, what="classes"):
    """Every class label, as given to ``classes=``: sorted and distinct.

    ``classes`` must be a 1-d array-like of labels of one type (all numbers
    or all strings), without missing values. A scalar, a string, a nested
    list, or numbers mixed with strings (which numpy would turn into
    strings, so that ``0`` no longer matches the label ``0`` of ``y``) is
    refused, naming what was given.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
    what : str, default="classes"
        The name used in error messages.

    Returns
    -------
    ndarray of shape (n_distinct_classes,)

    Raises
    ------
    ValueError
        For anything that is not such an array-like (as
        :func:`sklearn.utils.multiclass.unique_labels` refuses it).

    Examples
    --------
    >>> check_classes(["b", "a", "b"])
    array(['a', 'b'], dtype='<U1')
    >>> check_classes(3)
    Traceback (most recent call last):
    ...
    ValueError: classes must be a 1-d array-like of labels of one type, got 3.
    >>> check_classes([0, "a"])
    Traceback (most recent call last):
    ...
    ValueError: classes must be a 1-d array-like of labels of one type, got numbers and strings: [0, 'a'].
    """
    expected = f"{what} must be a 1-d array-like of labels of one type"
    try:
        # dtype=object: the labels as given, before numpy coerces a mix.
        values = None if isinstance(classes, (str, bytes)) else np.asarray(classes, dtype=object)
    except ValueError:  # nesting numpy cannot shape
        values = None
    if values is None or values.ndim != 1:
        raise ValueError(f"{expected}, got {classes!r}.")
    check_no_missing(values, what)
    kinds = sorted({_label_kind(label) for label in values})
    if len(kinds) > 1 or (kinds and kinds[0] not in ("number", "string")):
        shown = " and ".join(kind + "s" for kind in kinds)
        raise ValueError(f"{expected}, got {shown}: {values[:10].tolist()}.")
    return np.unique(np.asarray(classes).reshape(-1))


def _type_name(labels):
    """What kind of labels ``labels`` are, in words: "integers", "numbers",
    "booleans", "text", or None for a mix or anything else."""
    kinds = {_label_kind(label) for label in labels}
    if kinds == {"string"}:
        return "text"
    if kinds != {"number"}:
        return None
    if all(isinstance(label, (bool, np.bool_)) for label in labels):
        return "booleans"
    if all(isinstance(label, (numbers.Integral, np.integer)) or float(label).is_integer()
           for label in labels):
        return "integers"
    return "numbers"


def label_type_change(classes, y):
    """Name a change of label type between a model's classes and new labels.

    A model trained on 0/1 and given ``"benign"``/``"malware"`` has not
    met new classes: its labels were written another way. This says so,
    where scikit-learn would say "Mix of label input types".

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        The model's labels (``classes_``).
    y : array-like of shape (n_samples,)
        The new labels.

    Returns
    -------
    str or None
        ``"the model's labels are <kind> (...); these are <kind> (...)"``
        when both sides are each of one kind and the kinds differ, else
        None.

    Examples
    --------
    >>> label_type_change([0, 1], ["benign", "malware", "benign"])
    "the model's labels are integers (0, 1); these are text ('benign', 'malware')"
    >>> label_type_change([0, 1], [1, 0]) is None
    True
    """
    have = np.asarray(classes, dtype=object).reshape(-1).tolist()
    new = np.unique(np.asarray(y).reshape(-1)).astype(object).tolist()
    before, after = _type_name(have), _type_name(new)
    if before is None or after is None or before == after:
        return None
    if {before, after} <= {"integers", "numbers"}:
        return None  # 1.0 and 1 are one label to numpy

    def shown(labels):
        text = ", ".join(map(repr, labels[:4]))
        return text + (", ..." if len(labels) > 4 else "")

    return (f"the model's labels are {before} ({shown(have)}); these are {after} "
            f"({shown(new)})")


def _shown(label):
    if isinstance(label, (float, np.floating)) and math.isnan(label):
        return "NaN"
    if isinstance(label, np.datetime64):
        return "NaT"
    return repr(label)


def check_month_label(label, what="month"):
    """Return a month label as training stores it, or refuse it.

    Numpy scalars become the Python objects they wrap, so that labels
    compare and print the same whether they came from ``np.unique`` or from
    the user; subclasses of int, float, str, date and datetime (enums...)
    become the base type, which a checkpoint can store. Datetimes, pandas
    Timestamps and Periods are kept as they are.

    Parameters
    ----------
    label : object
        One month label.
    what : str, default="month"
        What the label is called in error messages ("month" for the
        ``month=`` argument, "months" for the array given to ``fit``).

    Returns
    -------
    label : object
        An int, float, str, bool, numpy.datetime64, datetime.date,
        datetime.datetime, pandas.Timestamp or pandas.Period.

    Raises
    ------
    ValueError
        For a missing label (None, NaN, ``pd.NA``, ``pd.NaT``, NaT) or an
        infinite float.
    TypeError
        For any other type (tuples, Decimal, complex, bytes...): a
        checkpoint could not store it.

    Examples
    --------
    >>> import numpy as np
    >>> check_month_label(np.int64(3)), check_month_label(np.str_("2024-01"))
    (3, '2024-01')
    >>> label = check_month_label(np.datetime64("2024-01"))
    >>> type(label).__name__, str(label)
    ('datetime64', '2024-01')
    >>> check_month_label(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: month labels must not be missing (got NaN); every row needs a month.
    >>> check_month_label((2024, 1))
    Traceback (most recent call last):
    ...
    TypeError: month label (2024, 1) has type tuple, which a checkpoint cannot store; ...
    """
    if is_missing(label, strict=True):  # an array label: unsupported type, not missing
        raise ValueError(
            f"{what} labels must not be missing (got {_shown(label)}); every row "
            "needs a month."
        )
    if isinstance(label, np.generic) and not isinstance(label, (np.datetime64, np.timedelta64)):
        if isinstance(label, (np.integer, np.floating, np.bool_, np.str_)):
            return check_month_label(label.item(), what)
    elif isinstance(label, bool):
        return label
    elif isinstance(label, int):
        return operator.index(label)  # an exact int, also for IntEnum members
    elif isinstance(label, float):
        if not math.isfinite(label):
            raise ValueError(
                f"{what} labels must be finite numbers (got {label!r}); label "
                "months with finite numbers, strings or dates."
            )
        return float.__float__(label)
    elif isinstance(label, str):
        return str.__str__(label)
    elif isinstance(label, np.datetime64):
        return label
    else:
        pd = _pandas()
        if pd is not None and isinstance(label, (pd.Timestamp, pd.Period)):
            return label
        if isinstance(label, datetime.datetime):
            if type(label) is not datetime.datetime:
                label = datetime.datetime(
                    *label.timetuple()[:6], label.microsecond, label.tzinfo, fold=label.fold
                )
            return label
        if isinstance(label, datetime.date):
            if type(label) is not datetime.date:
                label = datetime.date(label.year, label.month, label.day)
            return label
    raise TypeError(
        f"{what} label {label!r} has type {type(label).__name__}, which a checkpoint "
        f"cannot store; use {SUPPORTED_TYPES}."
    )


def _encode_tz(tz, when):
    """A tzinfo as plain data: a zone name where there is one, otherwise the
    fixed offset in force at ``when``."""
    if isinstance(tz, datetime.timezone):
        args = tz.__getinitargs__()  # (offset,) or (offset, name)
        return {"offset_us": args[0] // datetime.timedelta(microseconds=1),
                "name": args[1] if len(args) > 1 else None}
    key = getattr(tz, "key", None) if isinstance(tz, zoneinfo.ZoneInfo) else None
    key = key or getattr(tz, "zone", None)  # pytz zones name themselves .zone
    if isinstance(key, str):
        return {"zone": key}
    # Other tzinfo classes (dateutil, custom): the instant and its offset
    # survive, the class does not.
    return {"offset_us": when.utcoffset() // datetime.timedelta(microseconds=1),
            "name": None}


def _decode_tz(data):
    if "zone" in data:
        return zoneinfo.ZoneInfo(data["zone"])
    offset = datetime.timedelta(microseconds=data["offset_us"])
    if data.get("name") is None:
        return datetime.timezone(offset)
    return datetime.timezone(offset, data["name"])


def encode_label(label):
    """A month label as data that ``torch.load(weights_only=True)`` reads.

    Ints, floats, strings and bools are stored as they are; other types as a
    small dict that :func:`decode_label` turns back into the same type and
    value (numpy datetime64 with its unit, dates and datetimes with their
    time zone, pandas Timestamps with their time zone and unit, pandas
    Periods with their frequency).

    Parameters
    ----------
    label : object
        A month label that :func:`check_month_label` accepts.

    Returns
    -------
    int, float, str, bool or dict

    Raises
    ------
    ValueError, TypeError
        As :func:`check_month_label`.

    Examples
    --------
    >>> import numpy as np
    >>> encode_label(np.int64(7))
    7
    >>> data = encode_label(np.datetime64("2024-03", "M"))
    >>> data
    {'datetime64': 650, 'unit': 'M'}
    >>> back = decode_label(data)
    >>> str(back), back.dtype
    ('2024-03', dtype('<M8[M]'))
    """
    label = check_month_label(label)
    if isinstance(label, (bool, int, float, str)):
        return label
    if isinstance(label, np.datetime64):
        unit, count = np.datetime_data(label.dtype)
        return {"datetime64": int(label.astype(np.int64)),
                "unit": unit if count == 1 else f"{count}{unit}"}
    pd = _pandas()
    if pd is not None and isinstance(label, pd.Period):
        return {"period": int(label.ordinal), "freq": label.freqstr}
    if pd is not None and isinstance(label, pd.Timestamp):
        return {
            "timestamp": label.isoformat(),  # with the UTC offset, exact to the ns
            "unit": getattr(label, "unit", None),
            "tz": None if label.tz is None else _encode_tz(label.tz, label),
        }
    is_datetime = isinstance(label, datetime.datetime)
    data = {"date": label.isoformat(), "datetime": is_datetime}
    if is_datetime and label.tzinfo is not None:
        data["tz"] = _encode_tz(label.tzinfo, label)
    return data


def decode_label(data):
    """The month label that :func:`encode_label` stored as ``data``.

    Also reads the string forms of datetime64 and Period labels written by
    earlier checkpoints.

    Parameters
    ----------
    data : int, float, str, bool or dict

    Returns
    -------
    object

    Raises
    ------
    ValueError
        When ``data`` is not something :func:`encode_label` writes.

    Examples
    --------
    >>> import datetime
    >>> decode_label(encode_label(datetime.date(2024, 1, 31)))
    datetime.date(2024, 1, 31)
    """
    if isinstance(data, (bool, int, float, str)):
        return data
    if not isinstance(data, dict):
        raise ValueError(
            f"a stored month label is {type(data).__name__} {data!r}, not a number, "
            "string or label dict."
        )
    try:
        return _decode_dict(data)
    except ImportError:
        raise
    except Exception as exc:  # KeyError, TypeError, parse errors of the values
        raise ValueError(
            f"a stored month label {data!r} cannot be decoded ({type(exc).__name__}: {exc})."
        ) from None


def _decode_dict(data):
    if "datetime64" in data:
        if "unit" not in data:  # earlier checkpoints: the string form
            return np.datetime64(data["datetime64"])
        return np.datetime64(operator.index(data["datetime64"]), data["unit"])
    if "period" in data or "timestamp" in data:
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                f"This checkpoint has pandas month labels ({data!r}); install pandas "
                "to load it."
            ) from None
        if "period" in data:
            value = data["period"]
            if isinstance(value, str):  # earlier checkpoints: the string form
                return pd.Period(value, freq=data["freq"])
            return pd.Period(ordinal=operator.index(value), freq=data["freq"])
        stamp = pd.Timestamp(data["timestamp"])
        if data["tz"] is not None:
            stamp = stamp.tz_convert(_decode_tz(data["tz"]))
        if data["unit"] is not None and hasattr(stamp, "as_unit"):
            stamp = stamp.as_unit(data["unit"])
        return stamp
    if data["datetime"]:
        value = datetime.datetime.fromisoformat(data["date"])
        if data.get("tz") is not None:
            value = value.astimezone(_decode_tz(data["tz"]))
        return value
    return datetime.date.fromisoformat(data["date"])

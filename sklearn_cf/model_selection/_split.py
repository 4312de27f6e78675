"""Cross-validation for continual (monthly) training."""

import datetime
import hashlib
import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator

from .._compat import to_python
from .._param_validation import Integer, Real, check_hyperparameters
from .._validation import is_missing

__all__ = ["SequentialSplit"]

#: What each checked parameter of :class:`SequentialSplit` must be, for its
#: error message.
_MEANING = {
    "n_splits": "an integer >= 1",
    "test_size": ("a float in the open interval (0, 1), the share of each month held out "
                  "for testing"),
    "n_future_months": "an integer >= 0",
    "test_prevalence": ("None or a float in the open interval (0, 1), the share of "
                        "positives in every month's test rows (e.g. 0.1)"),
}


def _fmt(value):
    """Readable representation of one month label for error messages."""
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return str(value)
    return repr(to_python(value))


def _fmt_list(values, limit=10):
    shown = ", ".join(_fmt(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values)} in total)"
    return f"[{shown}]"


def _num_samples(X):
    if X is None:
        raise ValueError(
            "SequentialSplit.split needs X (or any array with one entry per row) "
            "to know the number of rows; got X=None."
        )
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(X)
    except TypeError as exc:
        raise ValueError(
            f"Cannot count the rows of X of type {type(X).__name__}; pass an "
            f"array-like with one entry per row."
        ) from exc


def _missing_mask(months):
    """Boolean mask of missing labels (None, NaN, NaT, pd.NA)."""
    kind = months.dtype.kind
    if kind in "fc":
        return np.isnan(months)
    if kind in "mM":
        return np.isnat(months)
    if kind != "O":
        return np.zeros(months.shape, dtype=bool)
    try:  # pandas knows every flavour of missing value, and is vectorized
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is installed for the tests
        pd = None
    if pd is not None:
        return np.asarray(pd.isna(months), dtype=bool)

    return np.fromiter((is_missing(v) for v in months), bool, len(months))


class SequentialSplit(BaseCrossValidator):
    """Per-month train/test splitter for continual monthly training.

    Every split holds out a ``test_size`` share of *every* month as that
    month's test rows -- stratified by ``y`` within the month when ``y`` is
    given -- and trains on the remaining rows of every month, so that a model
    trained month after month can be scored on each month, old and new, to
    fill a forgetting matrix (see :mod:`sklearn_cf.metrics`). The last
    ``n_future_months`` months (in sorted order) are never trained on: all
    their rows are test rows, to measure how the model does on months it has
    not seen yet.

    Each repetition draws a different hold-out; rows are never in both the
    train and the test part of a split. A month's split depends on that
    month alone (its rows, in their order, its labels and its label's
    text): adding rows, labels or months elsewhere in the stream never
    changes which rows of a month are held out, so a choice made on the
    months up to ``k`` sees the same held-out rows whatever follows them. The month of each row is passed to
    :meth:`split` as ``months=`` (requested by default for metadata routing,
    so ``GridSearchCV(...).fit(X, y, months=months)`` works once
    ``sklearn.set_config(enable_metadata_routing=True)``) or, without
    metadata routing, as ``groups=`` (e.g. ``cross_validate(..., groups=months)``).

    Parameters
    ----------
    n_splits : int, default=5
        Number of repetitions (independently drawn hold-outs).

    test_size : float, default=0.2
        Share of each month's rows held out as its test rows, in the open
        interval (0, 1). Within a month (and, with ``y``, within each class
        of the month) the number of test rows is the share rounded down or
        up at random, so that on average it is exactly ``test_size``; every
        trained month keeps at least one train and one test row.

    n_future_months : int, default=0
        Number of last months (in sorted order) whose rows all go to the
        test part. At least one month must remain to train on.

    random_state : int, RandomState instance or None, default=None
        Controls the hold-outs. An int gives the same splits on every call,
        each repetition drawn from its own seed derived from it (repetition
        ``k`` does not depend on ``n_splits``), and each month of a
        repetition from a seed of its own, derived from the repetition's and
        the month label's text (see Notes). ``None`` gives fresh randomness
        on every call.

    test_prevalence : float in (0, 1) or None, default=None
        Binary targets: the share of positives (the larger label, e.g.
        malware) that every month's test rows should have, as in the wild
        (TESSERACT's third constraint: a realistic class ratio in testing;
        e.g. 0.1). Each month's test rows are drawn as without it, then the
        surplus of one class is dropped at random, so that the month's
        positive share is the one closest to ``test_prevalence`` that keeps
        every row of the other class; dropped rows are in neither part.
        Training rows are left as they are. A month whose test rows lack a
        class keeps them all. None: test rows keep the month's own ratio.

    See Also
    --------
    sklearn.model_selection.StratifiedShuffleSplit : Stratified random
        hold-outs, without the per-month structure.
    sklearn.model_selection.TimeSeriesSplit : Train on the past, test on the
        future.

    Notes
    -----
    With ``test_prevalence=p``, a month's ``P`` positive and ``N`` negative
    test rows become ``min(P, max(1, round(p N / (1 - p))))`` positives
    and all negatives when ``P / (P + N) > p``, else all positives and
    ``min(N, max(1, round(P (1 - p) / p)))`` negatives (Pendlebury et al.,
    *TESSERACT: Eliminating Experimental Bias in Malware Classification
    across Space and Time*, USENIX Security 2019, constraint C3). The draw
    uses the month's generator after its hold-out, so the splits without
    ``test_prevalence`` are unchanged.

    Each month ``m`` of repetition ``k`` draws from
    ``SeedSequence(entropy, spawn_key=(k, h(m)))``, where ``entropy`` comes
    from ``random_state`` and ``h(m)`` is the first 8 bytes of the SHA-256
    of the month label's text (a date at the start of a month as
    ``"YYYY-MM"``, so ``"2024-01"``, ``np.datetime64("2024-01")``, a
    ``Timestamp`` of 2024-01-01 and a ``Period`` of that month draw alike;
    the integer ``202401`` is other text). Classes are ordered by the
    month's own labels. The only thing another month decides is whether a
    month is one of the ``n_future_months`` last ones.

    Rows of a month (ordered by class, then at random) are selected by
    systematic sampling with a random offset ``u ~ U[0, 1)``: the row at
    position ``p`` is a test row when ``floor((p + 1) * t + u) - floor(p * t + u)
    == 1``. Each class of ``c`` rows then gets ``floor(c * t)`` or
    ``ceil(c * t)`` test rows (``c * t`` on average), and so does the month.
    A month whose draw gives no test row (or no train row) gets one row moved,
    which keeps those bounds. Months are sorted with :func:`numpy.unique`, so
    labels may be integers, strings, ``numpy.datetime64`` or
    ``pandas.Period`` objects.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf.model_selection import SequentialSplit
    >>> X = np.zeros((9, 1))
    >>> y = np.array([0, 0, 1, 0, 0, 1, 0, 1, 1])
    >>> months = np.array(["2024-01"] * 3 + ["2024-02"] * 3 + ["2024-03"] * 3)
    >>> cv = SequentialSplit(n_splits=2, test_size=0.3, n_future_months=1,
    ...                      random_state=0)
    >>> cv
    SequentialSplit(n_future_months=1, n_splits=2, random_state=0, test_size=0.3)
    >>> for train, test in cv.split(X, y, months=months):
    ...     print("TRAIN:", train, "TEST:", test)
    TRAIN: [1 2 3 4] TEST: [0 5 6 7 8]
    TRAIN: [0 1 3 4] TEST: [2 5 6 7 8]
    """

    # ``months`` (metadata routing) and ``groups`` (legacy) are requested by
    # default, so that no ``set_split_request`` call is needed.
    __metadata_request__split = {"groups": True, "months": True}

    # The parameters ``split`` and ``get_n_splits`` check (random_state is
    # checked where it is turned into generators, by ``split``).
    _parameter_constraints = {
        "n_splits": Integer(1),
        "test_size": Real(0, 1, low_open=True, high_open=True),
        "n_future_months": Integer(0),
        "test_prevalence": Real(0, 1, low_open=True, high_open=True, none=True),
    }

    def __init__(
        self, n_splits=5, *, test_size=0.2, n_future_months=0, random_state=None,
        test_prevalence=None,
    ):
        self.n_splits = n_splits
        self.test_size = test_size
        self.n_future_months = n_future_months
        self.random_state = random_state
        self.test_prevalence = test_prevalence

    def __repr__(self):
        # One line, parameters sorted as sklearn prints splitters;
        # test_prevalence only when set, so that existing reprs stay as they were.
        names = ["n_future_months", "n_splits", "random_state", "test_size"]
        if self.test_prevalence is not None:
            names.insert(3, "test_prevalence")
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ API
    def get_n_splits(self, X=None, y=None, groups=None, months=None):
        """Return the number of splitting iterations.

        Parameters
        ----------
        X, y, groups, months : object
            Always ignored, exist for API compatibility.

        Returns
        -------
        n_splits : int
        """
        self._check_params()
        return int(self.n_splits)

    def split(self, X, y=None, groups=None, months=None):
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; only its number of rows is used.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs), \
                default=None
            Target used to stratify the hold-out within each month. Without
            it each month is split at random.

        groups : array-like of shape (n_samples,), default=None
            Month label of each row, for callers without metadata routing
            (e.g. ``cross_validate(..., groups=months)``). Ignored when
            ``months`` is given.

        months : array-like of shape (n_samples,), default=None
            Month label of each row: sortable values such as integers,
            strings, ``numpy.datetime64`` or ``pandas.Period``; no missing
            values.

        Yields
        ------
        train : ndarray of int
            The sorted training set indices for that split.

        test : ndarray of int
            The sorted test set indices for that split.
        """
        self._check_params()
        n_samples = _num_samples(X)
        if months is None:
            months = groups
        month_idx, labels = self._check_months(months, n_samples)
        strata = self._check_y(y, n_samples)
        if self.test_prevalence is not None:
            self._check_binary_for_prevalence(y, strata)

        n_labels = len(labels)
        n_trained = n_labels - self.n_future_months
        counts = np.bincount(month_idx, minlength=n_labels)
        small = np.flatnonzero(counts[:n_trained] < 2)
        if small.size:
            details = ", ".join(
                f"{_fmt(labels[m])} ({counts[m]} row(s))" for m in small[:10]
            )
            raise ValueError(
                f"Month(s) too small to split: {details}. Every trained month "
                f"needs at least 2 rows (one train, one test row), and no "
                f"test_size can split a month with fewer (test_size="
                f"{self.test_size!r} is not the problem). Merge or drop these "
                f"months, or, if they are the last months, keep them "
                f"untrained with n_future_months."
            )

        t = float(self.test_size)
        # Rows of each month, in their order in X.
        by_month = np.argsort(month_idx, kind="stable")
        month_rows = np.split(by_month, np.cumsum(counts)[:-1])
        month_keys = [_month_key(label) for label in labels]

        for repetition in self._seeds():
            is_test = np.zeros(n_samples, dtype=bool)
            keep = np.ones(n_samples, dtype=bool)
            for m, rows in enumerate(month_rows):
                # The month's own generator: its draws depend on its rows and
                # labels alone, never on another month's size or position.
                rng = np.random.default_rng(np.random.SeedSequence(
                    repetition.entropy, spawn_key=(*repetition.spawn_key, month_keys[m])))
                codes = _class_codes(strata, rows)
                if m >= n_trained:
                    is_test[rows] = True
                else:
                    is_test[rows] = self._hold_out(codes, t, rng)
                if self.test_prevalence is not None:
                    keep[rows] = self._prevalence_keep(is_test[rows], codes, rng)
            train = np.flatnonzero(~is_test)
            yield train, np.flatnonzero(is_test & keep)

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _hold_out(codes, t, rng):
        """Test mask of one month's rows (``codes``: their class codes)."""
        n = len(codes)
        # order the month's rows by class, then at random
        order = np.lexsort((rng.random(n), codes))
        pos = np.arange(n)
        offset = rng.random()
        selected = (np.floor((pos + 1) * t + offset) - np.floor(pos * t + offset)) >= 1
        is_test = np.empty(n, dtype=bool)
        is_test[order] = selected
        n_test = int(is_test.sum())
        if n_test in (0, n):  # keep at least one test and one train row
            want_test = n_test == 0
            candidates = order[is_test[order] != want_test]
            is_test[candidates[rng.integers(len(candidates))]] = want_test
        return is_test

    # ------------------------------------------------------------- helpers
    def _prevalence_keep(self, is_test, codes, rng):
        """One month's rows to keep: all but the surplus class's dropped test
        rows (``codes``: the month's class codes, 1 for the larger label)."""
        p = float(self.test_prevalence)
        keep = np.ones(len(is_test), dtype=bool)
        rows = np.flatnonzero(is_test)
        pos, neg = rows[codes[rows] == 1], rows[codes[rows] == 0]
        if not len(pos) or not len(neg):
            return keep
        if len(pos) / len(rows) > p:
            surplus, n_keep = pos, min(len(pos), max(1, round(p * len(neg) / (1 - p))))
        else:
            surplus, n_keep = neg, min(len(neg), max(1, round(len(pos) * (1 - p) / p)))
        keep[rng.permutation(surplus)[n_keep:]] = False
        return keep

    def _check_binary_for_prevalence(self, y, strata):
        if y is None:
            raise ValueError(
                f"test_prevalence={self.test_prevalence!r} sets the share of positives in "
                "every month's test rows, so split needs y; pass the target."
            )
        n_classes = int(_class_codes(strata, np.arange(len(strata))).max()) + 1
        if n_classes != 2:
            raise ValueError(
                f"test_prevalence needs a binary target (positives: the larger label); "
                f"y has {n_classes} classes. Drop test_prevalence for this target."
            )

    def _check_params(self):
        """Check the parameters with :attr:`_parameter_constraints`; a bad
        value is a ``ValueError`` that says what the parameter means."""
        for name, constraint in self._parameter_constraints.items():
            try:
                check_hyperparameters(self, {name: constraint})
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name} must be {_MEANING[name]}; got {name}={getattr(self, name)!r}."
                ) from None

    def _check_months(self, months, n_samples):
        if months is None:
            raise ValueError(
                "SequentialSplit needs the month of every row, but neither "
                "`months` nor `groups` was given. Pass `months=` with metadata "
                "routing enabled (sklearn.set_config(enable_metadata_routing="
                "True), then e.g. GridSearchCV(...).fit(X, y, months=months)), "
                "or pass the months as `groups=` (e.g. cross_validate(..., "
                "groups=months) or cv.split(X, y, groups=months))."
            )
        months = np.asarray(months)
        if months.ndim != 1:
            raise ValueError(
                f"months must be 1-D with one label per row; got an array of "
                f"shape {months.shape}."
            )
        if months.shape[0] != n_samples:
            raise ValueError(
                f"months has {months.shape[0]} entries but X has {n_samples} "
                f"rows; pass one month label per row."
            )
        missing = _missing_mask(months)
        if missing.any():
            where = np.flatnonzero(missing)
            raise ValueError(
                f"months contains {where.size} missing value(s) (None, NaN or "
                f"NaT), e.g. at row(s) {where[:5].tolist()}; every row needs a "
                f"month label. Drop those rows or fill in their months."
            )
        try:
            labels, month_idx = np.unique(months, return_inverse=True)
        except (TypeError, ValueError) as exc:
            kinds = sorted({type(v).__name__ for v in months[:1000]})
            raise ValueError(
                f"months cannot be sorted: {exc} (value types seen: "
                f"{', '.join(kinds)}). Use labels of one comparable type, e.g. "
                f"all integers, all 'YYYY-MM' strings, numpy datetime64 or "
                f"pandas Periods of one frequency."
            ) from exc
        month_idx = month_idx.reshape(-1)
        if len(labels) < 2:
            raise ValueError(
                f"SequentialSplit needs at least two distinct months; got "
                f"{len(labels)}: {_fmt_list(labels)}."
            )
        if self.n_future_months >= len(labels):
            raise ValueError(
                f"n_future_months={self.n_future_months} leaves no month to "
                f"train on: there are only {len(labels)} distinct months "
                f"{_fmt_list(labels)}. Use n_future_months <= "
                f"{len(labels) - 1}."
            )
        return month_idx, labels

    @staticmethod
    def _check_y(y, n_samples):
        """The stratum of each row (None without ``y``)."""
        if y is None:
            return None
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n_samples:
            length = "a scalar" if y.ndim == 0 else f"{y.shape[0]} entries"
            raise ValueError(
                f"y has {length} but X has {n_samples} rows; pass one target "
                f"per row, or y=None to split without stratification."
            )
        if y.ndim > 1:
            # one stratum per distinct row, as StratifiedShuffleSplit does
            y = np.array([" ".join(map(str, row)) for row in y.reshape(n_samples, -1)])
        return y

    def _seeds(self):
        """One independent seed sequence per repetition."""
        rs = self.random_state
        if rs is None:
            seed = np.random.SeedSequence()
        elif isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            if rs < 0:
                raise ValueError(
                    f"random_state must be a non-negative integer, a "
                    f"RandomState instance or None; got random_state={rs!r}."
                )
            seed = np.random.SeedSequence(int(rs))
        elif isinstance(rs, np.random.RandomState):
            seed = np.random.SeedSequence(rs.randint(0, 2**32, size=4).tolist())
        elif isinstance(rs, np.random.Generator):
            seed = np.random.SeedSequence(rs.integers(0, 2**32, size=4).tolist())
        else:
            raise ValueError(
                f"random_state must be a non-negative integer, a RandomState "
                f"instance or None; got random_state={rs!r}."
            )
        return seed.spawn(int(self.n_splits))


def _class_codes(strata, rows):
    """Class code of each of ``rows`` among the classes of those rows alone
    (all 0 without a target): a month's order of classes is its own."""
    if strata is None:
        return np.zeros(len(rows), dtype=np.intp)
    values = strata[rows]
    try:
        _, codes = np.unique(values, return_inverse=True)
    except TypeError:
        _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.reshape(-1)


def _month_text(label):
    """A month label as text, the same for the same month whatever its type:
    a date at the start of a month is ``"YYYY-MM"`` (as a ``Period`` of a
    month prints), one at midnight ``"YYYY-MM-DD"``."""
    if isinstance(label, (np.datetime64, datetime.date)):
        value = np.datetime64(label)
        for unit in ("M", "D"):
            coarse = value.astype(f"datetime64[{unit}]")
            if coarse == value:
                return str(coarse)
        return str(value)
    return str(to_python(label))


def _month_key(label):
    """A stable integer from a month label's text (not its position): the
    month's part of the seed of its draws."""
    digest = hashlib.sha256(_month_text(label).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")

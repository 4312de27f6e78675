"""Continual-learning summaries of a forgetting matrix.

A *forgetting matrix* ``R`` has ``R[i, j]`` = score on month ``j``'s test
rows after training through month ``i``. Rows index the ``n_trained`` trained
months, columns all ``n_months`` evaluated months (``n_months >= n_trained``);
the last ``n_months - n_trained`` columns are "future" months the model was
never trained on.

Every function here is a pure numpy function of ``R``. Undefined cells
(``NaN``: a month without test rows, ROC-AUC on a one-class month, ...) are
skipped: each average is taken over the terms whose cells are all defined, and
an average with no defined term is ``NaN`` (without a ``RuntimeWarning``).
Structurally undefined quantities (e.g. backward transfer with a single
trained month) raise a ``ValueError`` instead.
"""

import numbers

import numpy as np

from .._compat import nanmean

__all__ = [
    "area_under_time",
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
    "learning_accuracy",
    "next_month_aut",
    "summarize",
]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _check_matrix(R):
    """Validate ``R`` and return it as a 2-D float array (a copy-free view if
    possible)."""
    try:
        arr = np.asarray(R)
    except Exception as exc:  # ragged nested lists and similar
        raise ValueError(
            f"R must be a 2-D numeric array of shape (n_trained, n_months); "
            f"it could not be converted to an array: {exc}"
        ) from exc
    if arr.dtype.kind in "biuf":
        arr = arr.astype(float, copy=False)
    elif arr.dtype.kind == "O":
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"R must be a 2-D numeric array of shape (n_trained, n_months); "
                f"got an object array of shape {arr.shape} with non-numeric "
                f"entries ({exc})."
            ) from exc
    else:
        raise ValueError(
            f"R must be a 2-D numeric array of shape (n_trained, n_months); got "
            f"dtype {arr.dtype} with shape {arr.shape}."
        )
    if arr.ndim != 2:
        raise ValueError(
            f"R must be a 2-D array of shape (n_trained, n_months); got an array "
            f"with {arr.ndim} dimension(s) and shape {arr.shape}."
        )
    n_trained, n_months = arr.shape
    if n_trained < 1:
        raise ValueError(
            f"R must have at least one row (one trained month); got shape "
            f"{arr.shape}."
        )
    if n_months < n_trained:
        raise ValueError(
            f"R must have n_months >= n_trained (one column per evaluated month, "
            f"trained months first); got shape {arr.shape}, i.e. "
            f"n_trained={n_trained} > n_months={n_months}."
        )
    return arr


def _nanmax_columns(block):
    """Column-wise maximum ignoring NaN; NaN for an all-NaN column (no
    warning)."""
    filled = np.where(np.isnan(block), -np.inf, block)
    out = filled.max(axis=0)
    out[np.isnan(block).all(axis=0)] = np.nan
    return out


def _require_two_trained(R, what):
    if R.shape[0] < 2:
        raise ValueError(
            f"{what} needs at least two trained months (rows of R); got R of "
            f"shape {R.shape}."
        )


def _check_baseline(baseline, R):
    n_trained, n_months = R.shape
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        return np.full(n_months, float(baseline))
    try:
        b = np.asarray(baseline, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"baseline must be a number or a 1-D numeric array; got "
            f"{baseline!r}."
        ) from exc
    if b.ndim == 0:
        return np.full(n_months, float(b))
    if b.ndim != 1 or b.shape[0] not in (n_trained, n_months):
        raise ValueError(
            f"baseline must be a scalar or a 1-D array with one score per month "
            f"(length n_months={n_months}, or n_trained={n_trained}); got shape "
            f"{b.shape} for R of shape {R.shape}."
        )
    return b


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------
def average_accuracy(R):
    """Average final score over the trained months.

    Parameters
    ----------
    R : array-like of shape (n_trained, n_months)
        Forgetting matrix: ``R[i, j]`` is the score on month ``j`` after
        training through month ``i``. ``NaN`` cells are skipped.

    Returns
    -------
    float
        ``NaN`` if every cell used is ``NaN``.

    Notes
    -----
    With ``T = n_trained``,

    .. math:: \\mathrm{ACC} = \\frac{1}{T} \\sum_{j=0}^{T-1} R_{T-1, j}

    the "average accuracy" of Lopez-Paz & Ranzato, *Gradient Episodic Memory
    for Continual Learning*, NeurIPS 2017 (GEM). The name is historical: it
    averages whatever score fills ``R``. Future months (columns ``j >= T``)
    are not included. ``NaN`` cells are dropped from the mean.

    Examples
    --------
    >>> from sklearn_cf.metrics import average_accuracy
    >>> R = [[0.75, 0.50, 0.25],
    ...      [0.50, 1.00, 0.50]]
    >>> average_accuracy(R)  # (0.5 + 1.0) / 2; month 2 is a future month
    0.75
    """
    R = _check_matrix(R)
    T = R.shape[0]
    return nanmean(R[T - 1, :T])


def learning_accuracy(R):
    """Average score on each month right after training on it.

    Parameters
    ----------
    R : array-like of shape (n_trained, n_months)
        Forgetting matrix. ``NaN`` cells are skipped.

    Returns
    -------
    float

    Notes
    -----
    .. math:: \\mathrm{LA} = \\frac{1}{T} \\sum_{j=0}^{T-1} R_{j, j}

    the "learning accuracy" of Riemer et al., *Learning to Learn without
    Forgetting by Maximizing Transfer and Minimizing Interference*, ICLR 2019.
    It measures plasticity: how well each new month is learned.

    Examples
    --------
    >>> from sklearn_cf.metrics import learning_accuracy
    >>> R = [[0.75, 0.50, 0.25],
    ...      [0.50, 1.00, 0.50]]
    >>> learning_accuracy(R)  # (0.75 + 1.0) / 2
    0.875
    """
    R = _check_matrix(R)
    T = R.shape[0]
    return nanmean(np.diagonal(R[:, :T]))


def backward_transfer(R):
    """Backward transfer (GEM): how training on later months changed the
    score on earlier ones.

    Parameters
    ----------
    R : array-like of shape (n_trained, n_months)
        Forgetting matrix with ``n_trained >= 2``. ``NaN`` cells are skipped.

    Returns
    -------
    float
        Negative values mean forgetting. ``NaN`` when no term is defined.

    Raises
    ------
    ValueError
        If ``R`` has fewer than two rows (backward transfer is undefined).

    Notes
    -----
    With ``T = n_trained``,

    .. math::
        \\mathrm{BWT} = \\frac{1}{T-1} \\sum_{j=0}^{T-2} (R_{T-1, j} - R_{j, j})

    from Lopez-Paz & Ranzato, *Gradient Episodic Memory for Continual
    Learning*, NeurIPS 2017. Terms with a ``NaN`` cell are dropped and the
    mean is taken over the remaining ones. Without ``NaN`` cells,
    ``backward_transfer(R) == -forgetting(R, reference="first")``.

    Examples
    --------
    >>> from sklearn_cf.metrics import backward_transfer
    >>> R = [[0.75, 0.50, 0.25],
    ...      [0.50, 1.00, 0.50]]
    >>> backward_transfer(R)  # (0.5 - 0.75) / 1
    -0.25
    """
    R = _check_matrix(R)
    _require_two_trained(R, "backward_transfer")
    T = R.shape[0]
    j = np.arange(T - 1)
    return nanmean(R[T - 1, j] - R[j, j])


def forward_transfer(R, baseline):
    """Forward transfer (GEM): score on the next month before training on it,
    relative to a baseline.

    Parameters
    ----------
    R : array-like of shape (n_trained, n_months)
        Forgetting matrix with ``n_trained >= 2``. ``NaN`` cells are skipped.

    baseline : float or array-like of shape (n_months,) or (n_trained,)
        Score of an untrained (independently initialized) model on each
        month; a scalar is used for every month. Only ``baseline[1:T]`` is
        used. ``NaN`` entries are skipped.

    Returns
    -------
    float
        Positive values mean earlier months helped on later ones.

    Raises
    ------
    ValueError
        If ``R`` has fewer than two rows or ``baseline`` has the wrong shape.

    Notes
    -----
    With ``T = n_trained`` and ``b`` the baseline,

    .. math::
        \\mathrm{FWT} = \\frac{1}{T-1} \\sum_{j=1}^{T-1} (R_{j-1, j} - b_j)

    from Lopez-Paz & Ranzato, *Gradient Episodic Memory for Continual
    Learning*, NeurIPS 2017. Terms with a ``NaN`` are dropped.

    Examples
    --------
    >>> from sklearn_cf.metrics import forward_transfer
    >>> R = [[0.75, 0.50, 0.25],
    ...      [0.50, 1.00, 0.50]]
    >>> forward_transfer(R, baseline=0.25)  # (0.5 - 0.25) / 1
    0.25
    >>> forward_transfer(R, baseline=[0.5, 0.75, 0.5])  # (0.5 - 0.75) / 1
    -0.25
    """
    R = _check_matrix(R)
    b = _check_baseline(baseline, R)
    _require_two_trained(R, "forward_transfer")
    T = R.shape[0]
    j = np.arange(1, T)
    return nanmean(R[j - 1, j] - b[j])


def forgetting(R, reference="max"):
    """Average forgetting (Chaudhry et al., 2018).

    Parameters
    ----------
    R : array-like of shape (n_trained, n_months)
        Forgetting matrix with ``n_trained >= 2``. ``NaN`` cells are skipped.

    reference : {"max", "first"}, default="max"
        What the final score of each month is compared with:

        - ``"max"``: the best score on that month after any earlier training
          step (the paper's definition);
        - ``"first"``: the score right after training on that month.

    Returns
    -------
    float
        Positive values mean forgetting.

    Raises
    ------
    ValueError
        If ``R`` has fewer than two rows or ``reference`` is invalid.

    Notes
    -----
    With ``T = n_trained``, ``reference="max"`` follows Chaudhry et al.,
    *Riemannian Walk for Incremental Learning: Understanding Forgetting and
    Intransigence*, ECCV 2018, Eq. (7)-(8): with their (1-indexed) ``k`` the
    last task, ``f_j^k = max_{l in 1..k-1} a_{l,j} - a_{k,j}`` for ``j < k``.
    In 0-indexed form

    .. math::
        f_j = \\max_{0 \\le l \\le T-2} R_{l, j} - R_{T-1, j},
        \\qquad F = \\frac{1}{T-1} \\sum_{j=0}^{T-2} f_j.

    The maximum runs over *all* earlier training steps ``l``, including
    those before month ``j`` was trained on (here those cells are defined,
    since every month is evaluated after every step). Peers disagree on the
    exact form: some take the maximum only over ``l >= j`` (from the step at
    which the task was learned), others use the first-minus-last form
    ``reference="first"``: ``f_j = R[j, j] - R[T-1, j]``, for which
    ``forgetting(R, reference="first") == -backward_transfer(R)``. Since
    ``l = j`` is among the candidates, the ``"max"`` value is never smaller
    than the ``"first"`` value.

    ``NaN`` cells are ignored inside the maximum; a month whose ``f_j`` is
    undefined is dropped from the average.

    Examples
    --------
    >>> from sklearn_cf.metrics import forgetting
    >>> R = [[0.50, 0.25, 0.00],
    ...      [0.75, 0.50, 0.25],
    ...      [0.25, 0.50, 0.75]]
    >>> forgetting(R)  # ((0.75 - 0.25) + (0.5 - 0.5)) / 2
    0.25
    >>> forgetting(R, reference="first")  # ((0.5 - 0.25) + (0.5 - 0.5)) / 2
    0.125
    """
    if not isinstance(reference, str) or reference not in ("max", "first"):
        raise ValueError(
            f"reference must be 'max' or 'first'; got {reference!r}."
        )
    R = _check_matrix(R)
    _require_two_trained(R, "forgetting")
    T = R.shape[0]
    j = np.arange(T - 1)
    final = R[T - 1, j]
    if reference == "first":
        ref = R[j, j]
    else:
        ref = _nanmax_columns(R[: T - 1, : T - 1])
    return nanmean(ref - final)


def next_month_aut(R):
    """Area Under Time (TESSERACT) of the next-month score.

    Parameters
    ----------
    R : array-like of shape (n_trained, n_months)
        Forgetting matrix with ``n_months >= 2``. ``NaN`` cells are skipped.

    Returns
    -------
    float
        In the range of the score; ``NaN`` if every next-month cell is
        ``NaN``.

    Raises
    ------
    ValueError
        If ``R`` has a single column (no month ever follows a trained one).

    Notes
    -----
    The series is ``s_i = R[i, i+1]`` -- the score on the month after the last
    trained one, i.e. on the month the model would be deployed on -- for
    ``i = 0, ..., N-1`` with ``N = min(n_trained, n_months - 1)``. Its Area
    Under Time is the normalized trapezoidal rule of Pendlebury et al.,
    *TESSERACT: Eliminating Experimental Bias in Malware Classification
    across Space and Time*, USENIX Security 2019:

    .. math::
        \\mathrm{AUT} = \\frac{1}{N-1} \\sum_{k=0}^{N-2}
        \\frac{s_k + s_{k+1}}{2} \\quad (N \\ge 2), \\qquad
        \\mathrm{AUT} = s_0 \\quad (N = 1).

    TESSERACT trains once and scores successive test periods; here the model
    is retrained monthly and each point is the following month's score.
    ``NaN`` points are removed from the series before the rule is applied
    (the remaining points are treated as consecutive).

    Examples
    --------
    >>> from sklearn_cf.metrics import next_month_aut
    >>> R = [[0.75, 0.50, 0.25],
    ...      [0.50, 1.00, 0.50]]
    >>> next_month_aut(R)  # s = [0.5, 0.5]: ((0.5 + 0.5) / 2) / 1
    0.5
    >>> next_month_aut([[0.9, 0.5, 0.0],
    ...                 [0.9, 0.9, 0.75],
    ...                 [0.9, 0.9, 0.9]])  # s = [0.5, 0.75]
    0.625
    """
    R = _check_matrix(R)
    n_trained, n_months = R.shape
    if n_months < 2:
        raise ValueError(
            f"next_month_aut needs at least one month after a trained month "
            f"(n_months >= 2); got R of shape {R.shape}."
        )
    N = min(n_trained, n_months - 1)
    i = np.arange(N)
    return area_under_time(R[i, i + 1])


def area_under_time(scores):
    """Area Under Time (TESSERACT) of a series of per-period scores.

    Parameters
    ----------
    scores : array-like of shape (n_periods,)
        One score per test period, in time order (any metric: F1, TPR,
        accuracy...). ``NaN`` entries are dropped.

    Returns
    -------
    float
        In the range of the score; ``NaN`` when no score is defined.

    Notes
    -----
    The normalized trapezoidal rule of Pendlebury et al., *TESSERACT:
    Eliminating Experimental Bias in Malware Classification across Space and
    Time*, USENIX Security 2019, over the ``N`` defined scores ``s_k``:

    .. math::
        \\mathrm{AUT} = \\frac{1}{N-1} \\sum_{k=0}^{N-2}
        \\frac{s_k + s_{k+1}}{2} \\quad (N \\ge 2), \\qquad
        \\mathrm{AUT} = s_0 \\quad (N = 1).

    It equals the mean score with half weight on the first and the last
    period. TESSERACT reports AUT of F1 over 24 monthly test periods:
    a detector that decays over time scores less than one that does not,
    even at the same first-month F1. :func:`next_month_aut` is the AUT of
    the next-month series of a forgetting matrix.

    Examples
    --------
    >>> from sklearn_cf.metrics import area_under_time
    >>> area_under_time([0.9, 0.7, 0.5])  # ((0.9 + 0.7) / 2 + (0.7 + 0.5) / 2) / 2
    0.7
    >>> area_under_time([0.8, float("nan"), 0.6])  # NaN dropped: (0.8 + 0.6) / 2
    0.7
    """
    s = np.asarray(scores, dtype=float).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0:
        return float("nan")
    if s.size == 1:
        return float(s[0])
    return float(((s[:-1] + s[1:]) / 2).mean())


def summarize(R, baseline=None):
    """All forgetting-matrix summaries that are defined for ``R``.

    Parameters
    ----------
    R : array-like of shape (n_trained, n_months)
        Forgetting matrix. ``NaN`` cells are skipped.

    baseline : float or array-like of shape (n_months,) or (n_trained,), \
            default=None
        Untrained-model scores for :func:`forward_transfer`; without it
        forward transfer is not reported.

    Returns
    -------
    dict of str to float
        Plain Python floats under the keys ``"average_accuracy"``,
        ``"backward_transfer"``, ``"forgetting"`` (``reference="max"``),
        ``"learning_accuracy"``, ``"next_month_aut"`` and, with a baseline,
        ``"forward_transfer"``. A key is left out when its quantity is
        structurally undefined: ``backward_transfer``, ``forgetting`` and
        ``forward_transfer`` need two trained months, ``next_month_aut`` two
        months. A defined quantity whose cells are all ``NaN`` is ``nan``.

    Notes
    -----
    See :func:`average_accuracy`, :func:`backward_transfer`,
    :func:`forgetting`, :func:`learning_accuracy`, :func:`next_month_aut` and
    :func:`forward_transfer` for the formulas and sources.

    Examples
    --------
    >>> from sklearn_cf.metrics import summarize
    >>> R = [[0.75, 0.50, 0.25],
    ...      [0.50, 1.00, 0.50]]
    >>> summarize(R, baseline=0.25)
    {'average_accuracy': 0.75, 'backward_transfer': -0.25, 'forgetting': 0.25,
     'learning_accuracy': 0.875, 'next_month_aut': 0.5, 'forward_transfer': 0.25}
    >>> summarize([[0.5]])
    {'average_accuracy': 0.5, 'learning_accuracy': 0.5}
    """
    R = _check_matrix(R)
    if baseline is not None:
        _check_baseline(baseline, R)
    n_trained, n_months = R.shape
    out = {"average_accuracy": average_accuracy(R)}
    if n_trained >= 2:
        out["backward_transfer"] = backward_transfer(R)
        out["forgetting"] = forgetting(R)
    out["learning_accuracy"] = learning_accuracy(R)
    if n_months >= 2:
        out["next_month_aut"] = next_month_aut(R)
    if baseline is not None and n_trained >= 2:
        out["forward_transfer"] = forward_transfer(R, baseline)
    return out

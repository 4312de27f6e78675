"""The forgetting gate of ``sklearn-cf update``: a drop beyond X *and* beyond noise.

An update is scored, before and after, on the *same* held-out rows of every
past month, so the question "did this month's score drop?" is a paired one:
only the rows whose outcome changed carry evidence. This module tests it.

* :func:`mcnemar_drop`: accuracy. The exact McNemar (sign) test on the rows
  that flipped, and the conditional Clopper-Pearson bounds of the drop.
* :func:`bootstrap_drop`: any other scoring (ROC-AUC, F1, balanced
  accuracy, ``tpr_at_fpr``). A paired bootstrap over the month's rows (the
  same resampled rows scored before and after, a fixed seed) estimates the
  standard error of the drop; the p-value and bounds are the normal
  approximation with that standard error.
* :func:`holm_adjust`: Holm's step-down adjustment over the past months
  tested in one update, so that an update whose months truly did not drop
  is refused with probability at most ``1 - confidence`` however many
  months it is tested on.
* :func:`refusing`: the tests that refuse the update.

The rule (see docs/cli.md, "The forgetting gate"): a month refuses the
update when its point drop (score before minus after) is larger than
``max_forgetting`` **and** the Holm-adjusted one-sided p-value of "its score
did not drop" is below ``1 - confidence``.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "DEFAULT_CONFIDENCE", "DropTest", "bootstrap_drop",
           "holm_adjust", "mcnemar_drop", "p_text", "refusing"]

DEFAULT_CONFIDENCE = 0.95
"""``--forgetting-confidence`` by default: an update whose past months did
not drop is refused at most 5% of the time."""

BOOTSTRAP_RESAMPLES = 200
"""Paired resamples that estimate a drop's standard error (scorings other
than accuracy); enough for a standard error to within about 5%."""


@dataclass
class DropTest:
    """One past month's drop, tested on its held-out rows before and after.

    Attributes
    ----------
    month : object
        The past month.
    trained : object
        The month whose training caused the drop (one update may train
        several).
    before, after : float
        The held-out score before and after.
    drop : float
        ``before - after`` (negative: the month gained).
    low, high : float
        Bounds of the drop, each one-sided at the level the test is run at
        (``1 - (1 - confidence) / n_tests``: Bonferroni over the months of
        the update). ``low > 0`` exactly when the Bonferroni-adjusted test
        rejects "no drop"; the Holm adjustment rejects it at least then.
    p_value : float
        One-sided p-value of "the score did not drop", for this month alone.
    p_adjusted : float
        ``p_value`` adjusted by Holm over the months tested in the update.
    method : {"mcnemar", "bootstrap"}
    rows : int
        Held-out rows of the month.
    worse, better : int or None
        McNemar: rows right before and wrong after, and the reverse.
    refuses : bool
        Whether this month refuses the update.
    """

    month: object
    trained: object
    before: float
    after: float
    drop: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    method: str
    rows: int
    worse: int = None
    better: int = None
    refuses: bool = False

    def to_dict(self):
        """The test as JSON-ready values (months as given)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}

    def describe(self):
        """``drop 0.045 [0.021, 0.069], p 0.0004``: the drop, its bounds, the
        adjusted p-value."""
        return (f"drop {self.drop:.3f} [{self.low:.3f}, {self.high:.3f}], "
                f"p {p_text(self.p_adjusted)}")


def p_text(p):
    """A p-value as printed: ``-`` when there is none, 3 significant digits, or
    ``1.2e-05`` below 0.001."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3g}"


def mcnemar_drop(before_correct, after_correct, alpha):
    """Exact paired test of an accuracy drop on the same rows.

    Parameters
    ----------
    before_correct, after_correct : array-like of bool, shape (n_rows,)
        Whether each held-out row was predicted right before the update
        and after it.
    alpha : float
        One-sided level of the bounds, in (0, 1).

    Returns
    -------
    drop, low, high, p_value : float
        ``drop`` is accuracy before minus after, ``(worse - better) / n``;
        ``p_value`` the one-sided exact McNemar p-value of "no drop",
        ``P(B >= worse)`` for ``B ~ Binomial(worse + better, 1/2)``;
        ``low`` and ``high`` the one-sided Clopper-Pearson bounds of the
        share of flips that were losses, at level ``alpha``, mapped to the
        drop given the number of flips: ``(flips / n) * (2 q - 1)``.
    worse, better : int
        Rows right before and wrong after; wrong before and right after.

    Notes
    -----
    Conditional on the ``m = worse + better`` rows that flipped, ``worse``
    is ``Binomial(m, q)`` and the drop is ``(m / n)(2q - 1)``; "no drop" is
    ``q <= 1/2`` (McNemar 1947; the exact form is the sign test). The
    bounds are Clopper-Pearson's for ``q`` (Clopper & Pearson 1934), so
    ``low > 0`` exactly when ``p_value < alpha``. Rows that did not flip
    carry no information on the drop, whatever their number.

    Examples
    --------
    >>> from sklearn_cf._gate import mcnemar_drop
    >>> before = [True] * 10 + [False] * 2 + [True] * 88
    >>> after = [False] * 10 + [True] * 2 + [True] * 88
    >>> drop, low, high, p, worse, better = mcnemar_drop(before, after, alpha=0.05)
    >>> round(drop, 3), worse, better, round(p, 4)   # P(B >= 10), B ~ Bin(12, 1/2)
    (0.08, 10, 2, 0.0193)
    >>> bool(low > 0)
    True
    """
    from scipy import stats

    before = np.asarray(before_correct, dtype=bool)
    after = np.asarray(after_correct, dtype=bool)
    if before.shape != after.shape or before.ndim != 1:
        raise ValueError(f"before_correct and after_correct must be two 1-d arrays of one "
                         f"length, got shapes {before.shape} and {after.shape}.")
    _check_alpha(alpha)
    n = len(before)
    worse = int(np.sum(before & ~after))
    better = int(np.sum(~before & after))
    flips = worse + better
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan, 0, 0
    drop = (worse - better) / n
    if flips == 0:
        return 0.0, 0.0, 0.0, 1.0, 0, 0
    p_value = float(stats.binom.sf(worse - 1, flips, 0.5))
    q_low = 0.0 if worse == 0 else float(stats.beta.ppf(alpha, worse, flips - worse + 1))
    q_high = 1.0 if worse == flips else float(stats.beta.ppf(1 - alpha, worse + 1,
                                                             flips - worse))
    share = flips / n
    return drop, share * (2 * q_low - 1), share * (2 * q_high - 1), p_value, worse, better


def bootstrap_drop(score_before, score_after, n_rows, alpha, *,
                   resamples=BOOTSTRAP_RESAMPLES, random_state=0, vectorized=False):
    """Paired bootstrap test of a drop in any score, on the same rows.

    Parameters
    ----------
    score_before, score_after : callable
        ``score(rows) -> float``: the score of the model before (after) the
        update on the held-out rows ``rows`` (an index array, with
        repeats); NaN where it is undefined.
    n_rows : int
        Held-out rows of the month.
    alpha : float
        One-sided level of the bounds, in (0, 1).
    resamples : int, default=BOOTSTRAP_RESAMPLES
        Paired resamples (the same rows for both scores).
    random_state : int, default=0
        Seed of the resamples: a re-run of an update decides alike.
    vectorized : bool, default=False
        Whether the scores take a 2-d array of rows, one resample per row,
        and return one score per resample (else they are called once per
        resample).

    Returns
    -------
    drop, low, high, p_value : float
        ``drop = score_before(all) - score_after(all)``; ``se`` the standard
        deviation of the resampled drops (resamples where a score is
        undefined are left out); ``low, high = drop -/+ z se`` with ``z``
        the standard normal's ``1 - alpha`` quantile; ``p_value`` the normal
        approximation ``1 - Phi(drop / se)`` of "no drop". NaN (not tested)
        when fewer than half the resamples are defined.

    Notes
    -----
    A percentile p-value would need thousands of resamples to resolve the
    small levels a Holm adjustment over many months asks for; the standard
    error needs a few hundred (Efron & Tibshirani 1993, ch. 6). With
    ``low > 0`` exactly when ``p_value < alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.metrics import roc_auc_score
    >>> from sklearn_cf._gate import bootstrap_drop
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> good = y + rng.normal(0, 0.6, 400); worse = y + rng.normal(0, 1.5, 400)
    >>> drop, low, high, p = bootstrap_drop(lambda r: roc_auc_score(y[r], good[r]),
    ...                                     lambda r: roc_auc_score(y[r], worse[r]),
    ...                                     400, alpha=0.05)
    >>> bool(drop > 0.1 and low > 0 and p < 0.05)
    True
    """
    from scipy import stats

    _check_alpha(alpha)
    if n_rows == 0:
        return math.nan, math.nan, math.nan, math.nan
    rows = np.arange(n_rows)
    if vectorized:
        drop = float(score_before(rows[None])[0]) - float(score_after(rows[None])[0])
    else:
        drop = float(score_before(rows)) - float(score_after(rows))
    if math.isnan(drop):
        return math.nan, math.nan, math.nan, math.nan
    samples = np.random.default_rng(random_state).integers(0, n_rows, (resamples, n_rows))
    if vectorized:
        drops = (np.asarray(score_before(samples), dtype=float)
                 - np.asarray(score_after(samples), dtype=float))
    else:
        drops = np.array([float(score_before(sample)) - float(score_after(sample))
                          for sample in samples])
    drops = drops[np.isfinite(drops)]
    if len(drops) < resamples / 2:
        return drop, math.nan, math.nan, math.nan
    se = float(np.std(drops, ddof=1))
    if se == 0:
        return drop, drop, drop, 0.0 if drop > 0 else 1.0
    z = float(stats.norm.ppf(1 - alpha))
    return drop, drop - z * se, drop + z * se, float(stats.norm.sf(drop / se))


def holm_adjust(p_values):
    """Holm's step-down adjusted p-values (NaN entries are not tested).

    Parameters
    ----------
    p_values : sequence of float

    Returns
    -------
    ndarray
        With ``k`` defined p-values sorted ascending, the ``i``-th
        (from 1) becomes ``max_{j <= i} min(1, (k - j + 1) p_(j))``
        (Holm 1979); rejecting where the adjusted value is below ``alpha``
        keeps the chance of any false rejection at most ``alpha``.

    Examples
    --------
    >>> from sklearn_cf._gate import holm_adjust
    >>> holm_adjust([0.01, 0.04, 0.03, float("nan")]).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    k = len(defined)
    order = defined[np.argsort(p[defined], kind="stable")]
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (k - i) * p[idx]))
        out[idx] = running
    return out


def refusing(tests, max_forgetting, confidence):
    """Mark, and return, the tests that refuse the update.

    A test refuses when ``drop > max_forgetting`` and, unless
    ``confidence`` is 0 (no noise test: the point drop alone decides),
    ``p_adjusted < 1 - confidence``.

    Parameters
    ----------
    tests : list of DropTest
    max_forgetting : float or None
        None: nothing refuses.
    confidence : float

    Returns
    -------
    list of DropTest
        Those with ``refuses`` set, largest drop first.
    """
    out = []
    for test in tests:
        beyond = max_forgetting is not None and test.drop > max_forgetting
        if confidence:
            beyond = beyond and not math.isnan(test.p_adjusted) and (
                test.p_adjusted < 1 - confidence)
        test.refuses = bool(beyond)
        if beyond:
            out.append(test)
    return sorted(out, key=lambda t: -t.drop)


def check_confidence(confidence):
    """``confidence`` as a float in [0, 1), or a ValueError naming the fix."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not (
            0 <= confidence < 1):
        raise ValueError(
            f"--forgetting-confidence must be a number in [0, 1), got {confidence!r}: "
            "0.95 refuses a month only when a drop that large has under a 5% chance "
            "of coming from the held-out rows' noise; 0 turns the test off (the drop "
            "alone decides)."
        )
    return float(confidence)


def _check_alpha(alpha):
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")

"""Honest tuning: choose hyperparameters on past months, score them on later ones.

A search over every month (``GridSearchCV`` with
:class:`~sklearn_cf.SequentialSplit`) chooses λ and the rehearsal ratio on
the same months it then reports: an oracle, since a team choosing them in
production has only the months so far. :func:`honest_tuning` runs the
protocol a team can run: choose on months up to ``k`` only, keep training
the chosen setting month by month, and score it on the months after ``k``
only, each month with the model deployed on it (trained through the month
before); optionally choose again every few months. The oracle's score on
the same months is reported beside it.
"""

import numbers
from dataclasses import dataclass, field

import numpy as np
import sklearn
from sklearn.base import clone

from .._compat import nanmean, safe_indexing
from .._validation import check_months, group_by_month, month_label
from ._split import SequentialSplit

__all__ = ["HonestTuningResult", "deployed_scores", "honest_tuning", "tuning_cutoffs"]


def tuning_cutoffs(n_months, tune_months, rechoose_every=None):
    """The months (0-based positions) after which a setting is chosen.

    Parameters
    ----------
    n_months : int
        Months in the stream.
    tune_months : int
        The first choice uses the first ``tune_months`` months, so it is
        made after month ``tune_months - 1``; at least one month must
        follow.
    rechoose_every : int or None, default=None
        Choose again every this many months, each time on every month so
        far; None: choose once.

    Returns
    -------
    list of int
        Each choice's last month; the months after it, up to the next
        choice, are scored with it.

    Examples
    --------
    >>> from sklearn_cf.model_selection import tuning_cutoffs
    >>> tuning_cutoffs(12, 6)
    [5]
    >>> tuning_cutoffs(12, 6, rechoose_every=2)  # months 6-7, 8-9, 10-11
    [5, 7, 9]
    """
    for name, value, low in (("n_months", n_months, 2), ("tune_months", tune_months, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if tune_months >= n_months:
        raise ValueError(
            f"tune_months={tune_months} leaves no month to score: the stream has "
            f"{n_months} months. Use tune_months <= {n_months - 1}."
        )
    if rechoose_every is None:
        return [tune_months - 1]
    if (isinstance(rechoose_every, bool) or not isinstance(rechoose_every, numbers.Integral)
            or rechoose_every < 1):
        raise ValueError(
            f"rechoose_every must be None or an integer >= 1, got {rechoose_every!r}."
        )
    return list(range(tune_months - 1, n_months - 1, rechoose_every))


def _blocks(cutoffs, n_months):
    """The months scored with each choice: ``(cutoff, next cutoff]``."""
    ends = list(cutoffs[1:]) + [n_months - 1]
    return [np.arange(c + 1, end + 1) for c, end in zip(cutoffs, ends)]


def _honest_and_oracle(deployed, choices, cutoffs):
    """Score the choices made on the past, and the oracle's, on later months.

    Parameters
    ----------
    deployed : ndarray of shape (n_candidates, n_months)
        ``deployed[c, j]``: candidate ``c``'s score on month ``j`` with the
        model deployed on it (trained through month ``j - 1``).
    choices : list of int
        The candidate chosen at each cutoff, on months up to it only.
    cutoffs : list of int

    Returns
    -------
    honest, oracle : ndarray of shape (n_scored,)
        Per scored month (those after the first cutoff).
    oracle_choices : list of int
        Per block, the candidate with the best mean score on the block's own
        months: the choice made in hindsight.
    """
    deployed = np.asarray(deployed, dtype=float)
    honest, oracle, oracle_choices = [], [], []
    for choice, block in zip(choices, _blocks(cutoffs, deployed.shape[1])):
        means = [nanmean(row) for row in deployed[:, block]]
        best = int(np.nanargmax(means)) if not np.all(np.isnan(means)) else choice
        oracle_choices.append(best)
        honest.append(deployed[choice, block])
        oracle.append(deployed[best, block])
    return np.concatenate(honest), np.concatenate(oracle), oracle_choices


@dataclass
class HonestTuningResult:
    """The outcome of :func:`honest_tuning`.

    Attributes
    ----------
    scoring : str
        What fills each month's score.
    tune_months : int
        Months the first choice was made on.
    cutoffs : list
        The last month of each choice's data (month labels).
    chosen_params : list of dict
        The setting chosen at each cutoff, from months up to it only.
    oracle_params : list of dict
        For the months scored with each choice, the setting that scores best
        on those very months: chosen in hindsight.
    scored_months : list
        The months after the first cutoff, each scored with the model
        deployed on it.
    honest_scores, oracle_scores : ndarray of shape (n_scored,)
        Per scored month: the deployed score of the chosen setting, and of
        the oracle's.
    honest_score, oracle_score : float
        Their means over the scored months (NaN-aware).
    candidates : list of dict
        Every setting tried.
    deployed_scores : ndarray of shape (n_candidates, n_scored)
        Each candidate's deployed score on each scored month.
    choice_results : list of dict
        The inner search's ``cv_results_`` at each cutoff (empty when the
        protocol ran without a search object).
    at_edge : list of dict
        Per cutoff, ``{param: "lowest" | "highest"}`` for each numeric
        parameter of the chosen setting at an end of its values tried, when
        3 or more were tried (with 2, every choice is at an end): the best
        setting may lie beyond the grid, so widen it that way.
    ties : list of list of dict
        Per cutoff, the settings that tied for the best choice score (the
        first of them is chosen); empty when one setting was best.
    choice_scoring : list of str
        Per cutoff, the score the choice was made by, when the protocol
        chose it (``sklearn_cf.compare`` with ``scoring="auto"`` chooses it
        from the months up to the cutoff); empty when the choice is the
        search's own (see ``choice_results``).
    choice_scoring_reasons : list of str or None
        Why each automatic choice scoring was chosen (None when the scoring
        was given).
    choice_scores : list of list of float
        Per cutoff, each candidate's mean choice score (empty when the
        choice is the search's).
    """

    scoring: str
    tune_months: int
    cutoffs: list
    chosen_params: list
    oracle_params: list
    scored_months: list
    honest_scores: np.ndarray
    oracle_scores: np.ndarray
    candidates: list
    deployed_scores: np.ndarray
    choice_results: list = field(default_factory=list)
    at_edge: list = field(default_factory=list)
    ties: list = field(default_factory=list)
    choice_scoring: list = field(default_factory=list)
    choice_scoring_reasons: list = field(default_factory=list)
    choice_scores: list = field(default_factory=list)

    @classmethod
    def from_deployed_scores(cls, scoring, tune_months, labels, cutoffs, candidates, choices,
                             deployed, **extra):
        """The result of choices made at ``cutoffs`` among ``candidates``,
        from every candidate's deployed score on every month.

        What :func:`honest_tuning` returns, for a protocol that made its
        choices itself (``sklearn_cf.compare`` tunes each strategy so): the
        honest scores follow the choices, the oracle's the best candidate
        of each block of months in hindsight.

        Parameters
        ----------
        scoring : str
        tune_months : int
        labels : list
            The month labels, in order.
        cutoffs : list of int
            Positions of the months after which a choice was made
            (:func:`tuning_cutoffs`).
        candidates : list of dict
            Every setting tried.
        choices : list of int
            The candidate chosen at each cutoff, on months up to it only.
        deployed : array-like of shape (n_candidates, n_months)
            Each candidate's score on each month with the model deployed on
            it (:func:`deployed_scores`).
        **extra
            Further fields (``choice_results``, ``ties``, ``choice_scoring``,
            ``choice_scores``...); ``at_edge`` is computed from the choices.

        Returns
        -------
        HonestTuningResult

        Examples
        --------
        >>> from sklearn_cf.model_selection import HonestTuningResult
        >>> result = HonestTuningResult.from_deployed_scores(
        ...     "accuracy", 2, ["jan", "feb", "mar", "apr"], [1], [{"lr": 0.1}, {"lr": 1}],
        ...     [0], [[None, 0.8, 0.75, 0.5], [None, 0.9, 0.5, 1.0]])
        >>> result.scored_months, result.honest_score, result.oracle_score
        (['mar', 'apr'], 0.625, 0.75)
        >>> result.oracle_params
        [{'lr': 1}]
        >>> HonestTuningResult.from_deployed_scores(
        ...     "accuracy", 2, ["jan", "feb", "mar"], [1],
        ...     [{"lr": 0.01}, {"lr": 0.1}, {"lr": 1}], [2],
        ...     [[None, 0.5, 0.5], [None, 0.6, 0.6], [None, 0.7, 0.7]]).at_edge
        [{'lr': 'highest'}]
        """
        deployed = np.asarray(deployed, dtype=float)
        honest, oracle, oracle_choices = _honest_and_oracle(deployed, choices, cutoffs)
        scored = np.arange(cutoffs[0] + 1, len(labels))
        return cls(
            scoring=scoring,
            tune_months=int(tune_months),
            cutoffs=[labels[c] for c in cutoffs],
            chosen_params=[candidates[c] for c in choices],
            oracle_params=[candidates[c] for c in oracle_choices],
            scored_months=[labels[j] for j in scored],
            honest_scores=honest,
            oracle_scores=oracle,
            candidates=candidates,
            deployed_scores=deployed[:, scored],
            at_edge=[edge_flags(candidates, candidates[c]) for c in choices],
            **extra,
        )

    @property
    def honest_score(self):
        """Mean deployed score of the settings chosen on the past."""
        return nanmean(self.honest_scores)

    @property
    def oracle_score(self):
        """Mean deployed score of the settings chosen in hindsight."""
        return nanmean(self.oracle_scores)

    @property
    def overstatement(self):
        """``oracle_score - honest_score``: what choosing on the reported months adds."""
        return self.oracle_score - self.honest_score

    def summary(self):
        """A few lines for people: both scores and the settings chosen."""
        months = self.scored_months
        span = f"{months[0]}" if len(months) == 1 else f"{months[0]}..{months[-1]}"
        lines = [
            f"Honest tuning: chosen on months up to {self.cutoffs[0]}"
            + (f", again after {', '.join(map(str, self.cutoffs[1:]))}"
               if len(self.cutoffs) > 1 else "")
            + f"; scored on months {span} ({self.scoring} of the model deployed on each)",
            f"  honest {self.honest_score:.3f}   oracle {self.oracle_score:.3f}   "
            f"the oracle overstates by {self.overstatement:+.3f}",
        ]
        for cutoff, chosen, oracle in zip(self.cutoffs, self.chosen_params,
                                          self.oracle_params):
            lines.append(f"  after {cutoff}: chose {chosen}; in hindsight {oracle}")
        lines += [f"  {warning}" for warning in self.warnings()]
        return "\n".join(lines)

    def warnings(self):
        """Sentences about choices to doubt: settings that tied (the first
        was kept) and choices at an end of their grid (widen it).

        Returns
        -------
        list of str

        Examples
        --------
        >>> from sklearn_cf.model_selection import HonestTuningResult
        >>> result = HonestTuningResult.from_deployed_scores(
        ...     "accuracy", 2, ["jan", "feb", "mar"], [1],
        ...     [{"reg_lambda": 0.1}, {"reg_lambda": 1}, {"reg_lambda": 10}], [0],
        ...     [[None, 0.7, 0.5], [None, 0.7, 0.6], [None, 0.6, 0.7]],
        ...     ties=[[{"reg_lambda": 0.1}, {"reg_lambda": 1}]])
        >>> for line in result.warnings():
        ...     print(line)
        after feb: reg_lambda=0.1 and reg_lambda=1 tie on the choice months; the first was kept
        after feb: chose reg_lambda=0.1, the lowest value tried: widen the grid
        """
        out = []
        for k, cutoff in enumerate(self.cutoffs):
            tied = self.ties[k] if k < len(self.ties) else []
            if tied:
                out.append(f"after {cutoff}: {' and '.join(map(_setting_text, tied))} tie on "
                           "the choice months; the first was kept")
            edges = self.at_edge[k] if k < len(self.at_edge) else {}
            for key, end in edges.items():
                value = self.chosen_params[k][key]
                out.append(f"after {cutoff}: chose {key}={value!r}, the {end} value tried: "
                           "widen the grid")
        return out

    def __str__(self):
        return self.summary()


def _setting_text(params):
    """``{"reg_lambda": 0.1, "lr": 1}`` -> ``"lr=1, reg_lambda=0.1"``."""
    return ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))


def edge_flags(candidates, chosen):
    """``{param: "lowest" | "highest"}`` for each numeric parameter of
    ``chosen`` at an end of the values ``candidates`` tried, when they tried
    3 or more (with 2, every choice is at an end).

    Examples
    --------
    >>> from sklearn_cf.model_selection._honest import edge_flags
    >>> grid = [{"reg_lambda": v, "fisher": f} for v in (0.1, 1, 10) for f in ("true", "x")]
    >>> edge_flags(grid, {"reg_lambda": 0.1, "fisher": "x"})
    {'reg_lambda': 'lowest'}
    >>> edge_flags(grid, {"reg_lambda": 1, "fisher": "x"})
    {}
    """
    flags = {}
    for key, value in chosen.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        values = {c[key] for c in candidates
                  if isinstance(c.get(key), numbers.Real) and not isinstance(c.get(key), bool)}
        if len(values) < 3:
            continue
        if value == min(values):
            flags[key] = "lowest"
        elif value == max(values):
            flags[key] = "highest"
    return flags


def _evaluation_scoring(search, scoring):
    """What fills each month's score: ``scoring``, else the search's."""
    if scoring is not None:
        return scoring
    inner = search.scoring
    if hasattr(inner, "get_metadata_routing") and isinstance(getattr(inner, "scoring", None),
                                                             str):
        return inner.scoring  # make_forgetting_scorer("roc_auc") -> "roc_auc"
    if inner is None:
        return "accuracy"
    if isinstance(inner, str):
        return inner
    raise ValueError(
        f"honest_tuning cannot tell which score fills a month from search.scoring="
        f"{inner!r}; pass scoring= (e.g. scoring='roc_auc')."
    )


def _best_index(refit, results):
    """The candidate the search itself would refit, as sklearn picks it."""
    if callable(refit):
        return int(refit(results))
    key = "rank_test_score" if refit is True else f"rank_test_{refit}"
    if key not in results:
        raise ValueError(
            f"honest_tuning chooses as the search's refit= does, but the search has no "
            f"{key!r}; with several scorer keys set refit= to the one to choose by "
            "(e.g. refit='average_accuracy')."
        )
    return int(np.argmin(results[key]))


def _tied(refit, results, best):
    """The settings ranked first with the chosen one, when several are (a
    search's ranks are equal for equal mean scores); [] otherwise."""
    if callable(refit):
        return []
    ranks = np.asarray(results["rank_test_score" if refit is True else f"rank_test_{refit}"])
    tied = np.flatnonzero(ranks == ranks[best])
    return [dict(results["params"][i]) for i in tied] if len(tied) > 1 else []


def _check_search(search):
    for attribute in ("estimator", "cv", "refit"):
        if not hasattr(search, attribute):
            raise ValueError(
                f"honest_tuning needs an unfitted sklearn search such as GridSearchCV or "
                f"RandomizedSearchCV; {type(search).__name__} has no {attribute!r}."
            )
    if search.refit is False:
        raise ValueError(
            "honest_tuning uses the setting the search would refit: set refit= to the "
            "scorer key to choose by (e.g. refit='average_accuracy'), not False."
        )


def _fit_search(search, X, y, months):
    from sklearn.exceptions import UnsetMetadataPassedError

    inner = clone(search).set_params(refit=False)  # the choice only: no refit
    try:
        with sklearn.config_context(enable_metadata_routing=True):
            inner.fit(X, y, months=months)
    except UnsetMetadataPassedError as exc:
        raise ValueError(
            "honest_tuning passes each row's month to search.fit with metadata routing "
            "on, but the estimator does not request it: use "
            "ContinualClassifier(...).set_fit_request(months=True) (in a Pipeline, on the "
            f"classifier). ({exc})"
        ) from None
    return inner.cv_results_


def _key(params):
    return repr(sorted(params.items(), key=lambda item: item[0]))


def deployed_scores(matrix):
    """Each month's score with the model deployed on it, from a forgetting matrix.

    ``s[j] = R[min(j - 1, T - 1), j]``: month ``j`` scored by the model
    trained through the month before it (the last trained model for months
    never trained); ``s[0]`` is NaN (no model precedes the first month).

    Parameters
    ----------
    matrix : ForgettingMatrix or array-like of shape (n_trained, n_months)

    Returns
    -------
    ndarray of shape (n_months,)

    Examples
    --------
    >>> from sklearn_cf.model_selection import deployed_scores
    >>> deployed_scores([[0.9, 0.6, 0.5], [0.8, 0.9, 0.7]])
    array([nan, 0.6, 0.7])
    """
    R = np.asarray(getattr(matrix, "R", matrix), dtype=float)
    n_trained, n_months = R.shape
    out = np.full(n_months, np.nan)
    for j in range(1, n_months):
        out[j] = R[min(j - 1, n_trained - 1), j]
    return out


def honest_tuning(search, X, y, months, *, tune_months, rechoose_every=None, test_size=0.2,
                  test_prevalence=None, scoring=None, random_state=None):
    """Tune on the past, score on the future: the score a team can actually get.

    1. Hold out ``test_size`` of every month (a
       :class:`~sklearn_cf.SequentialSplit` with one repetition); the rest
       is the training part.
    2. **Choose** (at each cutoff ``k``, the first after ``tune_months``
       months): fit a clone of ``search`` on the rows of months up to ``k``
       only (nothing of a later month is passed to it), with ``months=``
       under metadata routing, and take the setting its ``refit=`` picks.
    3. **Score**: every setting the searches tried is trained on the
       training part of every month (a monthly sequence: the model of month
       ``j`` has seen months up to ``j`` only) and each month ``j`` after
       ``k`` is scored on its held-out rows with the model deployed on it,
       the one trained through month ``j - 1``. The honest score is the
       chosen setting's mean over those months; the *oracle* score is the
       best setting's on those same months, chosen in hindsight, which is
       what a search over every month reports. Every choice is made before
       any of these fits.

    Parameters
    ----------
    search : GridSearchCV, RandomizedSearchCV or another sklearn search
        Unfitted; its ``estimator`` is a ContinualClassifier (or a Pipeline
        ending in one) that requests ``months`` (``.set_fit_request(
        months=True)``), its ``cv`` a month-aware splitter such as
        :class:`~sklearn_cf.SequentialSplit`, and its ``refit`` the scorer
        key to choose by (e.g. ``"average_accuracy"`` of
        :func:`~sklearn_cf.make_forgetting_scorer`).
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    months : array-like of shape (n_samples,)
    tune_months : int
        Months the first choice sees; the months after them are scored.
    rechoose_every : int or None, default=None
        Choose again every this many months (each time on all months so
        far); the months after each choice, up to the next, are scored with
        it. None: choose once.
    test_size : float in (0, 1), default=0.2
        Share of every month held out for scoring.
    test_prevalence : float in (0, 1) or None, default=None
        Positive share of the held-out rows (see
        :class:`~sklearn_cf.SequentialSplit`).
    scoring : str or callable or None, default=None
        What scores a month's held-out rows; None takes the search's
        (``make_forgetting_scorer("roc_auc")`` -> ``"roc_auc"``; a scorer
        name as it is; none: accuracy).
    random_state : int or None, default=None
        Seed of the hold-out.

    Returns
    -------
    HonestTuningResult

    Raises
    ------
    ValueError
        For a search that cannot choose (``refit=False``), an estimator that
        does not request ``months``, or too few months.

    See Also
    --------
    tuning_cutoffs : when the choices are made.

    Notes
    -----
    Choosing on the months one reports leaks their labels into the choice:
    the score of the best of several settings is biased upwards (Cawley &
    Talbot, *On Over-fitting in Model Selection and Subsequent Selection
    Bias in Performance Evaluation*, JMLR 2010). In continual learning the
    leak is tuning on the whole stream; De Lange et al. (*A Continual
    Learning Survey: Defying Forgetting in Classification Tasks*, TPAMI
    2021) choose with the data of the current task only, as FACIL (Masana
    et al., TPAMI 2022) does. Here, as in online tuning, a setting is
    chosen with the past and judged on the future. The oracle's score is at
    least the honest one by construction (per block of months, it is the
    best candidate's mean); their gap is what the oracle overstates.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_cf import ContinualClassifier, SequentialSplit, make_forgetting_scorer
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> from sklearn_cf.model_selection import honest_tuning
    >>> X, y, months = make_monthly_drift(n_months=4, n_samples_per_month=150, random_state=0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     search = GridSearchCV(
    ...         ContinualClassifier(strategy="l2", max_epochs=1, hidden_units=(8,),
    ...                             random_state=0).set_fit_request(months=True),
    ...         {"reg_lambda": [0.1, 10.0]},
    ...         cv=SequentialSplit(n_splits=1, random_state=0),
    ...         scoring=make_forgetting_scorer(), refit="average_accuracy")
    ...     result = honest_tuning(search, X, y, months, tune_months=2, random_state=0)
    >>> result.cutoffs, result.scored_months
    ([1], [2, 3])
    >>> bool(result.oracle_score >= result.honest_score)
    True
    """
    _check_search(search)
    y = np.asarray(y)
    months = check_months(months, len(y))
    labels, _ = group_by_month(months)
    labels = [month_label(m) for m in labels]
    cutoffs = tuning_cutoffs(len(labels), tune_months, rechoose_every)
    scoring = _evaluation_scoring(search, scoring)
    position = {m: k for k, m in enumerate(labels)}
    month_pos = np.array([position[month_label(m)] for m in months])

    # 1-2. Every choice first, each on the rows of months up to its cutoff.
    candidates, chosen, choice_results, ties = [], [], [], []
    index_of = {}
    for cutoff in cutoffs:
        past = np.flatnonzero(month_pos <= cutoff)
        results = _fit_search(search, safe_indexing(X, past), y[past], months[past])
        best_index = _best_index(search.refit, results)
        best = results["params"][best_index]
        ties.append(_tied(search.refit, results, best_index))
        for params in results["params"]:
            if _key(params) not in index_of:
                index_of[_key(params)] = len(candidates)
                candidates.append(dict(params))
        chosen.append(index_of[_key(best)])
        choice_results.append(results)

    # 3. Every candidate as a monthly sequence on the training part; each
    # month scored by the model deployed on it.
    from ..metrics import forgetting_matrix

    cv = SequentialSplit(n_splits=1, test_size=test_size, random_state=random_state,
                         test_prevalence=test_prevalence)
    train, test = next(cv.split(X, y, months=months))
    deployed = np.full((len(candidates), len(labels)), np.nan)
    for c, params in enumerate(candidates):
        estimator = clone(search.estimator).set_params(**params)
        with sklearn.config_context(enable_metadata_routing=True):
            estimator.fit(safe_indexing(X, train), y[train], months=months[train])
        fm = forgetting_matrix(estimator, safe_indexing(X, test), y[test], months[test],
                               scoring=scoring)
        deployed[c] = deployed_scores(fm)

    name = scoring if isinstance(scoring, str) else (
        getattr(scoring, "name", None) or type(scoring).__name__)
    return HonestTuningResult.from_deployed_scores(
        name, tune_months, labels, cutoffs, candidates, chosen, deployed,
        choice_results=choice_results, ties=ties)

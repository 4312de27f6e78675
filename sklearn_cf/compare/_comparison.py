"""The outcome of a comparison as a table and a verdict: :class:`Comparison`.

:meth:`Comparison.verdict` answers "which monthly update should we ship?"
in one sentence. It leads with the score on the month a model is deployed
on (each month scored by the model trained through the month before), then
retention of past months, then cost, each with its interval: it ships the
best strategy on the deployed month when its lead over the runner-up is
larger than its uncertainty (with one split, the interval of a paired
bootstrap that weights the months and resamples their rows, so that it
holds the month-to-month variation); otherwise it names the strategies it
cannot tell apart, drops those that keep past months materially and surely
worse, and ships the cheapest of the rest. A strategy must beat the
majority-class baseline; the gradient-boosting reference is never shipped,
but the verdict says whether the choice beats it.
"""

import warnings

import numpy as np

from .._validation import is_missing
from ._bootstrap import CONFIDENCE, interval
from ._results import _SUMMARY_COLUMNS, _reference

__all__ = ["Comparison"]


_TABLE_COLUMNS = (
    "strategy",
    "deployed_score",
    "deployed_low",
    "deployed_high",
    "average_score",
    "average_low",
    "average_high",
    "backward_transfer",
    "forgetting",
    "learning_score",
    "next_month_aut",
    "aut",
    "honest_score",
    "oracle_score",
    "gap_to_joint",
    "flip_rate",
    "prospective_tpr",
    "realised_fpr",
    "worst_group_forgetting",
    "rows",
    "rows_vs_naive",
    "rows_vs_joint",
    "seconds",
    "seconds_vs_naive",
    "fisher_negative_share",
)


def _with_interval(key):
    """A cell ``0.790 [0.781, 0.799]``: the value and, when known, its interval."""
    def cell(record):
        value = record[key]
        if is_missing(value):
            return None
        low, high = record.get(f"{key.rsplit('_', 1)[0]}_low"), record.get(
            f"{key.rsplit('_', 1)[0]}_high")
        if is_missing(low) or is_missing(high):
            return f"{value:.3f}"
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return cell


def _plain(key, fmt):
    def cell(record):
        value = record[key]
        return None if is_missing(value) else fmt(value)
    return cell


# Display: column -> (header, cell of a record, or None where undefined).
_DISPLAY = {
    "strategy": ("strategy", lambda r: str(r["strategy"])),
    "deployed_score": ("next month", _with_interval("deployed_score")),
    "average_score": ("retention", _with_interval("average_score")),
    "backward_transfer": ("BWT", _plain("backward_transfer", lambda v: _signed(v))),
    "forgetting": ("forgetting", _plain("forgetting",
                                        lambda v: f"{_no_negative_zero(v):.3f}")),
    "learning_score": ("learning", _plain("learning_score", "{:.3f}".format)),
    "next_month_aut": ("next-month AUT", _plain("next_month_aut", "{:.3f}".format)),
    "aut": ("AUT", _plain("aut", "{:.3f}".format)),  # named after its score in _header
    "honest_score": ("honest", _plain("honest_score", "{:.3f}".format)),
    "oracle_score": ("oracle", _plain("oracle_score", "{:.3f}".format)),
    "gap_to_joint": ("gap to joint", _plain("gap_to_joint", lambda v: _signed(v))),
    "flip_rate": ("flips", _plain("flip_rate", "{:.1%}".format)),
    "prospective_tpr": ("TPR@FPR", _plain("prospective_tpr", "{:.3f}".format)),
    "realised_fpr": ("realised FPR", _plain("realised_fpr", "{:.2%}".format)),
    "worst_group_forgetting": ("worst group", _plain(
        "worst_group_forgetting", lambda v: f"{_no_negative_zero(v):.3f}")),
    "rows": ("rows", _plain("rows", lambda v: _short_count(v))),
    "rows_vs_naive": ("rows vs naive", _plain("rows_vs_naive", "{:.2f}x".format)),
    "rows_vs_joint": ("rows vs joint", _plain("rows_vs_joint", "{:.2f}x".format)),
    "seconds": ("seconds", _plain("seconds", lambda v: f"{v:.3g}")),
    "seconds_vs_naive": ("seconds vs naive", _plain("seconds_vs_naive", "{:.2f}x".format)),
    "fisher_negative_share": ("Hessian < 0", _plain("fisher_negative_share", "{:.1%}".format)),
}

#: Summary keys of the intervals: ``what`` of :meth:`Comparison.interval`.
_LEADS = {"deployed": "deployed_score", "retention": "average_accuracy"}


def _wrap(text, width):
    """``text`` on lines of at most ``width`` characters (words kept whole),
    or unchanged for ``width=None``."""
    if width is None:
        return text
    import textwrap

    return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)


def _again(every):
    if not every:
        return ""
    return " and again every month" if every == 1 else f" and again every {every} months"


def _no_negative_zero(value, digits=3):
    """``-0.0002`` -> 0.0, so that it prints as ``0.000``, not ``-0.000``."""
    return 0.0 if round(value, digits) == 0 else value


def _signed(value):
    return f"{_no_negative_zero(value):+.3f}"


def _short_count(value):
    value = float(value)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def _span(bounds):
    """``" [0.781, 0.799]"``, or ``""`` without an interval."""
    return "" if bounds is None else f" [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _signed_span(bounds):
    return "" if bounds is None else f" [{_signed(bounds[0])}, {_signed(bounds[1])}]"


def _points(tolerance):
    """``0.01`` -> ``"1 point"``, ``0.005`` -> ``"0.5 points"``."""
    points = tolerance * 100
    return f"{points:g} point{'' if points == 1 else 's'}"


def _names(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class Comparison:
    """The outcome of :func:`compare_strategies`.

    Attributes
    ----------
    results : dict of str to StrategyResult
        One per strategy spec, in the order given.
    scoring : str
        The name of the score that fills the matrices.
    settings : dict
        The data, splits and estimator parameters used.
    joint, naive : str or None
        Names of the reference strategies (plain ``"joint"``/``"naive"`` if
        they ran, else the first spec of that strategy), or None.
    scalers : list of FirstMonthScaler
        With ``scale="first-month"``, the scaler of each split, fitted on
        that split's training rows of the first month; else empty.
    baseline : BaselineResult or None
        The majority-class baseline: the last row of the table, never a
        strategy (not in ``results``, never recommended).
    reference : ReferenceResult or None
        The gradient-boosting reference: the row before the baseline's, never
        a strategy either.

    Examples
    --------
    >>> from sklearn_cf.compare import compare_strategies
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=150, random_state=0)
    >>> comp = compare_strategies(X, y, months, ["naive", "replay", "joint"], progress=False,
    ...                           estimator_params={"max_epochs": 2, "hidden_units": (8,)})
    >>> float(comp.table().loc["joint", "rows_vs_naive"])  # months 0, 0-1, 0-2 vs one each
    2.0
    >>> [r["strategy"] for r in comp.table(as_frame=False)]
    ['naive', 'replay', 'joint', 'gradient boosting', 'majority baseline']
    >>> low, high = comp.interval("naive")  # of its next-month score
    >>> bool(low <= comp.results["naive"].summary["deployed_score"] <= high)
    True
    >>> print(comp.to_string().splitlines()[0])  # doctest: +ELLIPSIS
    strategy                       next month                retention  ...
    """

    def __init__(self, results, scoring, settings, scalers=(), baseline=None, reference=None):
        self.results = dict(results)
        self.scoring = scoring
        self.settings = dict(settings)
        self.scalers = list(scalers)
        self.baseline = baseline
        self.reference = reference
        self.joint = _reference(self.results, "joint")
        self.naive = _reference(self.results, "naive")

    @property
    def strategies(self):
        """Strategy names (spec labels), in order."""
        return list(self.results)

    def _row(self, name):
        """The result of a strategy, of the reference or of the baseline."""
        if name in self.results:
            return self.results[name]
        for other in (self.reference, self.baseline):
            if other is not None and other.name == name:
                return other
        raise KeyError(f"{name!r} is not a row of this comparison; rows: "
                       f"{[r['strategy'] for r in self.records()]}.")

    def interval(self, name, what="deployed"):
        """The 95% interval of a row's next-month score or retention.

        Parameters
        ----------
        name : str
            A strategy, or the reference's or the baseline's row name.
        what : {"deployed", "retention"}, default="deployed"
            ``"deployed"``: the mean over months of each month's score with
            the model trained through the month before (``deployed_score``);
            ``"retention"``: the final model's mean over the trained months
            (``average_score``).

        Returns
        -------
        tuple of (float, float) or None
            With several splits, Student's t over the splits; with one, the
            percentile interval of the paired bootstrap (``n_bootstrap``
            resamples of every month's held-out rows, each month weighted
            at random); None when neither exists.
        """
        res = self._row(name)
        key = _LEADS[what]
        per_split = res.deployed_per_split if key == "deployed_score" else \
            res.retention_per_split
        draws = None if not res.draws else res.draws[what]
        return interval(per_split or [], draws)

    def difference(self, name, other, what="deployed"):
        """``name``'s score minus ``other``'s, with the interval of the paired
        difference (the same held-out rows, the same resamples, or the same
        splits).

        Parameters
        ----------
        name, other : str
            Rows of the table (strategies, the reference, the baseline).
        what : {"deployed", "retention"}, default="deployed"

        Returns
        -------
        difference : float
        bounds : tuple of (float, float) or None
            Its 95% interval; None when the comparison has none.

        Examples
        --------
        >>> from sklearn_cf.compare import compare_strategies
        >>> from sklearn_cf.datasets import make_monthly_drift
        >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=150,
        ...                                   random_state=0)
        >>> comp = compare_strategies(X, y, months, ["naive", "joint"], progress=False,
        ...                           estimator_params={"max_epochs": 2, "hidden_units": (8,)})
        >>> d, (low, high) = comp.difference("joint", "naive")
        >>> bool(low <= d <= high)
        True
        """
        key = _LEADS[what]
        a, b = self._row(name), self._row(other)
        diff = a.summary.get(key, np.nan) - b.summary.get(key, np.nan)
        a_split = a.deployed_per_split if what == "deployed" else a.retention_per_split
        b_split = b.deployed_per_split if what == "deployed" else b.retention_per_split
        per_split = np.asarray(a_split or [], float) - np.asarray(b_split or [], float) \
            if a_split and b_split and len(a_split) == len(b_split) else []
        draws = None
        if a.draws and b.draws:
            draws = a.draws[what] - b.draws[what]
        return float(diff), interval(per_split, draws)

    def _difference_on_these_months(self, name, other, what="deployed"):
        """:meth:`difference`, its bootstrap interval from the row resamples
        alone (every month of the window weighted equally): how sure the
        difference is on these months' held-out rows. Used for the floor
        (the majority-class baseline), not for the choice between
        strategies; without per-month draws, :meth:`difference` itself."""
        a, b = self._row(name), self._row(other)
        key = f"{what}_cells"
        if not (a.draws and b.draws and key in a.draws and key in b.draws):
            return self.difference(name, other, what)
        diff = self.difference(name, other, what)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN resamples
            draws = np.nanmean(a.draws[key], axis=1) - np.nanmean(b.draws[key], axis=1)
        return diff, interval([], draws)

    def records(self):
        """The table as a list of dicts, one per row (plain floats).

        Returns
        -------
        list of dict
            Keys: ``strategy``; ``deployed_score`` (the mean over months of
            each month's score with the model trained through the month
            before: the model in use) with ``deployed_low`` and
            ``deployed_high``, its 95% interval; ``average_score`` (the
            final model's mean over every trained month: retention) with
            ``average_low`` and ``average_high``; ``backward_transfer``,
            ``forgetting``, ``learning_score``, ``next_month_aut``, ``aut``
            (with ``aut_scoring``), ``honest_score`` and ``oracle_score``
            (tuned strategies, with ``tune_months``), ``gap_to_joint``,
            ``flip_rate`` (mean negative flip rate of the updates),
            ``prospective_tpr`` and ``realised_fpr`` (with ``target_fpr``:
            means over months), ``worst_group_forgetting`` (with
            ``groups``), ``rows``, ``rows_vs_naive``, ``rows_vs_joint``,
            ``seconds``, ``seconds_vs_naive``, ``fisher_negative_share``
            (None where undefined). With a :attr:`reference`, a row named
            after it holds its scores and seconds; with a :attr:`baseline`,
            a last row named :data:`BASELINE_NAME` holds its scores (no
            costs).
        """
        out = []
        for name, res in self.results.items():
            row = self._scores(name, res)
            row.update(
                gap_to_joint=res.gap_to_joint,
                rows=res.rows,
                rows_vs_naive=res.rows_vs_naive,
                rows_vs_joint=res.rows_vs_joint,
                seconds=res.seconds,
                seconds_vs_naive=res.seconds_vs_naive,
                fisher_negative_share=res.fisher_negative_share,
                aut=res.aut,
                honest_score=res.honest_score,
                oracle_score=res.oracle_score,
                flip_rate=res.flip_rate,
                worst_group_forgetting=res.worst_group_forgetting,
            )
            detection = res.detection.summary() if res.detection is not None else {}
            row["prospective_tpr"] = detection.get("prospective_tpr")
            row["realised_fpr"] = detection.get("realised_fpr")
            out.append(row)
        if self.reference is not None:
            row = self._scores(self.reference.name, self.reference)
            row.update(gap_to_joint=self.reference.gap_to_joint, seconds=self.reference.seconds,
                       seconds_vs_naive=self.reference.seconds_vs_naive)
            out.append(row)
        if self.baseline is not None:
            row = self._scores(self.baseline.name, self.baseline)
            row["gap_to_joint"] = self.baseline.gap_to_joint
            out.append(row)
        return out

    def _scores(self, name, res):
        """A record's score columns, with the intervals."""
        row = dict.fromkeys(_TABLE_COLUMNS)
        row["strategy"] = name
        for key, column in _SUMMARY_COLUMNS:
            row[column] = res.summary.get(key, float("nan"))
        for what, prefix in (("deployed", "deployed"), ("retention", "average")):
            bounds = self.interval(name, what)
            if bounds is not None:
                row[f"{prefix}_low"], row[f"{prefix}_high"] = bounds
        return row

    def table(self, as_frame=None):
        """The comparison table.

        Parameters
        ----------
        as_frame : bool or None, default=None
            True: a pandas DataFrame indexed by strategy; False: a list of
            dicts (see :meth:`records`); None: a DataFrame if pandas is
            installed, else the list.

        Returns
        -------
        pandas.DataFrame or list of dict
        """
        records = self.records()
        if as_frame is False:
            return records
        try:
            import pandas as pd
        except ImportError:
            if as_frame:
                raise ImportError(
                    "table(as_frame=True) needs pandas: pip install pandas."
                ) from None
            return records
        frame = pd.DataFrame.from_records(records, columns=list(_TABLE_COLUMNS))
        frame = frame.set_index("strategy")
        return frame.astype(float)

    def display_columns(self):
        """The table columns worth showing: those with at least one value
        (an interval is shown in its value's cell)."""
        records = self.records()
        return [
            c for c in _DISPLAY
            if c == "strategy" or any(not is_missing(r[c]) for r in records)
        ]

    def display_rows(self, columns=None):
        """Headers and formatted cells of the table, for text, Markdown or HTML.

        Returns
        -------
        headers : list of str
        rows : list of list of str
            ``"-"`` where a value is undefined.
        """
        columns = self.display_columns() if columns is None else columns
        headers = [self._header(c) for c in columns]
        rows = []
        for record in self.records():
            cells = []
            for c in columns:
                text = _DISPLAY[c][1](record)
                cells.append("-" if text is None else text)
            rows.append(cells)
        return headers, rows

    def _header(self, column):
        if column == "aut" and self.settings.get("aut_scoring"):
            return f"AUT({self.settings['aut_scoring']})"
        if column == "prospective_tpr" and self.settings.get("target_fpr") is not None:
            return f"TPR@{self.settings['target_fpr']:g}"
        return _DISPLAY[column][0]

    def to_string(self, width=100):
        """The table as aligned plain text (what ``sklearn-cf compare`` prints).

        Parameters
        ----------
        width : int or None, default=100
            Longest line allowed. A table wider than that is split into
            several tables of consecutive columns, each repeating the
            strategy column, separated by a blank line; every cell is kept.
            None: one table, however wide.

        Returns
        -------
        str
        """
        headers, rows = self.display_rows()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        blocks = [[]]
        used = widths[0]
        for i in range(1, len(headers)):
            if width is not None and blocks[-1] and used + 2 + widths[i] > width:
                blocks.append([])
                used = widths[0]
            blocks[-1].append(i)
            used += 2 + widths[i]

        def line(cells, columns):
            return "  ".join(
                [cells[0].ljust(widths[0])] + [cells[i].rjust(widths[i]) for i in columns]
            ).rstrip()

        tables = []
        for columns in blocks:
            tables.append("\n".join(line(cells, columns) for cells in [headers, *rows]))
        return "\n\n".join(tables)

    def recommend(self, tolerance=0.01):
        """The strategy to ship.

        The lead score is the next-month (deployed) score, or, when no
        strategy has one (a single month), the final model's average. Among
        the strategies whose lead score beats the majority-class
        :attr:`baseline`'s (by more than the interval of their paired
        difference, when there is one; for this floor, the interval of the
        row resamples alone, every month weighted alike), the best one is
        shipped if its lead
        over each other is larger than its uncertainty and than
        ``tolerance``: the 95% interval of the paired difference lies below
        ``-tolerance``. With one split, that interval is the paired
        two-level bootstrap's (each month weighted at random, each month's
        held-out rows resampled), so it holds the month-to-month variation
        of the difference: a lead carried by a few months is not taken for
        a real one, and one old month fewer moves a difference by less than
        its uncertainty (issue 22: the verdict is to stay the same when an
        old month is dropped). The strategies it cannot be
        told from form a set; of them, those whose retention of past months
        (the final model's average) is not both more than ``tolerance``
        below the set's best and below it beyond the paired uncertainty
        are kept
        (the deployed month first, then retention, then cost), and the
        cheapest of those in training rows wins (a tie goes to the strategy
        listed first: list the simplest first, as
        :data:`DEFAULT_STRATEGIES` does). The
        baseline and the reference are never recommended.

        Parameters
        ----------
        tolerance : float, default=0.01
            A difference the team does not care about, in score units (0.01 =
            1 point): a strategy whose paired interval reaches
            ``-tolerance`` counts as indistinguishable from the best, so
            that a lead must be both larger than its uncertainty and worth
            having (a lead of 0.006 whose interval is [0.001, 0.012] flips
            with the history window). 0: the interval alone. Without
            intervals (one split, ``n_bootstrap=0``), strategies within
            ``tolerance`` of the best.

        Returns
        -------
        str or None
            A strategy name, or None when no strategy has a defined score
            or none beats the majority-class baseline.
        """
        return self._choice(tolerance)[0]

    def indistinguishable(self, tolerance=0.01):
        """The strategies the verdict cannot tell from the best on its lead
        score, best first (see :meth:`recommend`); empty when none is
        recommended."""
        return self._choice(tolerance)[1]

    def _lead(self):
        """``"deployed"`` when a strategy has a next-month score, else
        ``"retention"`` (a stream of one month)."""
        for res in self.results.values():
            if not is_missing(res.summary.get("deployed_score")):
                return "deployed"
        return "retention"

    def _score(self, name, lead=None):
        value = self._row(name).summary.get(_LEADS[lead or self._lead()])
        return None if is_missing(value) else float(value)

    def _scored(self):
        return [name for name in self.results if self._score(name) is not None]

    def _baseline_score(self):
        """The baseline's lead score, or None (no baseline, or undefined)."""
        if self.baseline is None:
            return None
        return self._score(self.baseline.name)

    def _beats_baseline(self, name):
        """Whether ``name``'s lead score beats the baseline's, by more than the
        uncertainty of their paired difference when the comparison has one.

        The floor asks whether a strategy beats always answering the most
        frequent class on these months, so its interval is the row
        resamples' alone: weighting the months would make it hinge on the
        first deployed month (every strategy is then the same model, trained
        on one month, and may lose to the baseline there), and with a few
        months it refused every strategy but one or all of them, whichever
        old month was dropped."""
        floor = self._baseline_score()
        if floor is None:
            return True
        diff, bounds = self._difference_on_these_months(name, self.baseline.name, self._lead())
        return (diff if bounds is None else bounds[0]) > 1e-12

    def _separated(self, name, best, tolerance, what=None):
        """Whether ``name`` is worse than ``best`` by more than its uncertainty
        (on the lead score, or on ``what``)."""
        diff, bounds = self.difference(name, best, what or self._lead())
        if is_missing(diff):
            return False
        high = diff if bounds is None else bounds[1]
        return high < -tolerance - 1e-12

    def _retaining(self, tied, tolerance):
        """Of the strategies the deployed score cannot tell apart, those that
        keep past months as well as the best of them: all but those whose
        retention is more than ``tolerance`` below the best retention and
        below it beyond the paired uncertainty (the difference's interval
        under 0). Retention comes second, cost third."""
        if self._lead() != "deployed" or len(tied) < 2:
            return list(tied)
        scored = [n for n in tied if self._score(n, "retention") is not None]
        if not scored:
            return list(tied)
        best = max(scored, key=lambda n: self._score(n, "retention"))

        def worse(name):
            # more than ``tolerance`` lower, and beyond the noise (the paired
            # interval below 0): a material, real shortfall
            diff, bounds = self.difference(name, best, "retention")
            if is_missing(diff):
                return False
            return diff < -tolerance - 1e-12 and (bounds is None or bounds[1] < 0)

        return [n for n in tied if not worse(n)]

    def _cheapest(self, names):
        # A tie on rows goes to the strategy listed first, not to the higher
        # score: the scores of these strategies cannot be told apart, and
        # following their noise made the choice flip with the history window.
        return min(names, key=lambda n: (self.results[n].rows, self.strategies.index(n)))

    def _choice(self, tolerance):
        """``(choice, indistinguishable, passed_over, kept)``: the strategy to
        ship, the strategies it cannot be told from the best, a cheaper
        strategy as good as the best that does not beat the baseline (or
        None), and the indistinguishable ones left by the retention step."""
        scored = self._scored()
        eligible = [n for n in scored if self._beats_baseline(n)]
        if not eligible:
            return None, [], None, []
        best = max(eligible, key=self._score)
        tied = [best] + [n for n in eligible
                         if n != best and not self._separated(n, best, tolerance)]
        kept = self._retaining(tied, tolerance)
        choice = self._cheapest(kept)
        below = [n for n in scored if n not in eligible
                 and not self._separated(n, best, tolerance)]
        passed_over = self._cheapest(below + [choice]) if below else None
        return choice, tied, (None if passed_over == choice else passed_over), kept

    def verdict(self, tolerance=0.01, width=None):
        """One sentence answering "which monthly update should we ship?".

        It leads with the next-month score (the model in use) and its
        interval (with one split, a paired bootstrap that weights the months
        at random and resamples their held-out rows), says which strategies
        cannot be told apart, drops those that keep past months materially
        and surely worse than the best of them, and ships the cheapest of
        the rest (see :meth:`recommend`), and compares the choice with the
        gradient-boosting reference on the deployed month.

        Parameters
        ----------
        tolerance : float, default=0.01
            See :meth:`recommend`.
        width : int or None, default=None
            Wrap the sentence on lines of at most ``width`` characters (for
            a terminal, e.g. 100); None: one line (for reports).

        Returns
        -------
        str
        """
        text = self._verdict(tolerance)
        return _wrap(text, width)

    def scoring_note(self, width=None):
        """Which score fills the table, and why when it was chosen automatically.

        Parameters
        ----------
        width : int or None, default=None
            Wrap at this many characters; None: one line.

        Returns
        -------
        str
            E.g. ``"scoring: roc_auc, chosen automatically because the rarest
            class is 12.0% of rows (below 40%); pass --scoring to change"``,
            or ``"scoring: f1"`` for a scoring given explicitly; then, where
            the score was undefined on some months, how many cells of the
            strategies' matrices (every split) were left out, e.g. ``"; 3 of
            78 cells undefined (f1 on months with no positive row and none
            predicted positive), left out of the means"``; and so for the
            next-month scores of ``aut_scoring``.
        """
        from ..metrics import undefined_note

        reason = self.settings.get("scoring_reason")
        if reason:
            why = reason.partition(", because ")[2] or reason
            text = (f"scoring: {self.scoring}, chosen automatically because {why}; "
                    "pass --scoring to change")
        else:
            text = f"scoring: {self.scoring}"
        results = self.results.values()
        undefined = undefined_note(sum(getattr(r, "n_undefined", 0) for r in results),
                                   sum(getattr(r, "n_scored", 0) for r in results),
                                   self.scoring)
        if undefined:
            text += f"; {undefined}"
        aut = self.settings.get("aut_scoring")
        aut_undefined = sum(getattr(r, "aut_n_undefined", 0) for r in results)
        if aut and aut_undefined:
            aut_points = sum(getattr(r, "aut_n_points", 0) for r in results)
            text += "; " + undefined_note(aut_undefined, aut_points, aut,
                                          unit="next-month score",
                                          left_out_of=f"AUT({aut})")
        return _wrap(text, width)

    def tuning_note(self, width=None):
        """What honest tuning found, or None when ``tune_months`` was not set.

        Parameters
        ----------
        width : int or None, default=None
            Wrap at this many characters; None: one line.

        Returns
        -------
        str or None
            E.g. ``"Honest tuning (chosen on months up to 5, scored on 6 to
            11): honest 0.921 vs oracle 0.934 for l2 (the oracle overstates
            by +0.013); ..."``, then the choice's own scoring when it
            differs from the table's (``scoring="auto"`` chooses it from the
            months up to each cutoff), and a "Check:" list of settings that
            tied (the first was kept) and of choices at an end of their grid
            (``"l2, after 3: chose reg_lambda=0.1, the lowest value tried:
            widen the grid"``).
        """
        tuned = [r for r in self.results.values() if r.tuning]
        if not tuned:
            return None
        first = tuned[0].tuning[0]
        months = first.scored_months
        parts = [f"{r.name} {r.honest_score:.3f} vs {r.oracle_score:.3f} "
                 f"({r.oracle_score - r.honest_score:+.3f})" for r in tuned]
        text = (f"Honest tuning, chosen on months up to {first.cutoffs[0]}"
                + _again(self.settings.get("tune_every"))
                + f", scored on months {months[0]} to {months[-1]}: honest vs oracle "
                f"{self.scoring} (what choosing on the scored months overstates): "
                + "; ".join(parts) + ".")
        choice_scoring = sorted({name for r in tuned for t in r.tuning
                                 for name in t.choice_scoring} - {self.scoring})
        if choice_scoring:
            text += (f" The choices were made by {' and '.join(choice_scoring)}, chosen "
                     f"automatically from the rows of the months up to each cutoff; the "
                     f"table's {self.scoring} is chosen from every month.")
        warnings = []
        for r in tuned:
            splits = len(r.tuning)
            for k, t in enumerate(r.tuning):
                where = f" (split {k + 1})" if splits > 1 else ""
                warnings += [f"{r.name}{where}, {w}" for w in t.warnings()]
        if warnings:
            text += " Check: " + "; ".join(warnings) + "."
        return _wrap(text, width)


    def _what(self, lead=None):
        if (lead or self._lead()) == "deployed":
            return f"next-month {self.scoring}"
        return f"average {self.scoring} over all months"

    def _no_strategy_beats_the_baseline(self, floor):
        best = max(self._scored(), key=self._score)
        answer = self.baseline.majority_class
        answer = f"{answer!r}" if isinstance(answer, str) else f"{answer}"
        if self._score(best) > floor:
            diff, bounds = self._difference_on_these_months(best, self.baseline.name,
                                                            self._lead())
            text = (
                f"No strategy beats the majority-class baseline ({floor:.3f}) by more than "
                f"its uncertainty: the best {self._what()}, {best}'s "
                f"({self._score(best):.3f}), leads always answering {answer} by "
                f"{_signed(diff)}{_signed_span(bounds)}, so none is recommended"
            )
        else:
            text = (
                f"No strategy beats the majority-class baseline ({floor:.3f}): always "
                f"answering {answer}, the most frequent class of the training rows, scores "
                f"at least the {self._what()} of the best strategy, {best} "
                f"({self._score(best):.3f}), so none is recommended"
            )
        suggested = self.settings.get("auto_scoring")
        if self.scoring == "accuracy" and suggested not in (None, "accuracy"):
            text += ("; on a target with a rare class, accuracy rewards always answering "
                     f"the most frequent one: compare them with --scoring {suggested}")
        return text + "."

    def _scored_text(self, name, lead=None):
        lead = lead or self._lead()
        return f"{self._score(name, lead):.3f}{_span(self.interval(name, lead))}"

    def _verdict(self, tolerance):
        choice, tied, passed_over, kept = self._choice(tolerance)
        floor = self._baseline_score()
        if choice is None and self._scored() and floor is not None:
            return self._no_strategy_beats_the_baseline(floor)
        if choice is None:
            return (
                f"No strategy has a defined {self.scoring} score on these months, "
                "so none can be recommended; check the scoring."
            )
        lead = self._lead()
        level = f"{CONFIDENCE:.0%}"
        text = f"Ship {choice}: "
        if len(tied) == 1:
            text += f"its {self._what()}, {self._scored_text(choice)}"
            if lead == "deployed":
                text += " (each month scored by the model trained through the month before)"
            others = sorted((n for n in self._scored() if n != choice),
                            key=self._score, reverse=True)
            if others:
                diff, bounds = self.difference(choice, others[0], lead)
                text += f", leads the runner-up {others[0]} by {_signed(diff)}"
                text += (f" ({level} interval{_signed_span(bounds)})" if bounds else "")
            else:
                text += " is the only strategy scored"
        else:
            within = "reaches it" if tolerance <= 0 else \
                f"comes within {_points(tolerance)} of it"
            text += (f"on the {self._what()}, {_names(tied)} cannot be told apart "
                     f"(best {tied[0]}, {self._scored_text(tied[0])}; each other's paired "
                     f"{level} interval {within})")
            if len(kept) == len(tied):
                text += f", and {choice} is the cheapest of them in training rows"
            elif len(kept) == 1:
                text += (f"; of them {choice} keeps past months best (retention "
                         f"{self._scored_text(choice, 'retention')}; each other's is more than "
                         f"{_points(tolerance)} lower, beyond its paired {level} interval)")
            else:
                text += (f"; of them {_names(kept)} keep past months as well as the best "
                         f"(retention within {_points(tolerance)} or its uncertainty), and "
                         f"{choice} is the cheapest of those in training rows")
            notes = []
            if choice != tied[0]:
                notes.append(f"its score {self._scored_text(choice)}")
            if len(kept) > 1 and any(self.results[n].rows == self.results[choice].rows
                                     for n in kept if n != choice):
                notes.append("a tie on rows goes to the strategy listed first")
            if notes:
                text += f" ({'; '.join(notes)})"
        text += self._costs(choice)
        if passed_over is not None:
            text += (f"; {passed_over} would cost less, but its {self._score(passed_over):.3f} "
                     f"does not beat the majority-class baseline ({floor:.3f})")
            if self._score(passed_over) > floor:
                text += " by more than its uncertainty"
        text += self._retention(choice, tied, lead)
        text += self._against_reference(choice, lead)
        text += self._naive_forgetting(choice, tolerance)
        return text + "."

    def _costs(self, choice):
        res = self.results[choice]
        costs = []
        if self.naive is not None and res.rows_vs_naive is not None and choice != self.naive:
            costs.append(f"{res.rows_vs_naive:.2f}x naive's")
        if self.joint is not None and res.rows_vs_joint is not None and choice != self.joint:
            costs.append(f"{res.rows_vs_joint:.2f}x joint's")
        return f", for {' and '.join(costs)} training rows" if costs else ""

    def _retention(self, choice, tied, lead):
        """Retention of past months, when it separates the strategies the lead
        score could not (or, leading with retention already, nothing)."""
        if lead != "deployed":
            return ""
        better = []
        for name in tied:
            if name == choice:
                continue
            diff, bounds = self.difference(name, choice, "retention")
            if is_missing(diff):
                continue
            if (bounds[0] if bounds else diff) > 0:
                better.append((diff, name, bounds))
        choice_r = self._score(choice, "retention")
        if better:
            diff, name, bounds = max(better)
            return (f"; {name} keeps past months better (retention "
                    f"{self._score(name, 'retention'):.3f} vs {choice_r:.3f}, "
                    f"{_signed(diff)}{_signed_span(bounds)})")
        if choice_r is not None:
            return f"; its retention of past months is {self._scored_text(choice, 'retention')}"
        return ""

    def _against_reference(self, choice, lead):
        ref = self.reference
        if ref is None or lead != "deployed" or self._score(ref.name) is None:
            return ""
        diff, bounds = self.difference(choice, ref.name, lead)
        if bounds is None:
            how = "beats it" if diff > 0 else "does not beat it"
        elif bounds[0] > 0:
            how = "beats it"
        elif bounds[1] < 0:
            how = "does not beat it"
        else:
            how = "cannot be told from it"
        window = "all history" if ref.window is None else \
            f"the last {ref.window} month{'s' if ref.window != 1 else ''}"
        return (f"; against gradient boosting retrained monthly on {window} "
                f"({self._scored_text(ref.name)} next month), {choice} {how} "
                f"({_signed(diff)}{_signed_span(bounds)})")

    def _naive_forgetting(self, choice, tolerance):
        if self.naive is None:
            return ""
        naive = self.results[self.naive].summary
        bwt = naive.get("backward_transfer")
        if is_missing(bwt):
            return ""
        if bwt < -max(tolerance, 0.01):
            how = "forgets"
        elif bwt < 0:
            how = "barely forgets"
        else:
            how = "does not forget"
        who = "naive fine-tuning" if choice != self.naive else "it"
        text = f"; {who} {how} here (backward transfer {_signed(bwt)}"
        if choice != self.naive:
            text += f", retention {naive['average_accuracy']:.3f}"
        return text + ")"

    def __repr__(self):
        return (
            f"Comparison(strategies={self.strategies}, scoring={self.scoring!r}, "
            f"n_splits={self.settings.get('n_splits')})"
        )

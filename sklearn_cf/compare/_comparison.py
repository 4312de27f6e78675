"""The outcome of a comparison as a table and a verdict: :class:`Comparison`.

:meth:`Comparison.verdict` answers "which monthly update should we ship?"
in one sentence: the cheapest strategy within a tolerance of joint
retraining (the goal line) that beats the majority-class baseline.
"""

from .._validation import is_missing
from ._results import _SUMMARY_COLUMNS, _reference

__all__ = ["Comparison"]


_TABLE_COLUMNS = (
    "strategy",
    "average_score",
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

# Display: header, formatter.
_DISPLAY = {
    "strategy": ("strategy", str),
    "average_score": ("average", "{:.3f}".format),
    "backward_transfer": ("BWT", lambda v: _signed(v)),
    "forgetting": ("forgetting", lambda v: f"{_no_negative_zero(v):.3f}"),
    "learning_score": ("learning", "{:.3f}".format),
    "next_month_aut": ("next-month AUT", "{:.3f}".format),
    "aut": ("AUT", "{:.3f}".format),  # named after its score in display_rows
    "honest_score": ("honest", "{:.3f}".format),
    "oracle_score": ("oracle", "{:.3f}".format),
    "gap_to_joint": ("gap to joint", lambda v: _signed(v)),
    "flip_rate": ("flips", "{:.1%}".format),
    "prospective_tpr": ("TPR@FPR", "{:.3f}".format),
    "realised_fpr": ("realised FPR", "{:.2%}".format),
    "worst_group_forgetting": ("worst group", lambda v: f"{_no_negative_zero(v):.3f}"),
    "rows": ("rows", lambda v: _short_count(v)),
    "rows_vs_naive": ("rows vs naive", "{:.2f}x".format),
    "rows_vs_joint": ("rows vs joint", "{:.2f}x".format),
    "seconds": ("seconds", lambda v: f"{v:.3g}"),
    "seconds_vs_naive": ("seconds vs naive", "{:.2f}x".format),
    "fisher_negative_share": ("Hessian < 0", "{:.1%}".format),
}


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

    Examples
    --------
    >>> from sklearn_cf.compare import compare_strategies
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=150, random_state=0)
    >>> comp = compare_strategies(X, y, months, ["naive", "replay", "joint"], progress=False,
    ...                           estimator_params={"max_epochs": 2, "hidden_units": (8,)})
    >>> float(comp.table().loc["joint", "rows_vs_naive"])  # months 0, 0-1, 0-2 vs one each
    2.0
    >>> comp.table(as_frame=False)[0]["strategy"]
    'naive'
    >>> comp.table(as_frame=False)[-1]["strategy"]
    'majority baseline'
    >>> comp.verdict().startswith("Ship " + comp.recommend())
    True
    >>> print(comp.to_string().splitlines()[0])  # doctest: +ELLIPSIS
    strategy           average     BWT  forgetting  learning  next-month AUT  gap to joint ...
    """

    def __init__(self, results, scoring, settings, scalers=(), baseline=None):
        self.results = dict(results)
        self.scoring = scoring
        self.settings = dict(settings)
        self.scalers = list(scalers)
        self.baseline = baseline
        self.joint = _reference(self.results, "joint")
        self.naive = _reference(self.results, "naive")

    @property
    def strategies(self):
        """Strategy names (spec labels), in order."""
        return list(self.results)

    def records(self):
        """The table as a list of dicts, one per strategy (plain floats).

        Returns
        -------
        list of dict
            Keys: ``strategy``, ``average_score``, ``backward_transfer``,
            ``forgetting``, ``learning_score``, ``next_month_aut``, ``aut``
            (with ``aut_scoring``), ``honest_score`` and ``oracle_score``
            (tuned strategies, with ``tune_months``), ``gap_to_joint``,
            ``flip_rate`` (mean negative flip rate of the updates),
            ``prospective_tpr`` and ``realised_fpr`` (with ``target_fpr``:
            means over months), ``worst_group_forgetting`` (with
            ``groups``), ``rows``, ``rows_vs_naive``, ``rows_vs_joint``,
            ``seconds``, ``seconds_vs_naive``, ``fisher_negative_share``
            (None where undefined). With a :attr:`baseline`, a last row
            named :data:`BASELINE_NAME` holds its scores (no costs).
        """
        out = []
        for name, res in self.results.items():
            row = {"strategy": name}
            for key, column in _SUMMARY_COLUMNS:
                row[column] = res.summary.get(key, float("nan"))
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
        if self.baseline is not None:
            row = dict.fromkeys(_TABLE_COLUMNS)
            row["strategy"] = self.baseline.name
            for key, column in _SUMMARY_COLUMNS:
                row[column] = self.baseline.summary.get(key, float("nan"))
            row["gap_to_joint"] = self.baseline.gap_to_joint
            out.append(row)
        return out

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
        """The table columns worth showing: those with at least one value."""
        records = self.records()
        return [
            c for c in _TABLE_COLUMNS
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
                value = record[c]
                cells.append("-" if is_missing(value) else _DISPLAY[c][1](value))
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
        """The strategy to ship: the cheapest within ``tolerance`` of the best.

        The reference score is joint's average score when joint ran (the
        goal line), else the best average score. Among the strategies whose
        average score is at least the reference minus ``tolerance`` and
        beats the majority-class :attr:`baseline`'s, the one with the fewest
        training rows wins; ties go to the higher score, then the fewer
        seconds. The baseline itself is never recommended.

        Parameters
        ----------
        tolerance : float, default=0.01
            Allowed shortfall in score units (0.01 = 1 point of accuracy).

        Returns
        -------
        str or None
            A strategy name, or None when no strategy has a defined score
            or none beats the majority-class baseline.
        """
        return self._cheapest(tolerance, beat_baseline=True)

    def _scored(self):
        return {
            name: res for name, res in self.results.items()
            if not is_missing(res.summary.get("average_accuracy"))
        }

    def _baseline_score(self):
        """The baseline's average score, or None (no baseline, or undefined)."""
        if self.baseline is None:
            return None
        score = self.baseline.summary.get("average_accuracy")
        return None if is_missing(score) else score

    def _cheapest(self, tolerance, beat_baseline):
        scored = self._scored()
        if not scored:
            return None
        reference = self._reference_score()
        floor = self._baseline_score() if beat_baseline else None
        eligible = [
            (res.rows, -res.summary["average_accuracy"], res.seconds, i, name)
            for i, (name, res) in enumerate(scored.items())
            if res.summary["average_accuracy"] >= reference - tolerance - 1e-12
            and (floor is None or res.summary["average_accuracy"] > floor + 1e-12)
        ]
        return min(eligible)[-1] if eligible else None

    def _reference_score(self):
        if self.joint is not None:
            joint = self.results[self.joint].summary.get("average_accuracy")
            if not is_missing(joint):
                return joint
        return max(
            res.summary["average_accuracy"] for res in self.results.values()
            if not is_missing(res.summary.get("average_accuracy"))
        )

    def verdict(self, tolerance=0.01, width=None):
        """One sentence answering "which monthly update should we ship?".

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

    def _no_strategy_beats_the_baseline(self, floor):
        best = max(self._scored().items(), key=lambda item: item[1].summary["average_accuracy"])
        answer = self.baseline.majority_class
        answer = f"{answer!r}" if isinstance(answer, str) else f"{answer}"
        text = (
            f"No strategy beats the majority-class baseline ({floor:.3f}): always answering "
            f"{answer}, the most frequent class of the training rows, scores at least the "
            f"average {self.scoring} of the best strategy, {best[0]} "
            f"({best[1].summary['average_accuracy']:.3f}), so none is recommended"
        )
        suggested = self.settings.get("auto_scoring")
        if self.scoring == "accuracy" and suggested not in (None, "accuracy"):
            text += ("; on a target with a rare class, accuracy rewards always answering "
                     f"the most frequent one: compare them with --scoring {suggested}")
        return text + "."

    def _verdict(self, tolerance):
        choice = self.recommend(tolerance)
        floor = self._baseline_score()
        if choice is None and self._scored() and floor is not None:
            return self._no_strategy_beats_the_baseline(floor)
        if choice is None:
            return (
                f"No strategy has a defined {self.scoring} score on these months, "
                "so none can be recommended; check the scoring."
            )
        res = self.results[choice]
        score = res.summary["average_accuracy"]
        points = f"{tolerance * 100:g} point{'s' if tolerance * 100 != 1 else ''}"
        joint_ok = self.joint is not None and not is_missing(
            self.results[self.joint].summary.get("average_accuracy")
        )
        if joint_ok:
            ref_name, ref_score = self.joint, self.results[self.joint].summary["average_accuracy"]
        else:
            ref_name = max(
                (n for n, r in self.results.items()
                 if not is_missing(r.summary.get("average_accuracy"))),
                key=lambda n: self.results[n].summary["average_accuracy"],
            )
            ref_score = self.results[ref_name].summary["average_accuracy"]

        # The cheapest within the tolerance, had the baseline not ruled it out.
        passed_over = self._cheapest(tolerance, beat_baseline=False)
        passed_over = None if passed_over == choice else passed_over
        text = f"Ship {choice}: its average {self.scoring} over all months, {score:.3f}, "
        if choice == ref_name and joint_ok and passed_over is not None:
            text += "is the goal line"
        elif choice == ref_name and joint_ok:
            text += f"is the goal line, and no cheaper strategy comes within {points} of it"
        elif choice == ref_name:
            text += "is the best of all strategies"
        elif score >= ref_score:
            text += f"matches or beats {ref_name}'s {ref_score:.3f}"
        else:
            text += f"is within {points} of {ref_name}'s {ref_score:.3f}"
        costs = []
        if self.naive is not None and res.rows_vs_naive is not None and choice != self.naive:
            costs.append(f"{res.rows_vs_naive:.2f}x naive's")
        if self.joint is not None and res.rows_vs_joint is not None and choice != self.joint:
            costs.append(f"{res.rows_vs_joint:.2f}x joint's")
        if costs:
            text += f", for {' and '.join(costs)} training rows"
        if passed_over is not None:
            text += (
                f"; {passed_over} would cost less, but its "
                f"{self.results[passed_over].summary['average_accuracy']:.3f} does not beat "
                f"the majority-class baseline ({floor:.3f})"
            )
        if self.naive is not None:
            naive = self.results[self.naive].summary
            bwt = naive.get("backward_transfer")
            if not is_missing(bwt):
                if bwt < -tolerance:
                    how = "forgets"
                elif bwt < 0:
                    how = "barely forgets"
                else:
                    how = "does not forget"
                who = "naive fine-tuning" if choice != self.naive else "it"
                text += f"; {who} {how} here (backward transfer {_signed(bwt)}"
                if choice != self.naive:
                    text += f", average {naive['average_accuracy']:.3f}"
                text += ")"
        return text + "."

    def __repr__(self):
        return (
            f"Comparison(strategies={self.strategies}, scoring={self.scoring!r}, "
            f"n_splits={self.settings.get('n_splits')})"
        )

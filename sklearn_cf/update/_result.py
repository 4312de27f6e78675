"""What an update did: one :class:`MonthUpdate` per month trained, and the
:class:`UpdateResult` with its summary (the terminal) and report (Markdown)."""

import math
import textwrap
from dataclasses import dataclass, field

from .._eval_store import LEGACY_SCORING
from .._gate import p_text
from .._text import newest


@dataclass
class MonthUpdate:
    """One month trained: its scores and the forgetting row it caused."""

    month: object
    train_rows: int
    holdout_rows: int
    seconds: float
    score: float = None
    """The updated model on this month's held-out rows."""
    next_month_score: float = None
    """The model before the update on this month's held-out rows."""
    before: dict = field(default_factory=dict)
    """Score on every past month's held-out rows before the update."""
    after: dict = field(default_factory=dict)
    """The same, after it."""
    notes: list = field(default_factory=list)
    """What the model's encoder did to this month's rows: columns constant
    where it was fitted, categories it had not seen (one line each)."""
    tests: dict = field(default_factory=dict)
    """The forgetting gate's :class:`DropTest` per past month whose score is
    defined before and after (empty without ``max_forgetting``, or with the
    noise test off)."""

    @property
    def drops(self):
        """Before minus after, per past month (NaN where a score is undefined)."""
        return {m: self.before[m] - self.after[m] for m in self.before}

    def undefined_months(self):
        """Months whose held-out score is undefined (NaN) before or after."""
        months = [m for m in self.before
                  if _undefined(self.before[m]) or _undefined(self.after[m])]
        if _undefined(self.score) or _undefined(self.next_month_score):
            months.append(self.month)
        return months


@dataclass
class UpdateResult:
    """What :func:`update_model` did."""

    model: str
    strategy: str
    created: bool
    months_before: list
    months_after: list
    steps: list
    max_forgetting: float = None
    saved: bool = False
    scoring: str = LEGACY_SCORING
    """The scorer name every score here was computed with."""
    scoring_reason: str = None
    """Why, when it was chosen automatically for a new store
    (:func:`~sklearn_cf.metrics.default_scoring`'s reason); else None."""
    scoring_recorded: bool = False
    """Whether the scoring was read from the evaluation store."""
    generation: int = None
    """The generation committed (None when nothing was)."""
    previous: int = None
    """The generation current before the update (None for a new store)."""
    already_applied: list = field(default_factory=list)
    """Months of the data applied before with the same rows, skipped."""
    imported: str = None
    """The checkpoint file a new store started from (``init_from``)."""
    forgetting_confidence: float = None
    """The gate's confidence (0: the point drop alone decides; None: no
    ``max_forgetting``, no gate)."""
    refused: list = field(default_factory=list)
    """The :class:`DropTest` of every past month that refuses the update
    (under ``max_forgetting`` and ``forgetting_confidence``), largest drop
    first; when ``accepted_forgetting``, the update was committed anyway."""
    accepted_forgetting: bool = False
    """Whether the update was committed although the gate refused it
    (``accept_forgetting=True``)."""
    refusal: str = None
    """The refusal record written or marked in the store by this update
    (see :meth:`sklearn_cf.store.ModelStore.refusals`)."""
    reapplied: list = field(default_factory=list)
    """Refusal records of the store that this update applied (the same
    months, with the same rows)."""

    @property
    def largest_drop(self):
        """(month, drop) of the largest defined drop (before minus after) over
        every step, or None; the drop is negative when every past month gained."""
        drops = [(d, m) for step in self.steps for m, d in step.drops.items()
                 if not _undefined(d)]
        if not drops:
            return None
        drop, month = max(drops, key=lambda t: t[0])
        return month, drop

    def scoring_note(self):
        """``scoring: NAME`` and where it comes from, as one line."""
        store = f"the model store {self.model}"
        if self.scoring_recorded:
            return f"scoring: {self.scoring}, recorded in {store}"
        if self.scoring_reason:
            why = self.scoring_reason.partition(", because ")[2] or self.scoring_reason
            return (f"scoring: {self.scoring}, chosen automatically because {why}; "
                    f"recorded in {store} for every later update")
        return f"scoring: {self.scoring}, as given; recorded in {store} for every later update"

    def _undefined_note(self):
        """The months whose held-out score is undefined, and why
        (:func:`~sklearn_cf.metrics.undefined_reason`); None when none is."""
        from ..metrics import undefined_reason

        months = [m for step in self.steps for m in step.undefined_months()]
        if not months:
            return None
        shown = ", ".join(map(str, dict.fromkeys(months)))
        return (f"month {shown} undefined ({undefined_reason(self.scoring)}), "
                "left out of the drops")

    def _drop_text(self, limit_name, digits):
        """The largest drop, as a positive number, or that no past month dropped.

        One sign convention everywhere: a ``change`` is after minus before
        (negative: the score dropped), and a drop is before minus after,
        printed only when positive.
        """
        largest = self.largest_drop
        if largest is None:
            return None
        limit = ("" if self.max_forgetting is None
                 else f"{limit_name}{self.max_forgetting:g}")
        month, drop = largest
        if drop > 0:
            return (f"largest drop on a past month: {drop:.{digits}f} on {month} "
                    f"(change {-drop:+.{digits}f}{'; ' + limit if limit else ''})")
        return "no past month's held-out score dropped" + (f" ({limit})" if limit else "")

    def gate_text(self):
        """The forgetting gate's rule and verdict, one sentence; None when
        no test was run (no past month, or ``forgetting_confidence=0``)."""
        tested = [t for step in self.steps for t in step.tests.values()]
        if not tested or not self.forgetting_confidence or self.max_forgetting is None:
            return None
        alpha = 1 - self.forgetting_confidence
        months = f"{len(tested)} past month{'s' if len(tested) != 1 else ''}"
        rule = (f"refuse when a past month drops by more than {self.max_forgetting:g} with "
                f"p < {alpha:.2g}")
        where = f"{_METHODS[tested[0].method]}, Holm over {months}"
        if not self.refused:
            verdict = "passed"
        else:
            months = ", ".join(str(t.month) for t in self.refused)
            verdict = (f"refused by month {months}"
                       + ("; applied anyway (--accept-forgetting)"
                          if self.accepted_forgetting else ""))
        return f"gate: {rule} ({where}): {verdict}"

    def summary(self):
        """A few lines, at most 100 columns."""
        if self.imported is not None:
            verb = f"new store from {self.imported}"
        else:
            verb = "new model" if self.created else "updated"
        if not self.steps:
            verb = "imported" if self.saved else "up to date"
        months = newest(self.months_before if self.steps else self.months_after)
        lines = [f"{self.model}: {verb} ({self.strategy}); months "
                 f"{'before' if self.steps else 'now'}: {months}"]
        if self.already_applied:
            lines.append("already applied with the same data (skipped): month "
                         + newest(self.already_applied, 48))
        if not self.steps:
            lines.append(f"saved {self.model} as generation {self.generation}, from "
                         f"{self.imported}" if self.saved
                         else f"nothing to do: {self.model} is unchanged")
            return "\n".join(lines)
        lines += textwrap.wrap(self.scoring_note(), width=100, subsequent_indent="  ",
                               break_long_words=False, break_on_hyphens=False)
        for step in self.steps:
            score = _fmt(step.score)
            nxt = _fmt(step.next_month_score)
            lines.append(
                f"month {step.month}: trained {step.train_rows} rows in {step.seconds:.1f} s; "
                f"held-out {step.holdout_rows} rows: {score} (before update: {nxt})"
            )
            if step.before:
                width = max(len(str(m)) for m in step.before)
                gate = "   drop bounds      p (Holm)" if step.tests else ""
                lines.append(f"  {'past month'.ljust(max(width, 10))}  before   after  change"
                             + gate)
                for m in step.before:
                    test = step.tests.get(m)
                    lines.append(
                        f"  {str(m).ljust(max(width, 10))}  {_fmt(step.before[m]):>6}  "
                        f"{_fmt(step.after[m]):>6}  "
                        f"{_change(step.before[m], step.after[m]):>{6 if step.tests else 1}}"
                        + (f"  {_bounds(test):<16}  {p_text(test.p_adjusted) if test else '-'}"
                           + ("  refuses" if test and test.refuses else "")
                           if step.tests else "")
                    )
            lines += [f"note: {note}" for note in step.notes]
        undefined = self._undefined_note()
        if undefined:
            lines += textwrap.wrap(f"undef: {undefined}", width=100, subsequent_indent="  ",
                                   break_long_words=False, break_on_hyphens=False)
        drop = self._drop_text("--max-forgetting ", 3)
        if drop is not None:
            lines.append(drop)
        gate = self.gate_text()
        if gate is not None:
            lines += textwrap.wrap(gate, width=100, subsequent_indent="  ",
                                   break_long_words=False, break_on_hyphens=False)
        if self.saved:
            tail = "" if self.previous is None else f" (previous: generation {self.previous})"
            lines.append(f"saved {self.model} as generation {self.generation}{tail}")
        else:
            lines.append(f"not saved: {self.model} is unchanged")
        return "\n".join(line if len(line) <= 100 else line[:97] + "..." for line in lines)

    def to_markdown(self):
        """The report: the summary, then a table per month trained."""
        out = [f"# Monthly update of `{self.model}`", ""]
        out.append(f"**{'Saved' if self.saved else 'Refused, not saved'}.** Strategy "
                   f"`{self.strategy}`; months before: "
                   f"{', '.join(map(str, self.months_before)) or 'none'}; after: "
                   f"{', '.join(map(str, self.months_after))}.")
        out += ["", f"Scores are {self.scoring_note().partition('scoring: ')[2]}."]
        undefined = self._undefined_note()
        if undefined:
            out += ["", f"`undef`: {undefined}."]
        drop = self._drop_text("threshold ", 4)
        if drop is not None:
            out += ["", drop[0].upper() + drop[1:] + "."]
        gate = self.gate_text()
        if gate is not None:
            out += ["", "Forgetting " + gate + "."]
        for step in self.steps:
            out += ["", f"## Month {step.month}", "",
                    f"Trained on {step.train_rows} rows ({step.seconds:.1f} s); "
                    f"{step.holdout_rows} rows held out.", "",
                    f"| measure | {self.scoring} |", "| --- | ---: |",
                    f"| held-out score of the updated model | {_fmt(step.score)} |",
                    f"| next-month score (model before the update) | "
                    f"{_fmt(step.next_month_score)} |"]
            if step.notes:
                out += [""] + [f"Note: {note}." for note in step.notes]
            if step.before and step.tests:
                header = ("| past month | before | after | change | drop bounds | p (Holm) "
                          "| refuses |")
                out += ["", header, "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
                for m in step.before:
                    test = step.tests.get(m)
                    out.append(
                        f"| {m} | {_fmt(step.before[m])} | {_fmt(step.after[m])} | "
                        f"{_change(step.before[m], step.after[m])} | {_bounds(test)} | "
                        f"{p_text(test.p_adjusted) if test else '-'} | "
                        f"{'yes' if test and test.refuses else ''} |")
            elif step.before:
                out += ["", "| past month | before | after | change |",
                        "| --- | ---: | ---: | ---: |"]
                out += [f"| {m} | {_fmt(step.before[m])} | {_fmt(step.after[m])} | "
                        f"{_change(step.before[m], step.after[m])} |" for m in step.before]
        return "\n".join(out) + "\n"


def _undefined(value):
    return isinstance(value, float) and math.isnan(value)


def _undefined_or_none(value):
    return value is None or _undefined(value)


_METHODS = {"mcnemar": "paired exact McNemar test",
            "bootstrap": "paired bootstrap test"}


def _bounds(test):
    """``[low, high]`` of a test's drop; ``-`` when untested."""
    if test is None or _undefined(test.low):
        return "-"
    return f"[{test.low:.3f}, {test.high:.3f}]"


def _fmt(value):
    if value is None:
        return "n/a"
    return "undef" if _undefined(value) else f"{value:.3f}"


def _change(before, after):
    if before is None or after is None or _undefined(before) or _undefined(after):
        return "-"
    return f"{after - before:+.3f}"


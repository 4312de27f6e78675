"""The monthly job: update a model store with a new month, check it, commit it.

:func:`update_model` is what ``sklearn-cf update`` runs (see docs/cli.md):
under the store's writer lock it loads the current generation of the model
store ``--model M`` (or starts a new model), holds out part of the new month,
trains the rest with ``partial_fit_month``, scores the updated model on the
held-out rows of every month so far, and commits the new model, with its
evaluation store, as the next generation (:mod:`sklearn_cf.store`). An update
that forgets more than a threshold is refused and commits nothing;
:func:`rollback` makes an earlier generation current again.

A new model carries its encoder of raw rows
(``ContinualClassifier(preprocessor=TableEncoder(standardize=...))``: the
columns by name, text one-hot, numbers standardized with ``--scale
first-month``), fitted by its first month's *training* rows (the held-out
rows never shape it), so that ``sklearn_cf.load(M).predict(raw_rows)`` is
what the job computes. Each month's summary notes the columns constant where
the encoder was fitted and the categories it had not seen.

Each generation carries its *evaluation store*
(:class:`~sklearn_cf._eval_store.EvalStore`): the held-out rows and labels of
every month the model was updated with (at most :data:`MAX_EVAL_ROWS` per
month, drawn at random), raw as read, which the model scores through its own
encoder, and the scoring every update of the model uses. A store written
before models carried their encoder (or a checkpoint without one, given to
``--init-from``) keeps encoded, scaled rows and its recorded standardization,
and is updated as it was.

The scoring is chosen once, when the first generation is written
(``scoring="auto"``: :func:`sklearn_cf.metrics.default_scoring` on that first
data's target), and recorded, so that every later update of the model is
scored alike.

A month already applied with the same data is an idempotent success (nothing
is written); the same month label with other data is refused.
"""

import hashlib
import math
import os
import textwrap
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._compat import to_python
from ._epoch_progress import epoch_progress
from ._estimator import load as load_checkpoint
from ._eval_store import LEGACY_SCORING, MAX_EVAL_ROWS, EvalStore, take_rows
from ._gate import (
    DEFAULT_CONFIDENCE,
    DropTest,
    binary_auc,
    bootstrap_drop,
    check_confidence,
    holm_adjust,
    mcnemar_drop,
    refusing,
)
from ._gate import p_text
from ._replayed import replay_outputs
from .preprocessing import ConstantFeatureWarning, UnseenCategoryWarning
from ._text import newest
from .store import DEFAULT_KEEP, ModelStore

__all__ = [
    "MAX_EVAL_ROWS",
    "DropTest",
    "EvalStore",
    "ForgettingRefused",
    "MonthUpdate",
    "UpdateResult",
    "load_month_data",
    "raw_stream",
    "refusal_state",
    "rollback",
    "save_best",
    "update_model",
]


class ForgettingRefused(Exception):
    """An update dropped a past month's held-out score by more than allowed.

    With ``forgetting_confidence`` > 0 (the default), "more than allowed"
    means larger than ``max_forgetting`` *and* beyond the held-out rows'
    sampling noise (see :mod:`sklearn_cf._gate` and docs/cli.md).

    Attributes
    ----------
    month : object
        The month with the largest refusing drop.
    drop : float
        Its score before the update minus after it.
    threshold : float
        The ``max_forgetting`` it exceeded.
    result : UpdateResult
        Everything measured, for the report (``result.refused``: every
        refusing month's :class:`DropTest`).
    test : DropTest or None
        The month's test (None when the noise test is off).
    record : str or None
        The refusal record written in the store (its id, listed by
        ``sklearn-cf history``); None for a store with no generation yet.

    Examples
    --------
    >>> from sklearn_cf.update import ForgettingRefused
    >>> print(ForgettingRefused("2024-01", 0.0225, 0.02, None))
    update refused: the held-out score on month 2024-01 dropped by 0.0225, more than
    --max-forgetting 0.02; the model was not changed.
    """

    def __init__(self, month, drop, threshold, result, test=None, record=None):
        self.month, self.drop, self.threshold, self.result = month, drop, threshold, result
        self.test, self.record = test, record
        noise = ""
        if test is not None:
            confidence = getattr(result, "forgetting_confidence", None)
            tested = sum(len(step.tests) for step in getattr(result, "steps", []))
            noise = (f" (bounds {test.low:.4f} to {test.high:.4f}, p = {p_text(test.p_adjusted)} "
                     f"after Holm over {tested} past month{'s' if tested != 1 else ''})")
        text = (f"update refused: the held-out score on month {month} dropped by {drop:.4f}"
                f"{noise}, more than --max-forgetting {threshold:g}"
                + ("" if test is None else " and beyond the held-out rows' noise at "
                   f"--forgetting-confidence {confidence:g}")
                + "; the model was not changed.")
        if record is not None:
            text += (f" The refusal is recorded as {record} (see sklearn-cf history); to "
                     "apply this month knowingly, run the same update with "
                     "--accept-forgetting.")
        super().__init__(text)


def rollback(model, to=None, *, wait=0.0, keep=DEFAULT_KEEP):
    """Make an earlier generation of the store ``model`` current again.

    The rollback is itself a new generation, so it can be rolled back.

    Parameters
    ----------
    model : str
        A model store.
    to : int or None, default=None
        The generation to restore; None: the one current before the
        current one.
    wait : float, default=0
        Seconds to wait for another writer.
    keep : int, default=DEFAULT_KEEP
        Generations kept.

    Returns
    -------
    before, after : Generation
        The generation current before, and the new one (None, and nothing
        written, when ``to``'s model is already current).
    """
    store = _existing_store(model)
    with store.writer(wait=wait, keep=keep) as writer:
        before = writer.base
        if before is None:
            raise ValueError(f"--model {model!r} has no generation to roll back.")
        return before, writer.rollback(to)


def _existing_store(model):
    model = os.fspath(model)
    if os.path.isfile(model):
        raise ValueError(_checkpoint_file_message(model))
    if not ModelStore.is_store(model):
        raise ValueError(f"--model {model!r} is not a model store (no such folder, or no "
                         "CURRENT file in it).")
    return ModelStore(model)


def _checkpoint_file_message(model):
    return (
        f"--model {model!r} is a single checkpoint file; `sklearn-cf update` keeps a model "
        "as a store of generations (a folder). Start one from it with `sklearn-cf update "
        f"--model NEW_FOLDER --init-from {model} --data ...`."
    )


def month_digest(X, y):
    """SHA-256 of a month's rows (features as float32, labels as text).

    A raw table (a DataFrame) is hashed column by column, in the order of the
    column names (a file with its columns in another order has the same
    digest): each name, kind, values and missing-value mask as the
    evaluation store writes them (:func:`~sklearn_cf._eval_store.frame_columns`).
    """
    from ._eval_store import frame_columns

    digest = hashlib.sha256()
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        digest.update(f"table {X.shape!r}".encode())
        for name, kind, values, missing in sorted(frame_columns(X), key=lambda c: c[0]):
            digest.update(f"\x00{name}\x00{kind}\x00{values.dtype.str}\x00".encode())
            if kind == "text":
                digest.update("\x00".join(values.tolist()).encode())
            else:
                digest.update(np.ascontiguousarray(values).tobytes())
            if missing is not None:
                digest.update(np.packbits(missing).tobytes())
    else:
        X = np.ascontiguousarray(X, dtype=np.float32)
        digest.update(repr(X.shape).encode())
        digest.update(X.tobytes())
    digest.update("\x00".join(map(str, np.asarray(y).tolist())).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def load_month_data(data, *, target=None, month_column=None, raw=False):
    """The new month(s): ``(X, y, months, feature_names)``.

    ``data`` is a CSV or Parquet file (read by
    :func:`sklearn_cf.datasets.read_table`; without ``month_column`` every row
    belongs to one month and ``months`` is None)
    or a folder of monthly ``.npy`` files (``<month>/X.npy``, ``<month>/y.npy``;
    no column names, float32).

    ``raw=True``: a file's feature columns as read (a DataFrame), for a model
    that encodes its own rows; else one-hot encoded as float32, as stores
    written before models carried their encoder need (:func:`_encode_raw`).
    """
    if not isinstance(data, str) or not data:
        raise ValueError("--data must name a CSV/Parquet file or a folder of .npy months.")
    if not os.path.exists(data):
        raise FileNotFoundError(f"No such file or folder: --data {data!r}.")
    if os.path.isdir(data) and not data.rstrip("/").endswith((".parquet", ".pq", ".parq")):
        if month_column is not None or target is not None:
            raise ValueError(
                f"{data!r} is a folder of .npy months, whose sub-folder names are the "
                "months and whose y.npy files are the labels: --month-column and "
                "--target apply only to a CSV or Parquet file."
            )
        from .datasets import MonthFiles

        files = MonthFiles(data)
        Xs, ys, ms = [], [], []
        for label in files.months:
            X, y = files[label]
            Xs.append(np.asarray(X, dtype=np.float32))
            ys.append(np.asarray(y))
            ms.append(np.full(len(ys[-1]), label))
        return np.concatenate(Xs), np.concatenate(ys), np.concatenate(ms), None
    if target is None:
        raise ValueError(f"Reading the file {data!r} needs --target, the column to predict.")
    from .datasets import read_table

    table = read_table(data, month_column=month_column, target=target, encode=not raw)
    months = None if table.months is None else np.asarray(table.months)
    X = table.data if raw else np.asarray(table.data, dtype=np.float32)
    return X, table.target, months, table.feature_names


def _encoded_month(X, y, months, names, data, target, month_column):
    """The month(s) as a store written before models carried their encoder
    takes them: a file read again, encoded by ``read_table`` (text one-hot,
    float32) as such stores always read it; a ``.npy`` month as it is."""
    if not (hasattr(X, "columns") and hasattr(X, "iloc")):
        return X, y, months, names
    return load_month_data(data, target=target, month_column=month_column)


def _check_raw_columns(clf, X, data):
    """Refuse, before any training, a month whose columns are not those the
    model's encoder was fitted with (matched by name, in any order)."""
    encoder = getattr(clf, "preprocessor_", None)
    if encoder is None:
        return
    fitted = getattr(encoder, "feature_names_in_", None)
    is_frame = hasattr(X, "columns") and hasattr(X, "iloc")
    if fitted is None or not is_frame:
        width = X.shape[1]
        if fitted is not None:
            raise ValueError(
                f"{data!r} has unnamed feature columns; the model was trained on a table's "
                f"named columns ({', '.join(map(repr, list(fitted)[:5]))}...)."
            )
        if is_frame or width != encoder.n_features_in_:
            raise ValueError(
                f"{data!r} has {width} {'named' if is_frame else 'unnamed'} feature "
                f"column(s); the model was trained on {encoder.n_features_in_} unnamed "
                "columns (a folder of .npy months)."
            )
        return
    given = [str(c) for c in X.columns]
    missing = [n for n in fitted if n not in set(given)]
    if missing:
        raise ValueError(
            f"{data!r} lacks the feature column(s) {', '.join(map(repr, missing[:5]))} "
            "the model was trained with."
        )
    extra = [n for n in given if n not in set(fitted)]
    if extra:
        raise ValueError(
            f"{data!r} has feature column(s) {', '.join(map(repr, extra[:5]))} the model "
            "was not trained with; drop them."
        )


def _unseen_categories(encoder, X):
    """``[(column, value, rows), ...]``: values of ``X``'s categorical columns
    that ``encoder`` was not fitted on (encoded as all zeros)."""
    names = getattr(encoder, "feature_names_in_", None)
    if not (hasattr(X, "columns") and hasattr(X, "iloc")) or names is None:
        return []
    found = []
    for name, kind, levels in zip(names, encoder.kinds_, encoder.categories_):
        if kind != "categorical" or name not in X.columns:
            continue
        column = X[name]
        text = column[column.notna()].astype(object).astype(str).to_numpy()
        new = text[~np.isin(text, np.asarray(levels, dtype=str))] if levels else text
        values, counts = np.unique(new, return_counts=True)
        found += [(name, v, int(c)) for v, c in zip(values.tolist(), counts.tolist())]
    return found


def _month_notes(clf, month, X, fitted_before):
    """The lines noting what the model's encoder did to this month's rows:
    the columns constant where it was fitted (its first month), and the
    categories it had not seen (all zeros)."""
    from .preprocessing import UnseenCategoryWarning

    encoder = getattr(clf, "preprocessor_", None)
    if encoder is None:
        return []
    notes = []
    if not fitted_before and encoder.constant_features_:
        names = ", ".join(encoder.constant_features_[:5]) + (
            f", ... ({len(encoder.constant_features_)} in all)"
            if len(encoder.constant_features_) > 5 else "")
        notes.append(f"month {month}: constant feature {names} in the "
                     f"{encoder.n_samples_seen_} rows the encoder was fitted on (scale 1)")
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnseenCategoryWarning)
        encoder.transform(X)
    if any(issubclass(w.category, UnseenCategoryWarning) for w in caught):
        unseen = _unseen_categories(encoder, X)
        for name, value, rows in unseen[:5]:
            notes.append(f"month {month}: unseen category {name}={value} in {rows} "
                         f"row{'s' if rows != 1 else ''} (encoded as all zeros)")
        if len(unseen) > 5:
            notes.append(f"month {month}: {len(unseen) - 5} more unseen categories "
                         "(encoded as all zeros)")
    return notes


def _align_columns(X, names, stored, data):
    """Reorder the columns of ``X`` (named ``names``) as ``stored``.

    A one-hot column (``column=value``) the model never saw is dropped (an
    unseen category: all zeros, as a missing value); one the new file lacks is
    all zeros. A missing numeric column is an error.
    """
    if names is None or stored is None or list(names) == list(stored):
        return X
    index = {name: i for i, name in enumerate(names)}
    missing = [s for s in stored if s not in index and "=" not in s]
    if missing:
        raise ValueError(
            f"{data!r} lacks the feature column(s) {', '.join(map(repr, missing[:5]))} "
            "the model was trained with."
        )
    extra = [n for n in names if n not in set(stored) and "=" not in n]
    if extra:
        raise ValueError(
            f"{data!r} has feature column(s) {', '.join(map(repr, extra[:5]))} the model "
            "was not trained with; drop them."
        )
    out = np.zeros((len(X), len(stored)), dtype=np.float32)
    for j, name in enumerate(stored):
        if name in index:
            out[:, j] = X[:, index[name]]
    return out


def _month_label(text):
    """``--month`` as a label: an integer, a date normalized to YYYY-MM, or text."""
    from .datasets import parse_month

    return None if text is None else parse_month(text)


# ---------------------------------------------------------------------------
# The update
# ---------------------------------------------------------------------------
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
        months = [m for step in self.steps for m in step.undefined_months()]
        if not months:
            return None
        shown = ", ".join(map(str, dict.fromkeys(months)))
        return (f"{self.scoring} is undefined where the held-out rows hold a single "
                f"class (month {shown}); such months are left out of the drops")

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


def _split(X, y, holdout, random_state):
    """Training and held-out row indices: stratified when every class allows it."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    if holdout == 0:
        return rows, rows[:0]
    try:
        return train_test_split(rows, test_size=holdout, stratify=y, random_state=random_state)
    except ValueError:  # a class too rare to stratify
        return train_test_split(rows, test_size=holdout, random_state=random_state)


#: Scorings that rank one class's probability: with more than two classes
#: they are scored one class against the rest (:func:`_multiclass_roc_auc`).
_ROC_AUC = ("roc_auc", "roc_auc_ovr", "roc_auc_ovo", "roc_auc_ovr_weighted",
            "roc_auc_ovo_weighted")


def _multiclass_roc_auc(clf, X, y):
    """The mean over the model's classes present in ``y`` of the ROC-AUC of
    that class's probability (its rows against all others, those of classes
    the model lacks included); NaN when fewer than two are present. A class absent from a held-out month (one
    that appeared later, or is rare) is left out rather than failing, as
    scikit-learn's multiclass ROC-AUC would."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    classes = clf.classes_
    present = [k for k, label in enumerate(classes) if np.any(y == label)]
    if len(present) < 2:
        return float("nan")
    proba = clf.predict_proba(X)
    return float(np.mean([roc_auc_score(y == classes[k], proba[:, k]) for k in present]))


def _score(clf, X, y, scorer, scoring):
    """``scorer(clf, X, y)``; NaN where the score is undefined (held-out rows of
    one class for roc_auc), None when there is no fitted model or no row."""
    from .metrics import score_or_nan

    if clf is None or len(y) == 0 or not clf.__sklearn_is_fitted__():
        return None
    if scoring in _ROC_AUC and (len(clf.classes_) > 2
                                or len(np.setdiff1d(np.unique(y), clf.classes_))):
        # More than two classes (or a class the model does not have yet,
        # before the update that adds it): one class against the rest.
        return _multiclass_roc_auc(clf, X, y)
    try:
        # Undefined on these rows: NaN, which the summary reports.
        return score_or_nan(scorer, clf, X, y)
    except ValueError as exc:
        raise ValueError(f"The score {scoring!r} failed on the held-out rows: {exc}") from exc


def _resolve_update_scoring(scoring, store, model):
    """The scoring name of this update: the store's, or the one asked for.

    Returns ``(name, recorded)``; ``name`` is None for ``"auto"`` on a new
    store, chosen later from the data.
    """
    from .metrics import resolve_scoring

    if not isinstance(scoring, str):
        raise ValueError(
            f"scoring must be a scorer name (it is recorded in the evaluation store), "
            f"got {scoring!r}."
        )
    requested = None if scoring == "auto" else resolve_scoring(scoring)[1]
    if store.scoring is None:
        return requested, False
    recorded = resolve_scoring(store.scoring)[1]
    if requested is not None and requested != recorded:
        raise ValueError(
            f"--scoring {requested} differs from the scoring recorded for the model "
            f"{model!r}: {recorded}. Every update of a model "
            f"is scored alike, so that its forgetting rows compare. Drop --scoring (or pass "
            f"--scoring {recorded}) to update it, or give a new --model path to start a "
            f"model scored with {requested}."
        )
    return recorded, True


def _scorer_of(name):
    from sklearn.metrics import get_scorer

    from .metrics import resolve_scoring

    scorer, _ = resolve_scoring(name)
    return get_scorer(scorer) if isinstance(scorer, str) else scorer


def _check_strategy_matches(clf, spec, model):
    """Refuse ``--strategy`` when it differs from the checkpoint's."""
    from .compare import parse_strategy

    parsed = parse_strategy(spec)
    have = clf.get_params(deep=False)
    differ = [] if parsed.strategy == have["strategy"] else [
        f"strategy {have['strategy']!r} (not {parsed.strategy!r})"]
    differ += [f"{k}={have.get(k)!r} (not {v!r})" for k, v in parsed.params.items()
               if have.get(k) != v and not (isinstance(v, tuple) and tuple(have.get(k)) == v)]
    if differ:
        raise ValueError(
            f"--strategy {spec!r} differs from the model {model!r}, trained with "
            f"{'; '.join(differ)}. Drop --strategy to update it as it was trained, or "
            "give a new --model path to start another model."
        )


def _new_model(spec, estimator_params, random_state):
    from .compare import build_estimator

    return build_estimator(spec, estimator_params, random_state)


def _split_by_month(X, y, months, month):
    """``[(label, X, y), ...]`` in month order; ``label`` None means the next integer."""
    if months is None:
        return [(month, X, y)]
    if month is not None:
        raise ValueError(
            "--month names a single month; the data has a month column (--month-column) "
            "whose labels are used instead. Drop one of them."
        )
    order = np.unique(months)
    return [(to_python(m), take_rows(X, np.flatnonzero(months == m)), y[months == m])
            for m in order]


def update_model(model, data, *, target=None, month=None, month_column=None, holdout=0.2,
                 max_forgetting=None, strategy=None, estimator_params=None, scale="auto",
                 scoring="auto", random_state=0, wait=0.0, keep=DEFAULT_KEEP,
                 init_from=None, memory_on_disk=False, progress=None, classes=None,
                 allow_new_classes=False, forgetting_confidence=DEFAULT_CONFIDENCE,
                 accept_forgetting=False):
    """Update the model store ``model`` with the month(s) in ``data``.

    Everything from reading the current generation to committing the next
    one happens under the store's writer lock.

    Parameters
    ----------
    model : str
        A model store (a folder, see :mod:`sklearn_cf.store`). When it does
        not exist, a new model is started with ``strategy`` and
        ``estimator_params`` (or from ``init_from``).
    data : str
        A CSV/Parquet file or a folder of ``.npy`` months (see
        :func:`load_month_data`); several months are trained in order.
    target, month_column : str or None
        Columns of a file.
    month : str or None
        Label of the single new month; None: the file's month column, else
        the next integer.
    holdout : float, default=0.2
        Share of each new month's rows held out (stratified, seeded) to score
        the update; they are kept in the evaluation store for later updates.
    max_forgetting : float or None, default=None
        Refuse the update (raise :class:`ForgettingRefused`, write no model)
        when a past month's held-out score drops by more than this (in
        units of the scoring; months where it is undefined are left out)
        *and* the drop is beyond the held-out rows' noise (see
        ``forgetting_confidence``). The refusal is recorded in the store
        (:meth:`~sklearn_cf.store.ModelStore.refusals`).
    forgetting_confidence : float, default=0.95
        With ``max_forgetting``, how sure the gate must be that a past
        month's score really dropped:
        a month refuses only when the Holm-adjusted one-sided p-value of
        "its score did not drop", from a paired test on its held-out rows
        before and after (exact McNemar for accuracy, else a paired
        bootstrap), is below ``1 - forgetting_confidence``. An update whose
        past months did not drop is then refused at most 5% of the time
        (at 0.95), however many months it is tested on. Raising it refuses
        less often on noise and lets more real forgetting through. 0 turns
        the test off: the point drop alone decides.
    accept_forgetting : bool, default=False
        Commit the update even when the gate refuses it (a month refused
        before, applied knowingly): the drops are measured and reported
        all the same, and the store's refusal record of these months is
        marked as applied by the new generation.
    strategy : str or None
        Strategy spec for a new model; for an existing one it must match.
    estimator_params : dict or None
        ContinualClassifier parameters for a new model only.
    scale : {"auto", "first-month", "none"}, default="auto"
        For a new model: standardize features with the first month's training
        rows ("auto": for files, as ``compare`` does). An existing model keeps
        the scaling recorded in its evaluation store.
    scoring : str, default="auto"
        What scores the held-out rows: a scikit-learn scorer name or
        ``"tpr_at_fpr:FPR"``, called as ``get_scorer(name)(model, X, y)``.
        Chosen when the evaluation store is created and recorded in it;
        ``"auto"``: :func:`sklearn_cf.metrics.default_scoring` on the whole
        target of ``data``, before any training. For an existing store,
        ``"auto"`` means the recorded scoring (``"accuracy"`` for a store
        that records none), and any other scoring is refused with a
        ``ValueError``. A score that is undefined on some held-out rows
        (roc_auc on rows of one class) is NaN.
    random_state : int, default=0
        Seed of the held-out split and of a new model.
    wait : float, default=0
        Seconds to wait for another writer of the store.
    keep : int, default=DEFAULT_KEEP
        Generations kept after the commit.
    init_from : str or None, default=None
        For a new store: start from this checkpoint file (and the evaluation
        store ``<init_from>.eval.npz`` written beside checkpoints before
        stores, when there is one) instead of a new model.
    memory_on_disk : bool, default=False
        For a new model: keep its replay memory (or joint's history) in the
        store's ``memory/`` folder instead of in the checkpoint.
    progress : file-like or None, default=None
        Where to write each month's progress while it trains (epoch k/N,
        loss, rows/s; one line per month, rewritten in place, for a
        terminal); None writes nothing.
    classes : sequence or None, default=None
        Every class label, declared up front (``--classes a,b,c``): a new
        model is built with all of them, whichever its first month holds.
        For an existing model, labels it does not have are new classes and
        need ``allow_new_classes``. Read as the target column's type.
    allow_new_classes : bool, default=False
        Whether a month may bring labels the model has never seen: the
        output layer then grows (see
        :meth:`~sklearn_cf.ContinualClassifier.partial_fit_month`). Without
        it such data is refused with a ``ValueError`` before any training.

    Returns
    -------
    UpdateResult
        ``saved`` is False, and nothing was written, when every month of
        ``data`` had been applied before with the same rows
        (``already_applied``).

    Raises
    ------
    ValueError
        Bad arguments or data, a strategy or scoring that differs from the
        model's, a month applied before with other rows; nothing is written.
    ForgettingRefused
        When the gate refuses the update (``max_forgetting``,
        ``forgetting_confidence``); no generation is written, only the
        refusal record (for a store with a generation).
    sklearn_cf.exceptions.StoreLockedError
        When another process writes the store for longer than ``wait``.
    """
    from .datasets import resolve_scale
    from .metrics import default_scoring

    model = os.fspath(model)
    estimator_params = dict(estimator_params or {})
    forgetting_confidence = check_confidence(forgetting_confidence)
    if max_forgetting is not None and (isinstance(max_forgetting, bool) or not isinstance(
            max_forgetting, (int, float)) or math.isnan(max_forgetting)):
        raise ValueError(f"--max-forgetting must be a number (a drop in the model's scoring, "
                         f"e.g. 0.02), got {max_forgetting!r}.")
    if not 0 <= holdout < 1:
        raise ValueError(f"--holdout must be in [0, 1), got {holdout!r}.")
    if os.path.isfile(model):
        raise ValueError(_checkpoint_file_message(model))
    folder = os.path.dirname(os.path.abspath(model))
    if not os.path.isdir(folder):
        raise ValueError(f"--model {model!r}: the folder {folder!r} does not exist.")
    if init_from is not None and not os.path.isfile(init_from):
        raise ValueError(f"--init-from {init_from!r} is not a checkpoint file.")

    if data is None and init_from is None:
        raise ValueError("--data is required (the new month), unless --rollback or "
                         "--init-from.")
    # The data is read before the lock is taken (it does not depend on the
    # model); everything that does is read under it.
    if data is not None:  # raw: encoded below for a store that keeps encoded rows
        X, y, months, names = load_month_data(data, target=target, month_column=month_column,
                                              raw=True)
    store_dir = ModelStore(model)
    with store_dir.writer(wait=wait, keep=keep) as writer:
        created = writer.base is None
        if created:
            clf, store = _start(writer, model, strategy, estimator_params, random_state,
                                init_from, memory_on_disk,
                                None if data is None else resolve_scale(data, scale))
            if init_from is not None and data is None:  # the checkpoint as it is
                imported = writer.commit(clf, store, kind="import", source=init_from)
                return UpdateResult(
                    model=model, strategy=str(clf.get_params(deep=False)["strategy"]),
                    created=True, months_before=[], steps=[],
                    months_after=list(clf.months_seen_), saved=True,
                    generation=imported.id, imported=init_from,
                    scoring=store.scoring or LEGACY_SCORING,
                    scoring_recorded=store.scoring is not None)
        else:
            if init_from is not None and _imported_from(writer, init_from):
                init_from = None  # a re-run of an import that was committed
                if data is None:  # the import alone, run again: nothing to do
                    clf = writer.load()
                    store = writer.eval_store()
                    return UpdateResult(
                        model=model, strategy=str(clf.get_params(deep=False)["strategy"]),
                        created=False, months_before=list(clf.months_seen_), steps=[],
                        months_after=list(clf.months_seen_), previous=writer.base.id,
                        scoring=store.scoring or LEGACY_SCORING,
                        scoring_recorded=store.scoring is not None)
            if estimator_params or init_from is not None or memory_on_disk:
                given = sorted(estimator_params) + (["init_from"] if init_from else []) + (
                    ["memory_on_disk"] if memory_on_disk else [])
                raise ValueError(
                    f"--model {model!r} exists; the new-model options ({', '.join(given)}) "
                    "apply only to a new model."
                )
            clf = writer.load()
            if strategy is not None:
                _check_strategy_matches(clf, strategy, model)
            store = writer.eval_store()
        scoring_name, recorded = _resolve_update_scoring(scoring, store, model)
        months_before = list(clf.months_seen_) if clf.__sklearn_is_fitted__() else []

        scoring_reason = None
        if scoring_name is None:  # "auto" for a new store: on the whole target, before training
            scoring_name, scoring_reason = default_scoring(y)
        store.scoring = scoring_name
        scorer = _scorer_of(scoring_name)

        def score(Xs, ys):
            return _score(clf, Xs, ys, scorer, scoring_name)

        def score_kept(kept, ys):  # the same score, of outputs kept by replay_outputs
            return _score(kept, np.arange(len(ys)), ys, scorer, scoring_name)

        if store.raw:  # the model encodes its own rows
            _check_raw_columns(clf, X, data)
            if created:
                store.feature_names = names
        else:  # a store written before models carried their encoder: as then
            X, y, months, names = _encoded_month(X, y, months, names, data, target,
                                                 month_column)
            if store.feature_names is not None:
                X = _align_columns(X, names, store.feature_names, data)
            elif created:
                store.feature_names = names
        parts = _split_by_month(X, y, months, _month_label(month))
        applied = [] if writer.base is None else writer.base.month_data
        parts, skipped = _new_parts(parts, applied, model)
        declared = _declared_classes(classes, y)
        _check_new_classes(clf, parts, declared, allow_new_classes)

        month_data = list(applied) if applied else [
            {"month": to_python(m), "rows": None, "sha256": None} for m in months_before]
        steps, pending = [], []
        # The paired tests run with a gate to judge (they cost a prediction
        # per past month, and for scorings other than accuracy a bootstrap).
        gate_on = forgetting_confidence > 0 and max_forgetting is not None
        for label, Xm, ym, digest in parts:
            if not store.raw:
                Xm = store.scale(Xm)
            train, held = _split(Xm, ym, holdout, random_state)
            fitted = clf.__sklearn_is_fitted__()
            if fitted:  # before scoring, where scikit-learn would say "Mix of label input types"
                _check_label_type(clf, ym, data)
            with warnings.catch_warnings():
                # The encoder's notes are said once per month (_month_notes),
                # not at every scoring of past months' rows.
                warnings.simplefilter("ignore", UnseenCategoryWarning)
                warnings.simplefilter("ignore", ConstantFeatureWarning)
                if gate_on:
                    # Each past row's outputs before the update, for the paired
                    # test; the scores are computed from them (one prediction).
                    rows_before = [replay_outputs(clf, Xs) for Xs in store.X]
                    before = {m: score_kept(kept, ys) for m, kept, ys
                              in zip(store.months, rows_before, store.y)}
                else:
                    before = {m: score(Xs, ys)
                              for m, Xs, ys in zip(store.months, store.X, store.y)}
                next_score = score(take_rows(Xm, held), ym[held]) if fitted else None
                start = time.perf_counter()
                with epoch_progress(clf, label, progress, enabled=progress is not None):
                    clf.partial_fit_month(take_rows(Xm, train), ym[train], month=label,
                                          classes=_month_classes(clf, ym, declared),
                                          allow_new_classes=allow_new_classes)
                seconds = time.perf_counter() - start
                label = to_python(clf.months_seen_[-1])
                if gate_on:
                    rows_after = [replay_outputs(clf, Xs) for Xs in store.X]
                    after = {m: score_kept(kept, ys) for m, kept, ys
                             in zip(store.months, rows_after, store.y)}
                    for m, ys, old, new in zip(store.months, store.y, rows_before, rows_after):
                        if not (_undefined_or_none(before[m]) or _undefined_or_none(after[m])):
                            pending.append((label, m, np.asarray(ys), old, new, before[m],
                                            after[m]))
                else:
                    after = {m: score(Xs, ys)
                             for m, Xs, ys in zip(store.months, store.X, store.y)}
                month_score = score(take_rows(Xm, held), ym[held])
            steps.append(MonthUpdate(
                month=label, train_rows=len(train), holdout_rows=len(held),
                seconds=seconds, score=month_score,
                next_month_score=next_score, before=before, after=after,
                notes=_month_notes(clf, label, Xm, fitted) if store.raw else [],
            ))
            month_data.append({"month": label, "rows": len(ym), "sha256": digest})
            if len(held):
                store.add(label, take_rows(Xm, held), ym[held], random_state=random_state)

        result = UpdateResult(
            model=model, strategy=str(clf.get_params(deep=False)["strategy"]),
            created=created, imported=init_from, months_before=months_before,
            months_after=list(clf.months_seen_) if clf.__sklearn_is_fitted__() else [],
            steps=steps, max_forgetting=max_forgetting, scoring=scoring_name,
            scoring_reason=scoring_reason, scoring_recorded=recorded,
            previous=None if writer.base is None else writer.base.id,
            already_applied=skipped, forgetting_confidence=forgetting_confidence,
        )
        if not steps:  # every month was applied before: an idempotent success
            return result
        tests = _drop_tests(pending, scorer, scoring_name, forgetting_confidence)
        for test in tests:
            next(step for step in steps if step.month == test.trained).tests[test.month] = test
        result.refused = (refusing(tests, max_forgetting, forgetting_confidence) if gate_on
                          else _untested_refusals(steps, max_forgetting))
        if max_forgetting is None:
            result.forgetting_confidence = None
        record = None
        if result.refused:
            # The refusal is kept in the store (never in a generation), so that
            # `history` lists it and a later run can apply the month knowingly.
            record = _refusal_record(result, writer, data, target, month, month_column,
                                     holdout, random_state, month_data[len(month_data)
                                                                       - len(steps):])
            if not accept_forgetting:
                if writer.base is not None:  # a new store is removed: nothing to keep
                    result.refusal = writer.record_refusal(record)
                top = result.refused[0]
                raise ForgettingRefused(top.month, top.drop, max_forgetting, result,
                                        test=top if gate_on else None,
                                        record=result.refusal)
            result.accepted_forgetting = True
        last = steps[-1]
        scores = dict(last.after)
        scores[last.month] = last.score
        if created and init_from is not None:
            # The checkpoint as it was, then the update: two generations,
            # committed only once the update is accepted.
            writer.commit(load_checkpoint(init_from), EvalStore.read(f"{init_from}.eval.npz")
                          if os.path.exists(f"{init_from}.eval.npz") else EvalStore(),
                          kind="import", source=init_from)
            result.previous = writer.base.id
        gen = writer.commit(clf, store, kind="update", month_data=month_data,
                            scores={m: v for m, v in scores.items() if v is not None})
        # Refusals of these months (same rows) are now applied: say so in
        # their records (a refusal overridden now is recorded as applied).
        if record is not None and writer.store.refusal(record["id"]) is None:
            writer.record_refusal(record)
        for old in writer.store.refusals():
            if old.get("applied") is None and _months_applied(old, month_data[-len(steps):]):
                writer.mark_refusal_applied(old["id"], gen.id,
                                            accepted=bool(result.accepted_forgetting))
                result.reapplied.append(old["id"])
        if record is not None:
            result.refusal = record["id"]
    result.saved = True
    result.generation = gen.id
    return result


def _undefined_or_none(value):
    return value is None or _undefined(value)


def _drop_tests(pending, scorer, scoring, confidence):
    """The :class:`DropTest` of every past month of every step: exact
    McNemar for accuracy, else a paired bootstrap; bounds at the Bonferroni
    level ``(1 - confidence) / k`` and p-values adjusted by Holm over the
    ``k`` months tested in the update."""
    if not pending:
        return []
    alpha = (1 - confidence) / len(pending)
    tests = []
    for trained, month, ys, kept_before, kept_after, before, after in pending:
        worse = better = None
        if scoring == "accuracy":
            _, low, high, p, worse, better = mcnemar_drop(kept_before.predicted == ys,
                                                          kept_after.predicted == ys, alpha)
            method = "mcnemar"
        else:
            fast = scoring == "roc_auc" and all(
                len(kept.classes) == 2 and np.isin(ys, kept.classes).all()
                for kept in (kept_before, kept_after))

            def scored(kept, ys=ys, fast=fast):
                if fast:
                    # What roc_auc_score computes (midranks for ties), for
                    # every resample at once.
                    positive, proba = ys == kept.classes[1], kept.proba[:, 1]
                    return lambda rows: binary_auc(positive[rows], proba[rows])
                return lambda rows: _nan_if_none(_score(kept, rows, ys[rows], scorer, scoring))

            _, low, high, p = bootstrap_drop(scored(kept_before), scored(kept_after), len(ys),
                                             alpha, vectorized=fast)
            method = "bootstrap"
        tests.append(DropTest(month=to_python(month), trained=to_python(trained),
                              before=float(before), after=float(after),
                              drop=float(before) - float(after), low=low, high=high,
                              p_value=p, p_adjusted=math.nan, method=method, rows=len(ys),
                              worse=worse, better=better))
    for test, adjusted in zip(tests, holm_adjust([t.p_value for t in tests])):
        test.p_adjusted = float(adjusted)
    return tests


def _nan_if_none(value):
    return math.nan if value is None else value


def _untested_refusals(steps, max_forgetting):
    """With the noise test off: every past month whose point drop exceeds
    ``max_forgetting``, largest first."""
    if max_forgetting is None:
        return []
    out = [DropTest(month=to_python(m), trained=to_python(step.month), before=step.before[m],
                    after=step.after[m], drop=d, low=math.nan, high=math.nan,
                    p_value=math.nan, p_adjusted=math.nan, method="none",
                    rows=0, refuses=True)
           for step in steps for m, d in step.drops.items()
           if not _undefined_or_none(d) and d > max_forgetting]
    return sorted(out, key=lambda t: -t.drop)


def _refusal_record(result, writer, data, target, month, month_column, holdout, seed,
                    months):
    """The JSON record of a refused update (docs/reliability.md): what was
    refused (months, rows, digests), by what gate, and how to run it again."""
    import json

    from ._compat import to_python as py

    gate = {"max_forgetting": result.max_forgetting,
            "forgetting_confidence": result.forgetting_confidence}
    key = json.dumps([None if writer.base is None else writer.base.id, months, gate],
                     sort_keys=True, default=str)
    base = 0 if writer.base is None else writer.base.id
    return {
        "id": f"{base:06d}-{hashlib.sha256(key.encode()).hexdigest()[:12]}",
        "created": _utc_now(),
        "base_generation": None if writer.base is None else writer.base.id,
        "strategy": result.strategy,
        "scoring": result.scoring,
        **gate,
        "months": [{"month": py(m["month"]), "rows": m["rows"], "sha256": m["sha256"]}
                   for m in months],
        "run": {"data": None if data is None else os.path.abspath(data), "target": target,
                "month": month, "month_column": month_column, "holdout": holdout,
                "seed": seed},
        "refused_by": [t.to_dict() for t in result.refused],
        "tests": [t.to_dict() for step in result.steps for t in step.tests.values()],
        "applied": None,
    }


def _utc_now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _months_applied(record, month_data):
    """Whether every month of a refusal record is in ``month_data`` with the
    same rows (label and digest)."""
    have = {(str(e["month"]), e.get("sha256")) for e in month_data}
    months = record.get("months") or []
    return bool(months) and all((str(m["month"]), m.get("sha256")) in have for m in months)


def refusal_state(record, generations):
    """Where a refusal record stands: ``(applied_generation, accepted)``.

    ``applied_generation`` is the generation that applied its months (from
    the record, else the oldest kept generation holding them with the same
    rows, for a writer stopped between its commit and the record's mark),
    or None when no kept generation has them; ``accepted`` whether it was
    applied with ``accept_forgetting``.

    Examples
    --------
    >>> from sklearn_cf.update import refusal_state
    >>> record = {"months": [{"month": 4, "sha256": "ab12"}], "applied": None}
    >>> refusal_state(record, [])
    (None, False)
    >>> refusal_state(dict(record, applied={"generation": 5, "accepted_forgetting": True}), [])
    (5, True)
    """
    applied = record.get("applied")
    if applied:
        return applied.get("generation"), bool(applied.get("accepted_forgetting"))
    for gen in generations:
        if gen.kind == "update" and _months_applied(record, gen.month_data):
            return gen.id, False
    return None, False


def _check_label_type(clf, y, data):
    """Refuse a month whose labels are written as another type than the model's."""
    from ._labels import label_type_change

    change = label_type_change(clf.classes_, y)
    if change is not None:
        change = change.replace("; these are", "; this month's are")
        raise ValueError(
            f"The labels of {data!r} changed type: {change}. Write the --target column as "
            "the model's labels are written, or start a new --model."
        )


def _declared_classes(classes, y):
    """``--classes`` as labels of the target's type (an empty array for none)."""
    y = np.asarray(y)
    if classes is None:
        return y[:0]
    labels = [c.strip() if isinstance(c, str) else c for c in classes]
    if not labels or any(isinstance(c, str) and not c for c in labels):
        raise ValueError(f"--classes must list class labels separated by commas, got "
                         f"{','.join(map(str, classes))!r}.")
    try:
        declared = (np.asarray(labels).astype(y.dtype) if y.dtype.kind in "biuf"
                    else np.asarray(labels))
    except ValueError:
        raise ValueError(
            f"--classes {','.join(map(str, labels))}: the target column holds numbers "
            f"({y.dtype}), so every class must be one."
        ) from None
    return np.unique(declared)


def _month_classes(clf, ym, declared):
    """The classes a month trains with: the model's, the month's labels
    (its held-out rows' too) and the declared ones."""
    classes = np.union1d(np.unique(ym), declared)
    if clf.__sklearn_is_fitted__():
        if clf.classes_.dtype.kind in "US" and classes.dtype.kind not in "US":
            return None  # a change of label type: the label check names it
        classes = np.union1d(classes, clf.classes_)
    return classes


def _check_new_classes(clf, parts, declared, allow):
    """Refuse, before any training, labels the model would not have unless
    ``allow``: for an existing model, those outside its classes; for a new
    one, those outside its first month's and ``--classes``."""
    if allow or not parts:
        return
    if clf.__sklearn_is_fitted__():
        known, later = clf.classes_, parts
    else:
        known, later = np.union1d(np.unique(parts[0][2]), declared), parts[1:]
    for label, _, ym, _ in later:
        if (known.dtype.kind in "US") != (np.asarray(ym).dtype.kind in "US"):
            return  # a change of label type, which the update names as such
        unseen = np.setdiff1d(np.union1d(np.unique(ym), declared), known)
        if len(unseen):
            where = "this data" if label is None else f"month {to_python(label)!r}"
            shown = [to_python(c) for c in unseen[:10]]
            raise ValueError(
                f"{where} has {'a label' if len(unseen) == 1 else 'labels'} {shown} that "
                f"the model has never seen (its classes: "
                f"{[to_python(c) for c in known]}). Pass --allow-new-classes to add "
                f"{'it as a new class' if len(unseen) == 1 else 'them as new classes'} "
                "(the output layer grows), or declare every class with --classes when "
                "the model is created. Nothing was written."
            )


def _start(writer, model, strategy, estimator_params, random_state, init_from, memory_on_disk,
           scale=None):
    """The model and evaluation store a new store starts from.

    A new model carries its encoder of raw rows,
    ``TableEncoder(standardize=scale == "first-month")``, fitted by its first
    month's training rows; its evaluation store keeps raw rows. A checkpoint
    (``init_from``) keeps its own: raw rows when it has a preprocessor,
    else the encoded, scaled rows of its evaluation store (if any)."""
    if init_from is not None:
        from ._estimator import load

        if strategy is not None or estimator_params or memory_on_disk:
            raise ValueError("--init-from starts from a checkpoint's own settings; drop "
                             "--strategy and the network options.")
        clf = load(init_from)
        legacy = f"{init_from}.eval.npz"  # written next to checkpoints before stores
        store = (EvalStore.read(legacy) if os.path.exists(legacy)
                 else EvalStore(raw=getattr(clf, "preprocessor_", None) is not None))
        return clf, store
    if strategy is None:
        raise ValueError(
            f"--model {model!r} does not exist; give --strategy (e.g. replay) to start "
            "a new model."
        )
    from .preprocessing import TableEncoder

    params = dict(estimator_params)
    if memory_on_disk:
        params["memory_dir"] = writer.memory_dir
    params.setdefault("preprocessor", TableEncoder(standardize=scale == "first-month"))
    return _new_model(strategy, params, random_state), EvalStore(raw=True)


def _imported_from(writer, checkpoint):
    """Whether a kept generation of the store is an import of ``checkpoint``
    as it is now (same bytes)."""
    from ._atomic import file_sha256

    digest = file_sha256(checkpoint)
    return any(gen.kind == "import" and (gen.source or {}).get("sha256") == digest
               for gen in writer.store.generations())


def _new_parts(parts, applied, model):
    """The months of ``parts`` not applied before, each with its data digest;
    and the labels of those applied before with the same data."""
    by_label = {str(entry["month"]): entry for entry in applied}
    by_digest = {entry["sha256"]: entry for entry in applied if entry.get("sha256")}
    new, skipped = [], []
    for label, X, y in parts:
        digest = month_digest(X, y)
        entry = by_digest.get(digest) if label is None else by_label.get(str(label))
        if entry is None:
            new.append((label, X, y, digest))
        elif entry.get("sha256") == digest:
            skipped.append(entry["month"])
        else:
            known = (f"{entry['rows']} rows, sha256 {entry['sha256'][:12]}"
                     if entry.get("sha256") else "data this store did not record")
            raise ValueError(
                f"Month {label} was already applied to {model!r} with other data ({known}); "
                f"this data has {len(y)} rows, sha256 {digest[:12]}. A month is applied "
                "once: give the new data another --month label, or roll back to a "
                "generation before it (`sklearn-cf history`, then --rollback --to GEN)."
            )
    return new, skipped


def raw_stream(data, *, target, month_column, group_column=None, n_months=None,
               samples_per_month=None, random_state=0):
    """``(X, y, months)`` of a CSV or Parquet file with its feature columns as
    read (a DataFrame), for :func:`save_best` to refit a model that encodes
    its own rows: the rows ``sklearn-cf compare`` keeps of it (the first
    ``n_months``, ``samples_per_month`` drawn per month with
    ``random_state``, as :func:`~sklearn_cf.datasets.load_stream` draws
    them). None when ``data`` is not one table file (a built-in stream, a
    folder), where the comparison's numeric features are used instead."""
    from .datasets import read_table

    if not isinstance(data, str) or not os.path.isfile(data):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said when compare read the file
        table = read_table(data, target=target, month_column=month_column,
                           group_column=group_column, encode=False)
    X, y, months = table.data, table.target, np.asarray(table.months)
    labels = np.unique(months)
    keep = np.arange(len(y))
    if n_months is not None and n_months < len(labels):  # the first n_months
        keep = np.flatnonzero(np.isin(months, labels[:n_months]))
    if samples_per_month is not None:  # drawn as load_stream draws them
        rng = np.random.default_rng(random_state)
        chosen = []
        for label in np.unique(months[keep]):
            rows = keep[months[keep] == label]
            chosen.append(rows if samples_per_month >= len(rows)
                          else np.sort(rng.choice(rows, samples_per_month, replace=False)))
        keep = np.concatenate(chosen)
    return take_rows(X, keep), y[keep], months[keep]


def save_best(comparison, X, y, months, path, *, estimator_params, scale="none",
              random_state=0, feature_names=None):
    """Refit ``comparison.recommend()`` on every row and save it to ``path``.

    ``path`` is a model store (a folder): the refitted model is committed as
    its next generation (its first, for a new store). Every row of every
    month (the comparison's training and held-out rows) is trained, month by
    month, with the comparison's settings. The model carries its encoder,
    ``TableEncoder(standardize=scale == "first-month")``, fitted on all the
    first month's rows: ``X`` may be a raw table (a DataFrame with text
    columns, as ``sklearn-cf compare --save-best`` passes for a file read
    whole), which the model one-hot encodes itself, or numeric features,
    which it standardizes. ``sklearn-cf update`` then encodes later months
    alike. The generation's evaluation store holds no
    held-out rows (none are left): forgetting rows start with the first
    update. It records the comparison's scoring, so that updates are scored
    as the comparison was (a scorer callable, which has no name to record,
    leaves the store without one: accuracy).

    Returns
    -------
    str
        The strategy spec saved.
    """
    from .compare import build_estimator
    from .metrics import resolve_scoring

    best = comparison.recommend()
    if best is None:
        raise ValueError(
            "No strategy is recommended (none has a defined score, or none beats the "
            "majority-class baseline); nothing to save."
        )
    from .preprocessing import TableEncoder

    store = EvalStore(feature_names=feature_names, raw=True)
    try:
        store.scoring = resolve_scoring(comparison.scoring)[1]
    except ValueError:
        pass  # a scorer callable: nothing to record
    if not (hasattr(X, "columns") and hasattr(X, "iloc")):
        X = np.asarray(X, dtype=np.float32)
    months = np.asarray(months)
    if os.path.isfile(path):
        raise ValueError(_checkpoint_file_message(path).replace("--model", "--save-best"))
    params = dict(estimator_params or {})
    params["preprocessor"] = TableEncoder(standardize=scale == "first-month")
    clf = build_estimator(best, params, random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantFeatureWarning)
        clf.fit(X, np.asarray(y), months=months)
    with ModelStore(path).writer() as writer:
        writer.commit(clf, store, kind="save-best")
    return best

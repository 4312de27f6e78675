"""The monthly job: :func:`update_model` and :func:`rollback`.

:func:`update_model` is one transaction under the store's writer lock: open
the model (:func:`_open_model`), choose its scoring, take the new months'
rows as the store keeps them, train them one by one (:func:`_train_month`),
judge the forgetting gate (:func:`_judge`), then either refuse
(:func:`_refuse`) or commit (:func:`_commit`). Each step is a function below,
in that order.
"""

import math
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._compat import to_python
from .._epoch_progress import epoch_progress
from .._estimator import load as load_checkpoint
from .._eval_store import LEGACY_SCORING, EvalStore, take_rows
from .._gate import DEFAULT_CONFIDENCE, check_confidence, refusing
from .._replayed import replay_outputs
from ..preprocessing import ConstantFeatureWarning, UnseenCategoryWarning
from ..store import DEFAULT_KEEP, ModelStore
from ._drops import _untested_refusals, drop_tests
from ._labels import (
    _check_label_type,
    _check_new_classes,
    _declared_classes,
    _month_classes,
)
from ._model import (
    _check_strategy_matches,
    _checkpoint_file_message,
    _existing_store,
    _imported_from,
    _start,
)
from ._month_file import (
    _align_columns,
    _check_raw_columns,
    _encoded_month,
    _month_notes,
    load_month_data,
)
from ._months import _month_label, _new_parts, _split_by_month
from ._refusal import ForgettingRefused, _months_applied, _refusal_record
from ._result import MonthUpdate, UpdateResult, _undefined_or_none
from ._scoring import _resolve_update_scoring, _score, _scorer_of, _split


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
    model = os.fspath(model)
    estimator_params = dict(estimator_params or {})
    run = _Run(model, data, target, month, month_column, holdout, max_forgetting,
               check_confidence(forgetting_confidence), accept_forgetting, random_state,
               progress, allow_new_classes)
    _check_arguments(run, init_from)
    # The data is read before the lock is taken (it does not depend on the
    # model); everything that does is read under it. Raw: encoded below for a
    # store that keeps encoded rows.
    rows = None if data is None else load_month_data(data, target=target,
                                                     month_column=month_column, raw=True)
    with ModelStore(model).writer(wait=wait, keep=keep) as writer:
        created = writer.base is None
        clf, store, init_from, done = _open_model(writer, run, strategy, estimator_params,
                                                  scale, init_from, memory_on_disk)
        if done is not None:  # a checkpoint imported as it is, now or before
            return done
        scoring = _Scoring.choose(scoring, store, model, rows[1])
        months_before = list(clf.months_seen_) if clf.__sklearn_is_fitted__() else []
        X, y, months = _rows_as_stored(run, clf, store, created, rows)
        applied = [] if created else writer.base.month_data
        parts, skipped = _new_parts(_split_by_month(X, y, months, _month_label(month)),
                                    applied, model)
        declared = _declared_classes(classes, y)
        _check_new_classes(clf, parts, declared, allow_new_classes)

        steps, pending, new_months = [], [], []
        for label, Xm, ym, digest in parts:
            step, tested, entry = _train_month(run, clf, store, scoring, declared,
                                               label, Xm, ym, digest)
            steps.append(step)
            pending += tested
            new_months.append(entry)
        result = UpdateResult(
            model=model, strategy=str(clf.get_params(deep=False)["strategy"]),
            created=created, imported=init_from, months_before=months_before,
            months_after=list(clf.months_seen_) if clf.__sklearn_is_fitted__() else [],
            steps=steps, max_forgetting=max_forgetting, scoring=scoring.name,
            scoring_reason=scoring.reason, scoring_recorded=scoring.recorded,
            previous=None if writer.base is None else writer.base.id,
            already_applied=skipped, forgetting_confidence=run.forgetting_confidence,
        )
        if not steps:  # every month was applied before: an idempotent success
            return result
        _judge(run, result, pending, scoring)
        record = _refuse(run, writer, result, new_months) if result.refused else None
        month_data = (list(applied) if applied else [
            {"month": to_python(m), "rows": None, "sha256": None} for m in months_before])
        gen = _commit(writer, clf, store, result, month_data + new_months, new_months,
                      record, import_first=init_from if created else None)
    result.saved = True
    result.generation = gen.id
    return result


@dataclass
class _Run:
    """The arguments of one :func:`update_model` call that its steps read."""

    model: str
    data: object
    target: object
    month: object
    month_column: object
    holdout: float
    max_forgetting: object
    forgetting_confidence: float
    accept_forgetting: bool
    random_state: object
    progress: object
    allow_new_classes: bool

    @property
    def gate_on(self):
        """Whether the paired tests run: with a gate to judge (they cost a
        prediction per past month, and for scorings other than accuracy a
        bootstrap)."""
        return self.forgetting_confidence > 0 and self.max_forgetting is not None


def _check_arguments(run, init_from):
    """Refuse bad arguments before anything is read or locked."""
    max_forgetting, model = run.max_forgetting, run.model
    if max_forgetting is not None and (isinstance(max_forgetting, bool) or not isinstance(
            max_forgetting, (int, float)) or math.isnan(max_forgetting)):
        raise ValueError(f"--max-forgetting must be a number (a drop in the model's scoring, "
                         f"e.g. 0.02), got {max_forgetting!r}.")
    if not 0 <= run.holdout < 1:
        raise ValueError(f"--holdout must be in [0, 1), got {run.holdout!r}.")
    if os.path.isfile(model):
        raise ValueError(_checkpoint_file_message(model))
    folder = os.path.dirname(os.path.abspath(model))
    if not os.path.isdir(folder):
        raise ValueError(f"--model {model!r}: the folder {folder!r} does not exist.")
    if init_from is not None and not os.path.isfile(init_from):
        raise ValueError(f"--init-from {init_from!r} is not a checkpoint file.")
    if run.data is None and init_from is None:
        raise ValueError("--data is required (the new month), unless --rollback or "
                         "--init-from.")


def _open_model(writer, run, strategy, estimator_params, scale, init_from, memory_on_disk):
    """The model and evaluation store to update, under the lock.

    Returns ``(clf, store, init_from, done)``: ``init_from`` None when the
    store already holds that import (a re-run); ``done`` the
    :class:`UpdateResult` when there is no data to train, only a checkpoint
    to import (committed here) or imported before (nothing to do); else None.
    """
    from ..datasets import resolve_scale

    model, data = run.model, run.data
    if writer.base is None:
        clf, store = _start(writer, model, strategy, estimator_params, run.random_state,
                            init_from, memory_on_disk,
                            None if data is None else resolve_scale(data, scale))
        if init_from is not None and data is None:  # the checkpoint as it is
            imported = writer.commit(clf, store, kind="import", source=init_from)
            return clf, store, init_from, UpdateResult(
                model=model, strategy=str(clf.get_params(deep=False)["strategy"]),
                created=True, months_before=[], steps=[],
                months_after=list(clf.months_seen_), saved=True,
                generation=imported.id, imported=init_from,
                scoring=store.scoring or LEGACY_SCORING,
                scoring_recorded=store.scoring is not None)
        return clf, store, init_from, None
    if init_from is not None and _imported_from(writer, init_from):
        init_from = None  # a re-run of an import that was committed
        if data is None:  # the import alone, run again: nothing to do
            clf = writer.load()
            store = writer.eval_store()
            return clf, store, init_from, UpdateResult(
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
    return clf, writer.eval_store(), init_from, None


@dataclass
class _Scoring:
    """The scoring of an update: its name, why it was chosen, whether the
    store recorded it, and the scorer."""

    name: str
    reason: str
    recorded: bool
    scorer: object

    @classmethod
    def choose(cls, scoring, store, model, y):
        """The store's scoring, the one asked for, or for ``"auto"`` on a new
        store :func:`~sklearn_cf.metrics.default_scoring` on the whole target
        ``y``, before any training; recorded in ``store``."""
        from ..metrics import default_scoring

        name, recorded = _resolve_update_scoring(scoring, store, model)
        reason = None
        if name is None:  # "auto" for a new store: on the whole target, before training
            name, reason = default_scoring(y)
        store.scoring = name
        return cls(name, reason, recorded, _scorer_of(name))

    def score(self, clf, X, y):
        """``clf``'s score on the rows ``X``, ``y`` (see :func:`_score`)."""
        return _score(clf, X, y, self.scorer, self.name)

    def score_kept(self, kept, y):
        """The same score, of outputs kept by ``replay_outputs``."""
        return _score(kept, np.arange(len(y)), y, self.scorer, self.name)


def _rows_as_stored(run, clf, store, created, rows):
    """``(X, y, months)`` of the new data as the store keeps rows: raw for a
    model that encodes its own rows (its columns checked against the
    encoder's), else encoded and aligned as before models carried their
    encoder. A new store records the feature names."""
    X, y, months, names = rows
    if store.raw:  # the model encodes its own rows
        _check_raw_columns(clf, X, run.data)
        if created:
            store.feature_names = names
    else:  # a store written before models carried their encoder: as then
        X, y, months, names = _encoded_month(X, y, months, names, run.data, run.target,
                                             run.month_column)
        if store.feature_names is not None:
            X = _align_columns(X, names, store.feature_names, run.data)
        elif created:
            store.feature_names = names
    return X, y, months


def _train_month(run, clf, store, scoring, declared, label, Xm, ym, digest):
    """Train one month and keep its held-out rows in ``store``.

    Scores every past month's held-out rows before and after the training,
    and this month's held-out rows before (the next-month score) and after.
    Returns its :class:`MonthUpdate`, the inputs of the gate's paired tests
    (with the gate on, one per past month whose score is defined before and
    after) and its entry of the generation's ``month_data``.
    """
    if not store.raw:
        Xm = store.scale(Xm)
    train, held = _split(Xm, ym, run.holdout, run.random_state)
    fitted = clf.__sklearn_is_fitted__()
    if fitted:  # before scoring, where scikit-learn would say "Mix of label input types"
        _check_label_type(clf, ym, run.data)
    pending = []
    with warnings.catch_warnings():
        # The encoder's notes are said once per month (_month_notes),
        # not at every scoring of past months' rows.
        warnings.simplefilter("ignore", UnseenCategoryWarning)
        warnings.simplefilter("ignore", ConstantFeatureWarning)
        before, kept_before = _past_scores(run, clf, store, scoring)
        next_score = scoring.score(clf, take_rows(Xm, held), ym[held]) if fitted else None
        start = time.perf_counter()
        with epoch_progress(clf, label, run.progress, enabled=run.progress is not None):
            clf.partial_fit_month(take_rows(Xm, train), ym[train], month=label,
                                  classes=_month_classes(clf, ym, declared),
                                  allow_new_classes=run.allow_new_classes)
        seconds = time.perf_counter() - start
        label = to_python(clf.months_seen_[-1])
        after, kept_after = _past_scores(run, clf, store, scoring)
        if run.gate_on:
            for m, ys, old, new in zip(store.months, store.y, kept_before, kept_after):
                if not (_undefined_or_none(before[m]) or _undefined_or_none(after[m])):
                    pending.append((label, m, np.asarray(ys), old, new, before[m], after[m]))
        month_score = scoring.score(clf, take_rows(Xm, held), ym[held])
    step = MonthUpdate(
        month=label, train_rows=len(train), holdout_rows=len(held),
        seconds=seconds, score=month_score,
        next_month_score=next_score, before=before, after=after,
        notes=_month_notes(clf, label, Xm, fitted) if store.raw else [],
    )
    entry = {"month": label, "rows": len(ym), "sha256": digest}
    if len(held):
        store.add(label, take_rows(Xm, held), ym[held], random_state=run.random_state)
    return step, pending, entry


def _past_scores(run, clf, store, scoring):
    """``({month: score}, kept)``: the model's score on every past month's
    held-out rows; with the gate on, from each row's outputs, kept (one
    prediction) for the paired test, else ``kept`` is None."""
    if run.gate_on:
        kept = [replay_outputs(clf, Xs) for Xs in store.X]
        return {m: scoring.score_kept(rows, ys) for m, rows, ys
                in zip(store.months, kept, store.y)}, kept
    return {m: scoring.score(clf, Xs, ys)
            for m, Xs, ys in zip(store.months, store.X, store.y)}, None


def _judge(run, result, pending, scoring):
    """The forgetting gate: each step's tests, and ``result.refused``."""
    tests = drop_tests(pending, scoring.scorer, scoring.name, run.forgetting_confidence)
    for test in tests:
        next(step for step in result.steps
             if step.month == test.trained).tests[test.month] = test
    result.refused = (refusing(tests, run.max_forgetting, run.forgetting_confidence)
                      if run.gate_on else _untested_refusals(result.steps, run.max_forgetting))
    if run.max_forgetting is None:
        result.forgetting_confidence = None


def _refuse(run, writer, result, new_months):
    """The refusal record of an update the gate refused. Unless
    ``accept_forgetting``, it is kept in the store (never in a generation,
    so that `history` lists it and a later run can apply the months
    knowingly; a new store is removed: nothing to keep) and
    :class:`ForgettingRefused` is raised; else the update goes on, accepted."""
    record = _refusal_record(result, writer, run.data, run.target, run.month,
                             run.month_column, run.holdout, run.random_state, new_months)
    if not run.accept_forgetting:
        if writer.base is not None:
            result.refusal = writer.record_refusal(record)
        top = result.refused[0]
        raise ForgettingRefused(top.month, top.drop, run.max_forgetting, result,
                                test=top if run.gate_on else None, record=result.refusal)
    result.accepted_forgetting = True
    return record


def _commit(writer, clf, store, result, month_data, new_months, record, import_first=None):
    """Commit the updated model as the next generation (after the checkpoint
    ``import_first`` as it was, for a new store started from one), and mark
    the store's refusals of these months (same rows) as applied by it."""
    last = result.steps[-1]
    scores = dict(last.after)
    scores[last.month] = last.score
    if import_first is not None:
        # The checkpoint as it was, then the update: two generations,
        # committed only once the update is accepted.
        writer.commit(load_checkpoint(import_first),
                      EvalStore.read(f"{import_first}.eval.npz")
                      if os.path.exists(f"{import_first}.eval.npz") else EvalStore(),
                      kind="import", source=import_first)
        result.previous = writer.base.id
    gen = writer.commit(clf, store, kind="update", month_data=month_data,
                        scores={m: v for m, v in scores.items() if v is not None})
    # Refusals of these months (same rows) are now applied: say so in
    # their records (a refusal overridden now is recorded as applied).
    if record is not None and writer.store.refusal(record["id"]) is None:
        writer.record_refusal(record)
    for old in writer.store.refusals():
        if old.get("applied") is None and _months_applied(old, new_months):
            writer.mark_refusal_applied(old["id"], gen.id,
                                        accepted=bool(result.accepted_forgetting))
            result.reapplied.append(old["id"])
    if record is not None:
        result.refusal = record["id"]
    return gen


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


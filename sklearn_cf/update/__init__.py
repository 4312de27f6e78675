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

The modules: ``_job`` (:func:`update_model`, :func:`rollback`), ``_model``
(the model a store holds or starts from), ``_month_file`` (reading and
encoding a month's file), ``_months`` (month labels, digests, months applied
before), ``_labels`` (labels against the model's classes), ``_scoring`` (the
held-out split and scores), ``_drops`` (the gate's tests), ``_refusal``
(:class:`ForgettingRefused` and refusal records), ``_result`` (the result
records and their text), ``_best`` (:func:`save_best`).
"""

from .._eval_store import MAX_EVAL_ROWS, EvalStore
from .._gate import DropTest
from ._best import raw_stream, save_best
from ._drops import drop_tests
from ._job import rollback, update_model
from ._month_file import load_month_data
from ._months import month_digest
from ._refusal import ForgettingRefused, refusal_state
from ._result import MonthUpdate, UpdateResult

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
    "update_model", "drop_tests", "month_digest",
]

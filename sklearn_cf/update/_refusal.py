"""The gate's refusal: the exception an update raises, the record it leaves
in the store, and where such a record stands since."""

import hashlib
import os

from .._gate import p_text


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


def _refusal_record(result, writer, data, target, month, month_column, holdout, seed,
                    months):
    """The JSON record of a refused update (docs/reliability.md): what was
    refused (months, rows, digests), by what gate, and how to run it again."""
    import json

    from .._compat import to_python as py

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


"""The month labels of the new data, its rows split by month, and which
months the store applied before (by label and digest of their rows)."""

import hashlib

import numpy as np

from .._compat import to_python
from .._eval_store import take_rows


def _month_label(text):
    """``--month`` as a label: an integer, a date normalized to YYYY-MM, or text."""
    from ..datasets import parse_month

    return None if text is None else parse_month(text)


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


def month_digest(X, y):
    """SHA-256 of a month's rows (features as float32, labels as text).

    A raw table (a DataFrame) is hashed column by column, in the order of the
    column names (a file with its columns in another order has the same
    digest): each name, kind, values and missing-value mask as the
    evaluation store writes them (:func:`~sklearn_cf._eval_store.frame_columns`).
    """
    from .._eval_store import frame_columns

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


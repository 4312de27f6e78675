"""A month's labels against the model's classes: their type, the classes
declared up front, and the new classes a month brings."""

import numpy as np

from .._compat import to_python


def _check_label_type(clf, y, data):
    """Refuse a month whose labels are written as another type than the model's."""
    from .._labels import label_type_change

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


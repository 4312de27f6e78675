"""A month's file: read it, encode it as an older store needs, check its
columns against the model's encoder, and note what the encoder did to it."""

import os

import numpy as np


def load_month_data(data, *, target=None, month_column=None, raw=False):
    """The new month(s): ``(X, y, months, feature_names)``.

    ``data`` is a CSV or Parquet file (read by
    :func:`sklearn_cf.datasets.read_table`; without ``month_column`` every row
    belongs to one month and ``months`` is None)
    or a folder of monthly ``.npy`` files (``<month>/X.npy``, ``<month>/y.npy``;
    no column names, float32).

    ``raw=True``: a file's feature columns as read (a DataFrame), for a model
    that encodes its own rows; else one-hot encoded as float32, as stores
    written before models carried their encoder need (:func:`_encoded_month`).
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
        from ..datasets import MonthFiles

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
    from ..datasets import read_table

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
    given_set, fitted_set = set(given), set(fitted)  # once, not per column
    missing = [n for n in fitted if n not in given_set]
    if missing:
        raise ValueError(
            f"{data!r} lacks the feature column(s) {', '.join(map(repr, missing[:5]))} "
            "the model was trained with."
        )
    extra = [n for n in given if n not in fitted_set]
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
    from ..preprocessing import UnseenCategoryWarning

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


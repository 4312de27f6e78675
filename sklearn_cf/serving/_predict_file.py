"""``predict_file``: a model's class probabilities and labels for every row of
a CSV or Parquet file, read, scored and written one chunk at a time."""

import difflib
import importlib.util
import os
import sys

import numpy as np

from .._atomic import open_atomically

__all__ = ["DEFAULT_CHUNK_ROWS", "predict_file"]

#: Rows read, scored and written at a time: a few MB of a typical table, so
#: memory stays bounded whatever the size of the file.
DEFAULT_CHUNK_ROWS = 50_000

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".txt")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_OUT_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".parq")


def _import_pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with the extras
        raise ImportError(
            "Reading a table needs pandas: pip install pandas (or pip install "
            "\"sklearn-cf[parquet]\" for Parquet files)."
        ) from None
    return pd


def _import_parquet(path, option):
    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError(
            f"{option} {path!r} is a Parquet file, which needs the package 'pyarrow': "
            "pip install \"sklearn-cf[parquet]\" (or pip install pyarrow)."
        )
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def _is_parquet(path):
    return path.lower().endswith(_PARQUET_SUFFIXES)


def _check_paths(data, out, chunk_rows):
    """Every check that needs no reading, in the options' terms."""
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
            or chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be an integer >= 1, got {chunk_rows!r}.")
    if not os.path.exists(data):
        raise ValueError(f"--data {data!r}: no such file.")
    if os.path.isdir(data):
        raise ValueError(f"--data {data!r} is a folder; give a CSV or Parquet file.")
    if not data.lower().endswith(_CSV_SUFFIXES + _PARQUET_SUFFIXES):
        raise ValueError(f"--data {data!r}: cannot tell its format from its name; use a .csv "
                         "(also .csv.gz, .tsv) or a .parquet file.")
    if not out.lower().endswith(_OUT_SUFFIXES):
        raise ValueError(f"--out {out!r}: cannot tell the format to write from its name; "
                         "use a .csv, .tsv or .parquet file name.")
    if os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a folder; give a file name (.csv or .parquet).")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"--out {out!r}: the folder {folder!r} does not exist.")
    if os.path.exists(out) and os.path.samefile(out, data):
        raise ValueError(f"--out {out!r} is the --data file; write the predictions elsewhere.")


def _text_columns(model):
    """``{column: str}`` for the model's categorical columns, so that a chunk
    reads them as text even where its values look like numbers (``"07"``)
    or where they are all missing."""
    encoder = getattr(model, "preprocessor_", None)
    names = getattr(encoder, "feature_names_in_", None)
    if names is None:
        return None
    return {str(n): str for n, kind in zip(names, encoder.kinds_) if kind != "numeric"}


def _csv_chunks(path, chunk_rows, pd, dtype=None):
    """``(frame, bytes read so far)`` for each chunk of a CSV file."""
    lower = path.lower()
    sep = "\t" if lower.endswith(".tsv") else ","
    compression = next((c for s, c in _COMPRESSION.items() if lower.endswith(s)), None)
    with open(path, "rb") as raw:
        with pd.read_csv(raw, sep=sep, chunksize=chunk_rows, dtype=dtype,
                         compression=compression) as reader:
            for frame in reader:
                yield frame, raw.tell()


def _parquet_chunks(path, chunk_rows):
    """``(frame, rows read so far)`` for each record batch of a Parquet file."""
    _, pq = _import_parquet(path, "--data")
    # pre_buffer (pyarrow's default) reads ahead without bound.
    reader = pq.ParquetFile(path, pre_buffer=False)
    done = 0
    for batch in reader.iter_batches(batch_size=chunk_rows):
        done += batch.num_rows
        yield batch.to_pandas(), done


def _chunks(path, chunk_rows, pd, text_columns=None):
    """The file's chunks, with the progress bar's total and unit."""
    if _is_parquet(path):
        _, pq = _import_parquet(path, "--data")
        try:
            total = pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:  # not Parquet, truncated...
            raise ValueError(f"Could not read {path!r} as a table: {_first_line(exc)}") from exc
        return _parquet_chunks(path, chunk_rows), total, "row"
    return _csv_chunks(path, chunk_rows, pd, text_columns), os.path.getsize(path), "B"


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _missing_columns(missing, columns, path, role):
    names = [str(c) for c in columns]
    hints = []
    for name in missing[:3]:
        close = difflib.get_close_matches(str(name), names, n=2, cutoff=0.6)
        if close:
            hints.append(f"{name!r} (did you mean {', '.join(map(repr, close))}?)")
        else:
            hints.append(repr(name))
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    shown = ", ".join(map(repr, names[:20])) + (" ..." if len(names) > 20 else "")
    return ValueError(f"--data {path!r} lacks the {role} {', '.join(hints)}{more}. "
                      f"Its columns: {shown}.")


def known_target(model):
    """The target column the model was trained on, when it records one."""
    for owner in (model, getattr(model, "preprocessor_", None)):
        name = getattr(owner, "target_name_", None)
        if isinstance(name, str):
            return name
    return None


class _Features:
    """Which columns of the file the model is given, decided on the first chunk."""

    def __init__(self, model, columns, target, path):
        if target is not None and target not in columns:
            raise _missing_columns([target], columns, path, "--target column")
        if target is None:
            known = known_target(model)
            target = known if known in columns else None
        self.target = target
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            names = [str(n) for n in names]
            absent = [n for n in names if n not in columns]
            if absent:
                raise _missing_columns(absent, columns, path, "feature column(s)")
            self.names = names
            return
        self.names = None  # the model knows no names: every column but the target
        self.drop = [target] if target is not None else []
        n_given = len(columns) - len(self.drop)
        expected = getattr(model, "n_features_in_", n_given)
        if n_given != expected:
            dropped = f" besides the target {target!r}" if target is not None else ""
            hint = "" if target is not None else "; if one is the label, name it with --target"
            raise ValueError(
                f"--data {path!r} has {n_given} column(s){dropped}, but the model takes "
                f"{expected} features (it was trained without column names, so every "
                f"column is a feature{hint})."
            )

    def of(self, frame):
        if self.names is not None:
            return frame[self.names]
        return frame.drop(columns=self.drop).to_numpy()


class _CsvSink:
    def __init__(self, fh, sep):
        self.fh, self.sep, self.first = fh, sep, True

    def write(self, frame):
        text = frame.to_csv(index=False, header=self.first, sep=self.sep, lineterminator="\n")
        self.fh.write(text.encode("utf-8"))
        self.first = False

    def close(self):
        pass


class _ParquetSink:
    def __init__(self, fh, path):
        self.pa, self.pq = _import_parquet(path, "--out")
        self.fh, self.writer = fh, None

    def write(self, frame):
        table = self.pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = self.pq.ParquetWriter(self.fh, table.schema)
        self.writer.write_table(table.cast(self.writer.schema))

    def close(self):
        if self.writer is not None:
            self.writer.close()


def _sink(fh, path):
    if _is_parquet(path):
        return _ParquetSink(fh, path)
    return _CsvSink(fh, "\t" if path.lower().endswith(".tsv") else ",")


def _scores(model, X, pd):
    proba = np.asarray(model.predict_proba(X))
    classes = model.classes_
    out = pd.DataFrame({f"proba_{label}": proba[:, k] for k, label in enumerate(classes)})
    out["prediction"] = classes[proba.argmax(axis=1)]
    return out


def predict_file(model, data, out, *, target=None, chunk_rows=DEFAULT_CHUNK_ROWS,
                 progress=None):
    """Write a model's class probabilities and labels for every row of a file.

    The file is read ``chunk_rows`` rows at a time (``pandas.read_csv`` in
    chunks; a Parquet file's record batches through pyarrow), each chunk is
    scored with ``model.predict_proba`` and appended to ``out``, so memory
    stays bounded whatever the size of the file. ``out`` is written to a
    temporary file renamed over it at the end: until the last row is
    written ``out`` keeps what it held before (nothing, or an older file),
    and an error or a killed run leaves no partial file there.

    Parameters
    ----------
    model : ContinualClassifier
        A fitted model (``sklearn_cf.load(M)``).
    data : str or path-like
        A ``.csv`` file (also ``.csv.gz``, ``.tsv``) or a ``.parquet`` file
        (needs pyarrow): the rows to score, with the model's feature columns.
    out : str or path-like
        Where to write: ``.csv``, ``.tsv`` or ``.parquet``. One column
        ``proba_<label>`` per class, in the order of ``model.classes_``,
        then ``prediction``, the class of highest probability (as
        ``model.predict``); one row per row of ``data``, in its order.
    target : str, default=None
        The label column of ``data``, not given to the model; it must be in
        the file. None drops the model's own target column when it records
        one and the file has it.
    chunk_rows : int, default=50000
        Rows read, scored and written at a time.
    progress : bool or None, default=None
        Show a progress bar on stderr; None shows it when stderr is a
        terminal.

    Returns
    -------
    int
        The number of rows written.

    Raises
    ------
    ValueError
        A missing or unreadable file, a missing column, a folder that does
        not exist: worded in the options of ``sklearn-cf predict``.
    ImportError
        A Parquet file without pyarrow.

    Notes
    -----
    A model that knows its column names (``feature_names_in_``, a model
    fitted on a DataFrame) is given exactly those columns, by name, in its
    order: other columns of the file (an id, the month) are left out. A
    model fitted on arrays is given every column but the target, in the
    file's order. A CSV file's columns that the model's ``preprocessor``
    one-hot encodes are read as text in every chunk, so that a chunk
    whose values look like numbers, or are all missing, is encoded as the
    whole file would be.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, pandas as pd
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.serving import predict_file
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    >>> y = (frame["a"] > 0).astype(int)
    >>> clf = ContinualClassifier(max_epochs=1, random_state=0).fit(frame, y)
    >>> folder = tempfile.mkdtemp()
    >>> frame.assign(label=y).to_csv(os.path.join(folder, "rows.csv"), index=False)
    >>> predict_file(clf, os.path.join(folder, "rows.csv"), os.path.join(folder, "p.csv"),
    ...              target="label", chunk_rows=128)
    300
    >>> list(pd.read_csv(os.path.join(folder, "p.csv")).columns)
    ['proba_0', 'proba_1', 'prediction']
    """
    from tqdm.auto import tqdm

    pd = _import_pandas()
    data, out = os.fspath(data), os.fspath(out)
    _check_paths(data, out, chunk_rows)
    if _is_parquet(out):
        _import_parquet(out, "--out")
    chunks, total, unit = _chunks(data, int(chunk_rows), pd, _text_columns(model))
    if progress is None:
        progress = sys.stderr.isatty()
    features, n_rows, done = None, 0, 0
    with tqdm(total=total, unit=unit, unit_scale=True, desc="predict", leave=False,
              dynamic_ncols=True, disable=not progress) as bar, open_atomically(out) as fh:
        sink = _sink(fh, out)
        while True:
            try:
                frame, position = next(chunks)
            except StopIteration:
                break
            except (ValueError, UnicodeDecodeError, OSError) as exc:
                raise ValueError(
                    f"Could not read --data {data!r} as a table: {_first_line(exc)}"
                ) from exc
            if features is None:
                features = _Features(model, [str(c) for c in frame.columns], target, data)
            if len(frame):
                sink.write(_scores(model, features.of(frame), pd))
                n_rows += len(frame)
            bar.update(position - done)
            done = position
        if n_rows == 0:
            raise ValueError(f"--data {data!r} holds no rows.")
        sink.close()
    return n_rows

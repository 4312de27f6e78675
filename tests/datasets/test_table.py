"""load_table's month column: dates are read as dates and ordered in time."""

import datetime
import warnings

import numpy as np
import pytest

from sklearn_cf.datasets._table import MonthOrderWarning, _month_labels, load_table

pd = pytest.importorskip("pandas")


def _write(path, months):
    """Two rows per month value, in the order given, with both classes."""
    lines = ["when,size,label"]
    for i, month in enumerate(months):
        lines += [f"{month},{i}.5,1", f"{month},{i}.25,0"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "written, expected",
    [
        # Written in time order; sorted as text, all but the last would not be.
        (["2024-9", "2024-10", "2024-11"], ["2024-09", "2024-10", "2024-11"]),
        (["2024/09", "2024-10", "2024-11"], ["2024-09", "2024-10", "2024-11"]),
        (["11/2024", "12/2024", "1/2025"], ["2024-11", "2024-12", "2025-01"]),
        (["09-2024", "10-2024", "01-2025"], ["2024-09", "2024-10", "2025-01"]),
        (["2024-9-15", "2024-10-31", "2025-01-01"], ["2024-09", "2024-10", "2025-01"]),
        (["Sep 2024", "Oct 2024", "Nov 2024"], ["2024-09", "2024-10", "2024-11"]),
        (["September 2024", "dec 2024", "Jan-2025"], ["2024-09", "2024-12", "2025-01"]),
        (["2024-09-15T08:30:00", "2024-10-01 00:00", "2024-11-02T23:59:59+02:00"],
         ["2024-09", "2024-10", "2024-11"]),
    ],
)
def test_date_months_become_year_month_labels_in_time_order(tmp_path, written, expected):
    path = _write(tmp_path / "s.csv", written)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonthOrderWarning)
        _, y, months = load_table(path, month_column="when", target="label")
    # Oracle: each row's month, by hand, and sorting them is the order in time.
    assert months.tolist() == [m for m in expected for _ in range(2)]
    assert np.unique(months).tolist() == expected


def test_days_of_one_month_are_one_month(tmp_path):
    path = _write(tmp_path / "s.csv", ["2024-09-01", "2024-09-30", "2024-10-02"])
    _, _, months = load_table(path, month_column="when", target="label")
    assert np.unique(months, return_counts=True)[1].tolist() == [4, 2]


def test_numbers_stay_numbers():
    ints = _month_labels(pd.Series([2, 10, 1]), "m", pd)
    assert ints.tolist() == [2, 10, 1] and np.unique(ints).tolist() == [1, 2, 10]
    texts = _month_labels(pd.Series(["2", "10", "1"], dtype="string"), "m", pd)
    assert texts.dtype.kind == "i" and np.unique(texts).tolist() == [1, 2, 10]


def test_datetime_and_date_columns():
    stamps = pd.Series(pd.to_datetime(["2024-12-03", "2025-01-20", "2024-09-01"]))
    assert _month_labels(stamps, "m", pd).tolist() == ["2024-12", "2025-01", "2024-09"]
    aware = stamps.dt.tz_localize("UTC")
    assert _month_labels(aware, "m", pd).tolist() == ["2024-12", "2025-01", "2024-09"]
    dates = pd.Series([datetime.date(2024, 9, 5), datetime.date(2023, 1, 1)])
    assert _month_labels(dates, "m", pd).tolist() == ["2024-09", "2023-01"]


@pytest.mark.parametrize(
    "written, example",
    [
        (["m9", "m10", "m11"], "m"),
        (["2024-09", "2024-13", "2024-11"], "2024-13"),  # no month 13
        (["05/09/2024", "06/09/2024", "07/09/2024"], "/09/2024"),  # day or month first?
    ],
)
def test_free_text_months_are_ordered_as_text_with_a_warning(tmp_path, written, example):
    path = _write(tmp_path / "s.csv", written)
    with pytest.warns(MonthOrderWarning) as record:
        _, _, months = load_table(path, month_column="when", target="label")
    assert len(record) == 1
    message = str(record[0].message)
    assert "'when'" in message and example in message and "as text" in message
    assert months.tolist() == [m for m in written for _ in range(2)]
    assert np.unique(months).tolist() == sorted(written)

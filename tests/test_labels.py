"""Month labels: what training accepts, and exact round trips through a checkpoint."""

import datetime
import decimal
import io
import math
import zoneinfo

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf._labels import check_month_label, decode_label, encode_label

pd = pytest.importorskip("pandas")

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
SUPPORTED = (
    "ints, floats, strings, bools, numpy datetime64, datetime.date/datetime, "
    "pandas Timestamp or Period"
)


def _same_label(got, expected):
    """Equal, of the same type, and with the same unit / time zone / frequency."""
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, float):
        assert repr(got) == repr(expected)  # also tells -0.0 from 0.0
        return
    assert got == expected
    if isinstance(expected, np.datetime64):
        assert got.dtype == expected.dtype
    elif isinstance(expected, pd.Period):
        assert got.freqstr == expected.freqstr
    elif isinstance(expected, pd.Timestamp):
        # .unit exists from pandas 2.0 on.
        assert str(got.tz) == str(expected.tz)
        assert getattr(got, "unit", None) == getattr(expected, "unit", None)
    elif isinstance(expected, datetime.datetime):
        assert (got.tzinfo, got.fold) == (expected.tzinfo, expected.fold)


def _through_a_checkpoint_payload(label):
    buffer = io.BytesIO()
    torch.save({"month": encode_label(label)}, buffer)
    buffer.seek(0)
    return decode_label(torch.load(buffer, weights_only=True)["month"])


@pytest.mark.parametrize(
    "label, expected",
    [
        (np.int64(3), 3),
        (np.uint8(3), 3),
        (np.str_("2024-01"), "2024-01"),
        (np.bool_(True), True),
        (np.float64(1.5), 1.5),
        (np.float32(0.25), 0.25),
        (True, True),
        (7, 7),
    ],
)
def test_numpy_scalars_become_python_objects(label, expected):
    _same_label(check_month_label(label), expected)


@pytest.mark.parametrize(
    "label",
    [np.datetime64("2024-01", "M"), datetime.date(2024, 1, 1),
     datetime.datetime(2024, 1, 1, tzinfo=PARIS), pd.Timestamp("2024-01-01"),
     pd.Period("2024-01", "M")],
    ids=repr,
)
def test_dates_are_kept_as_they_are(label):
    assert check_month_label(label) is label


@pytest.mark.parametrize(
    "label, shown",
    [(None, "None"), (float("nan"), "NaN"), (np.float32("nan"), "NaN"), (pd.NA, "<NA>"),
     (pd.NaT, "NaT"), (np.datetime64("NaT"), "NaT"), (np.datetime64("NaT", "M"), "NaT")],
    ids=repr,
)
def test_missing_labels_are_refused(label, shown):
    with pytest.raises(ValueError) as raised:
        check_month_label(label)
    assert str(raised.value) == (
        f"month labels must not be missing (got {shown}); every row needs a month."
    )


def test_infinite_labels_are_refused():
    with pytest.raises(ValueError, match=r"months labels must be finite numbers \(got -inf\)"):
        check_month_label(-math.inf, what="months")


@pytest.mark.parametrize(
    "label",
    [(2024, 1), decimal.Decimal("1"), 1j, np.complex128(1), frozenset({1}), object(),
     b"2024-01", np.timedelta64(1, "D"), datetime.timedelta(days=1), datetime.time(1),
     pd.Timedelta(1), [1]],
    ids=lambda v: type(v).__name__,
)
def test_labels_a_checkpoint_cannot_store_are_refused(label):
    with pytest.raises(TypeError, match=f"has type {type(label).__name__}, which a "
                                        f"checkpoint cannot store; use {SUPPORTED}."):
        check_month_label(label)
    with pytest.raises(TypeError, match=SUPPORTED):
        encode_label(label)


ROUND_TRIPS = [
    3, -2**70, 0.5, -0.0, "2024-01", "", True, False,
    np.datetime64("2024-01", "M"), np.datetime64("2024-01-04", "W"),
    np.datetime64("2024-01-01T10", "2h"), np.datetime64("2024-01-01T00:00:00.123456789"),
    datetime.date(2024, 2, 29), datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
    datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
    datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=-3.5),
                                                           "NST")),
    # The hour that occurs twice when clocks go back: fold tells them apart.
    datetime.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=0),
    datetime.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 00:00:00.000000001"),
    pd.Timestamp("2024-01-01", tz="UTC"),
    pd.Timestamp("2024-03-31 03:00", tz="Europe/Paris"),
    pd.Timestamp("2024-01-01", tz=datetime.timezone(datetime.timedelta(hours=5))),
    pd.Period("2024-01", "M"), pd.Period("2024-01-01", "W"), pd.Period("2024Q1", "Q-MAR"),
    pd.Period("2024", "Y"), pd.Period("2024-01", "2M"),
]
if hasattr(pd.Timestamp, "as_unit"):  # pandas >= 2.0: a Timestamp keeps its unit
    ROUND_TRIPS.append(pd.Timestamp("2024-01-01").as_unit("s"))


@pytest.mark.parametrize("label", ROUND_TRIPS, ids=repr)
def test_encoded_labels_come_back_exactly(label):
    _same_label(_through_a_checkpoint_payload(label), label)


def test_labels_of_earlier_checkpoints_still_decode():
    # The string forms that checkpoint format 1 wrote before units and
    # ordinals were stored.
    assert decode_label({"datetime64": "2024-01"}) == np.datetime64("2024-01", "M")
    assert decode_label({"period": "2024-01", "freq": "M"}) == pd.Period("2024-01", "M")
    stamp = decode_label({"date": "2024-01-01T10:00:00+01:00", "datetime": True})
    assert stamp == datetime.datetime(2024, 1, 1, 9, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("data", [[1], {"x": 1}, {"date": 3, "datetime": False},
                                  {"datetime64": "x", "unit": "M"}, torch.zeros(1)],
                         ids=repr)
def test_undecodable_labels_are_a_value_error(data):
    with pytest.raises(ValueError, match="month label"):
        decode_label(data)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()))
def test_ints_floats_and_strings_come_back_exactly(label):
    _same_label(_through_a_checkpoint_payload(label), label)


# ----------------------------------------------------------------------
# Through fit, save and load
# ----------------------------------------------------------------------
TWO_MONTHS = {
    "int": [3, 7],
    "float": [0.5, 1.5],
    "str": ["2024-01", "2024-02"],
    "bool": [False, True],
    "datetime64": np.array(["2024-01", "2024-02"], dtype="datetime64[M]"),
    "date": [datetime.date(2024, 1, 1), datetime.date(2024, 2, 1)],
    "datetime with a zone": [datetime.datetime(2024, 1, 1, tzinfo=PARIS),
                             datetime.datetime(2024, 7, 1, tzinfo=PARIS)],
    "Timestamp with a zone": [pd.Timestamp("2024-01-01", tz="Europe/Paris"),
                              pd.Timestamp("2024-02-01", tz="Europe/Paris")],
    "Period": pd.period_range("2024-01", periods=2, freq="M"),
}


@pytest.mark.parametrize("kind", list(TWO_MONTHS))
def test_month_labels_survive_save_and_load(tmp_path, kind):
    two = TWO_MONTHS[kind]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    months = [two[i // 50] for i in range(100)]
    if isinstance(two, np.ndarray):
        months = np.asarray(months, dtype=two.dtype)
    clf = ContinualClassifier(max_epochs=1, hidden_units=(8,), batch_size=50, random_state=0)
    clf.fit(X, y, months=months)
    clf.save(tmp_path / "m.pt")
    loaded = sklearn_cf.load(tmp_path / "m.pt")
    assert len(loaded.months_seen_) == 2
    for got, expected in zip(loaded.months_seen_, clf.months_seen_):
        _same_label(got, expected)
    for got, expected in zip(loaded.cost_, clf.cost_):
        _same_label(got["month"], expected["month"])
    for got, expected in zip(loaded.snapshots_, clf.snapshots_):
        _same_label(got.month, expected.month)
    first = loaded.months_seen_[0]
    np.testing.assert_array_equal(loaded.predict_proba_after(X, first),
                                  clf.predict_proba_after(X, clf.months_seen_[0]))


def test_a_label_a_checkpoint_cannot_store_is_refused_before_it_is_saved(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = ContinualClassifier(max_epochs=1, hidden_units=(4,), random_state=0)
    # Refused when training (or, at the latest, when saving).
    with pytest.raises(TypeError, match=SUPPORTED):
        clf.partial_fit_month(X, y, month=decimal.Decimal("2024.01"))
        clf.save(tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()

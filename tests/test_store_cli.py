"""The model store from the command line: ``sklearn-cf history``, rollback to
a generation, idempotent re-runs, ``--keep``, ``--init-from``, the writer
lock and damaged stores.

Every check reads the store independently of the code under test where it
can: the manifests and the pointer as JSON, the files' bytes, and the model
of a known generation through ``ModelStore(M).load(GEN)``.
"""

import json
import os
import re

import numpy as np
import pytest

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf.cli import main
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.store import ModelStore

NET = ["--epochs", "1", "--hidden-units", "8"]
ROWS = 80
HEADER = "f0,f1,f2,f3,f4,f5,is_malware"


@pytest.fixture
def months(tmp_path):
    """One CSV file per month (no month column), 80 rows each."""
    X, y, month = make_monthly_drift(n_months=5, n_samples_per_month=ROWS, n_features=6,
                                     random_state=0)
    paths = []
    for k in range(5):
        lines = [HEADER, *(",".join([*(f"{v:.5f}" for v in X[i]), str(y[i])])
                           for i in np.flatnonzero(month == k))]
        path = tmp_path / f"month{k}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


def _update(model, data, *extra):
    return main(["update", "--model", str(model), "--data", data, "--target", "is_malware",
                 "--quiet", *extra])


def _new(model, data, *extra):
    return _update(model, data, "--strategy", "replay", *NET, *extra)


def _manifests(model):
    """The manifest files of the store, read as JSON, by generation id."""
    found = {}
    for path in sorted((model / "generations").iterdir()):
        data = json.loads(path.read_text())
        assert path.name == f"{data['id']:06d}.json"
        found[data["id"]] = data
    return found


def _current(model):
    return json.loads((model / "CURRENT").read_text())["generation"]


def _files(model):
    """Every file under the store folder: relative path -> (bytes, mtime in ns)."""
    return {p.relative_to(model).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(model.rglob("*")) if p.is_file()}


def _bytes(model):
    return {name: data for name, (data, _) in _files(model).items()}


def _held_out_rows(model):
    """Every held-out row of the current generation's evaluation store (raw
    rows the model encodes, or scaled as an older store's model sees them)."""
    X = ModelStore(model).eval_store().X
    if X and hasattr(X[0], "columns"):
        import pandas as pd

        return pd.concat(X, ignore_index=True)
    return np.concatenate(X)


def _last_error(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("sklearn-cf: error: "), lines
    return lines[-1]


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------
def _history_rows(model, capsys):
    capsys.readouterr()
    assert main(["history", "--model", str(model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["gen", "committed"]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


def _size_text(size):
    return f"{size} B" if size < 1000 else f"{size / 1000:.1f} kB"


def test_history_prints_one_line_per_kept_generation(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    assert _update(model, months[1]) == 0
    assert _update(model, months[2]) == 0
    assert main(["update", "--rollback", "--model", str(model)]) == 0

    rows = _history_rows(model, capsys)
    manifests = _manifests(model)
    assert sorted(manifests) == [1, 2, 3, 4] and _current(model) == 4
    assert len(rows) == len(manifests)
    for row, (gen_id, gen) in zip(rows, sorted(manifests.items())):
        assert row[0] == str(gen_id)
        assert row[1] == gen["created"].replace("T", " ").rstrip("Z")
        kind = gen["kind"] if gen["restores"] is None else f"rollback to {gen['restores']}"
        assert row[2] == kind
        assert row[3] == ", ".join(map(str, gen["months"]))
        assert row[4] == gen["scoring"]
        scores = [gen["scores"][str(m)] for m in gen["months"]]
        assert row[5] == f"{scores[-1]:.3f} / {np.mean(scores):.3f}"
        on_disk = sum(os.path.getsize(model / name)
                      for name in [*gen["files"].values(), *gen["memory"]])
        assert row[6] == _size_text(on_disk)
        assert row[7:] == (["(current)"] if gen_id == 4 else [])
    assert [row[2] for row in rows] == ["update", "update", "update", "rollback to 2"]
    assert [row[3] for row in rows] == ["0", "0, 1", "0, 1, 2", "0, 1"]


def test_history_of_what_is_not_a_store_exits_2(months, tmp_path, capsys):
    assert main(["history", "--model", str(tmp_path / "none")]) == 2
    assert "not a model store" in _last_error(capsys)
    checkpoint = tmp_path / "model.pt"
    ContinualClassifier(hidden_units=(8,), max_epochs=1, random_state=0).fit(
        np.eye(4, dtype=np.float32), [0, 1, 0, 1]).save(checkpoint)
    assert main(["history", "--model", str(checkpoint)]) == 2
    assert "checkpoint file" in _last_error(capsys)


# ---------------------------------------------------------------------------
# rollback
# ---------------------------------------------------------------------------
def test_rollback_to_a_generation_and_back(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    assert _update(model, months[1]) == 0
    assert _update(model, months[2]) == 0
    X = _held_out_rows(model)
    store = ModelStore(model)
    expected = {gen: store.load(gen).predict_proba(X) for gen in (1, 2, 3)}
    assert not np.array_equal(expected[1], expected[3])
    before = _bytes(model)

    assert main(["update", "--rollback", "--to", "1", "--model", str(model)]) == 0
    assert "generation 4 restores generation 1" in capsys.readouterr().out
    np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X), expected[1])
    assert sklearn_cf.load(model).months_seen_ == [0]
    assert ModelStore(model).eval_store().months == [0]
    gen = _manifests(model)[4]
    assert (gen["kind"], gen["restores"], gen["previous"]) == ("rollback", 1, 3)
    assert _current(model) == 4
    # committed generations and their files are never changed
    after = _bytes(model)
    assert {k: v for k, v in after.items() if k in before and k not in ("CURRENT",)} == {
        k: v for k, v in before.items() if k != "CURRENT"}

    # a rollback of the rollback makes generation 3 current again
    assert main(["update", "--rollback", "--model", str(model)]) == 0
    np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X), expected[3])
    gen = _manifests(model)[5]
    assert (gen["kind"], gen["restores"], gen["previous"]) == ("rollback", 3, 4)
    assert gen["files"] == _manifests(model)[3]["files"]
    assert ModelStore(model).eval_store().months == [0, 1, 2]

    # and the job goes on from there
    assert _update(model, months[3]) == 0
    assert sklearn_cf.load(model).months_seen_ == [0, 1, 2, 3]
    assert _manifests(model)[6]["previous"] == 5


def test_rollback_to_an_unknown_generation_exits_2_naming_the_kept_ones(months, tmp_path,
                                                                        capsys):
    model = tmp_path / "m"
    assert _new(model, months[0], "--keep", "2") == 0
    assert _update(model, months[1], "--keep", "2") == 0
    assert _update(model, months[2], "--keep", "2") == 0
    before = _bytes(model)
    capsys.readouterr()
    for gen in ("1", "9"):  # collected by --keep 2, never made
        assert main(["update", "--rollback", "--to", gen, "--model", str(model)]) == 2
        line = _last_error(capsys)
        assert f"no generation {gen} (kept: 2, 3)" in line
    assert _bytes(model) == before
    # the current generation: nothing to do
    assert main(["update", "--rollback", "--to", "3", "--model", str(model)]) == 0
    assert "already current" in capsys.readouterr().out
    assert _bytes(model) == before and _current(model) == 3


def test_to_without_rollback_exits_2(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    before = _bytes(model)
    capsys.readouterr()
    assert _update(model, months[1], "--to", "1") == 2
    assert "--to GEN applies only with --rollback" in _last_error(capsys)
    assert _bytes(model) == before


def test_rollback_takes_no_data(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    assert _update(model, months[1]) == 0
    before = _bytes(model)
    capsys.readouterr()
    assert main(["update", "--rollback", "--model", str(model), "--data", months[2]]) == 2
    assert "--data" in _last_error(capsys)
    assert _bytes(model) == before


# ---------------------------------------------------------------------------
# re-runs
# ---------------------------------------------------------------------------
def _without_lock_times(files):
    """The files with their mtimes, but the lock file only by its bytes: every
    writer takes the lock, writing its name in LOCK and clearing it on release."""
    return {name: (data, None if name == "LOCK" else mtime)
            for name, (data, mtime) in files.items()}


def test_a_month_applied_again_with_the_same_rows_is_an_idempotent_success(months, tmp_path,
                                                                           capsys):
    model = tmp_path / "m"
    assert _new(model, months[0], "--month", "2024-01") == 0
    assert _update(model, months[1], "--month", "2024-02") == 0
    before = _files(model)
    capsys.readouterr()

    assert _update(model, months[1], "--month", "2024-02") == 0
    out = capsys.readouterr().out
    assert "already applied with the same data (skipped): month 2024-02" in out
    assert "nothing to do" in out
    assert _without_lock_times(_files(model)) == _without_lock_times(before)
    assert _current(model) == 2


def test_the_same_data_without_a_month_label_is_found_by_its_digest(months, tmp_path,
                                                                    capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    assert _update(model, months[1]) == 0
    assert sklearn_cf.load(model).months_seen_ == [0, 1]
    before = _files(model)
    capsys.readouterr()

    for data in months[:2]:  # either month, without --month: its digest matches
        assert _update(model, data) == 0
        assert "already applied" in capsys.readouterr().out
    assert _without_lock_times(_files(model)) == _without_lock_times(before)
    # new rows without a label are the next month, as before
    assert _update(model, months[2]) == 0
    assert sklearn_cf.load(model).months_seen_ == [0, 1, 2]


def test_a_file_of_months_applied_in_part_trains_only_the_new_ones(months, tmp_path, capsys):
    every = tmp_path / "every.csv"
    lines = [f"when,{HEADER}"]
    for k, path in enumerate(months[:3]):
        lines += [f"2024-0{k + 1},{row}" for row in open(path).read().split()[1:]]
    every.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m"
    assert _new(model, months[0], "--month", "2024-01") == 0
    assert _update(model, months[1], "--month", "2024-02") == 0
    capsys.readouterr()

    assert main(["update", "--model", str(model), "--data", str(every), "--target",
                 "is_malware", "--month-column", "when"]) == 0
    out = capsys.readouterr().out
    assert "already applied with the same data (skipped): month 2024-01, 2024-02" in out
    assert "month 2024-03: trained" in out
    gen = _manifests(model)[3]
    assert gen["months"] == ["2024-01", "2024-02", "2024-03"]
    assert [entry["rows"] for entry in gen["month_data"]] == [ROWS] * 3
    assert [entry["sha256"] for entry in gen["month_data"][:2]] == [
        entry["sha256"] for entry in _manifests(model)[2]["month_data"]]


def test_the_same_month_label_with_other_rows_is_refused(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0], "--month", "2024-01") == 0
    assert _update(model, months[1], "--month", "2024-02") == 0
    other = tmp_path / "other.csv"
    other.write_text("\n".join(open(months[2]).read().split()[:61]) + "\n")  # 60 rows
    # the digest of those rows, as a new store records it
    fresh = tmp_path / "fresh"
    assert _new(fresh, str(other), "--month", "2024-02") == 0
    new_digest = _manifests(fresh)[1]["month_data"][0]["sha256"]
    recorded = _manifests(model)[2]["month_data"][1]
    assert recorded["month"] == "2024-02" and recorded["rows"] == ROWS
    assert new_digest != recorded["sha256"]
    before = _bytes(model)
    capsys.readouterr()

    assert _update(model, str(other), "--month", "2024-02") == 2
    line = _last_error(capsys)
    assert "Month 2024-02 was already applied" in line
    assert f"({ROWS} rows, sha256 {recorded['sha256'][:12]})" in line
    assert f"this data has 60 rows, sha256 {new_digest[:12]}" in line
    assert _bytes(model) == before


# ---------------------------------------------------------------------------
# --keep
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("memory", [[], ["--memory-on-disk"]], ids=["in-checkpoint", "on-disk"])
def test_keep_2_keeps_two_generations_and_only_their_files(memory, months, tmp_path, capsys):
    import hashlib

    model = tmp_path / "m"
    assert _new(model, months[0], "--keep", "2", *memory) == 0
    for data in months[1:4]:
        assert _update(model, data, "--keep", "2") == 0
    manifests = _manifests(model)
    assert sorted(manifests) == [3, 4] and _current(model) == 4
    referenced = {name for gen in manifests.values()
                  for name in [*gen["files"].values(), *gen["memory"]]}
    stored = {p.relative_to(model).as_posix() for folder in ("objects", "memory")
              if (model / folder).exists() for p in (model / folder).rglob("*")
              if p.is_file()}
    assert stored == referenced
    objects = {name for name in referenced if name.startswith("objects/")}
    assert len(objects) == 4  # a checkpoint and an evaluation store each
    assert bool(referenced - objects) == bool(memory)  # replay memory files, when on disk
    for gen in manifests.values():  # and they are whole
        for name, digest in gen["sha256"].items():
            assert hashlib.sha256((model / name).read_bytes()).hexdigest() == digest
    assert [row[0] for row in _history_rows(model, capsys)] == ["3", "4"]

    # the generation kept for rollback still loads, with its memory
    X = _held_out_rows(model)
    expected = ModelStore(model).load(3).predict_proba(X)
    assert main(["update", "--rollback", "--model", str(model), "--keep", "2"]) == 0
    np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X), expected)
    assert sorted(_manifests(model)) == [4, 5]
    # the default keeps 5
    assert _update(model, months[4]) == 0
    assert sorted(_manifests(model)) == [4, 5, 6]


@pytest.mark.parametrize("option", [["--keep", "0"], ["--wait", "-1"]])
def test_keep_and_wait_are_checked(option, months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0], *option) == 2
    assert option[0] in _last_error(capsys)
    assert not model.exists()


# ---------------------------------------------------------------------------
# a checkpoint file, --init-from
# ---------------------------------------------------------------------------
def _checkpoint(model, path):
    """The current model of the store ``model`` saved as a checkpoint file."""
    sklearn_cf.load(model).save(path)
    return path


def test_a_checkpoint_file_as_model_is_refused_pointing_at_init_from(months, tmp_path,
                                                                     capsys):
    store = tmp_path / "m"
    assert _new(store, months[0]) == 0
    checkpoint = _checkpoint(store, tmp_path / "model.pt")
    before = checkpoint.read_bytes()
    capsys.readouterr()
    assert _update(checkpoint, months[1]) == 2
    line = _last_error(capsys)
    assert "single checkpoint file" in line and f"--init-from {checkpoint}" in line
    assert checkpoint.read_bytes() == before
    assert main(["update", "--rollback", "--model", str(checkpoint)]) == 2
    assert "--init-from" in _last_error(capsys)


def test_init_from_makes_an_import_generation_predicting_as_the_file(months, tmp_path):
    checkpoint = tmp_path / "model.pt"
    X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    ContinualClassifier(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y).save(
        checkpoint)
    expected = sklearn_cf.load(checkpoint).predict_proba(X)

    model = tmp_path / "m"
    assert _update(model, months[1], "--init-from", str(checkpoint)) == 0
    manifests = _manifests(model)
    assert manifests[1]["kind"] == "import" and manifests[1]["previous"] is None
    np.testing.assert_array_equal(ModelStore(model).load(1).predict_proba(X), expected)
    assert manifests[2]["kind"] == "update" and manifests[2]["previous"] == 1


def test_init_from_a_checkpoint_and_its_evaluation_store_updates_as_the_store_would(
        months, tmp_path, capsys):
    """A checkpoint and its ``.eval.npz`` (as update wrote them before stores)
    carry on exactly as the store they came from: the same scaling, held-out
    rows and scoring, hence the same model after the next month."""
    source = tmp_path / "source"
    assert _new(source, months[0]) == 0
    assert _update(source, months[1]) == 0
    checkpoint = _checkpoint(source, tmp_path / "model.pt")
    eval_blob = source / _manifests(source)[2]["files"]["eval"]
    (tmp_path / "model.pt.eval.npz").write_bytes(eval_blob.read_bytes())

    model = tmp_path / "m"
    assert _update(model, months[2], "--init-from", str(checkpoint)) == 0
    assert _update(source, months[2]) == 0
    X = _held_out_rows(source)
    np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X),
                                  sklearn_cf.load(source).predict_proba(X))
    imported, original = ModelStore(model).eval_store(), ModelStore(source).eval_store()
    np.testing.assert_array_equal(imported.scale_mean, original.scale_mean)
    assert imported.months == original.months == [0, 1, 2]
    assert imported.scoring == original.scoring
    assert sklearn_cf.load(model).months_seen_ == [0, 1, 2]


def test_init_from_an_existing_store_is_refused(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    checkpoint = _checkpoint(model, tmp_path / "model.pt")
    before = _bytes(model)
    capsys.readouterr()
    assert _update(model, months[1], "--init-from", str(checkpoint)) == 2
    assert "init_from" in _last_error(capsys)
    assert _bytes(model) == before


# ---------------------------------------------------------------------------
# one writer at a time
# ---------------------------------------------------------------------------
def test_a_store_held_by_another_writer_exits_4(months, tmp_path, capsys):
    import time

    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    capsys.readouterr()
    with ModelStore(model).writer():  # flock: another open file, as another process
        before = _bytes(model)
        start = time.monotonic()
        assert _update(model, months[1], "--wait", "0.3") == 4
        assert time.monotonic() - start >= 0.3
        err = capsys.readouterr().err.strip()
        assert err.startswith("sklearn-cf: ") and f"process {os.getpid()}" in err
        assert main(["update", "--rollback", "--model", str(model)]) == 4
        assert _bytes(model) == before
    assert _update(model, months[1]) == 0  # released
    assert _current(model) == 2


# ---------------------------------------------------------------------------
# damaged stores
# ---------------------------------------------------------------------------
def test_a_damaged_evaluation_store_is_named_and_rollback_recovers(months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    assert _update(model, months[1]) == 0
    blob = model / _manifests(model)[2]["files"]["eval"]
    blob.write_bytes(b"garbage")
    before = _bytes(model)
    capsys.readouterr()

    assert _update(model, months[2]) == 2
    line = _last_error(capsys)
    assert str(blob) in line and "damaged" in line
    assert _bytes(model) == before
    # the model itself still loads, and history still lists the generations
    assert sklearn_cf.load(model).months_seen_ == [0, 1]
    assert [row[0] for row in _history_rows(model, capsys)] == ["1", "2"]
    # back to the generation before, then the month again
    assert main(["update", "--rollback", "--model", str(model)]) == 0
    assert _update(model, months[1]) == 0 and _update(model, months[2]) == 0
    assert sklearn_cf.load(model).months_seen_ == [0, 1, 2]


@pytest.mark.parametrize("pointer", [b"", b"{not json", b'{"format": 1, "generation": "x"}',
                                     b'{"format": 2, "generation": 1}'])
def test_a_damaged_pointer_exits_2(pointer, months, tmp_path, capsys):
    model = tmp_path / "m"
    assert _new(model, months[0]) == 0
    (model / "CURRENT").write_bytes(pointer)
    before = _bytes(model)
    capsys.readouterr()
    for argv in (["update", "--model", str(model), "--data", months[1], "--target",
                  "is_malware"],
                 ["update", "--rollback", "--model", str(model)],
                 ["history", "--model", str(model)]):
        assert main(argv) == 2
        line = _last_error(capsys)
        assert str(model / "CURRENT") in line and "damaged" in line
    assert _bytes(model) == before
    with pytest.raises(ValueError, match="damaged"):
        sklearn_cf.load(model)


def test_loading_a_folder_that_is_not_a_store_is_a_value_error(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="not a model store") as info:
        sklearn_cf.load(folder)
    assert str(folder) in str(info.value)


def test_init_from_with_a_refused_update_writes_nothing(months, tmp_path, capsys):
    """The import and the month commit together: a month that is refused
    leaves no store at all, and a re-run after an import-only run goes on."""
    checkpoint = tmp_path / "model.pt"
    X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    ContinualClassifier(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y).save(
        checkpoint)
    model = tmp_path / "m"
    assert _update(model, months[1], "--init-from", str(checkpoint), "--scoring",
                   "no_such_scorer") == 2
    assert not model.exists()
    assert main(["update", "--model", str(model), "--init-from", str(checkpoint)]) == 0
    assert [m["kind"] for m in _manifests(model).values()] == ["import"]
    # The same import given again with a month: the import is recognised.
    assert _update(model, months[1], "--init-from", str(checkpoint)) == 0
    assert [m["kind"] for m in _manifests(model).values()] == ["import", "update"]
